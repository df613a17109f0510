"""Ghost batch norm's and Batch Renorm's backward call their kernel unchecked (minigrad/nn/functional/norm.py,
``_SMALL_GHOST_BACKWARD``'s note): the active backend's own function, with the thread count the contract's checked
call passes for the size, and the gradients the checked call gives."""
import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from conftest import BACKENDS
from minigrad import kernels
from minigrad.kernels import contract

KERNELS = {"ghost": "ghost_batch_norm_backward", "renorm": "batch_norm_backward"}


def _forward(method, x, w, b):
    if method == "ghost":
        return F.batch_norm(x, None, None, w, b, True, 0.1, 1e-5, virtual_batch_size=2)
    c = x.shape[1]
    rm, rv = mg.Tensor(np.full(c, 0.1, x.dtype)), mg.Tensor(np.full(c, 1.5, x.dtype))
    return F.batch_renorm(x, rm, rv, w, b, True, 0.1, 1e-5, 1.5, 0.5)


def _leaves(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    c = shape[1]
    return (mg.Tensor((rng.standard_normal(shape) * 2 + 0.5).astype(dtype), requires_grad=True),
            mg.Tensor((1 + 0.1 * rng.standard_normal(c)).astype(dtype), requires_grad=True),
            mg.Tensor((0.1 * rng.standard_normal(c)).astype(dtype), requires_grad=True),
            rng.standard_normal(shape).astype(dtype))


def _spy(monkeypatch, module, kernel, calls):
    raw = getattr(module, kernel)

    def spy(*args, **options):  # NOTE: Batch Renorm's r and d come as keywords after n_threads
        calls.append((module, args[-1]))
        return raw(*args, **options)
    monkeypatch.setattr(module, kernel, spy)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("method", ["ghost", "renorm"])
def test_backward_passes_the_contracts_thread_count(monkeypatch, method, threads):
    kernel = KERNELS[method]
    small = contract.small(kernel)
    prev = mg.get_num_threads()
    mg.set_num_threads(threads)
    try:
        with kernels.using_backend("cython"):
            module = kernels.kernels().module
            calls = []
            _spy(monkeypatch, module, kernel, calls)
            # NOTE: below and above the size where the checked call goes from one thread to get_num_threads()
            for shape in [(4, 3, 5), (4, 2, -(-small // 8))]:
                x, w, b, dy = _leaves(shape, np.float32)
                _forward(method, x, w, b).backward(dy)
                assert calls[-1] == (module, 1 if x.data.size < small else threads), shape
    finally:
        mg.set_num_threads(prev)
    assert len(calls) == 2


@pytest.mark.parametrize("method", ["ghost", "renorm"])
def test_backward_runs_the_active_backends_kernel(monkeypatch, method):
    """The forward under one backend, the backward under another: the backward's kernel is the active backend's."""
    kernel = KERNELS[method]
    for fwd, bwd in zip(BACKENDS, BACKENDS[1:] + BACKENDS[:1]):
        x, w, b, dy = _leaves((4, 3, 5), np.float64)
        calls = []
        with kernels.using_backend(bwd):
            _spy(monkeypatch, kernels.kernels().module, kernel, calls)
            want = kernels.kernels().module
        with kernels.using_backend(fwd):
            y = _forward(method, x, w, b)
        with kernels.using_backend(bwd):
            y.backward(dy)
        assert [m for m, _ in calls] == [want], (fwd, bwd)
        monkeypatch.undo()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("method", ["ghost", "renorm"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_backward_gives_the_checked_calls_gradients(backend, method, dtype):
    """The node's gradients against the same kernel called through the contract's checked entry on the node's
    arrays, bit for bit."""
    x, w, b, dy = _leaves((6, 3, 2, 5), dtype, seed=1)
    with kernels.using_backend(backend):
        y = _forward(method, x, w, b)
        node = y._ctx  # NOTE: before the walk frees it
        y.backward(dy)
        x3, c = node.x3, node.x3.shape[1]
        dx, dweight, dbias = np.empty_like(x3), np.empty(c, dtype), np.empty(c, dtype)
        dy3 = dy.reshape(x3.shape)
        if method == "ghost":
            kernels.kernels().ghost_batch_norm_backward(dx, dweight, dbias, dy3, x3, node.mean, node.rstd, node.w,
                                                        node.chunk)
        else:
            kernels.kernels().batch_norm_backward(dx, dweight, dbias, dy3, x3, node.mean[0], node.rstd[0],
                                                  (node.w * node.r).astype(dtype))
            dweight = (node.r * dweight + node.d * dbias).astype(dtype)
    np.testing.assert_array_equal(x.grad.data, dx.reshape(x.shape))
    np.testing.assert_array_equal(w.grad.data, dweight)
    np.testing.assert_array_equal(b.grad.data, dbias)
