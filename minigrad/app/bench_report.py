"""``minigrad bench``: read (or produce) the merged benchmark JSON of ``benchmarks/run_all.py`` and print it.

* ``render_table(json_path, fmt="text")``: one row per backend, grouped by (norm, op, shape, threads), backends
  side by side: median time, GB/s under the byte model, fraction of the triad bandwidth of the same run and
  thread count (the LLC-size triad when the op's arrays fit in the last-level cache, else the DRAM-size one), and the speed ratio against torch (``torch time / time``: above 1 is faster than torch).
  ``fmt="markdown"`` gives a Markdown table (used by ``scripts/make_benchmarks_doc.py``).
* ``evaluate_targets(data)``: the project's performance targets checked against the measured figures.

Ratios (``vs torch``, the targets) are *paired*: when every time in a ratio was measured in each of the same
repeats of ``run_all.py --repeat N``, the ratio is the median over the repeats of the ratio within each repeat.
A repeat's processes run seconds to a minute apart, while the load of this machine's other tenants changes over
minutes, so a ratio within one repeat compares the two libraries under (nearly) the same conditions; without
repeats it is the ratio of the medians.
* ``main(argv)`` / ``add_subparser(subparsers)``: ``minigrad bench [--run] [--json FILE]``; with no arguments it
  prints this machine's last ``--run`` (``.benchmarks/all.json``), else the committed ``docs/benchmarks.json``.

Only the standard library is imported here (``rich`` is not needed): the CLI stays fast.
"""
import json
import os
import statistics
import subprocess
import sys

from minigrad.app.cli_help import ArgumentParser, HelpFormatter

DEFAULT_JSON = os.path.join(".benchmarks", "all.json")
BACKEND_ORDER = ["numpy", "cython", "numba", "torch"]
KERNEL_BACKENDS = ("numpy", "cython", "numba")
NORM_ORDER = ["BatchNorm2d", "BatchNorm1d", "LayerNorm", "GroupNorm", "InstanceNorm2d"]
OP_ORDER = ["forward", "inference", "backward", "fwd+bwd"]
# benchmarks/bench_norm_family.py: methods PyTorch lacks, timed beside the same method written with torch ops
FAMILY_ORDER = ["BatchRenorm2d", "GhostBatchNorm2d", "FRN+TLU", "EvoNormB0", "EvoNormS0", "DecorrelatedBN2d"]
COMPUTE_BOUND = ("DecorrelatedBN2d",)  # g x g products and an eigendecomposition per group: no triad target
# benchmarks/bench_inference.py: op "inference latency", one row per framework
INFERENCE_OP = "inference latency"
INFERENCE_FRAMEWORKS = ["minigrad", "minigrad-fused", "minigrad-fused-compiled", "torch", "onnxruntime"]
MODEL_ORDER = ["mlp", "mlp-bn", "lenet", "lenet-bn", "resnet-tiny", "resnet20"]


# ------------------------------------------------------------------ loading

def load(json_path):
    with open(json_path) as f:
        return json.load(f)


def _rows(data):
    """Flattened benchmark rows: dicts of extra_info plus ``median`` (s) and ``rounds``."""
    rows = []
    for b in data.get("benchmarks", []):
        info = dict(b.get("extra_info") or {})
        if "op" not in info or not b.get("stats"):
            continue
        info["median"] = b["stats"]["median"]
        info["repeats"] = info.pop("repeat_medians", None)
        info["rounds"] = b["stats"].get("rounds")
        info["shape"] = tuple(info.get("shape") or ())
        info["kind"] = ("bandwidth" if info["op"] in ("copy", "triad", "gemm") else
                        "end-to-end" if info["op"] == "train step" else
                        "inference" if info["op"] == INFERENCE_OP else "norm")
        if info["kind"] in ("end-to-end", "inference"):
            info["backend"] = info.get("framework", info.get("backend"))
        rows.append(info)
    return rows


