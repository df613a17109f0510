"""Dense modules: Linear, and the shape and regularization modules around it (Identity, Flatten, Dropout,
Dropout2d).

Each owns its parameters and calls one functional from ``minigrad.nn.functional``. Initialization is PyTorch's:
``kaiming_uniform_(weight, a=sqrt(5))``, i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), for weight and bias alike
(Conv2d uses the same, from here).
"""
import math
import numbers

import numpy as np

from minigrad.kernels.rules import float_dtype
from minigrad.nn import functional as F
from minigrad.nn import init
from minigrad.nn.module import Module, Parameter, TableNames
from minigrad.tensor import Tensor


def _positive_int(cls, name, v):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
        raise ValueError(f"{cls}: {name} must be a positive integer, got {v!r}")
    return int(v)


def _reset_parameters(weight, bias):
    """PyTorch's default init of Linear and Conv2d: kaiming_uniform_(a=sqrt(5)) for the weight, which is
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for the bias."""
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = init._calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in)
        init.uniform_(bias, -bound, bound)


class Identity(Module):
    """Returns its input unchanged; any constructor arguments are ignored, as PyTorch's. A placeholder where a
    layer is optional (``nn.BatchNorm2d(c) if bn else nn.Identity()``).

    Shape: input ``(*)``, output ``(*)`` (the same tensor).
    """

    def __init__(self, *args: object, **kwargs: object):
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        """``x`` itself."""
        return x


class Linear(Module):
    r"""A fully connected layer: ``y = x W^T + b``.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        bias: learn an additive bias ``b`` (default True).
        dtype: float32 (default) or float64 parameters.

    Attributes:
        weight: ``(out_features, in_features)``, from ``U(-1/sqrt(in_features), 1/sqrt(in_features))``.
        bias: ``(out_features,)``, from the same distribution, or None.

    Shape:
        - input: ``(*, in_features)``, any number of leading dimensions.
        - output: ``(*, out_features)``.

    Example::

        >>> m = nn.Linear(20, 30)
        >>> m(minigrad.randn(128, 20)).shape
        (128, 30)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 dtype: np.dtype | type | str | None = None):
        super().__init__()
        self.in_features = _positive_int("Linear", "in_features", in_features)
        self.out_features = _positive_int("Linear", "out_features", out_features)
        self.weight = Parameter(np.empty((self.out_features, self.in_features), float_dtype(dtype)))
        if bias:
            self.bias = Parameter(np.empty(self.out_features, float_dtype(dtype)))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw weight and bias again from PyTorch's default distribution (see the class docstring)."""
        _reset_parameters(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        """``x W^T + b``."""
        state = self._table_state(_PLAIN_LINEAR, _LINEAR_STATE)  # NOTE: see Module._table_state
        if state is None:
            return F.linear(x, self.weight, self.bias)
        return F.linear(x, *state)

    def extra_repr(self) -> str:
        """The arguments shown by ``repr``."""
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


_PLAIN_LINEAR = frozenset((Linear,))
_LINEAR_STATE = TableNames(("weight", "bias"))


class Flatten(Module):
    """Merges the dimensions ``start_dim`` to ``end_dim`` (inclusive) into one; by default every dimension but
    the batch's.

    Shape: input ``(*, S_start, ..., S_end, *)``, output ``(*, S_start * ... * S_end, *)``; e.g. ``(N, C, H, W)``
    to ``(N, C*H*W)`` with the defaults.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        """``x`` with dimensions ``start_dim..end_dim`` merged."""
        return F.flatten(x, self.start_dim, self.end_dim)


class Dropout(Module):
    """Zeroes each element with probability ``p`` in training and scales the others by ``1 / (1 - p)``, so that
    the expected value is unchanged; the identity in eval mode.

    Args:
        p: probability of an element being zeroed, in [0, 1] (default 0.5).

    Shape: input ``(*)``, output ``(*)`` (the same shape).
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not isinstance(p, numbers.Real) or not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p!r}")
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` with a random mask applied in training, ``x`` in eval mode."""
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        """The arguments shown by ``repr``."""
        return f"p={self.p}"


class Dropout2d(Module):
    """Zeroes whole channels: in training each ``x[n, c]`` plane is zeroed with probability ``p`` and the kept
    ones are scaled by ``1 / (1 - p)``; the identity in eval mode.

    Args:
        p: probability of a channel being zeroed, in [0, 1] (default 0.5).
        inplace: accepted for PyTorch compatibility and ignored: the result is a new tensor.

    Shape: input ``(N, C, H, W)`` or ``(N, C, L)`` (a 3-d input is taken as batched, as PyTorch 2.13 does);
    output the same shape.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not isinstance(p, numbers.Real) or not 0 <= p <= 1:
            raise ValueError(f"Dropout2d: p must be in [0, 1], got {p!r}")
        if not isinstance(inplace, bool):
            raise TypeError(f"Dropout2d: inplace must be a bool, got {inplace!r}")
        self.p, self.inplace = float(p), inplace

    def forward(self, x: Tensor) -> Tensor:
        """``x`` with whole channels dropped in training, ``x`` in eval mode."""
        return F.dropout2d(x, self.p, self.training)

    def extra_repr(self) -> str:
        """The arguments shown by ``repr``."""
        return f"p={self.p}, inplace={self.inplace}"
