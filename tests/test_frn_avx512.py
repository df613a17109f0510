"""FRN + TLU's one-call backward, float32: its AVX-512 version (phases.h, mgp_rows_norm_backward_max_float_v4:
blocks of 16, the sums in 8-lane double accumulators, the split without a tie as masked adds) and the clones for
other CPUs (mgp_rows_norm_backward_max_float_any: on this CPU the AVX2 clone, which no other test runs where AVX-512
is there) give the same bits: rows of 1 to 40 values and longer (blocks of 16, of 8, the tail), ties of the max
in either half of a block of 16, in a block of 8 and in the tail, NaN, inf and signed zeros in x and dy, subnormal
dy, rows across channels, 1 and 2 threads. NaN compared as NaN (its sign aside, as the gate kernels' test: which
operand's NaN a multiply or an add passes on is the compiler's order, 0*inf's NaN is negative, an input's positive)."""
import numpy as np
import pytest


def _rows(rng, N, C, D, case):
    x = (rng.standard_normal((N, C, D)) * 2 + 0.3).astype(np.float32)
    dy = rng.standard_normal((N, C, D)).astype(np.float32)
    w, b, tau = (rng.standard_normal(C).astype(np.float32) for _ in range(3))
    rstd = 1 / np.sqrt((x.astype(np.float64) ** 2).mean(axis=2) + 1e-6)
    scale = (rstd * np.tile(w, (N, 1))).astype(np.float32)
    if case == "special":
        flat_x, flat_dy = x.reshape(-1), dy.reshape(-1)
        pick = rng.random(flat_x.size)
        flat_x[pick < 0.03] = np.nan
        flat_x[(pick >= 0.03) & (pick < 0.06)] = np.inf
        flat_x[(pick >= 0.06) & (pick < 0.09)] = -0.0
        flat_dy[(pick >= 0.09) & (pick < 0.12)] = np.inf
        flat_dy[(pick >= 0.12) & (pick < 0.15)] = np.nan
        flat_dy[(pick >= 0.15) & (pick < 0.2)] = np.float32(1e-40)
    if case == "ties":
        # NOTE: each channel's tau is z at one value of its first sample's row, a column that walks through the
        # blocks' halves and the tail as D grows; every later row of the thread's run then takes the exact split
        for c in range(C):
            i = (7 * c + D // 2 + 9) % D
            tau[c] = x[0, c, i] * scale[0, c] + b[c]
    if case == "subnormal dy":
        dy *= np.float32(1e-39)  # NOTE: dy/2 rounds on a tie
    return x, dy, w, b, tau, rstd, scale


@pytest.mark.parametrize("case", ["plain", "special", "ties", "subnormal dy"])
def test_row_norm_backward_max_avx512_and_clones_same_bits(case):
    from minigrad._ext import phases
    if not phases._gate_avx512():
        pytest.skip("the CPU has no AVX-512: only the clones run")
    rng = np.random.default_rng(35)
    was = phases._gate_avx512()
    try:
        with np.errstate(all="ignore"):
            for D in list(range(1, 41)) + [64, 67, 129, 256]:
                x, dy, w, b, tau, rstd, scale = _rows(rng, 2, 3, D, case)
                outs = []
                for on in (0, 1):
                    phases._gate_avx512(on)
                    for threads in (1, 2):
                        got = (np.full_like(x, np.nan), *(np.full((2, 3), np.nan) for _ in range(3)))
                        phases.row_norm_backward_max(*got, dy, x, rstd, w, scale, b, tau, threads)
                        outs.append(got)
                for got in outs[1:]:
                    for what, u, g in zip(("dx", "sg", "sgx", "st"), outs[0], got):
                        assert np.array_equal(np.isnan(u), np.isnan(g)), (case, D, what)
                        assert np.where(np.isnan(u), 0, u).tobytes() == np.where(np.isnan(g), 0, g).tobytes(), \
                            (case, D, what)
    finally:
        phases._gate_avx512(was)
