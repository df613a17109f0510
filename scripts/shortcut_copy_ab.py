"""In the ResNet-20 step (threads from argv), one process: the 1x1 stride-2 shortcuts' weight gradient on the
forward's saved subsampled input (new) against a fresh copy from x (old: conv2d_weight_grad called without xs),
alternated step by step; per step the subsampled copies' (_pointwise_input) wall and main-thread CPU, and the
whole step's. ms per step, medians.

    PYTHONPATH=$PWD python scripts/shortcut_copy_ab.py 2 30     # threads, steps per variant
"""
import os
import sys
import time

os.environ["STEP_THREADS"] = sys.argv[1]
sys.path.insert(0, os.path.join(os.getcwd(), "scripts"))
import step_cpu_time as S  # noqa: E402
import minigrad  # noqa: E402
from minigrad.allocator import tune_allocator  # noqa: E402
tune_allocator()
minigrad.set_num_threads(int(sys.argv[1]))
C = sys.modules["minigrad.nn.functional.conv"]
pin, wg = C._pointwise_input, C.conv2d_weight_grad
acc = [0.0, 0.0, 0]
def timed_pin(x, g):
    w, c = time.perf_counter(), time.thread_time()
    out = pin(x, g)
    acc[0] += time.perf_counter() - w
    acc[1] += time.thread_time() - c
    acc[2] += g.stride != (1, 1)
    return out
C._pointwise_input = timed_pin
variants = {"old": lambda x, dy, g, xs=None: wg(x, dy, g), "new": wg}
step = S.build("minigrad", "resnet20")
for _ in range(3):
    step()
def install(fn):
    C.conv2d_weight_grad = fn
for k, m in S.alternated(step, variants, install, int(sys.argv[2]), acc).items():
    print(f"{sys.argv[1]} thread(s) {k:4s} step wall {m[0]:.2f} main cpu {m[1]:.2f} | strided copies "
          f"({m[4]} a step) wall {m[2]:.3f} main cpu {m[3]:.3f}  load {os.getloadavg()[0]:.2f}")
