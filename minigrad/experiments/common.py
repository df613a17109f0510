"""What every experiment shares: the run configuration, data, model building and initialization, the one
training loop, evaluation, and the writing of outputs (JSON, PNG plots, a Markdown report).

An experiment is a function ``run(cfg) -> Path`` (the report's path) over a ``Config``. It trains only through
``train_run`` and writes only through ``Outputs``, so that every experiment reads the same way and its JSON
holds every number that its plots and report show.

NOTE: the default is one thread. The networks here are small (batch 60, width 100): a 2-thread BLAS or OpenMP
region costs more in synchronization than it saves, and on a shared 2-core machine it collapses whenever
another process holds a core (we measured 2.5 ms/step at 1 thread against 14-100 ms at 2 under load).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import minigrad as mg
from minigrad import nn
from minigrad.data import MNIST, DataLoader, FashionMNIST, SyntheticDigits, TensorDataset
from minigrad.nn import functional as F
from minigrad.optim import SGD

from . import plotting

DATASETS = ("mnist", "fashion-mnist", "synthetic")  # Config.data, the experiments' --data
BATCH_SIZE = 60  # the paper's mini-batch size (Sec. 4.1)
EVAL_BATCH = 1000


# --------------------------------------------------------------------------------------------------------
# Configuration and the run environment
# --------------------------------------------------------------------------------------------------------

@dataclass
class Config:
    """Options shared by every experiment; ``None`` means the experiment's own default."""
    name: str = ""
    quick: bool = False
    out: str | None = None
    seeds: int | None = None
    backend: str | None = None
    threads: int = 1
    data: str = "mnist"
    steps: int | None = None
    lr: float | None = None
    init_std: float | None = None
    progress: bool = True
    compile: bool = True  # training steps under minigrad.compile (``--no-compile``: eager)
    command: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def out_dir(self):
        return Path(self.out or f"runs/{self.name}")

    def pick(self, value, full, quick):
        """``value`` when given on the command line, else the quick or the full default."""
        return value if value is not None else (quick if self.quick else full)


@contextlib.contextmanager
def threads(n):
    """``n`` threads for the kernels (NumPy's BLAS at 1, as ``set_num_threads`` sets it), restored afterwards."""
    old, old_blas = mg.get_num_threads(), mg.get_blas_num_threads()
    mg.set_num_threads(n)
    try:
        yield n
    finally:
        mg.set_num_threads(old, blas=old_blas)


@contextlib.contextmanager
def environment(cfg):
    """Backend and thread count for the whole run."""
    backend = cfg.backend or mg.get_backend()
    with threads(cfg.threads), mg.using_backend(backend):
        yield backend


def describe_environment(cfg, backend):
    return {"backend": backend, "threads": cfg.threads, "python": platform.python_version(),
            "numpy": np.__version__, "minigrad": mg.__version__, "machine": platform.machine(),
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "(runtime default)"),
            "GOMP_SPINCOUNT": os.environ.get("GOMP_SPINCOUNT", "(runtime default)")}


# --------------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------------

@dataclass
class Data:
    name: str
    x_train: np.ndarray  # (N, 1, 28, 28) float32
    y_train: np.ndarray  # (N,) int64
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def chance(self):
        return 1.0 / 10


def load_data(cfg):
    """MNIST or Fashion-MNIST (60k/10k), or SyntheticDigits; quick synthetic runs use a small set."""
    if cfg.data == "mnist":
        train, test = MNIST(train=True), MNIST(train=False)
    elif cfg.data == "fashion-mnist":
        train, test = FashionMNIST(train=True), FashionMNIST(train=False)
    elif cfg.data == "synthetic":
        n_train, n_test = (2000, 1000) if cfg.quick else (20000, 5000)
        train, test = SyntheticDigits(n_train, train=True), SyntheticDigits(n_test, train=False)
    else:
        raise ValueError(f"unknown data {cfg.data!r}; choose from {', '.join(DATASETS)}")
    return Data(cfg.data, train.data, train.targets, test.data, test.targets)


# --------------------------------------------------------------------------------------------------------
# Models and initialization
# --------------------------------------------------------------------------------------------------------

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU}


def mlp(depth=3, width=100, act="sigmoid", bn=False, in_features=784, num_classes=10):
    """Flatten, then ``depth`` hidden layers Linear(-BatchNorm1d)-act of ``width``, then Linear to the classes.

    depth=3, act="sigmoid" is the paper's 784-100-100-100-10 net, laid out as ``minigrad.models`` "mlp" and
    "mlp-bn" (no bias before a batch norm: its shift makes the bias redundant).
    """
    layers = [nn.Flatten()]
    for i in range(depth):
        layers.append(nn.Linear(in_features if i == 0 else width, width, bias=not bn))
        if bn:
            layers.append(nn.BatchNorm1d(width))
        layers.append(ACTIVATIONS[act]())
    layers.append(nn.Linear(width if depth else in_features, num_classes))
    return nn.Sequential(*layers)


