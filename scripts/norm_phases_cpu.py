"""The normalization family's phase kernels on CPU time, beside a triad in the same process: the cross-check of
``test_norm_family_phases`` (benchmarks/bench_norm_family.py), whose wall-clock medians a loaded 2-core machine
inflates. Each kernel is called raw (no contract check) with the arguments its functional passes it (the same
trace), float32, 1 thread, interleaved round by round with two triads (a = b + s*c, one thread, Numba): over
1 MiB arrays (bench_bandwidth.py's "llc" size, the run_all table's yardstick) and over arrays of |x| elements (the
same cache level as the kernel's own arrays: at 16x32x8x8 they sit in the 2 MiB L2, at 32x64x16x16 they do not).
GB/s under the kernel's byte model (its arrays once: phase_bytes); medians over the rounds; (miss): a memory-bound
kernel under 80% of the 1 MiB triad, the run_all table's criterion. Then, at the smallest shape, the checked call
(``kernels.load(backend).kernel``: the contract's check and the registry's wrapper) against the raw one, interleaved,
every kernel of the trace: the median of the checked - raw differences over the rounds, and the check alone (the
compiled accept, and for the kernels with scalar arguments minigrad.kernels.contract._checked: the accept and the
Python rules of the scalars; timeit, the best of 5 repeats of 20000 calls), which the difference of two noisy kernel
times blurs.

    PYTHONPATH=$PWD python scripts/norm_phases_cpu.py [--rounds 11] [--backend cython]
"""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "benchmarks"))
import bench_norm_family as BF  # noqa: E402
from norm_family_table import GATE_KERNELS, NOT_MEMORY_BOUND  # noqa: E402
from norm_family_steps import _interleaved  # noqa: E402


def _triad(n, dtype=BF.DTYPE):
    """(run, bytes moved): a Numba triad a = b + s*c over three arrays of n ``dtype`` values."""
    import numba

    @numba.njit(cache=False)
    def triad(a, b, c, s):
        for i in range(a.shape[0]):
            a[i] = b[i] + s * c[i]

    a, b, c = np.zeros(n, dtype), np.ones(n, dtype), np.ones(n, dtype)
    s = dtype(3.0)
    triad(a, b, c, s)
    return lambda: triad(a, b, c, s), 3 * a.nbytes


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=11)
    p.add_argument("--backend", default="cython")
    a = p.parse_args(argv)
    import minigrad
    from minigrad import kernels

    minigrad.set_num_threads(1)
    module = kernels.load(a.backend).module
    print(f"load average {os.getloadavg()}; {a.backend}, float32, 1 thread, {a.rounds} rounds, CPU time\n")
    print("| method | kernel | shape | raw | ns/element | GB/s | of llc triad | of |x|-size triad | bound |")
    print("|---|---|---|---|---|---|---|---|---|")
    for shape in BF.SHAPES:
        size = int(np.prod(shape))
        fns, info = {}, {}
        fns["triad llc"], tb_llc = _triad((1 << 20) // 4)
        fns["triad x"], tb_x = _triad(size)
        for method in BF.PHASES:
            for i, (kernel, args, _) in enumerate(BF._trace(method, shape, a.backend)):
                if kernel in ("running_stats_update", "running_average_update", "zca_running_update"):
                    continue  # C-sized: the call, not the bytes
                fn, run_args = getattr(module, kernel), [BF._copy(x) for x in args] + [1]
                fns[(method, BF.phase_label(method, i))] = lambda fn=fn, run_args=run_args: fn(*run_args)
                info[(method, BF.phase_label(method, i))] = (kernel, BF.phase_bytes(kernel, args)[0])
        res = _interleaved(fns, a.rounds)
        llc, same = tb_llc / res["triad llc"][0] / 1e9, tb_x / res["triad x"][0] / 1e9
        for key, (kernel, nbytes) in info.items():
            t = res[key][0]
            gbps = nbytes / t / 1e9
            why = NOT_MEMORY_BOUND.get(kernel)
            mark = "" if why or gbps >= 0.8 * llc else " (miss)"
            bound = why or ("memory; gate per element" if kernel in GATE_KERNELS else "memory")
            print(f"| {key[0]} | {key[1]} | {BF.shape_id(shape)} | {t * 1e6:.1f} us | {t / size * 1e9:.2f} | "
                  f"{gbps:.1f} | {gbps / llc:.0%}{mark} | {gbps / same:.0%} | {bound} |")
        print(f"| triad | 1 MiB arrays | | | | {llc:.1f} | | | |")
        print(f"| triad | |x| arrays | {BF.shape_id(shape)} | | | {same:.1f} | | | |")
    _overhead(a, module, kernels.load(a.backend))
    print(f"\nload average {os.getloadavg()}")


def _overhead(a, module, checked):
    """The checked call's cost over the raw call, per kernel, at the smallest shape (round by round)."""
    import time
    import timeit

    from minigrad.kernels import contract

    shape, fns, check = BF.SHAPES[0], {}, {}
    for method in BF.PHASES:
        for kernel, args, _ in BF._trace(method, shape, a.backend):
            if (kernel, "raw") in fns:
                continue
            raw_args = [BF._copy(x) for x in args] + [1]
            checked_args = [BF._copy(x) for x in args]
            names, _, fast, _, scalars = contract._PLANS[kernel]
            t = tuple(args)
            if contract._accept is None or scalars:
                check[kernel] = ("accept + Python scalar rules", lambda k=kernel, t=t: contract._checked(k, t))
            else:
                check[kernel] = ("compiled accept", lambda t=t, n=len(names), fast=fast: contract._accept(
                    t, n, fast, contract.SYMBOLS, contract._ELEMENT_SYMBOLS))
            fns[(kernel, "raw")] = lambda fn=getattr(module, kernel), r=raw_args: fn(*r)
            fns[(kernel, "checked")] = lambda fn=getattr(checked, kernel), r=checked_args: fn(*r)
    n = 200  # calls a round: CPU time's resolution is ~1 us
    diffs = {k: [] for k, _ in fns}
    for _ in range(a.rounds):
        t = {}
        for key, fn in fns.items():
            t0 = time.process_time()
            for _ in range(n):
                fn()
            t[key] = (time.process_time() - t0) / n
        for k in diffs:
            diffs[k].append((t[(k, "checked")] - t[(k, "raw")], t[(k, "raw")]))
    print(f"\nthe checked call over the raw one at {BF.shape_id(shape)} (median of {a.rounds} rounds, {n} calls "
          "each):\n\n| kernel | raw | checked - raw | the check | its cost |\n|---|---|---|---|---|")
    for k, d in diffs.items():
        path, fn = check[k]
        cost = min(timeit.repeat(fn, number=20000, repeat=5)) / 20000
        print(f"| {k} | {np.median([r for _, r in d]) * 1e6:.1f} us | {np.median([x for x, _ in d]) * 1e6:.2f} us | "
              f"{path} | {cost * 1e6:.2f} us |")


if __name__ == "__main__":
    main()
