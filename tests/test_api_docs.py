"""The API reference (scripts/build_api_docs.py, pdoc) builds cleanly and fails on a broken module or signature;
the documented modules keep a docstring on every public name; the package ships its py.typed marker."""
import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

# Modules whose every public class, function and method has a docstring; add a module here once it does.
DOCUMENTED = ["minigrad/nn/module.py", "minigrad/nn/linear.py", "minigrad/nn/conv.py", "minigrad/nn/activation.py",
              "minigrad/nn/loss.py", "minigrad/nn/init.py", "minigrad/optim/lr_scheduler.py",
              "minigrad/serialization.py", "minigrad/experiments/plotting.py"]


def undocumented(source):
    missing = []

    def walk(node, prefix=""):
        for ch in ast.iter_child_nodes(node):
            if isinstance(ch, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not ch.name.startswith("_"):
                if ast.get_docstring(ch) is None:
                    missing.append(prefix + ch.name)
                if isinstance(ch, ast.ClassDef):
                    walk(ch, f"{prefix}{ch.name}.")

    walk(ast.parse(source))
    return missing


@pytest.mark.parametrize("path", DOCUMENTED)
def test_every_public_name_has_a_docstring(path):
    assert undocumented((ROOT / path).read_text()) == []


def test_the_docstring_check_can_fail():
    assert undocumented("class A:\n    def f(self):\n        pass\n    def _g(self):\n        pass\n") == ["A", "A.f"]


def test_py_typed_ships():
    tomllib = pytest.importorskip("tomllib")
    assert (ROOT / "minigrad" / "py.typed").is_file()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["minigrad"]
    assert any(d.startswith("pdoc") for d in config["project"]["optional-dependencies"]["docs"])


@pytest.fixture(scope="module")
def builder():
    pytest.importorskip("pdoc")
    import build_api_docs
    return build_api_docs


def test_api_reference_builds_without_problems(builder, tmp_path):
    assert builder.build(tmp_path) == []
    for page in ("minigrad.html", "minigrad/nn.html", "minigrad/nn/norm.html", "minigrad/serialization.html",
                 "minigrad/optim/lr_scheduler.html"):
        assert (tmp_path / page).is_file(), page
    assert not (tmp_path / "minigrad" / "_ext.html").exists()  # private modules are left out
    assert "Shape" in (tmp_path / "minigrad" / "nn" / "conv.html").read_text()


def test_api_reference_fails_on_a_broken_module(builder, tmp_path, monkeypatch):
    pkg = tmp_path / "src" / "brokenpkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""A package."""\n')
    (pkg / "ann.py").write_text('"""A module."""\n\ndef f(x: "Nope[") -> int:\n    """A bad annotation."""\n')
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    problems = builder.build(tmp_path / "out1", ("brokenpkg",))
    assert any("Nope[" in p for p in problems), problems
    (pkg / "ann.py").unlink()
    (pkg / "bad.py").write_text('"""A module."""\nraise ImportError("planted")\n')  # a new name: pdoc caches imports
    problems = builder.build(tmp_path / "out2", ("brokenpkg",))
    assert any("brokenpkg.bad" in p and "planted" in p for p in problems), problems
    assert builder.main(["--out", str(tmp_path / "out3")]) == 0
