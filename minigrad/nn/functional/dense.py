"""Dense functionals: linear (one autograd node, ``x @ weight^T + bias``), dropout, dropout2d, pad,
flatten (``torch.nn.functional`` semantics). Not named linear.py: the function ``linear`` would shadow that
module in ``minigrad.nn.functional``.
"""
import functools
import math
import numbers

import numpy as np

from minigrad import random as _random
from minigrad.tensor import Function, Reshape, ShapeError, Tensor, _host, cat

from .checks import check_tensor


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``y = x @ weight^T + bias``.

    Shape:
        - x (*, in), weight (out, in), bias (out,), y (*, out).
    """
    return _Linear.apply(*_linear_args("linear", input, weight, bias))


def _linear_args(fn, input, weight, bias):
    """linear's arguments checked, as the tensors of ``_Linear.apply`` (also linear_relu's)."""
    check_tensor(fn, input)
    # NOTE: the arrays' shapes, not Tensor's properties (called per layer per step)
    shape, wshape = input.data.shape, weight.data.shape
    if len(shape) < 1 or len(wshape) != 2:
        raise ValueError(f"{fn}: need input (*, in) and weight (out, in), got {shape} and {wshape}")
    if shape[-1] != wshape[1]:
        raise ValueError(f"{fn}: input has {shape[-1]} features but weight expects {wshape[1]} "
                         f"(weight shape {wshape})")
    if bias is not None and bias.data.shape != (wshape[0],):
        raise ValueError(f"{fn}: bias must have shape ({wshape[0]},), got {bias.shape}")
    return (input, weight) if bias is None else (input, weight, bias)


class _Linear(Function):
    """One node for ``x @ weight^T + bias``. Backward, on x viewed as (M, in) and dy as (M, out):
        dx = dy @ weight        dweight = dy^T @ x        dbias = dy summed over M
    (the transposes are strided views: BLAS reads them with its transpose flag, nothing is copied)."""

    # x: (*, in), weight: (out, in), bias: (out,) -> y: (*, out)
    def forward(self, x, weight, *bias, relu=False):
        y = np.matmul(x, weight.T)
        if bias:
            b = bias[0]
            if b.dtype == y.dtype and y.ndim:
                y += b
            else:  # NOTE: a wider bias promotes the output, as ``y + bias`` does
                y = y + b
        if relu:  # linear_relu, only where no gradient is needed: in place on the GEMM's output
            np.maximum(y, 0, out=y)
            return y
        self.x, self.weight = x, weight
        return y

    def backward(self, dy):
        x, weight = self.x, self.weight
        need = self.needs_input_grad
        # NOTE: a 2-D x (an MLP's layers) is its own (M, in) view and dy its own (M, out): no reshape calls (four a
        # layer, 0.2-0.3 us each); the same arrays reach the same GEMMs
        flat = x.ndim == 2 and dy.ndim == 2
        dy2 = dy if flat else dy.reshape(-1, weight.shape[0])
        dx = dweight = dbias = None
        if need[0]:
            dx = np.matmul(dy2, weight)
            if not flat:
                dx = dx.reshape(x.shape)
        if need[1]:
            dweight = np.matmul(dy2.T, x if flat else x.reshape(-1, weight.shape[1]))
        if len(need) > 2 and need[2]:
            dbias = np.add.reduce(dy2, axis=0)  # NOTE: dy2.sum(axis=0)'s call, without its Python frame
        return (dx, dweight, dbias)[:len(need)]

    def compose(self, x, weight, *bias):  # NOTE: the double backward (create_graph=True)
        y = x @ weight.transpose()
        return y + bias[0] if bias else y


def dropout(input: Tensor, p: float = 0.5, training: bool = True,
            generator: np.random.Generator | None = None) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``; identity when not training.
    The mask is drawn from ``generator`` or minigrad's default generator.

    Shape:
        - Input: ``(*)``, any shape
        - Output: the input's shape
    """
    check_tensor("dropout", input)
    if not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p!r}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * Tensor(np.zeros((), input.dtype))
    mask = _host(functools.partial(_dropout_mask, generator, input.shape, p, input.dtype))
    return input * Tensor(mask)


