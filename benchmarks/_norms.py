"""The benchmark cases of the normalization kernels, shared by bench_batch_norm/layer_norm/group_norm.py.

A case is (norm, shape): ``norm`` is one of "BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm" (32 groups),
"InstanceNorm2d". Ops:

* ``forward``   training-mode forward, the kernel alone (minigrad: the raw backend kernel with preallocated
                outputs; torch: ``torch.nn.functional`` under ``no_grad``)
* ``inference`` batch norm with running statistics (batch norm only)
* ``backward``  the backward kernel alone (torch: ``torch.ops.aten.native_*_backward``; InstanceNorm2d is
                torch's batch norm over the (1, N*C, S) view, which is what ``F.instance_norm`` runs)
* ``fwd+bwd``   what a training step pays through autograd: ``Tensor`` in, functional, ``.backward(dy)``

Every backend's result is checked against the NumPy reference once, before timing.
"""
import numpy as np
import pytest

from conftest import backend_or_skip, check_close, pin_threads, record, shape_id, torch_or_skip

EPS = 1e-5
DTYPE = np.float32
GROUPS = 32


def _layout(norm, shape):
    """(x3 shape (N, C, S) for the kernels, num_groups or None for batch norm)."""
    if norm.startswith("BatchNorm"):
        return (shape[0], shape[1], int(np.prod(shape[2:], dtype=np.int64))), None
    if norm == "LayerNorm":  # rows (R, D) as (R, D, 1) with one group
        return (int(np.prod(shape[:-1])), shape[-1], 1), 1
    s = int(np.prod(shape[2:], dtype=np.int64))
    return (shape[0], shape[1], s), (GROUPS if norm == "GroupNorm" else shape[1])


def _inputs(norm, shape):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape, dtype=DTYPE) * 2 + 0.5).astype(DTYPE)
    dy = rng.standard_normal(shape, dtype=DTYPE)
    p = shape[-1] if norm == "LayerNorm" else shape[1]
    w = (1 + 0.1 * rng.standard_normal(p)).astype(DTYPE)
    b = (0.1 * rng.standard_normal(p)).astype(DTYPE)
    rm = (0.1 * rng.standard_normal(p)).astype(DTYPE)
    rv = (1 + 0.1 * rng.random(p)).astype(DTYPE)
    return x, dy, w, b, rm, rv


def _kernel_op(mod, norm, op, shape, arrays, threads):
    """(timed callable, callable returning the outputs to check) for a raw minigrad kernel module."""
    x, dy, w, b, rm, rv = arrays
    (n, c, s), g = _layout(norm, shape)
    x3, dy3 = x.reshape(n, c, s), dy.reshape(n, c, s)
    y, dx = np.empty_like(x3), np.empty_like(x3)
    dw, db = np.empty(c, DTYPE), np.empty(c, DTYPE)
    stats = (c,) if g is None else (n, g)
    mean, rstd = np.empty(stats), np.empty(stats)
    if g is None:
        fwd = lambda: mod.batch_norm_forward(y, mean, rstd, x3, w, b, EPS, threads)  # noqa: E731
        bwd = lambda: mod.batch_norm_backward(dx, dw, db, dy3, x3, mean, rstd, w, threads)  # noqa: E731
    else:
        fwd = lambda: mod.group_norm_forward(y, mean, rstd, x3, w, b, g, EPS, threads)  # noqa: E731
        bwd = lambda: mod.group_norm_backward(dx, dw, db, dy3, x3, mean, rstd, w, g, threads)  # noqa: E731
    if op == "forward":
        return fwd, lambda: (y.reshape(shape),)
    if op == "inference":
        return (lambda: mod.batch_norm_inference(y, x3, rm, rv, w, b, EPS, threads)), lambda: (y.reshape(shape),)
    if op == "backward":
        fwd()  # the saved statistics
        return bwd, lambda: (dx.reshape(shape), dw, db)
    raise ValueError(op)


def _minigrad_autograd(norm, shape, arrays):
    import minigrad as mg
    import minigrad.nn.functional as F

    x, dy, w, b, rm, rv = arrays
    xt, wt, bt = (mg.Tensor(a, requires_grad=True) for a in (x, w, b))

    def fn():
        xt.grad = wt.grad = bt.grad = None
        if norm.startswith("BatchNorm"):
            y = F.batch_norm(xt, None, None, wt, bt, training=True, eps=EPS)
        elif norm == "LayerNorm":
            y = F.layer_norm(xt, (shape[-1],), wt, bt, eps=EPS)
        elif norm == "GroupNorm":
            y = F.group_norm(xt, GROUPS, wt, bt, eps=EPS)
        else:
            y = F.instance_norm(xt, weight=wt, bias=bt, eps=EPS)
        y.backward(dy)

    return fn, lambda: tuple(np.asarray(getattr(t.grad, "data", t.grad)) for t in (xt, wt, bt))


