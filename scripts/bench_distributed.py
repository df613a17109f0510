"""What data parallelism costs per step: run under MPI at 1, 2, 4 ... ranks, one machine.

    mpiexec -n 2 python -m mpi4py scripts/bench_distributed.py [--steps 20] [--batch-size 64] [--json out.json]
    mpiexec -n 4 python -m mpi4py scripts/bench_distributed.py --only train --steps 50
    python scripts/bench_distributed.py --scaling 1,2,4 --repeats 5 --steps 50 [--json out.json]

**Training steps** (``--only train``, also part of the default run): per model (LeNet-BN, MLP-BN), batch
``--batch-size`` per rank, float32, one kernel thread per rank, one step = zero_grad, forward, cross entropy,
backward, SGD(lr=0.01, momentum=0.9) update, for the model under DistributedDataParallel (``ddp``) and the same
with its batch norms converted to SyncBatchNorm (``ddp+syncbn``), the two interleaved step by step, every round
after ``gc.collect()`` and a barrier (so that each step starts together on every rank and no collection lands in
one). The step is split by timing the MPI calls inside it (a wrapper around the communicator):

* ``grad``: DDP's gradient buckets: the MPI_Iallreduce calls and the waits on them (the default 25 MiB cap: one
  bucket for these models); this includes waiting for the slowest rank to finish its backward;
* ``syncbn``: SyncBatchNorm's collectives, an Allgather of (count, mean, M2) per layer forward and an Allreduce of
  (sum dy, sum dy*xhat) per layer backward, including waiting for the other ranks to get there;
* ``compute``: the rest (forward, backward, the bucket copies, the SGD update), so step = compute + grad + syncbn
  on each rank (the medians below need not add up exactly);
* ``off-CPU``: the step's wall time minus the rank's CPU time in it: how long the scheduler ran something else
  instead of this rank (preemption; MPICH busy-polls while it waits, so waiting in a collective is CPU time);
* ``compute CPU``: the rank's CPU time in the step outside the MPI calls: the compute as a core of its own would
  run it (roughly: caches and memory bandwidth are still shared).

Step time: per step the slowest rank's, median over the steps; compute/grad/syncbn: each rank's median, averaged
over ranks. ``samples/s`` = ranks x batch / median step time (the global batch's throughput); ``mean samples/s``
uses the mean step instead (stalls included). Also the same collectives alone after a barrier ("bare"): the
Allreduce of all gradients, and the SyncBN layers' Allgathers + Allreduces one after the other: what the data
costs to move, without anyone to wait for. With one rank there is no communication (DDP's Allreduce and
SyncBatchNorm are skipped in a world of one: SyncBatchNorm is BatchNorm), so 1 rank is the compute baseline.

``--scaling 1,2,4 --repeats R`` (without mpiexec) launches the training-step benchmark under the venv's
``mpiexec`` for each rank count, repeats interleaved (rank counts in turn, alternating order), records the load
average before each launch, and prints the medians over repeats and the scaling (samples/s at n ranks over 1 rank,
the median over repeats of that ratio within each repeat).

**Variants of the bare step** (the default run, or ``--only variants``):

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
import subprocess
import sys
import tempfile
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
from minigrad.optim import SGD  # noqa: E402

MODELS = ("lenet-bn", "mlp-bn")
TRAIN_VARIANTS = ("ddp", "ddp+syncbn")


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


class _TimedRequest:
    def __init__(self, request, comm):
        self._request, self._comm = request, comm

    def Wait(self, *args):
        t, cpu = time.perf_counter(), time.process_time()
        out = self._request.Wait(*args)
        self._comm.grad += time.perf_counter() - t
        self._comm.cpu += time.process_time() - cpu
        return out


class TimedComm:
    """The communicator with the seconds spent in DDP's gradient collectives (Iallreduce + Wait) and in
    SyncBatchNorm's (Allgather forward, Allreduce backward) added up; everything else passes through.
    NOTE: in a training step nothing else calls Allreduce or Allgather, so they are SyncBatchNorm's."""

    def __init__(self, comm):
        self._comm, self.grad, self.bn, self.cpu = comm, 0.0, 0.0, 0.0

    def __getattr__(self, name):
        return getattr(self._comm, name)

    def _timed(self, kind, fn, *args, **kwargs):
        t, cpu = time.perf_counter(), time.process_time()
        out = fn(*args, **kwargs)
        setattr(self, kind, getattr(self, kind) + time.perf_counter() - t)
        self.cpu += time.process_time() - cpu
        return out

    def Iallreduce(self, *args, **kwargs):
        return _TimedRequest(self._timed("grad", self._comm.Iallreduce, *args, **kwargs), self)

    def Allgather(self, *args, **kwargs):
        return self._timed("bn", self._comm.Allgather, *args, **kwargs)

    def Allreduce(self, *args, **kwargs):
        return self._timed("bn", self._comm.Allreduce, *args, **kwargs)