def triad_by_threads(data, size="dram"):
    """threads -> the best ``size`` ("dram", "llc" or "tensor") triad GB/s of this run (from its bandwidth rows,
    else the side-file copy recorded by run_all.py)."""
    best = {}
    for r in _rows(data):
        if r["kind"] == "bandwidth" and r["op"] == "triad" and r.get("size") == size and r["median"]:
            gbps = r["bytes"] / r["median"] / 1e9 if r.get("bytes") else r.get("gbps")
            best[r["threads"]] = max(best.get(r["threads"], 0.0), gbps or 0.0)
    if not best:
        side = (data.get("minigrad_run") or {}).get("bandwidth", {}).get(f"triad_{size}_gbps", {})
        best = {int(k): v for k, v in side.items()}
    return best


def _triad_for(triads, r):
    """The triad GB/s a norm row is compared with: its ``triad_ref`` size ("llc"/"dram") at its thread count."""
    return triads.get(r.get("triad_ref") or "dram", {}).get(r["threads"])


def index(data, repeats=False):
    """{(norm, op, shape, threads, backend): median seconds} over the norm and end-to-end rows; with
    ``repeats``, the values are (median, [the median of each repeat] or None) for ``paired``."""
    out = {}
    for r in _rows(data):
        if r["kind"] != "bandwidth":
            out[(r.get("norm"), r["op"], r["shape"], r["threads"], r["backend"])] = \
                (r["median"], r["repeats"]) if repeats else r["median"]
    return out


def paired(f, *entries):
    """``f`` of the times of ``entries`` ((median, repeats) pairs): the median over the repeats of ``f`` within
    each repeat when every entry has the same number (> 1) of repeats, else ``f`` of the medians."""
    reps = [e[1] for e in entries]
    if all(reps) and len({len(r) for r in reps}) == 1 and len(reps[0]) > 1:
        return statistics.median([f(*ts) for ts in zip(*reps)])
    return f(*(e[0] for e in entries))


def shape_str(shape):
    return "x".join(str(s) for s in shape)


def _fmt_time(t):
    if t is None:
        return "-"
    if t < 1e-3:
        return f"{t * 1e6:.1f} us"
    if t < 1:
        return f"{t * 1e3:.2f} ms"
    return f"{t:.2f} s"


def _fmt(v, spec, suffix=""):
    return "-" if v is None else f"{v:{spec}}{suffix}"


# ------------------------------------------------------------------ tables

def table_rows(data):
    """[(group label, [cells per backend row])] in display order; cells: backend, median, GB/s, of triad,
    vs torch (or steps/s for end-to-end rows)."""
    rows = _rows(data)
    triads = {size: triad_by_threads(data, size) for size in ("llc", "dram")}
    groups = {}
    for r in rows:
        if r["kind"] == "bandwidth":
            key = (0, r["op"], r.get("size", ""), r["threads"])
            label = f"bandwidth {r['op']} {r.get('size', '')} ({shape_str(r['shape'])} x {r['dtype']}) " \
                    f"threads={r['threads']}"
        elif r["kind"] == "norm":
            norm = r.get("norm", "")
            key = (1, NORM_ORDER.index(norm) if norm in NORM_ORDER else 99, norm,
                   OP_ORDER.index(r["op"]) if r["op"] in OP_ORDER else 99, r["op"], r["shape"], r["threads"])
            label = f"{norm} {r['op']} {shape_str(r['shape'])} threads={r['threads']}"
        elif r["kind"] == "inference":
            model = r.get("norm", "")
            key = (3, MODEL_ORDER.index(model) if model in MODEL_ORDER else 99, model, r["shape"][0], r["threads"])
            label = f"inference {model} batch {r['shape'][0]} threads={r['threads']}"
        else:
            key = (2, r.get("norm", ""), r["threads"])
            label = f"train step {r.get('norm', '')} batch {r['shape'][0]} threads={r['threads']}"
        groups.setdefault(key, (label, []))[1].append(r)
    out = []
    for key in sorted(groups):  # the first item (the kind) keeps unlike keys from being compared
        label, members = groups[key]
        order = INFERENCE_FRAMEWORKS if key[0] == 3 else BACKEND_ORDER + ["minigrad"]
        members.sort(key=lambda r: order.index(r["backend"]) if r["backend"] in order else 99)
        ref = next(((r["median"], r["repeats"]) for r in members if r["backend"] == "torch"), None)
        cells = []
        for r in members:
            gbps = r["bytes"] / r["median"] / 1e9 if r.get("bytes") and r["median"] else r.get("gbps")
            frac = None
            ref_gbps = _triad_for(triads, r) if r["kind"] == "norm" else None
            if gbps and ref_gbps:
                frac = gbps / ref_gbps
            if r["kind"] == "end-to-end":
                extra = _fmt(1.0 / r["median"] if r["median"] else None, ".1f", " steps/s")
            elif r["kind"] == "inference":
                extra = _fmt(r["median"] * 1e6 / r["shape"][0] if r["median"] else None, ".1f", " us/sample")
            elif r["op"] == "gemm":
                m, k, n = r["shape"]
                extra = _fmt(2.0 * m * k * n / r["median"] / 1e9 if r["median"] else None, ".1f", " GFLOP/s")
            else:
                extra = _fmt(frac, ".0%")
            vs = None if ref is None or r["backend"] == "torch" or not r["median"] else \
                paired(lambda a, b: a / b, ref, (r["median"], r["repeats"]))
            cells.append([r["backend"], _fmt_time(r["median"]), _fmt(gbps, ".1f"), extra,
                          _fmt(vs, ".2f", "x")])
        out.append((label, cells))
    return out


