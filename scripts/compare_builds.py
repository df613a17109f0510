"""Compare the norm kernels of two checkouts: same bits, and interleaved A/B timings.

    python scripts/compare_builds.py OLD_CHECKOUT NEW_CHECKOUT            # bits: every kernel, every code path
    python scripts/compare_builds.py OLD NEW --time [--rounds 31]         # timings at the benchmark shapes
    ... --backend numba                                                   # the Numba kernels instead of Cython

Both checkouts must have their extensions built in place (``python setup.py build_ext --inplace``). Their
``minigrad/_ext/norm*.so`` are loaded into this one process under different module names, so the two builds are
called alternately with the same arrays and the same OpenMP runtime. With ``--backend numba`` the two Numba
backends are loaded the same way: a checkout's ``minigrad/kernels/numba/`` package (or, before it was split, its
self-contained ``minigrad/kernels/numba_kernels.py``) as a package or module of its own name.

Bits: batch_norm_forward/backward/inference, group_norm_forward/backward (group norm, layer-norm shaped S == 1
G == 1, instance-norm shaped G == C) and running_stats_update, float32 and float64, n_threads 1 and 2, over
shapes that take every code path of norm.pyx (see the map at its top), on plain, large-mean, float32-overflowing
and non-finite data. Every output is compared byte for byte (NaN payloads and positions included).

Timing: the benchmark shapes of benchmarks/_norms.py, float32, 1 thread, forward and backward; each round calls
old then new (or new then old, alternating) a few times, and the table shows each build's median per call and
new/old.
"""
import argparse
import glob
import importlib.machinery
import importlib.util
import itertools
import os
import sys
import tempfile
import time

import numpy as np

EPS = 1e-5


def load_numba(checkout, tag):
    """The Numba backend of checkout: its package minigrad/kernels/numba/, loaded as _mg_<tag>_numba, or the
    single module minigrad/kernels/numba_kernels.py where there is no package (before the split)."""
    # NOTE: numba's disk cache files code by source path: under this module's name it would be loaded later by a
    # normal import of the same file, which then fails to import the name. A cache of our own, thrown away.
    if "numba" not in sys.modules:
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="compare-builds-numba-")
    pkg = os.path.join(checkout, "minigrad", "kernels", "numba", "__init__.py")
    path = pkg if os.path.exists(pkg) else os.path.join(checkout, "minigrad", "kernels", "numba_kernels.py")
    name = f"_mg_{tag}_numba"
    spec = importlib.util.spec_from_file_location(
        name, path, submodule_search_locations=[os.path.dirname(pkg)] if path == pkg else None)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # NOTE: before exec, so that the package's relative imports resolve
    spec.loader.exec_module(mod)
    return mod


