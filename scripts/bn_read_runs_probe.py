"""How fast one core reads batch norm's blocked walk (norm.pyx _bn_n_blocks: a block of `per` channels read row by
row, runs of per*S values C*S apart) against a contiguous read and a triad of the same size, and a model of the
pipelined backward (a block's dy, x sums beside the block before's dx pass) at several block widths: Numba loops,
no minigrad code, 1 thread, medians of CPU time over rounds that alternate the variants.

    python scripts/bn_read_runs_probe.py [--shape 32x64x256] [--rounds 41]

The reads are float32 sums of a and a*b (fastmath, so that Numba vectorizes them): bound by the memory side, not
the adds. GB/s count the bytes each variant reads (and writes).
"""
import argparse
import os
import time

import numba
import numpy as np


@numba.njit(fastmath=True)
def _sum2(a, b):
    s = np.float32(0)
    t = np.float32(0)
    for i in range(a.shape[0]):
        s += a[i]
        t += a[i] * b[i]
    return s + t


@numba.njit
def _pass(d, g, x, k):
    for i in range(d.shape[0]):
        d[i] = np.float32(0.5) * (g[i] - k) + np.float32(0.25) * (x[i] - k) + k


@numba.njit
def _runs(a, b, N, C, S, per):
    """the sums of the blocked walk: blocks of per channels, each read row by row"""
    s = np.float32(0)
    for c0 in range(0, C, per):
        for n in range(N):
            o = (n * C + c0) * S
            s += _sum2(a[o:o + per * S], b[o:o + per * S])
    return s


@numba.njit
def _pipelined(d, g, x, N, C, S, per):
    """the backward's walk: row n of block b's sums, then row n of block b-1's dx pass"""
    s = np.float32(0)
    nb = C // per
    for blk in range(nb + 1):
        for n in range(N):
            if blk < nb:
                o = (n * C + blk * per) * S
                s += _sum2(g[o:o + per * S], x[o:o + per * S])
            if blk > 0:
                o = (n * C + (blk - 1) * per) * S
                _pass(d[o:o + per * S], g[o:o + per * S], x[o:o + per * S], np.float32(0.1))
    return s


@numba.njit
def _triad(a, b, c):
    for i in range(a.shape[0]):
        a[i] = b[i] + np.float32(3.0) * c[i]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="32x64x256")
    ap.add_argument("--rounds", type=int, default=41)
    a = ap.parse_args()
    N, C, S = map(int, a.shape.split("x"))
    n = N * C * S
    d, g, x = (np.ones(n, np.float32) for _ in range(3))
    t1, t2, t3 = (np.ones(262144, np.float32) for _ in range(3))
    variants = {"triad, 262144 floats per array": (_triad, (t1, t2, t3), 3 * 4 * 262144),
                f"triad, {n} floats per array": (_triad, (d, g, x), 3 * 4 * n),
                "read dy, x contiguous": (_sum2, (g, x), 2 * 4 * n)}
    for per in (1, 2, 4, 8, 16):
        if C % per == 0:
            variants[f"read dy, x in runs of {per} channels ({per * S * 4} B)"] = (_runs, (g, x, N, C, S, per),
                                                                                  2 * 4 * n)
            variants[f"pipelined backward model, blocks of {per} channels"] = (_pipelined, (d, g, x, N, C, S, per),
                                                                               3 * 4 * n)
    for f, args, _ in variants.values():
        f(*args)
    times = {k: [] for k in variants}
    for r in range(a.rounds):
        items = list(variants.items())
        for k, (f, args, _) in items[r % len(items):] + items[:r % len(items)]:
            t0 = time.thread_time()
            f(*args)
            f(*args)
            times[k].append((time.thread_time() - t0) / 2)
    print(f"{a.shape} float32, 1 thread, {a.rounds} rounds, medians of CPU time; load {os.getloadavg()[0]:.2f}")
    print("| variant | us | GB/s |\n|---|---:|---:|")
    for k, (_, _, nbytes) in variants.items():
        t = float(np.median(times[k]))
        print(f"| {k} | {t * 1e6:.0f} | {nbytes / t / 1e9:.1f} |")
    print(f"load after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
