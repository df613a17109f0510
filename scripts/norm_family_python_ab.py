"""Batch Renorm, ghost batch norm, FRN + TLU and EvoNorm through their functionals and modules: another tree's
Python (its ``minigrad/nn/functional/norm.py`` and ``norm_family.py`` and ``minigrad/nn/norm_family.py``, loaded beside this
tree's as separate modules, on this tree's kernels and autograd core) against this tree's, in one process.

First every case is checked bit for bit (values, gradients, running statistics, signs of zeros) on every backend,
float32 and float64, odd shapes, with and without weight and bias, fused and unfused FRN, a learned eps or not.
Then the cases of benchmarks/bench_norm_family.py (forward, backward, fwd+bwd) and a BatchRenorm2d module's
training step (forward, then backward) are timed interleaved: each round times both trees once (a batch of about
``--target-ms`` of calls, CPU time), the ratio paired within the round; medians (the minimum in brackets).

    PYTHONPATH=$PWD python scripts/norm_family_python_ab.py --old-tree /work/main [--rounds 21] [--threads 1] [--torch]

With ``--old-ext DIR`` (a directory holding another build's ``phases`` and ``norm`` extensions, e.g. /work/main's
minigrad/_ext copied aside) the old side also runs that build's Cython kernels (the cython backend's kernels of
those two modules swapped in for its calls, the checks included): an A/B of a kernel change through the op. The
bit checks then run on the cython backend only (the other backends' kernels are this tree's, whose contract may
differ from the old tree's). The old side's kernels are then checked and called under the old tree's contract.py.
A tree from before 2026-12-07 calls FRN + TLU's one-call kernels with other arguments (x as (R, D) rows, per-row
values): time FRN+TLU against such a tree with ``--old-ext`` (its build), the other methods with or without.
"""
import contextlib
import argparse
import importlib.util
import itertools
import os
import resource
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "benchmarks"))
_OLD = {}  # "backend": the old side's cython kernels (--old-ext), else empty
EPS_DIFFER = [0]  # FRN cases whose learned eps gradient is not bit for bit (check_bits)


def old_backend(ext_dir, tree):
    """The cython backend with the kernels of ``ext_dir``'s phases and norm extensions in place of this build's,
    behind ``tree``'s kernel contract (its signatures and checks: a kernel whose arguments changed is checked and
    called as the old tree's Python calls it)."""
    import types
    from minigrad.kernels import cython
    path = os.path.join(tree, "minigrad", "kernels", "contract.py")
    contract = importlib.util.module_from_spec(importlib.util.spec_from_loader("minigrad.kernels._old_contract",
                                                                               loader=None))
    contract.__file__ = path
    exec(compile(open(path).read(), path, "exec"), contract.__dict__)
    from norm_family_steps import _load_ext
    mod = types.ModuleType("cython_old")
    mod.__dict__.update(vars(cython))
    for name in ("phases", "norm"):
        if any(f.startswith(name + ".cpython") for f in os.listdir(ext_dir)):
            ext = _load_ext(ext_dir, name)
            for kernel in contract.SPECS:
                if hasattr(ext, kernel):
                    setattr(mod, kernel, getattr(ext, kernel))
    return contract.Backend("cython", mod)


@contextlib.contextmanager
def side_kernels(old_side=True):
    """The old side's cython kernels while the block runs (``old_side``; else this build's, through the same
    steps, so that both sides pay the same swap); nothing without --old-ext."""
    import minigrad.kernels as K
    if not _OLD:
        yield
        return
    K.load("cython")
    new = K._loaded["cython"]
    K._loaded["cython"] = _OLD["backend"] if old_side else new
    try:
        yield
    finally:
        K._loaded["cython"] = new


def interleaved_times(runs, rounds, target_ms, clock):
    """norm_family_ab.interleaved_times with each variant's page faults counted: ({name: seconds per call},
    {name: minor faults per call}). NOTE: two variants that each keep MB-sized arrays alive between calls can push
    a 2 MB allocation out of the heap into a fresh mapping, whose first touch faults every page; such a round
    measures the kernel zeroing pages, not the code (seen here as one variant 1.3-1.5x slower in fwd+bwd)."""
    reps = {}
    for v, run in runs.items():
        t0 = time.perf_counter()
        run()
        reps[v] = max(1, int(target_ms / 1e3 / max(time.perf_counter() - t0, 1e-7)))
    times, faults = {v: [] for v in runs}, {v: 0 for v in runs}
    for _ in range(rounds):
        for v, run in runs.items():
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t0 = clock()
            for _ in range(reps[v]):
                run()
            times[v].append((clock() - t0) / reps[v])
            faults[v] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
    return {v: np.array(x) for v, x in times.items()}, {v: faults[v] / (rounds * reps[v]) for v in runs}


