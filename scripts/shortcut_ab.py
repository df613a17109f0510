"""ResNet-20's 1x1 stride-2 shortcuts on the conv2d_strided kernels (new) against NumPy's subsampled copy, batched
matmul and scatter (old: ``conv._strided`` refusing the 1x1 case), in one process, alternated
(docs/perf/threads.md, session 33). Three modes:

    PYTHONPATH=$PWD python scripts/shortcut_ab.py calls 2 21     # threads, rounds: conv2d forward + backward
    PYTHONPATH=$PWD python scripts/shortcut_ab.py step 2 40 minigrad-compiled   # threads, steps each, framework
    PYTHONPATH=$PWD python scripts/shortcut_ab.py accuracy       # y, dx, dweight against a long double reference
    PYTHONPATH=$PWD python scripts/shortcut_ab.py stem 2 21      # the stem's weight gradient, im2col or direct

``accuracy`` also gives the stem's weight gradient (3 -> 16, 3x3, padding 1, 32x32) on its im2col path (main's
before session 35: ``conv.DIRECT = False``) and on the direct kernel (``conv.DIRECT = True``; session 34 measured its
one chain a chunk and left it out, session 35 sums it by rows and runs it: docs/perf/threads.md); ``stem`` times the
two, alternated, rounds of 10 calls: us a call, wall and main-thread CPU, medians.

``calls``: the two shortcut geometries (batch 32, 16 -> 32 at 32x32, 32 -> 64 at 16x16, float32), a call being
``F.conv2d(x, w, stride=2)`` and its backward; medians of rounds of 20 calls, us a call: wall and main-thread CPU.
``step``: the training step (step_cpu_time.py's; compiled steps captured under their own variant), ms: medians of
the step's wall and main-thread CPU.
"""
import os
import sys
import time

MODE = sys.argv[1]
THREADS = int(sys.argv[2]) if len(sys.argv) > 2 else 1
os.environ["STEP_THREADS"] = str(THREADS)
sys.path.insert(0, os.path.join(os.getcwd(), "scripts"))
import step_cpu_time as S  # noqa: E402

import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
import minigrad.nn.functional as F  # noqa: E402
from minigrad.allocator import tune_allocator  # noqa: E402
from minigrad.nn.functional import conv as cv  # noqa: E402

SHAPES = [(32, 16, 32, 32), (32, 32, 16, 64)]  # N, C, H (= W), O
strided = cv._strided
VARIANTS = {"old": lambda g, backward=False: not g.pointwise and strided(g, backward), "new": strided}


def install(fn):
    cv._strided = fn


