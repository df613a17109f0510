"""Numba kernels: the optimizer updates (the rules, rounding by rounding: minigrad/kernels/reference/optim.py).

Every hyperparameter is rounded to X first (``common._in_x``); elementwise loops, no fast-math: the same operations
in the same order as the reference, so the same bits.
"""
import math

import numpy as np
from numba import njit, prange

from .common import _in_x, _threads

@njit(parallel=True, cache=True)
def _sgd_update(p, buf, grad, c, has_wd, has_damp, nesterov, first):
    wd, mom, keep, lr = c[0], c[1], c[2], c[3]
    for i in prange(p.shape[0]):
        g = grad[i] + wd * p[i] if has_wd else grad[i]
        if first:
            b = g
        else:
            b = buf[i] * mom
            b = b + keep * g if has_damp else b + g
        buf[i] = b
        s = g + mom * b if nesterov else b
        p[i] = p[i] - s * lr


def sgd_update(param, momentum_buffer, grad, lr, momentum, dampening, weight_decay, nesterov, first, n_threads):
    _threads(n_threads)
    c = _in_x(param, np.array([weight_decay, momentum, 1 - dampening, lr]))
    _sgd_update(param, momentum_buffer, grad, c, bool(weight_decay), bool(dampening), bool(nesterov), bool(first))


def sgd_update_many(params, momentum_buffers, grads, lr, momentum, dampening, weight_decay, nesterov, first,
                    n_threads):
    """sgd_update on each group in turn (a tuple of arrays of several sizes and dtypes is no Numba type)."""
    for param, momentum_buffer, grad in zip(params, momentum_buffers, grads):
        sgd_update(param, momentum_buffer, grad, lr, momentum, dampening, weight_decay, nesterov, first, n_threads)


@njit(parallel=True, cache=True)
def _adam_update(p, m, v, grad, c, decoupled, has_wd):
    decay, wd, keep1, beta2, keep2, bc2, eps, step_size = c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]
    for i in prange(p.shape[0]):
        p0 = p[i] * decay if decoupled else p[i]
        g = grad[i] + wd * p0 if has_wd else grad[i]
        mi = m[i] + keep1 * (g - m[i])
        vi = v[i] * beta2
        vi = vi + keep2 * g * g
        m[i] = mi
        v[i] = vi
        p[i] = p0 - step_size * mi / (np.sqrt(vi) / bc2 + eps)


def adam_update(param, exp_avg, exp_avg_sq, grad, lr, beta1, beta2, eps, weight_decay, decoupled, step, n_threads):
    _threads(n_threads)
    c = _in_x(param, np.array([1 - lr * weight_decay, weight_decay, 1 - beta1, beta2, 1 - beta2,
                               math.sqrt(1 - beta2 ** step), eps, lr / (1 - beta1 ** step)]))
    _adam_update(param, exp_avg, exp_avg_sq, grad, c, bool(decoupled), bool(weight_decay) and not decoupled)
