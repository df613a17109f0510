"""vjp, jvp and hvp of a function of Tensors (PyTorch's ``torch.autograd.functional``), for small models.

``fn`` takes one Tensor or a tuple of Tensors and returns one Tensor. Each function returns
``(fn(inputs), product)`` with the product shaped as ``inputs``; both are cut from the graph. jvp uses the
double-vjp trick: ``u -> vjp(u) = J^T u`` is linear in u, so its vjp with v is ``J v``.
"""
import numpy as np

from minigrad.autograd import grad
from minigrad.tensor import Tensor, enable_grad


def _prepare(fn_name, inputs, v, v_shapes_of):
    single = isinstance(inputs, Tensor)
    xs = (inputs,) if single else tuple(inputs)
    for i, x in enumerate(xs):
        if not isinstance(x, Tensor) or x.dtype.kind != "f":
            raise TypeError(f"{fn_name}: inputs must be float Tensors, got {type(x).__name__} at position {i}")
    xs = tuple(Tensor(x.data, requires_grad=True) for x in xs)
    if v is not None:
        vs = (v,) if isinstance(v, Tensor) else tuple(v)
        shapes = v_shapes_of(xs)
        if len(vs) != len(shapes) or any(t.shape != s for t, s in zip(vs, shapes)):
            raise ValueError(f"{fn_name}: v must have the shapes {list(shapes)}, got "
                             f"{[getattr(t, 'shape', None) for t in vs]}")
        vs = tuple(t.detach() for t in vs)
    else:
        vs = None
    return single, xs, vs


def _call(fn_name, fn, xs, single):
    out = fn(xs[0]) if single else fn(*xs)
    if not isinstance(out, Tensor):
        raise TypeError(f"{fn_name}: fn must return a Tensor, got {type(out).__name__}")
    return out


def _fill(gs, xs):
    return tuple(Tensor(np.zeros_like(x.data)) if g is None else g for g, x in zip(gs, xs))


def _shaped(single, ts):
    ts = tuple(t.detach() for t in ts)
    return ts[0] if single else ts


def vjp(fn, inputs, v=None):
    """``(fn(inputs), v^T J)``; ``v`` may be None for a one-element output."""
    with enable_grad():
        single, xs, _ = _prepare("vjp", inputs, None, None)
        out = _call("vjp", fn, xs, single)
        if v is not None and (not isinstance(v, Tensor) or v.shape != out.shape):
            raise ValueError(f"vjp: v must be a Tensor of the output's shape {out.shape}")
        if not out.requires_grad:
            return out.detach(), _shaped(single, _fill([None] * len(xs), xs))
        gs = grad(out, xs, None if v is None else v.detach(), allow_unused=True)
    return out.detach(), _shaped(single, _fill(gs, xs))


def jvp(fn, inputs, v):
    """``(fn(inputs), J v)`` by the double-vjp trick."""
    with enable_grad():
        single, xs, vs = _prepare("jvp", inputs, v, lambda xs: [x.shape for x in xs])
        out = _call("jvp", fn, xs, single)
        if not out.requires_grad:
            return out.detach(), Tensor(np.zeros_like(out.data))
        u = Tensor(np.zeros_like(out.data), requires_grad=True)
        gs = grad(out, xs, u, create_graph=True, allow_unused=True)
        used = [(g, t) for g, t in zip(gs, vs) if g is not None]
        if not used:
            return out.detach(), Tensor(np.zeros_like(out.data))
        (jv,) = grad([g for g, _ in used], u, [t for _, t in used], allow_unused=True)
    return out.detach(), (Tensor(np.zeros_like(out.data)) if jv is None else jv.detach())


def hvp(fn, inputs, v):
    """``(fn(inputs), H v)`` with H the Hessian of the one-element output of ``fn``."""
    with enable_grad():
        single, xs, vs = _prepare("hvp", inputs, v, lambda xs: [x.shape for x in xs])
        out = _call("hvp", fn, xs, single)
        if out.data.size != 1:
            raise ValueError(f"hvp: fn must return a one-element Tensor, got shape {out.shape}")
        if not out.requires_grad:
            return out.detach(), _shaped(single, _fill([None] * len(xs), xs))
        gs = grad(out, xs, create_graph=True, allow_unused=True)
        used = [(g, t) for g, t in zip(gs, vs) if g is not None and g.requires_grad]
        if not used:
            return out.detach(), _shaped(single, _fill([None] * len(xs), xs))
        dot = sum(((g * t).sum() for g, t in used[1:]), (used[0][0] * used[0][1]).sum())
        hs = grad(dot, xs, allow_unused=True)
    return out.detach(), _shaped(single, _fill(hs, xs))
