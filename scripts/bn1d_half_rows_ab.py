"""Is the 2-thread gain of BatchNorm1d's statistics at (4096, 1024) lost to its partition? norm.pyx's 2-thread path
(S == 1, x of BN1D_ROWS_BYTES or more) sums by blocks of channels, one a thread, so each thread reads half of every
row (2 KiB runs 4 KiB apart; the split that keeps each channel's sum in row order, the same bits at any thread
count); a split by rows would read whole rows but add each channel's rows in two halves (other bits). Numba loops,
no minigrad code: float32 sums of x and x*x (the forward's statistics) or dy and dy*x (the backward's) over
(N, C), read
  * 1t rows:      one thread, whole rows;
  * 1t channels:  one thread, the two halves of the channels one after the other (the walk without the second core);
  * 2t channels:  two threads, each its half of the channels of every row (the kernel's partition);
  * 2t rows:      two threads, each half of the rows, whole;
interleaved round by round (the order rotating), medians of wall and of the process's CPU time per call:

    PYTHONPATH=$PWD python scripts/bn1d_half_rows_ab.py [--shape 4096x1024] [--rounds 21]
"""
import argparse
import os
import statistics
import time

import numba
import numpy as np


@numba.njit(fastmath=True)
def _sum2(a, b, n0, n1, c0, c1):
    """sum(a) + sum(a*b) over rows [n0, n1), channels [c0, c1) (fastmath: vectorized, bound by the reads)"""
    s = np.float32(0)
    q = np.float32(0)
    m = c1 - c0
    for n in range(n0, n1):
        ra = a[n, c0:c1]
        rb = b[n, c0:c1]
        for c in range(m):
            s += ra[c]
            q += ra[c] * rb[c]
    return s + q


@numba.njit(parallel=True)
def _by_channels(a, b, nt):
    """thread t: channels [t*C/nt, (t+1)*C/nt) of every row"""
    N, C = a.shape
    out = np.zeros(nt, np.float32)
    for t in numba.prange(nt):
        out[t] = _sum2(a, b, 0, N, t * C // nt, (t + 1) * C // nt)
    return out.sum()


@numba.njit(parallel=True)
def _by_rows(a, b, nt):
    """thread t: rows [t*N/nt, (t+1)*N/nt), whole"""
    N, C = a.shape
    out = np.zeros(nt, np.float32)
    for t in numba.prange(nt):
        out[t] = _sum2(a, b, t * N // nt, (t + 1) * N // nt, 0, C)
    return out.sum()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="4096x1024")
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--calls", type=int, default=10)
    args = ap.parse_args()
    N, C = (int(v) for v in args.shape.split("x"))
    rng = np.random.default_rng(0)
    dy, x = rng.standard_normal((N, C), dtype=np.float32), rng.standard_normal((N, C), dtype=np.float32)
    variants = {  # name: (threads, call, bytes read)
        "1t rows, x": (1, lambda: _by_rows(x, x, 1), x.nbytes),
        "1t channels, x": (1, lambda: _by_channels(x, x, 2), x.nbytes),
        "2t channels, x": (2, lambda: _by_channels(x, x, 2), x.nbytes),
        "2t rows, x": (2, lambda: _by_rows(x, x, 2), x.nbytes),
        "1t rows, dy x": (1, lambda: _by_rows(dy, x, 1), 2 * x.nbytes),
        "1t channels, dy x": (1, lambda: _by_channels(dy, x, 2), 2 * x.nbytes),
        "2t channels, dy x": (2, lambda: _by_channels(dy, x, 2), 2 * x.nbytes),
        "2t rows, dy x": (2, lambda: _by_rows(dy, x, 2), 2 * x.nbytes),
    }
    wall = {k: [] for k in variants}
    cpu = {k: [] for k in variants}
    for k, (t, f, _) in variants.items():  # compile
        numba.set_num_threads(t)
        f()
    print(f"load {os.getloadavg()[0]:.2f}, ({N}, {C}) float32, {args.rounds} rounds x {args.calls} calls")
    names = list(variants)
    for r in range(args.rounds):
        for k in names[r % len(names):] + names[:r % len(names)]:
            t, f, _ = variants[k]
            numba.set_num_threads(t)
            w0, c0 = time.perf_counter(), time.process_time()
            for _ in range(args.calls):
                f()
            wall[k].append((time.perf_counter() - w0) / args.calls)
            cpu[k].append((time.process_time() - c0) / args.calls)
    for k, (t, f, nbytes) in variants.items():
        w, c = statistics.median(wall[k]), statistics.median(cpu[k])
        print(f"  {k:18s} wall {w * 1e3:7.3f} ms {nbytes / w / 1e9:5.1f} GB/s (best {nbytes / min(wall[k]) / 1e9:5.1f})"
              f"  cpu {c * 1e3:7.3f} ms")


if __name__ == "__main__":
    main()
