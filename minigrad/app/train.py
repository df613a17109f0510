"""Training loop behind ``minigrad train``: data, model, optimizer, per-epoch eval, metrics, checkpoints, resume.

Reproducibility: ``seed`` seeds minigrad's generator (model init, dropout) and is the DataLoader's shuffle seed, so
epoch k's batch order is a function of (seed, k) alone. A checkpoint holds the model state, the optimizer state
and, in ``extra``, the position (completed epochs, batches done in the next one), the seed, minigrad's RNG state,
the loader state, the scheduler state and the epoch's running sums. ``resume=True`` restores all of it from the
newest usable checkpoint, so an interrupted run continued with ``--resume`` ends with weights and metrics
bit-identical to an uninterrupted one, whether it stopped at an epoch boundary or in the middle of an epoch.

Checkpoints in ``checkpoint_dir``: ``epoch-NNN.safetensors`` after epoch NNN, and
``epoch-NNN-batch-BBBBB.safetensors`` after batch BBBBB of the epoch that follows NNN complete ones (written every
``checkpoint_every`` steps and when a run is interrupted; only the newest of these and one before it are kept).

Interrupts: SIGINT (Ctrl-C) or SIGTERM lets the current step finish, writes a checkpoint of it, prints where it is
and how to resume, and ends the run with ``result["interrupted"]`` set to the signal number (the CLI exits
128 + signal). A second signal abandons the step at once without a checkpoint (raises ``Interrupted``).

Errors: ``ConfigError`` (a ``ValueError``) for a bad option, path or dataset, raised before any training;
``Diverged`` when a loss is not finite (unless ``allow_nan``), raised before that step updates anything.

Data parallel: in a process that an MPI launcher started (``minigrad.distributed.launched()``), every rank runs
``train`` with the same options. Each rank trains on its own shard of every epoch's order (the order is still the
one the seed gives: ``DataLoader.order``, split as ``DistributedSampler`` splits it, padded by repeating its start
to a multiple of the world size), ``batch_size`` samples per rank and step (the global batch is world size x
batch_size, as in PyTorch), the model wrapped in ``DistributedDataParallel`` (``sync_bn``: its batch norms
converted to ``SyncBatchNorm`` first). One small Allreduce per step sums the ranks' loss, sample and correct counts
(so the metrics are the global batch's, a non-finite loss on any rank stops every rank at the same step) and the
stop signals (so every rank stops after the same step). Rank 0 alone logs, evaluates (the full test set, rank 0's
running statistics: the checkpoint's model), writes the metrics and the checkpoints; a checkpoint records the world
size and resumes only at the same one. On ``resume`` rank 0 reads the checkpoint and broadcasts it: every rank
restores the same model, optimizer and position without needing the directory on its own file system, and no
two ranks can pick different files. A bad option found on any rank before training raises the same
``ConfigError`` on every rank.
"""
import contextlib
import itertools
import json
import math
import os
import re
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

import minigrad
from minigrad import distributed, optim
from minigrad import random as _random
from minigrad.app.checkpoint import load_checkpoint, remove_stale_tmp, save_checkpoint
from minigrad.data import FashionMNIST, MNIST, DataLoader, DistributedSampler, SyntheticDigits, TensorDataset
from minigrad.app.models import MODELS, build_model
from minigrad.nn import functional as F
from minigrad.optim import lr_scheduler
from minigrad.tensor import no_grad

DATASETS = ("mnist", "fashion-mnist", "synthetic")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("none", "onecycle", "cosine", "step")
_CKPT = re.compile(r"^epoch-(\d+)(?:-batch-(\d+))?\.safetensors$")
# Options a checkpoint must agree with to be resumed (the others may change between runs).
_RESUME_KEYS = ("model", "dataset", "optimizer", "scheduler", "batch_size", "limit_train")


class ConfigError(ValueError):
    """A bad option, path or dataset, found before any training; the message is one line."""


