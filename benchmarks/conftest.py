"""Shared fixtures and helpers of minigrad's benchmarks (pytest-benchmark).

* ``threads`` fixture (parametrized 1 and 2, ids ``threads1``/``threads2``): pins every thread pool of the
  process for the test (minigrad's kernels with NumPy's BLAS at 1 thread, as ``minigrad.set_num_threads`` sets
  it; Numba's pool; PyTorch's intra-op pool; the OpenMP runtimes through threadpoolctl) and restores them
  afterwards.
* ``record(benchmark, ...)``: puts ``op, backend, shape, threads, dtype, bytes_model, bytes, gbps,
  frac_of_triad, triad_ref`` in ``benchmark.extra_info``. GB/s is ``bytes / median time``; ``frac_of_triad``
  divides by the triad bandwidth of the same thread count measured by ``bench_bandwidth.py`` earlier in the same
  run (side file ``.benchmarks/bandwidth.json``; None when absent): the LLC-size triad when the op's footprint
  (the distinct arrays it touches: x and y forward and inference, x, dy, dx backward, all four fwd+bwd) fits in
  the last-level cache, else the DRAM-size triad (``triad_ref`` says which). Under ``--benchmark-disable``
  ``benchmark.stats`` is None and only the static fields are recorded.
* ``backend_or_skip(name)``: the raw kernel module of a backend ("numpy", "cython", "numba"), or a skip saying
  why it is unavailable; ``torch_or_skip()`` likewise.

Byte model (bytes that must cross the memory bus at least once, float arrays of |x| elements):
training forward reads x twice (statistics, then normalize) and writes y: 3 |x|; inference reads x and writes y:
2 |x|; backward reads dy and x for the reductions, then dy and x again and writes dx: 5 |x|; forward+backward 8 |x|.
Optimizer updates (bench_optim.py), of |p| elements: SGD with momentum 5 |p| (reads p, buf, g; writes p, buf),
Adam 7 |p| (reads p, m, v, g; writes p, m, v).

Run each backend in its own process (``python benchmarks/run_all.py``): two OpenMP runtimes in one process
(PyTorch's bundled libgomp and the system one used by Cython/Numba) distort 2-thread timings.
"""
import json
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# NOTE: every benchmark process, minigrad's and PyTorch's alike, runs with the allocator tuning that minigrad's
# command line applies (glibc keeps freed activations on its heap, NumPy's arrays of >= 4 MiB lie on 4 KiB pages;
# see minigrad/allocator.py). It changes minigrad's training steps (no page faults per step) and not PyTorch's, and
# the norm kernels at some large shapes (no huge-page cache conflicts: docs/perf/memory-placement.md).
from minigrad.allocator import tune_allocator  # noqa: E402

ALLOCATOR_TUNED = tune_allocator()

BANDWIDTH_JSON = os.environ.get("MINIGRAD_BANDWIDTH_JSON", os.path.join(ROOT, ".benchmarks", "bandwidth.json"))

# op -> number of |x|-sized array transfers (see the module docstring)
BYTES_FACTOR = {"forward": 3, "inference": 2, "backward": 5, "fwd+bwd": 8, "sgd": 5, "adam": 7}

# op -> number of distinct |x|-sized arrays it touches (decides cache-resident or not)
FOOTPRINT = {"forward": 2, "inference": 2, "backward": 3, "fwd+bwd": 4, "sgd": 3, "adam": 4}

THREADS = (1, 2)


def llc_bytes():
    """Size of the last-level cache (bytes) from sysfs, or None."""
    import glob

    best = None
    for d in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*"):
        try:
            level = int(open(os.path.join(d, "level")).read())
            size = open(os.path.join(d, "size")).read().strip()
        except (OSError, ValueError):
            continue
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(size[-1:], 1)
        nbytes = int(size.rstrip("KMG")) * mult
        if best is None or level > best[0]:
            best = (level, nbytes)
    return best[1] if best else None


def pytest_collect_file(file_path, parent):
    """Collect ``bench_*.py`` when pytest is given the directory (``pytest benchmarks/``); files named on the
    command line are collected by pytest itself."""
    if (file_path.suffix == ".py" and file_path.name.startswith("bench_")
            and not parent.session.isinitpath(file_path)):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def shape_id(shape):
    return "x".join(str(s) for s in shape)


