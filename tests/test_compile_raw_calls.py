"""The bound replay's kernel calls (``capture._Trace._raw_call``): the active backend's own kernels, unchecked, with
the thread count the contract's checked call passes for their size, and the replay still eager's bits."""
import re
import warnings

import numpy as np
import pytest

import minigrad as mg
from conftest import BACKENDS
import minigrad.nn.functional as F
from minigrad import kernels
from minigrad.kernels import contract
from minigrad.optim import SGD
from test_compile import _run_both, _setup, _small_mlp

_CALL = re.compile(r"\b(K[0-9]+)\((.*), ([0-9]+)\)$")


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", BACKENDS)
def test_bound_kernels_are_the_backends_own_with_the_contracts_threads(name, dtype, threads):
    # NOTE: batch 2100 x 16 features: above contract.SMALL, so the batch norm and sigmoid kernels take the threads;
    # the cross entropy's 2100 x 10 stays below it
    rng = np.random.default_rng(4)
    batches = [(mg.Tensor(rng.standard_normal((2100, 12)).astype(dtype)), mg.Tensor(rng.integers(0, 10, 2100)))
               for _ in range(3)]
    prev = mg.get_num_threads()
    mg.set_num_threads(threads)
    try:
        with kernels.using_backend(name):
            compiled = _run_both(_small_mlp(True, dtype), "sgd", batches)
            module = kernels.kernels().module
    finally:
        mg.set_num_threads(prev)
    (entry,) = [e for entries in compiled._cache.values() for e in entries]
    calls = [m.groups() for line in entry.trace.src.splitlines() if (m := _CALL.search(line.strip()))]
    seen = set()
    for k, args, n in calls:
        fn = entry.trace.ns[k]
        assert fn is getattr(module, fn.__name__), k  # NOTE: the module's function, not the contract's checked call
        elements = {"cross_entropy_forward": 2100 * 10, "cross_entropy_backward": 2100 * 10,
                    "running_stats_update": 16}.get(fn.__name__, 2100 * 16)
        assert int(n) == (1 if elements < contract.small(fn.__name__) else threads), (fn.__name__, n)
        seen.add(fn.__name__)
    want = {"batch_norm_forward", "batch_norm_backward", "cross_entropy_forward", "cross_entropy_backward",
            "running_stats_update"}
    assert want | ({"sigmoid_forward", "sigmoid_backward"} if dtype == np.float32 else set()) == seen


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bound_running_statistics_follow_new_and_strided_arrays(dtype):
    """The bound batch norm's running-statistics update (its kernel, unchecked, where both buffers are C-contiguous
    when the replay runs; else the host computation): eager's bits when a buffer's ``.data`` is replaced between
    replays by a new array, then by a strided view (which the kernel cannot take), then by a contiguous one again."""
    rng = np.random.default_rng(6)
    batches = [(mg.Tensor(rng.standard_normal((10, 12)).astype(dtype)), mg.Tensor(rng.integers(0, 10, 10)))
               for _ in range(8)]

    def replace(net, i):
        bn = net[1]
        if i == 3:
            bn.running_mean.data = bn.running_mean.data * 0.5
        if i == 5:  # NOTE: a strided view with the same values: the guard's shape and dtype still hold
            wide = np.zeros(2 * bn.running_var.data.size, bn.running_var.data.dtype)
            wide[::2] = bn.running_var.data
            bn.running_var.data = wide[::2]
        if i == 7:
            bn.running_var.data = bn.running_var.data.copy()
    runs = []
    for compiled in (False, True):
        net, opt, step = _setup(_small_mlp(True, dtype), "sgd")
        fn = mg.compile(step) if compiled else step
        losses = []
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for i, (x, y) in enumerate(batches):
                replace(net, i)
                losses.append(fn(x, y).data.tobytes())
        runs.append((losses, {k: v.tobytes() for k, v in net.state_dict().items()}))
        if compiled:
            (entry,) = [e for entries in fn._cache.values() for e in entries]
            assert entry.trace.src.count("running_stats_update") == 0  # NOTE: names only: K<n> holds the kernel
            assert sum(getattr(v, "__name__", "") == "running_stats_update" for v in entry.trace.ns.values()) == 2
    assert runs[0] == runs[1]


def _mlp_ce_step(ignore_index):
    mg.manual_seed(0)
    net = _small_mlp(True, np.float32)()
    opt = SGD(net.parameters(), lr=0.05, momentum=0.9)

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y, ignore_index=ignore_index)
        loss.backward()
        opt.step()
        return loss
    return net, step


@pytest.mark.parametrize("ignore_index", [-100, 0, 3])
def test_bound_target_check_gives_eagers_bits_and_errors(ignore_index):
    """The bound cross entropy's target check (one reduction where every index is in range): an ignore_index inside
    the classes is masked as eager masks it (the host computation: no bound check), an index out of range raises
    eager's error, int32 targets take the host computation."""
    rng = np.random.default_rng(7)
    xs = [mg.Tensor(rng.standard_normal((10, 12)).astype(np.float32)) for _ in range(6)]
    ys = [mg.Tensor(rng.integers(0, 10, 10)) for _ in range(6)]
    ys[4].data[:3] = 3 if ignore_index == 3 else 0
    ys[5] = mg.Tensor(ys[5].data.astype(np.int32))
    runs = []
    for compiled in (False, True):
        net, step = _mlp_ce_step(ignore_index)
        fn = mg.compile(step) if compiled else step
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            losses = [fn(x, y).data.tobytes() for x, y in zip(xs, ys)]
            for bad in (10, -1, 2**40):
                y = ys[0].data.copy()
                y[2] = bad
                with pytest.raises(ValueError, match="target values must be in"):
                    fn(xs[0], mg.Tensor(y))
        runs.append((losses, {k: v.tobytes() for k, v in net.state_dict().items()}))
        if compiled:
            src = "".join(e.trace.src for entries in fn._cache.values() for e in entries)
            assert ("np.maximum.reduce" in src) == (ignore_index == -100)
    assert runs[0] == runs[1]
