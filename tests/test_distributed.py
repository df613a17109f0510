"""Data-parallel training over MPI (issue 18): minigrad.distributed, DistributedSampler, DistributedDataParallel,
SyncBatchNorm.

In one process: the world of size 1 (SyncBatchNorm is BatchNorm, DDP leaves gradients alone), the sampler against
torch's, the validation. On two ranks: tests/mpi_sync_bn_script.py under ``mpiexec -n 2 python -m mpi4py``,
skipped when mpi4py is not installed, unless MINIGRAD_EXPECT_MPI=1 (set by .ci/run) says it must run.
"""
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
from conftest import BACKENDS
from minigrad import distributed, nn
from minigrad.data import DistributedSampler, TensorDataset
from minigrad.nn.parallel import DistributedDataParallel

ROOT = Path(__file__).resolve().parent.parent
EXPECT_MPI = os.environ.get("MINIGRAD_EXPECT_MPI", "") not in ("", "0")


@pytest.fixture(params=BACKENDS)
def backend(request):
    with mg.using_backend(request.param):
        yield request.param


def test_import_minigrad_does_not_import_mpi4py():
    code = ("import sys, minigrad, minigrad.nn, minigrad.data, minigrad.nn.parallel, minigrad.distributed; "
            "assert 'mpi4py' not in sys.modules, 'mpi4py imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


# ------------------------------------------------------------------ the world of one process

def test_world_of_one():
    distributed.init()
    distributed.init()  # idempotent
    assert distributed.is_initialized() and distributed.rank() == 0 and distributed.world_size() == 1
    distributed.barrier()
    a = np.arange(4.0)
    assert distributed.all_reduce(a, op="max") is a and a.tolist() == [0, 1, 2, 3]
    assert distributed.broadcast(a, root=0) is a


def test_collective_validation():
    with pytest.raises(ValueError, match="op must be one of"):
        distributed.all_reduce(np.zeros(2), op="mean")
    with pytest.raises(ValueError, match="C-contiguous"):
        distributed.all_reduce(np.zeros((3, 2))[:, 0])
    with pytest.raises(TypeError, match="numeric dtype"):
        distributed.all_reduce(np.array(["a"]))
    with pytest.raises(ValueError, match=r"root must be a rank in \[0, 1\)"):
        distributed.broadcast(np.zeros(2), root=1)


def test_launched_without_mpi4py_refuses(monkeypatch):
    """A rank of a multi-process launch without mpi4py must not train alone as rank 0."""
    monkeypatch.setattr(distributed, "_comm", None)
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import fails
    monkeypatch.setenv("PMI_SIZE", "4")
    with pytest.raises(ImportError, match=r"one of 4 \(PMI_SIZE=4\).*minigrad\[mpi\]"):
        distributed.init()
    monkeypatch.setenv("PMI_SIZE", "1")
    distributed.init()
    assert distributed.world_size() == 1


@pytest.mark.parametrize("shape", [(6, 3), (5, 3, 4), (4, 3, 2, 5)])
def test_sync_batchnorm_world_of_one_is_batchnorm(backend, shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape) * 2 + 3
    dy = rng.standard_normal(shape)
    bn_cls = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d}[len(shape)]
    out = []
    for layer in (nn.SyncBatchNorm(3, momentum=None, dtype=np.float64), bn_cls(3, momentum=None, dtype=np.float64)):
        layer.weight.data[...] = [0.5, 1.0, 2.0]
        xt = mg.Tensor(x, requires_grad=True)
        y = layer(xt)
        y.backward(dy)
        layer(mg.Tensor(x + 1))  # a second step: the cumulative average
        layer.eval()
        out.append([y.data, xt.grad.data, layer.weight.grad.data, layer.bias.grad.data, layer.running_mean.data,
                    layer.running_var.data, layer(mg.Tensor(x)).data])
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)


