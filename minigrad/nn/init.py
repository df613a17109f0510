"""Parameter initializers with PyTorch's formulas (``torch.nn.init``), in place on a Tensor's data.

fan_in = size(1) * receptive field, fan_out = size(0) * receptive field (receptive field = prod(shape[2:])).
  kaiming_uniform_: U(-b, b), b = gain * sqrt(3 / fan)      kaiming_normal_: N(0, (gain / sqrt(fan))^2)
  xavier_uniform_:  U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))
  xavier_normal_:   N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out))
Draws come from ``generator`` or minigrad's default generator, in float64, then cast to the tensor's dtype.
"""
import math
import numbers

import numpy as np

from minigrad import random as _random


def _gen(generator):
    return generator or _random.default_generator()


def _fill(tensor, values):
    tensor.data[...] = np.asarray(values).astype(tensor.data.dtype, copy=False)
    return tensor


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for ``nonlinearity`` (PyTorch's table)."""
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                        "conv_transpose3d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, numbers.Real):
            raise ValueError(f"calculate_gain: negative_slope {slope!r} is not a number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor):
    if tensor.ndim < 2:
        raise ValueError(f"fan in and fan out need a tensor with at least 2 dims, got shape {tensor.shape}")
    receptive = int(np.prod(tensor.shape[2:])) if tensor.ndim > 2 else 1
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fan(tensor, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """Fill ``tensor`` in place with draws from ``U(a, b)``; returns it."""
    return _fill(tensor, _gen(generator).uniform(a, b, tensor.shape))


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """Fill ``tensor`` in place with draws from ``N(mean, std^2)``; returns it."""
    return _fill(tensor, _gen(generator).normal(mean, std, tensor.shape))


def constant_(tensor, val):
    """Fill ``tensor`` in place with ``val``; returns it."""
    tensor.data[...] = val
    return tensor


def zeros_(tensor):
    """Fill ``tensor`` in place with 0; returns it."""
    return constant_(tensor, 0)


def ones_(tensor):
    """Fill ``tensor`` in place with 1; returns it."""
    return constant_(tensor, 1)


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He et al. (2015) uniform init, in place: ``U(-b, b)`` with ``b = gain * sqrt(3 / fan)``, where ``gain =
    calculate_gain(nonlinearity, a)`` and ``fan`` is fan_in or fan_out by ``mode``; returns ``tensor``.
    ``a`` is the negative slope of a leaky ReLU (``a = sqrt(5)`` gives PyTorch's default Linear/Conv init).
    """
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(tensor, mode))
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He et al. (2015) normal init, in place: ``N(0, std^2)`` with ``std = gain / sqrt(fan)`` (see
    ``kaiming_uniform_`` for ``gain``, ``fan`` and ``a``); returns ``tensor``.
    """
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return normal_(tensor, 0.0, std, generator)


def xavier_uniform_(tensor, gain=1.0, generator=None):
    """Glorot & Bengio (2010) uniform init, in place: ``U(-a, a)`` with
    ``a = gain * sqrt(6 / (fan_in + fan_out))``; returns ``tensor``.
    """
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    """Glorot & Bengio (2010) normal init, in place: ``N(0, std^2)`` with
    ``std = gain * sqrt(2 / (fan_in + fan_out))``; returns ``tensor``.
    """
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)
