"""In one process, the training step on this tree's compiled extensions against another build's (OLD_EXT: a
directory holding that build's .so files, e.g. main's), alternated step by step: the Cython backend's kernels from the
named extension modules come from OLD_EXT in the "old" variant. ms per step, medians of the step's wall and
main-thread CPU time, and of the swapped kernels' calls (both variants timed alike) (docs/perf/threads.md,
session 32).

    mkdir /tmp/oldext && cp OLD_TREE/minigrad/_ext/*.so /tmp/oldext/
    PYTHONPATH=$PWD python scripts/ext_step_ab.py /tmp/oldext conv,elementwise 2 40   # threads, steps per variant

MODEL=lenet-bn in the environment runs another model of benchmarks/bench_end_to_end.py (default resnet20).
"""
import os
import sys
import time
import types

OLD_EXT, NAMES = sys.argv[1], sys.argv[2].split(",")
THREADS = int(sys.argv[3]) if len(sys.argv) > 3 else 2
MODEL = os.environ.get("MODEL", "resnet20")
os.environ["STEP_THREADS"] = str(THREADS)
sys.path.insert(0, os.path.join(os.getcwd(), "scripts"))
import step_cpu_time as S  # noqa: E402
from serial_region_ab import load  # noqa: E402

import minigrad  # noqa: E402
from minigrad import kernels  # noqa: E402
from minigrad.allocator import tune_allocator  # noqa: E402
from minigrad.kernels import contract  # noqa: E402
from minigrad.kernels import cython as cy  # noqa: E402

tune_allocator()
minigrad.set_num_threads(THREADS)
acc = [0.0, 0.0, 0]


def timed(fn):
    def f(*args):
        w, c = time.perf_counter(), time.thread_time()
        fn(*args)
        acc[0] += time.perf_counter() - w
        acc[1] += time.thread_time() - c
        acc[2] += 1
    return f


old, new = (types.ModuleType(f"minigrad.kernels.cython_{v}") for v in ("old", "new"))
old.__dict__.update(cy.__dict__)
new.__dict__.update(cy.__dict__)
for name in NAMES:
    m = load(OLD_EXT, name)
    for attr, new_fn in vars(sys.modules[f"minigrad._ext.{name}"]).items():
        if cy.__dict__.get(attr) is new_fn and attr in contract.SPECS:  # a kernel the backend takes from here
            setattr(old, attr, timed(getattr(m, attr)))
            setattr(new, attr, timed(new_fn))
kernels._loaded["old"] = contract.Backend("old", old)
kernels._loaded["new"] = contract.Backend("new", new)


def install(name):
    kernels._state.name = name


install("new")
step = S.build("minigrad", MODEL)
for _ in range(3):
    step()
for k, m in S.alternated(step, {"old": "old", "new": "new"}, install, int(sys.argv[4]) if len(sys.argv) > 4 else 40,
                         acc).items():
    print(f"{k:4s} {THREADS} thread(s): step wall {m[0]:.2f} main cpu {m[1]:.2f} | swapped kernels ({m[4]} calls a "
          f"step) wall {m[2]:.3f} main cpu {m[3]:.3f}  load {os.getloadavg()[0]:.2f}")
