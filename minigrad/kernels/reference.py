"""The NumPy reference kernels: the readable oracle every other backend is tested against.

Signatures, shapes and dtypes are those of ``minigrad.kernels.contract`` (outputs first, preallocated by the
caller; a trailing ``n_threads`` that NumPy ignores). Everything is computed in float64 with two-pass
statistics and cast to the output dtype once, at the end. Speed is not a goal here; clarity is.

Dimension letters:
  N batch, C channels, S spatial size, R rows, D row length, G groups (num_groups), M = size of a reduction set
  channels layout  x: (N, C, S)   batch norm: one reduction set per channel c, M = N*S
  group layout     x: (N, C, S)   group norm: one reduction set per (n, g), the C/G channels of group g, M = C/G*S
                                  (layer norm is (R, D, 1) with G=1; instance norm is G=C)
  rows layout      x: (R, D)      log_softmax: one reduction set per row, M = D

Normalization math, written once (referenced by the Cython and Numba kernels):
  forward   mean = sum(x)/M,  var = sum((x - mean)^2)/M (biased),  rstd = 1/sqrt(var + eps)
            xhat = (x - mean)*rstd,  y = xhat*weight[c] + bias[c]
  backward  with g = dy*weight[c] (the gradient reaching xhat), per reduction set:
              dxhat/dx = rstd*(I - 1/M - xhat xhat^T/M)      (NOTE: d(var)/d(mean) = 0)
              dx      = rstd*(g - mean(g) - xhat*mean(g*xhat))
            batch norm has weight[c] constant over its set, so dx = rstd*w*(dy - mean(dy) - xhat*mean(dy*xhat)).
            dweight[c] = sum(dy*xhat),  dbias[c] = sum(dy)      over every element of channel c (all n, s)
  Forward saves only mean and rstd; backward recomputes xhat from x, mean and rstd.
"""
import math

import numpy as np

# ----------------------------------------------------------------------------------------------------------
# log_softmax, rows layout x: (R, D)
#   y  = x - max(x) - log(sum(exp(x - max(x))))                       per row
#   dx = dy - exp(y)*sum(dy)                                          per row (softmax = exp(y) sums to 1)


def log_softmax_forward(y, x, n_threads=1):
    """y[r] = x[r] - logsumexp(x[r]).  x, y: (R, D)."""
    x64 = x.astype(np.float64)
    m = x64.max(axis=1, keepdims=True)
    y[...] = x64 - m - np.log(np.exp(x64 - m).sum(axis=1, keepdims=True))


def log_softmax_backward(dx, dy, y, n_threads=1):
    """dx[r] = dy[r] - exp(y[r])*sum(dy[r]).  dx, dy, y: (R, D)."""
    dy64 = dy.astype(np.float64)
    dx[...] = dy64 - np.exp(y.astype(np.float64)) * dy64.sum(axis=1, keepdims=True)


# ----------------------------------------------------------------------------------------------------------
# batch norm, channels layout x: (N, C, S); statistics per channel over N and S (see the module docstring)


def batch_norm_forward(y, mean, rstd, x, weight, bias, eps, n_threads=1):
    """Training-mode forward. y = (x - mean)*rstd*weight + bias; saves mean, rstd: (C,) float64."""
    x64 = x.astype(np.float64)
    mu = x64.mean(axis=(0, 2))
    var = ((x64 - mu[:, None]) ** 2).mean(axis=(0, 2))
    r = 1.0 / np.sqrt(var + eps)
    mean[...] = mu
    rstd[...] = r
    y[...] = (x64 - mu[:, None]) * (r * weight)[:, None] + bias.astype(np.float64)[:, None]


def batch_norm_inference(y, x, running_mean, running_var, weight, bias, eps, n_threads=1):
    """y = (x - running_mean)/sqrt(running_var + eps)*weight + bias, per channel."""
    r = 1.0 / np.sqrt(running_var.astype(np.float64) + eps)
    y[...] = ((x.astype(np.float64) - running_mean.astype(np.float64)[:, None]) * (r * weight)[:, None]
              + bias.astype(np.float64)[:, None])


def batch_norm_backward(dx, dweight, dbias, dy, x, mean, rstd, weight, n_threads=1):
    """dx = rstd*w*(dy - mean(dy) - xhat*mean(dy*xhat)); dweight = sum(dy*xhat); dbias = sum(dy)."""
    dy64 = dy.astype(np.float64)
    xhat = (x.astype(np.float64) - mean[:, None]) * rstd[:, None]  # recomputed: forward saved mean, rstd
    sum_dy = dy64.sum(axis=(0, 2))
    sum_dy_xhat = (dy64 * xhat).sum(axis=(0, 2))
    M = x.shape[0] * x.shape[2]
    dx[...] = (rstd * weight)[:, None] * (dy64 - (sum_dy / M)[:, None] - xhat * (sum_dy_xhat / M)[:, None])
    dweight[...] = sum_dy_xhat
    dbias[...] = sum_dy


