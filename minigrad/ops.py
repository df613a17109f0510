"""PyTorch's module-level functions (``minigrad.flatten(x)``, ``minigrad.max(x, 1)``, ``minigrad.eye(3)``): each
calls the Tensor method of the same name, so the method is the one place that defines the op."""
import numpy as np

from minigrad.tensor import Tensor, _device, _dtype, _raw, as_tensor

# ops whose function form is input.<name>(*args, **kwargs)
_METHODS = (
    "abs", "absolute", "add", "all", "allclose", "amax", "amin", "any", "argmax", "argmin", "argsort", "ceil",
    "chunk", "cos", "cumsum", "div", "divide", "eq", "equal", "expm1", "flatten", "flip", "floor", "floor_divide",
    "gather", "ge", "greater", "greater_equal", "gt", "index_select", "isfinite", "isinf", "isnan", "le", "less",
    "less_equal", "log10", "log1p", "log2", "logical_and", "logical_not", "logical_or", "logsumexp", "lt",
    "masked_fill", "mul", "multiply", "ne", "neg", "negative", "norm", "not_equal", "numel", "permute", "pow",
    "prod", "reciprocal", "remainder", "repeat", "reshape", "roll", "round", "rsqrt", "scatter", "scatter_add",
    "sign", "sin", "sort", "split", "square", "squeeze", "std", "sub", "subtract", "swapaxes", "t", "take_along_dim",
    "topk", "transpose", "trunc", "unbind", "unflatten", "unsqueeze", "var", "fliplr", "flipud", "true_divide",
)

__all__ = list(_METHODS) + ["max", "min", "eye", "linspace", "is_tensor", "is_floating_point", "numel",
                            "diag", "tril", "triu", "outer"]


def _method(name):
    def fn(input, *args, **kwargs):
        return getattr(input if isinstance(input, Tensor) else as_tensor(input), name)(*args, **kwargs)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"``minigrad.{name}(input, ...)`` is ``input.{name}(...)``." + (
        "\n\n" + getattr(Tensor, name).__doc__ if getattr(Tensor, name).__doc__ else "")
    return fn


for _name in _METHODS:
    globals()[_name] = _method(_name)


def max(input, dim=None, keepdim=False, *, axis=None, keepdims=None):  # noqa: A001 (mirrors torch.max)
    """``max(x)`` the largest value, ``max(x, dim)`` (values, indices), ``max(a, b)`` the elementwise maximum."""
    return as_tensor(input).max(dim, keepdim, axis=axis, keepdims=keepdims)


def min(input, dim=None, keepdim=False, *, axis=None, keepdims=None):  # noqa: A001
    """``min(x)`` the smallest value, ``min(x, dim)`` (values, indices), ``min(a, b)`` the elementwise minimum."""
    return as_tensor(input).min(dim, keepdim, axis=axis, keepdims=keepdims)


def is_tensor(obj):
    """True when ``obj`` is a minigrad Tensor."""
    return isinstance(obj, Tensor)


def is_floating_point(input):
    """True when ``input`` has a float dtype (:meth:`Tensor.is_floating_point`)."""
    return input.is_floating_point()


def eye(n, m=None, *, dtype=None, device=None, requires_grad=False):
    """The ``n`` x ``m`` (default ``n`` x ``n``) identity matrix; float32 unless ``dtype`` is given."""
    _device.check_cpu(device, "eye")
    return Tensor(np.eye(n, m, dtype=_dtype(dtype)), requires_grad=requires_grad)


def linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False):
    """``steps`` evenly spaced values from ``start`` to ``end``, both included; float32 unless ``dtype`` is
    given."""
    _device.check_cpu(device, "linspace")
    return Tensor(np.linspace(start, end, steps, dtype=_dtype(dtype)), requires_grad=requires_grad)


def tril(input, diagonal=0):
    """The lower triangle of the last two dims: entries above diagonal ``diagonal`` set to 0 (0: the main
    diagonal, > 0 above it, < 0 below it)."""
    return input * Tensor(np.tri(*input.shape[-2:], k=diagonal, dtype=bool))


def triu(input, diagonal=0):
    """The upper triangle of the last two dims: entries below diagonal ``diagonal`` set to 0 (0: the main
    diagonal, > 0 above it, < 0 below it)."""
    return input * Tensor(~np.tri(*input.shape[-2:], k=diagonal - 1, dtype=bool))


def outer(a, b):
    """The outer product of two 1-d tensors: ``out[i, j] = a[i] * b[j]``."""
    return a.reshape(-1, 1) * b.reshape(1, -1)


def diag(input):
    """A 1-d input as the diagonal of a square matrix; a 2-d input's main diagonal as a 1-d tensor."""
    x = np.asarray(_raw(input))
    if x.ndim == 1:
        n = x.shape[0]
        return input.reshape(n, 1) * Tensor(np.eye(n, dtype=bool))
    if x.ndim == 2:
        k = np.arange(np.minimum(*x.shape))
        return input[k, k]
    raise ValueError(f"diag: expected a 1-d or 2-d tensor, got shape {x.shape}")

