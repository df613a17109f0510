"""NumPy reference: convolution and pooling windows (im2col, col2im, max pooling). Conventions:
``minigrad.kernels.reference``."""
import numpy as np

from minigrad.kernels.rules import live_taps, out_size

# convolution and pooling windows (im2col, col2im, max pooling); the math needs no statistics, so these work in
# the arrays' own dtype. x: (N, C, H, W); kh, kw the window; stride, padding, dilation (h, w) pairs.
#   im2col   cols (K, L), K = C*kh*kw ordered (c, i, j), L = N*OH*OW ordered (n, oh, ow):
#            cols[(c, i, j), (n, oh, ow)] = xpad[n, c, oh*sh + i*dh, ow*sw + j*dw]   (xpad: x with zero padding)
#            so conv2d is y = weight (O, K) @ cols, dweight = dy (O, L) @ cols^T and dcols = weight^T @ dy.
#   col2im   the adjoint of im2col: dx[n, c, h, w] += every cols entry that im2col copied from x[n, c, h, w]
#   conv2d_direct  the convolution itself at unit stride and dilation, weight (O, K) with K ordered (c, i, j):
#            y[n, o, oh, ow] = sum over (c, i, j) of weight[o, (c, i, j)] * xpad[n, c, oh + i, ow + j]
#            (y = weight @ im2col(x), without the columns; the compiled kernels: minigrad/_ext/conv_direct.h)
#   conv2d_direct_weight_grad  its weight gradient, dweight (O, K):
#            dweight[o, (c, i, j)] = sum over (n, oh, ow) of dy[n, o, oh, ow] * xpad[n, c, oh + i, ow + j]
#   conv2d_strided  the convolution at any stride (dilation 1), weight (O, K):
#            y[n, o, oh, ow] = sum over (c, i, j) of weight[o, (c, i, j)] * xpad[n, c, oh*sh + i, ow*sw + j]
#            (the compiled kernels split x into its stride phases: minigrad/_ext/conv_strided.h)
#   conv2d_strided_input_grad  its input gradient, dx (N, C, H, W) (the adjoint of the map x -> y above):
#            dx[n, c, h, w] = sum of weight[o, (c, i, j)] * dy[n, o, oh, ow] over oh*sh + i = h + ph, ow*sw + j = w + pw
#   conv2d_strided_weight_grad  its weight gradient, dweight (O, K):
#            dweight[o, (c, i, j)] = sum over (n, oh, ow) of dy[n, o, oh, ow] * xpad[n, c, oh*sh + i, ow*sw + j]
#   max pool y[n, c, oh, ow] = max of x over the window (padding is -inf and never wins); argmax = h*W + w of the
#            first maximum in window order, as PyTorch does; a NaN wins over numbers, the last NaN over others.
#            backward: dx = 0, then dx[n, c].flat[argmax] += dy (overlapping windows may share an index)


def _window_slices(i, j, stride, dilation, OH, OW):
    """The (h, w) slices of the padded input that kernel offset (i, j) reads for every output position."""
    (sh, sw), (dh, dw) = stride, dilation
    return (slice(i * dh, i * dh + sh * (OH - 1) + 1, sh), slice(j * dw, j * dw + sw * (OW - 1) + 1, sw))


def _out_sizes(H, W, kh, kw, stride, padding, dilation):
    """(OH, OW) of the window over an (H, W) plane."""
    return tuple(out_size(*a) for a in zip((H, W), (kh, kw), stride, padding, dilation))


def im2col(cols, x, kh, kw, stride, padding, dilation, n_threads=1):
    """cols[(c, i, j), (n, oh, ow)] = xpad[n, c, oh*sh + i*dh, ow*sw + j*dw].  x: (N, C, H, W), cols: (K, L)."""
    N, C, H, W = x.shape
    (ph, pw) = padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    OH, OW = _out_sizes(H, W, kh, kw, stride, padding, dilation)
    cols6 = cols.reshape(C, kh, kw, N, OH, OW)
    for i in range(kh):
        for j in range(kw):
            cols6[:, i, j] = xp[(slice(None), slice(None)) + _window_slices(i, j, stride, dilation, OH, OW)] \
                .transpose(1, 0, 2, 3)


