"""Time every benchmark kernel in two checkouts of minigrad, alternating processes: an A/B of a refactor.

    python scripts/ab_trees.py OLD_TREE NEW_TREE [--rounds 5] [--backends cython numba] [--out ab.json]

Each round runs one process per tree (old first in even rounds, new first in odd ones); each process imports the
minigrad of its tree (built in place), times every case through the registry (``minigrad.kernels.load(name)``: the
contract's checks included, as the library calls them) or through autograd (``fwd+bwd``), on one thread, and prints
the median of its repetitions. The ratio of a case is the median over rounds of new/old within a round (the two
processes of a round run seconds apart, so they see about the same load on a shared machine).
Cases: the norm benchmarks' shapes and ops (benchmarks/bench_*_norm.py) and the optimizer updates.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

NORM_CASES = [
    ("BatchNorm2d", (32, 64, 28, 28)), ("BatchNorm2d", (64, 128, 14, 14)), ("BatchNorm2d", (16, 32, 112, 112)),
    ("BatchNorm2d", (256, 512, 7, 7)), ("BatchNorm1d", (60, 100)), ("BatchNorm1d", (4096, 1024)),
    ("LayerNorm", (8192, 768)), ("LayerNorm", (60, 100)), ("GroupNorm", (32, 64, 28, 28)),
    ("InstanceNorm2d", (32, 64, 28, 28)),
]
OPT_SIZE = 1 << 20
EPS = 1e-5


def _median_time(fn, budget=0.4, min_reps=5, max_reps=200):
    fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_reps or (time.perf_counter() - start < budget and len(times) < max_reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _norm_cases(mg, F, kernels, np, backend):
    k = kernels.load(backend)
    rng = np.random.default_rng(0)
    for norm, shape in NORM_CASES:
        x = (rng.standard_normal(shape) * 2 + 0.5).astype(np.float32)
        dy = rng.standard_normal(shape).astype(np.float32)
        p = shape[-1] if norm == "LayerNorm" else shape[1]
        w, b = np.ones(p, np.float32), np.zeros(p, np.float32)
        if norm.startswith("BatchNorm"):
            n, c, s, g = shape[0], shape[1], int(np.prod(shape[2:])), None
        elif norm == "LayerNorm":
            n, c, s, g = int(np.prod(shape[:-1])), shape[-1], 1, 1
        else:
            n, c, s, g = shape[0], shape[1], int(np.prod(shape[2:])), 32 if norm == "GroupNorm" else shape[1]
        x3, dy3 = x.reshape(n, c, s), dy.reshape(n, c, s)
        y, dx, dw, db = np.empty_like(x3), np.empty_like(x3), np.empty(c, np.float32), np.empty(c, np.float32)
        stats = (c,) if g is None else (n, g)
        mean, rstd = np.empty(stats), np.empty(stats)
        if g is None:
            fwd = lambda: k.batch_norm_forward(y, mean, rstd, x3, w, b, EPS)  # noqa: E731
            bwd = lambda: k.batch_norm_backward(dx, dw, db, dy3, x3, mean, rstd, w)  # noqa: E731
        else:
            fwd = lambda: k.group_norm_forward(y, mean, rstd, x3, w, b, g, EPS)  # noqa: E731
            bwd = lambda: k.group_norm_backward(dx, dw, db, dy3, x3, mean, rstd, w, g)  # noqa: E731
        name = f"{norm} {shape}"
        yield f"{name} forward", fwd
        fwd()
        yield f"{name} backward", bwd
        if g is None:
            yield f"{name} inference", lambda: k.batch_norm_inference(y, x3, w, w, w, b, EPS)
        xt, wt, bt = (mg.Tensor(a, requires_grad=True) for a in (x, w, b))

        def step(norm=norm, shape=shape, xt=xt, wt=wt, bt=bt, dy=dy):
            xt.grad = wt.grad = bt.grad = None
            with mg.using_backend(backend):
                if norm.startswith("BatchNorm"):
                    out = F.batch_norm(xt, None, None, wt, bt, training=True, eps=EPS)
                elif norm == "LayerNorm":
                    out = F.layer_norm(xt, (shape[-1],), wt, bt, eps=EPS)
                elif norm == "GroupNorm":
                    out = F.group_norm(xt, 32, wt, bt, eps=EPS)
                else:
                    out = F.instance_norm(xt, weight=wt, bias=bt, eps=EPS)
                out.backward(dy)

        yield f"{name} fwd+bwd", step
    param, buf, m, v = (np.zeros(OPT_SIZE, np.float32) for _ in range(4))
    grad = rng.standard_normal(OPT_SIZE).astype(np.float32)
    yield "sgd_update", lambda: k.sgd_update(param, buf, grad, 0.01, 0.9, 0.0, 1e-4, False, False)
    yield "adam_update", lambda: k.adam_update(param, m, v, grad, 0.001, 0.9, 0.999, 1e-8, 0.0, False, 3)


def worker(tree, backends):
    sys.path.insert(0, tree)
    os.chdir(tree)
    import numpy as np

    import minigrad as mg
    import minigrad.nn.functional as F
    from minigrad import kernels

    assert os.path.dirname(os.path.abspath(mg.__file__)) == os.path.join(os.path.abspath(tree), "minigrad")
    mg.set_num_threads(1)
    out = {}
    for backend in backends:
        for case, fn in _norm_cases(mg, F, kernels, np, backend):
            out[f"{backend} {case}"] = _median_time(fn)
    print(json.dumps(out))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--backends", nargs="+", default=["cython", "numba"])
    ap.add_argument("--out")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.backends)
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    runs = {"old": [], "new": []}
    for r in range(args.rounds):
        order = ("old", "new") if r % 2 == 0 else ("new", "old")
        for which in order:
            tree = os.path.abspath(getattr(args, which))
            p = subprocess.run([sys.executable, os.path.abspath(__file__), "x", "x", "--worker", tree,
                                "--backends", *args.backends], capture_output=True, text=True, env=env, check=True)
            runs[which].append(json.loads(p.stdout.strip().splitlines()[-1]))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    rows = []
    for case in runs["old"][0]:
        ratios = [n[case] / o[case] for o, n in zip(runs["old"], runs["new"])]
        rows.append((case, statistics.median(o[case] for o in runs["old"]),
                     statistics.median(n[case] for n in runs["new"]), statistics.median(ratios)))
    print(f"| case | old | new | new/old (median of {args.rounds} paired rounds) |\n|---|---:|---:|---:|")
    for case, old, new, ratio in rows:
        print(f"| {case} | {old * 1e6:.1f} us | {new * 1e6:.1f} us | {ratio:.3f} |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"old": runs["old"], "new": runs["new"]}, f)


if __name__ == "__main__":
    main()
