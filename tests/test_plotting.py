"""The figures' shared look and the re-plot path: every committed run redraws from its JSON alone (no training),
its report's captions follow, and a method keeps one colour everywhere."""
import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from minigrad import experiments  # noqa: E402
from minigrad.experiments import common, plotting  # noqa: E402

DOCS = Path(__file__).resolve().parents[1] / "docs" / "experiments"


def test_one_colour_per_method():
    assert plotting.color("without BN") == plotting.color("plain")
    assert plotting.color("with BN") == plotting.color("BN")
    methods = ["plain", "BN", "eval mode", "train mode", "numpy", "cython", "numba", "BatchRenorm", "ghost BN",
               "GroupNorm", "FRN+TLU", "EvoNorm-S0", "AdaBN"]
    assert len({plotting.color(m) for m in methods}) == len(methods)
    with pytest.raises(KeyError):
        plotting.color("a method nobody gave a colour")


def test_shade_goes_from_white_to_the_colour():
    assert plotting.shade("#0072B2", 1.0).lower() == "#0072b2"
    assert plotting.shade("#0072B2", 0.0) == "#ffffff"


@pytest.mark.parametrize("name", sorted(experiments.EXPERIMENTS))
def test_committed_run_replots_without_training(tmp_path, monkeypatch, name):
    def no_training(*args, **kwargs):
        raise AssertionError("a re-plot must not train")

    monkeypatch.setattr(common, "train_run", no_training)
    src = DOCS / name
    shutil.copytree(src, tmp_path / name)
    report = tmp_path / name / "report.md"
    # plant a stale caption: the re-plot must replace it with the plot's own
    lines = report.read_text().splitlines()
    image = next(i for i, ln in enumerate(lines) if ln.startswith("!["))
    png = lines[image][lines[image].rindex("](") + 2:-1]
    lines[image] = f"![stale]({png})"
    report.write_text("\n".join(lines) + "\n")
    (tmp_path / name / png).unlink()

    written = experiments.replot(name, tmp_path / name)

    assert [p.name for p in written] == [png]
    assert written[0].stat().st_size > 10_000
    text = report.read_text()
    assert "![stale]" not in text
    caption = text.splitlines()[image][2:text.splitlines()[image].rindex("](")]
    assert f"*{caption}*" in text
    # the committed report carries the caption the plotting code writes today
    assert f"![{caption}]({png})" in (src / "report.md").read_text()


def test_replot_refuses_a_folder_without_the_json(tmp_path):
    with pytest.raises(FileNotFoundError, match="depth.json"):
        experiments.replot("depth", tmp_path)
    (tmp_path / "depth.json").write_text(json.dumps({"experiment": "lr-sweep"}))
    with pytest.raises(ValueError, match="'lr-sweep', not 'depth'"):
        experiments.replot("depth", tmp_path)


def test_replot_from_the_command_line(tmp_path, capsys):
    from minigrad.cli import main
    shutil.copytree(DOCS / "eval-mode", tmp_path / "eval-mode")
    assert main(["experiment", "eval-mode", "--replot", str(tmp_path / "eval-mode")]) == 0
    assert "eval_mode.png" in capsys.readouterr().out