HEADER = ["backend", "median", "GB/s", "of triad", "vs torch"]


def render_table(json_path, fmt="text"):
    """The benchmarks of ``json_path`` as a plain-text (or ``fmt="markdown"``) table, backends side by side
    within each (op, shape, threads) group. ``of triad`` is GB/s over this run's triad at the same thread count
    (LLC-size when the op's arrays fit in the last-level cache, else DRAM-size) (steps/s for the end-to-end rows); ``vs torch`` is torch's median over this row's (> 1: faster)."""
    data = load(json_path) if isinstance(json_path, (str, os.PathLike)) else json_path
    groups = table_rows(data)
    if fmt == "markdown":
        lines = ["| case | " + " | ".join(HEADER) + " |", "|" + "---|" * (len(HEADER) + 1)]
        for label, cells in groups:
            for i, c in enumerate(cells):
                lines.append(f"| {label if i == 0 else ''} | " + " | ".join(c) + " |")
        return "\n".join(lines) + "\n"
    widths = [max([len(h)] + [len(c[i]) for _, cells in groups for c in cells]) for i, h in enumerate(HEADER)]
    lines = []
    for label, cells in groups:
        lines.append(label)
        for c in cells:
            lines.append("  " + "  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in
                                          enumerate(zip(c, widths))))
    head = "  " + "  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(HEADER, widths)))
    return head + "\n" + "\n".join(lines) + "\n"


# ------------------------------------------------------------------ targets

BN2D_SHAPES = [(32, 64, 28, 28), (64, 128, 14, 14), (16, 32, 112, 112), (256, 512, 7, 7)]


def _ratio_target(idx, name, cases, minimum, threads=1, backend="cython"):
    """Target 'torch time / backend time >= minimum' on every (norm, op, shape) of ``cases``."""
    got, missing = [], []
    for norm, op, shape in cases:
        t, ref = idx.get((norm, op, shape, threads, backend)), idx.get((norm, op, shape, threads, "torch"))
        if t is None or ref is None:
            missing.append(f"{norm} {op} {shape_str(shape)}")
        else:
            got.append((paired(lambda a, b: a / b, ref, t), f"{norm} {op} {shape_str(shape)}"))
    return _verdict(name, got, missing, lambda v: v >= minimum, "x torch")


def _verdict(name, got, missing, ok, unit, worst=min):
    if not got:
        return {"target": name, "status": "NOT MEASURED", "measured": "no data for " + ", ".join(missing[:3])}
    w = worst(got)
    status = "MISSED" if not all(ok(v) for v, _ in got) else "INCOMPLETE" if missing else "MET"
    detail = "; ".join(f"{c}: {v:.2f}{unit}" for v, c in got)
    worst_s = f"worst {w[0]:.2f}{unit} ({w[1]})"
    if missing:
        detail += f"; not measured: {', '.join(missing)}"
    return {"target": name, "status": status, "measured": f"{worst_s}. {detail}"}


