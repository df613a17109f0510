"""Python lines executed in one eager training step (a ``sys.settrace`` count over one step after 5; the Python
that runs, not its cost), in all and for the graph walk's functions, and the walk's order timed alone (timeit, the
best of 7 alternations of 3 repeats of 5000 calls: ``_topological_order`` over the step's loss with its leaves and
without them), for the models of ``benchmarks/bench_end_to_end.py`` (docs/perf/mlp-step.md, session 33). Run it
from each of two trees to compare them (it takes the tree run from: ``cd TREE && PYTHONPATH=$PWD python
OTHER/scripts/eager_step_lines.py``).

    PYTHONPATH=$PWD python scripts/eager_step_lines.py mlp-bn
"""
import collections
import importlib
import inspect
import os
import sys
import timeit

sys.path.insert(0, os.path.join(os.getcwd(), "scripts"))  # NOTE: the tree run from (its step_cpu_time)
model = sys.argv[1] if len(sys.argv) > 1 else "mlp-bn"
import step_cpu_time as S  # noqa: E402  (sets the 1-thread environment; puts benchmarks/ on the path)

import bench_end_to_end as B  # noqa: E402

import minigrad.nn.functional as F  # noqa: E402

T = importlib.import_module("minigrad.tensor")  # NOTE: the module (minigrad.tensor is also a function)
step = S.build("minigrad", model)
for _ in range(5):
    step()
count = collections.Counter()


def trace(frame, event, arg):
    if event == "line":
        count[frame.f_code.co_name] += 1
    return trace


sys.settrace(trace)
step()
sys.settrace(None)
walk = ("_backward_pass", "_walk_arrays", "_topological_order", "_fan_in", "_leaf_array", "_accumulate")
print(f"{model}: {sum(count.values())} lines a step; " + ", ".join(f"{k} {count[k]}" for k in walk))
x, y = B._data(dict(B.CASES)[model], model)
loss = F.cross_entropy(step.net(T.Tensor(x)), T.Tensor(y))
variants = {"with leaves": lambda: T._topological_order([loss])}
if "leaves" in inspect.signature(T._topological_order).parameters:
    variants["nodes only"] = lambda: T._topological_order([loss], leaves=False)
best = {k: float("inf") for k in variants}
for _ in range(7):  # NOTE: the variants alternated, the best of all their repeats
    for k, f in variants.items():
        best[k] = min(best[k], min(timeit.repeat(f, number=5000, repeat=3)) / 5000 * 1e6)
print(f"the loss's graph: {len(T._topological_order([loss]))} tensors in the order; _topological_order, us a call: "
      + ", ".join(f"{k} {v:.2f}" for k, v in best.items()))