def _torch_op(torch, norm, op, shape, arrays):
    import torch.nn.functional as TF

    aten = torch.ops.aten
    x, dy, w, b, rm, rv = (torch.from_numpy(a.copy()) for a in arrays)
    n, c = shape[0], shape[1]
    s = int(np.prod(shape[2:], dtype=np.int64))
    mask = [True, True, True]

    def forward():
        with torch.no_grad():
            if norm.startswith("BatchNorm"):
                return TF.batch_norm(x, None, None, w, b, training=True, eps=EPS)
            if norm == "LayerNorm":
                return TF.layer_norm(x, (shape[-1],), w, b, eps=EPS)
            if norm == "GroupNorm":
                return TF.group_norm(x, GROUPS, w, b, eps=EPS)
            return TF.instance_norm(x, weight=w, bias=b, eps=EPS)

    if op == "forward":
        out = {}

        def fn():
            out["y"] = forward()

        return fn, lambda: (out["y"].numpy(),)
    if op == "inference":
        out = {}

        def fn():
            with torch.no_grad():
                out["y"] = TF.batch_norm(x, rm, rv, w, b, training=False, eps=EPS)

        return fn, lambda: (out["y"].numpy(),)
    if op == "backward":
        out = {}
        if norm.startswith("BatchNorm") or norm == "InstanceNorm2d":
            if norm == "InstanceNorm2d":  # F.instance_norm runs batch norm over the (1, N*C, S) view
                xb, dyb, wb = x.reshape(1, n * c, s), dy.reshape(1, n * c, s), w.repeat(n)
            else:
                xb, dyb, wb = x.reshape(n, c, s), dy.reshape(n, c, s), w
            _, smean, sinvstd = aten.native_batch_norm(xb, wb, None, None, None, True, 0.1, EPS)

            def fn():
                out["g"] = aten.native_batch_norm_backward(dyb, xb, wb, None, None, smean, sinvstd, True, EPS, mask)

            def result():
                dx, dw, db = out["g"]
                if norm == "InstanceNorm2d":
                    dw, db = dw.reshape(n, c).sum(0), db.reshape(n, c).sum(0)
                return dx.reshape(shape).numpy(), dw.numpy(), db.numpy()

            return fn, result
        if norm == "LayerNorm":
            d = [shape[-1]]
            _, smean, srstd = aten.native_layer_norm(x, d, w, b, EPS)

            def fn():
                out["g"] = aten.native_layer_norm_backward(dy, x, d, smean, srstd, w, b, mask)
        else:
            _, smean, srstd = aten.native_group_norm(x, w, b, n, c, s, GROUPS, EPS)

            def fn():
                out["g"] = aten.native_group_norm_backward(dy, x, smean, srstd, w, n, c, s, GROUPS, mask)

        return fn, lambda: tuple(t.numpy() for t in out["g"])
    if op == "fwd+bwd":
        xt, wt, bt = (t.clone().requires_grad_(True) for t in (x, w, b))

        def fn():
            xt.grad = wt.grad = bt.grad = None
            if norm.startswith("BatchNorm"):
                y = TF.batch_norm(xt, None, None, wt, bt, training=True, eps=EPS)
            elif norm == "LayerNorm":
                y = TF.layer_norm(xt, (shape[-1],), wt, bt, eps=EPS)
            elif norm == "GroupNorm":
                y = TF.group_norm(xt, GROUPS, wt, bt, eps=EPS)
            else:
                y = TF.instance_norm(xt, weight=wt, bias=bt, eps=EPS)
            y.backward(dy)

        return fn, lambda: tuple(t.grad.numpy() for t in (xt, wt, bt))
    raise ValueError(op)


_REFERENCE = {}


def _reference(norm, op, shape, arrays):
    """The NumPy reference's outputs for (norm, op, shape) (fwd+bwd checks the backward's gradients)."""
    key = (norm, op, shape)
    if key not in _REFERENCE:
        from minigrad.kernels import reference

        fn, result = _kernel_op(reference, norm, "backward" if op == "fwd+bwd" else op, shape, arrays, 1)
        fn()
        _REFERENCE.clear()  # keep one case's arrays alive at most
        _REFERENCE[key] = tuple(np.array(r) for r in result())
    return _REFERENCE[key]


def run_case(benchmark, norm, backend, op, shape, threads):
    """Build, check, time and record one (norm, backend, op, shape, threads) benchmark."""
    shape = tuple(shape)
    arrays = _inputs(norm, shape)
    restore = None
    if backend == "torch":
        torch = torch_or_skip()
        restore = pin_threads(threads)  # torch may have been imported just now
        fn, result = _torch_op(torch, norm, op, shape, arrays)
    else:
        mod = backend_or_skip(backend)
        if backend == "numba":
            restore = pin_threads(threads)
        if op == "fwd+bwd":
            import minigrad as mg

            fn, result = _minigrad_autograd(norm, shape, arrays)
            ctx = mg.using_backend(backend)
            ctx.__enter__()
            prev_restore = restore

            def restore():
                ctx.__exit__(None, None, None)
                if prev_restore:
                    prev_restore()
        else:
            fn, result = _kernel_op(mod, norm, op, shape, arrays, threads)
    try:
        fn()  # JIT compile / warm up, outside the timing
        want = _reference(norm, op, shape, arrays)
        for i, (got, ref) in enumerate(zip(result(), want)):
            scale = float(np.max(np.abs(ref))) or 1.0
            check_close(got, ref, f"{norm} {op} {backend} {shape_id(shape)} output {i}", rtol=1e-3,
                        atol=1e-3 * scale)
        benchmark.group = f"{norm} {op} {shape_id(shape)} threads{threads}"
        benchmark(fn)
        record(benchmark, op=op, backend=backend, shape=shape, threads=threads, dtype=DTYPE, norm=norm)
    finally:
        if restore:
            restore()


def parametrize(cases, ops, backends=("numpy", "cython", "numba", "torch")):
    """Decorators for a bench_<norm>.py test: backend x op x (norm, shape); threads come from the fixture."""
    def deco(f):
        f = pytest.mark.parametrize("norm,shape", cases, ids=[f"{n}-{shape_id(s)}" for n, s in cases])(f)
        f = pytest.mark.parametrize("op", ops, ids=[o.replace("+", "") for o in ops])(f)
        f = pytest.mark.parametrize("backend", backends)(f)
        return f

    return deco
