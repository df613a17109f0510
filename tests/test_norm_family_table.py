"""scripts/norm_family_table.py's per-phase tables on a tiny synthetic JSON: GB/s under each kernel's own byte
model, the fraction of the run's triad with (miss) under 80% for the memory-bound kernels only, and the checked
call's overhead over the raw kernel."""
import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _script():
    spec = importlib.util.spec_from_file_location("norm_family_table",
                                                  os.path.join(ROOT, "scripts", "norm_family_table.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


CALLS = {"row_stats": 0, "row_apply_gate": 1, "zca_forward": 0}


def _phase(method, kernel, entry, median, nbytes, shape=(16, 32, 8, 8), passes_bytes=None):
    size = 16 * 32 * 8 * 8 if shape == (16, 32, 8, 8) else 32 * 64 * 16 * 16
    info = {"op": kernel, "backend": "cython", "shape": list(shape), "threads": 1, "dtype": "float32",
            "norm": f"{method} phases" + (" raw" if entry == "raw" else ""), "method": method, "phase": kernel,
            "entry": entry, "call": CALLS[kernel],
            "elements": size, "bytes": nbytes, "passes_bytes": passes_bytes, "triad_ref": "llc"}
    return {"name": f"{method}-{kernel}-{entry}", "extra_info": info, "stats": {"median": median, "rounds": 5}}


def _data():
    triad = {"name": "triad-llc", "extra_info": {"op": "triad", "backend": "numba", "shape": [1 << 20],
                                                 "threads": 1, "dtype": "float32", "size": "llc",
                                                 "bytes": 10_000_000_000}, "stats": {"median": 1.0, "rounds": 5}}
    return {"benchmarks": [
        triad,  # 10 GB/s
        _phase("DecorrelatedBN2d", "zca_forward", "raw", 1e-3, 300_000, passes_bytes=400_000),  # compute-bound
        _phase("EvoNormB0", "row_apply_gate", "raw", 4e-5, 200_000),         # 5 GB/s: 50%, (miss)
        _phase("EvoNormB0", "row_apply_gate", "checked", 4.3e-5, 200_000),
        _phase("EvoNormB0", "row_stats", "raw", 1e-5, 90_000),               # 9 GB/s: 90%
        _phase("EvoNormB0", "row_stats", "checked", 1.2e-5, 90_000),
        _phase("DecorrelatedBN2d", "zca_forward", "checked", 1.001e-3, 300_000, passes_bytes=400_000),
    ]}


def test_phase_table_judges_memory_bound_kernels_only():
    lines = _script().phase_table(_data()).splitlines()
    row = {line.split(" | ")[1]: line for line in lines[2:]}
    assert " 90% |" in row["row_stats"] and "(miss)" not in row["row_stats"]
    assert "50% (miss)" in row["row_apply_gate"] and "gate per element" in row["row_apply_gate"]
    assert "(miss)" not in row["zca_forward"] and "compute" in row["zca_forward"]
    assert "| 0.4 |" in row["zca_forward"]  # the pass model's GB/s: 400 KB in 1 ms
    assert "10.0 us" in row["row_stats"] and "12.0 us" in row["row_stats"]  # raw, then checked
    assert "0.31 |" in row["row_stats"]  # ns/element: 10 us over 32768 elements
    # the family's order, then each method's calls in order
    assert [line.split(" | ")[1] for line in lines[2:]] == ["row_stats", "row_apply_gate", "zca_forward"]


def test_overhead_table_is_checked_minus_raw():
    out = _script().overhead_table(_data())
    assert "shape 16x32x8x8" in out
    assert "| row_stats | 10.0 us | 12.0 us | 2.00 us |" in out
    assert "| row_apply_gate | 40.0 us | 43.0 us | 3.00 us |" in out
