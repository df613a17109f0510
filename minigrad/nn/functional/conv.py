"""Convolution and pooling functionals: conv2d, max/avg/adaptive-avg pooling (``torch.nn.functional`` semantics).

Layout legend: N batch, C input channels, O output channels, G groups (Cg = C/G, Og = O/G), H, W input size,
OH, OW output size, kh, kw kernel size, Kg = Cg*kh*kw (one group's rows of im2col), K = C*kh*kw = G*Kg, L = OH*OW.

conv2d is one autograd node whose array work is three functions (also run by the double backward, conv_grad.py),
each a loop over chunks of nb samples whose columns (K, nb*L) fit ``CHUNK_BYTES`` (so they stay in L2 between the
kernel that writes them and the GEMM that reads them; the whole matrix is never built):
  conv2d_forward      cols = im2col(x[chunk]) (rows (c, i, j), columns (n, oh, ow)); y[n] = weight (G, Og, Kg) @ cols[n]
                      (a GEMM per sample on a strided view, written straight into y's (N, O, OH, OW) order);
                      at unit stride and dilation without groups instead the ``conv2d_direct`` kernel, which builds
                      no columns at all, where the backend's is fast (``_direct``); at a larger stride the
                      ``conv2d_strided`` kernel (x split into its stride phases, also no columns)
  conv2d_weight_grad  cols recomputed per chunk; dweight^T (G, Kg, Og) += cols[n] @ dy[n]^T; or, where the forward
                      runs conv2d_direct, the conv2d_direct_weight_grad kernel (conv2d_strided_weight_grad where it
                      runs conv2d_strided)
  conv2d_input_grad   dcols[n] = weight^T (G, Kg, Og) @ dy[n], then dx[chunk] = col2im(dcols) (the kernel adds up);
                      at unit stride instead conv2d_forward(dy) with the flipped, transposed weight; at a larger
                      stride the ``conv2d_strided_input_grad`` kernel (a unit-stride correlation of dy per phase of
                      dx, no col2im)
  dbias               dy summed over N, OH, OW
A 1x1 convolution without padding skips im2col: its columns are the input itself (subsampled by the stride); at a
stride above 1 it runs the conv2d_strided kernels where they run (``_strided``).
max_pool2d calls the ``max_pool2d_forward`` kernel, which saves the int64 index of each window's first maximum,
and ``max_pool2d_backward`` scatters dy through it. The kernels come from the active backend
(``minigrad.kernels.kernels()``), like the norms'. avg_pool2d stays in NumPy: one strided slice per kernel offset
in forward and backward, so no window is ever materialized.
"""
import functools
import numbers

import numpy as np

from minigrad import kernels
from minigrad.kernels.rules import (check_array_size, live_taps, out_size, pool_out_size, strided_phases_fit,
                                    window_out_size)
from minigrad.kernels.threads import get_num_threads
from minigrad.tensor import Function, Tensor, _host

from .checks import check_tensor, pair
from .dense import pad


def _out_size(fn, size, k, s, p, d, ceil_mode=False):
    out = pool_out_size(fn, size, k, s, p, d, True) if ceil_mode else window_out_size(fn, size, k, s, p, d)
    if out < 1:
        raise ValueError(f"{fn}: input size {size} with padding {p} is too small for kernel {k} "
                         f"(dilation {d}): output size would be {out}")
    return out


def _pad(x, ph, pw):
    if ph == 0 and pw == 0:
        return x
    N, C, H, W = x.shape
    # NOTE: a filled array and one slice assignment: the same result as np.pad, without its Python overhead
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=x.dtype)
    xp[:, :, ph:ph + H, pw:pw + W] = x
    return xp


def _offset_slice(i, j, dh, dw, sh, sw, OH, OW):
    """The (H, W) slice of the padded input that kernel offset (i, j) reads for every output position."""
    return (slice(i * dh, i * dh + sh * (OH - 1) + 1, sh), slice(j * dw, j * dw + sw * (OW - 1) + 1, sw))


# ------------------------------------------------------------------ conv2d

# NOTE: im2col, its GEMMs and col2im run over chunks of samples whose columns (K, nb*L) fit this budget, so they
# stay in the L2 cache between the kernel that writes them and the GEMM that reads them; the whole (K, N*L) matrix
# of a ResNet-20 layer at batch 32 is 19 MB and made the round trip through DRAM (docs/perf/conv.md)
CHUNK_BYTES = 512 * 1024


# conv2d_direct and conv2d_direct_weight_grad (unit stride), conv2d_strided and its two gradients (larger strides)
# instead of im2col + GEMM where the geometry allows them: None where they measured faster (the Cython kernels with
# vector FMAs: 1.5-2.5x faster on ResNet-20's layers; the Numba twins, without register tiles, are slower than the
# GEMMs, and so is the scalar fallback), True wherever the geometry allows, False never (docs/perf/conv.md)
DIRECT = None


