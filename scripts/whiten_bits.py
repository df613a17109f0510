"""Decorrelated batch norm's results bit for bit before and after a change (whiten.pyx brought into the kernel
contract): the module end to end on the cython and numpy backends, and the cython kernels against another build's
whiten*.so.

  PYTHONPATH=$PWD python scripts/whiten_bits.py save FILE      # before the change: the module's results
  PYTHONPATH=$PWD python scripts/whiten_bits.py check FILE     # after it: the same cases, compared with FILE
  PYTHONPATH=$PWD python scripts/whiten_bits.py kernels OLD_DIR   # OLD_DIR holds the old build's whiten*.so

Cases (seeded): N 2..6, C 1..40, H, W 1..7 (S 1..49) and group sizes 1, 16 and random ones in between, so that
some last groups are padded (C % group size > 0), float32 and float64, 360 of each. ``save``/``check`` run one
training step's forward and backward (random dy) twice, per backend, and keep y, dx, dweight, dbias, the running
mean, covariance and whitening matrices, and the forward's statistics (mean, cov, whitening, s). ``kernels`` calls
the old build's zca_forward, zca_rows, running_average_update and sym_eigh directly (the contract's signatures)
and the registry's cython kernels on the same arrays, over these cases and larger ones (EXTRA: the benchmark's shapes,
a mean 1e3 above a spread of 1e-3), and the new zca_running_update against the old build's running_average_update
of each buffer. Prints the differing outputs per kernel or backend and exits 1 if any.
"""
import glob
import importlib.machinery
import importlib.util
import os
import pickle
import sys

import numpy as np

import minigrad as mg
from minigrad import kernels, nn
from minigrad.kernels import reference
from minigrad.nn import decorrelated as dec

CASES = 360


def cases():
    rng = np.random.default_rng(2026)
    for i in range(CASES):
        N, C = int(rng.integers(2, 7)), int(rng.integers(1, 41))
        H, W = int(rng.integers(1, 8)), int(rng.integers(1, 8))
        g = (1, 16, int(rng.integers(2, 17)))[i % 3]
        for dtype in (np.float32, np.float64):
            seed = int(rng.integers(1 << 30))
            yield i, (N, C, H, W), g, dtype, seed


# the kernels mode's larger cases besides (N, C, H, W, group size, offset, scale): the benchmark's two shapes, a
# padded last group, a mean far above the spread (float32's shift), S not a multiple of 16
EXTRA = [(16, 32, 8, 8, 16, 0.5, 1.0), (32, 64, 16, 16, 16, 0.5, 1.0), (8, 37, 5, 7, 16, 0.5, 1.0),
         (16, 16, 8, 8, 16, 1e3, 1e-3), (4, 48, 9, 9, 12, 0.5, 1.0), (6, 40, 6, 11, 16, -2.0, 1e-2)]


def extra_cases():
    rng = np.random.default_rng(2027)
    for i, (N, C, H, W, g, offset, scale) in enumerate(EXTRA):
        for dtype in (np.float32, np.float64):
            for _ in range(2):
                yield CASES + i, (N, C, H, W), g, dtype, int(rng.integers(1 << 30)), offset, scale


def data(shape, dtype, seed, offset=0.5, scale=1.0):
    rng = np.random.default_rng(seed)
    C = shape[1]
    mix = rng.standard_normal((C, C)) + 2 * np.eye(C)  # correlated channels, a mean away from 0
    x = offset + scale * np.einsum("dc,nchw->ndhw", mix, rng.standard_normal(shape))
    return x.astype(dtype), rng.standard_normal(shape).astype(dtype), rng.standard_normal((2, C))


def module_run(shape, g, dtype, seed):
    x0, dy, (w, b) = data(shape, dtype, seed)
    m = nn.DecorrelatedBatchNorm2d(shape[1], group_size=g, momentum=0.3).to(dtype)
    m.weight.data[...], m.bias.data[...] = 1 + 0.2 * w, 0.1 * b
    out = []
    for step in range(2):
        x = mg.Tensor(x0 if step == 0 else x0[::-1].copy(), requires_grad=True)
        y, ctx = dec._ZCAWhiten.apply_with_ctx(x, m.weight, m.bias, G=m._G, g=m._g, eps=m.eps)
        m._update_running(ctx, x0.shape[0] * x0.shape[2] * x0.shape[3], m.num_batches_tracked.data,
                          m.running_mean.data, m.running_cov.data, m.running_whitening.data)
        (y * mg.Tensor(dy)).sum().backward()
        out += [y.numpy(), x.grad.numpy(), ctx.mean, ctx.cov, ctx.whitening, ctx.s]
    out += [m.weight.grad.numpy(), m.bias.grad.numpy(), m.running_mean.numpy(), m.running_cov.numpy(),
            m.running_whitening.numpy()]
    return [np.array(a, copy=True) for a in out]


def all_runs():
    runs = {}
    for backend in ("cython", "numpy"):
        with mg.using_backend(backend):
            for i, shape, g, dtype, seed in cases():
                runs[(backend, i, np.dtype(dtype).name)] = module_run(shape, g, dtype, seed)
    return runs


def load_old(old_dir):
    path = glob.glob(os.path.join(old_dir, "whiten*.so"))[0]
    name = "minigrad._ext.whiten"
    loader = importlib.machinery.ExtensionFileLoader(name, path)
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    saved = sys.modules.pop(name, None)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    if saved is not None:
        sys.modules[name] = saved
    return mod


