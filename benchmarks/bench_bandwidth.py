"""STREAM-style memory bandwidth: copy (a = b) and triad (a = b + s c), float32, the yardstick of the norm kernels.

Sizes: "llc" 1 MiB per array (fits the last-level cache) and "dram" 64 MiB per array (does not); also "tensor",
arrays as large as the 1.6M-element float32 tensors of the LLC-class norm cases (6.125 MiB each: a triad over
three of them, 18.4 MiB, is where this VM's share of the L3 runs out), an informational yardstick that
``minigrad.app.bench_report`` quotes beside the LLC one (the targets use "llc" and "dram"). Byte model as STREAM: copy 2
arrays, triad 3 arrays (write-allocate traffic not counted).

* numpy: copy is ``np.copyto``; NumPy has no fused triad, so triad is ``np.multiply(c, s, out=a); a += b``
  (two passes, but counted as STREAM counts it: a lower bound of the real traffic). With 2 threads the arrays
  are split in halves run on a thread pool (NumPy releases the GIL in ufuncs).
* numba: single-pass triad in ``@njit(parallel=True)`` with ``prange`` (the honest STREAM triad).

Each test writes its GB/s into the side file ``.benchmarks/bandwidth.json`` (keys ``triad_llc_gbps`` and
``triad_dram_gbps`` hold the best triad per thread count); ``conftest.record`` divides the kernels' GB/s by the
one that matches the op's footprint (``frac_of_triad``, ``triad_ref``), and ``minigrad.app.bench_report`` recomputes the
same fraction from the triad rows of the merged JSON of one run.
"""
import json
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import minigrad

from conftest import BANDWIDTH_JSON, median_seconds, pin_threads, record

SIZES = {"llc": 1 << 20, "tensor": 32 * 64 * 28 * 28 * 4, "dram": 64 << 20}  # bytes per array
DTYPE = np.float32
SCALAR = np.float32(3.0)


def _arrays(nbytes):
    n = nbytes // np.dtype(DTYPE).itemsize
    rng = np.random.default_rng(0)
    return np.zeros(n, DTYPE), rng.random(n, dtype=DTYPE), rng.random(n, dtype=DTYPE)


def _split(threads, *arrays):
    n = arrays[0].shape[0]
    bounds = np.linspace(0, n, threads + 1).astype(int)
    return [tuple(a[lo:hi] for a in arrays) for lo, hi in zip(bounds[:-1], bounds[1:])]


def _numpy_copy(a, b):
    np.copyto(a, b)


def _numpy_triad(a, b, c):
    np.multiply(c, SCALAR, out=a)
    np.add(a, b, out=a)


def _threaded(fn, threads, *arrays):
    if threads == 1:
        return lambda: fn(*arrays)
    pool = ThreadPoolExecutor(threads)
    parts = _split(threads, *arrays)

    def run():
        for f in [pool.submit(fn, *p) for p in parts]:
            f.result()

    run.pool = pool
    return run


_NUMBA = {}


def _numba_kernels():
    if not _NUMBA:
        numba = pytest.importorskip("numba")

        @numba.njit(parallel=True, cache=False)
        def triad(a, b, c, s):
            for i in numba.prange(a.shape[0]):
                a[i] = b[i] + s * c[i]

        @numba.njit(parallel=True, cache=False)
        def copy(a, b):
            for i in numba.prange(a.shape[0]):
                a[i] = b[i]

        _NUMBA.update(triad=triad, copy=copy)
    return _NUMBA


def _save(op, size, threads, backend, gbps):
    """Merge one figure into the side file (best triad per thread count at the DRAM size)."""
    if gbps is None:
        return
    os.makedirs(os.path.dirname(BANDWIDTH_JSON), exist_ok=True)
    try:
        with open(BANDWIDTH_JSON) as f:
            data = json.load(f)
    except (OSError, ValueError):
        data = {}
    data.setdefault("gbps", {})[f"{op}/{size}/{backend}/threads{threads}"] = gbps
    if op == "triad":
        best = data.setdefault(f"triad_{size}_gbps", {})
        best[str(threads)] = max(best.get(str(threads), 0.0), gbps)
    with open(BANDWIDTH_JSON, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("op", ["copy", "triad"])
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_bandwidth(benchmark, backend, op, size, threads):
    a, b, c = _arrays(SIZES[size])
    if backend == "numpy":
        fn = _threaded(_numpy_copy, threads, a, b) if op == "copy" else _threaded(_numpy_triad, threads, a, b, c)
    else:
        k = _numba_kernels()
        restore = pin_threads(threads)  # numba was imported just now: pin its pool too
        if op == "copy":
            def fn():
                k["copy"](a, b)
        else:
            def fn():
                k["triad"](a, b, c, SCALAR)
        fn()  # JIT compile outside the timing
    fn()
    want = b if op == "copy" else b + SCALAR * c
    np.testing.assert_allclose(a, want, rtol=1e-6)
    benchmark.group = f"bandwidth {op} {size} threads{threads}"
    benchmark(fn)
    arrays = 2 if op == "copy" else 3
    info = record(benchmark, op=op, backend=backend, shape=(a.shape[0],), threads=threads, dtype=DTYPE,
                  nbytes=arrays * a.nbytes, size=size)
    info["bytes_model"] = f"{arrays} x n x {a.itemsize} (STREAM)"
    info["frac_of_triad"] = None
    if median_seconds(benchmark) is not None:
        _save(op, size, threads, backend, info["gbps"])
    if getattr(fn, "pool", None):
        fn.pool.shutdown()
    if backend == "numba":
        restore()


# (M, K, N) of C = A @ B in float32: square, and ResNet-20's widest 3x3 convolution at batch 32 as an im2col GEMM
# (64 filters x 576 taps x 32*8*8 positions), the conv nets' compute yardstick (GFLOP/s = 2 M K N / time)
GEMM_SHAPES = {"square512": (512, 512, 512), "resnet20-conv3": (64, 576, 2048)}


@pytest.mark.parametrize("name", list(GEMM_SHAPES))
def test_gemm(benchmark, name, threads):
    m, k, n = GEMM_SHAPES[name]
    rng = np.random.default_rng(0)
    a, b = rng.random((m, k), dtype=DTYPE), rng.random((k, n), dtype=DTYPE)
    out = np.empty((m, n), DTYPE)

    def fn():
        np.matmul(a, b, out=out)
    fn()
    np.testing.assert_allclose(out[:2, :2], a[:2].astype(np.float64) @ b[:, :2], rtol=1e-4)
    benchmark.group = f"gemm {name} threads{threads}"
    # NOTE: the yardstick is the machine's GEMM at this thread count: OpenBLAS at ``threads``, not minigrad's
    # policy of 1 (the ``threads`` fixture's set_num_threads), restored after
    prev = minigrad.get_blas_num_threads()
    minigrad.set_blas_num_threads(threads)
    try:
        benchmark(fn)
    finally:
        if prev is not None:
            minigrad.set_blas_num_threads(prev)
    info = record(benchmark, op="gemm", backend="numpy", shape=(m, k, n), threads=threads, dtype=DTYPE,
                  nbytes=None, factor=None, size=name)
    t = median_seconds(benchmark)
    info["gflops"] = 2.0 * m * k * n / t / 1e9 if t else None
