"""BatchNorm1d kernels of another build against this tree's, in one process at 1 thread: the raw Cython
``batch_norm_forward``, ``batch_norm_backward`` and ``running_stats_update`` (CPU time per call, old and new
interleaved, medians, and their outputs compared bit for bit), then the MLP-BN training step (eager and
``minigrad.compile``) with the three kernels swapped between steps (scripts/step_cpu_time.alternated):

    cp /work/main/minigrad/_ext/norm.cpython-311-x86_64-linux-gnu.so /tmp/old_norm/   # before rebuilding
    PYTHONPATH=$PWD python scripts/bn1d_ab.py /tmp/old_norm/norm.cpython-311-x86_64-linux-gnu.so \
        [--shapes 60,100 600,100] [--rounds 9] [--steps 200] [--no-step] [--bits]

``--bits`` compares instead every output of the two builds over N in 1..70 and C in 1..130 (the lists of
tests/test_batchnorm1d_bits.py), normal and large-mean data, float32 and float64, at 1 and 2 threads.

The old extension is loaded under another module name (its own copy of the C, so both can be timed side by side).
"""
import argparse
import importlib.machinery
import importlib.util
import os
import statistics
import sys
import time

for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "MINIGRAD_NUM_THREADS"):
    os.environ[k] = "1"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

KERNELS = ("batch_norm_forward", "batch_norm_backward", "running_stats_update")


def load_old(path):
    # NOTE: this tree's extension first: the old copy then gets its own module state
    from minigrad._ext import norm as new
    loader = importlib.machinery.ExtensionFileLoader("old_build.norm", path)
    old = importlib.util.module_from_spec(importlib.util.spec_from_loader("old_build.norm", loader))
    loader.exec_module(old)
    assert old is not new and old.batch_norm_forward is not new.batch_norm_forward
    return old, new


def kernel_calls(mod, x, dy, w, b):
    """The three calls on (N, C, 1) data, with their outputs."""
    n, c, s = x.shape
    y, mean, rstd = np.empty_like(x), np.empty(c), np.empty(c)
    dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty_like(w)
    rm, rv = np.zeros_like(w), np.ones_like(w)
    m2, r2 = mean.reshape(1, c), rstd.reshape(1, c)
    mod.batch_norm_forward(y, mean, rstd, x, w, b, 1e-5, 1)
    mod.batch_norm_backward(dx, dw, db, dy, x, mean, rstd, w, 1)
    mod.running_stats_update(rm, rv, m2, r2, 0.1, 1e-5, float(n * s), 1)
    calls = {"forward": lambda: mod.batch_norm_forward(y, mean, rstd, x, w, b, 1e-5, 1),
             "backward": lambda: mod.batch_norm_backward(dx, dw, db, dy, x, mean, rstd, w, 1),
             "running": lambda: mod.running_stats_update(rm, rv, m2, r2, 0.1, 1e-5, float(n * s), 1)}
    return calls, (y, mean, rstd, dx, dw, db, rm, rv)


def raw_ab(old, new, shapes, rounds):
    rng = np.random.default_rng(0)
    print(f"raw kernels, CPU us per call, 1 thread, medians of {rounds} interleaved rounds (old / new = speed-up)")
    for dtype in (np.float32, np.float64):
        for n, c in shapes:
            x = rng.standard_normal((n, c, 1)).astype(dtype)
            dy = rng.standard_normal((n, c, 1)).astype(dtype)
            w, b = rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)
            (co, oo), (cn, on) = kernel_calls(old, x, dy, w, b), kernel_calls(new, x, dy, w, b)
            same = all(np.array_equal(a.view(np.uint8), z.view(np.uint8)) for a, z in zip(oo, on))
            reps = max(100, int(2e6 / (n * c + 2000)))
            line = f"  {np.dtype(dtype).name:7s} ({n}, {c}, 1){'':{12 - len(str(n)) - len(str(c))}} same bits: {same}"
            for k in co:
                t = {"old": [], "new": []}
                for r in range(rounds):
                    for name, calls in ((("old", co), ("new", cn)) if r % 2 == 0 else (("new", cn), ("old", co))):
                        t0 = time.process_time()
                        for _ in range(reps):
                            calls[k]()
                        t[name].append((time.process_time() - t0) / reps * 1e6)
                ratio = statistics.median(a / z for a, z in zip(t["old"], t["new"]))
                line += f" | {k} {statistics.median(t['old']):6.2f} {statistics.median(t['new']):6.2f} x{ratio:.2f}"
            print(line, flush=True)


