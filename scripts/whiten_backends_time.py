"""CPU time of one DecorrelatedBatchNorm2d training step (forward + backward through autograd, float32, group size
16, 1 thread) on each backend: rounds interleaved, medians of time.process_time per step, the load average printed.

  PYTHONPATH=$PWD python scripts/whiten_backends_time.py [ROUNDS]
"""
import os
import sys
import time

import numpy as np

import minigrad as mg
from minigrad import nn

SHAPES = [(16, 32, 8, 8), (32, 64, 16, 16)]  # issue 17's targets' shapes
BACKENDS = ("cython", "numba", "numpy")


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    mg.set_num_threads(1)
    rng = np.random.default_rng(0)
    print(f"load average before: {os.getloadavg()}")
    for shape in SHAPES:
        x0 = rng.standard_normal(shape).astype(np.float32)
        dy = mg.Tensor(rng.standard_normal(shape).astype(np.float32))
        m = nn.DecorrelatedBatchNorm2d(shape[1], group_size=16)

        def step():
            x = mg.Tensor(x0, requires_grad=True)
            (m(x) * dy).sum().backward()

        times = {b: [] for b in BACKENDS}
        n = max(1, int(2e6 // np.prod(shape)))
        for b in BACKENDS:  # warm-up: numba's compilation, the caches
            with mg.using_backend(b):
                step()
                step()
        for _ in range(rounds):
            for b in BACKENDS:
                with mg.using_backend(b):
                    t = time.process_time()
                    for _ in range(n):
                        step()
                    times[b].append((time.process_time() - t) / n * 1e3)
        print(shape, "  ".join(f"{b} {np.median(v):.2f} ms" for b, v in times.items()))
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
