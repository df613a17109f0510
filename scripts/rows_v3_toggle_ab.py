"""FRN + TLU's backward (row_norm_backward_max, raw call, 1 thread) on the rows' v3 kernels against the clones, in
ONE build and one process: phases._rows_avx2 flipped round by round (order alternated), CPU-time medians and
minima, at the family benchmark's shapes (16x32x8x8, 32x64x16x16 as N*C rows of S), float32 and float64 (where
phases.h has no v3 kernel for a dtype both sides run the clone). Unlike scripts/frn_avx2_ab.py it compares no two
builds, so the two .so files' layouts do not enter (docs/perf/norm-family.md, "DecorrelatedBN2d's backward on AVX2,
session 37").

    PYTHONPATH=$PWD python scripts/rows_v3_toggle_ab.py [ROUNDS]
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
from frn_avx2_ab import rows_as  # noqa: E402


def main():
    from minigrad._ext import phases
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    was = phases._rows_avx2()
    print("load average", " ".join(f"{v:.2f}" for v in os.getloadavg()))
    try:
        for N, C, S in ((16, 32, 64), (32, 64, 256)):
            for dt in (np.float32, np.float64):
                x, dy, w, b, tau, rstd, scale = rows_as(np.random.default_rng(0), N, C, S, "plain", dt)
                out = (np.empty_like(x), *(np.empty((N, C)) for _ in range(3)))
                reps = max(1, int(2e6 // x.size))
                t = {0: [], 1: []}
                for r in range(rounds):
                    for on in ((0, 1) if r % 2 == 0 else (1, 0)):
                        phases._rows_avx2(on)
                        t0 = time.process_time()
                        for _ in range(reps):
                            phases.row_norm_backward_max(*out, dy, x, rstd, w, scale, b, tau, 1)
                        t[on].append((time.process_time() - t0) / reps)
                a, c = np.array(t[0]), np.array(t[1])
                print(f"{N}x{C}x{S} {np.dtype(dt).name}: clone {np.median(a) * 1e6:.1f} us (min {a.min() * 1e6:.1f}), "
                      f"v3 {np.median(c) * 1e6:.1f} us (min {c.min() * 1e6:.1f}); v3/clone: median of the rounds' "
                      f"ratios {np.median(c / a):.3f}, of the minima {c.min() / a.min():.3f}")
    finally:
        phases._rows_avx2(was)
    print("load average", " ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