def load_old(tree):
    """(functional norm_family, nn norm_family) of ``tree``, as modules beside this tree's (the old functional
    ``norm.py`` under its own name, so that the old nodes run)."""
    import minigrad.nn.functional  # noqa: F401

    def load(name, path, subs=()):
        src = open(path).read()
        for a, b in subs:
            assert a in src, (path, a)
            src = src.replace(a, b)
        mod = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader=None))
        mod.__package__, mod.__file__ = name.rpartition(".")[0], path
        sys.modules[name] = mod
        exec(compile(src, path, "exec"), mod.__dict__)
        return mod

    fn = os.path.join(tree, "minigrad", "nn", "functional")
    load("minigrad.nn.functional._old_norm", os.path.join(fn, "norm.py"))
    family = load("minigrad.nn.functional._old_norm_family", os.path.join(fn, "norm_family.py"),
                  [("from .norm import", "from ._old_norm import")])
    modules = load("minigrad.nn._old_norm_family", os.path.join(tree, "minigrad", "nn", "norm_family.py"),
                   [("from minigrad.nn import functional as F",
                     "from minigrad.nn.functional import _old_norm_family as F")])
    return family, modules


def same(a, b):
    return (a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
            and np.array_equal(np.signbit(a), np.signbit(b)))


def check_bits(old):
    """Every case's outputs bit for bit, both trees; returns the number of cases."""
    import minigrad as mg
    import minigrad.nn.functional as F
    cases = 0
    for backend, shape, dtype in itertools.product(
            ("cython",) if _OLD else ("cython", "numpy", "numba"), [(2, 3, 4, 5), (1, 1, 7), (5, 1, 3, 3), (1, 4, 1, 1, 2), (7, 3, 2),
                                           (32, 64, 16, 16)], (np.float32, np.float64)):
        rng = np.random.default_rng(cases)
        c = shape[1]
        x0, dy = (rng.standard_normal(shape) * 2 + 0.3).astype(dtype), rng.standard_normal(shape).astype(dtype)
        w0, b0, t0 = (rng.standard_normal(c).astype(dtype) for _ in range(3))
        with mg.using_backend(backend):
            for hw, hb, fused, learned in itertools.product((True, False), repeat=4):
                got = []
                for fam in (old, F):
                    ts = {k: mg.Tensor(a.copy(), requires_grad=True) for k, a in
                          (("x", x0), ("w", w0), ("b", b0), ("t", t0), ("e", np.array([-0.05], dtype)))}
                    e, w_, b_ = ts["e"] if learned else 1e-3, ts["w"] if hw else None, ts["b"] if hb else None
                    with side_kernels(fam is old):
                        y = (fam.filter_response_norm_tlu(ts["x"], w_, b_, ts["t"], e) if fused
                             else fam.tlu(fam.filter_response_norm(ts["x"], w_, b_, e), ts["t"]))
                        y.backward(dy)
                    got.append([y.data] + [t.grad.data for t in ts.values() if t.grad is not None])
                # NOTE: the learned eps's gradient (the last array) is summed in another order since ca59af9 (per
                # channel over N, then a dot with the weight): equal within 1e-13 relative, counted when not bit for bit
                n_eq = len(got[0]) - learned
                assert len(got[0]) == len(got[1]) and all(map(same, got[0][:n_eq], got[1][:n_eq])), (
                    "frn", backend, shape, dtype, hw, hb, fused, learned)
                if learned and not same(got[0][-1], got[1][-1]):
                    assert np.allclose(got[0][-1], got[1][-1], rtol=1e-13, atol=0), ("frn eps", backend, shape, dtype)
                    EPS_DIFFER[0] += 1
                cases += 1
            # EvoNorm-B0 (training with or without running_var, eval) and S0 (groups of 1 and of every channel)
            for hw, hb, mode in itertools.product((True, False), (True, False), ("b0", "b0 rv", "b0 eval", "s0 1",
                                                                                    "s0 c")):
                if mode.startswith("b0") and mode != "b0 eval" and x0.size // c < 2:
                    continue
                got = []
                for fam in (old, F):
                    ts = {k: mg.Tensor(a.copy(), requires_grad=True) for k, a in
                          (("x", x0), ("v", t0), ("w", w0), ("b", b0))}
                    rv = mg.Tensor(np.linspace(0.2, 3, c).astype(dtype)) if mode != "b0" else None
                    w_, b_ = ts["w"] if hw else None, ts["b"] if hb else None
                    with side_kernels(fam is old):
                        y = (fam.evonorm_b0(ts["x"], ts["v"], rv, w_, b_, mode != "b0 eval", 0.1, 1e-3)
                             if mode.startswith("b0") else
                             fam.evonorm_s0(ts["x"], ts["v"], 1 if mode == "s0 1" else c, w_, b_, 1e-3))
                        y.backward(dy)
                    got.append([y.data] + ([rv.data] if rv is not None else [])
                               + [t.grad.data for t in ts.values() if t.grad is not None])
                # NOTE: the reference backend's evonorm_b0_forward takes the batch statistics directly from x (the
                # paper's equations), not combined from the instances' as the functional did before 2026-12-07
                # (session 34), and its evonorm_b0_backward the gradients by the chain rule in float64 (session 35):
                # there B0 in training agrees to rounding (float64's, or float32's for the float32 gradients), not
                # bit for bit
                tol = 1e-9 if dtype == np.float64 else 1e-6
                ok = same if backend != "numpy" or mode in ("b0 eval", "s0 1", "s0 c") else (
                    lambda a, b: a.shape == b.shape and np.allclose(a, b, rtol=tol, atol=tol * np.abs(b).max()))
                assert len(got[0]) == len(got[1]) and all(map(ok, *got)), ("evonorm", backend, shape, dtype, mode)
                cases += 1
            if x0.size // c < 2:
                continue
            for hw, hb in itertools.product((True, False), repeat=2):
                got = []
                for fam in (old, F):
                    ts = {k: mg.Tensor(a.copy(), requires_grad=True) for k, a in (("x", x0), ("w", w0), ("b", b0))}
                    rm = mg.Tensor(np.linspace(-1, 1, c).astype(dtype))
                    rv = mg.Tensor(np.linspace(0.2, 3, c).astype(dtype))
                    with side_kernels(fam is old):
                        y = fam.batch_renorm(ts["x"], rm, rv, ts["w"] if hw else None, ts["b"] if hb else None, True,
                                             0.1, 1e-5, 1.5, 0.5)
                        y.backward(dy)
                    got.append([y.data, rm.data, rv.data] + [t.grad.data for t in ts.values() if t.grad is not None])
                assert len(got[0]) == len(got[1]) and all(map(same, *got)), ("renorm", backend, shape, dtype, hw, hb)
                cases += 1
                # ghost batch norm (batch_norm with virtual_batch_size; old: the old tree's norm.py), running
                # statistics given or not, chunks that divide N or leave a remainder of 2 or more
                for vbs in sorted({2, 3, 4} - {shape[0] - 1}):
                    if vbs >= shape[0] or shape[0] % vbs == 1:
                        continue
                    got = []
                    for bn in (sys.modules["minigrad.nn.functional._old_norm"].batch_norm, F.batch_norm):
                        ts = {k: mg.Tensor(a.copy(), requires_grad=True) for k, a in (("x", x0), ("w", w0), ("b", b0))}
                        rm = mg.Tensor(np.linspace(-1, 1, c).astype(dtype)) if hw else None
                        rv = mg.Tensor(np.linspace(0.2, 3, c).astype(dtype)) if hw else None
                        with side_kernels(bn is not F.batch_norm):
                            y = bn(ts["x"], rm, rv, ts["w"] if hw else None, ts["b"] if hb else None, True, 0.1,
                                   1e-5, virtual_batch_size=vbs)
                            y.backward(dy)
                        got.append([y.data] + ([rm.data, rv.data] if hw else [])
                                   + [t.grad.data for t in ts.values() if t.grad is not None])
                    assert len(got[0]) == len(got[1]) and all(map(same, *got)), ("ghost", backend, shape, dtype, vbs)
                    cases += 1
    return cases


