"""Batch norm forward + backward allocates nothing of input size beyond its outputs y and dx (traced with
tracemalloc; NumPy reports its data buffers to it)."""
import tracemalloc

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F


def test_batch_norm_forward_backward_allocates_only_y_and_dx():
    if "cython" not in mg.available_backends():
        pytest.skip("the cython backend is not built")
    shape = (32, 64, 28, 28)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)
    dy = rng.standard_normal(shape, dtype=np.float32)
    c = shape[1]
    with mg.using_backend("cython"):
        xt = mg.Tensor(x, requires_grad=True)
        w, b = mg.Tensor(np.ones(c, np.float32), requires_grad=True), mg.Tensor(np.zeros(c, np.float32),
                                                                                requires_grad=True)
        F.batch_norm(xt, None, None, w, b, training=True).backward(dy)  # warm up: imports, caches
        xt.grad = w.grad = b.grad = None
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            y = F.batch_norm(xt, None, None, w, b, training=True)
            y.backward(dy)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert xt.grad is not None
    assert peak < 2.2 * x.nbytes, f"peak traced allocation {peak / x.nbytes:.2f} x |x| (want < 2.2: y and dx)"


def _eval_peak(backward, contiguous=True):
    """Peak traced allocation of eval-mode batch norm (BatchNorm2d.eval(), grads on) over |x|."""
    shape = (32, 64, 28, 28)
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape, dtype=np.float32)
    dy = rng.standard_normal(shape, dtype=np.float32)
    with mg.using_backend("cython"):
        bn = mg.nn.BatchNorm2d(shape[1])
        bn.running_mean.data[:] = rng.standard_normal(shape[1]).astype(np.float32)
        bn.running_var.data[:] = rng.random(shape[1]).astype(np.float32) + 0.5
        bn.eval()
        xt = mg.Tensor(x, requires_grad=True)
        bn(xt).backward(dy)  # warm up
        xt.grad = bn.weight.grad = bn.bias.grad = None
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            y = bn(xt)
            if backward:
                y.backward(dy)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert y.shape == shape and (not backward or xt.grad is not None and bn.weight.grad is not None)
    return peak / x.nbytes


def test_batch_norm_eval_allocates_only_its_outputs():
    """Eval mode allocated 4x |x| over forward and backward (xhat and dy*xhat as temporaries beside y and dx);
    now y in forward and dx in backward (dweight's product is formed in dx's buffer)."""
    if "cython" not in mg.available_backends():
        pytest.skip("the cython backend is not built")
    forward, both = _eval_peak(False), _eval_peak(True)
    assert forward < 1.1, f"eval forward peaks at {forward:.2f} x |x| (want < 1.1: y)"
    assert both < 2.2, f"eval forward + backward peaks at {both:.2f} x |x| (want < 2.2: y and dx)"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_eval_gradients_keep_their_bits(dtype):
    """The buffer reuse above changed no bit: the gradients equal the composition eval mode computed before, in
    the same dtype and order (xhat = (x - mean)*rstd, dweight = sum(dy*xhat) in float64, dx = dy*rstd*w)."""
    rng = np.random.default_rng(2)
    x = np.asfortranarray(rng.standard_normal((6, 5, 7, 3)) * 3 + 1).astype(dtype)  # non-contiguous input too
    dy = rng.standard_normal(x.shape).astype(dtype)
    w, b = rng.standard_normal(5).astype(dtype), rng.standard_normal(5).astype(dtype)
    rm, rv, eps = rng.standard_normal(5).astype(dtype), (rng.random(5) + 0.1).astype(dtype), 1e-5
    xt, wt, bt = (mg.Tensor(a, requires_grad=True) for a in (x, w, b))
    F.batch_norm(xt, mg.Tensor(rm), mg.Tensor(rv), wt, bt, training=False, eps=eps).backward(dy)
    rstd = 1.0 / np.sqrt(rv.astype(np.float64) + eps)
    x3, dy3 = np.ascontiguousarray(x).reshape(6, 5, 21), dy.reshape(6, 5, 21)
    xhat = (x3 - rm.astype(np.float64)[None, :, None].astype(dtype)) * rstd[None, :, None].astype(dtype)
    want_dw = (dy3 * xhat).sum(axis=(0, 2), dtype=np.float64).astype(dtype)
    want_dx = (dy3 * (rstd * w).astype(dtype)[None, :, None]).reshape(x.shape)
    assert np.array_equal(wt.grad.numpy(), want_dw) and np.array_equal(xt.grad.numpy(), want_dx)
    assert np.array_equal(bt.grad.numpy(), dy3.sum(axis=(0, 2), dtype=np.float64).astype(dtype))
