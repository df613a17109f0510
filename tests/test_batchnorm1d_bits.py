"""BatchNorm1d (S == 1) in the Cython kernels, bit for bit: the forward (y, mean, rstd), the backward (dx, dweight,
dbias) and running_stats_update against a NumPy emulation of their documented order of operations.

The experiments and README figures depend on these bits, and the bits depend only on the order of operations
(norm.pyx's header, norm_channels.h): each channel on its own, every row in order; float32 takes x - K (K = x[0, c])
and its square in float32 over groups of MG_COL_GROUP = 4 rows from row 0 (a full group as ((d0 + d1) + d2) + d3,
the last, shorter one added row by row from zero), each group widened and added in double in order; the backward's
groups run row by row from zero, about Kx = float32(mean), and are moved to the mean in double; float64 adds every
row in double; the coefficients in double, rounded to X; the elementwise passes in X. float32 totals that are not
finite are summed again in double. So the emulation below fixes the bits for every path: the in-cache path
(mg_bn1d_*, small inputs: norm.pyx's _bn1d_fits) and the general one must both give them, at 1 and 2 threads.
"""
import numpy as np
import pytest

from minigrad._ext import norm

EPS = 1e-5
GROUP = 4  # MG_COL_GROUP


def _group_sums(terms, full_group):
    """Per channel: the float32 groups of GROUP rows of terms (N, C) (full groups by full_group(rows), the last
    shorter one row by row from zero), each widened and added in double, in order."""
    n = terms.shape[0]
    total = np.zeros(terms.shape[1])
    for j in range(0, n, GROUP):
        rows = terms[j:j + GROUP]
        if len(rows) == GROUP and full_group is not None:
            g = full_group(rows)
        else:
            g = np.zeros(terms.shape[1], np.float32)
            for r in rows:
                g = g + r
        total = total + g.astype(np.float64)
    return total


def _row_sums(terms):
    """Per channel: every row added in double, in order (from +0)."""
    total = np.zeros(terms.shape[1])
    for r in terms:
        total = total + r
    return total


def emulate_forward(x, weight, bias, eps):
    """y, mean, rstd of the kernel: x (N, C) float32 or float64."""
    n, c = x.shape
    K = x[0].astype(np.float64)
    if x.dtype == np.float32:
        d = x - x[0]  # float32
        s1 = _group_sums(d, lambda r: ((r[0] + r[1]) + r[2]) + r[3])
        q = d * d
        s2 = _group_sums(q, lambda r: ((r[0] + r[1]) + r[2]) + r[3])
        bad = ~(np.isfinite(s1) & np.isfinite(s2))
        if bad.any():  # the overflow fallback: again in double
            dd = x[:, bad].astype(np.float64) - K[bad]
            s1[bad] = _row_sums(dd)
            s2[bad] = _row_sums(dd * dd)
    else:
        d = x - K
        s1 = _row_sums(d)
        s2 = _row_sums(d * d)
    M = float(n)
    dm = s1 / M
    var = s2 / M - dm * dm
    mean = K + dm
    var = np.where(var < 0, 0.0, var)  # NaN stays NaN
    rstd = 1.0 / np.sqrt(var + eps)
    T = x.dtype.type
    Kx = mean.astype(T)
    sc = rstd * weight.astype(np.float64)
    scale = sc.astype(T)
    shift = (bias.astype(np.float64) - (mean - Kx.astype(np.float64)) * sc).astype(T)
    y = (x - Kx) * scale + shift
    return y, mean, rstd


def emulate_backward(dy, x, mean, rstd, weight):
    """dx, dweight, dbias of the kernel: dy, x (N, C); mean, rstd (C,) float64."""
    n, c = x.shape
    T = x.dtype.type
    if x.dtype == np.float32:
        Kf = mean.astype(np.float32)
        sdy = _group_sums(dy, None)
        sdyx = _group_sums(dy * (x - Kf), None)
        sdyx = sdyx - (mean - Kf.astype(np.float64)) * sdy
        bad = ~(np.isfinite(sdy) & np.isfinite(sdyx))
        if bad.any():
            g = dy[:, bad].astype(np.float64)
            sdy[bad] = _row_sums(g)
            sdyx[bad] = _row_sums(g * (x[:, bad].astype(np.float64) - mean[bad]))
    else:
        sdy = _row_sums(dy)
        sdyx = _row_sums(dy * (x - mean))
    M = float(n)
    dbias = sdy.astype(T)
    dweight = (sdyx * rstd).astype(T)
    mdyxhat = sdyx * rstd / M
    a = rstd * weight.astype(np.float64)
    b = -a * mdyxhat * rstd
    Kx = mean.astype(T)
    k = -b * (mean - Kx.astype(np.float64))
    dx = a.astype(T) * (dy - (sdy / M).astype(T)) + b.astype(T) * (x - Kx) + k.astype(T)
    return dx, dweight, dbias


def emulate_running_stats(running_mean, running_var, mean, rstd, momentum, eps, count):
    T = running_mean.dtype.type
    keep = T(1.0 - momentum)
    sm = 0.0 + mean
    sv = 0.0 + (1.0 / (rstd * rstd) - eps) * (count / (count - 1.0))
    rm = (sm / 1.0 * momentum + (running_mean * keep).astype(np.float64)).astype(T)
    rv = (sv / 1.0 * momentum + (running_var * keep).astype(np.float64)).astype(T)
    return rm, rv