class Diverged(RuntimeError):
    """The loss became NaN or infinite; the message names the step and suggests a lower learning rate."""


class Interrupted(KeyboardInterrupt):
    """A second SIGINT/SIGTERM arrived while the first was being handled: the step was abandoned."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def load_data(name, limit_train=None, limit_test=None, seed=0, root=None):
    """(train, test) datasets, standardized with the training set's mean and std; ``root`` holds IDX files."""
    if name == "synthetic":
        train = SyntheticDigits(n=limit_train or 2000, train=True, seed=seed)
        test = SyntheticDigits(n=limit_test or 500, train=False, seed=seed)
    elif name in ("mnist", "fashion-mnist"):
        cls = MNIST if name == "mnist" else FashionMNIST
        train, test = cls(root=root, train=True), cls(root=root, train=False)
    else:
        raise ValueError(f"unknown dataset {name!r}; choose from {DATASETS}")
    (xtr, ytr), (xte, yte) = train.arrays(), test.arrays()
    xtr, ytr = xtr[:limit_train], ytr[:limit_train]
    xte, yte = xte[:limit_test], yte[:limit_test]
    mean, std = np.float32(xtr.mean()), np.float32(xtr.std())
    return TensorDataset((xtr - mean) / std, ytr), TensorDataset((xte - mean) / std, yte)


def make_optimizer(name, params, lr, momentum=0.9, weight_decay=0.0):
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose from {OPTIMIZERS}")


