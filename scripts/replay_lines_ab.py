"""Old against new definitions (``scripts/swap_ab.py``'s swap: the old tree's functions or classes, in place while
the old model records and steps) inside the replayed step, step by step alternated, CPU time: the whole step, the
time from the call to the replay function's first line (``Compiled.__call__``: the key and the guard), and the time
in the replay's top-level lines matching LINES (each with the block under it):

    PYTHONPATH=$PWD python scripts/replay_lines_ab.py mlp-bn --tree /tmp/main --swap minigrad.capture:_Trace \\
        [--lines 'REGEX'] [--steps 5000] [--flip]

Two models from the same seed (compile_ab.py's), the old one recorded with the old definitions; their losses must
agree. Step by step, not in blocks (compile_ab.py's rounds): a difference of 5% of the step shows in the medians of
thousands of steps where 200-step blocks on this machine move by more. ``--flip``: the models' roles swapped.
Module-level names the old definitions read that this tree no longer has (an old helper's attrgetter) are defined
from the old tree's top-level assignments first.
"""
import argparse
import ast
import builtins
import importlib
import os
import re
import statistics
import sys
import time

for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "MINIGRAD_NUM_THREADS"):
    os.environ[k] = "1"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import compile_ab  # noqa: E402


def _old_globals(tree, names):
    """The old tree's top-level assignments of the swapped modules whose names this tree's module lacks."""
    for modname in {n.split(":")[0] for n in names}:
        mod = importlib.import_module(modname)
        source = open(os.path.join(tree, *modname.split(".")) + ".py").read()
        for node in ast.parse(source).body:
            if isinstance(node, ast.Assign) and any(
                    not hasattr(mod, t.id) for tgt in node.targets
                    for t in (tgt.elts if isinstance(tgt, ast.Tuple) else [tgt]) if isinstance(t, ast.Name)):
                exec(compile(ast.Module([node], []), modname, "exec"), mod.__dict__)


def _timed(step, lines):
    """The replay of ``step`` rewritten with thread-CPU timers: acc[0] sums the matching lines, acc[1] is the time
    its first line starts."""
    (entry,) = [e for es in step.fn._cache.values() for e in es]
    trace, src, out, i = entry.trace, entry.trace.src.splitlines(), [], 0
    while i < len(src):
        line = src[i]
        if line.startswith("    ") and not line.startswith("     ") and lines.search(line):
            j = i + 1
            while j < len(src) and (src[j].startswith("     ") or src[j].strip() == "else:"):
                j += 1
            out += ["    _c = _now()", *src[i:j], "    _A[0] += _now() - _c"]
            i = j
            continue
        out.append(line)
        if line.startswith("def "):
            out.append("    _A[1] = _now()")
        i += 1
    acc = trace.ns["_A"] = [0, 0]
    trace.ns["_now"] = time.thread_time_ns
    exec(builtins.compile("\n".join(out), "<timed replay>", "exec"), trace.ns)
    trace.replay = trace.ns["replay"]
    return acc


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model", choices=["mlp", "mlp-bn", "lenet-bn", "resnet20"])
    p.add_argument("--tree", required=True, help="the old checkout")
    p.add_argument("--swap", nargs="+", required=True, metavar="NAME", help="module:qualname, as swap_ab.py")
    p.add_argument("--lines", default="^$", help="regex of the top-level replay lines to time (default: none)")
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--flip", action="store_true")
    a = p.parse_args()
    import numpy as np

    import minigrad
    from minigrad.allocator import tune_allocator
    tune_allocator()
    minigrad.set_num_threads(1)
    _old_globals(a.tree, a.swap)
    swap = lambda: compile_ab._swap(a.tree, tuple(a.swap))  # noqa: E731
    old, new = compile_ab.make_step(a.model, True), compile_ab.make_step(a.model, True)
    if a.flip:
        old, new = new, old
    for _ in range(4):  # recorded, checked, replayed
        undo = swap()
        lo = old()
        undo()
        assert lo == new(), "the old and new steps differ"
    lines = re.compile(a.lines)
    accs = {"old": _timed(old, lines), "new": _timed(new, lines)}
    rows = {"old": [], "new": []}
    for i in range(a.steps):
        for name in ("old", "new") if i % 2 == 0 else ("new", "old"):
            undo = swap() if name == "old" else None
            acc = accs[name]
            acc[0] = 0
            c0 = time.thread_time_ns()
            (old if name == "old" else new)()
            c = time.thread_time_ns() - c0
            if undo is not None:
                undo()
            rows[name].append((c / 1e3, (acc[1] - c0) / 1e3, acc[0] / 1e3))
    for name, v in rows.items():
        print(name + ": " + ", ".join(
            f"{what} {statistics.median(x[j] for x in v):.1f} us (quartiles {np.percentile([x[j] for x in v], 25):.1f}"
            f"-{np.percentile([x[j] for x in v], 75):.1f})" for j, what in enumerate(("step", "call", "lines"))))
    print(f"{a.model}: medians of {a.steps} steps each, alternated step by step, thread CPU time; load "
          f"{os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
