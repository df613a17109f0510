"""Every experiment, run as ``minigrad experiment NAME --quick --data synthetic`` into a temporary folder: its
outputs exist, the report's table says what the JSON holds, and the curves have the shapes they claim."""
import json
import os
import math
import re

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")

from minigrad.cli import main  # noqa: E402
from minigrad.experiments import EXPERIMENTS  # noqa: E402

PNGS = {"paper-mnist": ["figure1.png"], "lr-sweep": ["lr_sweep.png"], "init-sweep": ["init_sweep.png"],
        "depth": ["depth.png"], "eval-mode": ["eval_mode.png"], "backends": ["backends.png"],
        "small-batch": ["small_batch.png"], "domain-shift": ["domain_shift.png"]}


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """name -> (output folder, JSON record, report text), each experiment run once for the whole module."""
    root = tmp_path_factory.mktemp("experiments")
    done = {}
    for name in EXPERIMENTS:
        out = root / name
        assert main(["experiment", name, "--quick", "--data", "synthetic", "--out", str(out), "--no-progress"]) == 0
        done[name] = (out, json.loads((out / f"{name}.json").read_text()), (out / "report.md").read_text())
    return done


def parse_table(md):
    """The report's results table as (columns, rows of cell strings)."""
    lines = md[md.index("## Results"):].splitlines()
    table = [ln for ln in lines[1:] if ln.startswith("|")]
    cells = [[c.strip() for c in ln.strip("|").split("|")] for ln in table]
    return cells[0], cells[2:]


def same(cell, value):
    if value is None:
        return cell in ("-", "nan")
    if isinstance(value, str):
        return cell == value
    if isinstance(value, float) and math.isnan(value):
        return cell == "nan"
    return math.isclose(float(cell), value, rel_tol=1e-3, abs_tol=5e-5)


def test_registry_has_every_experiment():
    assert set(EXPERIMENTS) == set(PNGS)


@pytest.mark.parametrize("name", sorted(PNGS))
def test_outputs_exist_and_report_matches_json(outputs, name):
    out, record, md = outputs[name]
    for png in PNGS[name]:
        assert (out / png).stat().st_size > 1000
        assert f"]({png})" in md
    assert record["experiment"] == name and record["data"] == "synthetic" and record["quick"] is True
    assert record["command"].startswith(f"minigrad experiment {name} --quick --out ")
    assert record["command"].endswith("--data synthetic") and f"```\n{record['command']}\n```" in md
    columns, rows = parse_table(md)
    assert columns == record["table"]["columns"]
    assert len(rows) == len(record["table"]["rows"])
    for row, values in zip(rows, record["table"]["rows"]):
        assert all(same(c, v) for c, v in zip(row, values)), (row, values)


def test_paper_mnist_curves_and_claims(outputs):
    _, record, md = outputs["paper-mnist"]
    steps = record["eval_steps"]
    assert steps[0] == 0 and steps[-1] == record["config"]["steps"]
    for label in ("without BN", "with BN"):
        r = record["results"][label]
        assert len(r["test_acc_mean"]) == len(steps)
        pct = np.asarray(r["percentiles_seed0"], dtype=float)
        assert pct.shape == (len(steps), 3)
        assert np.all(np.diff(pct, axis=1) >= 0)  # 15th <= 50th <= 85th
        # the table's final accuracy is the last point of the curve
        assert r["final_acc_mean"] == pytest.approx(r["test_acc_mean"][-1])
        row = next(row for row in parse_table(md)[1] if row[0] == label)
        assert float(row[1]) == pytest.approx(r["final_acc_mean"], abs=5e-5)
    # on the easy synthetic digits the BN net learns within the quick budget
    assert record["results"]["with BN"]["final_acc_mean"] > 0.9


