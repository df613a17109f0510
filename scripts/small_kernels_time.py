"""Raw per-call CPU time of the small kernels of the MLP-BN step, this tree's build against another's, interleaved.

  PYTHONPATH=$PWD python scripts/small_kernels_time.py OLD_DIR [ROUNDS]

OLD_DIR as in scripts/small_kernels_bits.py. 1 thread; per round and kernel, 3000 calls of each build back to back
(time.process_time); prints medians over rounds (us a call), old / new, and the load average.
"""
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from small_kernels_bits import load  # noqa: E402

from minigrad._ext import elementwise as new_ew  # noqa: E402
from minigrad._ext import softmax as new_sm  # noqa: E402


def per_call(f, n=3000):
    t0 = time.process_time()
    for _ in range(n):
        f()
    return (time.process_time() - t0) / n * 1e6


def main():
    old_dir = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 9
    old_ew, old_sm = load(old_dir, "elementwise"), load(old_dir, "softmax")
    rng = np.random.default_rng(0)
    cases = []
    for dt in (np.float32, np.float64):
        x = rng.standard_normal((60, 10)).astype(dt)
        y, dx = np.empty_like(x), np.empty_like(x)
        new_sm.log_softmax_forward(y, x, 1)
        z = rng.standard_normal(6000).astype(dt)
        o = np.empty_like(z)
        for name, ew, sm in (("old", old_ew, old_sm), ("new", new_ew, new_sm)):
            cases.append((f"log_softmax_forward (60, 10) {dt.__name__}", name,
                          lambda sm=sm, y=y, x=x: sm.log_softmax_forward(y, x, 1)))
            cases.append((f"log_softmax_backward (60, 10) {dt.__name__}", name,
                          lambda sm=sm, dx=dx, x=x, y=y: sm.log_softmax_backward(dx, x, y, 1)))
            cases.append((f"sigmoid_forward 6000 {dt.__name__}", name,
                          lambda ew=ew, o=o, z=z: ew.sigmoid_forward(o, z, 1)))
    times = {(c, n): [] for c, n, _ in cases}
    load0 = os.getloadavg()
    for _ in range(rounds):
        for c, n, f in cases:
            f()
            times[(c, n)].append(per_call(f))
    print(f"load average before: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}, after: "
          + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    print(f"| kernel | old us | new us | old / new |  ({rounds} rounds, medians)")
    for c in dict.fromkeys(c for c, _, _ in cases):
        o, nw = np.median(times[(c, "old")]), np.median(times[(c, "new")])
        print(f"| {c} | {o:.2f} | {nw:.2f} | {o / nw:.2f} |")


if __name__ == "__main__":
    main()
