"""EvoNorm-B0's training forward on rows of -0.0 (issue #17, session 35's note: the forward's sums over n of the rows'
means start from the first term, NumPy's from 0.0): y against the torch composition of bench_norm_family.py (the
sign of every zero), and every output (y, lo, hi, imean, irstd, mean, rstd) against the NumPy reference's sign of
zero, on every backend, float32 and float64, C = 1 (the pairwise sums, N = 9 and 200) and C = 3, a channel, a row
or all of x -0.0, weight -1, bias +0 and -0.

    PYTHONPATH=$PWD python scripts/evonorm_b0_negzero_check.py
"""
import numpy as np
import torch

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import kernels
from minigrad.kernels import contract, reference

EPS = 1e-5


def outputs(fn, x, v, w, b):
    N, C, S = x.shape
    _, arrays = contract.SPECS["evonorm_b0_forward"]
    dims = {"N": N, "C": C, "S": S}
    outs = [np.empty(tuple(dims[s] for s in arrays[name][0]), np.float64 if arrays[name][1] == "f64" else x.dtype)
            for name in contract.OUTPUTS["evonorm_b0_forward"]]
    fn(*outs, x, v, w, b, EPS)
    return outs


def main():
    cases = differ = 0
    for name in mg.available_backends():
        for dtype in (np.float32, np.float64):
            for C, N in ((1, 9), (1, 200), (3, 2), (3, 9)):
                for where in ("channel", "row", "all"):
                    for bval in (0.0, -0.0):
                        x = np.random.default_rng(1).standard_normal((N, C, 2, 2)).astype(dtype)
                        if where == "channel":
                            x[:, 0] = -0.0
                        elif where == "row":
                            x[1, 0] = -0.0
                        else:
                            x[...] = -0.0
                        v, w, b = np.full(C, 0.5, dtype), np.full(C, -1.0, dtype), np.full(C, bval, dtype)
                        with kernels.using_backend(name):
                            y = F.evonorm_b0(mg.Tensor(x), mg.Tensor(v), None, mg.Tensor(w), mg.Tensor(b),
                                             training=True, eps=EPS).numpy()
                        xt = torch.tensor(x)
                        batch = (xt.var(dim=(0, 2, 3), unbiased=False, keepdim=True) + EPS).sqrt()
                        inst = (xt.var(dim=(2, 3), unbiased=False, keepdim=True) + EPS).sqrt()
                        col = lambda a: torch.tensor(a).reshape(1, -1, 1, 1)  # noqa: E731
                        yt = (xt / torch.maximum(batch, col(v) * xt + inst) * col(w) + col(b)).numpy()
                        x3 = x.reshape(N, C, 4)
                        got = outputs(kernels.load(name).evonorm_b0_forward, x3, v, w, b)
                        want = outputs(reference.evonorm_b0_forward, x3, v, w, b)
                        pairs = [("y vs torch", y, yt)] + [(f"{what} vs reference", g, r) for what, g, r in zip(
                            contract.OUTPUTS["evonorm_b0_forward"], got, want)]
                        for what, g, r in pairs:
                            zero = (g == 0) | (r == 0)
                            bad = np.count_nonzero(np.signbit(g[zero]) != np.signbit(r[zero]))
                            cases += 1
                            if bad:
                                differ += 1
                                print(f"{name} {np.dtype(dtype).name} C={C} N={N} {where} b={bval}: {what}: "
                                      f"{bad} zeros of the other sign")
    print(f"{cases} comparisons, {differ} with a zero of the other sign")


if __name__ == "__main__":
    main()
