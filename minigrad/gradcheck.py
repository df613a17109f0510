"""Finite-difference gradient checking in float64.

``gradcheck(fn, inputs)`` compares the gradient that autograd computes for ``sum(fn(*inputs) * v)``, with ``v`` a
fixed random tensor, against central differences of the same scalar, element by element of every input that
requires a gradient. A random ``v`` (rather than ``fn(...).sum()``) matters for normalizations, whose plain sum has
a near-zero gradient.
"""
import numpy as np

from minigrad.tensor import Tensor, no_grad


class GradcheckError(AssertionError):
    """An analytical gradient that disagrees with the finite differences (``gradcheck``,
    ``gradgradcheck``)."""
    pass


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0, raise_exception=True):
    """Check autograd's gradients of ``fn`` at ``inputs`` (Tensors; those with ``requires_grad`` are checked).

    Inputs are promoted to float64 copies first. Returns True when every element satisfies
    ``|analytic - numeric| <= atol + rtol * |numeric|``; otherwise raises ``GradcheckError`` naming the input
    and element with the worst error (or returns False when ``raise_exception=False``).
    """
    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    xs = []
    for t in inputs:
        if isinstance(t, Tensor) and t.dtype.kind == "f":
            xs.append(Tensor(t.data.astype(np.float64), requires_grad=t.requires_grad))
        else:
            xs.append(t)
    checked = [i for i, t in enumerate(xs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")

    out = fn(*xs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    v = np.random.default_rng(seed).standard_normal(out.shape)
    (out * Tensor(v)).sum().backward()

    def scalar():
        with no_grad():
            return float((fn(*xs).data.astype(np.float64) * v).sum())

    worst = None
    for i in checked:
        x = xs[i]
        analytic = np.zeros(x.shape) if x.grad is None else x.grad.data
        flat = x.data.reshape(-1)  # a view: perturbs x in place
        for j in range(flat.size):
            orig = flat[j]
            flat[j] = orig + eps
            fp = scalar()
            flat[j] = orig - eps
            fm = scalar()
            flat[j] = orig
            numeric = (fp - fm) / (2 * eps)
            a = analytic.reshape(-1)[j]
            err = abs(a - numeric) - (atol + rtol * abs(numeric))
            if worst is None or err > worst[0]:
                worst = (err, i, np.unravel_index(j, x.shape), a, numeric)
    if worst is None:  # every checked input is empty: nothing to compare
        return True
    if worst[0] > 0 or not np.isfinite(worst[3]):
        _, i, idx, a, n = worst
        msg = (f"gradcheck failed: input {i}, element {tuple(int(k) for k in idx)}: analytic {a:.10g} vs "
               f"numeric {n:.10g} (atol={atol}, rtol={rtol})")
        if raise_exception:
            raise GradcheckError(msg)
        return False
    return True


def gradgradcheck(fn, inputs, grad_outputs=None, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0, raise_exception=True):
    """Check second derivatives of ``fn`` at ``inputs`` by finite differences, as PyTorch's ``gradgradcheck``:
    ``gradcheck`` of ``(inputs, grad_outputs) -> autograd.grad(fn(inputs), inputs, grad_outputs,
    create_graph=True)``, so d(dx)/d(x) and d(dx)/d(grad_outputs) are both checked. ``grad_outputs`` defaults to
    a fixed random float64 tensor of the output's shape. Everything is promoted to float64 first."""
    from minigrad.autograd import grad
    from minigrad.tensor import cat, enable_grad

    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    xs = [Tensor(t.data.astype(np.float64), requires_grad=t.requires_grad)
          if isinstance(t, Tensor) and t.dtype.kind == "f" else t for t in inputs]
    checked = [i for i, t in enumerate(xs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradgradcheck: no input requires grad")
    with enable_grad():
        out = fn(*xs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradgradcheck: fn must return a Tensor, got {type(out).__name__}")
    if grad_outputs is None:
        go = Tensor(np.random.default_rng(seed + 1).standard_normal(out.shape), requires_grad=True)
    else:
        go = grad_outputs[0] if isinstance(grad_outputs, (tuple, list)) else grad_outputs
        if not isinstance(go, Tensor) or go.shape != out.shape:
            raise ValueError(f"gradgradcheck: grad_outputs must be a Tensor of the output's shape {out.shape}")
        go = Tensor(go.data.astype(np.float64), requires_grad=True)
    n = len(xs)
    # NOTE: backward_graph (create_graph) is a second implementation of each backward: its values must equal the
    # fast path's, or a wrong formula differentiated consistently would pass the finite differences below
    with enable_grad():
        wrt = [xs[i] for i in checked]
        fast = grad(fn(*xs), wrt, Tensor(go.data), allow_unused=True)
        recorded = grad(fn(*xs), wrt, go, create_graph=True, allow_unused=True)
    for i, a, b in zip(checked, fast, recorded):
        a = np.zeros(xs[i].shape) if a is None else a.data
        b = np.zeros(xs[i].shape) if b is None else b.data
        if not np.allclose(b, a, rtol=rtol, atol=atol):
            msg = (f"gradgradcheck failed: input {i}: the gradient with create_graph=True differs from the first-order "
                   f"one by up to {np.abs(b - a).max():.6g}")
            if raise_exception:
                raise GradcheckError(msg)
            return False

    def first_order(*args):
        args_x, g = args[:n], args[n]
        with enable_grad():
            y = fn(*args_x)
            wrt = [args_x[i] for i in checked]
            gs = grad(y, wrt, g, create_graph=True, allow_unused=True)
        flat = [(Tensor(np.zeros(w.shape)) if d is None else d).reshape(-1) for d, w in zip(gs, wrt)]
        return cat(flat) if len(flat) > 1 else flat[0]

    return gradcheck(first_order, (*xs, go), eps=eps, atol=atol, rtol=rtol, seed=seed,
                     raise_exception=raise_exception)
