"""The norm kernels' 2-thread gain against the triad's (issues #21 and #17), in one process: a Numba one-pass STREAM
triad (``a[i] = b[i] + s c[i]``, float32, ``prange``) at 1 and 2 threads over arrays of the sizes concerned, and the
raw Cython kernels of the failing cases (twothreads_ab.py's arrays and calls; ``fwdbwd`` is the forward then the
backward) at 1 and 2 threads, of one or two builds, interleaved round by round (orders alternating), medians of wall
per call:

    PYTHONPATH=$PWD python scripts/norm_2t_triad_ab.py [--against /work/main] [--rounds 11] [--cases ...]

The ``*-autograd`` cases allocate their outputs each call; glibc's malloc state is the process's, so compare them
with and without ``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold=1073741824`` (the
freed arrays' memory kept and reused, no page faults) in two processes (the page faults a call are printed).

Prints per size the triad's GB/s at 1 and 2 threads and their ratio, and per case and build the median time per call
at 1 and 2 threads, the median of the rounds' 1t/2t ratios (min-max) and that of the best rounds (the least time at
each count: on a shared machine, the rounds the other core left alone), the median of the rounds' CPU time at 2 threads
over 1 (``cpu 2t/1t``: what a loaded machine still shows: 1.0 where the second thread works at the first's pace, a
2-thread gain of up to 2/that on an idle machine, if the threads finish together), and new/old at each thread count.
"""
import argparse
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numba  # noqa: E402
import numpy as np  # noqa: E402

import minigrad  # noqa: E402
from compare_builds import load_norm  # noqa: E402
from twothreads_ab import CASES as TT_CASES, EPS, case_arrays, case_call  # noqa: E402

# bytes per array: bench_bandwidth's llc (1 MiB), 4.3 MB (a footprint of 12.8 MB: x and y of the 1.6M-element
# tensors), bench_bandwidth's tensor (the 1.6M-element tensors, 6.125 MiB), 17 MB (one array of BatchNorm1d 4096x1024),
# the 6.4M-element tensors (25.7 MB) and bench_bandwidth's dram (64 MiB)
TRIAD_SIZES = {"1MiB": 1 << 20, "4.3MB": 2 * 64 * 128 * 196 * 4 // 3, "6.1MiB": 32 * 64 * 28 * 28 * 4,
               "17MB": 4096 * 1024 * 4, "25.7MB": 16 * 32 * 112 * 112 * 4, "64MiB": 64 << 20}
# arrays the kernels' byte model counts (docs/perf/norm-kernels.md: forward x, y; backward dy, x, dx)
ARRAYS = {"forward": 2, "backward": 3, "fwdbwd": 5, "autograd": 5}
# name -> (norm, shape, op): session 36's cases under 1.6x (docs/perf/norm-kernels.md, "The first version's targets
# on the AVX2 Zen 3 VM")
CASES = {
    "bn1d-fwd": TT_CASES["bn1d-fwd"], "bn1d-fwdbwd": ("BatchNorm1d", (4096, 1024), "fwdbwd"),
    "bn2d-fwd-112": ("BatchNorm2d", (16, 32, 112, 112), "forward"),
    "bn2d-fwdbwd-112": ("BatchNorm2d", (16, 32, 112, 112), "fwdbwd"),
    "bn2d-bwd-7": TT_CASES["bn2d-bwd-7"], "bn2d-fwdbwd-7": ("BatchNorm2d", (256, 512, 7, 7), "fwdbwd"),
    "bn2d-bwd-14": TT_CASES["bn2d-bwd-14"], "bn2d-fwd-14": TT_CASES["bn2d-fwd-14"],
    "ln-fwd": TT_CASES["ln-fwd"], "ln-bwd": TT_CASES["ln-bwd"], "ln-fwdbwd": ("LayerNorm", (8192, 768), "fwdbwd"),
    # the same through autograd (the benchmarks' fwd+bwd: outputs and gradients allocated per call), this tree only
    "bn1d-autograd": ("BatchNorm1d", (4096, 1024), "autograd"),
    "bn2d-autograd-112": ("BatchNorm2d", (16, 32, 112, 112), "autograd"),
    "bn2d-autograd-7": ("BatchNorm2d", (256, 512, 7, 7), "autograd"),
    "ln-autograd": ("LayerNorm", (8192, 768), "autograd"),
}


@numba.njit(parallel=True, cache=False)
def _triad(a, b, c, s):
    for i in numba.prange(a.shape[0]):
        a[i] = b[i] + s * c[i]


def triad_call(nbytes):
    n = nbytes // 4
    a, b, c = np.zeros(n, np.float32), np.ones(n, np.float32), np.ones(n, np.float32)
    return lambda t: _triad(a, b, c, np.float32(3))


