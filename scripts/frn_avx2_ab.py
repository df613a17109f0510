"""FRN + TLU's and the row kernels' raw Cython calls, this build beside another build's (docs/perf/norm-family.md,
"FRN's and the row kernels' AVX2 paths, session 36"): ``row_norm_apply_max``, ``row_norm_backward_max``,
``row_stats`` (center and not) and ``zca_rows`` (g = 16), at the family benchmark's shapes 16x32x8x8 and
32x64x16x16, float32 and float64. Outputs are checked byte for byte first; then every kernel of both builds and a
Numba triad (a = b + s*c over three arrays of 262144 float32) are timed interleaved round by round (CPU time,
medians), each kernel as ns/element, GB/s (bytes it must move: apply x + y, backward dy + x + dx, stats x,
zca_rows dy + x + B) and % of the same run's triad.

    PYTHONPATH=$PWD python scripts/frn_avx2_ab.py DIR [--rounds 21] [--threads 1] [--only KERNEL ...]  # DIR: the other build's _ext
    PYTHONPATH=$PWD python scripts/frn_avx2_ab.py DIR --bits

``--bits``: ``row_stats`` (center and not), ``row_norm_backward_max`` and ``row_norm_apply_max`` (tau as drawn, at
ties, +0, -0 and NaN) of both builds on tests/test_avx2_rows.py's rows (D 1..40, 64, 67, 129, 256; plain,
large-mean, tiny-variance and special data; the backward's ties and subnormal dy, its float64 rows with full
mantissas: rows_as below), float32 and float64, 1 and 2 threads: the outputs that differ byte for byte, and those
that differ only in a NaN's sign.
"""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from norm_family_steps import _interleaved, _load_ext  # noqa: E402
from norm_phases_cpu import _triad  # noqa: E402

SHAPES = [(16, 32, 8, 8), (32, 64, 16, 16)]
G = 16  # benchmarks/bench_norm_family.py's DBN_GROUP


