"""ResNet-20's (or another end-to-end case's) training step in minigrad and in PyTorch, both in one process at 1
thread, steps alternated, CPU time: on a loaded machine the ratio of the two moves less than between separate
processes minutes apart (``step_cpu_time.py``). 1 thread only: two OpenMP runtimes in one process are erratic with
more (docs/TOOLCHAIN.md); the end-to-end benchmarks keep each library in its own process.

    PYTHONPATH=$PWD python scripts/step_pair_cpu_time.py resnet20 20
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
model = sys.argv[1] if len(sys.argv) > 1 else "resnet20"
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 20
import numpy as np  # noqa: E402
import step_cpu_time as sct  # noqa: E402  (sets the 1-thread environment before NumPy and torch load)


def main():
    from threadpoolctl import threadpool_limits

    from minigrad.allocator import tune_allocator
    tune_allocator()
    threadpool_limits(1)
    steps = {fw: sct.build(fw, model) for fw in ("minigrad", "torch")}
    for f in steps.values():
        for _ in range(3):
            f()
    t = {k: [] for k in steps}
    for r in range(rounds):
        for k in (("minigrad", "torch") if r % 2 == 0 else ("torch", "minigrad")):
            t0 = time.process_time()
            steps[k]()
            t[k].append((time.process_time() - t0) * 1e3)
    m, p = np.array(t["minigrad"]), np.array(t["torch"])
    print(f"{model}: minigrad median {np.median(m):.1f} ms (best {m.min():.1f}), torch median {np.median(p):.1f} ms "
          f"(best {p.min():.1f}); minigrad / torch steps/s: median of per-pair ratios {np.median(p / m):.2f}, "
          f"of medians {np.median(p) / np.median(m):.2f}")


if __name__ == "__main__":
    main()
