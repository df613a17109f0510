"""conv2d's weight gradient below ``conv.DIRECT_MIN_CHANNELS`` input channels: im2col + GEMM (``conv.DIRECT`` False)
against the direct kernel (True; below 4 channels its sums by output rows, a sample a chunk: conv_direct.h, ROWS),
float32, alternated in one process, 11 rounds of 5 calls, ms a call (process time, medians): the measurements behind
``conv._few_channels_wg`` (docs/perf/threads.md, session 35).

    PYTHONPATH=$PWD python scripts/few_channels_wg.py [THREADS]
"""
import os
import sys
import time

import numpy as np

import minigrad as mg
from minigrad.nn.functional import conv as cv

# N, C, H (= W), O, k, padding
GEOMETRIES = [(32, 3, 32, 16, 3, 1), (32, 3, 32, 32, 3, 1), (32, 3, 32, 64, 3, 1), (32, 2, 16, 16, 3, 1),
              (32, 3, 56, 16, 3, 1), (8, 3, 32, 16, 3, 1), (32, 1, 28, 16, 3, 1), (32, 1, 28, 32, 3, 1),
              (32, 1, 28, 8, 3, 1), (32, 3, 32, 8, 3, 1), (32, 3, 32, 24, 3, 1), (64, 1, 28, 6, 5, 2),
              (32, 3, 32, 6, 5, 2)]

if __name__ == "__main__":
    mg.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    rng = np.random.default_rng(0)
    for N, C, H, O, k, p in GEOMETRIES:
        x = rng.standard_normal((N, C, H, H)).astype(np.float32)
        dy = rng.standard_normal((N, O, H + 2 * p - k + 1, H + 2 * p - k + 1)).astype(np.float32)
        g = cv._geometry(x.shape, (O, C, k, k), (1, 1), (p, p), (1, 1), 1, 4, mg.get_num_threads())
        t = {False: [], True: []}
        for r in range(11):
            for direct in (t if r % 2 == 0 else list(t)[::-1]):
                cv.DIRECT = direct
                c = time.process_time()
                for _ in range(5):
                    cv.conv2d_weight_grad(x, dy, g)
                t[direct].append((time.process_time() - c) / 5 * 1e3)
        cv.DIRECT = None
        a, b = np.median(t[False]), np.median(t[True])
        print(f"batch {N}, {C} -> {O}, {k}x{k} at {H}x{H}: im2col {a:.3f}, direct {b:.3f} ms ({a / b:.2f}x), "
              f"the rule: {'direct' if cv._few_channels_wg(g) else 'im2col'}")
    print(f"load {os.getloadavg()[0]:.2f}")
