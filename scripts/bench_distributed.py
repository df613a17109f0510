"""What data parallelism costs per step: run under MPI at 1 and 2 (or more) ranks, one machine.

    mpiexec -n 1 python scripts/bench_distributed.py
    mpiexec -n 2 python scripts/bench_distributed.py [--steps 20] [--batch-size 64] [--json out.json]

Per model (LeNet-BN, MLP-BN from minigrad.app.models, batch ``--batch-size`` per rank, float32, one kernel thread
per rank), the median time of one training step (forward, loss, backward, no optimizer) in these variants,
interleaved round by round so that the machine's noise hits them alike:

* ``local``: the bare model, no communication (the compute);
* ``local+barrier``: the same, then a barrier: what waiting for the slowest rank costs, without any data;
* ``ddp``: DistributedDataParallel as shipped: one non-blocking Allreduce (MPI_Iallreduce) per bucket, started
  when the bucket is full, all waited for after the last gradient (the default 25 MiB cap: one bucket here);
* ``ddp-small``: the same with ``bucket_cap_mb=0.05`` (several buckets, started earlier in backward);
* ``ddp-block``: the same buckets as ``ddp-small`` but each Allreduce blocking where it starts (no overlap);
* ``sync``/``sync-ddp``: the model with its batch norms converted to SyncBatchNorm, bare and under DDP.

Also: ``wait``, the median time spent in DDP's final wait (the communication not hidden behind backward), the
bare Allreduce of the model's gradient size, and the one small Allreduce per step the training loop adds (5
floats: loss, counts, stop signals). And SyncBatchNorm alone vs BatchNorm2d, forward + backward on (N, 16, 12,
12). Rank 0 prints a table (and ``--json``). Timings are noisy on shared machines: compare ratios within one run.
"""
import argparse
import gc
import json
import os
import platform
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # NOTE: before minigrad starts any pool: one thread per rank

import numpy as np  # noqa: E402

import minigrad  # noqa: E402
from minigrad import distributed, nn  # noqa: E402
from minigrad.allocator import tune_allocator  # noqa: E402
from minigrad.app.models import build_model  # noqa: E402
from minigrad.nn import functional as F  # noqa: E402
from minigrad.nn.parallel import DistributedDataParallel  # noqa: E402
from minigrad.nn.parallel import distributed as ddp_mod  # noqa: E402


class Timed:
    """Wraps DDP's collective calls to time them; ``blocking`` makes each bucket's Allreduce blocking."""

    def __init__(self):
        self.blocking, self.wait = False, 0.0
        self._start = distributed._iall_reduce_sum
        self._finish = ddp_mod._Reducer.finish
        distributed._iall_reduce_sum = self.start
        ddp_mod._Reducer.finish = self.finish_wrapper()

    def start(self, array):
        if self.blocking:
            distributed.all_reduce(array)
            return None
        return self._start(array)

    def finish_wrapper(self):
        timed, finish = self, self._finish

        def finish_timed(reducer):
            t = time.perf_counter()
            finish(reducer)
            timed.wait += time.perf_counter() - t
        return finish_timed


def step_fn(model, x, y):
    def step():
        for p in model.parameters():
            p.grad = None
        F.cross_entropy(model(x), y).backward()
    return step


def median_times(variants, steps, timed):
    """{name: (median step seconds, median final-wait seconds)} over ``steps`` rounds, variants interleaved."""
    times = {name: [] for name in variants}
    waits = {name: [] for name in variants}
    for name, (fn, blocking) in variants.items():  # warm-up
        timed.blocking = blocking
        fn()
    for _ in range(steps):
        for name, (fn, blocking) in variants.items():
            timed.blocking, timed.wait = blocking, 0.0
            gc.collect()  # NOTE: outside the timing; gc is off inside (it landed on the same slots every round)
            distributed.barrier()
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
            waits[name].append(timed.wait)
    # NOTE: a step is as slow as its slowest rank: the max over ranks of each median
    out = {}
    for name in variants:
        v = np.array([np.median(times[name]), np.median(waits[name])])
        out[name] = tuple(distributed.all_reduce(v, op="max"))
    return out


def allreduce_time(n, dtype, repeats):
    a = np.zeros(n, dtype)
    distributed.all_reduce(a)
    ts = []
    for _ in range(repeats):
        distributed.barrier()
        t = time.perf_counter()
        distributed.all_reduce(a)
        ts.append(time.perf_counter() - t)
    return float(distributed.all_reduce(np.array([np.median(ts)]), op="max")[0])


