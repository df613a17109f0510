"""Resampling: ``interpolate`` (``torch.nn.functional.interpolate``, modes nearest, nearest-exact and bilinear).

Every mode is separable: output row ``oh`` reads input rows ``rows[t, oh]`` with weights ``row_w[t, oh]`` (one tap
for the nearest modes, two for bilinear), and columns alike. The source coordinates follow PyTorch's CPU kernels
in the input's dtype (float32 arithmetic for float32), so that the chosen taps match. Forward gathers rows then
columns; backward scatters columns then rows (``np.add.at``), and the two are each other's adjoint, so gradients
of any order alternate between them. No kernel: gathers, in NumPy.
"""
import math
import numbers

import numpy as np

from minigrad.kernels.rules import check_array_size
from minigrad.tensor import Function, Tensor

from .checks import check_tensor

_MODES = ("nearest", "nearest-exact", "bilinear")
_TORCH_MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact")


def _scale(dt, size, out, scale_factor, align_corners):
    """PyTorch's source-per-destination scale (area_pixel_compute_scale), in dtype ``dt``."""
    if align_corners:
        return dt.type((size - 1) / (out - 1)) if out > 1 else dt.type(0)
    if scale_factor is not None and scale_factor > 0:
        return dt.type(1.0 / scale_factor)
    return dt.type(size) / dt.type(out)


def _taps(mode, dt, size, out, scale_factor, align_corners):
    """(T, out) input indices and (T, out) weights along one axis."""
    dst = np.arange(out)
    scale = _scale(dt, size, out, scale_factor, align_corners)
    if mode == "nearest":
        if out == size:
            idx = dst
        elif out == 2 * size:
            idx = dst >> 1
        else:
            idx = np.minimum(np.floor(dst.astype(dt) * scale).astype(np.int64), size - 1)
        return idx[None], None
    if mode == "nearest-exact":
        idx = np.minimum(np.floor((dst.astype(dt) + dt.type(0.5)) * scale).astype(np.int64), size - 1)
        return idx[None], None
    src = scale * dst.astype(dt) if align_corners else scale * (dst.astype(dt) + dt.type(0.5)) - dt.type(0.5)
    src = np.maximum(src, dt.type(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), size - 1)
    lam1 = np.clip(src - i0.astype(dt), 0, 1).astype(dt)
    i1 = i0 + (i0 < size - 1)
    return np.stack([i0, i1]), np.stack([dt.type(1) - lam1, lam1])


class _Resample2d(Function):
    # x: (N, C, H, W); rows: (Th, OH) indices, row_w: (Th, OH) weights or None (one tap, weight 1); cols alike
    # y[n, c, oh, ow] = sum_{t, u} row_w[t, oh] col_w[u, ow] x[n, c, rows[t, oh], cols[u, ow]]
    # Linear in x: backward is the adjoint (_Resample2dAdjoint), whose own backward is this forward again.
    def forward(self, x, rows, row_w, cols, col_w):
        self.taps, self.shape = (rows, row_w, cols, col_w), x.shape
        return _resample(x, self.taps)

    def backward(self, dy):
        return _resample_adjoint(dy, self.taps, self.shape)

    def backward_graph(self, dy):  # NOTE: the double backward
        return _Resample2dAdjoint.apply(dy, taps=self.taps, shape=self.shape)


class _Resample2dAdjoint(Function):
    # dy: (N, C, OH, OW) -> dx: (N, C, H, W), ``_Resample2d``'s backward as an op (for create_graph=True)
    def forward(self, dy, taps, shape):
        self.taps = taps
        return _resample_adjoint(dy, taps, shape)

    def backward(self, gx):
        return _resample(gx, self.taps)

    def backward_graph(self, gx):
        rows, row_w, cols, col_w = self.taps
        return _Resample2d.apply(gx, rows=rows, row_w=row_w, cols=cols, col_w=col_w)


def _resample(x, taps):
    """Gather rows, then columns."""
    rows, row_w, cols, col_w = taps
    return _gather(_gather(x, 2, rows, row_w), 3, cols, col_w)


def _resample_adjoint(dy, taps, shape):
    """Scatter columns, then rows."""
    rows, row_w, cols, col_w = taps
    N, C, H, W = shape
    dt = np.zeros((N, C, dy.shape[2], W), dy.dtype)
    _scatter(dt, 3, cols, col_w, dy)
    dx = np.zeros(shape, dy.dtype)
    _scatter(dx, 2, rows, row_w, dt)
    return dx


def _axis(axis, idx):
    return (slice(None),) * axis + (idx,)


def _bcast(w, axis):
    return w if axis == 3 else w[:, None]


def _gather(x, axis, idx, w):
    if w is None:
        return x[_axis(axis, idx[0])]
    return sum(x[_axis(axis, i)] * _bcast(wt, axis) for i, wt in zip(idx, w))


