"""EvoNorm-B0's training backward in one call (docs/perf/norm-family.md, "EvoNorm-B0's backward in one call, session
35"): another tree's ``F.evonorm_b0`` (its Python loaded beside this tree's, scripts/norm_family_python_ab.py's
``load_old``; both on this tree's kernels) against this tree's, backward (one graph, ``retain_graph``) and fwd+bwd,
and the raw kernels of the training backward (old: ``row_backward_sums_gate`` then ``row_backward_apply_gate`` on
the functional's arguments, without the NumPy between them; new: ``evonorm_b0_backward``), interleaved round by
round with the triads of norm_phases_cpu.py (1 MiB arrays, the phase table's yardstick, and arrays of |x|); cython
backend, 1 thread, CPU time, median (min) of the rounds, and the ratio old/new paired within each round (median).
Before timing, y and every gradient of both trees are compared bit for bit on the timed data.

    PYTHONPATH=$PWD python scripts/evonorm_b0_backward_ab.py --old-tree /work/main [--rounds 11] [--dtype float64]
"""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "benchmarks"))
from evonorm_b0_forward_ab import EPS, SHAPES, data, setup, time_and_print  # noqa: E402
from norm_family_python_ab import same  # noqa: E402


def main(argv=None):
    a, old, dtype, k = setup(argv, __doc__)
    import minigrad as mg
    import minigrad.nn.functional as F

    for shape in SHAPES:
        n, c = shape[:2]
        s = int(np.prod(shape[2:]))
        x0, dy, v0, w0, b0 = data(shape, dtype)
        fns, outs = {}, {}
        for tag, fam in (("old", old), ("new", F)):
            ts = [mg.Tensor(t.copy(), requires_grad=True) for t in (x0, v0, w0, b0)]
            dyt = mg.Tensor(dy)
            y = fam.evonorm_b0(*ts[:2], None, *ts[2:], training=True, eps=EPS)
            y.backward(dyt, retain_graph=True)
            outs[tag] = [y.data] + [t.grad.data for t in ts]
            node = y._ctx

            def bwd(ts=ts, y=y, dyt=dyt):
                for t in ts:
                    t.grad = None
                y.backward(dyt, retain_graph=True)

            def fwd_bwd(fam=fam, ts=ts, dyt=dyt):
                for t in ts:
                    t.grad = None
                fam.evonorm_b0(ts[0], ts[1], None, ts[2], ts[3], training=True, eps=EPS).backward(dyt)
            fns[("backward", tag)], fns[("fwd+bwd", tag)] = bwd, fwd_bwd
        assert all(map(same, outs["old"], outs["new"])), f"{shape}: old and new differ"
        # the raw kernels of the training backward, on the arguments the functionals pass (the new node's saved
        # arrays; the old one's coefficients a, shift, b, k as any finite values: the kernels' time does not
        # depend on them)
        x2, dy2 = x0.reshape(n * c, s), dy.reshape(n * c, s)
        rows = lambda t: np.ascontiguousarray(np.broadcast_to(t, (n, c))).reshape(-1)  # noqa: E731
        sums, co, dx_old = np.empty((5, n * c)), np.ones((4, n * c), dtype), np.empty_like(x2)
        vr, lo, hi = rows(v0), node.lo, node.hi
        fns[("raw kernels", "old")] = lambda: (k.row_backward_sums_gate(*sums, dy2, x2, vr, lo, hi, 1, 1),
                                               k.row_backward_apply_gate(dx_old, dy2, x2, *co, vr, lo, hi, 1, 1))
        dx_new, d3 = np.empty((n, c, s), dtype), np.empty((3, c), dtype)
        x3, dy3, lo2, hi2 = x0.reshape(n, c, s), dy.reshape(n, c, s), lo.reshape(n, c), hi.reshape(n, c)
        fns[("raw kernels", "new")] = lambda: k.evonorm_b0_backward(dx_new, *d3, dy3, x3, v0, w0, lo2, hi2,
                                                                    node.imean, node.irstd, node.mean, node.rstd, 1)
        # the raw kernels' byte model, both: the sums read dy and x, dx reads them again and writes dx
        time_and_print(fns, a.rounds, shape, x0, ("backward", "fwd+bwd"), (5, 5))
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
