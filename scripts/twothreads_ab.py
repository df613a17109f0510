"""The large norm kernels at 1 and 2 threads, two builds in one process: wall time per call of the raw Cython
kernel (the benchmark's ``forward``/``backward`` ops of benchmarks/_norms.py, float32), the thread count set with
``minigrad.set_num_threads`` and passed down as the kernel's ``n_threads``, old and new interleaved over rounds
(the order alternating), with the 1- and 2-thread NumPy triad over three 6.125 MiB arrays (bench_bandwidth's
"tensor" size, two halves on a thread pool at 2 threads) timed in the same rounds (docs/perf/threads.md):

    hi() { setsid sh -c 'echo -15 > /proc/self/autogroup; exec "$@"' sh "$@"; }
    PYTHONPATH=$PWD hi python scripts/twothreads_ab.py /work/main . [--rounds 11] [--cases bn1d-bwd ln-fwd]

Prints per case and build the median time per call at 1 and 2 threads, the speed-up 1t/2t (the median of the
rounds' ratios) and its spread (min-max of the rounds' ratios), and new/old at each thread count.

``--bits`` compares instead the outputs of every case, float32 and float64: old and new at 1 and 2 threads, and
each build's 2-thread outputs with its 1-thread ones, byte for byte.
"""
import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import minigrad  # noqa: E402
from compare_builds import load_norm  # noqa: E402

EPS = 1e-5
# name -> (norm, shape, op): the five cases under 1.6x at the end of session 33 (docs/perf/threads.md)
CASES = {
    "bn1d-bwd": ("BatchNorm1d", (4096, 1024), "backward"),
    "bn1d-fwd": ("BatchNorm1d", (4096, 1024), "forward"),
    "ln-fwd": ("LayerNorm", (8192, 768), "forward"),
    "bn2d-fwd-14": ("BatchNorm2d", (64, 128, 14, 14), "forward"),
    "bn2d-fwd-7": ("BatchNorm2d", (256, 512, 7, 7), "forward"),
    "ln-bwd": ("LayerNorm", (8192, 768), "backward"),
    "bn2d-bwd-14": ("BatchNorm2d", (64, 128, 14, 14), "backward"),
    "bn2d-bwd-7": ("BatchNorm2d", (256, 512, 7, 7), "backward"),
    # the smallest BatchNorm1d inputs that take the general path (over BN1D_CACHE_BYTES, 512 KiB)
    "bn1d-fwd-mid": ("BatchNorm1d", (1024, 160), "forward"),
    "bn1d-bwd-mid": ("BatchNorm1d", (1024, 160), "backward"),
}


def case_arrays(norm, shape, dtype=np.float32):
    """The inputs and outputs of one case, as benchmarks/_norms.py's (N, C, S) view: shared by both builds, so that
    their timings do not differ by where the arrays lie."""
    rng = np.random.default_rng(0)
    if norm == "LayerNorm":
        n, c, s, g = int(np.prod(shape[:-1])), shape[-1], 1, 1
    else:
        n, c, s, g = shape[0], shape[1], int(np.prod(shape[2:], dtype=np.int64)), None
    a = {"x": (rng.standard_normal((n, c, s)) * 2 + 0.5).astype(dtype),
         "dy": rng.standard_normal((n, c, s)).astype(dtype),
         "w": (1 + 0.1 * rng.standard_normal(c)).astype(dtype), "b": (0.1 * rng.standard_normal(c)).astype(dtype),
         "dw": np.empty(c, dtype), "db": np.empty(c, dtype), "g": g}
    a["y"], a["dx"] = np.empty_like(a["x"]), np.empty_like(a["x"])
    a["mean"], a["rstd"] = np.empty((c,) if g is None else (n, g)), np.empty((c,) if g is None else (n, g))
    return a


def case_call(mod, a, op):
    """(call(n_threads), outputs) of one build's raw kernel on the arrays of case_arrays (the forward run once first:
    the backward's statistics)."""
    x, dy, w, b, y, dx, dw, db, mean, rstd, g = (a[k] for k in ("x", "dy", "w", "b", "y", "dx", "dw", "db", "mean",
                                                                "rstd", "g"))
    if g is None:
        fwd = lambda t: mod.batch_norm_forward(y, mean, rstd, x, w, b, EPS, t)  # noqa: E731
        bwd = lambda t: mod.batch_norm_backward(dx, dw, db, dy, x, mean, rstd, w, t)  # noqa: E731
    else:
        fwd = lambda t: mod.group_norm_forward(y, mean, rstd, x, w, b, g, EPS, t)  # noqa: E731
        bwd = lambda t: mod.group_norm_backward(dx, dw, db, dy, x, mean, rstd, w, g, t)  # noqa: E731
    fwd(1)
    if op == "forward":
        return fwd, (y, mean, rstd)
    return bwd, (dx, dw, db)