def check_module_bits(old_modules):
    """BatchRenorm2d with a warmup, 6 training steps and an eval step: outputs, gradients, buffers bit for bit."""
    import minigrad as mg
    from minigrad import nn
    got = []
    for cls in (old_modules.BatchRenorm2d, nn.BatchRenorm2d):
        with side_kernels(cls is old_modules.BatchRenorm2d):
            m = cls(5, warmup_steps=2)
            rng = np.random.default_rng(3)
            outs = []
            for step in range(7):
                m.train(step < 6)
                x = mg.Tensor((rng.standard_normal((4, 5, 3, 3)) * (1 + step) + step).astype(np.float32),
                              requires_grad=True)
                y = m(x)
                y.backward(rng.standard_normal(y.shape).astype(np.float32))
                outs += [y.data, x.grad.data] + [t.data for t in (m.running_mean, m.running_var, m.num_batches_tracked)]
            outs += [m.weight.grad.data, m.bias.grad.data]
            got.append(outs)
    assert all(map(same, *got))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old-tree", required=True, help="the tree whose Python is 'old' (its kernels are not loaded)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--target-ms", type=float, default=20.0, help="CPU time per variant per round")
    ap.add_argument("--methods", nargs="+", default=["BatchRenorm2d", "FRN+TLU", "BatchRenorm2d module",
                                                          "GhostBatchNorm2d"])
    ap.add_argument("--ops", nargs="+", default=["forward", "backward", "fwd+bwd"])
    ap.add_argument("--no-check", action="store_true", help="skip the bit-for-bit checks")
    ap.add_argument("--old-ext", default=None, help="directory of another build's phases/norm extensions (old side)")
    ap.add_argument("--torch", action="store_true", help="also time the method written with torch ops "
                    "(benchmarks/bench_norm_family.py's) in the same rounds, and the ratio torch / new")
    args = ap.parse_args()
    if args.torch:
        import torch  # noqa: F401  (imported before the pools are pinned, so that its pool is too)
    from conftest import pin_threads
    pin_threads(args.threads)
    import bench_norm_family as bench
    import minigrad as mg
    import minigrad.nn.functional as F
    from minigrad import nn
    old, old_modules = load_old(args.old_tree)
    if args.old_ext:
        _OLD["backend"] = old_backend(args.old_ext, args.old_tree)
    if not args.no_check:
        print(f"bit for bit: {check_bits(old)} functional cases and BatchRenorm2d's steps (but the learned eps's "
              f"gradient in {EPS_DIFFER[0]} FRN cases: within 1e-13 relative)", flush=True)
        check_module_bits(old_modules)
    names = {"BatchRenorm2d": "batch_renorm", "FRN+TLU": "filter_response_norm_tlu", "EvoNormB0": "evonorm_b0",
             "EvoNormS0": "evonorm_s0", "GhostBatchNorm2d": "batch_norm"}
    old_norm = sys.modules["minigrad.nn.functional._old_norm"]  # NOTE: batch_norm (ghost batches) lives there

    def with_functional(make_run, fn, old_side):
        """The runner that ``make_run()`` builds, built and called with F.<fn> set to ``fn`` and the side's kernels
        (``side_kernels``): the backward op's graph is the side's own (both trees pay the same swaps)."""
        name, real = fn.__name__, getattr(F, fn.__name__)

        def swapped(call):
            setattr(F, name, fn)
            try:
                with side_kernels(old_side):
                    return call()
            finally:
                setattr(F, name, real)
        run = swapped(make_run)
        return lambda: swapped(run)

    def module_step(cls, a, op, old_side):
        m = cls(a["x"].shape[1])
        x = mg.Tensor(a["x"], requires_grad=op != "forward")

        def on_side(run):
            def sided():
                with side_kernels(old_side):
                    return run()
            return sided
        if op == "forward":
            return on_side(lambda: m(x))
        if op == "backward":
            with side_kernels(old_side):
                y = m(x)
            return on_side(lambda: (setattr(x, "grad", None), y.backward(a["dy"], retain_graph=True)))

        def step():
            x.grad = m.weight.grad = m.bias.grad = None
            m(x).backward(a["dy"])
        return on_side(step)

    print(f"threads {args.threads}, {args.rounds} interleaved rounds, float32, CPU time; load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("| method | op | shape | old | new | old / new | page faults per call, old / new |"
          + (" torch ops, torch / new |" if args.torch else ""))
    print("|---|---|---|---|---|---|---|" + ("---|" if args.torch else ""))
    fmt = lambda s: f"{s * 1e6:.1f} us" if s < 1e-3 else f"{s * 1e3:.2f} ms"  # noqa: E731
    for shape in bench.SHAPES:
        a = bench._arrays(shape)
        for method, op in itertools.product(args.methods, args.ops):
            if method == "BatchRenorm2d module":
                runs = {"old": module_step(old_modules.BatchRenorm2d, a, op, True),
                        "new": module_step(nn.BatchRenorm2d, a, op, False)}
            else:
                fn = names[method]
                runs = {v: with_functional(lambda: bench._minigrad(method, a, op)[0], f, v == "old")
                        for v, f in (("old", getattr(old, fn, None) or getattr(old_norm, fn)), ("new", getattr(F, fn)))}
                if args.torch:
                    runs["torch"] = bench._torch(sys.modules["torch"], method, a, op)[0]
            t, faults = interleaved_times(runs, args.rounds, args.target_ms, time.process_time)
            cell = lambda v: f"{fmt(float(np.median(t[v])))} ({fmt(float(t[v].min()))})"  # noqa: E731
            vs_torch = (f" torch {cell('torch')}, torch / new {float(np.median(t['torch'] / t['new'])):.2f}x |"
                        if "torch" in t else "")
            print(f"| {method} | {op} | {'x'.join(map(str, shape))} | {cell('old')} | {cell('new')} | "
                  f"{float(np.median(t['old'] / t['new'])):.3f}x | {faults['old']:.1f} / {faults['new']:.1f} |"
                  + vs_torch, flush=True)
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
