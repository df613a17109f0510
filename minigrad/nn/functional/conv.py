"""Convolution and pooling functionals: conv2d, max/avg/adaptive-avg pooling (``torch.nn.functional`` semantics).

Layout legend: N batch, C input channels, O output channels, G groups (Cg = C/G, Og = O/G), H, W input size,
OH, OW output size, kh, kw kernel size, K = Cg*kh*kw (one column of im2col), L = OH*OW.

conv2d is one autograd node. Forward: the ``im2col`` kernel writes ``cols (G*K, N*L)`` (rows (c, i, j), columns
(n, oh, ow); padding never copied), then one batched matmul ``weight (G, Og, K) @ cols`` on a strided view (a small
GEMM per sample) writes y in (N, O, OH, OW) order. Backward, with dy' = dy batch-inner (G, Og, N*L):
  dweight = dy' @ cols^T (one GEMM over the batch), or sum_n dy[n] @ cols[:, n]^T when L >= K
  dbias   = dy summed over N, OH, OW
  dcols   = weight^T (G, K, Og) @ dy' (one GEMM)    dx = col2im(dcols) (kernel, accumulating into zeros)
max_pool2d calls the ``max_pool2d_forward`` kernel, which saves the int64 index of each window's first maximum,
and ``max_pool2d_backward`` scatters dy through it. The kernels come from the active backend
(``minigrad.kernels.kernels()``), like the norms'. avg_pool2d stays in NumPy: one strided slice per kernel offset
in forward and backward, so no window is ever materialized.
"""
import numbers

import numpy as np

from minigrad import kernels
from minigrad.kernels.rules import check_array_size, live_taps, window_out_size
from minigrad.tensor import Function

from .checks import check_tensor, pair


def _out_size(fn, size, k, s, p, d):
    out = window_out_size(fn, size, k, s, p, d)
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

