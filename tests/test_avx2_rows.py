"""The rows' AVX2 + FMA kernels (phases.h, *_v3: row_stats and FRN + TLU's float32 backward, where the CPU has
x86-64-v3) against the clones they replace (*_any), in one build: the same bits, byte for byte, on rows of 1 to 40 values and longer (pairs of rows and the last alone, blocks of 8, every tail
D % 8), plain, large-mean, tiny-variance and special data (NaN, inf, signed zeros, subnormals, the exp's range
+-88.7, +-89, -103, +-709), 1 and 2 threads. A NaN is compared as NaN with its sign aside (as tests/test_frn_avx512.py's): where a row holds
NaNs of both signs (an input's +NaN, -NaN, or inf - inf's), which one a scalar add passes on is GCC's operand order,
which differs between the clones in the rows' tails (measured: row_stats' float64 tail). On a CPU with AVX-512 the backward's AVX-512 version is turned off
here, so that the v3 one runs."""
import numpy as np
import pytest
from test_frn_avx512 import _rows

SIZES = list(range(1, 41)) + [64, 67, 129, 256]


def _data(rng, shape, dt, case):
    x = rng.standard_normal(shape)
    if case == "large mean":
        x = 1e4 + x
    if case == "tiny variance":
        x = 1 + 1e-7 * x
    x = x.astype(dt)
    if case == "special":
        flat, pick = x.reshape(-1), rng.random(x.size)
        edges = [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, -3e-45, 88.7, -88.7, 89.0, -89.0, -103.0,
                 709.0, -709.0, 5e-324]
        for j, v in enumerate(edges):
            flat[(pick >= j / 40) & (pick < (j + 1) / 40)] = v
    return x


def _same_bits(u, g, where):
    """u and g byte for byte, a NaN as NaN whatever its sign"""
    assert np.array_equal(np.isnan(u), np.isnan(g)), where
    assert np.where(np.isnan(u), 0, u).tobytes() == np.where(np.isnan(g), 0, g).tobytes(), where


def _both(phases, run):
    """run() with the clones, then with the v3 kernels (1 and 2 threads each): [outputs]"""
    if not phases._rows_avx2():
        pytest.skip("the CPU has no AVX2 + FMA: only the clones run")
    was_v3, was_v4 = phases._rows_avx2(), phases._gate_avx512(0)
    try:
        outs = []
        for on in (0, 1):
            phases._rows_avx2(on)
            for threads in (1, 2):
                outs.append(run(threads))
        return outs
    finally:
        phases._rows_avx2(was_v3)
        phases._gate_avx512(was_v4)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["plain", "large mean", "tiny variance", "special"])
def test_row_stats_avx2_same_bits(dt, case):
    from minigrad._ext import phases
    rng = np.random.default_rng(36)
    for D in SIZES:
        for R in (1, 2, 5, 8):
            x = _data(rng, (R, D), dt, case)

            def run(threads):
                got = []
                for center in (True, False):
                    mean, m2 = np.full(R, 7.0), np.full(R, 7.0)
                    phases.row_stats(mean, m2, x, center, threads)
                    got += [mean, m2]
                return got

            outs = _both(phases, run)
            for got in outs[1:]:
                for what, u, g in zip(("mean", "m2", "mean0", "m20"), outs[0], got):
                    _same_bits(u, g, (case, D, R, what))


@pytest.mark.parametrize("case", ["plain", "special", "ties", "subnormal dy"])
def test_row_norm_backward_max_avx2_same_bits(case):
    from minigrad._ext import phases
    rng = np.random.default_rng(36)
    with np.errstate(all="ignore"):
        for D in SIZES:
            x, dy, w, b, tau, rstd, scale = _rows(rng, 2, 3, D, case)

            def run(threads):
                got = (np.full_like(x, np.nan), *(np.full((2, 3), np.nan) for _ in range(3)))
                phases.row_norm_backward_max(*got, dy, x, rstd, w, scale, b, tau, threads)
                return got

            outs = _both(phases, run)
            for got in outs[1:]:
                for what, u, g in zip(("dx", "sg", "sgx", "st"), outs[0], got):
                    _same_bits(u, g, (case, D, what))
