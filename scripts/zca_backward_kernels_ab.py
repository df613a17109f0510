"""The backward's passes alone on the cython backend's raw kernels (whiten.pyx, no checks), 1 thread, OpenBLAS
pinned to 1, interleaved rounds (scripts/decorrelated_profile.py's timed: CPU-time medians, order alternated):
zca_backward_p1 and zca_backward_dx against what they replace, zca_rows + the P1 GEMM and its sum over n, and the
dx GEMM (np.matmul on the rows buffer), float32 and float64 at 16x32x8x8 and 32x64x16x16, g = 16.

    PYTHONPATH=$PWD python scripts/zca_backward_kernels_ab.py [ROUNDS]
"""
import os
import sys

import numpy as np

from minigrad._ext import whiten
from minigrad.kernels import set_num_threads

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from decorrelated_profile import timed  # noqa: E402

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
set_num_threads(1)
l0 = os.getloadavg()[0]
for dt in (np.float32, np.float64):
    for (N, C, S) in ((16, 32, 64), (32, 64, 256)):
        g = 16
        G = C // g
        rng = np.random.default_rng(0)
        x, dy = rng.standard_normal((N, C, S)).astype(dt), rng.standard_normal((N, C, S)).astype(dt)
        sh = x.mean(axis=(0, 2)).astype(dt)
        F = rng.standard_normal((G, g, 2 * g + 1)).astype(dt)
        P, sdy, dx = np.empty((G, g, g)), np.empty((G, g)), np.empty_like(x)
        B, out4 = np.empty((N, G, 2 * g + 1, S), dt), np.empty((N, G, g, S), dt)

        def old_p1():
            whiten.zca_rows(B, dy, x, sh, g, 1)
            np.matmul(B[:, :, :g], np.swapaxes(B[:, :, g:], -1, -2)).sum(axis=0, dtype=np.float64)

        r = timed({"zca_backward_p1": lambda: whiten.zca_backward_p1(P, sdy, dy, x, sh, g, 1),
                   "zca_backward_dx": lambda: whiten.zca_backward_dx(dx, dy, x, sh, F, g, 1),
                   "zca_rows + P1 GEMM": old_p1, "dx GEMM": lambda: np.matmul(F, B, out=out4)}, rounds)
        print(dt.__name__, f"{N}x{C}x{S}", ", ".join(f"{k} {np.median(v) * 1e6:.1f} us" for k, v in r.items()))
print(f"{rounds} rounds, load {l0:.2f} -> {os.getloadavg()[0]:.2f}")