def make_scheduler(name, optimizer, lr, epochs, steps_per_epoch):
    """A scheduler stepped once per batch (``none`` gives None)."""
    total = epochs * steps_per_epoch
    if name == "none":
        return None
    if name == "onecycle":
        return lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total)
    if name == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    if name == "step":  # x0.1 at each third of the run
        return lr_scheduler.StepLR(optimizer, step_size=max(1, total // 3), gamma=0.1)
    raise ValueError(f"unknown scheduler {name!r}; choose from {SCHEDULERS}")


class _SeededShard(DistributedSampler):
    """DistributedSampler over ``DataLoader.order``'s permutation (``default_rng([seed, epoch])``), so that the
    ranks' shards of an epoch, interleaved, are the order one process would train on."""

    def _permutation(self, n):
        return np.random.default_rng([self.seed, self.epoch]).permutation(n)


def make_loader(dataset, batch_size, seed, num_replicas=1, rank=0):
    """The training loader: shuffled by ``seed``; a last batch of exactly one sample is dropped (batch norm
    cannot train on one sample), any other last batch is kept. With ``num_replicas`` > 1, rank ``rank``'s shard of
    that order (``_SeededShard``; call ``loader.sampler.set_epoch`` with ``loader.set_epoch``)."""
    if num_replicas == 1:
        drop = batch_size > 1 and len(dataset) % batch_size == 1
        return DataLoader(dataset, batch_size=batch_size, shuffle=True, seed=seed, drop_last=drop)
    sampler = _SeededShard(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
    drop = batch_size > 1 and len(sampler) % batch_size == 1  # the same on every rank: equal shard lengths
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, seed=seed, drop_last=drop)


# --------------------------------------------------------------------------------------------------------
# Checkpoint files
# --------------------------------------------------------------------------------------------------------

def checkpoint_name(epoch, batch=0):
    """``epoch-NNN.safetensors`` (``epoch`` complete), or ``epoch-NNN-batch-BBBBB.safetensors`` (``batch``
    batches into the next epoch)."""
    return f"epoch-{epoch:03d}.safetensors" if not batch else f"epoch-{epoch:03d}-batch-{batch:05d}.safetensors"


def list_checkpoints(directory):
    """``[((epoch, batch), path)]`` of the checkpoints in ``directory``, newest first."""
    d = Path(directory)
    if not d.is_dir():
        return []
    found = [((int(m.group(1)), int(m.group(2) or 0)), p) for p in d.iterdir() if (m := _CKPT.match(p.name))]
    return sorted(found, reverse=True)


def latest_checkpoint(directory):
    """Path of the newest checkpoint (by epoch, then batch) in ``directory``, or None."""
    found = list_checkpoints(directory)
    return found[0][1] if found else None


def _prune(directory, key):
    """After saving checkpoint ``key``: remove the mid-epoch checkpoints older than it, but for the newest one
    (kept as a fallback should ``key``'s file be damaged). Epoch checkpoints are all kept."""
    older = [(k, p) for k, p in list_checkpoints(directory) if k < key]
    for k, p in older[1:]:
        if k[1]:
            with contextlib.suppress(OSError):
                p.unlink()


def _usable_checkpoint(directory, expect, warn):
    """The newest checkpoint of ``directory`` that loads and is a training checkpoint: ``(path, (model_state,
    optimizer_state, extra))``. Damaged ones are skipped with a warning; one written with other options
    (``expect``) is a ConfigError."""
    found = list_checkpoints(directory)
    if not found:
        raise ConfigError(f"--resume: no checkpoint (epoch-NNN.safetensors) in {directory}; "
                          "drop --resume to start from scratch")
    skipped = []
    for _, path in found:
        try:
            model_state, opt_state, extra = load_checkpoint(path, require_optimizer=True,
                                                            require_extra=("epoch", "rng_state", "loader"))
            if opt_state is None or not isinstance(extra, dict) or not {"epoch", "rng_state", "loader"} <= set(extra):
                raise ValueError(f"{path}: not a training checkpoint (it has the model's weights only)")
        except (ValueError, OSError) as e:
            warn(f"resume: {e}")
            skipped.append(path)
            continue
        saved = extra.get("config") or {}
        if saved.get("world_size", 1) != expect["world_size"]:
            raise ConfigError(f"--resume: {path} was written by a run on {saved.get('world_size', 1)} rank(s), "
                              f"this one has {expect['world_size']}; resume with as many ranks (mpiexec -n "
                              f"{saved.get('world_size', 1)}) or use another --checkpoint-dir")
        for key in _RESUME_KEYS:
            if key in saved and saved[key] != expect[key]:
                flag = "--" + key.replace("_", "-")
                raise ConfigError(f"--resume: {path} was written with {flag} {saved[key]}, not {expect[key]}; "
                                  f"resume with the same {flag} or use another --checkpoint-dir")
        if skipped:
            warn(f"resume: falling back to {path}, the newest usable checkpoint")
        return path, (model_state, opt_state, extra)
    raise ConfigError(f"--resume: none of the {len(found)} checkpoint(s) in {directory} can be loaded")


def _trim_metrics(path, epochs_done):
    """Drop the trailing lines of the metrics file with ``epoch > epochs_done`` (written after the checkpoint
    a run resumes from), so that a resumed run does not write them twice."""
    p = Path(path)
    if not p.is_file():
        return
    lines = p.read_text().splitlines(keepends=True)
    keep = len(lines)
    while keep:
        try:
            epoch = json.loads(lines[keep - 1]).get("epoch")
        except (ValueError, AttributeError):
            break
        if not isinstance(epoch, int) or epoch <= epochs_done:
            break
        keep -= 1
    if keep < len(lines):
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.writelines(lines[:keep])
        os.replace(tmp, p)


# --------------------------------------------------------------------------------------------------------
# Checking the options before any work
# --------------------------------------------------------------------------------------------------------

def _check_int(flag, value, minimum=1):
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{flag} must be an integer >= {minimum}, got {value!r}")


def _check_float(flag, value, positive):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) \
            or value < 0 or (positive and value == 0):
        raise ConfigError(f"{flag} must be a finite number {'> 0' if positive else '>= 0'}, got {value!r}")


def _has_batch_norm(model):
    from minigrad.nn.norm import _BatchNorm
    return any(isinstance(m, _BatchNorm) for m in build_model(model).modules())


def _writable_dir(what, directory):
    """Create ``directory`` if needed and check that a file can be written there."""
    d = Path(directory)
    if d.exists() and not d.is_dir():
        raise ConfigError(f"{what}: {directory} is a file, not a directory")
    try:
        d.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=d, prefix=".minigrad-write-test-"):
            pass
    except OSError as e:
        raise ConfigError(f"{what}: cannot write to the directory {directory} ({e.strerror or e})") from None


