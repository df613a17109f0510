"""The direct convolution's per-call cost outside its samples' work, this build against another (OLD_EXT: a
directory holding another build's conv extension): conv2d_direct_backward and conv2d_direct on one sample of 1x1
pixels at ResNet-20's channel counts (16, 32, 64; 3x3, padding 1), so that the weight packing, the weight gradient's
parts and the allocations are most of the call. 1 thread, process time, medians of 11 interleaved rounds of 400
calls, us a call (docs/perf/threads.md, session 32).

    mkdir /tmp/oldext && cp OLD_TREE/minigrad/_ext/*.so /tmp/oldext/
    PYTHONPATH=$PWD python scripts/conv_fixed_cost_ab.py /tmp/oldext
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serial_region_ab import HERE, load  # noqa: E402


def per_call(f, n=400):
    t = time.process_time()
    for _ in range(n):
        f()
    return (time.process_time() - t) / n * 1e6


def main(old_ext, rounds=11):
    mods = {"old": load(old_ext, "conv"), "new": load(os.path.join(HERE, "minigrad", "_ext"), "conv")}
    rng = np.random.default_rng(0)
    for C in (16, 32, 64):
        x, dy = rng.standard_normal((2, 1, C, 1, 1)).astype(np.float32)
        w = rng.standard_normal((C, C * 9)).astype(np.float32)
        dx, y, dw = np.empty_like(x), np.empty_like(x), np.empty_like(w)
        times = {}
        for r in range(rounds):
            for side in (("old", "new") if r % 2 == 0 else ("new", "old")):
                m = mods[side]
                times.setdefault((side, "backward"), []).append(
                    per_call(lambda: m.conv2d_direct_backward(dx, dw, x, dy, w, 3, 3, (1, 1), 1)))
                times.setdefault((side, "forward"), []).append(
                    per_call(lambda: m.conv2d_direct(y, x, w, 3, 3, (1, 1), 1)))
        print(f"{C} -> {C}: " + ", ".join(f"{k} old {np.median(times[('old', k)]):.1f} new "
                                          f"{np.median(times[('new', k)]):.1f}" for k in ("backward", "forward"))
              + f" us  (load {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main(sys.argv[1])
