# Raw access to the arrays the def wrappers receive. The wrappers are typed ``cnp.ndarray x not None`` and take the
# data pointers directly. Shapes, dtypes and C-contiguity are the contract's to check
# (minigrad/kernels/contract.py): every call through ``minigrad.kernels`` is checked before it gets here; these
# helpers only pick the float32 or float64 instance.
# NOTE: not typed memoryviews: acquiring them costs more than a small kernel
# (docs/perf/norm-kernels.md#wrapper-arguments)
cimport numpy as cnp


cdef inline bint is_float32(cnp.ndarray x) except -1:
    """True for float32 data, False for float64; TypeError for anything else."""
    cdef int t = cnp.PyArray_TYPE(x)
    if t == cnp.NPY_FLOAT32:
        return True
    if t == cnp.NPY_FLOAT64:
        return False
    raise TypeError(f"expected a float32 or float64 array, got {x.dtype}")


cdef inline void* ptr(cnp.ndarray a) noexcept:
    return cnp.PyArray_DATA(a)


cdef inline Py_ssize_t dim(cnp.ndarray a, int axis) noexcept:
    return cnp.PyArray_DIMS(a)[axis]