def test_lr_sweep_marks_divergence(outputs):
    _, record, _ = outputs["lr-sweep"]
    for r in record["results"].values():
        assert len(r["test_acc_mean"]) == len(record["eval_steps"])
        chance_like = [a is None or a <= 0.12 for a in r["final_acc_per_seed"]]
        assert r["diverged_per_seed"] == [c or n is not None for c, n in zip(chance_like, r["nan_at_step_per_seed"])]


def test_init_sweep_heatmap_shape(outputs):
    _, record, _ = outputs["init-sweep"]
    mean = np.asarray(record["final_acc_mean"])
    assert mean.shape == (len(record["networks"]), len(record["schemes"]))
    assert np.all((0 <= mean) & (mean <= 1))


def test_depth_grad_norms_per_layer(outputs):
    _, record, _ = outputs["depth"]
    for r in record["results"].values():
        assert len(r["grad_norms_mean"]) == r["depth"] + 1  # hidden layers and the output layer


def test_eval_mode_batch_size_does_not_matter_in_eval(outputs):
    _, record, _ = outputs["eval-mode"]
    accs = [v[0] for v in record["summary"]["eval_mode"].values()]
    assert max(accs) - min(accs) <= 1e-3
    assert "1" not in record["summary"]["train_mode"]  # batch size 1 has no batch variance


def test_backends_agree(outputs):
    _, record, md = outputs["backends"]
    runs = record["runs"]
    assert {r["backend"] for r in runs.values()} == set(record["config"]["backends"])  # the asked one ran
    assert {r["threads"] for r in runs.values()} == {1, 2}
    ref = np.asarray(runs["numpy x1"]["losses"])
    for r in runs.values():
        assert len(r["losses"]) == len(ref)
        np.testing.assert_allclose(r["losses"], ref, rtol=1e-4, atol=1e-4)
        assert r["test_acc"] == pytest.approx(runs["numpy x1"]["test_acc"], abs=2e-3)
    assert record["max_abs_loss_diff"] < 1e-4
    assert re.search(r"Largest \|loss difference\| from the NumPy reference", md)


def test_small_batch_sees_equal_samples_and_ghost_bn_is_bn_up_to_its_chunk(outputs):
    _, record, md = outputs["small-batch"]
    cfg, results = record["config"], record["results"]
    assert cfg["batch_sizes"] == [2, 4, 8, 16, 32]
    for method in cfg["methods"]:
        for b in cfg["batch_sizes"]:
            r = results[f"{method} @{b}"]
            assert r["steps"] * b == cfg["samples_seen"] and r["lr"] == pytest.approx(cfg["lr_at_32"] * b / 32)
            assert len(r["acc_per_seed"]) == len(cfg["seeds"])
            if method == "ghost BN" and b <= cfg["virtual_batch_size"]:
                assert r["same_as"] == f"BN @{b}" and r["acc_per_seed"] == results[f"BN @{b}"]["acc_per_seed"]
            else:
                assert "same_as" not in r
    columns, rows = parse_table(md)
    assert columns == ["method"] + [f"batch {b}" for b in cfg["batch_sizes"]]
    names = [row[0] for row in rows]
    assert names[:len(cfg["methods"])] == cfg["methods"]
    assert names[len(cfg["methods"]):] == ["BN, batch statistics", "BatchRenorm, batch statistics",
                                           "BN, PreciseBN (update_bn)"]
    ghost = rows[names.index("ghost BN")]
    assert [c.endswith("(= BN)") for c in ghost[1:]] == [b <= cfg["virtual_batch_size"] for b in cfg["batch_sizes"]]
    mean, std = ghost[-1].split(" ± ")
    assert float(mean) == pytest.approx(results["ghost BN @32"]["acc_mean"], abs=5e-5)