def _dropout_mask(generator, shape, p, dtype):
    """Keep (1 / (1 - p)) or drop (0) each element; the default generator is looked up when drawn (manual_seed
    replaces it), so that a minigrad.compile replay draws from the same stream as eager."""
    gen = generator or _random.default_generator()
    return (gen.random(shape) >= p).astype(dtype) * dtype.type(1.0 / (1.0 - p))


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims ``start_dim..end_dim`` (inclusive) into one.

    Shape:
        - Input: ``(*)``
        - Output: dims ``start_dim..end_dim`` of the input merged into one
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"flatten: input must be a minigrad.Tensor, got {type(input).__name__}")
    nd = max(input.ndim, 1)
    s, e = start_dim % nd, end_dim % nd
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for {input.ndim} dims")
    if input.ndim == 0 or type(s) is not int or type(e) is not int:
        return input.flatten(s, e)
    # NOTE: the reshape Tensor.flatten makes, without checking the dims a second time (called per forward)
    shape = input.shape
    return Reshape.apply(input, shape=shape[:s] + (math.prod(shape[s:e + 1]),) + shape[e + 1:])


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False,
              generator: np.random.Generator | None = None) -> Tensor:
    """Zero whole channels: each ``input[n, c]`` plane is kept with probability ``1 - p`` and scaled by
    ``1 / (1 - p)``, or zeroed; identity when not training. Input ``(N, C, H, W)`` or ``(C, H, W)``; a 3-d input is
    taken as ``(N, C, L)``, as PyTorch 2.13 does (it warns that this will change). ``inplace`` is accepted and
    ignored.

    Shape:
        - Input: ``(N, C, H, W)`` or ``(C, H, W)``
        - Output: the input's shape
    """
    check_tensor("dropout2d", input)
    if not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout2d: p must be in [0, 1], got {p!r}")
    if input.ndim not in (3, 4):
        raise ValueError(f"dropout2d: input must be 3-d or 4-d (N, C, H, W), got shape {input.shape}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * Tensor(np.zeros((), input.dtype))
    shape = input.shape[:2] + (1,) * (input.ndim - 2)  # one draw per (n, c), broadcast over the plane
    mask = _host(functools.partial(_dropout_mask, generator, shape, p, input.dtype))
    return input * Tensor(mask)


_PAD_MODES = ("constant", "reflect", "replicate")


def pad(input: Tensor, pad: tuple[int, ...] | list[int], mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad ``input`` by ``pad = (left_last, right_last, left_second_last, right_second_last, ...)``: pairs from
    the last dim backwards, as PyTorch. ``constant`` fills with ``value`` (0 when None) and accepts negative
    sizes (they crop); ``reflect`` mirrors without repeating the edge (each size < that dim); ``replicate``
    repeats the edge. ``reflect``/``replicate`` pad the last 1, 2 or 3 dims of a (C, ...) or (N, C, ...) input,
    as PyTorch. Built from slicing, index_select and cat, so autograd needs no kernel of its own.

    Shape:
        - Input: ``(*)``
        - Output: each padded dim grown by its two pad sizes
    """
    check_tensor("pad", input)
    if not isinstance(pad, (tuple, list)) or any(isinstance(v, bool) or not isinstance(v, numbers.Integral)
                                                  for v in pad):
        raise TypeError(f"pad: pad must be a tuple of ints, got {pad!r}")
    if len(pad) % 2:
        raise ShapeError(f"pad: pad length must be divisible by 2, got {len(pad)}")
    if len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: pad of length {len(pad)} pads {len(pad) // 2} dims, but input has {input.ndim}")
    if mode not in _PAD_MODES:
        raise NotImplementedError(f"pad: mode must be one of {_PAD_MODES}, got {mode!r}")
    k = len(pad) // 2
    pairs = [(int(pad[2 * i]), int(pad[2 * i + 1]), input.ndim - 1 - i) for i in range(k)]
    if mode == "constant":
        return _pad_constant(input, pairs, 0.0 if value is None else value)
    if value is not None and value != 0:
        raise ValueError(f"pad: value is only used with mode='constant', got value={value!r} with mode={mode!r}")
    if k not in (1, 2, 3) or input.ndim not in (k + 1, k + 2):
        raise NotImplementedError(f"pad: mode={mode!r} pads the last 1, 2 or 3 dims of a ({k + 1})- or "
                                  f"({k + 2})-d input; got pad of length {len(pad)} for shape {input.shape}")
    out = input
    for left, right, d in pairs:
        n = input.shape[d]
        if left < 0 or right < 0:
            raise ValueError(f"pad: mode={mode!r} needs non-negative pad sizes, got {tuple(pad)}")
        if mode == "reflect":
            if left >= n or right >= n:
                raise ShapeError(f"pad: reflect padding ({left}, {right}) must be less than the size {n} of dim {d}")
            idx = np.concatenate([np.arange(left, 0, -1), np.arange(n), np.arange(n - 2, n - 2 - right, -1)])
        else:
            if n == 0 and left + right:
                raise ValueError(f"pad: replicate padding needs a non-empty dim {d}, got shape {input.shape}")
            idx = np.concatenate([np.zeros(left, np.int64), np.arange(n), np.full(right, n - 1, np.int64)])
        if left or right:
            out = out.index_select(d, Tensor(idx.astype(np.int64)))
    return out


def _pad_constant(x, pairs, value):
    out = x
    for left, right, d in pairs:
        crop = [slice(None)] * out.ndim
        crop[d] = slice(max(-left, 0), out.shape[d] - max(-right, 0))
        if left < 0 or right < 0:
            if out.shape[d] + min(left, 0) + min(right, 0) < 0:
                raise ValueError(f"pad: negative padding ({left}, {right}) removes more than the size "
                                 f"{out.shape[d]} of dim {d}")
            out = out[tuple(crop)]
        parts = []
        for size in (max(left, 0), max(right, 0)):
            shape = list(out.shape)
            shape[d] = size
            parts.append(Tensor(np.full(shape, value, out.dtype)) if size else None)
        pieces = [t for t in (parts[0], out, parts[1]) if t is not None]
        if len(pieces) > 1:
            out = cat(pieces, dim=d)
    return out
