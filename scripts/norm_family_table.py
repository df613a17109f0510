"""Per-method Markdown table of benchmarks/bench_norm_family.py from a merged JSON of benchmarks/run_all.py:
cython and torch medians, the paired ratio (torch composition time / cython time, >= 2 is the target) and the
fraction of the triad under the byte model (>= 80% the target for the memory-bound methods); then, from
``test_norm_family_phases`` of the same file, one row per phase kernel of each method (``phase_table``: the raw
kernel's time, its GB/s under its own byte model, the fraction of the same run's triad, (miss) under 80% for the
memory-bound ones) and the checked call's overhead (``overhead_table``: contract check + wrapper, checked time - raw).

    python scripts/norm_family_table.py .benchmarks/family.json [--threads 1]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from minigrad.app import bench_report as B  # noqa: E402


def table(data, threads=1, backend="cython"):
    idx = B.index(data, repeats=True)
    triads = {size: B.triad_by_threads(data, size) for size in ("llc", "dram")}
    rows = [r for r in B._rows(data) if r.get("norm") in B.FAMILY_ORDER and r["threads"] == threads
            and r["backend"] == backend]
    rows.sort(key=lambda r: (B.FAMILY_ORDER.index(r["norm"]), B.OP_ORDER.index(r["op"]), r["shape"]))
    out = [f"| method | op | shape | {backend} | torch ops | vs torch ops | GB/s (model) | of triad |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ref = idx.get((r["norm"], r["op"], r["shape"], threads, "torch"))
        vs = B.paired(lambda a, b: a / b, ref, (r["median"], r["repeats"])) if ref else None
        gbps = r["bytes"] / r["median"] / 1e9 if r.get("bytes") else None
        triad = B._triad_for(triads, r)
        frac = gbps / triad if gbps and triad else None
        mark = lambda ok: "" if ok else " (miss)"  # noqa: E731
        vs_s = "-" if vs is None else f"{vs:.2f}x{mark(vs >= 2.0)}"
        frac_s = "-" if frac is None else f"{frac:.0%}" + ("" if r["norm"] in B.COMPUTE_BOUND else mark(frac >= 0.8))
        out.append(f"| {r['norm']} | {r['op']} | {B.shape_str(r['shape'])} | {B._fmt_time(r['median'])} | "
                   f"{B._fmt_time(ref[0] if ref else None)} | {vs_s} | {B._fmt(gbps, '.1f')} | {frac_s} |")
    return "\n".join(out) + "\n"


# kernel -> why it is not judged against the triad
NOT_MEMORY_BOUND = {
    "zca_forward": "compute: the g x g covariance and whitening products (2g flops an element each) and an "
                   "eigensolver per group",
    "zca_backward_p1": "compute: g + 1 products an element (sum dY [u; 1]^T per group)",
    "zca_backward_dx": "compute: 2g + 1 products an element (F [dY; u; 1] per group)",
    "running_stats_update": "C-sized: the call, not the bytes",
    "running_average_update": "C- or G*g*g-sized: the call, not the bytes",
    "zca_running_update": "C- and G*g*g-sized: the call, not the bytes",
}
# the EvoNorm kernels that evaluate the gate (a division or an exp per element): judged, with their ns/element
GATE_KERNELS = ("row_apply_gate", "row_backward_sums_gate", "row_backward_apply_gate", "evonorm_s0_backward",
                "evonorm_b0_forward", "evonorm_b0_backward")


def _phase_rows(data, threads, backend):
    """{(method, op, shape): {"checked": row, "raw": row}} of test_norm_family_phases."""
    out = {}
    for r in B._rows(data):
        if r.get("phase") and r["threads"] == threads and r["backend"] == backend:
            out.setdefault((r["method"], r["op"], r["shape"]), {})[r["entry"]] = r
    def order(kv):  # the methods in the family's order, then the shape, then the calls of one fwd+bwd in order
        (method, _, shape), e = kv
        return (B.FAMILY_ORDER.index(method) if method in B.FAMILY_ORDER else 99, shape,
                next(iter(e.values())).get("call", 0))
    return dict(sorted(out.items(), key=order))


def phase_table(data, threads=1, backend="cython"):
    """One row per phase kernel: the raw call's median, GB/s under the kernel's byte model (its arrays once; the
    fused kernels' pass model beside it), the fraction of the same run's triad, (miss) under 80% where memory-bound."""
    triads = {size: B.triad_by_threads(data, size) for size in ("llc", "dram")}
    out = [f"| method | kernel | shape | {backend} raw | checked | GB/s | of triad | GB/s (passes) | ns/element | "
           "bound |", "|---|---|---|---|---|---|---|---|---|---|"]
    for (method, op, shape), e in _phase_rows(data, threads, backend).items():
        r = e.get("raw") or e["checked"]
        t = r["median"]
        gbps = r["bytes"] / t / 1e9 if r.get("bytes") and t else None
        passes = r["passes_bytes"] / t / 1e9 if r.get("passes_bytes") and t else None
        triad = B._triad_for(triads, r)
        frac = gbps / triad if gbps and triad else None
        why = NOT_MEMORY_BOUND.get(r["phase"])
        frac_s = "-" if frac is None else f"{frac:.0%}" + ("" if why or frac >= 0.8 else " (miss)")
        bound = why or ("memory; gate per element" if r["phase"] in GATE_KERNELS else "memory")
        out.append(f"| {method} | {op} | {B.shape_str(shape)} | {B._fmt_time(t)} | "
                   f"{B._fmt_time(e['checked']['median'] if 'checked' in e else None)} | {B._fmt(gbps, '.1f')} | "
                   f"{frac_s} | {B._fmt(passes, '.1f')} | {t / r['elements'] * 1e9:.2f} | {bound} |")
    return "\n".join(out) + "\n"


def overhead_table(data, threads=1, backend="cython", shape=None):
    """The checked call's overhead (contract check + the registry's wrapper) per kernel at ``shape`` (default: the
    smallest measured): checked median - raw median."""
    rows = {k: e for k, e in _phase_rows(data, threads, backend).items() if "checked" in e and "raw" in e}
    if not rows:
        return ""
    shape = shape or min((k[2] for k in rows), key=lambda s: (len(s), s))
    out = ["| kernel | raw | checked | overhead |", "|---|---|---|---|"]
    seen = set()
    for (method, op, s), e in rows.items():
        kernel = e["raw"]["phase"]
        if s != shape or kernel in seen:
            continue
        seen.add(kernel)
        raw, checked = e["raw"]["median"], e["checked"]["median"]
        out.append(f"| {kernel} | {B._fmt_time(raw)} | {B._fmt_time(checked)} | {(checked - raw) * 1e6:.2f} us |")
    return f"shape {B.shape_str(shape)}:\n\n" + "\n".join(out) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("json")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    data = B.load(a.json)
    print(f"triad (1 thread): llc {B.triad_by_threads(data, 'llc').get(a.threads, 0):.1f} GB/s, "
          f"dram {B.triad_by_threads(data, 'dram').get(a.threads, 0):.1f} GB/s\n")
    print(table(data, a.threads), end="")
    phases = phase_table(data, a.threads)
    if phases.count("\n") > 2:
        print("\nphase kernels (raw call; (miss): a memory-bound kernel under 80% of the triad):\n")
        print(phases, end="")
        print("\nthe checked call's overhead (contract check + wrapper):\n")
        print(overhead_table(data, a.threads), end="")


if __name__ == "__main__":
    main()
