"""Which layouts of Linear's products give NumPy's own bits on this machine's BLAS: ``np.matmul(x, W.T)`` against the
same product on a contiguous copy of ``W^T``, as ``(W @ x^T)^T`` and by ``np.dot``, and the weight gradient
``np.matmul(dy.T, x)`` against ``(x^T @ dy)^T`` and a contiguous ``dy^T``, exactly (``tobytes``), over a sampled grid
of (M, K, N), float32 and float64, split by M*N*K above or below 100^3 (docs/perf/mlp-first-layer.md):

    PYTHONPATH=$PWD python scripts/gemm_layout_bits.py [--threads 1] [--fraction 0.1] [--seed 2]

Prints, per product, dtype and size class, how many shapes were equal and the first that differed.
"""
import argparse
import itertools

import numpy as np

SIZES = [1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 24, 31, 32, 33, 48, 60, 63, 64, 65, 96, 100, 127, 128, 129, 200,
         255, 256, 257, 300, 384, 385, 500, 511, 512, 513, 640, 767, 768, 769, 784, 800]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=2)
    a = p.parse_args()
    from minigrad.kernels.blas import set_blas_num_threads
    set_blas_num_threads(a.threads)
    rng = np.random.default_rng(a.seed)
    forward = {"x @ contiguous W^T": lambda x, w: np.matmul(x, np.ascontiguousarray(w.T)),
               "(W @ contiguous x^T)^T": lambda x, w: np.matmul(w, np.ascontiguousarray(x.T)).T,
               "np.dot(x, W.T)": lambda x, w: np.dot(x, w.T)}
    dweight = {"(x^T @ dy)^T": lambda dy, x: np.matmul(x.T, dy).T,
               "contiguous dy^T @ x": lambda dy, x: np.matmul(np.ascontiguousarray(dy.T), x)}
    res = {}
    for dt in (np.float32, np.float64):
        for M, K, N in itertools.product(SIZES, SIZES, SIZES):
            if rng.random() > a.fraction:
                continue
            x = rng.standard_normal((M, K)).astype(dt)
            w = rng.standard_normal((N, K)).astype(dt)
            dy = rng.standard_normal((M, N)).astype(dt)
            size = "M*N*K > 100^3" if M * N * K > 1e6 else "M*N*K <= 100^3"
            want = np.matmul(x, w.T).tobytes()
            for name, f in forward.items():
                r = res.setdefault((name, dt.__name__, size), [0, 0, None])
                same = f(x, w).tobytes() == want
                r[0 if same else 1] += 1
                r[2] = r[2] or (None if same else (M, K, N))
            want = np.matmul(dy.T, x).tobytes()
            for name, f in dweight.items():
                r = res.setdefault((name, dt.__name__, size), [0, 0, None])
                same = f(dy, x).tobytes() == want
                r[0 if same else 1] += 1
                r[2] = r[2] or (None if same else (M, K, N))
    for (name, dt, size), (same, diff, first) in res.items():
        print(f"{name:24s} {dt:8s} {size:16s} equal {same:5d}  differ {diff:5d}  first (M, K, N) differing {first}")


if __name__ == "__main__":
    main()
