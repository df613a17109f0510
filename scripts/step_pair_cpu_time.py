"""ResNet-20's (or another end-to-end case's) training step in minigrad and in PyTorch, both in one process at 1
thread, steps alternated, CPU time: on a loaded machine the ratio of the two moves less than between separate
processes minutes apart (``step_cpu_time.py``). 1 thread only: two OpenMP runtimes in one process are erratic with
more (docs/TOOLCHAIN.md); the end-to-end benchmarks keep each library in its own process.

    PYTHONPATH=$PWD python scripts/step_pair_cpu_time.py resnet20 20
    PYTHONPATH=$PWD python scripts/step_pair_cpu_time.py mlp-bn 3000 minigrad,minigrad-compiled,torch

A third argument names the frameworks (as step_cpu_time.py takes them, comma-separated; the last is the reference
the others' ratios are taken against).
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
model = sys.argv[1] if len(sys.argv) > 1 else "resnet20"
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 20
frameworks = sys.argv[3].split(",") if len(sys.argv) > 3 else ["minigrad", "torch"]
import numpy as np  # noqa: E402
import step_cpu_time as sct  # noqa: E402  (sets the 1-thread environment before NumPy and torch load)


def main():
    from threadpoolctl import threadpool_limits

    from minigrad.allocator import tune_allocator
    tune_allocator()
    threadpool_limits(1)
    steps = {fw: sct.build(fw, model) for fw in frameworks}
    for f in steps.values():
        for _ in range(3):
            f()
    t = {k: [] for k in steps}
    for r in range(rounds):
        for k in (frameworks if r % 2 == 0 else frameworks[::-1]):
            t0 = time.process_time()
            steps[k]()
            t[k].append((time.process_time() - t0) * 1e3)
    ref = frameworks[-1]
    p = np.array(t[ref])
    for k in frameworks[:-1]:
        m = np.array(t[k])
        print(f"{model}: {k} median {np.median(m):.3f} ms (best {m.min():.3f}), {ref} median {np.median(p):.3f} ms "
              f"(best {p.min():.3f}); {k} / {ref} steps/s: median of per-pair ratios {np.median(p / m):.2f}, "
              f"of medians {np.median(p) / np.median(m):.2f}; load {os.getloadavg()[0]:.2f}")

if __name__ == "__main__":
    main()
