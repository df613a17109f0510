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
    p.add_argument("--no-compile", action="store_true", help="run each training step eagerly, not under "
                   "minigrad.compile (the results are the same, bit for bit)")
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
                       resume_command=resume_command, sync_bn=args.sync_bn, compile_step=not args.no_compile)
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


def _add_export(subparsers):
    p = subparsers.add_parser(
        "export", help="export a model checkpoint to ONNX", formatter_class=HelpFormatter,
        description="Write a checkpoint of a model-zoo model (from `minigrad train --checkpoint-dir`) as an ONNX\n"
                    "file (minigrad.onnx.export, eval mode, for (N, C, 28, 28) input; needs\n"
                    "pip install minigrad[onnx]). The file is checked with onnx.checker and against the model in\n"
                    "onnxruntime before it is written.")
    p.add_argument("--checkpoint", required=True, metavar="FILE", help="a checkpoint written by minigrad train")
    p.add_argument("--out", required=True, metavar="FILE", help="the ONNX file to write (e.g. model.onnx)")
    p.add_argument("--model", default=None, choices=sorted(MODELS),
                   help="the network (default: the one recorded in the checkpoint)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset, 17 to 21")
    p.add_argument("--no-fold", action="store_true", help="keep batch norms as BatchNormalization nodes "
                                                          "instead of folding them into the conv/linear before")
    p.add_argument("--static-batch", action="store_true", help="a fixed batch size of 1 instead of a symbolic one")
    p.set_defaults(func=_run_export)


def _run_export(args):
    from minigrad import onnx as mg_onnx
    from minigrad.app.checkpoint import load_checkpoint

    def fail(msg, status=2):
        print(f"minigrad export: error: {msg}", file=sys.stderr)
        return status

    if not os.path.isfile(args.checkpoint):
        return fail(f"--checkpoint {args.checkpoint}: no such file")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if os.path.isdir(args.out) or not os.path.isdir(out_dir):
        return fail(f"--out {args.out}: " + ("is a directory" if os.path.isdir(args.out)
                                             else f"the directory {out_dir} does not exist"))
    if not mg_onnx.MIN_OPSET <= args.opset <= mg_onnx.MAX_OPSET:
        return fail(f"--opset must be in [{mg_onnx.MIN_OPSET}, {mg_onnx.MAX_OPSET}], got {args.opset}")
    try:
        state, _, extra = load_checkpoint(args.checkpoint)
    except (ValueError, OSError) as e:
        return fail(str(e))
    name = args.model or (extra or {}).get("model")
    if name not in MODELS:
        return fail(f"--checkpoint {args.checkpoint} does not say which model it holds: pass --model")
    import numpy as np

    from minigrad.app.models import build_model
    from minigrad.tensor import Tensor

    # in_channels, num_classes and dtype from the saved weights: the first and last weight of a model built for 1
    # input channel scale with them (a conv's C, or an MLP's C*28*28 inputs)
    probe = build_model(name)
    weights = [k for k in probe.state_dict() if k.endswith("weight")]
    if not {weights[0], weights[-1]} <= set(state):
        return fail(f"--checkpoint {args.checkpoint} does not hold a {name} model (no {weights[0]!r}); check --model")
    first, last = np.asarray(state[weights[0]]), np.asarray(state[weights[-1]])
    in_channels = first.shape[1] // probe.state_dict()[weights[0]].shape[1]
    model = build_model(name, in_channels=in_channels, num_classes=last.shape[0], dtype=first.dtype)
    try:
        model.load_state_dict(state)
    except (KeyError, ValueError) as e:
        return fail(f"--checkpoint {args.checkpoint} does not fit {name}: {e}")
    fold = "batch norm folded" if not args.no_fold else "batch norm kept"
    print(f"minigrad export: {args.checkpoint} ({name}, {in_channels} input channel(s), {first.dtype}) -> {args.out} "
          f"(opset {args.opset}, {fold})", flush=True)
    x = Tensor(np.random.default_rng(0).standard_normal((1 if args.static_batch else 2, in_channels, 28, 28))
               .astype(first.dtype))
    try:
        proto = mg_onnx.export(model, x, args.out, opset=args.opset, fold_batch_norm=not args.no_fold,
                               dynamic_batch=not args.static_batch)
    except (ImportError, mg_onnx.ExportError) as e:
        return fail(str(e), 1)
    print(f"minigrad export: wrote {args.out} ({len(proto.graph.node)} nodes, {os.path.getsize(args.out)} bytes; "
          f"checked with onnx.checker and onnxruntime)")
    return 0


# name -> function adding the subcommand's parser to the subparsers object
SUBCOMMANDS = {
    "train": _add_train,
    "bench": bench_report.add_subparser,
    "experiment": experiments.add_subparser,
    "export": _add_export,
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
    # NOTE: GOMP_SPINCOUNT=1000 (unless a policy is set) and NumPy's BLAS at 1 thread come with the library itself
    # (minigrad/kernels/threads.py): a 2-thread LeNet epoch took 5x as long as a 1-thread one without them
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
