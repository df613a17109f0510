"""Numba kernels: a residual block's add + ReLU, and the sigmoid, on flat arrays (the rules:
minigrad/kernels/reference/elementwise.py).
Elementwise loops, no fast-math: the same operations as the reference, so the same bits (but the sigmoid's exp, LLVM's
libm call, within 1 ulp as NumPy's is)."""
import numpy as np
from numba import njit, prange

from .common import _threads


@njit(parallel=True, cache=True)
def _add(y, a, b):
    for i in prange(y.shape[0]):
        y[i] = a[i] + b[i]


@njit(parallel=True, cache=True)
def _add_relu_forward(y, a, b):
    for i in prange(y.shape[0]):
        s = a[i] + b[i]
        y[i] = s if (s > 0 or s != s) else 0  # NOTE: NaN stays NaN, -0.0 becomes +0, as np.maximum(s, 0)


@njit(parallel=True, cache=True)
def _add_relu_backward(dx, dy, y):
    for i in prange(dx.shape[0]):
        dx[i] = dy[i] * (1 if y[i] > 0 else 0)


@njit(parallel=True, cache=True)
def _add_relu_backward_sum(dx, dy0, dy1, y):
    for i in prange(dx.shape[0]):
        s = dy0[i] + dy1[i]  # NOTE: rounded to X here (float32 + float32 stays float32), as the walk's sum
        dx[i] = s * (1 if y[i] > 0 else 0)


def add(y, a, b, n_threads):
    _threads(n_threads)
    _add(y, a, b)


def add_relu_forward(y, a, b, n_threads):
    _threads(n_threads)
    _add_relu_forward(y, a, b)


def add_relu_backward(dx, dy, y, n_threads):
    _threads(n_threads)
    _add_relu_backward(dx, dy, y)


def add_relu_backward_sum(dx, dy0, dy1, y, n_threads):
    _threads(n_threads)
    _add_relu_backward_sum(dx, dy0, dy1, y)


@njit(parallel=True, cache=True, error_model="numpy")
def _sigmoid_forward(y, x, one):
    for i in prange(y.shape[0]):
        y[i] = one / (one + np.exp(-x[i]))  # NOTE: exp overflows to inf for x < -88 (float32): y = 0


@njit(parallel=True, cache=True)
def _sigmoid_backward(dx, dy, y, one):
    for i in prange(dx.shape[0]):
        dx[i] = dy[i] * (one - y[i]) * y[i]  # NOTE: one in X, so that float32 stays float32 (no float64 detour)


def sigmoid_forward(y, x, n_threads):
    _threads(n_threads)
    _sigmoid_forward(y, x, y.dtype.type(1))


def sigmoid_backward(dx, dy, y, n_threads):
    _threads(n_threads)
    _sigmoid_backward(dx, dy, y, dx.dtype.type(1))
