"""F.batch_norm_relu against F.relu(F.batch_norm(...)): forward and forward+backward through autograd, per backend,
training and eval, interleaved repeats, median times.

    PYTHONPATH=$PWD python scripts/bn_relu_fused_vs_unfused.py [--shape 32,64,28,28] [--threads 1] [--repeats 15]
"""
import argparse
import time

import numpy as np

import minigrad as mg
from minigrad import Tensor
from minigrad.nn import functional as F


def fused(x, rm, rv, w, b, training):
    return F.batch_norm_relu(x, rm, rv, w, b, training)


def unfused(x, rm, rv, w, b, training):
    return F.relu(F.batch_norm(x, rm, rv, w, b, training))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="32,64,28,28")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--dtype", default="float32")
    args = ap.parse_args()
    shape = tuple(int(s) for s in args.shape.split(","))
    mg.set_num_threads(args.threads)
    dt = np.dtype(args.dtype)
    rng = np.random.default_rng(0)
    c = shape[1]
    x = rng.standard_normal(shape).astype(dt)
    dy = Tensor(rng.standard_normal(shape).astype(dt))
    w, b = Tensor(np.ones(c, dt), requires_grad=True), Tensor(np.zeros(c, dt), requires_grad=True)
    rm, rv = Tensor(np.zeros(c, dt)), Tensor(np.ones(c, dt))
    print(f"shape {shape} {dt} threads {args.threads}; median ms over {args.repeats} interleaved repeats")
    print(f"{'backend':8} {'mode':6} {'pass':8} {'unfused':>9} {'fused':>9} {'speed-up':>9}")
    for name in mg.available_backends():
        mg.set_backend(name)
        for training in (True, False):
            for what in ("forward", "fwd+bwd"):
                times = {fused: [], unfused: []}
                for rep in range(args.repeats + 2):
                    for fn in (unfused, fused):
                        xt = Tensor(x, requires_grad=what != "forward")
                        t0 = time.perf_counter()
                        y = fn(xt, rm, rv, w, b, training)
                        if what != "forward":
                            y.backward(dy)
                        if rep >= 2:  # warm-up (JIT compilation, caches)
                            times[fn].append(time.perf_counter() - t0)
                u, f = np.median(times[unfused]) * 1e3, np.median(times[fused]) * 1e3
                print(f"{name:8} {'train' if training else 'eval':6} {what:8} {u:9.2f} {f:9.2f} {u / f:8.2f}x")


if __name__ == "__main__":
    main()
