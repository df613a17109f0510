"""Activation functionals: relu, sigmoid, tanh, leaky_relu, elu, silu (Tensor ops), gelu, and log_softmax (a
kernel on every backend) with softmax built on it (``torch.nn.functional`` semantics)."""
import math

import numpy as np

from minigrad import kernels
from minigrad.tensor import Function, Tensor, relu, sigmoid, tanh, where  # noqa: F401

from .checks import check_number, check_tensor

_SQRT_PI = math.sqrt(math.pi)


def erf(x):
    """erf of a float array, to ~1e-16 relative (checked against ``math.erf`` in the tests).

    |x| <= 2.5: the all-positive series ``erf(x) = 2/sqrt(pi) exp(-x^2) sum_n 2^n x^(2n+1) / (1*3*...*(2n+1))``
    (no cancellation). |x| > 2.5: ``erfc(x) = exp(-x^2) / sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))``,
    the continued fraction evaluated bottom-up, and erf = 1 - erfc.
    """
    x = np.asarray(x, dtype=np.float64)
    a = np.abs(x)
    small = np.minimum(a, 2.5)
    x2 = small * small
    term = small.copy()
    total = small.copy()
    for n in range(1, 80):  # ratio of terms 2x^2/(2n+1) <= 12.5/(2n+1): 80 terms reach 1e-17
        term *= 2.0 * x2 / (2 * n + 1)
        total += term
    series = 2.0 / _SQRT_PI * np.exp(-x2) * total
    big = np.maximum(a, 2.5)
    frac = big.copy()
    for k in range(60, 0, -1):
        frac = big + (k / 2.0) / frac
    tail = 1.0 - np.exp(-big * big) / _SQRT_PI / frac
    return np.sign(x) * np.where(a <= 2.5, series, tail)


class _Gelu(Function):
    def forward(self, x, approximate):
        self.x, self.approximate = x, approximate
        xd = x.astype(np.float64)
        if approximate == "tanh":
            self.t = np.tanh(math.sqrt(2 / math.pi) * (xd + 0.044715 * xd ** 3))
            return (0.5 * xd * (1 + self.t)).astype(x.dtype)
        self.cdf = 0.5 * (1 + erf(xd / math.sqrt(2)))
        return (xd * self.cdf).astype(x.dtype)

    def backward(self, dy):
        xd = self.x.astype(np.float64)
        if self.approximate == "tanh":
            c = math.sqrt(2 / math.pi)
            dt = (1 - self.t ** 2) * c * (1 + 3 * 0.044715 * xd ** 2)
            d = 0.5 * (1 + self.t) + 0.5 * xd * dt
        else:  # d/dx x Phi(x) = Phi(x) + x phi(x)
            d = self.cdf + xd * np.exp(-0.5 * xd * xd) / math.sqrt(2 * math.pi)
        return (dy * d).astype(dy.dtype)

    def compose(self, x):  # NOTE: the double backward (create_graph=True) of the tanh form
        return x * 0.5 * (1 + ((x + x * x * x * 0.044715) * math.sqrt(2 / math.pi)).tanh())

    def backward_graph(self, dy):
        if self.approximate == "tanh":
            return Function.backward_graph(self, dy)
        return dy * _GeluSlope.apply(self.parents[0])  # NOTE: erf has no Tensor op: its slope is a node


class _GeluSlope(Function):
    """d gelu/dx = Phi(x) + x phi(x) (exact gelu), whose own derivative phi(x) (2 - x^2) is Tensor ops."""

    def forward(self, x):
        self.x = x
        xd = x.astype(np.float64)
        return (0.5 * (1 + erf(xd / math.sqrt(2))) + xd * np.exp(-0.5 * xd * xd) / math.sqrt(2 * math.pi)) \
            .astype(x.dtype)

    def backward(self, g):
        xd = self.x.astype(np.float64)
        return (g * (np.exp(-0.5 * xd * xd) / math.sqrt(2 * math.pi) * (2 - xd * xd))).astype(g.dtype)

    def backward_graph(self, g):
        x = self.parents[0]
        return g * ((x * x * -0.5).exp() * (1 / math.sqrt(2 * math.pi)) * (2 - x * x))


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """``x * Phi(x)`` with Phi the standard normal CDF (exact, via erf); ``approximate='tanh'`` uses
    ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``. Computed in float64, returned in the input dtype.

    Shape:
        - Input: ``(*)``, any shape
        - Output: the input's shape
    """
    check_tensor("gelu", input)
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return _Gelu.apply(input, approximate=approximate)


