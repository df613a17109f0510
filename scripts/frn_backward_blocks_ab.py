"""FRN + TLU's one-call backward (``row_norm_backward_max``, raw Cython kernel, 1 thread, float32) of this tree
beside another build's ``phases`` extension (docs/perf/norm-family.md, "FRN + TLU's backward sums in float
blocks": the variant build with float32 block sums, kept out of the library), interleaved round by round (CPU
time; medians, the minimum in brackets), with a single-pass triad (Numba, a = b + s*c over three float32 arrays
of the backward's |x|, 3 |x| moved) timed in the same rounds; GB/s under the benchmark's backward byte model
(5 |x|) and its fraction of that triad. Also the errors of both builds' sums against the exact sums of the same
g, t on tests/test_phases.py's adversarial rows.

    PYTHONPATH=$PWD python scripts/frn_backward_blocks_ab.py --variant-ext /tmp/blockext [--rounds 15]

NOTE: it calls ``row_norm_backward_max`` as it was before 2026-12-07 (x as (R, D) rows, per-row weight, offset,
tau; now x: (N, C, S) and per-channel values, docs/perf/norm-family.md, "FRN + TLU's small forward"): run it on a
tree and builds of that time.
"""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from norm_family_steps import _interleaved, _load_ext, _show  # noqa: E402


def _triad():
    import numba

    @numba.njit(cache=False)
    def triad(a, b, c, s):
        for i in range(a.shape[0]):
            a[i] = b[i] + s * c[i]
    return triad


def accuracy(mods, D, R=600):
    sys.modules.pop("conftest", None)  # NOTE: norm_family_steps put benchmarks/ (its conftest) first
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
    from test_phases import adversarial_max_rows
    x, dy, scale, offset, tau = adversarial_max_rows(np.random.default_rng(5), R, D)
    z, tv = x * scale[:, None] + offset[:, None], tau[:, None]
    g = np.where(z > tv, dy, np.where(z == tv, dy * np.float32(0.5), 0)).astype(np.float64)
    t = np.where(z > tv, 0, np.where(z == tv, dy * np.float32(0.5), dy)).astype(np.float64)
    x64, rstd, w = x.astype(np.float64), scale.astype(np.float64), np.full(R, 0.75, np.float32)
    exact = {"sg": g.sum(1), "sgx": (g * x64).sum(1), "st": t.sum(1)}
    mag = {"sg": np.abs(g).sum(1), "sgx": np.abs(g * x64).sum(1), "st": np.abs(t).sum(1)}
    a = rstd * 0.75
    b = -a * (exact["sgx"] * rstd / D) * rstd
    dx64, dxs = a[:, None] * g + b[:, None] * x64, np.abs(a[:, None] * g) + np.abs(b[:, None] * x64)
    u = 2.0 ** -24
    for name, mod in mods.items():
        dx, sg, sgx, st = np.empty_like(x), np.empty(R), np.empty(R), np.empty(R)
        mod.row_norm_backward_max(dx, sg, sgx, st, dy, x, rstd, w, scale, offset, tau, 1)
        print(f"  D={D} {name}:")
        for k, got in (("sg", sg), ("sgx", sgx), ("st", st)):
            e = np.abs(got - exact[k])
            off = (np.float32(got) != np.float32(exact[k])).sum()
            print(f"    {k:4s} max |err|/sum|terms| {(e / mag[k]).max() / u:9.3g} u; "
                  f"rows whose float32 rounding differs from the exact sum's: {off}/{R}")
        e = np.abs(dx - dx64)
        print(f"    dx   max |err|/(|a g| + |b x|) {(e / np.maximum(dxs, 1e-300)).max() / u:9.3g} u; max over rows of "
              f"||err||/||a g|| {(np.linalg.norm(e, axis=1) / np.linalg.norm(a[:, None] * g, axis=1)).max() / u:.3g} u")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--variant-ext", required=True)
    p.add_argument("--rounds", type=int, default=15)
    args = p.parse_args()
    from minigrad._ext import phases as this
    variant = _load_ext(args.variant_ext)
    print("load average", " ".join(f"{v:.2f}" for v in os.getloadavg()))
    print("accuracy against the exact sums of the same float32 g, t, x (adversarial rows):")
    for D in (64, 256):
        accuracy({"this tree": this, "variant": variant}, D)
    triad = _triad()
    rng = np.random.default_rng(0)
    for r, d in [(512, 64), (2048, 256)]:  # the rows of 16x32x8x8 and 32x64x16x16
        x = (rng.standard_normal((r, d)) * 2 + 0.5).astype(np.float32)
        dy = rng.standard_normal((r, d)).astype(np.float32)
        rstd = (1 / np.sqrt((x.astype(np.float64) ** 2).mean(1) + 1e-6))
        w = (1 + 0.1 * rng.standard_normal(r)).astype(np.float32)
        scale, off, tau = (rstd * w).astype(np.float32), np.zeros(r, np.float32), np.full(r, -1, np.float32)
        out = {m: (np.empty_like(x), np.empty(r), np.empty(r), np.empty(r)) for m in ("this", "variant")}
        ta, tb, tc = (np.ones(x.size, np.float32) for _ in range(3))
        triad(ta, tb, tc, np.float32(3))
        res = _interleaved({
            "row_norm_backward_max (this tree)": lambda: this.row_norm_backward_max(
                *out["this"], dy, x, rstd, w, scale, off, tau, 1),
            "row_norm_backward_max (variant)": lambda: variant.row_norm_backward_max(
                *out["variant"], dy, x, rstd, w, scale, off, tau, 1),
            "triad (numba, 3 |x|)": lambda: triad(ta, tb, tc, np.float32(3)),
        }, args.rounds)
        _show(f"rows {r}x{d} ({x.nbytes / 2 ** 20:.2f} MiB a tensor)", res)
        tri = 3 * x.nbytes / res["triad (numba, 3 |x|)"][0] / 1e9
        for k in ("row_norm_backward_max (this tree)", "row_norm_backward_max (variant)"):
            gbs = 5 * x.nbytes / res[k][0] / 1e9
            print(f"  {k:44s} {gbs:5.1f} GB/s (5 |x| model), {100 * gbs / tri:3.0f}% of the triad's {tri:.1f} GB/s")
    print("load average", " ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
