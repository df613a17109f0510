"""``minigrad.compile``: record one call of a training step, replay it as straight-line code over arrays.

The first call with given input shapes runs the step eagerly while a recorder (``minigrad.tensor._recorder``)
hears every op applied (its context object, input arrays, keyword arguments, output), every host computation
(``tensor._host``: a target's checks, a dropout mask, a running-statistics update), every graph walk, every
optimizer ``step``/``zero_grad`` and every module called. From that it writes one Python function of
straight-line code: ``s7 = f7(s3, t2.data, **k7)`` per op (``f7`` the same context's ``forward``, which saves
again what its backward needs), the graph walk unrolled into ``ctx.backward`` calls and gradient sums in the
order eager adds them, leaf gradients written into one reused grad tensor per parameter, and the optimizer's own
``step`` called as is (its Python state: Adam's step count, a scheduler's learning rate, stays exact; so are
``zero_grad`` and a scheduler's ``step``, the methods decorated with ``tensor._replayed``). A replay
makes no Tensor and no graph node; only the tensors returned by the step are new (plain tensors over the replay's
arrays, ``requires_grad=False``). It frees what eager frees when eager does: each activation after its last
reader, and what a context saved after its backward (unless the walk retains the graph).

The bound replay: for the hot node kinds (``_Linear``; batch norm + sigmoid and cross entropy on a linear layer's
output) the recording also writes their kernels inline, bound at record time, into arrays allocated then
(``_Trace._bind_linear`` and its siblings), without the walk's shape and dtype fix-ups that are no-ops there;
``replay_plain`` is the function without them. A returned array that may share memory with a bound output array is
copied out; a node whose output a host computation or recorded method call reads is not bound.

Never a wrong result: a recording that reads a value into Python (``item``, ``bool``, ``float``, ``tolist``,
``numpy``, ...), assigns in place (``t[...] = v``), walks the graph other than ``backward()`` into leaf grads, or
runs with anomaly detection is not replayed (eager from then on for that key, one warning). The second call is
replayed once and checked against eager bit for bit: the state of the modules, optimizers and random generators seen
is saved, the replay runs, the state is put back, the step runs eagerly (recorded a second time), and the outputs,
parameters, buffers, gradients, optimizer and scheduler state, generator states, the modules' plain attributes and
the two recordings (ops, arguments, constants) must all agree; any difference sends that key to eager for good with
a warning naming the first difference. What this cannot see: a Python side effect that does not show on the second
call, or a constant computed from a tensor's ``.data`` outside any op that happens to be equal on the first two
calls.

What replays (docs/compile.md has the survey, ``scripts/compile_survey.py`` makes it): every layer, loss, optimizer
and scheduler of minigrad.nn and minigrad.optim, including Batch Renorm (warmup schedule too), batch norm's
cumulative average (``momentum=None``: the factor 1/num_batches_tracked is read by the update when it runs),
DecorrelatedBatchNorm2d, EvoNorm, SyncBatchNorm with DDP, spectral_norm, Dropout2d, ELU/LeakyReLU (comparisons),
max_unpool2d and nll_loss with class weights and ignored targets; a layer replays when every value it computes from
arrays outside an op is a host computation (``tensor._host``) that reads the step's state when it runs. What runs
eagerly: any value read into Python in the step. ``clip_grad_norm_`` and ``clip_grad_value_``
replay as recorded calls on the parameters (return the norm from the step to read each step's).

Cache key: the shapes and dtypes of the tensor (and ndarray) arguments, the other arguments by value, grad mode,
the backend and the thread count; each recording also checks the training flags of the modules it saw and the
``requires_grad`` flags of the leaves it read.
"""
import builtins
import copy as _copy
import functools
import importlib
import keyword
import operator
import re
import threading
import warnings

import numpy as np

from minigrad import kernels
from minigrad.kernels import contract
from minigrad import random as _random
from minigrad.tensor import Tensor

_module = importlib.import_module("minigrad.nn.module")
_SLOT = re.compile(r"\bs[0-9]+\b")
_PLAIN = (bool, int, float, str, type(None))
_TRAINING = operator.attrgetter("training")
_LEAF_GUARD = operator.attrgetter("requires_grad", "data.shape", "data.dtype")
_HOST_OR_CALL = re.compile(r"\b[hm][0-9]+\(")


@functools.cache
def _node_type(module, name):
    """An op's node class, imported when a recording first asks (capture is imported before the functionals)."""
    return getattr(importlib.import_module(module), name)


_linear = functools.partial(_node_type, "minigrad.nn.functional.dense", "_Linear")
_cross_entropy = functools.partial(_node_type, "minigrad.nn.functional.loss", "_CrossEntropy")
_bn_then = functools.partial(_node_type, "minigrad.nn.functional.fused", "_BatchNormTrainThen")
_index_target = functools.partial(_node_type, "minigrad.nn.functional.loss", "_index_target")
_count_batch = functools.partial(_node_type, "minigrad.nn.norm", "_count_batch")


@functools.cache
def _running_update_code():
    """The code of the running-statistics update that ``_update_running_from`` hands to ``_host`` (its closure)."""
    outer = importlib.import_module("minigrad.nn.functional.norm")._update_running_from.__code__
    (code,) = [c for c in outer.co_consts if getattr(c, "co_name", None) == "update"]
    return code


def _module_state(m):
    """What of a module a recording depends on besides its tensors' values: its plain attributes by value, and its
    parameters, buffers and submodules by identity."""
    d = vars(m)
    plain = tuple((k, v) for k, v in d.items() if isinstance(v, _PLAIN) or (type(v) is tuple and all(
        isinstance(e, _PLAIN) for e in v)))
    held = tuple((k, id(v)) for table in (d["_parameters"], d["_buffers"], d["_modules"]) for k, v in table.items())
    return plain, held

_t = importlib.import_module("minigrad.tensor")  # NOTE: the module (minigrad.tensor is also a function)

__all__ = ["compile"]


class _Unhashable(Exception):
    pass


def _flatten(obj, leaves):
    """The structure of a call's arguments as a hashable key; tensors and arrays go to ``leaves``."""
    if isinstance(obj, Tensor):
        leaves.append(obj)
        return ("T", obj.data.shape, obj.data.dtype.str, obj.requires_grad)
    if isinstance(obj, np.ndarray):
        leaves.append(obj)
        return ("A", obj.shape, obj.dtype.str)
    if isinstance(obj, (tuple, list)):
        return (type(obj).__name__, tuple(_flatten(o, leaves) for o in obj))
    if isinstance(obj, dict):
        return ("dict", tuple((k, _flatten(v, leaves)) for k, v in obj.items()))
    try:
        hash(obj)
    except TypeError:
        raise _Unhashable(type(obj).__name__) from None
    return ("V", type(obj), obj)


def _flatten_call(args, kwargs, leaves):
    """``_flatten((args, kwargs), leaves)``, with plain tensor positional arguments read inline (called per replay:
    4.5 -> 1.25 us for a step's (x, y))."""
    if kwargs:
        return _flatten((args, kwargs), leaves)
    parts = []
    for a in args:
        if type(a) is Tensor:
            d = a.data
            leaves.append(a)
            parts.append(("T", d.shape, d.dtype.str, a.requires_grad))
        else:
            parts.append(_flatten(a, leaves))
    return ("tuple", (("tuple", tuple(parts)), ("dict", ())))


