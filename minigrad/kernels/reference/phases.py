"""The phase kernels in NumPy: the oracle of the normalization family's building blocks.

Signatures and shapes: ``minigrad.kernels.contract`` (the phase kernels). Every method of the family is a
composition of statistics -> coefficients (``minigrad.kernels.coefficients``) -> apply, and backward sums ->
coefficients -> backward apply, in one of two layouts:
  channels  x: (N, C, S)   one reduction set per channel c over N and S, M = N*S   (batch norm and its variants)
  rows      x: (R, D)      one reduction set per row r over D, M = D               (layer/RMS norm, per-sample sets)
``center=False`` takes no mean (RMSNorm, FRN): mean = 0 and m2 = sum(x^2). The ``*_relu`` channel phases fuse a
ReLU after the apply (batch norm + ReLU), the ``row_*_max`` phases a per-row threshold max(z, tau) after a per-row
apply (FRN + TLU): the backward recomputes the mask from x and the forward's coefficients.
Everything in float64, cast once at the end, as in ``reference.norm``.
"""
import numpy as np

# ----------------------------------------------------------------------------------------------------------
# channels layout x: (N, C, S)


def channel_stats(mean, m2, x, center, n_threads=1):
    """mean = E[x], m2 = sum((x - mean)^2) per channel (center=False: mean = 0, m2 = sum(x^2))."""
    x64 = x.astype(np.float64)
    mu = x64.mean(axis=(0, 2)) if center else np.zeros(x.shape[1])
    mean[...] = mu
    m2[...] = ((x64 - mu[:, None]) ** 2).sum(axis=(0, 2))


def channel_apply(y, x, shift, scale, offset, n_threads=1):
    """y = (x - shift[c])*scale[c] + offset[c]."""
    f = lambda a: a.astype(np.float64)[:, None]  # noqa: E731
    y[...] = (x.astype(np.float64) - f(shift)) * f(scale) + f(offset)


def channel_backward_sums(sdy, sdyx, dy, x, mean, n_threads=1):
    """sdy = sum(dy), sdyx = sum(dy*(x - mean[c])) per channel."""
    dy64 = dy.astype(np.float64)
    sdy[...] = dy64.sum(axis=(0, 2))
    sdyx[...] = (dy64 * (x.astype(np.float64) - mean[:, None])).sum(axis=(0, 2))


def channel_backward_apply(dx, dy, x, a, mdy, shift, b, k, n_threads=1):
    """dx = a[c]*(dy - mdy[c]) + b[c]*(x - shift[c]) + k[c]."""
    f = lambda v: v.astype(np.float64)[:, None]  # noqa: E731
    dx[...] = f(a) * (dy.astype(np.float64) - f(mdy)) + f(b) * (x.astype(np.float64) - f(shift)) + f(k)


def _pre_relu(x, shift, scale, offset):
    """The apply's value before the ReLU, rounded to X as the forward stores it (the mask is taken on this)."""
    f = lambda a: a.astype(np.float64)[:, None]  # noqa: E731
    return ((x.astype(np.float64) - f(shift)) * f(scale) + f(offset)).astype(x.dtype)


def channel_apply_relu(y, x, shift, scale, offset, n_threads=1):
    """y = max(0, (x - shift[c])*scale[c] + offset[c]); NaN stays NaN, -0 gives +0 (np.maximum's bits)."""
    z = _pre_relu(x, shift, scale, offset)
    y[...] = np.maximum(z, np.zeros((), x.dtype))


def channel_backward_sums_relu(sdy, sdyx, dy, x, mean, shift, scale, offset, n_threads=1):
    """With g = dy where z > 0, else 0, z = (x - shift[c])*scale[c] + offset[c] (the forward's value before the ReLU):
    sdy = sum(g), sdyx = sum(g*(x - mean[c])) per channel."""
    g = np.where(_pre_relu(x, shift, scale, offset) > 0, dy, np.zeros((), dy.dtype))
    channel_backward_sums(sdy, sdyx, g, x, mean)


