"""The inference-latency table of README's "Inference speed" from a JSON of ``benchmarks/bench_inference.py``:

    python benchmarks/run_all.py --only inference --threads 1 --repeat 3 --out docs/inference.json
    python scripts/inference_table.py docs/inference.json

One row per (model, batch): the median time of each framework (over the repeats: the median of their medians)
and the paired ratios ``torch time / minigrad-fused time`` and ``minigrad time / minigrad-fused time`` (above 1:
minigrad fused is faster), each the median over the repeats of the ratio within a repeat (minigrad.app.bench_report).
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from minigrad.app import bench_report as bench  # noqa: E402

COLUMNS = bench.INFERENCE_FRAMEWORKS
LABELS = {"minigrad-fused": "minigrad fused", "minigrad-fused-compiled": "fused + compile", "torch": "torch (fused)"}


def _time(t):
    return f"{t * 1e3:.2f} ms" if t >= 1e-3 else f"{t * 1e6:.0f} us"


def table(data):
    """Markdown lines of the table."""
    cells = {}
    for r in bench._rows(data):
        if r["kind"] == "inference" and r["threads"] == 1:
            cells[(r.get("norm"), r["shape"][0], r["backend"])] = (r["median"], r["repeats"])
    cases = sorted({(m, b) for m, b, _ in cells},
                   key=lambda c: (bench.MODEL_ORDER.index(c[0]) if c[0] in bench.MODEL_ORDER else 99, c[0], c[1]))
    lines = ["| model | batch | " + " | ".join(LABELS.get(c, c) for c in COLUMNS)
             + " | torch / fused | unfused / fused | onnxruntime / fused |",
             "|---|---:|" + "---:|" * (len(COLUMNS) + 3)]
    for model, batch in cases:
        get = {fw: cells.get((model, batch, fw)) for fw in COLUMNS}
        row = [model, str(batch)] + [_time(get[fw][0]) if get[fw] else "-" for fw in COLUMNS]
        fused = get["minigrad-fused"]
        for other in ("torch", "minigrad", "onnxruntime"):
            ratio = bench.paired(lambda a, b: a / b, get[other], fused) if get[other] and fused else None
            row.append(f"{ratio:.2f}x" if ratio else "-")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("json")
    a = p.parse_args(argv)
    data = bench.load(a.json)
    print("\n".join(table(data)))
    run = data.get("minigrad_run") or {}
    if run:
        print(f"\n{run.get('command')} ({run.get('started')} to {run.get('finished')}, "
              f"{(run.get('cpu') or {}).get('model')}, load average (1, 5, 15 min) {run.get('load_average')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
