"""Batch norm's block rule for short runs (norm.pyx ``_bn_n_blocks``, session 30): the rule before (one block of
channels per thread; ``_set_bn_blocks(0, ...)``) against blocks of at most L2 bytes of input with runs of at least
MIN_RUN bytes, on the raw Cython kernels ``batch_renorm_forward``, ``batch_norm_forward``, ``batch_norm_backward``
and ``ghost_batch_norm_forward`` / ``_backward`` (chunk --chunk), interleaved in one process with a triad of the same
run (Numba, a = b + s*c over three arrays of |x| elements, 3 |x| moved). Each round times the triad and every rule
once (a batch of calls each, after one untimed call, each round's order rotated by one; CPU time at 1 thread, wall
time at 2); per-round ratios old/new, medians [min, max];
GB/s under the phase tables' byte model (forward: x read, y written; backward: dy, x read, dx written; the C-sized
arrays ignored), as a fraction of the triad.

--bits instead checks that every rule gives the same bits as the rule before, over many shapes, both dtypes and
1 and 2 threads (no timing).

--against DIR makes "before" another build's norm extension (DIR: its minigrad/_ext, e.g. main's; loaded beside
this tree's, at its own default rule) rather than this build's rule before: the timings are then that build against
this one at each rule, and --bits compares this build's outputs (at its default rule and each of --rules) with it.
--before L2:MIN (without --against) makes "before" that rule of this build, to compare rules with each other (the same
rule in --rules is the same variant; a rule that gives the same blocks, 257:4 beside 256:4, shows the noise).

    PYTHONPATH=$PWD python scripts/bn_blocks_ab.py [--shapes 32x64x256 ...] [--rules 256:2 512:4] [--rounds 11]
    PYTHONPATH=$PWD python scripts/bn_blocks_ab.py --bits [--against /work/main/minigrad/_ext]
"""
import argparse
import itertools
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from norm_family_steps import _interleaved_rounds, _load_ext  # noqa: E402
from norm_phases_cpu import _triad  # noqa: E402

KERNELS = ["batch_renorm_forward", "batch_norm_forward", "batch_norm_backward", "ghost_batch_norm_forward",
           "ghost_batch_norm_backward"]


