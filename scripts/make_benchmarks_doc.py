"""Write docs/benchmarks.md from the merged JSON of benchmarks/run_all.py.

    python scripts/make_benchmarks_doc.py docs/benchmarks.json [--out docs/benchmarks.md]

The page holds the machine (CPU model and cores, recorded by the run; /proc/cpuinfo here when the run did not),
the command that produced the JSON, the targets checked against the measured figures (MET / MISSED, every
number computed from the JSON, none typed by hand) and the tables of ``minigrad.bench.render_table``.
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from minigrad import bench  # noqa: E402


def _local_cpu():
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        pass
    return {"model": model, "cores": os.cpu_count()}


# What limits each target when it is missed: the engineers' analysis (profiles and variants tried while tuning the
# kernels; see the commit messages of minigrad/_ext/norm.pyx). Printed only for the targets this run misses.
LIMITS = {
    "BatchNorm2d training forward >= 5x torch on every shape":
        "The shapes that miss are bandwidth-bound: statistics and output need one read of x from DRAM or LLC and "
        "one write of y; at S=49 each channel run is only 196 bytes, so the hardware prefetcher gains little and "
        "channel blocking (tried) was slower.",
    "BatchNorm2d training forward >= 70% of triad bandwidth":
        "The byte model counts 3 |x| (two reads, one write); the kernel reads x once from memory and once from "
        "cache per channel block, so against an LLC-size triad the in-cache shapes measure below the model's "
        "figure, and the DRAM shapes above 100% (the second read is a cache hit).",
    "BatchNorm2d backward >= 1.5x torch":
        "The DRAM-size shape (16, 32, 112, 112) is bound by one core's memory bandwidth: x and dy are read once "
        "from DRAM (the second read comes from cache since channel blocks are finished at once) and dx written; "
        "non-temporal stores, tried to avoid reading dx's lines before writing them, were slower on this VM.",
    "BatchNorm2d fwd+bwd (autograd) >= 2.5x torch":
        "Follows the backward on the DRAM-size shape (see above).",
    "LayerNorm/GroupNorm/InstanceNorm forward and backward >= 1.0x torch":
        "LayerNorm backward keeps its per-element dweight/dbias partials in float64 (for results that do not "
        "depend on the thread count and stay accurate); without them the kernel is about torch's time, with them "
        "each row adds a read-modify-write of 2 x D doubles. Row pairs, separate partial passes, prefetching and "
        "an AVX-512 build were tried and were not faster without changing the bits.",
    "BatchNorm1d (60,100) fwd+bwd via autograd <= 0.5x torch's time":
        "At 6000 elements the kernels take a few microseconds; the rest is fixed per-call cost in Python: the "
        "contract's argument checks, the autograd node, the module's running-statistics update, and the typed "
        "memoryview set-up of the Cython wrapper.",
    "Cython fastest backend everywhere (next-fastest backend time / cython time >= 1)":
        "Numba's reduction loops are compiled with fastmath 'reassoc' alone (NaN and inf keep their meaning), so "
        "LLVM vectorizes them; on the cases listed its code is as fast as or faster than the Cython kernels' GCC "
        "vector-extension helpers, which keep a fixed summation order without reassociation.",
    "Numba within 1.5x of Cython (numba time / cython time <= 1.5)":
        "Where it misses, the tensor is tiny (6000 elements): Numba's dispatcher checks the type of every "
        "argument on each call, a fixed cost of microseconds that a kernel this small cannot hide.",
    "2 threads >= 1.6x 1 thread (cython, tensors >= 1.6M elements)":
        "These tensors are memory-bound, and on this machine memory bandwidth barely scales with the second "
        "core: compare the DRAM-size triad at 1 and 2 threads in the list above, which bounds what any "
        "memory-bound kernel can gain. The LLC-size triad even drops at 2 threads (the two vCPUs of this VM "
        "share a physical core's resources or are preempted); every process runs with OMP_WAIT_POLICY=passive, "
        "so threads also pay a wake-up per parallel region.",
    "end to end: MLP-BN >= 1.5x torch steps/s":
        "The matrix multiplies take the same time as in torch (both call a BLAS); the rest of a step is "
        "per-op Python overhead of the autograd engine, the optimizer and the losses.",
    "end to end: small CNN-BN (lenet-bn) >= 1.0x torch steps/s":
        "conv2d is im2col + BLAS with a compiled im2col/col2im, but its backward (per-sample weight-gradient "
        "GEMMs for the first conv), max-pool backward and NumPy elementwise passes over 300k-element "
        "activations cost more than torch's fused C++ kernels.",
}


def limits_section(data):
    """Markdown for the missed targets' limits (empty when every target is met)."""
    missed = [t["target"] for t in bench.evaluate_targets(data) if t["status"] == "MISSED"]
    if not missed:
        return []
    lines = ["## What limits the missed targets", ""]
    for target in missed:
        lines.append(f"* **{target}**: {LIMITS.get(target, 'not analysed yet.')}")
    return lines + [""]


