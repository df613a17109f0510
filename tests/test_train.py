"""The ``minigrad train`` command on the synthetic dataset: metrics, checkpoints, and bit-identical resume."""
import json
import subprocess
import sys

import numpy as np
import pytest

from minigrad.checkpoint import load_checkpoint
from minigrad.cli import SUBCOMMANDS, build_parser, main
from minigrad.app.train import latest_checkpoint

TINY = ["train", "--dataset", "synthetic", "--limit-train", "192", "--limit-test", "64", "--batch-size", "32",
        "--no-progress", "--seed", "3", "--threads", "1"]


def _run(tmp_path, name, *extra):
    d = tmp_path / name
    assert main(TINY + ["--checkpoint-dir", str(d), "--metrics", str(d / "metrics.jsonl"), *extra]) == 0
    return d


def test_train_writes_metrics_and_checkpoints(tmp_path):
    d = _run(tmp_path, "run", "--model", "lenet-bn", "--epochs", "2", "--lr", "0.05")
    lines = [json.loads(s) for s in (d / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    assert {"train_loss", "train_acc", "test_loss", "test_acc", "epoch_seconds", "samples_per_s"} <= set(lines[0])
    assert lines[1]["train_loss"] < lines[0]["train_loss"]  # it learns
    assert lines[1]["test_acc"] > 0.5
    path = latest_checkpoint(d)
    assert path.name == "epoch-002.safetensors"
    model_state, opt_state, extra = load_checkpoint(path)
    assert extra["epoch"] == 2 and extra["seed"] == 3 and extra["loader"]["epoch"] == 2
    assert "0.weight" in model_state and opt_state["param_groups"][0]["lr"] == 0.05


@pytest.mark.parametrize("model,optimizer,scheduler", [("lenet-bn", "sgd", "onecycle"), ("mlp-bn", "adamw", "cosine")])
def test_resume_is_bit_identical(tmp_path, model, optimizer, scheduler):
    args = ["--model", model, "--optimizer", optimizer, "--scheduler", scheduler, "--epochs", "2",
            "--lr", "0.01" if optimizer == "adamw" else "0.05"]
    full = _run(tmp_path, "full", *args)
    part = _run(tmp_path, "part", *args, "--stop-after", "1")
    assert latest_checkpoint(part).name == "epoch-001.safetensors"
    _run(tmp_path, "part", *args, "--resume")
    a, oa, _ = load_checkpoint(latest_checkpoint(full))
    b, ob, _ = load_checkpoint(latest_checkpoint(part))
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert oa["param_groups"] == ob["param_groups"]
    full_metrics = (full / "metrics.jsonl").read_text().splitlines()
    part_metrics = (part / "metrics.jsonl").read_text().splitlines()
    strip = lambda s: {k: v for k, v in json.loads(s).items() if k not in ("epoch_seconds", "samples_per_s")}  # noqa
    assert [strip(s) for s in full_metrics] == [strip(s) for s in part_metrics]


def test_resume_without_checkpoint_dir_is_an_error(capsys):
    assert main(TINY + ["--resume"]) == 2
    assert "--checkpoint-dir" in capsys.readouterr().err


def test_cli_is_a_subcommand_registry():
    assert "train" in SUBCOMMANDS
    assert build_parser().parse_args(["train", "--model", "mlp"]).model == "mlp"
    assert main([]) == 2


def test_python_dash_m_minigrad_help():
    out = subprocess.run([sys.executable, "-m", "minigrad", "train", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--checkpoint-dir" in out.stdout