def test_small_batch_normalizations_are_the_ones_named():
    from minigrad import nn
    from minigrad.experiments.small_batch import METHODS, small_cnn
    kinds = {m: {type(layer).__name__ for layer in small_cnn(m).modules()} for m in METHODS}
    assert "BatchNorm2d" not in kinds["no norm"] and "Conv2d" in kinds["no norm"]
    assert {"BatchRenorm2d"} <= kinds["BatchRenorm"] and {"GroupNorm"} <= kinds["GroupNorm"]
    assert {"FilterResponseNorm2d", "TLU"} <= kinds["FRN+TLU"] and "ReLU" not in kinds["FRN+TLU"]
    assert [m.virtual_batch_size for m in small_cnn("ghost BN").modules() if isinstance(m, nn.BatchNorm2d)] == [4, 4]
    assert [m.version for m in small_cnn("EvoNorm-S0").modules() if isinstance(m, nn.EvoNorm2d)] == ["S0", "S0"]


def test_domain_shift_images():
    from minigrad.experiments.domain_shift import SHIFTS, rotate, shifted
    x = np.random.default_rng(0).random((3, 1, 28, 28)).astype(np.float32)
    np.testing.assert_array_equal(shifted("inverted", x, 0), 1 - x)
    np.testing.assert_allclose(rotate(x, 0.0), x, atol=1e-6)
    np.testing.assert_allclose(rotate(x, 90.0), np.rot90(x, 1, axes=(2, 3)), atol=1e-5)  # counter-clockwise
    for name in SHIFTS:
        y = shifted(name, x, 1)
        assert y.shape == x.shape and y.dtype == np.float32 and 0 <= y.min() and y.max() <= 1


def test_domain_shift_adabn_undoes_a_contrast_change(outputs):
    # The first conv has no bias and is followed by BN: after AdaBN, images at 30% contrast give the same network
    # as clean images recalibrated the same way (up to eps), so the same accuracy.
    _, record, md = outputs["domain-shift"]
    assert list(record["summary"]) == ["clean", "inverted", "low contrast", "brighter", "noisy", "rotated 30°"]
    for accs in record["per_seed"]:
        assert accs["low contrast"]["LeNet-BN + AdaBN"] == pytest.approx(accs["clean"]["LeNet-BN + AdaBN"], abs=2e-3)
    columns, _ = parse_table(md)
    assert columns == ["test images", "LeNet (no BN)", "LeNet-BN", "LeNet-BN + AdaBN",
                       "LeNet-BN, test-batch statistics"]


def test_domain_shift_fashion_mnist_absent_is_skipped(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("minigrad.data.mnist.FASHION_MNIST_DIR", str(tmp_path / "no-fashion-mnist"))
    out = tmp_path / "out"
    assert main(["experiment", "domain-shift", "--quick", "--data", "fashion-mnist", "--out", str(out),
                 "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert captured.err.strip().count("\n") == 0 and "Fashion-MNIST case skipped" in captured.err
    assert "report:" not in captured.out and not (out / "report.md").exists()


def test_domain_shift_fashion_mnist(tmp_path):
    from minigrad.data import mnist
    if not os.path.isdir(mnist.FASHION_MNIST_DIR):
        pytest.skip("Debian package dataset-fashion-mnist not installed")
    out = tmp_path / "fashion"
    assert main(["experiment", "domain-shift", "--quick", "--data", "fashion-mnist", "--seeds", "1", "--steps", "30",
                 "--out", str(out), "--no-progress"]) == 0
    record = json.loads((out / "domain-shift.json").read_text())
    md = (out / "report.md").read_text()
    assert record["data"] == "fashion-mnist" and record["config"]["source"] == "Fashion-MNIST"
    assert md.startswith("# Domain shift: AdaBN recalibration of a batch-normalized LeNet (Fashion-MNIST)")
    assert "--data fashion-mnist" in record["command"]
    assert (out / "domain_shift.png").stat().st_size > 1000
    # trained on clothing, not on digits: well above chance on the clean test images after 30 steps
    assert record["summary"]["clean"]["LeNet-BN"][0] > 0.3
