"""Two or more builds of the conv extension side by side in one process (the kernels alone, 1 thread, CPU time,
interleaved, 15 rounds; median and best in ms), named A, B, C, ... in the order given: conv2d_direct and
conv2d_direct_weight_grad on ResNet-20's unit-stride layers at batch 32, and im2col on the stride-2 layers' chunks;
the outputs must be the same bits (with --close: equal to A's within float32 rounding, for builds that sum in
another order).

    PYTHONPATH=$PWD python scripts/conv_kernel_ab.py /work/main/minigrad/_ext/conv.*.so minigrad/_ext/conv.*.so
"""
import importlib.util
import os
import sys
import time

os.environ["OMP_NUM_THREADS"] = "1"
import numpy as np  # noqa: E402


def load(path):
    spec = importlib.util.spec_from_file_location("minigrad._ext.conv", path)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def timed(fns, rounds=15, reps=5):
    t = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            t0 = time.process_time()
            for _ in range(reps):
                f()
            t[k].append((time.process_time() - t0) / reps * 1e3)
    return {k: (float(np.median(v)), min(v)) for k, v in t.items()}


def main():
    from minigrad.allocator import tune_allocator
    tune_allocator()  # as step_cpu_time.py: the kernels' scratch reused from the heap, not page-faulted in
    close = "--close" in sys.argv
    mods = {chr(ord("A") + i): load(p) for i, p in enumerate(a for a in sys.argv[1:] if a != "--close")}
    rng = np.random.default_rng(0)
    for C, H in ((16, 32), (32, 16), (64, 8)):
        x, dy = (rng.standard_normal((32, C, H, H)).astype(np.float32) for _ in range(2))
        w = rng.standard_normal((C, C * 9)).astype(np.float32)
        out = {k: (np.empty_like(x), np.empty_like(w)) for k in mods}
        fns = {}
        for k, m in mods.items():
            fns[k, "forward"] = lambda m=m, k=k: m.conv2d_direct(out[k][0], x, w, 3, 3, (1, 1), 1)
            fns[k, "weight_grad"] = lambda m=m, k=k: m.conv2d_direct_weight_grad(out[k][1], x, dy, 3, 3, (1, 1), 1)
        t = timed(fns)
        for k in mods:
            for a, b in zip(out["A"], out[k]):
                assert np.allclose(a, b, rtol=1e-4, atol=1e-3) if close else np.array_equal(a, b), f"A and {k} differ"
        print(f"{C:2d} -> {C:2d}, {H}x{H}: " + ", ".join(f"{k}/{p} {m:.3f} ({b:.3f})" for (k, p), (m, b) in t.items()))
    for C, H, nb in ((16, 32, 3), (32, 16, 7)):  # the stride-2 3x3 convs' im2col chunks (nb samples)
        x = rng.standard_normal((nb, C, H, H)).astype(np.float32)
        cols = {k: np.full((C * 9, nb * (H // 2) ** 2), np.nan, np.float32) for k in mods}
        t = timed({k: (lambda m=m, k=k: m.im2col(cols[k], x, 3, 3, (2, 2), (1, 1), (1, 1), 1))
                   for k, m in mods.items()}, reps=20)
        assert all(np.array_equal(cols["A"], c) for c in cols.values()), "the builds differ in bits"
        print(f"im2col stride 2, {C} x {H}x{H}, chunk of {nb}: " + ", ".join(f"{k} {m:.3f} ({b:.3f})"
                                                                           for k, (m, b) in t.items()))


if __name__ == "__main__":
    main()