def check_options(*, model, dataset, epochs, batch_size, optimizer, lr, momentum, weight_decay, scheduler,
                  backend, threads, seed, checkpoint_dir, resume, metrics, limit_train, limit_test, stop_after,
                  data_dir, checkpoint_every, sync_bn=False):
    """Raise ConfigError for the first bad option; touches no file (``prepare_outputs`` does)."""
    choices = (("--model", model, sorted(MODELS)), ("--dataset", dataset, DATASETS),
               ("--optimizer", optimizer, OPTIMIZERS), ("--scheduler", scheduler, SCHEDULERS))
    for flag, value, allowed in choices:
        if value not in allowed:
            raise ConfigError(f"{flag} must be one of {', '.join(allowed)}, got {value!r}")
    if backend is not None and backend not in minigrad.available_backends():
        raise ConfigError(f"--backend {backend} is not available here; choose from "
                          f"{', '.join(minigrad.available_backends())}")
    for flag, value in (("--epochs", epochs), ("--batch-size", batch_size), ("--threads", threads),
                        ("--limit-train", limit_train), ("--limit-test", limit_test), ("--stop-after", stop_after),
                        ("--checkpoint-every", checkpoint_every)):
        _check_int(flag, value)
    _check_int("--seed", seed, minimum=0)
    _check_float("--lr", lr, positive=True)
    _check_float("--momentum", momentum, positive=False)
    _check_float("--weight-decay", weight_decay, positive=False)
    if batch_size == 1 and _has_batch_norm(model):
        raise ConfigError(f"--batch-size 1: {model} has batch norm, which needs at least 2 samples per batch in "
                          "training; use --batch-size 2 or more, or a model without -bn")
    if sync_bn and not _has_batch_norm(model):
        raise ConfigError(f"--sync-bn: {model} has no batch norm to synchronize; drop --sync-bn or use a -bn model")
    if limit_train == 1:
        raise ConfigError("--limit-train 1: a batch of one sample is dropped (batch norm cannot train on it), "
                          "so no training batch is left; use --limit-train 2 or more")
    if (resume or checkpoint_every) and checkpoint_dir is None:
        raise ConfigError(f"{'--resume' if resume else '--checkpoint-every'} needs --checkpoint-dir")
    if resume and not Path(checkpoint_dir).is_dir():
        raise ConfigError(f"--resume: checkpoint directory {checkpoint_dir} does not exist")
    if metrics is not None and Path(metrics).is_dir():
        raise ConfigError(f"--metrics {metrics}: is a directory, not a file")
    if data_dir is not None:
        if dataset == "synthetic":
            raise ConfigError("--data-dir is for --dataset mnist or fashion-mnist, not synthetic")
        if not Path(data_dir).is_dir():
            raise ConfigError(f"--data-dir {data_dir}: no such directory")
    elif dataset == "fashion-mnist":
        from minigrad.data.mnist import FASHION_MNIST_DIR
        if not Path(FASHION_MNIST_DIR).is_dir():
            raise ConfigError(f"Fashion-MNIST not found in {FASHION_MNIST_DIR}: install the Debian package "
                              "dataset-fashion-mnist, or pass --data-dir DIR holding its IDX files")