def bench_model(name, batch_size, steps, timed):
    rng = np.random.default_rng(distributed.rank())
    x = minigrad.Tensor(rng.standard_normal((batch_size, 1, 28, 28)).astype(np.float32))
    y = minigrad.Tensor(rng.integers(0, 10, batch_size))

    def fresh(sync=False):
        minigrad.manual_seed(0)
        model = build_model(name, in_channels=1, num_classes=10)
        return nn.SyncBatchNorm.convert_sync_batchnorm(model) if sync else model

    ddp_small = DistributedDataParallel(fresh(), bucket_cap_mb=0.05)
    variants = {
        "local": (step_fn(fresh(), x, y), False),
        "local+barrier": (lambda f=step_fn(fresh(), x, y): (f(), distributed.barrier()), False),
        "ddp": (step_fn(DistributedDataParallel(fresh()), x, y), False),
        "ddp-small": (step_fn(ddp_small, x, y), False),
        "ddp-block": (step_fn(DistributedDataParallel(fresh(), bucket_cap_mb=0.05), x, y), True),
        "sync": (step_fn(fresh(sync=True), x, y), False),
        "sync-ddp": (step_fn(DistributedDataParallel(fresh(sync=True)), x, y), False),
    }
    res = median_times(variants, steps, timed)
    n_params = sum(p.data.size for p in fresh().parameters())
    return {"model": name, "batch_per_rank": batch_size, "params": n_params,
            "buckets_small": len(ddp_small._reducer.buckets),
            "step_s": {k: v[0] for k, v in res.items()}, "wait_s": {k: v[1] for k, v in res.items()},
            "allreduce_grads_s": allreduce_time(n_params, np.float32, 4 * steps),
            "allreduce_step_sums_s": allreduce_time(5, np.float64, 4 * steps)}


def bench_bn(batch_size, steps, timed):
    rng = np.random.default_rng(distributed.rank())
    x = rng.standard_normal((batch_size, 16, 12, 12)).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)

    def fwd_bwd(layer):
        def run():
            xt = minigrad.Tensor(x, requires_grad=True)
            layer(xt).backward(minigrad.Tensor(dy))
        return run
    res = median_times({"BatchNorm2d": (fwd_bwd(nn.BatchNorm2d(16)), False),
                        "SyncBatchNorm": (fwd_bwd(nn.SyncBatchNorm(16)), False)}, 4 * steps, timed)
    return {"shape": list(x.shape), "step_s": {k: v[0] for k, v in res.items()}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    distributed.init()
    minigrad.set_num_threads(1)
    tune_allocator()  # as the CLI does
    gc.disable()
    timed = Timed()
    world = distributed.world_size()
    report = {"ranks": world, "backend": minigrad.get_backend(), "machine": f"{platform.machine()}, "
              f"{os.cpu_count()} CPUs", "models": [bench_model(m, args.batch_size, args.steps, timed)
                                                   for m in ("lenet-bn", "mlp-bn")],
              "bn": bench_bn(args.batch_size, args.steps, timed)}
    if distributed.rank() != 0:
        return
    ms = 1e3
    print(f"{world} rank(s), backend {report['backend']}, {report['machine']}, 1 thread per rank, "
          f"batch {args.batch_size} per rank, medians of {args.steps} interleaved steps (max over ranks)")
    print("| model | local | local+barrier | ddp | ddp-small (buckets) | ddp-block | sync | sync-ddp | ddp wait | ddp-small wait |"
          " allreduce grads | allreduce 5 floats |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in report["models"]:
        s, w = r["step_s"], r["wait_s"]
        print(f"| {r['model']} ({r['params']} params) | {s['local'] * ms:.2f} | {s['local+barrier'] * ms:.2f} | {s['ddp'] * ms:.2f} | "
              f"{s['ddp-small'] * ms:.2f} ({r['buckets_small']}) | {s['ddp-block'] * ms:.2f} | {s['sync'] * ms:.2f} | "
              f"{s['sync-ddp'] * ms:.2f} | {w['ddp'] * ms:.3f} | {w['ddp-small'] * ms:.3f} | "
              f"{r['allreduce_grads_s'] * ms:.3f} | {r['allreduce_step_sums_s'] * ms:.3f} |")
    b = report["bn"]["step_s"]
    print(f"BatchNorm2d {report['bn']['shape']} fwd+bwd {b['BatchNorm2d'] * ms:.3f} ms, SyncBatchNorm "
          f"{b['SyncBatchNorm'] * ms:.3f} ms ({b['SyncBatchNorm'] / b['BatchNorm2d']:.2f}x)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
