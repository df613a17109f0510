"""PROTOTYPE 2 (session 37, h-dbnfuse; reverted after measuring): dx = [M', A] [dY; x - shift] + c as a float32 AVX2
kernel (whiten.zca_dx2_proto: per 16 columns [dy; x - shift] staged, 4 output rows x 2 vectors a block), checked
against the float64 reference, then timed beside zca_rows + the dx GEMM it replaces and prototype 1, interleaved.

    PYTHONPATH=$PWD python scripts/zca_dx2_proto_ab.py
"""
import sys
sys.argv = ["x"]
exec(open("" + __import__("os").path.join(__import__("os").path.dirname(__import__("os").path.abspath(__file__)), "zca_dx_proto_ab.py") + "").read().replace("\nmain()\n", "\n"))
# correctness of prototype 2 against the float64 reference
worst = 0
for C, g in ((16, 16), (5, 5), (7, 3), (20, 16), (9, 9), (1, 1), (24, 12), (13, 13)):
    for S in (16, 32, 64):
        for mean, scale in ((0.5, 1.0), (1e4, 1.0), (0.0, 1e-3)):
            op, dy, G, _ = setup((3, C, 1, S), np.float32, g, mean, scale)
            N = 3
            F = np.random.default_rng(2).standard_normal((G, g, 2 * g + 1)).astype(np.float32)
            Fd = F.astype(np.float64)
            Xp = np.zeros((N, G * g, S)); Xp[:, :C] = op.xs.astype(np.float64) - op.shift.astype(np.float64)[:, None]
            Dp = np.zeros((N, G * g, S)); Dp[:, :C] = dy.reshape(N, C, S)
            ref = (np.matmul(Fd[:, :, :g], Dp.reshape(N, G, g, S)) + np.matmul(Fd[:, :, g:2*g], Xp.reshape(N, G, g, S)) + Fd[:, :, 2*g:]).reshape(N, G*g, S)[:, :C]
            tol = (np.abs(Fd[:, :, :g]) @ np.abs(Dp.reshape(N, G, g, S)) + np.abs(Fd[:, :, g:2*g]) @ np.abs(Xp.reshape(N, G, g, S)) + np.abs(Fd[:, :, 2*g:])).reshape(N, G*g, S)[:, :C]
            dx = np.full((N, C, S), np.nan, np.float32)
            whiten.zca_dx2_proto(dx, np.ascontiguousarray(dy.reshape(N, C, S)), op.xs, op.shift, F, g)
            err = np.max(np.abs(dx - ref) / tol) / np.finfo(np.float32).eps
            assert np.isfinite(dx).all() and err < 4 * g, (C, g, S, mean, err)
            worst = max(worst, err)
print("prototype 2 vs float64 reference: worst", worst, "eps of the abs-sum bound")
l0 = os.getloadavg()[0]
with threadpool_limits(1):
    for shape in ((16, 32, 8, 8), (32, 64, 16, 16)):
        dt = np.float32
        op, dy, G, S = setup(shape, dt)
        N, C = shape[:2]; g = 16
        dys = np.ascontiguousarray(dy.reshape(N, C, S))
        B = np.empty((N, G, 33, S), dt)
        F = np.random.default_rng(1).standard_normal((G, 16, 33)).astype(dt)
        dx = np.empty((N, C, S), dt)
        fns = {"zca_rows + dx GEMM": lambda: (mg.kernels.kernels().zca_rows(B, dys, op.xs, op.shift, g), np.matmul(F, B, out=dx.reshape(N, G, g, S))),
               "dx GEMM": lambda: np.matmul(F, B, out=dx.reshape(N, G, g, S)),
               "proto 1 (group_whiten block)": lambda: whiten.zca_dx_proto(dx, dys, op.xs, op.shift, F, g),
               "proto 2 (4x2 staged)": lambda: whiten.zca_dx2_proto(dx, dys, op.xs, op.shift, F, g)}
        res = {k: [] for k in fns}
        reps = 3 if shape[0] == 32 else 20
        for r in range(15):
            keys = list(fns)[r % len(fns):] + list(fns)[:r % len(fns)]
            for k in keys:
                res[k].append(cpu(fns[k], reps))
        fl = 2 * N * C * 33 * S
        print(shape, ", ".join(f"{k} {np.median(v)*1e6:.0f} us ({fl/np.median(v)/1e9:.1f} GFLOP/s)" for k, v in res.items()))
print(f"15 rounds, CPU time medians, load {l0:.2f} -> {os.getloadavg()[0]:.2f}")