def _value_sig(v, trace):
    """A comparable summary of an op's argument (arrays by contents unless the replay reads them from a slot)."""
    if isinstance(v, np.ndarray):
        ref = trace.refs.get(id(v))
        return ("ref", ref) if ref is not None else ("array", v.dtype.str, v.shape, v.tobytes())
    if isinstance(v, Tensor):
        return ("tensor", _value_sig(v.data, trace))
    if isinstance(v, (tuple, list)):
        return (type(v).__name__, tuple(_value_sig(x, trace) for x in v))
    if isinstance(v, dict):
        return ("dict", tuple((k, _value_sig(x, trace)) for k, x in v.items()))
    if isinstance(v, slice):
        return ("slice", v.start, v.stop, v.step)
    if isinstance(v, _t.Function):
        return ("ctx", trace.ctx_index.get(id(v)))
    if isinstance(v, functools.partial):
        return ("partial", v.func, _value_sig(v.args, trace), _value_sig(v.keywords, trace))
    if callable(v) and getattr(v, "__closure__", None):
        return ("closure", v.__code__, tuple(_value_sig(c.cell_contents, trace) for c in v.__closure__))
    try:
        hash(v)
        return ("v", type(v), v)
    except TypeError:
        return ("id", id(v))


class _Trace:
    """The recording of one call and, once written, its replay function."""

    def __init__(self):
        self.thread = threading.get_ident()
        self.reason = None  # why it cannot be replayed (None: it can)
        self.refs = {}  # id(array) -> expression giving that array on replay
        self.tensor_refs = {}  # id(tensor) -> expression of its array
        self.keep = []  # everything whose id is a key above, kept alive so that ids stay unique
        self.ns = {"_unbroadcast": _t._unbroadcast, "_sum_grads": _t._sum_grads, "np": np, "Tensor": Tensor,
                   "_new_object": _t._new_object, "_add_to_grad": _t._add_to_grad,
                   "_leaf_array": _t._leaf_array}
        self.lines = []
        self.sig = []  # what the second recording must match
        self.ctx_index = {}
        self.modules = {}  # id -> module called (and its submodules)
        self.live = {}  # id -> leaf tensor read live on replay (parameters, buffers, constants)
        self.persistent = set()  # ids of the modules' parameters and buffers and the optimizers' parameters
        self.stateful = {}  # id -> object whose method was recorded (optimizers)
        self.released = []  # (context, names of its saved arrays) set to None after its backward on replay
        self.depth = 0  # > 0 inside a recorded method call: nothing inside is recorded
        self.n = 0
        self.slot_arrays = {}  # slot name -> the recording's array
        # the bound path (see _bind_linear): id(ctx) -> its forward's names, or None once something rules it out;
        # "fresh": per parent, whether its bound gradient is a new array of its own on every replay (on_walk)
        self.bind = {}
        self.linear_outs = {}  # slot of a _Linear's output (np.matmul's: C-contiguous on every replay) -> id(ctx)

    # ------------------------------------------------------------ names
    def _name(self, prefix, *obj):
        self.n += 1
        name = f"{prefix}{self.n}"
        if obj:
            self.ns[name] = obj[0]
        return name

    def _ours(self):
        return self.depth == 0 and self.reason is None and threading.get_ident() == self.thread

    def _live_tensor(self, t):
        """A tensor made outside the step (parameter, buffer, constant): read as ``name.data`` on replay."""
        ref = self.tensor_refs.get(id(t))
        if ref is None:
            ref = self._name("t", t) + ".data"
            self.tensor_refs[id(t)] = ref
            self.live[id(t)] = t
            self.keep.append(t)
            self.refs.setdefault(id(t.data), ref)
            self.keep.append(t.data)
        return ref

    def _tensor_ref(self, t):
        ref = self.tensor_refs.get(id(t))
        if ref is None:
            ref = self.refs.get(id(t.data))
            if ref is not None:  # a tensor over a slot's array (detach, Tensor(host output))
                self.tensor_refs[id(t)] = ref
                self.keep.append(t)
            else:
                ref = self._live_tensor(t)
        return ref

    def _array_ref(self, a):
        if a is None:
            return "None"
        ref = self.refs.get(id(a))
        if ref is None:
            ref = self._name("c", a)
        return ref

    def _value_ref(self, v):
        """An expression for a keyword argument: slot arrays by reference, everything else a constant."""
        if isinstance(v, np.ndarray):
            ref = self.refs.get(id(v))
            return ref if ref is not None else self._name("c", v)
        if isinstance(v, tuple) and any(isinstance(x, np.ndarray) and id(x) in self.refs for x in v):
            return "(" + "".join(self._value_ref(x) + ", " for x in v) + ")"
        return self._name("c", v)

    def _slot(self, array, tensor=None):
        name = self._name("s")
        self.refs[id(array)] = name
        self.slot_arrays[name] = array
        self.keep.append(array)
        if tensor is not None:
            self.tensor_refs[id(tensor)] = name
            self.keep.append(tensor)
        return name

    # ------------------------------------------------------------ hooks (called by minigrad.tensor and friends)
    def on_unsupported(self, reason):
        if self._ours():
            self.reason = reason

    def on_read(self, tensor, what):
        if self._ours():
            self.reason = f"{what} reads a tensor's value into Python"

    def on_module(self, module):
        if self._ours() and id(module) not in self.modules:
            for m in module.modules():
                if id(m) not in self.modules:
                    self.modules[id(m)] = m
                    for t in list(m._parameters.values()) + list(m._buffers.values()):
                        if t is not None:
                            self._live_tensor(t)
                            self.persistent.add(id(t))

    def on_apply(self, ctx, tensors, kwargs, result):
        if not self._ours():
            return
        if _t._active_switches and _t._anomaly_enabled():
            self.reason = "detect_anomaly is on"
            return
        ins = [self._tensor_ref(t) for t in tensors]
        self.ctx_index[id(ctx)] = len(self.ctx_index)
        self.keep.append(ctx)
        f = self._name("f", ctx.forward)
        kw = ""
        if kwargs:
            parts = {k: self._value_ref(v) for k, v in kwargs.items()}
            # NOTE: named keywords where they can be (no dict unpacked per call); ** for a name that is not one
            if all(k.isidentifier() and not keyword.iskeyword(k) for k in parts):
                kw = ", ".join(f"{k}={p}" for k, p in parts.items())
            else:
                kw = "**" + self._name("k", dict(kwargs))
        out = self._slot(result.data, result)
        line = f"{out} = {f}({', '.join(ins + ([kw] if kw else []))})"
        bound = (self._bind_linear(ctx, tensors, kwargs, result, ins, out)
                 or self._bind_bn_sigmoid(ctx, tensors, kwargs, result, ins, out)
                 or self._bind_cross_entropy(ctx, tensors, kwargs, result, ins, out, line))
        if type(ctx) is _linear():
            self.linear_outs[out] = id(ctx)
        self.lines.append(line if bound is None else ("alt", id(ctx), [line], bound))
        # NOTE: a constant tensor made in the step (a Python number as an operand) is compared by value with the
        # second recording's; parameters and buffers by identity (their values change from step to step)
        consts = tuple(("live", id(t)) if id(t) in self.persistent or t.requires_grad else _bits(t.data)
                       for t, r in zip(tensors, ins) if r.startswith("t"))
        self.sig.append(("op", type(ctx), tuple(ins), consts, _value_sig(kwargs, self), out))

    def _bind_linear(self, ctx, tensors, kwargs, result, ins, out):
        """The bound forward of a ``_Linear`` node (lines), or None: ``np.matmul`` into an output array allocated
        once at record time, the bias added in place, as its forward does; the weight (and an input that is not a
        slot) kept in locals for the bound backward (``_bound_backward``), which reads them instead of the context.
        Only the plain case: 2-D input, output and weight of one float dtype, a bias of that dtype and shape
        (out,), no ``relu``, the output C-contiguous (the layout np.matmul gives a new output). The key and the
        bound guard (the live tensors' shapes and dtypes) make every later replay's shapes and dtypes these."""
        if type(ctx) is not _linear() or any(k != "relu" or v for k, v in kwargs.items()):
            return None
        if len(tensors) not in (2, 3):
            return None
        x, w, y = tensors[0].data, tensors[1].data, result.data
        dt = y.dtype
        if (x.ndim != 2 or w.ndim != 2 or y.ndim != 2 or dt.char not in "fd" or x.dtype != dt or w.dtype != dt
                or not y.flags.c_contiguous or y.shape != (x.shape[0], w.shape[0])):
            return None
        if len(tensors) == 3:
            b = tensors[2].data
            if b.dtype != dt or b.shape != (w.shape[0],):
                return None
        wn, yn = self._name("w"), self._name("y", np.empty(y.shape, dt))
        xn = ins[0] if _SLOT.fullmatch(ins[0]) or re.fullmatch(r"a[0-9]+", ins[0]) else self._name("w")
        lines = [] if xn == ins[0] else [f"{xn} = {ins[0]}"]
        lines += [f"{wn} = {ins[1]}", f"{out} = np.matmul({xn}, {wn}.T, out={yn})"]
        if len(tensors) == 3:
            lines.append(f"{out} += {ins[2]}")
        v = "{v}"
        self.bind[id(ctx)] = {"y": y, "pre": [], "out": self.ns[yn], "fresh": (True, True, True),
                              "exprs": [f"np.matmul({v}, {wn})", f"np.matmul({v}.T, {xn})", f"{v}.sum(axis=0)"]}
        return lines

    def _raw_call(self, elements, kernel, args):
        """The source of an unchecked call of the active backend's ``kernel`` on ``args`` (source text), with the
        thread count the checked call would pass for ``elements``. NOTE: the contract's checks (about 1.6 us a
        call, 14 calls in an MLP-BN step) are left out where the bound lines alone make the arrays: allocated at
        record time, a ``_Linear``'s output, a parameter through ``np.ascontiguousarray`` (the key and the guard
        fix their shapes and dtypes), or a gradient the walk has fixed up to its node's shape and dtype and made
        C-contiguous; the first replay, checked against eager, runs these very calls."""
        n = 1 if elements < contract.small(kernel) else kernels.get_num_threads()
        return f"{self._name('K', getattr(kernels.kernels().module, kernel))}({args}, {n})"

    def _bind_bn_sigmoid(self, ctx, tensors, kwargs, result, ins, out):
        """The bound forward of a ``_BatchNormTrainThen`` node with the sigmoid (lines), or None: its kernels
        (bound at record time: the key holds the backend and the thread count) into arrays allocated at record
        time, the batch statistics written to the context for the running-statistics update (a host computation
        that reads them when it runs), as its forward does. Only an input that is a ``_Linear``'s output (a
        C-contiguous (N, C) array of its dtype on every replay), weight and bias of that dtype and shape (C,)."""
        if type(ctx) is not _bn_then() or kwargs.get("activation") != "sigmoid" or ins[0] not in self.linear_outs:
            return None
        x, y = tensors[0].data, result.data
        dt = x.dtype
        if x.ndim != 2 or dt.char not in "fd" or y.dtype != dt or y.shape != x.shape or not y.flags.c_contiguous:
            return None
        n, c = x.shape
        if any(t.data.dtype != dt or t.data.shape != (c,) for t in tensors[1:]):
            return None
        N = self._name
        x3, z, m, r, ctxn = N("w"), N("y", np.empty((n, c, 1), dt)), N("y", np.empty(c)), N("y", np.empty(c)), \
            N("x", ctx)
        wc = N("w") if kwargs["has_weight"] else N("c", np.ones(c, dt))
        bc = N("w") if kwargs["has_bias"] else N("c", np.zeros(c, dt))
        lines = [f"{x3} = {ins[0]}.reshape({n}, {c}, 1)"]
        lin = self.bind.get(self.linear_outs[ins[0]])
        if lin is not None:
            # NOTE: where that _Linear's forward is bound too its output is its own array on every replay: a view of
            # it made once (an "alt" line of the _Linear's, inside this node's lines; _source resolves both)
            lines = [("alt", self.linear_outs[ins[0]], lines, [f"{x3} = {N('y', lin['out'].reshape(n, c, 1))}"])]
        if kwargs["has_weight"]:
            lines.append(f"{wc} = np.ascontiguousarray({ins[1]})")
        if kwargs["has_bias"]:
            lines.append(f"{bc} = np.ascontiguousarray({ins[-1]})")
        K = functools.partial(self._raw_call, n * c)
        to_ctx = f"{ctxn}.mean, {ctxn}.rstd = {m}, {r}"
        lines += [K("batch_norm_forward", f"{z}, {m}, {r}, {x3}, {wc}, {bc}, {N('c', kwargs['eps'])}"), to_ctx]
        # NOTE: the arrays allocated here are read and written through views made once, here (a reshape call
        # less each per replay)
        if dt == np.float32:
            ybuf, dzbuf = np.empty((n, c), dt), np.empty(n * c, dt)
            yn, yflat = N("y", ybuf), N("y", ybuf.reshape(-1))
            lines += [K("sigmoid_forward", f"{yflat}, {N('y', self.ns[z].reshape(-1))}"), f"{out} = {yn}"]
            sig_back = (" " + K("sigmoid_backward", f"{N('y', dzbuf)}, np.ascontiguousarray({{v}}).reshape(-1), "
                                                    f"{yflat}"),)
            dz3 = N("y", dzbuf.reshape(n, c, 1))
        else:
            yn = out
            lines.append(f"{out} = {N('h', _t._sigmoid_y)}({N('y', self.ns[z].reshape(n, c))})")
            dz = N("w")
            sig_back = (f" {dz} = {N('h', _t._sigmoid_dx)}({{v}}, {yn})",)
            dz3 = f"{dz}.reshape({n}, {c}, 1)"
        # NOTE: the input's gradient into an array allocated here: it reaches only the _Linear's backward below it,
        # whose products are new arrays (a sum of gradients too), so no replay's gradient outlives its step
        dxbuf = np.empty((n, c, 1), dt)
        dx, dw, db, ct = N("y", dxbuf), N("w"), N("w"), N("c", dt)
        pre = [*sig_back,
               f" {dw} = np.empty({c}, {ct})" if kwargs["has_weight"] else f" {dw} = {N('y', np.empty(c, dt))}",
               f" {db} = np.empty({c}, {ct})" if kwargs["has_bias"] else f" {db} = {N('y', np.empty(c, dt))}",
               " " + K("batch_norm_backward", f"{dx}, {dw}, {db}, {dz3}, {x3}, {m}, {r}, {wc}")]
        exprs = [N("y", dxbuf.reshape(n, c))] + ([dw] if kwargs["has_weight"] else []) + (
            [db] if kwargs["has_bias"] else [])
        self.bind[id(ctx)] = {"y": y, "pre": pre, "exprs": exprs, "fresh": (False, True, True)[:len(exprs)],
                              "stats": (m, r, c), "lines": lines,
                              "to_ctx": to_ctx}
        return lines

    def _bind_cross_entropy(self, ctx, tensors, kwargs, result, ins, out, line):
        """The bound forward of a ``_CrossEntropy`` node (lines), or None: its plain case (no class weights, no
        smoothing, a reduction, every target valid: the last read per replay, as its forward does, else its own
        forward runs and its own backward after it) as its forward's kernel pair, bound at record time, into arrays
        allocated then, the loss a new array (it is returned). Only an input that is a ``_Linear``'s output and
        targets that ``_index_target`` made (the kernels, unchecked, read them as (m,) C-contiguous int64: its
        checked copy wherever every target is valid)."""
        if (type(ctx) is not _cross_entropy() or ins[0] not in self.linear_outs or kwargs.get("weight") is not None
                or kwargs.get("smoothing") or kwargs.get("reduction") not in ("mean", "sum")):
            return None
        x = tensors[0].data
        dt = x.dtype
        if x.ndim != 2 or dt.char not in "fd" or not x.size:
            return None
        m, c = x.shape
        N = self._name
        target, valid = self._value_ref(kwargs["target"]), self._value_ref(kwargs["valid"])
        found = self._target_host(target, valid)
        if found is None:
            return None
        every = self._bind_target_check(ctx, found, target, valid, m, c)
        logp, picked, flag, ct = N("y", np.empty((m, c), dt)), N("y", np.empty(m)), N("w"), N("c", dt)
        mean = kwargs["reduction"] == "mean"
        K = functools.partial(self._raw_call, m * c)
        # NOTE: where the bound target check gave its all-true mask (the usual case), no count
        lines = [f"{flag} = {'' if every is None else f'{valid} is {every} or '}np.count_nonzero({valid}) == "
                 f"{valid}.size",
                 f"if {flag}:",
                 " " + K("cross_entropy_forward", f"{logp}, {picked}, {ins[0]}, {target}"),
                 f" {out} = np.asarray(-np.add.reduce({picked}){f' / {m}' if mean else ''}, dtype={ct})",
                 f"if not {flag}:",  # NOTE: not "else": the slot frees may come between
                 " " + line]
        # NOTE: the input's gradient into an array allocated here, as the bound batch norm's (_bind_bn_sigmoid); the
        # scale as the node's backward forms it (the kernel rounds it to X)
        dx = N("y", np.empty((m, c), dt))
        scale = f"float(-({{v}} / {m}))" if mean else "float(-{v})"
        pre = [" " + K("cross_entropy_backward", f"{dx}, {logp}, {target}, {scale}")]
        # NOTE: no output array of its own to guard ("y"): the loss is a new array each replay, logp stays inside
        self.bind[id(ctx)] = {"y": None, "pre": pre, "exprs": [dx], "flag": flag, "root_ok": True}
        return lines

    def _target_host(self, target, valid):
        """The recorded line where ``_index_target`` (a host computation on one array) made ``target`` and
        ``valid``, as (its index, the host computation, the name of its input), or None."""
        done = re.compile(rf"{target}, {valid}, = (h[0-9]+)\((\w+)\)")
        for i in range(len(self.lines) - 1, -1, -1):
            found = isinstance(self.lines[i], str) and done.fullmatch(self.lines[i])
            if found:
                check = self.ns[found.group(1)]
                if isinstance(check, functools.partial) and check.func is _index_target():
                    return i, check, found.group(2)
                return None
        return None

    def _bind_target_check(self, ctx, found, target, valid, m, c):
        """Where the bound cross entropy's targets come from ``_index_target`` (``found``: ``_target_host``'s,
        on one array of m int64 class indices, an ignore_index outside [0, c)): that host line as an "alt" line
        whose bound form takes the usual case in one reduction (every index in [0, c), read as uint64 so that a
        negative one is out of range: the host computation's values, a copy of the indices and an all-true mask)
        and calls the host computation otherwise (another dtype, an index out of range or ignored: it raises or
        masks as before); returns the name of that all-true mask (None: not bound). NOTE: about 3.7 us alone,
        26 us inside the step (docs/compile.md, Session 31)."""
        i, check, t = found
        if check.keywords or len(check.args) != 5 or check.args[2] != (m,) or check.args[3] != c \
                or 0 <= check.args[4] < c:
            return None
        N = self._name
        every = N("c", np.ones(m, bool))
        bound = [f"if {t}.dtype is {N('c', np.dtype(np.int64))} and np.maximum.reduce({t}.view(np.uint64)) < {c}:",
                 f" {target}, {valid} = {t}.copy(), {every}",
                 "else:", " " + self.lines[i]]
        self.lines[i] = ("alt", id(ctx), [self.lines[i]], bound)
        return every

    def _bound_backward(self, node, v, var, assigned):
        """The bound backward of a ``_Linear`` node whose forward is bound (lines), or None: the products its
        backward makes, with the walk's shape and dtype fix-ups left out (they are no-ops: the node's gradient has
        its output's shape and dtype, every contribution being cast to them, and the parents share that dtype)."""
        ctx = node._ctx
        b = self.bind.get(id(ctx))
        if b is None:
            return None
        if not b.get("root_ok") and any(node is r for r in self._roots):  # NOTE: a root's seed: another dtype?
            self.bind[id(ctx)] = None
            return None
        body, assigned = [line.replace("{v}", v) for line in b["pre"]], set(assigned)
        exprs = [e.replace("{v}", v) for e in b["exprs"]]
        for i, p in enumerate(ctx.parents):
            if not ctx.needs_input_grad[i] or not p.requires_grad or id(p) not in var:
                continue
            pv = var[id(p)]
            body.append(self._sum_line(pv, exprs[i], assigned))
            assigned.add(pv)
        if "flag" in b:  # NOTE: the node's own forward ran (the data chose it): its own backward, the plain block
            return ([f"if {v} is not None and {b['flag']}:"] + body + [f"{v} = None"], b["flag"])
        return [f"if {v} is not None:"] + body + [f"{v} = None"]

    def _sum_line(self, pv, pg, assigned):
        """The line adding the contribution ``pg`` (an expression) into the gradient variable ``pv``, as eager's walk
        adds it: ``_sum_grads``, or the pair left pending where ``pv``'s node takes it (``self._pending``)."""
        if pv not in assigned:
            return f" {pv} = {pg}"
        if pv in self._pending:
            return f" {pv} = {pg} if {pv} is None else ({pv}, {pg})"
        return f" {pv} = {pg} if {pv} is None else _sum_grads({pv}, {pg})"

    def _fresh_leaf(self, leaf, sources, g, v):
        """A leaf's gradient write (``leaf``, its lines) as lines, or as one "alt" line of the node it comes from
        where that is one bound backward only and the gradient there an array of its own (a product or a kernel's
        new output: the bind's ``fresh``): there ``v`` for ``g``, ``_leaf_array``'s call. NOTE: no other leaf, seed
        or slot can hold that array; a Python call less per leaf and replay (docs/compile.md, Session 32)."""
        if len(sources) != 1:
            return leaf
        ctx, i = sources[0]
        b = self.bind.get(id(ctx))
        if b is None or "flag" in b or b.get("fresh", ())[i:i + 1] != (True,):
            return leaf
        return [("alt", id(ctx), leaf, [line.replace(g, v) for line in leaf])]

    def _bind_running_stats(self, fn, arrays, ins, call):
        """The running-statistics update of a batch-norm node whose forward is bound, as its kernel (an "alt" line),
        or None: ``running_stats_update`` on the node's statistics arrays, read from the bound forward's arrays
        instead of through ``_update_running_from``'s closure and the functional's helpers (four Python calls; the
        host computation stays where the node is not bound). Only a float momentum (not a cumulative average, read
        per step), both running statistics of one float dtype and shape (C,), each C-contiguous when the replay runs
        (else the host computation, which handles any layout)."""
        if getattr(fn, "__code__", None) is not _running_update_code() or len(ins) != 2:
            return None
        cells = dict(zip(fn.__code__.co_freevars, (cell.cell_contents for cell in fn.__closure__)))
        node, momentum = cells["node"], cells["momentum"]
        b = self.bind.get(id(node))
        rm, rv = arrays
        if b is None or "stats" not in b or type(momentum) is not float or rm is None or rv is None:
            return None
        m, r, c = b["stats"]
        if rm.dtype.char not in "fd" or rv.dtype != rm.dtype or rm.shape != (c,) or rv.shape != (c,):
            return None
        N = self._name
        stats = (f"{ins[0]}, {ins[1]}, {N('y', self.ns[m].reshape(1, c))}, {N('y', self.ns[r].reshape(1, c))}, "
                 f"{N('c', momentum)}, {N('c', cells['eps'])}, {N('c', float(cells['count']))}")
        # NOTE: the statistics are written to the context only for the host computation, which reads them there:
        # the bound forward's line moves here, into its branch (a line less per batch norm and replay)
        if b["to_ctx"] in b["lines"]:
            b["lines"].remove(b["to_ctx"])
        bound = [f"if {ins[0]}.flags.c_contiguous and {ins[1]}.flags.c_contiguous:",
                 " " + self._raw_call(c, "running_stats_update", stats), "else:", " " + b["to_ctx"], " " + call]
        return ("alt", id(node), [call], bound)

    def on_host(self, fn, arrays, out):
        if not self._ours():
            return
        ins = [self._array_ref(a) for a in arrays]
        h = self._name("h", fn)
        call = f"{h}({', '.join(ins)})"
        if out is None:
            bound = self._bind_running_stats(fn, arrays, ins, call)
            if bound is None and fn is _count_batch():
                # NOTE: its one statement written in place of the call (a Python frame less per batch norm and
                # replay)
                bound = f"{ins[0]}[()] += 1"
            self.lines.append(call if bound is None else bound)
            outs = None
        elif isinstance(out, np.ndarray):
            outs = self._slot(out)
            self.lines.append(f"{outs} = {call}")
        elif isinstance(out, tuple) and all(isinstance(o, np.ndarray) for o in out):
            outs = tuple(self._slot(o) for o in out)
            self.lines.append(f"{', '.join(outs)}, = {call}")
        else:
            self.reason = f"a host computation returned {type(out).__name__}"
            return
        self.sig.append(("host", _value_sig(fn, self), tuple(ins),
                         _value_sig([a for a, r in zip(arrays, ins) if r.startswith("c")], self), outs))

    def on_call(self, method, obj, args, kwargs):
        if not self._ours():
            return method(obj, *args, **kwargs)
        self.depth += 1
        try:
            out = method(obj, *args, **kwargs)
        finally:
            self.depth -= 1
        if any(isinstance(a, (Tensor, np.ndarray)) for a in (*args, *kwargs.values())):
            self.reason = f"{type(obj).__name__}.{method.__name__} was called with a tensor argument"
        self.stateful[id(obj)] = obj
        params = getattr(obj, "param_groups", None)
        for g in params or ():
            for p in g["params"]:
                self._live_tensor(p)
        # NOTE: a tuple of tensors as an argument (clip_grad_norm_'s parameters) is made outside the step: the call
        # reads and writes their gradients, so they are live like an optimizer's parameters
        for a in (*args, *kwargs.values()):
            for t in a if isinstance(a, tuple) else ():
                if isinstance(t, Tensor):
                    self._live_tensor(t)
        call = f"{self._name('m', functools.partial(method, obj, *args, **kwargs))}()"
        if isinstance(out, Tensor):  # a tensor the call returns (a norm): its array on replay is the call's
            self.lines.append(f"{self._slot(out.data, out)} = {call}.data")
        else:
            self.lines.append(call)
        self.sig.append(("call", method, id(obj), _value_sig((args, kwargs), self)))
        return out

    def on_walk(self, roots, root_grads, create_graph, inputs, accumulate, retain_graph=False):
        if not self._ours():
            return
        if create_graph or inputs is not None or not accumulate:
            self.reason = "autograd.grad, create_graph or backward(inputs=...)"
            return
        order = _t._topological_order(roots)
        self._roots = roots
        var = {}
        for node in order:
            var[id(node)] = self._name("g")
        lines = [" = ".join(var[id(n)] for n in order) + " = None"]
        seen_roots = set()
        for r, g in zip(roots, root_grads):
            # NOTE: a fresh copy per replay, as eager makes a fresh seed (a backward may write into it)
            gref = self.refs.get(id(g))
            src = f"np.array({gref})" if gref is not None else f"np.array({self._name('c', g)})"
            v = var[id(r)]
            lines.append(f"{v} = {src}" if id(r) not in seen_roots else f"{v} = {v} + {src}")
            seen_roots.add(id(r))
        # NOTE: the gradient variables some earlier line may have set; one that none may have set is still None
        # where a gradient first reaches it, so that line is a plain assignment
        assigned = {var[id(r)] for r in roots}
        owners = self._name("w")  # NOTE: _leaf_array's set, as eager's walk (the seeds here are copies of their own)
        lines.append(f"{owners} = set()")
        into = {}  # id(tensor) -> the (context, parent index) pairs its gradient comes from
        for node in order:
            for i, p in enumerate(node._ctx.parents if node._ctx is not None else ()):
                into.setdefault(id(p), []).append((node._ctx, i))
        # NOTE: the gradient variables whose two contributions are handed to their node's backward_sum, as eager's
        # walk does (_fan_in): a node that defines it, with two contributions and no seed (a root's is a third)
        self._pending = {var[id(n)] for n in order
                         if n._ctx is not None and n._ctx.backward_sum is not None
                         and id(n._ctx) not in self.bind and len(into.get(id(n), ())) == 2
                         and not any(n is r for r in roots)}
        for node in order:
            v, ctx = var[id(node)], node._ctx
            if ctx is None:
                if node.requires_grad:
                    ref = self._tensor_ref(node)
                    if not ref.startswith("t"):
                        self.reason = "a gradient into a tensor made inside the step (an argument?)"
                        return
                    is_root = any(node is r for r in roots)
                    # NOTE: _accumulate's lines inline (a Python call fewer per leaf): a new grad tensor where the
                    # leaf had none, as eager's (one tensor reused every replay changed under a reference the caller
                    # kept to an earlier step's .grad), else _add_to_grad into the one it has
                    t, g = ref[:-5], f"{v}.copy()" if is_root else f"_leaf_array({v}, {owners})"
                    leaf = [f"if {v} is not None:", f" o = {t}.grad", " if o is not None:",
                            f"  {t}.grad = _add_to_grad(o, {v})"]
                    if node.data.ndim:
                        leaf += [" else:", "  n = _new_object(Tensor)", "  n.grad = n._ctx = None",
                                 "  n.requires_grad = False", f"  n.data = {g}", f"  {t}.grad = n"]
                        if not is_root:
                            leaf = self._fresh_leaf(leaf, into.get(id(node), ()), g, v)
                    else:
                        leaf += [" else:", f"  {t}.grad = Tensor({g})"]
                    lines += leaf
                continue
            start = len(lines)
            assigned_before = set(assigned)
            bound = self._bound_backward(node, v, var, assigned_before)
            call = f"{self._name('B', ctx.backward)}({v})"
            if v in self._pending:
                call += f" if type({v}) is not tuple else {self._name('B', ctx.backward_sum)}(*{v})"
            body = [f"r = {call}", "if type(r) is not tuple: r = (r,)"]
            for i, p in enumerate(ctx.parents):
                if not p.requires_grad or id(p) not in var:
                    continue
                pv = var[id(p)]
                shp, dt = self._name("c", p.data.shape), self._name("c", p.data.dtype)
                body += [f"pg = r[{i}]", "if pg is not None:",
                         f" if pg.shape != {shp}: pg = _unbroadcast(pg, {shp})",
                         f" if pg.dtype is not {dt} and pg.dtype != {dt}: pg = pg.astype({dt})",
                         self._sum_line(pv, "pg", assigned)]  # NOTE: as eager's walk
                assigned.add(pv)
            lines.append(f"if {v} is not None:")
            lines += [" " + b for b in body]
            if not retain_graph:
                # NOTE: what eager frees here (it drops the node, with what its forward saved, and pops the
                # gradient) the replay frees too: the context is reused each step, so its saved arrays would
                # otherwise live until the next step's forward replaces them (ResNet-20 held 49 MiB between steps)
                saved = [k for k, val in vars(ctx).items() if isinstance(val, np.ndarray)]
                if saved:
                    x = self._name("x", ctx)
                    lines.append(" = ".join(f"{x}.{k}" for k in saved) + " = None")
                    self.released.append((ctx, saved))
                lines.append(f"{v} = None")
            if type(bound) is tuple:  # a bound block that falls back to the plain one where its flag is off
                # NOTE: not "elif": the slot frees may come between
                plain = lines[start:]
                bound = bound[0][:-1] + [f"if {v} is not None and not {bound[1]}:"] + plain[1:]
            elif bound is not None and retain_graph:
                bound.pop()  # NOTE: as the plain block: the gradient variable stays
            if bound is not None:
                lines[start:] = [("alt", id(ctx), lines[start:], bound)]
            elif id(ctx) in self.bind:
                self.bind[id(ctx)] = None
        self.lines += lines
        self.sig.append(("walk", tuple(type(n._ctx) for n in order),
                         tuple(self.tensor_refs.get(id(n)) for n in order)))

    # ------------------------------------------------------------ the replay function
    def write(self, arg_leaves, result):
        """Compile the recorded lines into ``replay(*leaf_arrays) -> tuple of output arrays``; ``result`` is what
        the step returned (its tensors become the outputs)."""
        outs = []

        def spec(obj):
            if isinstance(obj, Tensor):
                ref = self.tensor_refs.get(id(obj)) or self.refs.get(id(obj.data))
                if ref is None or ref.startswith("t"):
                    return ("same", obj)
                outs.append(ref)
                return ("out", len(outs) - 1)
            if isinstance(obj, (tuple, list)):
                return (type(obj), [spec(o) for o in obj])
            if isinstance(obj, dict):
                return ("dict", {k: spec(v) for k, v in obj.items()})
            return ("same", obj)
        self.out_spec = spec(result)
        bound = self._bound_set()
        params = ", ".join(f"a{i}" for i in range(len(arg_leaves)))
        self.src = self._source(params, outs, set())
        exec(builtins.compile(self.src, f"<minigrad.compile replay of {len(self.lines)} lines>", "exec"), self.ns)
        self.replay = self.replay_plain = self.ns["replay"]
        if bound:
            # NOTE: a returned array that may share memory with a bound output array is copied out: the next
            # replay writes that array again, and what the user holds must stay what it was
            ys = [self.bind[c]["y"] for c in bound if self.bind[c]["y"] is not None]
            copied = {o for o in outs if any(np.may_share_memory(self.slot_arrays.get(o, ()), y) for y in ys)}
            self.src = self._source(params, outs, bound, copied)
            exec(builtins.compile(self.src, f"<minigrad.compile bound replay of {len(self.lines)} lines>", "exec"),
                 self.ns)
            self.replay = self.ns["replay"]
        self.n_bound = len(bound)

    def _bound_set(self):
        """The ids of the contexts whose bound lines the replay uses: forward and every backward bound, and no
        slot sharing memory with the bound output array read by a host computation or a recorded method call
        (which might keep it past the step)."""
        bound = {c for c, b in self.bind.items() if b is not None}
        if not bound:
            return bound
        kept = set()
        for line in self.lines:
            if isinstance(line, str) and _HOST_OR_CALL.search(line):
                kept.update(_SLOT.findall(line))
        for c in list(bound):
            y = self.bind[c]["y"]
            if y is not None and any(np.may_share_memory(self.slot_arrays[n], y)
                                     for n in kept if n in self.slot_arrays):
                bound.discard(c)
        return bound

    def _source(self, params, outs, bound, copied=()):
        def resolved(lines_in):  # NOTE: an "alt" line's own lines may hold "alt" lines of another node
            for line in lines_in:
                if isinstance(line, str):
                    yield line
                else:
                    yield from resolved(line[3] if line[1] in bound else line[2])
        lines = list(resolved(self.lines))
        src = f"def replay({params}):\n" + "".join(f"    {line}\n"
                                                  for line in self._with_slots_freed(set(outs), lines))
        return src + f"    return ({''.join((o + '.copy()' if o in copied else o) + ', ' for o in outs)})\n"

    def _with_slots_freed(self, outs, lines_in):
        """The lines with ``sN = None`` before the first top-level line after the last line that reads slot
        ``sN`` (not an output): the replay's locals would otherwise keep every activation until it returns, where
        eager frees each with the last node that saved it."""
        last = {}
        for i, line in enumerate(lines_in):
            for name in _SLOT.findall(line):
                last[name] = i
        ends = {}  # line index -> slots last read there
        for name, i in last.items():
            if name not in outs:
                ends.setdefault(i, []).append(name)
        lines, pending = [], []
        for i, line in enumerate(lines_in):
            if pending and not line.startswith(" "):
                lines.append(" = ".join(pending) + " = None")
                pending = []
            lines.append(line)
            pending += ends.get(i, ())
        return lines

    def set_guards(self):
        """What must hold for the recording to fit a later call: the modules' training flags, their plain
        attributes and which parameters, buffers and submodules they hold, and the leaves' requires_grad flags, as
        they were."""
        self.guard_modules = tuple(self.modules.values())
        self.guard_training = list(map(_TRAINING, self.guard_modules))
        self.guard_epoch = _module.attr_epoch
        self.guard_state = tuple(_module_state(m) for m in self.guard_modules)
        self.guard_leaves = tuple(self.live.values())
        self.guard_leaf = list(map(_LEAF_GUARD, self.guard_leaves))

    def bind_args(self, leaves):
        """Name the step's argument arrays (before recording): an op reading one reads ``a{i}`` on replay."""
        for i, leaf in enumerate(leaves):
            arr = leaf.data if isinstance(leaf, Tensor) else leaf
            self.refs[id(arr)] = f"a{i}"
            self.keep.append(arr)
            if isinstance(leaf, Tensor):
                self.tensor_refs[id(leaf)] = f"a{i}"
                self.keep.append(leaf)

    def guard(self):
        # NOTE: the flags read by map in C (called per replay: 2.4 -> 1.9 us for the MLP step's 12 modules and 20
        # leaves)
        if list(map(_TRAINING, self.guard_modules)) != self.guard_training:
            return False
        if _module.attr_epoch != self.guard_epoch:
            # NOTE: some module was assigned to since: a hyperparameter (p, momentum, eps, frozen), a replaced
            # submodule, parameter or buffer would change the step, which the replay's constants would not follow
            if tuple(_module_state(m) for m in self.guard_modules) != self.guard_state:
                return False
            self.guard_epoch = _module.attr_epoch
        # NOTE: and their shapes and dtypes, which the key does not hold (``p.data = p.data.astype(...)``): the
        # walk's fix-ups cast to the recorded dtypes, the bound lines write into arrays of the recorded ones. One
        # pass over the leaves for the three (right after a replayed MLP-BN step, its caches cold: 19.8 -> 16.4 us
        # for the whole guard, docs/compile.md, Session 32)
        return list(map(_LEAF_GUARD, self.guard_leaves)) == self.guard_leaf

    def rebuild(self, arrays, spec=None):
        kind, v = spec if spec is not None else self.out_spec
        if kind == "same":
            return v
        if kind == "out":
            return Tensor(arrays[v])
        if kind == "dict":
            return {k: self.rebuild(arrays, s) for k, s in v.items()}
        return kind(self.rebuild(arrays, s) for s in v)


