"""log_softmax kernels in Cython/OpenMP, rows layout x: (R, D), C-contiguous, float32 or float64.

  R rows, D row length. Math: see minigrad/kernels/reference/softmax.py. Signatures: minigrad/kernels/contract.py.
Rows are independent: the loop over rows is parallel, each thread writes only its own rows. Per row the max and
the sum of exp are accumulated in double and in a fixed order, so results do not depend on n_threads.
"""
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, log

from minigrad._ext._arrays cimport dim, is_float32, ptr
from minigrad._ext._openmp cimport team_size

cnp.import_array()


# x, y: (D,) one row
cdef void _log_softmax_row(floating* y,           # OUT
                           const floating* x,     # IN
                           Py_ssize_t D) noexcept nogil:
    cdef Py_ssize_t j
    cdef double m = x[0], s = 0.0, log_s
    for j in range(1, D):
        if x[j] > m:  # NOTE: a NaN never wins here, but it makes the sum NaN below, so the row still is NaN
            m = x[j]
    for j in range(D):
        s += exp(<double>x[j] - m)
    log_s = log(s)
    for j in range(D):
        y[j] = <floating>((<double>x[j] - m) - log_s)


# dx, dy, y: (D,) one row
cdef void _log_softmax_backward_row(floating* dx,          # OUT
                                    const floating* dy,    # IN
                                    const floating* y,     # IN
                                    Py_ssize_t D) noexcept nogil:
    cdef Py_ssize_t j
    cdef double s = 0.0
    for j in range(D):
        s += dy[j]
    for j in range(D):
        dx[j] = <floating>(<double>dy[j] - exp(<double>y[j]) * s)


# x, y: (R, D)
cdef void _log_softmax(floating* y, const floating* x, Py_ssize_t R, Py_ssize_t D, int n_threads) noexcept nogil:
    cdef Py_ssize_t r
    if n_threads == 1:  # NOTE: no parallel region to open (0.5 us a call); the rows are independent
        for r in range(R):
            _log_softmax_row(y + r * D, x + r * D, D)
        return
    for r in prange(R, schedule='static', num_threads=n_threads):
        _log_softmax_row(y + r * D, x + r * D, D)


# dx, dy, y: (R, D)
cdef void _log_softmax_backward(floating* dx, const floating* dy, const floating* y, Py_ssize_t R, Py_ssize_t D,
                                int n_threads) noexcept nogil:
    cdef Py_ssize_t r
    if n_threads == 1:  # NOTE: no parallel region to open (0.5 us a call); the rows are independent
        for r in range(R):
            _log_softmax_backward_row(dx + r * D, dy + r * D, y + r * D, D)
        return
    for r in prange(R, schedule='static', num_threads=n_threads):
        _log_softmax_backward_row(dx + r * D, dy + r * D, y + r * D, D)


# the def wrappers: contract signatures + n_threads (see _arrays.pxd: the contract has checked the arguments)

def log_softmax_forward(cnp.ndarray y not None, cnp.ndarray x not None, Py_ssize_t n_threads):
    """y = x - max - log(sum(exp(x - max))) per row."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t R = dim(x, 0), D = dim(x, 1)
    cdef bint f32 = is_float32(x)
    cdef void* p_y = ptr(y), *p_x = ptr(x)
    if R * D == 0:
        return
    with nogil:
        if f32:
            _log_softmax(<float*>p_y, <float*>p_x, R, D, n_threads)
        else:
            _log_softmax(<double*>p_y, <double*>p_x, R, D, n_threads)


def log_softmax_backward(cnp.ndarray dx not None, cnp.ndarray dy not None, cnp.ndarray y not None,
                         Py_ssize_t n_threads):
    """dx = dy - exp(y)*sum(dy) per row."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t R = dim(dy, 0), D = dim(dy, 1)
    cdef bint f32 = is_float32(dy)
    cdef void* p_dx = ptr(dx), *p_dy = ptr(dy), *p_y = ptr(y)
    if R * D == 0:
        return
    with nogil:
        if f32:
            _log_softmax_backward(<float*>p_dx, <float*>p_dy, <float*>p_y, R, D, n_threads)
        else:
            _log_softmax_backward(<double*>p_dx, <double*>p_dy, <double*>p_y, R, D, n_threads)
