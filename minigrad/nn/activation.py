"""Activation modules: ReLU, LeakyReLU, ELU, SiLU, Sigmoid, Tanh, GELU (elementwise), Softmax and LogSoftmax
(along one dim).

Shape (all of them): input ``(*)``, any shape; output ``(*)``, the same shape. ``inplace=True`` is accepted
wherever PyTorch accepts it and does nothing: the result is always a new tensor (the input is left as it was).
"""
from minigrad.nn import functional as F
from minigrad.nn.module import Module
from minigrad.tensor import Tensor


def _inplace(cls, flag):
    if not isinstance(flag, bool):
        raise TypeError(f"{cls}: inplace must be a bool, got {flag!r}")
    return flag


def _softmax_dim(cls, dim, ndim):
    # NOTE: PyTorch's legacy rule for dim=None (it warns): dim 0 for 0-, 1- and 3-d input, else dim 1
    if dim is None:
        return 0 if ndim in (0, 1, 3) else 1
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"{cls}: dim must be an int or None, got {dim!r}")
    return dim


class ReLU(Module):
    r"""The rectified linear unit, elementwise: ``ReLU(x) = max(0, x)``.

    Its gradient at ``x = 0`` is 0, as PyTorch's.

    Args:
        inplace: accepted for PyTorch compatibility and ignored: the result is a new tensor, the input is
            unchanged (default False).

    Shape: input ``(*)``, output ``(*)`` (the same shape).

    Example::

        >>> m = nn.ReLU()
        >>> y = m(minigrad.randn(2, 3))
    """

    is_plain_relu = True  # nn.Sequential fuses a BatchNorm followed by this class (not its subclasses)

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = _inplace("ReLU", inplace)

    def forward(self, x: Tensor) -> Tensor:
        """``max(0, x)`` elementwise."""
        return x.relu()

    def extra_repr(self) -> str:
        """The arguments shown by ``repr``."""
        return "inplace=True" if self.inplace else ""


class Sigmoid(Module):
    r"""The logistic sigmoid, elementwise: ``Sigmoid(x) = 1 / (1 + exp(-x))``.

    Shape: input ``(*)``, output ``(*)`` (the same shape).
    """

    # NOTE: nn.Sequential runs a BatchNorm followed by this class (not its subclasses) as one node, the BatchNorm's
    # forward_activation (F.batch_norm_sigmoid: the pair's bits)
    plain_activation = "sigmoid"

    def forward(self, x: Tensor) -> Tensor:
        """``1 / (1 + exp(-x))`` elementwise."""
        return x.sigmoid()


class Tanh(Module):
    r"""The hyperbolic tangent, elementwise: ``Tanh(x) = (exp(x) - exp(-x)) / (exp(x) + exp(-x))``.

    Shape: input ``(*)``, output ``(*)`` (the same shape).
    """

    plain_activation = "tanh"  # NOTE: as Sigmoid's (F.batch_norm_tanh)

    def forward(self, x: Tensor) -> Tensor:
        """``tanh(x)`` elementwise."""
        return x.tanh()


class GELU(Module):
    r"""The Gaussian error linear unit, elementwise: ``GELU(x) = x * Phi(x)``, where ``Phi`` is the standard
    normal CDF, ``Phi(x) = (1 + erf(x / sqrt 2)) / 2``.

    Args:
        approximate: ``"none"`` (default) for the exact form; ``"tanh"`` for
            ``0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))``, as PyTorch.

    Shape: input ``(*)``, output ``(*)`` (the same shape).
    """

    def __init__(self, approximate: str = "none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        """``x * Phi(x)`` elementwise (see the class docstring)."""
        return F.gelu(x, self.approximate)


class LeakyReLU(Module):
    r"""``LeakyReLU(x) = x`` for ``x > 0``, else ``negative_slope * x``, elementwise. The gradient at 0 is
    ``negative_slope``, as PyTorch's.

    Args:
        negative_slope: the slope for negative input (default 0.01).
        inplace: accepted and ignored (see the module docstring).

    Shape: input ``(*)``, output ``(*)`` (the same shape).
    """

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, _inplace("LeakyReLU", inplace)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` or ``negative_slope * x`` elementwise."""
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        """The arguments shown by ``repr``."""
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class ELU(Module):
    r"""The exponential linear unit: ``ELU(x) = x`` for ``x > 0``, else ``alpha * (exp(x) - 1)``, elementwise.

    Args:
        alpha: the negative saturation value is ``-alpha`` (default 1.0).
        inplace: accepted and ignored (see the module docstring).

    Shape: input ``(*)``, output ``(*)`` (the same shape).
    """

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha, self.inplace = alpha, _inplace("ELU", inplace)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` or ``alpha * (exp(x) - 1)`` elementwise."""
        return F.elu(x, self.alpha)

    def extra_repr(self) -> str:
        """The arguments shown by ``repr``."""
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class SiLU(Module):
    r"""The sigmoid linear unit (swish): ``SiLU(x) = x * sigmoid(x)``, elementwise.

    Args:
        inplace: accepted and ignored (see the module docstring).

    Shape: input ``(*)``, output ``(*)`` (the same shape).
    """

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = _inplace("SiLU", inplace)

    def forward(self, x: Tensor) -> Tensor:
        """``x * sigmoid(x)`` elementwise."""
        return F.silu(x)

    def extra_repr(self) -> str:
        """The arguments shown by ``repr``."""
        return "inplace=True" if self.inplace else ""


class Softmax(Module):
    r"""``Softmax(x)_i = exp(x_i) / sum_j exp(x_j)`` along ``dim``: each slice along ``dim`` sums to 1.

    Args:
        dim: the dim to normalize. ``None`` (PyTorch's deprecated default) picks dim 0 for 0-, 1- and 3-d
            input and dim 1 otherwise, as PyTorch.

    Shape: input ``(*)``, output ``(*)`` (the same shape).
    """

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = _softmax_dim("Softmax", dim, 0) if dim is not None else None

    def forward(self, x: Tensor) -> Tensor:
        """``exp(x) / sum(exp(x))`` along ``dim``."""
        return F.softmax(x, _softmax_dim("Softmax", self.dim, x.ndim))

    def extra_repr(self) -> str:
        """The arguments shown by ``repr``."""
        return f"dim={self.dim}"


class LogSoftmax(Module):
    r"""``LogSoftmax(x)_i = x_i - log sum_j exp(x_j)`` along ``dim``, computed stably. Put it before ``NLLLoss``
    (``CrossEntropyLoss`` is the two in one).

    Args:
        dim: the dim to normalize; ``None`` as in ``Softmax``.

    Shape: input ``(*)``, output ``(*)`` (the same shape).
    """

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = _softmax_dim("LogSoftmax", dim, 0) if dim is not None else None

    def forward(self, x: Tensor) -> Tensor:
        """``x - logsumexp(x)`` along ``dim``."""
        return F.log_softmax(x, _softmax_dim("LogSoftmax", self.dim, x.ndim))

    def extra_repr(self) -> str:
        """The arguments shown by ``repr``."""
        return f"dim={self.dim}"