def test_convert_sync_batchnorm_shares_state():
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.Sequential(nn.Flatten(), nn.BatchNorm1d(12)))
    net.eval()
    bn = net[1]
    bn.running_mean.data[...] = 7
    params = list(net.parameters())
    out = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    assert out is net and isinstance(net[1], nn.SyncBatchNorm) and isinstance(net[2][1], nn.SyncBatchNorm)
    assert net[1].weight is bn.weight and net[1].running_mean is bn.running_mean and not net[1].training
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]
    assert set(net.state_dict()) == set(nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.Sequential(
        nn.Flatten(), nn.BatchNorm1d(12))).state_dict())
    top = nn.SyncBatchNorm.convert_sync_batchnorm(nn.BatchNorm1d(4, eps=1e-3, momentum=0.2, affine=False))
    assert isinstance(top, nn.SyncBatchNorm) and (top.eps, top.momentum, top.affine) == (1e-3, 0.2, False)
    with pytest.raises(ValueError, match="ghost batch norm"):
        nn.SyncBatchNorm.convert_sync_batchnorm(nn.BatchNorm1d(4, virtual_batch_size=8))


def test_sync_batchnorm_validation():
    with pytest.raises(ValueError, match="num_features must be a positive integer"):
        nn.SyncBatchNorm(0)
    with pytest.raises(ValueError, match="expected 2D or 3D or 4D or 5D input"):
        nn.SyncBatchNorm(3)(mg.Tensor(np.zeros(3)))


def test_ddp_world_of_one_keeps_gradients(backend):
    rng = np.random.default_rng(1)
    x, t = mg.Tensor(rng.standard_normal((6, 4))), mg.Tensor(rng.integers(0, 3, 6))
    grads = []
    for wrap in (False, True):
        mg.manual_seed(0)
        net = nn.Sequential(nn.Linear(4, 5, dtype=np.float64), nn.BatchNorm1d(5, dtype=np.float64), nn.ReLU(),
                            nn.Linear(5, 3, dtype=np.float64))
        model = DistributedDataParallel(net, bucket_cap_mb=1e-4) if wrap else net
        for _ in range(2):  # gradients accumulate over two backwards, as without DDP
            nn.functional.cross_entropy(model(x), t).backward()
        grads.append([p.grad.data for p in net.parameters()])
        assert all(isinstance(p, nn.Parameter) for p in net.parameters())  # the forward's swap was undone
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=0)
    assert list(model.state_dict())[0] == "module.0.weight"


def test_ddp_buckets_and_unused_parameters():
    net = nn.Sequential(nn.Linear(100, 100), nn.Linear(100, 100), nn.Linear(100, 2))
    assert len(DistributedDataParallel(net)._reducer.buckets) == 1
    # 100*100 float32 = 0.038 MiB, filled from the last layer: [2.bias, 2.weight, 1.bias, 1.weight, 0.bias] fit in
    # 0.05 MiB, 0.weight starts a second bucket
    buckets = DistributedDataParallel(net, bucket_cap_mb=0.05)._reducer.buckets
    assert [b.indices for b in buckets] == [[5, 4, 3, 2, 1], [0]]
    with pytest.raises(ValueError, match="bucket_cap_mb must be a positive number"):
        DistributedDataParallel(net, bucket_cap_mb=0)
    with pytest.raises(TypeError, match="must be a minigrad.nn.Module"):
        DistributedDataParallel(lambda x: x)

    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(2, 2), nn.Linear(2, 2)

        def forward(self, x):
            return self.a(x)

    model = DistributedDataParallel(TwoHeads())
    model(mg.Tensor(np.ones((3, 2), np.float32))).sum().backward()
    with pytest.raises(RuntimeError, match=r"no gradient to b\.weight, b\.bias"):
        model(mg.Tensor(np.ones((3, 2), np.float32)))


# ------------------------------------------------------------------ DistributedSampler against torch's

@pytest.mark.parametrize("n, replicas", [(10, 3), (9, 3), (2, 4), (0, 2), (7, 1), (13, 4)])
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("drop_last", [False, True])
def test_distributed_sampler_matches_torch(n, replicas, shuffle, drop_last, monkeypatch):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DistributedSampler as TorchSampler

    data = TensorDataset(np.arange(n))
    for epoch in (0, 3):
        if shuffle:  # the same permutation in: the padding, cutting and striding must then agree exactly
            monkeypatch.setattr(DistributedSampler, "_permutation", lambda self, k: torch.randperm(
                k, generator=torch.Generator().manual_seed(self.seed + self.epoch)).numpy())
        for rank in range(replicas):
            ours = DistributedSampler(data, num_replicas=replicas, rank=rank, shuffle=shuffle, seed=11,
                                      drop_last=drop_last)
            theirs = TorchSampler(list(range(n)), num_replicas=replicas, rank=rank, shuffle=shuffle, seed=11,
                                  drop_last=drop_last)
            ours.set_epoch(epoch)
            theirs.set_epoch(epoch)
            assert list(ours) == list(theirs) and len(ours) == len(theirs)


