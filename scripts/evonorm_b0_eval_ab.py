"""EvoNorm-B0's eval forward, session 38: the functional (no grad, 1 thread, cython) of two trees in alternating
processes (``--trees OLD NEW``: each process imports one tree's minigrad and times its functional), and, in one
process, the phases the old functional ran (row_stats, NumPy, row_apply_gate; through the backend's checked
calls) against the one call with ``constant_lo`` (evonorm_b0_forward). CPU-time medians, interleaved rounds.

    PYTHONPATH=$PWD python scripts/evonorm_b0_eval_ab.py [--rounds 11] [--dtype float32] [--trees /work/main $PWD]
"""
import argparse
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SHAPES = [(16, 32, 8, 8), (32, 64, 16, 16), (64, 128, 32, 32)]


def _data(shape, dt):
    N, C, H, W = shape
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 2 + 0.5).astype(dt)
    v, w, b = (rng.standard_normal(C).astype(dt) for _ in range(3))
    rv = (np.abs(rng.standard_normal(C)) + 0.5).astype(dt)
    return x, v, w, b, rv


def functional_times(dtype, rounds):
    """One process: this tree's functional per shape, medians in us (printed as one line)."""
    sys.path.insert(0, HERE)
    from norm_family_steps import _interleaved
    import minigrad
    from minigrad import Tensor, no_grad
    from minigrad.nn import functional as F
    minigrad.set_num_threads(1)
    fns = {}
    for shape in SHAPES:
        t = [Tensor(a) for a in _data(shape, np.dtype(dtype).type)]

        def f(t=t):
            with no_grad():
                F.evonorm_b0(t[0], t[1], t[4], t[2], t[3], training=False)
        fns[shape] = f
    res = _interleaved(fns, rounds)
    print(" ".join(f"{res[s][0] * 1e6:.1f}" for s in SHAPES))


def kernels_ab(dtype, rounds):
    sys.path.insert(0, HERE)
    from norm_family_steps import _interleaved
    import minigrad
    from minigrad import kernels
    from minigrad.kernels import coefficients
    minigrad.set_num_threads(1)
    k = kernels.kernels()
    print("| shape | row_stats + NumPy + row_apply_gate | one call (constant_lo) | new/old |")
    print("|---|---|---|---|")
    for shape in SHAPES:
        N, C, H, W = shape
        S, eps = H * W, 1e-5
        x, v, w, b, rv = _data(shape, np.dtype(dtype).type)
        x2, x3 = x.reshape(N * C, S), x.reshape(N, C, S)

        def old():
            im, im2 = np.empty((2, N, C))
            k.row_stats(im.reshape(-1), im2.reshape(-1), x2, True)
            irstd = coefficients.rstd(im2, S, eps)
            co = np.empty((5, N, C), x.dtype)
            co[0], co[4] = v, b
            co[1], co[2] = np.sqrt(rv.astype(np.float64) + eps), 1.0 / irstd
            co[3] = w
            y = np.empty_like(x2)
            k.row_apply_gate(y, x2, *co.reshape(5, N * C), 1)
            return y

        def new():
            co = np.empty((3, N, C), x.dtype)
            co[0] = v
            st, bs = np.empty((2, N, C)), np.empty((2, C))
            co[1] = np.sqrt(rv.astype(np.float64) + eps)
            y = np.empty_like(x3)
            k.evonorm_b0_forward(y, co[1], co[2], st[0], st[1], bs[0], bs[1], x3, v, w, b, eps, constant_lo=True)
            return y

        assert old().tobytes() == new().tobytes()
        res = _interleaved({"old": old, "new": new}, rounds)
        o, n = res["old"][0], res["new"][0]
        print(f"| {N}x{C}x{H}x{W} | {o * 1e6:.1f} us | {n * 1e6:.1f} us | {n / o:.2f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--trees", nargs=2)
    ap.add_argument("--_functional", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a._functional:
        return functional_times(a.dtype, a.rounds)
    print(f"load average {os.getloadavg()}; {a.dtype}, 1 thread, CPU-time medians")
    kernels_ab(a.dtype, a.rounds)
    if a.trees:
        times = {t: [] for t in a.trees}
        for r in range(a.rounds):
            for t in (a.trees if r % 2 == 0 else a.trees[::-1]):
                out = subprocess.run([sys.executable, os.path.abspath(__file__), "--_functional", "--dtype", a.dtype,
                                      "--rounds", "5"], env={**os.environ, "PYTHONPATH": t}, cwd=t,
                                     capture_output=True, text=True, check=True).stdout.split()
                times[t].append([float(u) for u in out])
        med = {t: np.median(np.array(v), axis=0) for t, v in times.items()}
        o, n = a.trees
        print(f"\nfunctional eval forward, {a.rounds} alternating process pairs (medians of per-process medians); "
              f"load {os.getloadavg()[0]:.2f}")
        print("| shape | old tree | new tree | new/old |\n|---|---|---|---|")
        for i, (N, C, H, W) in enumerate(SHAPES):
            print(f"| {N}x{C}x{H}x{W} | {med[o][i]:.1f} us | {med[n][i]:.1f} us | {med[n][i] / med[o][i]:.2f} |")


if __name__ == "__main__":
    main()
