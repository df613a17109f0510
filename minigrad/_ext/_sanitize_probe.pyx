"""TEST-ONLY: planted faults for tests/test_sanitizer.py. Nothing in minigrad imports this module.

The kernels take raw data pointers and trust the sizes they are given (the contract checks them first), so an
out-of-bounds index there is invisible to Cython's boundscheck. These functions do the same with a size the
caller controls, so that the sanitized build (MINIGRAD_SANITIZE=1) can be shown to catch a lying size.
"""
cimport numpy as cnp

from minigrad._ext._arrays cimport ptr

cnp.import_array()


def sum_first(cnp.ndarray x not None, Py_ssize_t n):
    """Sum of the first ``n`` float64 values of ``x``'s buffer, ``n`` NOT checked against ``x.size``."""
    cdef const double* p = <const double*>ptr(x)
    cdef double s = 0
    cdef Py_ssize_t i
    if cnp.PyArray_TYPE(x) != cnp.NPY_FLOAT64:
        raise TypeError("sum_first takes a float64 array")
    with nogil:
        for i in range(n):
            s += p[i]
    return s


def shift_left(int x, int k):
    """``x << k`` in C int: undefined behaviour for k >= 32 (what UBSan must stop)."""
    return x << k
