"""Activation modules: ReLU, Sigmoid, Tanh, GELU. Each applies its function elementwise.

Shape (all of them): input ``(*)``, any shape; output ``(*)``, the same shape.
"""
from minigrad.nn import functional as F
from minigrad.nn.module import Module
from minigrad.tensor import Tensor


class ReLU(Module):
    r"""The rectified linear unit, elementwise: ``ReLU(x) = max(0, x)``.

    Its gradient at ``x = 0`` is 0, as PyTorch's.

    Shape: input ``(*)``, output ``(*)`` (the same shape).

    Example::

        >>> m = nn.ReLU()
        >>> y = m(minigrad.randn(2, 3))
    """

    is_plain_relu = True  # nn.Sequential fuses a BatchNorm followed by this class (not its subclasses)

    def forward(self, x: Tensor) -> Tensor:
        """``max(0, x)`` elementwise."""
        return x.relu()


class Sigmoid(Module):
    r"""The logistic sigmoid, elementwise: ``Sigmoid(x) = 1 / (1 + exp(-x))``.

    Shape: input ``(*)``, output ``(*)`` (the same shape).
    """

    def forward(self, x: Tensor) -> Tensor:
        """``1 / (1 + exp(-x))`` elementwise."""
        return x.sigmoid()


class Tanh(Module):
    r"""The hyperbolic tangent, elementwise: ``Tanh(x) = (exp(x) - exp(-x)) / (exp(x) + exp(-x))``.

    Shape: input ``(*)``, output ``(*)`` (the same shape).
    """

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