class _ConvGeometry:
    """One conv2d's shapes and window: x (N, C, H, W), weight (O, Cg, kh, kw), y (N, O, OH, OW)."""

    def __init__(self, x_shape, w_shape, stride, padding, dilation, groups, OH, OW, itemsize):
        self.x_shape, self.w_shape = tuple(x_shape), tuple(w_shape)
        self.stride, self.padding, self.dilation, self.G = stride, padding, dilation, groups
        self.OH, self.OW, self.L = OH, OW, OH * OW
        self.N, self.C = x_shape[:2]
        self.O, Cg, self.kh, self.kw = w_shape
        self.Og, self.Kg, self.K = self.O // groups, Cg * self.kh * self.kw, self.C * self.kh * self.kw
        # 1x1 without padding: the columns are the input itself (subsampled by the stride), no im2col
        self.pointwise = self.kh == self.kw == 1 and padding == (0, 0)
        # samples per chunk; NOTE: at least one per thread, as the kernels split a chunk's samples among threads
        self.nb = max(1, min(self.N, max(get_num_threads(), CHUNK_BYTES // max(1, self.K * self.L * itemsize))))
        self.calls = {}  # _call's kernels, checked once

    def chunks(self):
        return [(n0, min(self.N, n0 + self.nb)) for n0 in range(0, self.N, self.nb)]

    def window(self):
        return self.kh, self.kw, self.stride, self.padding, self.dilation


@functools.lru_cache(maxsize=256)
def _geometry(x_shape, w_shape, stride, padding, dilation, groups, itemsize, n_threads):
    """conv2d's geometry, checked; cached (by everything it depends on, ``n_threads`` for ``nb``): a model's layers
    repeat it every step, and the checks and the object cost about a tenth of a small layer's call in Python
    (docs/perf/threads.md, session 33). A geometry that fails a check raises and is not cached."""
    (N, C, H, W), (O, Cg, kh, kw) = x_shape, w_shape
    OH = _out_size("conv2d", H, kh, stride[0], padding[0], dilation[0])
    OW = _out_size("conv2d", W, kw, stride[1], padding[1], dilation[1])
    # NOTE: the NumPy backend pads a copy: checked for every backend, so that all refuse the same geometry
    cause = dict(padding=padding, stride=stride, dilation=dilation)
    check_array_size("conv2d", "the output", (N, O, OH, OW), itemsize, **cause)
    check_array_size("conv2d", "the im2col columns (C*kh*kw, N*OH*OW)", (C * kh * kw, N * OH * OW), itemsize, **cause)
    check_array_size("conv2d", "the padded input", (N, C, H + 2 * padding[0], W + 2 * padding[1]), itemsize, **cause)
    return _ConvGeometry(x_shape, w_shape, stride, padding, dilation, groups, OH, OW, itemsize)


def _pointwise_input(x, g):
    """x subsampled by the stride, (N, G, Cg, L): a 1x1 convolution's columns, sample by sample."""
    if g.stride != (1, 1):
        x = np.ascontiguousarray(x[:, :, ::g.stride[0], ::g.stride[1]])
    return x.reshape(g.N, g.G, g.C // g.G, g.L)


def _call(g, name, *args):
    """``kernels.kernels().<name>(*args)``, a kernel of geometry ``g``'s: the first call with arrays of these shapes
    and dtypes (on this backend, at this thread count) goes through the contract's checks, the later ones straight to
    the backend's kernel with the thread count the first got (``Backend.checked_then_raw``; keyed by the kernel
    function itself too, which a test may replace). NOTE: the scalar arguments are g's; the checks cost about as
    much as a small layer's kernel (a 3x3 conv's on one 2x2 sample), on every call of every layer, and ``_geometry``
    keeps g from step to step (docs/perf/threads.md, session 34)."""
    backend = kernels.kernels()
    key = (getattr(backend.module, name), backend, get_num_threads()) + \
        tuple((a.shape, a.dtype) for a in args if type(a) is np.ndarray)
    raw = g.calls.get(key)
    if raw is None:
        g.calls[key] = backend.checked_then_raw(name, args)
    else:
        raw(*args)


def _columns(buf, x, n0, n1, g):
    """im2col of samples n0:n1 into ``buf`` (K, nb*L), viewed (nb, G, Kg, L) (strided: no copy)."""
    cols = buf[:g.K * (n1 - n0) * g.L].reshape(g.K, (n1 - n0) * g.L)
    if cols.size:  # NOTE: the kernels take no empty arrays
        _call(g, "im2col", cols, x[n0:n1], *g.window())
    return cols.reshape(g.G, g.Kg, n1 - n0, g.L).transpose(2, 0, 1, 3)


def _epilogue(y4, bias, relu):
    """In place on a chunk y4 (nb, G, Og, L) just written: ``+ bias`` (G, Og, 1) if given, then ``max(0, .)`` if
    ``relu`` (conv2d_relu: while the chunk is in cache, not as a pass of its own over y)."""
    if bias is not None:
        y4 += bias
    if relu:
        np.maximum(y4, 0, out=y4)


def _fast_direct():
    """Whether the active backend's direct kernels are faster than im2col + GEMM (``DIRECT`` None): the Cython
    backend with a vector variant."""
    variant = getattr(kernels.kernels().module, "conv2d_direct_variant", None)
    return variant is not None and variant() != "scalar"


# NOTE: below this many input channels the unit-stride direct kernels' tiles are mostly empty and the im2col path
# wins the weight gradient and the input gradient (Cython, float32, process time, docs/perf/threads.md "LeNet-BN at
# 2 threads"): weight gradient, 1 -> 6 (5x5, 28x28, wall) 0.9 against 2.5 ms direct, 3 -> 6 (5x5, 32x32) 1.75 against
# 2.84; from 4 channels on the direct kernel won, 4 -> 16 (3x3, 16x16) 0.38 against 0.59, LeNet's 6 -> 16 (5x5,
# 14x14) 0.69 against 1.22; the input gradient as the flipped forward, 3 -> 16 (5x5) 4.2 against 3.3 on col2im,
# 6 -> 16 0.95 against 1.27, 8 -> 16 (3x3) 0.34 against 0.70
DIRECT_MIN_CHANNELS = 4


def _few_channels_wg(g):
    """Whether the weight gradient of geometry ``g``, below ``DIRECT_MIN_CHANNELS`` input channels, runs the direct
    kernel all the same (where it is fast): a 3x3 window from 2 input channels with whole vectors of output channels
    (a multiple of 16), a ResNet's stem. Below that many channels the kernel sums each output row's chain apart, a
    sample a chunk (conv_direct.h, ROWS): the float32 error of im2col's GEMM, where one chain over a chunk's
    positions had 8-10x it. NOTE: Cython, float32, 1 thread, process time, ms, direct / im2col (docs/perf/threads.md,
    session 35, scripts/few_channels_wg.py): 3 -> 16 at 32x32 (the stem) 0.33 / 0.65, 3 -> 32 0.81 / 0.96, 3 -> 64
    1.53 / 2.65, 2 -> 16 at 16x16 0.07 / 0.13; im2col won at 1 channel (1 -> 16 at 28x28 0.23 / 0.19), at 8 or 24
    output channels (3 -> 8 0.40 / 0.37, 3 -> 24 0.92 / 0.85) and at 5x5 (1 -> 6 0.94 / 0.56, 3 -> 6 1.44 / 1.13)."""
    return g.C >= 2 and g.kh == g.kw == 3 and g.O % 16 == 0


def _direct(g, weight_grad=False):
    """Whether conv2d_forward (or, ``weight_grad``, conv2d_weight_grad) runs the direct kernel for geometry ``g``
    (see ``DIRECT``). NOTE: the weight gradient's tiles run over taps (c, i, j) and output channels: with fewer
    than ``DIRECT_MIN_CHANNELS`` input channels most of a tile is empty (but ``_few_channels_wg``)."""
    if DIRECT is False or g.stride != (1, 1) or g.dilation != (1, 1) or g.G != 1 or g.pointwise \
            or g.N * g.C * g.O == 0:
        return False
    return bool(DIRECT) or (_fast_direct() and not (weight_grad and g.C < DIRECT_MIN_CHANNELS and
                                                    not _few_channels_wg(g)))


def _strided(g, backward=False):
    """Whether conv2d_forward (or, ``backward``, conv2d_input_grad and conv2d_weight_grad) runs the conv2d_strided
    kernels for geometry ``g``: a stride above 1, dilation 1, no groups (see ``DIRECT``); a 1x1 convolution too (a
    ResNet's downsampling shortcut: its GEMMs and copies on the team instead of NumPy's on the main thread,
    docs/perf/threads.md, session 33). NOTE: the input gradient's tiles hold 8 channels of dx, the weight
    gradient's 8 rows (c, i) of taps: with fewer than 8 input channels most of a tile is empty."""
    if DIRECT is False or g.stride == (1, 1) or g.dilation != (1, 1) or g.G != 1 \
            or g.N * g.C * g.O == 0 or not _phases_fit(g):
        return False
    return bool(DIRECT) or (_fast_direct() and not (backward and g.C < 8))


def _fused_backward(g):
    """The kernel that computes both of ``_Conv2d.backward``'s gradients in one call for geometry ``g``, and its
    window arguments; None where they run apart. conv2d_direct_backward where conv2d_weight_grad runs the direct
    kernel and conv2d_input_grad would run conv2d_forward's on dy (the flipped weight at padding k-1-p, so p < k;
    not below ``DIRECT_MIN_CHANNELS`` input channels where O > C, even where ``DIRECT`` is True);
    conv2d_strided_backward where both run the strided kernels. The same bits as the two calls, in one parallel
    region instead of two: a region costs a wake-up of the worker, which on a loaded machine the main thread waits
    for at the region's end (docs/perf/threads.md, session 31)."""
    if _direct(g, weight_grad=True) and g.padding[0] < g.kh and g.padding[1] < g.kw and \
            (g.O <= g.C or g.C >= DIRECT_MIN_CHANNELS):
        return "conv2d_direct_backward", (g.kh, g.kw, g.padding)
    if _strided(g, backward=True):
        return "conv2d_strided_backward", (g.kh, g.kw, g.stride, g.padding)
    return None


def _phases_fit(g):
    """Whether the strided kernels take this window (``rules.strided_phases_fit``); a larger stride sees only the
    first window, which im2col handles in time proportional to the input."""
    H, W = g.x_shape[2:]
    return strided_phases_fit(H, g.kh, g.stride[0], g.padding[0]) and \
        strided_phases_fit(W, g.kw, g.stride[1], g.padding[1])


def conv2d_forward(x, w, g, bias=None, relu=False, xs=None):
    """y (N, O, OH, OW) = weight (G, Og, Kg) @ cols, one small GEMM per sample, chunk by chunk; or the
    conv2d_direct kernel (``_direct``), at a stride above 1 the conv2d_strided kernel (``_strided``). ``bias``
    (G, Og, 1) and ``relu`` are applied to each chunk of y after it is written (``_epilogue``). ``xs``: a 1x1
    convolution's ``_pointwise_input(x, g)``, when the caller made it already."""
    y = np.empty((g.N, g.O, g.OH, g.OW), x.dtype)
    unit = _direct(g)
    if unit or _strided(g):
        x, wk = np.ascontiguousarray(x), np.ascontiguousarray(w.reshape(g.O, g.K))
        name, window = ("conv2d_direct", (g.kh, g.kw, g.padding)) if unit else \
            ("conv2d_strided", (g.kh, g.kw, g.stride, g.padding))
        if bias is None and not relu:
            _call(g, name, y, x, wk, *window)
            return y
        # NOTE: with an epilogue, chunk by chunk (of g.nb samples, at least one per thread), so that each chunk of y
        # is still in cache when the bias and the ReLU are applied to it
        for n0, n1 in g.chunks():
            _call(g, name, y[n0:n1], x[n0:n1], wk, *window)
            _epilogue(y[n0:n1].reshape(n1 - n0, g.G, g.Og, g.L), bias, relu)
        return y
    y4 = y.reshape(g.N, g.G, g.Og, g.L)
    if g.pointwise:
        np.matmul(w, _pointwise_input(x, g) if xs is None else xs, out=y4)
        _epilogue(y4, bias, relu)
        return y
    x = np.ascontiguousarray(x)
    buf = np.empty(g.K * g.nb * g.L, x.dtype)
    for n0, n1 in g.chunks():
        np.matmul(w, _columns(buf, x, n0, n1, g), out=y4[n0:n1])
        _epilogue(y4[n0:n1], bias, relu)
    return y


def conv2d_weight_grad(x, dy, g, xs=None):
    """dweight (G, Og, Kg) = sum over samples of dy[n] (G, Og, L) @ cols[n]^T, the columns recomputed per chunk.
    NOTE: computed transposed, dweight^T (G, Kg, Og) = cols @ dy^T: BLAS ran this shape (Kg rows, not Og) about 1.3x
    faster for ResNet-20's layers (docs/perf/conv.md). Or the conv2d_direct_weight_grad kernel (``_direct``), at a
    stride above 1 conv2d_strided_weight_grad (``_strided``). ``xs``: as conv2d_forward's."""
    if _direct(g, weight_grad=True):
        dweight = np.empty((g.O, g.K), dy.dtype)
        _call(g, "conv2d_direct_weight_grad", dweight, np.ascontiguousarray(x), np.ascontiguousarray(dy), g.kh, g.kw,
              g.padding)
        return dweight.reshape(1, g.O, g.K)
    if _strided(g, backward=True):
        dweight = np.empty((g.O, g.K), dy.dtype)
        _call(g, "conv2d_strided_weight_grad", dweight, np.ascontiguousarray(x), np.ascontiguousarray(dy), g.kh,
              g.kw, g.stride, g.padding)
        return dweight.reshape(1, g.O, g.K)
    dwt = np.zeros((g.G, g.Kg, g.Og), dy.dtype)
    dy4 = dy.reshape(g.N, g.G, g.Og, g.L)
    if g.pointwise:
        dwt += np.matmul(_pointwise_input(x, g) if xs is None else xs, dy4.transpose(0, 1, 3, 2)).sum(axis=0)
        return dwt.transpose(0, 2, 1)
    x = np.ascontiguousarray(x)
    buf = np.empty(g.K * g.nb * g.L, x.dtype)
    for n0, n1 in g.chunks():
        cols = _columns(buf, x, n0, n1, g)  # (nb, G, Kg, L)
        if g.L >= g.Kg or n1 - n0 == 1:  # a GEMM per sample with the long inner dim L, summed over the chunk
            dwt += np.matmul(cols, dy4[n0:n1].transpose(0, 1, 3, 2)).sum(axis=0)
        else:  # L short: one GEMM over the chunk, inner dim nb*L, with dy batch-inner like the columns
            dyt = np.ascontiguousarray(dy4[n0:n1].transpose(1, 2, 0, 3)).reshape(g.G, g.Og, -1)
            dwt += np.matmul(cols.transpose(1, 2, 0, 3).reshape(g.G, g.Kg, -1), dyt.transpose(0, 2, 1))
    return dwt.transpose(0, 2, 1)


def conv2d_input_grad(dy, w, g):
    """dx (N, C, H, W) = col2im(weight^T @ dy), chunk by chunk; a 1x1 convolution's is weight^T @ dy itself; at a
    stride above 1 the conv2d_strided_input_grad kernel (``_strided``)."""
    if _strided(g, backward=True):
        dx = np.empty(g.x_shape, dy.dtype)
        _call(g, "conv2d_strided_input_grad", dx, np.ascontiguousarray(dy), np.ascontiguousarray(w[0]), g.kh, g.kw,
              g.stride, g.padding)
        return dx
    wt = w.transpose(0, 2, 1)  # (G, Kg, Og)
    dy4 = np.ascontiguousarray(dy).reshape(g.N, g.G, g.Og, g.L)
    if g.pointwise:
        dxs = np.matmul(wt, dy4).reshape(g.N, g.C, g.OH, g.OW)
        if g.stride == (1, 1):
            return dxs
        dx = np.zeros(g.x_shape, dy.dtype)
        dx[:, :, ::g.stride[0], ::g.stride[1]] = dxs
        return dx
    padding = tuple(d * (k - 1) - p for d, k, p in zip(g.dilation, (g.kh, g.kw), g.padding))
    gt = None
    if g.stride == (1, 1) and min(padding) >= 0 and g.N:
        gt = _geometry(dy.shape, (g.C, g.Og, g.kh, g.kw), (1, 1), padding, g.dilation, g.G, dy.dtype.itemsize,
                       get_num_threads())
    if gt is not None and (g.O <= g.C or (g.C >= DIRECT_MIN_CHANNELS and _direct(gt))):
        # NOTE: at unit stride dx is the convolution of dy with the flipped, transposed weight (padding
        # d*(k - 1) - p): im2col and a GEMM instead of a GEMM and col2im, whose adds cost more than im2col's copies
        # when dy has no more channels than x (its im2col is then no larger; docs/perf/conv.md); at unit dilation
        # conv2d_forward runs the direct kernel, which also wins where O > C from DIRECT_MIN_CHANNELS input channels
        # on (below, its tile of output channels is mostly empty: the stem conv 3 -> 16 measured
        # 0.80 against 0.64 ms on the col2im path)
        wf = w.reshape(g.G, g.Og, g.C // g.G, g.kh, g.kw)[..., ::-1, ::-1].transpose(0, 2, 1, 3, 4)
        return conv2d_forward(dy, wf.reshape(g.G, g.C // g.G, g.Og * g.kh * g.kw), gt)
    dx = np.zeros(g.x_shape, dy.dtype)
    if dx.size == 0:
        return dx
    buf = np.empty(g.K * g.nb * g.L, dy.dtype)
    for n0, n1 in g.chunks():
        dcols = buf[:g.K * (n1 - n0) * g.L].reshape(g.K, (n1 - n0) * g.L)
        # dcols (K, nb*L) written as (nb, G, Kg, L) by a GEMM per sample, then added up into dx by col2im
        np.matmul(wt, dy4[n0:n1], out=dcols.reshape(g.G, g.Kg, n1 - n0, g.L).transpose(2, 0, 1, 3))
        _call(g, "col2im", dx[n0:n1], dcols, *g.window())
    return dx


class _Conv2d(Function):
    # x: (N, C, H, W), weight: (O, Cg, kh, kw), bias: (O,) -> y: (N, O, OH, OW)
    def forward(self, x, weight, *bias, stride, padding, dilation, groups, relu=False):
        # NOTE: relu=True (conv2d_relu, only where no gradient is needed) adds the bias and applies the ReLU per chunk
        g = _geometry(x.shape, weight.shape, stride, padding, dilation, groups, x.dtype.itemsize, get_num_threads())
        O, Cg, kh, kw = weight.shape
        OH, OW = g.OH, g.OW
        w = weight.reshape(groups, O // groups, Cg * kh * kw)
        if relu:
            b = bias[0].reshape(groups, O // groups, 1) if bias else None
            return conv2d_forward(x, w, g, b, relu=True)
        # NOTE: a 1x1 strided convolution (a ResNet's downsampling shortcut) off the strided kernels keeps its
        # subsampled input (a quarter of x at stride 2) for the weight gradient, which would otherwise copy it again
        # from x (cold by then)
        xs = _pointwise_input(x, g) if g.pointwise and g.stride != (1, 1) and not _strided(g, backward=True) \
            else None
        y = conv2d_forward(x, w, g, xs=xs)
        if bias:
            b = bias[0].reshape(1, O, 1, 1)
            if b.dtype == y.dtype:
                y += b
            else:
                y = y + b
        # NOTE: saves x, not the columns: backward recomputes them chunk by chunk (cheaper than keeping them)
        self.x, self.w, self.g, self.xs = x, w, g, xs
        self.geom = (x.shape, weight.shape, stride, padding, dilation, groups, OH, OW)
        return y

    def backward(self, dy):
        g = self.g
        dx = dweight = dbias = None
        fused = _fused_backward(g) if self.needs_input_grad[0] and self.needs_input_grad[1] else None
        if fused is not None:
            name, window = fused
            dx, dweight = np.empty(g.x_shape, dy.dtype), np.empty((g.O, g.K), dy.dtype)
            _call(g, name, dx, dweight, np.ascontiguousarray(self.x), np.ascontiguousarray(dy),
                  np.ascontiguousarray(self.w.reshape(g.O, g.K)), *window)
            dweight = dweight.reshape(g.w_shape)
        else:
            if self.needs_input_grad[1]:
                dweight = conv2d_weight_grad(self.x, dy, g, self.xs).reshape(g.w_shape)
            if self.needs_input_grad[0]:
                dx = conv2d_input_grad(dy, self.w, g)
        if len(self.needs_input_grad) > 2 and self.needs_input_grad[2]:
            dbias = dy.reshape(g.N, g.O, g.L).sum(axis=(0, 2))
        return (dx, dweight, dbias)[:len(self.parents)]

    def backward_graph(self, dy):  # NOTE: the double backward; conv_grad.py builds on this module, so imported here
        from .conv_grad import conv2d_backward_graph
        return conv2d_backward_graph(self, dy)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int | tuple[int, int] = 1,
           padding: int | tuple[int, int] = 0, dilation: int | tuple[int, int] = 1, groups: int = 1) -> Tensor:
    """2-d cross-correlation, as ``torch.nn.functional.conv2d``.

    ``y[n, o] = bias[o] + sum_{c in group(o), i, j} weight[o, c, i, j] * xpad[n, c, s*oh + d*i, s*ow + d*j]``

    Shape:
        - input (N, C, H, W), weight (O, C/groups, kh, kw), bias (O,), y (N, O, OH, OW) with ``OH = (H +
          2*padding - dilation*(kh - 1) - 1) // stride + 1`` (same for W). Padding is zeros.
    """
    args, kwargs = _conv2d_args("conv2d", input, weight, bias, stride, padding, dilation, groups)
    return _Conv2d.apply(*args, **kwargs)


def _conv2d_args(fn, input, weight, bias, stride, padding, dilation, groups):
    """conv2d's arguments checked, as ``(tensors, keyword arguments)`` of ``_Conv2d.apply`` (also conv2d_relu's)."""
    check_tensor(fn, input, 4)
    check_tensor(fn, weight, 4)
    if weight.dtype != input.dtype:
        raise TypeError(f"{fn}: weight dtype {weight.dtype} differs from input dtype {input.dtype}")
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or groups < 1:
        raise ValueError(f"{fn}: groups must be a positive integer, got {groups!r}")
    O, Cg = weight.shape[:2]
    C = input.shape[1]
    if C != Cg * groups:
        raise ValueError(f"{fn}: input has {C} channels but weight expects {Cg * groups} "
                         f"({Cg} per group x {groups} groups; weight shape {weight.shape})")
    if O % groups:
        raise ValueError(f"{fn}: out_channels {O} is not divisible by groups {groups}")
    args = (input, weight)
    if bias is not None:
        check_tensor(fn, bias, 1)
        if bias.shape != (O,):
            raise ValueError(f"{fn}: bias must have shape ({O},) to match weight's out_channels, got {bias.shape}")
        args += (bias,)
    return args, dict(stride=pair(fn, "stride", stride, 1), padding=pair(fn, "padding", padding, 0),
                      dilation=pair(fn, "dilation", dilation, 1), groups=int(groups))


# ------------------------------------------------------------------ pooling

def _pool_args(fn, x, kernel_size, stride, padding, padded=False, dilation=(1, 1), ceil_mode=False):
    """The pooling geometry, checked: ``padded`` when the op makes a padded copy of x (avg_pool2d); the output
    size by ``rules.pool_out_size`` (``ceil_mode``)."""
    check_tensor(fn, x, 4)
    k = pair(fn, "kernel_size", kernel_size, 1)
    s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) \
        else pair(fn, "stride", stride, 1)
    p = pair(fn, "padding", padding, 0)
    d = dilation
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"{fn}: padding {p} must be at most half the kernel size {k} (PyTorch: pad should be "
                         f"smaller than or equal to half of kernel size)")
    N, C, H, W = x.shape
    out = tuple(_out_size(fn, size, k[a], s[a], p[a], d[a], ceil_mode) for a, size in enumerate((H, W)))
    check_array_size(fn, "the output", (N, C) + out, x.dtype.itemsize, kernel_size=k, stride=s, padding=p)
    if padded:
        check_array_size(fn, "the padded input", (N, C, H + 2 * p[0], W + 2 * p[1]), x.dtype.itemsize,
                         kernel_size=k, stride=s, padding=p)
    return k, s, p, out


class _MaxPool2d(Function):
    # x: (N, C, H, W) -> y: (N, C, OH, OW); saves only argmax (int64 index h*W + w of each window's maximum)
    def forward(self, x, kernel, stride, padding, out):
        y = np.empty(x.shape[:2] + out, x.dtype)
        argmax = np.empty(y.shape, np.int64)
        if y.size:  # NOTE: the kernels take no empty arrays
            kernels.kernels().max_pool2d_forward(y, argmax, np.ascontiguousarray(x), kernel[0], kernel[1],
                                                 stride, padding)
        self.argmax, self.shape = argmax, x.shape
        return y

    def backward(self, dy):
        dx = np.zeros(self.shape, dy.dtype)
        if dx.size:  # the kernel zeroes dx, then hands each window's gradient to its first maximum, as PyTorch does
            kernels.kernels().max_pool2d_backward(dx, np.ascontiguousarray(dy), self.argmax)
        return dx

    def backward_graph(self, dy):  # NOTE: the double backward (conv_grad.py)
        from .conv_grad import max_pool2d_backward_graph
        return max_pool2d_backward_graph(self, dy)


def max_pool2d(input: Tensor, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
               padding: int | tuple[int, int] = 0, dilation: int | tuple[int, int] = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Max over each ``kernel_size`` window (stride defaults to kernel_size; padding is -inf, at most k/2; taps
    ``dilation`` apart). ``return_indices``: also the int64 index ``h*W + w`` of each window's maximum (the first;
    a NaN wins), as PyTorch's.

    Shape:
        - (N, C, H, W) -> (N, C, OH, OW), ``OH = (H + 2*padding - dilation*(kh - 1) - 1) // stride + 1``, rounded
          up with ``ceil_mode`` (``rules.pool_out_size``).
    """
    d = pair("max_pool2d", "dilation", dilation, 1)
    k, s, p, out = _pool_args("max_pool2d", input, kernel_size, stride, padding, dilation=d,
                              ceil_mode=bool(ceil_mode))
    if d == (1, 1):
        y, ctx = _MaxPool2d.apply_with_ctx(input, kernel=k, stride=s, padding=p, out=out)
    else:  # NOTE: the kernels have no dilation: the same rule over a tap table (see _MaxPoolTaps)
        H, W = input.shape[2:]
        rows = _dilated_taps(H, k[0], s[0], p[0], d[0], out[0])
        cols = _dilated_taps(W, k[1], s[1], p[1], d[1], out[1])
        y, ctx = _MaxPoolTaps.apply_with_ctx(input, rows=rows, cols=cols, fn="max_pool2d")
    return (y, _indices(ctx)) if return_indices else y


class _AvgPool2d(Function):
    def forward(self, x, kernel, stride, padding, out, count_include_pad):
        (kh, kw), (sh, sw), (ph, pw), (OH, OW) = kernel, stride, padding, out
        xp = _pad(x, ph, pw)
        y = np.zeros(x.shape[:2] + out, x.dtype)
        # NOTE: the taps that read padding only add zeros (to zeros: no -0.0 is lost), so they are skipped
        taps = [(i, j) for i in live_taps(kh, x.shape[2], OH, sh, ph) for j in live_taps(kw, x.shape[3], OW, sw, pw)]
        for i, j in taps:
            y += xp[(slice(None), slice(None)) + _offset_slice(i, j, 1, 1, sh, sw, OH, OW)]
        if count_include_pad or (ph == 0 and pw == 0):
            scale = np.asarray(1.0 / (kh * kw), x.dtype)
        else:  # divide by the number of real (unpadded) elements in each window
            ones = _pad(np.ones((1, 1) + x.shape[2:], x.dtype), ph, pw)
            count = sum(ones[(0, 0) + _offset_slice(i, j, 1, 1, sh, sw, OH, OW)] for i, j in taps)
            scale = (1.0 / count).astype(x.dtype)
        self.scale, self.geom = scale, (x.shape, xp.shape, taps, stride, padding, out)
        return y * scale

    def backward(self, dy):
        shape, xp_shape, taps, (sh, sw), (ph, pw), (OH, OW) = self.geom
        g = dy * self.scale
        dxp = np.zeros(xp_shape, dy.dtype)
        for i, j in taps:  # the skipped taps would write padding only, cut off below
            dxp[(slice(None), slice(None)) + _offset_slice(i, j, 1, 1, sh, sw, OH, OW)] += g
        return dxp[:, :, ph:ph + shape[2], pw:pw + shape[3]]

    def backward_graph(self, dy):  # NOTE: the double backward (conv_grad.py)
        from .conv_grad import avg_pool2d_backward_graph
        return avg_pool2d_backward_graph(self, dy)


def avg_pool2d(input: Tensor, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
               padding: int | tuple[int, int] = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Tensor:
    """Mean over each window (zero padding; with ``count_include_pad=False`` the pad is left out of the count;
    ``divisor_override`` replaces the count); with ``ceil_mode`` the last window may be cut by the input's end and
    then divides by what it holds of the input and padding (PyTorch's rule).

    Shape:
        - Shape as ``max_pool2d``.
    """
    if divisor_override is not None and (isinstance(divisor_override, bool) or not isinstance(
            divisor_override, numbers.Integral) or divisor_override == 0):
        raise ValueError(f"avg_pool2d: divisor_override must be None or a nonzero int, got {divisor_override!r}")
    k, s, p, out = _pool_args("avg_pool2d", input, kernel_size, stride, padding, padded=True,
                              ceil_mode=bool(ceil_mode))
    if not ceil_mode and divisor_override is None:
        return _AvgPool2d.apply(input, kernel=k, stride=s, padding=p, out=out,
                                count_include_pad=bool(count_include_pad))
    # the window sums, as the mean over a zero-padded copy (extra zeros where ceil_mode's last window overhangs)
    # times kh*kw, then divided by PyTorch's divisor
    H, W = input.shape[2:]
    extra = [max(0, (o - 1) * st + kk - (size + 2 * pp)) for o, st, kk, size, pp in zip(out, s, k, (H, W), p)]
    check_array_size("avg_pool2d", "the padded input", input.shape[:2] + (H + 2 * p[0] + extra[0],
                     W + 2 * p[1] + extra[1]), input.dtype.itemsize, kernel_size=k, stride=s, padding=p)
    xp = pad(input, (p[1], p[1] + extra[1], p[0], p[0] + extra[0]))
    mean = _AvgPool2d.apply(xp, kernel=k, stride=s, padding=(0, 0), out=out, count_include_pad=True)
    if divisor_override is not None:
        scale = np.asarray(k[0] * k[1] / divisor_override)
    else:
        ch, cw = (_window_counts(size, kk, st, pp, o, bool(count_include_pad))
                  for size, kk, st, pp, o in zip((H, W), k, s, p, out))
        scale = (k[0] * k[1]) / (ch[:, None] * cw[None, :])
    return mean * Tensor(scale.astype(input.dtype))


def _window_counts(size, k, stride, padding, out, include_pad):
    """The divisor of each of ``out`` windows along one axis, PyTorch's avg_pool rule: the window's taps inside
    [-padding, size + padding) (include_pad) or inside [0, size)."""
    start = np.arange(out) * stride - padding
    end = np.minimum(start + k, size + padding)
    if include_pad:
        return end - start
    return np.minimum(end, size) - np.maximum(start, 0)


def adaptive_avg_pool2d(input: Tensor, output_size: int | None | tuple[int | None, int | None]) -> Tensor:
    """Average pooling to ``output_size`` (``OH`` or ``(OH, OW)``, None keeps that size), as PyTorch's: output
    ``o`` averages input ``[floor(o*H/OH), ceil((o+1)*H/OH))``; windows may overlap. Output size 1 is a mean, a
    size that divides the input is ``avg_pool2d`` with kernel = stride = H // OH.

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, C, OH, OW)``
    """
    check_tensor("adaptive_avg_pool2d", input, 4)
    OH, OW = _adaptive_size("adaptive_avg_pool2d", input, output_size)
    H, W = input.shape[2:]
    if (OH, OW) == (1, 1):
        return input.mean(axis=(2, 3), keepdims=True)
    if H % OH == 0 and W % OW == 0:
        return avg_pool2d(input, (H // OH, W // OW))
    # any other size: window o covers [floor(o*H/OH), ceil((o+1)*H/OH)); the window sums as two matmuls with 0/1
    # matrices (rows (OH, H), cols (W, OW)), then divided by the window areas
    (rows, ch), (cols, cw) = _adaptive_windows(H, OH), _adaptive_windows(W, OW)
    dt = input.dtype
    sums = Tensor(rows.astype(dt)) @ input @ Tensor(cols.T.astype(dt))
    return sums * Tensor((1.0 / (ch[:, None] * cw[None, :])).astype(dt))


def _adaptive_size(fn, x, output_size):
    """output_size as (OH, OW) ints >= 1; None keeps that input size (PyTorch's rule)."""
    v = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    if len(v) == 2:
        v = tuple(x.shape[2 + a] if o is None else o for a, o in enumerate(v))
    OH, OW = pair(fn, "output_size", v, 1)
    check_array_size(fn, "the output", x.shape[:2] + (OH, OW), x.dtype.itemsize, output_size=(OH, OW))
    return OH, OW


def _adaptive_windows(size, out):
    """PyTorch's adaptive windows along one axis: a 0/1 matrix (out, size), row o set on
    [floor(o*size/out), ceil((o+1)*size/out)), and each window's length."""
    o = np.arange(out)
    start, end = (o * size) // out, -((-(o + 1) * size) // out)
    h = np.arange(size)
    return ((h >= start[:, None]) & (h < end[:, None])), end - start


# ------------------------------------------------------------------ max over tap tables (dilated, adaptive)

def _dilated_taps(size, k, stride, padding, dilation, out):
    """(k, out) tap table of a dilated window along one axis: the input index tap t reads for output o, -1 where
    it reads padding."""
    idx = np.arange(out)[None, :] * stride - padding + np.arange(k)[:, None] * dilation
    return np.where((idx >= 0) & (idx < size), idx, -1)


def _adaptive_taps(size, out):
    """(T, out) tap table of PyTorch's adaptive windows (T the longest window), -1 past a window's end."""
    o = np.arange(out)
    start, end = (o * size) // out, -((-(o + 1) * size) // out)
    idx = start[None, :] + np.arange(int((end - start).max()))[:, None]
    return np.where(idx < end[None, :], idx, -1)


class _MaxPoolTaps(Function):
    # x: (N, C, H, W); rows: (Th, OH), cols: (Tw, OW) tap tables (-1: padding) -> y, argmax: (N, C, OH, OW)
    # The rule of the max_pool2d_forward kernels (reference.max_pool2d_forward) over taps in window order: the
    # first real tap starts the window, a later one wins when greater or NaN. Backward scatters dy through argmax
    # with the backend's max_pool2d_backward kernel, as _MaxPool2d does.
    def forward(self, x, rows, cols, fn):
        N, C, H, W = x.shape
        y = np.full((N, C, rows.shape[1], cols.shape[1]), -np.inf, x.dtype)
        argmax = np.full(y.shape, -1, np.int64)
        for r in rows:
            for c in cols:
                valid = (r >= 0)[:, None] & (c >= 0)[None, :]
                if not valid.any():
                    continue
                v = x[:, :, np.maximum(r, 0)[:, None], np.maximum(c, 0)[None, :]]
                take = valid & ((argmax < 0) | (v > y) | np.isnan(v))
                y = np.where(take, v, y)
                argmax = np.where(take, r[:, None] * W + c[None, :], argmax)
        if y.size and argmax.min() < 0:
            # PyTorch returns -inf and an index outside the input here; refused instead of a silent wrong index
            raise ValueError(f"{fn}: a window reads padding only (dilation and ceil_mode place all of its taps "
                             f"outside the input {H}x{W}); use a smaller dilation or padding")
        self.argmax, self.shape = argmax, x.shape
        return y

    def backward(self, dy):
        dx = np.zeros(self.shape, dy.dtype)
        if dx.size and dy.size:
            kernels.kernels().max_pool2d_backward(dx, np.ascontiguousarray(dy), self.argmax)
        return dx

    def backward_graph(self, dy):  # NOTE: the double backward (conv_grad.py), as _MaxPool2d's
        from .conv_grad import max_pool2d_backward_graph
        return max_pool2d_backward_graph(self, dy)


def adaptive_max_pool2d(input: Tensor, output_size: int | None | tuple[int | None, int | None],
                        return_indices: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Max pooling to ``output_size`` (``OH`` or ``(OH, OW)``, None keeps that size) over PyTorch's adaptive
    windows (those of ``adaptive_avg_pool2d``: output ``o`` reads input ``[floor(o*H/OH), ceil((o+1)*H/OH))``).
    ``return_indices``: also the int64 index ``h*W + w`` of each maximum (the first; a NaN wins).

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, C, OH, OW)`` (and the indices, of the same shape)
    """
    check_tensor("adaptive_max_pool2d", input, 4)
    OH, OW = _adaptive_size("adaptive_max_pool2d", input, output_size)
    H, W = input.shape[2:]
    if H == 0 or W == 0:
        raise ValueError(f"adaptive_max_pool2d: input must have non-empty spatial dims, got shape {input.shape}")
    y, ctx = _MaxPoolTaps.apply_with_ctx(input, rows=_adaptive_taps(H, OH), cols=_adaptive_taps(W, OW),
                                         fn="adaptive_max_pool2d")
    return (y, _indices(ctx)) if return_indices else y


# ------------------------------------------------------------------ max_unpool2d

class _MaxUnpool2d(Function):
    # x, indices: (N, C, H, W) -> y: (N, C, OH, OW) zero but y[n, c].flat[indices[n, c]] = x[n, c]
    def forward(self, x, indices, out):
        N, C = x.shape[:2]
        y = np.zeros((N, C) + out, x.dtype)
        planes = np.arange(N * C)[:, None]
        # NOTE: a repeated index keeps the last value, as PyTorch's CPU loop does
        y.reshape(N * C, -1)[planes, indices.reshape(N * C, -1)] = x.reshape(N * C, -1)
        self.planes, self.indices, self.shape = planes, indices.reshape(N * C, -1), x.shape
        return y

    def backward(self, dy):  # a gather, at every index (also a repeated one), as PyTorch's
        return dy.reshape(self.planes.shape[0], -1)[self.planes, self.indices].reshape(self.shape)

    def backward_graph(self, dy):  # NOTE: the double backward (conv_grad.py)
        from .conv_grad import max_unpool2d_backward_graph
        return max_unpool2d_backward_graph(self, dy)


def max_unpool2d(input: Tensor, indices: Tensor, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] | None = None, padding: int | tuple[int, int] = 0,
                 output_size: tuple[int, ...] | list[int] | None = None) -> Tensor:
    """The inverse of ``max_pool2d(..., return_indices=True)``: zeros of the pooled input's size with each value
    put back at its index (``y[n, c].flat[indices[n, c, h, w]] = input[n, c, h, w]``; a repeated index keeps the
    last value). ``stride`` defaults to ``kernel_size``.

    Shape:
        - Input and indices: ``(N, C, H, W)``
        - Output: ``(N, C, OH, OW)`` with ``OH = (H - 1)*stride - 2*padding + kh`` (same for W), or ``output_size``
          (``(OH, OW)`` or ``(N, C, OH, OW)``; within ``stride`` of that default, as PyTorch)
    """
    fn = "max_unpool2d"
    check_tensor(fn, input, 4)
    if not isinstance(indices, Tensor) or indices.dtype != np.int64 or indices.shape != input.shape:
        raise ValueError(f"{fn}: indices must be an int64 Tensor of the input's shape {input.shape}, got "
                         f"{getattr(indices, 'dtype', type(indices).__name__)} {getattr(indices, 'shape', '')}")
    k = pair(fn, "kernel_size", kernel_size, 1)
    s = k if stride is None else pair(fn, "stride", stride, 1)
    p = pair(fn, "padding", padding, 0)
    default = tuple((size - 1) * st - 2 * pp + kk for size, st, pp, kk in zip(input.shape[2:], s, p, k))
    if output_size is None:
        out = default
    else:
        out = tuple(output_size)[-2:] if isinstance(output_size, (tuple, list)) else None
        if out is None or len(tuple(output_size)) not in (2, 4) or any(
                isinstance(o, bool) or not isinstance(o, numbers.Integral) for o in out):
            raise ValueError(f"{fn}: output_size must be (OH, OW) or (N, C, OH, OW) ints, got {output_size!r}")
        for o, dflt, st in zip(out, default, s):
            if not dflt - st < o < dflt + st:
                raise ValueError(f"{fn}: output_size {tuple(output_size)} must be within stride {s} of the "
                                 f"default size {default}")
        out = tuple(int(o) for o in out)
    if out[0] < 1 or out[1] < 1:
        raise ValueError(f"{fn}: the output size {out} must be positive (kernel_size {k}, stride {s}, "
                         f"padding {p})")
    check_array_size(fn, "the output", input.shape[:2] + out, input.dtype.itemsize, kernel_size=k, stride=s,
                     padding=p)
    idx = _host(functools.partial(_unpool_indices, fn, out), indices.data)
    return _MaxUnpool2d.apply(input, indices=idx, out=out)


def _indices(ctx):
    """A max pool's argmax as a tensor. NOTE: a host computation reading the node when it runs, so that the
    indices of a step compiled by minigrad.compile are each replay's own."""
    return Tensor(_host(lambda: ctx.argmax))


def _unpool_indices(fn, out, idx):
    """The indices checked against the output size, C-contiguous (a host computation: replayed on each step's)."""
    if idx.size and (idx.min() < 0 or idx.max() >= out[0] * out[1]):
        raise IndexError(f"{fn}: indices must be in [0, OH*OW) = [0, {out[0] * out[1]}) for output size {out}, "
                         f"got values in [{idx.min()}, {idx.max()}]")
    return np.ascontiguousarray(idx)


# ------------------------------------------------------------------ conv1d, conv_transpose2d

def _single(fn, name, v, minimum):
    """``v`` (an int or a 1-tuple of ints) as an int >= minimum."""
    vals = tuple(v) if isinstance(v, (tuple, list)) else (v,)
    if len(vals) != 1 or isinstance(vals[0], bool) or not isinstance(vals[0], numbers.Integral) \
            or vals[0] < minimum:
        raise ValueError(f"{fn}: {name} must be an int (or a 1-tuple) >= {minimum}, got {v!r}")
    return int(vals[0])


def _check_conv(fn, input, weight, bias, groups, nd, transposed=False):
    """The checks conv2d makes, for ``nd`` spatial dims: dtypes, groups, channel counts, bias shape; returns
    (groups, out_channels). ``transposed``: weight is (C, O/groups, k...) (conv_transpose2d)."""
    check_tensor(fn, input, nd + 2)
    check_tensor(fn, weight, nd + 2)
    if weight.dtype != input.dtype:
        raise TypeError(f"{fn}: weight dtype {weight.dtype} differs from input dtype {input.dtype}")
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or groups < 1:
        raise ValueError(f"{fn}: groups must be a positive integer, got {groups!r}")
    groups, C = int(groups), input.shape[1]
    if transposed:
        if weight.shape[0] != C:
            raise ValueError(f"{fn}: input has {C} channels but weight expects {weight.shape[0]} (weight shape "
                             f"{weight.shape} is (in_channels, out_channels / groups, kh, kw))")
        if C % groups:
            raise ValueError(f"{fn}: in_channels {C} is not divisible by groups {groups}")
        O = weight.shape[1] * groups
    else:
        O, Cg = weight.shape[:2]
        if C != Cg * groups:
            raise ValueError(f"{fn}: input has {C} channels but weight expects {Cg * groups} "
                             f"({Cg} per group x {groups} groups; weight shape {weight.shape})")
        if O % groups:
            raise ValueError(f"{fn}: out_channels {O} is not divisible by groups {groups}")
    if bias is not None:
        check_tensor(fn, bias, 1)
        if bias.shape != (O,):
            raise ValueError(f"{fn}: bias must have shape ({O},) to match out_channels, got {bias.shape}")
    return groups, O


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int | tuple[int] = 1,
           padding: int | tuple[int] = 0, dilation: int | tuple[int] = 1, groups: int = 1) -> Tensor:
    """1-d cross-correlation, as ``torch.nn.functional.conv1d``: conv2d over a height-1 input (so every backend's
    conv2d kernels run it).

    ``y[n, o, l] = bias[o] + sum_{c in group(o), i} weight[o, c, i] * xpad[n, c, s*l + d*i]``

    Shape:
        - input (N, C, L) or (C, L), weight (O, C/groups, k), bias (O,), y (N, O, OL) (or (O, OL)) with
          ``OL = (L + 2*padding - dilation*(k - 1) - 1) // stride + 1``. Padding is zeros.
    """
    fn = "conv1d"
    if isinstance(input, Tensor) and input.ndim == 2:  # unbatched (C, L), as PyTorch
        return conv1d(input.reshape((1,) + input.shape), weight, bias, stride, padding, dilation,
                      groups).reshape((weight.shape[0], -1))
    _check_conv(fn, input, weight, bias, groups, 1)
    s, p, d = _single(fn, "stride", stride, 1), _single(fn, "padding", padding, 0), _single(fn, "dilation", dilation, 1)
    N, C, L = input.shape
    O, Cg, k = weight.shape
    _out_size(fn, L, k, s, p, d)
    y = conv2d(input.reshape((N, C, 1, L)), weight.reshape((O, Cg, 1, k)), bias, (1, s), (0, p), (1, d), groups)
    return y.reshape((N, O, y.shape[3]))


class _ConvTranspose2d(Function):
    # x: (N, C, H, W), weight: (C, Og, kh, kw), bias: (O,), O = G*Og -> y: (N, O, OH, OW)
    # y is conv2d's input gradient with dy = x: dcols = weight^T @ x (one GEMM per group), then the col2im kernel.
    # The conv2d over y's size has H2 >= H outputs (H2 > H only when output_padding >= stride): x is extended by
    # zeros to (H2, W2), which add nothing. Backward is conv2d's forward and weight gradient on dy:
    #   cols = im2col(dy) (G*Kg, N*L2), Kg = Og*kh*kw, L2 = H2*W2
    #   dx = weight (G, Cg, Kg) @ cols, cropped to (H, W)      dweight = x' (G, Cg, N*L2) @ cols^T
    def forward(self, x, weight, *bias, stride, padding, dilation, groups, out):
        N, C, H, W = x.shape
        _, Og, kh, kw = weight.shape
        G, (OH, OW) = groups, out
        Cg, O, Kg = C // G, Og * G, Og * kh * kw
        H2, W2 = (out_size(o, kk, st, pp, dd) for o, kk, st, pp, dd in zip(out, (kh, kw), stride, padding, dilation))
        L2 = H2 * W2
        cause = dict(stride=stride, padding=padding, dilation=dilation)
        check_array_size("conv_transpose2d", "the im2col columns (out_channels*kh*kw, N*H2*W2)", (O * Kg // Og, N * L2),
                         x.dtype.itemsize, **cause)
        xe = np.zeros((G, Cg, N, H2, W2), x.dtype)  # x batch-inner, zero-extended: the layout of cols' columns
        xe[:, :, :, :H, :W] = x.reshape(N, G, Cg, H, W).transpose(1, 2, 0, 3, 4)
        xe = xe.reshape(G, Cg, N * L2)
        w = weight.reshape(G, Cg, Kg)
        y = np.zeros((N, O, OH, OW), x.dtype)
        if y.size and xe.size:  # NOTE: the kernels take no empty arrays
            cols = np.matmul(w.transpose(0, 2, 1), xe).reshape(O * kh * kw, N * L2)
            kernels.kernels().col2im(y, cols, kh, kw, stride, padding, dilation)
        if bias:
            y += bias[0].reshape(1, O, 1, 1)
        self.xe, self.w = xe, w
        self.geom = (x.shape, weight.shape, stride, padding, dilation, G, H2, W2)
        return y

    def backward(self, dy):
        (N, C, H, W), wshape, stride, padding, dilation, G, H2, W2 = self.geom
        _, Og, kh, kw = wshape
        Cg, O, Kg, L2 = C // G, Og * G, Og * kh * kw, H2 * W2
        dx = dweight = dbias = None
        if len(self.needs_input_grad) > 2 and self.needs_input_grad[2]:
            dbias = dy.sum(axis=(0, 2, 3))
        if self.needs_input_grad[0] or self.needs_input_grad[1]:
            cols = np.zeros((O * kh * kw, N * L2), dy.dtype)
            if dy.size:
                kernels.kernels().im2col(cols, np.ascontiguousarray(dy), kh, kw, stride, padding, dilation)
            cols = cols.reshape(G, Kg, N * L2)
            if self.needs_input_grad[0]:
                dxe = np.matmul(self.w, cols).reshape(G, Cg, N, H2, W2)  # conv2d's forward of dy
                dx = np.ascontiguousarray(dxe[:, :, :, :H, :W].transpose(2, 0, 1, 3, 4)).reshape(N, C, H, W)
            if self.needs_input_grad[1]:
                dweight = np.matmul(self.xe, cols.transpose(0, 2, 1)).reshape(wshape)  # conv2d's weight gradient
        return (dx, dweight, dbias)[:len(self.parents)]

    def backward_graph(self, dy):  # NOTE: the double backward (conv_grad.py)
        from .conv_grad import conv_transpose2d_backward_graph
        return conv_transpose2d_backward_graph(self, dy)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int | tuple[int, int] = 1,
                     padding: int | tuple[int, int] = 0, output_padding: int | tuple[int, int] = 0, groups: int = 1,
                     dilation: int | tuple[int, int] = 1) -> Tensor:
    """2-d transposed convolution, as ``torch.nn.functional.conv_transpose2d``: the adjoint of conv2d with the same
    stride, padding, dilation and groups (its input gradient), so the conv2d kernels of every backend run it.

    ``y[n, g*Og + o, h*s - p + i*d, w*s - p + j*d] += x[n, c, h, w] * weight[c, o, i, j]`` for c in group g.

    Shape:
        - input (N, C, H, W), weight (C, O/groups, kh, kw), bias (O,), y (N, O, OH, OW) with
          ``OH = (H - 1)*stride - 2*padding + dilation*(kh - 1) + output_padding + 1`` (same for W);
          output_padding (added on the bottom and right only) must be smaller than stride or dilation.
    """
    fn = "conv_transpose2d"
    G, O = _check_conv(fn, input, weight, bias, groups, 2, transposed=True)
    s, p = pair(fn, "stride", stride, 1), pair(fn, "padding", padding, 0)
    d, op = pair(fn, "dilation", dilation, 1), pair(fn, "output_padding", output_padding, 0)
    if any(o >= st and o >= dd for o, st, dd in zip(op, s, d)):
        raise ValueError(f"{fn}: output_padding {op} must be smaller than either stride {s} or dilation {d}")
    H, W = input.shape[2:]
    kh, kw = weight.shape[2:]
    out = tuple((size - 1) * st - 2 * pp + dd * (kk - 1) + o + 1
                for size, st, pp, dd, kk, o in zip((H, W), s, p, d, (kh, kw), op))
    if out[0] < 1 or out[1] < 1:
        raise ValueError(f"{fn}: input {H}x{W} with stride {s}, padding {p}, dilation {d}, kernel {(kh, kw)} and "
                         f"output_padding {op} gives output size {out[0]}x{out[1]}: padding is too large")
    for size, kk, st, pp, dd in zip(out, (kh, kw), s, p, d):
        window_out_size(fn, size, kk, st, pp, dd)  # the 64-bit index rule of the conv2d it is the adjoint of
    check_array_size(fn, "the output", input.shape[:1] + (O,) + out, input.dtype.itemsize, stride=s, padding=p,
                     dilation=d, output_padding=op)
    args = (input, weight) + ((bias,) if bias is not None else ())
    return _ConvTranspose2d.apply(*args, stride=s, padding=p, dilation=d, groups=G, out=out)