def test_distributed_sampler_own_permutation():
    data = TensorDataset(np.arange(11))
    shares = [DistributedSampler(data, num_replicas=3, rank=r, seed=4).indices() for r in range(3)]
    everything = np.concatenate(shares)
    assert len(everything) == 12 and set(everything.tolist()) == set(range(11))  # one index repeated as padding
    s = DistributedSampler(data, num_replicas=3, rank=1, seed=4)
    first = s.indices()
    s.set_epoch(1)
    assert s.indices().tolist() != first.tolist()
    s.set_epoch(0)
    assert s.indices().tolist() == first.tolist()
    assert DistributedSampler(data, shuffle=True).num_replicas == 1  # from minigrad.distributed
    for kwargs, match in [(dict(num_replicas=0, rank=0), "num_replicas must be an integer >= 1"),
                          (dict(num_replicas=2, rank=2), r"rank must be in \[0, 2\)"),
                          (dict(num_replicas=2, rank=0, seed=-1), "seed must be an integer >= 0")]:
        with pytest.raises(ValueError, match=match):
            DistributedSampler(data, **kwargs)


# ------------------------------------------------------------------ two ranks

def _mpi_launcher():
    why = None
    if importlib.util.find_spec("mpi4py") is None:
        why = "mpi4py is not installed (pip install -e '.[mpi]')"
    mpiexec = Path(sys.executable).parent / "mpiexec"
    if why is None and not mpiexec.exists():
        why = f"no mpiexec next to {sys.executable} (the mpich wheel of the [mpi] extra provides it)"
    if why is not None:
        if EXPECT_MPI:
            pytest.fail(f"MINIGRAD_EXPECT_MPI=1 but {why}")
        pytest.skip(why)
    return str(mpiexec)


