"""Experiments on batch normalization, run as ``minigrad experiment NAME``.

``EXPERIMENTS`` maps a name to ``run(cfg) -> Path``, one module per experiment; ``common`` holds the training
loop and the output writing they share. Each run writes PNG plots, a JSON file with every plotted number and a
Markdown report into ``--out`` (default ``runs/NAME``).

    minigrad experiment paper-mnist [--quick] [--out DIR] [--seeds K] [--backend B] [--threads T]
                                    [--data mnist|synthetic] [--steps N] [--lr LR] [--init-std S]

``python -m minigrad.experiments NAME ...`` does the same without the ``minigrad`` command.
"""
import argparse

from . import backends, depth, eval_mode, init_sweep, lr_sweep, paper_mnist
from .common import Config

EXPERIMENTS = {
    "paper-mnist": paper_mnist.run,
    "lr-sweep": lr_sweep.run,
    "init-sweep": init_sweep.run,
    "depth": depth.run,
    "eval-mode": eval_mode.run,
    "backends": backends.run,
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


def main(argv=None):
    parser = _configure(argparse.ArgumentParser(prog="minigrad experiment"))
    return _main_from_args(parser.parse_args(argv))