def _big(shape, dtype, huge):
    """Four empty arrays of shape: each its own allocation, or (huge) each at a 2 MiB boundary of one buffer that
    NumPy madvises for transparent huge pages (it does so for allocations of >= 4 MiB)."""
    if not huge:
        return [np.empty(shape, dtype) for _ in range(4)]
    n, page = int(np.prod(shape)) * np.dtype(dtype).itemsize, 2 << 20
    step = -(-n // page) * page
    buf = np.empty(4 * step + page, np.uint8)
    o = -buf.ctypes.data % page
    return [buf[o + i * step:o + i * step + n].view(dtype).reshape(shape) for i in range(4)]


def calls(norm, shape, dtype, threads, chunk, seed=0, other=None, huge=False):
    """kernel -> (callable, outputs, bytes moved) on fresh arrays of (N, C, S) (``huge``: see _big); with ``other``
    (another build's module), the pair of such dicts for norm and other on the same arrays.
    NOTE: the same arrays for both, since where they lie changes the timings by up to 3x (transparent huge pages:
    docs/perf/norm-kernels.md#2026-12-07-session-31-the-statistics-pass)."""
    N, C, S = shape
    rng = np.random.default_rng(seed)
    x, dy, y, dx = _big(shape, dtype, huge)
    x[...] = rng.standard_normal(shape) * 2 + 1
    dy[...] = rng.standard_normal(shape)
    w, b = (rng.random(C) + 0.5).astype(dtype), rng.standard_normal(C).astype(dtype)
    rm, rv = rng.standard_normal(C).astype(dtype), (rng.random(C) + 0.5).astype(dtype)
    mean, rstd, r, d = (np.empty(C) for _ in range(4))
    G = -(-N // chunk)
    gmean, grstd = np.empty((G, C)), np.empty((G, C))
    dw, db = np.empty(C, dtype), np.empty(C, dtype)
    norm.batch_norm_forward(y, mean, rstd, x, w, b, 1e-5, 1)
    norm.ghost_batch_norm_forward(y, gmean, grstd, x, w, b, chunk, 1e-5, 1)
    gm, gr = gmean.copy(), grstd.copy()
    m0, r0 = mean.copy(), rstd.copy()
    nb = x.nbytes
    bind = lambda norm: {  # noqa: E731
        "batch_renorm_forward": (lambda: norm.batch_renorm_forward(y, mean, rstd, r, d, x, w, b, rm, rv, 3.0, 5.0,
                                                                   1e-5, threads), (y, mean, rstd, r, d), 2 * nb),
        "batch_norm_forward": (lambda: norm.batch_norm_forward(y, mean, rstd, x, w, b, 1e-5, threads),
                               (y, mean, rstd), 2 * nb),
        "batch_norm_backward": (lambda: norm.batch_norm_backward(dx, dw, db, dy, x, m0, r0, w, threads),
                                (dx, dw, db), 3 * nb),
        "ghost_batch_norm_forward": (lambda: norm.ghost_batch_norm_forward(y, gmean, grstd, x, w, b, chunk, 1e-5,
                                                                           threads), (y, gmean, grstd), 2 * nb),
        "ghost_batch_norm_backward": (lambda: norm.ghost_batch_norm_backward(dx, dw, db, dy, x, gm, gr, w, chunk,
                                                                             threads), (dx, dw, db), 3 * nb),
    }
    return bind(norm) if other is None else (bind(norm), bind(other))


def _rotated_rounds(variants, rounds, target, clock):
    """{name: [seconds per call in each round]}: batches of about ``target`` seconds (counts from
    _interleaved_rounds' first round), each round starting one variant later, each batch after one untimed call of
    its own.
    NOTE: in a fixed order without that call, the variant right after the triad (the old build) ran up to 1.36x slower
    than the same code elsewhere at load 7, and one right after a kernel on other arrays up to 1.08x
    (docs/perf/norm-kernels.md#2026-12-07-session-33-the-block-rule-and-the-ab-order)"""
    first = _interleaved_rounds(variants, 1, target, clock, min_calls=5)
    counts = {name: max(5, round(target / max(t[0], 1e-9))) for name, t in first.items()}
    names = list(variants)
    times = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            fn = variants[name]
            fn()
            t0 = clock()
            for _ in range(counts[name]):
                fn()
            times[name].append((clock() - t0) / counts[name])
    return times


def bits(norm, rules, before=None):
    """Outputs at each rule against the rule before (0, 0) of ``norm``, or against ``before`` (another build's module,
    at its default rule)."""
    shapes = [(N, C, S) for N in (1, 2, 5, 16) for C in (1, 3, 7, 17, 40) for S in (2, 7, 8, 33, 64, 130, 300, 600)]
    bad = 0
    for shape, dtype, threads in itertools.product(shapes, (np.float32, np.float64), (1, 2)):
        got = {}
        for mod, rule in [(before or norm, None if before else (0, 0))] + [(norm, r) for r in rules]:
            if rule is not None:
                mod._set_bn_blocks(*rule)
            for k, (fn, outs, _) in calls(mod, shape, dtype, threads, chunk=3, seed=sum(shape)).items():
                fn()
                got.setdefault(k, []).append([o.copy() for o in outs])
        for k, runs in got.items():
            for rule, outs in zip(rules, runs[1:]):
                if not all(np.array_equal(a, b, equal_nan=True) for a, b in zip(runs[0], outs)):
                    bad += 1
                    print(f"DIFFERENT: {k} {shape} {np.dtype(dtype).name} threads={threads} rule={rule}")
    print(f"{len(shapes)} shapes x 2 dtypes x 2 thread counts x {len(KERNELS)} kernels x {len(rules)} rules "
          f"against {'the other build' if before else 'the rule before'}: {bad} different")
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", nargs="+", default=["32x64x256"])
    ap.add_argument("--dtypes", nargs="+", default=["float32"])
    ap.add_argument("--rules", nargs="+", default=["256:2"], help="L2 KiB:min run KiB (new rules to time)")
    ap.add_argument("--kernels", nargs="+", default=KERNELS)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--chunk", type=int, default=8, help="ghost batch norm's samples per chunk")
    ap.add_argument("--target", type=float, default=0.02, help="seconds per batch")
    ap.add_argument("--bits", action="store_true")
    ap.add_argument("--against", metavar="DIR", help="another build's minigrad/_ext: its norm is 'before'")
    ap.add_argument("--before", default="0:0", metavar="L2:MIN", help="without --against: the rule of this build "
                    "that 'before' times (default 0:0, one block per thread)")
    ap.add_argument("--huge", action="store_true", help="x, dy, y, dx each at a 2 MiB boundary of transparent huge "
                    "pages (by default: NumPy's allocations, wherever they land)")
    ap.add_argument("--no-huge", action="store_true", help="every array on 4 KiB pages: NumPy's madvise of "
                    "allocations >= 4 MiB for huge pages turned off (by default float64 arrays of >= 4 MiB get them, "
                    "and with them the huge-page set conflicts of --huge)")
    args = ap.parse_args()
    if args.no_huge:
        np._core.multiarray._set_madvise_hugepage(False)
    import minigrad
    from minigrad._ext import norm

    minigrad.set_num_threads(args.threads)
    rules = [tuple(int(v) << 10 for v in r.split(":")) for r in args.rules]
    base = tuple(int(v) << 10 for v in args.before.split(":"))
    default = norm._set_bn_blocks(0, 0)
    norm._set_bn_blocks(*default)
    other = _load_ext(args.against, "norm") if args.against else None
    if args.bits:
        extra = [default] if other else [default, (4 << 10, 1 << 10), (1 << 10, 0)]
        raise SystemExit(1 if bits(norm, rules + extra, other) else 0)
    clock = time.process_time if args.threads == 1 else time.perf_counter
    print(f"load average {os.getloadavg()}; threads {args.threads}, {args.rounds} rounds, "
          f"{'CPU' if args.threads == 1 else 'wall'} time; before = "
          f"{args.against + ' at its default rule' if other else 'this build at ' + args.before}; new = L2:min run")
    print("| shape | dtype | kernel | rule | before us | new us | before/new [min, max] | before of triad | "
          "new of triad |")
    print("|---|---|---|---|---|---|---|---|---|")
    for shape_s, dt in itertools.product(args.shapes, args.dtypes):
        shape, dtype = tuple(int(v) for v in shape_s.split("x")), np.dtype(dt).type
        fns, old_fns = calls(norm, shape, dtype, args.threads, args.chunk, other=other or norm, huge=args.huge)
        tri, tri_bytes = _triad(int(np.prod(shape)), dtype)
        variants = {"triad": tri}
        for k in args.kernels:
            if other:
                variants[(k, "before")] = old_fns[k][0]
            for rule in rules if other else [base] + rules:
                def run(fn=fns[k][0], rule=rule):
                    norm._set_bn_blocks(*rule)
                    fn()
                variants[(k, rule)] = run
        times = {name: np.array(t) for name, t in _rotated_rounds(variants, args.rounds, args.target, clock).items()}
        tri_gbps = tri_bytes / np.median(times["triad"]) / 1e9
        for k in args.kernels:
            old = times[(k, "before" if other else base)]
            for rule in rules:
                new = times[(k, rule)]
                ratio = old / new
                gb = lambda t: fns[k][2] / np.median(t) / 1e9 / tri_gbps  # noqa: E731
                print(f"| {shape_s} | {dt} | {k} | {rule[0] >> 10}:{rule[1] >> 10} | {np.median(old) * 1e6:.1f} | "
                      f"{np.median(new) * 1e6:.1f} | {np.median(ratio):.3f} [{ratio.min():.2f}, {ratio.max():.2f}] | "
                      f"{gb(old):.0%} | {gb(new):.0%} |")
        print(f"| {shape_s} | {dt} | triad | | {np.median(times['triad']) * 1e6:.1f} | | | {tri_gbps:.1f} GB/s | |")
    norm._set_bn_blocks(*default)


if __name__ == "__main__":
    main()