# ----------------------------------------------------------------------------------------------------------
# group norm, x: (N, C, S) viewed as N*G sets of (C/G)*S values; affine per channel


def group_norm_forward(y, mean, rstd, x, weight, bias, num_groups, eps, n_threads=1):
    """Statistics per (n, g); y = (x - mean[n, g])*rstd[n, g]*weight[c] + bias[c]. mean, rstd: (N, G) float64."""
    N, C, S = x.shape
    G = num_groups
    xg = x.astype(np.float64).reshape(N, G, (C // G) * S)
    mu = xg.mean(axis=2)
    var = ((xg - mu[:, :, None]) ** 2).mean(axis=2)
    r = 1.0 / np.sqrt(var + eps)
    mean[...] = mu
    rstd[...] = r
    xhat = ((xg - mu[:, :, None]) * r[:, :, None]).reshape(N, C, S)
    y[...] = xhat * weight.astype(np.float64)[:, None] + bias.astype(np.float64)[:, None]


def group_norm_backward(dx, dweight, dbias, dy, x, mean, rstd, weight, num_groups, n_threads=1):
    """dx = rstd*(g - mean(g) - xhat*mean(g*xhat)) per (n, g) with g = dy*weight[c];
    dweight[c] = sum over n, s of dy*xhat; dbias[c] = sum over n, s of dy."""
    N, C, S = x.shape
    G = num_groups
    dy64 = dy.astype(np.float64)
    xg = x.astype(np.float64).reshape(N, G, (C // G) * S)
    xhat = ((xg - mean[:, :, None]) * rstd[:, :, None]).reshape(N, C, S)  # recomputed from mean, rstd
    dweight[...] = (dy64 * xhat).sum(axis=(0, 2))
    dbias[...] = dy64.sum(axis=(0, 2))
    g = (dy64 * weight.astype(np.float64)[:, None]).reshape(N, G, -1)
    xhat = xhat.reshape(N, G, -1)
    dxg = rstd[:, :, None] * (g - g.mean(axis=2, keepdims=True) - xhat * (g * xhat).mean(axis=2, keepdims=True))
    dx[...] = dxg.reshape(N, C, S)


# ==========================================================================================================
# convolution and pooling windows (im2col, col2im, max pooling); the math needs no statistics, so these work in
# the arrays' own dtype. x: (N, C, H, W); kh, kw the window; stride, padding, dilation (h, w) pairs.
#   im2col   cols (K, L), K = C*kh*kw ordered (c, i, j), L = N*OH*OW ordered (n, oh, ow):
#            cols[(c, i, j), (n, oh, ow)] = xpad[n, c, oh*sh + i*dh, ow*sw + j*dw]   (xpad: x with zero padding)
#            so conv2d is y = weight (O, K) @ cols, dweight = dy (O, L) @ cols^T and dcols = weight^T @ dy.
#   col2im   the adjoint of im2col: dx[n, c, h, w] += every cols entry that im2col copied from x[n, c, h, w]
#   max pool y[n, c, oh, ow] = max of x over the window (padding is -inf and never wins); argmax = h*W + w of the
#            first maximum in window order, as PyTorch does; a NaN wins over numbers, the last NaN over others.
#            backward: dx = 0, then dx[n, c].flat[argmax] += dy (overlapping windows may share an index)


def _window_slices(i, j, stride, dilation, OH, OW):
    """The (h, w) slices of the padded input that kernel offset (i, j) reads for every output position."""
    (sh, sw), (dh, dw) = stride, dilation
    return (slice(i * dh, i * dh + sh * (OH - 1) + 1, sh), slice(j * dw, j * dw + sw * (OW - 1) + 1, sw))


def _out_size(padded, kh, kw, stride, dilation):
    """(OH, OW) of a window sliding over a padded (H, W) plane."""
    return tuple((size - d * (k - 1) - 1) // s + 1 for size, k, s, d in zip(padded, (kh, kw), stride, dilation))


def im2col(cols, x, kh, kw, stride, padding, dilation, n_threads=1):
    """cols[(c, i, j), (n, oh, ow)] = xpad[n, c, oh*sh + i*dh, ow*sw + j*dw].  x: (N, C, H, W), cols: (K, L)."""
    N, C = x.shape[:2]
    (ph, pw) = padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    OH, OW = _out_size(xp.shape[2:], kh, kw, stride, dilation)
    cols6 = cols.reshape(C, kh, kw, N, OH, OW)
    for i in range(kh):
        for j in range(kw):
            cols6[:, i, j] = xp[(slice(None), slice(None)) + _window_slices(i, j, stride, dilation, OH, OW)] \
                .transpose(1, 0, 2, 3)


def col2im(dx, cols, kh, kw, stride, padding, dilation, n_threads=1):
    """dx += the adjoint of im2col (accumulates: the caller zeroes dx for a plain col2im).  cols: (K, L)."""
    N, C, H, W = dx.shape
    (ph, pw) = padding
    OH, OW = _out_size((H + 2 * ph, W + 2 * pw), kh, kw, stride, dilation)
    cols6 = cols.reshape(C, kh, kw, N, OH, OW)
    dxp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dx.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[(slice(None), slice(None)) + _window_slices(i, j, stride, dilation, OH, OW)] += \
                cols6[:, i, j].transpose(1, 0, 2, 3)
    dx += dxp[:, :, ph:ph + H, pw:pw + W]


def max_pool2d_forward(y, argmax, x, kh, kw, stride, padding, n_threads=1):
    """y = max of x over each window, argmax = h*W + w of the first maximum (NaN wins).  y, argmax: (N, C, OH, OW)."""
    N, C, H, W = x.shape
    OH, OW = y.shape[2:]
    (sh, sw), (ph, pw) = stride, padding
    best = np.full(y.shape, -np.inf, x.dtype)
    idx = np.full(y.shape, -1, np.int64)
    for i in range(kh):
        for j in range(kw):
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


def running_stats_update(running_mean, running_var, mean, rstd, momentum, eps, count, n_threads=1):
    """running = (1 - momentum)*running + momentum*stat, in place, for the batch mean and the unbiased variance.
    mean, rstd: (N, C) float64, averaged over the N rows (one row for batch norm; instance norm averages its
    instances, as PyTorch does). The unbiased variance comes back from the saved rstd = 1/sqrt(var + eps) in
    float64. Roundings: (1 - momentum)*running in X, then plus momentum*stat in float64, then rounded to X."""
    var = rstd * rstd
    np.divide(1.0, var, out=var)
    var -= eps
    var *= count / (count - 1)
    for running, stat in ((running_mean, mean.sum(axis=0) / mean.shape[0]), (running_var, var.sum(axis=0) / var.shape[0])):
        running *= 1.0 - momentum
        stat *= momentum
        stat += running
        np.copyto(running, stat, casting="unsafe")


# ----------------------------------------------------------------------------------------------------------
# optimizer updates, a flattened parameter p: (M,) and its state, updated in place, in X precision.
# Each line is one NumPy operation on X arrays with the hyperparameters rounded to X first (NumPy's rule for a
# Python float with an X array), so the compiled backends, which repeat the same operations in the same order,
# give the same bits. The rules are PyTorch's (torch.optim, foreach off).


def sgd_update(param, momentum_buffer, grad, lr, momentum, dampening, weight_decay, nesterov, first, n_threads=1):
    """One SGD step with momentum:
        g = grad + weight_decay*p
        buf = g (first step), else momentum*buf + (1 - dampening)*g
        p -= lr*(g + momentum*buf if nesterov else buf)"""
    g = grad + weight_decay * param if weight_decay else grad
    buf = momentum_buffer
    if first:
        buf[...] = g
    else:
        buf *= momentum
        buf += (1 - dampening) * g if dampening else g  # NOTE: (1 - 0)*g == g exactly
    step = g + momentum * buf if nesterov else buf
    param -= step * lr


def adam_update(param, exp_avg, exp_avg_sq, grad, lr, beta1, beta2, eps, weight_decay, decoupled, step,
                n_threads=1):
    """One Adam step (step counts from 1); AdamW when ``decoupled``:
        p *= 1 - lr*weight_decay (decoupled)      or   g = grad + weight_decay*p (L2)
        m += (1 - beta1)*(g - m)                        (PyTorch's lerp)
        v = beta2*v + (1 - beta2)*g*g
        p -= lr/(1 - beta1^step) * m / (sqrt(v)/sqrt(1 - beta2^step) + eps)"""
    g = grad
    if decoupled:
        param *= 1 - lr * weight_decay
    elif weight_decay:
        g = grad + weight_decay * param
    exp_avg += (1 - beta1) * (g - exp_avg)
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * g * g
    # NOTE: math.sqrt, a Python float: NumPy rounds it to X (np.sqrt would give a float64 scalar, which promotes)
    denom = np.sqrt(exp_avg_sq) / math.sqrt(1 - beta2 ** step) + eps
    param -= lr / (1 - beta1 ** step) * exp_avg / denom


from minigrad.kernels.reference_phases import (  # noqa: E402,F401  (the phase kernels)
    channel_apply,
    channel_backward_apply,
    channel_backward_sums,
    channel_stats,
    row_apply,
    row_backward_apply,
    row_backward_sums,
    row_stats,
)
