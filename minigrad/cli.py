"""The ``minigrad`` command line: one subcommand per entry of ``SUBCOMMANDS``.

To add a subcommand, write ``def _add_<name>(subparsers)`` that creates its parser and sets ``func`` (a callable
taking the parsed args and returning an exit status), then add it to ``SUBCOMMANDS``. The command line sits on
top of every layer: it imports the application (``minigrad.app``) and the experiments directly (all light: numpy
and the standard library; matplotlib is imported only when a figure is drawn).

Exit status: 0 done, 1 failed (e.g. training diverged), 2 a usage mistake (one line on stderr, found before any
work starts), 128 + N stopped by signal N (130 for Ctrl-C, 143 for SIGTERM).
"""
import argparse
import os
import shlex
import shutil
import sys

from minigrad import __version__, experiments
from minigrad.allocator import tune_allocator
from minigrad.app import bench_report
from minigrad.app.cli_help import ArgumentParser, HelpFormatter
from minigrad.app.models import MODELS
from minigrad.app.train import ConfigError, Diverged, Interrupted, train


def _add_train(subparsers):
    p = subparsers.add_parser(
        "train", help="train a model, with per-epoch eval, metrics and checkpoints", formatter_class=HelpFormatter,
        description="Train a model from minigrad.app.models on an image dataset.\n\n"
                    "Every option is checked before any work starts. The training set is shuffled each epoch; a\n"
                    "last batch of exactly one sample is dropped (batch norm cannot train on one sample).\n"
                    "Ctrl-C (or SIGTERM) finishes the current step, writes a checkpoint of it (into\n"
                    "--checkpoint-dir, else a new minigrad-interrupted-* directory), prints the command that\n"
                    "resumes it, and exits 130 (143); --resume continues bit for bit. A second Ctrl-C stops at\n"
                    "once without a checkpoint. A NaN or infinite loss stops the run (exit 1) unless --allow-nan.\n\n"
                    "Data parallel over MPI: `mpiexec -n 2 minigrad train ...` runs one rank per process, each on its\n"
                    "own shard of every epoch with --batch-size samples per step (the global batch is ranks x\n"
                    "--batch-size), gradients averaged over ranks; rank 0 alone prints, evaluates and writes the\n"
                    "metrics and checkpoints. --resume needs as many ranks as the checkpoint's run had. A failure\n"
                    "on one rank ends every rank (MPI_Abort).")
    p.add_argument("--model", default="lenet-bn", choices=sorted(MODELS), help="network (see minigrad.app.models)")
    p.add_argument("--dataset", default="mnist", choices=("mnist", "fashion-mnist", "synthetic"),
                   help="image dataset (synthetic: generated offline, for smoke runs)")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="read the dataset's IDX files (train-images-idx3-ubyte[.gz], ...) from DIR instead of "
                        "the MNIST cache or the Debian Fashion-MNIST package")
    p.add_argument("--epochs", type=int, default=3, help="epochs in all (the schedule spans them)")
    p.add_argument("--batch-size", type=int, default=64,
                   help="training batch size (a last batch of exactly one sample is dropped)")
    p.add_argument("--optimizer", default="sgd", choices=("sgd", "adam", "adamw"), help="optimizer")
    p.add_argument("--lr", type=float, default=0.05, help="learning rate (the peak lr with --scheduler onecycle)")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    p.add_argument("--weight-decay", type=float, default=0.0,
                   help="weight decay (L2 for sgd/adam, decoupled for adamw)")
    p.add_argument("--scheduler", default="none", choices=("none", "onecycle", "cosine", "step"),
                   help="lr schedule, stepped per batch")
    p.add_argument("--backend", default=None, choices=("numpy", "cython", "numba"),
                   help="kernel backend (default: the fastest available)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for the kernels and BLAS (default: all cores; under MPI, the cores over the ranks "
                        "on this machine)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initialization, dropout and shuffling")
    p.add_argument("--checkpoint-dir", default=None, metavar="DIR",
                   help="write epoch-NNN.safetensors here after each epoch")
    p.add_argument("--checkpoint-every", type=int, default=None, metavar="N",
                   help="also write a mid-epoch checkpoint every N steps (needs --checkpoint-dir)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the newest usable checkpoint in --checkpoint-dir (a damaged one is skipped)")
    p.add_argument("--metrics", default=None, metavar="FILE", help="append one JSON line per epoch to this file")
    p.add_argument("--limit-train", type=int, default=None, metavar="N", help="use only the first N training items")
    p.add_argument("--limit-test", type=int, default=None, metavar="N", help="use only the first N test items")
    p.add_argument("--stop-after", type=int, default=None, metavar="N",
                   help="stop after N epochs of this run, as if interrupted (for testing --resume)")
    p.add_argument("--allow-nan", action="store_true", help="keep training through a NaN or infinite loss")
    p.add_argument("--sync-bn", action="store_true",
                   help="batch statistics over every rank's batch (SyncBatchNorm); plain batch norm in one process")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (there is none when stderr is not "
                                                              "a terminal)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no per-epoch lines")
    p.set_defaults(func=_run_train, _actions=p._actions)