def evaluate_targets(data):
    """Each target of the project against the figures of ``data`` (1 thread, cython, unless stated):
    a list of {"target", "status", "measured"}; status MET, MISSED, INCOMPLETE (every measured case passes but
    some were not measured) or NOT MEASURED."""
    idx = index(data, repeats=True)  # (median, repeats): every ratio below is paired
    triads = {size: triad_by_threads(data, size) for size in ("llc", "tensor", "dram")}
    rows = _rows(data)
    bn2d = lambda op: [("BatchNorm2d", op, s) for s in BN2D_SHAPES]  # noqa: E731
    res = [
        _ratio_target(idx, "BatchNorm2d training forward >= 5x torch on every shape", bn2d("forward"), 5.0),
    ]
    # bandwidth: cython forward GB/s over the triad of its regime (LLC-resident or DRAM)
    got = []
    for s in BN2D_SHAPES:
        r = next((r for r in rows if r["kind"] == "norm" and r.get("norm") == "BatchNorm2d" and r["op"] == "forward"
                  and r["shape"] == s and r["threads"] == 1 and r["backend"] == "cython"), None)
        ref = _triad_for(triads, r) if r else None
        if r and ref:
            gbps = r["bytes"] / r["median"] / 1e9
            # NOTE: beside the LLC yardstick, the triad over arrays of the tensor's own size (informational)
            same = triads["tensor"].get(1) if r.get("triad_ref") == "llc" else None
            note = f"; {gbps / same:.0%} of the tensor-size triad {same:.1f}" if same else ""
            got.append((gbps / ref, f"BatchNorm2d forward {shape_str(s)} ({gbps:.1f} GB/s, "
                                    f"{r.get('triad_ref') or 'dram'} triad {ref:.1f}{note})"))
    res.append(_verdict("BatchNorm2d training forward >= 70% of triad bandwidth", [(v * 100, c) for v, c in got],
                        [] if got else ["the triad (bench_bandwidth.py)"],
                        lambda v: v >= 70, "%"))
    res.append(_ratio_target(idx, "BatchNorm2d backward >= 1.5x torch", bn2d("backward"), 1.5))
    res.append(_ratio_target(idx, "BatchNorm2d inference >= 1.0x torch", bn2d("inference"), 1.0))
    res.append(_ratio_target(idx, "BatchNorm2d fwd+bwd (autograd) >= 2.5x torch", bn2d("fwd+bwd"), 2.5))
    others = [("LayerNorm", (8192, 768)), ("LayerNorm", (60, 100)), ("GroupNorm", (32, 64, 28, 28)),
              ("InstanceNorm2d", (32, 64, 28, 28))]
    res.append(_ratio_target(idx, "LayerNorm/GroupNorm/InstanceNorm forward and backward >= 1.0x torch",
                             [(n, op, s) for n, s in others for op in ("forward", "backward")], 1.0))
    res.append(_ratio_target(idx, "InstanceNorm2d training forward >= 5x torch",
                             [("InstanceNorm2d", "forward", (32, 64, 28, 28))], 5.0))
    # BatchNorm1d (60, 100) autograd: time <= 0.5 x torch's time
    t, ref = idx.get(("BatchNorm1d", "fwd+bwd", (60, 100), 1, "cython")), idx.get(("BatchNorm1d", "fwd+bwd", (60, 100), 1, "torch"))
    got = [(paired(lambda a, b: a / b, t, ref), "BatchNorm1d fwd+bwd 60x100")] if t and ref else []
    res.append(_verdict("BatchNorm1d (60,100) fwd+bwd via autograd <= 0.5x torch's time", got,
                        [] if got else ["BatchNorm1d fwd+bwd 60x100"], lambda v: v <= 0.5, "x torch's time", max))
    # backends: cython fastest, numba within 1.5x of cython (1 thread, every norm row)
    cases = sorted({(k[0], k[1], k[2]) for k in idx if k[3] == 1 and k[4] in KERNEL_BACKENDS and k[0] in NORM_ORDER},
                   key=str)
    fastest, numba = [], []
    for norm, op, shape in cases:
        times = {b: idx.get((norm, op, shape, 1, b)) for b in KERNEL_BACKENDS}
        c = times["cython"]
        if c is None:
            continue
        others_t = [v for b, v in times.items() if b != "cython" and v is not None]
        if others_t:
            fastest.append((paired(lambda c, *o: min(o) / c, c, *others_t), f"{norm} {op} {shape_str(shape)}"))
        if times["numba"] is not None:
            numba.append((paired(lambda a, b: a / b, times["numba"], c), f"{norm} {op} {shape_str(shape)}"))
    res.append(_brief(_verdict("Cython fastest backend everywhere (next-fastest backend time / cython time >= 1)",
                               fastest, [] if fastest else ["cython"], lambda v: v >= 1.0, "x"), fastest,
                      lambda v: v < 1.0))
    res.append(_brief(_verdict("Numba within 1.5x of Cython (numba time / cython time <= 1.5)", numba,
                               [] if numba else ["numba"], lambda v: v <= 1.5, "x", max), numba, lambda v: v > 1.5))
    # 2-thread scaling, cython, tensors >= 1.6M elements
    got = []
    for norm, op, shape in sorted({(k[0], k[1], k[2]) for k in idx if k[4] == "cython" and k[0] in NORM_ORDER},
                                  key=str):
        n = 1
        for d in shape:
            n *= d
        t1, t2 = idx.get((norm, op, shape, 1, "cython")), idx.get((norm, op, shape, 2, "cython"))
        if n >= 1_600_000 and t1 and t2:
            got.append((paired(lambda a, b: a / b, t1, t2), f"{norm} {op} {shape_str(shape)}"))
    res.append(_brief(_verdict("2 threads >= 1.6x 1 thread (cython, tensors >= 1.6M elements)", got,
                               [] if got else ["2-thread cython rows"], lambda v: v >= 1.6, "x"), got,
                      lambda v: v < 1.6))
    res.extend(_family_targets(idx, rows, triads))
    res.extend(_end_to_end_targets(rows))
    res.append(_brief(*_inference_target(idx)))
    return res