def kernel_runs(old):
    """(kernel, differing values, values compared) over the cases, old build against the registry's cython."""
    k = kernels.load("cython")
    counts = {}
    for i, (N, C, H, W_), g, dtype, seed, *spread in [(*c, 0.5, 1.0) for c in cases()] + list(extra_cases()):
        x, dy, (w, b) = data((N, C, H, W_), dtype, seed, *spread)
        xs, dys = x.reshape(N, C, -1), dy.reshape(N, C, -1)
        S = xs.shape[2]
        g = min(g, C)
        G = -(-C // g)
        wp = np.ones((G, g))
        wp.reshape(-1)[:C] = 1 + 0.2 * w
        bias = 0.1 * b
        runs = []
        for impl in ("old", "new"):
            outs = [np.empty_like(xs), np.empty((G, g, g)), np.empty((G, g)), np.empty((G, g, g)),
                    np.empty((G, g, g)), np.empty((G, g)), np.empty(C, dtype), np.empty((G, g)), np.empty(C)]
            y, cov, lam, U, W, s, shift, d, mean = outs
            if impl == "old":
                assert old.zca_forward(y, cov, lam, U, W, s, shift, d, mean, xs, wp, bias, g, 1e-5, 2)
            else:
                k.zca_forward(y, cov, lam, U, W, s, shift, d, mean, xs, wp, bias, g, 1e-5)
            B = np.empty((N, G, 2 * g + 1, S), dtype)
            if impl == "old":
                old.zca_rows(B, dys, xs, shift, g, 2)
            else:
                k.zca_rows(B, dys, xs, shift, g)
            lam2, U2 = np.empty((G, g)), np.empty((G, g, g))
            A = np.ascontiguousarray(cov + 1e-5 * np.eye(g))
            if impl == "old":
                assert old.sym_eigh(lam2, U2, A, 1)
            else:
                k.sym_eigh(lam2, U2, A)
            buf = np.ascontiguousarray(W.astype(dtype))
            f, scale = 0.1 + 0.8 * (seed % 97) / 97, 1.0 + (seed % 13) / 13
            if impl == "old":
                old.running_average_update(buf.reshape(-1), cov.reshape(-1), f, scale, 1)
            else:
                k.running_average_update(buf.reshape(-1), cov.reshape(-1), f, scale)
            # the three running averages: the old build's running_average_update of each (the padding the
            # identity, as decorrelated.py wrote it) against the new zca_running_update
            run = [np.ascontiguousarray(a.astype(dtype)) for a in (mean[::-1], W[::-1], cov)]
            scale = N * S / (N * S - 1)
            if impl == "old":
                news, sc = [mean, cov * scale, W.copy()], 1.0
                if G * g != C:
                    for a in news[1:]:
                        reference.whiten.pad_identity(a, C)
                else:
                    news[1], sc = cov, scale
                for a, new, s_ in zip(run, news, (1.0, sc, 1.0)):
                    old.running_average_update(a.reshape(-1), new.reshape(-1), f, s_, 1)
            else:
                k.zca_running_update(*run, mean, cov, W, f, scale, g)
            runs.append({"zca_forward": outs, "zca_rows": [B], "sym_eigh": [lam2, U2],
                         "running_average_update": [buf], "zca_running_update (old: 3 running_average_update)": run})
        for kernel in runs[0]:
            for a, b in zip(runs[0][kernel], runs[1][kernel]):
                d, n = counts.get(kernel, (0, 0))
                counts[kernel] = (d + ndiff_values(a, b), n + a.size)
    return counts


def ndiff_values(a, b):
    """The number of values whose bits differ."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return max(a.size, 1)
    u = np.uint32 if a.dtype.itemsize == 4 else np.uint64
    return int(np.count_nonzero(a.view(u) != b.view(u)))


def main():
    mode, path = sys.argv[1], sys.argv[2]
    bad = 0
    shapes = [(C, min(g, C)) for _, (N, C, H, W), g, dtype, _ in cases() if dtype == np.float32]
    print(f"{len(shapes)} cases a dtype: {sum(C % g > 0 for C, g in shapes)} with a padded last group, "
          f"{sum(g == 1 for C, g in shapes)} of group size 1, {sum(g == 16 for C, g in shapes)} of 16")
    if mode == "save":
        with open(path, "wb") as f:
            pickle.dump(all_runs(), f)
        print(f"saved {2 * CASES} cases per backend to {path}")
        return 0
    if mode == "check":
        with open(path, "rb") as f:
            before = pickle.load(f)
        after = all_runs()
        for backend in ("cython", "numpy"):
            keys = [key for key in before if key[0] == backend]
            diff = sum(ndiff_values(a, b) for key in keys for a, b in zip(before[key], after[key]))
            total = sum(a.size for key in keys for a in before[key])
            print(f"{backend}: {len(keys)} cases, {diff} of {total} values differ")
            bad += diff
    elif mode == "kernels":
        kernels.load("cython")  # NOTE: first, so that the registry imports this tree's whiten.pyx
        old = load_old(path)
        for kernel, (diff, total) in kernel_runs(old).items():
            print(f"{kernel}: {diff} of {total} values differ (old build vs the registry's cython kernel)")
            bad += diff
    else:
        print(__doc__)
        return 2
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