def _prog():
    """How this process was started: ``minigrad``, or ``python -m minigrad``."""
    if os.path.basename(sys.argv[0]) != "__main__.py":
        return "minigrad"
    python = shutil.which("python")
    same = python and os.path.realpath(python) == os.path.realpath(sys.executable)
    return f"{'python' if same else shlex.quote(sys.executable)} -m minigrad"


def command_line(args, command, **override):
    """The command that runs ``args`` again with ``override``: every option that differs from its default."""
    words = [command]
    for action in args._actions:
        if not action.option_strings or action.dest in ("help", "version"):
            continue
        value = override.get(action.dest, getattr(args, action.dest))
        if value is None or value == action.default:
            continue
        flag = max(action.option_strings, key=len)
        words += [flag] if isinstance(action, argparse._StoreTrueAction) else [flag, str(value)]
    return f"{_prog()} " + shlex.join(words)


def _run_train(args):
    from minigrad import distributed
    # NOTE: mpi4py is imported (by world_size) only in a process that an MPI launcher started
    size = distributed.world_size() if distributed.launched() else 1
    if size == 1:
        return _train(args, size)
    # Under MPI a rank that stops alone would leave the others waiting in a collective: the exits that every rank
    # takes together (a bad option, a divergence, an agreed stop signal: see minigrad.app.train) return; anything
    # else (an unexpected exception, a second Ctrl-C) ends the whole job with MPI_Abort.
    try:
        return _train(args, size)
    except BaseException as e:  # noqa: B036 (every rank must go down together)
        status = 128 + e.signum if isinstance(e, Interrupted) else 130 if isinstance(e, KeyboardInterrupt) else 1
        if not isinstance(e, KeyboardInterrupt):
            import traceback
            traceback.print_exc()
        print(f"minigrad train: rank {distributed.rank()} of {size} failed ({type(e).__name__}): aborting the job",
              file=sys.stderr)
        distributed._abort(status)


def _train(args, size):
    from minigrad import distributed
    lead = size == 1 or distributed.rank() == 0

    def resume_command(directory):
        line = command_line(args, "train", checkpoint_dir=str(directory), resume=True, stop_after=None)
        return f"mpiexec -n {size} {line}" if size > 1 else line

    quiet = args.quiet
    try:
        result = train(model=args.model, dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size,
                       optimizer=args.optimizer, lr=args.lr, momentum=args.momentum,
                       weight_decay=args.weight_decay, scheduler=args.scheduler, backend=args.backend,
                       threads=args.threads, seed=args.seed, checkpoint_dir=args.checkpoint_dir, resume=args.resume,
                       metrics=args.metrics, limit_train=args.limit_train, limit_test=args.limit_test,
                       progress=not (args.no_progress or quiet), stop_after=args.stop_after,
                       log=(lambda s: None) if quiet else None, data_dir=args.data_dir,
                       checkpoint_every=args.checkpoint_every, allow_nan=args.allow_nan,
                       resume_command=resume_command, sync_bn=args.sync_bn)
    except ConfigError as e:  # NOTE: under MPI, the same error on every rank (see minigrad.app.train)
        if lead:
            print(f"minigrad train: error: {e}", file=sys.stderr)
        return 2
    except Diverged as e:
        if lead:
            print(f"minigrad train: {e}", file=sys.stderr)
        return 1
    except Interrupted as e:
        print("minigrad train: interrupted again: the step was abandoned, no checkpoint written", file=sys.stderr)
        if size > 1:
            raise
        return 128 + e.signum
    return 128 + result["interrupted"] if result["interrupted"] else 0


# name -> function adding the subcommand's parser to the subparsers object
SUBCOMMANDS = {
    "train": _add_train,
    "bench": bench_report.add_subparser,
    "experiment": experiments.add_subparser,
}


def build_parser():
    parser = ArgumentParser(prog="minigrad", description="minigrad: a small CPU tensor autograd engine")
    parser.add_argument("--version", action="version", version=f"minigrad {__version__}")
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
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:  # before or after the training loop's own handling (e.g. loading data)
        print(f"minigrad {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