def col2im(dx, cols, kh, kw, stride, padding, dilation, n_threads=1):
    """dx += the adjoint of im2col (accumulates: the caller zeroes dx for a plain col2im).  cols: (K, L)."""
    N, C, H, W = dx.shape
    (ph, pw) = padding
    OH, OW = _out_sizes(H, W, kh, kw, stride, padding, dilation)
    cols6 = cols.reshape(C, kh, kw, N, OH, OW)
    dxp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dx.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[(slice(None), slice(None)) + _window_slices(i, j, stride, dilation, OH, OW)] += \
                cols6[:, i, j].transpose(1, 0, 2, 3)
    dx += dxp[:, :, ph:ph + H, pw:pw + W]


def conv2d_direct(y, x, weight, kh, kw, padding, n_threads=1):
    """y[n, o, oh, ow] = sum_{c, i, j} weight[o, (c, i, j)] * xpad[n, c, oh + i, ow + j].  x: (N, C, H, W),
    weight: (O, C*kh*kw), y: (N, O, OH, OW); one product over channels per kernel offset."""
    N, C, H, W = x.shape
    (ph, pw), OH, OW = padding, y.shape[2], y.shape[3]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    w4 = weight.reshape(-1, C, kh, kw)
    acc = np.zeros(y.shape, x.dtype)
    for i in range(kh):
        for j in range(kw):
            acc += np.einsum("oc,nchw->nohw", w4[:, :, i, j], xp[:, :, i:i + OH, j:j + OW])
    y[...] = acc


def conv2d_direct_weight_grad(dweight, x, dy, kh, kw, padding, n_threads=1):
    """dweight[o, (c, i, j)] = sum_{n, oh, ow} dy[n, o, oh, ow] * xpad[n, c, oh + i, ow + j].  x: (N, C, H, W),
    dy: (N, O, OH, OW), dweight: (O, C*kh*kw); one product per kernel offset."""
    N, C, H, W = x.shape
    (ph, pw), OH, OW = padding, dy.shape[2], dy.shape[3]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dw4 = np.empty((dy.shape[1], C, kh, kw), x.dtype)
    for i in range(kh):
        for j in range(kw):
            dw4[:, :, i, j] = np.einsum("nohw,nchw->oc", dy, xp[:, :, i:i + OH, j:j + OW])
    dweight[...] = dw4.reshape(dweight.shape)


def flipped_weight(weight, C, kh, kw):
    """wf (C, O*kh*kw), wf[c, (o, i, j)] = weight[o, (c, kh-1-i, kw-1-j)] from weight (O, C*kh*kw): conv2d_direct of dy
    with it, at padding (kh-1-ph, kw-1-pw), is the input gradient."""
    return np.ascontiguousarray(weight.reshape(-1, C, kh, kw)[..., ::-1, ::-1].transpose(1, 0, 2, 3)).reshape(C, -1)


def conv2d_direct_backward(dx, dweight, x, dy, weight, kh, kw, padding, n_threads=1):
    """conv2d_direct's two gradients: dweight = conv2d_direct_weight_grad(x, dy); dx = conv2d_direct(dy, wf) with the
    flipped weight (``flipped_weight``) at padding (kh-1-ph, kw-1-pw)."""
    conv2d_direct_weight_grad(dweight, x, dy, kh, kw, padding)
    conv2d_direct(dx, dy, flipped_weight(weight, x.shape[1], kh, kw), kh, kw,
                  (kh - 1 - padding[0], kw - 1 - padding[1]))


def conv2d_strided(y, x, weight, kh, kw, stride, padding, n_threads=1):
    """y[n, o, oh, ow] = sum_{c, i, j} weight[o, (c, i, j)] * xpad[n, c, oh*sh + i, ow*sw + j].  x: (N, C, H, W),
    weight: (O, C*kh*kw), y: (N, O, OH, OW); one product over channels per kernel offset."""
    C, OH, OW = x.shape[1], y.shape[2], y.shape[3]
    (ph, pw) = padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    w4 = weight.reshape(-1, C, kh, kw)
    acc = np.zeros(y.shape, x.dtype)
    for i in range(kh):
        for j in range(kw):
            acc += np.einsum("oc,nchw->nohw", w4[:, :, i, j], xp[(Ellipsis,) + _window_slices(i, j, stride, (1, 1),
                                                                                               OH, OW)])
    y[...] = acc


