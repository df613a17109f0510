"""Time batch-norm (or group-norm) kernels of several backends alternately in one process (A, B, B, A, ...), so
that a noisy machine's slow moments hit every backend alike; prints each backend's median and min and the ratios to
cython.

    python scripts/interleaved_backends.py [--shape 4096 1024 1] [--op forward|inference|backward]
                                           [--backends cython numba] [--rounds 30] [--threads 1] [--groups G]

The raw kernel modules are timed (no argument checks), with n_threads passed as the benchmarks do. The shape is
the kernels' (N, C, S) layout (BatchNorm1d (4096, 1024) is (4096, 1024, 1)); float32. With --groups the group-norm
kernels run instead (LayerNorm (8192, 768) is --shape 8192 768 1 --groups 1; InstanceNorm2d is G = C); inference is
batch norm only.
"""
import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import minigrad.kernels as K  # noqa: E402


def _callables(mod, op, x, dy, w, b, rm, rv, groups, t):
    c = x.shape[1]
    y, dx = np.empty_like(x), np.empty_like(x)
    dw, db = np.empty(c, x.dtype), np.empty(c, x.dtype)
    if groups is not None:
        mean, rstd = np.empty((x.shape[0], groups)), np.empty((x.shape[0], groups))
        mod.group_norm_forward(y, mean, rstd, x, w, b, groups, 1e-5, t)
        if op == "forward":
            return lambda: mod.group_norm_forward(y, mean, rstd, x, w, b, groups, 1e-5, t)
        if op == "backward":
            return lambda: mod.group_norm_backward(dx, dw, db, dy, x, mean, rstd, w, groups, t)
        raise SystemExit("--op inference is batch norm only")
    mean, rstd = np.empty(c), np.empty(c)
    mod.batch_norm_forward(y, mean, rstd, x, w, b, 1e-5, t)
    if op == "forward":
        return lambda: mod.batch_norm_forward(y, mean, rstd, x, w, b, 1e-5, t)
    if op == "inference":
        return lambda: mod.batch_norm_inference(y, x, rm, rv, w, b, 1e-5, t)
    return lambda: mod.batch_norm_backward(dx, dw, db, dy, x, mean, rstd, w, t)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", type=int, nargs=3, default=[4096, 1024, 1])
    p.add_argument("--op", default="forward", choices=("forward", "inference", "backward"))
    p.add_argument("--backends", nargs="+", default=["cython", "numba"])
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--groups", type=int, default=None, help="time group_norm_* with this many groups")
    a = p.parse_args(argv)
    K.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    shape, c = tuple(a.shape), a.shape[1]
    x = rng.standard_normal(shape, dtype=np.float32) * 2 + 0.5
    dy = rng.standard_normal(shape, dtype=np.float32)
    w, b = np.ones(c, np.float32), np.zeros(c, np.float32)
    rm, rv = np.zeros(c, np.float32), np.ones(c, np.float32)
    fs = {name: _callables(K.load(name).module, a.op, x, dy, w, b, rm, rv, a.groups, a.threads)
          for name in a.backends}
    for f in fs.values():
        f()  # warm-up (and Numba's compilation)
    times = {k: [] for k in fs}
    order = list(fs)
    for i in range(a.rounds):
        for k in (order if i % 2 == 0 else order[::-1]):
            t0 = time.perf_counter()
            fs[k]()
            times[k].append(time.perf_counter() - t0)
    ref = times.get("cython")
    for k, ts in times.items():
        line = (f"{a.op} {shape} threads={a.threads} {k:7s} median {np.median(ts) * 1e6:9.1f} us"
                f"  min {min(ts) * 1e6:9.1f} us")
        if ref is not None and k != "cython":
            line += f"  / cython: median {np.median(ts) / np.median(ref):.2f}x, min {min(ts) / min(ref):.2f}x"
        print(line)


if __name__ == "__main__":
    main()
