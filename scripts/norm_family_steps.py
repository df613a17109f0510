"""Same-process timings of the steps that docs/perf/norm-family.md's "short rows and per-call Python" section
measures, interleaved round by round (CPU time: time.process_time; medians, the minimum in brackets), 1 thread,
float32:

* ``--before-ext DIR``: the raw Cython kernels ``row_norm_apply_max``, ``row_backward_sums_gate`` (gate 0) and
  ``row_backward_sums_max`` of this tree beside those of another build's ``phases`` extension in DIR (e.g.
  /work/main/minigrad/_ext), loaded under another module name, results checked equal first;
* FRN + TLU's backward node (``row_norm_backward_max``) against the phases it fuses, written out on this build;
* F.filter_response_norm_tlu's forward (a learned eps, no gradient) and backward, and EvoNorm-S0's backward (a
  graph built once, ``retain_graph``) beside the torch compositions of benchmarks/bench_norm_family.py.

    PYTHONPATH=$PWD python scripts/norm_family_steps.py [--before-ext /work/main/minigrad/_ext] [--rounds 21]

NOTE: ``--before-ext`` and the backward node's step call ``row_norm_apply_max``/``row_norm_backward_max`` as they were
before 2026-12-07 (x as (R, D) rows, per-row weight, offset, tau); since then they take x: (N, C, S) and per-channel
values (docs/perf/norm-family.md, "FRN + TLU's small forward"): run this script on a tree and builds of that time.
"""
import argparse
import importlib.machinery
import importlib.util
import os
import shutil
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "benchmarks"))


def _interleaved_rounds(fns, rounds, target=0.01, clock=time.process_time, min_calls=10):
    """{name: [seconds per call in each round]}; every callable once per round, each a batch of ~target seconds."""
    counts = {}
    for name, fn in fns.items():
        fn()
        t0, n = clock(), 0
        while clock() - t0 < target / 4:
            fn()
            n += 1
        counts[name] = max(min_calls, 4 * n)
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = clock()
            for _ in range(counts[name]):
                fn()
            times[name].append((clock() - t0) / counts[name])
    return times


def _interleaved(fns, rounds, target=0.01):
    """{name: (median, min)} seconds per call of _interleaved_rounds (CPU time)."""
    return {name: (float(np.median(t)), float(np.min(t)))
            for name, t in _interleaved_rounds(fns, rounds, target).items()}


def _show(title, res):
    print(title)
    for name, (med, low) in res.items():
        print(f"  {name:44s} {med * 1e6:9.1f} us  ({low * 1e6:.1f})")


def _load_ext(directory, name="phases"):
    """Another build's extension module, copied aside and loaded under its own name beside this tree's."""
    fn = next(f for f in os.listdir(directory) if f.startswith(name + ".cpython") and f.endswith(".so"))
    dst = os.path.join(tempfile.mkdtemp(), fn)
    shutil.copy(os.path.join(directory, fn), dst)
    loader = importlib.machinery.ExtensionFileLoader(name, dst)
    module = importlib.util.module_from_spec(importlib.util.spec_from_file_location(name, dst, loader=loader))
    loader.exec_module(module)
    return module


def kernels_ab(before_dir, rounds):
    from minigrad._ext import phases as new
    old = _load_ext(before_dir)
    rng = np.random.default_rng(0)
    for r, d in [(512, 64), (2048, 256)]:  # the rows of 16x32x8x8 and 32x64x16x16
        x = (rng.standard_normal((r, d)) * 2 + 0.5).astype(np.float32)
        dy = rng.standard_normal((r, d)).astype(np.float32)
        w = (1 + 0.1 * rng.standard_normal(r)).astype(np.float32)
        off, tau, v = np.zeros(r, np.float32), np.full(r, -1, np.float32), np.ones(r, np.float32)
        outs = {m: (np.empty_like(x), np.empty(r), np.empty(r, np.float32)) for m in ("old", "new")}
        sums = {m: [np.empty(r) for _ in range(5)] for m in ("old", "new")}
        smax = {m: [np.empty(r) for _ in range(3)] for m in ("old", "new")}
        zero, zx = np.zeros(r), np.zeros(r, np.float32)
        for m, mod in (("old", old), ("new", new)):
            mod.row_norm_apply_max(*outs[m], x, w, off, tau, 1e-6, 1)
            mod.row_backward_sums_gate(*sums[m], dy, x, v, v, v, 0, 1)
            mod.row_backward_sums_max(*smax[m], dy, x, zero, zx, w, off, tau, 1)
        for a, b in zip(outs["old"] + tuple(sums["old"]) + tuple(smax["old"]),
                        outs["new"] + tuple(sums["new"]) + tuple(smax["new"])):
            np.testing.assert_array_equal(a, b)
        _show(f"raw kernels, rows {r}x{d}", _interleaved({
            "row_norm_apply_max (before)": lambda: old.row_norm_apply_max(*outs["old"], x, w, off, tau, 1e-6, 1),
            "row_norm_apply_max (this tree)": lambda: new.row_norm_apply_max(*outs["new"], x, w, off, tau, 1e-6, 1),
            "row_backward_sums_gate 0 (before)": lambda: old.row_backward_sums_gate(*sums["old"], dy, x, v, v, v, 0,
                                                                                    1),
            "row_backward_sums_gate 0 (this tree)": lambda: new.row_backward_sums_gate(*sums["new"], dy, x, v, v, v,
                                                                                       0, 1),
            "row_backward_sums_max (before)": lambda: old.row_backward_sums_max(*smax["old"], dy, x, zero, zx, w, off,
                                                                                tau, 1),
            "row_backward_sums_max (this tree)": lambda: new.row_backward_sums_max(*smax["new"], dy, x, zero, zx, w,
                                                                                   off, tau, 1),
        }, rounds))