def conv2d_strided_input_grad(dx, dy, weight, kh, kw, stride, padding, n_threads=1):
    """dx[n, c, h, w] = sum of weight[o, (c, i, j)] * dy[n, o, oh, ow] over oh*sh + i = h + ph, ow*sw + j = w + pw.
    dy: (N, O, OH, OW), weight: (O, C*kh*kw), dx: (N, C, H, W); the adjoint of conv2d_strided, one product per
    kernel offset added into a padded dx (the rows and columns of padding dropped at the end)."""
    N, C, H, W = dx.shape
    OH, OW = dy.shape[2:]
    (ph, pw) = padding
    w4 = weight.reshape(-1, C, kh, kw)
    dxp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dx.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[(Ellipsis,) + _window_slices(i, j, stride, (1, 1), OH, OW)] += \
                np.einsum("oc,nohw->nchw", w4[:, :, i, j], dy)
    dx[...] = dxp[:, :, ph:ph + H, pw:pw + W]


def conv2d_strided_weight_grad(dweight, x, dy, kh, kw, stride, padding, n_threads=1):
    """dweight[o, (c, i, j)] = sum_{n, oh, ow} dy[n, o, oh, ow] * xpad[n, c, oh*sh + i, ow*sw + j].
    x: (N, C, H, W), dy: (N, O, OH, OW), dweight: (O, C*kh*kw); one product per kernel offset."""
    C, OH, OW = x.shape[1], dy.shape[2], dy.shape[3]
    (ph, pw) = padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dw4 = np.empty((dy.shape[1], C, kh, kw), x.dtype)
    for i in range(kh):
        for j in range(kw):
            dw4[:, :, i, j] = np.einsum("nohw,nchw->oc", dy, xp[(Ellipsis,) + _window_slices(i, j, stride, (1, 1),
                                                                                              OH, OW)])
    dweight[...] = dw4.reshape(dweight.shape)


def conv2d_strided_backward(dx, dweight, x, dy, weight, kh, kw, stride, padding, n_threads=1):
    """conv2d_strided's two gradients: conv2d_strided_input_grad and conv2d_strided_weight_grad."""
    conv2d_strided_weight_grad(dweight, x, dy, kh, kw, stride, padding)
    conv2d_strided_input_grad(dx, dy, weight, kh, kw, stride, padding)


def max_pool2d_forward(y, argmax, x, kh, kw, stride, padding, n_threads=1):
    """y = max of x over each window, argmax = h*W + w of the first maximum (NaN wins).  y, argmax: (N, C, OH, OW)."""
    N, C, H, W = x.shape
    OH, OW = y.shape[2:]
    (sh, sw), (ph, pw) = stride, padding
    best = np.full(y.shape, -np.inf, x.dtype)
    idx = np.full(y.shape, -1, np.int64)
    for i in live_taps(kh, H, OH, sh, ph):  # NOTE: the other taps read padding only, which never wins
        for j in live_taps(kw, W, OW, sw, pw):
            h = (np.arange(OH) * sh - ph + i)[:, None]  # (OH, 1) input row read by offset i at each oh
            w = (np.arange(OW) * sw - pw + j)[None, :]  # (1, OW)
            valid = (h >= 0) & (h < H) & (w >= 0) & (w < W)  # (OH, OW): False where the window is on padding
            v = x[:, :, np.clip(h, 0, H - 1), np.clip(w, 0, W - 1)]
            take = valid & ((idx < 0) | (v > best) | np.isnan(v))  # the first valid element starts the window
            best = np.where(take, v, best)
            idx = np.where(take, h * W + w, idx)
    y[...] = best
    argmax[...] = idx


def max_pool2d_backward(dx, dy, argmax, n_threads=1):
    """dx = 0, then dx[n, c].flat[argmax[n, c]] += dy[n, c].  dx: (N, C, H, W); dy, argmax: (N, C, OH, OW)."""
    N, C, H, W = dx.shape
    dx[...] = 0
    planes = np.arange(N * C)[:, None]
    np.add.at(dx.reshape(N * C, H * W), (planes, argmax.reshape(N * C, -1)), dy.reshape(N * C, -1))
