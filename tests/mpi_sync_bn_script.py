"""Run on 2 MPI ranks by tests/test_distributed.py: mpiexec -n 2 python -m mpi4py tests/mpi_sync_bn_script.py

Every rank also computes the single-process reference (plain batch norm on the concatenated global batch), so each
check compares a rank's distributed result with the same computation in one process. Any failed check raises,
and mpi4py's runner aborts the whole job with a non-zero status. Prints "OK <rank>" at the end.
"""
import numpy as np

import minigrad
from minigrad import distributed, nn
from minigrad.data import DistributedSampler, TensorDataset
from minigrad.nn import functional as F
from minigrad.nn.parallel import DistributedDataParallel
from minigrad.optim import SGD

distributed.init()
RANK, WORLD = distributed.rank(), distributed.world_size()
assert WORLD == 2, f"run on 2 ranks, got {WORLD}"


def close(a, b, what, dtype):
    tol = 1e-10 if dtype == np.float64 else 2e-5
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, f"{what}: shapes {a.shape} vs {b.shape}"
    err = np.abs(a - b).max(initial=0.0) / max(1.0, np.abs(b).max(initial=0.0))
    assert err < tol, f"rank {RANK} {what}: relative error {err:.3g} >= {tol}"


def conv_net(bn, dtype, seed=0):
    minigrad.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, dtype=dtype), bn(3, dtype=dtype), nn.ReLU(), nn.Flatten(),
                        nn.Linear(3 * 4 * 4, 5, dtype=dtype))
    net[1].weight.data[...] = np.linspace(0.5, 1.5, 3).astype(dtype)  # not ones: weight must matter in backward
    net[1].bias.data[...] = np.linspace(-0.2, 0.3, 3).astype(dtype)
    return net


def sync_bn(num_features, dtype):
    return nn.SyncBatchNorm(num_features, momentum=0.3, dtype=dtype)


def bn2d(num_features, dtype):
    return nn.BatchNorm2d(num_features, momentum=0.3, dtype=dtype)


def check_split(counts, dtype):
    """Ranks holding counts[r] samples of a global batch of sum(counts), through DDP(conv -> SyncBN -> linear)."""
    rng = np.random.default_rng(42)
    n = sum(counts)
    x_all = (rng.standard_normal((n, 2, 4, 4)) * 3 + 5).astype(dtype)  # a mean far from 0: the merge must hold
    t_all = rng.integers(0, 5, n)
    lo = sum(counts[:RANK])
    x_loc, t_loc = x_all[lo:lo + counts[RANK]], t_all[lo:lo + counts[RANK]]
    what = f"{minigrad.get_backend()} {np.dtype(dtype).name} counts={counts}"

    ref = conv_net(bn2d, dtype)
    xr = minigrad.Tensor(x_all, requires_grad=True)
    yr = ref(xr)
    F.cross_entropy(yr, minigrad.Tensor(t_all)).backward()

    model = DistributedDataParallel(conv_net(sync_bn, dtype, seed=7 * RANK))  # rank 0's weights win at wrap time
    xd = minigrad.Tensor(x_loc, requires_grad=True)
    yd = model(xd)
    # NOTE: the weighting: each rank's loss is its samples' share of the global mean, times the world size,
    # because DDP averages (divides the ranks' sum by WORLD): sum over ranks of dL_r/dtheta = dL/dtheta.
    per_sample = -F.log_softmax(yd, 1)[np.arange(len(t_loc)), t_loc]
    (per_sample.sum() * (WORLD / n)).backward()

    close(yd.data, yr.data[lo:lo + counts[RANK]], f"{what}: outputs", dtype)
    # the input gradient is d(sum of every rank's loss)/dx = WORLD * dL/dx (SyncBN's backward is global)
    close(xd.grad.data / WORLD, xr.grad.data[lo:lo + counts[RANK]], f"{what}: input gradients", dtype)
    for (name, p), q in zip(model.module.named_parameters(), ref.parameters()):
        close(p.grad.data, q.grad.data, f"{what}: gradient of {name}", dtype)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        close(getattr(model.module[1], name).data, getattr(ref[1], name).data, f"{what}: {name}", dtype)
    model.eval()  # no communication in eval: one rank alone must not hang
    if RANK == 0:
        ref.eval()
        close(model(minigrad.Tensor(x_all)).data, ref(minigrad.Tensor(x_all)).data, f"{what}: eval", dtype)