def bare_syncbn_time(channels, repeats):
    """The SyncBN layers' collectives of one step, one after the other, alone: (2C + 1) float64 Allgathered and
    2C float64 Allreduced per layer of C channels."""
    comm = distributed._comm
    if distributed.world_size() == 1:
        return 0.0
    from mpi4py import MPI
    bufs = [(np.zeros(2 * c + 1), np.empty((distributed.world_size(), 2 * c + 1)), np.zeros(2 * c))
            for c in channels]
    ts = []
    for i in range(repeats + 1):
        distributed.barrier()
        t = time.perf_counter()
        for local, gathered, _ in bufs:
            comm.Allgather(local, gathered)
        for _, _, sums in reversed(bufs):
            comm.Allreduce(MPI.IN_PLACE, sums, op=MPI.SUM)
        if i:  # the first round is a warm-up
            ts.append(time.perf_counter() - t)
    return float(distributed.all_reduce(np.array([np.median(ts)]), op="max")[0])


def bench_train(name, batch_size, steps):
    """One model's training steps under DDP, with and without SyncBatchNorm (module docstring)."""
    world = distributed.world_size()
    rng = np.random.default_rng(distributed.rank())
    x = minigrad.Tensor(rng.standard_normal((batch_size, 1, 28, 28)).astype(np.float32))
    y = minigrad.Tensor(rng.integers(0, 10, batch_size))
    comm = distributed._comm

    def variant(sync):
        minigrad.manual_seed(0)
        model = build_model(name, in_channels=1, num_classes=10)
        if sync:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = DistributedDataParallel(model)
        opt = SGD(model.parameters(), lr=0.01, momentum=0.9)

        def step():
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
        return model, step

    variants = {"ddp": variant(False), "ddp+syncbn": variant(True)}
    records = {v: np.zeros((steps, 5)) for v in variants}  # (step, grad, syncbn, off-CPU, compute CPU) seconds
    timer = TimedComm(comm) if world > 1 else None
    distributed._comm = timer or comm
    try:
        for _, step in variants.values():  # warm-up
            for _ in range(2):
                step()
        for i in range(steps):
            gc.collect()  # NOTE: outside the timing, gc is off inside
            distributed.barrier()
            for v, (_, step) in variants.items():
                if timer:
                    timer.grad = timer.bn = timer.cpu = 0.0
                t, cpu = time.perf_counter(), time.process_time()
                step()
                wall, cpu = time.perf_counter() - t, time.process_time() - cpu
                records[v][i] = (wall, timer.grad if timer else 0.0, timer.bn if timer else 0.0, wall - cpu,
                                 cpu - (timer.cpu if timer else 0.0))
    finally:
        distributed._comm = comm
    model = variants["ddp"][0]
    n_params = sum(p.data.size for p in model.parameters())
    channels = [m.num_features for m in model.modules() if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d)]
    every = distributed._all_gather_object(records)  # [rank] -> {variant: (steps, 3)}
    out = {"model": name, "params": n_params, "buckets": len(model._reducer.buckets), "bn_layers": channels,
           "batch_per_rank": batch_size, "steps": steps,
           "bare_grad_allreduce_s": allreduce_time(n_params, np.float32, 2 * steps) if world > 1 else 0.0,
           "bare_syncbn_s": bare_syncbn_time(channels, 2 * steps), "variants": {}}
    for v in variants:
        r = np.stack([e[v] for e in every])  # (ranks, steps, 5)
        step_s = r[:, :, 0].max(axis=0)  # the slowest rank's, per step
        compute = r[:, :, 0] - r[:, :, 1] - r[:, :, 2]
        out["variants"][v] = {
            "step_s": float(np.median(step_s)), "mean_step_s": float(np.mean(step_s)),
            "compute_s": float(np.mean(np.median(compute, axis=1))),
            "grad_s": float(np.mean(np.median(r[:, :, 1], axis=1))),
            "syncbn_s": float(np.mean(np.median(r[:, :, 2], axis=1))),
            "off_cpu_s": float(np.mean(np.median(r[:, :, 3], axis=1))),
            "compute_cpu_s": float(np.mean(np.median(r[:, :, 4], axis=1))),
            "samples_per_s": world * batch_size / float(np.median(step_s)),
            "mean_samples_per_s": world * batch_size / float(np.mean(step_s))}
    return out