def bits(old, new):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
    from test_batchnorm1d_bits import CS, LARGE, NS
    rng = np.random.default_rng(1)
    cases = differ = 0
    for dtype in (np.float32, np.float64):
        for n, c in [(n, c) for n in NS for c in CS] + LARGE:
            for kind in ("normal", "large-mean"):
                x = rng.standard_normal((n, c, 1)) if kind == "normal" else 3e4 + 1e-3 * rng.standard_normal((n, c, 1))
                x, dy = x.astype(dtype), rng.standard_normal((n, c, 1)).astype(dtype)
                w, b = rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)
                for nt in (1, 2):
                    outs = []
                    for mod in (old, new):
                        y, mean, rstd = np.empty_like(x), np.empty(c), np.empty(c)
                        dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty_like(w)
                        rm, rv = w * 3, np.abs(b) + dtype(0.5)
                        mod.batch_norm_forward(y, mean, rstd, x, w, b, 1e-5, nt)
                        mod.batch_norm_backward(dx, dw, db, dy, x, mean, rstd, w, nt)
                        mod.running_stats_update(rm, rv, mean.reshape(1, c), rstd.reshape(1, c), 0.1, 1e-5,
                                                 float(n), nt)
                        outs.append((y, mean, rstd, dx, dw, db, rm, rv))
                    cases += 1
                    if not all(np.array_equal(a.view(np.uint8), z.view(np.uint8)) for a, z in zip(*outs)):
                        differ += 1
                        print(f"  differ: {np.dtype(dtype).name} ({n}, {c}, 1) {kind} {nt} threads")
    print(f"bits: {cases} cases, {cases * 8} output arrays each side, {differ} cases differ")


def step_ab(old, new, steps):
    import minigrad.kernels.cython as backend
    import step_cpu_time
    current = [new]
    for k in KERNELS:  # NOTE: before the first call: the registry keeps the function it finds then
        setattr(backend, k, (lambda k: lambda *a: getattr(current[0], k)(*a))(k))
    for framework in ("minigrad", "minigrad-compiled"):
        step = step_cpu_time.build(framework, "mlp-bn")
        for _ in range(3):
            step()
        acc = [0.0, 0.0, 0]
        res = step_cpu_time.alternated(step, {"old": old, "new": new}, lambda m: current.__setitem__(0, m), steps,
                                       acc)
        o, n = res["old"], res["new"]
        print(f"{framework} mlp-bn, ms per step (median of {steps} alternated steps): wall {o[0]:.3f} -> {n[0]:.3f}, "
              f"main-thread CPU {o[1]:.3f} -> {n[1]:.3f} (x{o[1] / n[1]:.3f})", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old_so")
    ap.add_argument("--shapes", nargs="+", default=["60,100", "64,120", "64,84", "600,100", "2,1"])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--no-step", action="store_true")
    ap.add_argument("--bits", action="store_true")
    a = ap.parse_args()
    import minigrad
    from minigrad.allocator import tune_allocator
    tune_allocator()
    minigrad.set_num_threads(1)
    old, new = load_old(a.old_so)
    if a.bits:
        return bits(old, new)
    print("load average", " ".join(f"{v:.2f}" for v in os.getloadavg()))
    raw_ab(old, new, [tuple(int(v) for v in s.split(",")) for s in a.shapes], a.rounds)
    if not a.no_step:
        step_ab(old, new, a.steps)
    print("load average", " ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
