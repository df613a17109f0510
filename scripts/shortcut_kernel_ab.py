"""Two builds of the conv extension side by side in one process (conv_kernel_ab.py's loader), interleaved: ResNet-20's
1x1 stride-2 shortcut backward (conv2d_strided_backward, batch 32, float32) and LeNet-BN's second weight gradient
(6 -> 16, 5x5, no padding, batch 64: conv2d_direct_weight_grad), the weight gradients without padding, at 1 thread
(process CPU time) and 2 threads (wall), medians of ROUNDS rounds (p10-p90) in us a call; the outputs must be the
same bits (docs/perf/threads.md, session 34).

    PYTHONPATH=$PWD python scripts/shortcut_kernel_ab.py 21 /work/main/minigrad/_ext/conv.*.so \
        minigrad/_ext/conv.*.so
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conv_kernel_ab import load  # noqa: E402

import numpy as np  # noqa: E402


def timed(fns, rounds, reps, threads):
    clock = time.process_time if threads == 1 else time.perf_counter
    t = {k: [] for k in fns}
    for r in range(rounds):
        for k in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
            t0 = clock()
            for _ in range(reps):
                fns[k]()
            t[k].append((clock() - t0) / reps * 1e6)
    return {k: (np.median(v), np.percentile(v, 10), np.percentile(v, 90)) for k, v in t.items()}


def main():
    from minigrad.allocator import tune_allocator
    tune_allocator()
    rounds = int(sys.argv[1])
    mods = {chr(ord("A") + i): load(p) for i, p in enumerate(sys.argv[2:])}
    rng = np.random.default_rng(0)
    cases = []
    for N, C, H, O in ((32, 16, 32, 32), (32, 32, 16, 64)):
        x = rng.standard_normal((N, C, H, H)).astype(np.float32)
        dy = rng.standard_normal((N, O, H // 2, H // 2)).astype(np.float32)
        w = rng.standard_normal((O, C)).astype(np.float32)
        out = {k: (np.empty_like(x), np.empty_like(w)) for k in mods}
        cases.append((f"shortcut backward {C} -> {O} at {H}x{H}", out, {
            k: (lambda t, m=m, o=out[k], x=x, dy=dy, w=w:
                m.conv2d_strided_backward(*o, x, dy, w, 1, 1, (2, 2), (0, 0), t))
            for k, m in mods.items()}))
    x = rng.standard_normal((64, 6, 14, 14)).astype(np.float32)
    dy = rng.standard_normal((64, 16, 10, 10)).astype(np.float32)
    out = {k: (np.empty((16, 150), np.float32),) for k in mods}
    cases.append(("LeNet's weight gradient 6 -> 16, 5x5 at 14x14", out, {
        k: (lambda t, m=m, o=out[k]: m.conv2d_direct_weight_grad(o[0], x, dy, 5, 5, (0, 0), t))
        for k, m in mods.items()}))
    for name, out, fns in cases:
        for threads in (1, 2):
            t = timed({k: (lambda f=f: f(threads)) for k, f in fns.items()}, rounds, 10, threads)
            for k in mods:
                assert all(np.array_equal(a, b) for a, b in zip(out["A"], out[k])), f"A and {k} differ"
            print(f"{name}, {threads} thread(s): " + ", ".join(
                f"{k} {m:.1f} ({lo:.1f}-{hi:.1f})" for k, (m, lo, hi) in t.items())
                + f" us  (load {os.getloadavg()[0]:.2f})", flush=True)


if __name__ == "__main__":
    main()
