"""The gates' float32 row sums bit for bit against a NumPy emulation of the Cython kernels' float blocks (phases.h,
MGP_ROW_SUMS_SIG_FLOAT and MGP_ROW_SUMS_DEN_FLOAT; docs/perf/norm-family.md, "The gate backward's chain, session
35"): every term in float, dy scaled by 2^p, each lane's sums in element order, flushed to double every
MGP_FBLOCK = 128 values and after the last block (Numba's and the reference's sums are in double). Rows of blocks of
16 only (no blocks of 8 or tail), odd and even counts of blocks: the blocks taken two at a time and the one left
alone must give the order one block at a time gave. Gate 0's sigmoids are the kernel's own (its apply on x = 1)."""
import numpy as np
import pytest

from conftest import alloc_outputs
from minigrad import kernels

F = np.float32


def dy_scale(dy):
    """mgp_dy_scale_float: 2^p with 2^p*max|dy| in [0.5, 1), from the bits"""
    m = int((dy.view(np.uint32) & np.uint32(0x7FFFFFFF)).max())
    if m == 0:
        return F(1)
    pe = min(max(253 - (m >> 23), 27), 227)
    return np.array([pe << 23], np.uint32).view(F)[0]


def hsum(s):
    a = s[:4] + s[4:]
    return (a[0] + a[1]) + (a[2] + a[3])


def sigmoid(k, w):
    """the kernels' 1/(1 + exp(w)) of each w: gate 0's apply x/(1 + exp(-v*x)) on x = 1, v = -w, scale 1, offset 0"""
    one, y, z = np.ones((w.size, 1), F), np.empty((w.size, 1), F), np.zeros(w.size, F)
    k.row_apply_gate(y, one, -w, z, z, np.ones(w.size, F), z, 0)
    return y[:, 0]


def terms(k, x, v, lo, hi, gate):
    """the float partials the sums multiply by dy (sign included in how they are added: + for the first two)"""
    if gate == 0:
        s = sigmoid(k, -v * x)
        f = x * s
        return (f, f * (x * (F(1) - s)))
    u = v * x + hi
    mu = np.where(u > lo, F(1), np.where(u == lo, F(0.5), F(0)))
    r = F(1) / np.where((u > lo) | np.isnan(u), u, lo)
    f = x * r
    q = f * r
    return (f, q * (x * mu), q * mu, q * (F(1) - mu))


def emulated_row(k, dy, x, v, lo, hi, gate, block=128):
    t = terms(k, x, v, lo, hi, gate)
    n, D = len(t) + 1, x.size
    d = dy * dy_scale(dy)
    b, s = [np.zeros(16, F) for _ in range(n)], [np.zeros(8) for _ in range(n)]
    for i in range(0, D, 16):
        dv = d[i:i + 16]
        b[0] = b[0] + dv
        b[1] = b[1] + dv * t[0][i:i + 16]
        for j in range(2, n):
            b[j] = (b[j] + dv * t[j - 1][i:i + 16]) if gate == 0 else (b[j] - dv * t[j - 1][i:i + 16])
        if (i + 16) % block == 0 or i + 32 > D:
            for j in range(n):
                s[j] = s[j] + b[j][:8].astype(np.float64)
                s[j] = s[j] + b[j][8:].astype(np.float64)
                b[j] = np.zeros(16, F)
    pq = 1 / np.float64(dy_scale(dy))
    return [hsum(sj) * pq + 0.0 + 0.0 for sj in s]


@pytest.mark.parametrize("gate", [0, 1])
@pytest.mark.parametrize("v4", [0, 1], ids=["clones", "avx512"])
def test_gate_float32_sums_bits_of_the_blocks(v4, gate):
    from minigrad._ext import phases
    if v4 and not phases._gate_avx512():
        pytest.skip("the CPU has no AVX-512: only the clones run")
    was = phases._gate_avx512()
    try:
        phases._gate_avx512(v4)
        _check_rows(kernels.load("cython"), gate)
    finally:
        phases._gate_avx512(was)


def _check_rows(k, gate):
    rng = np.random.default_rng(35)
    names = ("sdy", "sdyf", "sdv", "shi", "slo")[:3 if gate == 0 else 5]
    for D in (16, 32, 48, 64, 144, 256, 272, 400):
        R = 5
        x = (rng.standard_normal((R, D)) * 2 + 0.3).astype(F)
        dy = rng.standard_normal((R, D)).astype(F)
        v, hi = rng.standard_normal(R).astype(F), np.abs(rng.standard_normal(R)).astype(F)
        lo = (np.abs(rng.standard_normal(R)) + 0.5).astype(F)
        got = alloc_outputs("row_backward_sums_gate", F, R=R)
        k.row_backward_sums_gate(*got, dy, x, v, lo, hi, gate)
        if gate == 1:
            assert 0 < np.count_nonzero(v[:, None] * x + hi[:, None] > lo[:, None]) < x.size
        for r in range(R):
            want = emulated_row(k, dy[r], x[r], v[r], lo[r], hi[r], gate)
            for j, what in enumerate(names):
                assert got[j][r].tobytes() == np.float64(want[j]).tobytes(), (gate, D, r, what, got[j][r], want[j])