def init_scheme_label(scheme):
    return f"N(0, {scheme:g}^2)" if isinstance(scheme, (int, float)) else scheme


def initialize(model, scheme):
    """Re-initialize every Linear of ``model``: a float is the std of a zero-mean Gaussian, or "xavier"
    (normal, gain 1) or "kaiming" (normal, fan_in, gain sqrt 2), or "default" (PyTorch's kaiming-uniform,
    left as built). Biases are set to zero except for "default"."""
    if scheme == "default":
        return model
    for m in model.modules():
        if isinstance(m, nn.Linear):
            if scheme == "xavier":
                nn.init.xavier_normal_(m.weight)
            elif scheme == "kaiming":
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            elif isinstance(scheme, (int, float)):
                nn.init.normal_(m.weight, 0.0, float(scheme))
            else:
                raise ValueError(f"unknown init scheme {scheme!r}")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


def linear_layers(model):
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


# --------------------------------------------------------------------------------------------------------
# Evaluation and the training loop
# --------------------------------------------------------------------------------------------------------

def evaluate(model, x, y, batch_size=EVAL_BATCH, train_mode=False):
    """Accuracy of ``model`` on (x, y). ``train_mode=True`` evaluates with batch statistics, as a model left
    in training mode would (and, as then, updates its running statistics); the mode is restored after."""
    was_training = model.training
    model.train(train_mode)
    correct = 0
    with mg.no_grad():
        for s in range(0, len(y), batch_size):
            logits = model(mg.Tensor(x[s:s + batch_size])).data
            correct += int((logits.argmax(1) == y[s:s + batch_size]).sum())
    model.train(was_training)
    return correct / max(len(y), 1)


@dataclass
class History:
    """What ``train_run`` records: the loss of every step, and at each evaluation step the test accuracy and
    whatever ``probe`` returned."""
    losses: list = field(default_factory=list)
    eval_steps: list = field(default_factory=list)
    test_acc: list = field(default_factory=list)
    probes: list = field(default_factory=list)
    step_seconds: list = field(default_factory=list)
    diverged_at: int | None = None

    @property
    def final_acc(self):
        return self.test_acc[-1] if self.test_acc else float("nan")

    def steps_to(self, target):
        """The first evaluation step with test accuracy >= target, or None."""
        return next((s for s, a in zip(self.eval_steps, self.test_acc) if a >= target), None)

    def ms_per_step(self):
        """Median milliseconds of a training step (forward, backward, update), robust to JIT warm-up."""
        return 1e3 * float(np.median(self.step_seconds)) if self.step_seconds else float("nan")


def eval_schedule(steps, every):
    """Evaluation steps 0, every, 2 every, ..., steps."""
    return sorted(set(range(0, steps + 1, max(every, 1))) | {steps})


# NOTE: set from Config.compile by experiments.run (train_run is called from many experiments without the config)
COMPILE = True


def train_run(model, data, *, steps, lr, seed, eval_steps, momentum=0.0, probe=None, desc="train",
              progress=True, stop_on_divergence=True, batch_size=BATCH_SIZE):
    """Train ``model`` with plain SGD (``momentum`` 0 unless asked) on mini-batches of ``batch_size`` (60 unless
    asked) drawn by a DataLoader seeded with ``seed``, for ``steps`` steps. At every step in ``eval_steps`` (0 is before training) it
    records the test accuracy (eval mode) and ``probe(model)`` when given. The step runs under ``minigrad.compile``
    unless ``COMPILE`` is off (same results, bit for bit).

    A non-finite loss marks the run diverged: it stops there (``stop_on_divergence``) and the remaining
    evaluations record chance accuracy, so that curves keep their length.
    """
    from tqdm.auto import tqdm

    loader = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=batch_size, shuffle=True,
                        drop_last=True, seed=seed)
    opt = SGD(model.parameters(), lr=lr, momentum=momentum)
    todo = sorted(set(eval_steps))
    hist = History()

    def train_step(x, y):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    if COMPILE:
        train_step = mg.compile(train_step)

    def record(step):
        hist.eval_steps.append(step)
        if hist.diverged_at is not None:
            hist.test_acc.append(data.chance)
            hist.probes.append(None)
            return
        hist.test_acc.append(evaluate(model, data.x_test, data.y_test))
        if probe is not None:
            hist.probes.append(probe(model))

    model.train()
    if todo and todo[0] == 0:
        record(0)
    step = 0
    # NOTE: disable=None hides the bar when stderr is not a terminal (a log file, CI).
    bar = tqdm(total=steps, desc=desc, unit="step", leave=False, disable=None if progress else True, mininterval=0.5)
    t_start = time.perf_counter()
    while step < steps and hist.diverged_at is None:
        for x, y in loader:
            t0 = time.perf_counter()
            loss = train_step(x, y)
            hist.step_seconds.append(time.perf_counter() - t0)
            step += 1
            value = loss.item()
            hist.losses.append(value)
            if not math.isfinite(value) and stop_on_divergence:
                hist.diverged_at = step
            if step in todo:
                record(step)
            bar.update(1)
            if step % 100 == 0:
                bar.set_postfix({"loss": f"{value:.3f}", "acc": f"{hist.test_acc[-1]:.3f}" if hist.test_acc else "-",
                                 "samples/s": f"{step * batch_size / (time.perf_counter() - t_start):.0f}"},
                                refresh=False)
            if step >= steps or hist.diverged_at is not None:
                break
    bar.close()
    for s in todo:  # evaluations after a divergence
        if s > step:
            record(s)
    return hist


