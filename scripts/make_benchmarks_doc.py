"""Write docs/benchmarks.md from the merged JSON of benchmarks/run_all.py.

    python scripts/make_benchmarks_doc.py docs/benchmarks.json [--out docs/benchmarks.md] [--distributed JSON]
        [--end-to-end JSON]

The page holds the machine (CPU model and cores, recorded by the run; /proc/cpuinfo here when the run did not),
the command that produced the JSON, the targets checked against the measured figures (MET / MISSED, every
number computed from the JSON, none typed by hand) and the tables of ``minigrad.app.bench_report.render_table``;
then, when ``--distributed`` names one (default: docs/bench_distributed.json where it exists), the data-parallel
training steps at 1, 2, 4 ... MPI ranks from ``scripts/bench_distributed.py --scaling ... --json``. With
``--end-to-end`` (default: docs/end-to-end.json where it exists) the training steps and their targets come from that
run of their own (``benchmarks/run_all.py --only bandwidth end-to-end``), in a section that names its command.
"""
import argparse
import importlib.util
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from minigrad.app import bench_report as bench  # noqa: E402


def _local_cpu():
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        pass
    return {"model": model, "cores": os.cpu_count()}


# What limits each target when it is missed, in short; the analysis and the variants tried (with their timings) are
# in docs/perf/norm-kernels.md. Printed only for the targets this run misses.
PERF = "docs/perf/norm-kernels.md#"
# the targets met on the AMD EPYC VM of the 2026-11-22 run and missed on the Xeon VM of 2026-12-07 (session 34)
XEON = (" On the 2-core Xeon VM (1-thread LLC triad about 27 GB/s, against the AMD EPYC's 77 GB/s of the 2026-11-22 "
        "run, where this target was met) both libraries' passes sit nearer the same bandwidth bound, so the ratios "
        "shrink; none of this session's kernel changes acts at 1 thread on these shapes (batch norm's team-multiple "
        "blocks and BatchNorm1d's row pass act at 2 threads only).")
