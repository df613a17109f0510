"""The contract's array checks, compiled: a fast accept path for ``minigrad.kernels.contract.check``.

A kernel call with small tensors spends more time in its argument checks than in its arithmetic (BatchNorm1d on a
(60, 100) batch: about 5 us of checks in Python against 1-2 us of kernel), so the checks that run on every call
(type, dtype, rank, C-contiguity, writeable outputs, sizes shared between arrays, no empty array) are done here
with the NumPy C API. This module only *accepts*: on any failure it returns None (``accept``) or hands the call to
the Python path (``CheckedCall``), and the Python ``check``, the one place where the rules and their error messages
are written, runs again to raise the precise error.

A plan (built once per kernel by contract.py) is a tuple of entries
    (position in args, symbol ids of its dims, fixed dtype number or -1 for X, is an output)
with symbol ids indexing ``contract.SYMBOLS``. A kernel's keywords (``contract.OPTIONS``) are a tuple of entries
    (name, symbol ids of its dims and its fixed dtype number, or None and -1 for a bool flag)
where the arrays are optional (None) and given all together or none.
"""
cimport numpy as cnp
from libc.math cimport INFINITY

cnp.import_array()

cdef enum:
    MAX_SYMBOLS = 16
    MAX_DIMS = 8
    MAX_ARRAYS = 16
    MAX_OPTIONS = 4


ctypedef struct Plan:
    # a plan's entries unpacked: per array its position in args, rank, symbol ids, dtype number (-1: X) and whether
    # it is an output; ``counted``: the symbols whose sizes multiply into the element count
    Py_ssize_t n_arrays
    Py_ssize_t pos[MAX_ARRAYS]
    Py_ssize_t nd[MAX_ARRAYS]
    Py_ssize_t syms[MAX_ARRAYS][MAX_DIMS]
    int want[MAX_ARRAYS]
    bint output[MAX_ARRAYS]
    bint counted[MAX_SYMBOLS]


cdef int _unpack(tuple plan, tuple element_symbols, Plan* p) except -1:
    cdef Py_ssize_t i, d
    if len(plan) > MAX_ARRAYS:
        raise ValueError(f"a plan of more than {MAX_ARRAYS} arrays")
    p.n_arrays = len(plan)
    for i, (position, ids, want, output) in enumerate(plan):
        if len(ids) > MAX_DIMS:
            raise ValueError(f"an array of more than {MAX_DIMS} dims")
        p.pos[i], p.nd[i], p.want[i], p.output[i] = position, len(ids), want, output
        for d in range(len(ids)):
            if not 0 <= ids[d] < MAX_SYMBOLS:
                raise ValueError(f"symbol id {ids[d]} out of range")
            p.syms[i][d] = ids[d]
    for i in range(MAX_SYMBOLS):
        p.counted[i] = False
    for i in element_symbols:
        if not 0 <= i < MAX_SYMBOLS:
            raise ValueError(f"symbol id {i} out of range")
        p.counted[i] = True
    return 0


cdef Py_ssize_t _arrays_pass(tuple args, const Plan* p, Py_ssize_t* dims):
    """The element count when every array argument of the plan passes the checks, else -1; fills ``dims``
    (MAX_SYMBOLS sizes, -1 where absent). The caller has checked the number of arguments."""
    cdef Py_ssize_t i, d, sym, size, elements = 1
    cdef int xtype = -1, t, want
    cdef cnp.npy_intp* shape
    cdef cnp.ndarray a
    for i in range(MAX_SYMBOLS):
        dims[i] = -1
    for i in range(p.n_arrays):
        value = args[p.pos[i]]
        if not cnp.PyArray_Check(value):
            return -1
        a = <cnp.ndarray>value
        t = cnp.PyArray_TYPE(a)
        want = p.want[i]
        if want < 0:  # X: the dtype of the first array with that rule, float32 or float64
            if xtype < 0:
                if t != cnp.NPY_FLOAT32 and t != cnp.NPY_FLOAT64:
                    return -1
                xtype = t
            want = xtype
        if t != want or not cnp.PyArray_ISNOTSWAPPED(a):
            return -1
        if cnp.PyArray_NDIM(a) != p.nd[i] or not cnp.PyArray_IS_C_CONTIGUOUS(a):
            return -1
        if p.output[i] and not cnp.PyArray_ISWRITEABLE(a):
            return -1
        shape = cnp.PyArray_DIMS(a)
        for d in range(p.nd[i]):
            sym, size = p.syms[i][d], shape[d]
            if size == 0:
                return -1
            if dims[sym] < 0:
                dims[sym] = size
                if p.counted[sym]:
                    elements *= size
            elif dims[sym] != size:
                return -1
    return elements