def seeds_range(cfg, full, quick):
    return list(range(cfg.pick(cfg.seeds, full, quick)))


def mean_std(values):
    a = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    if a.size == 0 or np.all(np.isnan(a)):
        return float("nan"), float("nan")
    return float(np.nanmean(a)), float(np.nanstd(a))


# --------------------------------------------------------------------------------------------------------
# Outputs: JSON, plots, the Markdown report
# --------------------------------------------------------------------------------------------------------

def fmt(value, digits=4):
    """How numbers appear in reports; tests parse them back with ``float``."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if value != 0 and abs(value) < 10 ** -(digits - 1):
            return f"{value:.3e}"  # small differences and gradient norms keep their digits
        return f"{value:.{digits}f}"
    return str(value)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None  # JSON has no NaN; None reads as "no value"
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


class Outputs:
    """Collects the JSON record, the plots and the report of one experiment run in ``cfg.out_dir``."""

    def __init__(self, cfg, backend, config):
        self.cfg = cfg
        self.dir = cfg.out_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.t0 = time.perf_counter()
        self.config = dict(config)
        self.record = {"experiment": cfg.name, "command": cfg.command, "quick": cfg.quick, "data": cfg.data,
                       "config": self.config, "environment": describe_environment(cfg, backend)}
        self.plots = []
        self.table = None

    def figure(self, ncols=1, nrows=1, size=plotting.PANEL):
        """A figure of ``nrows x ncols`` panels of ``size`` inches each (``plotting.figure``)."""
        return plotting.figure(ncols, nrows, size)

    def save_figure(self, fig, name, caption):
        """Write ``fig`` as ``name`` in the output folder; the report shows it with ``caption``."""
        plotting.save(fig, self.dir / name)
        self.plots.append((name, caption))

    def set_table(self, columns, rows):
        """The report's results table; ``rows`` are lists of values, stored in the JSON as written."""
        self.table = {"columns": list(columns), "rows": [list(r) for r in rows]}

    def write(self, title, summary, findings, notes=()):
        """Write ``<name>.json`` and ``report.md``; returns the report's path."""
        seconds = time.perf_counter() - self.t0
        self.record["table"] = self.table
        self.record["wall_seconds"] = seconds
        json_path = self.dir / f"{self.cfg.name}.json"
        json_path.write_text(json.dumps(_jsonable(self.record), indent=1))
        lines = [f"# {title}", "", summary, ""]
        if self.table:
            lines += ["## Results", "", "| " + " | ".join(self.table["columns"]) + " |",
                      "|" + "---|" * len(self.table["columns"])]
            lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in self.table["rows"]]
            lines.append("")
        if findings:
            lines += ["## What it shows", ""] + [f"- {f}" for f in findings] + [""]
        for name, caption in self.plots:
            lines += [f"![{caption}]({name})", "", f"*{caption}*", ""]
        if notes:
            lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
        env = self.record["environment"]
        lines += ["## How it was run", "", "```", self.cfg.command or f"minigrad experiment {self.cfg.name}", "```",
                  "", f"Data: {self.cfg.data}; backend {env['backend']}, {env['threads']} thread(s); "
                  f"wall time {seconds:.0f} s. Every number above is in `{json_path.name}`.", "",
                  "Configuration:", "", "```json", json.dumps(_jsonable(self.config), indent=1), "```", ""]
        report = self.dir / "report.md"
        report.write_text("\n".join(lines))
        return report

