"""The phase kernels: every backend against the NumPy reference phases, the reference against the fused kernels
it must compose into, bit-identical results for any thread count, accuracy on data with a large mean, and the
contract's checks of the new arguments."""
import os

import numpy as np
import pytest

from conftest import BACKENDS, DTYPES, alloc_outputs, assert_same_bits_across_threads
from minigrad import kernels
from minigrad.kernels import coefficients, contract, reference

TOL = {np.float32: 1e-5, np.float64: 1e-11}
EPS = 1e-5
NUMBA_AS_PYTHON = os.environ.get("NUMBA_DISABLE_JIT", "") not in ("", "0")

# channels (N, C, S): S = 1 (BatchNorm1d shaped), S < 8, odd sizes, one value per set, large
CHANNEL_SHAPES = [(5, 3, 1), (2, 1, 5), (3, 5, 7), (7, 13, 17), (1, 1, 1), (9, 4, 1), (32, 64, 196)]
# rows (R, D): D = 1, D < 8, odd sizes, large
ROW_SHAPES = [(1, 1), (3, 5), (4, 1), (13, 33), (64, 100), (2048, 768)]


def ids(shapes):
    return ["x".join(map(str, s)) for s in shapes]


def skip_slow(name, shape):
    if name == "numba" and NUMBA_AS_PYTHON and int(np.prod(shape)) > 20_000:
        pytest.skip("numba as plain Python (NUMBA_DISABLE_JIT=1): large shape skipped")


def close(got, want, tol, what, scale=1.0):
    """Relative, with values near zero judged on the array's scale (at least ``scale``)."""
    scale = max(float(np.max(np.abs(want[np.isfinite(want)]), initial=0.0)), scale)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale, err_msg=what)


def make(rng, shape, dtype, loc=0.5, scale=2.0):
    return (loc + scale * rng.standard_normal(shape)).astype(dtype)


def channel_phases(k, x, dy, weight, bias, center):
    """A batch norm (center) or its RMS twin composed of the four channel phases: (y, dx, dweight, dbias)."""
    N, C, S = x.shape
    mean, m2 = alloc_outputs("channel_stats", x.dtype, C=C)
    k.channel_stats(mean, m2, x, center)
    rstd = coefficients.rstd(m2, N * S, EPS)
    y = np.empty_like(x)
    k.channel_apply(y, x, *coefficients.forward(mean, rstd, x.dtype, weight, bias))
    sdy, sdyx = alloc_outputs("channel_backward_sums", x.dtype, C=C)
    k.channel_backward_sums(sdy, sdyx, dy, x, mean)
    dx = np.empty_like(x)
    k.channel_backward_apply(dx, dy, x, *coefficients.backward(sdy, sdyx, N * S, mean, rstd, center, x.dtype,
                                                                weight))
    return (mean, m2), y, dx, (sdyx * rstd).astype(x.dtype), sdy.astype(x.dtype)


def row_phases(k, x, dy, weight, bias, center):
    """A layer norm (center) or RMS norm composed of the four row phases: (y, dx, dweight, dbias)."""
    R, D = x.shape
    mean, m2 = alloc_outputs("row_stats", x.dtype, R=R)
    k.row_stats(mean, m2, x, center)
    rstd = coefficients.rstd(m2, D, EPS)
    y = np.empty_like(x)
    k.row_apply(y, x, *coefficients.forward(mean, rstd, x.dtype), weight, bias)
    sg, sgx, dweight, dbias = alloc_outputs("row_backward_sums", x.dtype, R=R, D=D)
    k.row_backward_sums(sg, sgx, dweight, dbias, dy, x, mean, rstd, weight)
    dx = np.empty_like(x)
    k.row_backward_apply(dx, dy, x, weight, *coefficients.backward(sg, sgx, D, mean, rstd, center, x.dtype))
    return (mean, m2), y, dx, dweight, dbias


# ----------------------------------------------------------------------------------------------------------
# backends vs the reference, through the contract


@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("shape", CHANNEL_SHAPES, ids=ids(CHANNEL_SHAPES))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_channel_phases(name, dtype, shape, center):
    skip_slow(name, shape)
    rng = np.random.default_rng(1)
    x, dy = make(rng, shape, dtype), make(rng, shape, dtype)
    w, b = make(rng, shape[1], dtype, 1.0, 0.5), make(rng, shape[1], dtype, 0.0, 0.5)
    got = channel_phases(kernels.load(name), x, dy, w, b, center)
    want = channel_phases(reference, x, dy, w, b, center)
    close(got[0][0], want[0][0], 1e-12, "mean")
    close(got[0][1], want[0][1], 1e-12, "m2")
    if not center:
        assert not np.any(got[0][0]), "center=False: mean must be exactly 0"
    for what, g, r in zip(("y", "dx", "dweight", "dbias"), got[1:], want[1:]):
        close(g, r, TOL[dtype], what)


@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("shape", ROW_SHAPES, ids=ids(ROW_SHAPES))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_row_phases(name, dtype, shape, center):
    skip_slow(name, shape)
    rng = np.random.default_rng(2)
    x, dy = make(rng, shape, dtype), make(rng, shape, dtype)
    w, b = make(rng, shape[1], dtype, 1.0, 0.5), make(rng, shape[1], dtype, 0.0, 0.5)
    got = row_phases(kernels.load(name), x, dy, w, b, center)
    want = row_phases(reference, x, dy, w, b, center)
    close(got[0][0], want[0][0], 1e-12, "mean")
    close(got[0][1], want[0][1], 1e-12, "m2")
    # NOTE: a row of one value has dx = 0 up to the rounding of w*dy in X, amplified by rstd = 1/sqrt(eps)
    dx_scale = EPS ** -0.5 * float(np.abs(w * dy).max()) if center and shape[1] == 1 else 1.0
    for what, g, r in zip(("y", "dx", "dweight", "dbias"), got[1:], want[1:]):
        close(g, r, TOL[dtype] * (10 if what == "dweight" else 1), what, dx_scale if what == "dx" else 1.0)


def channel_relu_phases(k, x, dy, weight, bias):
    """Batch norm + ReLU composed of the fused-ReLU channel phases: (y, dx, dweight, dbias)."""
    N, C, S = x.shape
    mean, m2 = alloc_outputs("channel_stats", x.dtype, C=C)
    k.channel_stats(mean, m2, x, True)
    rstd = coefficients.rstd(m2, N * S, EPS)
    shift, scale, offset = coefficients.forward(mean, rstd, x.dtype, weight, bias)
    y = np.empty_like(x)
    k.channel_apply_relu(y, x, shift, scale, offset)
    sdy, sdyx = alloc_outputs("channel_backward_sums_relu", x.dtype, C=C)
    k.channel_backward_sums_relu(sdy, sdyx, dy, x, mean, shift, scale, offset)
    dx = np.empty_like(x)
    k.channel_backward_apply_relu(dx, dy, x, *coefficients.backward(sdy, sdyx, N * S, mean, rstd, True, x.dtype,
                                                                     weight), scale, offset)
    return y, dx, (sdyx * rstd).astype(x.dtype), sdy.astype(x.dtype)


def relu_data(rng, shape, dtype):
    """x with no value within 0.05 of a per-channel threshold t, and the bias that puts the ReLU's kink at t
    (computed after the statistics), so no pre-activation lies within rounding of 0 and every backend takes the
    same mask."""
    N, C, S = shape
    x = make(rng, shape, np.float64)
    t = rng.uniform(-0.5, 1.5, C)[None, :, None]
    x = np.where(np.abs(x - t) < 0.05, x + np.sign(x - t + 1e-300) * 0.05, x).astype(dtype)
    dy = make(rng, shape, dtype)
    w = make(rng, C, dtype, 1.0, 0.5)
    x64 = x.astype(np.float64)
    mean, var = x64.mean(axis=(0, 2)), x64.var(axis=(0, 2))
    b = (-(t.ravel() - mean) / np.sqrt(var + EPS) * w).astype(dtype)
    return x, dy, w, b


RELU_SHAPES = [s for s in CHANNEL_SHAPES if s[0] * s[2] > 1]  # a set of one value has no kink to place


