"""The thread count of every kernel backend (OpenMP for Cython, Numba's pool), and who else may use the cores:
NumPy's BLAS and the OpenMP runtime's idle threads (docs/perf/threads.md, "Threads: who owns the cores").

Its own module so that the contract, which passes ``n_threads`` to each kernel call, imports it without importing
the registry (which imports the contract).

The count is at most ``max_threads()``: one thread per usable CPU (as Numba's pool, ``NUMBA_NUM_THREADS``), but
never less than ``TEAM_FLOOR``. More threads than CPUs never speed these kernels, yet a few extra are legitimate
(the tests split work unevenly, 3 or 4 threads on 2 cores) and libgomp starts 64 anywhere; an absurd count is
what broke: 10**6 threads overflow libgomp's stack (SIGSEGV), 40000 make it exit the process when thread creation
fails. The compiled kernels apply the same bound to a raw call (``team_size`` in minigrad/_ext/_openmp.pxd).

Two process-wide policies, both measured on ResNet-20 at 2 threads (docs/perf/threads.md):
- NumPy's OpenBLAS runs at 1 thread (``set_num_threads(n, blas=1)``; from the environment unless
  OPENBLAS_NUM_THREADS or GOTO_NUM_THREADS says otherwise): its pthreads workers spin for about 0.1 s after each
  GEMM, holding the core that the next OpenMP kernel needs (CPU time = 2x wall and no speed-up from a second
  thread). The GEMMs themselves are a small part of a step (the im2col path's and Linear's).
- A short spin, then sleep: ``import minigrad`` sets OMP_WAIT_POLICY=passive and GOMP_SPINCOUNT=1000 (libgomp,
  the runtime of the GCC builds, spins that long before it sleeps; other runtimes read the policy) in the
  environment before its kernels load libgomp (which reads them once, when it loads), unless the user set
  OMP_WAIT_POLICY or GOMP_SPINCOUNT or an OpenMP runtime is already loaded. The runtime's default spins about 3 ms
  at each barrier, against the BLAS workers and whatever else runs on the machine; a purely passive wait (spin 0,
  sessions 1-37) pays a futex wake-up at each of a ResNet-20 step's ~125 parallel regions: at 2 threads on the
  2-core Zen 3 VM, quiet, 100.4 ms a step passive against 74.2 with 1000 spins (1-thread step 123.4), and with a
  busy loop on the other core 130.8 against 145.2 (10000 spins: 72.9 quiet, 218.7 busy): docs/perf/threads.md,
  "Session 38's end" (libgomp: 141 voluntary context switches a step with the spin, passive beside it or not; 410
  with passive alone).
"""
import numbers
import os
import warnings

from minigrad.kernels.blas import get_blas_num_threads, set_blas_num_threads  # noqa: F401  (re-exported)

TEAM_FLOOR = 64  # NOTE: the same constant as MG_TEAM_FLOOR in minigrad/_ext/_openmp.pxd

# environment variables by which a user sets OpenBLAS's thread count (pthreads builds read these two first)
BLAS_ENV = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS")
OPENMP_RUNTIMES = ("libgomp", "libomp", "libiomp")

_num_threads = None
SPINCOUNT = "1000"  # NOTE: libgomp's spins before a waiting thread sleeps (about 10 us by libgomp's own estimate)
wait_policy_set = None  # what ``import minigrad`` set ("passive, GOMP_SPINCOUNT=1000"), or None where it set nothing


def default_wait_policy():
    """Set OMP_WAIT_POLICY=passive and GOMP_SPINCOUNT=SPINCOUNT in the environment unless the user chose a policy (OMP_WAIT_POLICY or
    GOMP_SPINCOUNT set) or an OpenMP runtime is already loaded (it read its environment when it loaded: setting it
    now would reach only runtimes loaded later). Runs once when this module is imported (by ``import minigrad``,
    before any kernel loads libgomp). Returns the policy set, or None."""
    global wait_policy_set
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ or _openmp_loaded():
        return None
    os.environ["OMP_WAIT_POLICY"] = "passive"
    os.environ["GOMP_SPINCOUNT"] = SPINCOUNT
    wait_policy_set = f"passive, GOMP_SPINCOUNT={SPINCOUNT}"
    return wait_policy_set


def _openmp_loaded():
    try:
        with open("/proc/self/maps") as f:
            return any(rt in line for line in f for rt in OPENMP_RUNTIMES)
    except OSError:  # NOTE: no /proc (macOS, Windows): nothing to tell; the environment is still read at load
        return False


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
        if not any(os.environ.get(k) for k in BLAS_ENV):  # NOTE: the user's own BLAS setting wins
            set_blas_num_threads(1)
    return _num_threads


def set_num_threads(n, *, blas=1):
    """Set the thread count of every kernel backend (OpenMP for Cython, Numba's pool), passed down to each call,
    and that of NumPy's OpenBLAS (the GEMMs of Linear and of Conv2d's im2col path): ``blas`` threads, 1 unless
    given (an idle OpenBLAS worker spins and holds a core the kernels need; docs/perf/threads.md); ``None`` leaves
    BLAS as it is. Without OpenBLAS (NumPy on MKL or Accelerate) ``blas`` changes nothing.

    ``n`` must be a positive integer; above ``max_threads()`` it is clamped to that bound, with a RuntimeWarning."""
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive integer, got {n!r}")
    if blas is not None and (isinstance(blas, bool) or not isinstance(blas, numbers.Integral) or blas < 1):
        raise ValueError(f"set_num_threads: blas must be a positive integer or None, got {blas!r}")
    n = _clamped(int(n), "set_num_threads")
    _num_threads = n
    if blas is not None:
        set_blas_num_threads(int(blas))


default_wait_policy()  # NOTE: at import, before the first kernel loads libgomp
if not any(os.environ.get(k) for k in BLAS_ENV):
    # NOTE: BLAS at 1 thread from the start, not from the first read of the thread count (a kernel call on more
    # than SMALL elements): GEMMs made before it ran on every core, and a multi-threaded OpenBLAS GEMM rounds
    # differently, so the first training step of a process differed in its last bits from the same step later
    # (minigrad.compile's recording against eager in tests/test_compile.py)
    set_blas_num_threads(1)
