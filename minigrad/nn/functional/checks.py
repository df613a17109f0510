"""Input checks shared by the functionals: a float Tensor, a number, window pairs. The dtype rule itself lives in
minigrad.kernels.rules."""
import numbers

import numpy as np

from minigrad.kernels.rules import FLOATS
from minigrad.tensor import Tensor


def check_tensor(fn, x, ndim=None):
    """x must be a float32 or float64 Tensor (with ``ndim`` dims when given)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}: input must be a minigrad.Tensor, got {type(x).__name__}")
    a = x.data  # NOTE: the array's dtype, not Tensor.dtype's frame: called per op
    if a.dtype not in FLOATS:
        raise TypeError(f"{fn}: input must be float32 or float64, got {a.dtype}")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{fn}: input must have {ndim} dims, got shape {x.shape}")


def check_number(fn, name, v):
    """``v`` as a float; a Python or NumPy real number (not a bool) is expected."""
    if isinstance(v, bool) or not isinstance(v, (int, float, np.floating)):
        raise TypeError(f"{fn}: {name} must be a number, got {v!r}")
    return float(v)


def pair(fn, name, v, minimum):
    """``v`` (an int or a pair of ints) as a pair of ints >= minimum."""
    # NOTE: the common cases (an int, a layer's stored pair) without the generic checks: called per op
    if type(v) is int:
        if v >= minimum:
            return v, v
    elif type(v) is tuple and len(v) == 2 and type(v[0]) is int and type(v[1]) is int:
        if v[0] >= minimum and v[1] >= minimum:
            return v
    vals = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    if len(vals) != 2 or any(isinstance(a, bool) or not isinstance(a, numbers.Integral) or a < minimum
                             for a in vals):
        raise ValueError(f"{fn}: {name} must be an int or a pair of ints >= {minimum}, got {v!r}")
    return int(vals[0]), int(vals[1])


def check_virtual_batch_size(fn, v):
    """Ghost batch norm's ``virtual_batch_size``: None or an int >= 2 (a chunk of one sample has no variance)."""
    if v is None or (type(v) is int and v >= 2):  # NOTE: the common cases, without the ABC check (0.5 us a call)
        return v
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 2:
        raise ValueError(f"{fn}: virtual_batch_size must be None or an int >= 2, got {v!r}")
    return int(v)