@pytest.mark.parametrize("shape", RELU_SHAPES, ids=ids(RELU_SHAPES))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_channel_relu_phases(name, dtype, shape):
    """Against the reference; and bit for bit the unfused phases on the same backend (apply, then np.maximum;
    backward of dy*(y > 0)), which is what batch norm followed by minigrad's ReLU computes."""
    skip_slow(name, shape)
    rng = np.random.default_rng(11)
    x, dy, w, b = relu_data(rng, shape, dtype)
    k = kernels.load(name)
    got = channel_relu_phases(k, x, dy, w, b)
    want = channel_relu_phases(reference, x, dy, w, b)
    for what, g, r in zip(("y", "dx", "dweight", "dbias"), got, want):
        close(g, r, TOL[dtype], what)
    y_bn = channel_phases(k, x, dy, w, b, True)[1]
    assert 0 < np.count_nonzero(y_bn > 0) < y_bn.size, "the test must mask some values and keep others"
    unfused = channel_phases(k, x, dy * (y_bn > 0), w, b, True)
    np.testing.assert_array_equal(got[0], np.maximum(y_bn, np.zeros((), dtype)), err_msg="y")
    for what, g, u in zip(("dx", "dweight", "dbias"), got[1:], unfused[2:]):
        if name == "numba":
            # NOTE: Numba's sums are reassociated by LLVM loop by loop (kernels/numba/common.py, REASSOC): the masked
            # loop and the plain one may get different vector widths or interleaves on a CPU whose cost model differs
            # (the AVX2 Zen 3 VM of session 36 did, the AVX-512 Xeon did not), so the two agree to rounding there
            np.testing.assert_allclose(g, u, rtol=0, atol=64 * np.finfo(dtype).eps * np.abs(u).max(), err_msg=what)
        else:
            np.testing.assert_array_equal(g, u, err_msg=what)


@pytest.mark.parametrize("name", BACKENDS)
def test_channel_apply_relu_edge_values(name):
    """NaN stays NaN, -0 and negatives give +0 (np.maximum(z, 0)'s bits); the backward masks NaN and 0 out."""
    k = kernels.load(name)
    x = np.array([[[np.nan, -0.0, 0.0, -1.0, 2.0, np.inf, -np.inf, 3.0, -2.0]]], np.float32)
    one, zero = np.ones(1, np.float32), np.zeros(1, np.float32)
    y = np.empty_like(x)
    k.channel_apply_relu(y, x, zero, one, -zero)  # NOTE: offset -0 keeps z = -0 for x = -0
    want = np.maximum(x, np.float32(0))
    np.testing.assert_array_equal(y, want)
    assert not np.signbit(y[0, 0, 1:]).any()
    # NOTE: the backward apply's b*(x - shift) term is NaN for non-finite x even where b = 0, as in the unfused one
    xf = np.nan_to_num(x, posinf=5.0, neginf=-5.0)
    dy = np.ones_like(x)
    dx = np.empty_like(x)
    k.channel_backward_apply_relu(dx, dy, xf, one, zero, zero, zero, zero, one, zero)
    np.testing.assert_array_equal(dx, dy * (xf > 0))
    sdy, sdyx = np.empty(1), np.empty(1)
    k.channel_backward_sums_relu(sdy, sdyx, dy, xf, np.zeros(1), zero, one, zero)
    assert sdy[0] == 3.0 and sdyx[0] == 2.0 + 5.0 + 3.0


def row_max_phases(k, x, dy, weight, bias, tau):
    """FRN + TLU on rows composed of the fused-max row phases (per-row weight, bias, tau):
    (y, dx, dweight, dbias, dtau), the parameter gradients per row."""
    R, D = x.shape
    mean, m2 = alloc_outputs("row_stats", x.dtype, R=R)
    k.row_stats(mean, m2, x, False)
    rstd = coefficients.rstd(m2, D, EPS)
    shift, scale, offset = coefficients.forward(mean, rstd, x.dtype, weight, bias)
    y = np.empty_like(x)
    k.row_apply_max(y, x, shift, scale, offset, tau)
    sg, sgx, st = alloc_outputs("row_backward_sums_max", x.dtype, R=R)
    k.row_backward_sums_max(sg, sgx, st, dy, x, mean, shift, scale, offset, tau)
    dx = np.empty_like(x)
    k.row_backward_apply_max(dx, dy, x, *coefficients.backward(sg, sgx, D, mean, rstd, False, x.dtype, weight),
                             scale, offset, tau)
    return y, dx, (sgx * rstd).astype(x.dtype), sg.astype(x.dtype), st.astype(x.dtype)


def row_unfused_max(k, x, dy, weight, bias, tau):
    """The same through the plain row phases and np.maximum, as FRN then minigrad's TLU compute it."""
    R, D = x.shape
    ones, zeros = np.ones(D, x.dtype), np.zeros(D, x.dtype)
    mean, m2 = alloc_outputs("row_stats", x.dtype, R=R)
    k.row_stats(mean, m2, x, False)
    rstd = coefficients.rstd(m2, D, EPS)
    z = np.empty_like(x)
    k.row_apply(z, x, *coefficients.forward(mean, rstd, x.dtype, weight, bias), ones, zeros)
    t = tau[:, None]
    g = np.where(z > t, dy, np.where(z == t, dy * x.dtype.type(0.5), np.zeros((), x.dtype)))
    sg, sgx, unused_w, unused_b = alloc_outputs("row_backward_sums", x.dtype, R=R, D=D)
    k.row_backward_sums(sg, sgx, unused_w, unused_b, g, x, mean, rstd, ones)
    dx = np.empty_like(x)
    k.row_backward_apply(dx, g, x, ones, *coefficients.backward(sg, sgx, D, mean, rstd, False, x.dtype, weight))
    return np.maximum(z, t), dx, (sgx * rstd).astype(x.dtype), sg.astype(x.dtype), (dy - g).sum(axis=1)


def max_data(rng, shape, dtype):
    """x with no value within 0.05 of a per-row kink t, and the tau that puts the max's kink at t (computed after
    the statistics), so no value before the max lies within rounding of tau and every backend takes the same
    mask; per-row weight and bias."""
    R, D = shape
    x = make(rng, shape, np.float64)
    t = rng.uniform(-0.5, 1.5, R)[:, None]
    x = np.where(np.abs(x - t) < 0.05, x + np.sign(x - t + 1e-300) * 0.05, x).astype(dtype)
    dy = make(rng, shape, dtype)
    w, b = make(rng, R, dtype, 1.0, 0.5), make(rng, R, dtype, 0.0, 0.5)
    x64 = x.astype(np.float64)
    rstd = 1 / np.sqrt((x64 * x64).mean(axis=1) + EPS)
    tau = (t.ravel() * rstd * w + b).astype(dtype)
    return x, dy, w, b, tau


MAX_SHAPES = [(3, 5), (4, 2), (13, 33), (64, 100), (96, 196)]


@pytest.mark.parametrize("shape", MAX_SHAPES, ids=ids(MAX_SHAPES))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_row_max_phases(name, dtype, shape):
    """Against the reference; and the unfused phases on the same backend (row_apply, then np.maximum; backward of
    dy masked by Maximum's rule), which is what FRN followed by minigrad's TLU computes: y bit for bit."""
    skip_slow(name, shape)
    rng = np.random.default_rng(12)
    x, dy, w, b, tau = max_data(rng, shape, dtype)
    k = kernels.load(name)
    got = row_max_phases(k, x, dy, w, b, tau)
    want = row_max_phases(reference, x, dy, w, b, tau)
    for what, g, r in zip(("y", "dx", "dweight", "dbias", "dtau"), got, want):
        close(g, r, TOL[dtype], what)
    unfused = row_unfused_max(k, x, dy, w, b, tau)
    assert 0 < np.count_nonzero(got[0] > tau[:, None]) < x.size, "the test must mask some values and keep others"
    np.testing.assert_array_equal(got[0], unfused[0], err_msg="y")
    # NOTE: the sums may round differently (numba vectorizes the two reductions in its own ways), so dx is close
    for what, g, u in zip(("dx", "dweight", "dbias", "dtau"), got[1:], unfused[1:]):
        close(g, u, TOL[dtype], what)


@pytest.mark.parametrize("eps", [1e-6, 0.0])
@pytest.mark.parametrize("shape", MAX_SHAPES, ids=ids(MAX_SHAPES))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_row_norm_apply_max(name, dtype, shape, eps):
    """FRN + TLU's forward in one call against the reference, and bit for bit against the two phases it fuses on
    the same backend (row_stats without center, coefficients.rstd, X(rstd*w), row_apply_max with shift 0), which
    is what the backward's coefficients assume. A zero row with eps = 0 gives rstd = inf, as the phases."""
    skip_slow(name, shape)
    rng = np.random.default_rng(13)
    x, _, w, b, tau = max_data(rng, shape, dtype)
    x[0] = 0  # NOTE: a row of zeros: m2 = 0 (rstd = inf when eps = 0)
    R, D = shape
    k = kernels.load(name)

    def fused(mod):  # NOTE: x as (1, R, D): the rows' weight, bias and tau are the kernel's per-channel values
        y, rstd, scale = np.empty_like(x), np.empty(R), np.empty(R, dtype)
        mod.row_norm_apply_max(y[None], rstd[None], scale[None], x[None], w, b, tau, eps)
        return y, rstd, scale

    with np.errstate(divide="ignore", invalid="ignore"):  # NOTE: Numba as plain Python (NUMBA_DISABLE_JIT) warns
        got, want = fused(k), fused(reference)
    for what, g, r in zip(("y", "rstd", "scale"), got, want):
        close(g, r, TOL[dtype], what)
    mean, m2, y = np.empty(R), np.empty(R), np.empty_like(x)
    k.row_stats(mean, m2, x, False)
    with np.errstate(divide="ignore", invalid="ignore"):
        rstd = coefficients.rstd(m2, D, eps)
        scale = (rstd * w.astype(np.float64)).astype(dtype)
        k.row_apply_max(y, x, np.zeros(R, dtype), scale, b, tau)
    for what, g, u in zip(("y", "rstd", "scale"), got, (y, rstd, scale)):
        np.testing.assert_array_equal(g, u, err_msg=what)


