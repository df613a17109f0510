"""Time a batch norm and a layer norm composed of the phase kernels against the fused kernels, interleaved.

    python scripts/phases_vs_fused.py [--backend cython] [--rounds 30]

Both run through the registry (contract checks included) on one thread, alternately call by call, over the
benchmark shapes; prints the median time of each and the ratio phases/fused. The fused kernels stay the fast path
of batch, layer, group and instance norm where this ratio is above 1.
"""
import argparse
import statistics
import time

import numpy as np

import minigrad as mg
from minigrad import kernels
from minigrad.kernels import coefficients

EPS = 1e-5


def batch_norm_cases(k, shape):
    N, C = shape[0], shape[1]
    S = int(np.prod(shape[2:]))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, S)).astype(np.float32)
    dy = rng.standard_normal((N, C, S)).astype(np.float32)
    w, b = np.ones(C, np.float32), np.zeros(C, np.float32)
    y, dx = np.empty_like(x), np.empty_like(x)
    mean, rstd, m2, sdy, sdyx = (np.empty(C) for _ in range(5))
    dw, db = np.empty(C, np.float32), np.empty(C, np.float32)

    def fused_fwd():
        k.batch_norm_forward(y, mean, rstd, x, w, b, EPS)

    def phases_fwd():
        k.channel_stats(mean, m2, x, True)
        r = coefficients.rstd(m2, N * S, EPS)
        k.channel_apply(y, x, *coefficients.forward(mean, r, x.dtype, w, b))

    fused_fwd()
    r = rstd.copy()

    def fused_bwd():
        k.batch_norm_backward(dx, dw, db, dy, x, mean, r, w)

    def phases_bwd():
        k.channel_backward_sums(sdy, sdyx, dy, x, mean)
        k.channel_backward_apply(dx, dy, x, *coefficients.backward(sdy, sdyx, N * S, mean, r, True, x.dtype, w))

    return [("forward", fused_fwd, phases_fwd), ("backward", fused_bwd, phases_bwd)]


def layer_norm_cases(k, shape):
    R, D = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((R, D)).astype(np.float32)
    dy = rng.standard_normal((R, D)).astype(np.float32)
    w, b = np.ones(D, np.float32), np.zeros(D, np.float32)
    y, dx = np.empty_like(x), np.empty_like(x)
    mean, rstd = np.empty((R, 1)), np.empty((R, 1))
    m2, sg, sgx = np.empty(R), np.empty(R), np.empty(R)
    dw, db = np.empty(D, np.float32), np.empty(D, np.float32)
    x3, y3, dx3, dy3 = (a.reshape(R, D, 1) for a in (x, y, dx, dy))

    def fused_fwd():
        k.group_norm_forward(y3, mean, rstd, x3, w, b, 1, EPS)

    mean1 = np.empty(R)

    def phases_fwd():
        k.row_stats(mean1, m2, x, True)
        r = coefficients.rstd(m2, D, EPS)
        k.row_apply(y, x, *coefficients.forward(mean1, r, x.dtype), w, b)

    fused_fwd()
    mu, r = np.ascontiguousarray(mean.reshape(R)), np.ascontiguousarray(rstd.reshape(R))

    def fused_bwd():
        k.group_norm_backward(dx3, dw, db, dy3, x3, mean, rstd, w, 1)

    def phases_bwd():
        k.row_backward_sums(sg, sgx, dw, db, dy, x, mu, r, w)
        k.row_backward_apply(dx, dy, x, w, *coefficients.backward(sg, sgx, D, mu, r, True, x.dtype))

    return [("forward", fused_fwd, phases_fwd), ("backward", fused_bwd, phases_bwd)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="cython")
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args(argv)
    mg.set_num_threads(1)
    k = kernels.load(args.backend)
    cases = [("BatchNorm2d", s, batch_norm_cases) for s in [(32, 64, 28, 28), (256, 512, 7, 7), (60, 100)]]
    cases += [("LayerNorm", s, layer_norm_cases) for s in [(8192, 768), (60, 100)]]
    print(f"backend {args.backend}, 1 thread, {args.rounds} interleaved rounds\n")
    print("| case | op | fused | phases | phases/fused |\n|---|---|---:|---:|---:|")
    for norm, shape, make in cases:
        for op, fused, phases in make(k, shape):
            fused(), phases()
            tf, tp = [], []
            for _ in range(args.rounds):
                for fn, out in ((fused, tf), (phases, tp)):
                    t = time.perf_counter()
                    fn()
                    out.append(time.perf_counter() - t)
            f, p = statistics.median(tf), statistics.median(tp)
            print(f"| {norm} {shape} | {op} | {f * 1e6:.1f} us | {p * 1e6:.1f} us | {p / f:.2f} |")


if __name__ == "__main__":
    main()