# issue 21's end-to-end targets: (model, thread count, framework, reference framework, minimum, label); the ratio is
# the reference's time per step over the framework's (steps/s of the framework over the reference's)
END_TO_END_TARGETS = (
    ("mlp-bn", 1, "minigrad", "torch", 1.5, "MLP-BN >= 1.5x torch steps/s"),
    ("mlp-bn", 1, "minigrad-compiled", "torch", 2.0, "MLP-BN compiled >= 2x torch steps/s"),
    ("mlp-bn", 1, "minigrad-compiled", "jax", 1.0, "MLP-BN compiled >= 1.0x JAX jitted steps/s"),
    ("lenet-bn", 1, "minigrad", "torch", 1.0, "small CNN-BN (lenet-bn) >= 1.0x torch steps/s"),
    ("resnet20", 1, "minigrad", "torch", 1.0, "ResNet-20 >= 1.0x torch steps/s"),
    ("lenet-bn", 2, "minigrad", "torch", 1.2, "lenet-bn at 2 threads >= 1.2x torch steps/s"),
    ("resnet20", 2, "minigrad", "torch", 1.2, "ResNet-20 at 2 threads >= 1.2x torch steps/s"),
)


def _end_to_end_targets(rows):
    """The training-step targets (``END_TO_END_TARGETS``) and the ResNet-20 step's 2-thread scaling (>= 1.6x)."""
    def step(model, threads, fw):
        return next(((r["median"], r["repeats"]) for r in rows if r["kind"] == "end-to-end"
                     and r.get("norm") == model and r["threads"] == threads and r["backend"] == fw), None)
    res = []
    for model, threads, fw, ref_fw, minimum, label in END_TO_END_TARGETS:
        t, ref = step(model, threads, fw), step(model, threads, ref_fw)
        got = [(paired(lambda a, b: a / b, ref, t),
                f"{model} steps/s {fw} {1 / t[0]:.1f} vs {ref_fw} {1 / ref[0]:.1f} at {threads} thread(s)")] \
            if t and ref else []
        res.append(_verdict(f"end to end: {label}", got, [] if got else [f"{model} {fw}/{ref_fw} threads{threads}"],
                            lambda v, m=minimum: v >= m, "x"))
    t1, t2 = step("resnet20", 1, "minigrad"), step("resnet20", 2, "minigrad")
    got = [(paired(lambda a, b: a / b, t1, t2), f"resnet20 minigrad {1 / t1[0]:.1f} -> {1 / t2[0]:.1f} steps/s")] \
        if t1 and t2 else []
    res.append(_verdict("end to end: ResNet-20 step 2 threads >= 1.6x 1 thread", got,
                        [] if got else ["resnet20 threads1/threads2"], lambda v: v >= 1.6, "x"))
    return res


