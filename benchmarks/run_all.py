"""Run every benchmark, one process per (library, thread count), and merge the JSONs into one.

Why processes: PyTorch bundles its own OpenMP runtime while the Cython and Numba kernels use the system libgomp;
two runtimes in one process gave erratic 2-thread timings (TOOLCHAIN.md). Each process selects one backend with
``-k`` and gets its thread count pinned in the environment (OMP_NUM_THREADS, NUMBA_NUM_THREADS, MKL_NUM_THREADS,
OPENBLAS_NUM_THREADS, MINIGRAD_NUM_THREADS) as well as by the ``threads`` fixture inside.

Order: the bandwidth benchmarks first (they write ``.benchmarks/bandwidth.json``, which gives every later
process its ``frac_of_triad``), then per benchmark file each backend's process at each thread count, then the
end-to-end training steps (minigrad, minigrad under ``minigrad.compile``, torch, and jax when installed: at 1 thread its process runs under
``taskset -c 0`` with ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false``), then the inference latencies of
``bench_inference.py`` (minigrad, minigrad-fused, minigrad-fused-compiled, torch, onnxruntime; 1 thread only). The NumPy reference runs at
1 thread only (it has no threads). ``--only inference`` (or any of ``PARTS``) runs just those parts.

    python benchmarks/run_all.py --out docs/benchmarks.json [--min-rounds 5] [--max-time 0.25] [-k EXPR]

``-k EXPR`` is and-ed to every process's selection (e.g. ``-k "32x64x28x28"``); ``--files F ...`` runs only those
kernel benchmark files (the bandwidth ones still run first), e.g. ``--files bench_norm_family.py``.

``--repeat N`` runs the whole plan N times (so each benchmark is sampled at N moments of a noisy machine) and
keeps, per benchmark, the median of the N medians (``stats.median``; all N in ``extra_info.repeat_medians``).
GB/s and the fraction of triad are then recomputed from those medians, the triad from the merged triad rows.

``--wait-policy`` (default ``unset``: the runtimes' own default, which spins a while before it sleeps; spelled out
as libgomp's default ``GOMP_SPINCOUNT=300000``, since ``import minigrad`` sets ``OMP_WAIT_POLICY=passive`` where
the user set neither) sets OMP_WAIT_POLICY for the kernel and bandwidth processes, PyTorch's OpenMP included;
``--e2e-wait-policy`` (default ``minigrad``: ``OMP_WAIT_POLICY=passive GOMP_SPINCOUNT=1000``, what ``import minigrad`` sets since session
38, for every library's process; ``passive`` was the default before) does so for the end-to-end training steps.
NOTE: on this 2-core VM a sleeping OpenMP thread costs a wake-up of tens of microseconds per parallel
region: with ``passive`` the LLC-size triad ran slower at 2 threads than at 1 (47 against 75 GB/s), with the default it scaled (70 -> 125 GB/s). The
spin is harmless only while nothing else wants the cores: with another process holding a core, each OpenMP barrier
cost a scheduler time slice (the Cython batch-norm forward of (32, 64, 28, 28) took 48 ms at 2 threads against
0.5 ms at 1), so run the benchmarks on an otherwise idle machine. A training step also runs NumPy's BLAS, whose
own threads spin too (minigrad keeps them at 1 thread: docs/perf/threads.md), which is why minigrad, and so the
end-to-end benchmark, spins only briefly (1000 spins) before it sleeps.
"""
import argparse
import datetime
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
NORM_FILES = ["bench_batch_norm.py", "bench_layer_norm.py", "bench_group_norm.py", "bench_norm_family.py",
              "bench_optim.py"]
BACKENDS = ["numpy", "cython", "numba", "torch"]
# bench_inference.py's frameworks and the -k selecting each ("minigrad" alone would also select "minigrad-fused")
INFERENCE = {"minigrad": "minigrad and not minigrad-fused", "minigrad-fused": "minigrad-fused and not compiled",
             "minigrad-fused-compiled": "minigrad-fused-compiled", "torch": "torch", "onnxruntime": "onnxruntime"}
PARTS = ("bandwidth", "kernels", "end-to-end", "inference")
# libgomp's spin before it sleeps when OMP_WAIT_POLICY is unset ("about 3 ms"; libgomp/env.c)
LIBGOMP_DEFAULT_SPINCOUNT = "300000"
MINIGRAD_SPINCOUNT = "1000"  # NOTE: minigrad/kernels/threads.py's SPINCOUNT (not imported: the runner stays light)
THREAD_ENV = ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
              "MINIGRAD_NUM_THREADS")