@pytest.mark.parametrize("shape", MAX_SHAPES + [(2048, 256)], ids=ids(MAX_SHAPES + [(2048, 256)]))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_row_norm_backward_max(name, dtype, shape):
    """FRN + TLU's backward in one call against the reference, and bit for bit against what it fuses on the same
    backend: row_backward_sums_max (mean 0, shift 0), coefficients.backward(center=False) with the rows' weight,
    row_backward_apply_max; with a tie of the max (compared with the phases only) and a NaN in the data."""
    skip_slow(name, shape)
    rng = np.random.default_rng(14)
    x, dy, w, b, tau = max_data(rng, shape, dtype)
    R, D = shape
    m2 = (x.astype(np.float64) ** 2).sum(axis=1)
    rstd = coefficients.rstd(m2, D, 1e-6)
    scale = (rstd * w.astype(np.float64)).astype(dtype)
    if D > 2:
        tau[0] = x[0, 1] * scale[0] + b[0]  # NOTE: a tie at x[0, 1]: half of dy to each side
        x[-1, 2] = np.nan
    k = kernels.load(name)

    def fused(mod):  # NOTE: x as (1, R, D), as in test_row_norm_apply_max
        dx, sg, sgx, st = np.empty_like(x), np.empty(R), np.empty(R), np.empty(R)
        mod.row_norm_backward_max(dx[None], sg[None], sgx[None], st[None], dy[None], x[None], rstd[None], w,
                                  scale[None], b, tau)
        return dx, sg, sgx, st

    got, want = fused(k), fused(reference)
    ok = np.isfinite(want[0]).all(axis=1)
    ok[0] = D <= 2  # NOTE: the tie is X's (the kernels'); the reference's z may round past it (max_data's NOTE)
    for what, g, r in zip(("dx", "sg", "sgx", "st"), got, want):
        close(g[ok], r[ok], TOL[dtype], what)
        assert np.array_equal(np.isnan(g), np.isnan(r)), what
    mean, shift = np.zeros(R), np.zeros(R, dtype)
    sg, sgx, st, dx = np.empty(R), np.empty(R), np.empty(R), np.empty_like(x)
    k.row_backward_sums_max(sg, sgx, st, dy, x, mean, shift, scale, b, tau)
    a, mg, _, bb, kk = coefficients.backward(sg, sgx, D, mean, rstd, False, dtype, w.astype(np.float64))
    k.row_backward_apply_max(dx, dy, x, a, mg, shift, bb, kk, scale, b, tau)
    for what, g, u in zip(("dx", "sg", "sgx", "st"), got, (dx, sg, sgx, st)):
        np.testing.assert_array_equal(g, u, err_msg=what)
        np.testing.assert_array_equal(np.signbit(g), np.signbit(u), err_msg=f"{what}: signs")


