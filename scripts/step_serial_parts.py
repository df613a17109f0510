"""Where the main thread's CPU time goes in one training step at N threads: per ``Function`` subclass (forward and
backward; conv2d also per geometry), the main thread's CPU time in its own code, how much of it ran inside backend
kernel calls, and the rest: the op's Python and NumPy, serial on the main thread at any thread count (its kernels'
share is about 1/N of their work). The step's remainder outside the ops (module calls, the autograd walk with its
fan-out sums, SGD, the loss's glue) likewise. ``time.thread_time``, sums over STEPS steps after 3 warm ones, ms a step
(docs/perf/threads.md, session 32).

    PYTHONPATH=$PWD python scripts/step_serial_parts.py 2 [STEPS] [MODEL]
"""
import os
import sys
import time
from collections import defaultdict

THREADS = int(sys.argv[1]) if len(sys.argv) > 1 else 2
STEPS = int(sys.argv[2]) if len(sys.argv) > 2 else 20
MODEL = sys.argv[3] if len(sys.argv) > 3 else "resnet20"
os.environ["STEP_THREADS"] = str(THREADS)
sys.path.insert(0, os.path.join(os.getcwd(), "scripts"))
import step_cpu_time as S  # noqa: E402

import minigrad  # noqa: E402
from minigrad.allocator import tune_allocator  # noqa: E402
from minigrad.kernels import contract  # noqa: E402
from minigrad.kernels import cython as cy  # noqa: E402
from minigrad.tensor import Function  # noqa: E402

tune_allocator()
minigrad.set_num_threads(THREADS)
in_kernels = [0.0]
own = defaultdict(lambda: [0.0, 0.0, 0])  # label -> [self cpu, kernel cpu within it, calls]
stack = []  # per open op: [child cpu, kernel cpu at entry]


def timed_kernel(fn):
    def f(*args):
        c = time.thread_time()
        try:
            return fn(*args)
        finally:
            in_kernels[0] += time.thread_time() - c
    return f


for name in (*contract.SPECS, *contract.LIST_SPECS):  # NOTE: before the backend caches them (and im2col's raw)
    setattr(cy, name, timed_kernel(getattr(cy, name)))


def label(cls, name, self):
    g = getattr(self, "g", None)
    extra = f" {g.kh}x{g.kw} s{g.stride[0]} {g.C}->{g.O}" if cls.__name__ == "_Conv2d" and g is not None else ""
    return f"{cls.__name__}.{name}{extra}"


def wrap(cls, name):
    fn = cls.__dict__[name]

    def timed(self, *a, **k):
        c0, k0 = time.thread_time(), in_kernels[0]
        stack.append([0.0, 0.0])
        try:
            return fn(self, *a, **k)
        finally:
            dt, dk = time.thread_time() - c0, in_kernels[0] - k0
            child, child_k = stack.pop()
            e = own[label(cls, name, self)]
            e[0] += dt - child
            e[1] += dk - child_k
            e[2] += 1
            if stack:
                stack[-1][0] += dt
                stack[-1][1] += dk
    setattr(cls, name, timed)


def subclasses(c):
    for s in c.__subclasses__():
        yield s
        yield from subclasses(s)


for cls in set(subclasses(Function)):
    for name in ("forward", "backward"):
        if name in cls.__dict__:
            wrap(cls, name)
step = S.build("minigrad", MODEL)
for _ in range(3):
    step()
own.clear()
in_kernels[0] = 0.0
c0 = time.thread_time()
for _ in range(STEPS):
    step()
total = (time.thread_time() - c0) / STEPS * 1e3
ms = {k: [v[0] / STEPS * 1e3, v[1] / STEPS * 1e3, v[2] // STEPS] for k, v in own.items()}
ops, ops_k = sum(v[0] for v in ms.values()), sum(v[1] for v in ms.values())
kern = in_kernels[0] / STEPS * 1e3
print(f"{MODEL}, {THREADS} thread(s), {STEPS} steps, load {os.getloadavg()[0]:.2f}: main thread {total:.2f} ms a step, "
      f"in kernel calls {kern:.2f}, outside them {total - kern:.2f}")
print(f"{'op (calls a step)':44s} {'cpu':>7s} {'kernels':>8s} {'rest':>7s}  ms a step")
for k, (c, kc, n) in sorted(ms.items(), key=lambda kv: -(kv[1][0] - kv[1][1])):
    print(f"{k + f' ({n})':44s} {c:7.3f} {kc:8.3f} {c - kc:7.3f}")
print(f"{'all ops':44s} {ops:7.3f} {ops_k:8.3f} {ops - ops_k:7.3f}")
print(f"{'outside the ops':44s} {total - ops:7.3f} {kern - ops_k:8.3f} {total - ops - kern + ops_k:7.3f}")
