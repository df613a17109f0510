"""PROTOTYPE (session 37, h-dbnfuse; reverted after measuring): the float32 backward with P1 and dx from dy and x
(prototypes 3 and 2, no B) against the module's backward: errors against the float64 backward, then interleaved
CPU-time A/B, 1 thread, tune_allocator on.

    PYTHONPATH=$PWD python scripts/zca_fused_proto_ab.py
"""
import sys
sys.argv = ["x"]
exec(open("" + __import__("os").path.join(__import__("os").path.dirname(__import__("os").path.abspath(__file__)), "zca_dx_proto_ab.py") + "").read().replace("\nmain()\n", "\n"))
def new_bwd2(op, dy):
    G, g, m, U, s, W, w = op.G, op.g, op.m, op.U, op.s, op.whitening, op.w
    shift, d = op.shift, op.d
    N, C = op.shape[:2]
    S = op.xs.shape[2]
    dt = op.xs.dtype
    dys = np.ascontiguousarray(dy.reshape(N, C, -1), dt)
    P1 = np.empty((G, g, g + 1))
    whiten.zca_p1_proto(P1, dys, op.xs, shift, g)
    sdy = P1[:, :, g]
    P = P1[:, :, :g] - sdy[:, :, None] * d[:, None, :]
    dweight = np.einsum("kij,kij->ki", P, W)
    dW = dec._sym(w[:, :, None] * P)
    Ut = np.swapaxes(U, 1, 2)
    K = -1.0 / (s[:, :, None] * s[:, None, :] * (s[:, :, None] + s[:, None, :]))
    A = (2.0 / m) * (U @ (K * (Ut @ dW @ U)) @ Ut)
    M = W * w[:, None, :]
    c = -(M @ sdy[:, :, None]) / m - A @ d[:, :, None]
    F = np.concatenate([M, A, c], axis=2).astype(dt)
    dx = np.empty((N, C, S), dt)
    whiten.zca_dx2_proto(dx, dys, op.xs, shift, F, g)
    return dx.reshape(op.shape), dweight.reshape(-1)[:C].astype(dt), sdy.reshape(-1)[:C].astype(dt)
l0 = os.getloadavg()[0]
with threadpool_limits(1):
    for shape in ((16, 32, 8, 8), (32, 64, 16, 16)):
        for mean in (0.5, 1e4):
            op, dy, G, S = setup(shape, np.float32, 16, mean)
            a, b = op.backward(dy), new_bwd2(op, dy)
            # float64 reference of the backward: the module's backward on float64 copies of the same forward
            op64, _, _, _ = setup(shape, np.float64, 16, mean)
            r = op64.backward(dy.astype(np.float64))
            errs = [(float(np.max(np.abs(p.astype(np.float64) - q)) / np.max(np.abs(q)))) for p, q in zip(a, r)]
            errn = [(float(np.max(np.abs(p.astype(np.float64) - q)) / np.max(np.abs(q)))) for p, q in zip(b, r)]
            print(f"{'x'.join(map(str, shape))} mean {mean:g}: max |err|/max|ref| vs the float64 backward (dx, dw, db): "
                  f"old {errs[0]:.1e} {errs[1]:.1e} {errs[2]:.1e}, new {errn[0]:.1e} {errn[1]:.1e} {errn[2]:.1e}")
        op, dy, G, S = setup(shape, np.float32)
        fns = {"old": lambda: op.backward(dy), "new": lambda: new_bwd2(op, dy)}
        res = {k: [] for k in fns}
        reps = 3 if shape[0] == 32 else 20
        for r_ in range(21):
            keys = list(fns)[r_ % 2:] + list(fns)[:r_ % 2]
            for k in keys:
                res[k].append(cpu(fns[k], reps))
        ratio = np.median(np.array(res["old"]) / np.array(res["new"]))
        print(f"{'x'.join(map(str, shape))} float32 backward: old {np.median(res['old'])*1e6:.0f} us, new {np.median(res['new'])*1e6:.0f} us, old/new {ratio:.2f} (paired)")
print(f"21 rounds, CPU time medians, load {l0:.2f} -> {os.getloadavg()[0]:.2f}")