def load_norm(checkout, tag):
    """The norm extension module built in checkout, loaded as _mg_<tag>.norm."""
    found = glob.glob(os.path.join(checkout, "minigrad", "_ext", "norm.cpython-*.so"))
    if not found:
        sys.exit(f"no built norm extension under {checkout}: run python setup.py build_ext --inplace there")
    name = f"_mg_{tag}.norm"
    loader = importlib.machinery.ExtensionFileLoader(name, found[0])
    spec = importlib.util.spec_from_file_location(name, found[0], loader=loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


# ---------------------------------------------------------------------------------------------------------
# bits

# (N, C, S) for batch norm: S == 1 with N and C not multiples of 8; every S threshold around 8, MG_SHORT_RUN (128)
# and MG_LANE_RUN (512); odd C; a shape with several BN_BLOCK_BYTES blocks per thread (S*4 >= BN_RUN_BYTES)
BN_SHAPES = [(1, 1, 1), (4, 3, 1), (37, 13, 1), (61, 101, 1), (8, 16, 1), (1030, 203, 1), (9, 9, 1),
             (5, 3, 3), (4, 5, 7), (3, 7, 8), (3, 5, 49), (2, 3, 127), (3, 5, 128), (2, 7, 196), (2, 3, 511),
             (2, 5, 512), (3, 3, 784), (2, 3, 12544), (16, 11, 12544), (33, 2, 9)]
# (N, C, S, G) for group norm: general groups, layer-norm shaped (S == 1, G == 1), instance-norm shaped (G == C)
GN_SHAPES = [(3, 6, 49, 3), (2, 8, 7, 2), (4, 6, 196, 2), (2, 4, 784, 4), (3, 2, 12544, 1), (2, 9, 3, 3),
             (5, 4, 128, 2), (2, 3, 511, 3), (2, 2, 512, 1),
             (61, 100, 1, 1), (100, 37, 1, 1), (70, 768, 1, 1), (3, 5, 1, 1), (1, 1, 1, 1), (40, 6, 1, 2),
             (3, 5, 49, 5), (2, 7, 127, 7), (2, 3, 784, 3), (1, 4, 12544, 4), (4, 3, 9, 3)]


def datasets(shape, dtype, rng):
    """Named inputs x for one shape: plain, large mean, float32 overflow (|x - K| ~ 1e20), a NaN and an inf."""
    base = rng.standard_normal(shape) * 2 + 0.5
    out = {"plain": base, "large_mean": base * 0.01 + 1e4, "huge": base * 1e20}
    if base.size > 3:
        nan = base.copy()
        nan.flat[base.size // 2] = np.nan
        nan.flat[-1] = np.inf
        out["nonfinite"] = nan
    return {k: np.ascontiguousarray(v, dtype=dtype) for k, v in out.items()}


def bn_case(mod, x, dy, w, b, rm, rv, threads, stats=None):
    """Outputs of the batch-norm kernels; mean, rstd for the backward from stats (the old build's) if given."""
    N, C, S = x.shape
    y, mean, rstd = np.empty_like(x), np.empty(C), np.empty(C)
    mod.batch_norm_forward(y, mean, rstd, x, w, b, EPS, threads)
    m, r = stats if stats is not None else (mean, rstd)
    dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty_like(w)
    mod.batch_norm_backward(dx, dw, db, dy, x, m, r, w, threads)
    yi = np.empty_like(x)
    mod.batch_norm_inference(yi, x, rm, rv, w, b, EPS, threads)
    return {"y": y, "mean": mean, "rstd": rstd, "dx": dx, "dweight": dw, "dbias": db, "y_inference": yi}


def gn_case(mod, x, dy, w, b, G, threads, stats=None):
    N, C, S = x.shape
    y, mean, rstd = np.empty_like(x), np.empty((N, G)), np.empty((N, G))
    mod.group_norm_forward(y, mean, rstd, x, w, b, G, EPS, threads)
    m, r = stats if stats is not None else (mean, rstd)
    dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty_like(w)
    mod.group_norm_backward(dx, dw, db, dy, x, m, r, w, G, threads)
    return {"y": y, "mean": mean, "rstd": rstd, "dx": dx, "dweight": dw, "dbias": db}


def running_case(mod, rm, rv, mean, rstd, threads):
    rm, rv = rm.copy(), rv.copy()
    mod.running_stats_update(rm, rv, mean, rstd, 0.1, EPS, 50.0, threads)
    return {"running_mean": rm, "running_var": rv}


def same_bytes(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def check_bits(old, new):
    rng = np.random.default_rng(14)
    n_cases = n_arrays = 0
    failures = []

    def compare(label, out_old, out_new):
        nonlocal n_cases, n_arrays
        n_cases += 1
        for k in out_old:
            n_arrays += 1
            if not same_bytes(out_old[k], out_new[k]):
                failures.append(f"{label}: {k}")

    for dtype, threads in itertools.product((np.float32, np.float64), (1, 2)):
        for shape in BN_SHAPES:
            C = shape[1]
            dy = rng.standard_normal(shape).astype(dtype)
            w, b = (1 + 0.1 * rng.standard_normal(C)).astype(dtype), (0.1 * rng.standard_normal(C)).astype(dtype)
            rm, rv = (0.1 * rng.standard_normal(C)).astype(dtype), (1 + rng.random(C)).astype(dtype)
            for name, x in datasets(shape, dtype, rng).items():
                a = bn_case(old, x, dy, w, b, rm, rv, threads)
                b_ = bn_case(new, x, dy, w, b, rm, rv, threads, stats=(a["mean"], a["rstd"]))
                compare(f"batch_norm {shape} {np.dtype(dtype).name} t={threads} {name}", a, b_)
        for N, C, S, G in GN_SHAPES:
            shape = (N, C, S)
            dy = rng.standard_normal(shape).astype(dtype)
            w, b = (1 + 0.1 * rng.standard_normal(C)).astype(dtype), (0.1 * rng.standard_normal(C)).astype(dtype)
            for name, x in datasets(shape, dtype, rng).items():
                a = gn_case(old, x, dy, w, b, G, threads)
                b_ = gn_case(new, x, dy, w, b, G, threads, stats=(a["mean"], a["rstd"]))
                compare(f"group_norm {shape} G={G} {np.dtype(dtype).name} t={threads} {name}", a, b_)
        for N, C in [(1, 3), (4, 7), (32, 64)]:
            mean = rng.standard_normal((N, C)) + 3
            rstd = 1 / (0.5 + rng.random((N, C)))
            rm, rv = rng.standard_normal(C).astype(dtype), (1 + rng.random(C)).astype(dtype)
            compare(f"running_stats ({N}, {C}) {np.dtype(dtype).name} t={threads}",
                    running_case(old, rm, rv, mean, rstd, threads), running_case(new, rm, rv, mean, rstd, threads))
    for f in failures:
        print("DIFFERENT BITS:", f)
    print(f"{n_cases} cases, {n_arrays} output arrays compared: {len(failures)} differ")
    return not failures


# ---------------------------------------------------------------------------------------------------------
# timing

# (label, x shape (N, C, S), num_groups or None for batch norm): benchmarks/_norms.py's cases
BENCH = [("BatchNorm2d (32,64,28,28)", (32, 64, 784), None), ("BatchNorm2d (64,128,14,14)", (64, 128, 196), None),
         ("BatchNorm2d (256,512,7,7)", (256, 512, 49), None), ("BatchNorm2d (16,32,112,112)", (16, 32, 12544), None),
         ("BatchNorm1d (60,100)", (60, 100, 1), None), ("BatchNorm1d (4096,1024)", (4096, 1024, 1), None),
         ("LayerNorm (8192,768)", (8192, 768, 1), 1), ("LayerNorm (60,100)", (60, 100, 1), 1),
         ("GroupNorm (32,64,28,28) G=32", (32, 64, 784), 32), ("InstanceNorm2d (32,64,28,28)", (32, 64, 784), 64)]


def bench_callables(mod, shape, groups, arrays):
    x, dy, w, b, y, dx, dw, db, mean, rstd = arrays
    if groups is None:
        fwd = lambda: mod.batch_norm_forward(y, mean, rstd, x, w, b, EPS, 1)  # noqa: E731
        bwd = lambda: mod.batch_norm_backward(dx, dw, db, dy, x, mean, rstd, w, 1)  # noqa: E731
    else:
        fwd = lambda: mod.group_norm_forward(y, mean, rstd, x, w, b, groups, EPS, 1)  # noqa: E731
        bwd = lambda: mod.group_norm_backward(dx, dw, db, dy, x, mean, rstd, w, groups, 1)  # noqa: E731
    fwd()
    return {"forward": fwd, "backward": bwd}


def time_builds(old, new, rounds, only=None):
    print(f"interleaved A/B, float32, 1 thread, {rounds} rounds; medians per call (us)")
    print(f"| case | op | old | new | new/old |\n|---|---|---:|---:|---:|")
    worst = []
    for label, shape, groups in BENCH:
        if only and not any(o in label for o in only):
            continue
        rng = np.random.default_rng(0)
        x = (rng.standard_normal(shape, dtype=np.float32) * 2 + 0.5).astype(np.float32)
        dy = rng.standard_normal(shape, dtype=np.float32)
        C = shape[1]
        w, b = (1 + 0.1 * rng.standard_normal(C)).astype(np.float32), (0.1 * rng.standard_normal(C)).astype(np.float32)
        # NOTE: both builds write the same output arrays: separate allocations alone moved medians by up to 2x
        stats = (C,) if groups is None else (shape[0], groups)
        arrays = (x, dy, w, b, np.empty_like(x), np.empty_like(x), np.empty_like(w), np.empty_like(w),
                  np.empty(stats), np.empty(stats))
        calls = {"old": bench_callables(old, shape, groups, arrays),
                 "new": bench_callables(new, shape, groups, arrays)}
        for op in ("forward", "backward"):
            f_old, f_new = calls["old"][op], calls["new"][op]
            t0 = time.perf_counter()
            f_old()
            one = time.perf_counter() - t0
            reps = max(1, min(50, int(0.02 / max(one, 1e-7))))
            for f in (f_old, f_new, f_old, f_new):
                f()
            ts = {"old": [], "new": []}
            for r in range(rounds):
                order = (("old", f_old), ("new", f_new)) if r % 2 == 0 else (("new", f_new), ("old", f_old))
                for k, f in order:
                    t0 = time.perf_counter()
                    for _ in range(reps):
                        f()
                    ts[k].append((time.perf_counter() - t0) / reps)
            mo, mn = np.median(ts["old"]) * 1e6, np.median(ts["new"]) * 1e6
            worst.append((mn / mo, label, op))
            print(f"| {label} | {op} | {mo:.1f} | {mn:.1f} | {mn / mo:.3f} |", flush=True)
    return worst


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--time", action="store_true", help="time the benchmark shapes instead of checking bits")
    p.add_argument("--rounds", type=int, default=31)
    p.add_argument("--only", nargs="*", help="time only the cases whose label contains one of these")
    p.add_argument("--backend", choices=("cython", "numba"), default="cython")
    a = p.parse_args(argv)
    load = load_numba if a.backend == "numba" else load_norm
    old, new = load(a.old, "old"), load(a.new, "new")
    if a.time:
        time_builds(old, new, a.rounds, a.only)
        return 0
    return 0 if check_bits(old, new) else 1


if __name__ == "__main__":
    sys.exit(main())
