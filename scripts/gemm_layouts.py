"""The MLP's first-layer GEMMs (batch 60, 784 -> 100, float32) in NumPy's OpenBLAS on the layouts a Linear could use,
and PyTorch's on the same arrays when it is installed, at 1 thread: CPU time per call, the median over alternated
rounds (docs/perf/mlp-step.md). ``--cold`` sums a 2 MB array before each call (the MLP step's other arrays, which
take the weight out of L2 between its uses) and times the calls one by one (docs/perf/mlp-first-layer.md). With
docs/perf/mlp-first-layer.patch applied, the transpose kernel's copy of w.T is timed too.

    python scripts/gemm_layouts.py [--rounds 15] [--calls 300] [--cold]
"""
import argparse
import os
import time

for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[k] = "1"

import numpy as np  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--calls", type=int, default=300)
    p.add_argument("--cold", action="store_true")
    a = p.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 784)).astype(np.float32)
    w = rng.standard_normal((100, 784)).astype(np.float32)
    dy = rng.standard_normal((60, 100)).astype(np.float32)
    wt, buf = np.ascontiguousarray(w.T), np.empty((784, 100), np.float32)
    cases = [("forward x @ w.T (the strided view: Linear's)", lambda: np.matmul(x, w.T)),
             ("forward x @ wT (a contiguous copy of w.T)", lambda: np.matmul(x, wt)),
             ("  the copy of w.T itself", lambda: np.copyto(buf, w.T)),
             ("forward (w @ x.T).T", lambda: np.matmul(w, x.T).T),
             ("dweight dy.T @ x (Linear's)", lambda: np.matmul(dy.T, x)),
             ("dweight (x.T @ dy).T", lambda: np.matmul(x.T, dy).T),
             ("dx dy @ w", lambda: np.matmul(dy, w)),
             ("  a plain copy of w (313 KB)", lambda: np.copyto(buf.reshape(w.shape), w))]
    try:
        from minigrad.kernels import load
        transpose = load("cython").module.transpose
        cases.insert(3, ("  the copy of w.T by the transpose kernel", lambda: transpose(buf, w, 1)))
    except (ImportError, AttributeError):  # NOTE: the kernel is in docs/perf/mlp-first-layer.patch only
        pass
    try:
        import torch
        torch.set_num_threads(1)
        tx, tw, tdy = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(dy)
        cases += [("torch forward linear(x, w)", lambda: torch.nn.functional.linear(tx, tw)),
                  ("torch dweight dy.t() @ x", lambda: tdy.t().mm(tx)),
                  ("torch dx dy @ w", lambda: tdy.mm(tw))]
    except ImportError:
        pass
    other = rng.standard_normal(1 << 19).astype(np.float32)
    times = {name: [] for name, _ in cases}
    for _ in range(a.rounds):
        for name, f in cases:
            if a.cold:
                t = 0.0
                for _ in range(a.calls):
                    other.sum()
                    t0 = time.thread_time()
                    f()
                    t += time.thread_time() - t0
                times[name].append(t / a.calls * 1e6)
                continue
            t0 = time.process_time()
            for _ in range(a.calls):
                f()
            times[name].append((time.process_time() - t0) / a.calls * 1e6)
    for name, _ in cases:
        print(f"{name:48s} {np.median(times[name]):7.1f} us")
    print(f"load {' '.join(open('/proc/loadavg').read().split()[:3])}")


if __name__ == "__main__":
    main()
