"""Numba kernels: batch norm, group norm (layer and instance norm are group norm) and the running statistics.

  N batch, C channels, S spatial size, G groups, Cg = C/G, M = size of a reduction set
  channels layout x: (N, C, S) (batch norm, one set per channel); group layout: N*G contiguous rows of Cg*S values
  (group norm, one set per (n, g)).

The math and its derivation: minigrad/kernels/reference/norm.py. The design is that of minigrad/_ext/norm.pyx,
whose header explains it: shifted single-pass statistics (X-precision partials over short blocks, added in double),
elementwise passes (x - K)*scale + shift in X precision with K = X(mean), disjoint writes in every prange, fixed
summation orders (results do not depend on the thread count).
Each normalization wrapper makes one jitted call, which flattens the arrays itself (views, no copies): small tensors
are dominated by fixed costs (each jitted call checks the types of all its arguments), and the contract passes
n_threads = 1 below its SMALL size, where the call goes to the kernel's serial twin (see common._Twins).
The reductions are jitted with fastmath={"reassoc"} and nothing else (see the NOTE on REASSOC in common.py): NaN and
inf keep their meaning.
"""
import math

import numpy as np
from numba import njit, prange

from minigrad.kernels import coefficients

from .common import REASSOC, _in_x, _pick, _twins

MAX_CHUNKS = 64  # group norm backward: chunks of the batch, each with its own dweight/dbias partials
LN_ROWS = 32  # layer-norm shaped group norm backward: rows per block of X-precision dweight/dbias partials


# ---------------------------------------------------------------------------------------------------------
# building blocks (flat 1-D arrays, a run x[start:start + m])


# NOTE: the two run reductions add X-precision partials over blocks of X_BLOCK values (each block a 0-based view,
# so that LLVM vectorizes its loop: 16 float32 lanes, 4 accumulators), each block's partial then added in double:
# norm.pyx's float32 scheme with LLVM's vectors in place of its explicit ones (measurements:
# docs/perf/norm-kernels.md#numba-run-reductions-x_block). A lane adds at most 8 values of a block
# in float32 (a relative rounding of a few 2^-24, the data's own precision). Where a square overflows X
# (|x - K| > 1.8e19 in float32) or the data is not finite, the run is added again in double, as before.
X_BLOCK = 512


@njit(cache=True, fastmath=REASSOC)
def _shifted_sums(x, start, m, K):
    """(sum(x - K), sum((x - K)^2)) over x[start:start + m], K a value of X (see the NOTE above)."""
    xv = x[start:start + m]  # NOTE: a 0-based view and range() indices: no wraparound checks in the loop
    k = xv.dtype.type(K)
    a = 0.0
    q = 0.0
    for b0 in range(0, m, X_BLOCK):
        xb = xv[b0:min(b0 + X_BLOCK, m)]
        fa = xv.dtype.type(0.0)
        fq = xv.dtype.type(0.0)
        for i in range(xb.size):
            d = xb[i] - k
            fa += d
            fq += d * d
        a += fa
        q += fq
    if not (math.isfinite(a) and math.isfinite(q)):
        a = 0.0
        q = 0.0
        for i in range(m):
            d = np.float64(xv[i]) - K
            a += d
            q += d * d
    return a, q


@njit(cache=True, fastmath=REASSOC)
def _dy_sums(dy, x, start, m, mean):
    """(sum(dy), sum(dy*(x - mean))) over [start, start + m): X-precision block partials of dy and dy*(x - Kx),
    Kx = X(mean), then sum(dy*(x - mean)) = sum(dy*(x - Kx)) - (mean - Kx)*sum(dy) in double."""
    dyv = dy[start:start + m]
    xv = x[start:start + m]
    k = xv.dtype.type(mean)
    a = 0.0
    q = 0.0
    for b0 in range(0, m, X_BLOCK):
        b1 = min(b0 + X_BLOCK, m)
        gb = dyv[b0:b1]
        xb = xv[b0:b1]
        fa = xv.dtype.type(0.0)
        fq = xv.dtype.type(0.0)
        for i in range(gb.size):
            g = gb[i]
            fa += g
            fq += g * (xb[i] - k)
        a += fa
        q += fq
    q -= (mean - np.float64(k)) * a
    if not (math.isfinite(a) and math.isfinite(q)):
        a = 0.0
        q = 0.0
        for i in range(m):
            g = np.float64(dyv[i])
            a += g
            q += g * (xv[i] - mean)
    return a, q