def channel_backward_apply_relu(dx, dy, x, a, mdy, shift, b, k, scale, offset, n_threads=1):
    """dx = a[c]*(g - mdy[c]) + b[c]*(x - shift[c]) + k[c] with g as in channel_backward_sums_relu
    (shift is the forward's)."""
    g = np.where(_pre_relu(x, shift, scale, offset) > 0, dy, np.zeros((), dy.dtype))
    channel_backward_apply(dx, g, x, a, mdy, shift, b, k)


# ----------------------------------------------------------------------------------------------------------
# rows layout x: (R, D); optional per-column affine weight, bias: (D,)


def row_stats(mean, m2, x, center, n_threads=1):
    """mean = E[x], m2 = sum((x - mean)^2) per row (center=False: mean = 0, m2 = sum(x^2))."""
    x64 = x.astype(np.float64)
    mu = x64.mean(axis=1) if center else np.zeros(x.shape[0])
    mean[...] = mu
    m2[...] = ((x64 - mu[:, None]) ** 2).sum(axis=1)


def row_apply(y, x, shift, scale, offset, weight, bias, n_threads=1):
    """y = ((x - shift[r])*scale[r] + offset[r])*weight[d] + bias[d]."""
    f = lambda a: a.astype(np.float64)[:, None]  # noqa: E731
    y[...] = (((x.astype(np.float64) - f(shift)) * f(scale) + f(offset)) * weight.astype(np.float64)
              + bias.astype(np.float64))


def row_backward_sums(sg, sgx, dweight, dbias, dy, x, mean, rstd, weight, n_threads=1):
    """With g = dy*weight[d]: sg = sum(g), sgx = sum(g*(x - mean[r])) per row; dbias = sum(dy),
    dweight = sum(dy*xhat), xhat = (x - mean[r])*rstd[r], per column."""
    dy64 = dy.astype(np.float64)
    xc = x.astype(np.float64) - mean[:, None]
    g = dy64 * weight.astype(np.float64)
    sg[...] = g.sum(axis=1)
    sgx[...] = (g * xc).sum(axis=1)
    dbias[...] = dy64.sum(axis=0)
    dweight[...] = (dy64 * xc * rstd[:, None]).sum(axis=0)


def row_backward_apply(dx, dy, x, weight, a, mg, shift, b, k, n_threads=1):
    """dx = a[r]*(weight[d]*dy - mg[r]) + b[r]*(x - shift[r]) + k[r]."""
    f = lambda v: v.astype(np.float64)[:, None]  # noqa: E731
    dx[...] = (f(a) * (weight.astype(np.float64) * dy.astype(np.float64) - f(mg))
               + f(b) * (x.astype(np.float64) - f(shift)) + f(k))


def _pre_max(x, shift, scale, offset):
    """The per-row apply's value before the max, rounded to X as the forward stores it (the mask is taken on this)."""
    f = lambda a: a.astype(np.float64)[:, None]  # noqa: E731
    return ((x.astype(np.float64) - f(shift)) * f(scale) + f(offset)).astype(x.dtype)


def _max_split(dy, x, shift, scale, offset, tau):
    """(g, t): dy split between z and tau by Maximum's rule (z > tau: all to z; a tie: half each; else, NaN
    included, all to tau), masked entries 0 even for inf dy."""
    z, t = _pre_max(x, shift, scale, offset), tau[:, None]
    zero, half = np.zeros((), dy.dtype), dy * dy.dtype.type(0.5)
    return (np.where(z > t, dy, np.where(z == t, half, zero)),
            np.where(z > t, zero, np.where(z == t, half, dy)))


def row_apply_max(y, x, shift, scale, offset, tau, n_threads=1):
    """y = max((x - shift[r])*scale[r] + offset[r], tau[r]); NaN in either gives NaN (np.maximum)."""
    y[...] = np.maximum(_pre_max(x, shift, scale, offset), tau[:, None])