def frn_backward_ab(rounds):
    """FRN + TLU's backward node (one row_norm_backward_max call) against the phases it fuses written out (the max
    sums, coefficients.backward, the max apply, then the same parameter sums), gradients checked equal first."""
    import gc

    import bench_norm_family as bench
    import minigrad as mg
    import minigrad.nn.functional as F
    from minigrad import kernels
    from minigrad.kernels import coefficients
    from minigrad.nn.functional.norm_family import _FilterResponse

    for shape in bench.SHAPES:
        a = bench._arrays(shape)
        x, w, b, v = (mg.Tensor(a[k], requires_grad=True) for k in ("x", "w", "b", "v"))
        y = F.filter_response_norm_tlu(x, w, b, v, mg.Tensor(np.full(1, 1e-6, np.float32), requires_grad=True))
        y.backward(a["dy"], retain_graph=True)
        node = next(o for o in gc.get_objects()
                    if isinstance(o, _FilterResponse) and o.has_tau and o.shape == a["x"].shape)
        k, dy = kernels.kernels(), a["dy"]

        def phases(self=node):
            x2 = self.x2
            (r, s), dtype = x2.shape, x2.dtype
            n, c = self.shape[0], self.shape[1]
            dy2 = dy.reshape(r, s)
            sg, sgx, st = np.empty(r), np.empty(r), np.empty(r)
            k.row_backward_sums_max(sg, sgx, st, dy2, x2, self.mean.reshape(-1), *self.coef, self.tau)
            sg, sgx = sg.reshape(n, c), sgx.reshape(n, c)
            dx = np.empty_like(x2)
            coef = coefficients.backward(sg, sgx, s, self.mean, self.rstd, False, dtype, self.w64)
            k.row_backward_apply_max(dx, dy2, x2, *(q.reshape(-1) for q in coef), self.coef[1], self.coef[2],
                                     self.tau)
            de = -0.5 * np.sign(self.eps_value) * np.sum(self.w64 * sgx * self.rstd ** 3)
            return (dx.reshape(self.shape), (sgx * self.rstd).sum(axis=0).astype(dtype), sg.sum(axis=0).astype(dtype),
                    st.reshape(n, c).sum(axis=0).astype(dtype), np.full(1, de, dtype))

        for got, want in zip(node.backward(dy), phases()):
            np.testing.assert_array_equal(got, want)
        _show(f"FRN + TLU backward node, {'x'.join(map(str, shape))}", _interleaved({
            "phases written out (before)": phases, "row_norm_backward_max (this tree)": lambda: node.backward(dy),
        }, rounds))


def functionals_vs_torch(rounds):
    import torch

    import bench_norm_family as bench
    import minigrad as mg

    torch.set_num_threads(1)
    mg.set_num_threads(1)
    for shape in bench.SHAPES:
        a = bench._arrays(shape)
        fns = {}
        for method, op in (("FRN+TLU", "forward"), ("FRN+TLU", "backward"), ("EvoNormS0", "backward")):
            run, _ = bench._minigrad(method, a, op)
            trun, _ = bench._torch(torch, method, a, op)
            fns[f"{method} {op} minigrad"], fns[f"{method} {op} torch ops"] = run, trun
        res = _interleaved(fns, rounds)
        _show(f"functionals, {'x'.join(map(str, shape))}", res)
        for key in ("FRN+TLU forward", "FRN+TLU backward", "EvoNormS0 backward"):
            t, m = res[key + " torch ops"], res[key + " minigrad"]
            print(f"  {key}: torch ops / minigrad = {t[0] / m[0]:.2f}x (medians), {t[1] / m[1]:.2f}x (minimums)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before-ext", default=None, help="directory of another build's phases extension")
    ap.add_argument("--rounds", type=int, default=21)
    args = ap.parse_args()
    from conftest import pin_threads
    pin_threads(1)
    print(f"1 thread, float32, {args.rounds} interleaved rounds, CPU time; load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if args.before_ext:
        kernels_ab(args.before_ext, args.rounds)
    frn_backward_ab(args.rounds)
    functionals_vs_torch(args.rounds)
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
