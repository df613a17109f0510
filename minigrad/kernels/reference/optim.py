"""NumPy reference: the optimizer updates (SGD, Adam/AdamW), the rules every backend repeats rounding by
rounding. Conventions: ``minigrad.kernels.reference``."""
import math

import numpy as np

# ----------------------------------------------------------------------------------------------------------
# optimizer updates, a flattened parameter p: (M,) and its state, updated in place, in X precision.
# Each line is one NumPy operation on X arrays with the hyperparameters rounded to X first (NumPy's rule for a
# Python float with an X array), so the compiled backends, which repeat the same operations in the same order,
# give the same bits. The rules are PyTorch's (torch.optim, foreach off).


def sgd_update(param, momentum_buffer, grad, lr, momentum, dampening, weight_decay, nesterov, first, n_threads=1):
    """One SGD step with momentum:
        g = grad + weight_decay*p
        buf = g (first step), else momentum*buf + (1 - dampening)*g
        p -= lr*(g + momentum*buf if nesterov else buf)"""
    g = grad + weight_decay * param if weight_decay else grad
    buf = momentum_buffer
    if first:
        buf[...] = g
    else:
        buf *= momentum
        buf += (1 - dampening) * g if dampening else g  # NOTE: (1 - 0)*g == g exactly
    step = g + momentum * buf if nesterov else buf
    param -= step * lr


def sgd_update_many(params, momentum_buffers, grads, lr, momentum, dampening, weight_decay, nesterov, first,
                    n_threads=1):
    """``sgd_update`` on each (params[i], momentum_buffers[i], grads[i]) in turn (tuples of flat arrays)."""
    for param, momentum_buffer, grad in zip(params, momentum_buffers, grads):
        sgd_update(param, momentum_buffer, grad, lr, momentum, dampening, weight_decay, nesterov, first)


def adam_update(param, exp_avg, exp_avg_sq, grad, lr, beta1, beta2, eps, weight_decay, decoupled, step,
                n_threads=1):
    """One Adam step (step counts from 1); AdamW when ``decoupled``:
        p *= 1 - lr*weight_decay (decoupled)      or   g = grad + weight_decay*p (L2)
        m += (1 - beta1)*(g - m)                        (PyTorch's lerp)
        v = beta2*v + (1 - beta2)*g*g
        p -= lr/(1 - beta1^step) * m / (sqrt(v)/sqrt(1 - beta2^step) + eps)"""
    g = grad
    if decoupled:
        param *= 1 - lr * weight_decay
    elif weight_decay:
        g = grad + weight_decay * param
    exp_avg += (1 - beta1) * (g - exp_avg)
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * g * g
    # NOTE: math.sqrt, a Python float: NumPy rounds it to X (np.sqrt would give a float64 scalar, which promotes)
    denom = np.sqrt(exp_avg_sq) / math.sqrt(1 - beta2 ** step) + eps
    param -= lr / (1 - beta1 ** step) * exp_avg / denom
