"""EvoNorm's gate kernels (``row_apply_gate``, ``row_backward_sums_gate``, ``row_backward_apply_gate``, both gates,
and ``evonorm_s0_backward``) of this build beside another build's ``phases`` extension (docs/perf/norm-family.md,
"2026-12-06 night: EvoNorm"), in one process:

``bits DIR``: for two builds meant to give the same bits (float32's gate sums and gate 0's sigmoid changed in
session 30, float64's gate 0 sigmoid in session 31, float32's gate sums again in session 33: against an older build
use ``accuracy``; ``--dtype`` limits it to one dtype), every output of both builds compared byte for byte on many rows: both dtypes, row lengths around the
block sizes (1 to 33, 64, 67, 256, 1000), NaN and inf in x and dy, a large mean, a tiny variance, |v*x| past the
exp's clamps, ties of the max (gate 1), subnormal dy, per-row v, lo, hi of both signs.
``accuracy DIR``: both builds' row sums (both gates) and ``evonorm_s0_backward`` against the float64 NumPy
reference on the same rows (float32 and float64, the cases of ``bits``, rows of 64, 256 and 1000): per output the
largest error of a row's sum relative to the sum of its terms' magnitudes (the bound of a sum of rounded terms), in
units of u = 2^-24 (float32) or 2^-53 (float64), over all cases, the moderate ones, and the large mean and the tiny
variance on their own; dx's largest error relative to the largest |dx|; and the entries whose
NaN or inf differs from the reference's; y and dx of the apply and backward apply relative to the largest |y|, |dx|.
Also checks that what must not change did not: gate 1's y and dx (both dtypes) and float64's gate 1 sums, the
same bits in both builds.
``ulps DIR``: float32's gate 0, y = x*sigmoid(x) with v = 1 (so v*x is exact and the error is the kernel's own), of
both builds per element in float ulps of x/(1 + exp(-x)) in long double, on 2^24 random floats in [-87, 100] and
2^24 of random magnitude (log-uniform, 2^-30 to 100, both signs, x >= -87): the largest and the mean error, the
share correctly rounded and the share of floats the two builds give differently. Below -87.3 the float exp of -x
saturates (mg_expf.h) and y is 0 where the exact value is below about 1e-36: that range is left out.
``time DIR``: the raw kernels at the rows of benchmarks/bench_norm_family.py's shapes (gate 1 at B0's rows N*C x S,
gate 0 at S0's), 1 thread, float32 (``--dtype float64``: float64), interleaved round by round with a triad of as many
elements (CPU time; medians, the minimum in brackets), in ns an element, and each kernel's share of the triad's
bandwidth by the family table's byte model.

    PYTHONPATH=$PWD python scripts/evonorm_ab.py bits /tmp/old_ext [--dtype float32]
    PYTHONPATH=$PWD python scripts/evonorm_ab.py accuracy /tmp/old_ext
    PYTHONPATH=$PWD python scripts/evonorm_ab.py ulps /tmp/old_ext
    PYTHONPATH=$PWD python scripts/evonorm_ab.py time /tmp/old_ext [--rounds 15] [--dtype float64]
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


def bits(ext_dir, dtypes):
    from minigrad._ext import phases as new
    old = _load_ext(ext_dir)
    rng, n, nan_sign = np.random.default_rng(3), 0, 0
    names = [f"{o} gate {g}" for g in (0, 1) for o in ("y", "dx", "sdy", "sdyf", "sdv", "shi", "slo")] + [
        "S0 dx", "S0 sdy", "S0 sdyf", "S0 sdv"]
    by_output = {}
    lengths = list(range(1, 34)) + [48, 64, 67, 256, 1000]
    for dt, D, case in itertools.product(dtypes, lengths, range(7)):
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
        for name, u, w_ in zip(names, *outs):
            if u.tobytes() != w_.tobytes():
                # NOTE: the one difference allowed: the sign of a NaN (x86 returns the first operand's NaN when both
                # are, and which operand is first is the compiler's choice: it differs between clones already)
                assert np.array_equal(np.isnan(u), np.isnan(w_)), (dt.__name__, D, case)
                assert _canon(u).tobytes() == _canon(w_).tobytes(), (dt.__name__, D, case)
                nan_sign += int((np.signbit(u) != np.signbit(w_)).sum())
                key = f"{name} {dt.__name__}"
                by_output[key] = by_output.get(key, 0) + int((np.signbit(u) != np.signbit(w_)).sum())
        n += 1
    print(f"bits: {n} cases (37 rows each; both gates; apply, sums, backward apply, S0's backward), every output "
          f"the same bits but for the sign of {nan_sign} NaNs (NaN in the same places)"
          + (f"; by output: {by_output}" if by_output else ""))


def _s0_inputs(rng, x, dy, v, sc):
    """EvoNorm-S0's backward inputs on R rows of D: C = 4 channels, G = 2 groups, the groups' own statistics."""
    N, C, G = x.shape[0] // 4, 4, 2
    x3, dy3 = x[:N * C].reshape(N, C, -1), dy[:N * C].reshape(N, C, -1)
    xg = x3.reshape(N * G, -1).astype(np.float64)
    gm = np.nan_to_num(xg.mean(1)).reshape(N, G)
    gr = (1 / np.sqrt(np.nan_to_num(xg.var(1)) + 1e-5)).reshape(N, G)
    return x3, dy3, v[:C].copy(), sc[:C].copy(), gm, gr, G


MODERATE = (0, 3, 5, 6)  # the cases of _rows without NaN/inf, saturation or a large mean
GROUPS = {2: "large mean", 3: "tiny variance"}  # also reported on their own


def _groups(case):
    return ["all"] + (["moderate"] if case in MODERATE else []) + ([GROUPS[case]] if case in GROUPS else [])


def accuracy(ext_dir):
    from minigrad._ext import phases as new
    from minigrad.kernels.reference import phases as ref
    old = _load_ext(ext_dir)
    rng = np.random.default_rng(11)
    names = ["sdy", "sdyf", "sdv", "shi", "slo"]
    worst = {}  # (dtype, output) -> [old, new] largest error; (dtype, output, "naninf") -> mismatches
    for dt, D, case in itertools.product((np.float32, np.float64), (64, 256, 1000), range(7)):
        R = 512
        x, dy, v, lo, hi = _rows(rng, dt, R, D, case)
        sc, of = rng.standard_normal(R).astype(dt), rng.standard_normal(R).astype(dt)
        a, K, b, k = (rng.standard_normal(R).astype(dt) for _ in range(4))
        unit = 2.0 ** -24 if dt == np.float32 else 2.0 ** -53
        with np.errstate(all="ignore"):
            for gate in (0, 1):
                want = [np.empty(R) for _ in range(5)]
                ref.row_backward_sums_gate(*want, dy, x, v, lo, hi, gate)
                terms = ref._gate(x, v, lo, hi, gate)
                mags = [np.abs(dy.astype(np.float64)).sum(1)] + [np.abs(dy * t).sum(1) for t in
                                                                 (terms[0], *terms[2:])]
                same = []
                for i, mod in enumerate((old, new)):
                    got = [np.empty(R) for _ in range(5)]
                    mod.row_backward_sums_gate(*got, dy, x, v, lo, hi, gate, 1)
                    y, dx = np.empty_like(x), np.empty_like(x)
                    mod.row_apply_gate(y, x, v, lo, hi, sc, of, gate, 1)
                    mod.row_backward_apply_gate(dx, dy, x, a, K, b, k, v, lo, hi, gate, 1)
                    # NOTE: gate 0's sigmoid changed: float32's in session 30, float64's in 31 (mgp_exp_fma)
                    same.append([_canon(t).tobytes() for t in ([y, dx] if gate == 1 else [])
                                 + (got if dt == np.float64 and gate == 1 else [])])
                    wy, wdx = np.empty_like(x), np.empty_like(x)
                    ref.row_apply_gate(wy, x, v, lo, hi, sc, of, gate)
                    ref.row_backward_apply_gate(wdx, dy, x, a, K, b, k, v, lo, hi, gate)
                    for name, g_, w_ in (("y", y, wy), ("dx", dx, wdx)):
                        g_, w_ = g_.astype(np.float64), w_.astype(np.float64)
                        ok = np.isfinite(g_) & np.isfinite(w_)
                        scale = float(np.max(np.abs(w_[ok]), initial=0.0)) or 1.0
                        err = float(np.max(np.abs(g_ - w_)[ok], initial=0.0)) / scale / unit
                        bad = int(np.sum((np.isnan(g_) != np.isnan(w_)) | (np.isinf(g_) != np.isinf(w_))))
                        for key in [(dt.__name__, f"gate {gate} {name} (of max|{name}|)", g) for g in _groups(case)]:
                            worst.setdefault(key, [0.0, 0.0, 0, 0])
                            worst[key][i] = max(worst[key][i], err)
                            worst[key][2 + i] += bad
                    for name, g_, w_, m_ in zip(names, got, want, mags):
                        if gate == 0 and name in ("shi", "slo"):
                            continue
                        ok = np.isfinite(g_) & np.isfinite(w_) & (m_ > 0) & np.isfinite(m_)
                        err = float(np.max(np.abs(g_ - w_)[ok] / m_[ok] / unit, initial=0.0))
                        bad = int(np.sum((np.isnan(g_) != np.isnan(w_)) | (np.isinf(g_) != np.isinf(w_))))
                        for key in [(dt.__name__, f"gate {gate} {name}", g) for g in _groups(case)]:
                            worst.setdefault(key, [0.0, 0.0, 0, 0])
                            worst[key][i] = max(worst[key][i], err)
                            worst[key][2 + i] += bad
                assert same[0] == same[1], (dt.__name__, D, case, gate, "changed bits where none may change")
            x3, dy3, v3, w3, gm, gr, G = _s0_inputs(rng, x, dy, v, sc)
            want = [np.empty_like(x3)] + [np.empty(x3.shape[:2]) for _ in range(3)]
            ref.evonorm_s0_backward(*want, dy3, x3, v3, w3, gm, gr, G)
            for i, mod in enumerate((old, new)):
                got = [np.empty_like(x3)] + [np.empty(x3.shape[:2]) for _ in range(3)]
                mod.evonorm_s0_backward(*got, dy3, x3, v3, w3, gm, gr, G, 1)
                g_, w_ = got[0].astype(np.float64), want[0].astype(np.float64)
                ok = np.isfinite(g_) & np.isfinite(w_)
                scale = float(np.max(np.abs(w_[ok]), initial=0.0)) or 1.0
                err = float(np.max(np.abs(g_ - w_)[ok], initial=0.0)) / scale / unit
                bad = int(np.sum((np.isnan(g_) != np.isnan(w_)) | (np.isinf(g_) != np.isinf(w_))))
                for key in [(dt.__name__, "S0 backward dx (of max|dx|)", g) for g in _groups(case)]:
                    worst.setdefault(key, [0.0, 0.0, 0, 0])
                    worst[key][i] = max(worst[key][i], err)
                    worst[key][2 + i] += bad
    print("largest error against the float64 reference, in u (2^-24 float32, 2^-53 float64), rows 512x64, 512x256 and "
          "512x1000; cases: all 7 of `bits`, or the moderate ones (plain, tiny variance, ties, subnormal dy: no "
          "NaN/inf, no saturation, no large mean, where the sigmoid of the rounded v*x sets the error), or the large "
          "mean (x + 1e4) and the tiny variance (1 + 1e-6 noise) on their own; NaN/inf: "
          "entries whose NaN or inf differs from the reference's")
    print("| dtype | output | cases | before | after | NaN/inf before | NaN/inf after |")
    print("|---|---|---|---|---|---|---|")
    for (dt, name, group), (e0, e1, n0, n1) in sorted(worst.items(), key=lambda kv: (kv[0][0], kv[0][2])):
        print(f"| {dt} | {name} | {group} | {e0:.3g} | {e1:.3g} | {n0} | {n1} |")


def ulps(ext_dir):
    from minigrad._ext import phases as new
    old = _load_ext(ext_dir)
    rng = np.random.default_rng(23)
    n = 1 << 24
    mag = (np.exp2(rng.uniform(-30, np.log2(100), n)) * rng.choice([-1, 1], n)).astype(np.float32)
    sets = {"uniform in [-87, 100]": rng.uniform(-87, 100, n).astype(np.float32),
            "log-uniform 2^-30 to 100": mag[mag >= -87]}
    print("float32 gate 0, y = x*sigmoid(x) (v = 1, scale 1, offset 0), error in ulps of the exact value")
    print("| inputs | build | largest | mean | correctly rounded | differs from the other build |")
    print("|---|---|---|---|---|---|")
    for name, x in sets.items():
        x = x.reshape(1, -1)
        xl = x.astype(np.longdouble)
        want = xl / (1 + np.exp(-xl))
        ulp = np.spacing(np.abs(want.astype(np.float32))).astype(np.longdouble)
        one, zero = np.ones(1, np.float32), np.zeros(1, np.float32)
        ys = []
        for mod in (old, new):
            y = np.empty_like(x)
            mod.row_apply_gate(y, x, one, one, one, one, zero, 0, 1)
            ys.append(y)
        differ = float(np.mean(ys[0] != ys[1]))
        for label, y in zip(("before", "after"), ys):
            err = (np.abs(y.astype(np.longdouble) - want) / ulp).astype(np.float64)
            exact = np.mean(y == want.astype(np.float32))
            print(f"| {name} | {label} | {err.max():.3f} | {err.mean():.4f} | {exact:.4f} | {differ:.4f} |")


def timing(ext_dir, rounds, dt):
    from minigrad._ext import phases as new
    from norm_phases_cpu import _triad
    old = _load_ext(ext_dir)
    mods = {"main": old, "this": new}
    rng = np.random.default_rng(0)
    for (N, C, H, W) in [(16, 32, 8, 8), (32, 64, 16, 16)]:
        R, D = N * C, H * W
        x = (rng.standard_normal((R, D)) * 2 + 0.5).astype(dt)
        dy = rng.standard_normal((R, D)).astype(dt)
        v = (1 + 0.1 * rng.standard_normal(R)).astype(dt)
        lo, hi = np.full(R, 0.3, dt), np.full(R, 0.2, dt)
        sc, of = np.ones(R, dt), np.zeros(R, dt)
        a, K, b, k = (rng.standard_normal(R).astype(dt) for _ in range(4))
        x3, dy3 = x.reshape(N, C, D), dy.reshape(N, C, D)
        gm, gr, w = np.zeros(N * 32), np.ones(N * 32), np.ones(C, dt)
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
        fns["triad"], tri_bytes = _triad(x.size, dt)
        res = _interleaved(fns, rounds)
        tri = tri_bytes / res["triad"][0]
        print(f"rows {R}x{D} (x {N}x{C}x{H}x{W}, {np.dtype(dt).name}, 1 thread): ns an element, median (min); "
              f"this/main; of the triad of the same rounds ({tri / 1e9:.1f} GB/s, medians) by the family table's "
              "model (x and y, dy and x, dy, x and dx)")
        for key in [k_[:-len(" (main)")] for k_ in fns if k_.endswith("(main)")]:
            m, t = res[f"{key} (main)"], res[f"{key} (this)"]
            nbytes = x.size * x.itemsize * (2 if key.startswith(("apply", "sums")) else 3)
            print(f"  {key:28s} main {m[0] / x.size * 1e9:6.3f} ({m[1] / x.size * 1e9:.3f})  "
                  f"this {t[0] / x.size * 1e9:6.3f} ({t[1] / x.size * 1e9:.3f})  {m[0] / t[0]:5.2f}x  "
                  f"of triad {nbytes / m[0] / tri:4.0%} -> {nbytes / t[0] / tri:4.0%}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["bits", "accuracy", "ulps", "time"])
    ap.add_argument("ext_dir")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--dtype", choices=["float32", "float64"], help="bits: only this dtype (default both); time: "
                    "this dtype (default float32)")
    args = ap.parse_args()
    if args.cmd == "bits":
        bits(args.ext_dir, (np.float32, np.float64) if args.dtype is None else (np.dtype(args.dtype).type,))
    elif args.cmd == "accuracy":
        accuracy(args.ext_dir)
    elif args.cmd == "ulps":
        ulps(args.ext_dir)
    else:
        timing(args.ext_dir, args.rounds, np.dtype(args.dtype or "float32").type)
