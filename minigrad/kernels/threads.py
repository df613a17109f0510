"""The thread count of every kernel backend (OpenMP for Cython, Numba's pool) and of NumPy's BLAS.

Its own module so that the contract, which passes ``n_threads`` to each kernel call, imports it without importing
the registry (which imports the contract).
"""
import os

_num_threads = None


def get_num_threads():
    """Threads used by the Cython (OpenMP) and Numba kernels."""
    global _num_threads
    if _num_threads is None:
        env = os.environ.get("MINIGRAD_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
        try:
            _num_threads = max(1, int(env)) if env else (os.cpu_count() or 1)
        except ValueError:
            _num_threads = os.cpu_count() or 1
    return _num_threads


def set_num_threads(n):
    """Set the thread count of every kernel backend (OpenMP for Cython, Numba's pool), passed down to each call,
    and of NumPy's BLAS (matmul in Linear and Conv2d) when threadpoolctl is installed."""
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive integer, got {n!r}")
    _num_threads = n
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # NOTE: BLAS then keeps its own default (OPENBLAS_NUM_THREADS)
        return
    threadpool_limits(limits=n, user_api="blas")
