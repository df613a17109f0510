"""EvoNorm's gate kernels (``row_apply_gate``, ``row_backward_sums_gate``, ``row_backward_apply_gate``, both gates,
and ``evonorm_s0_backward``) of this build beside another build's ``phases`` extension (docs/perf/norm-family.md,
"2026-12-06 night: EvoNorm"), in one process:

``bits DIR``: every output of both builds compared byte for byte on many rows: both dtypes, row lengths around
the block sizes (1 to 33, 64, 67, 256, 1000), NaN and inf in x and dy, a large mean, a tiny variance, |v*x| past
the exp's clamps, ties of the max (gate 1), subnormal dy, per-row v, lo, hi of both signs.
``time DIR``: the raw kernels at the rows of benchmarks/bench_norm_family.py's shapes (gate 1 at B0's rows N*C x
S, gate 0 at S0's), 1 thread, float32, interleaved round by round (CPU time; medians, the minimum in brackets), in
ns an element.

    PYTHONPATH=$PWD python scripts/evonorm_ab.py bits /tmp/old_ext
    PYTHONPATH=$PWD python scripts/evonorm_ab.py time /tmp/old_ext [--rounds 15]
"""
import argparse
import itertools
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from norm_family_steps import _interleaved, _load_ext  # noqa: E402


def _rows(rng, dt, R, D, case):
    x = (rng.standard_normal((R, D)) * 2 + 0.3).astype(dt)
    dy = rng.standard_normal((R, D)).astype(dt)
    v = rng.standard_normal(R).astype(dt)
    lo = np.abs(rng.standard_normal(R)).astype(dt) + dt(0.1)
    hi = rng.standard_normal(R).astype(dt)
    if case == 1:  # NaN and inf in x and dy
        x[rng.random((R, D)) < 0.05] = np.nan
        x[rng.random((R, D)) < 0.05] = -np.inf
        x[rng.random((R, D)) < 0.05] = np.inf
        dy[rng.random((R, D)) < 0.05] = np.nan if R % 2 else np.inf
    elif case == 2:  # a large mean
        x = (x + dt(1e4)).astype(dt)
    elif case == 3:  # a tiny variance
        x = (1 + 1e-6 * rng.standard_normal((R, D))).astype(dt)
    elif case == 4:  # |v*x| past the exp's clamps (88.4, -87.3), both signs
        x = (x * 60).astype(dt)
        v = (v * 3).astype(dt)
    elif case == 5:  # ties of the max: u = v*x + hi == lo exactly
        x = np.round(x)
        v, hi = np.ones(R, dt), np.zeros(R, dt)
        lo = np.round(np.abs(rng.standard_normal(R)) * 2).astype(dt) + 1
    elif case == 6:  # subnormal dy
        dy *= dt(1e-40) if dt == np.float32 else 1e-310
    return x, dy, v, lo, hi


def _canon(a):
    a = a.copy()
    a[np.isnan(a)] = np.nan
    return a


def bits(ext_dir):
    from minigrad._ext import phases as new
    old = _load_ext(ext_dir)
    rng, n, nan_sign = np.random.default_rng(3), 0, 0
    lengths = list(range(1, 34)) + [48, 64, 67, 256, 1000]
    for dt, D, case in itertools.product((np.float32, np.float64), lengths, range(7)):
        R = 37
        x, dy, v, lo, hi = _rows(rng, dt, R, D, case)
        sc, of = rng.standard_normal(R).astype(dt), rng.standard_normal(R).astype(dt)
        a, K, b, k = (rng.standard_normal(R).astype(dt) for _ in range(4))
        outs = []
        with np.errstate(all="ignore"):
            for mod in (old, new):
                o = []
                for gate in (0, 1):
                    y = np.empty_like(x)
                    mod.row_apply_gate(y, x, v, lo, hi, sc, of, gate, 1)
                    s = [np.empty(R) for _ in range(5)]
                    mod.row_backward_sums_gate(*s, dy, x, v, lo, hi, gate, 1)
                    dx = np.empty_like(x)
                    mod.row_backward_apply_gate(dx, dy, x, a, K, b, k, v, lo, hi, gate, 1)
                    o += [y, dx] + s
                # S0's backward, group by group (the kept sigmoids): C = 4 channels, G = 2 groups, S = D
                N, C, G = R // 4 or 1, 4, 2
                x3, dy3 = x[:N * C].reshape(N, C, D), dy[:N * C].reshape(N, C, D)
                if x3.shape[0] * C == N * C and N * C <= R:
                    w = sc[:C].copy()
                    xg = x3.reshape(N * G, -1).astype(np.float64)
                    gm = np.nan_to_num(xg.mean(1))
                    gr = 1 / np.sqrt(np.nan_to_num(xg.var(1)) + 1e-5)
                    dx3, s3 = np.empty_like(x3), [np.empty((N, C)) for _ in range(3)]
                    mod.evonorm_s0_backward(dx3, *s3, dy3, x3, v[:C].copy(), w, gm, gr, G, 1)
                    o += [dx3] + s3
                outs.append(o)
        for u, w_ in zip(*outs):
            if u.tobytes() != w_.tobytes():
                # NOTE: the one difference allowed: the sign of a NaN (x86 returns the first operand's NaN when both
                # are, and which operand is first is the compiler's choice: it differs between clones already)
                assert np.array_equal(np.isnan(u), np.isnan(w_)), (dt.__name__, D, case)
                assert _canon(u).tobytes() == _canon(w_).tobytes(), (dt.__name__, D, case)
                nan_sign += int((np.signbit(u) != np.signbit(w_)).sum())
        n += 1
    print(f"bits: {n} cases (37 rows each; both gates; apply, sums, backward apply, S0's backward), every output "
          f"the same bits but for the sign of {nan_sign} NaNs (NaN in the same places)")