LIMITS = {
    "BatchNorm2d training forward >= 5x torch on every shape":
        "The forward reads x for the statistics, then reads it again and writes y. Where x and y together are "
        "larger than the L3 (at (256, 512, 7, 7), 51 MB), the second read comes from DRAM (compare the "
        "tensor-size and DRAM-size triads above); blocking, non-temporal stores and reversed walks were slower. "
        "Variants tried: " + PERF + "bn2d-forward-vs-torch.",
    "BatchNorm2d training forward >= 70% of triad bandwidth":
        "On the cache-size shapes the elementwise pass runs as fast as a plain contiguous affine; the statistics "
        "pass, bound by its float adds over runs of one channel, is the slower half. The LLC-size triad is the top "
        "of this VM's bandwidth curve, and the DRAM-size shapes can measure above 100% (the second read of x is a "
        "cache hit that the byte model counts). Variants tried: " + PERF + "bn2d-forward-vs-triad." + XEON,
    "BatchNorm2d backward >= 1.5x torch":
        "At (16, 32, 112, 112) the backward moves about 103 MB (x and dy read, dx written and read for ownership) "
        "at this core's DRAM bandwidth (see the DRAM-size triad above). Variants tried: "
        + PERF + "bn2d-backward-vs-torch.",
    "BatchNorm2d inference >= 1.0x torch":
        "The inference forward is one pass (x read, y written); at (16, 32, 112, 112) both libraries stream it at "
        "DRAM bandwidth, and the ratio moves around 1.0 with the machine's load. Earlier runs: "
        + PERF + "bn2d-inference-vs-torch." + XEON,
    "BatchNorm2d fwd+bwd (autograd) >= 2.5x torch":
        "Follows the backward on the DRAM-size shape (see above)." + XEON,
    "LayerNorm/GroupNorm/InstanceNorm forward and backward >= 1.0x torch":
        "The cases that miss sit just under 1.0x and move across the line between runs: memory-bound passes at "
        "this core's DRAM bandwidth in both libraries. Earlier runs and variants tried: "
        + PERF + "row-norms-vs-torch.",
    "BatchNorm1d (60,100) fwd+bwd via autograd <= 0.5x torch's time":
        "At 6000 elements each kernel takes 1-3 us; the fixed cost per call is under a microsecond for the argument "
        "checks and the Cython wrapper; what remains is Python: the functional's checks, the autograd node and the "
        "backward walk, about 12 us of the step. See " + PERF + "bn1d-small-autograd.",
    "Cython fastest backend everywhere (next-fastest backend time / cython time >= 1)":
        "The cases listed are memory-bound passes at DRAM or L3 speed, where Cython and Numba move the same bytes "
        "and the gap is this machine's noise between processes; timed alternately in one process "
        "(`python scripts/interleaved_backends.py --shape N C S --op OP`) Cython is ahead or level. The LayerNorm "
        "forward (8192, 768) is the case to watch: Numba uses 16-lane AVX-512 vectors there, Cython's helpers 8-lane "
        "ones (a fixed summation order). Figures and variants tried: " + PERF + "cython-fastest.",
    "Numba within 1.5x of Cython (numba time / cython time <= 1.5)":
        "Each Numba kernel is one jitted call with a serial twin for one thread; on (60, 100) Numba still pays its "
        "dispatcher's type checks of every argument (under 1 us). Figures and variants tried: "
        + PERF + "numba-vs-cython. On the Xeon VM's run of 2026-12-07 (60, 100) read 2.16x (backward) and "
        "2.59x (forward): calls of a few microseconds, where the dispatcher's fixed cost per call is the "
        "difference (met on the AMD VM; not investigated further in session 34).",
    "2 threads >= 1.6x 1 thread (cython, tensors >= 1.6M elements)":
        "These tensors are memory-bound. The DRAM-size ones cannot gain more than the DRAM-size triad does from the "
        "second core (see the list above); the cache-size ones can, when the machine is quiet. A 2-thread process "
        "that loses a core to another process waits at every OpenMP barrier. Measurements: " + PERF + "two-threads.",
    "end to end: MLP-BN >= 1.5x torch steps/s":
        "About 60% of a step's instructions are its 11 BLAS matrix multiplies (the first layer's two 36 us a step "
        "slower in NumPy's OpenBLAS than in PyTorch's MKL; no copy of W^T made in the forward pays for itself: "
        "docs/perf/mlp-first-layer.md); the kernels are 1.5-2x faster than a session ago (same bits), each "
        "BatchNorm + Sigmoid pair is one node and every op's autograd core is about 30% fewer instructions, which "
        "leaves about 1 us of Python a piece (session 32: the contract's checks as one compiled call, about 2% of "
        "the step; session 33: cross entropy's kernel pair, batch norm's checks in one test, 1.024x; session 34: "
        "nn.Sequential's cached plan, 1.4-2.0%). The VM's per-process speed is bimodal (the machine's: "
        "docs/perf/memory-placement.md): by the medians of 16 processes each (docs/end-to-end-mlp-bn-16x.json) "
        "eager runs at 1.73x PyTorch (paired; 1.74x by the medians), in the 8-repeat run 1.79x paired, seven of "
        "its eight eager processes at 526-608 us a step, one at 829)",
    "end to end: MLP-BN compiled >= 2x torch steps/s":
        "The replay binds the linear layers, batch norm + sigmoid and the plain cross entropy to their kernels and "
        "preallocated arrays (docs/perf/mlp-step.md, docs/compile.md); by the medians of 16 processes each "
        "(docs/end-to-end-mlp-bn-16x.json) the compiled step runs at 2.42x PyTorch (paired), 2.47x in the 8-repeat "
        "run (session 34: the cross entropy as its kernel pair, about 2-3% of the step). Its processes are bimodal "
        "on this VM: in the 16-process run thirteen of sixteen ran 388-441 us a step and three 609-642 us "
        "(PyTorch's 902-1649 us)",
    "end to end: MLP-BN compiled >= 1.0x JAX jitted steps/s":
        "By the medians of 16 processes each (docs/end-to-end-mlp-bn-16x.json) the compiled step takes 424 us "
        "against JAX's 586 (1.38x), in the 8-repeat run 412 us against 588 (1.43x by the medians; 1.45x paired "
        "within each repeat); both libraries' processes are bimodal here (JAX's 534-960 us).",
    "end to end: ResNet-20 >= 1.0x torch steps/s":
        "Every 3x3 convolution runs on a direct kernel (unit stride: docs/perf/conv.md parts 2-4; stride 2 by the "
        "stride's phases: part 5; the 1x1 stride-2 shortcuts on the same kernels since session 33); the classifier "
        "is a GEMM",
    "end to end: lenet-bn at 2 threads >= 1.2x torch steps/s":
        "LeNet-BN's kernels are small (its activations 6-16 channels): a second thread's wake-up (20-30 us with the "
        "passive wait minigrad sets) costs what it saves, and its GEMMs run on one OpenBLAS thread, minigrad's "
        "policy (with OpenBLAS at 2 threads the step was slower still: its workers spin and hold the core the next "
        "kernel needs). docs/perf/threads.md",
    "end to end: ResNet-20 at 2 threads >= 1.2x torch steps/s":
        "Follows from the scaling below: in session 34's run PyTorch's step gains 1.51x from the second core "
        "(medians; 1.34x in session 33's), minigrad's eager step 1.50x, so the 1-thread lead (1.23x) stays at "
        "1.21x; the compiled step, 1.26x PyTorch at 2 threads, gains 1.51x (docs/perf/threads.md)",
    "end to end: ResNet-20 step 2 threads >= 1.6x 1 thread":
        "The eager step gains 1.50x (medians; 1.49x paired) in session 34's run, the compiled one 1.51x (1.53x "
        "paired); 1.64x / 1.61x in session 33's, 1.57x / 1.46x in session 32's: the line sits inside this VM's "
        "run-to-run spread (session 34's in-process A/B of both trees, scripts/step_ab.py, read about 1.58x for "
        "each, and this session's tree faster at 1 and 2 threads). The main thread's serial time sets the bound (session 32: about 1.78x with the "
        "cores free); session 33 moved the 1x1 shortcuts' GEMMs and copies onto the team and folded the fan-out "
        "sums into add + ReLU's backward (docs/perf/threads.md, session 33). With another process on the second "
        "core a 2-thread step loses its worker at every barrier, as the note at the top says",
    "end to end: small CNN-BN (lenet-bn) >= 1.0x torch steps/s":
        "Its first convolution has one input channel (im2col + GEMM for its weight gradient), the rest runs on the "
        "direct kernels",
    "inference: minigrad fused >= 1.0x torch eval at batch 1 (model zoo)":
        "At batch 1 a forward is a chain of small ops, each paying the functional's checks, an autograd node and "
        "a Tensor (a few microseconds); the fused mlp-bn is 8 such ops around 14 us of matrix products, and a "
        "ResNet-20 conv spends about as long outside its kernels as in im2col. README's \"Inference speed\" has "
        "the table (benchmarks/bench_inference.py) and what was trimmed.",
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


def distributed_section(summary, json_name="bench_distributed.json", json_path="docs/bench_distributed.json"):
    """Markdown for a ``scripts/bench_distributed.py --scaling`` summary (its table is that script's)."""
    spec = importlib.util.spec_from_file_location("bench_distributed",
                                                  os.path.join(ROOT, "scripts", "bench_distributed.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    ranks = ",".join(map(str, summary["ranks"]))
    low, high = summary["load_average_1min"]
    return [
        "## Data-parallel training over MPI (one machine)", "",
        f"From `{json_name}`: `python scripts/bench_distributed.py --scaling {ranks} --repeats {summary['repeats']} "
        f"--steps {summary['steps']} --batch-size {summary['batch_per_rank']} --json {json_path}` "
        f"({summary['started']} to {summary['finished']}; {summary['machine']}; backend {summary['backend']}; "
        f"1-minute load average before the runs {low:.1f}-{high:.1f}). One training step (forward, cross entropy, "
        f"backward, SGD) of batch {summary['batch_per_rank']} per rank and one kernel thread per rank, under "
        "DistributedDataParallel, without and with SyncBatchNorm; ms per step split into compute and the MPI "
        "calls in it, samples/s of the global batch and its ratio to 1 rank: medians over the repeats. More "
        "ranks than cores are over-subscribed, and on a shared machine these figures measure the scheduler as "
        "much as minigrad: read [distributed.md](distributed.md) (columns, and what they can and cannot show).", "",
        *script.scaling_table(summary), ""]


def end_to_end_section(e2e, json_name):
    """Markdown for a separate run of the end-to-end training steps (``run_all.py --only bandwidth end-to-end``):
    its own machine, command and limits (the GEMM yardstick for the conv nets, the triad), its targets, its table."""
    run = e2e.get("minigrad_run") or {}
    commit = (e2e.get("commit_info") or {}).get("id")
    gemm = {}
    for r in bench._rows(e2e):
        if r["op"] == "gemm" and r["median"]:
            m, k, n = r["shape"]
            gemm.setdefault(r["threads"], []).append(f"{m}x{k}x{n} {2.0 * m * k * n / r['median'] / 1e9:.0f} GFLOP/s")
    triad = bench.triad_by_threads(e2e, "llc")
    load = run.get("load_average") or {}
    load = (f"1-minute load average {load['start'][0]:.2f} at the start, {load['end'][0]:.2f} at the end"
            if load.get("start") and load.get("end") else "")
    return [
        "## Training steps (end to end)", "",
        f"From `{json_name}`, a run of its own (the tables above and below it are from different runs): "
        f"`{run.get('command', 'unknown')}`, {run.get('started', '?')} to {run.get('finished', '?')}"
        + (f", commit `{commit[:10]}`" if commit else "") + (f", {load}" if load else "") + ". "
        "One training step (forward, cross entropy, backward, SGD with momentum) per call, each library in its own "
        "process (JAX jitted; at 1 thread under `taskset -c 0` with `XLA_FLAGS=--xla_cpu_multi_thread_eigen=false`); "
        "minigrad-compiled is the step under `minigrad.compile`. Limits measured in the same run: NumPy's GEMM "
        + "; ".join(f"{'; '.join(v)} at {t} thread{'s' if t > 1 else ''}" for t, v in sorted(gemm.items()))
        + " (the conv nets' yardstick); LLC-size triad "
        + ", ".join(f"{v:.1f} GB/s at {t} thread{'s' if t > 1 else ''}" for t, v in sorted(triad.items())) + ".", "",
        bench.render_targets(e2e, fmt="markdown", only="end to end"),
        *[f"* **{t['target']}**: {LIMITS.get(t['target'], 'not analysed yet.')}"
          for t in bench.evaluate_targets(e2e) if t["target"].startswith("end to end") and t["status"] == "MISSED"],
        "",
        bench.render_table({"benchmarks": [b for b in e2e["benchmarks"]
                                           if (b.get("extra_info") or {}).get("op") == "train step"]},
                           fmt="markdown"), ""]


def make_doc(data, json_name="benchmarks.json", distributed=None, distributed_name="bench_distributed.json",
             distributed_path="docs/bench_distributed.json", end_to_end=None, end_to_end_name="end-to-end.json"):
    run = data.get("minigrad_run") or {}
    cpu = run.get("cpu") or _local_cpu()
    mi = data.get("machine_info") or {}
    triads = {size: bench.triad_by_threads(data, size) for size in ("llc", "tensor", "dram")}
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
                            ("Tensor-size (6.125 MiB per array, as large as the 1.6M-element cases; "
                             "informational)", triads["tensor"]),
                            ("DRAM-size (64 MiB per array)", triads["dram"]))],
        f"* Environment of every process: {env}; every process (minigrad's and PyTorch's) calls "
        "`minigrad.tune_allocator()`, as `minigrad train` does (glibc keeps freed blocks on its heap; NumPy's arrays "
        "on 4 KiB pages, not its transparent huge pages: see `minigrad/allocator.py`)",
        "",
        "Times are medians. GB/s uses the byte model (training forward 3 |x|, inference 2 |x|, backward 5 |x|, "
        "fwd+bwd 8 |x| bytes); `of triad` divides it by the triad of the same thread count, the LLC-size one when the "
        "op's distinct arrays (2, 2, 3, 4 x |x|) fit in the last-level cache, else the DRAM-size one; `vs torch` is "
        "torch's time over the row's (above 1: faster than torch). Every ratio, here and in the targets, is paired: "
        "the median over the whole-plan repeats of the ratio within each repeat, whose processes for one benchmark "
        "file run back to back (seconds apart), while this machine's load changes over minutes. The machine is "
        "shared: 2-thread figures "
        "collapse when another process takes a core.",
        "",
    ]
    failed = [p for p in run.get("processes", []) if p.get("rc") not in (0, 5)]
    if failed:
        lines += ["Processes that failed: " + ", ".join(f"{p['label']} (rc {p['rc']})" for p in failed), ""]
    if end_to_end:  # NOTE: the training steps come from their own run (below), not from this one's rows
        data = dict(data, benchmarks=[b for b in data["benchmarks"]
                                      if (b.get("extra_info") or {}).get("op") != "train step"])
    lines += ["## Targets", "", "1 thread and the cython backend unless stated"
              + ("; the end-to-end training steps' targets are in their own section below." if end_to_end else "."),
              "", "\n".join(line for line in bench.render_targets(data, fmt="markdown").split("\n")
                            if not (end_to_end and line.startswith("| end to end:"))),
              *limits_section(data)]
    if end_to_end:
        lines += end_to_end_section(end_to_end, end_to_end_name)
    lines += ["## Results", "", bench.render_table(data, fmt="markdown")]
    if distributed:
        lines += ["", *distributed_section(distributed, distributed_name, distributed_path)]
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("json")
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    p.add_argument("--distributed", default=None, help="a scripts/bench_distributed.py --scaling JSON (default: "
                   "docs/bench_distributed.json where it exists)")
    p.add_argument("--end-to-end", default=None, help="a run_all.py JSON of the end-to-end training steps, from a "
                   "run of its own (default: docs/end-to-end.json where it exists); its steps replace the main run's")
    a = p.parse_args(argv)
    data = bench.load(a.json)
    e2e_path = a.end_to_end or os.path.join(ROOT, "docs", "end-to-end.json")
    end_to_end = bench.load(e2e_path) if a.end_to_end or os.path.exists(e2e_path) else None
    dist_path = a.distributed or os.path.join(ROOT, "docs", "bench_distributed.json")
    distributed = None
    if a.distributed or os.path.exists(dist_path):
        with open(dist_path) as f:
            distributed = json.load(f)
    out_dir = os.path.dirname(os.path.abspath(a.out))
    text = make_doc(data, os.path.relpath(a.json, out_dir), distributed, os.path.relpath(dist_path, out_dir),
                    os.path.relpath(dist_path, ROOT), end_to_end, os.path.relpath(e2e_path, out_dir))
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        f.write(text)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
