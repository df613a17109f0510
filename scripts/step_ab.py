"""One model's training step in several checkouts, frameworks and thread counts, each in its own process
(``scripts/step_cpu_time.py`` of that checkout), interleaved over rounds with the order reversed every other round;
prints each process's wall / CPU ms per step and the medians. For old-against-new comparisons of a step on a
shared machine: keep a copy of the old tree with its built extensions (``git archive`` of the old commit plus
``minigrad/_ext/*.so``) and name both.

    PYTHONPATH=$PWD python scripts/step_ab.py lenet-bn --rounds 7 --steps 60 --nice -15 \\
        old1=/tmp/old:minigrad:1 new1=$PWD:minigrad:1 old2=/tmp/old:minigrad:2 new2=$PWD:minigrad:2 \\
        torch1=$PWD:torch:1 torch2=$PWD:torch:2

Each configuration is ``label=checkout:framework:threads`` (framework as step_cpu_time.py takes it). ``--nice``
puts this script's session at that autogroup nice value first (Linux, root), as scripts/threads_ab.py does.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("configs", nargs="+", help="label=checkout:framework:threads")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--nice", type=int, default=None)
    a = p.parse_args()
    if a.nice is not None:
        with open("/proc/self/autogroup", "w") as f:
            f.write(str(a.nice))
    configs = [c.split("=", 1) for c in a.configs]
    rows = {label: [] for label, _ in configs}
    for r in range(a.rounds):
        load, cells = os.getloadavg()[0], []
        for label, spec in configs if r % 2 == 0 else configs[::-1]:  # NOTE: alternate the order against drift
            tree, framework, threads = spec.split(":")
            env = {k: v for k, v in os.environ.items()
                   if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OPENBLAS_NUM_THREADS")}
            env["PYTHONPATH"] = tree
            out = subprocess.run([sys.executable, os.path.join(tree, "scripts", "step_cpu_time.py"), framework,
                                  a.model, str(a.steps), threads], capture_output=True, text=True, env=env, cwd=tree)
            m = re.search(r"wall ([\d.]+) ms\s+cpu ([\d.]+)", out.stdout)
            if m is None:
                sys.exit(f"{label}: no timing in the output\n{out.stdout}\n{out.stderr[-2000:]}")
            rows[label].append((float(m[1]), float(m[2])))
            cells.append(f"{label} {m[1]}/{m[2]}")
        print(f"round {r + 1} load {load:.2f}: " + "  ".join(cells), flush=True)
    print(f"\n{a.model}: median over {a.rounds} rounds, wall / cpu ms per step")
    for label, v in rows.items():
        wall, cpu = statistics.median(w for w, _ in v), statistics.median(c for _, c in v)
        print(f"  {label:10s} wall {wall:7.3f}  cpu {cpu:7.3f}  {1e3 / wall:6.1f} steps/s   walls "
              + " ".join(f"{w:.2f}" for w, _ in v))


if __name__ == "__main__":
    main()
