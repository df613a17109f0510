"""The kernel contract: every backend's signatures, written once, and the checks run before each call.

Layouts and dimension letters (used in every kernel file):
  N  batch            C  channels          S  spatial size (product of the dims after the channel axis)
  R  rows             D  row length        G  groups (num_groups)
  channels layout  x: (N, C, S)   batch norm reduces over N and S, per channel
  rows layout      x: (R, D)      softmax reduces each row; group norm views x: (N, C, S) as N*G rows of
                                  (C/G)*S values, so layer norm is (R, D, 1) with G=1 and instance norm G=C

Conventions (llm.c style): outputs first, then inputs; the caller preallocates every output. Arrays are
C-contiguous, float32 or float64, all of one dtype ("X" below) except the saved statistics ``mean`` and ``rstd``,
which are always float64. ``n_threads`` is the last argument and is filled in by the registry.

Kernels:
  log_softmax_forward(y, x, n_threads)                      y = x - max - log(sum(exp(x - max)))   per row
      x, y: (R, D)
  log_softmax_backward(dx, dy, y, n_threads)                dx = dy - exp(y) * sum(dy)             per row
      dx, dy, y: (R, D)
  batch_norm_forward(y, mean, rstd, x, weight, bias, eps, n_threads)               training-mode forward
      x, y: (N, C, S); mean, rstd: (C,) float64 OUT; weight, bias: (C,)
      mean = E[x], rstd = 1/sqrt(Var[x] + eps) (biased variance) over N and S; y = (x - mean) * rstd * w + b
  batch_norm_inference(y, x, running_mean, running_var, weight, bias, eps, n_threads)
      x, y: (N, C, S); running_mean, running_var, weight, bias: (C,)
      y = (x - running_mean) / sqrt(running_var + eps) * weight + bias
  batch_norm_backward(dx, dweight, dbias, dy, x, mean, rstd, weight, n_threads)
      dx, dy, x: (N, C, S); dweight, dbias: (C,) OUT; mean, rstd: (C,) float64; weight: (C,)
  group_norm_forward(y, mean, rstd, x, weight, bias, num_groups, eps, n_threads)
      x, y: (N, C, S); mean, rstd: (N, G) float64 OUT; weight, bias: (C,)
  group_norm_backward(dx, dweight, dbias, dy, x, mean, rstd, weight, num_groups, n_threads)
      dx, dy, x: (N, C, S); dweight, dbias: (C,) OUT; mean, rstd: (N, G) float64; weight: (C,)

Affine-free normalization passes weight = ones and bias = zeros (C values: nothing measurable).
"""
import numpy as np

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
F64 = np.dtype(np.float64)

# kernel name -> (argument names in order, {array argument: (shape symbols, dtype rule)}, scalar arguments)
# dtype rule: "X" the dtype of the first array argument, "f64" float64.
SPECS = {
    "log_softmax_forward": (("y", "x"), {"y": ("RD", "X"), "x": ("RD", "X")}),
    "log_softmax_backward": (("dx", "dy", "y"), {"dx": ("RD", "X"), "dy": ("RD", "X"), "y": ("RD", "X")}),
    "batch_norm_forward": (
        ("y", "mean", "rstd", "x", "weight", "bias", "eps"),
        {"y": ("NCS", "X"), "mean": ("C", "f64"), "rstd": ("C", "f64"), "x": ("NCS", "X"),
         "weight": ("C", "X"), "bias": ("C", "X")},
    ),
    "batch_norm_inference": (
        ("y", "x", "running_mean", "running_var", "weight", "bias", "eps"),
        {"y": ("NCS", "X"), "x": ("NCS", "X"), "running_mean": ("C", "X"), "running_var": ("C", "X"),
         "weight": ("C", "X"), "bias": ("C", "X")},
    ),
    "batch_norm_backward": (
        ("dx", "dweight", "dbias", "dy", "x", "mean", "rstd", "weight"),
        {"dx": ("NCS", "X"), "dweight": ("C", "X"), "dbias": ("C", "X"), "dy": ("NCS", "X"),
         "x": ("NCS", "X"), "mean": ("C", "f64"), "rstd": ("C", "f64"), "weight": ("C", "X")},
    ),
    "group_norm_forward": (
        ("y", "mean", "rstd", "x", "weight", "bias", "num_groups", "eps"),
        {"y": ("NCS", "X"), "mean": ("NG", "f64"), "rstd": ("NG", "f64"), "x": ("NCS", "X"),
         "weight": ("C", "X"), "bias": ("C", "X")},
    ),
    "group_norm_backward": (
        ("dx", "dweight", "dbias", "dy", "x", "mean", "rstd", "weight", "num_groups"),
        {"dx": ("NCS", "X"), "dweight": ("C", "X"), "dbias": ("C", "X"), "dy": ("NCS", "X"),
         "x": ("NCS", "X"), "mean": ("NG", "f64"), "rstd": ("NG", "f64"), "weight": ("C", "X")},
    ),
}