# ------------------------------------------------------------------ state: save, compare, restore

def _named_tensors(trace):
    names = {}
    for m in trace.modules.values():
        for n, p in m.named_parameters():
            names.setdefault(id(p), f"parameter {n}")
        for n, b in m.named_buffers():
            if b is not None:
                names.setdefault(id(b), f"buffer {n}")
    return names


def _save(trace):
    """Everything a step may change that the replay must reproduce: (label, object, saved values) records."""
    names = _named_tensors(trace)
    recs = []
    for i, t in enumerate(trace.live.values()):
        label = names.get(id(t), f"tensor #{i} {t.data.shape}")
        g = t.grad
        recs.append(("tensor", label, t, t.data, t.data.copy(), g, None if g is None else (g.data, g.data.copy())))
    for obj in trace.stateful.values():
        state = getattr(obj, "state", None)
        if isinstance(state, dict):
            saved = {p: {k: (v, v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
                     for p, s in state.items()}
            groups = [{k: v for k, v in g.items() if k != "params"} for g in obj.param_groups]
            recs.append(("optimizer", type(obj).__name__, obj, saved, groups))
        elif not isinstance(obj, _module.Module) and hasattr(obj, "load_state_dict"):  # a learning-rate scheduler
            recs.append(("object", type(obj).__name__, obj, _copy.deepcopy(obj.state_dict())))
    gen = _random.default_generator()
    recs.append(("rng", "the default random generator", gen, gen.bit_generator.state))
    for m in trace.modules.values():
        plain = {k: v for k, v in vars(m).items() if isinstance(v, (bool, int, float, str, type(None)))}
        recs.append(("attrs", f"{type(m).__name__} attributes", m, plain))
    return recs


def _restore(recs):
    for rec in recs:
        kind = rec[0]
        if kind == "tensor":
            _, _, t, arr, copy, g, gsaved = rec
            arr[...] = copy
            t.data, t.grad = arr, g
            if g is not None:
                g.data = gsaved[0]
                g.data[...] = gsaved[1]
        elif kind == "optimizer":
            _, _, obj, saved, groups = rec
            obj.state.clear()
            for p, s in saved.items():
                d = obj.state[p] = {}
                for k, (orig, val) in s.items():
                    if isinstance(orig, np.ndarray):
                        orig[...] = val
                        d[k] = orig
                    else:
                        d[k] = val
            for g, saved_g in zip(obj.param_groups, groups):
                g.update(saved_g)
        elif kind == "object":
            rec[2].load_state_dict(_copy.deepcopy(rec[3]))
        elif kind == "rng":
            _random._generator = rec[2]
            rec[2].bit_generator.state = rec[3]
        elif kind == "attrs":
            for k, v in rec[3].items():
                object.__setattr__(rec[2], k, v)


def _bits(a):
    return None if a is None else (a.dtype.str, a.shape, np.ascontiguousarray(a).tobytes())


def _summary(recs):
    """(label, comparable value) pairs of the current state of everything in ``recs``."""
    out = []
    for rec in recs:
        kind, label, obj = rec[0], rec[1], rec[2]
        if kind == "tensor":
            out.append((label, _bits(obj.data)))
            out.append((f"the gradient of {label}", None if obj.grad is None else _bits(obj.grad.data)))
        elif kind == "optimizer":
            for i, (p, s) in enumerate(obj.state.items()):
                out.append((f"{label} state #{i}", tuple((k, _bits(v) if isinstance(v, np.ndarray) else v)
                                                         for k, v in s.items())))
            out.append((f"{label} hyperparameters", [{k: v for k, v in g.items() if k != "params"}
                                                     for g in obj.param_groups]))
        elif kind == "object":
            out.append((f"{label} state", obj.state_dict()))
        elif kind == "rng":
            gen = _random.default_generator()
            out.append((label, (gen is obj, repr(gen.bit_generator.state))))
        elif kind == "attrs":
            out.append((label, {k: v for k, v in vars(obj).items() if k in rec[3] or
                                isinstance(v, (bool, int, float, str, type(None)))}))
    return out


def _output_summary(obj, label="the output"):
    if isinstance(obj, Tensor):
        return [(label, _bits(obj.data))]
    if isinstance(obj, (tuple, list)):
        return [x for i, o in enumerate(obj) for x in _output_summary(o, f"{label}[{i}]")]
    if isinstance(obj, dict):
        return [x for k, o in obj.items() for x in _output_summary(o, f"{label}[{k!r}]")]
    return [(label, repr(obj))]


def _first_difference(a, b):
    if len(a) != len(b):
        return "the set of state seen"
    for (la, va), (lb, vb) in zip(a, b):
        if la != lb or va != vb:
            return la
    return None


def _sig_where(a, b):
    """Where two recordings first differ: the event's number and what it is."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            what = getattr(x[1], "__name__", None) if x[0] in ("op", "call") else x[0]
            return f"event {i} ({x[0]} {what})"
    return f"event {min(len(a), len(b))} (one recording is longer)"


# ------------------------------------------------------------------ the decorator

def _same_call(last, args):
    """The argument arrays when a call of plain tensor positional arguments would find ``last``'s entry by the full
    key (the same shapes, dtypes and requires_grad flags, grad mode, backend and thread count, and the entry still the
    only one of its key), else None. NOTE: what ``_flatten_call`` and the cache lookup decide, without building and
    hashing the key (called per replay; right after a replayed MLP step, its caches cold, 13-15 us for the key and
    lookup of (x, y), 7-8 us for this)."""
    entry, entries, sig, grad, backend, threads = last
    if len(args) != len(sig) or len(entries) != 1 or _t._grad_enabled() != grad:
        return None
    if kernels.get_backend() != backend or kernels.get_num_threads() != threads:
        return None
    arrays = []
    for a, (shape, dtype, requires_grad) in zip(args, sig):
        if type(a) is not Tensor:
            return None
        d = a.data
        if d.shape != shape or d.dtype is not dtype or a.requires_grad is not requires_grad:
            return None
        arrays.append(d)
    return arrays


class _Entry:
    def __init__(self, trace):
        self.trace, self.state = trace, "recorded"  # recorded -> checked | eager


class Compiled:
    """A step function compiled by :func:`compile`; call it as the function."""

    def __init__(self, fn):
        self.fn = fn
        self._cache = {}
        self._warned = set()
        self._last = None  # (entry, its key's list, per-argument (shape, dtype, requires_grad), grad, backend, threads)
        functools.update_wrapper(self, fn)

    def _warn(self, key, message):
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(f"minigrad.compile({getattr(self.fn, '__name__', 'fn')}): {message}; running it eagerly",
                          RuntimeWarning, stacklevel=3)

    def __call__(self, *args, **kwargs):
        if _t._recorder is not None:  # NOTE: called from a step being recorded: its ops join that recording
            return self.fn(*args, **kwargs)
        last = self._last
        if last is not None and not kwargs:
            arrays = _same_call(last, args)
            if arrays is not None and last[0].trace.guard():
                trace = last[0].trace
                return trace.rebuild(trace.replay(*arrays))
        leaves = []
        try:
            spec = _flatten_call(args, kwargs, leaves)
        except _Unhashable as e:
            self._warn(("unhashable", str(e)), f"an argument of type {e} cannot key a recording")
            return self.fn(*args, **kwargs)
        key = (spec, _t._grad_enabled(), kernels.get_backend(), kernels.get_num_threads())
        entries = self._cache.setdefault(key, [])
        for entry in entries:
            if entry.trace.guard():
                if entry.state == "checked":
                    arrays = [a.data if isinstance(a, Tensor) else a for a in leaves]
                    if not kwargs and len(entries) == 1 and all(type(a) is Tensor for a in args):
                        self._last = (entry, entries, tuple((a.data.shape, a.data.dtype, a.requires_grad)
                                                            for a in args), *key[1:])
                    return entry.trace.rebuild(entry.trace.replay(*arrays))
                if entry.state == "eager":
                    return self.fn(*args, **kwargs)
                return self._check(entry, key, leaves, args, kwargs)
        trace, result = self._record(leaves, args, kwargs)
        entry = _Entry(trace)
        entries.append(entry)
        if trace.reason is not None:
            entry.state = "eager"
            self._warn((key, trace.reason), f"the step cannot be replayed: {trace.reason}")
        return result

    def _record(self, leaves, args, kwargs):
        trace = _Trace()
        trace.bind_args(leaves)
        _t._recorder = trace
        try:
            result = self.fn(*args, **kwargs)
        finally:
            _t._recorder = None
        trace.set_guards()
        if trace.reason is None:
            try:
                trace.write(leaves, result)
            except Exception as e:  # NOTE: a recording we cannot write is a step we run eagerly, not an error
                trace.reason = f"its recording could not be compiled ({type(e).__name__}: {e})"
        return trace, result

    def _check(self, entry, key, leaves, args, kwargs):
        """The first replay, checked bit for bit against eager (see the module docstring); returns eager's result."""
        trace = entry.trace
        before = _save(trace)
        problem = None
        # NOTE: every replay starts with the contexts' saved arrays released by the one before; so does this one
        for ctx, names in trace.released:
            for k in names:
                setattr(ctx, k, None)
        try:
            arrays = [a.data if isinstance(a, Tensor) else a for a in leaves]
            replayed = trace.rebuild(trace.replay(*arrays))
            replay_out, replay_state = _output_summary(replayed), _summary(before)
        except Exception as e:
            problem = f"its replay raised {type(e).__name__}: {e}"
        _restore(before)
        second, result = self._record(leaves, args, kwargs)
        if problem is None:
            if second.reason is not None:
                problem = f"its second call cannot be replayed: {second.reason}"
            elif second.sig != trace.sig:
                problem = (f"its second call recorded different ops or constants (data-dependent Python?), first at "
                           f"{_sig_where(trace.sig, second.sig)}")
            else:
                what = (_first_difference(_output_summary(result), replay_out)
                        or _first_difference(_summary(before), replay_state))
                if what is not None:
                    problem = f"its replay differs from eager in {what} (a Python side effect the recording missed?)"
        if problem is None:
            entry.state = "checked"
        else:
            entry.state = "eager"
            self._warn((key, "check"), problem)
        return result


def compile(fn):
    """Decorator: record ``fn`` (one training step: forward, loss, backward, optimizer update) on its first call
    with given argument shapes and replay it afterwards as straight-line kernel calls, with no Tensor or graph
    objects made per step. Results are bit-identical to eager; what cannot be replayed runs eagerly after one
    warning (see ``minigrad/capture.py``). Returns what ``fn`` returns (tensors as plain, graph-less tensors).

    Example::

        @minigrad.compile
        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss
    """
    if not callable(fn):
        raise TypeError(f"minigrad.compile: expected a function, got {type(fn).__name__}")
    return Compiled(fn)
