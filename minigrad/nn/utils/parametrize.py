"""Parametrizations as in ``torch.nn.utils.parametrize``: a module's tensor computed, on each access, from
"original" tensors by small modules.

``register_parametrization(module, "weight", p)`` moves ``module.weight`` to
``module.parametrizations.weight.original`` (or ``original0``, ``original1``, ... when ``p.right_inverse`` returns
a tuple), keeps ``p`` as ``module.parametrizations.weight[0]``, and makes ``module.weight`` a property that returns
``p(original)`` through autograd. The state_dict keys are PyTorch's (``parametrizations.weight.original0``,
``parametrizations.weight.0._u``), so state dicts load across. As in PyTorch, the module's class is swapped for a
subclass ``Parametrized<Name>`` that holds the properties; removing the last parametrization restores it.
No caching (``parametrize.cached``) and no state-dict pre-hooks for the old ``weight_g``/``weight_v`` keys.
"""
from minigrad.nn.module import Module, Parameter
from minigrad.tensor import Tensor, no_grad


class ParametrizationList(Module):
    """The originals of one parametrized tensor and its parametrizations, children ``"0"``, ``"1"``, ..."""

    def __init__(self, modules, original, unsafe=False):
        super().__init__()
        self.unsafe = unsafe
        for i, m in enumerate(modules):
            self.add_module(str(i), m)
        new = original
        with no_grad():
            for m in reversed(modules):
                if hasattr(m, "right_inverse"):
                    new = m.right_inverse(new)
        self.is_tensor = isinstance(new, Tensor)
        flag = original.requires_grad
        if self.is_tensor:
            # NOTE: PyTorch keeps the original Parameter object when the right inverse returns a tensor
            if new is original and isinstance(original, Parameter):
                self.original = original
            else:
                self.original = Parameter(new.data.copy(), requires_grad=flag)
        else:
            self.ntensors = len(new)
            for i, t in enumerate(new):
                setattr(self, f"original{i}", Parameter(t.data.copy(), requires_grad=flag))

    def __len__(self):
        return len(self._modules)

    def __getitem__(self, i):
        return list(self._modules.values())[i]

    def originals(self):
        return (self.original,) if self.is_tensor else tuple(getattr(self, f"original{i}")
                                                             for i in range(self.ntensors))

    def append(self, module):
        self.add_module(str(len(self._modules)), module)

    def forward(self):
        mods = list(self._modules.values())
        x = mods[0](*self.originals())
        for m in mods[1:]:
            x = m(x)
        return x

    def right_inverse(self, value):
        """Set the originals so that the parametrized tensor is ``value`` (in place, without autograd)."""
        value = value if isinstance(value, Tensor) else Tensor(value)
        with no_grad():
            for m in reversed(list(self._modules.values())):
                if hasattr(m, "right_inverse"):
                    value = m.right_inverse(value)
            values = (value,) if self.is_tensor else tuple(value)
            for orig, v in zip(self.originals(), values):
                if orig.shape != v.shape:
                    raise ValueError(f"parametrize: the right inverse gives shape {v.shape} for an original of "
                                     f"shape {orig.shape}")
                orig.data[...] = v.data


class _Parametrizations(Module):
    """``module.parametrizations``: one ParametrizationList per parametrized tensor name."""

    def __getitem__(self, name):
        return self._modules[name]

    def __contains__(self, name):
        return name in self._modules


def is_parametrized(module, tensor_name=None):
    """Whether ``module`` has a parametrization (on ``tensor_name`` when given)."""
    p = module.__dict__.get("_modules", {}).get("parametrizations")
    if not isinstance(p, _Parametrizations):
        return False
    return tensor_name is None or tensor_name in p


def _setattr(self, name, value):
    if is_parametrized(self, name):
        self.parametrizations[name].right_inverse(value)
    else:
        self._unparametrized_class.__setattr__(self, name, value)


def _inject_class(module):
    cls = module.__class__
    new = type(f"Parametrized{cls.__name__}", (cls,), {"__setattr__": _setattr, "_unparametrized_class": cls})
    object.__setattr__(module, "__class__", new)


def _inject_property(module, name):
    def get(self):
        return self.parametrizations[name]()

    def set_(self, value):
        self.parametrizations[name].right_inverse(value)

    setattr(module.__class__, name, property(get, set_))


def register_parametrization(module, tensor_name, parametrization, *, unsafe=False):
    """Parametrize ``module.<tensor_name>`` (a parameter or buffer) by the module ``parametrization``: see the
    module docstring. A second parametrization of the same tensor is appended (applied after the first). Returns
    ``module``."""
    if not isinstance(parametrization, Module):
        raise TypeError(f"register_parametrization: parametrization must be a minigrad.nn.Module, got "
                        f"{type(parametrization).__name__}")
    if is_parametrized(module, tensor_name):
        module.parametrizations[tensor_name].append(parametrization)
        return module
    original = module._parameters.get(tensor_name, module._buffers.get(tensor_name))
    if not isinstance(original, Tensor):
        raise ValueError(f"register_parametrization: module {type(module).__name__} has no parameter or buffer "
                         f"{tensor_name!r}")
    plist = ParametrizationList([parametrization], original, unsafe=unsafe)
    if not unsafe:
        with no_grad():
            out = plist()
        if out.shape != original.shape or out.dtype != original.dtype:
            raise ValueError(f"register_parametrization: the parametrization changes {tensor_name!r} from "
                             f"{original.shape} {original.dtype} to {out.shape} {out.dtype} (pass unsafe=True)")
    delattr(module, tensor_name)
    if not is_parametrized(module):
        _inject_class(module)
        module.parametrizations = _Parametrizations()
    module.parametrizations.add_module(tensor_name, plist)
    _inject_property(module, tensor_name)
    return module


def remove_parametrizations(module, tensor_name, leave_parametrized=True):
    """Remove the parametrizations of ``module.<tensor_name>``. ``leave_parametrized=True`` leaves the current
    (parametrized) value as a plain Parameter; False restores the original, which needs a single original
    tensor. Returns ``module``."""
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"remove_parametrizations: module {type(module).__name__} has no parametrization on "
                         f"{tensor_name!r}")
    plist = module.parametrizations[tensor_name]
    if leave_parametrized:
        with no_grad():
            value = plist()
        if plist.is_tensor:
            # NOTE: as PyTorch, the original Parameter object survives, now holding the parametrized value
            new = plist.original
            new.data = value.data.astype(new.dtype, copy=True) if new.shape == value.shape else value.data.copy()
        else:
            new = Parameter(value.data.copy(), requires_grad=plist.original0.requires_grad)
    else:
        if not plist.is_tensor:
            raise ValueError("remove_parametrizations: cannot leave unparametrized (leave_parametrized=False) a "
                             "tensor that is parametrized in terms of a sequence of tensors")
        new = plist.original
    delattr(module.__class__, tensor_name)
    del module.parametrizations._modules[tensor_name]
    module._unparametrized_class.__setattr__(module, tensor_name, new)
    if not module.parametrizations._modules:
        del module._modules["parametrizations"]
        object.__setattr__(module, "__class__", module._unparametrized_class)
    return module
