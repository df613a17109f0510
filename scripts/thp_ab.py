"""What NumPy's transparent huge pages cost and save: each workload on two sets of arrays in one process, one set
allocated with NumPy's madvise of huge pages on (its default: every allocation of >= 4 MiB), the other with it off
(``minigrad.allocator.set_numpy_huge_pages``, which ``tune_allocator`` now turns off), timed interleaved in CPU time
at 1 thread (docs/perf/memory-placement.md).

    PYTHONPATH=$PWD python scripts/thp_ab.py [--rounds 11] [--only bn gn gemm triad offsets]

Workloads: batch norm's forward and backward (the Cython kernels, ``bn_blocks_ab.calls``) at the benchmarks' cases
(benchmarks/bench_batch_norm.py, float32) and at the float64 shapes of docs/perf/norm-kernels.md (session 32); the
group-norm kernel at the cases of bench_layer_norm.py and bench_group_norm.py (layer and instance norm as group
norms); the GEMMs of bench_bandwidth.py and a 1024^3 one; NumPy triads (a = b + s*c, as bench_bandwidth's) at its
"tensor" and "dram" sizes. Each row: the AnonHugePages of the mappings holding each set's output (y, dx, the GEMM's
product, the triad's three arrays), so that the pages are known, not assumed, the medians of both, and huge/4k per
round as median [min, max] (above 1: huge pages slower).

``--only offsets``: the LayerNorm forward on x and y placed at chosen offsets modulo 2 MiB, both pages: the placement
that slows a streaming kernel on 2 MiB pages.
"""
import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "benchmarks"))
from norm_family_steps import _interleaved_rounds  # noqa: E402

import bench_batch_norm  # noqa: E402
import bench_group_norm  # noqa: E402
import bench_layer_norm  # noqa: E402
from _norms import _layout  # noqa: E402
from bench_bandwidth import GEMM_SHAPES, SIZES  # noqa: E402

from minigrad.allocator import set_numpy_huge_pages, tune_allocator  # noqa: E402

# (N, C, S) and dtype of batch norm's kernels: the benchmarks' cases, then docs/perf/norm-kernels.md's float64 ones
BN_SHAPES = ([(_layout(norm, shape)[0], np.float32) for norm, shape in bench_batch_norm.CASES]
             + [((32, 64, 256), np.float64), ((16, 128, 256), np.float64)])
# (N, C, S) and groups of the group-norm kernel (layer and instance norm are group norms) for the benchmarks' cases
GN_SHAPES = [_layout(norm, shape) for norm, shape in bench_layer_norm.CASES + bench_group_norm.CASES]
GEMMS = dict(GEMM_SHAPES, square1024=(1024, 1024, 1024))
TRIADS = {k: SIZES[k] for k in ("tensor", "dram")}  # bytes per array


def huge_kb(arrays):
    """AnonHugePages (kB) summed over the mappings that hold any of ``arrays``' data."""
    spans = [(a.ctypes.data, a.ctypes.data + a.nbytes) for a in arrays]
    total, hit = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()[0]
            if "-" in head and ":" not in head:  # a mapping's first line: start-end perms ...
                lo, hi = (int(v, 16) for v in head.split("-"))
                hit = any(s < hi and e > lo for s, e in spans)
            elif hit and head == "AnonHugePages:":
                total += int(line.split()[1])
    return total


def with_pages(huge, make):
    """make() with NumPy's huge-page madvise set to ``huge``, restored afterwards."""
    prev = set_numpy_huge_pages(huge)
    try:
        return make()
    finally:
        set_numpy_huge_pages(prev)


def bn_rows(norm, shape, dtype):
    import bn_blocks_ab
    fns = bn_blocks_ab.calls(norm, shape, dtype, 1, 8)
    name = "x".join(map(str, shape)) + " " + np.dtype(dtype).name
    return [(f"{k} {name}", fns[k][0], fns[k][1][:1]) for k in ("batch_norm_forward", "batch_norm_backward")]


def gn_rows(norm, shape, groups):
    N, C, S = shape
    rng = np.random.default_rng(0)
    x, dy = (rng.standard_normal(shape, dtype=np.float32) for _ in range(2))
    y, dx = np.empty_like(x), np.empty_like(x)
    w, b, dw, db = (np.ones(C, np.float32) for _ in range(4))
    mean, rstd = np.empty((N, groups)), np.empty((N, groups))
    norm.group_norm_forward(y, mean, rstd, x, w, b, groups, 1e-5, 1)
    name = "x".join(map(str, shape)) + f" float32 groups {groups}"
    return [(f"group_norm_forward {name}", lambda: norm.group_norm_forward(y, mean, rstd, x, w, b, groups, 1e-5, 1),
             (y,)),
            (f"group_norm_backward {name}", lambda: norm.group_norm_backward(dx, dw, db, dy, x, mean, rstd, w, groups,
                                                                            1), (dx,))]


