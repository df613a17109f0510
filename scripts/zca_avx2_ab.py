"""zca_forward (decorrelated batch norm's training forward, raw, unchecked) and its covariance and whitening passes
alone: another build's whiten .so against this tree's, at the family benchmark's shapes (16x32x8x8 and 32x64x16x16,
group size 16), float32 and float64, 1 thread; interleaved rounds (order alternated), CPU time medians
(decorrelated_profile.timed), ns per element of x, and zca_forward's GB/s counted as four transfers of x's size (the
mean's read, the covariance's read, the whitening's read and write) beside a numba triad (a = b + s c on 262144
floats, 3 transfers) timed in the same rounds. The outputs of the two builds are compared byte for byte first.

    mkdir /tmp/old_so && cp /work/main/minigrad/_ext/whiten*.so /tmp/old_so/
    PYTHONPATH=$PWD python scripts/zca_avx2_ab.py /tmp/old_so [ROUNDS]

On a CPU with AVX2 and FMA but no AVX-512 this tree's passes take whiten.h's AVX2 versions, the old build's (before
session 36) the v3 clones of the 64-byte vector code.
"""
import os
import sys

import numpy as np

import minigrad.kernels.cython as kc
from minigrad.kernels import set_num_threads

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import whiten_bits as wb  # noqa: E402
from decorrelated_profile import timed  # noqa: E402
from frn_backward_blocks_ab import _triad  # noqa: E402


def arrays(shape, dtype, g=16):
    N, C, H, W = shape
    G = -(-C // g)
    x = np.random.default_rng(0).standard_normal((N, C, H * W)).astype(dtype)
    outs = [np.empty_like(x), np.empty((G, g, g)), np.empty((G, g)), np.empty((G, g, g)), np.empty((G, g, g)),
            np.empty((G, g)), np.empty(C, dtype), np.empty((G, g)), np.empty(C)]
    M = (np.random.default_rng(1).standard_normal((G, g, g)) * 0.3).astype(dtype)
    return x, outs, (np.ones((G, g)), np.zeros(C)), M, np.zeros(C, dtype), g


def main():
    set_num_threads(1)
    old, new = wb.load_old(sys.argv[1]), kc._whiten
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 21
    triad, n3 = _triad(), 262144
    ta, tb, tc = (np.ones(n3, np.float32) for _ in range(3))
    triad(ta, tb, tc, np.float32(0.5))
    l0 = os.getloadavg()[0]
    for shape in ((16, 32, 8, 8), (32, 64, 16, 16)):
        for dtype in (np.float32, np.float64):
            x, outs, (wp, b), M, bb, g = arrays(shape, dtype)
            o2 = [np.empty_like(a) for a in outs]
            old.zca_forward(*outs, x, wp, b, g, 1e-5, 1)
            new.zca_forward(*o2, x, wp, b, g, 1e-5, 1)
            same = all(a.tobytes() == c.tobytes() for a, c in zip(outs, o2))
            y, cov, sh = outs[0], outs[1], outs[6]
            runs = {"old zca_forward": lambda: old.zca_forward(*outs, x, wp, b, g, 1e-5, 1),
                    "new zca_forward": lambda: new.zca_forward(*outs, x, wp, b, g, 1e-5, 1),
                    "old group_cov": lambda: old.group_cov(cov, x, sh, g, 1),
                    "new group_cov": lambda: new.group_cov(cov, x, sh, g, 1),
                    "old group_whiten": lambda: old.group_whiten(y, x, sh, M, bb, g, 1),
                    "new group_whiten": lambda: new.group_whiten(y, x, sh, M, bb, g, 1),
                    "triad": lambda: triad(ta, tb, tc, np.float32(0.5))}
            out = timed(runs, rounds)
            med = {k: np.median(v) for k, v in out.items()}
            tri = 3 * 4 * n3 / med["triad"] / 1e9
            print(f"{'x'.join(map(str, shape))} {np.dtype(dtype).name}: outputs equal: {same}; triad {tri:.1f} GB/s")
            for p in ("zca_forward", "group_cov", "group_whiten"):
                o, n = np.array(out["old " + p]), np.array(out["new " + p])
                gbs = f", new {4 * x.nbytes / med['new ' + p] / 1e9:.1f} GB/s" if p == "zca_forward" else ""
                print(f"  {p:13s} old {med['old ' + p] * 1e6:8.1f} us ({med['old ' + p] / x.size * 1e9:.2f} ns/el), "
                      f"new {med['new ' + p] * 1e6:8.1f} us ({med['new ' + p] / x.size * 1e9:.2f} ns/el){gbs}; "
                      f"old/new {np.median(o / n):.2f}x")
    print(f"{rounds} rounds, load {l0:.2f} -> {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
