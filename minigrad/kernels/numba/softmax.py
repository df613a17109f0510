"""Numba kernels: log_softmax on the rows layout x: (R, D) (formula: minigrad/kernels/reference/softmax.py)."""
import numpy as np
from numba import njit, prange

from .common import _threads

# ---------------------------------------------------------------------------------------------------------
# log_softmax, rows layout x: (R, D)


@njit(parallel=True, cache=True)
def _log_softmax_forward(y, x):
    for r in prange(x.shape[0]):
        m = np.float64(x[r, 0])
        for j in range(1, x.shape[1]):
            if x[r, j] > m:  # NOTE: a NaN never wins here, but makes the sum NaN below: the row is NaN
                m = np.float64(x[r, j])
        s = 0.0
        for j in range(x.shape[1]):
            s += np.exp(np.float64(x[r, j]) - m)
        log_s = np.log(s)
        for j in range(x.shape[1]):
            y[r, j] = (np.float64(x[r, j]) - m) - log_s


@njit(parallel=True, cache=True)
def _log_softmax_backward(dx, dy, y):
    for r in prange(dy.shape[0]):
        s = 0.0
        for j in range(dy.shape[1]):
            s += dy[r, j]
        for j in range(dy.shape[1]):
            dx[r, j] = np.float64(dy[r, j]) - np.exp(np.float64(y[r, j])) * s


def log_softmax_forward(y, x, n_threads):
    """y = x - max - log(sum(exp(x - max))) per row."""
    if x.size == 0:
        return
    _threads(n_threads)
    _log_softmax_forward(y, x)


def log_softmax_backward(dx, dy, y, n_threads):
    """dx = dy - exp(y)*sum(dy) per row."""
    if dy.size == 0:
        return
    _threads(n_threads)
    _log_softmax_backward(dx, dy, y)
