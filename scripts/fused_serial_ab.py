"""The fused BN+ReLU node's serial work outside its kernel calls (F.batch_norm_relu's forward through
apply_with_ctx and the running-statistics update, then the node's backward), this tree's fused.py,
kernels/coefficients.py and app/models.py's BasicBlock.forward against another tree's, loaded side by side in one
process. Every contract kernel is a no-op (patched before the backend caches them; the statistics and sums filled
with 0.5), so what is timed is all that runs on the main thread outside the kernels, at any thread count:
main-thread CPU time (``time.thread_time``), old and new alternated over ROUNDS, median and quartiles, us a step
(docs/perf/threads.md, session 35). By default ResNet-20's ten fused nodes alone (batch 32: the stem's and the first
BN of each block; forward and backward, REPS steps a round); with ``--step`` the whole ResNet-20 training step
(old: the base tree's F.batch_norm_relu and BasicBlock.forward put in place, with ``--only fused`` or ``--only
block`` one of the two; REPS steps a round).

    PYTHONPATH=$PWD python scripts/fused_serial_ab.py [BASE_TREE] [--rounds 15] [--reps 200] [--dtype float32]
    PYTHONPATH=$PWD python scripts/fused_serial_ab.py [BASE_TREE] --step [--only fused|block] [--rounds 15] [--reps 10]
"""
import argparse
import importlib.util
import os
import statistics
import sys
import time

import numpy as np

from minigrad.kernels import contract
from minigrad.kernels import cython as cy

p = argparse.ArgumentParser()
p.add_argument("base", nargs="?", default="/work/main")
p.add_argument("--rounds", type=int, default=15)
p.add_argument("--reps", type=int, default=200)
p.add_argument("--dtype", default="float32")
p.add_argument("--step", action="store_true")
p.add_argument("--only", choices=("fused", "block"))
args = p.parse_args()



def noop(*a):
    pass


def sums(s0, s1, *a):  # NOTE: finite statistics and sums, so that the coefficients' NumPy meets no overflow
    s0.fill(0.5)
    s1.fill(0.5)


for name in (*contract.SPECS, *contract.LIST_SPECS):  # NOTE: before the backend caches them
    setattr(cy, name, sums if name in ("channel_stats", "channel_backward_sums_relu") else noop)

import minigrad as mg  # noqa: E402
from minigrad.app import models  # noqa: E402
from minigrad.nn import functional as F  # noqa: E402
from minigrad.nn.functional import fused as new_fused  # noqa: E402


def load(name, path, package):
    spec = importlib.util.spec_from_file_location(f"{package}.{name}", path)
    mod = importlib.util.module_from_spec(spec)
    mod.__package__ = package
    spec.loader.exec_module(mod)
    return mod


old_coef = load("_old_coefficients", f"{args.base}/minigrad/kernels/coefficients.py", "minigrad.kernels")
old_fused = load("_old_fused", f"{args.base}/minigrad/nn/functional/fused.py", "minigrad.nn.functional")
old_fused.coefficients = old_coef
old_models = load("_old_models", f"{args.base}/minigrad/app/models.py", "minigrad.app")

dt = np.dtype(args.dtype)
rng = np.random.default_rng(0)
SHAPES = [(32, 16, 32, 32)] * 4 + [(32, 32, 16, 16)] * 3 + [(32, 64, 8, 8)] * 3  # ResNet-20's fused nodes
nodes = []
for shape in SHAPES:
    c = shape[1]
    x = mg.Tensor(rng.standard_normal(shape).astype(dt), requires_grad=True)
    w = mg.Tensor(rng.uniform(0.5, 1.5, c).astype(dt), requires_grad=True)
    b = mg.Tensor(rng.standard_normal(c).astype(dt), requires_grad=True)
    rm, rv = mg.Tensor(np.zeros(c, dt)), mg.Tensor(np.ones(c, dt))
    nodes.append((x, rm, rv, w, b, rng.standard_normal(shape).astype(dt)))


def forwards(mod):
    return [mod.batch_norm_relu(x, rm, rv, w, b, True, 0.1, 1e-5)._ctx for x, rm, rv, w, b, _ in nodes]


def backwards(ctxs):
    for ctx, node in zip(ctxs, nodes):
        ctx.backward(node[-1])


def timed(mod):  # NOTE: the forwards, then the backwards of the last step's nodes, each REPS times: (us, us) a step
    c = time.thread_time()
    for _ in range(args.reps):
        ctxs = forwards(mod)
    c1 = time.thread_time()
    for _ in range(args.reps):
        backwards(ctxs)
    return (c1 - c) / args.reps * 1e6, (time.thread_time() - c1) / args.reps * 1e6


if args.step:
    sys.path.insert(0, "scripts")
    import step_cpu_time as S
    np.seterr(all="ignore")  # NOTE: the other kernels' outputs are np.empty's garbage
    step = S.build("minigrad", "resnet20")
    fused_fn = {old_fused: old_fused.batch_norm_relu, new_fused: new_fused.batch_norm_relu}
    block_forward = {old_fused: old_models.BasicBlock.forward, new_fused: models.BasicBlock.forward}
    if args.only == "block":
        fused_fn[old_fused] = new_fused.batch_norm_relu
    if args.only == "fused":
        block_forward[old_fused] = models.BasicBlock.forward

    def timed(mod):  # noqa: F811
        F.batch_norm_relu, models.BasicBlock.forward = fused_fn[mod], block_forward[mod]
        c = time.thread_time()
        for _ in range(args.reps):
            step()
        return ((time.thread_time() - c) / args.reps * 1e6,)


for mod in (old_fused, new_fused):
    timed(mod)
res = {"old": [], "new": []}
for r in range(args.rounds):
    order = (("old", old_fused), ("new", new_fused)) if r % 2 == 0 else (("new", new_fused), ("old", old_fused))
    for label, mod in order:
        res[label].append(timed(mod))


def q(v):
    a, m, b = statistics.quantiles(v, n=4)
    return f"{m:7.1f} ({a:.1f}-{b:.1f})"


what = (f"the ResNet-20 step, {args.only or 'both'} changed" if args.step
        else f"{args.dtype}: 10 nodes, forward + backward")
print(f"{args.rounds} rounds of {args.reps} steps, load {os.getloadavg()[0]:.2f}; us a step ({what}), "
      f"median (quartiles)")
parts = ["step"] if args.step else ["forward", "backward", "both"]
for label in ("old", "new"):
    rows = [r + (sum(r),) if not args.step else r for r in res[label]]
    res[label] = rows
    print(f"{label}  " + "  ".join(f"{p} {q([r[i] for r in rows])}" for i, p in enumerate(parts)))
print("new/old, % " + "  ".join(f"{p} {q([n[i] / o[i] * 100 for n, o in zip(res['new'], res['old'])])}"
                                for i, p in enumerate(parts)))
