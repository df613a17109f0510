"""Experiments on batch normalization, run as ``minigrad experiment NAME``.

``EXPERIMENTS`` maps a name to ``run(cfg) -> Path``, one module per experiment; ``common`` holds the training
loop and the output writing they share. Each run writes PNG plots, a JSON file with every plotted number and a
Markdown report into ``--out`` (default ``runs/NAME``).

    minigrad experiment paper-mnist [--quick] [--out DIR] [--seeds K] [--backend B] [--threads T]
                                    [--data mnist|synthetic] [--steps N] [--lr LR] [--init-std S]
    minigrad experiment paper-mnist --replot DIR    # redraw DIR's figures from DIR/paper-mnist.json, no training

``python -m minigrad.experiments NAME ...`` does the same without the ``minigrad`` command.
"""
import argparse
from pathlib import Path

from . import backends, depth, eval_mode, init_sweep, lr_sweep, paper_mnist, plotting
from .common import Config

EXPERIMENTS = {
    "paper-mnist": paper_mnist.run,
    "lr-sweep": lr_sweep.run,
    "init-sweep": init_sweep.run,
    "depth": depth.run,
    "eval-mode": eval_mode.run,
    "backends": backends.run,
}
# name -> plot(canvas, record): draws the experiment's figures from its JSON record (a fresh run's or a committed one)
PLOTS = {
    "paper-mnist": paper_mnist.plot,
    "lr-sweep": lr_sweep.plot,
    "init-sweep": init_sweep.plot,
    "depth": depth.plot,
    "eval-mode": eval_mode.plot,
    "backends": backends.plot,
}


def _configure(p):
    p.add_argument("name", choices=sorted(EXPERIMENTS), help="which experiment")
    p.add_argument("--quick", action="store_true", help="a smoke run of about a minute")
    p.add_argument("--out", help="output folder (default runs/NAME)")
    p.add_argument("--seeds", type=int, help="number of seeds (default: the experiment's)")
    p.add_argument("--backend", help="kernel backend (default: the active one)")
    p.add_argument("--threads", type=int, default=1, help="kernel and BLAS threads (default 1)")
    p.add_argument("--data", choices=["mnist", "synthetic"], default="mnist")
    p.add_argument("--steps", type=int, help="training steps per run (default: the experiment's)")
    p.add_argument("--lr", type=float, help="base learning rate (default: the experiment's)")
    p.add_argument("--init-std", type=float, help="std of the Gaussian init (paper-mnist, lr-sweep)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--replot", metavar="DIR", help="redraw the figures of the run in DIR from DIR/NAME.json "
                   "(and their captions in DIR/report.md); trains nothing")
    p.set_defaults(func=_main_from_args)
    return p


def add_subparser(subparsers):
    """Register ``experiment`` on the ``minigrad`` command's subparsers."""
    return _configure(subparsers.add_parser("experiment", help="run a batch-norm experiment, write plots "
                                            "and a report", description=__doc__,
                                            formatter_class=argparse.RawDescriptionHelpFormatter))


def _command(args):
    """The command that reproduces this run: the name, then every option that differs from its default."""
    words = ["minigrad", "experiment", args.name]
    for opt, value, default in (("--quick", args.quick, False), ("--out", args.out, None),
                                ("--seeds", args.seeds, None), ("--backend", args.backend, None),
                                ("--threads", args.threads, 1), ("--data", args.data, "mnist"),
                                ("--steps", args.steps, None), ("--lr", args.lr, None),
                                ("--init-std", args.init_std, None)):
        if value != default:
            words += [opt] if value is True else [opt, str(value)]
    return " ".join(words)


def _main_from_args(args):
    if args.replot is not None:
        for path in replot(args.name, args.replot):
            print(f"wrote {path}")
        return 0
    cfg = Config(name=args.name, quick=args.quick, out=args.out, seeds=args.seeds, backend=args.backend,
                 threads=args.threads, data=args.data, steps=args.steps, lr=args.lr, init_std=args.init_std,
                 progress=not args.no_progress, command=_command(args))
    if cfg.seeds is not None and cfg.seeds < 1:
        raise SystemExit("--seeds must be >= 1")
    report = run(cfg)
    print(f"report: {report}")
    return 0


def run(cfg):
    """Run experiment ``cfg.name``; returns the report's path."""
    if cfg.name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {cfg.name!r}; choose from {sorted(EXPERIMENTS)}")
    return EXPERIMENTS[cfg.name](cfg)


def replot(name: str, directory: str | Path) -> list[Path]:
    """Redraw experiment ``name``'s figures in ``directory`` from ``directory/<name>.json`` (as written by a run
    with ``--out directory``) and update their captions in ``directory/report.md``; returns the PNGs' paths.
    Trains nothing: a change to a figure's look is checked against the committed numbers."""
    if name not in PLOTS:
        raise ValueError(f"unknown experiment {name!r}; choose from {sorted(PLOTS)}")
    return plotting.replot(name, directory, PLOTS[name])


def main(argv=None):
    parser = _configure(argparse.ArgumentParser(prog="minigrad experiment"))
    return _main_from_args(parser.parse_args(argv))
