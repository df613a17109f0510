"""README.md as a user reads it: its training-loop example runs as written (checkpoint saved and loaded), and
every image and local link in it and in docs/ points at a file that exists, each figure beside the command that
made it."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def example_code():
    """The ```python block right after the ``<!-- readme:example -->`` marker."""
    text = README.read_text()
    marker = text.index("<!-- readme:example -->")
    m = re.compile(r"```python\n(.*?)\n```", re.S).search(text, marker)
    assert m and text[marker:m.start()].strip() == "<!-- readme:example -->", "the marker must sit on the block"
    return m.group(1)


def test_example_is_short_and_uses_save_and_load():
    code = example_code()
    assert len(code.splitlines()) <= 32
    assert "mg.save(" in code and "mg.load(" in code and "load_state_dict" in code


def test_readme_example_runs(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-c", example_code()], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert [ln.split(":")[0] for ln in lines[:3]] == ["epoch 0", "epoch 1", "epoch 2"]
    accuracy = float(re.fullmatch(r"resumed after epoch 2: train accuracy (\d\.\d+)", lines[-1]).group(1))
    assert accuracy > 0.9
    assert (tmp_path / "checkpoint.safetensors").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.safetensors"]  # no temporary file left


def markdown_files():
    return [README] + sorted((ROOT / "docs").rglob("*.md"))


@pytest.mark.parametrize("md", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_local_links_and_images_exist(md):
    text = md.read_text()
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        assert (md.parent / target.split("#")[0]).exists(), f"{md.name} links to missing {target}"


def test_every_readme_figure_names_the_command_that_made_it():
    text = README.read_text()
    for m in re.finditer(r"!\[[^\]]*\]\((docs/experiments/([^/]+)/[^)]+\.png)\)", text):
        before = text[max(0, m.start() - 600):m.start()]
        name = m.group(2)
        # the experiment of that name, or one whose --out is that folder (a second case of one experiment)
        made = f"minigrad experiment {name}" in before or re.search(
            rf"minigrad experiment [^\n]*--out docs/experiments/{re.escape(name)}(?:\s|$)", before)
        assert made, f"{m.group(1)}: no command beside it"
