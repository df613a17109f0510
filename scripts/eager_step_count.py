"""Instruction counts of the eager MLP-BN step (or its SGD.step alone) under callgrind: 30 warm-up steps, then 10
calls inside ``itertools.starmap``, the only code callgrind counts with ``--toggle-collect=starmap_next``:

    PYTHONHASHSEED=0 PYTHONPATH=$PWD valgrind --tool=callgrind --collect-atstart=no --toggle-collect=starmap_next \
        --callgrind-out-file=/tmp/cg.out python scripts/eager_step_count.py [step|sgd]

(the total divided by 10 is one call's count; run it from the tree to count, with that tree on PYTHONPATH).
"""
import itertools
import os
import sys

for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "MINIGRAD_NUM_THREADS"):
    os.environ[k] = "1"
what = sys.argv[1] if len(sys.argv) > 1 else "step"
sys.argv = sys.argv[:1]
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gc  # noqa: E402

import step_cpu_time  # noqa: E402

import minigrad  # noqa: E402
from minigrad.optim import SGD  # noqa: E402

minigrad.set_num_threads(1)
step = step_cpu_time.build("minigrad", "mlp-bn")
for _ in range(30):
    step()
opt, = [o for o in gc.get_objects() if isinstance(o, SGD)]
f = {"step": step, "sgd": opt.step}[what]
for _ in itertools.starmap(f, [()] * 10):
    pass
