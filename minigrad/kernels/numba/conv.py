"""Numba kernels: convolution and pooling windows, im2col, col2im, conv2d_direct, conv2d_strided, max_pool2d (the same
loops as minigrad/_ext/conv.pyx and conv_direct.h, whose headers explain them; conv2d_strided and its gradients as
plain sums over the window, without the phase split of conv_strided.h; the math:
minigrad/kernels/reference/conv.py).

x: (N, C, H, W); cols: (K, L), K = C*kh*kw ordered (c, i, j), L = N*OH*OW ordered (n, oh, ow). Flat 1-D arrays;
prange over samples (im2col, col2im) or over the N*C planes (pooling): every iteration writes only its own memory.
No fastmath: nothing here is a reduction.
"""
import numpy as np
from numba import njit, prange

from minigrad.kernels.reference.conv import flipped_weight
from minigrad.kernels.rules import out_size

from .common import _threads

@njit(cache=True)
def _first(off, s):
    """The smallest output index o >= 0 whose input index o*s + off is >= 0."""
    return 0 if off >= 0 else (s - 1 - off) // s


@njit(cache=True)
def _end(off, s, size, O):
    """One past the largest output index o < O whose input index o*s + off is < size."""
    return 0 if size - 1 - off < 0 else min(O, (size - 1 - off) // s + 1)


@njit(parallel=True, cache=True)
def _im2col(cols, x, N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, OH, OW):
    L = OH * OW
    for n in prange(N):
        for c in range(C):
            xc = (n * C + c) * H * W
            for i in range(kh):
                hoff = i * dh - ph
                for j in range(kw):
                    woff = j * dw - pw
                    ow0 = min(_first(woff, sw), OW)
                    ow1 = max(ow0, _end(woff, sw, W, OW))
                    out = ((c * kh + i) * kw + j) * N * L + n * L
                    for oh in range(OH):
                        h = oh * sh + hoff
                        row = cols[out + oh * OW:out + (oh + 1) * OW]
                        if h < 0 or h >= H:
                            row[:] = 0
                            continue
                        xr = xc + h * W + woff
                        row[:ow0] = 0
                        for ow in range(ow0, ow1):
                            row[ow] = x[xr + ow * sw]
                        row[ow1:] = 0


@njit(parallel=True, cache=True)
def _col2im(dx, cols, N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, OH, OW):
    L = OH * OW
    for n in prange(N):
        for c in range(C):
            dxc = (n * C + c) * H * W
            for i in range(kh):
                hoff = i * dh - ph
                oh0 = _first(hoff, sh)
                oh1 = _end(hoff, sh, H, OH)
                for j in range(kw):
                    woff = j * dw - pw
                    ow0 = _first(woff, sw)
                    ow1 = _end(woff, sw, W, OW)
                    src = ((c * kh + i) * kw + j) * N * L + n * L
                    for oh in range(oh0, oh1):
                        dxr = dxc + (oh * sh + hoff) * W + woff
                        for ow in range(ow0, ow1):
                            dx[dxr + ow * sw] += cols[src + oh * OW + ow]


def _geometry(H, W, kh, kw, stride, padding, dilation):
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    return kh, kw, sh, sw, ph, pw, dh, dw, out_size(H, kh, sh, ph, dh), out_size(W, kw, sw, pw, dw)


def im2col(cols, x, kh, kw, stride, padding, dilation, n_threads):
    """cols[(c, i, j), (n, oh, ow)] = xpad[n, c, oh*sh + i*dh, ow*sw + j*dw] (see reference.im2col)."""
    N, C, H, W = x.shape
    _threads(n_threads)
    _im2col(cols.reshape(-1), x.reshape(-1), N, C, H, W, *_geometry(H, W, kh, kw, stride, padding, dilation))


def col2im(dx, cols, kh, kw, stride, padding, dilation, n_threads):
    """dx += the adjoint of im2col (see reference.col2im)."""
    N, C, H, W = dx.shape
    _threads(n_threads)
    _col2im(dx.reshape(-1), cols.reshape(-1), N, C, H, W, *_geometry(H, W, kh, kw, stride, padding, dilation))


@njit(parallel=True, cache=True)
def _conv2d_direct(y, x, weight, N, C, H, W, O, kh, kw, ph, pw):
    # per sample: x zero padded into xp (C, Hp*Wp + kw - 1), the output over the padded width (q = oh*Wp + ow,
    # the last kw - 1 columns of each row garbage), so that each tap reads the contiguous run xp[c, q + i*Wp + j]
    Hp, Wp = H + 2 * ph, W + 2 * pw
    OH, OW, K = Hp - kh + 1, Wp - kw + 1, C * kh * kw
    Q = OH * Wp
    for n in prange(N):
        xp = np.zeros((C, Hp * Wp + kw - 1), x.dtype)
        for c in range(C):
            for h in range(H):
                for w in range(W):
                    xp[c, (h + ph) * Wp + pw + w] = x[((n * C + c) * H + h) * W + w]
        acc = np.empty(Q, x.dtype)
        for o in range(O):
            acc[:] = 0
            for c in range(C):
                for i in range(kh):
                    for j in range(kw):
                        wv = weight[o * K + (c * kh + i) * kw + j]
                        base = i * Wp + j
                        for q in range(Q):
                            acc[q] += wv * xp[c, base + q]
            for oh in range(OH):
                for ow in range(OW):
                    y[((n * O + o) * OH + oh) * OW + ow] = acc[oh * Wp + ow]


def conv2d_direct(y, x, weight, kh, kw, padding, n_threads):
    """The convolution at unit stride and dilation (see reference.conv2d_direct)."""
    N, C, H, W = x.shape
    _threads(n_threads)
    _conv2d_direct(y.reshape(-1), x.reshape(-1), weight.reshape(-1), N, C, H, W, y.shape[1], kh, kw, *padding)


@njit(parallel=True, cache=True)
def _conv2d_direct_weight_grad(dweight, x, dy, N, C, H, W, O, kh, kw, ph, pw, OH, OW):
    # a thread per (o, c) pair over every sample: each writes its own kh*kw entries, summed in sample order
    Hp, Wp = H + 2 * ph, W + 2 * pw
    for oc in prange(O * C):
        o, c = oc // C, oc % C
        for i in range(kh):
            for j in range(kw):
                acc = dweight.dtype.type(0)
                for n in range(N):
                    xc, dyo = (n * C + c) * H * W, (n * O + o) * OH * OW
                    for oh in range(OH):
                        h = oh + i - ph
                        if h < 0 or h >= H:
                            continue
                        for ow in range(max(0, pw - j), min(OW, W + pw - j)):
                            acc += dy[dyo + oh * OW + ow] * x[xc + h * W + ow + j - pw]
                dweight[(o * C + c) * kh * kw + i * kw + j] = acc


def conv2d_direct_weight_grad(dweight, x, dy, kh, kw, padding, n_threads):
    """The weight gradient of conv2d_direct (see reference.conv2d_direct_weight_grad)."""
    N, C, H, W = x.shape
    _threads(n_threads)
    _conv2d_direct_weight_grad(dweight.reshape(-1), x.reshape(-1), dy.reshape(-1), N, C, H, W, dy.shape[1], kh, kw,
                               *padding, dy.shape[2], dy.shape[3])


def conv2d_direct_backward(dx, dweight, x, dy, weight, kh, kw, padding, n_threads):
    """Both gradients of conv2d_direct (see reference.conv2d_direct_backward): the two kernels above."""
    conv2d_direct_weight_grad(dweight, x, dy, kh, kw, padding, n_threads)
    conv2d_direct(dx, dy, flipped_weight(weight, x.shape[1], kh, kw), kh, kw,
                  (kh - 1 - padding[0], kw - 1 - padding[1]), n_threads)


@njit(parallel=True, cache=True)
def _conv2d_strided(y, x, weight, N, C, H, W, O, kh, kw, sh, sw, ph, pw, OH, OW):
    # a thread per (sample, output channel): each output one sum over the window's taps that read inside x
    K = C * kh * kw
    for no in prange(N * O):
        n, o = no // O, no % O
        for oh in range(OH):
            for ow in range(OW):
                acc = y.dtype.type(0)
                for c in range(C):
                    for i in range(kh):
                        h = oh * sh + i - ph
                        if h < 0 or h >= H:
                            continue
                        for j in range(kw):
                            w = ow * sw + j - pw
                            if 0 <= w < W:
                                acc += weight[o * K + (c * kh + i) * kw + j] * x[((n * C + c) * H + h) * W + w]
                y[((n * O + o) * OH + oh) * OW + ow] = acc


def conv2d_strided(y, x, weight, kh, kw, stride, padding, n_threads):
    """The convolution at any stride, dilation 1 (see reference.conv2d_strided)."""
    N, C, H, W = x.shape
    _threads(n_threads)
    _conv2d_strided(y.reshape(-1), x.reshape(-1), weight.reshape(-1), N, C, H, W, y.shape[1], kh, kw, *stride,
                    *padding, y.shape[2], y.shape[3])


@njit(parallel=True, cache=True)
def _conv2d_strided_input_grad(dx, dy, weight, N, C, H, W, O, kh, kw, sh, sw, ph, pw, OH, OW):
    # a thread per (sample, input channel): each dx entry one sum over the taps (i, j) whose output position
    # (h + ph - i)/sh, (w + pw - j)/sw is whole and inside dy, then the output channels
    K = C * kh * kw
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        for h in range(H):
            for w in range(W):
                acc = dx.dtype.type(0)
                for o in range(O):
                    for i in range(kh):
                        if (h + ph - i) % sh != 0:
                            continue
                        oh = (h + ph - i) // sh
                        if oh < 0 or oh >= OH:
                            continue
                        for j in range(kw):
                            if (w + pw - j) % sw != 0:
                                continue
                            ow = (w + pw - j) // sw
                            if 0 <= ow < OW:
                                acc += weight[o * K + (c * kh + i) * kw + j] * dy[((n * O + o) * OH + oh) * OW + ow]
                dx[((n * C + c) * H + h) * W + w] = acc


def conv2d_strided_input_grad(dx, dy, weight, kh, kw, stride, padding, n_threads):
    """The input gradient of conv2d_strided (see reference.conv2d_strided_input_grad)."""
    N, C, H, W = dx.shape
    _threads(n_threads)
    _conv2d_strided_input_grad(dx.reshape(-1), dy.reshape(-1), weight.reshape(-1), N, C, H, W, dy.shape[1], kh, kw,
                               *stride, *padding, dy.shape[2], dy.shape[3])


@njit(parallel=True, cache=True)
def _conv2d_strided_weight_grad(dweight, x, dy, N, C, H, W, O, kh, kw, sh, sw, ph, pw, OH, OW):
    # a thread per (o, c) pair over every sample: each writes its own kh*kw entries, summed in sample order
    for oc in prange(O * C):
        o, c = oc // C, oc % C
        for i in range(kh):
            for j in range(kw):
                acc = dweight.dtype.type(0)
                for n in range(N):
                    xc, dyo = (n * C + c) * H * W, (n * O + o) * OH * OW
                    for oh in range(OH):
                        h = oh * sh + i - ph
                        if h < 0 or h >= H:
                            continue
                        for ow in range(OW):
                            w = ow * sw + j - pw
                            if 0 <= w < W:
                                acc += dy[dyo + oh * OW + ow] * x[xc + h * W + w]
                dweight[(o * C + c) * kh * kw + i * kw + j] = acc


def conv2d_strided_weight_grad(dweight, x, dy, kh, kw, stride, padding, n_threads):
    """The weight gradient of conv2d_strided (see reference.conv2d_strided_weight_grad)."""
    N, C, H, W = x.shape
    _threads(n_threads)
    _conv2d_strided_weight_grad(dweight.reshape(-1), x.reshape(-1), dy.reshape(-1), N, C, H, W, dy.shape[1], kh, kw,
                                *stride, *padding, dy.shape[2], dy.shape[3])


def conv2d_strided_backward(dx, dweight, x, dy, weight, kh, kw, stride, padding, n_threads):
    """Both gradients of conv2d_strided (see reference.conv2d_strided_backward): the two kernels above."""
    conv2d_strided_weight_grad(dweight, x, dy, kh, kw, stride, padding, n_threads)
    conv2d_strided_input_grad(dx, dy, weight, kh, kw, stride, padding, n_threads)


@njit(parallel=True, cache=True)
def _max_pool_forward(y, argmax, x, P, H, W, kh, kw, sh, sw, ph, pw, OH, OW):
    for p in prange(P):
        xp = x[p * H * W:(p + 1) * H * W]
        for oh in range(OH):
            h0 = max(oh * sh - ph, 0)
            h1 = min(oh * sh - ph + kh, H)
            for ow in range(OW):
                w0 = max(ow * sw - pw, 0)
                w1 = min(ow * sw - pw + kw, W)
                best = h0 * W + w0  # the window's first element (padding at most k/2: never empty)
                m = xp[best]
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        v = xp[h * W + w]
                        if v > m or v != v:  # NOTE: strict > keeps the first maximum; a NaN always wins
                            m = v
                            best = h * W + w
                y[p * OH * OW + oh * OW + ow] = m
                argmax[p * OH * OW + oh * OW + ow] = best


def max_pool2d_forward(y, argmax, x, kh, kw, stride, padding, n_threads):
    """y = max over each window, argmax = h*W + w of its first maximum (see reference.max_pool2d_forward)."""
    N, C, H, W = x.shape
    _threads(n_threads)
    _max_pool_forward(y.reshape(-1), argmax.reshape(-1), x.reshape(-1), N * C, H, W, kh, kw, *stride, *padding,
                      y.shape[2], y.shape[3])


@njit(parallel=True, cache=True)
def _max_pool_backward(dx, dy, argmax, P, HW, M):
    for p in prange(P):  # a plane per iteration: its indices point into its own plane, so writes never collide
        dxp = dx[p * HW:(p + 1) * HW]
        dxp[:] = 0
        for k in range(M):
            dxp[argmax[p * M + k]] += dy[p * M + k]


def max_pool2d_backward(dx, dy, argmax, n_threads):
    """dx = 0, then dx[n, c].flat[argmax] += dy."""
    N, C, H, W = dx.shape
    _threads(n_threads)
    _max_pool_backward(dx.reshape(-1), dy.reshape(-1), argmax.reshape(-1), N * C, H * W,
                       dy.shape[2] * dy.shape[3])
