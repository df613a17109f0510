"""The phase kernels in Numba: the twins of minigrad/_ext/phases.pyx (same drivers, same parallel splits).

Signatures: minigrad/kernels/contract.py (the phase kernels); math: minigrad/kernels/reference/phases.py.
Every sum is taken in double over values widened from X, with reassociation allowed only inside one run (a channel
of one row, or one row), so each result is bit-identical for any n_threads; the column sums of the rows backward
go through per-chunk partials (R_CHUNKS chunks, a number that depends on R alone) merged in order.
"""
import numpy as np
from numba import njit, prange

from .common import REASSOC, _pick, _twins

R_CHUNKS = 64

# ---------------------------------------------------------------------------------------------------------
# runs: x[start:start + m] of a flat array


@njit(cache=True, fastmath=REASSOC)
def _run_stats(x, start, m, K):
    """(sum(x - K), sum((x - K)^2)) in double."""
    a = 0.0
    q = 0.0
    for i in range(start, start + m):
        d = np.float64(x[i]) - K
        a += d
        q += d * d
    return a, q


@njit(cache=True, fastmath=REASSOC)
def _run_dy_sums(dy, x, start, m, K):
    """(sum(dy), sum(dy*(x - K))) in double."""
    a = 0.0
    q = 0.0
    for i in range(start, start + m):
        g = np.float64(dy[i])
        a += g
        q += g * (np.float64(x[i]) - K)
    return a, q


@njit(cache=True)
def _finish(s1, s2, M, K, center):
    """(mean, m2) from shifted sums; m2 clamped at 0 (rounding), NaN stays NaN."""
    v = s2 - s1 * (s1 / M) if center else s2
    return (K + s1 / M if center else 0.0), (0.0 if v < 0 else v)


# ---------------------------------------------------------------------------------------------------------
# channels layout x: (N, C, S)


@njit(cache=True)
def _channel_block(sa, sq, K, dy, x, N, C, S, c0, c1, stats):
    """Sums of channels [c0, c1) over n (in order) and s: the statistics' (stats) or the backward's."""
    for c in range(c0, c1):
        sa[c] = 0.0
        sq[c] = 0.0
    for n in range(N):
        for c in range(c0, c1):
            o = (n * C + c) * S
            if stats:
                a, q = _run_stats(x, o, S, K[c])
            else:
                a, q = _run_dy_sums(dy, x, o, S, K[c])
            sa[c] += a
            sq[c] += q