def check_sgd(steps=20, dtype=np.float64):
    """Data-parallel SGD with DistributedSampler == one process on the concatenated batches."""
    rng = np.random.default_rng(3)
    data = TensorDataset((rng.standard_normal((14, 2, 4, 4)) + 1).astype(dtype), rng.integers(0, 5, 14))
    x_all, t_all = data.arrays()
    per_rank = 3
    samplers = [DistributedSampler(data, num_replicas=WORLD, rank=r, shuffle=True, seed=5) for r in range(WORLD)]
    assert samplers[RANK].indices().tolist() == list(DistributedSampler(data, shuffle=True, seed=5))
    model = DistributedDataParallel(conv_net(sync_bn, dtype), bucket_cap_mb=1e-4)  # several buckets
    ref = conv_net(bn2d, dtype)
    opt, opt_ref = SGD(model.parameters(), lr=0.1, momentum=0.9), SGD(ref.parameters(), lr=0.1, momentum=0.9)
    step = 0
    for epoch in range(100):
        for s in samplers:
            s.set_epoch(epoch)
        shares = [s.indices() for s in samplers]
        for b in range(0, len(shares[0]), per_rank):
            batches = [sh[b:b + per_rank] for sh in shares]
            mine, both = batches[RANK], np.concatenate(batches)
            opt.zero_grad()
            F.cross_entropy(model(minigrad.Tensor(x_all[mine])), minigrad.Tensor(t_all[mine])).backward()
            opt.step()
            opt_ref.zero_grad()
            F.cross_entropy(ref(minigrad.Tensor(x_all[both])), minigrad.Tensor(t_all[both])).backward()
            opt_ref.step()
            step += 1
            if step == steps:
                for (name, p), q in zip(model.module.named_parameters(), ref.parameters()):
                    close(p.data, q.data, f"{minigrad.get_backend()} SGD step {steps}: {name}", dtype)
                for name, buf in model.module.named_buffers():
                    close(buf.data, dict(ref.named_buffers())[name].data, f"SGD step {steps}: {name}", dtype)
                return


def check_compiled(steps=6, dtype=np.float32, momentum=0.3):
    """A minigrad.compile'd DDP + SyncBatchNorm training step replays (no warning) bit for bit as eager; with
    momentum=None, the running statistics' cumulative average (its 1/num_batches_tracked factor) too."""
    import warnings
    runs = []
    for compiled in (False, True):
        model = DistributedDataParallel(conv_net(
            lambda c, dtype: nn.SyncBatchNorm(c, momentum=momentum, dtype=dtype), dtype, seed=7 * RANK))
        opt = SGD(model.parameters(), lr=0.1, momentum=0.9)

        def step(x, t, model=model, opt=opt):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), t)
            loss.backward()
            opt.step()
            return loss
        fn = minigrad.compile(step) if compiled else step
        rng = np.random.default_rng(RANK)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            losses = [fn(minigrad.Tensor(rng.standard_normal((4, 2, 4, 4)).astype(dtype)),
                         minigrad.Tensor(rng.integers(0, 5, 4))).data.tobytes() for _ in range(steps)]
        runs.append((losses, {k: v.tobytes() for k, v in model.module.state_dict().items()}))
    assert [e.state for es in fn._cache.values() for e in es] == ["checked"], f"rank {RANK}: not replayed"
    assert runs[0] == runs[1], f"rank {RANK}: a compiled DDP + SyncBatchNorm step differs from eager"


for backend in minigrad.available_backends():
    with minigrad.using_backend(backend):
        for dtype in (np.float64, np.float32):
            check_split([3, 5], dtype)
            check_split([0, 8], dtype)  # rank 0 holds an empty batch
        check_sgd()
        check_compiled()
        check_compiled(momentum=None)
# NOTE: one line, from rank 0, once every rank got here: two ranks printing into one pipe can interleave
done = np.ones(1)
distributed.all_reduce(done)
if RANK == 0:
    print(f"OK {int(done[0])} ranks", flush=True)