def cases(mod, shape, dt, nt):
    """{kernel: (call, outputs, bytes moved)} of module mod on the same inputs (the rng seeded per shape)."""
    N, C = shape[:2]
    S, R = shape[2] * shape[3], N * C
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((N, C, S)) * 2 + 0.5).astype(dt)
    dy = rng.standard_normal((N, C, S)).astype(dt)
    w, of, tau = (rng.standard_normal(C).astype(dt) for _ in range(3))
    sh = rng.standard_normal(C).astype(dt)
    y, rstd, sc = np.empty_like(x), np.empty((N, C)), np.empty((N, C), dt)
    mod.row_norm_apply_max(y, rstd, sc, x, w, of, tau, 1e-6, nt)
    dx, sg, sgx, st = np.empty_like(x), np.empty((N, C)), np.empty((N, C)), np.empty((N, C))
    mean, m2, mean0, m20 = (np.empty(R) for _ in range(4))
    B = np.empty((N, (C + G - 1) // G, 2 * G + 1, S), dt)
    x2, isz = x.reshape(R, S), x.itemsize
    whiten = mod.whiten
    return {
        "row_norm_apply_max": (lambda: mod.row_norm_apply_max(y, rstd, sc, x, w, of, tau, 1e-6, nt),
                               (y, rstd, sc), 2 * x.size * isz),
        "row_norm_backward_max": (lambda: mod.row_norm_backward_max(dx, sg, sgx, st, dy, x, rstd, w, sc, of, tau, nt),
                                  (dx, sg, sgx, st), 3 * x.size * isz),
        "row_stats center": (lambda: mod.row_stats(mean, m2, x2, True, nt), (mean, m2), x.size * isz),
        "row_stats": (lambda: mod.row_stats(mean0, m20, x2, False, nt), (mean0, m20), x.size * isz),
        "zca_rows": (lambda: whiten.zca_rows(B, dy, x, sh, G, nt), (B,), 2 * x.size * isz + B.nbytes),
    }, x.size


class _Build:
    """A build's phases and whiten modules as one namespace (phases' kernels, .whiten)."""
    def __init__(self, phases, whiten):
        self.__dict__.update({k: getattr(phases, k) for k in dir(phases) if not k.startswith("__")})
        self.whiten = whiten


def rows_as(rng, N, C, D, case, dt):
    """tests/test_frn_avx512.py's rows in dtype dt; float64: every value given a full mantissa (times 1 + 2^-30 u,
    so that products of two are not exact: float32's values cast would hide a fused multiply-add or another
    rounding; signs, zeros, infs and NaNs kept), tau of the "ties" case made again in float64 (z at the same column,
    so a float64 tie) and the "subnormal dy" case's dy float64 subnormals"""
    from test_frn_avx512 import _rows
    x, dy, w, b, tau, rstd, scale = _rows(rng, N, C, D, case)
    if dt == np.float32:
        return x, dy, w, b, tau, rstd, scale
    x, dy, w, b, tau, scale = (a.astype(dt) * (1 + 2.0**-30 * rng.random(a.shape)) for a in (x, dy, w, b, tau, scale))
    if case == "ties":
        for c in range(C):
            i = (7 * c + D // 2 + 9) % D
            tau[c] = x[0, c, i] * scale[0, c] + b[c]
        assert (x[0] * scale[0][:, None] + b[:, None] == tau[:, None]).any(axis=1).all(), "no tie in a row"
    if case == "subnormal dy":
        dy *= 1e-270  # NOTE: 1e-39 * 1e-270: float64 subnormals, dy/2 rounding on a tie
    return x, dy, w, b, tau, rstd, scale


def bits(old, new):
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
    from test_avx2_rows import SIZES, _data
    counts = {"outputs": 0, "differ": 0, "NaN sign only": 0}

    def compare(u, g, where):
        counts["outputs"] += 1
        if u.tobytes() != g.tobytes():
            nan_only = np.array_equal(np.isnan(u), np.isnan(g)) and \
                np.where(np.isnan(u), 0, u).tobytes() == np.where(np.isnan(g), 0, g).tobytes()
            counts["NaN sign only" if nan_only else "differ"] += 1
            print("NaN sign only:" if nan_only else "differs:", where)

    rng = np.random.default_rng(36)
    with np.errstate(all="ignore"):
        for dt in (np.float32, np.float64):
            for case in ("plain", "large mean", "tiny variance", "special"):
                for D in SIZES:
                    for R in (1, 2, 5, 8):
                        x = _data(rng, (R, D), dt, case)
                        for nt in (1, 2):
                            for center in (True, False):
                                out = {}
                                for k, mod in (("old", old), ("new", new)):
                                    out[k] = (np.full(R, 7.0), np.full(R, 7.0))
                                    mod.row_stats(*out[k], x, center, nt)
                                for u, g in zip(out["old"], out["new"]):
                                    compare(u, g, ("row_stats", np.dtype(dt).name, case, D, R, nt, center))
            for case in ("plain", "special", "ties", "subnormal dy"):
                for D in SIZES:
                    x, dy, w, b, tau, rstd, scale = rows_as(rng, 2, 3, D, case, dt)
                    for nt in (1, 2):
                        out = {}
                        for k, mod in (("old", old), ("new", new)):
                            out[k] = (np.full_like(x, np.nan), *(np.full((2, 3), np.nan) for _ in range(3)))
                            mod.row_norm_backward_max(*out[k], dy, x, rstd, w, scale, b, tau, nt)
                        for u, g in zip(out["old"], out["new"]):
                            compare(u, g, ("row_norm_backward_max", np.dtype(dt).name, case, D, nt))
                        for j, t in enumerate((tau, 0 * tau, -0 * tau, np.full_like(tau, np.nan))):
                            for k, mod in (("old", old), ("new", new)):
                                out[k] = (np.full_like(x, 7), np.full((2, 3), 7.0), np.full((2, 3), 7, dt))
                                mod.row_norm_apply_max(*out[k], x, w, b, t, 1e-6, nt)
                            for u, g in zip(out["old"], out["new"]):
                                compare(u, g, ("row_norm_apply_max", np.dtype(dt).name, case, D, nt, j))
    print(counts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old_ext")
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--bits", action="store_true")
    ap.add_argument("--only", nargs="*", help="time only these kernels (names as printed)")
    args = ap.parse_args()
    from minigrad._ext import phases, whiten
    new = _Build(phases, whiten)
    old = _Build(_load_ext(args.old_ext), _load_ext(args.old_ext, "whiten"))
    if args.bits:
        return bits(old, new)
    triad, tbytes = _triad(262144, np.float32)
    print("load average", " ".join(f"{v:.2f}" for v in os.getloadavg()), f"; {args.threads} thread(s), CPU time")
    for shape in SHAPES:
        for dt in (np.float32, np.float64):
            co, n = cases(old, shape, dt, args.threads)
            cn, _ = cases(new, shape, dt, args.threads)
            fns = {"triad": triad}
            for k in [k for k in co if args.only and k not in args.only]:
                del co[k]
            for k in co:
                co[k][0](); cn[k][0]()
                same = all(a.tobytes() == b.tobytes() for a, b in zip(co[k][1], cn[k][1]))
                assert same, f"{k} {shape} {np.dtype(dt).name}: not the same bits"
                fns[k + " old"], fns[k + " new"] = co[k][0], cn[k][0]
            res = _interleaved(fns, args.rounds)
            tgb = tbytes / res["triad"][0] / 1e9
            print(f"{'x'.join(map(str, shape))} {np.dtype(dt).name}: triad {tgb:.1f} GB/s; the same bits")
            for k in co:
                cells = []
                for v in ("old", "new"):
                    t = res[f"{k} {v}"][0]
                    gb = co[k][2] / t / 1e9
                    cells.append(f"{v} {t * 1e6:8.1f} us {t / n * 1e9:5.2f} ns/el {gb:5.1f} GB/s {gb / tgb:4.0%}")
                print(f"  {k:22s} " + " | ".join(cells) + f" | new/old {res[k + ' new'][0] / res[k + ' old'][0]:.2f}")
    print("load average", " ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
