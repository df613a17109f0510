"""EvoNorm-B0's training forward in one call (contract: evonorm_b0_forward): every backend against the float64
reference written from the paper's equations, the compiled backends bit for bit against the phases it replaces
(row_stats, the NumPy coefficients of the functional before it, row_apply_gate), the same bits for any thread count,
float32 statistics on data with a large mean or a tiny variance, and the contract's checks."""
import os

import numpy as np
import pytest

from conftest import BACKENDS, DTYPES, alloc_outputs, assert_same_bits_across_threads
from minigrad import kernels
from minigrad.kernels import coefficients, reference

TOL = {np.float32: 3e-5, np.float64: 3e-11}
EPS = 1e-5
NUMBA_AS_PYTHON = os.environ.get("NUMBA_DISABLE_JIT", "") not in ("", "0")
# (N, C, S): C = 1 (the sums over N in NumPy's pairwise order; N past 8 and past 128), S = 1, N = 1, odd sizes,
# rows with and without a vector tail, the benchmark's shapes
SHAPES = [(2, 3, 5), (9, 1, 4), (200, 1, 3), (5, 4, 1), (1, 3, 7), (7, 13, 17), (3, 6, 64), (16, 32, 64),
          (32, 64, 256)]


def ids(shapes):
    return ["x".join(map(str, s)) for s in shapes]


def data(rng, shape, dtype, loc=0.3, scale=2.0):
    N, C, S = shape
    x = (loc + scale * rng.standard_normal(shape)).astype(dtype)
    v, w, b = (rng.standard_normal(C).astype(dtype) for _ in range(3))
    return x, v, w, b


def fused(k, x, v, w, b, eps=EPS):
    """(y, lo, hi, imean, irstd, mean, rstd) of one call."""
    N, C, S = x.shape
    out = alloc_outputs("evonorm_b0_forward", x.dtype, N=N, C=C, S=S)
    k.evonorm_b0_forward(*out, x, v, w, b, eps)
    return out


def phases(k, x, v, w, b, eps=EPS):
    """The same outputs from the phases the functional called before (row_stats, the batch statistics combined
    from the rows' in NumPy, coefficients.rstd, row_apply_gate with gate 1)."""
    N, C, S = x.shape
    x2 = x.reshape(N * C, S)
    im, im2 = np.empty((2, N, C))
    k.row_stats(im.reshape(-1), im2.reshape(-1), x2, True)
    mean = im.sum(axis=0) / N
    dev = im - mean
    with np.errstate(divide="ignore"):
        rstd = coefficients.rstd(im2.sum(axis=0) + S * (dev * dev).sum(axis=0), N * S, eps)
        irstd = coefficients.rstd(im2, S, eps)
    co = np.empty((5, N, C), x.dtype)
    co[0], co[1], co[2], co[3], co[4] = v, 1.0 / rstd, 1.0 / irstd, w, b
    y = np.empty_like(x2)
    k.row_apply_gate(y, x2, *co.reshape(5, N * C), 1)
    return y.reshape(x.shape), co[1], co[2], im, irstd, mean, rstd


def same_bits(got, want, what):
    for name, g, r in zip(("y", "lo", "hi", "imean", "irstd", "mean", "rstd"), got, want):
        assert g.dtype == r.dtype and g.tobytes() == r.tobytes(), f"{what}: {name} differs"


def _close_to_reference(got, want, names, dtype, x, v, shape):
    """Each output within TOL of the reference's (scaled by its largest value), and the data on both sides of the
    gate's max (else the test would not see one of them)."""
    for what, g, r in zip(names, got, want):
        scale = max(float(np.max(np.abs(r))), 1.0)
        np.testing.assert_allclose(g, r, rtol=TOL[dtype], atol=TOL[dtype] * scale, err_msg=what)
    if shape[2] > 1:
        u = v[None, :, None] * x + got[2][:, :, None]
        assert 0 < np.count_nonzero(u > got[1][:, :, None]) < x.size, "the test must take both sides of the max"


