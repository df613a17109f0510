"""In the ResNet-20 step at 2 threads, one process: the fan-out sums through tensor._sum_grads (the add kernel)
against NumPy's prev + pg, alternated step by step; per step the sums' wall and main-thread CPU, and the whole
step's wall and main-thread CPU. ms per step, medians.

    PYTHONPATH=$PWD python scripts/fanout_sums_ab.py 40     # steps per variant
"""
import os
import sys
import time

os.environ["STEP_THREADS"] = "2"
sys.path.insert(0, os.path.join(os.getcwd(), "scripts"))
import step_cpu_time as S  # noqa: E402
import minigrad  # noqa: E402
from minigrad.allocator import tune_allocator  # noqa: E402
tune_allocator()
minigrad.set_num_threads(2)
T = sys.modules["minigrad.tensor"]
real = T._sum_grads
acc = [0.0, 0.0, 0]
def timed(fn):
    def f(prev, pg):
        w, c = time.perf_counter(), time.thread_time()
        out = fn(prev, pg)
        acc[0] += time.perf_counter() - w
        acc[1] += time.thread_time() - c
        acc[2] += 1
        return out
    return f
variants = {"numpy": timed(lambda a, b: a + b), "kernel": timed(real)}
step = S.build("minigrad", "resnet20")
for _ in range(3):
    step()
def install(fn):
    T._sum_grads = fn
for k, m in S.alternated(step, variants, install, int(sys.argv[1]) if len(sys.argv) > 1 else 40, acc).items():
    print(f"{k:7s} step wall {m[0]:.2f} main cpu {m[1]:.2f} | sums ({m[4]} a step) wall {m[2]:.3f} "
          f"main cpu {m[3]:.3f}  load {os.getloadavg()[0]:.2f}")