ctypedef struct Options:
    # a kernel's keywords unpacked (the names stay in a tuple of the CheckedCall): per keyword whether it is a bool
    # flag, else its rank, symbol ids and dtype number; ``n_arrays``: how many are arrays (given together or none)
    Py_ssize_t n, n_arrays
    bint flag[MAX_OPTIONS]
    Py_ssize_t nd[MAX_OPTIONS]
    Py_ssize_t syms[MAX_OPTIONS][MAX_DIMS]
    int want[MAX_OPTIONS]


cdef tuple _unpack_options(tuple options, Options* o):
    """Fill ``o`` from a tuple of (name, ids or None, dtype number); returns the names."""
    cdef Py_ssize_t i, d
    if len(options) > MAX_OPTIONS:
        raise ValueError(f"more than {MAX_OPTIONS} keywords")
    o.n, o.n_arrays = len(options), 0
    for i, (name, ids, want) in enumerate(options):
        o.flag[i] = ids is None
        if ids is None:
            continue
        if len(ids) > MAX_DIMS:
            raise ValueError(f"a keyword array of more than {MAX_DIMS} dims")
        o.nd[i], o.want[i] = len(ids), want
        for d in range(len(ids)):
            if not 0 <= ids[d] < MAX_SYMBOLS:
                raise ValueError(f"symbol id {ids[d]} out of range")
            o.syms[i][d] = ids[d]
        o.n_arrays += 1
    return tuple(name for name, _, _ in options)


cdef object _MISSING = object()


cdef bint _options_pass(dict options, tuple names, const Options* o, const Py_ssize_t* dims):
    """Whether the keywords pass the contract's checks (``contract.check_options``), against the sizes ``dims`` of
    the positional arrays: known names only; a flag a bool; an array None or of its dtype, native byte order,
    C-contiguous, with the sizes of its symbols; the arrays all given or none."""
    cdef Py_ssize_t i, d, found = 0, arrays = 0
    cdef cnp.ndarray a
    cdef cnp.npy_intp* shape
    for i in range(o.n):
        value = options.get(names[i], _MISSING)
        if value is _MISSING:
            continue
        found += 1
        if o.flag[i]:
            if type(value) is not bool:
                return False
            continue
        if value is None:
            continue
        if not cnp.PyArray_Check(value):
            return False
        a = <cnp.ndarray>value
        if cnp.PyArray_TYPE(a) != o.want[i] or not cnp.PyArray_ISNOTSWAPPED(a):
            return False
        if cnp.PyArray_NDIM(a) != o.nd[i] or not cnp.PyArray_IS_C_CONTIGUOUS(a):
            return False
        shape = cnp.PyArray_DIMS(a)
        for d in range(o.nd[i]):
            if shape[d] != dims[o.syms[i][d]]:  # NOTE: a symbol absent from the arrays is -1: no size matches
                return False
        arrays += 1
    return found == len(options) and (arrays == 0 or arrays == o.n_arrays)


cdef class _Unpacked:
    cdef tuple source, element_symbols
    cdef Plan plan


# NOTE: id(plan) -> its unpacked Plan, holding the plan (so that the id is not reused): a kernel's plan
# (contract._PLANS) is one tuple, unpacked on its first check only (unpacking it per call cost a third of accept's time)
cdef dict _unpacked = {}


def accept(tuple args, Py_ssize_t n_args, tuple plan, tuple symbols, tuple element_symbols):
    """(dims {symbol: size}, elements) when every array argument passes the contract's checks, else None.

    ``elements`` is the product of the sizes of ``element_symbols`` (ids) present in dims."""
    cdef _Unpacked u
    cdef Py_ssize_t dims[MAX_SYMBOLS]
    cdef Py_ssize_t k, elements
    if len(args) != n_args:
        return None
    u = _unpacked.get(id(plan))
    if u is None or u.element_symbols is not element_symbols:
        u = _Unpacked()
        _unpack(plan, element_symbols, &u.plan)
        u.source, u.element_symbols = plan, element_symbols
        _unpacked[id(plan)] = u
    elements = _arrays_pass(args, &u.plan, dims)
    if elements < 0:
        return None
    out = {}
    for k in range(len(symbols)):
        if dims[k] >= 0:
            out[symbols[k]] = dims[k]
    return out, elements


