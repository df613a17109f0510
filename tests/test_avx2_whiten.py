"""Decorrelated batch norm's covariance and whitening passes on CPUs with AVX2 and FMA but no AVX-512: whiten.h's AVX2
versions (mg_group_cov_one_avx2_T, mg_group_whiten_block_avx2_T, the drivers' default there) and the clones of the
64-byte vector code (mg_group_cov_one_T, mg_group_whiten_block_T: on such a CPU the x86-64-v3 clone, which nothing
else runs once the AVX2 versions are the default) give the same bits: rows of S = 1 to 35 values and longer (every
tail of the 16-float and 8-double lanes), group sizes 1 to 16 with a short last group (odd and even gk: the float64
rests' last odd term), plain, large-mean and tiny-variance data, NaN, inf, signed zeros and subnormals, 1 and 2
threads, and zca_forward end to end. NaN compared as NaN (its sign aside: which operand's NaN a fused multiply-add
passes on is the instruction's operand order). On a CPU with AVX-512 the clones are the v4 clone, whose float64
rests GCC summed in another order (docs/perf/decorrelated-forward.md): there float64 is compared to 1e-12 and
float32 to 1e-5. The clones'
bits also depend on the optimization level (at -O1 GCC neither vectorizes the rests nor fuses their terms): in the
sanitizer build (MINIGRAD_SANITIZE=1, -O1) both dtypes are compared to a tolerance instead."""
import numpy as np
import pytest

from minigrad import _build_config
from minigrad._ext import whiten

DEFAULT = whiten._passes_avx2()  # NOTE: read at import, before any test sets it
OPTIMIZED = not getattr(_build_config, "SANITIZE", False)


def _exact(dtype):
    """Bit for bit where the clone is the v3 clone of the -O3 build. NOTE: on a CPU with AVX-512 (the v4 clone) float32
    is compared to a tolerance too: its bits there were not checked on such a CPU when this was written"""
    return OPTIMIZED and DEFAULT


def _avx2_or_skip():
    was = whiten._passes_avx2(1)
    on = whiten._passes_avx2(was)
    if not on:
        pytest.skip("the CPU has no AVX2 + FMA: only the clones run")


def _data(rng, N, C, S, dtype, case):
    mean, spread = {"plain": (0.5, 1.0), "large mean": (1e3, 1e-3), "tiny variance": (-2.0, 1e-6),
                    "special": (0.25, 1.0)}[case]
    x = (mean + spread * rng.standard_normal((N, C, S))).astype(dtype)
    if case == "special":
        flat = x.reshape(-1)
        pick = rng.random(flat.size)
        flat[pick < 0.02] = np.nan
        flat[(pick >= 0.02) & (pick < 0.04)] = np.inf
        flat[(pick >= 0.04) & (pick < 0.06)] = -np.inf
        flat[(pick >= 0.06) & (pick < 0.09)] = -0.0
        flat[(pick >= 0.09) & (pick < 0.12)] = np.finfo(dtype).smallest_subnormal * 3
    shift = x[:, :, :1].mean(axis=(0, 2)).astype(dtype)  # NOTE: finite where the first column is
    if case == "special":
        shift[::3] = 0.0
    return x, shift


def _same(a, b, exact, tol, what):
    assert np.array_equal(np.isnan(a), np.isnan(b)), what
    a, b = np.where(np.isnan(a), 0, a), np.where(np.isnan(b), 0, b)
    if exact:
        assert a.tobytes() == b.tobytes(), (what, np.abs(a - b).max())
    else:
        finite = np.isfinite(a)
        scale = np.abs(a[finite]).max(initial=1.0)
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * scale, err_msg=str(what))


def _passes(on, x, shift, M, bias, g, threads):
    was = whiten._passes_avx2(on)
    try:
        G = M.shape[0]
        cov, y = np.full((G, g, g), np.nan), np.full_like(x, np.nan)
        whiten.group_cov(cov, x, shift, g, threads)
        whiten.group_whiten(y, x, shift, M, bias, g, threads)
        return cov, y
    finally:
        whiten._passes_avx2(was)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["plain", "large mean", "tiny variance", "special"])
def test_avx2_passes_and_clones_same_bits(dtype, case):
    _avx2_or_skip()
    exact, tol = _exact(dtype), 1e-12 if dtype == np.float64 else 1e-5
    rng = np.random.default_rng(36)
    shapes = [(3, C, S, g) for S in list(range(1, 36)) + [64, 67, 256] for C, g in ((37, 16), (13, 5), (9, 3))]
    shapes += [(2, C, 19, g) for C, g in ((16, 16), (8, 8), (12, 12), (7, 7), (6, 1), (11, 4), (23, 9))]
    with np.errstate(all="ignore"):
        for N, C, S, g in shapes:
            x, shift = _data(rng, N, C, S, dtype, case)
            G = -(-C // g)
            M = (0.3 * rng.standard_normal((G, g, g))).astype(dtype)
            bias = rng.standard_normal(C).astype(dtype)
            ref = _passes(0, x, shift, M, bias, g, 1)
            for threads in (1, 2):
                got = _passes(1, x, shift, M, bias, g, threads)
                for what, a, b in zip(("cov", "y"), ref, got):
                    _same(a, b, exact, tol, (case, N, C, S, g, threads, what))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(16, 32, 64), (32, 64, 256), (8, 37, 35)])
def test_avx2_zca_forward_and_clones_same_bits(dtype, shape):
    _avx2_or_skip()
    exact, tol = _exact(dtype), 1e-12 if dtype == np.float64 else 1e-5
    N, C, S = shape
    g, G = 16, -(-C // 16)
    x = (0.5 + np.random.default_rng(7).standard_normal(shape)).astype(dtype)
    wp, b = np.full((G, g), 1.5), np.linspace(-1, 1, C)
    results = []
    for on in (0, 1):
        was = whiten._passes_avx2(on)
        try:
            for threads in (1, 2):
                outs = [np.empty_like(x), np.empty((G, g, g)), np.empty((G, g)), np.empty((G, g, g)),
                        np.empty((G, g, g)), np.empty((G, g)), np.empty(C, dtype), np.empty((G, g)), np.empty(C)]
                whiten.zca_forward(*outs, x, wp, b, g, 1e-5, threads)
                results.append(outs)
        finally:
            whiten._passes_avx2(was)
    for got in results[1:]:
        for i, (a, c) in enumerate(zip(results[0], got)):
            _same(a, c, exact, tol, (shape, i))
