"""Batch Renorm's training forward, one kernel call (``batch_renorm_forward``), against the channel phases it replaced
(``channel_stats``, r and d and the coefficients in NumPy, ``channel_apply``; written out below on this build) and the
torch composition of benchmarks/bench_norm_family.py ("new", "before" and "torch ops" in the table), interleaved in
one process (scripts/norm_ab_table.py): each round times every variant once (a batch of calls, CPU time) in an order
rotated each round, ratios paired within a round, medians (the minimum in brackets). Outputs and gradients of the
two minigrad variants are checked close first (they differ in the statistics' summation order only).

    PYTHONPATH=$PWD python scripts/batch_renorm_ab.py [--rounds 15] [--threads 1] [--ops forward fwd+bwd] \
        [--dtypes float32]
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from norm_ab_table import ab_arguments, bench_variants, swapped, time_table  # noqa: E402


def main():
    args = ab_arguments(__doc__, ops=("forward", "fwd+bwd"), dtypes=("float32",), bits=False)
    import bench_norm_family as bench
    import minigrad.nn.functional as F
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
            self.chunk, self.x3, self.shape, self.w = n, x3, x.shape, w  # NOTE: one chunk (bounds)
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

    def before(run):
        """run() with F.batch_renorm running the phases."""
        return swapped(run, F, "batch_renorm", lambda x, rm, rv, w, b, training, momentum, eps, r_max, d_max:
                       phases_renorm(x, rm, rv, w, b, r_max, d_max))

    def close(got, want):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * float(np.abs(want).max()))
    time_table(args, lambda dtype, shape, op: bench_variants("BatchRenorm2d", dtype, shape, op, before), close)


if __name__ == "__main__":
    main()