def prepare_outputs(checkpoint_dir, metrics):
    """Create the checkpoint directory and the metrics file's directory, checking both can be written."""
    if checkpoint_dir is not None:
        _writable_dir(f"--checkpoint-dir {checkpoint_dir}", checkpoint_dir)
    if metrics is not None:
        _writable_dir(f"--metrics {metrics}", Path(metrics).parent)
        try:
            with open(metrics, "a"):
                pass
        except OSError as e:
            raise ConfigError(f"--metrics {metrics}: cannot write it ({e.strerror or e})") from None


# --------------------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------------------

def evaluate(model, loader):
    """(mean loss, accuracy) over ``loader`` in eval mode without building a graph."""
    model.eval()
    total_loss, correct, n = 0.0, 0, 0
    with no_grad():
        for x, y in loader:
            out = model(x)
            total_loss += F.cross_entropy(out, y, reduction="sum").item()
            correct += int((out.data.argmax(axis=1) == y.data).sum())
            n += len(y)
    return total_loss / max(n, 1), correct / max(n, 1)


class _StopSignals:
    """While active, SIGINT and SIGTERM set ``signum`` (checked by the loop after each step); a second one
    raises ``Interrupted`` at once. Only in the main thread, where Python delivers signals."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum = None
        self._old = {}

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise Interrupted(signum)
        self.signum = signum

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc):
        for s, handler in self._old.items():
            signal.signal(s, handler)


class _World:
    """The processes of this run: this one alone, or the MPI job that launched it (see the module docstring).
    Every method is a collective under MPI: all ranks call it at the same point."""

    def __init__(self):
        self.size, self.rank = 1, 0
        if distributed.launched():  # NOTE: mpi4py is imported only here, only when launched
            distributed.init()
            self.size, self.rank = distributed.world_size(), distributed.rank()

    def agree(self, error):
        """Raise on every rank the first rank's ConfigError (``error``, or None where there is none)."""
        if self.size > 1:
            errors = [e for e in distributed._all_gather_object(None if error is None else str(error)) if e]
            error = ConfigError(errors[0]) if errors else None
        if error is not None:
            raise error

    def step_sums(self, loss_sum, n, correct, signum):
        """The global batch's (loss sum, samples, correct) and the stop signal any rank got (SIGINT first)."""
        if self.size == 1:
            return loss_sum, n, correct, signum
        v = np.array([loss_sum, n, correct, signum == signal.SIGINT, signum == signal.SIGTERM], np.float64)
        distributed.all_reduce(v)
        agreed = signal.SIGINT if v[3] else signal.SIGTERM if v[4] else None
        return float(v[0]), int(v[1]), int(v[2]), agreed

    def signal(self, signum):
        return self.step_sums(0.0, 0, 0, signum)[3]

    def from_rank0(self, obj):
        return obj if self.size == 1 else distributed._broadcast_object(obj)


def _stderr(s):
    print(s, file=sys.stderr, flush=True)


