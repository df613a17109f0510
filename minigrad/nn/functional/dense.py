"""Dense functionals: linear (one autograd node, ``x @ weight^T + bias``), dropout, flatten (``torch.nn.functional``
semantics). Not named linear.py: the function ``linear`` would shadow that module in ``minigrad.nn.functional``.
"""
import numbers

import numpy as np

from minigrad import random as _random
from minigrad.tensor import Function, Tensor

from .checks import check_tensor


def linear(input, weight, bias=None):
    """``y = x @ weight^T + bias``. Shape: x (*, in), weight (out, in), bias (out,), y (*, out)."""
    check_tensor("linear", input)
    if input.ndim < 1 or weight.ndim != 2:
        raise ValueError(f"linear: need input (*, in) and weight (out, in), got {input.shape} and {weight.shape}")
    if input.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input has {input.shape[-1]} features but weight expects {weight.shape[1]} "
                         f"(weight shape {weight.shape})")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias must have shape ({weight.shape[0]},), got {bias.shape}")
    if bias is None:
        return _Linear.apply(input, weight)
    return _Linear.apply(input, weight, bias)


class _Linear(Function):
    """One node for ``x @ weight^T + bias``. Backward, on x viewed as (M, in) and dy as (M, out):
        dx = dy @ weight        dweight = dy^T @ x        dbias = dy summed over M
    (the transposes are strided views: BLAS reads them with its transpose flag, nothing is copied)."""

    # x: (*, in), weight: (out, in), bias: (out,) -> y: (*, out)
    def forward(self, x, weight, *bias):
        y = np.matmul(x, weight.T)
        if bias:
            b = bias[0]
            if b.dtype == y.dtype and y.ndim:
                y += b
            else:  # NOTE: a wider bias promotes the output, as ``y + bias`` does
                y = y + b
        self.x, self.weight = x, weight
        return y

    def backward(self, dy):
        x, weight = self.x, self.weight
        need = self.needs_input_grad
        dy2 = dy.reshape(-1, weight.shape[0])
        dx = dweight = dbias = None
        if need[0]:
            dx = np.matmul(dy2, weight).reshape(x.shape)
        if need[1]:
            dweight = np.matmul(dy2.T, x.reshape(-1, weight.shape[1]))
        if len(need) > 2 and need[2]:
            dbias = dy2.sum(axis=0)
        return (dx, dweight, dbias)[:len(need)]

    def compose(self, x, weight, *bias):  # NOTE: the double backward (create_graph=True)
        y = x @ weight.transpose()
        return y + bias[0] if bias else y


def dropout(input, p=0.5, training=True, generator=None):
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``; identity when not training.
    The mask is drawn from ``generator`` or minigrad's default generator."""
    check_tensor("dropout", input)
    if not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p!r}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * Tensor(np.zeros((), input.dtype))
    gen = generator or _random.default_generator()
    mask = (gen.random(input.shape) >= p).astype(input.dtype) * input.dtype.type(1.0 / (1.0 - p))
    return input * Tensor(mask)


def flatten(input, start_dim=0, end_dim=-1):
    """Merge dims ``start_dim..end_dim`` (inclusive) into one."""
    if not isinstance(input, Tensor):
        raise TypeError(f"flatten: input must be a minigrad.Tensor, got {type(input).__name__}")
    nd = max(input.ndim, 1)
    s, e = start_dim % nd, end_dim % nd
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for {input.ndim} dims")
    return input.flatten(s, e)
