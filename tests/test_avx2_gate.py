"""EvoNorm's gate kernels' AVX2 + FMA versions (phases.h's *_v3, session 36) against the clones they replace on
CPUs without AVX-512 (*_any, picked with phases._gate_avx2(0)): the same bits for every output of the apply, the row
sums (with and without the kept sigmoids or quotients: EvoNorm-S0's and -B0's backward), the backward apply,
evonorm_s0_backward and EvoNorm-B0's forward and backward, both gates, float32 and float64, 1 and 2 threads, on row
lengths that take every tail (D % 8 = 0..7 and D < 8, blocks of 16 and past the float sums' blocks of 128) and on
plain, large-mean, tiny-variance, tied (gate 1's max) and edge-value data (+-0, +-inf, NaN, subnormals, the exps' overflow and underflow
range). NOTE: the one difference allowed is a NaN's sign in the float32 sums (x86 returns the first operand's NaN
when both are; which operand is first is the compiler's choice), NaN in the same places."""
import numpy as np
import pytest

from conftest import alloc_outputs

phases = pytest.importorskip("minigrad._ext.phases")

LENGTHS = list(range(1, 41)) + [48, 64, 67, 128, 131, 150, 176, 256, 300]
EDGE = {np.float32: [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40, -1e-40, 88.7, -88.7, 88.72, -88.72, 89.0, -89.0,
                     89.5, -89.5, 103.0, -103.0, 104.0, -104.0, 1e30, -1e30],
        np.float64: [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-310, -1e-310, 708.0, -708.0, 709.7, -709.7, 709.8,
                     -709.8, 745.2, -745.2, 750.0, -750.0, 760.0, -760.0, 1e300, -1e300]}


@pytest.fixture
def avx2():
    """Yields a function that runs f() with the AVX2 versions on (1) or off (0); the AVX-512 versions off."""
    if not phases._gate_avx2():
        pytest.skip("the CPU has no AVX2 + FMA (x86-64-v3), or this is not an x86-64 GCC build")
    was4, was3 = phases._gate_avx512(0), phases._gate_avx2()

    def run(on, f):
        phases._gate_avx2(on)
        return f()
    yield run
    phases._gate_avx2(was3)
    phases._gate_avx512(was4)


def rows(rng, dt, R, D, case):
    x = (rng.standard_normal((R, D)) * 2 + 0.3).astype(dt)
    dy = rng.standard_normal((R, D)).astype(dt)
    if case == "large mean":
        x = (x + dt(1e4)).astype(dt)
    elif case == "tiny variance":
        x = (1 + 1e-6 * rng.standard_normal((R, D))).astype(dt)
    elif case == "ties":  # gate 1's max tied: u = v*x + hi == lo exactly (v = 1, hi = 0 on every row)
        x = np.round(x).astype(dt)
    elif case == "edges":
        e = np.array(EDGE[dt], dt)
        x = rng.choice(e, (R, D)) * rng.choice(np.array([1, 1, 0.5, 2], dt), (R, D))
        x = x.astype(dt)
        m = rng.random((R, D)) < 0.2
        dy[m] = rng.choice(e, int(m.sum()))
    v = rng.standard_normal(R).astype(dt)
    v[::3] = 1  # v*x exactly at the edges
    lo = (np.abs(rng.standard_normal(R)) + 0.1).astype(dt)
    hi = rng.standard_normal(R).astype(dt)
    hi[::4] = 0
    lo[::4] = 1  # ties of the max where x is 1
    if case == "ties":
        v[:], hi[:] = 1, 0
        lo = (np.round(np.abs(rng.standard_normal(R)) * 2) + 1).astype(dt)
    return x, dy, v, lo, hi


def same(u, w, what):
    """u and w the same bits but for a NaN's sign, NaN in the same places."""
    if u.tobytes() == w.tobytes():
        return
    assert np.array_equal(np.isnan(u), np.isnan(w)), what
    uc, wc = u.copy(), w.copy()
    uc[np.isnan(uc)] = np.nan
    wc[np.isnan(wc)] = np.nan
    assert uc.tobytes() == wc.tobytes(), what


def outputs(dt, x, dy, v, lo, hi, n_threads):
    R, D = x.shape
    rng = np.random.default_rng(D)
    sc, of, a, K, b, k = (rng.standard_normal(R).astype(dt) for _ in range(6))
    out = {}
    with np.errstate(all="ignore"):
        for gate in (0, 1):
            y = np.empty_like(x)
            phases.row_apply_gate(y, x, v, lo, hi, sc, of, gate, n_threads)
            s = [np.empty(R) for _ in range(5)]
            phases.row_backward_sums_gate(*s, dy, x, v, lo, hi, gate, n_threads)
            dx = np.empty_like(x)
            phases.row_backward_apply_gate(dx, dy, x, a, K, b, k, v, lo, hi, gate, n_threads)
            out.update({f"gate {gate} y": y, f"gate {gate} dx": dx})
            out.update({f"gate {gate} sums {j}": t for j, t in enumerate(s)})
        if R % 4 == 0:  # S0's backward (the kept sigmoids): C = 4 channels, G = 2 groups, S = D
            N, C, G = R // 4, 4, 2
            x3, dy3 = x.reshape(N, C, D), dy.reshape(N, C, D)
            xg = x3.reshape(N * G, -1).astype(np.float64)
            gm = np.nan_to_num(xg.mean(1))
            gr = 1 / np.sqrt(np.nan_to_num(xg.var(1)) + 1e-5)
            dx3, s3 = np.empty_like(x3), [np.empty((N, C)) for _ in range(3)]
            phases.evonorm_s0_backward(dx3, *s3, dy3, x3, v[:C].copy(), sc[:C].copy(), gm, gr, G, n_threads)
            out.update({"s0 dx": dx3, **{f"s0 sums {j}": t for j, t in enumerate(s3)}})
            # B0's forward and backward (gate 1, the kept quotients in dx)
            w, bb = sc[:C].copy(), of[:C].copy()
            fw = alloc_outputs("evonorm_b0_forward", dt, N=N, C=C, S=D)
            phases.evonorm_b0_forward(*fw, x3, v[:C].copy(), w, bb, 1e-5, n_threads)
            bw = alloc_outputs("evonorm_b0_backward", dt, N=N, C=C, S=D)
            phases.evonorm_b0_backward(*bw, dy3, x3, v[:C].copy(), w, *fw[1:], n_threads)
            out.update({f"b0 forward {j}": t for j, t in enumerate(fw)})
            out.update({f"b0 backward {j}": t for j, t in enumerate(bw)})
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["plain", "large mean", "tiny variance", "ties", "edges"])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_avx2_gate_same_bits_as_clones(avx2, dtype, case, n_threads):
    rng = np.random.default_rng([len(case), n_threads, np.dtype(dtype).itemsize])
    for D in LENGTHS:
        x, dy, v, lo, hi = rows(rng, dtype, 12, D, case)
        want = avx2(0, lambda: outputs(dtype, x, dy, v, lo, hi, n_threads))
        got = avx2(1, lambda: outputs(dtype, x, dy, v, lo, hi, n_threads))
        assert want.keys() == got.keys()
        for name in want:
            same(got[name], want[name], (np.dtype(dtype).name, case, D, name))


def test_avx2_gate_switch():
    """_gate_avx2 switches and reports: 1 only where the CPU has x86-64-v3."""
    was = phases._gate_avx2()
    try:
        assert phases._gate_avx2(0) == was
        assert phases._gate_avx2() is False
        phases._gate_avx2(1)
        assert phases._gate_avx2() == was
    finally:
        phases._gate_avx2(was)
