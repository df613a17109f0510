"""In one process, the training step with the fan-out sum handed to add + ReLU's backward (``new``:
``_AddReLU.backward_sum``, one add_relu_backward_sum pass) against the old sum (``old``: Function's backward_sum,
None, so the walk sums with the add kernel, or NumPy's add at 1 thread, and the node's backward makes its own pass),
at each thread count given, alternated step by step (the order reversed every other step). ms a step, medians and
the spread (p10-p90) of the step's wall and main-thread CPU, of their paired differences (new - old of one step
index, run next to each other), and of the walk's sums and add + ReLU's backward kernels (``_sum_grads``,
add_relu_backward, add_relu_backward_sum: wall and main-thread CPU). old and new each train their own model from the
same seed; at the end their parameters, gradients and buffers must be the same bits (docs/perf/threads.md, session
33).

    PYTHONPATH=$PWD python scripts/fanout_step_ab.py minigrad 40 1 2      # framework, steps a variant, threads
    PYTHONPATH=$PWD python scripts/fanout_step_ab.py minigrad-compiled 40 1 2

MODEL=lenet-bn in the environment runs another model of benchmarks/bench_end_to_end.py (default resnet20).
"""
import importlib
import os
import statistics
import sys
import time

FRAMEWORK, STEPS, THREADS = sys.argv[1], int(sys.argv[2]), [int(t) for t in sys.argv[3:]] or [2]
MODEL = os.environ.get("MODEL", "resnet20")
os.environ["STEP_THREADS"] = str(max(THREADS))
sys.path.insert(0, os.path.join(os.getcwd(), "scripts"))
import step_cpu_time as S  # noqa: E402

import minigrad  # noqa: E402
from minigrad import kernels  # noqa: E402
from minigrad.allocator import tune_allocator  # noqa: E402
from minigrad.nn.functional.fused import _AddReLU  # noqa: E402
from minigrad.tensor import Function  # noqa: E402

tune_allocator()
acc = [0.0, 0.0, 0]


def timed(fn):
    def f(*args):
        w, c = time.perf_counter(), time.thread_time()
        out = fn(*args)
        acc[0] += time.perf_counter() - w
        acc[1] += time.thread_time() - c
        acc[2] += 1
        return out
    return f


# NOTE: the walk's sum by its function (the add kernel, or NumPy's add at 1 thread), looked up on each call, as the
# replay's (minigrad.compile takes it from the module when it records); the node's kernels from the backend
tensor = importlib.import_module("minigrad.tensor")  # NOTE: the module (minigrad.tensor is also a function)
tensor._sum_grads = timed(tensor._sum_grads)
backend = kernels.kernels()
for name in ("add_relu_backward", "add_relu_backward_sum"):
    setattr(backend, name, timed(getattr(backend, name)))

new_sum = _AddReLU.backward_sum


def install(which, threads):
    _AddReLU.backward_sum = new_sum if which == "new" else Function.backward_sum
    minigrad.set_num_threads(threads)


steps = {}
for which in ("old", "new"):
    install(which, max(THREADS))
    steps[which] = S.build(FRAMEWORK, MODEL)
    for t in THREADS:  # NOTE: warm-up, and minigrad.compile's recording and check at each thread count
        install(which, t)
        for _ in range(3):
            steps[which]()
variants = [(w, t) for t in THREADS for w in ("old", "new")]
rows = {v: [] for v in variants}
for i in range(STEPS):
    for v in (variants if i % 2 == 0 else variants[::-1]):
        install(*v)
        acc[:] = [0.0, 0.0, 0]
        w, c = time.perf_counter(), time.thread_time()
        steps[v[0]]()
        rows[v].append((time.perf_counter() - w, time.thread_time() - c, acc[0], acc[1], acc[2]))


def spread(xs):
    q = statistics.quantiles([x * 1e3 for x in xs], n=10)
    return f"{statistics.median(xs) * 1e3:.2f} ({q[0]:.2f}-{q[-1]:.2f})"


print(f"{FRAMEWORK} {MODEL}, {STEPS} steps a variant, load {os.getloadavg()[0]:.2f}; ms a step, median (p10-p90)")
for (which, t), r in rows.items():
    print(f"{which} {t} thread(s): step wall {spread([x[0] for x in r])} main cpu {spread([x[1] for x in r])} | "
          f"sums and add + ReLU backwards ({r[-1][4]} calls) wall {spread([x[2] for x in r])} "
          f"main cpu {spread([x[3] for x in r])}")
for t in THREADS:
    o, n = (statistics.median(x[0] for x in rows[(w, t)]) for w in ("old", "new"))
    # NOTE: the pairs of one step index ran next to each other: their differences leave out the load's drift
    pairs = [[b[j] - a[j] for a, b in zip(rows[("old", t)], rows[("new", t)])] for j in (0, 1)]
    print(f"{t} thread(s): new/old step wall {n / o:.3f}; new - old paired by step, wall {spread(pairs[0])} "
          f"main cpu {spread(pairs[1])}")
if len(THREADS) > 1:
    for which in ("old", "new"):
        one, two = (statistics.median(x[0] for x in rows[(which, t)]) for t in (min(THREADS), max(THREADS)))
        print(f"{which}: {min(THREADS)} thread(s) / {max(THREADS)} threads by the step's wall {one / two:.3f}")
nets = [steps[w].net for w in ("old", "new")]
same = all(a.data.tobytes() == b.data.tobytes() and a.grad.data.tobytes() == b.grad.data.tobytes()
           for a, b in zip(nets[0].parameters(), nets[1].parameters()))
same = same and all(a.tobytes() == b.tobytes() for a, b in zip(nets[0].state_dict().values(),
                                                                 nets[1].state_dict().values()))
print("old and new the same bits (parameters, gradients, buffers):", same)
