"""The EvoNorm and FRN phase kernels one by one against the STREAM triad of the same process (issue #17; docs/perf/
norm-family.md, "Session 38: the gate phases against the triad on AVX2"), 1 thread, raw calls on this build's
``phases`` (and, with ``--before DIR``, another build's beside it, interleaved round by round).

Per kernel: CPU-time median per call, its effective bandwidth (the bytes it must move / time: x read once per pass
over it, y or dx written once; row_stats reads x, the applies x and y, the backwards dy, x and dx) and that as a
share of a Numba triad a = b + s*c over three arrays as long as x, timed in the same rounds (3 arrays' bytes).
Shapes: 32x64x16x16 (x 2 MiB float32: L3) and 64x128x32x32 (x 32 MiB float32, 64 MiB float64: DRAM with dy and dx).
The rows are the modules': S0's group statistics and gate 0 on rows (N*C, S); B0's gate 1; FRN's statistics
without centering; evonorm_b0_forward / _backward and evonorm_s0_backward on (N, C, S).

    PYTHONPATH=$PWD python scripts/gate_triad.py [--dtype float32 float64] [--rounds 11] [--shape 32,64,16,16]
        [--before /work/main/minigrad/_ext] [--only NAME ...]
"""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from norm_family_steps import _interleaved, _load_ext  # noqa: E402
from norm_phases_cpu import _triad  # noqa: E402


def kernels(mod, N, C, S, dt, G=32):
    """{name: (call, passes over x's size)} on data of one shape, every output preallocated."""
    rng = np.random.default_rng(0)
    R = N * C
    x = (rng.standard_normal((R, S)) * 2 + 0.5).astype(dt)
    dy = rng.standard_normal((R, S)).astype(dt)
    v = (1 + 0.1 * rng.standard_normal(R)).astype(dt)
    lo, hi = np.full(R, 0.3, dt), np.full(R, 0.2, dt)
    sc, of = np.ones(R, dt), np.zeros(R, dt)
    a, K, b, k = (rng.standard_normal(R).astype(dt) for _ in range(4))
    x3, dy3 = x.reshape(N, C, S), dy.reshape(N, C, S)
    y, dx, s5 = np.empty_like(x), np.empty_like(x), [np.empty(R) for _ in range(5)]
    y3, dx3 = y.reshape(N, C, S), dx.reshape(N, C, S)
    gm, g2 = np.empty(N * G), np.empty(N * G)
    mean, m2 = np.empty(R), np.empty(R)
    grm, grr = np.zeros(N * G), np.ones(N * G)
    vc, w, bc = v[:C].copy(), np.ones(C, dt), np.zeros(C, dt)
    s3 = [np.empty((N, C)) for _ in range(3)]
    lo2, hi2 = np.empty((N, C), dt), np.empty((N, C), dt)
    im, ir, bm, br = np.empty((N, C)), np.empty((N, C)), np.empty(C), np.empty(C)
    mod.evonorm_b0_forward(y3, lo2, hi2, im, ir, bm, br, x3, vc, w, bc, 1e-5, 1)
    dvc, dwc, dbc = np.empty(C, dt), np.empty(C, dt), np.empty(C, dt)
    rstd, scale, tau = np.empty(R), np.empty(R, dt), np.full(C, -1, dt)
    st = [np.empty((N, C)) for _ in range(3)]
    mod.row_norm_apply_max(y3, rstd, scale, x3, w, bc, tau, 1e-6, 1)
    return {
        "row_stats center (S0 groups)": (lambda: mod.row_stats(gm, g2, x.reshape(N * G, -1), True, 1), 1),
        "row_stats center (B0 eval)": (lambda: mod.row_stats(mean, m2, x, True, 1), 1),
        "row_stats (FRN)": (lambda: mod.row_stats(mean, m2, x, False, 1), 1),
        "row_apply_gate 0 (S0 fwd)": (lambda: mod.row_apply_gate(y, x, v, lo, hi, sc, of, 0, 1), 2),
        "row_apply_gate 1 (B0 eval fwd)": (lambda: mod.row_apply_gate(y, x, v, lo, hi, sc, of, 1, 1), 2),
        "evonorm_b0_forward": (lambda: mod.evonorm_b0_forward(y3, lo2, hi2, im, ir, bm, br, x3, vc, w, bc, 1e-5,
                                                              1), 2),
        "evonorm_s0_backward": (lambda: mod.evonorm_s0_backward(dx3, *s3, dy3, x3, vc, w, grm, grr, G, 1), 3),
        "evonorm_b0_backward": (lambda: mod.evonorm_b0_backward(dx3, dvc, dwc, dbc, dy3, x3, vc, w, lo2, hi2, im,
                                                                ir, bm, br, 1), 3),
        "row_backward_sums_gate 0": (lambda: mod.row_backward_sums_gate(*s5, dy, x, v, lo, hi, 0, 1), 2),
        "row_backward_apply_gate 0": (lambda: mod.row_backward_apply_gate(dx, dy, x, a, K, b, k, v, lo, hi, 0, 1),
                                      3),
        "row_norm_apply_max (FRN+TLU fwd)": (lambda: mod.row_norm_apply_max(y3, rstd, scale, x3, w, bc, tau, 1e-6,
                                                                            1), 2),
        "row_norm_backward_max (FRN+TLU bwd)": (lambda: mod.row_norm_backward_max(dx3, *st, dy3, x3, rstd, w, scale,
                                                                                  bc, tau, 1), 3),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dtype", nargs="+", default=["float32", "float64"])
    ap.add_argument("--shape", nargs="+", default=["32,64,16,16", "64,128,32,32"])
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--before", help="another build's minigrad/_ext, timed beside this one")
    ap.add_argument("--only", nargs="+", help="kernels whose name starts with one of these")
    args = ap.parse_args()
    from minigrad._ext import phases as new
    mods = {"this": new}
    if args.before:
        mods = {"before": _load_ext(args.before), "this": new}
    print(f"load average {os.getloadavg()}; {new.__file__}; 1 thread, {args.rounds} rounds, CPU-time medians")
    for shape in args.shape:
        N, C, H, W = map(int, shape.split(","))
        for dname in args.dtype:
            dt = np.dtype(dname).type
            fns, passes = {}, {}
            for label, mod in mods.items():
                for name, (fn, p) in kernels(mod, N, C, H * W, dt).items():
                    if args.only and not name.startswith(tuple(args.only)):
                        continue
                    fns[f"{name} [{label}]"], passes[name] = fn, p
            n = N * C * H * W
            fns["triad"], tri_bytes = _triad(n, dt)
            res = _interleaved(fns, args.rounds)
            tri = tri_bytes / res["triad"][0] / 1e9
            print(f"\n{N}x{C}x{H}x{W} {dname}: triad {tri:.1f} GB/s; load {os.getloadavg()[0]:.2f}")
            print("| kernel | build | ns/element | GB/s | of triad |" + (" this/before |" if args.before else ""))
            print("|---|---|---|---|---|" + ("---|" if args.before else ""))
            for name, p in passes.items():
                for label in mods:
                    t = res[f"{name} [{label}]"][0]
                    gbs = p * n * np.dtype(dt).itemsize / t / 1e9
                    ratio = (f" {t / res[f'{name} [before]'][0]:.2f} |" if args.before and label == "this" else
                             (" |" if args.before else ""))
                    print(f"| {name} | {label} | {t / n * 1e9:.3f} | {gbs:.1f} | {gbs / tri:.0%} |{ratio}")


if __name__ == "__main__":
    main()
