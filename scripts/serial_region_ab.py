"""The sigmoid and log-softmax kernels at one thread, this build against another (OLD_EXT: a directory holding
another build's elementwise and softmax extensions), raw calls at the MLP-BN step's sizes, CPU time, medians of 21
interleaved rounds (docs/perf/small-kernels.md, "One thread without a parallel region").

    mkdir /tmp/oldext && cp OLD_TREE/minigrad/_ext/*.so /tmp/oldext/
    PYTHONPATH=$PWD python scripts/serial_region_ab.py /tmp/oldext
"""
import glob
import importlib.util
import os
import sys
import time

import numpy as np

import minigrad  # noqa: F401  (the package the extensions are loaded under)

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(path, name):
    f = glob.glob(f"{path}/{name}.cpython*.so")[0]
    spec = importlib.util.spec_from_file_location(f"minigrad._ext.{name}", f)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def main(old_ext, rounds=21, n=5000):
    mods = {s: (load(p, "elementwise"), load(p, "softmax"))
            for s, p in (("old", old_ext), ("new", os.path.join(HERE, "minigrad", "_ext")))}
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal((2, 6000)).astype(np.float32)  # the sigmoids' (60, 100), flat
    y, dx = np.empty_like(x), np.empty_like(x)
    xs, dys = rng.standard_normal((2, 60, 10)).astype(np.float32)  # the logits
    ys, dxs = np.empty_like(xs), np.empty_like(xs)
    cases = {
        "sigmoid_forward 6000": lambda el, sm: el.sigmoid_forward(y, x, 1),
        "sigmoid_backward 6000": lambda el, sm: el.sigmoid_backward(dx, dy, y, 1),
        "log_softmax_forward 60x10": lambda el, sm: sm.log_softmax_forward(ys, xs, 1),
        "log_softmax_backward 60x10": lambda el, sm: sm.log_softmax_backward(dxs, dys, ys, 1),
    }
    for name, f in cases.items():
        times = {"old": [], "new": []}
        for _ in range(rounds):
            for side, m in mods.items():
                t = time.process_time()
                for _ in range(n):
                    f(*m)
                times[side].append((time.process_time() - t) / n * 1e6)
        old, new = np.median(times["old"]), np.median(times["new"])
        print(f"{name}: old {old:.3f} us, new {new:.3f} us, saved {old - new:.3f} us")

if __name__ == "__main__":
    main(sys.argv[1])
