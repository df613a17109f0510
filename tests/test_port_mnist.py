"""pytorch/examples mnist/main.py with only its imports changed (tests/ports/mnist_main.py) runs as a script: one
training batch (its own --dry-run), the whole test set, and --save-model through minigrad.save. The full run
(14 epochs by default) is the README's claim: `python tests/ports/mnist_main.py --epochs 1` gave 98.15% test
accuracy after one epoch."""
import os
import re
import subprocess
import sys

import numpy as np

import minigrad as mg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(mg.__file__)))
SCRIPT = os.path.join(ROOT, "tests", "ports", "mnist_main.py")


def test_mnist_example_runs_with_imports_changed_only(tmp_path):
    src = open(SCRIPT).read()
    imports = [line for line in src.splitlines() if line.startswith(("import ", "from "))]
    assert all("torch" not in line or "minigrad" in line for line in imports), imports
    assert "import minigrad as torch" in imports
    run = tmp_path / "run"
    run.mkdir()
    env = dict(os.environ, PYTHONPATH=ROOT, MINIGRAD_NUM_THREADS="1")
    r = subprocess.run([sys.executable, SCRIPT, "--epochs", "1", "--dry-run", "--save-model"], cwd=run, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert re.search(r"Train Epoch: 1 \[0/60000 \(0%\)\]\tLoss: \d+\.\d{6}", r.stdout), r.stdout[:500]
    m = re.search(r"Test set: Average loss: (\d+\.\d+), Accuracy: (\d+)/10000", r.stdout)
    assert m, r.stdout[-500:]
    loss, correct = float(m.group(1)), int(m.group(2))
    assert np.isfinite(loss) and 0 <= correct <= 10000
    state = mg.load(str(run / "mnist_cnn.pt"))
    assert set(state) == {"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias",
                          "fc2.weight", "fc2.bias"}
    assert state["fc1.weight"].shape == (128, 9216)