@njit(cache=True, error_model="numpy")  # NOTE: var + eps = 0 (eps=0) gives rstd = inf, not ZeroDivisionError
def _mean_rstd(s1, s2, M, eps, K):
    """From shifted sums: mean = K + s1/M, var = s2/M - (s1/M)^2 (clamped at 0, NaN stays NaN), rstd."""
    d = s1 / M
    var = s2 / M - d * d
    if var < 0.0:
        var = 0.0
    return K + d, 1.0 / np.sqrt(var + eps)


# ---------------------------------------------------------------------------------------------------------
# batch norm, channels layout x: (N, C, S), flattened by the twins


@njit(cache=True, fastmath=REASSOC)
def _bn_stats_block(s1, s2, K, x, N, C, S, c0, c1):
    """Shifted sums of channels [c0, c1). Walks the rows n, reading x[n, c0:c1, :] contiguously (one channel at a
    time, at stride C*S, is much slower); each channel sums over n in order."""
    if S == 1:
        _bn1d_stats(s1, s2, K, x, N, C, c0, c1)
        return
    for n in range(N):
        base = n * C * S
        for c in range(c0, c1):
            a, q = _shifted_sums(x, base + c * S, S, K[c])
            s1[c] += a
            s2[c] += q


# NOTE: BatchNorm1d (S == 1): each channel adds its rows in order, the adds of a channel are independent of the
# other channels' and vectorize across c without fast-math. Four rows per walk keep the channel's sums in
# registers for four adds instead of one (a load and a store of both sums per row otherwise); the adds stay in
# row order, and these two functions are jitted WITHOUT reassoc, so LLVM may not regroup them.


@njit(cache=True)
def _bn1d_stats(s1, s2, K, x, N, C, c0, c1):
    """s1[c] += x[n, c] - K[c], s2[c] += (x[n, c] - K[c])^2 for n in order, c in [c0, c1); x: (N, C) flat."""
    s1v = s1[c0:c1]
    s2v = s2[c0:c1]
    Kv = K[c0:c1]
    n = 0
    while n + 4 <= N:
        x0 = x[n * C + c0:n * C + c1]
        x1 = x[(n + 1) * C + c0:(n + 1) * C + c1]
        x2 = x[(n + 2) * C + c0:(n + 2) * C + c1]
        x3 = x[(n + 3) * C + c0:(n + 3) * C + c1]
        for j in range(c1 - c0):
            k = Kv[j]
            d0 = x0[j] - k
            d1 = x1[j] - k
            d2 = x2[j] - k
            d3 = x3[j] - k
            s1v[j] = (((s1v[j] + d0) + d1) + d2) + d3
            s2v[j] = (((s2v[j] + d0 * d0) + d1 * d1) + d2 * d2) + d3 * d3
        n += 4
    for n in range(n, N):
        xv = x[n * C + c0:n * C + c1]
        for j in range(c1 - c0):
            d = xv[j] - Kv[j]
            s1v[j] += d
            s2v[j] += d * d


@njit(cache=True)
def _affine_row(y, x, K, scale, shift, n, C, S):
    """Row n: y = (x - K[c])*scale[c] + shift[c], in X precision."""
    base = n * C * S
    if S == 1:  # BatchNorm1d: one flat loop over the row's channels
        yv = y[base:base + C]
        xv = x[base:base + C]
        for c in range(C):
            yv[c] = (xv[c] - K[c]) * scale[c] + shift[c]
        return
    for c in range(C):
        Kc = K[c]
        sc = scale[c]
        sh = shift[c]
        yv = y[base + c * S:base + (c + 1) * S]
        xv = x[base + c * S:base + (c + 1) * S]
        for j in range(S):  # NOTE: views indexed from 0 so LLVM can drop the wraparound check and vectorize
            yv[j] = (xv[j] - Kc) * sc + sh


@njit(cache=True, error_model="numpy")  # NOTE: running_var + eps = 0 gives an infinite 1/sigma, as in C
def _renorm(mu, r, running_mean, running_var, r_max, d_max, eps):
    """Batch Renorm's (r, d) of one channel (formula: reference.batch_renorm_forward; norm.pyx's _renorm):
    r = clip(rstd_run/rstd, 1/r_max, r_max), d = clip((mean - running_mean)*rstd_run, -d_max, d_max), NaN kept."""
    rstd_run = 1.0 / np.sqrt(np.float64(running_var) + eps)
    rr = rstd_run / r
    if rr < 1.0 / r_max:
        rr = 1.0 / r_max
    if rr > r_max:
        rr = r_max
    dd = (mu - np.float64(running_mean)) * rstd_run
    if dd < -d_max:
        dd = -d_max
    if dd > d_max:
        dd = d_max
    return rr, dd