def autograd_call(norm, shape, arrays):
    """benchmarks/_norms.py's fwd+bwd: F.batch_norm or F.layer_norm on a Tensor, then .backward(dy)."""
    import minigrad.nn.functional as F
    x, dy = arrays["x"].reshape(shape), arrays["dy"].reshape(shape)
    xt, wt, bt = (minigrad.Tensor(a, requires_grad=True) for a in (x, arrays["w"], arrays["b"]))

    def call(t):
        xt.grad = wt.grad = bt.grad = None
        if norm == "LayerNorm":
            y = F.layer_norm(xt, (shape[-1],), wt, bt, eps=EPS)
        else:
            y = F.batch_norm(xt, None, None, wt, bt, training=True, eps=EPS)
        y.backward(dy)
    return call


def kernel_call(mod, arrays, op):
    if op != "fwdbwd":
        return case_call(mod, arrays, op)[0]
    fwd, bwd = case_call(mod, arrays, "forward")[0], case_call(mod, arrays, "backward")[0]

    def both(t):
        fwd(t)
        bwd(t)
    return both


def per_call(fn, t, calls):
    minigrad.set_num_threads(t)
    numba.set_num_threads(t)
    fn(t)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(calls):
        fn(t)
    return (time.perf_counter() - t0) / calls, (time.process_time() - c0) / calls


def interleaved(calls, rounds, n):
    """({name: {threads: [wall seconds per call, one a round]}}, the same of CPU seconds (the process's, all
    threads)), names and thread counts alternating in order."""
    times = {k: {1: [], 2: []} for k in calls}
    cpu = {k: {1: [], 2: []} for k in calls}
    for r in range(rounds):
        for k in (list(calls) if r % 2 == 0 else list(calls)[::-1]):
            for t in ((1, 2) if r % 2 == 0 else (2, 1)):
                w, c = per_call(calls[k], t, n)
                times[k][t].append(w)
                cpu[k][t].append(c)
    return times, cpu


def spread(ratios):
    """'median (min-max)' of the rounds' ratios"""
    return f"{statistics.median(ratios):.3f} ({min(ratios):.2f}-{max(ratios):.2f})"


def cpu_growth(cpu):
    """The median of the rounds' CPU time at 2 threads over that at 1: 1 where the second thread does its half at
    the first's pace; over 1 where the threads stall on each other (memory, barriers spinning)."""
    return statistics.median(b / a for a, b in zip(cpu[1], cpu[2]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--against", help="an old checkout (built in place) timed beside this one")
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--calls", type=int, default=10)
    ap.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    ap.add_argument("--triad", nargs="*", default=list(TRIAD_SIZES), choices=list(TRIAD_SIZES),
                    help="the triad's sizes (none: no triad)")
    args = ap.parse_args()
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    builds = {"new": load_norm(here, "new")}
    if args.against:
        builds = {"old": load_norm(args.against, "old"), **builds}
    print(f"load {os.getloadavg()[0]:.2f}, {args.rounds} rounds x {args.calls} calls, wall time per call")
    if args.triad:
        calls = {k: triad_call(TRIAD_SIZES[k]) for k in args.triad}
        times, cpu = interleaved(calls, args.rounds, args.calls)
        for k, tt in times.items():
            gb = [3 * TRIAD_SIZES[k] / statistics.median(tt[t]) / 1e9 for t in (1, 2)]
            ratios = [a / b for a, b in zip(tt[1], tt[2])]
            print(f"triad {k:7s} 1t {gb[0]:6.1f} GB/s  2t {gb[1]:6.1f} GB/s  2t/1t {spread(ratios)},"
                  f" best {min(tt[1]) / min(tt[2]):.3f}, cpu 2t/1t"
                  f" {cpu_growth(cpu[k]):.3f}")
        sys.stdout.flush()
    for name in args.cases:
        norm, shape, op = CASES[name]
        arrays = case_arrays(norm, shape)
        if op == "autograd":
            calls = {"new": autograd_call(norm, shape, arrays)}
        else:
            calls = {k: kernel_call(m, arrays, op) for k, m in builds.items()}
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        times, cpu = interleaved(calls, args.rounds, args.calls)
        faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / (args.rounds * 2 * len(calls)
                                                                                  * (args.calls + 1))
        minigrad.set_num_threads(1)
        print(f"{name} {norm} {shape} {op}, {faults:.0f} page faults a call")
        nbytes = ARRAYS[op] * arrays["x"].nbytes
        for k, tt in times.items():
            ratios = [a / b for a, b in zip(tt[1], tt[2])]
            m1, m2 = statistics.median(tt[1]), statistics.median(tt[2])
            print(f"  {k:5s} 1t {m1 * 1e3:7.3f} ms {nbytes / m1 / 1e9:5.1f} GB/s  2t {m2 * 1e3:7.3f} ms"
                  f" {nbytes / m2 / 1e9:5.1f} GB/s  1t/2t {spread(ratios)}, best {min(tt[1]) / min(tt[2]):.3f},"
                  f" cpu 2t/1t"
                  f" {cpu_growth(cpu[k]):.3f}")
        for t in (1, 2) if "old" in times else ():
            print(f"  new/old at {t}t {spread([b / a for a, b in zip(times['old'][t], times['new'][t])])},"
                  f" best rounds {min(times['new'][t]) / min(times['old'][t]):.3f}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
