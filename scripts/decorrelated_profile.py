"""Decorrelated batch norm's training forward at 16x32x8x8 (group size 16, float32, 1 thread), piece by piece: the
module's call, the op, the running update, zca_forward through the contract and raw, its passes alone (the test
helpers group_cov, group_whiten, sym_eigh, and channel_stats for the mean), and the torch composition; CPU time
medians of ROUNDS rounds. With OLD_ROOT, also main's _update_running against this tree's on the same arrays,
interleaved (each tree's decorrelated.py, this tree's kernels).

    PYTHONPATH=$PWD python scripts/decorrelated_profile.py [ROUNDS] [OLD_ROOT]
"""
import importlib.util
import os
import sys
import time

import numpy as np
import torch

import minigrad as mg
import minigrad.kernels.cython as kc
from minigrad import kernels
from minigrad.kernels import set_num_threads
from minigrad.nn import decorrelated as dec

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
from bench_norm_family import _torch_zca  # noqa: E402


def timed(fns, rounds):
    """{name: median seconds a call}, the functions alternated in each round (order reversed every other one)."""
    reps = {}
    for n, f in fns.items():
        t0 = time.perf_counter()
        f()
        f()
        reps[n] = max(1, int(0.02 / max((time.perf_counter() - t0) / 2, 1e-7)))
    out = {n: [] for n in fns}
    for i in range(rounds):
        for n, f in (list(fns.items()) if i % 2 == 0 else list(fns.items())[::-1]):
            t0 = time.process_time()
            for _ in range(reps[n]):
                f()
            out[n].append((time.process_time() - t0) / reps[n])
    return out


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    torch.set_num_threads(1)
    set_num_threads(1)
    N, C, H, W, g = 16, 32, 8, 8, 16
    G = C // g
    xa = np.random.default_rng(0).standard_normal((N, C, H, W)).astype(np.float32)
    x = mg.Tensor(xa)
    m = dec.DecorrelatedBatchNorm2d(C, group_size=g)
    k, w = kernels.kernels(), kc._whiten
    xs = xa.reshape(N, C, -1)
    y, cov, lam, U, Wm, s = (np.empty_like(xs), np.empty((G, g, g)), np.empty((G, g)), np.empty((G, g, g)),
                             np.empty((G, g, g)), np.empty((G, g)))
    sh, d, mean, wp, b = np.empty(C, np.float32), np.empty((G, g)), np.empty(C), np.ones((G, g)), np.zeros(C)
    _, ctx = dec._ZCAWhiten.apply_with_ctx(x, m.weight, m.bias, G=G, g=g, eps=1e-5)
    sh[...] = ctx.mean.astype(np.float32)
    M, bb, A = ctx.whitening.astype(np.float32), np.zeros(C, np.float32), ctx.cov + 1e-5 * np.eye(g)
    bufs = (m.num_batches_tracked.data, m.running_mean.data, m.running_cov.data, m.running_whitening.data)
    tx, tw, tb = torch.tensor(xa), torch.ones(C), torch.zeros(C)
    fns = {
        "the module's call": lambda: m(x),
        "_ZCAWhiten.apply_with_ctx": lambda: dec._ZCAWhiten.apply_with_ctx(x, m.weight, m.bias, G=G, g=g, eps=1e-5),
        "_update_running": lambda: m._update_running(ctx, N * H * W, *bufs),
        "zca_forward (contract)": lambda: k.zca_forward(y, cov, lam, U, Wm, s, sh, d, mean, xs, wp, b, g, 1e-5),
        "zca_forward (raw)": lambda: w.zca_forward(y, cov, lam, U, Wm, s, sh, d, mean, xs, wp, b, g, 1e-5, 1),
        "- channel_stats": lambda: kc.channel_stats(mean, np.empty(C), xs, True, 1),
        "- group_cov": lambda: w.group_cov(cov, xs, sh, g, 1),
        "- sym_eigh": lambda: w.sym_eigh(lam, U, A, 1),
        "- group_whiten": lambda: w.group_whiten(y, xs, sh, M, bb, g, 1),
        "torch composition": lambda: _torch_zca(torch, tx, tw, tb, g, 1e-5),
    }
    l0 = os.getloadavg()[0]
    for n, v in timed(fns, rounds).items():
        print(f"{n:28s} {np.median(v) * 1e6:8.2f} us")
    if len(sys.argv) > 2:
        spec = importlib.util.spec_from_file_location("old_decorrelated",
                                                      os.path.join(sys.argv[2], "minigrad/nn/decorrelated.py"))
        old = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(old)
        mo = old.DecorrelatedBatchNorm2d(C, group_size=g)
        obufs = (mo.num_batches_tracked.data, mo.running_mean.data, mo.running_cov.data, mo.running_whitening.data)
        out = timed({"main": lambda: mo._update_running(ctx, N * H * W, *obufs),
                     "this": lambda: m._update_running(ctx, N * H * W, *bufs)}, max(rounds, 21))
        o, t = np.array(out["main"]), np.array(out["this"])
        print(f"_update_running: main {np.median(o) * 1e6:.2f} us, this {np.median(t) * 1e6:.2f} us, "
              f"main/this {np.median(o / t):.2f}x")
    print(f"{rounds} rounds, load {l0:.2f} -> {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