def plan(threads=(1, 2), backends=BACKENDS, end_to_end=True, files=NORM_FILES, parts=PARTS):
    """[(label, files, -k expression, threads)] in run order (``files``: which of NORM_FILES; the bandwidth
    benchmarks run first, as they give the fractions of triad; ``parts`` picks among ``PARTS``, the inference
    latencies at 1 thread only)."""
    steps = [(f"bandwidth threads{t}", ["bench_bandwidth.py"], f"threads{t}", t) for t in threads
             if "bandwidth" in parts]
    # NOTE: per file, the backends and thread counts back to back: the paired ratios of minigrad/app/bench_report.py then
    # compare times taken seconds apart, not minutes
    for f in files if "kernels" in parts else ():
        for b in backends:
            for t in threads:
                if b == "numpy" and t > 1:
                    continue
                steps.append((f"{b} {f[len('bench_'):-len('.py')]} threads{t}", [f], f"{b} and threads{t}", t))
    if end_to_end and "end-to-end" in parts:
        for t in threads:
            for fw in ("minigrad", "minigrad-compiled", "torch", "jax"):
                # NOTE: -k matches substrings: "minigrad" alone would also pick the compiled column
                kexpr = f"{fw} and not compiled" if fw == "minigrad" else fw
                steps.append((f"end-to-end {fw} threads{t}", ["bench_end_to_end.py"], f"{kexpr} and threads{t}", t))
    if "inference" in parts and 1 in threads:
        for fw, k in INFERENCE.items():
            steps.append((f"inference {fw} threads1", ["bench_inference.py"], f"({k}) and threads1", 1))
    return steps


def cpu_info():
    """{"model": /proc/cpuinfo's model name, "cores": logical CPUs} of this machine."""
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"model": model, "cores": os.cpu_count()}


def _load_average():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # pragma: no cover - not on Linux
        return None


def _finish(merged, reps):
    """Median over the repetitions, then GB/s and frac_of_triad from the final medians."""
    for b in merged["benchmarks"]:
        meds = reps[b["fullname"]]
        b["stats"]["median"] = statistics.median(meds)
        b["extra_info"]["repeat_medians"] = meds
        if b["extra_info"].get("bytes"):
            b["extra_info"]["gbps"] = b["extra_info"]["bytes"] / b["stats"]["median"] / 1e9
    triad = {}
    for b in merged["benchmarks"]:
        e = b["extra_info"]
        if e.get("op") == "triad" and e.get("gbps"):
            key = (e["threads"], e.get("size"))
            triad[key] = max(triad.get(key, 0.0), e["gbps"])
    for b in merged["benchmarks"]:
        e = b["extra_info"]
        ref = triad.get((e.get("threads"), e.get("triad_ref")))
        if e.get("triad_ref") and e.get("gbps") and ref:
            e["frac_of_triad"] = e["gbps"] / ref
    return {f"triad_{size}_gbps": {str(t): v for (t, sz), v in triad.items() if sz == size} for size in ("llc", "dram")}


def _policy_text(policy):
    if policy == "minigrad":
        return f"(import minigrad's: passive, GOMP_SPINCOUNT={MINIGRAD_SPINCOUNT})"
    return policy if policy != "unset" else f"(runtime default: GOMP_SPINCOUNT={LIBGOMP_DEFAULT_SPINCOUNT})"


