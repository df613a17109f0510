"""Convolution and pooling modules: Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d (``minigrad.nn.functional.conv``)."""
import numpy as np

from minigrad.kernels.rules import float_dtype
from minigrad.nn import functional as F
from minigrad.nn.functional.checks import pair
from minigrad.nn.linear import _positive_int, _reset_parameters
from minigrad.nn.module import Module, Parameter
from minigrad.tensor import Tensor


class Conv2d(Module):
    r"""A 2-d convolution (cross-correlation, as PyTorch's):
    ``y[n, o] = bias[o] + sum_{c in group(o), i, j} weight[o, c, i, j] * xpad[n, c, s*oh + d*i, s*ow + d*j]``.

    Args:
        in_channels, out_channels: channels of the input and of the output.
        kernel_size: ``k`` or ``(kh, kw)``.
        stride: ``s``, an int or a pair (default 1).
        padding: zeros added on each side, an int or a pair (default 0).
        dilation: spacing between kernel elements, an int or a pair (default 1).
        groups: input and output channels split into this many groups, each convolved separately; both channel
            counts must be divisible by it (default 1).
        bias: learn a bias per output channel (default True).
        dtype: float32 (default) or float64 parameters.

    Attributes:
        weight: ``(out_channels, in_channels // groups, kh, kw)``, from ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``
            with ``fan_in = in_channels // groups * kh * kw``.
        bias: ``(out_channels,)``, from the same distribution, or None.

    Shape:
        - input: ``(N, in_channels, H, W)``.
        - output: ``(N, out_channels, OH, OW)`` with
          ``OH = (H + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1``, and ``OW`` alike.

    Example::

        >>> m = nn.Conv2d(16, 33, 3, stride=2)
        >>> m(minigrad.randn(20, 16, 50, 100)).shape
        (20, 33, 24, 49)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 dilation: int | tuple[int, int] = 1, groups: int = 1, bias: bool = True,
                 dtype: np.dtype | type | str | None = None):
        super().__init__()
        self.in_channels = _positive_int("Conv2d", "in_channels", in_channels)
        self.out_channels = _positive_int("Conv2d", "out_channels", out_channels)
        self.groups = _positive_int("Conv2d", "groups", groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: in_channels {in_channels} and out_channels {out_channels} must both be "
                             f"divisible by groups {groups}")
        self.kernel_size = pair("Conv2d", "kernel_size", kernel_size, 1)
        self.stride = pair("Conv2d", "stride", stride, 1)
        self.padding = pair("Conv2d", "padding", padding, 0)
        self.dilation = pair("Conv2d", "dilation", dilation, 1)
        self.weight = Parameter(np.empty((self.out_channels, self.in_channels // groups) + self.kernel_size,
                                         float_dtype(dtype)))
        if bias:
            self.bias = Parameter(np.empty(self.out_channels, float_dtype(dtype)))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw weight and bias again from PyTorch's default distribution (see the class docstring)."""
        _reset_parameters(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        """The convolution of ``x`` with ``weight``, plus ``bias``."""
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        """The arguments shown by ``repr``."""
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, "
                f"bias={self.bias is not None}")


class MaxPool2d(Module):
    r"""2-d max pooling: ``y[n, c, h, w] = max_{i, j} xpad[n, c, s*h + i, s*w + j]`` over each window.

    Args:
        kernel_size: the window, ``k`` or ``(kh, kw)``.
        stride: the window's step, an int or a pair (default: ``kernel_size``).
        padding: implicit ``-inf`` added on each side, at most half the window (default 0).

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, C, OH, OW)`` with ``OH = (H + 2 * padding - kh) // stride + 1``, and ``OW`` alike.
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x: Tensor) -> Tensor:
        """The maximum of each window of ``x``."""
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        """The arguments shown by ``repr``."""
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(Module):
    r"""2-d average pooling: ``y[n, c, h, w] = mean_{i, j} xpad[n, c, s*h + i, s*w + j]`` over each window.

    Args:
        kernel_size: the window, ``k`` or ``(kh, kw)``.
        stride: the window's step, an int or a pair (default: ``kernel_size``).
        padding: implicit zeros added on each side (default 0).
        count_include_pad: count the padding zeros in the mean's divisor (default True, as PyTorch).

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, C, OH, OW)``, as ``MaxPool2d``'s.
    """

    def __init__(self, kernel_size, stride=None, padding=0, count_include_pad=True):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.count_include_pad = count_include_pad

    def forward(self, x: Tensor) -> Tensor:
        """The mean of each window of ``x``."""
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.count_include_pad)

    def extra_repr(self) -> str:
        """The arguments shown by ``repr``."""
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size ``(OH, OW)``, whatever the input's ``(H, W)``.

    Supported: output size 1 (global average pooling) or an output size that divides the input size; other
    sizes raise NotImplementedError (PyTorch's overlapping windows are not implemented).

    Args:
        output_size: ``OH`` (square) or ``(OH, OW)``.

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, C, OH, OW)``
    """

    def __init__(self, output_size: int | tuple[int, int]):
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        """``x`` averaged down to ``output_size``."""
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        """The arguments shown by ``repr``."""
        return f"output_size={self.output_size}"