TRAIN_HEADER = ("| model | variant | ranks | step ms | compute | grad Allreduce | SyncBN collectives | off-CPU | "
                "compute CPU | samples/s | mean samples/s | bare grad Allreduce | bare SyncBN collectives |")


def train_rows(report):
    ms, rows = 1e3, []
    for r in report["train"]:
        for v, t in r["variants"].items():
            rows.append(f"| {r['model']} | {v} | {report['ranks']} | {t['step_s'] * ms:.2f} | "
                        f"{t['compute_s'] * ms:.2f} | "
                        f"{t['grad_s'] * ms:.3f} | {t['syncbn_s'] * ms:.3f} | {t['off_cpu_s'] * ms:.2f} | "
                        f"{t['compute_cpu_s'] * ms:.2f} | {t['samples_per_s']:.0f} | "
                        f"{t['mean_samples_per_s']:.0f} | {r['bare_grad_allreduce_s'] * ms:.3f} | "
                        f"{(r['bare_syncbn_s'] if v == 'ddp+syncbn' else 0.0) * ms:.3f} |")
    return rows


def print_train(report, args):
    r0 = report["train"][0]
    print(f"training steps: {report['ranks']} rank(s), backend {report['backend']}, {report['machine']}, "
          f"1 thread per rank, batch {args.batch_size} per rank, SGD(momentum 0.9), medians of {args.steps} steps; "
          f"ms per step; lenet-bn {report['train'][0]['params']} params, mlp-bn {report['train'][1]['params']}; "
          f"{r0['buckets']} gradient bucket(s)")
    print(TRAIN_HEADER)
    print("|" + "---|" * (TRAIN_HEADER.count("|") - 1))
    for row in train_rows(report):
        print(row)


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


def scaling(args):
    """Launch the training-step benchmark at each rank count, repeats interleaved; print medians and scaling."""
    ranks = [int(k) for k in args.scaling.split(",")]
    if 1 not in ranks:
        raise SystemExit("--scaling: the rank counts must include 1 (the baseline of the scaling)")
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    runs, started = [], time.strftime("%Y-%m-%dT%H:%M:%S")
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for k in (ranks if rep % 2 == 0 else ranks[::-1]):  # NOTE: alternate the order against drift
                out = os.path.join(tmp, f"{rep}-{k}.json")
                load = os.getloadavg()[0]
                cmd = [mpiexec, "-n", str(k), sys.executable, "-m", "mpi4py", os.path.abspath(__file__),
                       "--only", "train", "--steps", str(args.steps), "--batch-size", str(args.batch_size),
                       "--json", out]
                t = time.perf_counter()
                subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
                with open(out) as f:
                    report = json.load(f)
                report.update(repeat=rep, load_before=load, wall_s=time.perf_counter() - t)
                runs.append(report)
                print(f"repeat {rep} ranks {k}: load average {load:.2f}, {report['wall_s']:.0f} s", flush=True)
    loads = [r["load_before"] for r in runs]
    summary = {"ranks": ranks, "repeats": args.repeats, "steps": args.steps, "batch_per_rank": args.batch_size,
               "machine": runs[0]["machine"], "backend": runs[0]["backend"], "started": started,
               "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "load_average_1min": [min(loads), max(loads)],
               "rows": [], "runs": runs}
    for model in MODELS:
        for v in TRAIN_VARIANTS:
            def get(k, rep, key):
                r = next(r for r in runs if r["ranks"] == k and r["repeat"] == rep)
                m = next(m for m in r["train"] if m["model"] == model)
                return m["variants"][v][key] if key in m["variants"][v] else m[key]
            for k in ranks:
                reps = range(args.repeats)
                med = {key: float(np.median([get(k, rep, key) for rep in reps]))
                       for key in ("step_s", "compute_s", "grad_s", "syncbn_s", "off_cpu_s", "compute_cpu_s",
                            "samples_per_s", "mean_samples_per_s", "bare_grad_allreduce_s", "bare_syncbn_s")}
                med["scaling"] = float(np.median([get(k, rep, "samples_per_s") / get(1, rep, "samples_per_s")
                                                  for rep in reps]))
                med["mean_scaling"] = float(np.median([get(k, rep, "mean_samples_per_s")
                                                       / get(1, rep, "mean_samples_per_s") for rep in reps]))
                if v == "ddp":
                    med["bare_syncbn_s"] = 0.0
                summary["rows"].append({"model": model, "variant": v, "ranks": k, **med})
    print(f"\n{summary['machine']}, backend {summary['backend']}, 1 thread per rank, batch {args.batch_size} per "
          f"rank, medians over {args.repeats} repeats of each run's medians of {args.steps} steps; 1-minute load "
          f"average before the runs {min(loads):.1f}-{max(loads):.1f}; ms per step")
    for line in scaling_table(summary):
        print(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)


