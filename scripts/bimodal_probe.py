"""Why a training step's time is bimodal per process: many short processes, each timing the step and three controls
in the same process, round by round, with the candidate causes recorded beside them (docs/perf/memory-placement.md).

    PYTHONPATH=$PWD python scripts/bimodal_probe.py --procs 16 --variants default aslr-off numpy-thp --out /tmp/p.json
    PYTHONPATH=$PWD python scripts/bimodal_probe.py --procs 1 --seconds 30     # one long process, round by round

Each process (``--child``) builds an end-to-end benchmark's step (``--model``, default mlp-bn;
scripts/step_cpu_time.build, 1 thread, ``tune_allocator`` applied as the benchmarks do), then for ``--seconds`` of
CPU time repeats a round of: ``--steps`` steps, a pure-Python loop ("py"), the step's first GEMM on freshly
allocated arrays ("gemm", (60, 784) @ (784, 100) float32) and a NumPy triad over three 1 MiB arrays ("triad"), each
timed in process CPU time. If the step's slow processes are slow in the controls too, the cause is the machine at
that time (the controls share nothing with the step's arrays); if only the step is, it is the process's own memory.
Recorded per process: its start time, the CPUs it ran on, involuntary context switches, steal time, AnonHugePages
(/proc/self/smaps_rollup) and the addresses of the step's arrays (parameters and gradients) mod 4 KiB and mod 2 MiB.

Variants (``--variants``, the processes interleaved variant by variant): default; aslr-off (``setarch -R``);
numpy-thp (NumPy's madvise of huge pages back on after ``tune_allocator``, as before it turned it off); torch
(PyTorch's step, same model).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

VARIANTS = {
    "default": ([], {}),
    "aslr-off": (["setarch", os.uname().machine, "-R"], {}),
    "numpy-thp": ([], {"PROBE_NUMPY_THP": "1"}),
    "torch": ([], {"PROBE_FRAMEWORK": "torch"}),
}


def _cpu_now():
    with open("/proc/self/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[36])  # field 39: the CPU last run on


def _steal():
    with open("/proc/stat") as f:
        return int(f.readline().split()[8])  # the "cpu" line's steal ticks


def _huge_kb():
    with open("/proc/self/smaps_rollup") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("AnonHugePages:"))


def _addresses(step):
    """The data addresses of the step's parameters and their gradients (minigrad only)."""
    import numpy as np
    out = []
    for p in step.net.parameters():
        for a in (p, p.grad):
            a = a if isinstance(a, np.ndarray) else getattr(a, "data", None)  # a Tensor's array, or the array
            if isinstance(a, np.ndarray):
                out.append(a.ctypes.data)
    return out


