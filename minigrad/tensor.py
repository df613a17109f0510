"""Tensor and reverse-mode autograd over a dynamic graph.

A ``Tensor`` wraps a NumPy array. An op is a ``Function`` subclass: its instance *is* the autograd context.
``Function.apply`` runs ``forward`` on raw arrays and attaches the node to the output only when grad mode is on and
some input requires a gradient. ``backward`` receives the output's gradient and returns one gradient per input
(``None`` where the input needs none); gradients are reduced to the input's shape when broadcasting widened it.

``Tensor.backward`` walks the graph in reverse topological order (iteratively: deep graphs do not hit the recursion
limit), accumulates leaf gradients into ``.grad`` with ``+=`` semantics, and then drops every node it walked so that
the saved arrays are freed (no reference cycles: a node refers to its inputs, never to its output).
"""
import builtins
import contextlib
import functools
import math
import operator
import threading

import numpy as np

from minigrad import _device
from minigrad import dtypes as _dtypes
from minigrad import random as _random
from minigrad import kernels as _kernel_backends
from minigrad.kernels import contract as _contract
from minigrad.kernels.rules import FLOATS as _FLOAT_DTYPES
from minigrad.kernels.threads import get_num_threads as _get_num_threads
from minigrad.kernels.rules import float_dtype as _dtype

_MODE_DEFAULTS = {"grad": True, "anomaly": False}
_new_object = object.__new__  # NOTE: ``_new_object(Tensor)``: a Tensor whose slots the caller writes
# NOTE: a tuple's tensors' arrays and flags by map, in C: no list comprehension's frame (Function.apply)
_data_of, _requires_grad_of = operator.attrgetter("data"), operator.attrgetter("requires_grad")


class _Modes(threading.local):
    """Per-thread switches: "grad" (build graphs), "anomaly" (check every op's output). NOTE: the defaults are class
    attributes, so that a thread that never set one reads it without the AttributeError a plain threading.local
    raises and getattr's default then catches (5.7 us for grad mode right after a replayed MLP step, 1.5 us after,
    a timer's 1 us in each)."""
    grad, anomaly = _MODE_DEFAULTS["grad"], _MODE_DEFAULTS["anomaly"]


_modes = _Modes()
# NOTE: how many mode switches are active, in all threads. While none is, every thread has the defaults and the hot
# path (each op) skips the thread-local lookups. Changed under a lock: switches are rare, ops are not.
_active_switches = 0
_switch_lock = threading.Lock()
# NOTE: the recorder of ``minigrad.compile`` (minigrad/capture.py) while it records a call, else None; the hooks
# below (an op applied, a value read into Python, a graph walk, a host computation) cost one global load when None
_recorder = None


def _host(fn, *arrays):
    """``fn(*arrays)``: a computation on arrays outside any op (a target's checks, a dropout mask, a running-statistics
    update). It returns None, an array or a tuple of arrays; ``minigrad.compile`` records it and calls it again on
    replay (an array argument that an op made, or a tensor's ``.data``, is the replay's array there)."""
    out = fn(*arrays)
    if _recorder is not None:
        _recorder.on_host(fn, arrays, out)
    return out


def _not_replayable(reason):
    """Tell a ``minigrad.compile`` recording (if any) that this call cannot be replayed, and why."""
    if _recorder is not None:
        _recorder.on_unsupported(reason)


def _replayed(method):
    """Decorates a state-changing method (an optimizer's ``step``, ``zero_grad``): ``minigrad.compile`` records the
    call as one unit and calls the method again on replay."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if _recorder is None:
            return method(self, *args, **kwargs)
        return _recorder.on_call(method, self, args, kwargs)
    return wrapper


def _mode(name):
    return getattr(_modes, name, _MODE_DEFAULTS[name])


class _ModeSwitch(contextlib.ContextDecorator):
    """Sets a per-thread mode for the duration of a ``with`` block or a decorated call, then restores it."""

    mode, value = None, None

    def __enter__(self):
        global _active_switches
        with _switch_lock:
            _active_switches += 1
        self._prev = _mode(self.mode)
        setattr(_modes, self.mode, self.value)

    def __exit__(self, *exc):
        global _active_switches
        setattr(_modes, self.mode, self._prev)
        with _switch_lock:
            _active_switches -= 1
        return False


def _grad_enabled():
    return _modes.grad


def is_grad_enabled():
    """True unless graph building is off in this thread (inside ``no_grad``)."""
    return _grad_enabled()


class no_grad(_ModeSwitch):
    """Context manager (and decorator) that disables graph building: ops inside return plain tensors."""
    mode, value = "grad", False


class enable_grad(_ModeSwitch):
    """Context manager (and decorator) that turns graph building back on, inside a ``no_grad`` block."""
    mode, value = "grad", True


# -------------------------------------------------------------------- errors
# NOTE: each is a subclass of the class PyTorch raises and of the class minigrad raised before, so code written for
# either catches it
class DimError(IndexError, ValueError):
    """A dim (axis) out of range for the tensor."""


class ShapeError(RuntimeError, ValueError):
    """Shapes that do not fit the op (broadcasting, reshape, matmul, cat)."""


class DtypeError(RuntimeError, TypeError):
    """A dtype the op does not take."""


class IndexRangeError(IndexError, RuntimeError):
    """An index tensor holding values out of range (gather, scatter)."""


def _to_array(data, dtype=None):
    """Array for ``data``: ndarrays keep their dtype; Python floats become float32, ints int64, bools bool (as
    PyTorch's default dtypes)."""
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.ndarray):
        arr = data
    elif isinstance(data, np.generic):
        arr = np.asarray(data)
    else:
        arr = np.asarray(data)
        if arr.dtype.kind == "f" and dtype is None:
            arr = arr.astype(np.float32)
        elif arr.dtype.kind not in "biuf":
            raise TypeError(f"Tensor: cannot make a tensor from {type(data).__name__} (dtype {arr.dtype})")
    if dtype is not None:
        arr = arr.astype(np.dtype(dtype), copy=False)
    return arr


def _float_dtype(dt):
    """The dtype of a float op (exp, division) on ``dt``: float dtypes stay, others become float32."""
    return dt if dt.kind == "f" else _dtypes.float32


class Size(tuple):
    """A shape, as ``t.size()`` returns it (PyTorch's torch.Size)."""

    def numel(self):
        """The number of elements of a tensor of this shape (1 for ``()``)."""
        return math.prod(self)

    def __repr__(self):
        return f"minigrad.Size({list(self)})"


class _SizeOrNumel(int):
    """``t.size``: an int (the element count, as NumPy's ``.size``) that is also callable as PyTorch's
    ``t.size(dim=None)``, so code written for either reads it right."""

    def __new__(cls, shape):
        obj = int.__new__(cls, math.prod(shape))
        obj.shape = shape
        return obj

    def __call__(self, dim=None):
        if dim is None:
            return Size(self.shape)
        return self.shape[_dim(dim, len(self.shape))] if self.shape else 1


class _ValuesIndices(tuple):
    """A (values, indices) pair with names, as ``max(dim)``, ``sort`` and ``topk`` return it."""

    __slots__ = ()

    def __new__(cls, values, indices):
        return tuple.__new__(cls, (values, indices))

    values = property(lambda self: self[0])
    indices = property(lambda self: self[1])

    def __repr__(self):
        return f"(values={self[0]!r}, indices={self[1]!r})"


def _reduce_args(fn, dim, keepdim, axis, keepdims):
    """PyTorch's ``dim``/``keepdim`` or NumPy's ``axis``/``keepdims`` (one spelling of each)."""
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{fn}(): pass dim or axis, not both")
        dim = axis
    if keepdims is not None:
        keepdim = keepdims
    return dim, bool(keepdim)


