"""Module: parameters, buffers and submodules registered by attribute, as in PyTorch.

A module owns state (``Parameter``s, buffers such as running statistics) and the training flag, and calls the
stateless functional ops in ``forward``. ``state_dict()`` maps PyTorch-style dotted names to NumPy arrays (copies),
so a checkpoint never aliases live parameters.
"""
from collections import OrderedDict

import importlib
import operator

import numpy as np

from minigrad.tensor import Tensor, _replayed, _to_arguments

_tensor = importlib.import_module("minigrad.tensor")  # NOTE: the module (minigrad.tensor is also a function)

# NOTE: bumped by every assignment or registration on any Module (an attribute, a parameter, a buffer, a submodule):
# minigrad.compile compares its recordings' module state again only when this moved
attr_epoch = 0
_ABSENT = object()


class Parameter(Tensor):
    """A Tensor that a Module registers as a learnable parameter (``requires_grad=True`` by default)."""

    __slots__ = ()

    def __init__(self, data, requires_grad=True):
        super().__init__(data.data if isinstance(data, Tensor) else data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


def _getter(names):
    """``lambda table: tuple(table[n] for n in names)`` in C (``itemgetter`` returns a bare value for one name)."""
    if len(names) >= 2:
        return operator.itemgetter(*names)
    return (lambda table: (table[names[0]],)) if names else (lambda table: ())


class TableNames:
    """The state a plain module reads by ``Module._table_state``: the names registered as parameters, then those
    registered as buffers (the order of the values read)."""
    __slots__ = ("names", "buffers", "from_params", "from_buffers")

    def __init__(self, params, buffers=()):
        self.names, self.buffers = tuple(params) + tuple(buffers), tuple(buffers)
        self.from_params, self.from_buffers = _getter(tuple(params)), _getter(tuple(buffers))


class Module:
    """Base class of every layer: assign Parameters, buffers (``register_buffer``) and Modules as attributes."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------ registration
    def __setattr__(self, name, value):
        global attr_epoch
        attr_epoch += 1
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() before assigning "
                                 f"attributes")
        params, buffers, modules = self._parameters, self._buffers, self._modules
        if isinstance(value, (Parameter, Module)):
            for table in (params, buffers, modules):
                table.pop(name, None)
            (params if isinstance(value, Parameter) else modules)[name] = value
            self.__dict__.pop(name, None)
        elif name in buffers:  # assigning a registered buffer keeps it a buffer
            buffers[name] = value if value is None or isinstance(value, Tensor) else Tensor(np.asarray(value))
        elif name in params and value is None:  # an optional parameter switched off
            params[name] = None
        else:
            for table in (params, modules):
                table.pop(name, None)
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        # NOTE: runs for every parameter, buffer and submodule read (self.weight in a forward, 23 in an MLP-BN
        # step): the three tables looked up without a loop over their names
        d = self.__dict__
        table = d.get("_parameters")
        if table is not None and name in table:
            return table[name]
        table = d.get("_buffers")
        if table is not None and name in table:
            return table[name]
        table = d.get("_modules")
        if table is not None and name in table:
            return table[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def _table_state(self, plain, names):
        """``tuple(getattr(self, n) for n in names)`` read from the parameter and buffer tables directly, or None
        (the caller then reads the attributes) unless ``type(self)`` is one of ``plain`` (classes whose attributes
        shadow none of ``names``) and every name is in a table and not in the instance's ``__dict__``. ``names``: a
        tuple, or a ``TableNames`` (read by one ``itemgetter`` per table where each name is in the table it names).
        NOTE: ``self.weight`` pays CPython's failed lookup and the AttributeError it raises and clears before
        ``__getattr__`` runs, about 1.2 us a read (23 reads in an MLP-BN step); a subclass is never ``plain``:
        parametrize's puts a property on one, which must win."""
        if type(self) not in plain:
            return None
        d = self.__dict__
        params, buffers = d["_parameters"], d["_buffers"]
        if type(names) is TableNames:
            # NOTE: a buffer's name in the parameter table too (register_parameter(name, None) over a buffer) reads
            # as the parameter: the per-name reads below, as does a name the other table holds (KeyError)
            if d.keys().isdisjoint(names.names) and params.keys().isdisjoint(names.buffers):
                try:
                    return names.from_params(params) + names.from_buffers(buffers)
                except KeyError:
                    pass
            names = names.names
        out = []
        for n in names:
            v = params.get(n, _ABSENT)
            if v is _ABSENT:
                v = buffers.get(n, _ABSENT)
            if v is _ABSENT or n in d:
                return None
            out.append(v)
        return out

    def __delattr__(self, name):
        global attr_epoch
        attr_epoch += 1
        for table in (self._parameters, self._buffers, self._modules):
            if name in table:
                del table[name]
                return
        object.__delattr__(self, name)

    def register_buffer(self, name, tensor, persistent=True):
        """Register ``tensor`` (a Tensor, or None) as state that is not trained. A persistent buffer is saved in
        ``state_dict`` (and loaded by ``load_state_dict``); ``persistent=False`` keeps it out of both, as
        PyTorch's (it still moves with ``to``/``float``/``double``)."""
        global attr_epoch
        attr_epoch += 1
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"register_buffer: name must be a non-empty string without '.', got {name!r}")
        if isinstance(tensor, np.ndarray):
            tensor = Tensor(tensor)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: cannot assign {type(tensor).__name__} object to buffer {name!r} "
                            f"(a Tensor, a NumPy array or None is required)")
        if name in self._parameters or name in self._modules:
            raise KeyError(f"register_buffer: attribute {name!r} already exists (a parameter or submodule)")
        self.__dict__.pop(name, None)
        self._buffers[name] = tensor
        if persistent:
            self.__dict__.get("_non_persistent", set()).discard(name)
        else:
            if "_non_persistent" not in self.__dict__:
                object.__setattr__(self, "_non_persistent", set())
            self._non_persistent.add(name)

    def register_parameter(self, name, param):
        """Register ``param`` (a Parameter, or None for an absent optional parameter such as a bias)."""
        global attr_epoch
        attr_epoch += 1
        if param is None:
            self.__dict__.pop(name, None)
            self._parameters[name] = None
        else:
            setattr(self, name, param)

    def add_module(self, name, module):
        """Register ``module`` as the submodule ``name`` (the same as ``setattr(self, name, module)``)."""
        global attr_epoch
        attr_epoch += 1
        setattr(self, name, module)

    # ------------------------------------------------------------ traversal
    def named_modules(self, prefix=""):
        """Yield ``(dotted name, module)`` for this module (named ``prefix``) and every submodule below it,
        depth first, in registration order.
        """
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        """Yield this module and every submodule below it, depth first (``named_modules`` without names)."""
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        """Yield ``(name, module)`` for the direct submodules, in registration order."""
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self):
        """Yield the direct submodules, in registration order."""
        for _, m in self.named_children():
            yield m

    def named_parameters(self, prefix="", recurse=True):
        """Yield ``(dotted name, Parameter)`` for every parameter of this module and, with ``recurse``, of its
        submodules; a parameter shared by several modules is yielded once, under its first name.
        """
        seen = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mp, m in mods:
            for name, p in m._parameters.items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mp}.{name}" if mp else name), p

    def parameters(self, recurse=True):
        """Yield every parameter (``named_parameters`` without names): what an optimizer takes,
        ``optim.SGD(model.parameters(), lr=0.1)``.
        """
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix=""):
        """Yield ``(dotted name, Tensor)`` for every buffer (state that is saved but not trained, such as
        batch norm's running statistics) of this module and its submodules.
        """
        for mp, m in self.named_modules(prefix):
            for name, b in m._buffers.items():
                if b is not None:
                    yield (f"{mp}.{name}" if mp else name), b

    def buffers(self):
        """Yield every buffer (``named_buffers`` without names)."""
        for _, b in self.named_buffers():
            yield b

    # ------------------------------------------------------------ modes
    def train(self, mode=True):
        """Set training mode (``mode=True``) or evaluation mode on this module and every submodule; returns
        ``self``. Batch norm uses batch statistics and updates its running statistics in training mode, and uses
        the running statistics in eval mode; dropout is active only in training mode.
        """
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        """Set evaluation mode (``train(False)``); returns ``self``."""
        return self.train(False)

    @_replayed  # NOTE: minigrad.compile records the call and makes it again on replay (as an optimizer's)
    def zero_grad(self, set_to_none=True):
        """Reset every parameter's gradient: to None (``set_to_none=True``, the default, as PyTorch) or to
        zeros.
        """
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.data[...] = 0

    def requires_grad_(self, flag=True):
        """Set ``requires_grad`` on every parameter (``False`` freezes the module); returns ``self``."""
        for p in self.parameters():
            p.requires_grad_(flag)
        return self

    def apply(self, fn):
        """Call ``fn(m)`` on every submodule (children first, as PyTorch) and on this module; returns ``self``
        (``model.apply(init_weights)``)."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------ dtype and device
    def to(self, *args, dtype=None, device=None, non_blocking=False):
        """``to(device)``, ``to(dtype)``, ``to(device, dtype)`` or ``to(tensor)``, in place; returns ``self``.
        Only the CPU exists (another device raises); a dtype converts the floating-point parameters and buffers,
        as PyTorch does (integer buffers such as ``num_batches_tracked`` keep theirs)."""
        dtype = _to_arguments("Module.to", args, dtype, device)
        if dtype is not None:
            self._cast(np.dtype(dtype))
        return self

    def float(self):
        """Floating-point parameters and buffers to float32, in place; returns ``self``."""
        return self.to(np.float32)

    def double(self):
        """Floating-point parameters and buffers to float64, in place; returns ``self``."""
        return self.to(np.float64)

    def cpu(self):
        """``self``: everything is on the CPU already."""
        return self

    def _cast(self, dtype):
        if dtype.kind != "f":
            raise TypeError(f"Module.to: dtype must be a floating-point dtype, got {dtype}")
        for m in self.modules():
            for table in (m._parameters, m._buffers):
                for t in table.values():
                    if t is not None and t.data.dtype.kind == "f" and t.data.dtype != dtype:
                        t.data = t.data.astype(dtype)
                        if t.grad is not None:
                            t.grad = None

    # ------------------------------------------------------------ state
    def state_dict(self):
        """Parameters and buffers by dotted name (PyTorch's names), as NumPy array copies."""
        out = OrderedDict()
        for mp, m in self.named_modules():
            skip = m.__dict__.get("_non_persistent", ())
            for table in (m._parameters, m._buffers):
                for name, t in table.items():
                    if t is not None and not (table is m._buffers and name in skip):
                        out[f"{mp}.{name}" if mp else name] = t.data.copy()
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays (or Tensors) into parameters and buffers by name. With ``strict``, missing or unexpected
        keys raise a KeyError listing them; a shape mismatch always raises ValueError."""
        own = OrderedDict()
        for mp, m in self.named_modules():
            skip = m.__dict__.get("_non_persistent", ())
            for table in (m._parameters, m._buffers):
                for name, t in table.items():
                    if t is not None and not (table is m._buffers and name in skip):
                        own[f"{mp}.{name}" if mp else name] = t
        optional = self._optional_keys(state_dict)
        missing = [k for k in own if k not in state_dict and k not in optional]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        for key, t in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            value = value.data if isinstance(value, Tensor) else np.asarray(value)
            if value.shape != t.data.shape:
                raise ValueError(f"load_state_dict: {key!r} has shape {value.shape} in the state dict, "
                                 f"but {t.data.shape} in the model")
            t.data[...] = value
        return missing, unexpected

    def _optional_keys(self, state_dict):
        """Keys that a state dict may lack, the module keeping its value: those that a module names in its
        ``_added_state`` (version, names), where the state dict does not say (PyTorch's ``_metadata``) that it was
        saved at that version or later. BatchNorm's ``num_batches_tracked`` (PyTorch 0.4.1, version 2) is one."""
        meta = getattr(state_dict, "_metadata", None) or {}
        keys = set()
        for mp, m in self.named_modules():
            added = getattr(m, "_added_state", None)
            if not added:
                continue
            version, names = added
            saved = meta.get(mp, {}).get("version")
            if saved is None or saved < version:
                keys.update(f"{mp}.{name}" if mp else name for name in names if m._buffers.get(name) is not None)
        return keys

    # ------------------------------------------------------------ call
    def forward(self, *args, **kwargs):
        """The computation of the module: every subclass defines it. Call the module (``module(x)``) rather
        than ``forward`` directly.
        """
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        # NOTE: Sequential.forward calls ``forward`` itself for a module whose class keeps this method, when no
        # recording is on (0.6 us against 0.2 a call): whatever is added here must be added there too
        if _tensor._recorder is not None:  # NOTE: minigrad.compile keys a recording on the modules' training flags
            _tensor._recorder.on_module(self)
        return self.forward(*args, **kwargs)

    def extra_repr(self):
        """The module's own arguments, shown by ``repr`` (override it in a subclass)."""
        return ""

    def __repr__(self):
        children = [f"({name}): " + repr(m).replace("\n", "\n  ") for name, m in self.named_children()]
        extra = self.extra_repr()
        if not children:
            return f"{type(self).__name__}({extra})"
        body = "\n  ".join(([extra] if extra else []) + children)
        return f"{type(self).__name__}(\n  {body}\n)"


_module_call = Module.__call__
# how Sequential.forward runs a step of its plan (ints: a pickled Sequential's plan keeps its meaning)
_PLAIN, _CALL, _RELU, _ACTIVATION, _TLU = range(5)


class Sequential(Module):
    """A container that calls its modules in order, each on the previous one's output.

    Built from modules (named ``"0"``, ``"1"``, ...) or from one ``OrderedDict`` of ``name: module``. Indexing
    gives a module, slicing a new ``Sequential`` of the same modules (no copies).

    Example::

        >>> model = nn.Sequential(nn.Linear(784, 100), nn.BatchNorm1d(100), nn.ReLU(), nn.Linear(100, 10))
        >>> model(minigrad.randn(60, 784)).shape
        (60, 10)

    A module with a ``forward_relu`` method (the BatchNorms) followed by an ``nn.ReLU`` runs as one fused op,
    ``forward_relu`` (F.batch_norm_relu: same results as the pair, within rounding; see
    minigrad/nn/functional/fused.py); a BatchNorm followed by an ``nn.Sigmoid`` or ``nn.Tanh`` likewise,
    ``forward_activation`` (F.batch_norm_sigmoid, F.batch_norm_tanh: the pair's bits, one node less); and a
    ``FilterResponseNorm2d`` followed by an ``nn.TLU``, ``forward_tlu`` (F.filter_response_norm_tlu). The second
    module fuses only as that exact class (not a subclass); ``fuse = False`` on an instance turns all of it off.
    """

    fuse = True

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (dict, OrderedDict)):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def forward(self, x):
        """``x`` passed through every module in order (a BatchNorm then a ReLU, Sigmoid or Tanh, and FRN then TLU,
        fused: see the class docstring)."""
        key = (attr_epoch, self.fuse, tuple(self._modules.values()))
        plan = self.__dict__.get("_plan")
        # NOTE: the plan is made again when a module is added, replaced or removed (the tuple, also where the table
        # is written directly), ``fuse`` changes (on the instance or the class) or any module's attribute is
        # assigned (attr_epoch: a module's ``__class__`` too). A marker assigned on a class (``nn.ReLU.is_plain_relu``)
        # is read when the plan is made
        if plan is None or plan[0] != key:
            plan = (key, self._plan_steps(key[2]))
            object.__setattr__(self, "_plan", plan)  # NOTE: not Module.__setattr__: no epoch bumped
        # NOTE: a module whose class keeps Module.__call__ is run by its forward, without the call's slot_tp_call and
        # argument packing (0.6 us against 0.2); under a minigrad.compile recording, through the call (its hook)
        direct = _tensor._recorder is None
        for how, m, nxt in plan[1]:
            if how == _PLAIN:
                x = m.forward(x) if direct else m(x)
            elif how == _CALL:
                x = m(x)
            elif how == _RELU:
                x = m.forward_relu(x)
            elif how == _ACTIVATION:
                x = m.forward_activation(x, nxt)
            else:
                x = m.forward_tlu(x, nxt.tau)
        return x

    def _plan_steps(self, mods):
        """How forward runs ``mods``: (how, module, the next module where the two run fused) per step."""
        steps, i = [], 0
        while i < len(mods):
            m = mods[i]
            nxt = type(mods[i + 1]).__dict__ if self.fuse and i + 1 < len(mods) else {}
            # NOTE: markers, not isinstance(.., ReLU): nn.activation imports this module; looked up on the class:
            # hasattr on a module without the method runs __getattr__ and raises
            if nxt.get("is_plain_relu", False) and hasattr(type(m), "forward_relu"):
                how = _RELU
            elif "plain_activation" in nxt and hasattr(type(m), "forward_activation"):
                how = _ACTIVATION
            elif nxt.get("is_plain_tlu", False) and hasattr(type(m), "forward_tlu"):
                how = _TLU
            else:
                steps.append((_PLAIN if type(m).__call__ is _module_call else _CALL, m, None))
                i += 1
                continue
            steps.append((how, m, mods[i + 1]))
            i += 2
        return tuple(steps)

    def __getitem__(self, i):
        mods = list(self._modules.values())
        return Sequential(*mods[i]) if isinstance(i, slice) else mods[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        """Add ``module`` at the end (named by its position); returns ``self``."""
        self.add_module(str(len(self._modules)), module)
        return self


class ModuleList(Module):
    """A list of modules whose parameters the parent module sees (a plain Python list would hide them).
    Index, slice, iterate, ``append`` and ``extend`` as a list; it has no ``forward`` of its own.
    """

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module):
        """Add ``module`` at the end (named by its position); returns ``self``."""
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules):
        """Append every module of ``modules`` in order; returns ``self``."""
        for m in modules:
            self.append(m)
        return self

    def __getitem__(self, i):
        mods = list(self._modules.values())
        return ModuleList(mods[i]) if isinstance(i, slice) else mods[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())
