"""DecorrelatedBatchNorm2d's training op (_ZCAWhiten) with the backward through the GEMM path (another tree's
minigrad/nn/decorrelated.py: zca_rows + two batched OpenBLAS GEMMs) against this tree's (zca_backward_p1 +
zca_backward_dx), both on this tree's kernels and the same forward: backward alone and forward + backward on raw
arrays, float32 and float64, 1 thread (OpenBLAS pinned to 1), interleaved rounds (order alternated), CPU time
(time.process_time), per-round paired ratios old/new; the gradients compared first (max |new - old| relative to
max |old|).

    PYTHONPATH=$PWD python scripts/decorrelated_backward_ab.py [ROUNDS] [OLD_ROOT] [BACKEND]

OLD_ROOT (default /work/main) holds the old minigrad/nn/decorrelated.py; BACKEND (default cython).
"""
import importlib.util
import os
import sys

import numpy as np

import minigrad.nn.decorrelated as newmod
from minigrad import kernels
from minigrad.kernels import set_num_threads

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from decorrelated_profile import timed  # noqa: E402

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 21
old_root = sys.argv[2] if len(sys.argv) > 2 else "/work/main"
kernels.set_backend(sys.argv[3] if len(sys.argv) > 3 else "cython")
set_num_threads(1)
spec = importlib.util.spec_from_file_location("old_decorrelated", os.path.join(old_root, "minigrad/nn/decorrelated.py"))
oldmod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(oldmod)
l0 = os.getloadavg()[0]
print("backend", kernels.kernels().__name__ if hasattr(kernels.kernels(), "__name__") else kernels.kernels())
for dtype in (np.float32, np.float64):
    for shape in ((16, 32, 8, 8), (32, 64, 16, 16)):
        N, C, H, W = shape
        g = 16
        G = -(-C // g)
        rng = np.random.default_rng(0)
        x = rng.standard_normal(shape).astype(dtype)
        dy = rng.standard_normal(shape).astype(dtype)
        w, b = (1 + 0.1 * rng.standard_normal(C)).astype(dtype), (0.1 * rng.standard_normal(C)).astype(dtype)
        ops = {}
        for name, mod in (("old", oldmod), ("new", newmod)):
            op = mod._ZCAWhiten([])
            op.forward(x, w, b, G, g, 1e-5)
            ops[name] = (mod, op)
        go, gn = ops["old"][1].backward(dy), ops["new"][1].backward(dy)
        err = [float(np.abs(a - c).max() / np.abs(a).max()) for a, c in zip(go, gn)]
        print(f"{dtype.__name__} {shape}: max|new - old|/max|old| dx {err[0]:.2e} dweight {err[1]:.2e} "
              f"dbias {err[2]:.2e}")

        def fwdbwd(mod):
            def f():
                op = mod._ZCAWhiten([])
                op.forward(x, w, b, G, g, 1e-5)
                op.backward(dy)
            return f

        runs = {"old bwd": lambda: ops["old"][1].backward(dy), "new bwd": lambda: ops["new"][1].backward(dy),
                "old fwd+bwd": fwdbwd(oldmod), "new fwd+bwd": fwdbwd(newmod)}
        out = timed(runs, rounds)
        med = {k: np.median(v) * 1e6 for k, v in out.items()}
        for what in ("bwd", "fwd+bwd"):
            o, n = np.array(out[f"old {what}"]), np.array(out[f"new {what}"])
            print(f"  {what:8s} old {med['old ' + what]:8.1f} us  new {med['new ' + what]:8.1f} us  "
                  f"old/new paired median {np.median(o / n):.3f}x (range {np.min(o / n):.2f}-{np.max(o / n):.2f})")
print(f"{rounds} rounds, load {l0:.2f} -> {os.getloadavg()[0]:.2f}")