class _Conv2d(Function):
    # x: (N, C, H, W), weight: (O, Cg, kh, kw), bias: (O,) -> y: (N, O, OH, OW)
    def forward(self, x, weight, *bias, stride, padding, dilation, groups):
        N, C, H, W = x.shape
        O, Cg, kh, kw = weight.shape
        G, Og, Kg = groups, O // groups, Cg * kh * kw
        OH = _out_size("conv2d", H, kh, stride[0], padding[0], dilation[0])
        OW = _out_size("conv2d", W, kw, stride[1], padding[1], dilation[1])
        L = OH * OW
        # NOTE: the NumPy backend pads a copy: checked for every backend, so that all refuse the same geometry
        size, cause = x.dtype.itemsize, dict(padding=padding, stride=stride, dilation=dilation)
        check_array_size("conv2d", "the output", (N, O, OH, OW), size, **cause)
        check_array_size("conv2d", "the im2col columns (C*kh*kw, N*OH*OW)", (C * kh * kw, N * L), size, **cause)
        check_array_size("conv2d", "the padded input", (N, C, H + 2 * padding[0], W + 2 * padding[1]), size, **cause)
        cols = np.empty((C * kh * kw, N * L), x.dtype)
        if x.size:  # NOTE: the kernels take no empty arrays; an empty batch gives an empty y below
            kernels.kernels().im2col(cols, np.ascontiguousarray(x), kh, kw, stride, padding, dilation)
        w = weight.reshape(G, Og, Kg)
        # NOTE: cols (K, N*L) viewed as (N, G, Kg, L) is strided, not copied: BLAS reads each sample's (Kg, L)
        # block with leading dimension N*L, and the batched matmul writes y directly in (N, O, OH, OW) order
        y = np.matmul(w, cols.reshape(G, Kg, N, L).transpose(2, 0, 1, 3)).reshape(N, O, OH, OW)
        if bias:
            b = bias[0].reshape(1, O, 1, 1)
            if b.dtype == y.dtype:
                y += b
            else:
                y = y + b
        self.cols, self.w = cols, w
        self.geom = (x.shape, weight.shape, stride, padding, dilation, groups, OH, OW)
        return y

    def backward(self, dy):
        (N, C, H, W), wshape, stride, padding, dilation, G, OH, OW = self.geom
        O, Cg, kh, kw = wshape
        Og, Kg, L = O // G, Cg * kh * kw, OH * OW
        cols = self.cols
        dy4 = dy.reshape(N, G, Og, L)
        dyt = None  # dy batch-inner, (G, Og, N*L): the layout of cols' columns
        dx = dweight = dbias = None
        if self.needs_input_grad[1]:
            if L >= Kg:
                # dweight[g] = sum_n dy[n, g] @ cols[g, :, n]^T: a small GEMM per sample (long inner dim L), then a
                # sum over N. NOTE: measured faster than one GEMM over N*L when L >> Kg (conv 1->6 at 28x28: 4x)
                colsv = cols.reshape(G, Kg, N, L).transpose(2, 0, 3, 1)  # (N, G, L, Kg), strided
                dweight = np.matmul(dy4, colsv).sum(axis=0).reshape(wshape)
            else:  # one GEMM over the whole batch: dweight[g] = dy (Og, N*L) @ cols[g]^T (N*L, Kg)
                dyt = np.ascontiguousarray(dy4.transpose(1, 2, 0, 3)).reshape(G, Og, N * L)
                dweight = np.matmul(dyt, cols.reshape(G, Kg, N * L).transpose(0, 2, 1)).reshape(wshape)
        if len(self.needs_input_grad) > 2 and self.needs_input_grad[2]:
            dbias = dy4.sum(axis=(0, 3)).reshape(O)
        if self.needs_input_grad[0]:
            if dyt is None:
                dyt = np.ascontiguousarray(dy4.transpose(1, 2, 0, 3)).reshape(G, Og, N * L)
            # dcols (G, Kg, N*L) = weight^T @ dy in one GEMM, already in cols' (K, N*L) layout; col2im adds it up
            dcols = np.matmul(self.w.transpose(0, 2, 1), dyt).reshape(C * kh * kw, N * L)
            dx = np.zeros((N, C, H, W), dcols.dtype)
            if dx.size:
                kernels.kernels().col2im(dx, dcols, kh, kw, stride, padding, dilation)
        return (dx, dweight, dbias)[:len(self.parents)]

    def backward_graph(self, dy):  # NOTE: the double backward; conv_grad.py builds on this module, so imported here
        from .conv_grad import conv2d_backward_graph
        return conv2d_backward_graph(self, dy)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-d cross-correlation, as ``torch.nn.functional.conv2d``.

    ``y[n, o] = bias[o] + sum_{c in group(o), i, j} weight[o, c, i, j] * xpad[n, c, s*oh + d*i, s*ow + d*j]``
    Shape: input (N, C, H, W), weight (O, C/groups, kh, kw), bias (O,), y (N, O, OH, OW) with
    ``OH = (H + 2*padding - dilation*(kh - 1) - 1) // stride + 1`` (same for W). Padding is zeros.
    """
    check_tensor("conv2d", input, 4)
    check_tensor("conv2d", weight, 4)
    if weight.dtype != input.dtype:
        raise TypeError(f"conv2d: weight dtype {weight.dtype} differs from input dtype {input.dtype}")
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or groups < 1:
        raise ValueError(f"conv2d: groups must be a positive integer, got {groups!r}")
    O, Cg = weight.shape[:2]
    C = input.shape[1]
    if C != Cg * groups:
        raise ValueError(f"conv2d: input has {C} channels but weight expects {Cg * groups} "
                         f"({Cg} per group x {groups} groups; weight shape {weight.shape})")
    if O % groups:
        raise ValueError(f"conv2d: out_channels {O} is not divisible by groups {groups}")
    args = (input, weight)
    if bias is not None:
        check_tensor("conv2d", bias, 1)
        if bias.shape != (O,):
            raise ValueError(f"conv2d: bias must have shape ({O},) to match weight's out_channels, got {bias.shape}")
        args += (bias,)
    return _Conv2d.apply(*args, stride=pair("conv2d", "stride", stride, 1),
                         padding=pair("conv2d", "padding", padding, 0),
                         dilation=pair("conv2d", "dilation", dilation, 1), groups=int(groups))


# ------------------------------------------------------------------ pooling

def _pool_args(fn, x, kernel_size, stride, padding, padded=False):
    """The pooling geometry, checked: ``padded`` when the op makes a padded copy of x (avg_pool2d)."""
    check_tensor(fn, x, 4)
    k = pair(fn, "kernel_size", kernel_size, 1)
    s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) \
        else pair(fn, "stride", stride, 1)
    p = pair(fn, "padding", padding, 0)
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"{fn}: padding {p} must be at most half the kernel size {k}")
    N, C, H, W = x.shape
    out = (_out_size(fn, H, k[0], s[0], p[0], 1), _out_size(fn, W, k[1], s[1], p[1], 1))
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


def max_pool2d(input, kernel_size, stride=None, padding=0):
    """Max over each ``kernel_size`` window (stride defaults to kernel_size; padding is -inf, at most k/2).
    Shape: (N, C, H, W) -> (N, C, OH, OW), ``OH = (H + 2*padding - kh) // stride + 1``."""
    k, s, p, out = _pool_args("max_pool2d", input, kernel_size, stride, padding)
    return _MaxPool2d.apply(input, kernel=k, stride=s, padding=p, out=out)


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


def avg_pool2d(input, kernel_size, stride=None, padding=0, count_include_pad=True):
    """Mean over each window (zero padding; with ``count_include_pad=False`` the pad is left out of the count).
    Shape as ``max_pool2d``."""
    k, s, p, out = _pool_args("avg_pool2d", input, kernel_size, stride, padding, padded=True)
    return _AvgPool2d.apply(input, kernel=k, stride=s, padding=p, out=out, count_include_pad=bool(count_include_pad))


def adaptive_avg_pool2d(input, output_size):
    """Average pooling to ``output_size``. Supported: output size 1 (global average pooling), or an output size
    that divides the input size (then it is ``avg_pool2d`` with kernel = stride = H // OH). Others raise
    NotImplementedError."""
    check_tensor("adaptive_avg_pool2d", input, 4)
    OH, OW = pair("adaptive_avg_pool2d", "output_size", output_size, 1)
    H, W = input.shape[2:]
    if (OH, OW) == (1, 1):
        return input.mean(axis=(2, 3), keepdims=True)
    if H % OH or W % OW:
        raise NotImplementedError(f"adaptive_avg_pool2d: only output sizes that divide the input size are "
                                  f"supported; got output {(OH, OW)} for input {(H, W)}")
    return avg_pool2d(input, (H // OH, W // OW))
