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
