"""In the ResNet-20 step at 2 threads, one process: the residual block's elementwise kernels (add_relu_forward,
add_relu_backward and the fan-out sums' add) on the team at every size against one thread below each BOUND bytes
per array, alternated step by step; per step the kernels' wall and main-thread CPU, and the whole step's wall and
main-thread CPU. ms per step, medians (docs/perf/threads.md, session 32).

    PYTHONPATH=$PWD python scripts/elementwise_threads_ab.py 40 524289 1048577    # steps per variant, BOUNDs
"""
import os
import sys
import time

os.environ["STEP_THREADS"] = "2"
sys.path.insert(0, os.path.join(os.getcwd(), "scripts"))
import step_cpu_time as S  # noqa: E402
import minigrad  # noqa: E402
from minigrad import kernels  # noqa: E402
from minigrad.allocator import tune_allocator  # noqa: E402

tune_allocator()
minigrad.set_num_threads(2)
steps = int(sys.argv[1]) if len(sys.argv) > 1 else 40
bounds = [int(b) for b in sys.argv[2:]] or [1 << 20]
backend = kernels.kernels()
NAMES = ("add_relu_forward", "add_relu_backward", "add")
raw = {k: getattr(backend.module, k) for k in NAMES}
acc = [0.0, 0.0, 0]


def timed(name, below):
    def f(out, a, b):
        w, c = time.perf_counter(), time.thread_time()
        raw[name](out, a, b, 1 if out.nbytes < below else 2)
        acc[0] += time.perf_counter() - w
        acc[1] += time.thread_time() - c
        acc[2] += 1
    return f


variants = {"team": {k: timed(k, 0) for k in NAMES}, **{f"one<{b}": {k: timed(k, b) for k in NAMES} for b in bounds}}
step = S.build("minigrad", "resnet20")
for _ in range(3):
    step()


def install(fns):
    for k, f in fns.items():
        setattr(backend, k, f)


for k, m in S.alternated(step, variants, install, steps, acc).items():
    print(f"{k:12s} step wall {m[0]:.2f} main cpu {m[1]:.2f} | kernels ({m[4]} a step) wall {m[2]:.3f} "
          f"main cpu {m[3]:.3f}  load {os.getloadavg()[0]:.2f}")
