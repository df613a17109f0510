"""The contract's array checks, compiled: a fast accept path for ``minigrad.kernels.contract.check``.

A kernel call with small tensors spends more time in its argument checks than in its arithmetic (BatchNorm1d on a
(60, 100) batch: about 5 us of checks in Python against 1-2 us of kernel), so the checks that run on every call
(type, dtype, rank, C-contiguity, writeable outputs, sizes shared between arrays, no empty array) are done here
with the NumPy C API. This module only *accepts*: on any failure it returns None and the Python ``check``, the one
place where the rules and their error messages are written, runs again to raise the precise error.

A plan (built once per kernel by contract.py) is a tuple of entries
    (position in args, symbol ids of its dims, fixed dtype number or -1 for X, is an output)
with symbol ids indexing ``contract.SYMBOLS``.
"""
cimport numpy as cnp

cnp.import_array()

cdef enum:
    MAX_SYMBOLS = 16
    MAX_DIMS = 8


def accept(tuple args, Py_ssize_t n_args, tuple plan, tuple symbols, tuple element_symbols):
    """(dims {symbol: size}, elements) when every array argument passes the contract's checks, else None.

    ``elements`` is the product of the sizes of ``element_symbols`` (ids) present in dims."""
    cdef Py_ssize_t dims[MAX_SYMBOLS]
    cdef Py_ssize_t k, d, pos, sym, nd, size
    cdef int xtype = -1, t, want
    cdef cnp.npy_intp* shape
    cdef cnp.ndarray a
    cdef tuple entry, ids
    if len(args) != n_args:
        return None
    for k in range(MAX_SYMBOLS):
        dims[k] = -1
    for entry in plan:
        pos = entry[0]
        ids = <tuple>entry[1]
        value = args[pos]
        if not cnp.PyArray_Check(value):
            return None
        a = <cnp.ndarray>value
        t = cnp.PyArray_TYPE(a)
        want = entry[2]
        if want < 0:  # X: the dtype of the first array with that rule, float32 or float64
            if xtype < 0:
                if t != cnp.NPY_FLOAT32 and t != cnp.NPY_FLOAT64:
                    return None
                xtype = t
            want = xtype
        if t != want or not cnp.PyArray_ISNOTSWAPPED(a):
            return None
        nd = cnp.PyArray_NDIM(a)
        if nd != len(ids) or nd > MAX_DIMS:
            return None
        if not cnp.PyArray_IS_C_CONTIGUOUS(a):
            return None
        if entry[3] and not cnp.PyArray_ISWRITEABLE(a):
            return None
        shape = cnp.PyArray_DIMS(a)
        for d in range(nd):
            sym = ids[d]
            size = shape[d]
            if size == 0:
                return None
            if dims[sym] < 0:
                dims[sym] = size
            elif dims[sym] != size:
                return None
    out = {}
    cdef Py_ssize_t elements = 1
    for k in range(len(symbols)):
        if dims[k] >= 0:
            out[symbols[k]] = dims[k]
    for sym in element_symbols:
        if dims[sym] >= 0:
            elements *= dims[sym]
    return out, elements
