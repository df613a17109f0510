"""add_relu_backward_sum (the fan-out sum and add + ReLU's mask in one pass) against the two calls it replaces (add,
then add_relu_backward), raw (no contract check), float32, at ResNet-20's sizes (batch 32: 524288, 262144 and
131072 elements), interleaved round by round with a triad (a = b + s*c, one thread, Numba: scripts/norm_phases_cpu.py)
over arrays of the same size. At 1 thread CPU time (the main thread's), at 2 threads wall time; us a call, medians
over the rounds and the spread (p10-p90); GB/s under the byte model (the fused pass reads 3 arrays and writes 1, the
pair 6 array passes) and the fraction of the triad's (docs/perf/threads.md, session 33).

    PYTHONPATH=$PWD python scripts/fanout_kernel_ab.py [ROUNDS [CALLS]]     # default 15 rounds of 20 calls
"""
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from norm_phases_cpu import _triad  # noqa: E402

import minigrad  # noqa: E402
from minigrad import kernels  # noqa: E402

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 15
CALLS = int(sys.argv[2]) if len(sys.argv) > 2 else 20
k = kernels.load("cython").module


def timed(fn, clock):
    t = clock()
    for _ in range(CALLS):
        fn()
    return (clock() - t) / CALLS


def spread(xs):
    q = statistics.quantiles([x * 1e6 for x in xs], n=10)
    return f"{statistics.median(xs) * 1e6:.1f} ({q[0]:.1f}-{q[-1]:.1f})"


print(f"load average {os.getloadavg()[0]:.2f}; {ROUNDS} rounds of {CALLS} calls; us a call, median (p10-p90)")
print("| elements | threads | clock | add + add_relu_backward | add_relu_backward_sum | new / old | GB/s old, new |"
      " triad GB/s | old, new of triad |")
print("|---|---|---|---|---|---|---|---|---|")
for M in (524288, 262144, 131072):
    rng = np.random.default_rng(0)
    g0, g1, y = (rng.standard_normal(M).astype(np.float32) for _ in range(3))
    s, dx = np.empty_like(y), np.empty_like(y)
    run_triad, triad_bytes = _triad(M)
    for threads, clock, name in ((1, time.thread_time, "cpu"), (2, time.perf_counter, "wall")):
        minigrad.set_num_threads(threads)
        fns = {"old": lambda: (k.add(s, g0, g1, threads), k.add_relu_backward(dx, s, y, threads)),
               "new": lambda: k.add_relu_backward_sum(dx, g0, g1, y, threads), "triad": run_triad}
        rows = {n: [] for n in fns}
        for r in range(ROUNDS):
            for n in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
                rows[n].append(timed(fns[n], clock))
        o, n_, t = (statistics.median(rows[x]) for x in ("old", "new", "triad"))
        gb_old, gb_new, gb_t = 6 * M * 4 / o / 1e9, 4 * M * 4 / n_ / 1e9, triad_bytes / t / 1e9
        print(f"| {M} | {threads} | {name} | {spread(rows['old'])} | {spread(rows['new'])} | {n_ / o:.2f} | "
              f"{gb_old:.1f}, {gb_new:.1f} | {gb_t:.1f} (1 thread) | {gb_old / gb_t:.2f}, {gb_new / gb_t:.2f} |")
