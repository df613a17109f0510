"""Batch Renorm's backward with r and d in the kernel's call (``batch_norm_backward(..., r=, d=)``) against the
composition it replaced (weight*r in NumPy before the kernel, dweight = r*sum(dy*xhat) + d*sum(dy) in NumPy after
it; written out below on this build) and the torch composition of benchmarks/bench_norm_family.py.

First the bits: the node's gradients, new against before, byte for byte, float32 and float64, 1 and 2 threads,
r and d clipped both ways and not at all, plain, large-mean and tiny-variance data and edge values (+-0, +-inf, NaN,
subnormals). Then the times: interleaved in one process, each round times every variant once (a batch of calls,
CPU time) in an order rotated each round, ratios paired within a round, medians (the minimum in brackets).

    PYTHONPATH=$PWD python scripts/batch_renorm_backward_ab.py [--rounds 15] [--threads 1] [--ops backward fwd+bwd]
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from norm_ab_table import ab_arguments, bench_variants, swapped, time_table  # noqa: E402


def before_backward(self, g):
    """_BatchRenormTrain.backward before this change (session 35's): r and d in NumPy around the kernel."""
    from minigrad import kernels
    from minigrad.kernels.threads import get_num_threads
    from minigrad.nn.functional.norm import _SMALL_BN_BACKWARD, _grads_for
    x3 = self.x3
    dtype, shape = x3.dtype, x3.shape
    sxhat, sdy = np.empty(shape[1], dtype), np.empty(shape[1], dtype)
    dx = np.empty(self.shape, dtype)
    kernels.kernels().module.batch_norm_backward(
        dx.reshape(shape), sxhat, sdy, np.ascontiguousarray(g, dtype).reshape(shape), x3, self.mean[0],
        self.rstd[0], (self.w * self.r).astype(dtype), 1 if x3.size < _SMALL_BN_BACKWARD else get_num_threads())
    dweight = (self.r * sxhat + self.d * sdy).astype(dtype)
    return _grads_for(self, dx, dweight, sdy)


def bits_cases():
    """(label, x, dy, running_mean, running_var, r_max, d_max) covering the clip bounds and the data kinds."""
    rng = np.random.default_rng(7)
    shape = (6, 5, 4, 3)
    x = rng.standard_normal(shape)
    dy = rng.standard_normal(shape)
    c = shape[1]
    rm, rv = 0.1 * rng.standard_normal(c), 1 + 0.5 * rng.random(c)
    cases = [("plain", x * 2 + 0.5, dy, rm, rv, 1.5, 0.5),
             ("r, d clipped high", x * 5 + 3, dy, rm, rv, 1.5, 0.5),      # sigma_B/sigma > r_max, d > d_max
             ("r, d clipped low", x * 0.1 - 3, dy, rm, rv, 1.5, 0.5),     # below 1/r_max, -d_max
             ("r, d unclipped", x, dy, rm, rv, 100.0, 100.0),
             ("large mean", x * 1e-3 + 1e4, dy, rm + 1e4, rv * 1e-6, 3.0, 5.0),
             ("tiny variance", x * 1e-6 + 0.5, dy * 1e3, rm, rv * 1e-10, 2.0, 1.0)]
    edge = x.copy()
    edge[0, 0, 0, :3] = [0.0, -0.0, 1e-310]
    edge_dy = dy.copy()
    edge_dy[1, 1, 1, :3] = [-0.0, np.inf, 5e-324]
    edge_dy[2, 2, 2, 0] = np.nan
    edge_x = x.copy()
    edge_x[3, 3, 3, 0] = -np.inf
    cases += [("edge dy (+-0, inf, NaN, subnormal)", edge, edge_dy, rm, rv, 1.5, 0.5),
              ("edge x (-inf)", edge_x, dy, rm, rv, 1.5, 0.5),
              ("zero dy", x, np.zeros_like(dy) * -1.0, rm, rv, 1.5, 0.5)]
    return cases


def check_bits(threads_list):
    import minigrad as mg
    import minigrad.nn.functional as F
    from minigrad import kernels
    from minigrad.nn.functional.norm import _BatchRenormTrain
    new_backward = _BatchRenormTrain.backward
    n = 0
    for backend in ("cython", "numba", "numpy"):
        if backend not in kernels.available_backends():
            continue
        for threads in threads_list:
            mg.set_num_threads(threads)
            for dtype in (np.float32, np.float64):
                for label, x, dy, rm, rv, r_max, d_max in bits_cases():
                    grads = {}
                    for v, bwd in (("before", before_backward), ("new", new_backward)):
                        _BatchRenormTrain.backward = bwd
                        try:
                            with kernels.using_backend(backend), np.errstate(all="ignore"):
                                xt = mg.Tensor(x.astype(dtype), requires_grad=True)
                                w = mg.Tensor((1 + 0.1 * np.arange(x.shape[1])).astype(dtype), requires_grad=True)
                                b = mg.Tensor(np.zeros(x.shape[1], dtype), requires_grad=True)
                                y = F.batch_renorm(xt, mg.Tensor(rm.astype(dtype)), mg.Tensor(rv.astype(dtype)), w,
                                                   b, True, 0.1, 1e-5, r_max, d_max)
                                y.backward(mg.Tensor(dy.astype(dtype)))
                        finally:
                            _BatchRenormTrain.backward = new_backward
                        grads[v] = [t.grad.numpy().tobytes() for t in (xt, w, b)]
                    same = grads["before"] == grads["new"]
                    n += 1
                    if not same:
                        print(f"BITS DIFFER: {backend} threads {threads} {np.dtype(dtype).name} {label}")
                        return False
    mg.set_num_threads(1)
    print(f"bits: new == before byte for byte (dx, dweight, dbias) in {n} cases: backends cython/numba/numpy, "
          f"threads {threads_list}, float32/float64, {len(bits_cases())} data cases each")
    return True


def main():
    args = ab_arguments(__doc__)
    from minigrad.nn.functional.norm import _BatchRenormTrain

    if not args.skip_bits and not check_bits([1, 2]):
        sys.exit(1)
    before = lambda run: swapped(run, _BatchRenormTrain, "backward", before_backward)  # noqa: E731
    time_table(args, lambda dtype, shape, op: bench_variants("BatchRenorm2d", dtype, shape, op, before))


if __name__ == "__main__":
    main()
