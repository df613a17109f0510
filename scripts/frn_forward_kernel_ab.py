"""FRN + TLU's forward kernel, raw (``row_norm_apply_max``, Cython, 1 thread, float32): another build's ``phases``
extension of before 2026-12-07 (x as (R, D) rows, per-row weight, offset, tau) beside this build's (x: (N, C, S),
per-channel values) on the benchmark's two shapes, outputs checked byte for byte first, then timed interleaved round
by round (CPU time; medians, the minimum in brackets). docs/perf/norm-family.md, "FRN + TLU's small forward".

    PYTHONPATH=$PWD python scripts/frn_forward_kernel_ab.py DIR [--rounds 21]    # DIR: the other build's _ext
"""
import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old_ext")
    ap.add_argument("--rounds", type=int, default=21)
    args = ap.parse_args()
    sys.path.insert(0, HERE)
    from norm_family_steps import _load_ext
    from minigrad._ext import phases as new
    old = _load_ext(args.old_ext)
    print("load average", " ".join(f"{v:.2f}" for v in os.getloadavg()))
    for shape in [(16, 32, 8, 8), (32, 64, 16, 16)]:
        N, C = shape[:2]
        S, R = shape[2] * shape[3], N * C
        rng = np.random.default_rng(0)
        x3 = (rng.standard_normal((N, C, S)) * 2 + 0.5).astype(np.float32)
        w, b, tau = (rng.standard_normal(C).astype(np.float32) for _ in range(3))
        rows = [np.tile(a, N) for a in (w, b, tau)]
        out_old = (np.empty((R, S), np.float32), np.empty(R), np.empty(R, np.float32))
        out_new = (np.empty_like(x3), np.empty((N, C)), np.empty((N, C), np.float32))
        runs = {"before": lambda: old.row_norm_apply_max(*out_old, x3.reshape(R, S), *rows, 1e-6, 1),
                "this build": lambda: new.row_norm_apply_max(*out_new, x3, w, b, tau, 1e-6, 1)}
        for run in runs.values():
            run()
        assert all(a.tobytes() == b.tobytes() for a, b in zip(out_old, out_new)), "not the same bits"
        reps = max(1, int(0.02 / (R * S * 5e-10)))  # NOTE: about 20 ms of calls a variant a round
        times = {k: [] for k in runs}
        for _ in range(args.rounds):
            for k, run in runs.items():
                t0 = time.process_time()
                for _ in range(reps):
                    run()
                times[k].append((time.process_time() - t0) / reps * 1e6)
        cells = ", ".join(f"{k} {np.median(t):.2f} us (min {min(t):.2f})" for k, t in times.items())
        print(f"{'x'.join(map(str, shape))}: {cells}; the same bits")
    print("load average", " ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
