"""The thread count of every kernel backend (OpenMP for Cython, Numba's pool) and of NumPy's BLAS.

Its own module so that the contract, which passes ``n_threads`` to each kernel call, imports it without importing
the registry (which imports the contract).

The count is at most ``max_threads()``: one thread per usable CPU (as Numba's pool, ``NUMBA_NUM_THREADS``), but
never less than ``TEAM_FLOOR``. More threads than CPUs never speed these kernels, yet a few extra are legitimate
(the tests split work unevenly, 3 or 4 threads on 2 cores) and libgomp starts 64 anywhere; an absurd count is
what broke: 10**6 threads overflow libgomp's stack (SIGSEGV), 40000 make it exit the process when thread creation
fails. The compiled kernels apply the same bound to a raw call (``team_size`` in minigrad/_ext/_openmp.pxd).
"""
import numbers
import os
import warnings

TEAM_FLOOR = 64  # NOTE: the same constant as MG_TEAM_FLOOR in minigrad/_ext/_openmp.pxd

_num_threads = None


def max_threads():
    """The largest thread count minigrad uses: max(TEAM_FLOOR, the CPUs this process may run on)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # NOTE: no sched_getaffinity on macOS and Windows
        cpus = os.cpu_count() or 1
    return max(TEAM_FLOOR, cpus)


def _clamped(n, source):
    bound = max_threads()
    if n > bound:
        warnings.warn(f"{source}: {n} threads is more than this machine can use; using {bound} "
                      f"(the most minigrad starts: max({TEAM_FLOOR}, its CPU count))", RuntimeWarning, stacklevel=3)
        return bound
    return n


def get_num_threads():
    """Threads used by the Cython (OpenMP) and Numba kernels: set_num_threads's value, else MINIGRAD_NUM_THREADS or
    OMP_NUM_THREADS, else the CPU count."""
    global _num_threads
    if _num_threads is None:
        name = "MINIGRAD_NUM_THREADS" if os.environ.get("MINIGRAD_NUM_THREADS") else "OMP_NUM_THREADS"
        env = os.environ.get(name)
        try:
            n = max(1, int(env)) if env else (os.cpu_count() or 1)
        except ValueError:  # NOTE: OMP_NUM_THREADS may be a nesting list ("4,2"): not ours to parse
            n = os.cpu_count() or 1
        _num_threads = _clamped(n, name)
    return _num_threads


def set_num_threads(n):
    """Set the thread count of every kernel backend (OpenMP for Cython, Numba's pool), passed down to each call,
    and of NumPy's BLAS (matmul in Linear and Conv2d) when threadpoolctl is installed.

    ``n`` must be a positive integer; above ``max_threads()`` it is clamped to that bound, with a RuntimeWarning."""
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive integer, got {n!r}")
    n = _clamped(int(n), "set_num_threads")
    _num_threads = n
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # NOTE: BLAS then keeps its own default (OPENBLAS_NUM_THREADS)
        return
    threadpool_limits(limits=n, user_api="blas")