def triad_call():
    n = 32 * 64 * 28 * 28
    a, b, c = np.zeros(n, np.float32), np.ones(n, np.float32), np.ones(n, np.float32)
    pool = ThreadPoolExecutor(2)
    halves = [(a[:n // 2], b[:n // 2], c[:n // 2]), (a[n // 2:], b[n // 2:], c[n // 2:])]

    def triad(a, b, c):
        np.multiply(c, np.float32(3), out=a)
        np.add(a, b, out=a)

    def call(t):
        if t == 1:
            triad(a, b, c)
        else:
            for f in [pool.submit(triad, *h) for h in halves]:
                f.result()
    return call


def per_call(fn, t, calls):
    minigrad.set_num_threads(t)
    fn(t)
    t0 = time.perf_counter()
    for _ in range(calls):
        fn(t)
    return (time.perf_counter() - t0) / calls


def check_bits(builds, names):
    bad = 0
    for name in names:
        norm, shape, op = CASES[name]
        for dtype in (np.float32, np.float64):
            out = {}
            for k, mod in builds.items():
                call, arrays = case_call(mod, case_arrays(norm, shape, dtype), op)
                for t in (1, 2):
                    minigrad.set_num_threads(t)
                    call(t)
                    out[k, t] = [a.tobytes() for a in arrays]
            pairs = [(("old", 1), ("new", 1)), (("old", 2), ("new", 2)), (("old", 1), ("old", 2)),
                     (("new", 1), ("new", 2))]
            same = [out[a] == out[b] for a, b in pairs]
            bad += not all(same)
            print(f"{name} {np.dtype(dtype).name}: " + ", ".join(
                f"{a[0]} {a[1]}t vs {b[0]} {b[1]}t {'same' if ok else 'DIFFER'}" for (a, b), ok in zip(pairs, same)))
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old", help="the old checkout (built in place)")
    ap.add_argument("new", help="the new checkout (built in place)")
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--calls", type=int, default=10, help="calls per (build, threads) and round")
    ap.add_argument("--cases", nargs="+", default=list(CASES)[:5], choices=list(CASES))
    ap.add_argument("--bits", action="store_true", help="compare the outputs instead (every case)")
    args = ap.parse_args()
    builds = {"old": load_norm(args.old, "old"), "new": load_norm(args.new, "new")}
    if args.bits:
        sys.exit(1 if check_bits(builds, list(CASES)) else 0)
    print(f"load {os.getloadavg()[0]:.2f}, {args.rounds} rounds x {args.calls} calls, wall time per call")
    triad = triad_call()
    for name in args.cases:
        norm, shape, op = CASES[name]
        arrays = case_arrays(norm, shape)
        calls = {k: case_call(m, arrays, op)[0] for k, m in builds.items()}
        calls["triad"] = triad
        times = {k: {1: [], 2: []} for k in calls}
        for r in range(args.rounds):
            order = list(calls) if r % 2 == 0 else list(calls)[::-1]
            for k in order:
                for t in ((1, 2) if r % 2 == 0 else (2, 1)):
                    times[k][t].append(per_call(calls[k], t, args.calls))
        minigrad.set_num_threads(1)
        print(f"{name} {norm} {shape} {op}")
        for k, tt in times.items():
            ratios = [a / b for a, b in zip(tt[1], tt[2])]
            print(f"  {k:5s} 1t {statistics.median(tt[1]) * 1e3:7.3f} ms  2t {statistics.median(tt[2]) * 1e3:7.3f} ms"
                  f"  1t/2t {statistics.median(ratios):.3f} ({min(ratios):.2f}-{max(ratios):.2f})")
        for t in (1, 2):
            ratios = [b / a for a, b in zip(times["old"][t], times["new"][t])]
            print(f"  new/old at {t}t {statistics.median(ratios):.3f} ({min(ratios):.2f}-{max(ratios):.2f})")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
