"""The benchmark files stay runnable (all of them, as plain tests) and the report code is right on a tiny
synthetic JSON: minigrad.app.bench_report.render_table / evaluate_targets and scripts/make_benchmarks_doc.py."""
import importlib.util
import os
import subprocess
import sys

import pytest

from minigrad.app import bench_report as bench

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_benchmark_files_run_as_plain_tests(tmp_path):
    pytest.importorskip("pytest_benchmark")
    env = dict(os.environ, MINIGRAD_BANDWIDTH_JSON=str(tmp_path / "bandwidth.json"))
    # NOTE: every benchmark, each run once with its in-benchmark result check (about a minute on 2 cores)
    cmd = [sys.executable, "-m", "pytest", "benchmarks/", "--benchmark-disable", "-q", "-p", "no:cacheprovider"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert " passed" in proc.stdout


def _bench(norm, op, shape, threads, backend, median, factor=3, **extra):
    size = 1
    for d in shape:
        size *= d
    info = {"op": op, "backend": backend, "shape": list(shape), "threads": threads, "dtype": "float32",
            "norm": norm, "bytes": factor * size * 4 if factor else None, "gbps": None, "frac_of_triad": None}
    info.update(extra)
    return {"name": f"{norm}-{op}-{backend}", "extra_info": info, "stats": {"median": median, "rounds": 5}}


def _synthetic():
    shapes = bench.BN2D_SHAPES
    rows = [
        # triad: 3 arrays of 1M float32 in 1 ms = 12 GB/s
        {"name": "triad", "extra_info": {"op": "triad", "backend": "numba", "shape": [1 << 20], "threads": 1,
                                         "dtype": "float32", "size": "dram", "bytes": 3 * 4 * (1 << 20),
                                         "gbps": 3 * 4 * (1 << 20) / 1e-3 / 1e9},
         "stats": {"median": 1e-3, "rounds": 5}},
        _bench("mlp-bn", "train step", (60, 1, 28, 28), 1, "minigrad", 1e-3, factor=None, framework="minigrad"),
        _bench("mlp-bn", "train step", (60, 1, 28, 28), 1, "torch", 2e-3, factor=None, framework="torch"),
        _bench("mlp-bn", "train step", (60, 1, 28, 28), 1, "minigrad-compiled", 0.8e-3, factor=None,
               framework="minigrad-compiled"),
        _bench("resnet20", "train step", (32, 3, 32, 32), 1, "minigrad", 0.2, factor=None, framework="minigrad"),
        _bench("resnet20", "train step", (32, 3, 32, 32), 2, "minigrad", 0.1, factor=None, framework="minigrad"),
        _bench("resnet20", "train step", (32, 3, 32, 32), 1, "torch", 0.16, factor=None, framework="torch"),
        _bench("resnet20", "train step", (32, 3, 32, 32), 2, "torch", 0.1, factor=None, framework="torch"),
    ]
    for s in shapes:
        rows.append(_bench("BatchNorm2d", "forward", s, 1, "cython", 1e-3))
        rows.append(_bench("BatchNorm2d", "forward", s, 1, "torch", 6e-3))
        rows.append(_bench("BatchNorm2d", "backward", s, 1, "cython", 1e-3, factor=5))
        rows.append(_bench("BatchNorm2d", "backward", s, 1, "torch", 1.2e-3, factor=5))
    return {"benchmarks": rows, "minigrad_run": {"command": "benchmarks/run_all.py --out x.json",
                                                  "cpu": {"model": "Test CPU", "cores": 2}}}


def test_render_table_groups_backends_side_by_side(tmp_path):
    import json

    path = tmp_path / "b.json"
    path.write_text(json.dumps(_synthetic()))
    text = bench.render_table(str(path))
    block = text.split("BatchNorm2d forward 32x64x28x28 threads=1\n", 1)[1].split("\n")[:2]
    assert block[0].split()[0] == "cython" and block[1].split()[0] == "torch"
    assert "6.00x" in block[0] and "1.00 ms" in block[0]
    gbps = 3 * 32 * 64 * 28 * 28 * 4 / 1e-3 / 1e9
    assert f"{gbps:.1f}" in block[0]
    assert f"{gbps / (3 * 4 * (1 << 20) / 1e-3 / 1e9):.0%}" in block[0]  # of the triad of the same JSON
    assert "steps/s" in text
    md = bench.render_table(str(path), fmt="markdown")
    assert md.startswith("| case | backend |") and "| cython |" in md


def test_render_table_keeps_ops_outside_the_known_list_apart(tmp_path):
    """Ops the table does not order (the optimizer updates) still get a group each."""
    import json

    data = {"benchmarks": [_bench("optimizer", op, (100,), 1, backend, t, factor=5)
                           for op, backend, t in (("sgd", "cython", 1e-5), ("sgd", "torch", 3e-5),
                                                  ("adam", "cython", 2e-5), ("adam", "torch", 1e-5))]}
    path = tmp_path / "o.json"
    path.write_text(json.dumps(data))
    text = bench.render_table(str(path))
    sgd = text.split("optimizer sgd 100 threads=1\n", 1)[1].split("\n")[:2]
    adam = text.split("optimizer adam 100 threads=1\n", 1)[1].split("\n")[:2]
    assert "3.00x" in sgd[0] and "0.50x" in adam[0]
    assert sgd[1].split()[0] == "torch" and adam[1].split()[0] == "torch"


def test_targets_and_doc_from_the_numbers():
    data = _synthetic()
    res = {r["target"]: r for r in bench.evaluate_targets(data)}
    assert res["BatchNorm2d training forward >= 5x torch on every shape"]["status"] == "MET"
    assert "6.00x torch" in res["BatchNorm2d training forward >= 5x torch on every shape"]["measured"]
    assert res["BatchNorm2d backward >= 1.5x torch"]["status"] == "MISSED"
    assert "1.20x torch" in res["BatchNorm2d backward >= 1.5x torch"]["measured"]
    assert res["BatchNorm2d inference >= 1.0x torch"]["status"] == "NOT MEASURED"
    assert res["end to end: MLP-BN >= 1.5x torch steps/s"]["status"] == "MET"
    assert res["end to end: MLP-BN compiled >= 2x torch steps/s"]["status"] == "MET"  # 2.5x
    assert res["end to end: MLP-BN compiled >= 1.0x JAX jitted steps/s"]["status"] == "NOT MEASURED"
    assert res["end to end: ResNet-20 >= 1.0x torch steps/s"]["status"] == "MISSED"  # 0.8x
    assert "0.80x" in res["end to end: ResNet-20 >= 1.0x torch steps/s"]["measured"]
    assert res["end to end: ResNet-20 at 2 threads >= 1.2x torch steps/s"]["status"] == "MISSED"  # 1.0x
    assert res["end to end: ResNet-20 step 2 threads >= 1.6x 1 thread"]["status"] == "MET"  # 2.0x

    spec = importlib.util.spec_from_file_location("make_benchmarks_doc",
                                                  os.path.join(ROOT, "scripts", "make_benchmarks_doc.py"))
    doc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(doc)
    text = doc.make_doc(data)
    assert "Test CPU, 2 logical cores" in text
    assert "`benchmarks/run_all.py --out x.json`" in text
    assert "| BatchNorm2d backward >= 1.5x torch | **MISSED** |" in text
    assert "## Results" in text and "| cython |" in text
    assert "## Training steps (end to end)" not in text

    # the training steps from a run of their own: their section, targets and table; none left in the main ones
    e2e = {"benchmarks": [b for b in data["benchmarks"] if b["extra_info"]["op"] in ("train step", "triad")],
           "minigrad_run": {"command": "benchmarks/run_all.py --only bandwidth end-to-end",
                            "load_average": {"start": [0.5, 0, 0], "end": [0.75, 0, 0]}}}
    text = doc.make_doc(data, end_to_end=e2e, end_to_end_name="e2e.json")
    head, section = text.split("## Training steps (end to end)")
    assert "end to end:" not in head.split("## Targets")[1]
    assert "From `e2e.json`" in section and "--only bandwidth end-to-end" in section and "0.50 at the start" in section
    assert "| end to end: ResNet-20 >= 1.0x torch steps/s | **MISSED** |" in section
    assert "train step resnet20" in section.split("## Results")[0]
    assert "train step" not in section.split("## Results")[1]



def test_doc_appends_the_distributed_scaling_table():
    """make_benchmarks_doc renders a scripts/bench_distributed.py --scaling summary after the results (its command
    rebuilt from the summary), and leaves it out without one."""
    spec = importlib.util.spec_from_file_location("make_benchmarks_doc",
                                                  os.path.join(ROOT, "scripts", "make_benchmarks_doc.py"))
    doc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(doc)
    row = dict(step_s=0.01, compute_s=0.008, grad_s=0.001, syncbn_s=0.0, off_cpu_s=0.002, compute_cpu_s=0.007,
               samples_per_s=6400.0, mean_samples_per_s=6000.0, scaling=1.0, mean_scaling=1.0,
               bare_grad_allreduce_s=0.0, bare_syncbn_s=0.0)
    summary = {"ranks": [1, 2], "repeats": 3, "steps": 40, "batch_per_rank": 64, "machine": "x86_64, 2 CPUs",
               "backend": "cython", "started": "s", "finished": "f", "load_average_1min": [2.0, 3.5],
               "rows": [{"model": "mlp-bn", "variant": "ddp", "ranks": 1, **row},
                        {"model": "mlp-bn", "variant": "ddp", "ranks": 2, **row, "scaling": 1.6}]}
    text = doc.make_doc({"benchmarks": []}, distributed=summary)
    section = text.split("## Data-parallel training over MPI (one machine)", 1)[1]
    assert "`python scripts/bench_distributed.py --scaling 1,2 --repeats 3 --steps 40 --batch-size 64" in section
    assert "load average before the runs 2.0-3.5" in section
    assert "| mlp-bn | ddp | 2 | 10.00 | 8.00 | 1.00 | 0.00 | 2.00 | 7.00 | 6400 | 1.60 | 6000 | 1.00 |" in section
    assert "Data-parallel" not in doc.make_doc({"benchmarks": []})


def test_ratios_are_paired_over_the_repeats(tmp_path):
    """With repeat medians, a ratio is the median of the per-repeat ratios, not the ratio of the medians: a slow
    repeat that slowed both libraries does not count against either."""
    import json

    s = bench.BN2D_SHAPES[0]
    cy = _bench("BatchNorm2d", "backward", s, 1, "cython", 2e-3, factor=5, repeat_medians=[1e-3, 4e-3, 2e-3])
    to = _bench("BatchNorm2d", "backward", s, 1, "torch", 2e-3, factor=5, repeat_medians=[2e-3, 8e-3, 1e-3])
    data = {"benchmarks": [cy, to]}
    res = {r["target"]: r for r in bench.evaluate_targets(data)}
    # per repeat 2.0, 2.0, 0.5 -> median 2.0 (the medians alone give 1.0)
    assert "32x64x28x28: 2.00x torch" in res["BatchNorm2d backward >= 1.5x torch"]["measured"]
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    assert "2.00x" in bench.render_table(str(path)).split("threads=1\n", 1)[1].split("\n")[0]
    # repeats of different lengths (a failed process) fall back to the ratio of the medians
    to["extra_info"]["repeat_medians"] = [2e-3, 8e-3]
    res = {r["target"]: r for r in bench.evaluate_targets(data)}
    assert "32x64x28x28: 1.00x torch" in res["BatchNorm2d backward >= 1.5x torch"]["measured"]
    assert bench.paired(lambda a, b: a / b, (4.0, None), (2.0, [1.0, 1.0])) == 2.0


def test_run_all_plan_keeps_each_files_backends_together():
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        import run_all
    finally:
        sys.path.pop(0)
    labels = [s[0] for s in run_all.plan()]
    i, j = labels.index("cython batch_norm threads1"), labels.index("torch batch_norm threads1")
    assert j - i <= 4 and labels.index("cython batch_norm threads2") == i + 1
    assert all(labels.index(f"{b} batch_norm threads1") < labels.index("numpy layer_norm threads1")
               for b in run_all.BACKENDS)


def test_forward_bandwidth_quotes_the_tensor_size_triad_beside_the_llc_one():
    """The 70% target divides by the LLC triad; the triad over tensor-size arrays is quoted beside it."""
    def triad(size, seconds):
        n = 1 << 20
        return {"name": f"triad-{size}", "extra_info": {"op": "triad", "backend": "numba", "shape": [n],
                                                        "threads": 1, "dtype": "float32", "size": size,
                                                        "bytes": 3 * 4 * n},
                "stats": {"median": seconds, "rounds": 5}}

    s = bench.BN2D_SHAPES[0]
    fwd = _bench("BatchNorm2d", "forward", s, 1, "cython", 1e-3, triad_ref="llc")
    data = {"benchmarks": [triad("llc", 1e-4), triad("tensor", 2e-4), fwd]}
    res = {r["target"]: r for r in bench.evaluate_targets(data)}
    measured = res["BatchNorm2d training forward >= 70% of triad bandwidth"]["measured"]
    gbps = 3 * 32 * 64 * 28 * 28 * 4 / 1e-3 / 1e9
    llc, tensor = 3 * 4 * (1 << 20) / 1e-4 / 1e9, 3 * 4 * (1 << 20) / 2e-4 / 1e9
    assert f"llc triad {llc:.1f}" in measured
    assert f"{gbps / tensor:.0%} of the tensor-size triad {tensor:.1f}" in measured


@pytest.mark.parametrize("extra", [["--op", "backward"], ["--op", "forward", "--groups", "2"],
                                   ["--op", "backward", "--groups", "1"]])
def test_interleaved_backends_script_times_each_backend(extra):
    """scripts/interleaved_backends.py runs batch-norm and group-norm kernels and prints one line per backend."""
    cmd = [sys.executable, "scripts/interleaved_backends.py", "--shape", "8", "4", "3", "--rounds", "2",
           "--backends", "numpy", "cython"] + extra
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert [line.split()[5] for line in lines] == ["numpy", "cython"], lines
    assert "/ cython:" in lines[0] and " us" in lines[1]


def test_norm_family_targets_ratio_and_triad():
    """The family's targets: >= 2x the torch composition everywhere, >= 80% of triad for the memory-bound methods
    (decorrelated batch norm has no triad target)."""
    n = 1 << 20
    triad = {"name": "triad-llc", "extra_info": {"op": "triad", "backend": "numba", "shape": [n], "threads": 1,
                                                 "dtype": "float32", "size": "llc", "bytes": 3 * 4 * n},
             "stats": {"median": 1e-3, "rounds": 5}}  # 12.6 GB/s
    s = (16, 32, 8, 8)  # 32768 elements: 3 |x| forward = 393 KB
    rows = [triad,
            _bench("FRN+TLU", "forward", s, 1, "cython", 3.5e-5, triad_ref="llc"),   # 11.2 GB/s: 89%
            _bench("FRN+TLU", "forward", s, 1, "torch", 1e-4),                         # 2.86x
            _bench("EvoNormS0", "forward", s, 1, "cython", 1e-4, triad_ref="llc"),    # 31%
            _bench("EvoNormS0", "forward", s, 1, "torch", 1.5e-4),                     # 1.5x
            _bench("DecorrelatedBN2d", "forward", s, 1, "cython", 1e-3, triad_ref="llc"),
            _bench("DecorrelatedBN2d", "forward", s, 1, "torch", 3e-3)]
    res = {r["target"]: r for r in bench.evaluate_targets({"benchmarks": rows})}
    ratio = res["Norm family >= 2x the same method written with torch ops"]
    frac = res["Norm family (memory-bound methods) >= 80% of triad bandwidth"]
    assert ratio["status"] == "MISSED" and "2/3 cases pass; failing: EvoNormS0 forward 16x32x8x8: 1.50x" in \
        ratio["measured"]
    assert frac["status"] == "MISSED" and "1/2 cases pass" in frac["measured"]
    assert "EvoNormS0 forward 16x32x8x8: 31" in frac["measured"] and "Decorrelated" not in frac["measured"]


def test_inference_rows_and_target(tmp_path):
    """bench_inference.py's rows (op "inference latency", one per framework) group by model and batch, with the
    ratio to torch; the batch-1 target compares minigrad-fused with torch on every model measured."""
    import json

    rows = []
    for model, fused, torch_t in (("mlp", 2e-4, 1e-4), ("lenet-bn", 4e-4, 5e-4)):
        for fw, t in (("minigrad", 3e-4), ("minigrad-fused", fused), ("torch", torch_t), ("onnxruntime", 5e-5)):
            rows.append(_bench(model, "inference latency", (1, 1, 28, 28), 1, "cython" if "minigrad" in fw else fw,
                               t, factor=None, framework=fw))
    rows.append(_bench("mlp", "inference latency", (64, 1, 28, 28), 1, "torch", 1e-3, factor=None,
                       framework="torch"))
    path = tmp_path / "i.json"
    path.write_text(json.dumps({"benchmarks": rows}))
    text = bench.render_table(str(path))
    block = text.split("inference mlp batch 1 threads=1\n", 1)[1].split("\n")[:4]
    assert [line.split()[0] for line in block] == ["minigrad", "minigrad-fused", "torch", "onnxruntime"]
    assert "0.50x" in block[1] and "200.0 us/sample" in block[1] and "2.00x" in block[3]
    assert "inference mlp batch 64 threads=1" in text
    res = {r["target"]: r for r in bench.evaluate_targets({"benchmarks": rows})}
    t = res["inference: minigrad fused >= 1.0x torch eval at batch 1 (model zoo)"]
    assert t["status"] == "MISSED" and "1/2 cases pass" in t["measured"] and "mlp batch 1: 0.50x" in t["measured"]


def test_run_all_plan_has_the_inference_processes():
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        import run_all
    finally:
        sys.path.pop(0)
    steps = run_all.plan(threads=(1, 2), parts=("inference",))
    assert [s[0] for s in steps] == [f"inference {fw} threads1" for fw in run_all.INFERENCE]
    assert all(s[1] == ["bench_inference.py"] and s[3] == 1 for s in steps)
    assert "not minigrad-fused" in steps[0][2]
    assert run_all.plan(threads=(2,), parts=("inference",)) == []
    assert [s[0] for s in run_all.plan()][-len(steps):] == [s[0] for s in steps]
    assert "not compiled" in steps[1][2]  # "minigrad-fused" would also select "minigrad-fused-compiled"
