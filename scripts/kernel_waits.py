"""Per call, in the training step at 2 threads: each named kernel's wall time, the main thread's CPU time in it,
and the main thread's wait (wall less its CPU: a worker that started late or finished after it) at the 10th, 50th
and 90th percentile, by the call's first array's shape. us, over STEPS steps after 3 warm ones
(docs/perf/threads.md, session 32).

    PYTHONPATH=$PWD python scripts/kernel_waits.py conv2d_direct_backward,conv2d_direct,add 30   # kernels, STEPS
"""
import os
import sys
import time

os.environ["STEP_THREADS"] = "2"
sys.path.insert(0, os.path.join(os.getcwd(), "scripts"))
import step_cpu_time as S  # noqa: E402

import numpy as np  # noqa: E402

import minigrad  # noqa: E402
from minigrad import kernels  # noqa: E402
from minigrad.allocator import tune_allocator  # noqa: E402

tune_allocator()
minigrad.set_num_threads(2)
backend = kernels.kernels()
calls = {}


def timed(name):
    fn = getattr(backend, name)

    def f(*args):
        w, c = time.perf_counter(), time.thread_time()
        fn(*args)
        calls.setdefault((name, args[0].shape), []).append((time.perf_counter() - w, time.thread_time() - c))
    return f


for name in sys.argv[1].split(","):
    setattr(backend, name, timed(name))
step = S.build("minigrad", "resnet20")
for _ in range(3):
    step()
calls.clear()
for _ in range(int(sys.argv[2]) if len(sys.argv) > 2 else 30):
    step()
print(f"load {os.getloadavg()[0]:.2f}; us a call: wall / main cpu (medians), main thread's wait p10 / p50 / p90")
for (name, shape), v in calls.items():
    v = np.array(v) * 1e6
    wait = v[:, 0] - v[:, 1]
    print(f"{name:24s} {str(shape):18s} x{len(v):4d}  {np.median(v[:, 0]):7.1f} / {np.median(v[:, 1]):7.1f}  "
          f"{np.percentile(wait, 10):5.1f} / {np.median(wait):5.1f} / {np.percentile(wait, 90):6.1f}")
