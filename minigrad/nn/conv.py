"""Convolution and pooling modules: Conv1d, Conv2d, ConvTranspose2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d,
AdaptiveMaxPool2d, MaxUnpool2d (``minigrad.nn.functional.conv``), Upsample (``minigrad.nn.functional.resample``)."""
import numpy as np

from minigrad.kernels.rules import float_dtype
from minigrad.nn import functional as F
from minigrad.nn.functional.checks import pair
from minigrad.nn.functional.conv import _single
from minigrad.nn.linear import _positive_int, _reset_parameters
from minigrad.nn.module import Module, Parameter
from minigrad.tensor import Tensor


def _conv_setup(m, name, in_channels, out_channels, groups, geometry, weight_channels, bias, dtype):
    """The checks and parameters every convolution module shares: positive channel and group counts dividing
    both channel counts, the geometry arguments (``{attribute: tuple}``, already checked by the caller's rule),
    ``weight`` of shape ``weight_channels + kernel_size`` and an optional ``bias``, drawn by ``reset_parameters``."""
    m.in_channels = _positive_int(name, "in_channels", in_channels)
    m.out_channels = _positive_int(name, "out_channels", out_channels)
    m.groups = _positive_int(name, "groups", groups)
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"{name}: in_channels {in_channels} and out_channels {out_channels} must both be "
                         f"divisible by groups {groups}")
    for attr, value in geometry.items():
        setattr(m, attr, value)
    m.weight = Parameter(np.empty(weight_channels(m) + m.kernel_size, float_dtype(dtype)))
    if bias:
        m.bias = Parameter(np.empty(m.out_channels, float_dtype(dtype)))
    else:
        m.register_parameter("bias", None)
    m.reset_parameters()


class _ConvModule(Module):
    def reset_parameters(self) -> None:
        """Draw weight and bias again from PyTorch's default distribution (see the class docstring)."""
        _reset_parameters(self.weight, self.bias)

    def extra_repr(self) -> str:
        """The arguments shown by ``repr``."""
        extra = f"output_padding={self.output_padding}, " if hasattr(self, "output_padding") else ""
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, {extra}dilation={self.dilation}, groups={self.groups}, "
                f"bias={self.bias is not None}")


def _forward_channels(m):
    return (m.out_channels, m.in_channels // m.groups)


class Conv2d(_ConvModule):
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
        geometry = {a: pair("Conv2d", a, v, lo) for a, v, lo in (("kernel_size", kernel_size, 1), ("stride", stride, 1),
                                                                 ("padding", padding, 0), ("dilation", dilation, 1))}
        _conv_setup(self, "Conv2d", in_channels, out_channels, groups, geometry, _forward_channels, bias, dtype)

    def forward(self, x: Tensor) -> Tensor:
        """The convolution of ``x`` with ``weight``, plus ``bias``."""
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class MaxPool2d(Module):
    r"""2-d max pooling: ``y[n, c, h, w] = max_{i, j} xpad[n, c, s*h + i, s*w + j]`` over each window.

    Args:
        kernel_size: the window, ``k`` or ``(kh, kw)``.
        stride: the window's step, an int or a pair (default: ``kernel_size``).
        padding: implicit ``-inf`` added on each side, at most half the window (default 0).
        dilation: spacing between the window's taps (default 1).
        return_indices: also return the int64 index ``h*W + w`` of each maximum (for ``MaxUnpool2d``).
        ceil_mode: round the output size up (a last window cut by the input's end; PyTorch's rule).

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, C, OH, OW)`` with ``OH = (H + 2 * padding - dilation * (kh - 1) - 1) // stride + 1``
          (rounded up with ``ceil_mode``), and ``OW`` alike.
    """

    def __init__(self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
                 padding: int | tuple[int, int] = 0, dilation: int | tuple[int, int] = 1, return_indices: bool = False,
                 ceil_mode: bool = False):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.return_indices, self.ceil_mode = dilation, return_indices, ceil_mode

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        """The maximum of each window of ``x`` (and the indices, with ``return_indices``)."""
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                            ceil_mode=self.ceil_mode, return_indices=self.return_indices)

    def extra_repr(self) -> str:
        """The arguments shown by ``repr``."""
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    r"""2-d average pooling: ``y[n, c, h, w] = mean_{i, j} xpad[n, c, s*h + i, s*w + j]`` over each window.

    Args:
        kernel_size: the window, ``k`` or ``(kh, kw)``.
        stride: the window's step, an int or a pair (default: ``kernel_size``).
        padding: implicit zeros added on each side (default 0).
        ceil_mode: round the output size up (as ``MaxPool2d``; the cut last window divides by what it holds).
        count_include_pad: count the padding zeros in the mean's divisor (default True, as PyTorch).
        divisor_override: divide every window's sum by this instead (default None).

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, C, OH, OW)``, as ``MaxPool2d``'s.
    """

    def __init__(self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
                 padding: int | tuple[int, int] = 0, ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad, self.divisor_override = ceil_mode, count_include_pad, divisor_override

    def forward(self, x: Tensor) -> Tensor:
        """The mean of each window of ``x``."""
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                            self.divisor_override)

    def extra_repr(self) -> str:
        """The arguments shown by ``repr``."""
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size ``(OH, OW)``, whatever the input's ``(H, W)``.

    Output ``o`` averages input ``[floor(o*H/OH), ceil((o+1)*H/OH))``, PyTorch's windows (they may overlap).

    Args:
        output_size: ``OH`` (square) or ``(OH, OW)``; None keeps that input size.

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


