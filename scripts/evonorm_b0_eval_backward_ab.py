"""EvoNorm-B0's eval backward (training=False, the running variance) in one call (``evonorm_b0_backward`` with
constant_lo=True) against the two row phases and the NumPy between them it replaced (written out below on this
build), and the torch composition (bench_norm_family's EvoNormB0 with the running std for the batch's).

First the bits: the node's gradients, new against before, byte for byte (the compiled backends; the NumPy
reference's kernel is the chain rule in float64, tests/test_evonorm_b0_eval_backward.py), float32 and float64, 1
and 2 threads, plain, large-mean and tiny-variance data and edge values (+-0, inf, NaN). Then the times of the benchmark's
"backward" (``.backward(dy)`` of a graph built once) and "fwd+bwd": each round times every variant once (a batch of
calls, CPU time) in an order rotated each round, ratios paired within a round, medians (the minimum in brackets).

    PYTHONPATH=$PWD python scripts/evonorm_b0_eval_backward_ab.py [--rounds 15] [--threads 1]
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from norm_ab_table import ab_arguments, swapped, time_table  # noqa: E402


def before_backward(self, g):
    """_EvoNorm.backward's eval branch before session 37 (gate 1 with a running variance); else today's."""
    from minigrad import kernels
    if self.gate != 1 or self.running_var is None:
        return NEW_BACKWARD(self, g)
    x2 = self.x2
    (r, s), dtype = x2.shape, x2.dtype
    n, c = self.shape[0], self.shape[1]
    dy = np.ascontiguousarray(g, dtype=dtype).reshape(r, s)
    k = kernels.kernels()
    sums = np.empty((5, n, c))
    k.row_backward_sums_gate(*sums.reshape(5, r), dy, x2, self.v, self.lo, self.hi, self.gate)
    w64, shi = self.w64, sums[3]
    a, b, m1 = w64, w64 * shi * self.irstd / s, self.imean
    sums[2] *= w64
    tot = sums.sum(axis=1).astype(dtype)
    grads = [None, tot[2]]
    if self.needs_input_grad[0]:
        co = np.empty((4, r), dtype)
        co4 = co.reshape(4, n, c)
        co4[1] = m1
        shift = co4[1].astype(np.float64)
        co4[0], co4[2], co4[3] = a, b, b * (shift - m1)
        dx = np.empty_like(x2)
        k.row_backward_apply_gate(dx, dy, x2, *co, self.v, self.lo, self.hi, self.gate)
        grads[0] = dx.reshape(self.shape)
    if self.has_weight:
        grads.append(tot[1])
    if self.has_bias:
        grads.append(tot[0])
    return tuple(grads)


NEW_BACKWARD = None


def eval_case(shape, dtype, kind="plain", seed=0):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = rng.standard_normal(shape) * 2 + 0.5
    if kind == "large mean":
        x = x * 1e-3 + 1e4
    elif kind == "tiny variance":
        x = x * 1e-6 + 0.5
    dy = rng.standard_normal(shape)
    if kind == "edge":
        x.reshape(-1)[:4] = [0.0, -0.0, np.inf, np.nan]
        dy.reshape(-1)[5:8] = [-0.0, np.inf, np.nan]
    rv = float(np.nanvar(x[np.isfinite(x)])) * np.exp(rng.uniform(-1, 1, c))
    return dict(x=x.astype(dtype), dy=dy.astype(dtype), v=(1 + 0.1 * rng.standard_normal(c)).astype(dtype),
                w=(1 + 0.1 * rng.standard_normal(c)).astype(dtype), b=(0.1 * rng.standard_normal(c)).astype(dtype),
                rv=rv.astype(dtype))


def minigrad_run(a, op):
    import bench_norm_family as bench
    import minigrad as mg
    import minigrad.nn.functional as F
    grad = op != "forward"
    x, v, w, b = (mg.Tensor(a[k], requires_grad=grad) for k in ("x", "v", "w", "b"))
    rv = mg.Tensor(a["rv"])
    return bench._runner(lambda: F.evonorm_b0(x, v, rv, w, b, training=False, eps=bench.EPS), (x, w, b, v),
                         a["dy"], op, lambda t: t.numpy(), {})


def torch_run(torch, a, op):
    import bench_norm_family as bench
    x, v, w, b = (torch.tensor(a[k], requires_grad=True) for k in ("x", "v", "w", "b"))
    rv = torch.tensor(a["rv"])
    c = x.shape[1]

    def forward():
        inst = (x.var(dim=(2, 3), unbiased=False, keepdim=True) + bench.EPS).sqrt()
        lo = (rv + bench.EPS).sqrt().reshape(1, c, 1, 1)
        return x / torch.maximum(lo, v.reshape(1, c, 1, 1) * x + inst) * w.reshape(1, c, 1, 1) + b.reshape(1, c, 1, 1)
    return bench._runner(forward, (x, w, b, v), torch.tensor(a["dy"]), op, lambda t: t.detach().numpy(), {},
                         no_grad=torch.no_grad)


def check_bits():
    import minigrad as mg
    from minigrad import kernels
    from minigrad.nn.functional.norm_family import _EvoNorm
    n = 0
    for backend in [b for b in mg.available_backends() if b != "numpy"]:  # NOTE: the reference is the chain rule
        for threads in (1, 2):
            mg.set_num_threads(threads)
            for dtype in (np.float32, np.float64):
                for kind in ("plain", "large mean", "tiny variance", "edge"):
                    for shape in ((4, 3, 5, 2), (9, 1, 3, 3), (16, 32, 8, 8)):
                        a = eval_case(shape, dtype, kind)
                        got = {}
                        with kernels.using_backend(backend), np.errstate(all="ignore"):
                            run, result = minigrad_run(a, "fwd+bwd")
                            run()
                            got["new"] = [r.tobytes() for r in result()]
                            swapped(run, _EvoNorm, "backward", before_backward)()
                            got["before"] = [r.tobytes() for r in result()]
                        n += 1
                        if got["new"] != got["before"]:
                            print(f"BITS DIFFER: {backend} {threads} threads {np.dtype(dtype).name} {kind} {shape}")
                            return False
    mg.set_num_threads(1)
    print(f"bits: new == before byte for byte (y, dx, dweight, dbias, dv) in {n} cases: cython, numba, 1 and 2 "
          f"threads, float32/float64, plain/large mean/tiny variance/edge data, 3 shapes")
    return True


def main():
    global NEW_BACKWARD
    args = ab_arguments(__doc__)
    import torch

    from minigrad.nn.functional.norm_family import _EvoNorm
    NEW_BACKWARD = _EvoNorm.backward

    if not args.skip_bits and not check_bits():
        sys.exit(1)

    def variants(dtype, shape, op):
        a = eval_case(shape, np.dtype(dtype).type)
        before_run, before_result = minigrad_run(a, op)
        before = swapped(before_run, _EvoNorm, "backward", before_backward)
        return {"new": minigrad_run(a, op), "before": (before, before_result),
                "torch": torch_run(torch, a, op)}
    time_table(args, variants)


if __name__ == "__main__":
    main()
