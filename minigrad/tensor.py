"""Tensor and reverse-mode autograd over a dynamic graph.

A ``Tensor`` wraps a NumPy array. An op is a ``Function`` subclass: its instance *is* the autograd context.
``Function.apply`` runs ``forward`` on raw arrays and attaches the node to the output only when grad mode is on and
some input requires a gradient. ``backward`` receives the output's gradient and returns one gradient per input
(``None`` where the input needs none); gradients are reduced to the input's shape when broadcasting widened it.

``Tensor.backward`` walks the graph in reverse topological order (iteratively: deep graphs do not hit the recursion
limit), accumulates leaf gradients into ``.grad`` with ``+=`` semantics, and then drops every node it walked so that
the saved arrays are freed (no reference cycles: a node refers to its inputs, never to its output).
"""
import contextlib
import functools
import math
import threading

import numpy as np

from minigrad import random as _random
from minigrad.kernels.rules import FLOATS as _FLOAT_DTYPES
from minigrad.kernels.rules import float_dtype as _dtype
_modes = threading.local()  # per-thread switches: "grad" (build graphs), "anomaly" (check every op's output)
_MODE_DEFAULTS = {"grad": True, "anomaly": False}
# NOTE: how many mode switches are active, in all threads. While none is, every thread has the defaults and the hot
# path (each op) skips the thread-local lookups. Changed under a lock: switches are rare, ops are not.
_active_switches = 0
_switch_lock = threading.Lock()


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
    return getattr(_modes, "grad", True)


def is_grad_enabled():
    return _grad_enabled()


class no_grad(_ModeSwitch):
    """Context manager (and decorator) that disables graph building: ops inside return plain tensors."""
    mode, value = "grad", False


class enable_grad(_ModeSwitch):
    mode, value = "grad", True


def _to_array(data, dtype=None):
    """Array for ``data``: ndarrays keep their dtype; Python numbers and lists become float32."""
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.ndarray):
        arr = data
    elif isinstance(data, np.generic):
        arr = np.asarray(data)
    else:
        arr = np.asarray(data)
        if dtype is None and arr.dtype.kind in "biuf" and arr.dtype != np.bool_:
            arr = arr.astype(np.float32)
        elif dtype is None and arr.dtype.kind not in "biuf":
            raise TypeError(f"Tensor: cannot make a tensor from {type(data).__name__} (dtype {arr.dtype})")
    if dtype is not None:
        arr = arr.astype(np.dtype(dtype), copy=False)
    return arr


