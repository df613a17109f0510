"""Time the double backward of BatchNorm2d (32, 64, 28, 28) and LayerNorm (8192, 768) in minigrad and in PyTorch,
each in its own process, and print the ratio minigrad / PyTorch.

    PYTHONPATH=$PWD python scripts/double_backward_vs_torch.py [--threads 1] [--rounds 7]

The timed region (``benchmarks/_double_backward.py``): the backward with ``create_graph=True`` and the backward of
a scalar of its gradients, the forward run before each round outside the timing. Also printed: the two halves
separately, and whether the two frameworks' gradient norms agree (float32, rtol 1e-3).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "benchmarks"))

from _double_backward import CASES, build, case_id  # noqa: E402

THREAD_ENV = ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
              "MINIGRAD_NUM_THREADS")


def worker(framework, rounds, threads):
    """{case id: {"total": [s], "first": [s], "second": [s], "norms": [...]}} of one framework."""
    if framework == "torch":
        import torch
        torch.set_num_threads(threads)
    else:
        import minigrad
        minigrad.set_num_threads(threads)
    out = {}
    for norm, shape in CASES:
        setup, step, summary, (first, second) = build(framework, norm, shape)
        args, _ = setup()
        step(*args)  # warm-up
        norms = summary(*args)
        totals, firsts, seconds = [], [], []
        for _ in range(rounds):  # NOTE: whole steps and halves alternate, so both see the same machine
            a, _ = setup()
            t0 = time.perf_counter()
            step(*a)
            totals.append(time.perf_counter() - t0)
            a, _ = setup()
            t0 = time.perf_counter()
            grads = first(*a)
            t1 = time.perf_counter()
            second(grads)
            firsts.append(t1 - t0)
            seconds.append(time.perf_counter() - t1)
        out[case_id(norm, shape)] = {"total": totals, "first": firsts, "second": seconds, "norms": norms}
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--worker", choices=("minigrad", "torch"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        print(json.dumps(worker(a.worker, a.rounds, a.threads)))
        return 0
    env = dict(os.environ, **{k: str(a.threads) for k in THREAD_ENV})
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(HERE), env.get("PYTHONPATH", "")])
    res = {}
    for fw in ("minigrad", "torch"):
        run = subprocess.run([sys.executable, __file__, "--worker", fw, "--rounds", str(a.rounds), "--threads",
                              str(a.threads)], env=env, capture_output=True, text=True, check=True)
        res[fw] = json.loads(run.stdout.strip().splitlines()[-1])
    med = statistics.median
    print(f"double backward, float32, {a.threads} thread(s), median of {a.rounds} rounds (ms)")
    print(f"{'case':28s} {'part':8s} {'minigrad':>9s} {'torch':>9s} {'ratio':>6s}")
    ok = True
    for cid in res["minigrad"]:
        m, t = res["minigrad"][cid], res["torch"][cid]
        for part in ("total", "first", "second"):
            mm, tt = med(m[part]) * 1e3, med(t[part]) * 1e3
            print(f"{cid:28s} {part:8s} {mm:9.1f} {tt:9.1f} {mm / tt:6.2f}")
        agree = all(abs(x - y) <= 1e-3 * abs(y) for x, y in zip(m["norms"], t["norms"]))
        ok &= agree
        print(f"{cid:28s} gradient norms (x, weight, dy) agree: {agree}")
    print("total = first + second: first the backward with create_graph=True, second the backward of "
          "sum(dx*v) + sum(dweight*u) (the double backward)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
