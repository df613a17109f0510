"""The command line and the timing table shared by the norm family's one-call A/B scripts (batch_renorm_ab.py,
batch_renorm_backward_ab.py, evonorm_b0_eval_backward_ab.py): a "new" minigrad variant against the "before" one it
replaced and torch's ops, per dtype, bench_norm_family's shapes and op ("forward", "backward", "fwd+bwd"). Each
variant runs once and new's results are checked against before's, then each round times every variant once (a batch
of calls, CPU time) in an order rotated each round, ratios paired within a round, medians (the minimum in brackets).
Not a script: the three import it.
"""
import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "benchmarks"))
sys.path.insert(0, HERE)
from norm_family_ab import interleaved_times  # noqa: E402


def ab_arguments(doc, ops=("backward", "fwd+bwd"), dtypes=("float32", "float64"), bits=True):
    """The A/B scripts' command line, parsed; ``--skip-bits`` only where the script checks bits first."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--ops", nargs="+", default=list(ops))
    ap.add_argument("--dtypes", nargs="+", default=list(dtypes))
    ap.add_argument("--target-ms", type=float, default=20.0, help="CPU time per variant per round")
    if bits:
        ap.add_argument("--skip-bits", action="store_true")
    return ap.parse_args()


def rotated_times(runs, rounds, target_ms, clock):
    """norm_family_ab.interleaved_times one round at a time, the order of the variants rotated each round, so each
    follows each other one equally often (in a fixed order the variant right after torch's found x and dy evicted)."""
    names, times = list(runs), {v: [] for v in runs}
    for i in range(rounds):
        order = names[i % len(names):] + names[:i % len(names)]
        for v, t in interleaved_times({v: runs[v] for v in order}, 1, target_ms, clock).items():
            times[v].append(t[0])
    return {v: np.array(x) for v, x in times.items()}


def print_times(op, dtype, shape, t):
    """One table row of ``rotated_times``' {"new", "before", "torch"}: medians (minimum), ratios paired by round."""
    fmt = lambda s: f"{s * 1e6:.1f} us" if s < 1e-3 else f"{s * 1e3:.2f} ms"  # noqa: E731
    cell = lambda v: f"{fmt(float(np.median(t[v])))} ({fmt(float(t[v].min()))})"  # noqa: E731
    ratio = lambda p, q: f"{float(np.median(t[q] / t[p])):.2f}x"  # noqa: E731
    print(f"| {op} | {dtype} | {'x'.join(map(str, shape))} | {cell('new')} | {cell('before')} | {cell('torch')} | "
          f"{ratio('new', 'before')} | {ratio('new', 'torch')} | {ratio('before', 'torch')} |", flush=True)


def swapped(run, owner, name, value):
    """run() with ``owner.name`` set to ``value`` while it runs (the "before" variant's code swapped in per call)."""
    def run_swapped():
        real = getattr(owner, name)
        setattr(owner, name, value)
        try:
            run()
        finally:
            setattr(owner, name, real)
    return run_swapped


def bench_variants(module, dtype, shape, op, before):
    """bench_norm_family's case of nn ``module`` on its arrays of ``shape`` in ``dtype``: {"new": (run, result),
    "before": the same with run wrapped by ``before(run)``, "torch": torch's ops}, as ``time_table`` takes them."""
    import torch

    import bench_norm_family as bench
    bench.DTYPE = np.dtype(dtype).type
    a = bench._arrays(shape)
    run, result = bench._minigrad(module, a, op)
    return {"new": bench._minigrad(module, a, op), "before": (before(run), result),
            "torch": bench._torch(torch, module, a, op)}


def time_table(args, variants, check=np.testing.assert_array_equal):
    """For each dtype of ``args.dtypes``, shape of bench_norm_family.SHAPES and op of ``args.ops``: ``variants(dtype,
    shape, op)`` gives {"new": (run, result), "before": ..., "torch": ...}; each runs once, ``check(got, want)`` on
    each pair of new's and before's results, then the rounds are timed and the row printed. At ``args.threads``
    (minigrad and torch), with the load average before and after."""
    import torch

    import bench_norm_family as bench
    from conftest import pin_threads
    pin_threads(args.threads)
    torch.set_num_threads(args.threads)
    print(f"threads {args.threads}, {args.rounds} rounds, CPU time; load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("| op | dtype | shape | new | before | torch ops | new vs before | new vs torch | before vs torch |")
    print("|---|---|---|---|---|---|---|---|---|")
    for dtype in args.dtypes:
        for shape in bench.SHAPES:
            for op in args.ops:
                runs, results = {}, {}
                for v, (run, result) in variants(dtype, shape, op).items():
                    run()
                    runs[v], results[v] = run, result()
                for got, want in zip(results["new"], results["before"]):
                    check(got, want)
                print_times(op, dtype, shape, rotated_times(runs, args.rounds, args.target_ms, time.process_time))
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