class Tensor:
    """An n-dimensional array with an optional gradient.

    ``Tensor(data, requires_grad=False, dtype=None)``: a NumPy array keeps its dtype; Python floats and lists
    become float32. Only float32 and float64 tensors can require a gradient; integer tensors hold labels and
    indices.
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "__weakref__")
    __array_priority__ = 1000  # ndarray (op) Tensor defers to Tensor's reflected operator

    def __init__(self, data, requires_grad=False, dtype=None):
        # NOTE: an ndarray with no dtype asked for is kept as is (the common case, from every op's forward)
        self.data = data if dtype is None and type(data) is np.ndarray else _to_array(data, dtype)
        self.grad = None
        self._ctx = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # ---------------------------------------------------------------- basics
    def requires_grad_(self, flag=True):
        if flag and self.data.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"only float32 and float64 tensors can require gradients, got dtype {self.data.dtype}")
        self.requires_grad = bool(flag)
        return self

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def size(self):
        return self.data.size

    @property
    def T(self):
        return self.transpose()

    @property
    def is_leaf(self):
        return self._ctx is None

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def numel(self):
        return self.data.size

    def numpy(self):
        """The underlying array (shared, not copied)."""
        return self.data

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item(): only one-element tensors can be converted to Python scalars, got shape "
                             f"{self.data.shape}")
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def detach(self):
        """A tensor sharing this one's data, cut from the graph."""
        return Tensor(self.data)

    def astype(self, dtype):
        return Cast.apply(self, dtype=np.dtype(dtype))

    def float(self):
        return self.astype(np.float32)

    def double(self):
        return self.astype(np.float64)

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        body = np.array2string(self.data, separator=", ", prefix="Tensor(")
        return f"Tensor({body}, dtype={self.data.dtype}{grad})"

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)

    def __bool__(self):
        return bool(self.data)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    __hash__ = object.__hash__  # identity (no __eq__ is defined); in C, as graph walks hash every node

    # ---------------------------------------------------------------- autograd
    def backward(self, grad=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        ``grad`` (a Tensor or ndarray of self's shape) is required unless self has one element. The graph is
        freed afterwards unless ``retain_graph``.
        """
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not require grad and has no graph "
                               "(did you build it under no_grad, or from tensors without requires_grad=True?)")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward(): grad can be implicitly created only for one-element outputs; "
                                   f"this tensor has shape {self.data.shape}, pass grad=")
            grad = np.ones_like(self.data)
        else:
            grad = _to_array(grad)
            if grad.shape != self.data.shape:
                raise ValueError(f"backward(): grad has shape {grad.shape}, expected {self.data.shape}")
            grad = grad.astype(self.data.dtype, copy=False)

        order = self._topological_order()
        anomaly = _active_switches and _anomaly_enabled()
        grads = {self: grad}  # NOTE: Tensor hashes and compares by identity
        for node in order:
            g = grads.pop(node, None)
            ctx = node._ctx
            if ctx is None:  # a leaf
                if g is not None and node.requires_grad:
                    node.grad = Tensor(g.copy() if node is self else g) if node.grad is None \
                        else Tensor(node.grad.data + g)
                continue
            if g is None:
                continue
            in_grads = ctx.backward(g)
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            if anomaly:
                _check_anomaly(type(ctx).__name__, "backward", in_grads)
            for parent, pg in zip(ctx.parents, in_grads):
                if pg is None or not parent.requires_grad:
                    continue
                pdata = parent.data
                if pg.shape != pdata.shape:
                    pg = _unbroadcast(pg, pdata.shape)
                if pg.dtype != pdata.dtype:
                    pg = pg.astype(pdata.dtype)
                prev = grads.get(parent)
                grads[parent] = pg if prev is None else prev + pg
            if not retain_graph:
                node._ctx = None
        return None

    def _topological_order(self):
        """Nodes reachable from self, each after every node that uses it (iterative DFS)."""
        # NOTE: a node is marked when it is expanded, not when pushed: a node pushed twice is expanded at its
        # deeper push, so it is finished before every node that uses it (post-order stays topological)
        order, seen = [], set()
        stack = [(self, False)]
        append, pop = stack.append, stack.pop
        while stack:
            node, done = pop()
            if done:
                order.append(node)
                continue
            if node in seen:
                continue
            seen.add(node)
            append((node, True))
            ctx = node._ctx
            if ctx is not None:
                for p in ctx.parents:
                    if p.requires_grad and p not in seen:
                        append((p, False))
        order.reverse()
        return order

    # ---------------------------------------------------------------- operators
    def __add__(self, other): return Add.apply(self, _lift(other, self))
    def __radd__(self, other): return Add.apply(_lift(other, self), self)
    def __sub__(self, other): return Sub.apply(self, _lift(other, self))
    def __rsub__(self, other): return Sub.apply(_lift(other, self), self)
    def __mul__(self, other): return Mul.apply(self, _lift(other, self))
    def __rmul__(self, other): return Mul.apply(_lift(other, self), self)
    def __truediv__(self, other): return Div.apply(self, _lift(other, self))
    def __rtruediv__(self, other): return Div.apply(_lift(other, self), self)
    def __neg__(self): return Neg.apply(self)
    def __matmul__(self, other): return MatMul.apply(self, _lift(other, self))
    def __rmatmul__(self, other): return MatMul.apply(_lift(other, self), self)
    def __getitem__(self, index): return GetItem.apply(self, index=_normalize_index(index))

    def __pow__(self, other):
        if isinstance(other, (int, float, np.integer, np.floating)) and not isinstance(other, bool):
            return PowScalar.apply(self, exponent=float(other))
        return Pow.apply(self, _lift(other, self))

    def __rpow__(self, other):
        return Pow.apply(_lift(other, self), self)

    # comparisons give plain (non-differentiable) boolean tensors
    def __lt__(self, other): return Tensor(self.data < _raw(other))
    def __le__(self, other): return Tensor(self.data <= _raw(other))
    def __gt__(self, other): return Tensor(self.data > _raw(other))
    def __ge__(self, other): return Tensor(self.data >= _raw(other))
    def eq(self, other): return Tensor(self.data == _raw(other))

    def exp(self): return Exp.apply(self)
    def log(self): return Log.apply(self)
    def sqrt(self): return Sqrt.apply(self)
    def tanh(self): return Tanh.apply(self)
    def sigmoid(self): return Sigmoid.apply(self)
    def relu(self): return Relu.apply(self)
    def abs(self): return Abs.apply(self)
    def clip(self, min=None, max=None): return Clip.apply(self, lo=min, hi=max)
    clamp = clip

    def maximum(self, other): return Maximum.apply(self, _lift(other, self))
    def minimum(self, other): return -Maximum.apply(-self, -_lift(other, self))

    def sum(self, axis=None, keepdims=False, *, dim=None):
        return Sum.apply(self, axis=_axes(dim if axis is None else axis, self.ndim), keepdims=keepdims)

    def mean(self, axis=None, keepdims=False, *, dim=None):
        axes = _axes(dim if axis is None else axis, self.ndim)
        count = math.prod([self.shape[a] for a in axes])
        return self.sum(axis=axes, keepdims=keepdims) * (1.0 / max(count, 1))

    def var(self, axis=None, keepdims=False, *, correction=1, dim=None):
        """Variance with PyTorch's default ``correction=1`` (unbiased); ``correction=0`` is NumPy's default."""
        axes = _axes(dim if axis is None else axis, self.ndim)
        count = math.prod([self.shape[a] for a in axes])
        centered = self - self.mean(axis=axes, keepdims=True)
        return (centered * centered).sum(axis=axes, keepdims=keepdims) * (1.0 / max(count - correction, 1))

    def std(self, axis=None, keepdims=False, *, correction=1, dim=None):
        return self.var(axis, keepdims, correction=correction, dim=dim).sqrt()

    def max(self, axis=None, keepdims=False, *, dim=None):
        return Max.apply(self, axis=_axes(dim if axis is None else axis, self.ndim), keepdims=keepdims)

    def min(self, axis=None, keepdims=False, *, dim=None):
        return -((-self).max(axis=axis, keepdims=keepdims, dim=dim))

    def argmax(self, axis=None):
        return Tensor(np.argmax(self.data, axis=axis))

    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return Reshape.apply(self, shape=tuple(shape))

    view = reshape

    def flatten(self, start_dim=0, end_dim=-1):
        nd = self.ndim
        s, e = start_dim % nd if nd else 0, end_dim % nd if nd else 0
        shape = self.shape[:s] + (math.prod(self.shape[s:e + 1]),) + self.shape[e + 1:]
        return self.reshape(shape)

    def transpose(self, *axes):
        """``t.transpose()`` reverses the axes; ``t.transpose(0, 1)`` swaps two (PyTorch); a full permutation
        permutes (NumPy)."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        if len(axes) == 0:
            perm = tuple(reversed(range(self.ndim)))
        elif len(axes) == 2 and self.ndim != 2:
            perm = list(range(self.ndim))
            a, b = axes[0] % self.ndim, axes[1] % self.ndim
            perm[a], perm[b] = perm[b], perm[a]
            perm = tuple(perm)
        else:
            perm = tuple(a % self.ndim for a in axes)
            if len(axes) == 2 and self.ndim == 2:
                perm = (1, 0) if perm[0] != perm[1] else (0, 1)
        return Permute.apply(self, perm=perm)

    def permute(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        if sorted(a % self.ndim for a in axes) != list(range(self.ndim)):
            raise ValueError(f"permute: {axes} is not a permutation of the {self.ndim} axes")
        return Permute.apply(self, perm=tuple(a % self.ndim for a in axes))

    def unsqueeze(self, axis):
        axis = axis % (self.ndim + 1)
        return self.reshape(self.shape[:axis] + (1,) + self.shape[axis:])

    def squeeze(self, axis=None):
        if axis is None:
            return self.reshape(tuple(s for s in self.shape if s != 1))
        axis = axis % self.ndim
        if self.shape[axis] != 1:
            return self
        return self.reshape(self.shape[:axis] + self.shape[axis + 1:])

    def contiguous(self):
        return self

    def zero_(self):
        self.data[...] = 0
        return self


# -------------------------------------------------------------------- helpers

def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def _lift(other, like):
    """Wrap an operand as a Tensor: Python scalars take ``like``'s dtype (no float32 -> float64 promotion)."""
    if isinstance(other, Tensor):
        return other
    if isinstance(other, (int, float, np.integer, np.floating)) and not isinstance(other, (bool, np.ndarray)) \
            and like.data.dtype in _FLOAT_DTYPES:
        return Tensor(np.asarray(other, dtype=like.data.dtype))
    return Tensor(_to_array(other))


def _axes(axis, ndim):
    """Normalize an axis argument to a sorted tuple of non-negative axes (None means all)."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (axis,)
    out = []
    for a in axis:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor of {ndim} dims")
        out.append(int(a) % max(ndim, 1))
    return tuple(sorted(set(out)))


def _normalize_index(index):
    """Index with Tensors replaced by their arrays (integer or boolean tensors index like NumPy)."""
    if isinstance(index, tuple):
        return tuple(_raw(i) for i in index)
    return _raw(index)


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


# -------------------------------------------------------------------- anomaly detection
def _anomaly_enabled():
    return getattr(_modes, "anomaly", False)


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
        return cls.apply_with_ctx(*tensors, **kwargs)[0]

    @classmethod
    def apply_with_ctx(cls, *tensors, **kwargs):
        """Like ``apply``, but also returns the context, which holds what forward saved (even under no_grad)."""
        ctx = cls(tensors)
        out = ctx.forward(*[t.data for t in tensors], **kwargs)
        anomaly, grad = (_anomaly_enabled(), _grad_enabled()) if _active_switches else (False, True)
        if anomaly:
            _check_anomaly(cls.__name__, "forward", out if isinstance(out, tuple) else (out,))
        result = Tensor(out)
        if grad and cls.differentiable and True in ctx.needs_input_grad and result.data.dtype in _FLOAT_DTYPES:
            result.requires_grad = True
            result._ctx = ctx
        return result, ctx

    def forward(self, *args, **kwargs):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError


# -------------------------------------------------------------------- elementwise ops

class Cast(Function):
    def forward(self, x, dtype):
        self.in_dtype = x.dtype
        return x.astype(dtype)

    def backward(self, g):
        return g.astype(self.in_dtype)


class Add(Function):
    def forward(self, a, b):
        return a + b

    def backward(self, g):
        return g, g


class Sub(Function):
    def forward(self, a, b):
        return a - b

    def backward(self, g):
        return g, (-g if self.needs_input_grad[1] else None)


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        return (g * self.b if self.needs_input_grad[0] else None,
                g * self.a if self.needs_input_grad[1] else None)


class Div(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, g):
        ga = g / self.b if self.needs_input_grad[0] else None
        gb = -g * self.a / (self.b * self.b) if self.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, g):
        return -g


class PowScalar(Function):
    def forward(self, x, exponent):
        self.x, self.exponent = x, exponent
        return x ** np.asarray(exponent, dtype=x.dtype) if x.dtype.kind == "f" else x ** exponent

    def backward(self, g):
        p = np.asarray(self.exponent, dtype=self.x.dtype)
        return g * p * self.x ** (p - 1)


class Pow(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        self.out = a ** b
        return self.out

    def backward(self, g):
        ga = g * self.b * self.a ** (self.b - 1) if self.needs_input_grad[0] else None
        gb = None
        if self.needs_input_grad[1]:
            # NOTE: d(a^b)/db = a^b log a; defined as 0 where a^b == 0 (a == 0, b > 0), as PyTorch does
            with np.errstate(divide="ignore", invalid="ignore"):
                gb = g * np.where(self.out == 0, 0, self.out * np.log(np.where(self.a > 0, self.a, 1)))
        return ga, gb


class Exp(Function):
    def forward(self, x):
        self.y = np.exp(x)
        return self.y

    def backward(self, g):
        return g * self.y


class Log(Function):
    def forward(self, x):
        self.x = x
        return np.log(x)

    def backward(self, g):
        return g / self.x


class Sqrt(Function):
    def forward(self, x):
        self.y = np.sqrt(x)
        return self.y

    def backward(self, g):
        return g / (2 * self.y)


class Tanh(Function):
    def forward(self, x):
        self.y = np.tanh(x)
        return self.y

    def backward(self, g):
        return g * (1 - self.y * self.y)


class Sigmoid(Function):
    def forward(self, x):
        # NOTE: 1 / (1 + exp(-x)) as PyTorch computes it: no cancellation on either side; where exp(-x)
        # overflows (x < -88 in float32) the result is 0, which is within a denormal of the true value
        y = np.negative(x)
        with np.errstate(over="ignore"):
            np.exp(y, out=y)
        y += 1
        np.reciprocal(y, out=y)
        self.y = y
        return y

    def backward(self, g):
        dx = g * self.y
        dx *= 1 - self.y
        return dx


class Relu(Function):
    def forward(self, x):
        self.mask = x > 0
        # NOTE: max(x, 0), branch-free (np.where on a random mask is ~15x slower); NaN stays NaN, as in PyTorch
        return np.maximum(x, np.zeros((), x.dtype))

    def backward(self, g):
        return g * self.mask


class Abs(Function):
    def forward(self, x):
        self.sign = np.sign(x)
        return np.abs(x)

    def backward(self, g):
        return g * self.sign


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


class Maximum(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return np.maximum(a, b)

    def backward(self, g):
        # NOTE: ties split the gradient evenly, as PyTorch does
        a_wins = (self.a > self.b) + 0.5 * (self.a == self.b)
        return (g * a_wins if self.needs_input_grad[0] else None,
                g * (1 - a_wins) if self.needs_input_grad[1] else None)


class Where(Function):
    def forward(self, a, b, cond):
        self.cond = cond
        return np.where(cond, a, b)

    def backward(self, g):
        zero = np.zeros((), dtype=g.dtype)
        return (np.where(self.cond, g, zero) if self.needs_input_grad[0] else None,
                np.where(self.cond, zero, g) if self.needs_input_grad[1] else None)


# -------------------------------------------------------------------- reductions

class Sum(Function):
    def forward(self, x, axis, keepdims):
        self.shape, self.axis, self.keepdims = x.shape, axis, keepdims
        return np.asarray(x.sum(axis=axis, keepdims=keepdims))

    def backward(self, g):
        if not self.keepdims:
            g = np.expand_dims(g, self.axis)
        return np.broadcast_to(g, self.shape)


class Max(Function):
    def forward(self, x, axis, keepdims):
        self.x, self.axis, self.keepdims = x, axis, keepdims
        self.y = np.asarray(x.max(axis=axis, keepdims=True))
        return self.y if keepdims else np.squeeze(self.y, axis=axis)

    def backward(self, g):
        if not self.keepdims:
            g = np.expand_dims(g, self.axis)
        # NOTE: ties share the gradient evenly (PyTorch's amax)
        hit = (self.x == self.y)
        return g * hit / hit.sum(axis=self.axis, keepdims=True)


# -------------------------------------------------------------------- shape ops

class Reshape(Function):
    def forward(self, x, shape):
        self.in_shape = x.shape
        return x.reshape(shape)

    def backward(self, g):
        return g.reshape(self.in_shape)


class Permute(Function):
    def forward(self, x, perm):
        self.perm = perm
        return x.transpose(perm)

    def backward(self, g):
        return g.transpose(np.argsort(self.perm))


class GetItem(Function):
    def forward(self, x, index):
        self.shape, self.dtype, self.index = x.shape, x.dtype, index
        return np.asarray(x[index])

    def backward(self, g):
        dx = np.zeros(self.shape, dtype=self.dtype)
        # NOTE: np.add.at accumulates repeated integer indices (x[[0, 0]] sends two gradients to x[0])
        np.add.at(dx, self.index, g)
        return dx


class Concatenate(Function):
    def forward(self, *xs, axis):
        self.axis = axis
        self.splits = np.cumsum([x.shape[axis] for x in xs])[:-1]
        return np.concatenate(xs, axis=axis)

    def backward(self, g):
        return tuple(np.split(g, self.splits, axis=self.axis))


class MatMul(Function):
    """``a @ b`` with NumPy's rules: 1-d operands are promoted and the added axis removed; batch dims broadcast."""

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul: both operands must have at least 1 dimension (use * for scalars)")
        ka = a.shape[-1]
        kb = b.shape[-2] if b.ndim >= 2 else b.shape[0]
        if ka != kb:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are not aligned: "
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


# -------------------------------------------------------------------- free functions

def tensor(data, requires_grad=False, dtype=None):
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def _shape(shape):
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)


def zeros(*shape, dtype=None, requires_grad=False):
    return Tensor(np.zeros(_shape(shape), _dtype(dtype)), requires_grad=requires_grad)


def ones(*shape, dtype=None, requires_grad=False):
    return Tensor(np.ones(_shape(shape), _dtype(dtype)), requires_grad=requires_grad)


def full(shape, fill_value, dtype=None, requires_grad=False):
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return Tensor(np.full(shape, fill_value, _dtype(dtype)), requires_grad=requires_grad)


def arange(start, stop=None, step=1, dtype=None, requires_grad=False):
    """Like ``numpy.arange``; integer arguments give an int64 tensor unless ``dtype`` says otherwise."""
    if stop is None:
        start, stop = 0, start
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) for v in (start, stop, step))
        dtype = np.int64 if ints else np.float32
    return Tensor(np.arange(start, stop, step, dtype=np.dtype(dtype)), requires_grad=requires_grad)


