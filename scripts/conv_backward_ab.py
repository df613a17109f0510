"""In the ResNet-20 step, one process: each 3x3 conv's two gradients through conv2d_direct_backward or
conv2d_strided_backward (one parallel region) against the weight gradient's kernel, then the input gradient's
(two regions), alternated step by step; per step the conv backwards' wall and main-thread CPU, and the whole
step's wall and main-thread CPU. ms per step, medians (docs/perf/threads.md, session 31).

    PYTHONPATH=$PWD python scripts/conv_backward_ab.py 2 40     # threads, steps per variant
"""
import os
import sys
import time

THREADS = int(sys.argv[1]) if len(sys.argv) > 1 else 2
os.environ["STEP_THREADS"] = str(THREADS)
sys.path.insert(0, os.path.join(os.getcwd(), "scripts"))
import step_cpu_time as S  # noqa: E402
import minigrad  # noqa: E402
from minigrad.allocator import tune_allocator  # noqa: E402
from minigrad.nn.functional import conv as C  # noqa: E402

tune_allocator()
minigrad.set_num_threads(THREADS)
fused, backward = C._fused_backward, C._Conv2d.backward
acc = [0.0, 0.0, 0]


def timed(self, dy):
    w, c = time.perf_counter(), time.thread_time()
    out = backward(self, dy)
    acc[0] += time.perf_counter() - w
    acc[1] += time.thread_time() - c
    acc[2] += 1
    return out


C._Conv2d.backward = timed
step = S.build("minigrad", "resnet20")
for _ in range(3):
    step()


def install(fn):
    C._fused_backward = fn


variants = {"two": lambda g: None, "fused": fused}
for k, m in S.alternated(step, variants, install, int(sys.argv[2]) if len(sys.argv) > 2 else 40, acc).items():
    print(f"{k:6s} {THREADS} thread(s): step wall {m[0]:.2f} main cpu {m[1]:.2f} | conv backwards ({m[4]} a step) "
          f"wall {m[2]:.3f} main cpu {m[3]:.3f}  load {os.getloadavg()[0]:.2f}")
