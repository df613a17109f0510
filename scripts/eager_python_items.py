"""The eager step's serial Python item by item: each piece that runs on the main thread whatever the thread count (the
graph walk, the batch-norm module's state reads, the optimizer's per-parameter loop, ...) timed alone on the step's
own objects (timeit, the best of 7 repeats), times its calls a step (counted over one step), against the step's
main-thread CPU time (median of 9 rounds of 5 steps). The walk is timed on a kept graph whose nodes hand back the
gradients a real backward gave them (a dict lookup each), so what is timed is the walk's own Python; SGD's group call
with its kernel a no-op. ``--no-kernels``: only the step's main-thread CPU time with every contract kernel a no-op
(patched before the first call, so that no cached call keeps the real one): the bound on all the step's serial
work outside kernels (Python, NumPy's calls, the allocator). docs/perf/threads.md, session 35.

    PYTHONPATH=$PWD python scripts/eager_python_items.py 2 [MODEL] [--no-kernels]
"""
import collections
import copy
import importlib
import os
import statistics
import sys
import time
import timeit

NO_KERNELS = "--no-kernels" in sys.argv
args = [a for a in sys.argv[1:] if a != "--no-kernels"]
THREADS = int(args[0]) if args else 2
MODEL = args[1] if len(args) > 1 else "resnet20"
os.environ["STEP_THREADS"] = str(THREADS)
sys.path.insert(0, os.path.join(os.getcwd(), "scripts"))
import step_cpu_time as S  # noqa: E402

import numpy as np  # noqa: E402

import minigrad  # noqa: E402
import minigrad.nn.functional as F  # noqa: E402
from minigrad import kernels  # noqa: E402
from minigrad.allocator import tune_allocator  # noqa: E402
from minigrad.kernels import contract  # noqa: E402
from minigrad.kernels import cython as cy  # noqa: E402
from minigrad.nn import module as M  # noqa: E402
from minigrad.nn import norm as N  # noqa: E402

T = importlib.import_module("minigrad.tensor")  # NOTE: the module (minigrad.tensor is also a function)
tune_allocator()
minigrad.set_num_threads(THREADS)


def noop(*a, **k):
    return None


if NO_KERNELS:  # NOTE: the outputs are np.empty's garbage: NumPy's warnings on it are not this script's
    np.seterr(all="ignore")
    for name in (*contract.SPECS, *contract.LIST_SPECS):
        if hasattr(cy, name):
            setattr(cy, name, noop)
step = S.build("minigrad", MODEL)
cl = {n: c.cell_contents for n, c in zip(step.fn.__code__.co_freevars, step.fn.__closure__)}
net, opt = step.net, cl["opt"]
for _ in range(5):
    step()


def best(f, number):
    return min(timeit.repeat(f, number=number, repeat=7)) / number * 1e6


rounds = []
for _ in range(9):
    c = time.thread_time()
    for _ in range(5):
        step()
    rounds.append((time.thread_time() - c) / 5 * 1e6)
step_us = statistics.median(rounds)
if NO_KERNELS:
    sys.exit(print(f"{MODEL}, {THREADS} thread(s), every kernel a no-op, load "
                   f"{' '.join(open('/proc/loadavg').read().split()[:3])}: main-thread CPU {step_us / 1e3:.2f} ms a "
                   f"step (rounds {min(rounds) / 1e3:.2f}-{max(rounds) / 1e3:.2f})"))

# calls a step: the module reads that reach Module.__getattr__, and the walk's sizes
reads = collections.Counter()
getattr_fn = M.Module.__getattr__


def counted(self, name):
    reads[type(self).__name__] += 1
    return getattr_fn(self, name)


calls = collections.Counter()
module_call = M.Module.__call__


def counted_call(self, *a, **k):
    calls[type(self).__name__] += 1
    return module_call(self, *a, **k)


M.Module.__getattr__, M.Module.__call__ = counted, counted_call
step()
M.Module.__getattr__, M.Module.__call__ = getattr_fn, module_call
n_reads, n_calls = sum(reads.values()), sum(calls.values())

x, y = S._data(dict(S.CASES)[MODEL], MODEL)
xt, yt = T.Tensor(x), T.Tensor(y)
loss = F.cross_entropy(net(xt), yt)
order = T._topological_order([loss], leaves=False)
leaves = [p for p in net.parameters()]
given = {}  # node class -> its own backward (and backward_sum), put back once the walk is timed
for node in order:
    ctx = node._ctx
    for name in ("backward", "backward_sum"):
        fn = getattr(type(ctx), name, None)
        if fn is not None and name not in given.get(type(ctx), {}):
            given.setdefault(type(ctx), {})[name] = fn
recorded = {}  # id(node) -> what its backward returned in a real walk


