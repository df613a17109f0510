"""zca_backward_p1 and zca_backward_dx on each backend against the float64 oracle of tests/test_kernels.py
(zca_backward_exact): the largest |got - exact| / (abs-sum bound), in ulps (eps) of X, per output, over the test's
ZCA_BACKWARD_CASES (mean 0.5 and mean 1e4 with variance 1e-6; g = 3, 12, 20; S = 1, 7, 9, 13, 15, 17, 33, 49, 63).

    PYTHONPATH=$PWD python scripts/zca_backward_accuracy.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
from test_kernels import ZCA_BACKWARD_CASES, zca_backward_exact, zca_backward_inputs  # noqa: E402

from minigrad import kernels  # noqa: E402

for name in ("cython", "numba", "numpy"):
    k = kernels.load(name)
    for dtype in (np.float32, np.float64):
        worst = {"P": 0.0, "sdy": 0.0, "dx": 0.0}
        eps = float(np.finfo(dtype).eps)
        for shape, loc, scale in ZCA_BACKWARD_CASES:
            N, C, S, g = shape
            G = -(-C // g)
            dy, x, shift, F = zca_backward_inputs(np.random.default_rng(17), shape, dtype, loc, scale)
            P, sdy, dx = np.empty((G, g, g)), np.empty((G, g)), np.empty((N, C, S), dtype)
            k.zca_backward_p1(P, sdy, dy, x, shift, g)
            k.zca_backward_dx(dx, dy, x, shift, F, g)
            exact, bound = zca_backward_exact(dy, x, shift, F, g)
            for what, got in (("P", P), ("sdy", sdy), ("dx", dx)):
                r = np.abs(got.astype(np.float64) - exact[what]) / np.maximum(bound[what], 1e-300) / eps
                worst[what] = max(worst[what], float(r.max()))
        print(f"{name:7s} {dtype.__name__}: max error / abs-sum bound, in eps: " +
              ", ".join(f"{w} {v:.2f}" for w, v in worst.items()))
