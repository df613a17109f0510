"""One look for every figure of the project: a colour per method, text readable at the width README shows a
figure (about 880 px for a row of three panels), one legend under the panels rather than over the data, and
the re-plotting of a committed run from its JSON without training again.

Colours are Okabe & Ito's colour-blind-safe palette. A method keeps its colour in every figure: a network
without batch norm is always vermillion, with batch norm always blue, and so on (``color``); the rest of the
normalization family takes colours from Paul Tol's colour-blind-safe "muted" scheme.

matplotlib is imported inside the functions that draw: ``import minigrad.experiments`` stays light.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

PALETTE = {
    "plain": "#D55E00",        # vermillion: a network without batch norm
    "BN": "#0072B2",           # blue: the same network with batch norm
    "eval mode": "#009E73",    # bluish green: a BN network evaluated with its running statistics
    "train mode": "#CC79A7",   # reddish purple: evaluated with batch statistics (eval() forgotten)
    "numpy": "#000000",        # the reference backend
    "cython": "#E69F00",       # orange
    "numba": "#56B4E9",        # sky blue
    "neutral": "#666666",      # what is not a method: legend proxies, reference lines, secondary quantities
    # the normalization family and recalibration, beyond Okabe & Ito's eight (Paul Tol's "muted" colours)
    "BatchRenorm": "#332288",  # indigo
    "ghost BN": "#88CCEE",     # cyan
    "GroupNorm": "#117733",    # green
    "FRN+TLU": "#999933",      # olive
    "EvoNorm-S0": "#882255",   # wine
    "AdaBN": "#44AA99",        # teal: a BN network whose statistics were recomputed on the new data
}
ALIASES = {"without BN": "plain", "with BN": "BN", "no norm": "plain"}

FONT = {"font.size": 14, "axes.titlesize": 15, "axes.labelsize": 14, "xtick.labelsize": 13,
        "ytick.labelsize": 13, "legend.fontsize": 13, "lines.linewidth": 2.0, "lines.markersize": 6,
        "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
        "legend.frameon": False}
PANEL = (4.6, 3.6)  # inches per panel: three in a row make 13.8 in, shown at about 880 px
DPI = 130


def color(method: str) -> str:
    """The colour of ``method`` ("plain", "BN", "without BN", "with BN", "eval mode", "train mode", or a
    backend name) in every figure; raises KeyError for a method without one, so none is made up ad hoc."""
    return PALETTE[ALIASES.get(method, method)]


def shade(hex_color: str, t: float) -> str:
    """``hex_color`` mixed with white: ``t=1`` is the colour itself, ``t=0`` white. Depth-like series of one
    method use shades of its colour, so the colour still names the method."""
    rgb = [int(hex_color[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(255 - (255 - c) * t):02x}" for c in rgb)


def styled(plot: Callable) -> Callable:
    """Decorate an experiment's ``plot`` function: it draws in the project's style (``FONT``), and matplotlib's
    global settings are left as they were."""
    import functools

    @functools.wraps(plot)
    def wrapper(*args, **kwargs):
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        with plt.rc_context(FONT):
            return plot(*args, **kwargs)

    return wrapper


def figure(ncols: int = 1, nrows: int = 1, panel: tuple[float, float] = PANEL):
    """A figure of ``nrows x ncols`` panels of ``panel`` inches each; returns ``(fig, axes)`` with ``axes`` a
    2-d array (``axes[row, col]``). Call it inside a ``styled`` function."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt.subplots(nrows, ncols, figsize=(panel[0] * ncols, panel[1] * nrows), squeeze=False)


def legend_below(fig, handles: Sequence, labels: Sequence[str], ncol: int | None = None) -> None:
    """One legend for the whole figure, under the panels, so that it covers no data. ``save`` makes room."""
    ncol = ncol or min(len(labels), 4)
    fig._minigrad_legend_rows = -(-len(labels) // ncol)
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=FONT["legend.fontsize"],
               frameon=False, bbox_to_anchor=(0.5, 0.0))


def save(fig, path: str | Path) -> Path:
    """Lay out and write ``fig`` as a PNG at ``path`` (leaving room for ``legend_below``), then close it."""
    import matplotlib.pyplot as plt
    rows = getattr(fig, "_minigrad_legend_rows", 0)
    height = fig.get_size_inches()[1]
    bottom = min(0.4, rows * 0.28 / height + (0.02 if rows else 0.0))
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return Path(path)