class Conv1d(_ConvModule):
    r"""A 1-d convolution (cross-correlation): ``F.conv1d``, which runs conv2d over a height-1 input.

    Args: as ``Conv2d``, with ints (or 1-tuples) for ``kernel_size``, ``stride``, ``padding``, ``dilation``.

    Attributes:
        weight: ``(out_channels, in_channels // groups, k)``, from ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` with
            ``fan_in = in_channels // groups * k``.
        bias: ``(out_channels,)``, from the same distribution, or None.

    Shape:
        - Input: ``(N, in_channels, L)`` or ``(in_channels, L)``
        - Output: ``(N, out_channels, OL)`` (or ``(out_channels, OL)``) with
          ``OL = (L + 2 * padding - dilation * (k - 1) - 1) // stride + 1``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int], stride: int | tuple[int] = 1,
                 padding: int | tuple[int] = 0, dilation: int | tuple[int] = 1, groups: int = 1, bias: bool = True,
                 dtype: np.dtype | type | str | None = None):
        super().__init__()
        geometry = {a: (_single("Conv1d", a, v, lo),) for a, v, lo in (
            ("kernel_size", kernel_size, 1), ("stride", stride, 1), ("padding", padding, 0), ("dilation", dilation, 1))}
        _conv_setup(self, "Conv1d", in_channels, out_channels, groups, geometry, _forward_channels, bias, dtype)

    def forward(self, x: Tensor) -> Tensor:
        """The convolution of ``x`` with ``weight``, plus ``bias``."""
        return F.conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)



class ConvTranspose2d(_ConvModule):
    r"""A 2-d transposed convolution (the adjoint of ``Conv2d`` with the same arguments): ``F.conv_transpose2d``.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, dtype: as ``Conv2d``.
        output_padding: size added to the bottom and right of the output, smaller than stride or dilation
            (default 0): it picks one of the input sizes that a strided Conv2d maps to the same output size.

    Attributes:
        weight: ``(in_channels, out_channels // groups, kh, kw)``, from ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``
            with ``fan_in = out_channels // groups * kh * kw`` (PyTorch's: computed from weight's dim 1).
        bias: ``(out_channels,)``, from the same distribution, or None.

    Shape:
        - Input: ``(N, in_channels, H, W)``
        - Output: ``(N, out_channels, OH, OW)`` with
          ``OH = (H - 1) * stride[0] - 2 * padding[0] + dilation[0] * (kh - 1) + output_padding[0] + 1``, ``OW``
          alike.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 output_padding: int | tuple[int, int] = 0, groups: int = 1, bias: bool = True,
                 dilation: int | tuple[int, int] = 1, dtype: np.dtype | type | str | None = None):
        super().__init__()
        geometry = {a: pair("ConvTranspose2d", a, v, lo) for a, v, lo in (
            ("kernel_size", kernel_size, 1), ("stride", stride, 1), ("padding", padding, 0),
            ("output_padding", output_padding, 0), ("dilation", dilation, 1))}
        if any(o >= s and o >= d for o, s, d in zip(geometry["output_padding"], geometry["stride"],
                                                    geometry["dilation"])):
            raise ValueError(f"ConvTranspose2d: output_padding {geometry['output_padding']} must be smaller than "
                             f"either stride {geometry['stride']} or dilation {geometry['dilation']}")
        _conv_setup(self, "ConvTranspose2d", in_channels, out_channels, groups, geometry,
                    lambda m: (m.in_channels, m.out_channels // m.groups), bias, dtype)

    def forward(self, x: Tensor) -> Tensor:
        """The transposed convolution of ``x`` with ``weight``, plus ``bias``."""
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, self.output_padding,
                                  self.groups, self.dilation)



class AdaptiveMaxPool2d(Module):
    """Max pooling to a fixed output size over PyTorch's adaptive windows (those of ``AdaptiveAvgPool2d``).

    Args:
        output_size: ``OH`` (square) or ``(OH, OW)``; None keeps that input size.
        return_indices: also return the int64 index ``h*W + w`` of each maximum.

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, C, OH, OW)`` (and the indices, of the same shape)
    """

    def __init__(self, output_size: int | None | tuple[int | None, int | None], return_indices: bool = False):
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        """The maximum of each adaptive window of ``x`` (and the indices, with ``return_indices``)."""
        return F.adaptive_max_pool2d(x, self.output_size, self.return_indices)

    def extra_repr(self) -> str:
        """The arguments shown by ``repr``."""
        return f"output_size={self.output_size}"


class MaxUnpool2d(Module):
    """The inverse of ``MaxPool2d(..., return_indices=True)``: zeros, with each pooled value put back at its index.

    Args: ``kernel_size``, ``stride`` (default: kernel_size), ``padding``: those of the MaxPool2d.

    Shape:
        - Input and indices: ``(N, C, H, W)``
        - Output: ``(N, C, OH, OW)`` with ``OH = (H - 1) * stride - 2 * padding + kh``, or ``output_size`` passed
          to ``forward``.
    """

    def __init__(self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
                 padding: int | tuple[int, int] = 0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x: Tensor, indices: Tensor, output_size: tuple[int, ...] | list[int] | None = None) -> Tensor:
        """``x`` scattered to ``indices`` in a zero output."""
        return F.max_unpool2d(x, indices, self.kernel_size, self.stride, self.padding, output_size)

    def extra_repr(self) -> str:
        """The arguments shown by ``repr``."""
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class Upsample(Module):
    """Resize the spatial dims: ``F.interpolate`` with these arguments (modes nearest, nearest-exact, bilinear).

    Args:
        size: the output size, an int or a tuple (or give ``scale_factor``).
        scale_factor: the output is ``floor(in * scale_factor)``.
        mode: ``"nearest"`` (default), ``"nearest-exact"`` or ``"bilinear"``.
        align_corners: bilinear only: align the corner pixels (default None: False).
        recompute_scale_factor: compute the coordinates from the output size instead of ``scale_factor``.

    Shape:
        - Input: ``(N, C, L)`` (nearest modes) or ``(N, C, H, W)``
        - Output: the same with the new sizes
    """

    def __init__(self, size: int | tuple[int, ...] | list[int] | None = None,
                 scale_factor: float | tuple[float, ...] | list[float] | None = None, mode: str = "nearest",
                 align_corners: bool | None = None, recompute_scale_factor: bool | None = None):
        super().__init__()
        self.size, self.scale_factor, self.mode = size, scale_factor, mode
        self.align_corners, self.recompute_scale_factor = align_corners, recompute_scale_factor

    def forward(self, x: Tensor) -> Tensor:
        """``x`` resized."""
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners,
                             self.recompute_scale_factor)

    def extra_repr(self) -> str:
        """The arguments shown by ``repr``."""
        return (f"size={self.size}, scale_factor={self.scale_factor}, mode={self.mode!r}"
                + (f", align_corners={self.align_corners}" if self.align_corners is not None else ""))
