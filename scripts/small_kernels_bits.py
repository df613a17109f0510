"""Compare this tree's sigmoid and log-softmax kernels bit for bit against another build's .so files.

  PYTHONPATH=$PWD python scripts/small_kernels_bits.py OLD_DIR

OLD_DIR holds the other build's elementwise*.so and softmax*.so (for example copies of /work/main/minigrad/_ext's).
Checks: the float32 sigmoid forward over every float32 bit pattern (2^32, in chunks), and over lengths 1..130 at
every offset of a vector block; the float64 sigmoid and both log-softmax kernels (float32 and float64) over random,
large, small, -inf, NaN and tied inputs, rows of 1..70 classes, N 1..130. Prints the number of differing outputs
per case and exits 1 if any. Also rows longer than softmax.h's blocks, and exp itself over 8 x 2^22 doubles
(ranges, edges, subnormal results, any bits) through log_softmax_backward.
"""
import glob
import importlib.machinery
import importlib.util
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402

from minigrad._ext import elementwise as new_ew  # noqa: E402
from minigrad._ext import softmax as new_sm  # noqa: E402


def load(old_dir, name):
    path = glob.glob(os.path.join(old_dir, f"{name}*.so"))[0]
    loader = importlib.machinery.ExtensionFileLoader(f"minigrad._ext.{name}", path)
    spec = importlib.util.spec_from_file_location(f"minigrad._ext.{name}", path, loader=loader)
    saved = sys.modules.pop(f"minigrad._ext.{name}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.modules[f"minigrad._ext.{name}"] = saved
    return mod


def bits(a):
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


def ndiff(a, b):
    return int(np.count_nonzero(bits(a) != bits(b)))


def main():
    old_dir = sys.argv[1]
    old_ew, old_sm = load(old_dir, "elementwise"), load(old_dir, "softmax")
    assert old_ew is not new_ew and old_sm is not new_sm
    bad = 0

    def report(case, n):
        nonlocal bad
        bad += n
        print(f"{case}: {n} differing outputs")

    # 1. float32 sigmoid over every bit pattern
    chunk = 1 << 24
    n = 0
    for k in range((1 << 32) // chunk):
        x = np.arange(k * chunk, (k + 1) * chunk, dtype=np.uint64).astype(np.uint32).view(np.float32)
        a, b = np.empty_like(x), np.empty_like(x)
        old_ew.sigmoid_forward(a, x, 1)
        new_ew.sigmoid_forward(b, x, 1)
        n += ndiff(a, b)
    report("sigmoid float32, all 2^32 bit patterns", n)

    rng = np.random.default_rng(21)

    def inputs(dt, size):
        yield rng.standard_normal(size).astype(dt)
        yield (rng.standard_normal(size) * 60).astype(dt)
        yield (rng.standard_normal(size) * 1e3).astype(dt)
        yield (rng.standard_normal(size) * 1e-30).astype(dt)
        yield np.sign(rng.standard_normal(size)).astype(dt) * np.exp(rng.uniform(-700, 700, size)).astype(dt)
        x = rng.integers(-3, 3, size).astype(dt)  # ties
        yield x
        x = rng.standard_normal(size).astype(dt)
        x.flat[rng.integers(0, x.size, max(1, x.size // 7))] = -np.inf
        yield x
        x = rng.standard_normal(size).astype(dt)
        x.flat[rng.integers(0, x.size, max(1, x.size // 11))] = rng.choice([np.inf, np.nan, -np.inf, 0.0, -0.0])
        yield x

    # 2. sigmoid at every length and offset (the 16 / 8 / scalar split), both dtypes
    for dt in (np.float32, np.float64):
        n = 0
        for size in range(1, 131):
            for off in range(0, 17):
                for x in inputs(dt, size + off):
                    x = x[off:]
                    a, b = np.empty_like(x), np.empty_like(x)
                    old_ew.sigmoid_forward(a, x, 1)
                    new_ew.sigmoid_forward(b, x, 1)
                    n += ndiff(a, b)
        report(f"sigmoid {dt.__name__}, lengths 1..130 x offsets 0..16", n)

    # 3. log-softmax forward and backward, rows of 1..70 classes, N 1..130
    for dt in (np.float32, np.float64):
        nf = nb = 0
        for D in range(1, 71):
            for N in (1, 2, 3, 7, 60, 130) if D > 12 else range(1, 131, 3):
                for x in inputs(dt, (N, D)):
                    ya, yb = np.empty_like(x), np.empty_like(x)
                    old_sm.log_softmax_forward(ya, x, 1)
                    new_sm.log_softmax_forward(yb, x, 1)
                    nf += ndiff(ya, yb)
                    for dy in inputs(dt, (N, D)):
                        for y in (ya, dy):  # y as the forward's output, and arbitrary
                            da, db = np.empty_like(x), np.empty_like(x)
                            old_sm.log_softmax_backward(da, dy, y, 1)
                            new_sm.log_softmax_backward(db, dy, y, 1)
                            nb += ndiff(da, db)
                        break
        report(f"log_softmax_forward {dt.__name__}", nf)
        report(f"log_softmax_backward {dt.__name__}", nb)
    # 4. rows longer than softmax.h's MGS_BLOCK (256): blocks of exps within a row
    for dt in (np.float32, np.float64):
        nf = nb = 0
        for D in (255, 256, 257, 300, 512, 513, 1000, 4099):
            for N in (1, 2, 5):
                for x in inputs(dt, (N, D)):
                    ya, yb = np.empty_like(x), np.empty_like(x)
                    old_sm.log_softmax_forward(ya, x, 1)
                    new_sm.log_softmax_forward(yb, x, 1)
                    nf += ndiff(ya, yb)
                    dy = rng.standard_normal((N, D)).astype(dt)
                    for y in (ya, x):
                        da, db = np.empty_like(x), np.empty_like(x)
                        old_sm.log_softmax_backward(da, dy, y, 1)
                        new_sm.log_softmax_backward(db, dy, y, 1)
                        nb += ndiff(da, db)
        report(f"log_softmax_forward {dt.__name__}, D 255..4099", nf)
        report(f"log_softmax_backward {dt.__name__}, D 255..4099", nb)

    # 5. exp itself: log_softmax_backward with dy = (1, 0, 0, ...) per row gives dx = -exp(y) exactly past column 0
    M = 1 << 22
    sets = {
        "uniform [-746, 710]": rng.uniform(-746, 710, M),
        "uniform [-40, 0]": rng.uniform(-40, 0, M),
        "subnormal results [-746, -708]": rng.uniform(-746, -708, M),
        "near overflow [705, 710]": rng.uniform(705, 710, M),
        "tiny |y| < 2^-50": rng.uniform(-1, 1, M) * 2.0 ** rng.integers(-1074, -50, M),
        "near [-512, 512] edges": np.concatenate([rng.uniform(-512.5, -511.5, M // 2),
                                                  rng.uniform(511.5, 512.5, M // 2)]),
        "k ln2/128 +- 8 ulp": np.nextafter(rng.integers(-90000, 90000, M) * (np.log(2) / 128),
                                           np.inf) + rng.integers(-8, 8, M) * 2.0 ** -44,
        "any bits": rng.integers(0, 2 ** 63, M, dtype=np.uint64).view(np.float64) * rng.choice([-1.0, 1.0], M),
    }
    for name, y in sets.items():
        y = np.ascontiguousarray(y.reshape(-1, 64))
        dy = np.zeros_like(y)
        dy[:, 0] = 1.0
        da, db = np.empty_like(y), np.empty_like(y)
        old_sm.log_softmax_backward(da, dy, y, 1)
        new_sm.log_softmax_backward(db, dy, y, 1)
        report(f"exp through log_softmax_backward float64, {name} ({M})", ndiff(da, db))
    print("vector exp in use:", new_sm.exp_vectorized())
    print("IDENTICAL" if bad == 0 else "DIFFERENT")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
