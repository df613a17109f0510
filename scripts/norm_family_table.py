"""Per-method Markdown table of benchmarks/bench_norm_family.py from a merged JSON of benchmarks/run_all.py:
cython and torch medians, the paired ratio (torch composition time / cython time, >= 2 is the target) and the
fraction of the triad under the byte model (>= 80% the target for the memory-bound methods).

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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("json")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    data = B.load(a.json)
    print(f"triad (1 thread): llc {B.triad_by_threads(data, 'llc').get(a.threads, 0):.1f} GB/s, "
          f"dram {B.triad_by_threads(data, 'dram').get(a.threads, 0):.1f} GB/s\n")
    print(table(data, a.threads), end="")


if __name__ == "__main__":
    main()