def _rows(a, dim):
    """``a`` with axis ``dim`` moved last, as a C-contiguous (R, D) array, and how to undo it."""
    moved = np.moveaxis(a, dim, -1)
    return np.ascontiguousarray(moved).reshape(-1, a.shape[dim]), moved.shape


class _LogSoftmax(Function):
    def forward(self, x, dim):
        self.dim = dim
        x2, self.moved_shape = _rows(x, dim)
        y = np.empty_like(x2)
        kernels.kernels().log_softmax_forward(y, x2)
        self.y = y
        return np.moveaxis(y.reshape(self.moved_shape), -1, dim)

    def backward(self, g):
        g2, _ = _rows(g.astype(self.y.dtype, copy=False), self.dim)
        dx = np.empty_like(g2)
        kernels.kernels().log_softmax_backward(dx, g2, self.y)
        return np.moveaxis(dx.reshape(self.moved_shape), -1, self.dim)

    def compose(self, x):  # NOTE: the double backward (create_graph=True): the forward as Tensor ops
        return x - x.logsumexp(self.dim, keepdim=True)


def log_softmax(input: Tensor, dim: int = -1) -> Tensor:
    """``log(softmax(x))`` along ``dim``, computed stably: ``x - max - log(sum(exp(x - max)))``.

    Shape:
        - Input: ``(*)``, any shape
        - Output: the input's shape
    """
    check_tensor("log_softmax", input)
    if input.ndim == 0:
        raise ValueError("log_softmax: input must have at least 1 dim")
    if input.size == 0:
        return input * 1.0
    return _LogSoftmax.apply(input, dim=dim % input.ndim)


def softmax(input: Tensor, dim: int = -1) -> Tensor:
    """Shape:
        - Input: ``(*)``, any shape
        - Output: the input's shape
    """
    return log_softmax(input, dim).exp()


def _inplace_flag(fn, inplace):
    # NOTE: minigrad has no in-place autograd ops here; the flag is accepted and the result is a new tensor
    if not isinstance(inplace, bool):
        raise TypeError(f"{fn}: inplace must be a bool, got {inplace!r}")


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """``x`` where ``x > 0``, else ``negative_slope * x``; the gradient at 0 is ``negative_slope``, as PyTorch's.
    ``inplace`` is accepted and ignored (a new tensor is returned).

    Shape:
        - Input: ``(*)``, any shape
        - Output: the input's shape
    """
    check_tensor("leaky_relu", input)
    _inplace_flag("leaky_relu", inplace)
    negative_slope = check_number("leaky_relu", "negative_slope", negative_slope)
    return where(input > 0, input, input * negative_slope)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``x`` where ``x > 0``, else ``alpha * (exp(x) - 1)``; the gradient at 0 is ``alpha``, as PyTorch's.
    ``inplace`` is accepted and ignored (a new tensor is returned).

    Shape:
        - Input: ``(*)``, any shape
        - Output: the input's shape
    """
    check_tensor("elu", input)
    _inplace_flag("elu", inplace)
    alpha = check_number("elu", "alpha", alpha)
    # NOTE: exp of min(x, 0): exp(large x) would overflow, and inf * 0 in the unused branch's gradient is NaN
    neg = (input.clip(max=0.0).exp() - 1.0) * alpha
    return where(input > 0, input, neg)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * sigmoid(x)`` (also called swish). ``inplace`` is accepted and ignored.

    Shape:
        - Input: ``(*)``, any shape
        - Output: the input's shape
    """
    check_tensor("silu", input)
    _inplace_flag("silu", inplace)
    return input * input.sigmoid()
