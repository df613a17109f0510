"""dtypes and PyTorch's type promotion, on NumPy dtypes.

``minigrad.float32`` and friends are NumPy dtype objects (``t.dtype == minigrad.float32`` and ``np.float32`` alike).
Promotion follows PyTorch, not NumPy: an op's dtype comes from its dimensioned tensors first, then its 0-d tensors,
then its Python numbers, and a lower-priority operand only matters when its category (bool < integer < float) is
higher. A Python float or an integer division then gives the default dtype, float32.
"""
import numpy as np

float16 = half = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = double = np.dtype(np.float64)
uint8 = np.dtype(np.uint8)
int8 = np.dtype(np.int8)
int16 = short = np.dtype(np.int16)
int32 = np.dtype(np.int32)
int64 = long = np.dtype(np.int64)
bool_ = np.dtype(np.bool_)

# the names that PyTorch also spells as Python builtins (torch.float, torch.int, torch.bool), for minigrad/__init__
ALIASES = {"float": float32, "int": int32, "bool": bool_}


def get_default_dtype():
    """The dtype of new float tensors: float32 (fixed in minigrad)."""
    return float32


def _category(dt):
    return 0 if dt.kind == "b" else 1 if dt.kind in "iu" else 2


def promote_types(a, b):
    """PyTorch's promote_types: within a category the wider type; across categories the higher one's type."""
    if a == b:
        return a
    ca, cb = _category(a), _category(b)
    if ca != cb and 2 in (ca, cb):
        return a if ca == 2 else b  # NOTE: int64 + float16 is float16 in PyTorch (NumPy says float64)
    return np.promote_types(a, b)


def _combine(higher, lower):
    """PyTorch's combine_categories: a lower-priority dtype counts only when its category is higher."""
    if higher is None:
        return lower
    if lower is None or _category(higher) == 2:
        return higher
    if higher.kind == "b" or _category(lower) == 2:
        return promote_types(higher, lower)
    return higher


def result_type(*operands):
    """The dtype PyTorch gives an op over ``operands`` (arrays, 0-d arrays, Python or NumPy numbers)."""
    dim = zero = wrapped = None
    for x in operands:
        if isinstance(x, np.ndarray):
            dt = x.dtype
            if x.ndim:
                dim = dt if dim is None else promote_types(dim, dt)
            else:
                zero = dt if zero is None else promote_types(zero, dt)
            continue
        if isinstance(x, (bool, np.bool_)):
            dt = bool_
        elif isinstance(x, (int, np.integer)):
            dt = int64
        elif isinstance(x, (float, np.floating)):
            dt = float32
        else:
            raise TypeError(f"unsupported operand type {type(x).__name__}")
        wrapped = dt if wrapped is None else promote_types(wrapped, dt)
    return _combine(dim, _combine(zero, wrapped))