def offset_rows(norm, x_off, y_shift, N=8192, C=768):
    """The LayerNorm (N, C) forward with x at ``x_off`` bytes past a 2 MiB boundary of one buffer and y at x's offset
    modulo 2 MiB plus ``y_shift``: where on 2 MiB pages the arrays' placement decides the time."""
    n = N * C * 4
    buf = np.empty(2 * n + (8 << 20), np.uint8)
    o = -buf.ctypes.data % (2 << 20) + x_off
    x = buf[o:o + n].view(np.float32).reshape(N, C, 1)
    o += n + (2 << 20) - n % (2 << 20) + y_shift
    y = buf[o:o + n].view(np.float32).reshape(N, C, 1)
    x[...] = np.random.default_rng(0).standard_normal(x.shape, dtype=np.float32)
    y[...] = 0
    w, b, mean, rstd = np.ones(C, np.float32), np.zeros(C, np.float32), np.empty((N, 1)), np.empty((N, 1))
    name = f"group_norm_forward {N}x{C}x1 float32 groups 1, x at +{x_off} B, y at x + {y_shift} B (mod 2 MiB)"
    return [(name, lambda: norm.group_norm_forward(y, mean, rstd, x, w, b, 1, 1e-5, 1), (y,))]


def gemm_rows(name, m, k, n):
    rng = np.random.default_rng(0)
    a, b, out = rng.random((m, k), np.float32), rng.random((k, n), np.float32), np.empty((m, n), np.float32)
    return [(f"gemm {name} {m}x{k}x{n} float32", lambda: np.matmul(a, b, out=out), (out,))]


def triad_rows(name, nbytes):
    a, b, c = (np.ones(nbytes // 4, np.float32) for _ in range(3))

    def triad():
        np.multiply(c, 3.0, out=a)
        np.add(a, b, out=a)
    return [(f"triad {name} 3x{nbytes / 2**20:.2f} MiB float32", triad, (a, b, c))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--target", type=float, default=0.02, help="seconds per batch of calls")
    ap.add_argument("--only", nargs="+", default=["bn", "gn", "gemm", "triad"],
                    choices=["bn", "gn", "gemm", "triad", "offsets"])
    args = ap.parse_args()
    import minigrad
    from minigrad._ext import norm
    tune_allocator()
    minigrad.set_num_threads(1)
    print(f"load average {os.getloadavg()}; 1 thread, {args.rounds} rounds, CPU time; THP "
          f"{open('/sys/kernel/mm/transparent_hugepage/enabled').read().strip()}")
    print("| workload | huge kB (huge set / 4k set) | huge us | 4k us | huge/4k [min, max] |")
    print("|---|---|---|---|---|")
    offsets = [(0, 0), (0, 64), (1 << 20, 0), (1 << 20, 64), (1 << 20, 4096), (1 << 20, 64 << 10)]
    makes = {"offsets": [lambda a=a, b=b: offset_rows(norm, a, b) for a, b in offsets],
             "bn": [lambda s=s, d=d: bn_rows(norm, s, d) for s, d in BN_SHAPES],
             "gn": [lambda s=s, g=g: gn_rows(norm, s, g) for s, g in GN_SHAPES],
             "gemm": [lambda k=k, v=v: gemm_rows(k, *v) for k, v in GEMMS.items()],
             "triad": [lambda k=k, v=v: triad_rows(k, v) for k, v in TRIADS.items()]}
    makes = [m for part in args.only for m in makes[part]]
    # NOTE: every 4 KiB set first: from glibc's heap (tune_allocator's 32 MiB threshold, as in a benchmark), an
    # array could otherwise reuse memory that an earlier >= 4 MiB allocation (a BN input's float64 temporaries) left
    # madvised. The huge sets then come from the same heap, at whatever offsets mod 2 MiB the process gives them.
    small = [row for m in makes for row in with_pages(False, m)]
    huge = [row for m in makes for row in with_pages(True, m)]
    for (name, fn4k, arrays4k), (_, fnh, arraysh) in zip(small, huge):
        fns = {"huge": fnh, "4k": fn4k}
        t = {p: np.array(v) for p, v in _interleaved_rounds(fns, args.rounds, args.target, time.process_time,
                                                              min_calls=3).items()}
        kb = {"huge": huge_kb(arraysh), "4k": huge_kb(arrays4k)}  # NOTE: after the calls, which fault outputs in
        r = t["huge"] / t["4k"]
        print(f"| {name} | {kb['huge']} / {kb['4k']} | {np.median(t['huge']) * 1e6:.1f} | "
              f"{np.median(t['4k']) * 1e6:.1f} | {np.median(r):.3f} [{r.min():.2f}, {r.max():.2f}] |", flush=True)


if __name__ == "__main__":
    main()