class Tensor:
    """An n-dimensional array with an optional gradient.

    ``Tensor(data, requires_grad=False, dtype=None)``: a NumPy array keeps its dtype; Python floats become float32,
    ints int64 and bools bool, as in PyTorch. Only float32 and float64 tensors can require a gradient.
    Comparisons (``==``, ``<``, ...) are elementwise and give bool tensors; hashing is by identity, so tensors work
    as dict keys (and ``tensor in list`` compares elementwise: use identity, ``any(t is p for p in ps)``).
    """

    # NOTE: "_freed" is True on a non-leaf whose node a walk freed; __init__ (where leaves come from) sets it False,
    # so that the walk's getattr(node, "_freed", False) on a leaf finds it (30 ns, against 260 ns for the
    # AttributeError a missing slot raises and getattr catches); an op's output leaves it unset (getattr's default)
    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_freed", "__weakref__")
    __array_priority__ = 1000  # ndarray (op) Tensor defers to Tensor's reflected operator

    def __init__(self, data, requires_grad=False, dtype=None):
        # NOTE: an ndarray with no dtype asked for is kept as is (the common case, from every op's forward)
        self.data = data if dtype is None and type(data) is np.ndarray else _to_array(data, dtype)
        self.grad = None
        self._ctx = None
        self._freed = False
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # ---------------------------------------------------------------- basics
    def requires_grad_(self, flag=True):
        """Set ``requires_grad`` in place and return self; only float32 and float64 tensors can require a
        gradient (TypeError otherwise)."""
        if flag and self.data.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"only float32 and float64 tensors can require gradients, got dtype {self.data.dtype}")
        self.requires_grad = bool(flag)
        return self

    @property
    def shape(self):
        """The shape, a tuple of ints (``t.size()`` gives it as a ``Size``)."""
        return self.data.shape

    @property
    def dtype(self):
        """The element type, a NumPy dtype (``t.dtype == minigrad.float32``)."""
        return self.data.dtype

    @property
    def ndim(self):
        """The number of dims."""
        return self.data.ndim

    @property
    def device(self):
        """Always ``device('cpu')``: minigrad runs on the CPU only."""
        return _device.CPU

    is_cuda = False

    @property
    def size(self):
        """PyTorch's ``t.size()`` (a ``Size``) and ``t.size(dim)``; uncalled, NumPy's element count (an int)."""
        return _SizeOrNumel(self.data.shape)

    def dim(self):
        """The number of dims (as ``ndim``)."""
        return self.data.ndim

    ndimension = dim

    def numel(self):
        """The number of elements."""
        return self.data.size

    nelement = numel

    def element_size(self):
        """The size of one element in bytes."""
        return self.data.itemsize

    def is_floating_point(self):
        """True for float16, float32 and float64 tensors."""
        return self.data.dtype.kind == "f"

    @property
    def T(self):
        """All dims reversed (``t.transpose()``)."""
        return self.transpose()

    @property
    def mT(self):
        """The last two dims swapped: the transpose of each matrix of a batch."""
        return self.transpose(-2, -1)

    @property
    def is_leaf(self):
        """True for a tensor no recorded op produced (user-created, or made under ``no_grad``)."""
        return self._ctx is None

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self):
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.data.shape[0]))

    def numpy(self):
        """The underlying array (shared, not copied)."""
        if _recorder is not None:
            _recorder.on_read(self, "numpy()")
        return self.data

    def item(self):
        """The value of a one-element tensor as a Python number; ShapeError for any other size."""
        if _recorder is not None:
            _recorder.on_read(self, "item()")
        if self.data.size != 1:
            raise ShapeError(f"item(): only one-element tensors can be converted to Python scalars, got shape "
                             f"{self.data.shape}")
        return self.data.item()

    def tolist(self):
        """The elements as (nested) Python lists of Python numbers."""
        if _recorder is not None:
            _recorder.on_read(self, "tolist()")
        return self.data.tolist()

    def detach(self):
        """A tensor sharing this one's data, cut from the graph."""
        return Tensor(self.data)

    def detach_(self):
        """Cut this tensor from the graph in place (it becomes a leaf that does not require grad); returns self."""
        self._ctx, self.requires_grad = None, False
        return self

    def clone(self, memory_format=None):
        """A copy with its own data that stays in the graph."""
        return Clone.apply(self)

    # ---------------------------------------------------------------- dtype and device
    def astype(self, dtype):
        """A copy cast to ``dtype`` (self when it already has it); differentiable between float dtypes."""
        dtype = np.dtype(dtype)
        return self if dtype == self.data.dtype else Cast.apply(self, dtype=dtype)

    def to(self, *args, dtype=None, device=None, non_blocking=False, copy=False, memory_format=None):
        """``to(dtype)``, ``to(device)``, ``to(device, dtype)``, ``to(other_tensor)``. Only the CPU exists."""
        dtype = _to_arguments("to", args, dtype, device)
        out = self if dtype is None else self.astype(dtype)
        return out.clone() if copy and out is self else out

    def cpu(self):
        """Self: minigrad tensors already live on the CPU."""
        return self

    def cuda(self, *args, **kwargs):
        """Raises: minigrad has no CUDA device."""
        _device.check_cpu("cuda", "cuda")

    def type(self, dtype=None):
        """Without ``dtype``, the dtype's name (``'float32'``); with one, the tensor cast to it."""
        return str(self.data.dtype) if dtype is None else self.astype(dtype)

    def float(self): return self.astype(np.float32)
    def double(self): return self.astype(np.float64)
    def half(self): return self.astype(np.float16)
    def long(self): return self.astype(np.int64)
    def int(self): return self.astype(np.int32)
    def short(self): return self.astype(np.int16)
    def bool(self): return self.astype(np.bool_)
    def byte(self): return self.astype(np.uint8)
    def type_as(self, other): return self.astype(other.dtype)

    def new_tensor(self, data, dtype=None): return Tensor(data, dtype=dtype or self.dtype)
    def new_zeros(self, *size, dtype=None): return zeros(*size, dtype=dtype or self.dtype)
    def new_ones(self, *size, dtype=None): return ones(*size, dtype=dtype or self.dtype)
    def new_empty(self, *size, dtype=None): return zeros(*size, dtype=dtype or self.dtype)
    def new_full(self, size, fill_value, dtype=None): return full(size, fill_value, dtype=dtype or self.dtype)

    # ---------------------------------------------------------------- printing and conversion
    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        body = np.array2string(self.data, separator=", ", prefix="Tensor(")
        return f"Tensor({body}, dtype={self.data.dtype}{grad})"

    def __format__(self, spec):
        if _recorder is not None:
            _recorder.on_read(self, "format()")
        if self.data.size == 1:
            return format(self.data.item(), spec)
        if spec:
            raise TypeError(f"unsupported format string {spec!r} for a tensor of shape {self.data.shape}: only "
                            f"one-element tensors take a format spec")
        return repr(self)

    def __array__(self, dtype=None, copy=None):
        if _recorder is not None:
            _recorder.on_read(self, "__array__")
        return self.data if dtype is None else self.data.astype(dtype)

    def __bool__(self):
        if _recorder is not None:
            _recorder.on_read(self, "bool()")
        if self.data.size != 1:
            raise ShapeError(f"the truth value of a tensor with {self.data.size} elements is ambiguous "
                             f"(shape {self.data.shape}); use .any() or .all()")
        return bool(self.data)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if _recorder is not None:
            _recorder.on_read(self, "__index__")
        if self.data.size != 1 or self.data.dtype.kind not in "iu":
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.data)

    # NOTE: identity, as PyTorch's (graph walks and optimizers key dicts by tensor); explicit because __eq__ is
    # defined
    __hash__ = object.__hash__

    # ---------------------------------------------------------------- autograd
    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None, *, grad=None):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (PyTorch's ``Tensor.backward``).

        ``gradient`` (a Tensor or ndarray of self's shape; ``grad=`` is the older spelling) is required unless
        self has one element. ``create_graph``: the backward pass is recorded, so the gradients it leaves can be
        differentiated again. The graph is freed afterwards unless ``retain_graph`` (default: ``create_graph``).
        ``inputs``: accumulate only into these tensors (leaves or not).
        """
        if grad is not None:
            if gradient is not None:
                raise TypeError("backward(): pass gradient or grad, not both")
            gradient = grad
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not require grad and has no graph "
                               "(did you build it under no_grad, or from tensors without requires_grad=True?)")
        if inputs is not None:
            inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
            if not inputs:
                raise RuntimeError("backward(): inputs must be a non-empty sequence of tensors")
            _check_differentiable("backward", inputs)
        retain = create_graph if retain_graph is None else retain_graph
        _backward_pass([self], [_root_grad("backward", self, gradient, create_graph)], retain, create_graph, inputs,
                       accumulate=True)
        return None

    def _topological_order(self):
        return _topological_order([self])

    # ---------------------------------------------------------------- arithmetic
    def __add__(self, other): return Add.apply(*_pair(self, other))
    def __radd__(self, other): return Add.apply(*_pair(other, self))
    def __sub__(self, other): return Sub.apply(*_pair(self, other))
    def __rsub__(self, other): return Sub.apply(*_pair(other, self))
    def __mul__(self, other): return Mul.apply(*_pair(self, other))
    def __rmul__(self, other): return Mul.apply(*_pair(other, self))
    def __truediv__(self, other): return Div.apply(*_pair(self, other, floating=True))
    def __rtruediv__(self, other): return Div.apply(*_pair(other, self, floating=True))
    def __floordiv__(self, other): return FloorDivide.apply(*_pair(self, other))
    def __rfloordiv__(self, other): return FloorDivide.apply(*_pair(other, self))
    def __mod__(self, other): return Remainder.apply(*_pair(self, other))
    def __rmod__(self, other): return Remainder.apply(*_pair(other, self))
    def __neg__(self): return Neg.apply(self)
    def __pos__(self): return self
    def __abs__(self): return self.abs()
    def __matmul__(self, other): return MatMul.apply(*_pair(self, other, broadcast=False))
    def __rmatmul__(self, other): return MatMul.apply(*_pair(other, self, broadcast=False))
    def __getitem__(self, index): return _getitem(self, index)

    def __setitem__(self, index, value):
        _check_inplace(self, "__setitem__", value)
        _not_replayable("an in-place assignment t[...] = v")
        self.data[_normalize_index(index, self.ndim)] = _raw(value)

    def __pow__(self, other):
        if isinstance(other, (int, float, np.integer, np.floating)) and not isinstance(other, bool) \
                and (self.data.dtype.kind == "f" or isinstance(other, (int, np.integer))):
            return PowScalar.apply(self, exponent=other)
        return Pow.apply(*_pair(self, other))

    def __rpow__(self, other):
        return Pow.apply(*_pair(other, self))

    add = __add__
    sub = subtract = __sub__
    mul = multiply = __mul__
    div = divide = true_divide = __truediv__
    floor_divide = __floordiv__
    remainder = __mod__
    matmul = __matmul__
    neg = negative = __neg__

    def pow(self, exponent): return self ** exponent

    # ---------------------------------------------------------------- comparisons and logic (no gradient)
    # NOTE: host computations (_host), so that a mask made in a step compiled by minigrad.compile (ELU's x > 0) is
    # computed again on replay instead of being a constant of the recording
    def _compare(self, other, op):
        if not isinstance(other, (Tensor, np.ndarray, int, float, np.generic)):
            return NotImplemented
        a, b = _pair(self, other)
        return Tensor(_host(functools.partial(_elementwise, op), a.data, b.data))

    def __eq__(self, other): return self._compare(other, np.equal)
    def __ne__(self, other): return self._compare(other, np.not_equal)
    def __lt__(self, other): return self._compare(other, np.less)
    def __le__(self, other): return self._compare(other, np.less_equal)
    def __gt__(self, other): return self._compare(other, np.greater)
    def __ge__(self, other): return self._compare(other, np.greater_equal)
    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__
    less, less_equal, greater, greater_equal, not_equal = lt, le, gt, ge, ne

    def _logic(self, other, op, name):
        a, b = _pair(self, other)
        if a.dtype.kind not in "biu":
            raise DtypeError(f"{name}: only bool and integer tensors, got {a.dtype}")
        return Tensor(_host(functools.partial(_elementwise, op), a.data, b.data))

    def __and__(self, other): return self._logic(other, np.bitwise_and, "&")
    def __or__(self, other): return self._logic(other, np.bitwise_or, "|")
    def __xor__(self, other): return self._logic(other, np.bitwise_xor, "^")
    def __rand__(self, other): return self._logic(other, np.bitwise_and, "&")
    def __ror__(self, other): return self._logic(other, np.bitwise_or, "|")
    def __rxor__(self, other): return self._logic(other, np.bitwise_xor, "^")
    bitwise_and, bitwise_or, bitwise_xor = __and__, __or__, __xor__

    def __invert__(self):
        if self.data.dtype.kind not in "biu":
            raise DtypeError(f"~: only bool and integer tensors, got {self.data.dtype}")
        return Tensor(_host(functools.partial(_elementwise, np.invert), self.data))

    bitwise_not = __invert__

    def logical_not(self): return Tensor(_host(functools.partial(_elementwise, np.logical_not), self.data))
    def logical_and(self, other): return self._host_logic(np.logical_and, other)
    def logical_or(self, other): return self._host_logic(np.logical_or, other)
    def isnan(self): return Tensor(_host(functools.partial(_elementwise, np.isnan), self.data))
    def isinf(self): return Tensor(_host(functools.partial(_elementwise, np.isinf), self.data))
    def isfinite(self): return Tensor(_host(functools.partial(_elementwise, np.isfinite), self.data))

    def _host_logic(self, op, other):
        other = other.data if isinstance(other, Tensor) else np.asarray(other)
        return Tensor(_host(functools.partial(_elementwise, op), self.data, other))

    def equal(self, other):
        """True when both have the same shape and elements (PyTorch's torch.equal)."""
        return self.shape == tuple(np.shape(_raw(other))) and bool(np.array_equal(self.data, _raw(other)))

    def allclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        """True when ``|self - other| <= atol + rtol * |other|`` everywhere (NumPy's ``allclose``)."""
        return bool(np.allclose(self.data, _raw(other), rtol=rtol, atol=atol, equal_nan=equal_nan))

    # ---------------------------------------------------------------- elementwise
    def exp(self): return Exp.apply(_floating(self))
    def log(self): return Log.apply(_floating(self))
    def sqrt(self): return Sqrt.apply(_floating(self))
    def rsqrt(self): return 1.0 / self.sqrt()
    def tanh(self): return Tanh.apply(_floating(self))
    def sigmoid(self): return Sigmoid.apply(_floating(self))
    def sin(self): return Sin.apply(_floating(self))
    def cos(self): return Cos.apply(_floating(self))
    def log1p(self): return (self + 1).log() if self.data.dtype.kind != "f" else Log1p.apply(self)
    def expm1(self): return self.exp() - 1
    def log2(self): return self.log() * (1 / math.log(2))
    def log10(self): return self.log() * (1 / math.log(10))
    def reciprocal(self): return 1.0 / self
    def square(self): return self * self
    def relu(self): return Relu.apply(self)
    def abs(self): return Abs.apply(self)
    absolute = abs
    def sign(self): return Rounding.apply(self, op=np.sign)
    def floor(self): return self.clone() if self.dtype.kind in "biu" else Rounding.apply(self, op=np.floor)
    def ceil(self): return self.clone() if self.dtype.kind in "biu" else Rounding.apply(self, op=np.ceil)
    def trunc(self): return self.clone() if self.dtype.kind in "biu" else Rounding.apply(self, op=np.trunc)

    def round(self, decimals=0):
        """Half to even, as PyTorch and NumPy."""
        if self.dtype.kind in "biu" and decimals >= 0:
            return self.clone()
        return Rounding.apply(self, op=functools.partial(np.round, decimals=decimals))

    def clip(self, min=None, max=None):
        """Each element limited to ``[min, max]`` (either may be None, not both); the gradient is 1 inside the
        range, 0 outside. Also ``clamp``."""
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        return Clip.apply(self, lo=_raw(min), hi=_raw(max))

    clamp = clip

    def maximum(self, other): return Maximum.apply(*_pair(self, other))
    def minimum(self, other): return Minimum.apply(*_pair(self, other))

    def where(self, condition, other): return where(condition, self, other)

    def masked_fill(self, mask, value):
        """``value`` where ``mask`` (bool, broadcast to self's shape) is True; self's dtype stays."""
        mask = _raw(mask)
        if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
            raise DtypeError(f"masked_fill: mask must be a bool tensor, got "
                             f"{getattr(mask, 'dtype', type(mask).__name__)}")
        if np.broadcast_shapes(mask.shape, self.shape) != self.shape:
            raise ShapeError(f"masked_fill: mask of shape {mask.shape} does not broadcast to {self.shape}")
        if isinstance(value, Tensor):
            if value.ndim:
                raise ShapeError(f"masked_fill: value must be a number or a 0-d tensor, got shape {value.shape}")
            value = value.astype(self.dtype)
        else:
            value = Tensor(np.asarray(value, self.dtype))
        return Where.apply(value, self, cond=mask)

    # ---------------------------------------------------------------- reductions
    def sum(self, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
        """Sum over ``dim`` (an int, a tuple, or None for all); ``keepdim`` keeps reduced dims as size 1.
        ``axis``/``keepdims`` are NumPy's spellings; ``dtype`` casts first."""
        dim, keepdim = _reduce_args("sum", dim, keepdim, axis, keepdims)
        x = self if dtype is None else self.astype(dtype)
        return Sum.apply(x, axis=_axes(dim, x.ndim), keepdims=keepdim)

    def mean(self, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
        """Mean over ``dim``; NaN over an empty axis (as PyTorch). Integer tensors raise, as in PyTorch."""
        dim, keepdim = _reduce_args("mean", dim, keepdim, axis, keepdims)
        x = self if dtype is None else self.astype(dtype)
        if x.dtype.kind != "f":
            raise DtypeError(f"mean(): input must be a float tensor, got {x.dtype} (use .float().mean())")
        axes = _axes(dim, x.ndim)
        count = math.prod([x.shape[a] for a in axes])
        return x.sum(axes, keepdim) * (1.0 / count if count else math.nan)

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None):
        """Variance with PyTorch's default ``correction=1`` (unbiased); ``correction=0`` is NumPy's default.
        ``correction >= N`` gives inf (NaN for a constant), as PyTorch."""
        dim, keepdim = _reduce_args("var", dim, keepdim, axis, keepdims)
        if isinstance(dim, bool):  # the legacy var(unbiased)
            dim, unbiased = None, dim
        if correction is None:
            correction = 1 if unbiased is None or unbiased else 0
        elif unbiased is not None:
            raise TypeError("var(): pass unbiased or correction, not both")
        if self.dtype.kind != "f":
            raise DtypeError(f"var(): input must be a float tensor, got {self.dtype}")
        return Var.apply(self, axis=_axes(dim, self.ndim), correction=correction, keepdims=keepdim)

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None):
        """Standard deviation: the square root of :meth:`var` (same arguments); its gradient is 0 where it is 0."""
        var = self.var(dim, unbiased, keepdim, correction=correction, axis=axis, keepdims=keepdims)
        return Sqrt.apply(var, zero_grad_at_zero=True)

    def amax(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """The largest value over ``dim`` (one or several); ties share the gradient evenly."""
        dim, keepdim = _reduce_args("amax", dim, keepdim, axis, keepdims)
        return Max.apply(self, axis=_axes(dim, self.ndim, "amax"), keepdims=keepdim, np_fn=np.max)

    def amin(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """The smallest value over ``dim`` (one or several); ties share the gradient evenly."""
        dim, keepdim = _reduce_args("amin", dim, keepdim, axis, keepdims)
        return Max.apply(self, axis=_axes(dim, self.ndim, "amin"), keepdims=keepdim, np_fn=np.min)

    def max(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """As PyTorch: ``max()`` the largest value; ``max(dim)`` a (values, indices) pair; ``max(other)`` the
        elementwise maximum. NumPy's ``max(axis=...)`` gives the values only."""
        return self._extreme("max", dim, keepdim, axis, keepdims)

    def min(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """As PyTorch: ``min()`` the smallest value; ``min(dim)`` a (values, indices) pair; ``min(other)`` the
        elementwise minimum. NumPy's ``min(axis=...)`` gives the values only."""
        return self._extreme("min", dim, keepdim, axis, keepdims)

    def _extreme(self, name, dim, keepdim, axis, keepdims):
        if isinstance(dim, (Tensor, np.ndarray)):
            return self.maximum(dim) if name == "max" else self.minimum(dim)
        if axis is not None or dim is None:  # NumPy's spelling, or all dims: the values
            dim, keepdim = _reduce_args(name, dim, keepdim, axis, keepdims)
            return self.amax(dim, keepdim) if name == "max" else self.amin(dim, keepdim)
        if isinstance(dim, (tuple, list)):
            raise TypeError(f"{name}(dim): dim must be an int (use amax/amin for several dims), got {dim!r}")
        keepdim = keepdim if keepdims is None else keepdims
        d = _axes(dim, self.ndim, name)
        indices = self.argmax(dim, keepdim=True) if name == "max" else self.argmin(dim, keepdim=True)
        values = TakeAlong.apply(self, index=indices.data, axis=d[0] if d else None)
        if not keepdim:
            values, indices = values.squeeze(dim), indices.squeeze(dim)
        return _ValuesIndices(values, indices)

    def argmax(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """Index of the first largest value (NaN counts as largest) over ``dim``, or into the flattened tensor."""
        return self._arg(np.argmax, "argmax", dim, keepdim, axis, keepdims)

    def argmin(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """Index of the first smallest value (NaN counts as smallest) over ``dim``, or into the flattened tensor."""
        return self._arg(np.argmin, "argmin", dim, keepdim, axis, keepdims)

    def _arg(self, fn, name, dim, keepdim, axis, keepdims):
        dim, keepdim = _reduce_args(name, dim, keepdim, axis, keepdims)
        if self.data.size == 0 and (dim is None or self.shape[_dim(dim, self.ndim)] == 0):
            raise DimError(f"{name}(): cannot take the {name} of an empty tensor (shape {self.shape}, dim {dim})")
        # NOTE: host computations (_host), so that minigrad.compile computes them again on replay (an accuracy
        # returned by a compiled step), never a constant of the recording
        if dim is None:
            shape = (1,) * self.ndim if keepdim else ()
            return Tensor(_host(functools.partial(_arg_flat, fn, shape), self.data))
        d = _axes(dim, self.ndim, name)
        if not d:  # 0-d input
            return Tensor(np.zeros((), np.int64))
        return Tensor(_host(functools.partial(_reduce_array, fn, d[0], keepdim), self.data))

    def all(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """True where every element over ``dim`` (all dims when None) is nonzero; a bool tensor."""
        dim, keepdim = _reduce_args("all", dim, keepdim, axis, keepdims)
        return Tensor(_host(functools.partial(_reduce_array, np.all, _axes(dim, self.ndim), keepdim), self.data))

    def any(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """True where some element over ``dim`` (all dims when None) is nonzero; a bool tensor."""
        dim, keepdim = _reduce_args("any", dim, keepdim, axis, keepdims)
        return Tensor(_host(functools.partial(_reduce_array, np.any, _axes(dim, self.ndim), keepdim), self.data))

    def prod(self, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
        """Product over one dim (or all); the gradient is exact where x holds zeros."""
        dim, keepdim = _reduce_args("prod", dim, keepdim, axis, keepdims)
        x = self if dtype is None else self.astype(dtype)
        if dim is None:
            out = Prod.apply(x.reshape(-1), axis=0)
            return out.reshape((1,) * x.ndim if keepdim else ())
        d = _axes(dim, x.ndim, "prod")
        if not d:
            return x.clone() if x.dtype.kind == "f" else x.long()
        out = Prod.apply(x, axis=d[0])
        return out if keepdim else out.squeeze(d[0])

    def logsumexp(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """log(sum(exp(x))) over ``dim``, shifted by the maximum (finite for large x; -inf where all are -inf)."""
        dim, keepdim = _reduce_args("logsumexp", dim, keepdim, axis, keepdims)
        x = _floating(self)
        axes = _axes(dim, x.ndim)
        m = np.max(x.data, axis=axes, keepdims=True) if x.data.size else np.zeros((1,) * x.ndim, x.dtype)
        m = np.where(np.isfinite(m), m, 0).astype(x.dtype)
        with np.errstate(divide="ignore"):
            out = (x - Tensor(m)).exp().sum(axes, keepdim=True).log() + Tensor(m)
        return out if keepdim else out.squeeze(axes) if axes else out

    def cumsum(self, dim, *, dtype=None):
        """Cumulative sum along ``dim``; ``dtype`` casts first."""
        x = self if dtype is None else self.astype(dtype)
        d = _axes(dim, x.ndim, "cumsum")
        return CumSum.apply(x, axis=d[0] if d else None)

    def norm(self, p=2, dim=None, keepdim=False):
        """The vector p-norm over ``dim`` (all elements when None): ``p=2`` (or ``'fro'``), 1, ``inf`` or any
        other positive number, ``(sum |x|**p) ** (1/p)``."""
        if p == 2 or p == "fro":
            return (self * self).sum(dim, keepdim).sqrt()
        if p == 1:
            return self.abs().sum(dim, keepdim)
        if p == math.inf:
            return self.abs().amax(dim, keepdim)
        return (self.abs() ** p).sum(dim, keepdim) ** (1.0 / p)

    # ---------------------------------------------------------------- sorting and selection
    def sort(self, dim=-1, descending=False, stable=False):
        """(values, indices) along ``dim``; ties keep their order (stable), NaN sorts as the largest."""
        d = _axes(dim, self.ndim, "sort")
        if not d:
            return _ValuesIndices(self.clone(), Tensor(np.zeros((), np.int64)))
        d = d[0]
        if descending:  # NOTE: a stable descending sort: sort the reversed axis ascending, reverse back
            n = self.shape[d]
            idx = n - 1 - np.flip(np.argsort(np.flip(self.data, d), axis=d, kind="stable"), d)
        else:
            idx = np.argsort(self.data, axis=d, kind="stable")
        return _ValuesIndices(TakeAlong.apply(self, index=idx, axis=d), Tensor(idx))

    def argsort(self, dim=-1, descending=False, stable=False):
        """The indices that sort along ``dim`` (the ``indices`` of :meth:`sort`)."""
        return self.sort(dim, descending, stable).indices

    def topk(self, k, dim=-1, largest=True, sorted=True):
        """The ``k`` largest (``largest=False``: smallest) values along ``dim`` and their indices, a (values,
        indices) pair, in sorted order."""
        d = _axes(dim, self.ndim, "topk")
        n = self.shape[d[0]] if d else 1
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 0 <= k <= n:
            raise ShapeError(f"topk: k must be an int in [0, {n}] (the size of dim {dim}), got {k!r}")
        values, indices = self.sort(dim, descending=largest)
        if not d:
            return _ValuesIndices(values, indices)
        sl = (slice(None),) * d[0] + (slice(0, k),)
        return _ValuesIndices(values[sl], Tensor(indices.data[sl]))

    def gather(self, dim, index):
        """out[i][j] = self[index[i][j]][j] for dim 0 (PyTorch's gather); index may be smaller than self in the
        other dims."""
        index = _index_array("gather", index)
        d = _axes(dim, self.ndim, "gather")
        if index.ndim != max(self.ndim, 1) and not (self.ndim == 0 and index.ndim == 0):
            raise ShapeError(f"gather: index must have as many dims as the input ({self.ndim}), got {index.ndim}")
        if not d:
            return TakeAlong.apply(self, index=index, axis=None)
        for a in range(self.ndim):
            if a != d[0] and index.shape[a] > self.shape[a]:
                raise ShapeError(f"gather: index {index.shape} is larger than input {self.shape} in dim {a}")
        return TakeAlong.apply(self, index=index, axis=d[0])

    take_along_dim = gather

    def index_select(self, dim, index):
        """The entries of ``index`` (1-d, int) along ``dim``; differentiable in self."""
        index = _index_array("index_select", index)
        if index.ndim > 1:
            raise ShapeError(f"index_select: index must be 1-d, got shape {index.shape}")
        d = _axes(dim, self.ndim, "index_select")
        if not d:
            return self.reshape(-1)[index.reshape(-1)].reshape(())
        return GetItem.apply(self, index=(slice(None),) * d[0] + (index.reshape(-1),))

    def scatter(self, dim, index, src=None, *, value=None, reduce=None):
        """A copy of self with ``self[index[i][j]][j] = src[i][j]`` (dim 0); ``src`` may be a number."""
        if reduce is not None:
            raise NotImplementedError("scatter(reduce=...) is not supported; use scatter_add")
        src = value if src is None else src
        return self._scatter("scatter", dim, index, src, add=False)

    def scatter_add(self, dim, index, src):
        """A copy of self with ``src[i][j]`` added at ``self[index[i][j]][j]`` (dim 0); repeated indices add up."""
        return self._scatter("scatter_add", dim, index, src, add=True)

    def _scatter(self, name, dim, index, src, add):
        index = _index_array(name, index)
        if self.ndim == 0:  # NOTE: as a 1-d tensor of one element
            src = src.reshape(-1) if isinstance(src, Tensor) else src
            return self.reshape(1)._scatter(name, dim, index.reshape(-1), src, add).reshape(())
        d = _dim(dim, self.ndim)
        src = src.astype(self.dtype) if isinstance(src, Tensor) else Tensor(np.full(index.shape, src, self.dtype))
        if index.ndim != self.ndim or src.ndim != self.ndim:
            raise ShapeError(f"{name}: index and src must have as many dims as the input ({self.ndim}), got "
                             f"{index.ndim} and {src.ndim}")
        for a in range(self.ndim):
            if index.shape[a] > src.shape[a] or (a != d and index.shape[a] > self.shape[a]):
                raise ShapeError(f"{name}: index {index.shape} must not be larger than src {src.shape} in any dim, "
                                 f"nor than the input {self.shape} outside dim {d}")
        return Scatter.apply(self, src, index=index, axis=d, add=add)

    # ---------------------------------------------------------------- shape ops
    def reshape(self, *shape):
        """The same elements in ``shape`` (one entry may be -1); ``view`` is the same op (a copy where NumPy
        needs one, never an error for non-contiguous input)."""
        shape = _shape(shape)
        try:
            return Reshape.apply(self, shape=shape)
        except ValueError as e:
            raise ShapeError(f"reshape: shape {list(shape)} is invalid for a tensor of {self.numel()} elements "
                             f"(shape {self.shape})") from e

    view = reshape

    def view_as(self, other): return self.reshape(other.shape)
    reshape_as = view_as

    def expand(self, *sizes):
        """Broadcast to ``sizes`` (-1 keeps a dim); new dims may be added in front. The result is read-only."""
        sizes = _shape(sizes)
        if len(sizes) < self.ndim:
            raise ShapeError(f"expand: the number of sizes ({len(sizes)}) must be >= the tensor's dims "
                             f"({self.ndim})")
        lead = len(sizes) - self.ndim
        shape = tuple(self.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(sizes))
        for i in range(self.ndim):
            if self.shape[i] not in (1, shape[lead + i]):
                raise ShapeError(f"expand: the size of dim {i} ({self.shape[i]}) must match {shape[lead + i]} "
                                 f"or be 1 (expanding {self.shape} to {sizes})")
        if any(s < 0 for s in shape):
            raise ShapeError(f"expand: -1 is not allowed in a new leading dim, got {sizes}")
        return BroadcastTo.apply(self, shape=shape)

    def expand_as(self, other): return self.expand(other.shape)
    broadcast_to = expand

    def flatten(self, start_dim=0, end_dim=-1):
        """Dims ``start_dim`` to ``end_dim`` merged into one; a 0-d tensor becomes 1-d."""
        if self.ndim == 0:
            _dim(start_dim, 0)
            _dim(end_dim, 0)
            return self.reshape(1)
        s, e = _dim(start_dim, self.ndim), _dim(end_dim, self.ndim)
        if s > e:
            raise ShapeError(f"flatten: start_dim ({start_dim}) must not come after end_dim ({end_dim})")
        return self.reshape(self.shape[:s] + (math.prod(self.shape[s:e + 1]),) + self.shape[e + 1:])

    def ravel(self): return self.reshape(-1)

    def unflatten(self, dim, sizes):
        """Dim ``dim`` split into ``sizes`` (their product must equal its size; one may be -1)."""
        d = _dim(dim, self.ndim)
        return self.reshape(self.shape[:d] + tuple(sizes) + self.shape[d + 1:])

    def transpose(self, *axes):
        """``t.transpose()`` reverses the axes; ``t.transpose(0, 1)`` swaps two (PyTorch); a full permutation
        permutes (NumPy)."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        nd = self.ndim
        if len(axes) == 0:
            perm = tuple(reversed(range(nd)))
        elif len(axes) == 2 and nd != 2:
            if nd == 0:
                _dim(axes[0], 0), _dim(axes[1], 0)
                return self.clone()
            perm = list(range(nd))
            a, b = _dim(axes[0], nd), _dim(axes[1], nd)
            perm[a], perm[b] = perm[b], perm[a]
            perm = tuple(perm)
        else:
            perm = tuple(_dim(a, nd) for a in axes)
            if len(axes) == 2 and nd == 2:
                perm = (1, 0) if perm[0] != perm[1] else (0, 1)
        return Permute.apply(self, perm=perm)

    swapaxes = swapdims = transpose

    def t(self):
        """The transpose of a tensor of at most 2 dims."""
        if self.ndim > 2:
            raise ShapeError(f"t(): expects a tensor of at most 2 dims, got shape {self.shape} (use transpose)")
        return self.transpose() if self.ndim == 2 else self

    def permute(self, *axes):
        """The dims in the order ``axes`` (a permutation of all dims)."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        perm = tuple(_dim(a, self.ndim) for a in axes)
        if sorted(perm) != list(range(self.ndim)):
            raise ShapeError(f"permute: {axes} is not a permutation of the {self.ndim} dims")
        return Permute.apply(self, perm=perm)

    def unsqueeze(self, dim):
        """A size-1 dim inserted at ``dim`` (``-1``: at the end)."""
        d = _dim(dim, self.ndim + 1)
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def squeeze(self, dim=None):
        """Drop size-1 dims: all of them, or those of ``dim`` (an int or a tuple) that have size 1."""
        if dim is None:
            return self.reshape(tuple(s for s in self.shape if s != 1))
        dims = set(_axes(dim, self.ndim, "squeeze"))
        return self.reshape(tuple(s for i, s in enumerate(self.shape) if not (i in dims and s == 1)))

    def flip(self, *dims):
        """The order of the elements reversed along ``dims``."""
        dims = _shape(dims)
        return Flip.apply(self, axes=_axes(dims, self.ndim, "flip"))

    def fliplr(self): return self.flip(1)
    def flipud(self): return self.flip(0)

    def roll(self, shifts, dims=None):
        """Elements shifted by ``shifts`` along ``dims`` (wrapping around); without ``dims``, over the flattened
        tensor, shape kept."""
        if dims is None:
            return Roll.apply(self.reshape(-1), shifts=shifts, axes=0).reshape(self.shape)
        shifts = tuple(shifts) if isinstance(shifts, (tuple, list)) else (shifts,)
        dims = tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)
        if len(shifts) != len(dims):
            raise ShapeError(f"roll: shifts {shifts} and dims {dims} must have the same length")
        return Roll.apply(self, shifts=shifts, axes=tuple(_dim(d, self.ndim) for d in dims))

    def repeat(self, *sizes):
        """The tensor tiled ``sizes[i]`` times along dim i (new leading dims where ``sizes`` is longer)."""
        sizes = _shape(sizes)
        if len(sizes) < self.ndim:
            raise ShapeError(f"repeat: the number of repeats ({len(sizes)}) must be >= the tensor's dims "
                             f"({self.ndim})")
        x = self.reshape((1,) * (len(sizes) - self.ndim) + self.shape)
        big = tuple(v for s, r in zip(x.shape, sizes) for v in (r, s))
        mid = x.reshape(tuple(v for s in x.shape for v in (1, s))).expand(big)
        return mid.reshape(tuple(s * r for s, r in zip(x.shape, sizes)))

    def split(self, split_size, dim=0):
        """A tuple of pieces along ``dim``: chunks of ``split_size`` (the last may be smaller), or of the sizes in
        the list ``split_size``."""
        d = _dim(dim, self.ndim)
        n = self.shape[d]
        sizes = [split_size] * (n // split_size) + ([n % split_size] if n % split_size else []) \
            if isinstance(split_size, (int, np.integer)) else list(split_size)
        if builtins.sum(sizes) != n:
            raise ShapeError(f"split: sizes {sizes} do not add up to {n} (dim {dim})")
        starts = np.cumsum([0] + sizes)
        return tuple(self[(slice(None),) * d + (slice(int(a), int(a) + s),)] for a, s in zip(starts, sizes))

    def chunk(self, chunks, dim=0):
        """``chunks`` pieces (or fewer) of equal size along ``dim``, the last possibly smaller."""
        n = self.shape[_dim(dim, self.ndim)]
        return self.split(max(-(-n // chunks), 1), dim)

    def unbind(self, dim=0):
        """A tuple of the slices along ``dim``, that dim removed."""
        d = _dim(dim, self.ndim)
        return tuple(self[(slice(None),) * d + (i,)] for i in range(self.shape[d]))

    def contiguous(self, memory_format=None):
        """Self: minigrad has no strided views to compact."""
        return self

    def is_contiguous(self):
        """Always True (see :meth:`contiguous`)."""
        return True

    # ---------------------------------------------------------------- in place (outside the graph)
    def _assign(self, name, value):
        _check_inplace(self, name)
        value = _raw(value)
        vdt = np.asarray(value).dtype if not isinstance(value, np.ndarray) else value.dtype
        if _dtypes._category(vdt) > _dtypes._category(self.data.dtype):
            raise DtypeError(f"{name}: the result type {vdt} cannot be cast to the tensor's dtype "
                             f"{self.data.dtype}")
        if np.broadcast_shapes(np.shape(value), self.shape) != self.shape:
            raise ShapeError(f"{name}: a result of shape {np.shape(value)} does not fit a tensor of shape "
                             f"{self.shape}")
        self.data[...] = value
        return self

    def _inplace(self, name, fn, *args, **kwargs):
        _check_inplace(self, name, *args, *kwargs.values())
        with no_grad():
            return self._assign(name, fn(self, *args, **kwargs).data)

    def add_(self, other, alpha=1):
        """``self += alpha * other`` in place (outside the graph); returns self."""
        return self._inplace("add_", lambda s, o: s + (o if alpha == 1 else o * alpha), other)

    def sub_(self, other, alpha=1):
        """``self -= alpha * other`` in place (outside the graph); returns self."""
        return self._inplace("sub_", lambda s, o: s - (o if alpha == 1 else o * alpha), other)

    def mul_(self, other): return self._inplace("mul_", Tensor.__mul__, other)
    def div_(self, other): return self._inplace("div_", Tensor.__truediv__, other)
    def pow_(self, other): return self._inplace("pow_", Tensor.__pow__, other)
    def clamp_(self, min=None, max=None): return self._inplace("clamp_", Tensor.clip, min, max)
    clip_ = clamp_
    def masked_fill_(self, mask, value): return self._inplace("masked_fill_", Tensor.masked_fill, mask, value)
    def scatter_(self, dim, index, src=None, *, value=None):
        return self._inplace("scatter_", Tensor.scatter, dim, index, src, value=value)
    def scatter_add_(self, dim, index, src): return self._inplace("scatter_add_", Tensor.scatter_add, dim, index, src)
    def addcmul_(self, a, b, value=1): return self._inplace("addcmul_", lambda s, a, b: s + a * b * value, a, b)
    def addcdiv_(self, a, b, value=1): return self._inplace("addcdiv_", lambda s, a, b: s + a / b * value, a, b)
    def lerp_(self, end, weight): return self._inplace("lerp_", lambda s, e, w: s + (e - s) * w, end, weight)

    def zero_(self):
        """Fill with zeros in place; returns self."""
        return self._assign("zero_", np.zeros((), self.data.dtype))

    def fill_(self, value):
        """Fill with ``value`` (a number or a 0-d tensor) in place; returns self."""
        return self._assign("fill_", _raw(value) if isinstance(value, Tensor) else np.asarray(value, self.dtype))

    def copy_(self, src, non_blocking=False):
        """Copy ``src`` (broadcast to self's shape, cast to self's dtype) into self."""
        _check_inplace(self, "copy_", src)
        src = _raw(src)
        if np.broadcast_shapes(np.shape(src), self.shape) != self.shape:
            raise ShapeError(f"copy_: src of shape {np.shape(src)} does not broadcast to {self.shape}")
        self.data[...] = src
        return self

    def normal_(self, mean=0.0, std=1.0, generator=None):
        """Fill in place with samples of N(``mean``, ``std``**2) from ``generator`` (default: the global one)."""
        gen = generator or _random.default_generator()
        return self._assign("normal_", gen.normal(mean, std, self.shape).astype(self.dtype))

    def uniform_(self, a=0.0, b=1.0, generator=None):
        """Fill in place with samples of U[``a``, ``b``) from ``generator`` (default: the global one)."""
        gen = generator or _random.default_generator()
        return self._assign("uniform_", gen.uniform(a, b, self.shape).astype(self.dtype))


# -------------------------------------------------------------------- helpers

def _to_arguments(fn, args, dtype, device):
    """The dtype asked for by ``to``'s arguments (``to(dtype)``, ``to(device)``, ``to(device, dtype)``,
    ``to(tensor)``, keywords too), or None; a device other than the CPU raises, naming ``fn``."""
    for a in args:
        if isinstance(a, Tensor):
            dtype = a.dtype
        elif isinstance(a, (str, _device.device)) and not _is_dtype_name(a):
            device = a
        else:
            dtype = a
    if device is not None:
        _device.check_cpu(device, fn)
    return dtype


def _is_dtype_name(a):
    if not isinstance(a, str):
        return False
    try:
        np.dtype(a)
    except TypeError:
        return False
    return a not in ("cpu",)


def _check_inplace(t, name, *others):
    """In-place ops are not recorded: refuse them where a gradient would be lost (PyTorch records or refuses)."""
    if _grad_enabled() and (t.requires_grad or builtins.any(isinstance(o, Tensor) and o.requires_grad
                                                              for o in others)):
        raise RuntimeError(f"{name}: an in-place op on or from a tensor that requires grad is not recorded by "
                           f"autograd; run it under minigrad.no_grad() (as optimizers do) or use the out-of-place op")


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def _floating(t):
    """t, cast to float32 when it is a bool or integer tensor (exp, log, ... of an int tensor are float32)."""
    return t if t.data.dtype.kind == "f" else Cast.apply(t, dtype=_dtypes.float32)


def _as_operand(x, dt):
    if isinstance(x, Tensor):
        return x if x.data.dtype == dt else Cast.apply(x, dtype=dt)
    return Tensor(np.asarray(x, dt))


def _pair(a, b, floating=False, broadcast=True):
    """The operands of a binary op as tensors of one dtype, promoted as PyTorch does (``floating``: bool and
    integer results become float32, as for true division)."""
    if isinstance(a, Tensor):
        dt = a.data.dtype
        if isinstance(b, Tensor):
            if broadcast and a.data.shape != b.data.shape:
                _check_broadcast(a.data.shape, b.data.shape)
            if b.data.dtype == dt and (dt.kind == "f" or not floating):
                return a, b
        elif dt.kind == "f" and isinstance(b, (int, float)) and not isinstance(b, bool):
            return a, Tensor(np.asarray(b, dt))  # the hot case: a float tensor and a Python number
    elif isinstance(b, Tensor):
        dt = b.data.dtype
        if dt.kind == "f" and isinstance(a, (int, float)) and not isinstance(a, bool):
            return Tensor(np.asarray(a, dt)), b
    try:
        dt = _dtypes.result_type(_raw(a) if isinstance(a, Tensor) else _operand_value(a),
                                 _raw(b) if isinstance(b, Tensor) else _operand_value(b))
    except TypeError:
        raise TypeError(f"unsupported operand types {type(a).__name__} and {type(b).__name__}") from None
    if floating:
        dt = _float_dtype(dt)
    return _as_operand(a, dt), _as_operand(b, dt)


def _check_broadcast(sa, sb):
    # NOTE: by hand: np.broadcast_shapes costs ~10 us, more than a small op
    for x, y in zip(reversed(sa), reversed(sb)):
        if x != y and x != 1 and y != 1:
            raise ShapeError(f"shapes {sa} and {sb} do not broadcast: sizes must match or be 1 in each dim, "
                             f"counted from the last")


def _operand_value(x):
    if isinstance(x, (np.ndarray, bool, int, float, np.generic)):
        return x
    return _to_array(x)  # a list


def _broadcast_op(op, a, b):
    try:
        return op(a, b)
    except ValueError as e:
        raise ShapeError(f"shapes {a.shape} and {b.shape} do not broadcast: {e}") from None


def _arg_flat(fn, shape, a):
    """``fn`` (argmax, argmin) of the flattened array, as an array of ``shape``: a host computation (``_host``)."""
    return np.asarray(fn(a)).reshape(shape)


def _reduce_array(fn, axis, keepdims, a):
    """``fn(a, axis, keepdims)`` as an array (argmax over a dim, all, any): a host computation (``_host``)."""
    return np.asarray(fn(a, axis=axis, keepdims=keepdims))


def _elementwise(op, *arrays):
    """``op`` of one or two arrays as an array (a ufunc gives a 0-d result as a NumPy scalar): the host computation
    (``_host``) of a comparison or logic op."""
    return np.asarray(_broadcast_op(op, *arrays) if len(arrays) == 2 else op(*arrays))


def _dim(dim, ndim):
    """One dim as a non-negative int; IndexError (DimError) naming it when out of range. A 0-d tensor takes dims
    -1 and 0, as in PyTorch."""
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"dim must be an int, got {dim!r}")
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise DimError(f"Dimension out of range: dim (axis) {dim} for a tensor of {ndim} dims (expected to be in "
                       f"range of [{-n}, {n - 1}])")
    return int(dim) % n


def _axes(axis, ndim, fn=None):
    """Normalize a dim argument to a sorted tuple of non-negative dims (None means all; a 0-d tensor has none)."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (axis,)
    out = [_dim(a, ndim) for a in axis]
    return tuple(sorted(set(out))) if ndim else ()


def _shape(shape):
    """A shape given as ``f(2, 3)`` or ``f((2, 3))``, as a tuple of ints."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list, Size)):
        shape = shape[0]
    return tuple(int(s) for s in shape)


def _index_array(fn, index):
    index = np.asarray(_raw(index))
    if index.dtype.kind not in "iu":
        raise DtypeError(f"{fn}: index must be an integer tensor, got {index.dtype}")
    return index.astype(np.int64, copy=False)


def _is_advanced(i):
    return isinstance(i, (np.ndarray, list)) or (isinstance(i, Tensor))


def _normalize_index(index, ndim):
    """Index with Tensors replaced by their arrays (integer or boolean tensors index like NumPy)."""
    if isinstance(index, tuple):
        return tuple(_raw(i) for i in index)
    return _raw(index)


def _getitem(t, index):
    """``t[index]`` with PyTorch's order of result dims: integers in an index that also holds index arrays are
    applied first (as basic indexing), so ``x[0, :, [1, 2]]`` of a (5, 6, 7) tensor is (6, 2), not NumPy's (2, 6)."""
    if isinstance(index, tuple) and any(_is_advanced(i) for i in index) \
            and any(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in index):
        first, rest = [], []
        for i in index:
            if isinstance(i, (int, np.integer)) and not isinstance(i, bool):
                first.append(i)
                continue
            rest.append(i)
            if i is None:
                continue
            if i is Ellipsis:
                first.append(Ellipsis)
            elif _is_advanced(i) and np.asarray(_raw(i)).dtype == np.bool_:
                first.extend([slice(None)] * np.asarray(_raw(i)).ndim)
            else:
                first.append(slice(None))
        return GetItem.apply(GetItem.apply(t, index=tuple(first)), index=_normalize_index(tuple(rest), t.ndim))
    return GetItem.apply(t, index=_normalize_index(index, t.ndim))


def _unbroadcast(grad, shape):
    """Sum ``grad`` down to ``shape``, undoing NumPy broadcasting."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def _unbroadcast_tensor(grad, shape):
    """``_unbroadcast`` as recorded Tensor ops (create_graph)."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(tuple(range(extra)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axes, keepdim=True)
    return grad.reshape(shape)


# -------------------------------------------------------------------- the graph walk

_DONE = object()  # _topological_order's marker


def _topological_order(roots, stop=None, leaves=True):
    """Nodes reachable from ``roots``, each after every node that uses it (iterative DFS); nodes in ``stop`` are
    not expanded. ``leaves=False``: the nodes with a context only (no leaf is pushed; a root that is a leaf is left
    out too)."""
    # NOTE: a node is marked when it is expanded, not when pushed: a node pushed twice is expanded at its
    # deeper push, so it is finished before every node that uses it (post-order stays topological)
    # NOTE: the stack holds nodes to expand; a node followed by _DONE (pushed above its parents) is finished when
    # _DONE comes off: no (node, flag) pair built per push
    order, seen = [], set()
    stack = list(reversed(roots))
    append, pop, mark = stack.append, stack.pop, seen.add
    while stack:
        node = pop()
        if node is _DONE:
            order.append(pop())
            continue
        if node in seen:
            continue
        mark(node)
        ctx = node._ctx
        if ctx is None or (stop is not None and node in stop):
            # NOTE: nothing to expand (a leaf): finished at once, as the marker pushed above it would finish it next
            if leaves or ctx is not None:
                order.append(node)
            continue
        append(node)
        append(_DONE)
        if leaves:
            for p in ctx.parents:
                if p.requires_grad and p not in seen:
                    append(p)
        else:
            for p in ctx.parents:
                if p.requires_grad and p._ctx is not None and p not in seen:
                    append(p)
    order.reverse()
    return order


def _check_differentiable(fn, tensors):
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{fn}: inputs must be Tensors, got {type(t).__name__} at position {i}")
        if not t.requires_grad:
            raise RuntimeError(f"{fn}: input {i} does not require grad (set requires_grad=True or use it in the "
                               f"graph)")


def _root_grad(fn, out, gradient, create_graph):
    """The gradient seeding ``out``: an array, or a Tensor (which may carry a graph) under create_graph."""
    if gradient is None:
        if out.data.size != 1:
            raise RuntimeError(f"{fn}(): grad can be implicitly created only for one-element outputs; this tensor has "
                               f"shape {out.data.shape}, pass the gradient explicitly")
        # NOTE: np.ones (a Python function: empty, then copyto) costs 1.2 us more, np.ones_like 2-3 us more
        g = np.empty(out.data.shape, out.data.dtype)
        g[...] = 1
        return Tensor(g) if create_graph else g
    if isinstance(gradient, Tensor):
        if gradient.shape != out.data.shape:
            raise ShapeError(f"{fn}(): grad has shape {gradient.shape}, expected {out.data.shape}")
        if create_graph:
            return gradient.astype(out.data.dtype)
        gradient = gradient.data
    g = _to_array(gradient)
    if g.shape != out.data.shape:
        raise ShapeError(f"{fn}(): grad has shape {g.shape}, expected {out.data.shape}")
    g = g.astype(out.data.dtype, copy=False)
    return Tensor(g) if create_graph else g


def _backward_pass(roots, root_grads, retain_graph, create_graph, inputs=None, accumulate=True,
                   stop_at_inputs=False):
    """Walk the graph from ``roots`` (seeded with ``root_grads``) in reverse topological order.

    ``accumulate``: add into ``.grad`` of the leaves (or of ``inputs`` when given); otherwise return
    ``{input: gradient}`` for ``inputs``. Without ``create_graph`` the gradients are arrays and each node's
    array ``backward`` runs (the fast path); with it they are Tensors and ``backward_graph`` runs under grad mode,
    so the pass is recorded. ``stop_at_inputs``: do not walk past ``inputs`` (a node's local backward).
    """
    if _recorder is not None:
        _recorder.on_walk(roots, root_grads, create_graph, inputs, accumulate, retain_graph)
    want = None if inputs is None else set(inputs)
    grads = {}
    for r, g in zip(roots, root_grads):
        grads[r] = g if r not in grads else grads[r] + g
    # NOTE: the memory of the arrays given to leaves so far (see _leaf_array); a seed is the caller's
    owners = {id(g if g.base is None else g.base) for g in root_grads if type(g) is np.ndarray}
    captured = {}
    anomaly = _active_switches and _anomaly_enabled()
    if want is None and not create_graph and not anomaly:  # NOTE: backward() of a loss, the common walk
        _walk_arrays(_topological_order(roots, leaves=False), grads, roots, retain_graph, owners)
        return captured
    order = _topological_order(roots, want if stop_at_inputs else None)
    needed = None
    if want is not None:  # NOTE: only nodes from which an input is reachable are worth walking through
        needed = set()
        for node in reversed(order):
            ctx = node._ctx
            if node in want or (ctx is not None and builtins.any(p in needed for p in ctx.parents)):
                needed.add(node)
    with (enable_grad() if create_graph else contextlib.nullcontext()):
        for node in order:
            g = grads.pop(node, None)
            if g is None:
                continue
            if node._ctx is None and getattr(node, "_freed", False) and (want is None or node not in want):
                raise RuntimeError(_FREED_MESSAGE)
            if needed is not None and node not in needed:
                continue
            ctx = node._ctx
            if want is not None and node in want:
                if accumulate:
                    _accumulate(node, g, create_graph, builtins.any(node is r for r in roots), owners)
                else:
                    captured[node] = g
                if stop_at_inputs:
                    continue
            elif ctx is None:  # a leaf
                if want is None and node.requires_grad:
                    _accumulate(node, g, create_graph, builtins.any(node is r for r in roots), owners)
                continue
            if ctx is None:
                continue
            in_grads = ctx.backward_graph(g) if create_graph else ctx.backward(g)
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            if anomaly:
                _check_anomaly(type(ctx).__name__, "backward",
                               [x.data if isinstance(x, Tensor) else x for x in in_grads])
            for parent, pg in zip(ctx.parents, in_grads):
                if pg is None or not parent.requires_grad:
                    continue
                pdata = parent.data
                if create_graph:
                    if not isinstance(pg, Tensor):
                        raise RuntimeError(f"double backward of {type(ctx).__name__}: backward_graph must return "
                                           f"Tensors, got {type(pg).__name__}")
                    if pg.shape != pdata.shape:
                        pg = _unbroadcast_tensor(pg, pdata.shape)
                    if pg.dtype != pdata.dtype:
                        pg = pg.astype(pdata.dtype)
                else:
                    if pg.shape != pdata.shape:
                        pg = _unbroadcast(pg, pdata.shape)
                    if pg.dtype != pdata.dtype:
                        pg = pg.astype(pdata.dtype)
                prev = grads.get(parent)
                grads[parent] = pg if prev is None else (prev + pg if create_graph else _sum_grads(prev, pg))
            if not retain_graph:
                node._ctx = None
                node._freed = True
    return captured


def _walk_arrays(order, grads, roots, retain_graph, owners):
    """``_backward_pass``'s loop for array gradients into every leaf (no ``inputs``, no create_graph, no anomaly
    checks): the same steps, without the tests of the cases that cannot arise here. ``order`` holds the nodes with a
    context only: the leaves' gradients are what is left in ``grads`` after them, accumulated in the order each
    leaf's first gradient came (each into its own ``.grad``: the order changes no value)."""
    for node in order:
        g = grads.pop(node, None)
        if g is None:
            continue
        ctx = node._ctx
        # NOTE: a pending fan-out sum (_fan_in) goes to the node whole
        in_grads = ctx.backward(g) if type(g) is not tuple else ctx.backward_sum(*g)
        parents = ctx.parents
        # NOTE: one input and one array back (most ops): the loop's body without the tuple and the zip
        if len(parents) == 1 and type(in_grads) is not tuple and not isinstance(in_grads, tuple):
            pairs = ((parents[0], in_grads),)
        else:
            pairs = zip(parents, in_grads if isinstance(in_grads, tuple) else (in_grads,))
        for parent, pg in pairs:
            if pg is None or not parent.requires_grad:
                continue
            pdata = parent.data
            if pg.shape != pdata.shape:
                pg = _unbroadcast(pg, pdata.shape)
            dtype = pdata.dtype
            if pg.dtype is not dtype and pg.dtype != dtype:  # NOTE: by identity first (NumPy's == is a call)
                pg = pg.astype(dtype)
            prev = grads.get(parent)
            grads[parent] = pg if prev is None else _fan_in(parent, prev, pg)
        if not retain_graph:
            node._ctx = None
            node._freed = True
    root_ids = {id(r) for r in roots}
    for node, g in grads.items():  # the leaves (a node freed by an earlier walk is one)
        if getattr(node, "_freed", False):
            raise RuntimeError(_FREED_MESSAGE)
        if node.requires_grad:
            if node.grad is None and type(g) is np.ndarray:
                # NOTE: _accumulate's common case (a first gradient) without its frame: 11 leaves an MLP-BN step. A
                # root's seed is copied by _leaf_array too (its memory is in owners)
                t = _new_object(Tensor)
                t.data, t.grad, t._ctx, t.requires_grad = _leaf_array(g, owners), None, None, False
                node.grad = t
            else:
                _accumulate(node, g, False, id(node) in root_ids, owners)


def _fan_in(parent, prev, pg):
    """``parent``'s gradient in _walk_arrays after one more contribution ``pg`` (``prev``: what it had). A second one
    is left pending, as the pair ``(prev, pg)``, where ``parent``'s node takes it (defines ``Function.backward_sum``:
    its backward is then the sum's only reader); a third sums the pair, then ``pg``
    (eager's order of additions); elsewhere (a leaf: ``.grad`` reads it) the sum now."""
    if type(prev) is tuple:
        return _sum_grads(_sum_grads(*prev), pg)
    ctx = parent._ctx
    return (prev, pg) if ctx is not None and ctx.backward_sum is not None else _sum_grads(prev, pg)


def _sum_grads(prev, pg):
    """``prev + pg`` for two gradient arrays of a tensor's shape and dtype (a fan-out sum of the walk: a tensor used
    twice, as a residual block's input by its shortcut and its first conv). A new array, never written into either:
    ``prev`` may be another tensor's gradient too (add's backward returns one array for both inputs). Large float
    sums go through the ``add`` kernel on the thread team (the same bits: one rounding per element, in any order of
    elements); at one thread, or below ``contract.SMALL_PASS`` elements, NumPy's add."""
    if (prev.size >= _contract.SMALL_PASS and prev.dtype.char in "fd" and pg.dtype == prev.dtype
            and pg.shape == prev.shape and prev.flags.c_contiguous and pg.flags.c_contiguous
            and _get_num_threads() > 1):
        out = np.empty(prev.shape, prev.dtype)
        _kernel_backends.kernels().add(out.reshape(-1), prev.reshape(-1), pg.reshape(-1))
        return out
    return prev + pg


# NOTE: a later walk that reaches a tensor whose node was freed raises, as PyTorch does once saved tensors were
# freed; minigrad raises even where the freed node saved nothing
_FREED_MESSAGE = ("Trying to backward through the graph a second time (or directly access saved tensors after they "
                  "have already been freed). Saved intermediate values of the graph are freed when you call "
                  ".backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the "
                  "graph a second time or if you need to access saved tensors after calling backward.")


def _accumulate(node, g, create_graph, is_root, owners):
    if create_graph:  # NOTE: .grad keeps the graph of the backward pass, as PyTorch's
        node.grad = g if node.grad is None else node.grad + g
    elif node.grad is not None:
        node.grad = _add_to_grad(node.grad, g)
    else:
        if type(g) is not np.ndarray:  # NOTE: a NumPy scalar: Tensor makes it an array
            node.grad = Tensor(g)
            return
        data = g.copy() if is_root else _leaf_array(g, owners)
        t = _new_object(Tensor)  # NOTE: Tensor(data) without Tensor.__init__'s frame (14 leaves an MLP-BN step)
        t.data, t.grad, t._ctx, t.requires_grad = data, None, None, False
        node.grad = t


def _leaf_array(g, owners):
    """``g`` as a leaf's first gradient, or a copy where the leaf would not own it: read-only (sum's backward gives a
    broadcast), or its memory (``owners``: ids of the arrays or bases holding it) already another leaf's gradient or
    the walk's seed (add's backward gives both inputs one array). NOTE: a .grad is written in place (zero_grad's
    set_to_none=False, clip_grad_norm_, ``p.grad.data *= s``): a shared array was scaled once per leaf, silently,
    where PyTorch's AccumulateGrad copies a gradient that something else holds. The flags (a new object, the test's
    costliest read) are read for a view only: minigrad marks no array read-only, so one is a view (a broadcast, or
    a view of the caller's read-only array)."""
    owner = g.base
    if owner is None:
        owner = g
    elif not g.flags.writeable:
        return g.copy()
    if id(owner) in owners:
        return g.copy()
    owners.add(id(owner))
    return g


def _add_to_grad(old, g):
    """The leaf's grad tensor after ``old + g``: ``old`` itself with the sum as its data, as PyTorch accumulates into
    the grad tensor in place (a reference kept to ``p.grad`` before ``zero_grad(set_to_none=False)`` and backward
    sees the new gradient; a new tensor left it holding the zeros). NOTE: the sum is a new array, not ``+=``: the
    old array may be another leaf's gradient too (a backward may give two parents the same array). A grad tensor
    with a graph of its own is left alone: a new tensor, as before."""
    data = old.data + g
    if type(data) is not np.ndarray:  # NOTE: a NumPy scalar (0-d + 0-d gives one)
        data = np.asarray(data)
    if old._ctx is not None or old.requires_grad:
        return Tensor(data)
    old.data = data
    return old


# -------------------------------------------------------------------- anomaly detection
def _anomaly_enabled():
    return _modes.anomaly


class detect_anomaly(_ModeSwitch):
    """Raise at the first op whose forward or backward produces NaN or inf, naming the op."""
    mode, value = "anomaly", True


def _check_anomaly(op, phase, arrays):
    for i, a in enumerate(arrays):
        if isinstance(a, np.ndarray) and a.dtype.kind == "f" and not np.isfinite(a).all():
            what = "NaN" if np.isnan(a).any() else "inf"
            raise FloatingPointError(f"detect_anomaly: {op}.{phase} produced {what} in its output {i}")


# -------------------------------------------------------------------- Function

class Function:
    """An op: ``forward`` on arrays, ``backward`` from the output gradient to one gradient per input tensor."""

    differentiable = True

    def __init__(self, parents):
        self.parents = parents
        self.needs_input_grad = tuple([p.requires_grad for p in parents])

    @classmethod
    def apply(cls, *tensors, **kwargs):
        """Run the op on ``tensors`` (keyword arguments go to ``forward``) and return its output tensor,
        attached to the graph when grad mode is on and an input requires grad."""
        # NOTE: apply_with_ctx's steps, made faster (every op runs this; a call to apply_with_ctx and the pair it
        # returns cost about 1 us): for one or two inputs the node is made without the __init__ frame (when cls
        # keeps Function's) and the output Tensor without Tensor.__init__'s; keep the two the same
        if cls.__init__ is not _function_init:
            ctx = cls(tensors)
            out = ctx.forward(*map(_data_of, tensors), **kwargs)
        elif len(tensors) == 1:
            ctx = _new_object(cls)
            x, = tensors
            ctx.parents, ctx.needs_input_grad = tensors, (x.requires_grad,)
            out = ctx.forward(x.data, **kwargs)
        elif len(tensors) == 2:
            ctx = _new_object(cls)
            x, y = tensors
            ctx.parents, ctx.needs_input_grad = tensors, (x.requires_grad, y.requires_grad)
            out = ctx.forward(x.data, y.data, **kwargs)
        else:
            ctx = _new_object(cls)
            ctx.parents, ctx.needs_input_grad = tensors, tuple(map(_requires_grad_of, tensors))
            out = ctx.forward(*map(_data_of, tensors), **kwargs)
        if _active_switches:
            if _anomaly_enabled():
                _check_anomaly(cls.__name__, "forward", out if isinstance(out, tuple) else (out,))
            grad = _grad_enabled()
        else:
            grad = True
        if type(out) is np.ndarray:
            result = _new_object(Tensor)
            result.data, result.grad = out, None
            if grad and cls.differentiable and True in ctx.needs_input_grad and out.dtype in _FLOAT_DTYPES:
                result.requires_grad, result._ctx = True, ctx
            else:
                result.requires_grad, result._ctx = False, None
        else:
            result = Tensor(out)
            if grad and cls.differentiable and True in ctx.needs_input_grad and result.data.dtype in _FLOAT_DTYPES:
                result.requires_grad = True
                result._ctx = ctx
        if _recorder is not None:
            _recorder.on_apply(ctx, tensors, kwargs, result)
        return result

    @classmethod
    def apply_with_ctx(cls, *tensors, **kwargs):
        """Like ``apply``, but also returns the context, which holds what forward saved (even under no_grad)."""
        # NOTE: apply's steps with one branch for any number of inputs (the node and an array output made without
        # their __init__ frames; tests/test_function_apply.py holds the two equal); batch norm's node, 3 an MLP-BN step
        if cls.__init__ is _function_init:
            ctx = _new_object(cls)
            ctx.parents, ctx.needs_input_grad = tensors, tuple(map(_requires_grad_of, tensors))
        else:
            ctx = cls(tensors)
        out = ctx.forward(*map(_data_of, tensors), **kwargs)
        anomaly, grad = (_anomaly_enabled(), _grad_enabled()) if _active_switches else (False, True)
        if anomaly:
            _check_anomaly(cls.__name__, "forward", out if isinstance(out, tuple) else (out,))
        if type(out) is np.ndarray:
            result = _new_object(Tensor)
            result.data, result.grad, result.requires_grad, result._ctx = out, None, False, None
        else:
            result = Tensor(out)
        if grad and cls.differentiable and True in ctx.needs_input_grad and result.data.dtype in _FLOAT_DTYPES:
            result.requires_grad = True
            result._ctx = ctx
        if _recorder is not None:
            _recorder.on_apply(ctx, tensors, kwargs, result)
        return result, ctx

    def forward(self, *args, **kwargs):
        """The op on arrays: ``forward(*arrays, **kwargs) -> array``; save what ``backward`` needs on self."""
        raise NotImplementedError

    def backward(self, grad):
        """The gradient of each input (an array, or None where ``needs_input_grad`` is False) from the
        output's gradient ``grad`` (an array); one per input tensor, as a tuple when there are several."""
        raise NotImplementedError

    def backward_graph(self, grad):
        """``backward`` as recorded Tensor ops (``grad`` a Tensor, Tensors or None out), run under
        ``create_graph=True`` so that the gradient can be differentiated again. The default differentiates
        ``compose`` (the forward rebuilt from Tensor ops on ``self.parents``) where an op defines it; ops with
        neither raise, so a second derivative is never silently wrong."""
        if self.compose is None:
            raise RuntimeError(f"double backward of {type(self).__name__} is not supported (backward or "
                               f"autograd.grad with create_graph=True needs its backward to be differentiable)")
        parents = self.parents
        wanted = [p for p, need in zip(parents, self.needs_input_grad) if need]
        # NOTE: a local backward: rebuilt from the parents and walked back to them only, never past them; the
        # rebuilt graph is kept (retain_graph): the gradient it gives is differentiated through it again
        out = self.compose(*parents)
        got = _backward_pass([out], [grad], retain_graph=True, create_graph=True, inputs=wanted,
                             accumulate=False, stop_at_inputs=True)
        # NOTE: a tensor passed twice (f(x, x)) gets its whole gradient once
        return tuple(got.pop(p, None) if need else None for p, need in zip(parents, self.needs_input_grad))

    compose = None  # ``compose(*parents) -> Tensor``: the forward as Tensor ops (see backward_graph)
    # ``backward_sum(grad0, grad1)``: ``backward(_sum_grads(grad0, grad1))`` (the same bits) for an op that can fold
    # the sum of its output's two gradients, in the order the walk adds them, into its own pass (add + ReLU's
    # backward, nn/functional/fused.py); backward()'s walk hands it the two where the output got exactly two (_fan_in)
    backward_sum = None


_function_init = Function.__init__

# -------------------------------------------------------------------- elementwise ops

class Cast(Function):
    def forward(self, x, dtype):
        self.in_dtype = x.dtype
        return x.astype(dtype)

    def backward(self, g):
        return g.astype(self.in_dtype)

    def backward_graph(self, g):
        return g.astype(self.in_dtype)


class Add(Function):
    def forward(self, a, b):
        return a + b

    def backward(self, g):
        return g, g

    def backward_graph(self, g):
        return g, g


class Sub(Function):
    def forward(self, a, b):
        return a - b

    def backward(self, g):
        return g, (-g if self.needs_input_grad[1] else None)

    def backward_graph(self, g):
        return g, (-g if self.needs_input_grad[1] else None)


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        return (g * self.b if self.needs_input_grad[0] else None,
                g * self.a if self.needs_input_grad[1] else None)

    def backward_graph(self, g):
        a, b = self.parents
        return (g * b if self.needs_input_grad[0] else None,
                g * a if self.needs_input_grad[1] else None)


class Div(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, g):
        ga = g / self.b if self.needs_input_grad[0] else None
        gb = -g * self.a / (self.b * self.b) if self.needs_input_grad[1] else None
        return ga, gb

    def backward_graph(self, g):
        a, b = self.parents
        ga = g / b if self.needs_input_grad[0] else None
        gb = -g * a / (b * b) if self.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, g):
        return -g

    def backward_graph(self, g):
        return -g


class PowScalar(Function):
    def forward(self, x, exponent):
        self.x, self.exponent = x, exponent
        return x ** np.asarray(exponent, dtype=x.dtype) if x.dtype.kind == "f" else x ** exponent

    def backward(self, g):
        # NOTE: d(x^0)/dx = 0 everywhere, also at x = 0 (where p * x^(p-1) would be 0 * inf), as PyTorch
        if self.exponent == 0:
            return np.zeros_like(g)
        p = np.asarray(self.exponent, dtype=self.x.dtype)
        return g * p * self.x ** (p - 1)

    def backward_graph(self, g):
        if self.exponent == 0:
            return g * 0.0
        x = self.parents[0]
        return g * (x ** (self.exponent - 1) * float(self.exponent))


class Pow(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        self.out = a ** b
        return self.out

    def backward(self, g):
        a, b, zero = self.a, self.b, np.zeros((), self.out.dtype)
        ga = gb = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.needs_input_grad[0]:  # NOTE: 0 where b == 0, even at a == 0 (PyTorch's pow_backward_self)
                ga = g * np.where(b == 0, zero, b * a ** (b - 1))
            if self.needs_input_grad[1]:
                # NOTE: d(a^b)/db = a^b log a, taken as 0 at a == 0 with b >= 0; NaN for a < 0 (PyTorch's
                # pow_backward_exponent)
                gb = g * np.where((a == 0) & (b >= 0), zero, self.out * np.log(a))
        return ga, gb

    def backward_graph(self, g):
        (a, b), zero = self.parents, Tensor(np.zeros((), self.out.dtype))
        ga = gb = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.needs_input_grad[0]:
                ga = g * where(Tensor(self.b == 0), zero, b * a ** (b - 1))
            if self.needs_input_grad[1]:
                gb = g * where(Tensor((self.a == 0) & (self.b >= 0)), zero, a ** b * a.log())
        return ga, gb


class Exp(Function):
    def forward(self, x):
        self.y = np.exp(x)
        return self.y

    def backward(self, g):
        return g * self.y

    def backward_graph(self, g):
        return g * self.parents[0].exp()


class Log(Function):
    def forward(self, x):
        self.x = x
        return np.log(x)

    def backward(self, g):
        return g / self.x

    def backward_graph(self, g):
        return g / self.parents[0]


class Sqrt(Function):
    def forward(self, x, zero_grad_at_zero=False):
        self.y, self.zero_at_zero = np.sqrt(x), zero_grad_at_zero
        return self.y

    def backward(self, g):
        if self.zero_at_zero:  # NOTE: std's gradient is 0 where std == 0 (PyTorch's std_backward), not inf
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(self.y == 0, np.zeros((), g.dtype), g / (2 * self.y))
        return g / (2 * self.y)

    def backward_graph(self, g):
        y = Sqrt.apply(self.parents[0])
        if self.zero_at_zero:
            with np.errstate(divide="ignore", invalid="ignore"):
                safe = where(Tensor(self.y == 0), Tensor(np.ones((), g.dtype)), y)
                return where(Tensor(self.y == 0), Tensor(np.zeros((), g.dtype)), g / (2 * safe))
        return g / (2 * y)


def _tanh_y(x):
    """tanh(x) on an array (Tanh's forward; also F.batch_norm_tanh's, which must give its bits)."""
    return np.tanh(x)


def _tanh_dx(g, y):
    """g*(1 - y*y) from the output ``y`` (Tanh's backward; also F.batch_norm_tanh's)."""
    return g * (1 - y * y)


class Tanh(Function):
    def forward(self, x):
        self.y = _tanh_y(x)
        return self.y

    def backward(self, g):
        return _tanh_dx(g, self.y)

    def backward_graph(self, g):
        y = self.parents[0].tanh()
        return g * (1 - y * y)


def _sigmoid_y(x):
    """1 / (1 + exp(-x)) on an array (Sigmoid's forward, see there; also F.batch_norm_sigmoid's, which must give
    its bits)."""
    if x.dtype == np.float32 and x.size:
        y = np.empty(x.shape, x.dtype)  # NOTE: before ascontiguousarray, which makes a 0-d x 1-d
        _kernel_backends.kernels().sigmoid_forward(y.reshape(-1), np.ascontiguousarray(x).reshape(-1))
    else:  # NOTE: float64, an empty array (the kernels take none), a dtype the kernels do not take (float16)
        y = np.negative(x, out=np.empty_like(x))  # NOTE: an array also for 0-d x (np.negative gives a scalar)
        with np.errstate(over="ignore"):
            np.exp(y, out=y)
        y += 1
        np.reciprocal(y, out=y)
    return y


def _sigmoid_dx(g, y):
    """g*(1 - y)*y from the output ``y`` (Sigmoid's backward; also F.batch_norm_sigmoid's)."""
    if g.dtype == y.dtype and g.shape == y.shape and y.dtype in _FLOAT_DTYPES and y.size:
        g = np.ascontiguousarray(g)
        dx = np.empty(y.shape, y.dtype)
        _kernel_backends.kernels().sigmoid_backward(dx.reshape(-1), g.reshape(-1), y.reshape(-1))
        return dx
    dx = g * (1 - y)  # NOTE: a gradient of another dtype or a broadcast one: NumPy, the kernel's order
    dx *= y
    return dx


class Sigmoid(Function):
    """1 / (1 + exp(-x)) as PyTorch computes it: no cancellation on either side; where exp(-x) overflows (x < -88
    in float32) the result is 0, which is within a denormal of the true value. One kernel call each way
    (``sigmoid_forward``, ``sigmoid_backward``: dx = g*(1 - y)*y, PyTorch's order), one pass over the values where
    the NumPy composition makes four forward (and an errstate) and three backward. NOTE: float64's forward stays
    NumPy's composition: its kernel calls libm's exp per element (8.7 ns an element against NumPy's 4.2 for the
    four vectorized passes, 6000 values); float32's kernel runs its exp in vector lanes (1.4 against 2.2 ns)."""

    def forward(self, x):
        self.y = _sigmoid_y(x)
        return self.y

    def backward(self, g):
        return _sigmoid_dx(g, self.y)

    def backward_graph(self, g):
        y = self.parents[0].sigmoid()
        return g * (y * (1 - y))


class Relu(Function):
    def forward(self, x):
        # NOTE: the mask only for a backward (an input that needs no gradient never gets one): one pass less
        self.mask = x > 0 if self.needs_input_grad[0] else None
        # NOTE: max(x, 0), branch-free (np.where on a random mask is ~15x slower); NaN stays NaN, as in PyTorch
        return np.maximum(x, np.zeros((), x.dtype))

    def backward(self, g):
        return g * self.mask

    def backward_graph(self, g):
        return g * Tensor(self.mask.astype(g.dtype))  # NOTE: piecewise linear: the second derivative is 0


class Abs(Function):
    def forward(self, x):
        self.sign = np.sign(x)
        return np.abs(x)

    def backward(self, g):
        return g * self.sign

    def backward_graph(self, g):
        return g * Tensor(self.sign.astype(g.dtype))


class Clip(Function):
    def forward(self, x, lo, hi):
        y = np.clip(x, lo, hi)
        # NOTE: gradient passes where the input is inside [lo, hi] (boundaries included, as PyTorch's clamp)
        self.mask = np.ones(x.shape, dtype=bool)
        if lo is not None:
            self.mask &= x >= lo
        if hi is not None:
            self.mask &= x <= hi
        return y.astype(x.dtype, copy=False)

    def backward(self, g):
        return g * self.mask

    def backward_graph(self, g):
        return g * Tensor(self.mask.astype(g.dtype))


class Sin(Function):
    def forward(self, x):
        self.x = x
        return np.sin(x)

    def backward(self, g):
        return g * np.cos(self.x)

    def backward_graph(self, g):
        return g * self.parents[0].cos()


class Cos(Function):
    def forward(self, x):
        self.x = x
        return np.cos(x)

    def backward(self, g):
        return -g * np.sin(self.x)

    def backward_graph(self, g):
        return -g * self.parents[0].sin()


class Log1p(Function):
    def forward(self, x):
        self.x = x
        return np.log1p(x)

    def backward(self, g):
        return g / (1 + self.x)

    def backward_graph(self, g):
        return g / (1 + self.parents[0])


class Clone(Function):
    def forward(self, x):
        return x.copy()

    def backward(self, g):
        return g

    def backward_graph(self, g):
        return g


class Rounding(Function):
    """sign, floor, ceil, round, trunc: piecewise constant, so the gradient is 0 (as PyTorch's)."""

    def forward(self, x, op):
        return np.asarray(op(x))

    def backward(self, g):
        return np.zeros_like(g)

    def backward_graph(self, g):
        return g * 0.0


class FloorDivide(Function):
    def forward(self, a, b):
        return np.floor_divide(a, b)

    def backward(self, g):
        raise RuntimeError("the derivative of floor_divide (//) is not implemented (as in PyTorch)")


class Remainder(Function):
    """a - floor(a / b) * b, with the sign of b (Python's %, PyTorch's remainder)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return np.remainder(a, b)

    def backward(self, g):
        return g, (-g * np.floor_divide(self.a, self.b) if self.needs_input_grad[1] else None)

    def backward_graph(self, g):
        return g, (-g * Tensor(np.floor_divide(self.a, self.b)) if self.needs_input_grad[1] else None)


class Minimum(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return np.minimum(a, b)

    def backward(self, g):
        a_wins = (self.a < self.b) + 0.5 * (self.a == self.b)
        return (g * a_wins if self.needs_input_grad[0] else None,
                g * (1 - a_wins) if self.needs_input_grad[1] else None)

    def backward_graph(self, g):
        a_wins = ((self.a < self.b) + 0.5 * (self.a == self.b)).astype(g.dtype)
        return (g * Tensor(a_wins) if self.needs_input_grad[0] else None,
                g * Tensor(1 - a_wins) if self.needs_input_grad[1] else None)


class Maximum(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return np.maximum(a, b)

    def backward(self, g):
        # NOTE: ties split the gradient evenly, as PyTorch does
        a_wins = (self.a > self.b) + 0.5 * (self.a == self.b)
        return (g * a_wins if self.needs_input_grad[0] else None,
                g * (1 - a_wins) if self.needs_input_grad[1] else None)

    def backward_graph(self, g):
        a_wins = ((self.a > self.b) + 0.5 * (self.a == self.b)).astype(g.dtype)
        return (g * Tensor(a_wins) if self.needs_input_grad[0] else None,
                g * Tensor(1 - a_wins) if self.needs_input_grad[1] else None)


class Where(Function):
    def forward(self, a, b, cond):
        self.cond = cond
        return np.where(cond, a, b)

    def backward(self, g):
        zero = np.zeros((), dtype=g.dtype)
        return (np.where(self.cond, g, zero) if self.needs_input_grad[0] else None,
                np.where(self.cond, zero, g) if self.needs_input_grad[1] else None)

    def backward_graph(self, g):
        zero = Tensor(np.zeros((), dtype=g.dtype))
        return (Where.apply(*_pair(g, zero), cond=self.cond) if self.needs_input_grad[0] else None,
                Where.apply(*_pair(zero, g), cond=self.cond) if self.needs_input_grad[1] else None)


# -------------------------------------------------------------------- reductions

class Sum(Function):
    def forward(self, x, axis, keepdims):
        self.shape, self.axis, self.keepdims = x.shape, axis, keepdims
        # NOTE: bool and integer sums are int64, as PyTorch's (NumPy keeps uint64 for unsigned)
        return np.asarray(x.sum(axis=axis, keepdims=keepdims, dtype=np.int64 if x.dtype.kind in "biu" else None))

    def backward(self, g):
        if not self.keepdims:
            g = np.expand_dims(g, self.axis)
        return np.broadcast_to(g, self.shape)

    def backward_graph(self, g):
        if not self.keepdims:
            g = g.reshape(np.expand_dims(np.empty(g.shape, np.bool_), self.axis).shape)
        return g.expand(self.shape)


class Var(Function):
    """sum((x - mean)^2) / max(N - correction, 0) over ``axis``; dvar/dmean = 0, so dx = dy * 2 (x - mean) / divisor
    (inf or NaN when the divisor is 0, as PyTorch's)."""

    def forward(self, x, axis, correction, keepdims):
        count = math.prod([x.shape[a] for a in axis])
        self.axis, self.keepdims, self.divisor = axis, keepdims, max(count - correction, 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.centered = x - (x.mean(axis=axis, keepdims=True) if count else np.full((1,) * x.ndim, np.nan, x.dtype))
            out = (self.centered * self.centered).sum(axis=axis, keepdims=keepdims) / x.dtype.type(self.divisor)
        return np.asarray(out, x.dtype)

    def backward(self, g):
        if not self.keepdims:
            g = np.expand_dims(g, self.axis)
        if not self.divisor:  # NOTE: PyTorch gives dy * inf here, whatever the sign of (x - mean)
            with np.errstate(invalid="ignore"):
                return np.broadcast_to(g * np.asarray(np.inf, g.dtype), self.centered.shape)
        return g * self.centered * np.asarray(2.0 / self.divisor, g.dtype)

    def backward_graph(self, g):
        if not self.divisor:
            raise RuntimeError("double backward of Var is not supported where the divisor N - correction is 0")
        x = self.parents[0]
        if not self.keepdims:
            g = g.reshape(np.expand_dims(np.empty(g.shape, np.bool_), self.axis).shape)
        return g * (x - x.mean(self.axis, keepdim=True)) * (2.0 / self.divisor)


class Max(Function):
    """amax (``np_fn=np.max``) or amin (``np.min``) over ``axis``; computed directly, so integer minima do not
    overflow and bool works."""

    def forward(self, x, axis, keepdims, np_fn=np.max):
        self.x, self.axis, self.keepdims = x, axis, keepdims
        if x.size == 0 and (len(axis) == x.ndim or any(x.shape[a] == 0 for a in axis)):
            err = ShapeError if len(axis) == x.ndim else DimError  # NOTE: PyTorch's classes for the two cases
            raise err(f"{np_fn.__name__}: cannot reduce an empty tensor (shape {x.shape}) over dims {axis}: the "
                      f"operation has no identity")
        self.y = np.asarray(np_fn(x, axis=axis, keepdims=True))
        return self.y if keepdims else np.squeeze(self.y, axis=axis)

    def backward(self, g):
        if not self.keepdims:
            g = np.expand_dims(g, self.axis)
        # NOTE: ties share the gradient evenly (PyTorch's amax)
        hit = (self.x == self.y)
        return g * hit / hit.sum(axis=self.axis, keepdims=True)

    def backward_graph(self, g):
        if not self.keepdims:
            g = g.reshape(np.expand_dims(np.empty(g.shape, np.bool_), self.axis).shape)
        hit = self.x == self.y
        return g * Tensor((hit / hit.sum(axis=self.axis, keepdims=True)).astype(g.dtype))


# -------------------------------------------------------------------- shape ops

class Reshape(Function):
    def forward(self, x, shape):
        self.in_shape = x.shape
        return x.reshape(shape)

    def backward(self, g):
        return g.reshape(self.in_shape)

    def backward_graph(self, g):
        return g.reshape(self.in_shape)


class Permute(Function):
    def forward(self, x, perm):
        self.perm = perm
        return x.transpose(perm)

    def backward(self, g):
        return g.transpose(np.argsort(self.perm))

    def backward_graph(self, g):
        return Permute.apply(g, perm=tuple(int(i) for i in np.argsort(self.perm)))


class GetItem(Function):
    def forward(self, x, index):
        self.shape, self.dtype, self.index = x.shape, x.dtype, index
        return np.asarray(x[index])

    def backward(self, g):
        dx = np.zeros(self.shape, dtype=self.dtype)
        if _basic_index(self.index):  # no element repeats: a plain assignment
            dx[self.index] = g
        else:  # NOTE: np.add.at accumulates repeated integer indices (x[[0, 0]] sends two gradients to x[0])
            np.add.at(dx, self.index, g)
        return dx

    def backward_graph(self, g):
        return _IndexPut.apply(g, shape=self.shape, index=self.index)


class _IndexPut(Function):
    """zeros(shape) with g added at ``index``: GetItem's backward as an op, so it can be differentiated again."""

    def forward(self, g, shape, index):
        self.index = index
        dx = np.zeros(shape, dtype=g.dtype)
        if _basic_index(index):
            dx[index] = g
        else:
            np.add.at(dx, index, g)
        return dx

    def backward(self, gg):
        return np.asarray(gg[self.index])

    def backward_graph(self, gg):
        return GetItem.apply(gg, index=self.index)


class _PutAlong(Function):
    """TakeAlong's backward as an op (differentiable again)."""

    def forward(self, g, shape, sl, index, axis):
        self.sl, self.index, self.axis = sl, index, axis
        dx = np.zeros(shape, g.dtype)
        _put_along(dx[sl], index, g, axis, add=True)
        return dx

    def backward(self, gg):
        return np.take_along_axis(gg[self.sl], self.index, self.axis)

    def backward_graph(self, gg):
        return TakeAlong.apply(gg[self.sl], index=self.index, axis=self.axis)


def _basic_index(index):
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (slice, int, np.integer)) for i in items)


def _put_along(target, index, values, axis, add):
    """target[..., index, ...] (= or +=) values along ``axis``, the inverse of np.take_along_axis."""
    idx = list(np.indices(index.shape, sparse=True))
    idx[axis] = index
    if add:
        np.add.at(target, tuple(idx), values)
    else:
        target[tuple(idx)] = values


def _check_index_range(fn, index, n):
    if index.size and (index.min() < 0 or index.max() >= n):
        raise IndexRangeError(f"{fn}: index out of range: values must be in [0, {n}), got [{index.min()}, "
                         f"{index.max()}]")


class TakeAlong(Function):
    """out = x[..., index, ...] along ``axis`` (gather); ``index`` may be smaller than x in the other dims."""

    def forward(self, x, index, axis):
        self.shape, self.index, self.axis = x.shape, index, axis
        if axis is None:  # 0-d x
            _check_index_range("gather", index, 1)
            return x.copy().reshape(index.shape)
        _check_index_range("gather", index, x.shape[axis])
        self.sl = tuple(slice(None) if a == axis else slice(0, index.shape[a]) for a in range(x.ndim))
        return np.take_along_axis(x[self.sl], index, axis)

    def backward(self, g):
        if self.axis is None:
            return g.reshape(self.shape)
        dx = np.zeros(self.shape, g.dtype)
        _put_along(dx[self.sl], self.index, g, self.axis, add=True)
        return dx

    def backward_graph(self, g):
        if self.axis is None:
            return g.reshape(self.shape)
        return _PutAlong.apply(g, shape=self.shape, sl=self.sl, index=self.index, axis=self.axis)


class Scatter(Function):
    """A copy of x with x[..., index, ...] along ``axis`` set to (``add``: increased by) src[:index's shape]."""

    def forward(self, x, src, index, axis, add):
        self.index, self.axis, self.add, self.src_shape = index, axis, add, src.shape
        _check_index_range("scatter", index, x.shape[axis])
        self.sl = tuple(slice(0, s) for s in index.shape)
        self.sl_x = tuple(slice(None) if a == axis else s for a, s in enumerate(self.sl))
        out = x.copy()
        _put_along(out, index, src[self.sl], axis, add)
        return out

    def backward(self, g):
        gx = gsrc = None
        if self.needs_input_grad[0]:
            gx = g
            if not self.add:  # NOTE: the overwritten elements get no gradient
                gx = g.copy()
                _put_along(gx, self.index, np.zeros((), g.dtype), self.axis, add=False)
        if self.needs_input_grad[1]:
            gsrc = np.zeros(self.src_shape, g.dtype)
            gsrc[self.sl] = np.take_along_axis(g[self.sl_x], self.index, self.axis)
        return gx, gsrc

    def backward_graph(self, g):
        gx = gsrc = None
        if self.needs_input_grad[0]:
            gx = g
            if not self.add:
                keep = np.ones(g.shape, g.dtype)
                _put_along(keep, self.index, np.zeros((), g.dtype), self.axis, add=False)
                gx = g * Tensor(keep)
        if self.needs_input_grad[1]:
            gsrc = TakeAlong.apply(g, index=self.index, axis=self.axis)
            if gsrc.shape != self.src_shape:
                gsrc = _IndexPut.apply(gsrc, shape=self.src_shape, index=self.sl)
        return gx, gsrc


class Prod(Function):
    """Product over one axis (kept); the gradient is the product of the others, exact with zeros."""

    def forward(self, x, axis):
        self.x, self.axis = x, axis
        return np.prod(x, axis=axis, keepdims=True, dtype=np.int64 if x.dtype.kind in "biu" else None)

    def backward(self, g):
        x, axis = self.x, self.axis
        n = x.shape[axis]
        if n == 0:
            return np.zeros_like(x)
        ones = np.ones_like(np.take(x, [0], axis))
        # NOTE: d/dx_i = prod_{j<i} x_j * prod_{j>i} x_j, from exclusive cumulative products from both ends
        left = np.cumprod(np.concatenate([ones, np.take(x, np.arange(n - 1), axis)], axis), axis)
        rev = np.flip(np.take(x, np.arange(1, n), axis), axis)
        right = np.flip(np.cumprod(np.concatenate([ones, rev], axis), axis), axis)
        return g * left * right

    def backward_graph(self, g):
        x, axis = self.parents[0], self.axis
        n = x.shape[axis]
        if n == 0:
            return g * Tensor(np.zeros(x.shape, g.dtype))
        if np.all(self.x != 0):  # NOTE: prod/x_i, as PyTorch's prod_backward without zeros
            return g * (Prod.apply(x, axis=axis) / x)
        # NOTE: with zeros, d/dx_i = prod_{j != i} x_j exactly: the product over the last of two axes of an
        # (.., n, n, ..) copy of x with ones on the diagonal (n times x's memory), so Prod again, to any order
        shape = x.shape[:axis] + (n,) + x.shape[axis:]
        diag = np.eye(n, dtype=bool).reshape((1,) * axis + (n, n) + (1,) * (x.ndim - axis - 1))
        others = Where.apply(Tensor(np.ones((), x.dtype)), x.unsqueeze(axis).expand(shape), cond=diag)
        return g * Prod.apply(others, axis=axis + 1).reshape(x.shape)


class CumSum(Function):
    def forward(self, x, axis):
        self.axis, self.shape = axis, x.shape
        dtype = np.int64 if x.dtype.kind in "biu" else None
        if axis is None:  # 0-d
            return x.astype(dtype or x.dtype)
        return np.cumsum(x, axis=axis, dtype=dtype)

    def backward(self, g):
        if self.axis is None:
            return g
        return np.flip(np.cumsum(np.flip(g, self.axis), axis=self.axis), self.axis)

    def backward_graph(self, g):
        if self.axis is None:
            return g
        return CumSum.apply(g.flip(self.axis), axis=self.axis).flip(self.axis)


class BroadcastTo(Function):
    def forward(self, x, shape):
        return np.broadcast_to(x, shape)

    def backward(self, g):
        return g  # NOTE: reduced to the input's shape by the graph walk (_unbroadcast)

    def backward_graph(self, g):
        return g


class Flip(Function):
    def forward(self, x, axes):
        self.axes = axes
        return np.flip(x, axes) if axes else x.copy()

    def backward(self, g):
        return np.flip(g, self.axes) if self.axes else g

    def backward_graph(self, g):
        return Flip.apply(g, axes=self.axes)


class Roll(Function):
    def forward(self, x, shifts, axes):
        self.shifts, self.axes = shifts, axes
        return np.roll(x, shifts, axes)

    def backward(self, g):
        neg = tuple(-s for s in self.shifts) if isinstance(self.shifts, tuple) else -self.shifts
        return np.roll(g, neg, self.axes)

    def backward_graph(self, g):
        neg = tuple(-s for s in self.shifts) if isinstance(self.shifts, tuple) else -self.shifts
        return Roll.apply(g, shifts=neg, axes=self.axes)


class Concatenate(Function):
    def forward(self, *xs, axis):
        self.axis = axis
        self.splits = np.cumsum([x.shape[axis] for x in xs])[:-1]
        return np.concatenate(xs, axis=axis)

    def backward(self, g):
        return tuple(np.split(g, self.splits, axis=self.axis))

    def backward_graph(self, g):
        bounds = [0, *(int(b) for b in self.splits), g.shape[self.axis]]
        return tuple(g[(slice(None),) * self.axis + (slice(a, b),)] for a, b in zip(bounds[:-1], bounds[1:]))


class MatMul(Function):
    """``a @ b`` with NumPy's rules: 1-d operands are promoted and the added axis removed; batch dims broadcast."""

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ShapeError("matmul: both operands must have at least 1 dimension (use * for scalars)")
        ka = a.shape[-1]
        kb = b.shape[-2] if b.ndim >= 2 else b.shape[0]
        if ka != kb:
            raise ShapeError(f"matmul: shapes {a.shape} and {b.shape} are not aligned: "
                             f"{ka} (last dim of a) != {kb} (dim -2 of b)")
        self.a, self.b = a, b
        return np.matmul(a, b)

    def backward(self, g):
        a, b = self.a, self.b
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        # NOTE: restore the axes that 1-d operands dropped from the output
        g = g.reshape(np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]) + (a2.shape[-2], b2.shape[-1]))
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = _unbroadcast(np.matmul(g, np.swapaxes(b2, -1, -2)), a2.shape).reshape(a.shape)
        if self.needs_input_grad[1]:
            gb = _unbroadcast(np.matmul(np.swapaxes(a2, -1, -2), g), b2.shape).reshape(b.shape)
        return ga, gb

    def backward_graph(self, g):
        a, b = self.parents
        a2 = a.reshape((1,) + a.shape) if a.ndim == 1 else a
        b2 = b.reshape(b.shape + (1,)) if b.ndim == 1 else b
        g = g.reshape(np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]) + (a2.shape[-2], b2.shape[-1]))
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = _unbroadcast_tensor(g @ b2.transpose(-1, -2), a2.shape).reshape(a.shape)
        if self.needs_input_grad[1]:
            gb = _unbroadcast_tensor(a2.transpose(-1, -2) @ g, b2.shape).reshape(b.shape)
        return ga, gb


# -------------------------------------------------------------------- free functions
# NOTE: ``device`` is accepted wherever PyTorch takes it; only the CPU exists (minigrad/_device.py)

def tensor(data, requires_grad=False, dtype=None, device=None):
    """A new tensor from data (copied when it is an array): Python floats become float32, ints int64."""
    _device.check_cpu(device, "tensor")
    arr = _to_array(data, dtype)
    return Tensor(arr.copy() if arr is _raw(data) else arr, requires_grad=requires_grad)


def _factory_dtype(dtype, device, fn):
    _device.check_cpu(device, fn)
    return _dtype(dtype)


def zeros(*shape, dtype=None, requires_grad=False, device=None):
    """A tensor of zeros of ``shape`` (ints, or one tuple); float32 unless ``dtype`` is given."""
    return Tensor(np.zeros(_shape(shape), _factory_dtype(dtype, device, "zeros")), requires_grad=requires_grad)


def ones(*shape, dtype=None, requires_grad=False, device=None):
    """A tensor of ones of ``shape`` (ints, or one tuple); float32 unless ``dtype`` is given."""
    return Tensor(np.ones(_shape(shape), _factory_dtype(dtype, device, "ones")), requires_grad=requires_grad)


def empty(*shape, dtype=None, requires_grad=False, device=None):
    """Uninitialized in PyTorch; zeros here."""
    return zeros(*shape, dtype=dtype, requires_grad=requires_grad, device=device)


def full(shape, fill_value, dtype=None, requires_grad=False, device=None):
    """``fill_value`` everywhere; the dtype follows it (bool, int64, float32) unless ``dtype`` is given."""
    _device.check_cpu(device, "full")
    shape = (shape,) if isinstance(shape, (int, np.integer)) else _shape((shape,))
    if dtype is None:
        dtype = _to_array(_raw(fill_value)).dtype
    return Tensor(np.full(shape, _raw(fill_value), np.dtype(dtype)), requires_grad=requires_grad)


def arange(start, stop=None, step=1, dtype=None, requires_grad=False, device=None):
    """Like ``numpy.arange``; integer arguments give an int64 tensor unless ``dtype`` says otherwise."""
    _device.check_cpu(device, "arange")
    if stop is None:
        start, stop = 0, start
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) for v in (start, stop, step))
        dtype = np.int64 if ints else np.float32
    return Tensor(np.arange(start, stop, step, dtype=np.dtype(dtype)), requires_grad=requires_grad)


def randn(*shape, dtype=None, requires_grad=False, generator=None, device=None):
    """Samples of the standard normal N(0, 1) of ``shape``, from ``generator`` (default: the global one,
    seeded by ``manual_seed``); float32 unless ``dtype`` is given."""
    gen = generator or _random.default_generator()
    dt = _factory_dtype(dtype, device, "randn")
    return Tensor(gen.standard_normal(_shape(shape)).astype(dt), requires_grad=requires_grad)


def rand(*shape, dtype=None, requires_grad=False, generator=None, device=None):
    """Samples uniform in [0, 1) of ``shape``, from ``generator`` (default: the global one); float32 unless
    ``dtype`` is given."""
    gen = generator or _random.default_generator()
    dt = _factory_dtype(dtype, device, "rand")
    return Tensor(gen.random(_shape(shape)).astype(dt), requires_grad=requires_grad)


def randint(low, high=None, size=None, *, dtype=None, generator=None, device=None, requires_grad=False):
    """Integers uniform in [low, high) (``randint(high, size)`` starts at 0); int64 by default."""
    _device.check_cpu(device, "randint")
    if size is None:
        if high is None or not isinstance(high, (tuple, list, Size)):
            raise TypeError("randint: size (a tuple) is required, as randint(low, high, size) or randint(high, size)")
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    if high <= low:
        raise ValueError(f"randint: high ({high}) must be larger than low ({low})")
    gen = generator or _random.default_generator()
    out = gen.integers(low, high, size=_shape((size,)), dtype=np.int64)
    return Tensor(out.astype(np.dtype(dtype or np.int64)), requires_grad=requires_grad)


def randperm(n, *, dtype=None, generator=None, device=None):
    """A random permutation of ``0 .. n-1``; int64 unless ``dtype`` is given."""
    _device.check_cpu(device, "randperm")
    gen = generator or _random.default_generator()
    return Tensor(gen.permutation(n).astype(np.dtype(dtype or np.int64)))


def _like_dtype(t, dtype):
    return np.dtype(dtype) if dtype is not None else np.asarray(_raw(t)).dtype


def zeros_like(t, dtype=None, requires_grad=False, device=None):
    """Zeros of ``t``'s shape and (unless ``dtype`` is given) dtype."""
    _device.check_cpu(device, "zeros_like")
    return Tensor(np.zeros(np.shape(_raw(t)), _like_dtype(t, dtype)), requires_grad=requires_grad)


def ones_like(t, dtype=None, requires_grad=False, device=None):
    """Ones of ``t``'s shape and (unless ``dtype`` is given) dtype."""
    _device.check_cpu(device, "ones_like")
    return Tensor(np.ones(np.shape(_raw(t)), _like_dtype(t, dtype)), requires_grad=requires_grad)


def empty_like(t, dtype=None, requires_grad=False, device=None):
    """Uninitialized in PyTorch; zeros here (as :func:`zeros_like`)."""
    return zeros_like(t, dtype=dtype, requires_grad=requires_grad, device=device)


def full_like(t, fill_value, dtype=None, requires_grad=False, device=None):
    """``fill_value`` everywhere, of ``t``'s shape and (unless ``dtype`` is given) dtype."""
    _device.check_cpu(device, "full_like")
    return Tensor(np.full(np.shape(_raw(t)), _raw(fill_value), _like_dtype(t, dtype)), requires_grad=requires_grad)


def randn_like(t, dtype=None, requires_grad=False, device=None, generator=None):
    """Standard normal samples of ``t``'s shape and float dtype (``dtype`` overrides it)."""
    dt = _like_dtype(t, dtype)
    if dt.kind != "f":
        raise DtypeError(f"randn_like: needs a float dtype, got {dt}")
    return randn(*np.shape(_raw(t)), dtype=dt, requires_grad=requires_grad, device=device, generator=generator)


def rand_like(t, dtype=None, requires_grad=False, device=None, generator=None):
    """Samples uniform in [0, 1) of ``t``'s shape and float dtype (``dtype`` overrides it)."""
    dt = _like_dtype(t, dtype)
    if dt.kind != "f":
        raise DtypeError(f"rand_like: needs a float dtype, got {dt}")
    return rand(*np.shape(_raw(t)), dtype=dt, requires_grad=requires_grad, device=device, generator=generator)


def from_numpy(array):
    """A tensor sharing ``array``'s memory (as PyTorch's)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    if array.dtype.kind not in "biuf":
        raise TypeError(f"from_numpy: unsupported dtype {array.dtype}")
    return Tensor(array)


def as_tensor(data, dtype=None, device=None):
    """``data`` as a tensor, sharing memory with an ndarray or Tensor of the same dtype."""
    _device.check_cpu(device, "as_tensor")
    if isinstance(data, Tensor):
        return data if dtype is None else data.astype(dtype)
    return Tensor(_to_array(data, dtype))


def _as_tensors(tensors):
    tensors = [t if isinstance(t, Tensor) else Tensor(_to_array(t)) for t in tensors]
    if not tensors:
        raise ValueError("expected a non-empty sequence of tensors")
    return tensors


def concatenate(tensors, axis=0, *, dim=None):
    """Join along an existing dim (``dim=`` or NumPy's ``axis=``); dtypes promote as PyTorch's."""
    tensors = _as_tensors(tensors)
    if dim is not None:
        axis = dim
    # NOTE: PyTorch skips legacy empty 1-d tensors of shape (0,) in cat
    kept = [t for t in tensors if t.shape != (0,)] or tensors[:1]
    nd = kept[0].ndim
    if nd == 0:
        raise ShapeError("cat: zero-dimensional tensors cannot be concatenated")
    if builtins.any(t.ndim != nd for t in kept):
        raise ShapeError(f"cat: all tensors must have the same number of dims, got {[t.shape for t in tensors]}")
    d = _dim(axis, nd)
    for t in kept:
        if t.shape[:d] + t.shape[d + 1:] != kept[0].shape[:d] + kept[0].shape[d + 1:]:
            raise ShapeError(f"cat: sizes must match except in dim {axis}, got {[t.shape for t in tensors]}")
    dt = _dtypes.result_type(*[np.empty((1,), t.dtype) for t in kept])
    return Concatenate.apply(*[t.astype(dt) for t in kept], axis=d)


cat = concat = concatenate


def stack(tensors, axis=0, *, dim=None):
    """Join same-shape tensors along a new dim ``dim`` (or NumPy's ``axis``)."""
    tensors = _as_tensors(tensors)
    if dim is not None:
        axis = dim
    shape = tensors[0].shape
    if builtins.any(t.shape != shape for t in tensors):
        raise ShapeError(f"stack: all tensors must have the same shape, got {[t.shape for t in tensors]}")
    axis = _dim(axis, len(shape) + 1)
    return concatenate([t.unsqueeze(axis) for t in tensors], axis=axis)


def where(cond, a=None, b=None):
    """``cond ? a : b`` elementwise, differentiable in a and b; ``where(cond)`` the indices where cond holds."""
    cond = np.asarray(_raw(cond))
    if a is None and b is None:
        return tuple(Tensor(i) for i in np.nonzero(cond))
    if cond.dtype != np.bool_:
        raise DtypeError(f"where: condition must be a bool tensor, got {cond.dtype}")
    a, b = _pair(a, b)
    return Where.apply(a, b, cond=cond)


def maximum(a, b):
    """The elementwise maximum of ``a`` and ``b`` (broadcast); NaN propagates, ties share the gradient."""
    return Maximum.apply(*_pair(a, b))


def minimum(a, b):
    """The elementwise minimum of ``a`` and ``b`` (broadcast); NaN propagates, ties share the gradient."""
    return Minimum.apply(*_pair(a, b))


def clip(x, min=None, max=None):
    """``x`` limited to ``[min, max]`` elementwise (:meth:`Tensor.clip`); also ``clamp``."""
    return x.clip(min, max)


clamp = clip


def exp(x): return x.exp()
def log(x): return x.log()
def sqrt(x): return x.sqrt()
def tanh(x: Tensor) -> Tensor: return x.tanh()
def sigmoid(x: Tensor) -> Tensor: return x.sigmoid()
def relu(x: Tensor) -> Tensor: return x.relu()
def matmul(a, b): return MatMul.apply(*_pair(a, b, broadcast=False))


def sum(x, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):  # noqa: A001 (mirrors torch.sum)
    """The sum of ``x`` over ``dim`` (:meth:`Tensor.sum`)."""
    return x.sum(dim, keepdim, dtype=dtype, axis=axis, keepdims=keepdims)


def mean(x, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
    """The mean of ``x`` over ``dim`` (:meth:`Tensor.mean`)."""
    return x.mean(dim, keepdim, dtype=dtype, axis=axis, keepdims=keepdims)
