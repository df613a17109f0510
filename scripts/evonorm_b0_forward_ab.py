"""EvoNorm-B0's training forward in one call (docs/perf/norm-family.md, "EvoNorm-B0's forward in one call, session
34"): another tree's ``F.evonorm_b0`` (its Python loaded beside this tree's, scripts/norm_family_python_ab.py's
``load_old``; both on this tree's kernels) against this tree's, forward and fwd+bwd, and the raw kernels of the
training forward (old: ``row_stats`` then ``row_apply_gate`` on the functional's arguments; new:
``evonorm_b0_forward``), interleaved round by round with the triads of norm_phases_cpu.py (1 MiB arrays, the phase
table's yardstick, and arrays of |x|); cython backend, 1 thread, CPU time, median (min) of the rounds, and the
ratio old/new paired within each round (median). Before timing, y and every gradient of both trees are compared
bit for bit on the timed data.

    PYTHONPATH=$PWD python scripts/evonorm_b0_forward_ab.py --old-tree /work/main [--rounds 11] [--dtype float64]
"""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "benchmarks"))
from norm_family_python_ab import load_old, same  # noqa: E402
from norm_family_steps import _interleaved_rounds  # noqa: E402
from norm_phases_cpu import _triad  # noqa: E402

SHAPES = [(16, 32, 8, 8), (32, 64, 16, 16)]
EPS = 1e-5


def setup(argv, doc):
    """The A/B's arguments, this tree at 1 thread, the other tree's functionals, the cython module; prints the table's
    head."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--old-tree", required=True)
    p.add_argument("--rounds", type=int, default=11)
    p.add_argument("--dtype", default="float32")
    a = p.parse_args(argv)
    import minigrad as mg
    from minigrad import kernels

    mg.set_num_threads(1)
    old = load_old(a.old_tree)[0]
    print(f"load average {os.getloadavg()}; cython, {a.dtype}, 1 thread, {a.rounds} rounds, CPU time\n")
    print("| shape | what | old | new | old/new (paired) | of triad old | new |")
    print("|---|---|---|---|---|---|---|")
    return a, old, np.dtype(a.dtype).type, kernels.load("cython").module


def data(shape, dtype):
    """x, dy, v, weight, bias of one shape (seed 0)."""
    rng = np.random.default_rng(0)
    x0 = (rng.standard_normal(shape) * 2 + 0.3).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    return (x0, dy, *(rng.standard_normal(shape[1]).astype(dtype) for _ in range(3)))


def time_and_print(fns, rounds, shape, x0, whats, passes):
    """Times ``fns`` interleaved with the two triads and prints a shape's rows; ``passes``: the raw kernels' byte
    models (old, new) in multiples of x's bytes."""
    fns["triad 1 MiB"], tb_llc = _triad((1 << 20) // 4)
    fns["triad |x|"], tb_x = _triad(x0.size, x0.dtype.type)
    times = _interleaved_rounds(fns, rounds)
    med = {key: float(np.median(t)) for key, t in times.items()}
    low = {key: float(np.min(t)) for key, t in times.items()}
    gbps = tb_llc / med["triad 1 MiB"] / 1e9
    sid = "x".join(map(str, shape))
    print(f"| {sid} | triad 1 MiB / |x| | {gbps:.1f} GB/s | {tb_x / med['triad |x|'] / 1e9:.1f} GB/s | | | |")
    for what in (*whats, "raw kernels"):
        o, w = times[(what, "old")], times[(what, "new")]
        ratio = float(np.median(np.array(o) / np.array(w)))
        frac = " | |"
        if what == "raw kernels":
            frac = "".join(f" {p * x0.nbytes / med[(what, tag)] / 1e9 / gbps:.0%} |"
                           for p, tag in zip(passes, ("old", "new")))
        print(f"| {sid} | {what} | {med[(what, 'old')] * 1e6:.1f} ({low[(what, 'old')] * 1e6:.1f}) us | "
              f"{med[(what, 'new')] * 1e6:.1f} ({low[(what, 'new')] * 1e6:.1f}) us | {ratio:.3f}x |{frac}")


def main(argv=None):
    a, old, dtype, k = setup(argv, __doc__)
    import minigrad as mg
    import minigrad.nn.functional as F
    from minigrad.kernels import coefficients

    for shape in SHAPES:
        n, c = shape[:2]
        s = int(np.prod(shape[2:]))
        x0, dy, v0, w0, b0 = data(shape, dtype)
        fns, outs = {}, {}
        for tag, fam in (("old", old), ("new", F)):
            ts = [mg.Tensor(t.copy(), requires_grad=True) for t in (x0, v0, w0, b0)]
            y = fam.evonorm_b0(*ts[:2], None, *ts[2:], training=True, eps=EPS)
            y.backward(mg.Tensor(dy))
            outs[tag] = [y.data] + [t.grad.data for t in ts]
            xt, vt, wt, bt = (mg.Tensor(t.copy()) for t in (x0, v0, w0, b0))
            xg, vg, wg, bg = (mg.Tensor(t.copy(), requires_grad=True) for t in (x0, v0, w0, b0))
            dyt = mg.Tensor(dy)

            def fwd(fam=fam, xt=xt, vt=vt, wt=wt, bt=bt):
                fam.evonorm_b0(xt, vt, None, wt, bt, training=True, eps=EPS)

            def fwd_bwd(fam=fam, ts=(xg, vg, wg, bg), dyt=dyt):
                for t in ts:
                    t.grad = None
                fam.evonorm_b0(ts[0], ts[1], None, ts[2], ts[3], training=True, eps=EPS).backward(dyt)
            fns[("forward", tag)], fns[("fwd+bwd", tag)] = fwd, fwd_bwd
        assert all(map(same, outs["old"], outs["new"])), f"{shape}: old and new differ"
        # the raw kernels of the training forward, on the arguments the functionals pass
        x2 = x0.reshape(n * c, s)
        im, im2 = np.empty((2, n * c))
        y_old = np.empty_like(x2)
        k.row_stats(im, im2, x2, True, 1)
        rows = lambda t: np.ascontiguousarray(np.broadcast_to(t, (n, c))).reshape(-1)  # noqa: E731
        vr, wr, br = rows(v0), rows(w0), rows(b0)
        lo = rows(np.float64(1.0)).astype(dtype)
        hi = (1.0 / coefficients.rstd(im2, s, EPS)).astype(dtype)
        fns[("raw kernels", "old")] = lambda: (k.row_stats(im, im2, x2, True, 1),
                                               k.row_apply_gate(y_old, x2, vr, lo, hi, wr, br, 1, 1))
        y_new, lh, st, bs = np.empty(shape[:2] + (s,), dtype), np.empty((2, n, c), dtype), np.empty((2, n, c)), \
            np.empty((2, c))
        x3 = x0.reshape(n, c, s)
        fns[("raw kernels", "new")] = lambda: k.evonorm_b0_forward(y_new, lh[0], lh[1], st[0], st[1], bs[0], bs[1],
                                                                   x3, v0, w0, b0, EPS, 1)
        # the raw kernels' byte models: x read twice and y written (old), x read once and y written (new)
        time_and_print(fns, a.rounds, shape, x0, ("forward", "fwd+bwd"), (3, 2))
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
