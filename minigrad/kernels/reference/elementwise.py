"""Reference elementwise kernels on flat arrays of M values: a residual block's add + ReLU, and the sigmoid.

    add:                y = X(a + b)                  one rounding per element (autograd's fan-out sums)
    add_relu_forward:   y = max(0, X(a + b))          the sum rounded to X, then the max; NaN stays NaN, -0 is +0
    add_relu_backward:  dx = dy * X([y > 0])          the product with 1 or 0, so an inf dy where y <= 0 gives NaN
    add_relu_backward_sum:
                        dx = X(dy0 + dy1) * X([y > 0])  the walk's fan-out sum of two gradients (dy0 first), then
                                                      add_relu_backward's product: the two steps' roundings
    sigmoid_forward:    y = 1/(1 + exp(-x)) in X      no cancellation on either side; where exp(-x) overflows, 0
    sigmoid_backward:   dx = dy*(1 - y)*y in X        left to right, PyTorch's sigmoid_backward order

They are the unfused pair's operations (``relu(a + b)``: the sum, then ``np.maximum`` with 0; the ReLU's backward
multiplies by its mask ``a + b > 0``, which is ``y > 0``), so a fused op built on them has the pair's bits.
The sigmoid's exp is each backend's own (NumPy's, libm's, or the compiled kernels' vector expf, all within 1 ulp),
so its forward agrees across backends within a couple of ulps, not bit for bit; its backward is bit for bit.
"""
import numpy as np


def add(y, a, b, n_threads=1):
    np.add(a, b, out=y)


def add_relu_forward(y, a, b, n_threads=1):
    np.add(a, b, out=y)
    np.maximum(y, np.zeros((), y.dtype), out=y)


def add_relu_backward(dx, dy, y, n_threads=1):
    np.multiply(dy, y > 0, out=dx)


def add_relu_backward_sum(dx, dy0, dy1, y, n_threads=1):
    np.add(dy0, dy1, out=dx)
    np.multiply(dx, y > 0, out=dx)


def sigmoid_forward(y, x, n_threads=1):
    with np.errstate(over="ignore"):
        np.negative(x, out=y)
        np.exp(y, out=y)
    y += y.dtype.type(1)
    np.reciprocal(y, out=y)


def sigmoid_backward(dx, dy, y, n_threads=1):
    one_minus = np.subtract(y.dtype.type(1), y)  # NOTE: a temporary, so that dx may be dy
    np.multiply(dy, one_minus, out=dx)
    np.multiply(dx, y, out=dx)