def _scatter(dx, axis, idx, w, g):
    for t in range(idx.shape[0]):
        np.add.at(dx, _axis(axis, idx[t]), g if w is None else g * _bcast(w[t], axis))


def _sizes(fn, x, size, scale_factor, recompute_scale_factor):
    """The output sizes and the scale factors the coordinates use (None: size / output size)."""
    nd = x.ndim - 2
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{fn}: " + ("only one of size or scale_factor should be defined" if size is not None
                                      else "either size or scale_factor should be defined"))
    if size is not None:
        out = tuple(size) if isinstance(size, (tuple, list)) else (size,) * nd
        if len(out) != nd or any(isinstance(o, bool) or not isinstance(o, numbers.Integral) or o < 1 for o in out):
            raise ValueError(f"{fn}: size must be an int >= 1 or {nd} of them for a {x.ndim}-d input, got {size!r}")
        return tuple(int(o) for o in out), (None,) * nd
    sf = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * nd
    if len(sf) != nd or any(isinstance(f, bool) or not isinstance(f, numbers.Real) or not math.isfinite(f) or f <= 0
                            for f in sf):
        raise ValueError(f"{fn}: scale_factor must be a finite number > 0 or {nd} of them for a {x.ndim}-d input, "
                         f"got {scale_factor!r}")
    out = tuple(int(math.floor(float(n) * float(f))) for n, f in zip(x.shape[2:], sf))
    if any(o < 1 for o in out):
        raise ValueError(f"{fn}: scale_factor {scale_factor!r} gives output size {out} for input size "
                         f"{x.shape[2:]}: sizes must be >= 1")
    return out, ((None,) * nd if recompute_scale_factor else tuple(float(f) for f in sf))


def interpolate(input: Tensor, size: int | tuple[int, ...] | list[int] | None = None,
                scale_factor: float | tuple[float, ...] | list[float] | None = None, mode: str = "nearest",
                align_corners: bool | None = None, recompute_scale_factor: bool | None = None,
                antialias: bool = False) -> Tensor:
    """Resize the spatial dims of ``input``, as ``torch.nn.functional.interpolate``: ``nearest`` (PyTorch's:
    source ``floor(dst * scale)``), ``nearest-exact`` (``floor((dst + 0.5) * scale)``) on (N, C, L) or
    (N, C, H, W); ``bilinear`` on (N, C, H, W), with ``align_corners`` (corner pixels aligned, scale
    ``(in - 1)/(out - 1)``) or not (half-pixel centers, sources clamped at 0). ``size`` or ``scale_factor`` (not
    both); with ``scale_factor`` the output is ``floor(in * scale_factor)`` and the coordinates use
    ``1/scale_factor`` unless ``recompute_scale_factor``. Other modes and ``antialias`` raise NotImplementedError.

    Shape:
        - Input: ``(N, C, L)`` (nearest modes) or ``(N, C, H, W)``
        - Output: ``(N, C, OL)`` or ``(N, C, OH, OW)``, the sizes from ``size`` or ``floor(in * scale_factor)``
    """
    fn = "interpolate"
    check_tensor(fn, input)
    if not isinstance(mode, str) or mode not in _MODES:
        raise NotImplementedError(f"{fn}: mode must be one of {_MODES}, got {mode!r}"
                                  + (" (PyTorch has it; minigrad does not)" if mode in _TORCH_MODES else ""))
    if antialias:
        raise NotImplementedError(f"{fn}: antialias=True is not implemented")
    if mode != "bilinear" and align_corners is not None:
        raise ValueError(f"{fn}: align_corners option can only be set with the interpolating modes: linear | "
                         f"bilinear | bicubic | trilinear (got mode={mode!r})")
    nd = 2 if mode == "bilinear" else (1, 2)
    if input.ndim - 2 not in ((nd,) if isinstance(nd, int) else nd):
        raise NotImplementedError(f"{fn}: got {input.ndim}-d input, but mode={mode!r} needs "
                                  + ("4-d (N, C, H, W)" if mode == "bilinear" else "3-d (N, C, L) or 4-d (N, C, H, W)")
                                  + " input")
    out, sf = _sizes(fn, input, size, scale_factor, recompute_scale_factor)
    x = input if input.ndim == 4 else input.reshape(input.shape[:2] + (1,) + input.shape[2:])
    if input.ndim == 3:
        out, sf = (1,) + out, (None,) + sf
    check_array_size(fn, "the output", x.shape[:2] + out, x.dtype.itemsize, size=out)
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"{fn}: input must have non-empty spatial dims, got shape {input.shape}")
    dt, ac = x.dtype, bool(align_corners)
    rows, row_w = _taps(mode, dt, x.shape[2], out[0], sf[0], ac)
    cols, col_w = _taps(mode, dt, x.shape[3], out[1], sf[1], ac)
    y = _Resample2d.apply(x, rows=rows, row_w=row_w, cols=cols, col_w=col_w)
    return y if input.ndim == 4 else y.reshape(input.shape[:2] + out[1:])
