"""Shared pieces of the Numba kernels: the thread count given to numba's pool, the REASSOC fast-math flag, the
serial/parallel twins and the rounding of hyperparameters to the arrays' dtype. Imports numba: the registry imports
this package lazily."""
import threading
import types

import numba
import numpy as np
from numba import njit

_set = threading.local()  # the thread count last given to numba from this thread (numba's setting is per thread)


def _threads(n_threads):
    # NOTE: numba.set_num_threads costs about 1 us, as much as a small kernel: call it only on a change
    n = max(1, min(n_threads, numba.config.NUMBA_NUM_THREADS))
    if getattr(_set, "n", None) != n:
        numba.set_num_threads(n)
        _set.n = n


# NOTE: LLVM vectorizes a floating-point reduction only when it may reassociate the adds, so the kernels whose hot
# loop is a reduction are jitted with REASSOC and with no other fast-math flag: without nnan/ninf/nsz/arcp a NaN or
# inf still propagates as IEEE says (reassociation only changes the order, and the rounding, of finite sums). The
# order LLVM picks (vector width, interleave) is fixed when the function is compiled and each reduction loop covers
# the same values whatever the thread count (a channel over n in order, one row, one run of S), so results are
# bit-identical for any n_threads. Elementwise loops need no flag: they vectorize as they are.
REASSOC = {"reassoc"}

# NOTE: parallel=True would also turn NumPy calls (np.zeros) and slice assignments into parallel loops of their own:
# the twins parallelize their prange loops and nothing else. An instance, not a dict: numba pops the dict's keys.
# ParallelOptions is numba's internal class: a numba without it gets plain parallel=True (same bits, more regions).
try:
    from numba.core.cpu_options import ParallelOptions
    PRANGE_ONLY = ParallelOptions({"comprehension": False, "reduction": False, "inplace_binop": False,
                                   "setitem": False, "numpy": False, "stencil": False, "fusion": False,
                                   "prange": True})
except ImportError:  # pragma: no cover - numba moved it
    PRANGE_ONLY = True


class _Twins:
    """One kernel source jitted twice with the same flags: ``parallel``, whose prange loops run on numba's pool, and
    ``serial`` (parallel=False: each prange runs as a plain range and no parallel region is launched, which costs
    about 1 us even on one thread). Every prange body is the same code in both, each iteration runs alone and the
    reductions inside keep their fixed order, so both give the same bits (tests/test_kernels.py checks it)."""

    def __init__(self, f, fastmath, error_model="python"):
        # NOTE: numba's disk cache files a function's machine code under its qualified name and first line, not
        # under its flags: the serial copy gets a name of its own, or one variant would load the other's code
        serial = types.FunctionType(f.__code__, f.__globals__, f.__name__ + "_serial", f.__defaults__,
                                    f.__closure__)
        serial.__qualname__ = f.__qualname__ + "_serial"
        serial.__doc__ = f.__doc__
        self.parallel = njit(parallel=PRANGE_ONLY, cache=True, fastmath=fastmath, error_model=error_model)(f)
        self.serial = njit(cache=True, fastmath=fastmath, error_model=error_model)(serial)


def _twins(fastmath=False, error_model="python"):
    """``error_model="numpy"``: a float division by zero gives inf or NaN (IEEE) instead of raising, as eps=0 needs."""
    return lambda f: _Twins(f, fastmath, error_model)


def _pick(kernel, n_threads):
    """The serial twin of ``kernel`` for one thread, else its parallel twin with numba's pool set to n_threads."""
    if n_threads > 1:
        _threads(n_threads)
        return kernel.parallel
    return kernel.serial


# NOTE: a hyperparameter is rounded to X first, through a small X array: Numba would otherwise compute
# float32 * float64 in float64, and the result would differ from NumPy's (and Cython's) float32 arithmetic.
@njit(cache=True)
def _in_x(like, values):
    out = np.empty(len(values), like.dtype)
    for i in range(len(values)):
        out[i] = values[i]
    return out