def _per_row(x, *per_channel):
    """x: (N, C, S) as its N*C rows (R, D), and each (C,) array as the rows' (R,) values (row (n, c) takes [c])."""
    N, C, S = x.shape
    return (x.reshape(N * C, S),) + tuple(np.tile(a, N) for a in per_channel)


def row_norm_apply_max(y, rstd, scale, x, weight, offset, tau, eps, n_threads=1):
    """FRN + TLU forward in one call, per row (n, c) of x: (N, C, S): rstd = 1/sqrt(m2/S + eps) (coefficients.rstd)
    with m2 = sum(x^2) (row_stats without center), scale = X(weight[c]*rstd), y = max(x*scale + offset[c], tau[c])
    (row_apply_max)."""
    x2, weight, offset, tau = _per_row(x, weight, offset, tau)
    m2 = (x2.astype(np.float64) ** 2).sum(axis=1)
    rstd, scale = rstd.reshape(-1), scale.reshape(-1)
    with np.errstate(divide="ignore", invalid="ignore"):  # NOTE: m2 + eps = 0 (eps=0): rstd = inf, as in C
        rstd[...] = 1.0 / np.sqrt(m2 / x2.shape[1] + eps)
        scale[...] = rstd * weight.astype(np.float64)
        row_apply_max(y.reshape(x2.shape), x2, np.zeros_like(scale), scale, offset, tau)


def row_backward_sums_max(sg, sgx, st, dy, x, mean, shift, scale, offset, tau, n_threads=1):
    """With (g, t) dy split by the max (contract): sg = sum(g), sgx = sum(g*(x - mean[r])), st = sum(t) per row."""
    g, t = _max_split(dy, x, shift, scale, offset, tau)
    g64 = g.astype(np.float64)
    sg[...] = g64.sum(axis=1)
    sgx[...] = (g64 * (x.astype(np.float64) - mean[:, None])).sum(axis=1)
    st[...] = t.astype(np.float64).sum(axis=1)


def row_backward_apply_max(dx, dy, x, a, mg, shift, b, k, scale, offset, tau, n_threads=1):
    """dx = a[r]*(g - mg[r]) + b[r]*(x - shift[r]) + k[r], g as in row_backward_sums_max (shift is the forward's)."""
    g = _max_split(dy, x, shift, scale, offset, tau)[0]
    f = lambda v: v.astype(np.float64)[:, None]  # noqa: E731
    dx[...] = f(a) * (g.astype(np.float64) - f(mg)) + f(b) * (x.astype(np.float64) - f(shift)) + f(k)


def row_norm_backward_max(dx, sg, sgx, st, dy, x, rstd, weight, scale, offset, tau, n_threads=1):
    """FRN + TLU's backward (no center), per row (n, c) of x: (N, C, S): row_backward_sums_max with mean 0 and
    shift 0, the coefficients of coefficients.backward(center=False) with weight[c] (a = rstd*w,
    b = -a*mean(g*xhat)*rstd, k = 0, mg = 0), then row_backward_apply_max."""
    _row_norm_backward_max(row_backward_sums_max, row_backward_apply_max, dx, sg, sgx, st, dy, x, rstd, weight,
                           scale, offset, tau, n_threads)


def _row_norm_backward_max(sums, apply, dx, sg, sgx, st, dy, x, rstd, weight, scale, offset, tau, n_threads):
    """row_norm_backward_max from a backend's two max phases (``sums``, ``apply``), on x's rows with the per-channel
    values tiled over them: the reference and Numba's."""
    from minigrad.kernels import coefficients
    x, weight, offset, tau = _per_row(x, weight, offset, tau)
    dx, dy = dx.reshape(x.shape), dy.reshape(x.shape)  # NOTE: views: the writes reach the caller's arrays
    sg, sgx, st, rstd, scale = (a.reshape(-1) for a in (sg, sgx, st, rstd, scale))
    R, D = x.shape
    mean, shift = np.zeros(R), np.zeros(R, x.dtype)
    sums(sg, sgx, st, dy, x, mean, shift, scale, offset, tau, n_threads)
    a, mg, _, b, k = coefficients.backward(sg, sgx, D, mean, rstd, False, x.dtype, weight.astype(np.float64))
    apply(dx, dy, x, a, mg, shift, b, k, scale, offset, tau, n_threads)


