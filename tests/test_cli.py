"""The ``minigrad`` command line meets mistakes before any work (one line on stderr, exit status 2), stops a
diverging run, resumes past damaged checkpoints without duplicating metrics, and shows its defaults and version."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minigrad
from minigrad.app import bench_report
from minigrad.app.train import latest_checkpoint, list_checkpoints, make_loader
from minigrad.checkpoint import load_checkpoint, save_checkpoint
from minigrad.cli import build_parser, main
from minigrad.data import TensorDataset

ROOT = Path(__file__).resolve().parents[1]
TINY = ["train", "--dataset", "synthetic", "--limit-train", "192", "--limit-test", "64", "--batch-size", "32",
        "--no-progress", "--seed", "3", "--threads", "1", "--model", "mlp-bn"]


def run(capsys, argv):
    """(exit status, stdout, stderr) of ``minigrad argv`` run in this process."""
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse's own errors, --version, --help
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def strip(lines):
    """Metrics lines without their timings (which differ from run to run)."""
    drop = ("epoch_seconds", "samples_per_s")
    return [{k: v for k, v in json.loads(s).items() if k not in drop} for s in lines]


# --------------------------------------------------------------------------------------------------------
# Mistakes: one line, exit status 2, nothing trained or written
# --------------------------------------------------------------------------------------------------------

def _mistakes(tmp):
    afile = tmp / "a-file"
    afile.write_text("x")
    (tmp / "empty").mkdir()
    return {
        "epochs 0": (["--epochs", "0"], "--epochs must be an integer >= 1, got 0"),
        "epochs -1": (["--epochs", "-1"], "--epochs must be an integer >= 1, got -1"),
        "epochs not a number": (["--epochs", "x"], "argument --epochs: invalid int value: 'x'"),
        "threads 0": (["--threads", "0"], "--threads must be an integer >= 1, got 0"),
        "limit-train 0": (["--limit-train", "0"], "--limit-train must be an integer >= 1, got 0"),
        "limit-train 1": (["--limit-train", "1"], "--limit-train 1: a batch of one sample is dropped"),
        "limit-test 0": (["--limit-test", "0"], "--limit-test must be an integer >= 1, got 0"),
        "negative lr": (["--lr", "-0.1"], "--lr must be a finite number > 0, got -0.1"),
        "nan lr": (["--lr", "nan"], "--lr must be a finite number > 0, got nan"),
        "negative momentum": (["--momentum", "-1"], "--momentum must be a finite number >= 0"),
        "batch-size 0": (["--batch-size", "0"], "--batch-size must be an integer >= 1, got 0"),
        "batch-size 1 with batch norm": (["--batch-size", "1"], "--batch-size 1: mlp-bn has batch norm"),
        "negative seed": (["--seed", "-1"], "--seed must be an integer >= 0, got -1"),
        "unknown model": (["--model", "nope"], "argument --model: invalid choice: 'nope'"),
        "checkpoint-every 0": (["--checkpoint-every", "0", "--checkpoint-dir", str(tmp / "c")],
                               "--checkpoint-every must be an integer >= 1, got 0"),
        "checkpoint-every without a directory": (["--checkpoint-every", "5"],
                                                 "--checkpoint-every needs --checkpoint-dir"),
        "resume without a directory": (["--resume"], "--resume needs --checkpoint-dir"),
        "resume, mistyped directory": (["--resume", "--checkpoint-dir", str(tmp / "chekpoints")],
                                       f"--resume: checkpoint directory {tmp / 'chekpoints'} does not exist"),
        "resume, no checkpoint": (["--resume", "--checkpoint-dir", str(tmp / "empty")],
                                  f"--resume: no checkpoint (epoch-NNN.safetensors) in {tmp / 'empty'}"),
        "metrics under a file": (["--metrics", str(afile / "m.jsonl")], f"{afile} is a file, not a directory"),
        "metrics is a directory": (["--metrics", str(tmp)], f"--metrics {tmp}: is a directory, not a file"),
        "checkpoint-dir is a file": (["--checkpoint-dir", str(afile)], f"{afile} is a file, not a directory"),
        "data-dir missing": (["--dataset", "mnist", "--data-dir", str(tmp / "nope")],
                             f"--data-dir {tmp / 'nope'}: no such directory"),
        "data-dir without the files": (["--dataset", "mnist", "--data-dir", str(tmp / "empty")],
                                       "cannot load the mnist dataset"),
        "data-dir with synthetic": (["--data-dir", str(tmp)], "--data-dir is for --dataset mnist or fashion-mnist"),
        "fashion-mnist missing": (["--dataset", "fashion-mnist"], "Fashion-MNIST not found in"),
    }


MISTAKES = ["epochs 0", "epochs -1", "epochs not a number", "threads 0", "limit-train 0", "limit-train 1",
            "limit-test 0", "negative lr", "nan lr", "negative momentum", "batch-size 0",
            "batch-size 1 with batch norm", "negative seed", "unknown model", "checkpoint-every 0",
            "checkpoint-every without a directory", "resume without a directory", "resume, mistyped directory", "resume, no checkpoint",
            "metrics under a file", "metrics is a directory", "checkpoint-dir is a file", "data-dir missing",
            "data-dir without the files", "data-dir with synthetic", "fashion-mnist missing"]


@pytest.fixture
def mistakes(tmp_path, monkeypatch):
    monkeypatch.setattr("minigrad.data.mnist.FASHION_MNIST_DIR", str(tmp_path / "no-fashion-mnist"))
    return _mistakes(tmp_path)


@pytest.mark.parametrize("name", MISTAKES)
def test_mistake_is_one_line_and_exit_2(capsys, tmp_path, mistakes, name):
    args, message = mistakes[name]
    out_dir = tmp_path / "out"
    argv = TINY + args
    if "--checkpoint-dir" not in args and "--resume" not in args and "--checkpoint-every" not in args:
        argv += ["--checkpoint-dir", str(out_dir)]
    rc, out, err = run(capsys, argv)
    assert rc == 2, (rc, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("minigrad train: error: "), err
    assert message in lines[0], lines[0]
    assert "Traceback" not in err and out == ""
    assert not list(out_dir.glob("*.safetensors"))  # refused before any training


def test_every_mistake_is_listed(tmp_path):
    assert sorted(_mistakes(tmp_path)) == sorted(MISTAKES)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's read-only /proc")
def test_unwritable_metrics_directory_is_refused_before_training(capsys, tmp_path):
    rc, _, err = run(capsys, TINY + ["--metrics", "/proc/metrics.jsonl", "--checkpoint-dir", str(tmp_path / "c")])
    assert rc == 2 and err.count("\n") == 1
    assert "--metrics /proc/metrics.jsonl: cannot write to the directory /proc" in err
    assert "training" not in err and not list((tmp_path / "c").glob("*.safetensors"))


def test_mistakes_in_a_fresh_process_have_no_traceback(tmp_path):
    for args in (["--epochs", "0"], ["--resume", "--checkpoint-dir", str(tmp_path / "typo")], ["--lr", "x"]):
        p = subprocess.run([sys.executable, "-m", "minigrad", *TINY, *args], capture_output=True, text=True,
                           cwd=ROOT, timeout=120)
        assert p.returncode == 2 and p.stderr.count("\n") == 1 and "Traceback" not in p.stderr, p.stderr


def test_experiment_mistakes_are_one_line(capsys, tmp_path):
    for args, message in ((["--seeds", "0"], "--seeds must be an integer >= 1, got 0"),
                          (["--threads", "0"], "--threads must be an integer >= 1, got 0"),
                          (["--steps", "-5"], "--steps must be an integer >= 1, got -5"),
                          (["--lr", "-1"], "--lr must be a finite number > 0"),
                          (["--out", str(Path(__file__))], "is a file, not a directory")):
        rc, _, err = run(capsys, ["experiment", "depth", "--quick", "--data", "synthetic", *args])
        assert rc == 2 and err.count("\n") == 1 and message in err, err


# --------------------------------------------------------------------------------------------------------
# --version, help, bench
# --------------------------------------------------------------------------------------------------------

def test_version(capsys):
    rc, out, _ = run(capsys, ["--version"])
    assert rc == 0 and out.strip() == f"minigrad {minigrad.__version__}"


def test_every_subcommand_help_shows_its_defaults():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.choices and "train" in a.choices).choices
    assert set(subparsers) == {"train", "bench", "experiment", "export"}
    for name, sub in subparsers.items():
        text = " ".join(sub.format_help().split())
        for action in sub._actions:
            if not action.option_strings or action.default in (None, False, "", "==SUPPRESS=="):
                continue
            assert f"(default: {action.default})" in text, (name, action.dest)
        assert " ".join("training batch size (a last batch of exactly one sample is dropped)".split()) in text \
            or name != "train"


def test_bench_without_arguments_shows_the_committed_results(capsys, monkeypatch):
    monkeypatch.setattr(bench_report, "DEFAULT_JSON", os.path.join(".benchmarks", "no-such-run.json"))
    rc, out, err = run(capsys, ["bench"])
    assert rc == 0, err
    first, *rest = out.splitlines()
    assert first.startswith("# docs/benchmarks.json, measured at commit ")
    assert any(line.startswith("BatchNorm2d") for line in rest)


def test_bench_with_a_bad_json_is_one_line(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for argv in (["bench", "--json", str(bad)], ["bench", "--json", str(tmp_path / "missing.json")]):
        rc, _, err = run(capsys, argv)
        assert rc == 2 and err.count("\n") == 1 and err.startswith("minigrad bench: error: "), err


# --------------------------------------------------------------------------------------------------------
# Training behaviour
# --------------------------------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow in matmul on the way to NaN
def test_divergence_stops_with_the_step_and_a_hint(capsys, tmp_path):
    args = TINY + ["--model", "lenet", "--lr", "1e4", "--epochs", "2", "--checkpoint-dir", str(tmp_path / "c")]
    rc, _, err = run(capsys, args)
    assert rc == 1
    line = next(s for s in err.splitlines() if s.startswith("minigrad train: "))
    assert "the loss is nan at step 3 (epoch 1, batch 3)" in line
    assert "try a lower learning rate than --lr 10000" in line and "--allow-nan" in line
    assert not list((tmp_path / "c").glob("*.safetensors"))
    rc, _, err = run(capsys, args + ["--allow-nan"])
    assert rc == 0 and "train loss nan" in err


def test_last_batch_of_one_is_dropped(capsys):
    for n, batches in ((193, 6), (194, 7), (192, 6), (2, 1)):
        loader = make_loader(TensorDataset(np.zeros((n, 1), np.float32)), 32 if n > 2 else 1, seed=0)
        assert len(loader) == (batches if n > 2 else 2)
        assert all(len(x) > 1 or loader.batch_size == 1 for (x,) in loader)
    # 193 = 6 x 32 + 1: a batch-norm model trains where the batch of one used to stop it
    rc, _, err = run(capsys, TINY + ["--limit-train", "193", "--epochs", "1", "--model", "lenet-bn"])
    assert rc == 0, err
    assert "192 items" not in err and "193 items, 6 batches of 32" in err


def _full_and_resumed(capsys, tmp_path, extra=()):
    args = TINY + ["--epochs", "2", *extra]
    full, part = tmp_path / "full", tmp_path / "part"
    assert run(capsys, args + ["--checkpoint-dir", str(full), "--metrics", str(full / "m.jsonl")])[0] == 0
    assert run(capsys, args + ["--checkpoint-dir", str(part), "--metrics", str(part / "m.jsonl")])[0] == 0
    return args, full, part


def _same_final_state(a_dir, b_dir):
    a, oa, ea = load_checkpoint(a_dir / "epoch-002.safetensors")
    b, ob, eb = load_checkpoint(b_dir / "epoch-002.safetensors")
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert oa["param_groups"] == ob["param_groups"] and ea["rng_state"] == eb["rng_state"]
    assert strip((a_dir / "m.jsonl").read_text().splitlines()) == strip((b_dir / "m.jsonl").read_text().splitlines())


def test_resume_falls_back_past_a_damaged_checkpoint_without_duplicate_metrics(capsys, tmp_path):
    args, full, part = _full_and_resumed(capsys, tmp_path)
    newest = part / "epoch-002.safetensors"
    raw = bytearray(newest.read_bytes())
    raw[-10] ^= 0xFF
    newest.write_bytes(bytes(raw))
    stale = part / ".epoch-002.safetensors.k3j4h5.tmp"  # what a save killed by SIGKILL leaves
    stale.write_bytes(b"partial")
    rc, _, err = run(capsys, args + ["--checkpoint-dir", str(part), "--metrics", str(part / "m.jsonl"), "--resume"])
    assert rc == 0, err
    assert f"resume: {newest}: cannot load checkpoint" in err
    assert f"resume: falling back to {part / 'epoch-001.safetensors'}" in err
    assert not stale.exists()
    assert len((part / "m.jsonl").read_text().splitlines()) == 2
    _same_final_state(full, part)


def test_resume_skips_a_model_only_checkpoint(capsys, tmp_path):
    args, full, part = _full_and_resumed(capsys, tmp_path)
    state, _, _ = load_checkpoint(part / "epoch-002.safetensors")
    save_checkpoint(part / "epoch-003.safetensors", state)  # weights only, as minigrad.save writes them
    rc, _, err = run(capsys, args + ["--checkpoint-dir", str(part), "--resume"])
    assert rc == 0 and "epoch-003.safetensors: cannot load checkpoint: a model-only checkpoint" in err, err
    assert "falling back to" in err and "nothing to train" in err


def test_resume_when_every_checkpoint_is_damaged_is_one_line(capsys, tmp_path):
    d = tmp_path / "c"
    d.mkdir()
    (d / "epoch-001.safetensors").write_bytes(b"\0" * 100)
    rc, _, err = run(capsys, TINY + ["--checkpoint-dir", str(d), "--resume"])
    assert rc == 2
    assert err.splitlines()[-1] == f"minigrad train: error: --resume: none of the 1 checkpoint(s) in {d} can be loaded"


def test_resume_with_other_options_is_refused(capsys, tmp_path):
    d = tmp_path / "c"
    assert run(capsys, TINY + ["--epochs", "1", "--checkpoint-dir", str(d)])[0] == 0
    rc, _, err = run(capsys, TINY + ["--epochs", "2", "--checkpoint-dir", str(d), "--resume", "--batch-size", "16"])
    assert rc == 2 and "was written with --batch-size 32, not 16" in err


def test_resume_after_metrics_written_but_checkpoint_lost(capsys, tmp_path):
    # a run killed between the epoch's metrics line and its checkpoint: the line is not written twice
    args, full, part = _full_and_resumed(capsys, tmp_path)
    (part / "epoch-002.safetensors").unlink()
    assert run(capsys, args + ["--checkpoint-dir", str(part), "--metrics", str(part / "m.jsonl"), "--resume"])[0] == 0
    _same_final_state(full, part)


def test_checkpoint_every_resumes_mid_epoch_bit_for_bit(capsys, tmp_path):
    args, full, part = _full_and_resumed(capsys, tmp_path, extra=("--checkpoint-every", "4"))
    # steps 4 (epoch 1, batch 4) and 8 (epoch 2, batch 2); only the newest mid-epoch one and the one before stay
    names = [p.name for _, p in list_checkpoints(part)]
    assert names == ["epoch-002.safetensors", "epoch-001-batch-00002.safetensors", "epoch-001.safetensors"]
    _, _, extra = load_checkpoint(part / "epoch-001-batch-00002.safetensors")
    assert (extra["epoch"], extra["batch"], extra["loader"]["epoch"]) == (1, 2, 1)
    assert extra["running"]["seen"] == 64
    (part / "epoch-002.safetensors").unlink()
    lines = (part / "m.jsonl").read_text().splitlines()
    (part / "m.jsonl").write_text(lines[0] + "\n" + lines[1] + "\n")  # as if killed after the line
    rc, _, err = run(capsys, args + ["--checkpoint-dir", str(part), "--metrics", str(part / "m.jsonl"), "--resume"])
    assert rc == 0 and "in epoch 2 after batch 2 of 6" in err, err
    assert latest_checkpoint(part).name == "epoch-002.safetensors"
    _same_final_state(full, part)


def test_quiet_prints_nothing_on_success(capsys, tmp_path):
    rc, out, err = run(capsys, TINY + ["--epochs", "1", "--quiet"])
    assert rc == 0 and out == "" and err == ""


def _write_idx(path, array):
    dims = b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(bytes([0, 0, 0x08, array.ndim]) + dims + array.astype(np.uint8).tobytes())


def test_data_dir_reads_idx_files(capsys, tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 40), ("t10k", 10)):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n))
    rc, _, err = run(capsys, TINY + ["--dataset", "mnist", "--data-dir", str(tmp_path), "--epochs", "1",
                                     "--limit-train", "40", "--batch-size", "8"])
    assert rc == 0 and "training mlp-bn on mnist: 40 items, 5 batches of 8" in err, err


def test_no_progress_bar_when_stderr_is_not_a_terminal(capsys):
    argv = [a for a in TINY if a != "--no-progress"] + ["--epochs", "1"]
    rc, _, err = run(capsys, argv)
    assert rc == 0 and "batch/s" not in err and "\r" not in err
    assert err.splitlines()[0].startswith("training ") and err.splitlines()[1].startswith("epoch 1/1: ")
