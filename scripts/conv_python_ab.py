"""conv2d's Python per call with its checked geometry cached (conv._geometry, new) against computed every call
(old: the function the cache wraps), in one process, alternated: ``F.conv2d`` forward and backward on one sample of
2x2 pixels, 3x3, padding 1 (the kernels' work is small: the call is mostly Python), ResNet-20's channel counts.
Main-thread CPU, medians of rounds of 500 calls, us a call (docs/perf/threads.md, session 33).

    PYTHONPATH=$PWD python scripts/conv_python_ab.py 2 21     # threads, rounds
"""
import os
import sys
import time

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F
from minigrad.nn.functional import conv as cv


def ab(variants, threads, rounds, n=500):
    """Main-thread CPU of ``conv2d(x, w, padding=1).backward(dy)`` per call for each variant (name -> a function that
    puts the variant in place and returns the conv2d to call), alternated in rounds of n calls; prints the medians
    per channel count and returns the last gradients (x's, w's) of each variant per channel count."""
    mg.set_num_threads(threads)
    rng = np.random.default_rng(0)
    grads = {}
    for C in (16, 32, 64):
        x = mg.Tensor(rng.standard_normal((1, C, 2, 2)).astype(np.float32), requires_grad=True)
        w = mg.Tensor(rng.standard_normal((C, C, 3, 3)).astype(np.float32), requires_grad=True)
        dy = rng.standard_normal((1, C, 2, 2)).astype(np.float32)
        times = {k: [] for k in variants}
        for r in range(rounds):
            for k in (list(variants) if r % 2 == 0 else list(variants)[::-1]):
                conv2d = variants[k]()
                t = time.thread_time()
                for _ in range(n):
                    x.grad = w.grad = None
                    conv2d(x, w, padding=1).backward(dy)
                times[k].append((time.thread_time() - t) / n * 1e6)
                grads[C, k] = (x.grad.numpy().copy(), w.grad.numpy().copy())
        print(f"{C} -> {C}, {threads} thread(s): " + ", ".join(
            f"{k} {np.median(v):.1f} (p10-p90 {np.percentile(v, 10):.1f}-{np.percentile(v, 90):.1f})"
            for k, v in times.items()) + f" us  (load {os.getloadavg()[0]:.2f})")
    return grads


def main(threads, rounds, n=500):
    cached = cv._geometry

    def use(geometry):
        cv._geometry = geometry
        return F.conv2d

    try:
        ab({"old": lambda: use(cached.__wrapped__), "new": lambda: use(cached)}, threads, rounds, n)
    finally:
        cv._geometry = cached


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
