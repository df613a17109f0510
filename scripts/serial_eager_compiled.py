"""The serial part of ResNet-20's step, eager against ``minigrad.compile``, in one process: every contract kernel a
no-op (patched before the backend caches them), so that what is timed is all the step's work outside the kernels
(Python, NumPy's calls, the allocator), which runs on the main thread alone at any thread count. Both steps are
built (their own nets), run 4 times with the kernels writing 0.5 into every array argument (deterministic, so that
the compiled step's record-and-check passes and it replays), then alternated round by round with the kernels pure
no-ops; main-thread CPU time, ms a step, median (quartiles) over the rounds (docs/perf/threads.md, session 37).

    PYTHONPATH=$PWD python scripts/serial_eager_compiled.py [THREADS] [--rounds 15] [--steps 10] [--model resnet20]
    PYTHONPATH=$PWD python scripts/serial_eager_compiled.py 2 --profile compiled    # where it goes (cProfile)
"""
import argparse
import os
import statistics
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("threads", type=int, nargs="?", default=2)
ap.add_argument("--rounds", type=int, default=15)
ap.add_argument("--steps", type=int, default=10)
ap.add_argument("--model", default="resnet20")
ap.add_argument("--profile", choices=["eager", "compiled"], help="cProfile that step instead (tottime, top 30)")
a = ap.parse_args()
os.environ["STEP_THREADS"] = str(a.threads)
sys.path.insert(0, os.path.join(os.getcwd(), "scripts"))
import step_cpu_time as S  # noqa: E402

import numpy as np  # noqa: E402

import minigrad  # noqa: E402
from minigrad.allocator import tune_allocator  # noqa: E402
from minigrad.kernels import contract  # noqa: E402
from minigrad.kernels import cython as cy  # noqa: E402

tune_allocator()
minigrad.set_num_threads(a.threads)
FILL = [True]


def kernel(*args):
    if FILL[0]:
        for x in args:
            if type(x) is np.ndarray and x.flags.writeable and x.dtype.kind == "f":
                x.fill(0.5)
            elif type(x) is tuple:
                kernel(*x)


np.seterr(all="ignore")  # NOTE: after the warm-up the outputs are np.empty's garbage
for name in (*contract.SPECS, *contract.LIST_SPECS):
    if hasattr(cy, name):
        setattr(cy, name, kernel)
steps = {"eager": S.build("minigrad", a.model), "compiled": S.build("minigrad-compiled", a.model)}
for step in steps.values():
    for _ in range(4):
        step()
assert all(e.trace is not None for es in steps["compiled"].fn._cache.values() for e in es), "not replayed"
FILL[0] = False
if a.profile:
    import cProfile
    import pstats
    pr = cProfile.Profile(time.thread_time)  # NOTE: CPU time: a wall-clock profile charges preemptions to whatever ran
    pr.runcall(lambda: [steps[a.profile]() for _ in range(a.rounds * a.steps)])
    sys.exit(pstats.Stats(pr).sort_stats("tottime").print_stats(30))
rows = {k: [] for k in steps}
for r in range(a.rounds):
    for name in list(steps) if r % 2 == 0 else list(steps)[::-1]:
        c = time.thread_time()
        for _ in range(a.steps):
            steps[name]()
        rows[name].append((time.thread_time() - c) / a.steps * 1e3)
print(f"{a.model}, {a.threads} thread(s), every kernel a no-op, {a.rounds} rounds of {a.steps} steps, load "
      f"{' '.join(open('/proc/loadavg').read().split()[:3])}: main-thread CPU, ms a step, median (quartiles)")
for name, v in rows.items():
    q = statistics.quantiles(v, n=4)
    print(f"  {name:9s} {statistics.median(v):6.3f} ({q[0]:.3f}-{q[2]:.3f})")
ratio = [c / e for e, c in zip(rows["eager"], rows["compiled"])]
print(f"  compiled/eager by rounds {statistics.median(ratio):.3f} ({min(ratio):.3f}-{max(ratio):.3f})")
