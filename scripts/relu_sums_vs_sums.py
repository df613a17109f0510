"""The Cython kernel channel_backward_sums_relu against channel_backward_sums on the same data, called directly
(no autograd), 1 thread, median of 25 calls, float32 and float64; checks sum(g) against NumPy.

    PYTHONPATH=$PWD python scripts/relu_sums_vs_sums.py [--shape 32,64,784]
"""
import argparse
import time

import numpy as np

from minigrad.kernels import cython as k


def median_ms(f, *args, repeats=25):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f(*args)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="32,64,784")
    shape = tuple(int(s) for s in ap.parse_args().shape.split(","))
    rng = np.random.default_rng(0)
    c = shape[1]
    for dt in (np.float32, np.float64):
        x, dy = rng.standard_normal(shape).astype(dt), rng.standard_normal(shape).astype(dt)
        mean = x.mean((0, 2)).astype(np.float64)
        shift, scale, offset = mean.astype(dt), np.ones(c, dt), np.zeros(c, dt)
        sdy, sdyx = np.empty(c), np.empty(c)
        plain = median_ms(k.channel_backward_sums, sdy, sdyx, dy, x, mean, 1)
        relu = median_ms(k.channel_backward_sums_relu, sdy, sdyx, dy, x, mean, shift, scale, offset, 1)
        g = np.where(x - shift[None, :, None] > 0, dy, 0).astype(np.float64)
        err = np.abs(sdy - g.sum((0, 2))).max()
        print(f"{np.dtype(dt).name}: channel_backward_sums {plain:.2f} ms, channel_backward_sums_relu {relu:.2f} ms "
              f"({relu / plain:.2f}x), max |sum(g) - numpy| {err:.1e}")


if __name__ == "__main__":
    main()
