"""conv2d's Python per call, this tree's ``minigrad/nn/functional/conv.py`` (new) against another tree's (old, loaded
as a second module of the same package, so that both run on this tree's kernels), in one process, alternated:
``F.conv2d`` forward and backward on one sample of 2x2 pixels, 3x3, padding 1 (the kernels' work is small: the call
is mostly Python), ResNet-20's channel counts. Main-thread CPU, medians of rounds of 500 calls, us a call
(docs/perf/threads.md, session 34; conv_python_ab.py is session 33's, within one tree).

    PYTHONPATH=$PWD python scripts/conv_python_trees_ab.py /work/main 2 21     # old tree, threads, rounds
"""
import importlib.util
import os
import sys
import time

import numpy as np

import minigrad as mg
from minigrad.nn.functional import conv as new


def load(tree):
    path = os.path.join(tree, "minigrad", "nn", "functional", "conv.py")
    spec = importlib.util.spec_from_file_location("minigrad.nn.functional._conv_old", path)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def main(tree, threads, rounds, n=500):
    mg.set_num_threads(threads)
    variants = {"old": load(tree).conv2d, "new": new.conv2d}
    rng = np.random.default_rng(0)
    for C in (16, 32, 64):
        x = mg.Tensor(rng.standard_normal((1, C, 2, 2)).astype(np.float32), requires_grad=True)
        w = mg.Tensor(rng.standard_normal((C, C, 3, 3)).astype(np.float32), requires_grad=True)
        dy = rng.standard_normal((1, C, 2, 2)).astype(np.float32)
        times = {k: [] for k in variants}
        grads = {}
        for r in range(rounds):
            for k in (list(variants) if r % 2 == 0 else list(variants)[::-1]):
                conv2d = variants[k]
                t = time.thread_time()
                for _ in range(n):
                    x.grad = w.grad = None
                    conv2d(x, w, padding=1).backward(dy)
                times[k].append((time.thread_time() - t) / n * 1e6)
                grads[k] = (x.grad.numpy().copy(), w.grad.numpy().copy())
        assert all(np.array_equal(a, b) for a, b in zip(grads["old"], grads["new"])), "the trees differ in bits"
        print(f"{C} -> {C}, {threads} thread(s): " + ", ".join(
            f"{k} {np.median(v):.1f} (p10-p90 {np.percentile(v, 10):.1f}-{np.percentile(v, 90):.1f})"
            for k, v in times.items()) + f" us  (load {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