def make_data(rng, n, c, dtype, kind):
    if kind == "normal":
        x = rng.standard_normal((n, c))
    elif kind == "large-mean":  # |mean| >> std: x - K and the coefficients' (mean - Kx) terms matter
        x = 3e4 + 1e-3 * rng.standard_normal((n, c))
    else:  # "overflow": float32 squares and products overflow in some channels (the double fallback)
        x = rng.standard_normal((n, c))
        x[1:, ::2] *= 3e19
    dy = rng.standard_normal((n, c))
    if kind == "overflow":
        dy[:, 1::3] *= 1e37
    w = rng.standard_normal(c)
    b = rng.standard_normal(c)
    return [np.ascontiguousarray(a, dtype) for a in (x, dy, w, b)]


def run_kernels(x, dy, w, b, n_threads):
    n, c = x.shape
    x3, dy3 = x.reshape(n, c, 1), dy.reshape(n, c, 1)
    y, mean, rstd = np.empty_like(x3), np.empty(c), np.empty(c)
    norm.batch_norm_forward(y, mean, rstd, x3, w, b, EPS, n_threads)
    dx, dw, db = np.empty_like(x3), np.empty_like(w), np.empty_like(w)
    norm.batch_norm_backward(dx, dw, db, dy3, x3, mean, rstd, w, n_threads)
    return y.reshape(n, c), mean, rstd, dx.reshape(n, c), dw, db


def assert_bits(got, want, what):
    assert got.dtype == want.dtype, what
    same = got.view(np.uint8).reshape(got.shape + (-1,)) == want.view(np.uint8).reshape(want.shape + (-1,))
    if not same.all():
        bad = np.argwhere(~same.all(axis=-1))
        i = tuple(bad[0])
        raise AssertionError(f"{what}: {len(bad)} values differ in their bits, first at {i}: {got[i]!r} != {want[i]!r}")


# rows: 1..70 with non-multiples of 4 and 8; channels: 1..130 with every remainder mod 16 near the block edges
NS = [1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 31, 33, 60, 63, 64, 65, 70]
CS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 15, 16, 17, 23, 24, 31, 32, 33, 47, 63, 64, 84, 100, 120, 127, 129, 130]
# larger inputs: over BN1D_CACHE_BYTES (512 KiB: the backward of all, the forward of 1100 x 130) or rows 1-4 KiB
# apart (256 x 256, 64 x 1024): the general path (norm.pyx's _bn1d_fits), with the same bits
LARGE = [(700, 100), (256, 256), (64, 1024), (1100, 130)]


def _check(n, c, dtype, kind, seed, threads=(1, 2)):
    rng = np.random.default_rng(seed)
    x, dy, w, b = make_data(rng, n, c, dtype, kind)
    with np.errstate(over="ignore", invalid="ignore"):
        y, mean, rstd = emulate_forward(x, w, b, EPS)
        dx, dw, db = emulate_backward(dy, x, mean, rstd, w)
    want = dict(y=y, mean=mean, rstd=rstd, dx=dx, dweight=dw, dbias=db)
    for nt in threads:
        got = dict(zip(want, run_kernels(x, dy, w, b, nt)))
        for k in want:
            assert_bits(got[k], want[k], f"{k} (N={n}, C={c}, {np.dtype(dtype).name}, {kind}, {nt} threads)")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["normal", "large-mean"])
@pytest.mark.parametrize("n", NS)
def test_batchnorm1d_bits_in_cache(n, kind, dtype):
    for c in CS:
        _check(n, c, dtype, kind, seed=1000 * n + c)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["normal", "large-mean"])
@pytest.mark.parametrize("n, c", LARGE, ids=[f"{n}x{c}" for n, c in LARGE])
def test_batchnorm1d_bits_general_path(n, c, kind, dtype):
    _check(n, c, dtype, kind, seed=7 * n + c)


@pytest.mark.parametrize("n, c", [(9, 20), (64, 100), (700, 100)])
def test_batchnorm1d_bits_overflow_fallback(n, c):
    _check(n, c, np.float32, "overflow", seed=n + c)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", [1, 3, 8, 100, 130])
def test_running_stats_update_bits(c, dtype):
    rng = np.random.default_rng(c)
    mean = 1e3 * rng.standard_normal((1, c))
    rstd = 0.1 + rng.random((1, c))
    rm0 = rng.standard_normal(c).astype(dtype)
    rv0 = (0.5 + rng.random(c)).astype(dtype)
    want = emulate_running_stats(rm0, rv0, mean[0], rstd[0], 0.1, EPS, 60.0)
    for nt in (1, 2):
        rm, rv = rm0.copy(), rv0.copy()
        norm.running_stats_update(rm, rv, mean, rstd, 0.1, EPS, 60.0, nt)
        assert_bits(rm, want[0], f"running_mean ({nt} threads)")
        assert_bits(rv, want[1], f"running_var ({nt} threads)")