def line_handle(method_or_color: str, **kw):
    """A legend entry drawn as a line, for legends whose entries are not drawn as such (``legend_below``)."""
    from matplotlib.lines import Line2D
    c = PALETTE.get(ALIASES.get(method_or_color, method_or_color), method_or_color)
    return Line2D([], [], color=c, **{"lw": FONT["lines.linewidth"], **kw})


def band_handle(hex_color: str = PALETTE["neutral"], alpha: float = 0.25):
    """A legend entry drawn as a shaded band."""
    from matplotlib.patches import Patch
    return Patch(facecolor=hex_color, alpha=alpha, edgecolor="none")


def integer_ticks(axis, values: Iterable[int] | None = None) -> None:
    """Whole-number ticks on an axis that counts things (layers, depths): ``values`` when given, else
    matplotlib's choice restricted to integers (no 2.5 layers)."""
    if values is not None:
        axis.set_ticks(list(values))
    else:
        from matplotlib.ticker import MaxNLocator
        axis.set_major_locator(MaxNLocator(integer=True))


def thousands(axis) -> None:
    """Tick labels 0, 10k, 20k, ... on a step axis, which stay legible at large font sizes."""
    from matplotlib.ticker import FuncFormatter
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g}k" if abs(v) >= 1000 else f"{v:g}"))


# --------------------------------------------------------------------------------------------------------
# Re-plotting a finished run from its JSON
# --------------------------------------------------------------------------------------------------------

def as_json(record: dict) -> dict:
    """``record`` as it reads back from the run's JSON file (string keys, lists, ``None`` for NaN), so that an
    experiment's ``plot`` draws the same figure from a fresh run and from a committed JSON."""
    from .common import _jsonable
    return json.loads(json.dumps(_jsonable(record)))


class Canvas:
    """Where ``plot`` functions draw when no run is in progress: ``figure`` and ``save_figure`` as
    ``common.Outputs`` has them, writing into ``directory`` and remembering each (file name, caption)."""

    def __init__(self, directory: str | Path):
        self.dir = Path(directory)
        self.plots: list[tuple[str, str]] = []

    def figure(self, ncols: int = 1, nrows: int = 1, size: tuple[float, float] = PANEL):
        """A figure of ``nrows x ncols`` panels of ``size`` inches each (``figure``)."""
        return figure(ncols, nrows, size)

    def save_figure(self, fig, name: str, caption: str) -> None:
        """Write ``fig`` as ``name`` in the folder and remember its caption."""
        save(fig, self.dir / name)
        self.plots.append((name, caption))


def update_captions(report: Path, plots: Iterable[tuple[str, str]]) -> None:
    """Rewrite the image lines of ``report`` (``![caption](name)`` and the ``*caption*`` line below it) with
    the captions of ``plots``: a re-plot changes what the figure shows, so its caption follows."""
    lines = report.read_text().splitlines()
    for name, caption in plots:
        for i, line in enumerate(lines):
            if line.startswith("![") and line.endswith(f"]({name})"):
                lines[i] = f"![{caption}]({name})"
                j = i + 1
                while j < len(lines) and not lines[j].strip():
                    j += 1
                if j < len(lines) and lines[j].startswith("*") and lines[j].endswith("*"):
                    lines[j] = f"*{caption}*"
    report.write_text("\n".join(lines) + "\n")


def replot(name: str, directory: str | Path, plot: Callable[[Any, dict], None]) -> list[Path]:
    """Draw experiment ``name``'s figures again from ``directory/<name>.json`` with ``plot(canvas, record)``,
    into ``directory``, and bring the captions of ``directory/report.md`` up to date. Trains nothing."""
    directory = Path(directory)
    source = directory / f"{name}.json"
    if not source.is_file():
        raise FileNotFoundError(f"--replot: no {source.name} in {directory} (a folder written by "
                                f"'minigrad experiment {name} --out DIR')")
    record = json.loads(source.read_text())
    if record.get("experiment") != name:
        raise ValueError(f"--replot: {source} holds experiment {record.get('experiment')!r}, not {name!r}")
    canvas = Canvas(directory)
    plot(canvas, record)
    report = directory / "report.md"
    if report.is_file():
        update_captions(report, canvas.plots)
    return [directory / png for png, _ in canvas.plots]
