"""CPU time of each top-level line of a replayed step, measured inside the step (thread CPU time read between the
lines of the generated replay function; a block is counted with the line after it), summed over STEPS steps:

    PYTHONPATH=$PWD python scripts/replay_line_times.py mlp-bn [--steps 1000] [--top 40]

"(the call)" is the time from the step's call to the replay function's first line (``Compiled.__call__``: the
argument check and the guard). Unlike ``compile_ab.py --calls`` (which times each function called), this shows what a
line costs where it runs in the step, after the GEMMs have had the caches; each timer read adds about 0.1-1 us.
"""
import argparse
import builtins
import os
import sys
import time

for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "MINIGRAD_NUM_THREADS"):
    os.environ[k] = "1"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import step_cpu_time  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model", choices=["mlp", "mlp-bn", "lenet-bn", "resnet20"])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--top", type=int, default=40)
    a = p.parse_args()
    import minigrad
    from minigrad.allocator import tune_allocator
    tune_allocator()
    minigrad.set_num_threads(1)
    step = step_cpu_time.build("minigrad-compiled", a.model)
    for _ in range(4):  # recorded, checked, replayed
        step()
    (entry,) = [e for es in step.fn._cache.values() for e in es]
    trace = entry.trace
    lines, labels = [], ["(the call)"]
    for line in trace.src.splitlines():
        lines.append(line)
        if line.startswith("def "):
            lines.append("    _T.append(_now())")
        elif (line.startswith("    ") and not line.startswith("     ") and not line.rstrip().endswith(":")
              and not line.strip().startswith("return")):
            labels.append(line.strip()[:80])
            lines.append("    _T.append(_now())")
    marks = trace.ns["_T"] = []
    trace.ns["_now"] = time.thread_time_ns
    exec(builtins.compile("\n".join(lines), "<timed replay>", "exec"), trace.ns)
    trace.replay = trace.ns["replay"]
    total = np.zeros(len(labels))
    for _ in range(a.steps):
        marks.clear()
        marks.append(time.thread_time_ns())
        step()
        total += np.diff(marks)
    per = total / a.steps / 1e3
    print(f"{a.model}: {per.sum():.1f} us a step from the call to the last line, mean of {a.steps} steps (load "
          f"{os.getloadavg()[0]:.2f})")
    for i in np.argsort(-per)[:a.top]:
        print(f"{per[i]:8.2f} us  {labels[i]}")


if __name__ == "__main__":
    main()
