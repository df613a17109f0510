"""The cost of one checked kernel call (``backend.kernel(...)`` through minigrad.kernels.contract) in several
checkouts, each in its own process per round, interleaved over rounds with the order reversed every other round;
CPU time per call, medians (docs/perf/small-kernels.md, "Session 38: keyword calls through CheckedCall").

    PYTHONPATH=$PWD python scripts/checked_call_ab.py old=/work/main new=$PWD --rounds 21 --calls 20000

Each configuration is ``label=checkout`` (a tree with its built extensions). The cases run on one thread, on tiny
shapes so that the call's fixed cost shows: batch_norm_backward (2, 3, 1) float32 without keywords and with Batch
Renorm's r and d; evonorm_b0_backward (2, 3, 1) float32 without keywords and with constant_lo=True;
batch_norm_forward (a kernel without keywords, the control); and the raw cython kernel without checks (the floor).
``--child`` runs the cases once in this process and prints one line per case.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time


def child(calls, repeats=5):
    import numpy as np

    import minigrad
    from minigrad import kernels
    minigrad.set_num_threads(1)
    k = kernels.load("cython")
    rng = np.random.default_rng(0)
    N, C, S = 2, 3, 1
    f32 = lambda *shape: rng.uniform(0.5, 1.5, shape).astype(np.float32)  # noqa: E731
    f64 = lambda *shape: rng.uniform(0.5, 1.5, shape)  # noqa: E731
    x, dy, w, b, y, dx = f32(N, C, S), f32(N, C, S), f32(C), f32(C), f32(N, C, S), f32(N, C, S)
    dw, db, mean, rstd, r, d = f32(C), f32(C), f64(C), f64(C), f64(C), f64(C)
    bn = (dx, dw, db, dy, x, mean, rstd, w)
    evo = (dx, f32(C), dw, db, dy, x, f32(C), w, f32(N, C), f32(N, C), f64(N, C), f64(N, C), mean, rstd)
    cases = {
        "batch_norm_backward": lambda: k.batch_norm_backward(*bn),
        "batch_norm_backward r, d": lambda: k.batch_norm_backward(*bn, r=r, d=d),
        "evonorm_b0_backward": lambda: k.evonorm_b0_backward(*evo),
        "evonorm_b0_backward constant_lo": lambda: k.evonorm_b0_backward(*evo, constant_lo=True),
        "batch_norm_forward (control)": lambda: k.batch_norm_forward(y, mean, rstd, x, w, b, 1e-5),
        "batch_norm_backward raw (floor)": lambda: k.module.batch_norm_backward(*bn, 1),
    }
    loop = range(calls)
    print(f"# {minigrad.__file__}")
    for name, fn in cases.items():
        fn()
        times = []
        for _ in range(repeats):
            t = time.process_time()
            for _ in loop:
                fn()
            times.append((time.process_time() - t) / calls * 1e6)
        print(f"{name}\t{statistics.median(times):.4f}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("configs", nargs="*", help="label=checkout")
    p.add_argument("--rounds", type=int, default=21)
    p.add_argument("--calls", type=int, default=20000)
    p.add_argument("--child", action="store_true")
    a = p.parse_args()
    if a.child:
        return child(a.calls)
    configs = [c.split("=", 1) for c in a.configs]
    rows, loads = {}, []
    for i in range(a.rounds):
        loads.append(os.getloadavg()[0])
        for label, tree in configs if i % 2 == 0 else configs[::-1]:  # NOTE: alternate the order against drift
            env = dict(os.environ, PYTHONPATH=tree, OMP_NUM_THREADS="1")
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", "--calls", str(a.calls)],
                                 capture_output=True, text=True, env=env, cwd=tree)
            lines = out.stdout.splitlines()
            if out.returncode or not lines or not lines[0].startswith(f"# {tree}"):
                sys.exit(f"{label}: {out.stdout}\n{out.stderr[-2000:]}")
            for line in lines[1:]:
                case, us = line.split("\t")
                rows.setdefault(case, {}).setdefault(label, []).append(float(us))
        print(f"round {i + 1} load {loads[-1]:.2f}", flush=True)
    labels = [label for label, _ in configs]
    print(f"\nCPU us per call, medians of {a.rounds} rounds of {a.calls} calls (load {min(loads):.1f}-"
          f"{max(loads):.1f})")
    print("| case | " + " | ".join(labels) + " | " + " | ".join(f"{x} - {labels[0]}" for x in labels[1:]) + " |")
    for case, by in rows.items():
        med = [statistics.median(by[label]) for label in labels]
        # NOTE: the per-round difference's median too: rounds share the machine's state
        diff = [statistics.median(n - o for n, o in zip(by[label], by[labels[0]])) for label in labels[1:]]
        print(f"| {case} | " + " | ".join(f"{m:.3f}" for m in med) + " | " + " | ".join(f"{x:+.3f}" for x in diff)
              + " |")


if __name__ == "__main__":
    main()