def make_doc(data, json_name="benchmarks.json"):
    run = data.get("minigrad_run") or {}
    cpu = run.get("cpu") or _local_cpu()
    mi = data.get("machine_info") or {}
    triads = {size: bench.triad_by_threads(data, size) for size in ("llc", "dram")}
    commit = (data.get("commit_info") or {}).get("id")
    env = ", ".join(f"{k}={v}" for k, v in (run.get("env") or {}).items()) or "not recorded"
    lines = [
        "# minigrad benchmarks",
        "",
        f"Generated by `scripts/make_benchmarks_doc.py` from `{json_name}`; do not edit by hand.",
        "",
        "## Machine and command",
        "",
        f"* CPU: {cpu.get('model') or mi.get('cpu', {}).get('brand_raw', 'unknown')}, "
        f"{cpu.get('cores')} logical cores; Python {mi.get('python_version', '?')}",
        f"* Run: {run.get('started', data.get('datetime', '?'))} to {run.get('finished', '?')}"
        + (f", commit `{commit[:10]}`" if commit else ""),
        f"* Command: `{run.get('command', 'unknown')}` (min rounds {run.get('min_rounds', '?')}, "
        f"max time {run.get('max_time', '?')} s per benchmark, whole plan run {run.get('repeat', 1)} time(s), "
        "the median of the runs' medians kept; one process per library and thread count)",
        *[f"* {label} triad (best of NumPy/Numba): "
          + (", ".join(f"{tr[t]:.1f} GB/s at {t} thread{'s' if t > 1 else ''}" for t in sorted(tr)) or "not measured")
          for label, tr in (("LLC-size (1 MiB per array)", triads["llc"]),
                            ("DRAM-size (64 MiB per array)", triads["dram"]))],
        f"* Environment of every process: {env}; every process (minigrad's and PyTorch's) calls "
        "`minigrad.tune_allocator()`, as `minigrad train` does (see `minigrad/allocator.py`)",
        "",
        "Times are medians. GB/s uses the byte model (training forward 3 |x|, inference 2 |x|, backward 5 |x|, "
        "fwd+bwd 8 |x| bytes); `of triad` divides it by the triad of the same thread count, the LLC-size one when the "
        "op's distinct arrays (2, 2, 3, 4 x |x|) fit in the last-level cache, else the DRAM-size one; `vs torch` is "
        "torch's median over the row's (above 1: faster than torch). The machine is shared: 2-thread figures "
        "collapse when another process takes a core.",
        "",
    ]
    failed = [p for p in run.get("processes", []) if p.get("rc") not in (0, 5)]
    if failed:
        lines += ["Processes that failed: " + ", ".join(f"{p['label']} (rc {p['rc']})" for p in failed), ""]
    lines += ["## Targets", "", "1 thread and the cython backend unless stated.", "",
              bench.render_targets(data, fmt="markdown"), *limits_section(data), "## Results", "",
              bench.render_table(data, fmt="markdown")]
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("json")
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    a = p.parse_args(argv)
    data = bench.load(a.json)
    text = make_doc(data, os.path.relpath(a.json, os.path.dirname(os.path.abspath(a.out))))
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        f.write(text)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