@_twins()
def _bn_forward(y, mean, rstd, x, weight, bias, eps, n_threads, r, d, running_mean, running_var, r_max, d_max,
                renorm):
    """Statistics by blocks of channels (nb = min(C, n_threads) of them), then the affine pass by rows (see
    norm.pyx, which this mirrors). ``renorm``: Batch Renorm, y = (xhat*r + d)*w + b with r, d (C,) OUT from
    running_mean, running_var, r_max, d_max (otherwise those arguments are not read)."""
    N, C, S = x.shape
    if C == 0:
        return
    if N * S == 0:
        mean[:] = np.nan
        rstd[:] = np.nan
        return
    yf = y.reshape(y.size)
    xf = x.reshape(x.size)
    s1 = np.zeros(C)
    s2 = np.zeros(C)
    K = np.empty(C)
    for c in range(C):
        K[c] = xf[c * S]
    nb = min(C, n_threads)
    for blk in prange(nb):
        _bn_stats_block(s1, s2, K, xf, N, C, S, blk * C // nb, (blk + 1) * C // nb)
    Kx = np.empty(C, x.dtype)
    scale = np.empty(C, x.dtype)
    shift = np.empty(C, x.dtype)
    for c in range(C):
        mu, rs = _mean_rstd(s1[c], s2[c], N * S, eps, K[c])
        mean[c] = mu
        rstd[c] = rs
        Kx[c] = mu
        if renorm:
            rr, dd = _renorm(mu, rs, running_mean[c], running_var[c], r_max, d_max, eps)
            r[c] = rr
            d[c] = dd
            sc = rs * (np.float64(weight[c]) * rr)
            b = np.float64(bias[c]) + np.float64(weight[c]) * dd
        else:
            sc = rs * weight[c]
            b = np.float64(bias[c])
        scale[c] = sc
        shift[c] = b - (mu - Kx[c]) * sc
    for n in prange(N):
        _affine_row(yf, xf, Kx, scale, shift, n, C, S)


def _bn_forward_plain(fn, y, mean, rstd, x, weight, bias, eps, n_threads):
    """batch_norm_forward through _bn_forward (its renorm arguments not read: mean and weight stand in)."""
    fn(y, mean, rstd, x, weight, bias, float(eps), n_threads, mean, mean, weight, weight, 1.0, 0.0, False)


def batch_norm_forward(y, mean, rstd, x, weight, bias, eps, n_threads):
    """Training-mode batch norm forward (formula: reference.batch_norm_forward)."""
    _bn_forward_plain(_pick(_bn_forward, n_threads), y, mean, rstd, x, weight, bias, eps, n_threads)


def batch_renorm_forward(y, mean, rstd, r, d, x, weight, bias, running_mean, running_var, r_max, d_max, eps,
                         n_threads):
    """Batch Renorm's training forward (formula: reference.batch_renorm_forward)."""
    _pick(_bn_forward, n_threads)(y, mean, rstd, x, weight, bias, float(eps), n_threads, r, d, running_mean,
                                  running_var, float(r_max), float(d_max), True)


@_twins(error_model="numpy")  # NOTE: running_var + eps = 0 gives an infinite scale
def _bn_inference(y, x, running_mean, running_var, weight, bias, eps):
    N, C, S = x.shape
    if N * C * S == 0:
        return
    yf = y.reshape(y.size)
    xf = x.reshape(x.size)
    scale = np.empty(C, x.dtype)
    for c in range(C):
        scale[c] = weight[c] / np.sqrt(np.float64(running_var[c]) + eps)
    for n in prange(N):
        _affine_row(yf, xf, running_mean, scale, bias, n, C, S)


def batch_norm_inference(y, x, running_mean, running_var, weight, bias, eps, n_threads):
    """y = (x - running_mean)*scale + bias, scale = weight/sqrt(running_var + eps), in X precision."""
    _pick(_bn_inference, n_threads)(y, x, running_mean, running_var, weight, bias, float(eps))


@njit(cache=True)
def _bn_dx_coefficients(sdy, sdyx, M, mean, rstd, w):
    """dx = rstd*w*(dy - mean(dy) - xhat*mean(dy*xhat)) = a*(dy - mdy) + b*(x - Kx) + k with Kx = X(mean),
    xhat = rstd*((x - Kx) - (mean - Kx)): a = rstd*w, b = -a*mean(dy*xhat)*rstd, k = -b*(mean - Kx).
    Returns (a, mdy, b) in double; the caller forms k once Kx is rounded."""
    a = rstd * w
    return a, sdy / M, -a * (sdyx * rstd / M) * rstd


@njit(cache=True, fastmath=REASSOC)
def _bn_dy_sums_block(sdy, sdyx, mean, dy, x, N, C, S, c0, c1):
    """The two backward reductions of channels [c0, c1), walking the rows as _bn_stats_block does."""
    if S == 1:
        _bn1d_dy_sums(sdy, sdyx, mean, dy, x, N, C, c0, c1)
        return
    for n in range(N):
        base = n * C * S
        for c in range(c0, c1):
            a, q = _dy_sums(dy, x, base + c * S, S, mean[c])
            sdy[c] += a
            sdyx[c] += q


@njit(cache=True)
def _bn1d_dy_sums(sdy, sdyx, mean, dy, x, N, C, c0, c1):
    """sdy[c] += dy[n, c], sdyx[c] += dy[n, c]*(x[n, c] - mean[c]) for n in order (see the NOTE above _bn1d_stats)."""
    sdyv = sdy[c0:c1]
    sdyxv = sdyx[c0:c1]
    mv = mean[c0:c1]
    n = 0
    while n + 4 <= N:
        dy0 = dy[n * C + c0:n * C + c1]
        dy1 = dy[(n + 1) * C + c0:(n + 1) * C + c1]
        dy2 = dy[(n + 2) * C + c0:(n + 2) * C + c1]
        dy3 = dy[(n + 3) * C + c0:(n + 3) * C + c1]
        x0 = x[n * C + c0:n * C + c1]
        x1 = x[(n + 1) * C + c0:(n + 1) * C + c1]
        x2 = x[(n + 2) * C + c0:(n + 2) * C + c1]
        x3 = x[(n + 3) * C + c0:(n + 3) * C + c1]
        for j in range(c1 - c0):
            mu = mv[j]
            g0 = np.float64(dy0[j])
            g1 = np.float64(dy1[j])
            g2 = np.float64(dy2[j])
            g3 = np.float64(dy3[j])
            sdyv[j] = (((sdyv[j] + g0) + g1) + g2) + g3
            sdyxv[j] = (((sdyxv[j] + g0 * (x0[j] - mu)) + g1 * (x1[j] - mu)) + g2 * (x2[j] - mu)) + g3 * (x3[j] - mu)
        n += 4
    for n in range(n, N):
        dyv = dy[n * C + c0:n * C + c1]
        xv = x[n * C + c0:n * C + c1]
        for j in range(c1 - c0):
            g = np.float64(dyv[j])
            sdyv[j] += g
            sdyxv[j] += g * (xv[j] - mv[j])


@njit(cache=True)
def _affine2_row(dx, dy, x, K, a, mdy, b, k, n, C, S):
    """Row n: dx = a*(dy - mdy) + b*(x - K) + k per channel (coefficient arrays of C values, X precision)."""
    base = n * C * S
    if S == 1:  # BatchNorm1d: one flat loop over the row's channels
        dxv = dx[base:base + C]
        dyv = dy[base:base + C]
        xv = x[base:base + C]
        for c in range(C):
            dxv[c] = a[c] * (dyv[c] - mdy[c]) + b[c] * (xv[c] - K[c]) + k[c]
        return
    for c in range(C):
        Kc = K[c]
        ac = a[c]
        mc = mdy[c]
        bc = b[c]
        kc = k[c]
        dxv = dx[base + c * S:base + (c + 1) * S]
        dyv = dy[base + c * S:base + (c + 1) * S]
        xv = x[base + c * S:base + (c + 1) * S]
        for j in range(S):
            dxv[j] = ac * (dyv[j] - mc) + bc * (xv[j] - Kc) + kc


@_twins()
def _bn_backward(dx, dweight, dbias, dy, x, mean, rstd, weight, n_threads):
    """The two reductions by blocks of channels, then the dx pass by rows."""
    N, C, S = x.shape
    if C == 0:
        return
    if N * S == 0:
        dweight[:] = 0
        dbias[:] = 0
        return
    dxf = dx.reshape(dx.size)
    dyf = dy.reshape(dy.size)
    xf = x.reshape(x.size)
    sdy = np.zeros(C)
    sdyx = np.zeros(C)
    nb = min(C, n_threads)
    for blk in prange(nb):
        _bn_dy_sums_block(sdy, sdyx, mean, dyf, xf, N, C, S, blk * C // nb, (blk + 1) * C // nb)
    coef = np.empty((5, C), x.dtype)
    for c in range(C):
        dbias[c] = sdy[c]
        dweight[c] = sdyx[c] * rstd[c]
        ac, mc, bc = _bn_dx_coefficients(sdy[c], sdyx[c], N * S, mean[c], rstd[c], weight[c])
        coef[0, c] = mean[c]
        coef[1, c] = ac
        coef[2, c] = mc
        coef[3, c] = bc
        coef[4, c] = -bc * (mean[c] - coef[0, c])
    Kx, a, mdy, b, k = coef[0], coef[1], coef[2], coef[3], coef[4]
    for n in prange(N):
        _affine2_row(dxf, dyf, xf, Kx, a, mdy, b, k, n, C, S)


def batch_norm_backward(dx, dweight, dbias, dy, x, mean, rstd, weight, n_threads, r=None, d=None):
    """dx = rstd*w*(dy - mean(dy) - xhat*mean(dy*xhat)); dweight = sum(dy*xhat); dbias = sum(dy); Batch Renorm's
    r and d as reference.batch_norm_backward's (in NumPy around the jitted kernel: C values)."""
    weight = coefficients.renorm_weight(weight, r, d)
    _pick(_bn_backward, n_threads)(dx, dweight, dbias, dy, x, mean, rstd, weight, n_threads)
    if r is not None:
        coefficients.renorm_dweight(dweight, dbias, r, d)


def ghost_batch_norm_forward(y, mean, rstd, x, weight, bias, chunk, eps, n_threads):
    """batch_norm_forward per chunk of ``chunk`` samples (formula: reference.ghost_batch_norm_forward). NOTE: the
    loop over chunks is Python's here (one jitted call per chunk); the Cython backend loops in C."""
    fn = _pick(_bn_forward, n_threads)
    for k, n0 in enumerate(range(0, x.shape[0], chunk)):
        _bn_forward_plain(fn, y[n0:n0 + chunk], mean[k], rstd[k], x[n0:n0 + chunk], weight, bias, eps, n_threads)


def ghost_batch_norm_backward(dx, dweight, dbias, dy, x, mean, rstd, weight, chunk, n_threads):
    """batch_norm_backward per chunk; dweight, dbias summed over the chunks in float64 (each chunk's in X)."""
    fn = _pick(_bn_backward, n_threads)
    acc = np.zeros((2, x.shape[1]))
    part = np.empty((2, x.shape[1]), x.dtype)
    for k, n0 in enumerate(range(0, x.shape[0], chunk)):
        s = slice(n0, n0 + chunk)
        fn(dx[s], part[0], part[1], dy[s], x[s], mean[k], rstd[k], weight, n_threads)
        acc += part
    dweight[...] = acc[0]
    dbias[...] = acc[1]


# ---------------------------------------------------------------------------------------------------------
# group norm: row i = (n, g) of x (N, C, S) is x.flat[i*M:(i+1)*M], M = Cg*S; its channels are g*Cg + (0..Cg-1)


@_twins(fastmath=REASSOC)
def _gn_forward(y, mean, rstd, x, weight, bias, G, eps):
    """Rows in parallel; coef: (N*G, 3) X scratch (Kx, rstd, (mean - Kx)*rstd rounded to X), one row per (n, g)."""
    N, C, S = x.shape
    if N == 0:
        return
    meanf = mean.reshape(mean.size)
    rstdf = rstd.reshape(rstd.size)
    if C * S == 0:
        meanf[:] = np.nan
        rstdf[:] = np.nan
        return
    yf = y.reshape(y.size)
    xf = x.reshape(x.size)
    Cg = C // G
    M = Cg * S
    coef = np.empty((N * G, 3), x.dtype)
    for i in prange(N * G):
        g = i % G
        start = i * M
        K = np.float64(xf[start])
        s1, s2 = _shifted_sums(xf, start, M, K)
        mu, r = _mean_rstd(s1, s2, M, eps, K)
        meanf[i] = mu
        rstdf[i] = r
        coef[i, 0] = mu
        Kx = coef[i, 0]
        if S == 1:  # layer-norm shaped: per-element weight, one flat loop
            coef[i, 1] = r
            coef[i, 2] = (mu - Kx) * r
            rx = coef[i, 1]
            dmr = coef[i, 2]
            yv = yf[start:start + M]
            xv = xf[start:start + M]
            wv = weight[g * Cg:g * Cg + M]
            bv = bias[g * Cg:g * Cg + M]
            for j in range(M):
                yv[j] = ((xv[j] - Kx) * rx - dmr) * wv[j] + bv[j]
        else:
            for cc in range(Cg):
                c = g * Cg + cc
                sc = r * weight[c]
                coef[i, 1] = sc
                coef[i, 2] = bias[c] - (mu - Kx) * sc
                scx = coef[i, 1]
                shx = coef[i, 2]
                yv = yf[start + cc * S:start + (cc + 1) * S]
                xv = xf[start + cc * S:start + (cc + 1) * S]
                for j in range(S):
                    yv[j] = (xv[j] - Kx) * scx + shx


def group_norm_forward(y, mean, rstd, x, weight, bias, num_groups, eps, n_threads):
    """Group norm forward (formula: reference.group_norm_forward); rows (n, g) in parallel."""
    _pick(_gn_forward, n_threads)(y, mean, rstd, x, weight, bias, int(num_groups), float(eps))


@njit(cache=True, fastmath=REASSOC, inline="always")
def _ln_dy_sums(dy, x, weight, start, M, mean):
    """Layer-norm shaped row (S == 1) of M values from start (weight: the row's M channels, a 0-based view):
    (sum(g), sum(g*(x - mean))) with g = w*dy, in one pass: as _dy_sums, the products g and g*(x - Kx), Kx =
    X(mean), in X precision, summed in X-precision partials over blocks of X_BLOCK values, each added in double,
    then sum(g*(x - mean)) = sum(g*(x - Kx)) - (mean - Kx)*sum(g) (norm.pyx's mg_ln_row_sums takes the same
    products).
    NOTE: _dy_sums's loop with a weight, kept apart because this one is inlined into _ln_rows (merged and called,
    it was slower: docs/perf/norm-kernels.md#numba-layer-norm-backward)."""
    dyv = dy[start:start + M]
    xv = x[start:start + M]
    k = xv.dtype.type(mean)
    a = 0.0
    e = 0.0
    for b0 in range(0, M, X_BLOCK):
        b1 = min(b0 + X_BLOCK, M)
        gb = dyv[b0:b1]
        xb = xv[b0:b1]
        wb = weight[b0:b1]
        fa = xv.dtype.type(0.0)
        fe = xv.dtype.type(0.0)
        for j in range(gb.size):
            g = wb[j] * gb[j]
            fa += g
            fe += g * (xb[j] - k)
        a += fa
        e += fe
    e -= (mean - np.float64(k)) * a
    if not (math.isfinite(a) and math.isfinite(e)):
        a = 0.0
        e = 0.0
        for j in range(M):
            g = weight[j] * np.float64(dyv[j])
            a += g
            e += g * (xv[j] - mean)
    return a, e


@njit(cache=True, inline="always")
def _ln_dx(dxf, dyf, xf, start, w, M, r, mg, K, b, k, dmr, fw, fb, first):
    """Over the row [start, start + M) of the flat dxf, dyf, xf: dx = r*(w*dy - mg) + b*(x - K) + k, and the block
    partials in X precision: fb += dy, fw += dy*xhat with xhat = (x - K)*r - dmr (fb = dy, fw = dy*xhat for a
    block's first row). Elementwise.
    NOTE: one loop, not a second pass over the row for fw, fb (slower: docs/perf/norm-kernels.md).
    NOTE: inlined into _ln_rows (see there), so compiled with its REASSOC flag: LLVM may regroup this expression's
    adds, a choice fixed when it compiles (the same bits for any n_threads, and both twins call _ln_rows)."""
    dx = dxf[start:start + M]
    dy = dyf[start:start + M]
    x = xf[start:start + M]
    if first:
        for j in range(M):
            g = dy[j]
            d = x[j] - K
            dx[j] = r * (w[j] * g - mg) + b * d + k
            fb[j] = g
            fw[j] = g * (d * r - dmr)
        return
    for j in range(M):
        g = dy[j]
        d = x[j] - K
        dx[j] = r * (w[j] * g - mg) + b * d + k
        fb[j] += g
        fw[j] += g * (d * r - dmr)


@njit(cache=True, inline="always")
def _ln_flush(pw, pb, fw, fb, M, first):
    """pw += fw, pb += fb in double (pw = fw, pb = fb for a chunk's first block): one block into the partials."""
    if first:
        for j in range(M):
            pw[j] = fw[j]
            pb[j] = fb[j]
        return
    for j in range(M):
        pw[j] += fw[j]
        pb[j] += fb[j]


@njit(cache=True, fastmath=REASSOC)
def _ln_rows(dxf, dyf, xf, meanf, rstdf, w, fw, fb, pw, pb, n0, n1, G, g, M):
    """Layer-norm shaped rows (S == 1) n0..n1-1 of group g, each of M values (w: its M weights; fw, fb: the
    X-precision block partials; pw, pb: the unit's double partials, all 0-based views of M): the two row
    reductions with g = dy*w, the coefficients dx = r*(w*dy - mean(g)) + b*(x - Kx) + k rounded to X, and the
    dx pass, which adds the rows in blocks of LN_ROWS (counted from n0) into fw, fb, each block then into pw, pb.
    NOTE: its three row helpers are inlined here by numba (inline="always"), each row's views taken inside: as
    calls, every row paid the argument passing and an atomic reference count per view passed (measurements:
    docs/perf/norm-kernels.md#numba-layer-norm-backward)."""
    X = xf.dtype.type
    for n in range(n0, n1):
        i = n * G + g
        start = i * M
        mu = meanf[i]
        r = rstdf[i]
        sw, swx = _ln_dy_sums(dyf, xf, w, start, M, mu)
        mgx = swx * r / M  # mean(g*xhat)
        b = -r * mgx * r
        Kx = X(mu)
        _ln_dx(dxf, dyf, xf, start, w, M, X(r), X(sw / M), Kx, X(b), X(-b * (mu - Kx)), X((mu - Kx) * r), fw, fb,
               (n - n0) % LN_ROWS == 0)
        if (n - n0) % LN_ROWS == LN_ROWS - 1 or n == n1 - 1:
            _ln_flush(pw, pb, fw, fb, M, n - n0 < LN_ROWS)


@_twins(fastmath=REASSOC)
def _gn_backward(dx, dweight, dbias, dy, x, mean, rstd, weight, G, n_threads):
    """Units (chunk q of the batch, group g) in order or in parallel; n_chunks from N alone: min(N, MAX_CHUNKS),
    for S == 1 max(1, min(N // LN_ROWS, MAX_CHUNKS)) (at least a block of rows per chunk: fewer partials to fill
    and merge for short inputs).
    Per row: two reductions with g = dy*w (sum(g), sum(g*(x - mean))), then the fused dx pass
    dx = rstd*(w*dy - mean(g)) + b*(x - Kx) + k, b = -rstd*mean(g*xhat)*rstd, k = -b*(mean - Kx).
    Unit (q, g) sums its rows' dweight, dbias terms into the partials pw[p, channels of g], pb[...] (double), and
    the chunks' partials are added in chunk order: dweight[c] = ((0.0 + P_0[c]) + P_1[c]) + ...
    S == 1: the unit adds its rows in blocks of LN_ROWS (counted from the chunk's first row, so the same blocks for
    any n_threads) into X-precision partials fw[p, ...], fb[...] in the dx pass, and each block into pw, pb.
    Parallel: a partial row per chunk (p = q), added after the loop. Serial (n_threads == 1, which _pick sends
    only to the serial twin): one partial row (p = 0), added as each unit ends: the same order, in L1, and no
    (n_chunks, C) arrays to zero and read back.
    NOTE: as in norm.pyx, X-precision block partials rather than per-row double ones (a read-modify-write of 2*Cg
    doubles per row; docs/perf/norm-kernels.md): a block of 32 float32 rows adds ~1e-7 relative error to
    dweight, dbias (of their largest magnitude: the same error as norm.pyx's).
    NOTE: the first row of a chunk (or of a block) assigns its partial instead of adding to 0.0: that differs only
    by the sign of a zero, which the addition to 0.0 above removes, so the bits are those of zeroed partials.
    coef: (n_chunks*G, 4) X scratch (S > 1)."""
    N, C, S = x.shape
    if C == 0:
        return
    if N * S == 0:
        dweight[:] = 0
        dbias[:] = 0
        return
    dxf = dx.reshape(dx.size)
    dyf = dy.reshape(dy.size)
    xf = x.reshape(x.size)
    meanf = mean.reshape(mean.size)
    rstdf = rstd.reshape(rstd.size)
    Cg = C // G
    M = Cg * S
    n_chunks = min(N, MAX_CHUNKS)
    if S == 1:
        n_chunks = max(1, min(N // LN_ROWS, MAX_CHUNKS))
    serial = n_threads == 1
    rows = 1 if serial else n_chunks
    pw = np.empty((rows, C))
    pb = np.empty((rows, C))
    frows = rows if S == 1 else 0
    fw = np.empty((frows, C), x.dtype)
    fb = np.empty((frows, C), x.dtype)
    sw_c = np.zeros(C)
    sb_c = np.zeros(C)
    coef = np.empty((n_chunks * G if S > 1 else 0, 4), x.dtype)
    for u in prange(n_chunks * G):
        q = u // G
        g = u % G
        p = 0 if serial else q
        n0 = q * N // n_chunks
        n1 = (q + 1) * N // n_chunks
        if S == 1:  # layer-norm shaped: per-element weight and partials
            # NOTE: pw[p][...] (a C-contiguous row, then a slice) vectorizes; pw[p, ...] does not
            _ln_rows(dxf, dyf, xf, meanf, rstdf, weight[g * Cg:g * Cg + M], fw[p][g * Cg:g * Cg + M],
                     fb[p][g * Cg:g * Cg + M], pw[p][g * Cg:g * Cg + M], pb[p][g * Cg:g * Cg + M], n0, n1, G, g, M)
        else:
            for n in range(n0, n1):
                i = n * G + g
                start = i * M
                mu = meanf[i]
                r = rstdf[i]
                sw = 0.0
                swx = 0.0
                for cc in range(Cg):
                    c = g * Cg + cc
                    sdy, sdyx = _dy_sums(dyf, xf, start + cc * S, S, mu)
                    if n == n0:
                        pb[p, c] = sdy
                        pw[p, c] = sdyx * r
                    else:
                        pb[p, c] += sdy
                        pw[p, c] += sdyx * r
                    sw += weight[c] * sdy
                    swx += weight[c] * sdyx
                mgx = swx * r / M  # mean(g*xhat)
                b = -r * mgx * r
                coef[u, 0] = mu
                Kx = coef[u, 0]
                coef[u, 1] = r
                coef[u, 2] = sw / M  # mean(g)
                coef[u, 3] = b
                rx = coef[u, 1]
                mg = coef[u, 2]
                bx = coef[u, 3]
                coef[u, 3] = -b * (mu - Kx)
                kx = coef[u, 3]
                for cc in range(Cg):
                    w = weight[g * Cg + cc]
                    dxv = dxf[start + cc * S:start + (cc + 1) * S]
                    dyv = dyf[start + cc * S:start + (cc + 1) * S]
                    xv = xf[start + cc * S:start + (cc + 1) * S]
                    for j in range(S):
                        dxv[j] = rx * (w * dyv[j] - mg) + bx * (xv[j] - Kx) + kx
        if serial:
            _add_partials(sw_c, sb_c, pw[0], pb[0], g * Cg, (g + 1) * Cg)
    if not serial:
        for q in range(n_chunks):
            _add_partials(sw_c, sb_c, pw[q], pb[q], 0, C)
    for c in range(C):
        dweight[c] = sw_c[c]
        dbias[c] = sb_c[c]


@njit(cache=True)
def _add_partials(sw, sb, pw, pb, c0, c1):
    """sw[c] += pw[c], sb[c] += pb[c] for c in [c0, c1): one chunk's partials into the sums, in double."""
    swv = sw[c0:c1]
    sbv = sb[c0:c1]
    pwv = pw[c0:c1]
    pbv = pb[c0:c1]
    for c in range(c1 - c0):
        swv[c] += pwv[c]
        sbv[c] += pbv[c]


def group_norm_backward(dx, dweight, dbias, dy, x, mean, rstd, weight, num_groups, n_threads):
    """Group norm backward (formula: reference.group_norm_backward)."""
    _pick(_gn_backward, n_threads)(dx, dweight, dbias, dy, x, mean, rstd, weight, int(num_groups), n_threads)


# ---------------------------------------------------------------------------------------------------------
# running statistics (rule and roundings: reference.running_stats_update)


@njit(cache=True)
def _running_stats(rm, rv, mean, rstd, momentum, eps, count, keep):
    N, C = mean.shape
    for c in range(C):
        sm = 0.0
        sv = 0.0
        for n in range(N):  # NOTE: rows in order, as NumPy's sum over the outer axis adds them
            sm = sm + mean[n, c]
            r = rstd[n, c]
            sv = sv + (1.0 / (r * r) - eps) * (count / (count - 1))
        rm[c] = (sm / N) * momentum + np.float64(rm[c] * keep[0])
        rv[c] = (sv / N) * momentum + np.float64(rv[c] * keep[0])


def running_stats_update(running_mean, running_var, mean, rstd, momentum, eps, count, n_threads):
    keep = _in_x(running_mean, np.array([1.0 - momentum]))
    _running_stats(running_mean, running_var, mean, rstd, float(momentum), float(eps), float(count), keep)
