"""PROTOTYPE (session 37, h-dbnfuse; reverted after measuring): DecorrelatedBN2d's backward with dx = M' dY + A U + c
from dy and x (whiten.zca_dx_proto: whiten.h's mg_group_whiten_block_T unchanged, 2g input rows [dy; x] and shift
[0; shift]) and P1 from dy and U = x - shift (NumPy), against the module's backward, interleaved, CPU-time medians,
1 thread, tune_allocator on. --check: the kernel against the float64 reference, g = 1..16, S % 8 tails, large mean
1e4 and tiny variance.

    PYTHONPATH=$PWD python scripts/zca_dx_proto_ab.py [ROUNDS] [--check]
"""
import os, sys, time
import numpy as np
from threadpoolctl import threadpool_limits
import minigrad as mg
from minigrad.allocator import tune_allocator
from minigrad.kernels import set_num_threads
from minigrad.nn import decorrelated as dec
from minigrad._ext import whiten
print(mg.__file__)
tune_allocator()
set_num_threads(1)

def setup(shape, dt, g=16, mean=0.5, scale=1.0):
    N, C, H, W = shape
    G, S = -(-C // g), H * W
    rng = np.random.default_rng(0)
    x = (mean + scale * rng.standard_normal(shape)).astype(dt)
    dy = rng.standard_normal(shape).astype(dt)
    m = dec.DecorrelatedBatchNorm2d(C, group_size=g)
    m.weight.data[...] = rng.uniform(0.5, 1.5, C)
    _, op = dec._ZCAWhiten.apply_with_ctx(mg.Tensor(x), m.weight, m.bias, G=G, g=g, eps=1e-5)
    return op, dy, G, S

def correctness():
    worst = 0
    for dt in (np.float32, np.float64):
        for C, g in ((16, 16), (5, 5), (7, 3), (20, 16), (9, 9), (1, 1), (24, 12)):
            for S in (1, 7, 8, 9, 15, 16, 17, 23):
                for mean, scale in ((0.5, 1.0), (1e4, 1.0), (0.0, 1e-3)):
                    op, dy, G, _ = setup((3, C, 1, S), dt, g, mean, scale)
                    N = 3
                    rng = np.random.default_rng(2)
                    F = rng.standard_normal((G, g, 2 * g + 1)).astype(dt)
                    xs = op.xs; dys = np.ascontiguousarray(dy.reshape(N, C, S))
                    # float64 reference
                    Fd = F.astype(np.float64)
                    Xp = np.zeros((N, G * g, S)); Xp[:, :C] = xs.astype(np.float64) - op.shift.astype(np.float64)[:, None]
                    Dp = np.zeros((N, G * g, S)); Dp[:, :C] = dys
                    ref = (np.matmul(Fd[:, :, :g], Dp.reshape(N, G, g, S)) + np.matmul(Fd[:, :, g:2 * g], Xp.reshape(N, G, g, S))
                           + Fd[:, :, 2 * g:]).reshape(N, G * g, S)[:, :C]
                    dx = np.full((N, C, S), np.nan, dt)
                    whiten.zca_dx_proto(dx, dys, xs, op.shift, F, g)
                    tol = (np.abs(Fd[:, :, :g]) @ np.abs(Dp.reshape(N, G, g, S)) + np.abs(Fd[:, :, g:2*g]) @ np.abs(Xp.reshape(N, G, g, S)) + np.abs(Fd[:, :, 2*g:])).reshape(N, G*g, S)[:, :C]
                    err = np.max(np.abs(dx - ref) / tol) / np.finfo(dt).eps
                    worst = max(worst, err)
                    assert np.isfinite(dx).all() and err < 4 * g, (dt, C, g, S, mean, err)
    print("prototype vs float64 reference: worst error", worst, "eps of the abs-sum bound")

def old_bwd(op, dy):
    return op.backward(dy)

def new_bwd(op, dy):
    # the backward with dx from the prototype, P1 from U alone
    G, g, m, U, s, W, w = op.G, op.g, op.m, op.U, op.s, op.whitening, op.w
    shift, d = op.shift, op.d
    N, C = op.shape[:2]
    S = op.xs.shape[2]
    dt = op.xs.dtype
    dys = np.ascontiguousarray(dy.reshape(N, C, -1), dt)
    Ub = op.xs - shift[:, None]
    P1 = np.matmul(dys.reshape(N, G, g, S), np.swapaxes(Ub.reshape(N, G, g, S), -1, -2)).sum(axis=0, dtype=np.float64)
    sdy = dys.sum(axis=(0, 2), dtype=np.float64).reshape(G, g)
    P = P1 - sdy[:, :, None] * d[:, None, :]
    dweight = np.einsum("kij,kij->ki", P, W)
    dW = dec._sym(w[:, :, None] * P)
    Ut = np.swapaxes(U, 1, 2)
    K = -1.0 / (s[:, :, None] * s[:, None, :] * (s[:, :, None] + s[:, None, :]))
    A = (2.0 / m) * (U @ (K * (Ut @ dW @ U)) @ Ut)
    M = W * w[:, None, :]
    c = -(M @ sdy[:, :, None]) / m - A @ d[:, :, None]
    F = np.concatenate([M, A, c], axis=2).astype(dt)
    dx = np.empty((N, C, S), dt)
    whiten.zca_dx_proto(dx, dys, op.xs, shift, F, g)
    return dx.reshape(op.shape), dweight.reshape(-1)[:C].astype(dt), sdy.reshape(-1)[:C].astype(dt)

def cpu(f, reps):
    t = time.process_time()
    for _ in range(reps):
        f()
    return (time.process_time() - t) / reps

def main():
    if '--check' in sys.argv: correctness()
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 15
    l0 = os.getloadavg()[0]
    with threadpool_limits(1):
        for shape in ((16, 32, 8, 8), (32, 64, 16, 16)):
            for dt in (np.float32, np.float64):
                op, dy, G, S = setup(shape, dt)
                a, b = old_bwd(op, dy), new_bwd(op, dy)
                rel = [float(np.max(np.abs(p.astype(np.float64) - q)) / np.max(np.abs(p))) for p, q in zip(a, b)]
                N, C = shape[:2]
                B = np.empty((N, G, 33, S), dt)
                F = np.random.default_rng(1).standard_normal((G, 16, 33)).astype(dt)
                dxb = np.empty((N, C, S), dt); dys = np.ascontiguousarray(dy.reshape(N, C, S))
                fns = {"old": lambda: old_bwd(op, dy), "new": lambda: new_bwd(op, dy),
                       "dx kernel": lambda: whiten.zca_dx_proto(dxb, dys, op.xs, op.shift, F, 16),
                       "zca_rows": lambda: mg.kernels.kernels().zca_rows(B, dys, op.xs, op.shift, 16),
                       "P1 GEMM + sum": lambda: np.matmul(B[:, :, :16], np.swapaxes(B[:, :, 16:], -1, -2)).sum(axis=0, dtype=np.float64),
                       "dx GEMM": lambda: np.matmul(F, B, out=dxb.reshape(N, G, 16, S)),
                       "U + P1 from dy, U": lambda: np.matmul(dys.reshape(N, G, 16, S), np.swapaxes((op.xs - op.shift[:, None]).reshape(N, G, 16, S), -1, -2)).sum(axis=0, dtype=np.float64)}
                reps = 3 if shape[0] == 32 else 20
                res = {k: [] for k in fns}
                for r in range(rounds):
                    keys = list(fns)[r % len(fns):] + list(fns)[:r % len(fns)]
                    for k in keys:
                        res[k].append(cpu(fns[k], reps))
                med = {k: np.median(v) * 1e6 for k, v in res.items()}
                ratio = np.median(np.array(res["old"]) / np.array(res["new"]))
                print(f"{'x'.join(map(str, shape))} {np.dtype(dt).name}: old {med['old']:.0f} us, new {med['new']:.0f} us, "
                      f"old/new {ratio:.2f} (paired median); " + ", ".join(f"{k} {v:.0f} us" for k, v in med.items() if k not in ("old", "new")) + "; "
                      f"max rel diff dx/dw/db {rel[0]:.1e}/{rel[1]:.1e}/{rel[2]:.1e}")
    print(f"{rounds} rounds, CPU time, load {l0:.2f} -> {os.getloadavg()[0]:.2f}")

main()
