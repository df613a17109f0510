"""Elementwise kernels in Cython/OpenMP on flat arrays of M values: a sum (autograd's fan-out), a residual block's
add + ReLU (and its backward from two gradient contributions: the fan-out sum and the mask), and the sigmoid, forward
and backward, each one pass (NumPy's add + ReLU makes three forward passes, with a sum, a mask and the max, and a
masked product backward). The rules, rounding by rounding, are those of minigrad/kernels/reference/elementwise.py:
the sum rounded to X, then the max; the backward's product with X(1) or X(0). Elements are independent: the prange
writes disjoint chunks, and the chunking changes no result. The sigmoid's loops are C (elementwise.h: float's exp in
vector lanes, which the NumPy composition's four passes and a Cython loop calling libm's expf both lose to).
"""
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange

from minigrad._ext._arrays cimport dim, is_float32, ptr
from minigrad._ext._openmp cimport team_size

cnp.import_array()

# elements per parallel chunk (as the optimizer updates')
cdef Py_ssize_t CHUNK = 1 << 14

cdef extern from "elementwise.h":
    void mge_sigmoid_forward_float(float* y, const float* x, Py_ssize_t n) noexcept nogil
    void mge_sigmoid_forward_double(double* y, const double* x, Py_ssize_t n) noexcept nogil
    void mge_sigmoid_backward_float(float* dx, const float* dy, const float* y, Py_ssize_t n) noexcept nogil
    void mge_sigmoid_backward_double(double* dx, const double* dy, const double* y, Py_ssize_t n) noexcept nogil


