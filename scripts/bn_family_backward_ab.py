"""Ghost batch norm's and Batch Renorm's backward (benchmarks/bench_norm_family.py's "backward": ``.backward(dy)`` of
a graph built once, its ``_runner``) with this tree's nodes against the nodes of another checkout's
minigrad/nn/functional/norm.py (``--before-file``, imported on top of this tree's minigrad), and where the time
outside the kernel goes, in one process at 1 thread.

Each call is timed alone (CPU time of the thread) right after an untimed call of the same variant, so that it
starts from the caches the benchmark's loop leaves (the previous call's kernel swept 6 MiB through them at
32x64x16x16; its dx is the memory the previous call's dx freed); a variant without a kernel follows an untimed call
of the raw kernel instead. The variants take turns call by call, ``--calls`` timed calls per round, and a round's
figure is each variant's median call. Reported: the median over rounds, and per round the variant's time over
``new``'s (paired), median [min, max]. Before and new must give the same y and gradients bit for bit.

Variants: ``new`` and ``before`` (the benchmark's run: drop the leaves' grads, walk the graph), ``node new`` and
``node before`` (the node's ``backward`` alone), ``node new, no kernel`` and ``node before, no kernel`` (the same
with a backend whose kernels do nothing, its checks kept: the node's Python after the kernel's sweep), ``raw
kernel`` (the module's kernel into arrays allocated once),
``walk`` (the same graph with the node's ``backward`` replaced by one returning gradients computed once: the walk's
own Python after the kernel's sweep) and ``walk warm`` (after a call of its own: the walk with warm caches).

    PYTHONPATH=$PWD python scripts/bn_family_backward_ab.py --before-file /work/main/minigrad/nn/functional/norm.py \\
        [--rounds 15] [--calls 40] [--shapes 16x32x8x8 32x64x16x16] [--methods GhostBatchNorm2d BatchRenorm2d]
"""
import argparse
import contextlib
import importlib.util
import os
import sys
import time
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "benchmarks"))

