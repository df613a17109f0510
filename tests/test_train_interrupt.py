"""Ctrl-C and SIGTERM during ``minigrad train``: signals sent to a real training process at random points, each
run resumed with the command it printed, must end with the parameters and metrics of an uninterrupted run."""
import json
import os
import random
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from minigrad.checkpoint import load_checkpoint

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

ROOT = Path(__file__).resolve().parents[1]
# 2 epochs of 63 steps of a small CNN on synthetic digits: about a second of training
BASE = [sys.executable, "-m", "minigrad", "train", "--dataset", "synthetic", "--limit-train", "1000", "--limit-test",
        "100", "--batch-size", "16", "--model", "lenet-bn", "--scheduler", "onecycle", "--epochs", "2", "--threads",
        "1", "--no-progress", "--seed", "5"]


def _remaining(err):
    """The fraction of the 2 epochs that a run still has to train, from its "resumed from" and "training" lines."""
    steps = int(re.search(r"(\d+) batches of", err).group(1))
    m = re.search(r"in epoch (\d+) after batch (\d+) of", err) or re.search(r"after epoch (\d+)()$", err, re.M)
    done = 0 if m is None else (int(m.group(1)) - (1 if m.group(2) else 0)) * steps + int(m.group(2) or 0)
    return 1.0 - done / (2 * steps)


def _train(argv, signum=None, delay=lambda err: 0.0):
    """Run ``argv``; once it reports that training started, wait ``delay(stderr so far)`` s and send ``signum``.
    Returns (exit status, stderr, seconds from the start of training to the exit)."""
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err = []
    t0 = None
    try:
        for line in proc.stderr:  # until training starts (or the run ends without training)
            err.append(line)
            if line.startswith("training "):
                t0 = time.perf_counter()
                break
        if t0 is not None and signum is not None:
            time.sleep(delay("".join(err)))
            if proc.poll() is None:
                proc.send_signal(signum)
        err.append(proc.stderr.read())
        rc = proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    return rc, "".join(err), (time.perf_counter() - t0) if t0 else 0.0


def _final(directory):
    model, opt, extra = load_checkpoint(directory / "epoch-002.safetensors")
    metrics = [{k: v for k, v in json.loads(s).items() if k not in ("epoch_seconds", "samples_per_s")}
               for s in (directory / "m.jsonl").read_text().splitlines()]
    return model, opt, extra, metrics


def test_sigint_and_sigterm_at_random_points_resume_bit_for_bit(tmp_path):
    ref = tmp_path / "ref"
    rc, err, seconds = _train(BASE + ["--checkpoint-dir", str(ref), "--metrics", str(ref / "m.jsonl")])
    assert rc == 0, err
    rng = random.Random(20240611)
    signals = [signal.SIGINT, signal.SIGINT, signal.SIGTERM, signal.SIGINT, signal.SIGINT, signal.SIGINT]
    run = tmp_path / "run"
    argv = BASE + ["--checkpoint-dir", str(run), "--metrics", str(run / "m.jsonl")]
    stops = []
    for attempt in range(20):
        signum = signals[attempt] if attempt < len(signals) else None
        # a random point of the first half of what is left to train: the reference run may have been slowed by
        # the machine's load (a signal after the end lands nowhere, and the runs after it have nothing to stop)
        rc, err, _ = _train(argv, signum, lambda err: rng.uniform(0.0, 0.5 * seconds * _remaining(err)))
        assert "Traceback" not in err, err
        if rc == 0:
            if signum is None:
                break
            continue  # the signal came too late, the run had finished: start it again (nothing to do)
        assert rc == 128 + signum, err
        resume = [line for line in err.splitlines() if line.startswith("resume with: ")]
        assert len(resume) == 1, err
        saved = err.split("checkpoint written to ")[1].splitlines()[0]
        assert Path(saved).exists() and Path(saved).parent == run
        stops.append(Path(saved).name)
        words = shlex.split(resume[0][len("resume with: "):])
        assert words[1:3] == ["-m", "minigrad"] and words[3] == "train" and words[-1] != "--stop-after"
        argv = [sys.executable] + words[1:]
    else:
        pytest.fail("the run did not finish")
    assert len(stops) >= 3, stops  # most signals landed during training
    assert any("-batch-" in s for s in stops), stops  # and some mid-epoch
    a, oa, ea, ma = _final(ref)
    b, ob, eb, mb = _final(run)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert oa["param_groups"] == ob["param_groups"] and ea["scheduler"] == eb["scheduler"]
    assert ea["rng_state"] == eb["rng_state"]
    assert ma == mb and len(mb) == 2  # the same losses and accuracies, no line twice


def test_second_sigint_abandons_the_step_without_a_traceback(tmp_path):
    # steps of a second or so (resnet-tiny, batch 128, NumPy kernels): both signals land in the first step
    d = tmp_path / "c"
    argv = [sys.executable, "-m", "minigrad", "train", "--dataset", "synthetic", "--limit-train", "256", "--limit-test",
            "10", "--batch-size", "128", "--model", "resnet-tiny", "--backend", "numpy", "--threads", "1",
            "--no-progress", "--checkpoint-dir", str(d)]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if line.startswith("training "):
            break
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.1)  # NOTE: two signals sent at once may be delivered as one
    proc.send_signal(signal.SIGINT)
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 130
    assert "Traceback" not in err
    assert err.splitlines()[-1] == "minigrad train: interrupted again: the step was abandoned, no checkpoint written"
    assert not list(d.iterdir())  # no checkpoint, no temporary file


def test_interrupt_without_checkpoint_dir_saves_in_a_new_directory(tmp_path):
    # run from tmp_path: the checkpoint goes to ./minigrad-interrupted-*, and the printed command resumes it
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = BASE + ["--metrics", "m.jsonl"]
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if line.startswith("training "):
            break
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 143, err
    [saved] = list(tmp_path.glob("minigrad-interrupted-*/epoch-*.safetensors"))
    assert f"checkpoint written to {saved.relative_to(tmp_path)}" in err
    command = err.split("resume with: ")[1].splitlines()[0]
    assert f"--checkpoint-dir {saved.parent.name} --resume" in command
    p = subprocess.run([sys.executable] + shlex.split(command)[1:], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0 and "resumed from" in p.stderr, p.stderr
    assert len((tmp_path / "m.jsonl").read_text().splitlines()) == 2
