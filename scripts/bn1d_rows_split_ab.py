"""BatchNorm1d's statistics split by rows at 2 threads (session 37, issue #21): two builds' raw kernels in one process
(norm_2t_triad_ab.py's calls and rounds: builds and thread counts interleaved, orders alternating), float32, wall AND
the process's CPU time per call, per build at 1 and 2 threads, and new/old at each count (median of the rounds'
ratios, and the ratio of the builds' least times: the rounds the other helpers left a core free):

    hi() { setsid sh -c 'echo -15 > /proc/self/autogroup; exec "$@"' sh "$@"; }
    PYTHONPATH=$PWD hi python scripts/bn1d_rows_split_ab.py OLD_CHECKOUT [--rounds 31] [--shapes 4096x1024 256x1024]

On a loaded machine the 2-thread wall time says little (a 2-thread round needs both cores); the CPU time a call at
2 threads (OMP_WAIT_POLICY=passive: a waiting thread takes none) is the work the split costs.
``--bits`` compares the two builds' outputs at 1, 2 and 3 threads instead (float32 and float64, each shape).
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import minigrad  # noqa: E402
from compare_builds import load_norm  # noqa: E402
from norm_2t_triad_ab import interleaved, kernel_call  # noqa: E402
from twothreads_ab import case_arrays  # noqa: E402


def ratio_line(old, new):
    """'median (min-max), best' of new/old over the rounds"""
    r = [b / a for a, b in zip(old, new)]
    return f"{statistics.median(r):.3f} ({min(r):.2f}-{max(r):.2f}), best {min(new) / min(old):.3f}"


def check_bits(builds, shapes):
    bad = 0
    for shape in shapes:
        for dtype in (np.float32, np.float64):
            out = {}
            for k, mod in builds.items():
                a = case_arrays("BatchNorm1d", shape, dtype)
                a["x"] += 3e4 if dtype == np.float32 else 0  # a large mean as well
                for t in (1, 2, 3):
                    minigrad.set_num_threads(t)
                    mod.batch_norm_forward(a["y"], a["mean"], a["rstd"], a["x"], a["w"], a["b"], 1e-5, t)
                    fwd = [a[n].tobytes() for n in ("y", "mean", "rstd")]
                    mod.batch_norm_backward(a["dx"], a["dw"], a["db"], a["dy"], a["x"], a["mean"], a["rstd"], a["w"], t)
                    out[k, t] = fwd + [a[n].tobytes() for n in ("dx", "dw", "db")]
            same = all(out[k, t] == out["old", 1] for k in builds for t in (1, 2, 3))
            bad += not same
            print(f"{shape} {np.dtype(dtype).name}: old and new at 1, 2, 3 threads {'same' if same else 'DIFFER'}")
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old", help="the old checkout (built in place)")
    ap.add_argument("--rounds", type=int, default=31)
    ap.add_argument("--calls", type=int, default=4)
    ap.add_argument("--shapes", nargs="+", default=["4096x1024"])
    ap.add_argument("--ops", nargs="+", default=["forward", "backward", "fwdbwd"])
    ap.add_argument("--bits", action="store_true")
    args = ap.parse_args()
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    builds = {"old": load_norm(args.old, "old"), "new": load_norm(here, "new")}
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes]
    if args.bits:
        sys.exit(check_bits(builds, shapes) > 0)
    print(f"load {os.getloadavg()[0]:.2f}, {args.rounds} rounds x {args.calls} calls, per call: wall [CPU]")
    for shape in shapes:
        arrays = case_arrays("BatchNorm1d", shape)
        for op in args.ops:
            times, cpu = interleaved({k: kernel_call(m, arrays, op) for k, m in builds.items()}, args.rounds,
                                     args.calls)
            minigrad.set_num_threads(1)
            print(f"{shape} {op} (load {os.getloadavg()[0]:.2f})")
            for k in builds:
                print("  " + k + "".join(f"  {t}t {statistics.median(times[k][t]) * 1e3:7.3f} ms"
                                         f" [{statistics.median(cpu[k][t]) * 1e3:7.3f}]" for t in (1, 2)))
            for t in (1, 2):
                print(f"  new/old {t}t wall {ratio_line(times['old'][t], times['new'][t])};"
                      f" cpu {ratio_line(cpu['old'][t], cpu['new'][t])}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