@pytest.mark.parametrize("shape", SHAPES, ids=ids(SHAPES))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_evonorm_b0_forward(name, dtype, shape):
    """Against the reference; the compiled backends also bit for bit against the phases on the same backend."""
    if name == "numba" and NUMBA_AS_PYTHON and int(np.prod(shape)) > 20_000:
        pytest.skip("numba as plain Python (NUMBA_DISABLE_JIT=1): large shape skipped")
    rng = np.random.default_rng(7)
    x, v, w, b = data(rng, shape, dtype)
    k = kernels.load(name)
    got = fused(k, x, v, w, b)
    want = fused(reference, x, v, w, b)
    _close_to_reference(got, want, ("y", "lo", "hi", "imean", "irstd", "mean", "rstd"), dtype, x, v, shape)
    if name != "numpy":
        same_bits(got, phases(k, x, v, w, b), f"{name} {shape}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_evonorm_b0_forward_same_bits_for_any_thread_count(name, dtype):
    rng = np.random.default_rng(3)
    for shape in [(3, 7, 9), (8, 16, 64) if NUMBA_AS_PYTHON else (16, 32, 64), (4, 1, 33)]:
        x, v, w, b = data(rng, shape, dtype)
        outs = alloc_outputs("evonorm_b0_forward", dtype, N=shape[0], C=shape[1], S=shape[2])
        assert_same_bits_across_threads(kernels.load(name).module,
                                        [("evonorm_b0_forward", outs, (x, v, w, b, EPS))], (1, 2, 3))


@pytest.mark.parametrize("case", ["large mean", "tiny variance"])
@pytest.mark.parametrize("name", BACKENDS)
def test_evonorm_b0_forward_statistics_accurate_in_float32(name, case):
    """Shifted sums in double: float32 data with a mean of 1e4 or a standard deviation of 1e-4 of its mean keep
    their statistics to the float64 reference's within a few float32 roundings of the data's scale."""
    rng = np.random.default_rng(11)
    shape = (8, 5, 64)
    z = rng.standard_normal(shape)
    x = (1e4 + z if case == "large mean" else 1 + 1e-4 * z).astype(np.float32)
    v, w, b = (rng.standard_normal(5).astype(np.float32) for _ in range(3))
    got = fused(kernels.load(name), x, v, w, b, 1e-12)
    want = fused(reference, x.astype(np.float64), v.astype(np.float64), w.astype(np.float64),
                 b.astype(np.float64), 1e-12)
    for what, i in (("imean", 3), ("mean", 5)):
        np.testing.assert_allclose(got[i], want[i], rtol=1e-12, err_msg=what)
    for what, i in (("irstd", 4), ("rstd", 6)):
        np.testing.assert_allclose(got[i], want[i], rtol=1e-9, err_msg=what)


@pytest.mark.parametrize("name", BACKENDS)
def test_evonorm_b0_forward_constant_channel_eps0_and_nan(name):
    """A constant channel with eps = 0: rstd = inf, lo = 0 (as the reference); a NaN stays in its row's and its
    channel's outputs."""
    rng = np.random.default_rng(2)
    x, v, w, b = data(rng, (3, 4, 6), np.float64)
    x[:, 1] = 2.5
    x[1, 2, 3] = np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        got, want = fused(kernels.load(name), x, v, w, b, 0.0), fused(reference, x, v, w, b, 0.0)
    assert np.isinf(got[6][1]) and got[1][0, 1] == 0 and np.isinf(got[4][:, 1]).all()
    for what, g, r in zip(("lo", "hi", "irstd", "rstd"), (got[1], got[2], got[4], got[6]),
                          (want[1], want[2], want[4], want[6])):
        np.testing.assert_allclose(g, r, rtol=1e-12, err_msg=what)
    assert np.isnan(got[6][2]) and np.isfinite(got[6][[0, 3]]).all()
    assert np.isnan(got[0][:, 2]).all() and np.isfinite(got[0][:, [0, 3]]).all()


@pytest.mark.parametrize("name", BACKENDS)
def test_evonorm_b0_forward_checks(name):
    k = kernels.load(name)
    x, v, w, b = data(np.random.default_rng(0), (2, 3, 4), np.float32)
    out = list(alloc_outputs("evonorm_b0_forward", np.float32, N=2, C=3, S=4))
    with pytest.raises(ValueError, match="eps"):
        k.evonorm_b0_forward(*out, x, v, w, b, -1.0)
    bad = list(out)
    bad[1] = np.empty((2, 3), np.float64)  # lo in X
    with pytest.raises(TypeError, match="'lo'"):
        k.evonorm_b0_forward(*bad, x, v, w, b, EPS)
    bad = list(out)
    bad[5] = np.empty(4)  # mean (C,)
    with pytest.raises(ValueError, match="'mean'"):
        k.evonorm_b0_forward(*bad, x, v, w, b, EPS)


def eval_phases(k, x, v, w, b, rv, eps=EPS):
    """(y, lo, hi, imean, irstd) of the eval forward as the functional ran it before session 38: row_stats,
    coefficients.rstd and the running std in NumPy, row_apply_gate with gate 1."""
    N, C, S = x.shape
    x2 = x.reshape(N * C, S)
    im, im2 = np.empty((2, N, C))
    k.row_stats(im.reshape(-1), im2.reshape(-1), x2, True)
    with np.errstate(divide="ignore"):
        irstd = coefficients.rstd(im2, S, eps)
    co = np.empty((5, N, C), x.dtype)
    co[0], co[4] = v, b
    co[1], co[2] = np.sqrt(rv.astype(np.float64) + eps), 1.0 / irstd
    co[3] = w
    y = np.empty_like(x2)
    k.row_apply_gate(y, x2, *co.reshape(5, N * C), 1)
    return y.reshape(x.shape), co[1], co[2], im, irstd


def eval_fused(k, x, v, w, b, rv, eps=EPS):
    """The same outputs from one call with constant_lo (lo given: X(the running std)); mean and rstd not written."""
    N, C, S = x.shape
    out = alloc_outputs("evonorm_b0_forward", x.dtype, N=N, C=C, S=S)
    out[1][...] = np.sqrt(rv.astype(np.float64) + eps)
    mean, rstd = out[5].copy(), out[6].copy()
    k.evonorm_b0_forward(*out, x, v, w, b, eps, constant_lo=True)
    assert out[5].tobytes() == mean.tobytes() and out[6].tobytes() == rstd.tobytes(), "mean, rstd written"
    return out[:5]


@pytest.mark.parametrize("shape", SHAPES, ids=ids(SHAPES))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_evonorm_b0_forward_constant_lo(name, dtype, shape):
    """Eval (constant_lo): against the reference's, and every backend bit for bit against the phases the eval
    forward ran before on the same backend (the reference: to its rounding of irstd)."""
    if name == "numba" and NUMBA_AS_PYTHON and int(np.prod(shape)) > 20_000:
        pytest.skip("numba as plain Python (NUMBA_DISABLE_JIT=1): large shape skipped")
    rng = np.random.default_rng(5)
    x, v, w, b = data(rng, shape, dtype)
    rv = (np.abs(rng.standard_normal(shape[1])) + 0.2).astype(dtype)
    k = kernels.load(name)
    got = eval_fused(k, x, v, w, b, rv)
    want = eval_fused(reference, x, v, w, b, rv)
    _close_to_reference(got, want, ("y", "lo", "hi", "imean", "irstd"), dtype, x, v, shape)
    if name != "numpy":
        for what, g, r in zip(("y", "lo", "hi", "imean", "irstd"), got, eval_phases(k, x, v, w, b, rv)):
            assert g.dtype == r.dtype and g.tobytes() == r.tobytes(), f"{name} {shape}: {what} differs"
