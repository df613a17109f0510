"""Gradient utilities: ``clip_grad_norm_``."""
import numpy as np

from minigrad.tensor import Tensor, _not_replayable


def clip_grad_norm_(parameters, max_norm, norm_type=2.0):
    """Scale all gradients in place so that their joint norm is at most ``max_norm``; returns the norm before
    clipping (a float). As PyTorch: ``total = norm of the per-parameter norms``, ``coef = min(1, max_norm /
    (total + 1e-6))``, every gradient multiplied by ``coef``. ``norm_type`` may be ``float('inf')``."""
    # NOTE: the norm is a Python float, read from the gradients: a step compiled by minigrad.compile that clips runs
    # eagerly (a replay could not give the caller each step's norm)
    _not_replayable("clip_grad_norm_ returns the gradients' norm as a Python float")
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grads = [p.grad.data for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    norm_type = float(norm_type)
    if norm_type == np.inf:
        total = max(float(np.abs(g).max()) if g.size else 0.0 for g in grads)
    else:
        norms = [np.linalg.norm(g.reshape(-1).astype(np.float64), norm_type) for g in grads]
        total = float(np.linalg.norm(np.asarray(norms), norm_type))
    coef = min(1.0, float(max_norm) / (total + 1e-6))
    for g in grads:
        g *= g.dtype.type(coef)
    return total
