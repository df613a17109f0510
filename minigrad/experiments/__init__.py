"""Experiments on batch normalization, run as ``minigrad experiment NAME``.

``EXPERIMENTS`` maps a name to ``run(cfg) -> Path``, one module per experiment; ``common`` holds the training
loop and the output writing they share. Each run writes PNG plots, a JSON file with every plotted number and a
Markdown report into ``--out`` (default ``runs/NAME``).

    minigrad experiment paper-mnist [--quick] [--out DIR] [--seeds K] [--backend B] [--threads T]
                                    [--data mnist|fashion-mnist|synthetic] [--steps N] [--lr LR] [--init-std S]
    minigrad experiment paper-mnist --replot DIR    # redraw DIR's figures from DIR/paper-mnist.json, no training

``python -m minigrad.experiments NAME ...`` does the same without the ``minigrad`` command.
"""
import math
import sys
import tempfile
from pathlib import Path

import minigrad
from minigrad.app.cli_help import ArgumentParser, HelpFormatter

from . import backends, depth, domain_shift, eval_mode, init_sweep, lr_sweep, paper_mnist, plotting, small_batch
from . import common
from .common import Config

EXPERIMENTS = {
    "paper-mnist": paper_mnist.run,
    "lr-sweep": lr_sweep.run,
    "init-sweep": init_sweep.run,
    "depth": depth.run,
    "eval-mode": eval_mode.run,
    "backends": backends.run,
    "small-batch": small_batch.run,
    "domain-shift": domain_shift.run,
}
# name -> plot(canvas, record): draws the experiment's figures from its JSON record (a fresh run's or a committed one)
PLOTS = {
    "paper-mnist": paper_mnist.plot,
    "lr-sweep": lr_sweep.plot,
    "init-sweep": init_sweep.plot,
    "depth": depth.plot,
    "eval-mode": eval_mode.plot,
    "backends": backends.plot,
    "small-batch": small_batch.plot,
    "domain-shift": domain_shift.plot,
}


def _configure(p):
    p.add_argument("name", choices=sorted(EXPERIMENTS), help="which experiment")
    p.add_argument("--quick", action="store_true", help="a smoke run of about a minute")
    p.add_argument("--out", metavar="DIR", help="output folder (default: runs/NAME)")
    p.add_argument("--seeds", type=int, metavar="K", help="number of seeds (default: the experiment's)")
    p.add_argument("--backend", choices=("numpy", "cython", "numba"), help="kernel backend (default: the active one)")
    p.add_argument("--threads", type=int, default=1, help="kernel and BLAS threads")
    p.add_argument("--data", choices=common.DATASETS, default="mnist",
                   help="dataset (fashion-mnist: the Debian package dataset-fashion-mnist)")
    p.add_argument("--steps", type=int, metavar="N", help="training steps per run (default: the experiment's)")
    p.add_argument("--lr", type=float, help="base learning rate (default: the experiment's)")
    p.add_argument("--init-std", type=float, metavar="S", help="std of the Gaussian init (paper-mnist, lr-sweep; "
                                                               "default: the experiment's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (there are none when stderr is not "
                                                              "a terminal)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("--no-compile", action="store_true", help="run the training steps eagerly, not under "
                   "minigrad.compile (the results are the same, bit for bit)")
    p.add_argument("--replot", metavar="DIR", help="redraw the figures of the run in DIR from DIR/NAME.json "
                   "(and their captions in DIR/report.md); trains nothing")
    p.set_defaults(func=_main_from_args)
    return p


def add_subparser(subparsers):
    """Register ``experiment`` on the ``minigrad`` command's subparsers."""
    return _configure(subparsers.add_parser("experiment", help="run a batch-norm experiment, write plots "
                                            "and a report", description=__doc__,
                                            formatter_class=HelpFormatter))


def _command(args):
    """The command that reproduces this run: the name, then every option that differs from its default."""
    words = ["minigrad", "experiment", args.name]
    for opt, value, default in (("--quick", args.quick, False), ("--out", args.out, None),
                                ("--seeds", args.seeds, None), ("--backend", args.backend, None),
                                ("--threads", args.threads, 1), ("--data", args.data, "mnist"),
                                ("--steps", args.steps, None), ("--lr", args.lr, None),
                                ("--init-std", args.init_std, None), ("--no-compile", getattr(args, "no_compile", False), False)):
        if value != default:
            words += [opt] if value is True else [opt, str(value)]
    return " ".join(words)


def check_args(args):
    """The first mistake in ``args`` as one line, or None; checks the output folder can be written."""
    for flag, value in (("--seeds", args.seeds), ("--threads", args.threads), ("--steps", args.steps)):
        if value is not None and value < 1:
            return f"{flag} must be an integer >= 1, got {value}"
    for flag, value in (("--lr", args.lr), ("--init-std", args.init_std)):
        if value is not None and not (math.isfinite(value) and value > 0):
            return f"{flag} must be a finite number > 0, got {value}"
    if args.backend is not None and args.backend not in minigrad.available_backends():
        return f"--backend {args.backend} is not available here; choose from {', '.join(minigrad.available_backends())}"
    out = Path(args.out or f"runs/{args.name}")
    if out.exists() and not out.is_dir():
        return f"--out {out}: is a file, not a directory"
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".minigrad-write-test-"):
            pass
    except OSError as e:
        return f"--out {out}: cannot write there ({e.strerror or e})"
    return None


def _main_from_args(args):
    if args.replot is not None:
        for path in replot(args.name, args.replot):
            print(f"wrote {path}")
        return 0
    mistake = check_args(args)
    if mistake:
        print(f"minigrad experiment: error: {mistake}", file=sys.stderr)
        return 2
    cfg = Config(name=args.name, quick=args.quick, out=args.out, seeds=args.seeds, backend=args.backend,
                 threads=args.threads, data=args.data, steps=args.steps, lr=args.lr, init_std=args.init_std,
                 progress=not (args.no_progress or args.quiet), command=_command(args),
                 compile=not getattr(args, "no_compile", False))
    report = run(cfg)
    if report is not None:  # None: the experiment skipped itself and said why
        print(f"report: {report}")
    return 0


def run(cfg):
    """Run experiment ``cfg.name``; returns the report's path."""
    if cfg.name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {cfg.name!r}; choose from {sorted(EXPERIMENTS)}")
    common.COMPILE = cfg.compile
    return EXPERIMENTS[cfg.name](cfg)


def replot(name: str, directory: str | Path) -> list[Path]:
    """Redraw experiment ``name``'s figures in ``directory`` from ``directory/<name>.json`` (as written by a run
    with ``--out directory``) and update their captions in ``directory/report.md``; returns the PNGs' paths.
    Trains nothing: a change to a figure's look is checked against the committed numbers."""
    if name not in PLOTS:
        raise ValueError(f"unknown experiment {name!r}; choose from {sorted(PLOTS)}")
    return plotting.replot(name, directory, PLOTS[name])


def main(argv=None):
    parser = _configure(ArgumentParser(prog="minigrad experiment", description=__doc__,
                                                formatter_class=HelpFormatter))
    return _main_from_args(parser.parse_args(argv))
