"""ResNet-20's convolutions at batch 32, 1 thread, float32: the CPU time of conv2d's three passes
(``conv2d_forward``, ``conv2d_weight_grad``, ``conv2d_input_grad`` in minigrad/nn/functional/conv.py: the direct
kernels at unit stride, the strided ones at stride 2; each pass also on the im2col path, ``cv.DIRECT = False``) and
of their parts (im2col, col2im and the GEMMs of one chunk loop), with the GEMMs' GFLOP/s. Best of 9, interleaved;
process CPU time, so a loaded machine inflates less. ``CHUNK_BYTES=N`` in the environment overrides the chunk
budget. Run: ``PYTHONPATH=$PWD python scripts/conv_layer_times.py``
"""
import os
import time

for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS", "MINIGRAD_NUM_THREADS"):
    os.environ[k] = "1"

import numpy as np  # noqa: E402

from minigrad import kernels  # noqa: E402
from minigrad.nn.functional import conv as cv  # noqa: E402

if "CHUNK_BYTES" in os.environ:
    cv.CHUNK_BYTES = int(os.environ["CHUNK_BYTES"])
# (C, H, O, k, stride, padding, count in ResNet-20)
LAYERS = [(3, 32, 16, 3, 1, 1, 1), (16, 32, 16, 3, 1, 1, 6), (16, 32, 32, 3, 2, 1, 1), (16, 32, 32, 1, 2, 0, 1),
          (32, 16, 32, 3, 1, 1, 5), (32, 16, 64, 3, 2, 1, 1), (32, 16, 64, 1, 2, 0, 1), (64, 8, 64, 3, 1, 1, 5)]


def best(fns, rounds=9):
    out = {k: 1e9 for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            t0 = time.process_time()
            f()
            out[k] = min(out[k], time.process_time() - t0)
    return {k: v * 1e3 for k, v in out.items()}


def im2col_path(fn, *args):
    """``fn`` with the conv2d_direct kernel turned off (cv.DIRECT = False): the im2col + GEMM path beside it."""
    cv.DIRECT = False
    try:
        return fn(*args)
    finally:
        cv.DIRECT = None


def main(N=32):
    rng = np.random.default_rng(0)
    # the yardstick of benchmarks/bench_bandwidth.py: ResNet-20's widest conv as one GEMM, 64 x 576 x 2048
    a, b = rng.random((64, 576), dtype=np.float32), rng.random((576, 2048), dtype=np.float32)
    t = best({"gemm": lambda: a @ b}, rounds=30)["gemm"]
    print(f"yardstick GEMM 64x576x2048: {t:.2f} ms, {2 * 64 * 576 * 2048 / t / 1e6:.0f} GFLOP/s")
    K = kernels.kernels()
    total = {}
    for C, H, O, k, s, p, count in LAYERS:
        x = rng.random((N, C, H, H), dtype=np.float32)
        w = rng.random((1, O, C * k * k), dtype=np.float32)
        OH = (H + 2 * p - k) // s + 1
        g = cv._ConvGeometry(x.shape, (O, C, k, k), (s, s), (p, p), (1, 1), 1, OH, OH, 4)
        dy = rng.random((N, O, OH, OH), dtype=np.float32)
        buf = np.empty(g.K * g.nb * g.L, np.float32)

        def part(a, b):  # the (K, (b - a)*L) columns of a chunk, contiguous (the last chunk may be short)
            return buf[:g.K * (b - a) * g.L].reshape(g.K, (b - a) * g.L)
        dx, y = np.zeros_like(x), np.empty((N, O, g.L), np.float32)
        win = (k, k, (s, s), (p, p), (1, 1))
        chunks = g.chunks()
        parts = {
            "forward": lambda: cv.conv2d_forward(x, w, g),
            "weight_grad": lambda: cv.conv2d_weight_grad(x, dy, g),
            "input_grad": lambda: cv.conv2d_input_grad(dy, w, g),
            "forward_im2col": lambda: im2col_path(cv.conv2d_forward, x, w, g),
            "input_grad_im2col": lambda: im2col_path(cv.conv2d_input_grad, dy, w, g),
            "weight_grad_im2col": lambda: im2col_path(cv.conv2d_weight_grad, x, dy, g),
            "im2col": lambda: [K.im2col(part(a, b), x[a:b], *win) for a, b in chunks],
            "col2im": lambda: [K.col2im(dx[a:b], part(a, b), *win) for a, b in chunks],
            "gemm_fwd": lambda: [np.matmul(w[0], part(a, b).reshape(g.K, b - a, g.L).transpose(1, 0, 2), out=y[a:b])
                                 for a, b in chunks],
            "gemm_dw": lambda: [np.matmul(part(a, b).reshape(g.K, b - a, g.L).transpose(1, 0, 2),
                                          dy.reshape(N, O, -1)[a:b].transpose(0, 2, 1)).sum(0) for a, b in chunks],
            "gemm_dx": lambda: [np.matmul(w[0].T, dy.reshape(N, O, -1)[a:b],
                                          out=part(a, b).reshape(g.K, b - a, g.L).transpose(1, 0, 2)) for a, b in chunks],
        }
        if g.pointwise:
            parts = {n: f for n, f in parts.items() if not (n.startswith("gemm") or n in ("im2col", "col2im"))}
        t = best(parts)
        gflop = 2 * O * g.K * N * g.L / 1e9
        rates = " ".join(f"{n[5:]} {gflop / t[n] * 1e3:.0f}" for n in t if n.startswith("gemm"))
        if cv._direct(g) or cv._strided(g):  # the passes' own rates (the direct and strided kernels)
            rates += "; passes " + " ".join(f"{n} {gflop / t[n] * 1e3:.0f}" for n in ("forward", "weight_grad",
                                                                                        "input_grad"))
        print(f"C{C:<3} {H}x{H} -> O{O:<3} k{k} s{s} (x{count}, nb {g.nb}): " +
              " ".join(f"{n} {v:.2f}" for n, v in t.items()) + f" ms; GEMM GFLOP/s {rates}")
        for n in ("forward", "weight_grad", "input_grad", "forward_im2col", "weight_grad_im2col", "input_grad_im2col"):
            total[n] = total.get(n, 0) + t[n] * count
    print("per step (ms, weighted by count): " + " ".join(f"{n} {v:.1f}" for n, v in total.items()) +
          f" total {total['forward'] + total['weight_grad'] + total['input_grad']:.1f} (im2col path "
          f"{total['forward_im2col'] + total['weight_grad_im2col'] + total['input_grad_im2col']:.1f})")


if __name__ == "__main__":
    main()
