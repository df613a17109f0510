"""Reference elementwise kernels on flat arrays of M values: a residual block's add + ReLU.

    add_relu_forward:   y = max(0, X(a + b))          the sum rounded to X, then the max; NaN stays NaN, -0 is +0
    add_relu_backward:  dx = dy * X([y > 0])          the product with 1 or 0, so an inf dy where y <= 0 gives NaN

They are the unfused pair's operations (``relu(a + b)``: the sum, then ``np.maximum`` with 0; the ReLU's backward
multiplies by its mask ``a + b > 0``, which is ``y > 0``), so a fused op built on them has the pair's bits.
"""
import numpy as np


def add_relu_forward(y, a, b, n_threads=1):
    np.add(a, b, out=y)
    np.maximum(y, np.zeros((), y.dtype), out=y)


def add_relu_backward(dx, dy, y, n_threads=1):
    np.multiply(dy, y > 0, out=dx)
