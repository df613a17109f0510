"""FRN + TLU's ``row_norm_backward_max`` and the EvoNorms' ``row_stats`` (docs/perf/norm-family.md, "2026-12-07
(session 30)"): this tree's raw Cython kernels beside another build's ``phases`` extension, with the arguments of
bench_norm_family.py's trace (float32, 1 thread), interleaved round by round with norm_phases_cpu.py's two triads
(1 MiB arrays, the run_all table's yardstick, and arrays of |x|); CPU time, median (min) of the rounds, GB/s under
the phase table's byte model (phase_bytes) and its fraction of the 1 MiB triad of the same rounds. Then whether
both builds' outputs have the same bits on those arguments.

    PYTHONPATH=$PWD python scripts/rows_phases_ab.py --before-ext /work/main/minigrad/_ext [--rounds 11] \
        [--kernels row_norm_backward_max row_apply_gate evonorm_s0_backward]
"""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "benchmarks"))
import bench_norm_family as BF  # noqa: E402
from norm_family_steps import _interleaved, _load_ext  # noqa: E402
from norm_phases_cpu import _triad  # noqa: E402

KERNELS = ("row_norm_backward_max", "row_stats")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before-ext", required=True, help="directory of the other build's phases*.so")
    p.add_argument("--rounds", type=int, default=11)
    p.add_argument("--kernels", nargs="+", default=KERNELS, help="any of the phase table's kernels")
    a = p.parse_args(argv)
    import minigrad
    from minigrad._ext import phases as new

    minigrad.set_num_threads(1)
    old = _load_ext(a.before_ext)
    print(f"load average {os.getloadavg()}; float32, 1 thread, {a.rounds} rounds, CPU time\n")
    print("| method | kernel | shape | before | after | after/before | GB/s before | after | of triad before | after |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    same = True
    for shape in BF.SHAPES:
        size = int(np.prod(shape))
        fns, info = {}, {}
        fns["triad llc"], tb_llc = _triad((1 << 20) // 4)
        for method in BF.PHASES:
            for kernel, args, _ in BF._trace(method, shape, "cython"):
                if kernel not in a.kernels or (method, kernel) in info:
                    continue
                for tag, mod in (("before", old), ("after", new)):
                    run = [BF._copy(x) for x in args] + [1]
                    fns[(method, kernel, tag)] = lambda fn=getattr(mod, kernel), run=run: fn(*run)
                info[(method, kernel)] = BF.phase_bytes(kernel, args)[0]
                outs = []
                for mod in (old, new):
                    run = [BF._copy(x) for x in args]
                    getattr(mod, kernel)(*run, 1)
                    outs.append([x.tobytes() for x in run if isinstance(x, np.ndarray)])
                if outs[0] != outs[1]:
                    same = False
                    print(f"DIFFERENT BITS: {method} {kernel} {BF.shape_id(shape)}")
        res = _interleaved(fns, a.rounds)
        llc = tb_llc / res["triad llc"][0] / 1e9
        for (method, kernel), nbytes in info.items():
            (b, bl), (n, nl) = res[(method, kernel, "before")], res[(method, kernel, "after")]
            print(f"| {method} | {kernel} | {BF.shape_id(shape)} | {b * 1e6:.1f} us ({bl * 1e6:.1f}) | "
                  f"{n * 1e6:.1f} us ({nl * 1e6:.1f}) | {n / b:.2f} | {nbytes / b / 1e9:.1f} | {nbytes / n / 1e9:.1f} | "
                  f"{nbytes / b / 1e9 / llc:.0%} | {nbytes / n / 1e9 / llc:.0%} |")
        print(f"| triad | 1 MiB arrays | {BF.shape_id(shape)} | | | | {llc:.1f} GB/s | | | |")
    print(f"\nbits {'identical' if same else 'DIFFERENT'}; load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