def randn(*shape, dtype=None, requires_grad=False, generator=None):
    gen = generator or _random.default_generator()
    return Tensor(gen.standard_normal(_shape(shape)).astype(_dtype(dtype)), requires_grad=requires_grad)


def rand(*shape, dtype=None, requires_grad=False, generator=None):
    gen = generator or _random.default_generator()
    return Tensor(gen.random(_shape(shape)).astype(_dtype(dtype)), requires_grad=requires_grad)


def zeros_like(t, dtype=None, requires_grad=False):
    return Tensor(np.zeros_like(_raw(t), dtype=dtype), requires_grad=requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    return Tensor(np.ones_like(_raw(t), dtype=dtype), requires_grad=requires_grad)


def _as_tensors(tensors):
    tensors = [t if isinstance(t, Tensor) else Tensor(_to_array(t)) for t in tensors]
    if not tensors:
        raise ValueError("expected a non-empty sequence of tensors")
    return tensors


def concatenate(tensors, axis=0):
    tensors = _as_tensors(tensors)
    nd = tensors[0].ndim
    if any(t.ndim != nd for t in tensors):
        raise ValueError(f"concatenate: all tensors must have the same number of dims, got "
                         f"{[t.shape for t in tensors]}")
    return Concatenate.apply(*tensors, axis=_axes(axis, nd)[0])


cat = concatenate


def stack(tensors, axis=0):
    tensors = _as_tensors(tensors)
    shape = tensors[0].shape
    if any(t.shape != shape for t in tensors):
        raise ValueError(f"stack: all tensors must have the same shape, got {[t.shape for t in tensors]}")
    axis = axis % (len(shape) + 1)
    return concatenate([t.unsqueeze(axis) for t in tensors], axis=axis)


def where(cond, a, b):
    """``cond ? a : b`` elementwise, differentiable in a and b."""
    cond = np.asarray(_raw(cond), dtype=bool)
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else Tensor(np.asarray(a, np.float32))
    return Where.apply(_lift(a, like), _lift(b, like), cond=cond)


def maximum(a, b):
    a = a if isinstance(a, Tensor) else _lift(a, b)
    return a.maximum(b)


def minimum(a, b):
    a = a if isinstance(a, Tensor) else _lift(a, b)
    return a.minimum(b)


def clip(x, min=None, max=None):
    return x.clip(min, max)


def exp(x): return x.exp()
def log(x): return x.log()
def sqrt(x): return x.sqrt()
def tanh(x): return x.tanh()
def sigmoid(x): return x.sigmoid()
def relu(x): return x.relu()
def matmul(a, b): return _lift(a, b) @ b if not isinstance(a, Tensor) else a @ b


@functools.wraps(Tensor.sum)
def sum(x, axis=None, keepdims=False):  # noqa: A001 (mirrors numpy.sum)
    return x.sum(axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    return x.mean(axis=axis, keepdims=keepdims)