def _gate(x, v, lo, hi, gate):
    """(f, df/dx, df/dv, df/dhi, df/dlo) of the EvoNorm gate in float64 (contract: the fused gate phases); the
    max's mask on u = v*x + hi and lo rounded to X as the forward computes them, Maximum's tie rule."""
    x64 = x.astype(np.float64)
    f = lambda a: a.astype(np.float64)[:, None]  # noqa: E731
    v64 = f(v)
    if gate == 0:
        with np.errstate(over="ignore"):
            s = 1.0 / (1.0 + np.exp(-v64 * x64))
        zero = np.zeros_like(x64)
        return x64 * s, s + v64 * x64 * s * (1 - s), x64 * x64 * s * (1 - s), zero, zero
    u = (v[:, None] * x + hi[:, None]).astype(x.dtype)
    lox = np.broadcast_to(lo[:, None], x.shape)
    den = np.maximum(u, lox).astype(np.float64)
    mu = np.where(u > lox, 1.0, np.where(u == lox, 0.5, 0.0))
    q = x64 / (den * den)
    return x64 / den, 1 / den - q * v64 * mu, -q * x64 * mu, -q * mu, -q * (1 - mu)


def row_apply_gate(y, x, v, lo, hi, scale, offset, gate, n_threads=1):
    """y = f*scale[r] + offset[r]; gate 0: f = x*sigmoid(v[r]*x), gate 1: f = x/max(lo[r], v[r]*x + hi[r])."""
    f = lambda a: a.astype(np.float64)[:, None]  # noqa: E731
    y[...] = _gate(x, v, lo, hi, gate)[0] * f(scale) + f(offset)


def row_backward_sums_gate(sdy, sdyf, sdv, shi, slo, dy, x, v, lo, hi, gate, n_threads=1):
    """Per row: sdy = sum(dy), sdyf = sum(dy*f), sdv, shi, slo = sum(dy * df/dv, df/dhi, df/dlo)."""
    f, _, fv, fh, fl = _gate(x, v, lo, hi, gate)
    dy64 = dy.astype(np.float64)
    sdy[...] = dy64.sum(axis=1)
    sdyf[...] = (dy64 * f).sum(axis=1)
    sdv[...] = (dy64 * fv).sum(axis=1)
    shi[...] = (dy64 * fh).sum(axis=1)
    slo[...] = (dy64 * fl).sum(axis=1)


def row_backward_apply_gate(dx, dy, x, a, shift, b, k, v, lo, hi, gate, n_threads=1):
    """dx = a[r]*dy*df/dx + b[r]*(x - shift[r]) + k[r]."""
    f = lambda a_: a_.astype(np.float64)[:, None]  # noqa: E731
    fx = _gate(x, v, lo, hi, gate)[1]
    dx[...] = f(a) * dy.astype(np.float64) * fx + f(b) * (x.astype(np.float64) - f(shift)) + f(k)


