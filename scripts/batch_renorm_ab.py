"""Batch Renorm's training forward, one kernel call (``batch_renorm_forward``), against the channel phases it replaced
(``channel_stats``, r and d and the coefficients in NumPy, ``channel_apply``; written out below on this build) and the
torch composition of benchmarks/bench_norm_family.py, interleaved in one process: each round times every variant once
(a batch of calls, CPU time), ratios paired within a round, medians (the minimum in brackets). Outputs and gradients
of the two minigrad variants are checked close first (they differ in the statistics' summation order only).

    PYTHONPATH=$PWD python scripts/batch_renorm_ab.py [--rounds 15] [--threads 1] [--ops forward fwd+bwd]
"""
import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "benchmarks"))
sys.path.insert(0, HERE)
from norm_family_ab import interleaved_times  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--ops", nargs="+", default=["forward", "fwd+bwd"])
    ap.add_argument("--target-ms", type=float, default=20.0, help="CPU time per variant per round")
    args = ap.parse_args()
    import torch

    import bench_norm_family as bench
    import minigrad as mg
    import minigrad.nn.functional as F
    from conftest import pin_threads
    from minigrad import kernels
    from minigrad.kernels import coefficients
    from minigrad.nn.functional.norm import _BatchRenormTrain, _affine, _as_ncs_array, _params

    class Phases(_BatchRenormTrain):
        """The forward before batch_renorm_forward (one chunk): the channel phases with NumPy between them."""

        def forward(self, x, *params, has_weight, has_bias, eps, renorm):
            self.has_weight, self.has_bias, self.eps = has_weight, has_bias, eps
            x3 = _as_ncs_array(x)
            n, c, s = x3.shape
            w, b = _affine(params[0] if has_weight else None, params[-1] if has_bias else None, c, x.dtype)
            self.bounds, self.x3, self.shape, self.w = [(0, n)], x3, x.shape, w
            k = kernels.kernels()
            self.mean, m2 = np.empty((1, c)), np.empty((1, c))
            k.channel_stats(self.mean[0], m2[0], x3, True)
            self.rstd = coefficients.rstd(m2, np.array([[n * s]]), eps)
            rm, rv, hi, dhi = renorm()
            rstd_run = 1.0 / np.sqrt(rv.astype(np.float64) + eps)
            self.r = np.clip(rstd_run / self.rstd[0], 1.0 / hi, hi)
            self.d = np.clip((self.mean[0] - rm.astype(np.float64)) * rstd_run, -dhi, dhi)
            w64 = w.astype(np.float64)
            y = np.empty_like(x3)
            k.channel_apply(y, x3, *coefficients.forward(self.mean[0], self.rstd[0], x.dtype, w64 * self.r,
                                                          b.astype(np.float64) + w64 * self.d))
            return y.reshape(x.shape)

    def phases_renorm(x, rm, rv, w, b, r_max, d_max):
        renorm = lambda: (rm.data, rv.data, r_max, d_max)  # noqa: E731
        return Phases.apply(x, *_params(w, b), renorm=renorm, has_weight=True, has_bias=True, eps=bench.EPS)

    def with_phases(run, result):
        """(run, result) of the benchmark's case with F.batch_renorm running the phases (swapped in per call)."""
        def run_phases():
            real = F.batch_renorm
            F.batch_renorm = lambda x, rm, rv, w, b, training, momentum, eps, r_max, d_max: phases_renorm(
                x, rm, rv, w, b, r_max, d_max)
            try:
                run()
            finally:
                F.batch_renorm = real
        return run_phases, result

    pin_threads(args.threads)
    torch.set_num_threads(args.threads)
    clock = time.process_time
    fmt = lambda s: f"{s * 1e6:.1f} us" if s < 1e-3 else f"{s * 1e3:.2f} ms"  # noqa: E731
    print(f"threads {args.threads}, {args.rounds} interleaved rounds, float32, CPU time; load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("| op | shape | one call | phases | torch ops | one call vs phases | one call vs torch ops "
          "| phases vs torch ops |")
    print("|---|---|---|---|---|---|---|---|")
    for shape in bench.SHAPES:
        a = bench._arrays(shape)
        for op in args.ops:
            variants = {"new": bench._minigrad("BatchRenorm2d", a, op)}
            variants["before"] = with_phases(*bench._minigrad("BatchRenorm2d", a, op))
            variants["torch"] = bench._torch(torch, "BatchRenorm2d", a, op)
            results = {}
            for v, (run, result) in variants.items():
                run()
                results[v] = result()
            for got, want in zip(results["new"], results["before"]):
                np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * float(np.abs(want).max()))
            t = interleaved_times({v: run for v, (run, _) in variants.items()}, args.rounds, args.target_ms, clock)
            cell = lambda v: f"{fmt(float(np.median(t[v])))} ({fmt(float(t[v].min()))})"  # noqa: E731
            ratio = lambda p, q: f"{float(np.median(t[q] / t[p])):.2f}x"  # noqa: E731
            print(f"| {op} | {'x'.join(map(str, shape))} | {cell('new')} | {cell('before')} | {cell('torch')} | "
                  f"{ratio('new', 'before')} | {ratio('new', 'torch')} | {ratio('before', 'torch')} |", flush=True)
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
