"""Who holds the cores during a training step at 2 threads: the step's wall and CPU time under several thread
policies, each in its own process, interleaved over rounds, with each thread's CPU time and run-queue wait from
``/proc/self/task/*/schedstat`` (docs/perf/threads.md). On a shared machine the wall time of 2 threads is noise;
what a policy does shows in the split: spinning shows as CPU time near 2x wall, a serial step as one thread
holding all the CPU time. Per thread it prints CPU ms / run-queue wait ms / involuntary context switches per step
("preempted"): a main thread preempted about once per parallel region was pushed off its core by its own worker
(woken onto the same CPU while the other one was busy with another process), and the region ran on one core.

    PYTHONPATH=$PWD python scripts/threads_ab.py resnet20 --steps 12 --rounds 3
    PYTHONPATH=$PWD python scripts/threads_ab.py lenet-bn --steps 60 --policies 1 2 2-blas2 torch2

Policies (``--policies``): "1" (1 thread), "2" (minigrad's defaults: ``set_num_threads(2)``, so NumPy's BLAS at 1
thread, and the passive wait ``import minigrad`` sets), "2-blas2" (``set_num_threads(2, blas=2)``), "2-blas2-t4"
(the same with ``OPENBLAS_THREAD_TIMEOUT=4`` before NumPy loads: its workers spin 2^4 cycles, not 2^28),
"2-spin" (BLAS at 1 with libgomp's own default spin, ``GOMP_SPINCOUNT=300000``; "2-spin1k", "2-spin10k",
"2-spin30k" with 1000, 10000, 30000), "2-small" (minigrad's defaults, but every kernel on the threads from
``contract.SMALL`` elements, the one-pass kernels' ``SMALL_PASS`` bound undone), "2-before" (the library's
behaviour before minigrad owned the policy: libgomp's default spin and BLAS at 2), "1c" and "2c" (minigrad's
defaults, the step under ``minigrad.compile`` as in the end-to-end benchmarks), "torch1" and "torch2" (PyTorch,
``OMP_WAIT_POLICY=passive`` as the end-to-end benchmarks). ``--nice`` puts this script's session at that
autogroup nice value first (Linux, root), so that other sessions' jobs yield the cores.

``--kernels`` times each kernel call and NumPy's matmul instead (wall time and the main thread's CPU time, summed
per step): a kernel whose main-thread CPU time at 2 threads is about its wall time runs on one thread while the
other idles.
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POLICIES = {  # name -> (framework, threads, BLAS threads, extra environment)
    "1": ("minigrad", 1, 1, {}),
    "2": ("minigrad", 2, 1, {}),
    "2-blas2": ("minigrad", 2, 2, {}),
    "2-blas2-t4": ("minigrad", 2, 2, {"OPENBLAS_THREAD_TIMEOUT": "4"}),
    "2-spin": ("minigrad", 2, 1, {"GOMP_SPINCOUNT": "300000"}),
    "2-spin1k": ("minigrad", 2, 1, {"GOMP_SPINCOUNT": "1000"}),
    "2-spin10k": ("minigrad", 2, 1, {"GOMP_SPINCOUNT": "10000"}),
    "2-spin30k": ("minigrad", 2, 1, {"GOMP_SPINCOUNT": "30000"}),
    "2-before": ("minigrad", 2, 2, {"GOMP_SPINCOUNT": "300000"}),
    "1c": ("minigrad-compiled", 1, 1, {}),
    "2c": ("minigrad-compiled", 2, 1, {}),
    "2-small": ("minigrad", 2, 1, {}),
    "torch1": ("torch", 1, 1, {"OMP_WAIT_POLICY": "passive"}),
    "torch2": ("torch", 2, 2, {"OMP_WAIT_POLICY": "passive"}),
}


def _threads():
    """{tid: (cpu ns, run-queue wait ns, involuntary context switches)} of this process's threads."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                run, wait, _ = map(int, f.read().split())
            with open(f"/proc/self/task/{tid}/status") as f:
                invol = next(int(line.split()[1]) for line in f if line.startswith("nonvoluntary_ctxt_switches"))
        except (OSError, StopIteration):
            continue
        out[tid] = (run, wait, invol)
    return out


def _kernel_timers():
    """Wrap every contract kernel call and np.matmul with timers; returns
    {name: [calls, wall s, main thread cpu s, all threads' cpu s]}."""
    import numpy as np

    from minigrad.kernels import contract

    acc = {}

    def timed(name, f):
        def g(*a, **k):
            t0, c0, p0 = time.perf_counter(), time.thread_time(), time.process_time()
            r = f(*a, **k)
            e = acc.setdefault(name, [0, 0.0, 0.0, 0.0])
            e[0] += 1
            e[1] += time.perf_counter() - t0
            e[2] += time.thread_time() - c0
            e[3] += time.process_time() - p0
            return r
        return g

    getattr_, checked_then_raw = contract.Backend.__getattr__, contract.Backend.checked_then_raw

    def get(self, kernel):
        f = timed(kernel, getattr_(self, kernel))
        setattr(self, kernel, f)
        return f
    contract.Backend.__getattr__ = get
    def first_then_raw(self, kernel, args):  # NOTE: the first call runs inside checked_then_raw
        later = []
        timed(kernel, lambda: later.append(checked_then_raw(self, kernel, args)))()
        return timed(kernel, later[0])
    contract.Backend.checked_then_raw = first_then_raw
    np.matmul = timed("np.matmul", np.matmul)
    return acc


