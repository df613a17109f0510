"""minigrad.compile's bound cross entropy (``capture._Trace._bind_cross_entropy``): the ``cross_entropy_forward`` and
``cross_entropy_backward`` kernel pair, unchecked, on targets that ``_index_target`` made (no log-softmax pair, no
NumPy gather, no one-hot dy), with eager's bits; a target from anywhere else leaves the node unbound."""
import warnings

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from conftest import BACKENDS
from minigrad import kernels
from minigrad.nn.functional.loss import _CrossEntropy
from minigrad.optim import SGD
from test_compile import _small_mlp


def _pair(loss, dtype):
    mg.manual_seed(0)
    net = _small_mlp(True, dtype)()
    opt = SGD(net.parameters(), lr=0.05, momentum=0.9)

    def step(x, y):
        opt.zero_grad()
        out = loss(net(x), y)
        out.backward()
        opt.step()
        return out
    return net, step


def _eager_and_compiled(loss, dtype, batches):
    """The losses and final state of eager's steps and of the compiled steps (both from one seed), and the compiled
    function."""
    runs = []
    for compiled in (False, True):
        net, step = _pair(loss, dtype)
        fn = mg.compile(step) if compiled else step
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # NOTE: these steps must replay
            losses = [fn(x, y).data.tobytes() for x, y in batches]
        runs.append((losses, {k: v.tobytes() for k, v in net.state_dict().items()},
                     [p.grad.data.tobytes() for p in net.parameters()]))
    assert runs[0] == runs[1]
    return fn


def _kernel_names(fn):
    (entry,) = [e for entries in fn._cache.values() for e in entries]
    return entry, {getattr(v, "__name__", None) for v in entry.trace.ns.values()}


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", BACKENDS)
def test_bound_cross_entropy_is_the_kernel_pair_with_eagers_bits(name, dtype, reduction):
    rng = np.random.default_rng(11)
    batches = [(mg.Tensor(rng.standard_normal((10, 12)).astype(dtype)), mg.Tensor(rng.integers(0, 10, 10)))
               for _ in range(5)]
    with kernels.using_backend(name):
        fn = _eager_and_compiled(lambda o, y: F.cross_entropy(o, y, reduction=reduction), dtype, batches)
    entry, names = _kernel_names(fn)
    assert {"cross_entropy_forward", "cross_entropy_backward"} <= names
    assert not names & {"log_softmax_forward", "log_softmax_backward"}
    assert "np.zeros" not in entry.trace.src and "astype(np.float64)" not in entry.trace.src
    assert entry.trace.n_bound == 6  # NOTE: 3 linear layers, 2 batch norm + sigmoid, the cross entropy


def test_a_target_not_made_by_index_target_is_not_bound():
    """``_CrossEntropy`` applied to a step's own int64 array (no ``_index_target`` host computation: nothing proves
    the layout the unchecked kernels read on later calls) replays as the node's own forward and backward."""
    rng = np.random.default_rng(12)
    batches = [(mg.Tensor(rng.standard_normal((10, 12)).astype(np.float32)), rng.integers(0, 10, 10))
               for _ in range(5)]

    def loss(out, y):
        return _CrossEntropy.apply(out, target=y, weight=None, valid=np.ones(10, bool), smoothing=0.0,
                                   reduction="mean")
    fn = _eager_and_compiled(loss, np.float32, batches)
    entry, names = _kernel_names(fn)
    assert entry.trace.n_bound == 5 and "cross_entropy_forward" not in names
