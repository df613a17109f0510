"""The ``minigrad`` command line: one subcommand per entry of ``SUBCOMMANDS``.

To add a subcommand, write ``def _add_<name>(subparsers)`` that creates its parser and sets ``func`` (a callable
taking the parsed args and returning an exit status), then add it to ``SUBCOMMANDS``. The command line sits on
top of every layer: it imports the application (``minigrad.app``) and the experiments directly (all light: numpy
and the standard library; matplotlib is imported only when a figure is drawn).
"""
import argparse
import os
import sys

from minigrad import experiments
from minigrad.allocator import tune_allocator
from minigrad.app import bench_report
from minigrad.app.models import MODELS
from minigrad.app.train import train


def _add_train(subparsers):
    p = subparsers.add_parser("train", help="train a model, with per-epoch eval, metrics and checkpoints",
                              description="Train a model from minigrad.app.models on an image dataset.")
    p.add_argument("--model", default="lenet-bn", choices=sorted(MODELS))
    p.add_argument("--dataset", default="mnist", choices=("mnist", "fashion-mnist", "synthetic"))
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--optimizer", default="sgd", choices=("sgd", "adam", "adamw"))
    p.add_argument("--lr", type=float, default=0.05, help="learning rate (the peak lr with --scheduler onecycle)")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--scheduler", default="none", choices=("none", "onecycle", "cosine", "step"),
                   help="lr schedule, stepped per batch")
    p.add_argument("--backend", default=None, choices=("numpy", "cython", "numba"),
                   help="kernel backend (default: the fastest available)")
    p.add_argument("--threads", type=int, default=None, help="threads for the kernels and BLAS")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-dir", default=None, help="write epoch-NNN.safetensors here after each epoch")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --checkpoint-dir")
    p.add_argument("--metrics", default=None, help="append one JSON line per epoch to this file")
    p.add_argument("--limit-train", type=int, default=None, help="use only the first N training items")
    p.add_argument("--limit-test", type=int, default=None, help="use only the first N test items")
    p.add_argument("--stop-after", type=int, default=None,
                   help="stop after N epochs of this run, as if interrupted (for testing --resume)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_train)


def _run_train(args):
    if args.resume and not args.checkpoint_dir:
        print("minigrad train: --resume needs --checkpoint-dir", file=sys.stderr)
        return 2
    train(model=args.model, dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size,
          optimizer=args.optimizer, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
          scheduler=args.scheduler, backend=args.backend, threads=args.threads, seed=args.seed,
          checkpoint_dir=args.checkpoint_dir, resume=args.resume, metrics=args.metrics,
          limit_train=args.limit_train, limit_test=args.limit_test, progress=not args.no_progress,
          stop_after=args.stop_after)
    return 0


# name -> function adding the subcommand's parser to the subparsers object
SUBCOMMANDS = {
    "train": _add_train,
    "bench": bench_report.add_subparser,
    "experiment": experiments.add_subparser,
}


def build_parser():
    parser = argparse.ArgumentParser(prog="minigrad", description="minigrad: a small CPU tensor autograd engine")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS.values():
        add(subparsers)
    return parser


def main(argv=None):
    """Entry point of the ``minigrad`` console script and ``python -m minigrad``; returns the exit status."""
    # NOTE: OpenMP threads that spin while idle compete with BLAS's threads for the same cores: a 2-thread LeNet
    # epoch took 5x as long as a 1-thread one. Passive waiting takes effect only if no OpenMP runtime is loaded
    # yet, as in a fresh command; an explicit OMP_WAIT_POLICY wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    parser = build_parser()
    args = parser.parse_args(argv)
    tune_allocator()  # NOTE: keeps per-step activations on the heap (see minigrad/allocator.py)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
