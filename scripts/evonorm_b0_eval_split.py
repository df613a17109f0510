"""EvoNorm-B0's eval forward (``row_stats`` + NumPy + ``row_apply_gate`` gate 1), split: the whole functional
forward (no grad), its two kernel calls alone, the NumPy between them alone, and the training forward's one-call
kernel ``evonorm_b0_forward`` (instance statistics + batch statistics + the same apply, channel by channel while
its rows are in cache) as the cost a one-pass eval kernel would have at most (it does more: the batch's
statistics). 1 thread, cython backend, CPU-time medians of interleaved rounds (docs/perf/norm-family.md, "Session
38: the gate phases against the triad on AVX2").

    PYTHONPATH=$PWD python scripts/evonorm_b0_eval_split.py [--rounds 11] [--dtype float32]
"""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from norm_family_steps import _interleaved  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--dtype", default="float32")
    args = ap.parse_args()
    import minigrad
    from minigrad import Tensor, kernels, no_grad
    from minigrad._ext import phases
    from minigrad.kernels import coefficients
    from minigrad.nn import functional as F

    minigrad.set_num_threads(1)
    dt = np.dtype(args.dtype).type
    print(f"load average {os.getloadavg()}; {phases.__file__}; {args.dtype}, 1 thread, {args.rounds} rounds")
    print("| shape | functional eval forward | row_stats + row_apply_gate | NumPy between | evonorm_b0_forward "
          "(training, one call) |")
    print("|---|---|---|---|---|")
    for (N, C, H, W) in [(16, 32, 8, 8), (32, 64, 16, 16), (64, 128, 32, 32)]:
        rng = np.random.default_rng(0)
        S, R = H * W, N * C
        x = (rng.standard_normal((N, C, H, W)) * 2 + 0.5).astype(dt)
        v, w, b = (rng.standard_normal(C).astype(dt) for _ in range(3))
        rv = (np.abs(rng.standard_normal(C)) + 0.5).astype(dt)
        tx, tv, tw, tb, trv = Tensor(x), Tensor(v), Tensor(w), Tensor(b), Tensor(rv)
        x2 = x.reshape(R, S)
        k = kernels.kernels()
        im, im2 = np.empty((2, N, C))
        co = np.empty((5, N, C), dt)
        y = np.empty_like(x2)

        def functional():
            with no_grad():
                F.evonorm_b0(tx, tv, trv, tw, tb, training=False)

        def numpy_between():
            irstd = coefficients.rstd(im2, S, 1e-5)
            co[0], co[4] = v, b
            co[1], co[2] = np.sqrt(rv.astype(np.float64) + 1e-5), 1.0 / irstd
            co[3] = w
            return co.reshape(5, R)

        phases.row_stats(im.reshape(-1), im2.reshape(-1), x2, True, 1)
        rows = numpy_between()

        def two_kernels():
            phases.row_stats(im.reshape(-1), im2.reshape(-1), x2, True, 1)
            phases.row_apply_gate(y, x2, rows[0], rows[1], rows[2], rows[3], rows[4], 1, 1)

        lo2, hi2 = np.empty((N, C), dt), np.empty((N, C), dt)
        st, bs = np.empty((2, N, C)), np.empty((2, C))
        x3, y3 = x.reshape(N, C, S), y.reshape(N, C, S)

        def one_call():
            phases.evonorm_b0_forward(y3, lo2, hi2, st[0], st[1], bs[0], bs[1], x3, v, w, b, 1e-5, 1)

        del k
        res = _interleaved({"f": functional, "k": two_kernels, "n": numpy_between, "o": one_call}, args.rounds)
        us = {key: med * 1e6 for key, (med, _) in res.items()}
        print(f"| {N}x{C}x{H}x{W} | {us['f']:.1f} us | {us['k']:.1f} us | {us['n']:.1f} us | {us['o']:.1f} us |")


if __name__ == "__main__":
    main()
