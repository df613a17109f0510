"""Training loop behind ``minigrad train``: data, model, optimizer, per-epoch eval, metrics, checkpoints, resume.

Reproducibility: ``seed`` seeds minigrad's generator (model init, dropout) and is the DataLoader's shuffle seed, so
epoch k's batch order is a function of (seed, k) alone. A checkpoint after each epoch holds the model state, the
optimizer state and, in ``extra``, the epoch, the seed, minigrad's RNG state, the loader state and the scheduler
state. ``resume=True`` restores all of it from the newest checkpoint, so an interrupted run continued with
``--resume`` ends with weights bit-identical to an uninterrupted one.
"""
import contextlib
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

import minigrad
from minigrad import optim
from minigrad import random as _random
from minigrad.app.checkpoint import load_checkpoint, save_checkpoint
from minigrad.data import FashionMNIST, MNIST, DataLoader, SyntheticDigits, TensorDataset
from minigrad.app.models import build_model
from minigrad.nn import functional as F
from minigrad.optim import lr_scheduler
from minigrad.tensor import no_grad

DATASETS = ("mnist", "fashion-mnist", "synthetic")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("none", "onecycle", "cosine", "step")
_CKPT = re.compile(r"^epoch-(\d+)\.safetensors$")


def load_data(name, limit_train=None, limit_test=None, seed=0):
    """(train, test) datasets, standardized with the training set's mean and std."""
    if name == "synthetic":
        train = SyntheticDigits(n=limit_train or 2000, train=True, seed=seed)
        test = SyntheticDigits(n=limit_test or 500, train=False, seed=seed)
    elif name in ("mnist", "fashion-mnist"):
        cls = MNIST if name == "mnist" else FashionMNIST
        train, test = cls(train=True), cls(train=False)
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


def latest_checkpoint(directory):
    """Path of the highest-epoch ``epoch-NNN.safetensors`` in ``directory``, or None."""
    d = Path(directory)
    found = [(int(m.group(1)), p) for p in d.glob("epoch-*.safetensors") if (m := _CKPT.match(p.name))] \
        if d.is_dir() else []
    return max(found)[1] if found else None


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


@contextlib.contextmanager
def _blas_threads(n):
    """Limit NumPy's BLAS to ``n`` threads when threadpoolctl is installed (else leave it as it is)."""
    if n is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(n):
        yield


def train(model="lenet-bn", dataset="mnist", epochs=3, batch_size=64, optimizer="sgd", lr=0.05, momentum=0.9,
          weight_decay=0.0, scheduler="none", backend=None, threads=None, seed=0, checkpoint_dir=None, resume=False,
          metrics=None, limit_train=None, limit_test=None, progress=True, stop_after=None, log=None):
    """Train ``model`` on ``dataset``; returns a dict with the model, the last epoch's metrics and timings.

    ``stop_after``: end this run after that many epochs even if ``epochs`` is larger (as if interrupted; the
    schedule still spans ``epochs``). ``log``: a callable for the per-epoch and summary lines (default: stderr).
    """
    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    if backend:
        minigrad.set_backend(backend)
    if threads:
        minigrad.set_num_threads(int(threads))
    minigrad.manual_seed(seed)
    train_set, test_set = load_data(dataset, limit_train, limit_test, seed)
    net = build_model(model, in_channels=train_set.tensors[0].shape[1], num_classes=10)
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, seed=seed)
    test_loader = DataLoader(test_set, batch_size=1000)
    opt = make_optimizer(optimizer, list(net.parameters()), lr, momentum, weight_decay)
    sched = make_scheduler(scheduler, opt, lr, epochs, len(loader))

    start = 0
    if resume:
        if checkpoint_dir is None:
            raise ValueError("resume needs a checkpoint directory")
        path = latest_checkpoint(checkpoint_dir)
        if path is None:
            log(f"resume: no checkpoint in {checkpoint_dir}, starting from scratch")
        else:
            model_state, opt_state, extra = load_checkpoint(path)
            net.load_state_dict(model_state)
            opt.load_state_dict(opt_state)
            if sched is not None and extra.get("scheduler") is not None:
                sched.load_state_dict(extra["scheduler"])
            _random.set_rng_state(extra["rng_state"])
            loader.load_state_dict(extra["loader"])
            start = int(extra["epoch"])
            log(f"resumed from {path} after epoch {start}")
    if checkpoint_dir is not None:
        Path(checkpoint_dir).mkdir(parents=True, exist_ok=True)

    from tqdm import tqdm
    record, times = None, []
    last = epochs if stop_after is None else min(epochs, start + int(stop_after))
    with _blas_threads(threads):
        for epoch in range(start, last):
            net.train()
            loader.set_epoch(epoch)
            t0 = time.perf_counter()
            seen, loss_sum, correct = 0, 0.0, 0
            bar = tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", disable=not progress, leave=True,
                       dynamic_ncols=True, file=sys.stderr)
            for x, y in bar:
                out = net(x)
                loss = F.cross_entropy(out, y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                if sched is not None:
                    sched.step()
                n = len(y)
                seen += n
                loss_sum += loss.item() * n
                correct += int((out.data.argmax(axis=1) == y.data).sum())
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}",
                                samples_s=f"{seen / (time.perf_counter() - t0):.0f}", refresh=False)
            bar.close()
            train_time = time.perf_counter() - t0
            times.append(train_time)
            test_loss, test_acc = evaluate(net, test_loader)
            record = {"epoch": epoch + 1, "train_loss": loss_sum / max(seen, 1), "train_acc": correct / max(seen, 1),
                      "test_loss": test_loss, "test_acc": test_acc, "lr": opt.param_groups[0]["lr"],
                      "epoch_seconds": train_time, "samples_per_s": seen / train_time, "model": model,
                      "dataset": dataset, "optimizer": optimizer, "batch_size": batch_size,
                      "backend": minigrad.get_backend(), "threads": minigrad.get_num_threads(), "seed": seed}
            log(f"epoch {epoch + 1}/{epochs}: train loss {record['train_loss']:.4f} acc {record['train_acc']:.4f} | "
                f"test loss {test_loss:.4f} acc {test_acc:.4f} | {train_time:.1f} s, "
                f"{record['samples_per_s']:.0f} samples/s")
            if metrics:
                with open(metrics, "a") as f:
                    f.write(json.dumps(record) + "\n")
            if checkpoint_dir is not None:
                extra = {"epoch": epoch + 1, "seed": seed, "rng_state": _random.get_rng_state(),
                         "loader": loader.state_dict(), "model": model, "dataset": dataset,
                         "scheduler": sched.state_dict() if sched is not None else None}
                save_checkpoint(os.path.join(checkpoint_dir, f"epoch-{epoch + 1:03d}.safetensors"), net.state_dict(),
                                opt.state_dict(), extra)
    if record is not None:
        log(f"done: {model} on {dataset}, {last - start} epoch(s) this run, final test acc {record['test_acc']:.4f} "
            f"(loss {record['test_loss']:.4f}), {np.mean(times):.1f} s/epoch, backend {minigrad.get_backend()}, "
            f"{minigrad.get_num_threads()} thread(s)")
    return {"model": net, "metrics": record, "epoch_seconds": times, "epochs_run": last - start}
