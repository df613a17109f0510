"""A method of benchmarks/bench_norm_family.py against its "before" variant (the same name with a suffix, e.g.
"EvoNormS0 composed") and the torch composition, interleaved in one process: each round times every variant once
(a batch of calls each, CPU time: time.process_time), the rounds alternate, and the ratios are paired within a round
(median over rounds). Results are checked against the torch composition before timing.

    PYTHONPATH=$PWD python scripts/norm_family_ab.py --methods EvoNormS0 EvoNormB0 [--before " composed"]
        [--threads 1] [--dtype float32] [--rounds 15] [--backends cython] [--shapes 16x32x8x8 32x64x16x16] [--ops forward backward]

``--before-file FILE``: the before variant is the same method with the classes of the module file FILE (e.g. an
older checkout's minigrad/nn/decorrelated.py, imported on top of this tree's minigrad) in place of minigrad.nn's of
the same name:

    PYTHONPATH=$PWD python scripts/norm_family_ab.py --methods DecorrelatedBN2d \
        --before-file /work/main/minigrad/nn/decorrelated.py --rounds 9
"""
import contextlib
import importlib.util
import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "benchmarks"))


def interleaved_times(runs, rounds, target_ms, clock):
    """Seconds per call of each of ``runs`` (name -> callable), ``rounds`` rounds that time every run once, a batch
    of about ``target_ms`` of calls each (the batch size from one timed call), by ``clock``: {name: array}."""
    reps = {}
    for v, run in runs.items():
        t0 = time.perf_counter()
        run()
        reps[v] = max(1, int(target_ms / 1e3 / max(time.perf_counter() - t0, 1e-7)))
    times = {v: [] for v in runs}
    for _ in range(rounds):
        for v, run in runs.items():
            t0 = clock()
            for _ in range(reps[v]):
                run()
            times[v].append((clock() - t0) / reps[v])
    return {v: np.array(x) for v, x in times.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", required=True)
    ap.add_argument("--before", default=" composed", help="suffix of the before variant's name (skipped if absent)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--backends", nargs="+", default=["cython"])
    ap.add_argument("--shapes", nargs="+", default=None)
    ap.add_argument("--ops", nargs="+", default=None)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--before-file", default=None, help="module file whose classes replace minigrad.nn's (before)")
    ap.add_argument("--target-ms", type=float, default=20.0, help="CPU time per variant per round")
    args = ap.parse_args()
    import torch

    import bench_norm_family as bench
    import minigrad as mg
    from conftest import pin_threads

    bench.DTYPE = np.dtype(args.dtype).type  # read by bench._arrays and the torch side's tensors
    pin_threads(args.threads)
    torch.set_num_threads(args.threads)
    shapes = bench.SHAPES if args.shapes is None else [tuple(map(int, s.split("x"))) for s in args.shapes]
    ops = args.ops or bench.OPS
    clock = time.process_time
    swapped = {}
    if args.before_file:
        spec = importlib.util.spec_from_file_location("_norm_family_before", args.before_file)
        old = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(old)
        swapped = {k: v for k, v in vars(old).items()
                   if isinstance(v, type) and v.__module__ == old.__name__ and hasattr(mg.nn, k)}

    @contextlib.contextmanager
    def before_classes():
        saved = {k: getattr(mg.nn, k) for k in swapped}
        try:
            for k, v in swapped.items():
                setattr(mg.nn, k, v)
            yield
        finally:
            for k, v in saved.items():
                setattr(mg.nn, k, v)
    print(f"threads {args.threads}, {args.rounds} interleaved rounds, {args.dtype}, CPU time; load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("| backend | method | op | shape | new | before | torch ops | new vs before | new vs torch ops "
          "| before vs torch ops |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    fmt = lambda s: f"{s * 1e6:.1f} us" if s < 1e-3 else f"{s * 1e3:.2f} ms"  # noqa: E731
    for name in args.backends:
        for method in args.methods:
            before = method + args.before
            for shape in shapes:
                a = bench._arrays(shape)
                for op in ops:
                    mg.set_backend(name)
                    variants = {"new": bench._minigrad(method, a, op)}
                    if swapped:
                        with before_classes():
                            variants["before"] = bench._minigrad(method, a, op)
                    elif before in bench.METHODS:
                        variants["before"] = bench._minigrad(before, a, op)
                    variants["torch"] = bench._torch(torch, method, a, op)
                    ref_run, ref = variants["torch"]
                    ref_run()
                    for v in variants:
                        if v == "torch":
                            continue
                        run, result = variants[v]
                        run()
                        for got, want in zip(result(), ref()):
                            np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4 * float(np.abs(want).max()),
                                                       err_msg=f"{method} {v} {op} {shape}")
                    t = interleaved_times({v: run for v, (run, _) in variants.items()}, args.rounds,
                                          args.target_ms, clock)
                    med = {v: float(np.median(x)) for v, x in t.items()}
                    ratio = lambda a, b: (f"{float(np.median(t[b] / t[a])):.2f}x"  # noqa: E731
                                          if a in t and b in t else "-")
                    print(f"| {name} | {method} | {op} | {'x'.join(map(str, shape))} | {fmt(med['new'])} | "
                          f"{fmt(med['before']) if 'before' in med else '-'} | {fmt(med['torch'])} | "
                          f"{ratio('new', 'before')} | {ratio('new', 'torch')} | {ratio('before', 'torch')} |",
                          flush=True)
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
