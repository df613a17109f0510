"""log_softmax kernels in Cython/OpenMP, rows layout x: (R, D), C-contiguous, float32 or float64.

  R rows, D row length. Math: see minigrad/kernels/reference/softmax.py. Signatures: minigrad/kernels/contract.py.
Cross entropy's pair (target: (R,) int64 class indices) is log_softmax's with the gather at the targets
(forward) and the one-hot dy (backward) in the same call: the same per-row arithmetic, so the same bits.
Rows are independent: the loop over rows is parallel, each thread writes only its own rows. Per row the max and
the sum of exp are accumulated in double and in a fixed order, so results do not depend on n_threads.
"""
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport NAN, exp, log

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


# x, y: (D,) one row; returns y[t] in double, NaN for t outside [0, D) (the contract cannot check the values)
cdef double _cross_entropy_row(floating* y,           # OUT
                               const floating* x,     # IN
                               long long t,
                               Py_ssize_t D) noexcept nogil:
    _log_softmax_row(y, x, D)
    if t < 0 or t >= D:
        return NAN
    return <double>y[t]


# dx, y: (D,) one row: _log_softmax_backward_row's with dy = v at t, 0 elsewhere (s is that dy's sum in double,
# in the order of j: 0.0 + v)
cdef void _cross_entropy_backward_row(floating* dx,          # OUT
                                      const floating* y,     # IN
                                      long long t,
                                      floating v,
                                      Py_ssize_t D) noexcept nogil:
    cdef Py_ssize_t j
    cdef double s = 0.0
    if 0 <= t < D:
        s += v
    for j in range(D):
        dx[j] = <floating>(<double>(v if j == t else <floating>0.0) - exp(<double>y[j]) * s)


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


# x, logp: (R, D); target: (R,); picked: (R,)
cdef void _cross_entropy(floating* logp, double* picked, const floating* x, const long long* target, Py_ssize_t R,
                         Py_ssize_t D, int n_threads) noexcept nogil:
    cdef Py_ssize_t r
    if n_threads == 1:
        for r in range(R):
            picked[r] = _cross_entropy_row(logp + r * D, x + r * D, target[r], D)
        return
    for r in prange(R, schedule='static', num_threads=n_threads):
        picked[r] = _cross_entropy_row(logp + r * D, x + r * D, target[r], D)


# dx, logp: (R, D); target: (R,)
cdef void _cross_entropy_backward(floating* dx, const floating* logp, const long long* target, floating v,
                                  Py_ssize_t R, Py_ssize_t D, int n_threads) noexcept nogil:
    cdef Py_ssize_t r
    if n_threads == 1:
        for r in range(R):
            _cross_entropy_backward_row(dx + r * D, logp + r * D, target[r], v, D)
        return
    for r in prange(R, schedule='static', num_threads=n_threads):
        _cross_entropy_backward_row(dx + r * D, logp + r * D, target[r], v, D)


def cross_entropy_forward(cnp.ndarray logp not None, cnp.ndarray picked not None, cnp.ndarray x not None,
                          cnp.ndarray target not None, Py_ssize_t n_threads):
    """logp = log_softmax_forward(x); picked[r] = logp[r, target[r]] in float64 (NaN for a target outside [0, D))."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t R = dim(x, 0), D = dim(x, 1)
    cdef bint f32 = is_float32(x)
    cdef void* p_logp = ptr(logp), *p_x = ptr(x)
    cdef double* p_picked = <double*>ptr(picked)
    cdef const long long* p_t = <const long long*>ptr(target)
    if R * D == 0:
        return
    with nogil:
        if f32:
            _cross_entropy(<float*>p_logp, p_picked, <float*>p_x, p_t, R, D, n_threads)
        else:
            _cross_entropy(<double*>p_logp, p_picked, <double*>p_x, p_t, R, D, n_threads)


def cross_entropy_backward(cnp.ndarray dx not None, cnp.ndarray logp not None, cnp.ndarray target not None,
                           double scale, Py_ssize_t n_threads):
    """log_softmax_backward(dx, dy, logp) for dy = X(scale) at (r, target[r]) and 0 elsewhere."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t R = dim(logp, 0), D = dim(logp, 1)
    cdef bint f32 = is_float32(logp)
    cdef void* p_dx = ptr(dx), *p_logp = ptr(logp)
    cdef const long long* p_t = <const long long*>ptr(target)
    if R * D == 0:
        return
    with nogil:
        if f32:
            _cross_entropy_backward(<float*>p_dx, <float*>p_logp, p_t, <float>scale, R, D, n_threads)
        else:
            _cross_entropy_backward(<double*>p_dx, <double*>p_logp, p_t, scale, R, D, n_threads)
