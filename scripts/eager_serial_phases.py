"""Where the eager step's serial work goes, by phase, against the compiled step's whole: every contract kernel a
no-op (as scripts/serial_eager_compiled.py patches them), the eager ResNet-20 step timed phase by phase (zero_grad +
the model's forward, the loss, backward, the optimizer's step, the loss read back), main-thread CPU, ms a step,
medians; then the compiled step's total in the same process (docs/perf/threads.md, session 38).

    PYTHONPATH=$PWD python scripts/eager_serial_phases.py [THREADS] [--steps 300]
"""
import argparse
import os
import statistics
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("threads", type=int, nargs="?", default=2)
ap.add_argument("--steps", type=int, default=300)
a = ap.parse_args()
os.environ["STEP_THREADS"] = str(a.threads)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
import step_cpu_time as S  # noqa: E402

import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
import minigrad.nn.functional as F  # noqa: E402
from minigrad import models  # noqa: E402
from minigrad.allocator import tune_allocator  # noqa: E402
from minigrad.kernels import contract  # noqa: E402
from minigrad.kernels import cython as cy  # noqa: E402
from minigrad.optim import SGD  # noqa: E402

tune_allocator()
mg.set_num_threads(a.threads)
FILL = [True]


def kernel(*args):
    if FILL[0]:  # NOTE: finite values while the compiled step records and checks itself
        for x in args:
            if type(x) is np.ndarray and x.flags.writeable and x.dtype.kind == "f":
                x.fill(0.5)
            elif type(x) is tuple:
                kernel(*x)


np.seterr(all="ignore")
for name in (*contract.SPECS, *contract.LIST_SPECS):
    if hasattr(cy, name):
        setattr(cy, name, kernel)
compiled = S.build("minigrad-compiled", "resnet20")
mg.manual_seed(0)
net = models.build_model("resnet20", in_channels=S.IN_CHANNELS.get("resnet20", 1))
x, y = S._data(dict(S.CASES)["resnet20"], "resnet20")
xt, yt = mg.Tensor(x), mg.Tensor(y)
opt = SGD(net.parameters(), lr=S.LR, momentum=S.MOMENTUM)


def eager_phases():
    tt = time.thread_time
    c0 = tt()
    opt.zero_grad()
    out = net(xt)
    c1 = tt()
    loss = F.cross_entropy(out, yt)
    c2 = tt()
    loss.backward()
    c3 = tt()
    opt.step()
    c4 = tt()
    float(loss.item())
    c5 = tt()
    return [(c1 - c0) * 1e3, (c2 - c1) * 1e3, (c3 - c2) * 1e3, (c4 - c3) * 1e3, (c5 - c4) * 1e3, (c5 - c0) * 1e3]


for _ in range(4):
    compiled()
    eager_phases()
FILL[0] = False
rows, comp = [], []
for i in range(a.steps):
    rows.append(eager_phases())
    c = time.thread_time()
    compiled()
    comp.append((time.thread_time() - c) * 1e3)
print(f"resnet20, {a.threads} thread(s), every kernel a no-op, {a.steps} steps each, alternated, load "
      f"{' '.join(open('/proc/loadavg').read().split()[:3])}: main-thread CPU, ms a step, median")
for j, name in enumerate(("eager zero_grad + forward", "eager loss", "eager backward", "eager optimizer step",
                          "eager loss read back", "eager step")):
    print(f"  {name:28s} {statistics.median(r[j] for r in rows):6.3f}")
print(f"  {'compiled step':28s} {statistics.median(comp):6.3f}")