def calls(rounds, n=20):
    rng = np.random.default_rng(0)
    for N, C, H, O in SHAPES:
        x = mg.Tensor(rng.standard_normal((N, C, H, H)).astype(np.float32), requires_grad=True)
        w = mg.Tensor(rng.standard_normal((O, C, 1, 1)).astype(np.float32), requires_grad=True)
        dy = rng.standard_normal((N, O, H // 2, H // 2)).astype(np.float32)
        times = {k: [] for k in VARIANTS}
        for r in range(rounds):
            for k in (list(VARIANTS) if r % 2 == 0 else list(VARIANTS)[::-1]):
                install(VARIANTS[k])
                wall, cpu = time.perf_counter(), time.thread_time()
                for _ in range(n):
                    x.grad = w.grad = None
                    F.conv2d(x, w, stride=2).backward(dy)
                times[k].append(((time.perf_counter() - wall) / n * 1e6, (time.thread_time() - cpu) / n * 1e6))
        print(f"{C} -> {O} at {H}x{H}, {THREADS} thread(s): " + ", ".join(
            f"{k} wall {np.median([t[0] for t in v]):.1f} (p10-p90 {np.percentile([t[0] for t in v], 10):.1f}-"
            f"{np.percentile([t[0] for t in v], 90):.1f}) main cpu {np.median([t[1] for t in v]):.1f}"
            for k, v in times.items()) + f" us  (load {os.getloadavg()[0]:.2f})")


def step(steps, framework):
    built = {}
    for k in VARIANTS:  # NOTE: each compiled step captured under its own variant
        install(VARIANTS[k])
        built[k] = S.build(framework, "resnet20")
        for _ in range(3):
            built[k]()
    current = []
    S_step = lambda: built[current[0]]()  # noqa: E731
    rows = S.alternated(S_step, {k: k for k in VARIANTS}, lambda k: (current.clear(), current.append(k),
                                                                      install(VARIANTS[k])), steps, [0.0, 0.0, 0])
    for k, m in rows.items():
        print(f"{framework} {THREADS} thread(s) {k}: step wall {m[0]:.2f} main cpu {m[1]:.2f} ms "
              f"(median of {steps}; load {os.getloadavg()[0]:.2f})")


def accuracy():
    rng = np.random.default_rng(1)
    for N, C, H, O in SHAPES:
        x64, w64 = rng.standard_normal((N, C, H, H)), rng.standard_normal((O, C, 1, 1))
        dy64 = rng.standard_normal((N, O, H // 2, H // 2))
        xl, wl, dyl = (a.astype(np.longdouble) for a in (x64, w64[:, :, 0, 0], dy64))
        want = {"y": np.einsum("oc,nchw->nohw", wl, xl[:, :, ::2, ::2]), "dx": np.zeros(x64.shape, np.longdouble),
                "dweight": np.einsum("nohw,nchw->oc", dyl, xl[:, :, ::2, ::2])[:, :, None, None]}
        want["dx"][:, :, ::2, ::2] = np.einsum("oc,nohw->nchw", wl, dyl)
        for dtype in (np.float32, np.float64):
            for k in VARIANTS:
                install(VARIANTS[k])
                x = mg.Tensor(x64.astype(dtype), requires_grad=True)
                w = mg.Tensor(w64.astype(dtype), requires_grad=True)
                y = F.conv2d(x, w, stride=2)
                y.backward(dy64.astype(dtype))
                got = {"y": y.numpy(), "dx": x.grad.numpy(), "dweight": w.grad.numpy()}
                print(f"{C} -> {O} at {H}x{H} {dtype.__name__} {k}: " + ", ".join(
                    f"{name} max {float(np.abs(got[name] - want[name]).max()):.3g} mean "
                    f"{float(np.abs(got[name] - want[name]).mean()):.3g}" for name in want))


def stem(rounds, n=10):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 3, 32, 32)).astype(np.float32)
    dy = rng.standard_normal((32, 16, 32, 32)).astype(np.float32)
    g = cv._geometry(x.shape, (16, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1, 4, THREADS)
    direct, times = cv.DIRECT, {"im2col": [], "direct": []}
    for r in range(rounds):
        for k in (list(times) if r % 2 == 0 else list(times)[::-1]):
            cv.DIRECT = k == "direct"
            wall, cpu = time.perf_counter(), time.thread_time()
            for _ in range(n):
                cv.conv2d_weight_grad(x, dy, g)
            times[k].append(((time.perf_counter() - wall) / n * 1e6, (time.thread_time() - cpu) / n * 1e6))
    cv.DIRECT = direct
    print(f"stem weight gradient 3 -> 16 at 32x32, {THREADS} thread(s): " + ", ".join(
        f"{k} wall {np.median([t[0] for t in v]):.1f} main cpu {np.median([t[1] for t in v]):.1f}"
        for k, v in times.items()) + f" us  (load {os.getloadavg()[0]:.2f})")


def stem_accuracy():
    direct = cv.DIRECT
    rng = np.random.default_rng(2)
    x64, w64, dy64 = rng.standard_normal((32, 3, 32, 32)), rng.standard_normal((16, 3, 3, 3)), \
        rng.standard_normal((32, 16, 32, 32))
    xp = np.pad(x64.astype(np.longdouble), ((0, 0), (0, 0), (1, 1), (1, 1)))
    want = np.empty((16, 3, 3, 3), np.longdouble)
    for i in range(3):
        for j in range(3):
            want[:, :, i, j] = np.einsum("nohw,nchw->oc", dy64.astype(np.longdouble), xp[:, :, i:i + 32, j:j + 32])
    for dtype in (np.float32, np.float64):
        for k, rule in (("im2col", False), ("direct", True)):
            cv.DIRECT = rule
            x, w = mg.Tensor(x64.astype(dtype)), mg.Tensor(w64.astype(dtype), requires_grad=True)
            F.conv2d(x, w, padding=1).backward(dy64.astype(dtype))
            err = np.abs(w.grad.numpy() - want)
            print(f"stem 3 -> 16 at 32x32 {dtype.__name__} {k}: dweight max {float(err.max()):.3g} mean "
                  f"{float(err.mean()):.3g}")
    cv.DIRECT = direct


if __name__ == "__main__":
    tune_allocator()
    mg.set_num_threads(THREADS)
    if MODE == "calls":
        calls(int(sys.argv[3]))
    elif MODE == "stem":
        stem(int(sys.argv[3]))
    elif MODE == "step":
        step(int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else "minigrad")
    else:
        accuracy()
        stem_accuracy()
