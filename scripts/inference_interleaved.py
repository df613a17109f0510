"""Batch-1 inference latency of minigrad (unfused, fused, and fused under ``minigrad.compile``) and PyTorch (fused, inference_mode) timed alternately
in one process at 1 thread, round by round, so both see the same moments of a noisy machine; prints the 10th
percentile and the median of each and their ratios. The models, weights and checks are those of
benchmarks/bench_inference.py (one process holds both libraries here: at 1 thread their two OpenMP runtimes do
not meet).

    python scripts/inference_interleaved.py [--models mlp resnet20] [--batch 1] [--rounds 400]

``--epilogue``: instead, minigrad fused with the ReLUs left as modules (``fuse_model(model, relu=False)``: the batch
norms folded only) against fused with each ReLU after a conv or linear layer as that layer's epilogue
(``fuse_model(model)``), eager and under ``minigrad.compile``, in CPU time (``time.process_time``).

    python scripts/inference_interleaved.py --epilogue [--batch 64]
"""
import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import numpy as np  # noqa: E402


def main(argv=None):
    import bench_inference as B

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=B.MODELS, choices=B.MODELS)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--rounds", type=int, default=400, help="rounds at batch 1 (fewer for larger batches)")
    p.add_argument("--epilogue", action="store_true", help="fold only against fold + ReLU epilogue (CPU time)")
    a = p.parse_args(argv)
    if a.epilogue:
        return epilogue(B, a)
    import torch

    import minigrad as mg
    from conftest import pin_threads

    pin_threads(1)
    torch.set_num_threads(1)
    print(f"load average (1, 5, 15 min) at the start: {os.getloadavg()}")
    print("| model | batch | minigrad p10 / median | minigrad fused p10 / median | fused + compile p10 / median | "
          "torch p10 / median | torch / fused p10 | torch / fused median | torch / compiled p10 | "
          "torch / compiled median |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in a.models:
        x = B._input(name, a.batch)
        want = B.reference(name, x)
        runs = {"minigrad": B._minigrad_runner(name, x, False)[0], "fused": B._minigrad_runner(name, x, True)[0],
                "compiled": B._minigrad_runner(name, x, True, compiled=True)[0], "torch": B._torch_runner(name, x)[0]}
        p10, med = _interleaved(runs, want, max(5, a.rounds // a.batch), time.perf_counter)
        cell = lambda k: f"{p10[k] * 1e6:.0f} / {med[k] * 1e6:.0f} us"  # noqa: E731
        print(f"| {name} | {a.batch} | {cell('minigrad')} | {cell('fused')} | {cell('compiled')} | {cell('torch')} | "
              f"{p10['torch'] / p10['fused']:.2f}x | {med['torch'] / med['fused']:.2f}x | "
              f"{p10['torch'] / p10['compiled']:.2f}x | {med['torch'] / med['compiled']:.2f}x |", flush=True)
    print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")
    return 0


def _interleaved(runs, want, rounds, clock):
    """Check every run's output against ``want``, then time them round by round with ``clock``: (p10, median) per
    run, in seconds."""
    for k, run in runs.items():
        np.testing.assert_allclose(np.asarray(run(), np.float64), want, rtol=1e-4, atol=1e-4, err_msg=k)
    ts = {k: [] for k in runs}
    for _ in range(rounds):
        for k, run in runs.items():
            t = clock()
            run()
            ts[k].append(clock() - t)
    return {k: np.percentile(v, 10) for k, v in ts.items()}, {k: np.median(v) for k, v in ts.items()}


def epilogue(B, a):
    """Fold only against fold + ReLU epilogue, eager and compiled, interleaved round by round, CPU time."""
    from conftest import pin_threads

    pin_threads(1)
    print(f"load average (1, 5, 15 min) at the start: {os.getloadavg()}")
    print("| model | batch | folded p10 / median | + ReLU epilogue p10 / median | folded / epilogue median | "
          "folded compiled p10 / median | epilogue compiled p10 / median | folded / epilogue compiled median |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in a.models:
        x = B._input(name, a.batch)
        want = B.reference(name, x)
        runs = {"folded": B._minigrad_runner(name, x, True, relu=False)[0],
                "epilogue": B._minigrad_runner(name, x, True)[0],
                "folded-c": B._minigrad_runner(name, x, True, compiled=True, relu=False)[0],
                "epilogue-c": B._minigrad_runner(name, x, True, compiled=True)[0]}
        p10, med = _interleaved(runs, want, max(5, a.rounds // a.batch), time.process_time)
        cell = lambda k: f"{p10[k] * 1e6:.0f} / {med[k] * 1e6:.0f} us"  # noqa: E731
        print(f"| {name} | {a.batch} | {cell('folded')} | {cell('epilogue')} | {med['folded'] / med['epilogue']:.2f}x "
              f"| {cell('folded-c')} | {cell('epilogue-c')} | {med['folded-c'] / med['epilogue-c']:.2f}x |",
              flush=True)
    print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
