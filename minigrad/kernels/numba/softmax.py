"""Numba kernels: log_softmax on the rows layout x: (R, D), and cross entropy's pair on it (formulas:
minigrad/kernels/reference/softmax.py)."""
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


# ---------------------------------------------------------------------------------------------------------
# cross entropy at class indices target: (R,), rows layout: the log_softmax rows above with the gather (forward) and
# the one-hot dy (backward) in the same loop, as the Cython kernels


@njit(parallel=True, cache=True)
def _cross_entropy_forward(logp, picked, x, target):
    D = x.shape[1]
    for r in prange(x.shape[0]):
        m = np.float64(x[r, 0])
        for j in range(1, D):
            if x[r, j] > m:
                m = np.float64(x[r, j])
        s = 0.0
        for j in range(D):
            s += np.exp(np.float64(x[r, j]) - m)
        log_s = np.log(s)
        for j in range(D):
            logp[r, j] = (np.float64(x[r, j]) - m) - log_s
        t = target[r]
        picked[r] = np.float64(logp[r, t]) if 0 <= t < D else np.nan


@njit(parallel=True, cache=True)
def _cross_entropy_backward(dx, logp, target, v):
    D = logp.shape[1]
    for r in prange(logp.shape[0]):
        t = target[r]
        s = 0.0
        if 0 <= t < D:
            s += np.float64(v)
        for j in range(D):
            d = np.float64(v) if j == t else 0.0  # NOTE: v is X's already: exact in double
            dx[r, j] = d - np.exp(np.float64(logp[r, j])) * s


def cross_entropy_forward(logp, picked, x, target, n_threads):
    """logp = log_softmax(x); picked[r] = logp[r, target[r]] in float64 (NaN for a target outside [0, D))."""
    if x.size == 0:
        return
    _threads(n_threads)
    _cross_entropy_forward(logp, picked, x, target)


def cross_entropy_backward(dx, logp, target, scale, n_threads):
    """log_softmax_backward(dx, dy, logp) for dy = X(scale) at (r, target[r]) and 0 elsewhere."""
    if logp.size == 0:
        return
    _threads(n_threads)
    _cross_entropy_backward(dx, logp, target, logp.dtype.type(scale))