def _set_threads(n):
    """Pin every pool this process may use to ``n`` threads; returns a callable that restores them."""
    import minigrad

    undo = []
    prev, prev_blas = minigrad.get_num_threads(), minigrad.get_blas_num_threads()
    minigrad.set_num_threads(n)  # NOTE: NumPy's BLAS at 1 thread, minigrad's policy (docs/perf/threads.md)
    undo.append(lambda: minigrad.set_num_threads(prev, blas=prev_blas))
    if "numba" in sys.modules:
        import numba

        prev_nb = numba.get_num_threads()
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
        undo.append(lambda: numba.set_num_threads(prev_nb))
    if "torch" in sys.modules:
        import torch

        prev_t = torch.get_num_threads()
        torch.set_num_threads(n)
        undo.append(lambda: torch.set_num_threads(prev_t))
    try:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(limits=n, user_api="openmp")  # NOTE: not BLAS, which minigrad set above
        undo.append(limiter.restore_original_limits)
    except ImportError:  # pragma: no cover - threadpoolctl is a test dependency
        pass

    def restore():
        for f in reversed(undo):
            f()

    return restore


@pytest.fixture(params=THREADS, ids=[f"threads{n}" for n in THREADS])
def threads(request):
    """The thread count of this benchmark, with every pool of the process pinned to it."""
    n = request.param
    if n > (os.cpu_count() or 1):
        pytest.skip(f"{n} threads on a {os.cpu_count()}-core machine")
    restore = _set_threads(n)
    yield n
    restore()


def pin_threads(n):
    """Pin the pools again (call after importing numba or torch lazily inside a test)."""
    return _set_threads(n)


def backend_or_skip(name):
    """The raw kernel module of backend ``name`` (call it with ``n_threads`` last), or skip the test."""
    from minigrad import kernels

    why = kernels._why_unavailable(name)
    if why is not None:
        pytest.skip(why)
    try:
        return kernels.load(name).module
    except (ImportError, RuntimeError) as e:
        pytest.skip(f"backend {name!r} unavailable: {e}")


def torch_or_skip():
    return pytest.importorskip("torch")


def triad_gbps(threads, size="dram"):
    """The ``size`` ("llc" or "dram") triad bandwidth (GB/s) of this run for ``threads``, or None."""
    try:
        with open(BANDWIDTH_JSON) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data.get(f"triad_{size}_gbps", {}).get(str(threads))


def median_seconds(benchmark):
    """Median time of the finished benchmark, None under --benchmark-disable."""
    if benchmark.stats is None:
        return None
    return benchmark.stats.stats.median


def record(benchmark, *, op, backend, shape, threads, dtype, nbytes=None, factor=None, **extra):
    """Fill ``benchmark.extra_info``; ``nbytes`` directly or ``factor`` x |x| x itemsize (the byte model)."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape))
    if nbytes is None and factor is None:
        factor = BYTES_FACTOR.get(op)
    if nbytes is None and factor is not None:
        nbytes = factor * size * dtype.itemsize
    info = benchmark.extra_info
    info.update(op=op, backend=backend, shape=list(shape), threads=threads, dtype=dtype.name,
                bytes_model=(f"{factor} x |x| x {dtype.itemsize}" if factor is not None else None),
                bytes=nbytes, gbps=None, frac_of_triad=None, triad_ref=None)
    if op in FOOTPRINT:
        llc = llc_bytes()
        info["footprint_bytes"] = FOOTPRINT[op] * size * dtype.itemsize
        info["triad_ref"] = "llc" if llc and info["footprint_bytes"] <= llc else "dram"
    info.update(extra)
    t = median_seconds(benchmark)
    if t and nbytes:
        info["gbps"] = nbytes / t / 1e9
        triad = triad_gbps(threads, info["triad_ref"]) if info["triad_ref"] else None
        if triad:
            info["frac_of_triad"] = info["gbps"] / triad
    return info


def check_close(got, want, what, rtol=2e-4, atol=2e-4):
    """Compare a benchmarked result with the reference (float32 tolerances; once, outside the timing)."""
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64),
                               rtol=rtol, atol=atol, err_msg=what)