def recording(name):
    def f(self, *g):
        out = given[type(self)][name](self, *g)
        recorded[id(self)] = out
        return out
    return f


for cls, fns in given.items():
    for name in fns:
        setattr(cls, name, recording(name))
loss.backward(retain_graph=True)


def replay(self, *g):
    return recorded[id(self)]


for cls, fns in given.items():
    for name in fns:
        setattr(cls, name, replay)
seed = np.ones((), loss.data.dtype)


def walk():
    for p in leaves:
        p.grad = None
    T._walk_arrays(order, {loss: seed}, [loss], True, {id(seed)})


ctxs = [node._ctx for node in order]
# NOTE: less the replay's own calls (a Python frame and a lookup a node) and the leaves' reset
walk_us = (best(walk, 200) - best(lambda: [replay(c, None) for c in ctxs], 200)
           - best(lambda: [setattr(p, "grad", None) for p in leaves], 200))
# NOTE: the walk's fan-out sums where the receiving node has no backward_sum (ResNet-20: the stem's BN + ReLU
# output, the first block's input), timed apart: an array pass (the add kernel at 2 threads), not Python
sums = []
sum_grads = T._sum_grads


def counting_sum(prev, pg):
    sums.append((prev, pg))
    return sum_grads(prev, pg)


T._sum_grads = counting_sum
walk()
T._sum_grads = sum_grads
sums_us = sum(best(lambda: sum_grads(a, b), 50) for a, b in sums)
for cls, fns in given.items():
    for name, fn in fns.items():
        setattr(cls, name, fn)
topo_us = best(lambda: T._topological_order([loss], leaves=False), 500)

bns = [m for m in net.modules() if type(m) in N._PLAIN_BATCH_NORMS]
bn = copy.deepcopy(bns[0])
bx = T.Tensor(np.ones((2, bn.num_features) + (2,) * (max(bn._ndims) - 2), np.float32))
count = bn.num_batches_tracked


class Same(T.Function):
    def forward(self, x):
        return x


class Plain(M.Module):
    def forward(self, x):
        return x


plain, leaf = Plain(), leaves[0]

rows = [
    ("graph walk (_walk_arrays, its Python)", walk_us - sums_us, 1),
    (f"the walk's fan-out sums ({', '.join(str(a.size) for a, _ in sums) or 'none'} elements)", sums_us, 1),
    ("_topological_order", topo_us, 1),
    ("Function.apply (forward gives its input back)", best(lambda: Same.apply(leaf), 20000), len(order)),
    ("Module.__call__ (forward gives its input back)", best(lambda: plain(leaf), 20000), n_calls),
    ("BatchNorm _forward (fn a no-op)", best(lambda: bn._forward(bx, noop), 5000), len(bns)),
    ("  of it: _table_state", best(lambda: bn._table_state(N._PLAIN_BATCH_NORMS, N._BATCH_NORM_STATE), 5000),
     len(bns)),
    ("  of it: _average_factor", best(lambda: bn._average_factor(count), 5000), len(bns)),
    ("Module.__getattr__ (a parameter read)", best(lambda: bn.weight, 20000), n_reads),
    ("zero_grad", best(opt.zero_grad, 2000), 1),
]
group = opt._groups.get(0)
if group is not None:
    opt._groups[0] = group[:5] + (noop,) + group[6:]
    params = opt.param_groups[0]
    backend, threads = kernels.kernels(), kernels.get_num_threads()
    F.cross_entropy(net(xt), yt).backward()  # NOTE: gradients again (the walk's timing left them None)
    assert opt._group_call(0, params, backend, threads), "the group call did not run: nothing to time"
    rows.append(("SGD._group_call (kernel a no-op)", best(lambda: opt._group_call(0, params, backend, threads), 500),
                 1))
    opt._groups[0] = group
print(f"{MODEL}, {THREADS} thread(s), load {' '.join(open('/proc/loadavg').read().split()[:3])}: main-thread CPU "
      f"{step_us / 1e3:.2f} ms a step; {len(order)} nodes walked, {len(leaves)} leaves; Module.__getattr__ reads "
      f"a step by class: {dict(reads)}")
print(f"{'item':44s} {'us a call':>10s} {'calls':>6s} {'us a step':>10s}")
total = 0.0
for name, us, n in rows:
    print(f"{name:44s} {us:10.2f} {n:6d} {us * n:10.1f}")
    # NOTE: the indented rows are parts of the row above; the fan-out sums are an array pass, not Python
    total += 0 if name.startswith("  ") or "fan-out" in name else us * n
print(f"{'the Python items (not the sums)':44s} {'':10s} {'':6s} {total:10.1f}  ({total / step_us * 100:.2f}% of the "
      f"step)")