def child(model, seconds, steps):
    os.environ.update({k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
    import numpy as np
    sys.path.insert(0, HERE)
    import step_cpu_time

    import minigrad
    from minigrad.allocator import tune_allocator
    framework = os.environ.get("PROBE_FRAMEWORK", "minigrad")
    start = time.time()
    tune_allocator(numpy_huge_pages=bool(os.environ.get("PROBE_NUMPY_THP")))
    minigrad.set_num_threads(1)
    step = step_cpu_time.build(framework, model)
    for _ in range(5):
        step()
    rng = np.random.default_rng(0)
    a, b, c = (np.ones(1 << 18, np.float32) for _ in range(3))
    w = rng.random((784, 100), dtype=np.float32)

    def py():
        s = 0
        for i in range(20000):
            s += i
        return s

    def gemm():
        x = rng.random((60, 784), dtype=np.float32)
        return x @ w

    def triad():
        np.multiply(c, 3.0, out=a)
        np.add(a, b, out=a)

    def many_steps():
        for _ in range(steps):
            step()

    work = {"step": many_steps, "py": py, "gemm": gemm, "triad": triad}
    rounds = {k: [] for k in work}
    cpus, steal0, ivcsw0 = set(), _steal(), _ivcsw()
    t_end = time.process_time() + seconds
    while time.process_time() < t_end:
        for k, fn in work.items():
            t = time.process_time()
            fn()
            rounds[k].append((time.process_time() - t) / (steps if k == "step" else 1))
        cpus.add(_cpu_now())
    addrs = _addresses(step) if framework == "minigrad" else []
    return {"start": start, "steps": steps, "rounds": rounds, "cpus": sorted(cpus), "steal": _steal() - steal0,
            "ivcsw": _ivcsw() - ivcsw0, "huge_kb": _huge_kb(), "load": os.getloadavg()[0],
            "mod4k": [x % 4096 for x in addrs], "mod2m": [x % (2 << 20) for x in addrs]}


def _ivcsw():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw


def _spearman(x, y):
    import numpy as np
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:  # NOTE: a constant (huge_kb 0 everywhere) says nothing
        return float("nan")
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    return float(np.corrcoef(rx, ry)[0, 1])


def timeline(p, every=1.0):
    """One process's rounds in slices of ``every`` CPU seconds: the medians of the step and of the controls, so that
    a change of speed in the middle of a process shows (a property of the process would not change)."""
    r, i, t = p["rounds"], 0, 0.0
    n = len(r["step"])
    while i < n:
        j, s = i, 0.0
        while j < n and s < every:
            s += sum(r[k][j] * (p["steps"] if k == "step" else 1) for k in r)
            j += 1
        med = {k: statistics.median(r[k][i:j]) * 1e6 for k in r}
        print(f"  cpu {t:5.1f}-{t + s:5.1f}s step {med['step']:7.1f} py {med['py']:6.1f} gemm {med['gemm']:5.1f} "
              f"triad {med['triad']:6.1f} step/gemm {med['step'] / med['gemm']:4.2f}")
        i, t = j, t + s


def summarize(procs):
    """Per process: the medians in us, step/py and step/gemm; then, per variant, Spearman's rank correlation of the
    step's median with each candidate."""
    import numpy as np
    if len(procs) == 1:
        timeline(procs[0])
    rows = []
    for p in procs:
        med = {k: statistics.median(v) * 1e6 for k, v in p["rounds"].items()}
        rows.append(dict(p, med=med))
        m4 = p["mod4k"]
        print(f"{p['variant']:10s} t={p['start'] - procs[0]['start']:6.1f}s step {med['step']:7.1f} py {med['py']:6.1f} "
              f"gemm {med['gemm']:5.1f} triad {med['triad']:6.1f} | step/py {med['step'] / med['py']:5.2f} "
              f"step/gemm {med['step'] / med['gemm']:5.1f} | cpus {p['cpus']} ivcsw {p['ivcsw']} steal {p['steal']} "
              f"huge {p['huge_kb']} kB distinct mod4k {len(set(m4))}/{len(m4)} load {p['load']:.2f}")
    for v in dict.fromkeys(r["variant"] for r in rows):
        sel = [r for r in rows if r["variant"] == v]
        step = [r["med"]["step"] for r in sel]
        print(f"{v}: step median of medians {statistics.median(step):.1f} us, range {min(step):.1f}-{max(step):.1f} "
              f"over {len(sel)} processes; Spearman of step with:", end="")
        cand = {k: [r["med"][k] for r in sel] for k in ("py", "gemm", "triad")}
        cand.update({k: [r[k] for r in sel] for k in ("start", "ivcsw", "huge_kb", "load")})
        if sel[0]["mod4k"]:  # how many of the step's arrays share a 4 KiB offset (4K aliasing) / start in one
            cand["mod4k_clash"] = [len(r["mod4k"]) - len(set(r["mod4k"])) for r in sel]
            cand["mod2m_low"] = [int(np.mean([x < (1 << 20) for x in r["mod2m"]]) * 100) for r in sel]
        print("".join(f" {k} {_spearman(step, x):+.2f}" for k, x in cand.items()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--procs", type=int, default=16, help="processes per variant")
    ap.add_argument("--seconds", type=float, default=1.5, help="CPU seconds of rounds per process")
    ap.add_argument("--steps", type=int, default=10, help="steps per round")
    ap.add_argument("--model", default="mlp-bn", help="a model of benchmarks/bench_end_to_end.py")
    ap.add_argument("--variants", nargs="+", default=["default"], choices=list(VARIANTS))
    ap.add_argument("--seeds", type=int, default=0, help="process i runs with PYTHONHASHSEED=i %% SEEDS (with "
                    "aslr-off: the same layout for the same seed, so that a layout's speed can be seen again)")
    ap.add_argument("--out", help="write every process's rounds and candidates here (JSON)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.model, args.seconds, args.steps)))
        return
    procs = []
    for i in range(args.procs):
        for v in args.variants:
            prefix, env = VARIANTS[v]
            if args.seeds:
                env = dict(env, PYTHONHASHSEED=str(i % args.seeds))
            cmd = prefix + [sys.executable, os.path.abspath(__file__), "--child", "--model", args.model,
                            "--seconds", str(args.seconds), "--steps", str(args.steps)]
            out = subprocess.run(cmd, env=dict(os.environ, **env), cwd=ROOT, capture_output=True, text=True, check=True)
            seed = f" seed {i % args.seeds}" if args.seeds else ""
            procs.append(dict(json.loads(out.stdout.strip().splitlines()[-1]), variant=v + seed, index=i))
    summarize(procs)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(procs, f)


if __name__ == "__main__":
    main()