cdef class CheckedCall:
    """``kernel(*args)`` of a backend behind the contract, for a kernel whose only scalar rule is eps >= 0 (or
    none): ``accept``'s checks, from the plan unpacked once, and eps's, then ``raw(*args, n_threads)``, with one
    thread below ``below`` elements and ``threads()`` at or above. Arguments refused here go to ``slow(*args)`` (the
    Python path, which names the problem). NOTE: one object call per kernel call instead of a Python closure's
    frame, ``accept``'s reads of the plan's tuples and its dict of sizes (17 calls an MLP-BN step). A kernel with
    keywords gets a ``CheckedKeywordCall``."""
    cdef object raw, slow, threads
    cdef Py_ssize_t n_args, eps_at, below
    cdef Plan plan
    cdef str name, qualname

    def __init__(self, raw, slow, threads, Py_ssize_t n_args, tuple plan, tuple element_symbols, eps_at,
                 Py_ssize_t below, str name, str qualname):
        _unpack(plan, element_symbols, &self.plan)
        self.raw, self.slow, self.threads = raw, slow, threads
        self.n_args, self.eps_at, self.below = n_args, -1 if eps_at is None else eps_at, below
        self.name, self.qualname = name, qualname

    def __call__(self, *args):
        cdef Py_ssize_t dims[MAX_SYMBOLS]
        cdef Py_ssize_t elements = _call_pass(self, args, dims)
        if elements < 0:
            return self.slow(*args)
        return self.raw(*args, 1 if elements < self.below else self.threads())

    @property
    def __name__(self):
        return self.name

    @property
    def __qualname__(self):
        return self.qualname

    def __repr__(self):
        return f"<checked kernel {self.qualname}>"


cdef inline Py_ssize_t _call_pass(CheckedCall c, tuple args, Py_ssize_t* dims):
    """The element count when ``args`` pass ``c``'s checks (their number, the arrays, eps), else -1."""
    cdef Py_ssize_t elements
    cdef double eps
    if len(args) != c.n_args:
        return -1
    elements = _arrays_pass(args, &c.plan, dims)
    if elements < 0:
        return -1
    if c.eps_at >= 0:
        value = args[c.eps_at]
        if type(value) is not float:
            return -1
        eps = value
        if not (0.0 <= eps < INFINITY):  # NOTE: NaN fails both
            return -1
    return elements


cdef class CheckedKeywordCall(CheckedCall):
    """``kernel(*args, **options)``: a ``CheckedCall`` for a kernel with keywords (``options``: its
    ``contract.OPTIONS`` as the module docstring says). Without keywords, ``CheckedCall``'s checks and call; with
    them, the keywords' checks too (``_options_pass``), then ``raw(*args, n_threads, **options)``. Refused
    arguments go to ``slow(*args, **options)``. NOTE: CheckedCall keeps its ``__call__`` without ``**options``,
    which would build an empty dict on every call of every other kernel."""
    cdef Options options
    cdef tuple option_names

    def __init__(self, raw, slow, threads, Py_ssize_t n_args, tuple plan, tuple element_symbols, eps_at,
                 Py_ssize_t below, str name, str qualname, tuple options):
        CheckedCall.__init__(self, raw, slow, threads, n_args, plan, element_symbols, eps_at, below, name, qualname)
        self.option_names = _unpack_options(options, &self.options)

    def __call__(self, *args, **options):
        cdef Py_ssize_t dims[MAX_SYMBOLS]
        cdef Py_ssize_t elements = _call_pass(self, args, dims)
        if elements < 0 or options and not _options_pass(options, self.option_names, &self.options, dims):
            return self.slow(*args, **options)
        if options:
            return self.raw(*args, 1 if elements < self.below else self.threads(), **options)
        return self.raw(*args, 1 if elements < self.below else self.threads())
