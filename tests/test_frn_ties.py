"""FRN + TLU's one-call backward where the max ties: the Cython kernel splits blocks without a tie in fewer
operations and takes a row again with the exact split where a block ties, and once a row of a thread's run ties,
the run's later rows go to the exact split at once (docs/perf/norm-family.md, "FRN's backward, session 31").
Every backend, bit for bit against its own phases (whose sums always take the exact split), wherever the tie
falls: the first row of a run, a later one, a block of 8, the tail; several thread counts. And the row statistics'
pairs of rows (which end in vectors) against each row alone on the short rows of EvoNorm-B0's instance sets."""
import numpy as np
import pytest

from conftest import BACKENDS, DTYPES, alloc_outputs
from minigrad import kernels
from minigrad.kernels import coefficients

# (row, column) of each tie; D = 24: three blocks of 8, no tail; D = 67: eight blocks and a tail of 3
TIES = {
    "none": [],
    "first row, a block": [(0, 5)],
    "a later row, a block": [(4, 17)],
    "the last row, the first value": [(-1, 0)],
    "the tail only": [(2, -1)],
    "every row": "all",
}


def _case(rng, R, D, dtype, where):
    x = rng.standard_normal((R, D)).astype(dtype)
    dy = rng.standard_normal((R, D)).astype(dtype)
    w = (1 + 0.5 * rng.standard_normal(R)).astype(dtype)
    b = (0.5 * rng.standard_normal(R)).astype(dtype)
    rstd = 1 / np.sqrt((x.astype(np.float64) ** 2).mean(axis=1) + 1e-6)
    scale = (rstd * w.astype(np.float64)).astype(dtype)
    tau = (0.3 * rng.standard_normal(R)).astype(dtype)  # NOTE: about a third of each row under tau
    z = x * scale[:, None] + b[:, None]  # NOTE: X's z, as the kernels compute it (x - 0 is x)
    for r, i in ([(r, int(rng.integers(D))) for r in range(R)] if where == "all" else where):
        if i == -1 and D % 8 == 0:
            continue
        tau[r] = z[r, i]
    return x, dy, w, b, rstd, scale, tau


@pytest.mark.parametrize("where", list(TIES), ids=list(TIES))
@pytest.mark.parametrize("D", [24, 67])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_row_norm_backward_max_ties_take_the_exact_split(name, dtype, D, where):
    """The one-call backward on x as (1, R, D), each row its own channel (its own tau), 1-3 threads: every output
    byte for byte that of row_backward_sums_max, coefficients.backward(center=False) and row_backward_apply_max
    on the same backend; a tie gives half of dy to each side, so a row whose tie were split as a non-tie shows."""
    rng = np.random.default_rng(31)
    R = 7
    x, dy, w, b, rstd, scale, tau = _case(rng, R, D, dtype, TIES[where])
    z = x * scale[:, None] + b[:, None]
    ties = np.count_nonzero(z == tau[:, None])
    assert (ties == 0) == (where == "none" or (where == "the tail only" and D % 8 == 0)), ties
    k = kernels.load(name)
    mean, shift = np.zeros(R), np.zeros(R, dtype)
    sg, sgx, st, dx = np.empty(R), np.empty(R), np.empty(R), np.empty_like(x)
    k.row_backward_sums_max(sg, sgx, st, dy, x, mean, shift, scale, b, tau)
    a, mg, _, bb, kk = coefficients.backward(sg, sgx, D, mean, rstd, False, dtype, w.astype(np.float64))
    k.row_backward_apply_max(dx, dy, x, a, mg, shift, bb, kk, scale, b, tau)
    for threads in (1, 2, 3):
        got = (np.full_like(x, np.nan), *(np.full(R, np.nan) for _ in range(3)))
        k.module.row_norm_backward_max(*(g[None] for g in got), dy[None], x[None], rstd[None], w, scale[None], b,
                                       tau, threads)
        for what, g, u in zip(("dx", "sg", "sgx", "st"), got, (dx, sg, sgx, st)):
            assert g.tobytes() == u.tobytes(), (what, threads, np.flatnonzero(g != u)[:5])


@pytest.mark.parametrize("D", [64, 256, 67])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_row_stats_pairs_same_bits_as_rows_alone(name, dtype, D):
    """row_stats on rows of EvoNorm-B0's instance sets (H*W = 64, 256; 67 with a tail), an even and an odd count:
    each row's mean and m2 byte for byte those of the row alone, with rows of very different means and spreads
    side by side (a lane or a shift taken from the neighbour shows), a NaN, an inf, a row of -0.0 and a constant
    row, center on and off."""
    k, rng = kernels.load(name), np.random.default_rng(32)
    for R in (8, 9):
        x = rng.standard_normal((R, D)) * 10.0 ** rng.uniform(-3, 3, (R, 1)) + rng.uniform(-1e4, 1e4, (R, 1))
        x = x.astype(dtype)
        x[1, 3], x[2, -1], x[4], x[5] = np.nan, np.inf, -0.0, 7.25
        for center in (True, False):
            want = [alloc_outputs("row_stats", x.dtype, R=1) for _ in range(R)]
            for r, (mean, m2) in enumerate(want):
                k.row_stats(mean, m2, np.ascontiguousarray(x[r:r + 1]), center)
            mean, m2 = alloc_outputs("row_stats", x.dtype, R=R)
            k.module.row_stats(mean, m2, x, center, 1)
            for what, got, w in (("mean", mean, [a[0] for a in want]), ("m2", m2, [a[1] for a in want])):
                assert got.tobytes() == np.concatenate(w).tobytes(), (what, R, center)