def _inference_target(idx):
    """minigrad-fused at batch 1 against torch eval (its batch norms folded too), every zoo model, 1 thread."""
    got, missing = [], []
    models = sorted({k[0] for k in idx if k[1] == INFERENCE_OP and k[2][:1] == (1,)},
                    key=lambda m: (MODEL_ORDER.index(m) if m in MODEL_ORDER else 99, m))
    for model in models:
        shape = next(k[2] for k in idx if k[0] == model and k[1] == INFERENCE_OP and k[2][:1] == (1,))
        t, ref = (idx.get((model, INFERENCE_OP, shape, 1, fw)) for fw in ("minigrad-fused", "torch"))
        if t and ref:
            got.append((paired(lambda a, b: a / b, ref, t), f"{model} batch 1"))
        else:
            missing.append(f"{model} batch 1")
    verdict = _verdict("inference: minigrad fused >= 1.0x torch eval at batch 1 (model zoo)", got,
                       missing if got or missing else ["bench_inference.py"], lambda v: v >= 1.0, "x torch")
    return verdict, got, lambda v: v < 1.0


def _family_targets(idx, rows, triads):
    """The norm family's two targets (1 thread, cython): >= 2x the torch composition on every method, op and
    shape, and every memory-bound case >= 80% of the triad under its byte model."""
    ratios, fracs = [], []
    for r in rows:
        if r["kind"] != "norm" or r.get("norm") not in FAMILY_ORDER or r["threads"] != 1 or r["backend"] != "cython":
            continue
        case = f"{r['norm']} {r['op']} {shape_str(r['shape'])}"
        ref = idx.get((r["norm"], r["op"], r["shape"], 1, "torch"))
        if ref:
            ratios.append((paired(lambda a, b: a / b, ref, (r["median"], r["repeats"])), case))
        triad = _triad_for(triads, r)
        if r["norm"] not in COMPUTE_BOUND and triad and r.get("bytes") and r["median"]:
            fracs.append((r["bytes"] / r["median"] / 1e9 / triad * 100, case))
    return [_brief(_verdict("Norm family >= 2x the same method written with torch ops", ratios,
                            [] if ratios else ["bench_norm_family.py"], lambda v: v >= 2.0, "x"), ratios,
                   lambda v: v < 2.0),
            _brief(_verdict("Norm family (memory-bound methods) >= 80% of triad bandwidth", fracs,
                            [] if fracs else ["bench_norm_family.py with the triad"], lambda v: v >= 80, "%"),
                   fracs, lambda v: v < 80, "%")]


def _brief(verdict, got, bad, unit="x"):
    """Shorten a many-case verdict to the count and the failing cases."""
    if verdict["status"] == "NOT MEASURED":
        return verdict
    fails = [f"{c}: {v:.2f}{unit}" for v, c in got if bad(v)]
    head = verdict["measured"].split(". ", 1)[0]
    verdict["measured"] = (f"{head}. {len(got) - len(fails)}/{len(got)} cases pass" +
                           (f"; failing: {'; '.join(fails)}" if fails else ""))
    return verdict


