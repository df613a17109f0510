"""Decorrelated batch norm's backward (minigrad/nn/decorrelated.py, _ZCAWhiten.backward) piece by piece, 1 thread
(BLAS pinned to 1 too), CPU-time medians of rounds that interleave the pieces (decorrelated_profile.timed): the
whole backward, then its statements on the same saved forward: zca_rows (whiten.h, the only compiled pass it runs),
the two batched GEMMs (NumPy's matmul through OpenBLAS: P1 = sum over n of [dY] [U; 1]^T, and dx = F B) and the
rest (the g x g algebra in float64, F's concatenate and casts); beside them the forward's AVX2 whitening pass
(group_whiten: g = 16 fused multiply-adds an output, where a fused dx = M' dY + A U + c needs 2g + 1) and its
covariance pass (group_cov: the pairs i >= j of g x g sums, where P1 needs all g (g + 1)), as what kernels of
whiten.h's shape would cost. Group size 16, the family benchmark's shapes.

    PYTHONPATH=$PWD python scripts/zca_backward_profile.py [ROUNDS]
"""
import os
import sys

import numpy as np
from threadpoolctl import threadpool_limits

import minigrad as mg
from minigrad import kernels
from minigrad.kernels import set_num_threads
from minigrad.nn import decorrelated as dec

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from decorrelated_profile import timed  # noqa: E402


def pieces(shape, dt, g=16):
    N, C, H, W = shape
    G, S = -(-C // g), H * W
    rng = np.random.default_rng(0)
    x = (0.5 + rng.standard_normal(shape)).astype(dt)
    dy = rng.standard_normal(shape).astype(dt)
    m = dec.DecorrelatedBatchNorm2d(C, group_size=g)
    _, op = dec._ZCAWhiten.apply_with_ctx(mg.Tensor(x), m.weight, m.bias, G=G, g=g, eps=1e-5)
    B = np.empty((N, G, 2 * g + 1, S), dt)
    dys = np.ascontiguousarray(dy.reshape(N, C, -1))
    kernels.kernels().zca_rows(B, dys, op.xs, op.shift, g)
    F = np.random.default_rng(1).standard_normal((G, g, 2 * g + 1)).astype(dt)
    dx = np.empty((N, G * g, S), dt)
    y, cov = np.empty_like(dys), np.empty((G, g, g))
    M, sh, b = F[:, :, :g].copy(), op.shift, np.zeros(C, dt)
    from minigrad._ext import whiten
    return {
        "backward": lambda: op.backward(dy),
        "zca_rows": lambda: kernels.kernels().zca_rows(B, dys, op.xs, op.shift, g),
        "P1 GEMM + sum": lambda: np.matmul(B[:, :, :g], np.swapaxes(B[:, :, g:], -1, -2)).sum(axis=0,
                                                                                                dtype=np.float64),
        "dx GEMM": lambda: np.matmul(F, B, out=dx.reshape(N, G, g, S)),
        "group_whiten": lambda: whiten.group_whiten(y, op.xs, sh, M, b, g, 1),
        "group_cov": lambda: whiten.group_cov(cov, op.xs, sh, g, 1),
    }, 2 * N * G * g * (g + 1) * S, 2 * N * G * g * (2 * g + 1) * S


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    set_num_threads(1)
    l0 = os.getloadavg()[0]
    with threadpool_limits(1):
        for shape in ((16, 32, 8, 8), (32, 64, 16, 16)):
            for dt in (np.float32, np.float64):
                fns, f1, f2 = pieces(shape, dt)
                med = {k: float(np.median(v)) for k, v in timed(fns, rounds).items()}
                rest = med["backward"] - med["zca_rows"] - med["P1 GEMM + sum"] - med["dx GEMM"]
                print(f"{'x'.join(map(str, shape))} {np.dtype(dt).name}: backward {med['backward'] * 1e6:.0f} us = "
                      f"zca_rows {med['zca_rows'] * 1e6:.0f} + P1 {med['P1 GEMM + sum'] * 1e6:.0f} "
                      f"({f1 / med['P1 GEMM + sum'] / 1e9:.1f} GFLOP/s) + dx {med['dx GEMM'] * 1e6:.0f} "
                      f"({f2 / med['dx GEMM'] / 1e9:.1f} GFLOP/s) + rest {rest * 1e6:.0f} us; group_whiten "
                      f"{med['group_whiten'] * 1e6:.0f} us ({f2 * 16 / 33 / med['group_whiten'] / 1e9:.1f} "
                      f"GFLOP/s), group_cov {med['group_cov'] * 1e6:.0f} us")
    print(f"{rounds} rounds, load {l0:.2f} -> {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
