"""Build minigrad's API reference (HTML, from the docstrings) with pdoc, and fail on any problem.

    pip install -e ".[docs]"
    python scripts/build_api_docs.py [--out build/api]

Writes ``OUT/index.html`` and one page per public module (``OUT/minigrad/nn.html``, ...). Exits 1, listing the
problems, when a module fails to import or pdoc warns about a docstring or a signature: a broken docstring fails
the build (CI runs this script, see .ci/run). Docstrings are read as Google style with reStructuredText markup
(``code``, ``Example::`` blocks), which is how minigrad writes them.

Private modules (a name that starts with ``_``) and ``__main__`` modules are left out.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# pdoc reads a "!" spec as a regular expression of module names to leave out: here the private modules
# (minigrad._ext, minigrad._build_config, ...). It never imports __main__ modules, which would run them.
EXCLUDE = [r"!minigrad(\..*)?\._.*"]


def build(out: str | Path, modules: tuple[str, ...] = ("minigrad",)) -> list[str]:
    """Render ``modules`` (and their public submodules) into ``out``; returns the problems found (empty: a
    clean build). pdoc's warnings and every module that fails to import count as problems."""
    import pdoc
    import pdoc.render

    pdoc.render.configure(docformat="google", show_source=False, search=True)
    problems = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            pdoc.pdoc(*modules, *EXCLUDE, output_directory=Path(out))
        except Exception as e:  # pdoc stops at a module that fails to import or a docstring it cannot convert
            cause = f" ({type(e.__cause__).__name__}: {e.__cause__})" if e.__cause__ else ""
            problems.append(f"{type(e).__name__}: {e}{cause}")
    for w in caught:
        if issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning)) and "pdoc" not in w.filename:
            continue  # a library's deprecation notice, not a problem of the docs
        problems.append(f"{Path(w.filename).name}:{w.lineno}: {w.category.__name__}: {w.message}")
    if not (Path(out) / "index.html").is_file():
        problems.append(f"no index.html in {out}")
    return problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "build" / "api"), help="output folder (default build/api)")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))  # the checkout's minigrad, even when another one is installed
    problems = build(args.out)
    for line in problems:
        print(f"api docs: {line}", file=sys.stderr)
    if problems:
        print(f"api docs: FAILED, {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"api docs: {Path(args.out) / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