def timing(ext_dir, rounds):
    from minigrad._ext import phases as new
    old = _load_ext(ext_dir)
    mods = {"main": old, "this": new}
    rng = np.random.default_rng(0)
    for (N, C, H, W) in [(16, 32, 8, 8), (32, 64, 16, 16)]:
        R, D = N * C, H * W
        x = (rng.standard_normal((R, D)) * 2 + 0.5).astype(np.float32)
        dy = rng.standard_normal((R, D)).astype(np.float32)
        v = (1 + 0.1 * rng.standard_normal(R)).astype(np.float32)
        lo, hi = np.full(R, 0.3, np.float32), np.full(R, 0.2, np.float32)
        sc, of = np.ones(R, np.float32), np.zeros(R, np.float32)
        a, K, b, k = (rng.standard_normal(R).astype(np.float32) for _ in range(4))
        x3, dy3 = x.reshape(N, C, D), dy.reshape(N, C, D)
        gm, gr, w = np.zeros(N * 32), np.ones(N * 32), np.ones(C, np.float32)
        fns = {}
        for name, mod in mods.items():
            y, dx, s = np.empty_like(x), np.empty_like(x), [np.empty(R) for _ in range(5)]
            dx3, s3 = np.empty_like(x3), [np.empty((N, C)) for _ in range(3)]
            for gate in (1, 0):
                fns[f"apply gate {gate} ({name})"] = (
                    lambda mod=mod, y=y, gate=gate: mod.row_apply_gate(y, x, v, lo, hi, sc, of, gate, 1))
                fns[f"sums gate {gate} ({name})"] = (
                    lambda mod=mod, s=s, gate=gate: mod.row_backward_sums_gate(*s, dy, x, v, lo, hi, gate, 1))
                fns[f"backward apply gate {gate} ({name})"] = (
                    lambda mod=mod, dx=dx, gate=gate: mod.row_backward_apply_gate(dx, dy, x, a, K, b, k, v, lo, hi,
                                                                                  gate, 1))
            fns[f"evonorm_s0_backward ({name})"] = (
                lambda mod=mod, dx3=dx3, s3=s3: mod.evonorm_s0_backward(dx3, *s3, dy3, x3, v[:C].copy(), w, gm, gr,
                                                                        32, 1))
        res = _interleaved(fns, rounds)
        print(f"rows {R}x{D} (x {N}x{C}x{H}x{W}, float32, 1 thread): ns an element, median (min); this/main")
        for key in [k_[:-len(" (main)")] for k_ in fns if k_.endswith("(main)")]:
            m, t = res[f"{key} (main)"], res[f"{key} (this)"]
            print(f"  {key:28s} main {m[0] / x.size * 1e9:6.3f} ({m[1] / x.size * 1e9:.3f})  "
                  f"this {t[0] / x.size * 1e9:6.3f} ({t[1] / x.size * 1e9:.3f})  {m[0] / t[0]:5.2f}x")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["bits", "time"])
    ap.add_argument("ext_dir")
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    if args.cmd == "bits":
        bits(args.ext_dir)
    else:
        timing(args.ext_dir, args.rounds)