def child(policy, model, steps, kernels=False):
    framework, n, blas_threads, _ = POLICIES[policy]
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    os.environ["STEP_THREADS"] = str(n)  # NOTE: read by step_cpu_time at its import
    import numpy as np
    import step_cpu_time

    import minigrad
    from minigrad.allocator import tune_allocator
    tune_allocator()
    minigrad.set_num_threads(n, blas=blas_threads)
    if policy == "2-small":  # every kernel threaded from contract.SMALL elements, as before contract.SMALL_PASS
        from minigrad.kernels import contract
        contract.small = lambda kernel: contract.SMALL
    acc = _kernel_timers() if kernels else None
    step = step_cpu_time.build(framework, model)
    for _ in range(3):
        step()
    if acc is not None:
        acc.clear()
    wall, cpu = [], []
    before = _threads()
    for _ in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    after = _threads()
    per_thread = sorted(tuple((a - b) / steps / k for a, b, k in zip(after[t], before.get(t, (0, 0, 0)), (1e6, 1e6, 1)))
                        for t in after)
    busy = [(round(c, 1), round(w, 1), round(i)) for c, w, i in reversed(per_thread) if c > 0.05]
    print(json.dumps({"policy": policy, "wall": float(np.median(wall)) * 1e3, "cpu": float(np.median(cpu)) * 1e3,
                      "threads": busy, "load": os.getloadavg()[0], "blas": minigrad.get_blas_num_threads(),
                      "kernels": {k: [v[0] // steps, v[1] / steps * 1e3, v[2] / steps * 1e3, v[3] / steps * 1e3]
                                  for k, v in (acc or {}).items()}}))


def _kernel_table(rows):
    """Per kernel, per policy: the median over rounds of wall / main-thread CPU ms per step."""
    import statistics

    names = sorted({k for rs in rows.values() for r in rs for k in r["kernels"]},
                   key=lambda k: -max(r["kernels"].get(k, [0, 0, 0])[1] for rs in rows.values() for r in rs))
    print("\nkernel (calls/step): wall / main-thread cpu / all threads' cpu ms per step, median over rounds")
    print(f"  {'':34s} " + " ".join(f"{p:>22s}" for p in rows))
    for k in names:
        cells = []
        for rs in rows.values():
            got = [r["kernels"][k] for r in rs if k in r["kernels"]]
            cells.append(" / ".join(f"{statistics.median(g[i] for g in got):6.2f}" for i in (1, 2, 3))
                         if got else f"{'-':>22s}")
        calls = max(g[0] for rs in rows.values() for r in rs for g in [r["kernels"].get(k, [0])])
        print(f"  {k + f' ({calls})':34s} " + " ".join(cells))
    for i, what in ((1, "wall"), (2, "main-thread cpu"), (3, "all threads' cpu")):
        sums = [statistics.median(sum(v[i] for v in r["kernels"].values()) for r in rs) for rs in rows.values()]
        print(f"  {'sum, ' + what:34s} " + " ".join(f"{v:22.2f}" for v in sums))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", choices=["mlp", "mlp-bn", "lenet-bn", "resnet20"])
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--policies", nargs="+", default=list(POLICIES), choices=list(POLICIES))
    p.add_argument("--nice", type=int, default=None)
    p.add_argument("--kernels", action="store_true", help="time each kernel call (see the module docstring)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        return child(a.child, a.model, a.steps, a.kernels)
    if a.nice is not None:
        with open("/proc/self/autogroup", "w") as f:
            f.write(str(a.nice))
    rows = {k: [] for k in a.policies}
    for r in range(a.rounds):
        order = a.policies if r % 2 == 0 else a.policies[::-1]  # NOTE: alternate the order against drift
        for policy in order:
            env = {k: v for k, v in os.environ.items()
                   if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OPENBLAS_NUM_THREADS")}
            env.update(POLICIES[policy][3], PYTHONPATH=ROOT)
            cmd = [sys.executable, __file__, a.model, "--steps", str(a.steps), "--child", policy]
            out = subprocess.run(cmd + ["--kernels"] * a.kernels, capture_output=True, text=True, env=env, cwd=ROOT)
            if out.returncode:
                sys.exit(out.stderr)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows[policy].append(row)
            threads = ", ".join(f"{c:.1f}/{w:.1f}/{i}" for c, w, i in row["threads"])
            print(f"round {r + 1} {policy:11s} wall {row['wall']:7.1f}  cpu {row['cpu']:7.1f} ms  "
                  f"threads cpu/wait/preempted {threads}  BLAS {row['blas']}  load {row['load']:.2f}", flush=True)
    if a.kernels:
        _kernel_table(rows)
    print(f"\n{a.model}: median over {a.rounds} rounds (ms/step)")
    for policy, rs in rows.items():
        med = sorted(rs, key=lambda r: r["wall"])[len(rs) // 2]
        print(f"  {policy:11s} wall {med['wall']:7.1f}  cpu {med['cpu']:7.1f}  "
              f"walls {' '.join('%.1f' % r['wall'] for r in rs)}")


if __name__ == "__main__":
    main()