def evonorm_s0_backward(dx, sdy, sdyf, sdv, dy, x, v, weight, gmean, grstd, num_groups, n_threads=1):
    """EvoNorm-S0's backward (contract): the gate sums of rows (n, c), the groups' coefficients
    (coefficients.evonorm_s0_backward), then dx, each in float64."""
    from minigrad.kernels.coefficients import evonorm_s0_backward as coefficients  # NOTE: lazy: kernels imports us
    n, c, s = x.shape
    rows = lambda a: np.ascontiguousarray(np.broadcast_to(a, (n, c))).reshape(-1)  # noqa: E731
    x2, dy2, v2 = x.reshape(n * c, s), dy.reshape(n * c, s), rows(v)
    unused = np.empty(n * c)
    row_backward_sums_gate(sdy.reshape(-1), sdyf.reshape(-1), sdv.reshape(-1), unused, unused, dy2, x2, v2, v2,
                           v2, 0)
    a, shift, b, k = (rows(t) for t in coefficients(sdyf, weight, gmean, grstd, (c // num_groups) * s, x.dtype))
    row_backward_apply_gate(dx.reshape(n * c, s), dy2, x2, a, shift, b, k, v2, v2, v2, 0)


def evonorm_b0_forward(y, lo, hi, imean, irstd, mean, rstd, x, v, weight, bias, eps, n_threads=1, constant_lo=False):
    """EvoNorm-B0's training forward (contract), from the paper's equations in float64: the instance statistics of
    each row (n, c) over S and the batch statistics of each channel over N and S, directly (biased variances), then
    y = x/max(sqrt(s2_batch + eps), v*x + sqrt(s2_instance + eps))*weight + bias with the two standard deviations
    and u = v*x + hi rounded to X, as the compiled kernels hold them (``_gate``). ``constant_lo`` (eval): lo is given
    (the running std), mean and rstd are not written."""
    N, C, S = x.shape
    x64 = x.astype(np.float64)
    imean[...] = x64.mean(axis=2)
    with np.errstate(divide="ignore"):  # NOTE: a constant set with eps = 0: rstd = inf, as in C
        irstd[...] = 1.0 / np.sqrt(x64.var(axis=2) + eps)
        if not constant_lo:
            mean[...] = x64.mean(axis=(0, 2))
            rstd[...] = 1.0 / np.sqrt(x64.var(axis=(0, 2)) + eps)
    if not constant_lo:
        lo[...] = np.broadcast_to(1.0 / rstd, (N, C))
    hi[...] = 1.0 / irstd
    x2, v2, w2, b2 = _per_row(x, v, weight, bias)
    row_apply_gate(y.reshape(x2.shape), x2, v2, lo.reshape(-1), hi.reshape(-1), w2, b2, 1)


def evonorm_b0_backward(dx, dv, dweight, dbias, dy, x, v, weight, lo, hi, imean, irstd, mean, rstd, n_threads=1,
                        constant_lo=False):
    """EvoNorm-B0's training backward (contract) by the chain rule in float64: y = f*weight + bias with f =
    x/max(lo, v*x + hi), hi = 1/irstd the row's std and lo = 1/rstd the channel's batch std (biased variances, eps
    inside), whose own derivatives are d hi/dx_i = (x_i - imean)*irstd/S over the row and d lo/dx_i =
    (x_i - mean)*rstd/(N*S) over the channel; so with g = dy*weight:
        dbias = sum dy, dweight = sum dy*f, dv = sum g*df/dv (over n and s), dhi = sum_s g*df/dhi per row,
        dlo = sum g*df/dlo per channel, dx = g*df/dx + dhi*d hi/dx + dlo*d lo/dx.
    The gate's mask on u = v*x + hi and lo as the compiled kernels hold them (``_gate``). ``constant_lo`` (eval: lo
    the running std): no dlo term, mean and rstd not read."""
    N, C, S = x.shape
    x2, v2 = _per_row(x, v)
    f, fx, fv, fh, fl = (t.reshape(N, C, S) for t in _gate(x2, v2, lo.reshape(-1), hi.reshape(-1), 1))
    dy64, x64 = dy.astype(np.float64), x.astype(np.float64)
    g = dy64 * weight.astype(np.float64)[:, None]
    dbias[...] = dy64.sum(axis=(0, 2))
    dweight[...] = (dy64 * f).sum(axis=(0, 2))
    dv[...] = (g * fv).sum(axis=(0, 2))
    dhi = (g * fh).sum(axis=2, keepdims=True)
    dx64 = g * fx + dhi * (x64 - imean[:, :, None]) * irstd[:, :, None] / S
    if not constant_lo:
        dx64 += (g * fl).sum(axis=(0, 2))[:, None] * (x64 - mean[:, None]) * rstd[:, None] / (N * S)
    dx[...] = dx64