@_twins()
def _channel_stats(mean, m2, x, center, nb):
    N, C, S = x.shape
    xf = x.reshape(x.size)
    K = np.zeros(C)
    if center:
        for c in range(C):
            K[c] = xf[c * S]
    for blk in prange(nb):
        _channel_block(mean, m2, K, xf, xf, N, C, S, blk * C // nb, (blk + 1) * C // nb, True)
    for c in range(C):
        mean[c], m2[c] = _finish(mean[c], m2[c], N * S, K[c], center)


@_twins()
def _channel_backward_sums(sdy, sdyx, dy, x, mean, nb):
    N, C, S = x.shape
    for blk in prange(nb):
        _channel_block(sdy, sdyx, mean, dy.reshape(dy.size), x.reshape(x.size), N, C, S, blk * C // nb,
                       (blk + 1) * C // nb, False)


@_twins()
def _channel_apply(y, x, shift, scale, offset):
    N, C, S = x.shape
    for n in prange(N):
        for c in range(C):
            yv = y[n, c]
            xv = x[n, c]
            K, sc, of = shift[c], scale[c], offset[c]
            for j in range(S):
                yv[j] = (xv[j] - K) * sc + of


@_twins()
def _channel_backward_apply(dx, dy, x, a, mdy, shift, b, k):
    N, C, S = x.shape
    for n in prange(N):
        for c in range(C):
            dxv = dx[n, c]
            dyv = dy[n, c]
            xv = x[n, c]
            ac, mc, K, bc, kc = a[c], mdy[c], shift[c], b[c], k[c]
            for j in range(S):
                dxv[j] = ac * (dyv[j] - mc) + bc * (xv[j] - K) + kc


# fused ReLU: z = (x - shift)*scale + offset in X, as _channel_apply computes it; the backward takes
# g = dy where z > 0, else 0 (PyTorch's threshold_backward)


@njit(cache=True, fastmath=REASSOC)
def _run_dy_sums_relu(dy, x, start, m, K, sh, sc, of, zero):
    """(sum(g), sum(g*(x - K))) in double, g = dy where (x - sh)*sc + of > 0, else 0."""
    a = 0.0
    q = 0.0
    for i in range(start, start + m):
        g = np.float64(dy[i] if (x[i] - sh) * sc + of > 0 else zero)
        a += g
        q += g * (np.float64(x[i]) - K)
    return a, q


@njit(cache=True)
def _channel_block_relu(sa, sq, K, dy, x, shift, scale, offset, N, C, S, c0, c1):
    """_channel_block's backward sums with the ReLU mask."""
    zero = np.zeros(1, x.dtype)[0]
    for c in range(c0, c1):
        sa[c] = 0.0
        sq[c] = 0.0
    for n in range(N):
        for c in range(c0, c1):
            a, q = _run_dy_sums_relu(dy, x, (n * C + c) * S, S, K[c], shift[c], scale[c], offset[c], zero)
            sa[c] += a
            sq[c] += q


@_twins()
def _channel_backward_sums_relu(sdy, sdyx, dy, x, mean, shift, scale, offset, nb):
    N, C, S = x.shape
    for blk in prange(nb):
        _channel_block_relu(sdy, sdyx, mean, dy.reshape(dy.size), x.reshape(x.size), shift, scale, offset, N, C,
                            S, blk * C // nb, (blk + 1) * C // nb)


@_twins()
def _channel_apply_relu(y, x, shift, scale, offset):
    N, C, S = x.shape
    zero = np.zeros(1, x.dtype)[0]
    for n in prange(N):
        for c in range(C):
            yv = y[n, c]
            xv = x[n, c]
            K, sc, of = shift[c], scale[c], offset[c]
            for j in range(S):
                z = (xv[j] - K) * sc + of
                yv[j] = zero if z <= 0 else z  # NOTE: np.maximum(z, 0)'s bits: NaN stays NaN, -0 gives +0


@_twins()
def _channel_backward_apply_relu(dx, dy, x, a, mdy, shift, b, k, scale, offset):
    N, C, S = x.shape
    zero = np.zeros(1, x.dtype)[0]
    for n in prange(N):
        for c in range(C):
            dxv = dx[n, c]
            dyv = dy[n, c]
            xv = x[n, c]
            ac, mc, K, bc, kc, sc, of = a[c], mdy[c], shift[c], b[c], k[c], scale[c], offset[c]
            for j in range(S):
                g = dyv[j] if (xv[j] - K) * sc + of > 0 else zero
                dxv[j] = ac * (g - mc) + bc * (xv[j] - K) + kc


# ---------------------------------------------------------------------------------------------------------
# rows layout x: (R, D)


@_twins()
def _row_stats(mean, m2, x, center):
    R, D = x.shape
    xf = x.reshape(x.size)
    for r in prange(R):
        K = np.float64(xf[r * D]) if center else 0.0
        s1, s2 = _run_stats(xf, r * D, D, K)
        mean[r], m2[r] = _finish(s1, s2, D, K, center)


@_twins()
def _row_apply(y, x, shift, scale, offset, weight, bias):
    R, D = x.shape
    for r in prange(R):
        yv = y[r]
        xv = x[r]
        K, sc, of = shift[r], scale[r], offset[r]
        for d in range(D):
            yv[d] = ((xv[d] - K) * sc + of) * weight[d] + bias[d]


@njit(cache=True, fastmath=REASSOC)
def _row_sums(dy, x, w, mean):
    """(sum(dy*w), sum(dy*w*(x - mean))) of one row, in double."""
    a = 0.0
    q = 0.0
    for d in range(x.shape[0]):
        g = np.float64(dy[d]) * np.float64(w[d])
        a += g
        q += g * (np.float64(x[d]) - mean)
    return a, q


@_twins()
def _row_backward_sums(sg, sgx, pw, pb, dy, x, mean, rstd, weight):
    R, D = x.shape
    nq = pw.shape[0]
    for q in prange(nq):
        for r in range(q * R // nq, (q + 1) * R // nq):
            sg[r], sgx[r] = _row_sums(dy[r], x[r], weight, mean[r])
            pwq = pw[q]
            pbq = pb[q]
            dyr = dy[r]
            xr = x[r]
            mu, rs = mean[r], rstd[r]
            for d in range(D):
                g = np.float64(dyr[d])
                pbq[d] += g
                pwq[d] += g * ((np.float64(xr[d]) - mu) * rs)


@_twins()
def _row_backward_apply(dx, dy, x, weight, a, mg, shift, b, k):
    R, D = x.shape
    for r in prange(R):
        dxv = dx[r]
        dyv = dy[r]
        xv = x[r]
        ar, mr, K, br, kr = a[r], mg[r], shift[r], b[r], k[r]
        for d in range(D):
            dxv[d] = ar * (weight[d] * dyv[d] - mr) + br * (xv[d] - K) + kr


# fused max (FRN + TLU): z = (x - shift)*scale + offset in X, as _row_apply_max computes it; dy split between z and
# tau by Maximum's rule: g = dy where z > tau, dy/2 on a tie, else 0; t (tau's share) the rest


@njit(cache=True)
def _max_split(z, tau, dy, zero, half):
    """(g, t) of one element (half = dy/2 in X)."""
    if z > tau:
        return dy, zero
    if z == tau:
        return half, half
    return zero, dy


@njit(cache=True, fastmath=REASSOC)
def _row_sums_max(dy, x, mean, K, sc, of, tau, zero, hf):
    """(sum(g), sum(g*(x - mean)), sum(t)) of one row, in double."""
    a = 0.0
    q = 0.0
    u = 0.0
    for d in range(x.shape[0]):
        g, t = _max_split((x[d] - K) * sc + of, tau, dy[d], zero, dy[d] * hf)
        a += np.float64(g)
        q += np.float64(g) * (np.float64(x[d]) - mean)
        u += np.float64(t)
    return a, q, u


@_twins()
def _row_backward_sums_max(sg, sgx, st, dy, x, mean, shift, scale, offset, tau):
    R, D = x.shape
    zero = np.zeros(1, x.dtype)[0]
    hf = np.ones(1, x.dtype)[0] / 2
    for r in prange(R):
        sg[r], sgx[r], st[r] = _row_sums_max(dy[r], x[r], mean[r], shift[r], scale[r], offset[r], tau[r], zero, hf)


@_twins()
def _row_apply_max(y, x, shift, scale, offset, tau):
    R, D = x.shape
    for r in prange(R):
        yv = y[r]
        xv = x[r]
        K, sc, of, t = shift[r], scale[r], offset[r], tau[r]
        for d in range(D):
            z = (xv[d] - K) * sc + of
            yv[d] = z if z > t or z != z else t  # NOTE: np.maximum's NaN: from z or from t


@_twins(error_model="numpy")  # NOTE: m2 + eps = 0 (eps=0) gives rstd = inf, as in C
def _row_norm_apply_max(y, rstd, scale, x, weight, offset, tau, eps):
    R, D = x.shape
    C = weight.shape[0]
    xf = x.reshape(x.size)
    for r in prange(R):
        c = r % C
        s1, s2 = _run_stats(xf, r * D, D, 0.0)
        rstd[r] = 1.0 / np.sqrt(_finish(s1, s2, D, 0.0, False)[1] / D + eps)
        scale[r] = rstd[r] * np.float64(weight[c])  # NOTE: rounded to X by the store
        sc = scale[r]
        yv = y[r]
        xv = x[r]
        of, t = offset[c], tau[c]
        for d in range(D):
            z = xv[d] * sc + of
            yv[d] = z if z > t or z != z else t  # NOTE: np.maximum's NaN: from z or from t


@_twins()
def _row_backward_apply_max(dx, dy, x, a, mg, shift, b, k, scale, offset, tau):
    R, D = x.shape
    zero = np.zeros(1, x.dtype)[0]
    hf = np.ones(1, x.dtype)[0] / 2
    for r in prange(R):
        dxv = dx[r]
        dyv = dy[r]
        xv = x[r]
        ar, mr, K, br, kr, sc, of, t = a[r], mg[r], shift[r], b[r], k[r], scale[r], offset[r], tau[r]
        for d in range(D):
            g = _max_split((xv[d] - K) * sc + of, t, dyv[d], zero, dyv[d] * hf)[0]
            dxv[d] = ar * (g - mr) + br * (xv[d] - K) + kr


# fused gate (EvoNorm): gate 0 f = x*sigmoid(v*x), gate 1 f = x/max(lo, v*x + hi) with u = v*x + hi and the max in X
# (np.maximum's NaN), mu the share of u in the max's backward (1, 1/2 on a tie, else 0)


@njit(cache=True, error_model="numpy")
def _gate_den(x, v, lo, hi, one):
    """(den, mu) of one element, both in X (one: 1 in X)."""
    u = v * x + hi
    mu = one if u > lo else (one / 2 if u == lo else one - one)
    return (u if u > lo or u != u else lo), mu


@njit(cache=True, error_model="numpy")
def _sigmoid(z, one):
    return one / (one + np.exp(-z))


@_twins(error_model="numpy")  # NOTE: den = 0 (eps=0) gives inf or NaN, as NumPy
def _row_apply_gate(y, x, v, lo, hi, scale, offset, gate):
    R, D = x.shape
    one = np.ones(1, x.dtype)[0]
    for r in prange(R):
        yv = y[r]
        xv = x[r]
        vr, lr, hr, sc, of = v[r], lo[r], hi[r], scale[r], offset[r]
        if gate == 0:
            for d in range(D):
                yv[d] = xv[d] * _sigmoid(vr * xv[d], one) * sc + of
        else:
            for d in range(D):
                yv[d] = xv[d] / _gate_den(xv[d], vr, lr, hr, one)[0] * sc + of


@njit(cache=True, fastmath=REASSOC, error_model="numpy")
def _row_sums_gate(dy, x, v, lo, hi, gate, one):
    """(sum(dy), sum(dy*f), sum(dy*df/dv), sum(dy*df/dhi), sum(dy*df/dlo)) of one row, in double."""
    a = 0.0
    f = 0.0
    gv = 0.0
    gh = 0.0
    gl = 0.0
    for d in range(x.shape[0]):
        xd = np.float64(x[d])
        g = np.float64(dy[d])
        a += g
        if gate == 0:
            s = np.float64(_sigmoid(v * x[d], one))
            f += g * (xd * s)
            gv += g * (xd * xd * (s * (1.0 - s)))
        else:
            den, mu = _gate_den(x[d], v, lo, hi, one)
            den = np.float64(den)
            q = g * xd / (den * den)
            f += g * (xd / den)
            gv -= q * xd * mu
            gh -= q * mu
            gl -= q * (1.0 - np.float64(mu))
    return a, f, gv, gh, gl


@_twins(error_model="numpy")
def _row_backward_sums_gate(sdy, sdyf, sdv, shi, slo, dy, x, v, lo, hi, gate):
    R, D = x.shape
    one = np.ones(1, x.dtype)[0]
    for r in prange(R):
        sdy[r], sdyf[r], sdv[r], shi[r], slo[r] = _row_sums_gate(dy[r], x[r], v[r], lo[r], hi[r], gate, one)


@_twins(error_model="numpy")
def _row_backward_apply_gate(dx, dy, x, a, shift, b, k, v, lo, hi, gate):
    R, D = x.shape
    one = np.ones(1, x.dtype)[0]
    for r in prange(R):
        dxv = dx[r]
        dyv = dy[r]
        xv = x[r]
        ar, K, br, kr, vr, lr, hr = a[r], shift[r], b[r], k[r], v[r], lo[r], hi[r]
        if gate == 0:
            for d in range(D):
                s = _sigmoid(vr * xv[d], one)
                dxv[d] = ar * dyv[d] * (s + vr * xv[d] * (s * (one - s))) + br * (xv[d] - K) + kr
        else:
            for d in range(D):
                den, mu = _gate_den(xv[d], vr, lr, hr, one)
                rr = one / den
                dxv[d] = ar * dyv[d] * (rr - xv[d] * rr * rr * vr * mu) + br * (xv[d] - K) + kr


# ---------------------------------------------------------------------------------------------------------
# the contract's functions


def channel_stats(mean, m2, x, center, n_threads):
    """Per-channel mean and m2 (formula: reference.phases.channel_stats)."""
    _pick(_channel_stats, n_threads)(mean, m2, x, bool(center), min(x.shape[1], n_threads))


def channel_apply(y, x, shift, scale, offset, n_threads):
    """y = (x - shift[c])*scale[c] + offset[c]."""
    _pick(_channel_apply, n_threads)(y, x, shift, scale, offset)


def channel_backward_sums(sdy, sdyx, dy, x, mean, n_threads):
    """sdy = sum(dy), sdyx = sum(dy*(x - mean[c])) per channel."""
    _pick(_channel_backward_sums, n_threads)(sdy, sdyx, dy, x, mean, min(x.shape[1], n_threads))


def channel_backward_apply(dx, dy, x, a, mdy, shift, b, k, n_threads):
    """dx = a[c]*(dy - mdy[c]) + b[c]*(x - shift[c]) + k[c]."""
    _pick(_channel_backward_apply, n_threads)(dx, dy, x, a, mdy, shift, b, k)


def channel_apply_relu(y, x, shift, scale, offset, n_threads):
    """y = max(0, (x - shift[c])*scale[c] + offset[c])."""
    _pick(_channel_apply_relu, n_threads)(y, x, shift, scale, offset)


def channel_backward_sums_relu(sdy, sdyx, dy, x, mean, shift, scale, offset, n_threads):
    """channel_backward_sums of g = dy where (x - shift[c])*scale[c] + offset[c] > 0, else 0."""
    _pick(_channel_backward_sums_relu, n_threads)(sdy, sdyx, dy, x, mean, shift, scale, offset,
                                                  min(x.shape[1], n_threads))


def channel_backward_apply_relu(dx, dy, x, a, mdy, shift, b, k, scale, offset, n_threads):
    """channel_backward_apply of g = dy where (x - shift[c])*scale[c] + offset[c] > 0, else 0."""
    _pick(_channel_backward_apply_relu, n_threads)(dx, dy, x, a, mdy, shift, b, k, scale, offset)


def row_stats(mean, m2, x, center, n_threads):
    """Per-row mean and m2 (formula: reference.phases.row_stats)."""
    _pick(_row_stats, n_threads)(mean, m2, x, bool(center))


def row_apply(y, x, shift, scale, offset, weight, bias, n_threads):
    """y = ((x - shift[r])*scale[r] + offset[r])*weight[d] + bias[d]."""
    _pick(_row_apply, n_threads)(y, x, shift, scale, offset, weight, bias)


def row_backward_sums(sg, sgx, dweight, dbias, dy, x, mean, rstd, weight, n_threads):
    """Per row sg = sum(dy*w), sgx = sum(dy*w*(x - mean)); per column dbias, dweight through chunk partials."""
    nq = min(x.shape[0], R_CHUNKS)
    pw = np.zeros((nq, x.shape[1]))
    pb = np.zeros((nq, x.shape[1]))
    _pick(_row_backward_sums, n_threads)(sg, sgx, pw, pb, dy, x, mean, rstd, weight)
    dweight[:] = _merge(pw)
    dbias[:] = _merge(pb)


@njit(cache=True)
def _merge(p):
    """The chunks' partials added in order (q outer), as phases.pyx does."""
    out = p[0].copy()
    for q in range(1, p.shape[0]):
        out += p[q]
    return out


def row_backward_apply(dx, dy, x, weight, a, mg, shift, b, k, n_threads):
    """dx = a[r]*(weight[d]*dy - mg[r]) + b[r]*(x - shift[r]) + k[r]."""
    _pick(_row_backward_apply, n_threads)(dx, dy, x, weight, a, mg, shift, b, k)


def row_apply_max(y, x, shift, scale, offset, tau, n_threads):
    """y = max((x - shift[r])*scale[r] + offset[r], tau[r])."""
    _pick(_row_apply_max, n_threads)(y, x, shift, scale, offset, tau)


def row_norm_apply_max(y, rstd, scale, x, weight, offset, tau, eps, n_threads):
    """FRN + TLU forward in one pass per row (n, c) of x: (N, C, S) (contract): m2 = sum(x^2),
    scale = X(weight[c]*rstd), y = max(...)."""
    N, C, S = x.shape
    _pick(_row_norm_apply_max, n_threads)(y.reshape(N * C, S), rstd.reshape(-1), scale.reshape(-1),
                                          x.reshape(N * C, S), weight, offset, tau, float(eps))


def row_backward_sums_max(sg, sgx, st, dy, x, mean, shift, scale, offset, tau, n_threads):
    """Per row sg = sum(g), sgx = sum(g*(x - mean)), st = sum(t), dy split by the max (contract)."""
    _pick(_row_backward_sums_max, n_threads)(sg, sgx, st, dy, x, mean, shift, scale, offset, tau)


def row_backward_apply_max(dx, dy, x, a, mg, shift, b, k, scale, offset, tau, n_threads):
    """dx = a[r]*(g - mg[r]) + b[r]*(x - shift[r]) + k[r], g as in row_backward_sums_max."""
    _pick(_row_backward_apply_max, n_threads)(dx, dy, x, a, mg, shift, b, k, scale, offset, tau)


def row_apply_gate(y, x, v, lo, hi, scale, offset, gate, n_threads):
    """y = f*scale[r] + offset[r], f the gate (contract)."""
    _pick(_row_apply_gate, n_threads)(y, x, v, lo, hi, scale, offset, gate)


def row_backward_sums_gate(sdy, sdyf, sdv, shi, slo, dy, x, v, lo, hi, gate, n_threads):
    """Per row sum(dy), sum(dy*f) and sum(dy*df/dv), sum(dy*df/dhi), sum(dy*df/dlo) (contract)."""
    _pick(_row_backward_sums_gate, n_threads)(sdy, sdyf, sdv, shi, slo, dy, x, v, lo, hi, gate)


def row_backward_apply_gate(dx, dy, x, a, shift, b, k, v, lo, hi, gate, n_threads):
    """dx = a[r]*dy*df/dx + b[r]*(x - shift[r]) + k[r] (contract)."""
    _pick(_row_backward_apply_gate, n_threads)(dx, dy, x, a, shift, b, k, v, lo, hi, gate)


def row_norm_backward_max(dx, sg, sgx, st, dy, x, rstd, weight, scale, offset, tau, n_threads):
    """FRN + TLU's backward (contract): Python over the jitted max phases, with coefficients.backward between them
    (reference.phases.row_norm_backward_max)."""
    from minigrad.kernels.reference.phases import _row_norm_backward_max
    _row_norm_backward_max(row_backward_sums_max, row_backward_apply_max, dx, sg, sgx, st, dy, x, rstd, weight,
                           scale, offset, tau, n_threads)


def evonorm_s0_backward(dx, sdy, sdyf, sdv, dy, x, v, weight, gmean, grstd, num_groups, n_threads):
    """EvoNorm-S0's backward (contract): Python over the jitted gate phases, with the groups' coefficients
    (coefficients.evonorm_s0_backward) between them."""
    from minigrad.kernels.coefficients import evonorm_s0_backward as coefficients
    n, c, s = x.shape
    rows = lambda a: np.ascontiguousarray(np.broadcast_to(a, (n, c))).reshape(-1)  # noqa: E731
    x2, dy2, v2 = x.reshape(n * c, s), dy.reshape(n * c, s), rows(v)
    unused = np.empty(n * c)
    row_backward_sums_gate(sdy.reshape(-1), sdyf.reshape(-1), sdv.reshape(-1), unused, unused, dy2, x2, v2, v2, v2,
                           0, n_threads)
    a, shift, b, k = (rows(t) for t in coefficients(sdyf, weight, gmean, grstd, (c // num_groups) * s, x.dtype))
    row_backward_apply_gate(dx.reshape(n * c, s), dy2, x2, a, shift, b, k, v2, v2, v2, 0, n_threads)


def evonorm_b0_forward(y, lo, hi, imean, irstd, mean, rstd, x, v, weight, bias, eps, n_threads, constant_lo=False):
    """EvoNorm-B0's training forward (contract): Python over the jitted row phases, the instance statistics
    (row_stats), the batch's combined from them with the NumPy coefficients between, then the gate apply
    (constant_lo: lo given, no batch statistics)."""
    from minigrad.kernels.coefficients import rstd as _rstd
    N, C, S = x.shape
    x2 = x.reshape(N * C, S)
    m2 = np.empty((N, C))
    row_stats(imean.reshape(-1), m2.reshape(-1), x2, True, n_threads)
    if not constant_lo:
        mean[...] = imean.sum(axis=0) / N
        dev = imean - mean
        rstd[...] = _rstd(m2.sum(axis=0) + S * (dev * dev).sum(axis=0), N * S, eps)
    irstd[...] = _rstd(m2, S, eps)
    if not constant_lo:
        lo[...] = 1.0 / rstd
    hi[...] = 1.0 / irstd
    rows = lambda a: np.ascontiguousarray(np.broadcast_to(a, (N, C))).reshape(-1)  # noqa: E731
    row_apply_gate(y.reshape(x2.shape), x2, rows(v), lo.reshape(-1), hi.reshape(-1), rows(weight), rows(bias), 1,
                   n_threads)


def evonorm_b0_backward(dx, dv, dweight, dbias, dy, x, v, weight, lo, hi, imean, irstd, mean, rstd, n_threads,
                        constant_lo=False):
    """EvoNorm-B0's backward (contract): Python over the jitted gate phases, the channels' sums and the rows'
    coefficients in NumPy between them (the compiled kernel's operations, evonorm_b0.h; constant_lo: no b2)."""
    N, C, S = x.shape
    R = N * C
    rows = lambda a: np.ascontiguousarray(np.broadcast_to(a, (N, C))).reshape(-1)  # noqa: E731
    x2, dy2, v2 = x.reshape(R, S), dy.reshape(R, S), rows(v)
    s = np.empty((5, N, C))
    row_backward_sums_gate(*s.reshape(5, R), dy2, x2, v2, lo.reshape(-1), hi.reshape(-1), 1, n_threads)
    w64 = weight.astype(np.float64)
    b1 = w64 * s[3] * irstd / S
    s[2::2] *= w64  # NOTE: sdv and slo
    tot = s.sum(axis=1)
    dbias[...], dweight[...], dv[...] = tot[:3]
    co = np.empty((4, N, C), x.dtype)
    co[0], co[1] = weight, imean
    shift = co[1].astype(np.float64)  # NOTE: exact
    if constant_lo:
        co[2], co[3] = b1, b1 * (shift - imean)
    else:
        b2 = tot[4] * rstd / (N * S)
        co[2], co[3] = b1 + b2, b1 * (shift - imean) + b2 * (shift - mean)
    row_backward_apply_gate(dx.reshape(R, S), dy2, x2, *co.reshape(4, R), v2, lo.reshape(-1), hi.reshape(-1), 1,
                            n_threads)