def scaling_table(summary):
    """Markdown rows of a --scaling summary (also used by scripts/make_benchmarks_doc.py)."""
    ms = 1e3
    lines = ["| model | variant | ranks | step ms | compute | grad Allreduce | SyncBN collectives | off-CPU | "
             "compute CPU | samples/s | x 1 rank | mean samples/s | x 1 rank | bare grad Allreduce | "
             "bare SyncBN collectives |", "|---" * 15 + "|"]
    for r in summary["rows"]:
        lines.append(f"| {r['model']} | {r['variant']} | {r['ranks']} | {r['step_s'] * ms:.2f} | "
                     f"{r['compute_s'] * ms:.2f} | {r['grad_s'] * ms:.2f} | {r['syncbn_s'] * ms:.2f} | "
                     f"{r['off_cpu_s'] * ms:.2f} | "
                     f"{r['compute_cpu_s'] * ms:.2f} | "
                     f"{r['samples_per_s']:.0f} | {r['scaling']:.2f} | {r['mean_samples_per_s']:.0f} | "
                     f"{r['mean_scaling']:.2f} | {r['bare_grad_allreduce_s'] * ms:.3f} | "
                     f"{r['bare_syncbn_s'] * ms:.3f} |")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--json", default=None)
    ap.add_argument("--only", choices=("all", "train", "variants"), default="all",
                    help="train: the training steps only; variants: the bare-step variants and SyncBatchNorm alone")
    ap.add_argument("--scaling", default=None, metavar="N,N,...",
                    help="without mpiexec: run --only train under mpiexec at these rank counts (with 1)")
    ap.add_argument("--repeats", type=int, default=3, help="with --scaling: runs per rank count, interleaved")
    args = ap.parse_args()
    if args.steps < 1 or args.batch_size < 2 or args.repeats < 1:
        ap.error("--steps and --repeats must be >= 1 and --batch-size >= 2")
    if args.scaling:
        if distributed.launched():
            ap.error("--scaling launches mpiexec itself: run it without mpiexec")
        return scaling(args)
    distributed.init()
    minigrad.set_num_threads(1)
    tune_allocator()  # as the CLI does
    gc.disable()
    timed = Timed()
    world = distributed.world_size()
    report = {"ranks": world, "backend": minigrad.get_backend(), "machine": f"{platform.machine()}, "
              f"{os.cpu_count()} CPUs"}
    if args.only in ("all", "train"):
        report["train"] = [bench_train(m, args.batch_size, args.steps) for m in MODELS]
    if args.only in ("all", "variants"):
        report["models"] = [bench_model(m, args.batch_size, args.steps, timed) for m in MODELS]
        report["bn"] = bench_bn(args.batch_size, args.steps, timed)
    if distributed.rank() != 0:
        return
    if "train" in report:
        print_train(report, args)
    if "models" in report:
        print_variants(report, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


def print_variants(report, args):
    world, ms = report["ranks"], 1e3
    print(f"{world} rank(s), backend {report['backend']}, {report['machine']}, 1 thread per rank, "
          f"batch {args.batch_size} per rank, medians of {args.steps} interleaved steps (max over ranks)")
    print("| model | local | local+barrier | ddp | ddp-small (buckets) | ddp-block | sync | sync-ddp | ddp wait | "
          "ddp-small wait | allreduce grads | allreduce 5 floats |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in report["models"]:
        s, w = r["step_s"], r["wait_s"]
        print(f"| {r['model']} ({r['params']} params) | {s['local'] * ms:.2f} | {s['local+barrier'] * ms:.2f} | "
              f"{s['ddp'] * ms:.2f} | "
              f"{s['ddp-small'] * ms:.2f} ({r['buckets_small']}) | {s['ddp-block'] * ms:.2f} | {s['sync'] * ms:.2f} | "
              f"{s['sync-ddp'] * ms:.2f} | {w['ddp'] * ms:.3f} | {w['ddp-small'] * ms:.3f} | "
              f"{r['allreduce_grads_s'] * ms:.3f} | {r['allreduce_step_sums_s'] * ms:.3f} |")
    b = report["bn"]["step_s"]
    print(f"BatchNorm2d {report['bn']['shape']} fwd+bwd {b['BatchNorm2d'] * ms:.3f} ms, SyncBatchNorm "
          f"{b['SyncBatchNorm'] * ms:.3f} ms ({b['SyncBatchNorm'] / b['BatchNorm2d']:.2f}x)")


if __name__ == "__main__":
    main()
