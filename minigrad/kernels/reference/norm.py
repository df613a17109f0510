"""NumPy reference: batch norm, group norm (layer and instance norm are group norm) and the running statistics.

Dimension letters:
  N batch, C channels, S spatial size, G groups (num_groups), M = size of a reduction set
  channels layout  x: (N, C, S)   batch norm: one reduction set per channel c, M = N*S
  group layout     x: (N, C, S)   group norm: one reduction set per (n, g), the C/G channels of group g, M = C/G*S
                                  (layer norm is (R, D, 1) with G=1; instance norm is G=C)

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
import numpy as np

from minigrad.kernels import coefficients

# ----------------------------------------------------------------------------------------------------------
# batch norm, channels layout x: (N, C, S); statistics per channel over N and S (see the module docstring)


def batch_norm_forward(y, mean, rstd, x, weight, bias, eps, n_threads=1):
    """Training-mode forward. y = (x - mean)*rstd*weight + bias; saves mean, rstd: (C,) float64."""
    x64 = x.astype(np.float64)
    mu = x64.mean(axis=(0, 2))
    var = ((x64 - mu[:, None]) ** 2).mean(axis=(0, 2))
    with np.errstate(divide="ignore"):  # NOTE: var + eps = 0 (eps=0) gives rstd = inf, as in C
        r = 1.0 / np.sqrt(var + eps)
    mean[...] = mu
    rstd[...] = r
    y[...] = (x64 - mu[:, None]) * (r * weight)[:, None] + bias.astype(np.float64)[:, None]


def batch_renorm_forward(y, mean, rstd, r, d, x, weight, bias, running_mean, running_var, r_max, d_max, eps,
                         n_threads=1):
    """Batch Renormalization's training forward (Ioffe, 2017): the batch's mean and rstd as batch_norm_forward,
    then with sigma = sqrt(running_var + eps) (the running statistics before this step's update)
        r = clip(sigma_B/sigma, 1/r_max, r_max),   d = clip((mean - running_mean)/sigma, -d_max, d_max)
        y = (xhat*r + d)*weight + bias
    saves mean, rstd, r, d: (C,) float64 (r and d are constants in backward: dx is batch norm's with weight*r)."""
    batch_norm_forward(y, mean, rstd, x, weight, bias, eps)
    with np.errstate(divide="ignore", invalid="ignore"):  # NOTE: eps = 0 and a zero variance, as in C
        rstd_run = 1.0 / np.sqrt(running_var.astype(np.float64) + eps)
        r[...] = np.clip(rstd_run / rstd, 1.0 / r_max, r_max)  # sigma_B/sigma
        d[...] = np.clip((mean - running_mean.astype(np.float64)) * rstd_run, -d_max, d_max)
    xhat = (x.astype(np.float64) - mean[:, None]) * rstd[:, None]
    w = weight.astype(np.float64)[:, None]
    y[...] = (xhat * r[:, None] + d[:, None]) * w + bias.astype(np.float64)[:, None]


def batch_norm_inference(y, x, running_mean, running_var, weight, bias, eps, n_threads=1):
    """y = (x - running_mean)/sqrt(running_var + eps)*weight + bias, per channel."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = 1.0 / np.sqrt(running_var.astype(np.float64) + eps)
        y[...] = ((x.astype(np.float64) - running_mean.astype(np.float64)[:, None]) * (r * weight)[:, None]
                  + bias.astype(np.float64)[:, None])


def batch_norm_backward(dx, dweight, dbias, dy, x, mean, rstd, weight, n_threads=1, r=None, d=None):
    """dx = rstd*w*(dy - mean(dy) - xhat*mean(dy*xhat)); dweight = sum(dy*xhat); dbias = sum(dy). With Batch
    Renorm's r and d ((C,) float64, both or neither): w is X(w*r) and then dweight = X(r*dweight + d*dbias) from the
    X sums (coefficients.renorm_weight, renorm_dweight)."""
    weight = coefficients.renorm_weight(weight, r, d)
    dy64 = dy.astype(np.float64)
    xhat = (x.astype(np.float64) - mean[:, None]) * rstd[:, None]  # recomputed: forward saved mean, rstd
    sum_dy = dy64.sum(axis=(0, 2))
    sum_dy_xhat = (dy64 * xhat).sum(axis=(0, 2))
    M = x.shape[0] * x.shape[2]
    dx[...] = (rstd * weight)[:, None] * (dy64 - (sum_dy / M)[:, None] - xhat * (sum_dy_xhat / M)[:, None])
    dweight[...] = sum_dy_xhat
    dbias[...] = sum_dy
    if r is not None:
        coefficients.renorm_dweight(dweight, dbias, r, d)


def ghost_batch_norm_forward(y, mean, rstd, x, weight, bias, chunk, eps, n_threads=1):
    """Ghost batch norm: batch_norm_forward on each contiguous chunk of ``chunk`` samples (the last may be
    smaller); row k of mean, rstd: (G, C) float64 is chunk k's."""
    for k, n0 in enumerate(range(0, x.shape[0], chunk)):
        batch_norm_forward(y[n0:n0 + chunk], mean[k], rstd[k], x[n0:n0 + chunk], weight, bias, eps)


def ghost_batch_norm_backward(dx, dweight, dbias, dy, x, mean, rstd, weight, chunk, n_threads=1):
    """batch_norm_backward per chunk; dweight, dbias are the sums over chunks of each chunk's, rounded to X."""
    C, dtype = x.shape[1], x.dtype
    acc = np.zeros((2, C))
    part = np.empty((2, C), dtype)
    for k, n0 in enumerate(range(0, x.shape[0], chunk)):
        s = slice(n0, n0 + chunk)
        batch_norm_backward(dx[s], part[0], part[1], dy[s], x[s], mean[k], rstd[k], weight)
        acc += part
    dweight[...] = acc[0]
    dbias[...] = acc[1]


# ----------------------------------------------------------------------------------------------------------
# group norm, x: (N, C, S) viewed as N*G sets of (C/G)*S values; affine per channel


def group_norm_forward(y, mean, rstd, x, weight, bias, num_groups, eps, n_threads=1):
    """Statistics per (n, g); y = (x - mean[n, g])*rstd[n, g]*weight[c] + bias[c]. mean, rstd: (N, G) float64."""
    N, C, S = x.shape
    G = num_groups
    xg = x.astype(np.float64).reshape(N, G, (C // G) * S)
    mu = xg.mean(axis=2)
    var = ((xg - mu[:, :, None]) ** 2).mean(axis=2)
    with np.errstate(divide="ignore"):  # NOTE: var + eps = 0 (eps=0) gives rstd = inf, as in C
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


# ----------------------------------------------------------------------------------------------------------
# running statistics, (C,) buffers updated from the saved (N, C) mean and rstd


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