# kernel name -> its output arguments (written by the kernel; everything else is read only)
OUTPUTS = {
    "log_softmax_forward": ("y",),
    "log_softmax_backward": ("dx",),
    "batch_norm_forward": ("y", "mean", "rstd"),
    "batch_norm_inference": ("y",),
    "batch_norm_backward": ("dx", "dweight", "dbias"),
    "group_norm_forward": ("y", "mean", "rstd"),
    "group_norm_backward": ("dx", "dweight", "dbias"),
}


def _plan(kernel):
    """The checks of ``kernel`` precomputed once: (position, name, dim symbols, float64?, output?) per array."""
    names, arrays = SPECS[kernel]
    return names, [(i, name, arrays[name][0], arrays[name][1] == "f64", name in OUTPUTS[kernel])
                   for i, name in enumerate(names) if name in arrays]


_PLANS = {kernel: _plan(kernel) for kernel in SPECS}


def check(kernel, args):
    """Validate the arguments of ``kernel`` (a tuple in the order of SPECS); raise ValueError/TypeError naming
    the argument and what was expected. Returns the dimension sizes by symbol; the kernels receive the arrays
    unchanged."""
    names, plan = _PLANS[kernel]
    if len(args) != len(names):
        raise TypeError(f"{kernel}() takes {len(names)} arguments ({', '.join(names)}), got {len(args)}")
    dims = {}
    xdtype = None
    for i, name, symbols, f64, output in plan:
        value = args[i]
        if not isinstance(value, np.ndarray):
            raise TypeError(f"{kernel}: argument {name!r} must be a numpy.ndarray, got {type(value).__name__}")
        if xdtype is None:
            if value.dtype not in _FLOATS:
                raise TypeError(f"{kernel}: argument {name!r} must be float32 or float64, got {value.dtype}")
            xdtype = value.dtype
        want = F64 if f64 else xdtype
        if value.dtype != want:
            raise TypeError(f"{kernel}: argument {name!r} must have dtype {want}, got {value.dtype}")
        if value.ndim != len(symbols):
            raise ValueError(f"{kernel}: argument {name!r} must have {len(symbols)} dims "
                             f"({', '.join(symbols)}), got shape {value.shape}")
        flags = value.flags
        if not flags.c_contiguous:
            raise ValueError(f"{kernel}: argument {name!r} must be C-contiguous")
        if output and not flags.writeable:
            raise ValueError(f"{kernel}: output {name!r} must be writeable")
        for sym, size in zip(symbols, value.shape):
            if dims.setdefault(sym, size) != size:
                raise ValueError(f"{kernel}: argument {name!r} has shape {value.shape}, but {sym}={dims[sym]} "
                                 f"from the arguments before it")
    if 0 in dims.values():
        raise ValueError(f"{kernel}: the kernels take non-empty arrays, got sizes {dims} (the functionals return "
                         f"empty inputs unchanged without calling a kernel)")
    if "eps" in names:
        eps = args[names.index("eps")]
        if not (isinstance(eps, (float, int, np.floating)) and np.isfinite(eps) and eps > 0):
            raise ValueError(f"{kernel}: eps must be a finite number > 0, got {eps!r}")
    if "num_groups" in names:
        g = args[names.index("num_groups")]
        if isinstance(g, bool) or not isinstance(g, (int, np.integer)) or g < 1:
            raise ValueError(f"{kernel}: num_groups must be a positive integer, got {g!r}")
        if dims["C"] % g != 0:
            raise ValueError(f"{kernel}: num_groups={g} must divide the number of channels C={dims['C']}")
        if dims["G"] != g:
            raise ValueError(f"{kernel}: mean and rstd must have shape (N, num_groups=({g})), "
                             f"got G={dims['G']}")
    return dims


# NOTE: below this many elements a kernel runs on one thread: the parallel region's start-up costs more than the
# work it splits. Results do not change (every kernel is bit-identical for any thread count).
SMALL = 1 << 15


def _elements(dims):
    n = 1
    for sym in ("N", "C", "S", "R", "D"):
        n *= dims.get(sym, 1)
    return n


class Backend:
    """A backend's kernels behind the contract: ``backend.batch_norm_forward(y, mean, ...)`` checks the
    arguments, then calls the module's kernel with ``n_threads`` from ``minigrad.get_num_threads()`` (one thread
    below ``SMALL`` elements)."""

    def __init__(self, name, module):
        self.name = name
        self.module = module
        for kernel in SPECS:
            if not hasattr(module, kernel):
                raise ImportError(f"backend {name!r} ({module.__name__}) lacks kernel {kernel!r}")

    def __getattr__(self, kernel):
        if kernel not in SPECS:
            raise AttributeError(kernel)
        raw = getattr(self.module, kernel)
        from minigrad.kernels import get_num_threads

        def call(*args):
            dims = check(kernel, args)
            return raw(*args, 1 if _elements(dims) < SMALL else get_num_threads())

        call.__name__ = kernel
        call.__qualname__ = f"{self.name}.{kernel}"
        call.__doc__ = getattr(raw, "__doc__", None)
        setattr(self, kernel, call)  # cache: __getattr__ runs once per kernel
        return call

    def __repr__(self):
        return f"<minigrad backend {self.name!r}>"
