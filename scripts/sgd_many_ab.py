"""``sgd_update_many`` on ResNet-20's 65 parameters (272474 elements, float32, momentum, from the second step), two
builds of minigrad/_ext/optim in one process, interleaved round by round at 1 and 2 threads: the main thread's CPU
time and the wall time a call, medians over the rounds. First the two builds' results are compared bit for bit
(float32, float64 and a mixed list; 1 and 2 threads; plain, large, tiny, +-0, +-inf, NaN and subnormal values).

    PYTHONPATH=$PWD python scripts/sgd_many_ab.py OLD_optim.so NEW_optim.so [--rounds 15] [--calls 50]
"""
import argparse
import importlib.util
import os
import statistics
import time

import numpy as np

import minigrad  # noqa: F401  NOTE: first, so that libgomp starts with minigrad's wait policy (passive)


def load(path):
    spec = importlib.util.spec_from_file_location("minigrad._ext.optim", path)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def sizes():
    from minigrad import models
    return [p.data.size for p in models.build_model("resnet20", in_channels=3).parameters()]


def arrays(rng, ns, dtypes):
    edge = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40, -1e-310, 3e38, 1e8], np.float64)

    def one(n, dt):
        a = (rng.standard_normal(n) * rng.choice([1e-3, 1.0, 1e4], n)).astype(dt)
        a[rng.integers(0, n, 9)] = edge.astype(dt)
        return a
    return [tuple(one(n, dt) for n, dt in zip(ns, dtypes)) for _ in range(3)]


def same_bits(mods, ns):
    rng = np.random.default_rng(1)
    for dtypes in ([np.float32] * len(ns), [np.float64] * len(ns), [np.float32, np.float64] * (len(ns) // 2) +
                   [np.float32] * (len(ns) % 2)):
        for threads in (1, 2):
            for args in ((0.1, 0.9, 0.0, 0.0, False, False), (0.1, 0.9, 0.1, 1e-4, False, True),
                         (0.05, 0.9, 0.0, 1e-4, True, False)):
                p, b, g = arrays(rng, ns, dtypes)
                outs = []
                for m in mods:
                    pp, bb = tuple(x.copy() for x in p), tuple(x.copy() for x in b)
                    m.sgd_update_many(pp, bb, g, *args, threads)
                    outs.append([x.tobytes() for x in pp + bb])
                if outs[0] != outs[1]:
                    raise SystemExit(f"bits differ: {dtypes[:2]} {threads} threads {args}")
    print("bits: the two builds equal (float32, float64, mixed; 1 and 2 threads; momentum, dampening, weight decay, "
          "nesterov, first; edge values)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--calls", type=int, default=50)
    a = ap.parse_args()
    mods = {"old": load(a.old), "new": load(a.new)}
    ns = sizes()
    same_bits(list(mods.values()), ns)
    same_bits(list(mods.values()), [5, 40000, 3, 17, 70001])  # cuts inside and at the ends of groups
    p, b, g = arrays(np.random.default_rng(0), ns, [np.float32] * len(ns))
    b = tuple(np.abs(x) for x in b)
    cells = [(name, t) for t in (1, 2) for name in mods]
    rows = {c: [] for c in cells}
    for r in range(a.rounds):
        for name, t in cells if r % 2 == 0 else cells[::-1]:
            f = mods[name].sgd_update_many
            c0, w0 = time.thread_time(), time.perf_counter()
            for _ in range(a.calls):
                f(p, b, g, 0.0, 0.9, 0.0, 0.0, False, False, t)  # NOTE: lr 0 keeps p as it is over the calls
            rows[(name, t)].append(((time.thread_time() - c0) / a.calls * 1e6,
                                    (time.perf_counter() - w0) / a.calls * 1e6))
    print(f"{len(ns)} parameters, {sum(ns)} elements, float32; {a.rounds} rounds of {a.calls} calls, load "
          f"{os.getloadavg()[0]:.2f}; us a call, median (quartiles)")
    for (name, t), v in rows.items():
        cpu, wall = [x[0] for x in v], [x[1] for x in v]
        q = lambda xs: statistics.quantiles(xs, n=4)  # noqa: E731
        print(f"  {name} {t} thread(s): main-thread cpu {statistics.median(cpu):7.1f} ({q(cpu)[0]:.1f}-{q(cpu)[2]:.1f})"
              f"  wall {statistics.median(wall):7.1f} ({q(wall)[0]:.1f}-{q(wall)[2]:.1f})")


if __name__ == "__main__":
    main()