def run(steps, out, min_rounds=5, max_time=0.25, extra_k=None, python=sys.executable, quiet=False,
        bandwidth_json=None, wait_policy="unset", repeat=1, e2e_wait_policy="minigrad", progress=True):
    bandwidth_json = bandwidth_json or os.path.join(ROOT, ".benchmarks", "bandwidth.json")
    if os.path.exists(bandwidth_json):
        os.remove(bandwidth_json)  # a fresh side file for this run
    merged, processes, reps = None, [], {}
    started = datetime.datetime.now().isoformat(timespec="seconds")
    load_start = _load_average()
    from tqdm import tqdm

    # NOTE: the bar shows only on a terminal (disable=None) and never with quiet; the step lines then go through it
    bar = tqdm(total=len(steps) * repeat, desc="benchmarks", unit="process", file=sys.stderr, leave=False,
               dynamic_ncols=True, disable=True if quiet or not progress else None)
    say = bar.write if not bar.disable else (lambda s: print(s, flush=True))
    with bar, tempfile.TemporaryDirectory() as tmp:
        for i, (label, files, kexpr, threads) in enumerate(s for _ in range(repeat) for s in steps):
            if extra_k:
                kexpr = f"({kexpr}) and ({extra_k})"
            part = os.path.join(tmp, f"part{i}.json")
            cmd = [python, "-m", "pytest", *[os.path.join("benchmarks", f) for f in files], "-q", "-p",
                   "no:cacheprovider", "-k", kexpr, "--benchmark-only", f"--benchmark-json={part}",
                   f"--benchmark-min-rounds={min_rounds}", f"--benchmark-max-time={max_time}",
                   "--benchmark-columns=median,rounds", "--benchmark-sort=name"]
            env = dict(os.environ, MINIGRAD_BANDWIDTH_JSON=bandwidth_json)
            env.update({k: str(threads) for k in THREAD_ENV})
            policy = e2e_wait_policy if label.startswith(("end-to-end", "inference")) else wait_policy
            env.pop("OMP_WAIT_POLICY", None)
            env.pop("GOMP_SPINCOUNT", None)
            if policy == "minigrad":
                env.update(OMP_WAIT_POLICY="passive", GOMP_SPINCOUNT=MINIGRAD_SPINCOUNT)
            elif policy != "unset":
                env["OMP_WAIT_POLICY"] = policy
            else:  # NOTE: libgomp's own default, spelled out: else `import minigrad` would set passive
                env["GOMP_SPINCOUNT"] = LIBGOMP_DEFAULT_SPINCOUNT
            if label.startswith("end-to-end jax") and threads == 1:
                # NOTE: XLA's CPU client runs its own thread pools; the recipe for one core
                env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
                if shutil.which("taskset"):
                    cmd = ["taskset", "-c", "0"] + cmd
            t0 = time.perf_counter()
            bar.set_postfix_str(label)
            if not quiet:
                say(f"[run_all] {label}: {shlex.join(c for c in cmd if c != python)}")
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or [""]
            bar.update(1)
            if not quiet:
                say(f"[run_all]   rc={proc.returncode} in {wall:.0f} s: {tail[0]}")
            if proc.returncode not in (0, 5):  # 5: nothing selected
                sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
            processes.append({"label": label, "command": shlex.join(c for c in cmd if c != python),
                              "threads": threads, "rc": proc.returncode, "wall_s": round(wall, 1), "summary": tail[0]})
            if os.path.exists(part):
                with open(part) as f:
                    data = json.load(f)
                for b in data["benchmarks"]:
                    b["stats"].pop("data", None)  # raw rounds: keep the merged JSON small
                    if b["fullname"] not in reps:
                        reps[b["fullname"]] = []
                        if merged is None:
                            merged = dict(data, benchmarks=[])
                        merged["benchmarks"].append(b)
                    reps[b["fullname"]].append(b["stats"]["median"])
    merged = merged or {"benchmarks": []}
    triads = _finish(merged, reps)
    merged["minigrad_run"] = {
        "command": shlex.join([os.path.relpath(sys.argv[0], ROOT) if sys.argv[0] else "run_all.py",
                               *sys.argv[1:]]),
        "started": started,
        "finished": datetime.datetime.now().isoformat(timespec="seconds"),
        "min_rounds": min_rounds, "max_time": max_time, "repeat": repeat, "processes": processes,
        "cpu": cpu_info(),
        # NOTE: the machine's 1/5/15-minute load averages at the start and the end (the noise of a shared machine)
        "load_average": {"start": load_start, "end": _load_average()},
        "env": {**{k: "the process's thread count" for k in THREAD_ENV},
                "OMP_WAIT_POLICY": _policy_text(wait_policy),
                "OMP_WAIT_POLICY of the end-to-end processes": _policy_text(e2e_wait_policy)},
    }
    merged["minigrad_run"]["bandwidth"] = triads
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(merged, f, indent=1)
    failed = [p for p in processes if p["rc"] not in (0, 5)]
    return merged, failed


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.path.join(ROOT, ".benchmarks", "all.json"))
    p.add_argument("--min-rounds", type=int, default=5)
    p.add_argument("--max-time", type=float, default=0.25)
    p.add_argument("--repeat", type=int, default=1, help="run the whole plan N times, keep the median")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--backends", nargs="+", default=BACKENDS, choices=BACKENDS)
    p.add_argument("--no-end-to-end", action="store_true")
    p.add_argument("--only", nargs="+", choices=PARTS, default=PARTS,
                   help="run only these parts of the plan (default: all)")
    p.add_argument("--files", nargs="+", default=NORM_FILES, choices=NORM_FILES, metavar="FILE",
                   help="the kernel benchmark files to run (default: all of them, in this order: "
                        + ", ".join(NORM_FILES) + ")")
    p.add_argument("--wait-policy", default="unset", choices=("passive", "active", "unset"),
                   help="OMP_WAIT_POLICY of the kernel processes (see the module docstring)")
    p.add_argument("--e2e-wait-policy", default="minigrad", choices=("minigrad", "passive", "active", "unset"),
                   help="OMP_WAIT_POLICY of the end-to-end processes (see the module docstring)")
    p.add_argument("-k", dest="k", default=None, help="extra pytest -k expression, and-ed to each process's")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no per-process lines")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (none when stderr is not a terminal)")
    a = p.parse_args(argv)
    steps = plan(tuple(a.threads), a.backends, not a.no_end_to_end, [f for f in NORM_FILES if f in a.files],
                 tuple(a.only))
    merged, failed = run(steps, a.out, a.min_rounds, a.max_time, a.k, wait_policy=a.wait_policy,
                         repeat=a.repeat, e2e_wait_policy=a.e2e_wait_policy, quiet=a.quiet,
                         progress=not a.no_progress)
    print(f"[run_all] {len(merged['benchmarks'])} benchmarks -> {a.out}")
    if failed:
        print(f"[run_all] FAILED: {', '.join(p['label'] for p in failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