def train(model="lenet-bn", dataset="mnist", epochs=3, batch_size=64, optimizer="sgd", lr=0.05, momentum=0.9,
          weight_decay=0.0, scheduler="none", backend=None, threads=None, seed=0, checkpoint_dir=None, resume=False,
          metrics=None, limit_train=None, limit_test=None, progress=True, stop_after=None, log=None,
          data_dir=None, checkpoint_every=None, allow_nan=False, resume_command=None, sync_bn=False,
          compile_step=True):
    """Train ``model`` on ``dataset``; returns a dict with the model, the last epoch's metrics and timings.

    ``stop_after``: end this run after that many epochs even if ``epochs`` is larger (as if interrupted; the
    schedule still spans ``epochs``). ``log``: a callable for the per-epoch and summary lines (default: stderr);
    warnings and the interrupt report always go to stderr. ``data_dir``: read the dataset's IDX files there.
    ``checkpoint_every``: also write a mid-epoch checkpoint every N steps. ``allow_nan``: keep training
    through a NaN or inf loss. ``resume_command``: ``f(directory) -> str``, the command shown after an
    interrupt. ``sync_bn``: convert the model's batch norms to ``SyncBatchNorm`` (plain batch norm in a world
    of one process, as PyTorch's). ``compile_step``: run forward, loss and backward under ``minigrad.compile`` (one
    process only; the same results bit for bit; ``--no-compile`` turns it off). The result's ``interrupted`` is the signal number that stopped the run (else
    None) and ``checkpoint`` the last checkpoint written (else None). Under MPI see the module docstring.
    """
    world = _World()
    lead = world.rank == 0
    log = (log or _stderr) if lead else (lambda s: None)
    options = dict(model=model, dataset=dataset, epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr,
                   momentum=momentum, weight_decay=weight_decay, scheduler=scheduler, backend=backend,
                   threads=threads, seed=seed, checkpoint_dir=checkpoint_dir, resume=resume, metrics=metrics,
                   limit_train=limit_train, limit_test=limit_test, stop_after=stop_after, data_dir=data_dir,
                   checkpoint_every=checkpoint_every, sync_bn=sync_bn)
    resumed, error = None, None
    try:
        check_options(**options)
        config = {k: options[k] for k in _RESUME_KEYS}
        if world.size > 1:  # NOTE: only then, so that a one-process checkpoint's config stays as it was
            config["world_size"] = world.size
        if lead:
            if resume:
                resumed = _usable_checkpoint(checkpoint_dir, {**config, "world_size": world.size}, _stderr)
            prepare_outputs(checkpoint_dir, metrics)
            if checkpoint_dir is not None:
                remove_stale_tmp(checkpoint_dir)
        try:
            train_set, test_set = load_data(dataset, limit_train, limit_test, seed, root=data_dir)
        except (OSError, ValueError, RuntimeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigError(f"cannot load the {dataset} dataset: {first}") from None
    except ConfigError as e:
        if world.size == 1:
            raise
        error = e
    world.agree(error)
    resumed = world.from_rank0(resumed)

    if backend:
        minigrad.set_backend(backend)
    if threads is None and world.size > 1 and not (os.environ.get("MINIGRAD_NUM_THREADS")
                                                   or os.environ.get("OMP_NUM_THREADS")):
        # NOTE: ranks sharing a machine share its cores (torchrun sets OMP_NUM_THREADS=1 for the same reason)
        threads = max(1, minigrad.get_num_threads() // distributed._local_size())
    if threads:
        minigrad.set_num_threads(int(threads))
    minigrad.manual_seed(seed)
    net = build_model(model, in_channels=train_set.tensors[0].shape[1], num_classes=10)
    if sync_bn:
        net = minigrad.nn.SyncBatchNorm.convert_sync_batchnorm(net)
    loader = make_loader(train_set, batch_size, seed, world.size, world.rank)
    steps_per_epoch = len(loader)
    if steps_per_epoch == 0:  # NOTE: the same on every rank (equal shards): no rank waits for another here
        raise ConfigError(f"the {dataset} training set has {len(train_set)} item(s): no batch to train on" +
                          (f" ({len(loader.sampler)} per rank)" if world.size > 1 else ""))
    test_loader = DataLoader(test_set, batch_size=1000)
    opt = make_optimizer(optimizer, list(net.parameters()), lr, momentum, weight_decay)
    sched = make_scheduler(scheduler, opt, lr, epochs, steps_per_epoch)

    start, start_batch, running = 0, 0, None
    if resumed is not None:
        path, (model_state, opt_state, extra) = resumed
        try:
            net.load_state_dict(model_state)
            opt.load_state_dict(opt_state)
            if sched is not None and extra.get("scheduler") is not None:
                sched.load_state_dict(extra["scheduler"])
            _random.set_rng_state(extra["rng_state"])
            loader.load_state_dict(extra["loader"])
            start, start_batch = int(extra["epoch"]), int(extra.get("batch", 0))
        except (KeyError, ValueError, TypeError) as e:
            raise ConfigError(f"--resume: {path} does not fit this run ({type(e).__name__}: {e})") from None
        running = extra.get("running")
        if metrics and lead:
            _trim_metrics(metrics, start)
        where = f"in epoch {start + 1} after batch {start_batch} of {steps_per_epoch}" if start_batch else \
            f"after epoch {start}"
        log(f"resumed from {path} {where}")
    # NOTE: wrapped after the restore: DDP broadcasts rank 0's state, which every rank has loaded anyway; the
    # optimizer holds the same Parameters, and checkpoints hold the bare model's state_dict (no "module." prefix).
    runner = net
    if world.size > 1:
        from minigrad.nn.parallel import DistributedDataParallel
        runner = DistributedDataParallel(net)

    def forward_backward(x, y):
        # NOTE: zero_grad and backward before the loss is checked: that changes no parameter (opt.step does,
        # after the check), and gives the same gradients as eager's forward, check, zero_grad, backward
        opt.zero_grad()
        out = runner(x)
        loss = F.cross_entropy(out, y)
        loss.backward()
        return out, loss
    if compile_step and world.size == 1:
        forward_backward = minigrad.compile(forward_backward)

    record, times, last_ckpt = None, [], None
    last = epochs if stop_after is None else min(epochs, start + int(stop_after))
    if start >= last:
        log(f"nothing to train: the checkpoint is at epoch {start} of {epochs}")

    def save(epoch, batch, sums):
        nonlocal last_ckpt
        if not lead:
            return None, None
        directory = checkpoint_dir or f"minigrad-interrupted-{time.strftime('%Y%m%d-%H%M%S')}"
        Path(directory).mkdir(parents=True, exist_ok=True)
        extra = {"epoch": epoch, "batch": batch, "seed": seed, "rng_state": _random.get_rng_state(),
                 "loader": {"epoch": epoch, "seed": loader.seed}, "model": model,
                 "dataset": dataset, "config": config, "running": sums,
                 "scheduler": sched.state_dict() if sched is not None else None}
        path = os.path.join(directory, checkpoint_name(epoch, batch))
        save_checkpoint(path, net.state_dict(), opt.state_dict(), extra)
        _prune(directory, (epoch, batch))
        last_ckpt = path
        return directory, path

    from tqdm import tqdm
    stop = _StopSignals()
    with stop:  # NOTE: set_num_threads above set NumPy's BLAS too (minigrad/kernels/threads.py)
        if start < last:
            ranks = f" per rank on {world.size} ranks (global batch {world.size * batch_size})" if world.size > 1 \
                else ""
            log(f"training {model} on {dataset}: {len(train_set)} items, {steps_per_epoch} batches of {batch_size}"
                f"{ranks} per epoch, epochs {start + 1}-{last} of {epochs}")
        for epoch in range(start, last):
            runner.train()
            loader.set_epoch(epoch)
            if loader.sampler is not None:
                loader.sampler.set_epoch(epoch)
            skip = start_batch if epoch == start else 0
            batches = itertools.islice(iter(loader), skip, None)
            sums = dict(running) if skip and running else {"seen": 0, "loss_sum": 0.0, "correct": 0, "seconds": 0.0}
            t0 = time.perf_counter() - sums["seconds"]
            bar = tqdm(total=steps_per_epoch, initial=skip, desc=f"epoch {epoch + 1}/{epochs}", unit="batch",
                       disable=None if progress and lead else True, leave=False, dynamic_ncols=True,
                       file=sys.stderr)
            try:
                for batch, (x, y) in enumerate(batches, start=skip + 1):
                    step = epoch * steps_per_epoch + batch
                    out, loss = forward_backward(x, y)
                    value = loss.item()
                    n = len(y)
                    correct = int((out.data.argmax(axis=1) == y.data).sum())
                    loss_sum, n, correct, signum = world.step_sums(value * n, n, correct, stop.signum)
                    if world.size > 1:
                        value = loss_sum / n
                    if not math.isfinite(value) and not allow_nan:
                        raise Diverged(f"the loss is {value} at step {step} (epoch {epoch + 1}, batch {batch}): "
                                       f"training diverged; try a lower learning rate than --lr {lr:g} "
                                       "(or --allow-nan to continue anyway)")
                    opt.step()
                    if sched is not None:
                        sched.step()
                    sums["seen"] += n
                    sums["loss_sum"] += loss_sum
                    sums["correct"] += correct
                    bar.update(1)
                    if not bar.disable:
                        bar.set_postfix({"loss": f"{sums['loss_sum'] / sums['seen']:.4f}",
                                         "acc": f"{sums['correct'] / sums['seen']:.4f}",
                                         "samples/s": f"{sums['seen'] / (time.perf_counter() - t0):.0f}"},
                                        refresh=False)
                    if signum is None and not (checkpoint_every and step % checkpoint_every == 0
                                               and batch < steps_per_epoch):
                        continue
                    sums["seconds"] = time.perf_counter() - t0
                    directory, path = save(epoch, batch, dict(sums))
                    if signum is not None:
                        bar.close()
                        return _interrupted(signum, f"step {step} (epoch {epoch + 1}, batch {batch} of "
                                            f"{steps_per_epoch})", directory, path, resume_command, net, record,
                                            lead)
            finally:
                bar.close()
            train_time = time.perf_counter() - t0
            times.append(train_time)
            seen = sums["seen"]
            test_loss, test_acc = world.from_rank0(evaluate(net, test_loader) if lead else None)
            record = {"epoch": epoch + 1, "train_loss": sums["loss_sum"] / max(seen, 1),
                      "train_acc": sums["correct"] / max(seen, 1), "test_loss": test_loss, "test_acc": test_acc,
                      "lr": opt.param_groups[0]["lr"], "epoch_seconds": train_time, "samples_per_s": seen / train_time,
                      "model": model, "dataset": dataset, "optimizer": optimizer, "batch_size": batch_size,
                      "backend": minigrad.get_backend(), "threads": minigrad.get_num_threads(), "seed": seed}
            log(f"epoch {epoch + 1}/{epochs}: train loss {record['train_loss']:.4f} acc {record['train_acc']:.4f} | "
                f"test loss {test_loss:.4f} acc {test_acc:.4f} | {train_time:.1f} s, "
                f"{record['samples_per_s']:.0f} samples/s")
            # NOTE: the metrics line before the checkpoint: a run killed between the two resumes from the
            # previous checkpoint, and trims this line (_trim_metrics) before writing it again.
            if metrics and lead:
                with open(metrics, "a") as f:
                    f.write(json.dumps(record) + "\n")
            signum = world.signal(stop.signum)
            if checkpoint_dir is not None or signum is not None:
                directory, path = save(epoch + 1, 0, None)
                if signum is not None:
                    return _interrupted(signum, f"epoch {epoch + 1}", directory, path, resume_command, net,
                                        record, lead)
    if record is not None:
        log(f"done: {model} on {dataset}, {last - start} epoch(s) this run, final test acc {record['test_acc']:.4f} "
            f"(loss {record['test_loss']:.4f}), {np.mean(times):.1f} s/epoch, backend {minigrad.get_backend()}, "
            f"{minigrad.get_num_threads()} thread(s)")
    return {"model": net, "metrics": record, "epoch_seconds": times, "epochs_run": last - start,
            "interrupted": None, "checkpoint": last_ckpt}


def _interrupted(signum, where, directory, path, resume_command, net, record, lead=True):
    if lead:
        name = signal.Signals(signum).name
        _stderr(f"interrupted by {name} after {where}: checkpoint written to {path}")
        command = resume_command(directory) if resume_command else \
            f"train(..., checkpoint_dir={str(directory)!r}, resume=True)"
        _stderr(f"resume with: {command}")
    return {"model": net, "metrics": record, "epoch_seconds": [], "epochs_run": None, "interrupted": signum,
            "checkpoint": path}