@pytest.mark.parametrize("N, C, S", [(3, 5, 7), (2, 1, 9), (5, 4, 64), (3, 6, 3)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_row_norm_max_per_channel(name, dtype, N, C, S):
    """FRN + TLU's one-call kernels on x: (N, C, S) take weight, offset and tau per channel (row (n, c) reads [c],
    also where a block of 4 rows spans two samples): against the reference (which tiles the values over the rows),
    and bit for bit the same call on x as (1, N*C, S) with the values tiled, on the same backend, forward and
    backward."""
    rng = np.random.default_rng(15)
    x, dy = make(rng, (N, C, S), dtype), make(rng, (N, C, S), dtype)
    w, b, tau = make(rng, C, dtype, 1.0, 0.5), make(rng, C, dtype, 0.0, 0.5), make(rng, C, dtype, 0.0, 0.3)
    k = kernels.load(name)

    def calls(mod, xs, dys, w, b, tau):
        y, rstd, scale = np.empty_like(xs), np.empty(xs.shape[:2]), np.empty(xs.shape[:2], dtype)
        mod.row_norm_apply_max(y, rstd, scale, xs, w, b, tau, 1e-6)
        dx, sums = np.empty_like(xs), [np.empty(xs.shape[:2]) for _ in range(3)]
        mod.row_norm_backward_max(dx, *sums, dys, xs, rstd, w, scale, b, tau)
        return y, rstd, scale, dx, *sums

    names = ("y", "rstd", "scale", "dx", "sg", "sgx", "st")
    got = calls(k, x, dy, w, b, tau)
    assert 0 < np.count_nonzero(got[0] == tau[:, None]) < x.size, "the test must mask some values and keep others"
    for what, g, r in zip(names, got, calls(reference, x, dy, w, b, tau)):
        close(g, r, TOL[dtype], what)
    tiled = calls(k, x.reshape(1, N * C, S), dy.reshape(1, N * C, S), *(np.tile(a, N) for a in (w, b, tau)))
    for what, g, t in zip(names, got, tiled):
        np.testing.assert_array_equal(g.reshape(-1), t.reshape(-1), err_msg=what)


def adversarial_max_rows(rng, R, D):
    """float32 rows that stress sums in float lanes: x with a large mean and a tiny spread (1000 + 1e-3 noise) or
    mixed signs, dy with magnitudes over 8 decades, and rows whose sums cancel (dy in +v, -v pairs at equal x)."""
    x = np.empty((R, D), np.float32)
    x[0::2] = 1000 + 1e-3 * rng.standard_normal((len(range(0, R, 2)), D))
    x[1::2] = rng.standard_normal((len(range(1, R, 2)), D)) * 10.0 ** rng.uniform(-3, 3, (len(range(1, R, 2)), D))
    dy = (rng.choice([-1.0, 1.0], (R, D)) * 10.0 ** rng.uniform(-4, 4, (R, D))).astype(np.float32)
    half = D // 2 * 2
    for r in range(2, R, 3):  # NOTE: +v, -v at the same x: sum(g) and sum(g*x) cancel to the odd terms
        x[r, 1:half:2] = x[r, 0:half:2]
        dy[r, 1:half:2] = -dy[r, 0:half:2]
    x64 = x.astype(np.float64)
    scale = (1 / np.sqrt((x64 * x64).mean(axis=1) + 1e-6)).astype(np.float32)
    offset = np.zeros(R, np.float32)
    tau = np.median(x * scale[:, None], axis=1).astype(np.float32)  # NOTE: about half of dy to each side
    return x, dy, scale, offset, tau


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("D", [64, 256, 67])
def test_row_sums_max_accuracy(name, D):
    """FRN + TLU's float32 backward sums on adversarial rows (large mean and tiny spread, magnitudes over 8
    decades, cancelling sums) against the exact sums of the same g, t, x, through both entry points (the sums phase
    and the one-call backward): within the normwise bound of any float32 summation in short blocks, |sg - sum g| <=
    3u sum|g|, |st - sum t| <= 3u sum|t|, |sgx - sum g x| <= 4u sum|g x| (u = 2^-24), and, what the double sums give
    and float32 block sums do not (docs/perf/norm-family.md, "FRN + TLU's backward sums in float blocks"), each sum
    rounded to float32 equal to the exact sum rounded to float32; dx against float64 from the same g within its
    own rounding plus b's share of the sgx bound."""
    rng = np.random.default_rng(17)
    R = 12
    x, dy, scale, offset, tau = adversarial_max_rows(rng, R, D)
    z = x * scale[:, None] + offset[:, None]  # NOTE: float32, the kernels' z (x - 0 is x)
    tv = tau[:, None]
    g = np.where(z > tv, dy, np.where(z == tv, dy * np.float32(0.5), 0)).astype(np.float64)
    t = np.where(z > tv, 0, np.where(z == tv, dy * np.float32(0.5), dy)).astype(np.float64)
    x64 = x.astype(np.float64)
    u = 2.0 ** -24
    want = {"sg": (g.sum(1), 3 * u * np.abs(g).sum(1)), "sgx": ((g * x64).sum(1), 4 * u * np.abs(g * x64).sum(1)),
            "st": (t.sum(1), 3 * u * np.abs(t).sum(1))}
    k = kernels.load(name)
    sg, sgx, st = np.empty(R), np.empty(R), np.empty(R)
    k.row_backward_sums_max(sg, sgx, st, dy, x, np.zeros(R), np.zeros(R, np.float32), scale, offset, tau)
    w = np.full(R, 0.75, np.float32)
    rstd = scale.astype(np.float64)
    dx, sg2, sgx2, st2 = np.empty_like(x), np.empty(R), np.empty(R), np.empty(R)
    k.row_norm_backward_max(dx[None], sg2[None], sgx2[None], st2[None], dy[None], x[None], rstd[None], w,
                            scale[None], offset, tau)
    for what, got in (("sg", sg), ("sgx", sgx), ("st", st), ("sg", sg2), ("sgx", sgx2), ("st", st2)):
        exact, bound = want[what]
        err = np.abs(got - exact)
        assert (err <= bound + 1e-300).all(), (what, (err / np.maximum(bound, 1e-300)).max())
        np.testing.assert_array_equal(np.float32(got), np.float32(exact), err_msg=what)
    a = rstd * 0.75
    b = -a * (want["sgx"][0] * rstd / D) * rstd
    dx64 = a[:, None] * g + b[:, None] * x64
    # NOTE: dx's own float32 rounding (a, b and three operations: 4u of the terms) and b's share of the sgx bound
    bound = 4 * u * (np.abs(a[:, None] * g) + np.abs(b[:, None] * x64))
    bound += np.abs(x64) * (a * rstd * rstd * want["sgx"][1] / D)[:, None] * 1.01
    err = np.abs(dx - dx64)
    assert (err <= bound).all(), (err / bound).max()


@pytest.mark.parametrize("name", BACKENDS)
def test_row_max_edge_values(name):
    """max(z, tau) with np.maximum's NaN; the backward splits dy by Maximum's rule: z > tau all to z, a tie half
    each, else (NaN included) all to tau."""
    k = kernels.load(name)
    x = np.array([[np.nan, 1.0, 2.0, 0.0, np.inf, -np.inf, 1.0, 3.0, -2.0, 1.0, 5.0]], np.float32)
    one, zero, tau = np.ones(1, np.float32), np.zeros(1, np.float32), np.ones(1, np.float32)
    y = np.empty_like(x)
    k.row_apply_max(y, x, zero, one, zero, tau)
    np.testing.assert_array_equal(y, np.maximum(x, np.float32(1)))
    y = np.empty_like(x)
    k.row_apply_max(y, x, zero, one, zero, np.full(1, np.nan, np.float32))
    assert np.isnan(y).all()
    dy = np.full_like(x, 2.0)
    want_g = np.where(x > 1, 2.0, np.where(x == 1, 1.0, 0.0)).astype(np.float32)
    xf = np.nan_to_num(x, posinf=5.0, neginf=-5.0)  # NOTE: b*(x - shift) is NaN for non-finite x even where b = 0
    want_gf = np.where(xf > 1, 2.0, np.where(xf == 1, 1.0, 0.0)).astype(np.float32)
    dx = np.empty_like(x)
    k.row_backward_apply_max(dx, dy, xf, one, zero, zero, zero, zero, one, zero, tau)
    np.testing.assert_array_equal(dx, want_gf)
    sg, sgx, st = np.empty(1), np.empty(1), np.empty(1)
    k.row_backward_sums_max(sg, sgx, st, dy, xf, np.zeros(1), zero, one, zero, tau)
    assert sg[0] == want_gf.sum() and st[0] == (dy - want_gf).sum()
    assert sgx[0] == (want_gf * xf).sum() == 2 * (2 + 5 + 3 + 5) + 3  # the ties: 1.0 * x = 1 each
    with np.errstate(invalid="ignore"):  # NOTE: sgx takes 0*inf = NaN here
        k.row_backward_sums_max(sg, sgx, st, dy, x, np.zeros(1), zero, one, zero, tau)
    assert st[0] == (dy - want_g).sum() and sg[0] == want_g.sum()  # NaN z: all of dy to tau
    # a masked-out inf dy gives 0, not NaN (PyTorch's maximum backward)
    dy_inf = np.where(x < 1, np.float32(np.inf), dy)
    k.row_backward_apply_max(dx, dy_inf, xf, one, zero, zero, zero, zero, one, zero, tau)
    np.testing.assert_array_equal(dx, want_gf)


# ----------------------------------------------------------------------------------------------------------
# the phases compose into the fused kernels (batch norm, layer norm): the reference against the reference


@pytest.mark.parametrize("shape", CHANNEL_SHAPES[:-1], ids=ids(CHANNEL_SHAPES[:-1]))
def test_channel_phases_compose_batch_norm(shape):
    rng = np.random.default_rng(3)
    x, dy = make(rng, shape, np.float64), make(rng, shape, np.float64)
    C = shape[1]
    w, b = make(rng, C, np.float64, 1.0, 0.5), make(rng, C, np.float64, 0.0, 0.5)
    _, y, dx, dw, db = channel_phases(reference, x, dy, w, b, True)
    y_bn, mean, rstd = np.empty_like(x), np.empty(C), np.empty(C)
    reference.batch_norm_forward(y_bn, mean, rstd, x, w, b, EPS)
    dx_bn, dw_bn, db_bn = np.empty_like(x), np.empty_like(w), np.empty_like(w)
    reference.batch_norm_backward(dx_bn, dw_bn, db_bn, dy, x, mean, rstd, w)
    for what, g, r in zip(("y", "dx", "dweight", "dbias"), (y, dx, dw, db), (y_bn, dx_bn, dw_bn, db_bn)):
        close(g, r, 1e-11, what)


@pytest.mark.parametrize("shape", ROW_SHAPES[:-1], ids=ids(ROW_SHAPES[:-1]))
def test_row_phases_compose_layer_norm(shape):
    rng = np.random.default_rng(4)
    R, D = shape
    x, dy = make(rng, shape, np.float64), make(rng, shape, np.float64)
    w, b = make(rng, D, np.float64, 1.0, 0.5), make(rng, D, np.float64, 0.0, 0.5)
    _, y, dx, dw, db = row_phases(reference, x, dy, w, b, True)
    y_ln, mean, rstd = np.empty((R, D, 1)), np.empty((R, 1)), np.empty((R, 1))
    reference.group_norm_forward(y_ln, mean, rstd, x.reshape(R, D, 1), w, b, 1, EPS)
    dx_ln, dw_ln, db_ln = np.empty((R, D, 1)), np.empty_like(w), np.empty_like(w)
    reference.group_norm_backward(dx_ln, dw_ln, db_ln, dy.reshape(R, D, 1), x.reshape(R, D, 1), mean, rstd, w, 1)
    for what, g, r in zip(("y", "dx", "dweight", "dbias"), (y, dx, dw, db),
                          (y_ln.reshape(R, D), dx_ln.reshape(R, D), dw_ln, db_ln)):
        close(g, r, 1e-11, what)


# ----------------------------------------------------------------------------------------------------------
# numerics: large mean, tiny variance, NaN


@pytest.mark.parametrize("name", BACKENDS)
def test_statistics_accurate_for_large_mean_in_float32(name):
    """float32 data 1e4 + 0.01*N(0, 1): the shifted sums keep the variance to float64 accuracy on those values."""
    k = kernels.load(name)
    rng = np.random.default_rng(5)
    x = (1e4 + 0.01 * rng.standard_normal((16, 3, 50))).astype(np.float32)
    mean, m2 = np.empty(3), np.empty(3)
    k.channel_stats(mean, m2, x, True)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(mean, x64.mean(axis=(0, 2)), rtol=1e-12)
    np.testing.assert_allclose(m2, ((x64 - x64.mean(axis=(0, 2))[:, None]) ** 2).sum(axis=(0, 2)), rtol=1e-6)
    rows = np.ascontiguousarray(x.reshape(48, 50))
    mean, m2 = np.empty(48), np.empty(48)
    k.row_stats(mean, m2, rows, True)
    r64 = rows.astype(np.float64)
    np.testing.assert_allclose(m2, ((r64 - r64.mean(axis=1)[:, None]) ** 2).sum(axis=1), rtol=1e-6)


@pytest.mark.parametrize("name", BACKENDS)
def test_nan_stays_in_its_set(name):
    k = kernels.load(name)
    x = np.ones((4, 3, 5))
    x[1, 1, 2] = np.nan
    for center in (True, False):
        mean, m2 = np.empty(3), np.empty(3)
        k.channel_stats(mean, m2, x, center)
        assert np.isnan(m2[1]) and np.isfinite(m2[[0, 2]]).all()
        rows = np.ascontiguousarray(x.reshape(12, 5))
        mean, m2 = np.empty(12), np.empty(12)
        k.row_stats(mean, m2, rows, center)
        assert np.isnan(m2[4]) and np.isfinite(np.delete(m2, 4)).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_row_stats_bits_do_not_depend_on_the_neighbouring_rows(name, dtype):
    """Each row's mean and m2 have the bits of that row computed alone, whichever rows share its loop (Cython: two
    rows at a time, the last of an odd count alone; every thread count): D < 8, D = 8, odd D with a tail, every
    row its own mean (so a row given its neighbour's shift, sums or tail shows), a NaN in one row only."""
    k, rng = kernels.load(name), np.random.default_rng(11)
    for R, D in [(1, 5), (2, 3), (3, 8), (5, 67), (8, 64), (7, 1)]:
        x = (rng.standard_normal((R, D)) * rng.uniform(0.5, 3, (R, 1)) + 1e3 * np.arange(R)[:, None]).astype(dtype)
        if R > 2:
            x[1, -1] = np.nan
        for center in (True, False):
            alone = [alloc_outputs("row_stats", x.dtype, R=1) for _ in range(R)]
            for r, (mean, m2) in enumerate(alone):
                k.row_stats(mean, m2, np.ascontiguousarray(x[r:r + 1]), center)
            want = [np.concatenate(a) for a in zip(*alone)]
            for threads in (1, 2, 3):
                mean, m2 = alloc_outputs("row_stats", x.dtype, R=R)
                k.module.row_stats(mean, m2, x, center, threads)
                for got, w in zip((mean, m2), want):
                    assert got.tobytes() == w.tobytes(), (R, D, center, threads, got, w)


# ----------------------------------------------------------------------------------------------------------
# determinism: bit-identical across runs and thread counts (raw module functions, explicit n_threads)


# ----------------------------------------------------------------------------------------------------------
# fused gate (EvoNorm): gate 0 f = x*sigmoid(v*x), gate 1 f = x/max(lo, v*x + hi)

GATE_SHAPES = [(1, 1), (3, 5), (4, 2), (7, 27), (13, 33), (64, 100), (96, 196)]  # 27: a block of 16, of 8, a tail


def gate_data(rng, shape, dtype):
    """x, dy and per-row v, lo, hi, then the coefficients (scale, offset, a, shift, b, k); lo set halfway between
    two neighbouring values of u = v*x + hi of its row, so no u lies within rounding of lo (every backend takes
    the same side of the max) and each row of more than one value has both sides."""
    R, D = shape
    x, dy = make(rng, shape, dtype), make(rng, shape, dtype)
    v = make(rng, R, dtype, 0.5, 1.0)
    hi = make(rng, R, dtype, 1.0, 0.2)
    u = np.sort(v.astype(np.float64)[:, None] * x + hi[:, None], axis=1)
    j = D // 2
    lo = (u[:, j] + u[:, max(j - 1, 0)]) / 2 if D > 1 else u[:, 0] + 0.5
    lo = np.maximum(lo, 0.3).astype(dtype)  # NOTE: den >= lo > 0, as a standard deviation
    coef = [make(rng, R, dtype, 1.0, 0.5) for _ in range(6)]
    return x, dy, v, lo, hi, coef


def row_gate_phases(k, x, dy, v, lo, hi, coef, gate):
    """(y, sdy, sdyf, sdv, shi, slo, dx) of the three gate phases."""
    R, D = x.shape
    scale, offset, a, shift, b, kk = coef
    y = np.empty_like(x)
    k.row_apply_gate(y, x, v, lo, hi, scale, offset, gate)
    sums = alloc_outputs("row_backward_sums_gate", x.dtype, R=R)
    k.row_backward_sums_gate(*sums, dy, x, v, lo, hi, gate)
    dx = np.empty_like(x)
    k.row_backward_apply_gate(dx, dy, x, a, shift, b, kk, v, lo, hi, gate)
    return (y, *sums, dx)


@pytest.mark.parametrize("gate", [0, 1])
@pytest.mark.parametrize("shape", GATE_SHAPES, ids=ids(GATE_SHAPES))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_row_gate_phases(name, dtype, shape, gate):
    """Every backend against the float64 reference (float32's sigmoid is a polynomial exp in the Cython kernels)."""
    skip_slow(name, shape)
    rng = np.random.default_rng(21)
    data = gate_data(rng, shape, dtype)
    got = row_gate_phases(kernels.load(name), *data, gate)
    want = row_gate_phases(reference, *data, gate)
    if gate == 1 and shape[1] > 1:
        x, _, v, lo, hi, _ = data
        u = v[:, None] * x + hi[:, None]
        assert 0 < np.count_nonzero(u > lo[:, None]) < x.size, "the test must take both sides of the max"
    for what, g, r in zip(("y", "sdy", "sdyf", "sdv", "shi", "slo", "dx"), got, want):
        close(g, r, TOL[dtype] * 3, f"{what} gate {gate}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_row_gate_elementwise_bits_do_not_depend_on_the_row_length(name, dtype):
    """y and dx of the first D values of a row are the same bits for every row length: each element goes through
    the same operations whichever block takes it (the Cython kernels: blocks of 16 float lanes, of 8, a scalar
    tail; docs/perf/norm-family.md, "2026-12-06 night: EvoNorm"), NaN and inf included."""
    rng = np.random.default_rng(8)
    x, dy, v, lo, hi, coef = gate_data(rng, (5, 40), dtype)
    x[0, [3, 17, 30]] = [np.nan, np.inf, -np.inf]
    x[1] *= 60  # NOTE: |v*x| past the float exp's clamps
    k = kernels.load(name)
    with np.errstate(all="ignore"):
        for gate in (0, 1):
            full = row_gate_phases(k, x, dy, v, lo, hi, coef, gate)
            for D in range(1, 40):
                part = row_gate_phases(k, x[:, :D].copy(), dy[:, :D].copy(), v, lo, hi, coef, gate)
                for what, i in (("y", 0), ("dx", 6)):
                    a, b = part[i], full[i][:, :D]
                    # NOTE: bit for bit but for a NaN's sign (x86 keeps the first operand's NaN, the compiler's choice)
                    assert np.array_equal(np.isnan(a), np.isnan(b)), (what, gate, D)
                    a, b = np.where(np.isnan(a), np.nan, a), np.where(np.isnan(b), np.nan, b)
                    assert a.tobytes() == b.tobytes(), (what, gate, D)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_row_gate_lanes_and_tail_same_bits(name, dtype):
    """y and dx of 4096 values in one row (blocks of 16 floats or 8 doubles), as rows of 8 and of 4 (the blocks of 8
    floats or 4 doubles) and as 4096 rows of one value (the scalar tail) are the same bits: the sigmoid's exp
    (mgp_expf_fma and mgp_exp_fma in the Cython kernels) gives the same bits in lanes and alone, which a few values
    cannot show (the two float exps of a planted mix-up differ on about 0.4% of inputs)."""
    rng = np.random.default_rng(13)
    x = (rng.standard_normal(4096) * 8).astype(dtype)
    x[:4] = [0.0, -0.0, 95.0, -95.0]  # NOTE: signed zeros, and |v*x| past the float exp's clamps
    dy = rng.standard_normal(4096).astype(dtype)
    k = kernels.load(name)
    one, zero = np.ones(1, dtype), np.zeros(1, dtype)
    outs = []
    for R, D in ((1, 4096), (512, 8), (1024, 4), (4096, 1)):
        ones, zeros = np.repeat(one, R), np.repeat(zero, R)
        sc, of = ones * dtype(0.7), ones * dtype(0.1)  # NOTE: float's y = f*sc + of is one FMA in lanes and tail
        y, dx = np.empty((R, D), dtype), np.empty((R, D), dtype)
        k.row_apply_gate(y, x.reshape(R, D), ones, ones, ones, sc, of, 0)
        k.row_backward_apply_gate(dx, dy.reshape(R, D), x.reshape(R, D), ones, zeros, zeros, zeros, ones, ones,
                                  ones, 0)
        outs.append((y.tobytes(), dx.tobytes()))
    assert all(o == outs[0] for o in outs[1:])


@pytest.mark.parametrize("name", BACKENDS)
def test_row_gate_float32_sigmoid_across_the_exp_clamps(name):
    """float32's gate 0, y = x*sigmoid(x), within 4 float ulps of the float64 value (and |x|*2^-125 where the
    sigmoid is below float's normals), every float from -100 to 100 near the exp's clamps (|x| from 87 to 89.5) and a
    sweep between: the Cython kernels' exp clamps x to [-89, 89] and forms 2^n as two normal powers (mg_expf.h), so a
    clamp moved past 2^n's range or a lost NaN shows here. NaN stays NaN."""
    near = np.arange(87.0, 89.5, 2.0 ** -17, dtype=np.float32)
    x = np.concatenate([near, -near, np.linspace(-100, 100, 40001, dtype=np.float32),
                        np.float32([0.0, -0.0, np.inf, -np.inf, np.nan])]).reshape(1, -1)
    one, zero = np.ones(1, np.float32), np.zeros(1, np.float32)
    y = np.empty_like(x)
    x64 = x.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        kernels.load(name).row_apply_gate(y, x, one, one, one, one, zero, 0)
        want = x64 / (1 + np.exp(-x64))
    assert np.array_equal(np.isnan(y), np.isnan(want))
    ok = np.isfinite(want)
    assert np.array_equal(y[~ok], want[~ok].astype(np.float32), equal_nan=True)
    tol = 4 * np.spacing(np.abs(want[ok]).astype(np.float32)).astype(np.float64) + np.abs(x64[ok]) * 2.0 ** -125
    err = np.abs(y[ok] - want[ok])
    assert np.all(err <= tol), (float(x[ok][np.argmax(err - tol)]), float(np.max(err / tol)))


def test_row_gate_float32_exp_finite_to_its_overflow():
    """The Cython kernels' float32 gate 0 (mg_expf.h's gate exp: 2^n as two normal powers, vscalefps in the AVX-512
    versions, x clamped to [-89, 89]), AVX-512 and clones: y = x/(1 + exp(-x)) within 3 float ulps of the value in
    long double for every float from -88.72 (exp(-x) just under float's overflow; the old bit trick's inf from
    -88.376) to -85 and a sweep to 100, 0 from -88.73 down (exp(-x) is inf), and the same bits in both versions."""
    from minigrad._ext import phases
    near = np.arange(-88.72, -85.0, 2.0 ** -16, dtype=np.float32)
    x = np.concatenate([near, np.linspace(-85, 100, 20001, dtype=np.float32)]).reshape(1, -1)
    far = -np.arange(88.73, 89.5, 2.0 ** -16, dtype=np.float32).reshape(1, -1)
    one, zero = np.ones(1, np.float32), np.zeros(1, np.float32)
    xl = x.astype(np.longdouble)
    want = xl / (1 + np.exp(-xl))
    ulp = np.spacing(np.abs(want.astype(np.float32))).astype(np.longdouble)
    was = phases._gate_avx512()
    ys = []
    try:
        for on in (0, 1) if was else (0,):
            phases._gate_avx512(on)
            y, yf = np.empty_like(x), np.empty_like(far)
            phases.row_apply_gate(y, x, one, one, one, one, zero, 0, 1)
            phases.row_apply_gate(yf, far, one, one, one, one, zero, 0, 1)
            err = (np.abs(y.astype(np.longdouble) - want) / ulp).astype(np.float64)
            assert err.max() <= 3, (on, float(x.ravel()[np.argmax(err)]), float(err.max()))
            assert np.all(yf == 0), on
            ys.append(y.tobytes())
    finally:
        phases._gate_avx512(was)
    assert all(y == ys[0] for y in ys)


@pytest.mark.skipif(np.finfo(np.longdouble).nmant < 63, reason="needs x87's 64-bit long double significand")
@pytest.mark.parametrize("name", BACKENDS)
def test_row_gate_float64_sigmoid_within_ulps(name):
    """float64's gate 0, y = x*sigmoid(x), within 3 ulps of x/(1 + exp(-x)) in long double, over x from -709 (where
    exp(-x) still is finite) past 745 (where it is subnormal) and densely near 0: the Cython kernels' polynomial
    exp (mgp_exp_fma, within 1 ulp of exp: scripts/gate_exp_check.c) against libm's in NumPy's and Numba's. The
    three roundings of x*(1/(1 + e)) give up to about 2.3 ulps with any exp within 0.5 ulp."""
    rng = np.random.default_rng(5)
    x = np.concatenate([np.linspace(-709, 745, 200003), rng.uniform(-40, 40, 100000), rng.uniform(-1, 1, 20000),
                        [0.0, -0.0, 708.4, 709.78, -708.4]]).reshape(1, -1)
    one, zero = np.ones(1), np.zeros(1)
    y = np.empty_like(x)
    kernels.load(name).row_apply_gate(y, x, one, one, one, one, zero, 0)
    xl = x.astype(np.longdouble)
    want = xl / (1 + np.exp(-xl))
    err = np.abs(y - want) / np.spacing(np.abs(want.astype(np.float64)))
    assert float(err.max()) <= 3, (float(err.max()), float(x.ravel()[np.argmax(err)]))


@pytest.mark.parametrize("name", BACKENDS)
def test_row_gate_sums_float32_within_the_terms_magnitudes(name):
    """float32's gate sums against the float64 reference, per row within a few float ulps of the sum of the terms'
    magnitudes (the Cython kernels compute each partial in float, multiply it by dy scaled by a power of two and
    sum in float blocks, each block's sums added in double; docs/perf/norm-family.md, "EvoNorm and FRN, session
    33"), for every row length from 1 to 40 (blocks of 16, of 8 and a tail) and rows of several float blocks, with
    a subnormal dy (whose products would underflow in float without the scaling), a dy of 3e38 (whose products
    would overflow) and |v*x| past the exp's clamps. Gate 0's sdv carries the float sigmoid's own
    rounding of 1 - s, hence its looser bound, on rows without saturation."""
    from minigrad.kernels.reference.phases import _gate as reference_gate  # the partials, in float64
    rng = np.random.default_rng(12)
    u = 2.0 ** -24
    k = kernels.load(name)
    for D in list(range(1, 41)) + [127, 128, 129, 300, 1000]:
        x, dy, v, lo, hi, _ = gate_data(rng, (4, D), np.float32)
        dy[1] *= np.float32(1e-40)  # NOTE: subnormal in float32
        x[2] *= np.float32(60)  # NOTE: |v*x| past the float exp's clamps
        dy[3] = np.copysign(np.float32(3e38), dy[3])  # NOTE: dy*f past float's range where |f| > 1.14
        for gate in (0, 1):
            got = alloc_outputs("row_backward_sums_gate", np.float32, R=4)
            k.row_backward_sums_gate(*got, dy, x, v, lo, hi, gate)
            want = alloc_outputs("row_backward_sums_gate", np.float32, R=4)
            reference.row_backward_sums_gate(*want, dy, x, v, lo, hi, gate)
            with np.errstate(over="ignore"):
                f, _, fv, fh, fl = reference_gate(x, v, lo, hi, gate)
            dy64 = dy.astype(np.float64)
            for what, g, w, t in zip(("sdy", "sdyf", "sdv", "shi", "slo"), got, want, (1.0, f, fv, fh, fl)):
                bound = 8 * u * np.abs(dy64 * t).sum(axis=1)
                rows = [0, 1, 3] if (gate, what) == (0, "sdv") else [0, 1, 2, 3]
                tol = 64 if (gate, what) == (0, "sdv") else 1
                err = np.abs(g - w)[rows]
                assert (err <= tol * bound[rows] + 1e-300).all(), (what, gate, D, err / (bound[rows] / 8 / u))


@pytest.mark.parametrize("name", BACKENDS)
def test_row_gate_sums_float32_inf_dy_beside_huge_finite_ones(name):
    """A float32 row with an inf dy and finite dy near float's largest: the reference's sums (in double) are inf
    or NaN by the inf term alone; the float blocks must not add the finite terms to an inf of the other sign
    (inf - inf: a NaN where the reference has inf)."""
    rng = np.random.default_rng(13)
    k = kernels.load(name)
    x, dy, v, lo, hi, _ = gate_data(rng, (2, 64), np.float32)
    x[:] = np.abs(x) + np.float32(0.5)  # NOTE: every partial f of one sign, so the finite terms add up, not cancel
    dy[:] = np.float32(-3e38)
    dy[:, 0] = np.inf
    for gate in (0, 1):
        got = alloc_outputs("row_backward_sums_gate", np.float32, R=2)
        k.row_backward_sums_gate(*got, dy, x, v, lo, hi, gate)
        want = alloc_outputs("row_backward_sums_gate", np.float32, R=2)
        with np.errstate(all="ignore"):
            reference.row_backward_sums_gate(*want, dy, x, v, lo, hi, gate)
        for what, g, w in list(zip(("sdy", "sdyf", "sdv", "shi", "slo"), got, want))[:3 if gate == 0 else 5]:
            assert not np.isfinite(w).any(), (what, gate, w)
            np.testing.assert_array_equal(g, w, err_msg=f"{what}, gate {gate}")


def test_row_gate_phases_reference_matches_derivative():
    """The reference's partials are those of f: central differences in float64 (v, hi, lo, x)."""
    rng = np.random.default_rng(3)
    x, dy, v, lo, hi, coef = gate_data(rng, (4, 9), np.float64)
    one, zero = np.ones(4), np.zeros(4)
    for gate in (0, 1):
        def total(x_=x, v_=v, lo_=lo, hi_=hi):
            y = np.empty_like(x_)
            reference.row_apply_gate(y, x_, v_, lo_, hi_, one, zero, gate)
            return (dy * y).sum(axis=1)
        sums = alloc_outputs("row_backward_sums_gate", x.dtype, R=4)
        reference.row_backward_sums_gate(*sums, dy, x, v, lo, hi, gate)
        h = 1e-6
        for i, name in ((2, "v_"), (3, "hi_"), (4, "lo_")):
            base = {"v_": v, "hi_": hi, "lo_": lo}[name]
            numeric = (total(**{name: base + h}) - total(**{name: base - h})) / (2 * h)
            np.testing.assert_allclose(sums[i], numeric, rtol=1e-6, atol=1e-7, err_msg=f"gate {gate} {name}")
        dx = np.empty_like(x)
        reference.row_backward_apply_gate(dx, dy, x, one, zero, zero, zero, v, lo, hi, gate)
        e = np.zeros_like(x)
        e[1, 3] = h
        num = ((dy * _apply(x + e, v, lo, hi, gate)).sum() - (dy * _apply(x - e, v, lo, hi, gate)).sum()) / (2 * h)
        np.testing.assert_allclose(dx[1, 3], num, rtol=1e-6, err_msg=f"gate {gate} dx")


def _apply(x, v, lo, hi, gate):
    y = np.empty_like(x)
    reference.row_apply_gate(y, x, v, lo, hi, np.ones(len(v)), np.zeros(len(v)), gate)
    return y


S0_SHAPES = [(2, 4, 5, 1), (3, 8, 9, 4), (1, 6, 1, 6), (4, 32, 64, 8), (16, 32, 64, 8), (5, 12, 33, 3)]


def s0_backward_inputs(rng, shape, dtype):
    """(dy, x, v, weight, gmean, grstd) for evonorm_s0_backward; the group statistics of x itself, as the forward's."""
    N, C, S, G = shape
    x, dy = make(rng, (N, C, S), dtype), make(rng, (N, C, S), dtype)
    v, w = make(rng, C, dtype, 0.5, 1.0), make(rng, C, dtype, 1.0, 0.3)
    xg = x.astype(np.float64).reshape(N, G, -1)
    return dy, x, v, w, xg.mean(axis=2), 1.0 / np.sqrt(xg.var(axis=2) + EPS)


def s0_backward(k, dy, x, v, w, gmean, grstd):
    dx, sums = np.empty_like(x), [np.empty(x.shape[:2]) for _ in range(3)]
    k.evonorm_s0_backward(dx, *sums, dy, x, v, w, gmean, grstd, gmean.shape[1])
    return dx, *sums


@pytest.mark.parametrize("shape", S0_SHAPES, ids=ids(S0_SHAPES))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_evonorm_s0_backward(name, dtype, shape):
    """EvoNorm-S0's backward in one call against the reference, and the reference against the two gate phases
    with the NumPy coefficients written out from the equations (d/d(1/std) of the group = sum(dy*f*w),
    d std/dx_i = (x_i - mean)/(M*std)): groups of 1 to 4 channels, one group, rows with and without a vector
    tail."""
    skip_slow(name, shape)
    rng = np.random.default_rng(5)
    data = s0_backward_inputs(rng, shape, dtype)
    got, want = s0_backward(kernels.load(name), *data), s0_backward(reference, *data)
    for what, g, r in zip(("dx", "sdy", "sdyf", "sdv"), got, want):
        close(g, r, TOL[dtype] * 3, what)
    dy, x, v, w, gmean, grstd = data
    N, C, S, G = shape
    P = C // G
    rows = lambda a: np.ascontiguousarray(np.broadcast_to(a, (N, C)), dtype).reshape(-1)  # noqa: E731
    sums = [np.empty(N * C) for _ in range(5)]
    x2, dy2, v2 = x.reshape(N * C, S), dy.reshape(N * C, S), rows(v)
    reference.row_backward_sums_gate(*sums, dy2, x2, v2, v2, v2, 0)
    w64, sdyf = w.astype(np.float64), sums[1].reshape(N, C)
    bg = -(w64 * sdyf).reshape(N, G, P).sum(axis=2) * grstd ** 3 / (P * S)
    per_channel = lambda a: np.repeat(a, P, axis=1)  # noqa: E731
    shift = gmean.astype(dtype)
    a, b, k = w64 * per_channel(grstd), per_channel(bg), per_channel(bg * (shift - gmean))
    dx = np.empty_like(x2)
    reference.row_backward_apply_gate(dx, dy2, x2, rows(a), rows(per_channel(shift)), rows(b), rows(k), v2, v2, v2,
                                      0)
    for what, g, r in zip(("dx", "sdy", "sdyf", "sdv"), want, (dx.reshape(x.shape), *sums[:3])):
        close(g, np.reshape(r, g.shape), TOL[np.float64], f"reference {what}")


@pytest.mark.parametrize("name", BACKENDS)
def test_evonorm_s0_backward_checks_num_groups(name):
    k = kernels.load(name)
    dy, x, v, w, gmean, grstd = s0_backward_inputs(np.random.default_rng(0), (2, 8, 5, 4), np.float32)
    with pytest.raises(ValueError, match="num_groups"):
        k.evonorm_s0_backward(np.empty_like(x), *[np.empty((2, 8)) for _ in range(3)], dy, x, v, w, gmean, grstd, 2)


@pytest.mark.parametrize("name", BACKENDS)
def test_row_gate_edge_values(name):
    """The sigmoid saturates without NaN (exp overflow), NaN stays NaN; the max: np.maximum's NaN, and a tie
    u == lo gives half of the gradient to each side (Maximum's rule)."""
    k = kernels.load(name)
    f32 = np.float32
    x = np.array([[-200.0, -90.0, -1.0, 0.0, 1.0, 90.0, 200.0, np.nan, 3.0]], f32)
    one, zero = np.ones(1, f32), np.zeros(1, f32)
    y = np.empty_like(x)
    k.row_apply_gate(y, x, one, one, one, one, zero, 0)
    with np.errstate(over="ignore"):
        want = x * (1 / (1 + np.exp(-x.astype(np.float64))))
    np.testing.assert_allclose(y[:, :7], want[:, :7], rtol=1e-6, atol=1e-30)
    assert np.isnan(y[0, 7]) and np.isfinite(y[0, :7]).all()
    dx = np.empty_like(x)
    k.row_backward_apply_gate(dx, np.ones_like(x), x, one, zero, zero, zero, one, one, one, 0)
    assert np.isfinite(dx[0, :7]).all() and dx[0, 0] == 0 and dx[0, 6] == 1 and dx[0, 3] == 0.5
    # gate 1 with v = 1, hi = 0: u = x, den = max(lo, x); lo = 3 ties with the last element
    lo = np.full(1, 3.0, f32)
    xm = np.array([[1.0, 2.0, 4.0, 6.0, np.nan, 3.0, 3.0, 5.0, 0.5]], f32)
    k.row_apply_gate(y, xm, one, lo, zero, one, zero, 1)
    np.testing.assert_array_equal(y, xm / np.maximum(xm, f32(3)))
    sums = alloc_outputs("row_backward_sums_gate", f32, R=1)
    xf = np.nan_to_num(xm, nan=1.0)
    k.row_backward_sums_gate(*sums, np.ones_like(xf), xf, one, lo, zero, 1)
    den = np.maximum(xf.astype(np.float64), 3.0)
    mu = np.where(xf > 3, 1.0, np.where(xf == 3, 0.5, 0.0))
    q = xf / den ** 2
    np.testing.assert_allclose([s[0] for s in sums],
                               [9, (xf / den).sum(), -(q * xf * mu).sum(), -(q * mu).sum(), -(q * (1 - mu)).sum()],
                               rtol=1e-6)



@pytest.mark.parametrize("dtype", DTYPES)
def test_row_gate_avx512_and_clones_same_bits(dtype):
    """The Cython gate kernels' AVX-512 versions (the exp's clamps as vminps / vmaxps, phases.h's *_v4) and the
    clones for other CPUs (*_any: on this CPU the x86-64-v3 clone, which no other test runs where AVX-512 is there)
    give the same bits, NaN included (a NaN's sign aside): rows of 1 to 40 values (blocks of 16 or 8, of 8 or 4, the
    tail) through both gates' apply, sums and backward apply and EvoNorm-S0's backward, with NaN, inf, signed zeros
    and |v*x| past the exp's clamps in x, and rows whose v is NaN, inf or 0 (v*x NaN for a finite x: the clamps must
    let it through)."""
    from minigrad._ext import phases
    if not phases._gate_avx512():
        pytest.skip("the CPU has no AVX-512: only the clones run")
    rng = np.random.default_rng(17)
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 88.4, 88.6, -87.4, 95.0, -95.0, 1e-40], dtype)
    v = np.concatenate([rng.standard_normal(6) * 3, [np.nan, np.inf, -np.inf, 0.0]]).astype(dtype)
    R = v.size
    lo, hi, sc, of, a, K, b, kk = (rng.standard_normal(R).astype(dtype) for _ in range(8))
    lo = np.abs(lo) + dtype(0.1)

    def run(x, dy):
        outs = []
        for gate in (0, 1):
            y, dx = np.empty_like(x), np.empty_like(x)
            phases.row_apply_gate(y, x, v, lo, hi, sc, of, gate, 1)
            sums = [np.empty(R) for _ in range(5)]
            phases.row_backward_sums_gate(*sums, dy, x, v, lo, hi, gate, 1)
            phases.row_backward_apply_gate(dx, dy, x, a, K, b, kk, v, lo, hi, gate, 1)
            outs += [y, dx, *sums]
        x3, dy3 = x[:8].reshape(2, 4, -1), dy[:8].reshape(2, 4, -1)
        dx3, s3 = np.empty_like(x3), [np.empty((2, 4)) for _ in range(3)]
        phases.evonorm_s0_backward(dx3, *s3, dy3, x3, v[4:8].copy(), sc[:4].copy(), np.zeros((2, 2)),
                                   np.ones((2, 2)), 2, 1)
        return outs + [dx3, *s3]

    with np.errstate(all="ignore"):
        for D in list(range(1, 41)) + [129, 300]:  # NOTE: 129 and 300: several of the float sums' blocks
            x = (rng.standard_normal((R, D)) * 30).astype(dtype)
            x.ravel()[rng.choice(R * D, min(R * D, special.size), replace=False)] = special[:R * D]
            dy = rng.standard_normal((R, D)).astype(dtype)
            try:
                assert phases._gate_avx512(0)
                clones = run(x, dy)
            finally:
                phases._gate_avx512(1)
            for i, (u, w) in enumerate(zip(clones, run(x, dy))):
                assert np.array_equal(np.isnan(u), np.isnan(w)), (D, i)
                assert np.where(np.isnan(u), np.nan, u).tobytes() == np.where(np.isnan(w), np.nan, w).tobytes(), \
                    (D, i)

def _phase_calls(dtype):
    rng = np.random.default_rng(6)
    calls = []
    for N, C, S in [(7, 13, 17), (300, 70, 1), (6, 40, 3)]:
        x, dy = make(rng, (N, C, S), dtype), make(rng, (N, C, S), dtype)
        coef = make(rng, C, dtype)
        mean = np.ascontiguousarray(x.mean(axis=(0, 2)), dtype=np.float64)
        calls.append(("channel_stats", (np.empty(C), np.empty(C)), (x, True)))
        calls.append(("channel_stats", (np.empty(C), np.empty(C)), (x, False)))
        calls.append(("channel_apply", (np.empty_like(x),), (x, coef, coef, coef)))
        calls.append(("channel_backward_sums", (np.empty(C), np.empty(C)), (dy, x, mean)))
        calls.append(("channel_backward_apply", (np.empty_like(x),), (dy, x, coef, coef, coef, coef, coef)))
        nc = make(rng, (N, C), dtype)
        rstd = 1 / np.sqrt((x.astype(np.float64) ** 2).mean(axis=2) + 1e-6)
        calls.append(("row_norm_apply_max", (np.empty_like(x), np.empty((N, C)), np.empty((N, C), dtype)),
                      (x, coef, coef, mean.astype(dtype), 1e-6)))
        calls.append(("row_norm_backward_max", (np.empty_like(x), *[np.empty((N, C)) for _ in range(3)]),
                      (dy, x, rstd, coef, nc, coef, mean.astype(dtype))))
        sh, sc = make(rng, C, dtype), make(rng, C, dtype)
        calls.append(("channel_apply_relu", (np.empty_like(x),), (x, sh, sc, coef)))
        calls.append(("channel_backward_sums_relu", (np.empty(C), np.empty(C)), (dy, x, mean, sh, sc, coef)))
        calls.append(("channel_backward_apply_relu", (np.empty_like(x),),
                      (dy, x, coef, coef, sh, coef, coef, sc, coef)))
    for R, D in [(300, 70), (5, 129)]:
        x, dy = make(rng, (R, D), dtype), make(rng, (R, D), dtype)
        rc, dc = make(rng, R, dtype), make(rng, D, dtype)
        mean, rstd = x.mean(axis=1).astype(np.float64), 1.0 / x.std(axis=1).astype(np.float64)
        calls.append(("row_stats", (np.empty(R), np.empty(R)), (x, True)))
        calls.append(("row_apply", (np.empty_like(x),), (x, rc, rc, rc, dc, dc)))
        calls.append(("row_backward_sums", (np.empty(R), np.empty(R), np.empty(D, dtype), np.empty(D, dtype)),
                      (dy, x, mean, rstd, dc)))
        calls.append(("row_backward_apply", (np.empty_like(x),), (dy, x, dc, rc, rc, rc, rc, rc)))
        tau = make(rng, R, dtype)
        calls.append(("row_apply_max", (np.empty_like(x),), (x, rc, rc, rc, tau)))
        calls.append(("row_backward_sums_max", (np.empty(R), np.empty(R), np.empty(R)), (dy, x, mean, rc, rc, rc, tau)))
        calls.append(("row_backward_apply_max", (np.empty_like(x),), (dy, x, rc, rc, rc, rc, rc, rc, rc, tau)))
        N, C, S, G = R // 4, 4, D, 2  # NOTE: the first 4*N rows viewed as (N, 4, D): two groups of two channels
        xs, dys = x[:N * C].reshape(N, C, S), dy[:N * C].reshape(N, C, S)
        xg = xs.astype(np.float64).reshape(N, G, -1)
        gm, gr = xg.mean(axis=2), 1.0 / xg.std(axis=2)
        calls.append(("evonorm_s0_backward", (np.empty_like(xs), *[np.empty((N, C)) for _ in range(3)]),
                      (dys, xs, make(rng, C, dtype), make(rng, C, dtype), gm, gr, G)))
        for gate in (0, 1):
            calls.append(("row_apply_gate", (np.empty_like(x),), (x, rc, tau, rc, rc, rc, gate)))
            calls.append(("row_backward_sums_gate", tuple(np.empty(R) for _ in range(5)), (dy, x, rc, tau, rc, gate)))
            calls.append(("row_backward_apply_gate", (np.empty_like(x),), (dy, x, rc, rc, rc, rc, rc, tau, rc, gate)))
    return calls


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_phases_deterministic_across_threads(name, dtype):
    assert_same_bits_across_threads(kernels.load(name).module, _phase_calls(dtype), (1, 1, 2, 3))


# ----------------------------------------------------------------------------------------------------------
# the contract


def test_contract_checks_phase_arguments():
    k = kernels.load("numpy")
    x = np.ones((4, 3, 5), np.float32)
    with pytest.raises(TypeError, match="center must be a bool"):
        k.channel_stats(np.empty(3), np.empty(3), x, 1)
    with pytest.raises(TypeError, match="'mean' must have dtype float64"):
        k.channel_stats(np.empty(3, np.float32), np.empty(3), x, True)
    with pytest.raises(ValueError, match="'m2' has shape"):
        k.channel_stats(np.empty(3), np.empty(4), x, True)
    with pytest.raises(TypeError, match="'shift' must have dtype float32"):
        k.channel_apply(np.empty_like(x), x, np.zeros(3), np.ones(3, np.float32), np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="'offset' has shape"):
        k.channel_backward_apply_relu(*(np.empty_like(x),) * 3, *(np.ones(3, np.float32),) * 6, np.ones(4, np.float32))
    rows = np.ones((4, 6))
    with pytest.raises(ValueError, match="'weight' has shape"):
        k.row_apply(np.empty_like(rows), rows, *(np.zeros(4),) * 3, np.ones(5), np.zeros(6))
    for gate in (2, True, 0.0):
        with pytest.raises(ValueError, match="gate must be the int 0"):
            k.row_apply_gate(np.empty_like(rows), rows, *(np.ones(4),) * 5, gate)


@pytest.mark.parametrize("name", BACKENDS)
def test_every_backend_has_every_phase(name):
    module = kernels.load(name).module
    for kernel in ("channel_stats", "channel_apply", "channel_backward_sums", "channel_backward_apply",
                   "channel_apply_relu", "channel_backward_sums_relu", "channel_backward_apply_relu",
                   "row_stats", "row_apply", "row_backward_sums", "row_backward_apply",
                   "row_apply_max", "row_backward_sums_max", "row_backward_apply_max", "row_norm_apply_max",
                   "row_apply_gate", "row_backward_sums_gate", "row_backward_apply_gate"):
        assert kernel in contract.SPECS and callable(getattr(module, kernel))
