"""EvoNorm-S0's and -B0's layer (``F.evonorm_s0``, ``F.evonorm_b0`` in training, one node each) in float32 on this
tree's Cython kernels against the same layer in float64 on the NumPy reference backend, on the same data: y and every
gradient (dx, dv, dweight, dbias), per array the largest error relative to the largest |reference| and the normwise
error ||err||/||reference||, in u = 2^-24 (docs/perf/norm-family.md, "EvoNorm and FRN, session 33"). Cases: plain
(x ~ 2*N(0, 1) + 0.3), a large mean (x + 1e3: the sigmoid's and the gate's arguments large, so float32's v*x rounds
by 1e3 times more than in the plain case), a tiny variance (x = 1 + 1e-4*N(0, 1)). Run it on two trees to compare
builds (the numbers are the tree's own; nothing is loaded from the other):

    PYTHONPATH=$PWD python scripts/evonorm_layer_accuracy.py
    (cd OTHER && PYTHONPATH=$PWD python /path/to/scripts/evonorm_layer_accuracy.py)
"""
import itertools

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F

CASES = {"plain": lambda x: x, "large mean": lambda x: x + 1e3, "tiny variance": lambda x: 1 + 1e-4 * (x - 0.3) / 2}


def run(method, backend, dtype, x0, dy, v0, w0, b0):
    ts = {k: mg.Tensor(a.astype(dtype), requires_grad=True) for k, a in (("x", x0), ("v", v0), ("w", w0), ("b", b0))}
    with mg.using_backend(backend):
        if method == "S0":
            y = F.evonorm_s0(ts["x"], ts["v"], 8, ts["w"], ts["b"])
        else:
            y = F.evonorm_b0(ts["x"], ts["v"], None, ts["w"], ts["b"], training=True)
        y.backward(mg.Tensor(dy.astype(dtype)))
    return {"y": y.data, **{f"d{k}": t.grad.data for k, t in ts.items()}}


def main():
    u = 2.0 ** -24
    print("| method | shape | case | array | max err / max|ref| (u) | ||err|| / ||ref|| (u) |")
    print("|---|---|---|---|---|---|")
    for method, shape, case in itertools.product(("S0", "B0"), [(16, 32, 8, 8), (32, 64, 16, 16)], CASES):
        rng = np.random.default_rng(5)
        c = shape[1]
        x0 = CASES[case](rng.standard_normal(shape) * 2 + 0.3).astype(np.float32).astype(np.float64)
        dy = rng.standard_normal(shape).astype(np.float32).astype(np.float64)
        v0, w0, b0 = (rng.standard_normal(c).astype(np.float32).astype(np.float64) for _ in range(3))
        got = run(method, "cython", np.float32, x0, dy, v0, w0, b0)
        want = run(method, "numpy", np.float64, x0, dy, v0, w0, b0)
        for k in got:
            g, w = got[k].astype(np.float64), want[k]
            err = np.abs(g - w)
            print(f"| {method} | {'x'.join(map(str, shape))} | {case} | {k} | {err.max() / np.abs(w).max() / u:.3g} | "
                  f"{np.linalg.norm(err) / np.linalg.norm(w) / u:.3g} |")


if __name__ == "__main__":
    main()