def test_two_ranks_match_one_process():
    """tests/mpi_sync_bn_script.py: SyncBatchNorm + DDP on batches of 3 and 5 (and 0 and 8) == batch norm on the
    batch of 8, every backend, float64 and float32; 20 steps of SGD with DistributedSampler == one process."""
    mpiexec = _mpi_launcher()
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([mpiexec, "-n", "2", sys.executable, "-m", "mpi4py", "tests/mpi_sync_bn_script.py"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert [line for line in proc.stdout.splitlines() if line.startswith("OK")] == ["OK 2 ranks"], proc.stdout


def test_an_exception_on_one_rank_aborts_the_job(tmp_path):
    mpiexec = _mpi_launcher()
    script = tmp_path / "fail.py"
    script.write_text("from minigrad import distributed\n"
                      "if distributed.rank() == 1:\n    raise ValueError('rank 1 failed')\n"
                      "distributed.barrier()  # rank 0 waits here for a rank that is gone\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([mpiexec, "-n", "2", sys.executable, "-m", "mpi4py", str(script)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "rank 1 failed" in proc.stderr


# ------------------------------------------------------------------ minigrad train under mpiexec

def test_launched_reads_the_environment(monkeypatch):
    for var in distributed._LAUNCHER_VARS:
        monkeypatch.delenv(var, raising=False)
    assert not distributed.launched()
    for var in ("PMI_RANK", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALRANKID", "PMIX_RANK"):
        monkeypatch.setenv(var, "0")
        assert distributed.launched()
        monkeypatch.delenv(var)


def test_sharded_training_loader_interleaves_to_the_one_process_order():
    from minigrad.app.train import make_loader
    data = TensorDataset(np.arange(40))
    one = make_loader(data, 8, seed=5)
    shards = [make_loader(data, 4, seed=5, num_replicas=2, rank=r) for r in range(2)]
    for epoch in (0, 3):
        one.set_epoch(epoch)
        for s in shards:
            s.set_epoch(epoch)
            s.sampler.set_epoch(epoch)
        per_rank = [[b[0].data.tolist() for b in s] for s in shards]
        assert [sorted(a + b) for a, b in zip(*per_rank)] == [sorted(b[0].data.tolist()) for b in one]
    assert len(shards[0]) == len(one) == 5


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _state(npz):
    with np.load(npz) as f:
        return {k: f[k] for k in f.files}


def test_two_rank_training_matches_one_process(tmp_path):
    """minigrad.app.train.train on 2 ranks (tests/mpi_train_script.py): both ranks end with identical parameters
    and buffers, equal to one process on the same global batches (no batch norm, or --sync-bn), also when resumed
    from an epoch or a mid-epoch checkpoint; only rank 0 writes checkpoints."""
    mpiexec = _mpi_launcher()
    from minigrad.app.train import train
    proc = subprocess.run([mpiexec, "-n", "2", sys.executable, "-m", "mpi4py", "tests/mpi_train_script.py",
                           str(tmp_path)], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert proc.stdout.splitlines().count("OK train 2 ranks") == 1, proc.stdout
    common = dict(dataset="synthetic", limit_train=60, limit_test=20, epochs=2, batch_size=12, lr=0.05, seed=3,
                  progress=False, log=lambda s: None)  # the script's options with the global batch, one process
    for case, kwargs in {"mlp": dict(model="mlp"), "mlp-bn-sync": dict(model="mlp-bn", sync_bn=True)}.items():
        one = {k: np.asarray(v.data) for k, v in train(**common, **kwargs)["model"].state_dict().items()}
        full = _state(tmp_path / f"{case}-full-rank0.npz")
        assert set(full) == set(one)
        for run in ("full", "resumed", "resumed-mid"):
            for rank in (0, 1):
                got = _state(tmp_path / f"{case}-{run}-rank{rank}.npz")
                for k in one:
                    np.testing.assert_array_equal(got[k], full[k], err_msg=f"{case} {run} rank {rank} {k}")
        for k in one:  # float32: the averaged gradient rounds differently from the one-process mean
            np.testing.assert_allclose(full[k], one[k], rtol=1e-5, atol=1e-6, err_msg=f"{case} {k}")


def _cli(mpiexec, *args, n=2, timeout=300):
    cmd = [mpiexec, "-n", str(n)] if n else []
    return subprocess.run(cmd + [sys.executable, "-m", "minigrad", "train", "--dataset", "synthetic",
                                 "--limit-train", "48", "--limit-test", "16", "--batch-size", "6", "--no-progress",
                                 *args], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout)


def test_cli_under_mpiexec_prints_checkpoints_and_resumes_once(tmp_path):
    mpiexec = _mpi_launcher()
    ck, metrics = tmp_path / "ck", tmp_path / "m.jsonl"
    args = ["--model", "mlp-bn", "--sync-bn", "--epochs", "2", "--checkpoint-dir", str(ck), "--metrics", str(metrics)]
    proc = _cli(mpiexec, *args, "--stop-after", "1")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stderr.count("epoch 1/2:") == 1 and proc.stderr.count("training mlp-bn") == 1, proc.stderr
    assert "4 batches of 6 per rank on 2 ranks (global batch 12)" in proc.stderr
    assert sorted(p.name for p in ck.iterdir()) == ["epoch-001.safetensors"]
    proc = _cli(mpiexec, *args, "--resume")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stderr.count("resumed from") == 1 and proc.stderr.count("epoch 2/2:") == 1, proc.stderr
    assert sorted(p.name for p in ck.iterdir()) == ["epoch-001.safetensors", "epoch-002.safetensors"]
    assert [json.loads(line)["epoch"] for line in metrics.read_text().splitlines()] == [1, 2]
    # a checkpoint of 2 ranks resumes only on 2 ranks: one line, exit 2
    proc = _cli(mpiexec, *args, "--resume", n=0)
    assert proc.returncode == 2 and "written by a run on 2 rank(s), this one has 1" in proc.stderr, proc.stderr
    # a bad option: the same one line once, exit 2, on every rank (no abort)
    proc = _cli(mpiexec, "--model", "mlp", "--sync-bn")
    assert proc.returncode == 2, proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.strip()] == [
        "minigrad train: error: --sync-bn: mlp has no batch norm to synchronize; drop --sync-bn or use a -bn model"]


def test_cli_sync_bn_in_one_process_is_batch_norm(tmp_path):
    """--sync-bn without MPI trains as plain batch norm (torch's SyncBatchNorm falls back to it too)."""
    from minigrad.app.train import train
    common = dict(model="mlp-bn", dataset="synthetic", limit_train=24, limit_test=8, epochs=1, batch_size=6,
                  progress=False, log=lambda s: None)
    a, b = train(**common)["model"].state_dict(), train(**common, sync_bn=True)["model"].state_dict()
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k].data), np.asarray(b[k].data))


def test_a_killed_rank_ends_the_job(tmp_path):
    """SIGKILL one rank mid-training: mpiexec (Hydra) ends the other rank and exits non-zero within seconds."""
    mpiexec = _mpi_launcher()
    log = tmp_path / "m.jsonl"
    proc = subprocess.Popen([mpiexec, "-n", "2", sys.executable, "-m", "minigrad", "train", "--dataset", "synthetic",
                             "--model", "mlp", "--limit-train", "400", "--batch-size", "4", "--epochs", "1000",
                             "--no-progress", "--metrics", str(log)], cwd=ROOT, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (log.exists() and log.read_text().strip()):  # an epoch done: both ranks are in the loop
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.2)
        victim = _rank_pid(proc.pid, rank=1)
        os.kill(victim, signal.SIGKILL)
        out, err = proc.communicate(timeout=60)  # measured: under a second
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode != 0 and "BAD TERMINATION" in out and "Killed (signal 9)" in out, out[-2000:] + err[-2000:]


def _rank_pid(root, rank):
    """The pid of the MPI rank ``rank`` among ``root``'s descendants (read from /proc: PMI_RANK in its
    environment)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"PMI_RANK={rank}".encode() in env and Path(f"/proc/{pid}/exe").resolve().name.startswith("python"):
            return pid
    raise AssertionError(f"no rank {rank} under pid {root}")


# ------------------------------------------------------------------ the benchmark script (no timings asserted)

def test_bench_distributed_runs_on_two_ranks(tmp_path):
    """scripts/bench_distributed.py --only train under mpiexec -n 2: the table's columns and a row per model and
    variant; the MPI calls inside the step were caught by its timer (gradient buckets in both variants, SyncBN
    collectives only with SyncBatchNorm), and the --scaling driver launches it and divides by the 1-rank run."""
    mpiexec = _mpi_launcher()
    out = tmp_path / "bench.json"
    proc = subprocess.run([mpiexec, "-n", "2", sys.executable, "-m", "mpi4py", "scripts/bench_distributed.py",
                           "--only", "train", "--steps", "2", "--batch-size", "8", "--json", str(out)],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    lines = proc.stdout.splitlines()
    assert any(line.startswith("| model | variant | ranks | step ms | compute | grad Allreduce | SyncBN collectives | "
                               "off-CPU | compute CPU | samples/s |") for line in lines), proc.stdout
    rows = [line.split(" | ")[:3] for line in lines if line.startswith(("| lenet-bn", "| mlp-bn"))]
    assert rows == [["| lenet-bn", "ddp", "2"], ["| lenet-bn", "ddp+syncbn", "2"], ["| mlp-bn", "ddp", "2"],
                    ["| mlp-bn", "ddp+syncbn", "2"]], proc.stdout
    report = json.loads(out.read_text())
    assert report["ranks"] == 2 and [m["model"] for m in report["train"]] == ["lenet-bn", "mlp-bn"]
    for m in report["train"]:
        ddp, sync = m["variants"]["ddp"], m["variants"]["ddp+syncbn"]
        assert ddp["grad_s"] > 0 and sync["grad_s"] > 0 and sync["syncbn_s"] > 0 and ddp["syncbn_s"] == 0, m
        assert m["bare_grad_allreduce_s"] > 0 and m["bare_syncbn_s"] > 0, m
        for v in (ddp, sync):
            assert v["samples_per_s"] == pytest.approx(2 * 8 / v["step_s"])
    out = tmp_path / "scaling.json"
    proc = subprocess.run([sys.executable, "scripts/bench_distributed.py", "--scaling", "1,2", "--repeats", "1",
                           "--steps", "2", "--batch-size", "8", "--json", str(out)],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    summary = json.loads(out.read_text())
    assert [(r["model"], r["variant"], r["ranks"]) for r in summary["rows"]] == [
        (m, v, k) for m in ("lenet-bn", "mlp-bn") for v in ("ddp", "ddp+syncbn") for k in (1, 2)]
    for r in summary["rows"]:
        if r["ranks"] == 1:
            assert r["scaling"] == 1 and r["grad_s"] == r["syncbn_s"] == 0, r
    assert "| x 1 rank |" in proc.stdout