# y, a, b: (M,); y = max(0, a + b) as NumPy's maximum gives it: NaN stays NaN, -0.0 becomes +0
cdef void _add_relu_forward(floating* y, const floating* a, const floating* b, Py_ssize_t M,
                            int n_threads) noexcept nogil:
    cdef Py_ssize_t k, i, lo, hi
    cdef floating s
    for k in prange((M + CHUNK - 1) // CHUNK, schedule='static', num_threads=n_threads):
        lo = k * CHUNK
        hi = min(M, lo + CHUNK)
        for i in range(lo, hi):
            s = a[i] + b[i]
            y[i] = s if (s > 0 or s != s) else 0


# dx, dy, y: (M,); dx = dy * X(y > 0): the product, not a select, so that an inf dy where y <= 0 gives NaN as the
# unfused ReLU's product with its mask does
cdef void _add_relu_backward(floating* dx, const floating* dy, const floating* y, Py_ssize_t M,
                             int n_threads) noexcept nogil:
    cdef Py_ssize_t k, i, lo, hi
    for k in prange((M + CHUNK - 1) // CHUNK, schedule='static', num_threads=n_threads):
        lo = k * CHUNK
        hi = min(M, lo + CHUNK)
        for i in range(lo, hi):
            dx[i] = dy[i] * (<floating>1 if y[i] > 0 else <floating>0)


# dx, dy0, dy1, y: (M,); dx = X(dy0 + dy1) * X(y > 0): the walk's fan-out sum of the two contributions (in that order)
# and _add_relu_backward's product, in one pass where the two made two. NOTE: one expression, no variable for the
# sum: a prange's variable is lastprivate, which kept gcc from vectorizing the loop (a branch a value, 40x slower)
cdef void _add_relu_backward_sum(floating* dx, const floating* dy0, const floating* dy1, const floating* y,
                                 Py_ssize_t M, int n_threads) noexcept nogil:
    cdef Py_ssize_t k, i, lo, hi
    for k in prange((M + CHUNK - 1) // CHUNK, schedule='static', num_threads=n_threads):
        lo = k * CHUNK
        hi = min(M, lo + CHUNK)
        for i in range(lo, hi):
            dx[i] = (dy0[i] + dy1[i]) * (<floating>1 if y[i] > 0 else <floating>0)


# y, a, b: (M,); y = a + b, one rounding per element (NumPy's a + b): autograd's fan-out sums of large gradients
cdef void _add(floating* y, const floating* a, const floating* b, Py_ssize_t M, int n_threads) noexcept nogil:
    cdef Py_ssize_t k, i, lo, hi
    for k in prange((M + CHUNK - 1) // CHUNK, schedule='static', num_threads=n_threads):
        lo = k * CHUNK
        hi = min(M, lo + CHUNK)
        for i in range(lo, hi):
            y[i] = a[i] + b[i]


# the def wrappers: contract signatures + n_threads (see _arrays.pxd: the contract has checked the arguments)

def add(cnp.ndarray y not None, cnp.ndarray a not None, cnp.ndarray b not None, Py_ssize_t n_threads):
    """y = a + b on flat arrays (rule: reference.add)."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t M = dim(y, 0)
    cdef bint f32 = is_float32(y)
    cdef void* p_y = ptr(y), *p_a = ptr(a), *p_b = ptr(b)
    with nogil:
        if f32:
            _add(<float*>p_y, <float*>p_a, <float*>p_b, M, n_threads)
        else:
            _add(<double*>p_y, <double*>p_a, <double*>p_b, M, n_threads)


def add_relu_forward(cnp.ndarray y not None, cnp.ndarray a not None, cnp.ndarray b not None, Py_ssize_t n_threads):
    """y = max(0, a + b) on flat arrays (rule: reference.add_relu_forward)."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t M = dim(y, 0)
    cdef bint f32 = is_float32(y)
    cdef void* p_y = ptr(y), *p_a = ptr(a), *p_b = ptr(b)
    with nogil:
        if f32:
            _add_relu_forward(<float*>p_y, <float*>p_a, <float*>p_b, M, n_threads)
        else:
            _add_relu_forward(<double*>p_y, <double*>p_a, <double*>p_b, M, n_threads)


def add_relu_backward(cnp.ndarray dx not None, cnp.ndarray dy not None, cnp.ndarray y not None,
                      Py_ssize_t n_threads):
    """dx = dy * [y > 0] on flat arrays (rule: reference.add_relu_backward)."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t M = dim(dx, 0)
    cdef bint f32 = is_float32(dx)
    cdef void* p_dx = ptr(dx), *p_dy = ptr(dy), *p_y = ptr(y)
    with nogil:
        if f32:
            _add_relu_backward(<float*>p_dx, <float*>p_dy, <float*>p_y, M, n_threads)
        else:
            _add_relu_backward(<double*>p_dx, <double*>p_dy, <double*>p_y, M, n_threads)


def add_relu_backward_sum(cnp.ndarray dx not None, cnp.ndarray dy0 not None, cnp.ndarray dy1 not None,
                          cnp.ndarray y not None, Py_ssize_t n_threads):
    """dx = (dy0 + dy1) * [y > 0] on flat arrays (rule: reference.add_relu_backward_sum)."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t M = dim(dx, 0)
    cdef bint f32 = is_float32(dx)
    cdef void* p_dx = ptr(dx), *p_dy0 = ptr(dy0), *p_dy1 = ptr(dy1), *p_y = ptr(y)
    with nogil:
        if f32:
            _add_relu_backward_sum(<float*>p_dx, <float*>p_dy0, <float*>p_dy1, <float*>p_y, M, n_threads)
        else:
            _add_relu_backward_sum(<double*>p_dx, <double*>p_dy0, <double*>p_dy1, <double*>p_y, M, n_threads)


# y = 1/(1 + exp(-x)), dx = dy*(1 - y)*y: chunks of CHUNK (a multiple of the 8 lanes, so a chunk's split into
# vectors and tail is the one-thread split's) over the threads

cdef void _sigmoid_forward(floating* y, const floating* x, Py_ssize_t M, int n_threads) noexcept nogil:
    cdef Py_ssize_t k, lo
    if n_threads == 1:  # NOTE: no parallel region to open (0.5 us a call); one pass over M gives the chunks' bits
        if floating is float:
            mge_sigmoid_forward_float(y, x, M)
        else:
            mge_sigmoid_forward_double(y, x, M)
        return
    for k in prange((M + CHUNK - 1) // CHUNK, schedule='static', num_threads=n_threads):
        lo = k * CHUNK
        if floating is float:
            mge_sigmoid_forward_float(y + lo, x + lo, min(M - lo, CHUNK))
        else:
            mge_sigmoid_forward_double(y + lo, x + lo, min(M - lo, CHUNK))


cdef void _sigmoid_backward(floating* dx, const floating* dy, const floating* y, Py_ssize_t M,
                            int n_threads) noexcept nogil:
    cdef Py_ssize_t k, lo
    if n_threads == 1:  # NOTE: as in _sigmoid_forward
        if floating is float:
            mge_sigmoid_backward_float(dx, dy, y, M)
        else:
            mge_sigmoid_backward_double(dx, dy, y, M)
        return
    for k in prange((M + CHUNK - 1) // CHUNK, schedule='static', num_threads=n_threads):
        lo = k * CHUNK
        if floating is float:
            mge_sigmoid_backward_float(dx + lo, dy + lo, y + lo, min(M - lo, CHUNK))
        else:
            mge_sigmoid_backward_double(dx + lo, dy + lo, y + lo, min(M - lo, CHUNK))


def sigmoid_forward(cnp.ndarray y not None, cnp.ndarray x not None, Py_ssize_t n_threads):
    """y = 1/(1 + exp(-x)) on flat arrays (rule: reference.sigmoid_forward)."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t M = dim(y, 0)
    cdef bint f32 = is_float32(y)
    cdef void* p_y = ptr(y), *p_x = ptr(x)
    with nogil:
        if f32:
            _sigmoid_forward(<float*>p_y, <float*>p_x, M, n_threads)
        else:
            _sigmoid_forward(<double*>p_y, <double*>p_x, M, n_threads)


def sigmoid_backward(cnp.ndarray dx not None, cnp.ndarray dy not None, cnp.ndarray y not None,
                     Py_ssize_t n_threads):
    """dx = dy*(1 - y)*y on flat arrays (rule: reference.sigmoid_backward)."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t M = dim(dx, 0)
    cdef bint f32 = is_float32(dx)
    cdef void* p_dx = ptr(dx), *p_dy = ptr(dy), *p_y = ptr(y)
    with nogil:
        if f32:
            _sigmoid_backward(<float*>p_dx, <float*>p_dy, <float*>p_y, M, n_threads)
        else:
            _sigmoid_backward(<double*>p_dx, <double*>p_dy, <double*>p_y, M, n_threads)
