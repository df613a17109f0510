"""log_softmax kernels in Cython/OpenMP, rows layout x: (R, D), C-contiguous, float32 or float64.

  R rows, D row length. Math: see minigrad/kernels/reference.py. Signatures: minigrad/kernels/contract.py.
Rows are independent: the loop over rows is parallel, each thread writes only its own rows. Per row the max and
the sum of exp are accumulated in double and in a fixed order, so results do not depend on n_threads.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, log


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
def log_softmax_forward(floating[:, ::1] y, const floating[:, ::1] x, int n_threads):
    """y = x - max - log(sum(exp(x - max))) per row."""
    cdef Py_ssize_t R = x.shape[0], D = x.shape[1], r
    if R == 0 or D == 0:
        return
    for r in prange(R, nogil=True, schedule='static', num_threads=n_threads):
        _log_softmax_row(&y[r, 0], &x[r, 0], D)


# dx, dy, y: (R, D)
def log_softmax_backward(floating[:, ::1] dx, const floating[:, ::1] dy, const floating[:, ::1] y,
                         int n_threads):
    """dx = dy - exp(y)*sum(dy) per row."""
    cdef Py_ssize_t R = dy.shape[0], D = dy.shape[1], r
    if R == 0 or D == 0:
        return
    for r in prange(R, nogil=True, schedule='static', num_threads=n_threads):
        _log_softmax_backward_row(&dx[r, 0], &dy[r, 0], &y[r, 0], D)
