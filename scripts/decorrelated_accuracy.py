"""DecorrelatedBatchNorm2d's training output against the float64 NumPy reference (tests/test_decorrelated.py's
reference_zca, LAPACK's eigh on the float64 copy of the data): the median over 5 seeds of the max and RMS error,
a module file given as ``--before-file`` (its classes on top of this tree's minigrad) against this tree, float32 and
float64 inputs, correlated channels (docs/perf/decorrelated-forward.md):

    PYTHONPATH=$PWD python scripts/decorrelated_accuracy.py --before-file /work/main/minigrad/nn/decorrelated.py
"""
import argparse
import importlib.util
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
import minigrad as mg  # noqa: E402
from minigrad import nn  # noqa: E402
from test_decorrelated import reference_zca  # noqa: E402
CASES = [("16x32x8x8 g16", (16, 32, 8, 8), 16, 0.5, 2.0), ("32x64x16x16 g16", (32, 64, 16, 16), 16, 0.5, 2.0),
         ("8x37x5x7 g16 (padded)", (8, 37, 5, 7), 16, 0.5, 2.0),
         ("16x16x8x8 g16 mean 1e3", (16, 16, 8, 8), 16, 1e3, 1.0),
         ("16x16x8x8 g16 std 1e-2", (16, 16, 8, 8), 16, 1.0, 1e-2), ("16x32x8x8 g1", (16, 32, 8, 8), 1, 0.5, 2.0)]


def errors(classes, shape, g, offset, scale, dtype, seed):
    """[max, rms] error of each class's training output against reference_zca (eps = 1e-5 * scale^2)."""
    rng = np.random.default_rng(seed)
    C = shape[1]
    mix = rng.standard_normal((C, C)) * 0.3 + np.eye(C)
    x = (offset + scale * np.einsum("dc,nchw->ndhw", mix, rng.standard_normal(shape))).astype(dtype)
    eps = 1e-5 * scale ** 2
    ref = reference_zca(x.astype(np.float64), g, eps)
    out = []
    for cls in classes:
        y = cls(C, group_size=g, eps=eps).to(dtype)(mg.Tensor(x)).numpy().astype(np.float64)
        out += [np.abs(y - ref).max(), np.sqrt(((y - ref) ** 2).mean())]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before-file", required=True)
    args = ap.parse_args()
    spec = importlib.util.spec_from_file_location("_old_dbn", args.before_file)
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    classes = (old.DecorrelatedBatchNorm2d, nn.DecorrelatedBatchNorm2d)
    print("| case | dtype | before max err | new max err | before rms err | new rms err |")
    print("|---|---|---|---|---|---|")
    for name, shape, g, offset, scale in CASES:
        for dtype in (np.float32, np.float64):
            E = np.median([errors(classes, shape, g, offset, scale, dtype, seed) for seed in range(5)], axis=0)
            print(f"| {name} | {dtype.__name__} | {E[0]:.2e} | {E[2]:.2e} | {E[1]:.2e} | {E[3]:.2e} |")


if __name__ == "__main__":
    main()