def render_targets(data, fmt="text", only=None):
    """The targets' table; ``only``: keep the targets whose name starts with it (e.g. "end to end")."""
    res = [r for r in evaluate_targets(data) if only is None or r["target"].startswith(only)]
    if fmt == "markdown":
        lines = ["| target | status | measured |", "|---|---|---|"]
        lines += [f"| {r['target']} | **{r['status']}** | {r['measured']} |" for r in res]
    else:
        lines = [f"[{r['status']}] {r['target']}: {r['measured']}" for r in res]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ command line

def _repo_root():
    # minigrad/app/bench_report.py -> the repository (the source tree; a wheel has no benchmarks/ nor docs/)
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


COMMITTED_JSON = os.path.join("docs", "benchmarks.json")


def _configure(p):
    p.add_argument("--json", default=None, metavar="FILE",
                   help=f"merged benchmark JSON (default: {DEFAULT_JSON} of the repository when a --run has made "
                        f"it, else the committed results in {COMMITTED_JSON})")
    p.add_argument("--run", action="store_true", help="run benchmarks/run_all.py first (several minutes), into "
                                                      f"--json or {DEFAULT_JSON}")
    p.add_argument("--targets", action="store_true", help="also check the performance targets")
    p.add_argument("--runner-args", default="", help="extra arguments for run_all.py, e.g. \"-k 32x64x28x28\"")
    p.add_argument("-q", "--quiet", action="store_true", help="with --run: no progress bar and no per-process lines "
                                                              "(there is no bar when stderr is not a terminal)")
    p.set_defaults(func=_run_args)


def _default_json():
    """This machine's last ``--run`` when there is one, else the committed results (None: neither exists)."""
    for rel in (DEFAULT_JSON, COMMITTED_JSON):
        path = os.path.join(_repo_root(), rel)
        if os.path.exists(path):
            return path
    return None


def _run_args(args):
    path = args.json or (os.path.join(_repo_root(), DEFAULT_JSON) if args.run else _default_json())
    if args.run:
        runner = os.path.join(_repo_root(), "benchmarks", "run_all.py")
        if not os.path.exists(runner):
            print(f"minigrad bench: error: {runner} not found (the benchmarks ship with the source tree, not the "
                  "wheel)", file=sys.stderr)
            return 2
        quiet = ["--quiet"] if args.quiet else []
        rc = subprocess.call([sys.executable, runner, "--out", path, *quiet, *args.runner_args.split()])
        if rc:
            print(f"minigrad bench: run_all.py exited with {rc}; printing what was measured", file=sys.stderr)
    if path is None:
        print(f"minigrad bench: error: no benchmark results: neither {DEFAULT_JSON} nor {COMMITTED_JSON} is in "
              f"{_repo_root()}; use --run or --json FILE", file=sys.stderr)
        return 2
    if not os.path.isfile(path):
        print(f"minigrad bench: error: --json {path}: no such file; use --run, or --json FILE", file=sys.stderr)
        return 2
    try:
        data = load(path)
        table = render_table(data)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        print(f"minigrad bench: error: {path}: not a benchmark JSON of benchmarks/run_all.py "
              f"({type(e).__name__}: {e})", file=sys.stderr)
        return 2
    if not args.json and not args.run:
        commit = (data.get("commit_info") or {}).get("id", "")[:7]
        when = data.get("datetime", "")[:10]
        print(f"# {os.path.relpath(path, _repo_root())}" + (f", measured at commit {commit}" if commit else "")
              + (f" on {when}" if when else "") + "; `minigrad bench --run` measures this machine")
    print(table, end="")
    if args.targets:
        print()
        print(render_targets(data), end="")
    return 0


def add_subparser(subparsers):
    """Register ``bench`` on an argparse subparsers object (used by ``minigrad.cli``)."""
    p = subparsers.add_parser("bench", help="print (or run and print) the kernel benchmarks",
                              description="Print the benchmark table of benchmarks/run_all.py's merged JSON; with no "
                                          "arguments, the committed results of docs/benchmarks.json.",
                              formatter_class=HelpFormatter)
    _configure(p)
    return p


def main(argv=None):
    p = ArgumentParser(prog="minigrad bench", description="Print the benchmark table.", formatter_class=HelpFormatter)
    _configure(p)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