METHODS = ("GhostBatchNorm2d", "BatchRenorm2d")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before-file", required=True, help="another checkout's minigrad/nn/functional/norm.py")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--calls", type=int, default=40, help="calls of each variant per round")
    ap.add_argument("--shapes", nargs="+", default=["16x32x8x8", "32x64x16x16"])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    args = ap.parse_args()

    import bench_norm_family as bench
    import minigrad as mg
    from conftest import pin_threads
    from minigrad.nn.functional import norm

    spec = importlib.util.spec_from_file_location("minigrad.nn.functional._norm_before", args.before_file)
    before = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(before)
    pin_threads(1)
    mg.set_backend("cython")
    print(f"1 thread, cython, float32, {args.rounds} rounds of {args.calls} calls per variant, CPU time of the "
          f"thread; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("| method | shape | variant | median | over new, paired: median [min, max] |")
    print("|---|---|---|---|---|")
    for method in args.methods:
        for shape in [tuple(map(int, s.split("x"))) for s in args.shapes]:
            a = bench._arrays(shape)
            variants, sweep = _variants(method, a, norm, before)
            t = _rounds(variants, sweep, args.rounds, args.calls)
            for v, x in t.items():
                r = x / t["new"]
                print(f"| {method} | {'x'.join(map(str, shape))} | {v} | {float(np.median(x)) * 1e6:.1f} us | "
                      f"{np.median(r):.3f} [{r.min():.3f}, {r.max():.3f}] |", flush=True)
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


def _graph(method, a, module):
    """(x, weight, bias), y: ``method``'s forward as benchmarks/bench_norm_family.py's ``_minigrad`` writes it, with
    the node classes of ``module`` (this tree's norm.py or the before file)."""
    import bench_norm_family as bench
    import minigrad as mg
    import minigrad.nn.functional as F
    from minigrad.nn.functional import norm, norm_family

    # where each method's functional looks its node class up when it builds the graph
    home, name = (norm, "_ChannelNorm") if method == "GhostBatchNorm2d" else (norm_family, "_BatchRenormTrain")
    x, w, b = (mg.Tensor(a[k], requires_grad=True) for k in ("x", "w", "b"))
    saved = getattr(home, name)
    setattr(home, name, getattr(module, name))
    try:
        if method == "GhostBatchNorm2d":
            y = F.batch_norm(x, None, None, w, b, True, 0.1, bench.EPS, virtual_batch_size=bench.VIRTUAL_BATCH)
        else:
            y = F.batch_renorm(x, mg.Tensor(a["rm"].copy()), mg.Tensor(a["rv"].copy()), w, b, True, 0.1, bench.EPS,
                               1.5, 0.5)
    finally:
        setattr(home, name, saved)
    assert type(y._ctx) is getattr(module, name)
    return (x, w, b), y


def _variants(method, a, norm, before):
    """{name: callable}, and the raw kernel on the same arrays (the untimed call before a variant without one)."""
    import bench_norm_family as bench
    from minigrad import kernels

    dy = a["dy"]
    variants, results = {}, {}
    for v, module in (("new", norm), ("before", before)):
        params, y = _graph(method, a, module)
        run, result = bench._runner(lambda y=y: y, params, dy, "backward", lambda t: t.numpy(), {})
        run()
        variants[v], results[v] = run, result()
        variants["node " + v] = lambda node=y._ctx: node.backward(dy)
    for v in ("new", "before"):
        variants[f"node {v}, no kernel"] = _without_kernels(variants["node " + v])
    for i, (got, want) in enumerate(zip(results["new"], results["before"])):
        np.testing.assert_array_equal(got, want, err_msg=f"{method} output {i}: new != before")
    node = _graph(method, a, norm)[1]._ctx
    x3 = node.x3
    dy3, dtype, c = dy.reshape(x3.shape), x3.dtype, x3.shape[1]
    dx, dw, db = np.empty_like(x3), np.empty(c, dtype), np.empty(c, dtype)
    module = kernels.kernels().module
    if method == "GhostBatchNorm2d":
        def raw():
            module.ghost_batch_norm_backward(dx, dw, db, dy3, x3, node.mean, node.rstd, node.w, node.chunk, 1)
    else:
        wr = (node.w * node.r).astype(dtype)

        def raw():
            module.batch_norm_backward(dx, dw, db, dy3, x3, node.mean[0], node.rstd[0], wr, 1)
    variants["raw kernel"] = raw
    params, y = _graph(method, a, norm)
    fixed = y._ctx.backward(dy)
    y._ctx.backward = lambda g: fixed
    variants["walk"] = bench._runner(lambda: y, params, dy, "backward", lambda t: t.numpy(), {})[0]
    variants["walk warm"] = variants["walk"]
    return variants, raw


def _without_kernels(fn):
    """``fn`` run with the cython backend's kernels doing nothing (the contract's checks still run)."""
    from minigrad import kernels
    from minigrad.kernels import contract

    def nothing(*args, **options):  # NOTE: Batch Renorm passes r and d as keywords
        return None

    noop = contract.Backend("cython", types.SimpleNamespace(
        __name__="noop", **{k: nothing for k in (*contract.SPECS, *contract.LIST_SPECS)}))

    def call():
        real = kernels._loaded["cython"]
        kernels._loaded["cython"] = noop
        try:
            fn()
        finally:
            kernels._loaded["cython"] = real
    return call


def _rounds(variants, sweep, rounds, calls):
    """{name: array of each round's median call (seconds)}: each timed call follows an untimed one of its own
    variant, or ``sweep()`` for the walk and the nodes without kernels."""
    clock = time.thread_time
    out = {v: [] for v in variants}
    before = {v: sweep if v == "walk" or v.endswith("no kernel") else fn for v, fn in variants.items()}
    for _ in range(rounds):
        times = {v: [] for v in variants}
        for _ in range(calls):
            for v, fn in variants.items():
                before[v]()
                t0 = clock()
                fn()
                times[v].append(clock() - t0)
        for v, x in times.items():
            out[v].append(np.median(x))
    return {v: np.array(x) for v, x in out.items()}


if __name__ == "__main__":
    main()
