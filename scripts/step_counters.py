"""Per-step counters of one model's training step, eager against compiled, each framework and thread count in its
own process (``scripts/step_cpu_time.py``'s build), interleaved over rounds with the order reversed every other
round: wall, process CPU, the main thread's CPU, the other threads' CPU (process - main), minor page faults,
voluntary and involuntary context switches a step (getrusage), medians over the round's steps, then over rounds.
For "where does one step's extra CPU at 2 threads go":

    PYTHONPATH=$PWD python scripts/step_counters.py resnet20 e1=$PWD:minigrad:1 e2=$PWD:minigrad:2 \\
        c1=$PWD:minigrad-compiled:1 c2=$PWD:minigrad-compiled:2 --rounds 5 --steps 10 [--nice -15]

Each configuration is ``label=checkout:framework:threads``, as scripts/step_ab.py takes them, with an optional
fourth field of ``NAME=VALUE`` pairs (comma-separated) put in the child's environment: ``GOMP_SPINCOUNT=30000`` (a
short spin instead of the passive wait), or ``STEP_ONE_THREAD_BELOW=1048576``, which this script (not the library)
reads: every kernel but the convolutions' on one thread below that many elements (``contract.small`` patched
before the first kernel call, as threads_ab.py's "2-small" policy does):

    PYTHONPATH=$PWD python scripts/step_counters.py resnet20 p2=$PWD:minigrad:2 \
        s2=$PWD:minigrad:2:GOMP_SPINCOUNT=30000 b2=$PWD:minigrad:2:STEP_ONE_THREAD_BELOW=1048576 --nice -15
"""
import argparse
import json
import os
import statistics
import subprocess
import sys


def child(framework, model, steps, threads):
    os.environ["STEP_THREADS"] = str(threads)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import resource
    import time

    import step_cpu_time
    import minigrad
    from minigrad.allocator import tune_allocator
    tune_allocator()
    minigrad.set_num_threads(threads)
    below = os.environ.get("STEP_ONE_THREAD_BELOW")
    if below:  # NOTE: a measurement's patch, before the backend caches each kernel's bound
        from minigrad.kernels import contract
        small = contract.small
        contract.small = lambda kernel: small(kernel) if kernel.startswith(("conv", "im2col", "col2im")) \
            else max(small(kernel), int(below))
    step = step_cpu_time.build(framework, model)
    for _ in range(3):
        step()
    rows = []
    for _ in range(steps):
        r0, w0, p0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter(), time.process_time(), \
            time.thread_time()
        step()
        t1, p1, w1, r1 = time.thread_time(), time.process_time(), time.perf_counter(), \
            resource.getrusage(resource.RUSAGE_SELF)
        rows.append([(w1 - w0) * 1e3, (p1 - p0) * 1e3, (t1 - t0) * 1e3, (p1 - p0 - t1 + t0) * 1e3,
                     r1.ru_minflt - r0.ru_minflt, r1.ru_nvcsw - r0.ru_nvcsw, r1.ru_nivcsw - r0.ru_nivcsw])
    print(json.dumps([statistics.median(r[j] for r in rows) for j in range(7)]))


COLS = ("wall", "cpu", "main", "others", "minflt", "vcsw", "ivcsw")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("configs", nargs="+", help="label=checkout:framework:threads")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--nice", type=int, default=None, help="this script's autogroup nice value first (Linux, root)")
    a = p.parse_args()
    if a.nice is not None:  # NOTE: as scripts/step_ab.py's --nice
        with open("/proc/self/autogroup", "w") as f:
            f.write(str(a.nice))
    configs = [c.split("=", 1) for c in a.configs]
    rows = {label: [] for label, _ in configs}
    me = os.path.abspath(__file__)
    for r in range(a.rounds):
        load = os.getloadavg()[0]
        for label, spec in configs if r % 2 == 0 else configs[::-1]:  # NOTE: alternate the order against drift
            tree, framework, threads, *extra = spec.split(":")
            env = {k: v for k, v in os.environ.items()
                   if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OPENBLAS_NUM_THREADS")}
            env["PYTHONPATH"] = tree
            env.update(kv.split("=", 1) for e in extra for kv in e.split(",") if kv)
            out = subprocess.run([sys.executable, me, "--child", framework, a.model, str(a.steps), threads],
                                 capture_output=True, text=True, env=env, cwd=tree)
            if out.returncode:
                sys.exit(f"{label}: failed\n{out.stderr[-2000:]}")
            v = json.loads(out.stdout.strip().splitlines()[-1])
            rows[label].append(v)
            print(f"round {r + 1} load {load:.2f} {label:8s} " + "  ".join(f"{c} {x:.1f}" for c, x in zip(COLS, v)),
                  flush=True)
    print(f"\n{a.model}: medians over {a.rounds} rounds of the per-step medians (ms; counts a step)")
    print(f"  {'':8s} " + " ".join(f"{c:>8s}" for c in COLS))
    for label, v in rows.items():
        print(f"  {label:8s} " + " ".join(f"{statistics.median(x[j] for x in v):8.1f}" for j in range(7)))


if __name__ == "__main__":
    main()
