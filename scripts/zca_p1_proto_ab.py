"""PROTOTYPE 3 (session 37, h-dbnfuse; reverted after measuring): P1 = sum_n [dY] [x - shift; 1]^T from dy and x
(whiten.zca_p1_proto, float32 AVX2, S % 8 = 0: 4 dy rows x 3 columns a block, float32 lanes over s, then float64
over n), checked against the float64 reference, then zca_rows + P1 GEMM + dx GEMM against prototypes 3 + 2.

    PYTHONPATH=$PWD python scripts/zca_p1_proto_ab.py
"""
import sys
sys.argv = ["x"]
exec(open("" + __import__("os").path.join(__import__("os").path.dirname(__import__("os").path.abspath(__file__)), "zca_dx_proto_ab.py") + "").read().replace("\nmain()\n", "\n"))
worst = 0
for C, g in ((16, 16), (5, 5), (7, 3), (20, 16), (9, 9), (1, 1), (24, 12), (13, 13), (2, 2), (4, 4)):
    for S in (8, 16, 24, 64):
        for mean, scale in ((0.5, 1.0), (1e4, 1.0), (0.0, 1e-3)):
            op, dy, G, _ = setup((3, C, 1, S), np.float32, g, mean, scale)
            N = 3
            Xp = np.zeros((N, G * g, S)); Xp[:, :C] = op.xs.astype(np.float64) - op.shift.astype(np.float64)[:, None]
            Dp = np.zeros((N, G * g, S)); Dp[:, :C] = dy.reshape(N, C, S)
            Xp1 = np.concatenate([Xp.reshape(N, G, g, S), np.ones((N, G, 1, S))], axis=2)
            ref = np.matmul(Dp.reshape(N, G, g, S), np.swapaxes(Xp1, -1, -2)).sum(0)
            tol = np.matmul(np.abs(Dp.reshape(N, G, g, S)), np.swapaxes(np.abs(Xp1), -1, -2)).sum(0)
            P1 = np.full((G, g, g + 1), np.nan)
            whiten.zca_p1_proto(P1, np.ascontiguousarray(dy.reshape(N, C, S)), op.xs, op.shift, g)
            # past gk in the last group: zeros
            e = np.abs(P1 - ref) / np.where(tol > 0, tol, 1)
            err = np.max(e) / np.finfo(np.float32).eps
            assert np.isfinite(P1).all() and err < 4 * S, (C, g, S, mean, err)
            worst = max(worst, err)
print("prototype 3 (P1) vs float64 reference: worst", worst, "float eps of the abs-sum bound")
l0 = os.getloadavg()[0]
with threadpool_limits(1):
    for shape in ((16, 32, 8, 8), (32, 64, 16, 16)):
        dt = np.float32
        op, dy, G, S = setup(shape, dt)
        N, C = shape[:2]; g = 16
        dys = np.ascontiguousarray(dy.reshape(N, C, S))
        B = np.empty((N, G, 33, S), dt)
        F = np.random.default_rng(1).standard_normal((G, 16, 33)).astype(dt)
        dx = np.empty((N, C, S), dt); P1 = np.empty((G, g, g + 1))
        def old3():
            mg.kernels.kernels().zca_rows(B, dys, op.xs, op.shift, g)
            np.matmul(B[:, :, :g], np.swapaxes(B[:, :, g:], -1, -2)).sum(axis=0, dtype=np.float64)
            np.matmul(F, B, out=dx.reshape(N, G, g, S))
        def new2():
            whiten.zca_p1_proto(P1, dys, op.xs, op.shift, g)
            whiten.zca_dx2_proto(dx, dys, op.xs, op.shift, F, g)
        fns = {"zca_rows + P1 GEMM + dx GEMM": old3, "P1 kernel + dx kernel (prototypes 3 + 2)": new2,
               "P1 GEMM + sum": lambda: np.matmul(B[:, :, :g], np.swapaxes(B[:, :, g:], -1, -2)).sum(axis=0, dtype=np.float64),
               "P1 kernel": lambda: whiten.zca_p1_proto(P1, dys, op.xs, op.shift, g)}
        res = {k: [] for k in fns}
        reps = 3 if shape[0] == 32 else 20
        for r in range(15):
            keys = list(fns)[r % len(fns):] + list(fns)[:r % len(fns)]
            for k in keys:
                res[k].append(cpu(fns[k], reps))
        ratio = np.median(np.array(res["zca_rows + P1 GEMM + dx GEMM"]) / np.array(res["P1 kernel + dx kernel (prototypes 3 + 2)"]))
        print(shape, ", ".join(f"{k} {np.median(v)*1e6:.0f} us" for k, v in res.items()), f"; old3/new2 {ratio:.2f} (paired)")
print(f"15 rounds, CPU time medians, load {l0:.2f} -> {os.getloadavg()[0]:.2f}")
