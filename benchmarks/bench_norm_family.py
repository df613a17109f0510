"""The normalization family beyond PyTorch (Batch Renorm, ghost batch norm, FRN + TLU, EvoNorm-B0/S0) through
autograd, every backend beside the same method written with PyTorch ops (what a PyTorch user writes today; PyTorch
has none of them as a module), at 1 thread.

Ops: ``forward`` (the functional on tensors that need no gradient) and ``fwd+bwd`` (inputs and parameters require
grad, then ``.backward(dy)``). Each case checks minigrad's result against the torch composition once, before
timing. Byte model as in ``conftest.py`` (3 |x| forward, 8 |x| fwd+bwd): a floor, not what the composed ops move.
"""
import numpy as np
import pytest

from conftest import backend_or_skip, check_close, pin_threads, record, shape_id, torch_or_skip

DTYPE = np.float32
EPS = 1e-5
SHAPES = [(16, 32, 8, 8), (32, 64, 16, 16)]  # 128 KB and 2 MB of float32
VIRTUAL_BATCH = 4
GROUPS = 8
METHODS = ["BatchRenorm2d", "GhostBatchNorm2d", "FRN+TLU", "EvoNormB0", "EvoNormS0"]
OPS = ["forward", "fwd+bwd"]


def _arrays(shape):
    rng = np.random.default_rng(0)
    c = shape[1]
    x = (rng.standard_normal(shape) * 2 + 0.5).astype(DTYPE)
    dy = rng.standard_normal(shape).astype(DTYPE)
    w = (1 + 0.1 * rng.standard_normal(c)).astype(DTYPE)
    b = (0.1 * rng.standard_normal(c)).astype(DTYPE)
    v = (1 + 0.1 * rng.standard_normal(c)).astype(DTYPE)  # EvoNorm's v, TLU's tau
    rm = (0.1 * rng.standard_normal(c)).astype(DTYPE)
    rv = (1 + 0.5 * rng.random(c)).astype(DTYPE)
    return dict(x=x, dy=dy, w=w, b=b, v=v, rm=rm, rv=rv)


def _minigrad(method, a, grad):
    """(run, result) for minigrad: run() does one forward (and backward when ``grad``)."""
    import minigrad as mg
    import minigrad.nn.functional as F

    x, w, b, v = (mg.Tensor(a[k], requires_grad=grad) for k in ("x", "w", "b", "v"))
    eps_t = mg.Tensor(np.full(1, 1e-6, DTYPE), requires_grad=grad)
    out = {}

    def forward():
        if method == "BatchRenorm2d":
            return F.batch_renorm(x, mg.Tensor(a["rm"].copy()), mg.Tensor(a["rv"].copy()), w, b, True, 0.1, EPS,
                                  1.5, 0.5)
        if method == "GhostBatchNorm2d":
            return F.batch_norm(x, None, None, w, b, True, 0.1, EPS, virtual_batch_size=VIRTUAL_BATCH)
        if method == "FRN+TLU":
            return F.tlu(F.filter_response_norm(x, w, b, eps_t), v)
        if method == "EvoNormB0":
            return F.evonorm_b0(x, v, None, w, b, training=True, eps=EPS)
        return F.evonorm_s0(x, v, GROUPS, w, b, eps=EPS)

    def run():
        for t in (x, w, b, v, eps_t):
            t.grad = None
        out["y"] = forward()
        if grad:
            out["y"].backward(a["dy"])

    def result():
        return [out["y"].numpy()] + ([x.grad.numpy(), w.grad.numpy(), b.grad.numpy()] if grad else [])

    return run, result


def _torch(torch, method, a, grad):
    """(run, result) for the same method written with torch ops."""
    TF = torch.nn.functional
    x, w, b, v = (torch.tensor(a[k], requires_grad=grad) for k in ("x", "w", "b", "v"))
    eps_t = torch.full((1,), 1e-6, requires_grad=grad)
    W, B, V = (t.view(1, -1, 1, 1) for t in (w, b, v))
    n = x.shape[0]
    out = {}

    def forward():
        if method == "BatchRenorm2d":
            rm, rv = torch.tensor(a["rm"]), torch.tensor(a["rv"])
            with torch.no_grad():
                sigma = (rv + EPS).sqrt()
                r = ((x.var((0, 2, 3), unbiased=False) + EPS).sqrt() / sigma).clamp(1 / 1.5, 1.5)
                d = ((x.mean((0, 2, 3)) - rm) / sigma).clamp(-0.5, 0.5)
            return TF.batch_norm(x, rm, rv, w * r, b + w * d, training=True, momentum=0.1, eps=EPS)
        if method == "GhostBatchNorm2d":
            return torch.cat([TF.batch_norm(chunk, None, None, w, b, training=True, eps=EPS)
                              for chunk in x.split(VIRTUAL_BATCH)])
        if method == "FRN+TLU":
            nu2 = x.pow(2).mean(dim=(2, 3), keepdim=True)
            return torch.maximum(x * torch.rsqrt(nu2 + eps_t.abs()) * W + B, V)
        if method == "EvoNormB0":
            batch_std = (x.var(dim=(0, 2, 3), unbiased=False, keepdim=True) + EPS).sqrt()
            inst_std = (x.var(dim=(2, 3), unbiased=False, keepdim=True) + EPS).sqrt()
            return x / torch.maximum(batch_std, V * x + inst_std) * W + B
        g = x.reshape(n, GROUPS, -1)
        std = (g.var(dim=2, unbiased=False, keepdim=True) + EPS).sqrt()
        return ((x * torch.sigmoid(V * x)).reshape(n, GROUPS, -1) / std).reshape(x.shape) * W + B

    dy = torch.tensor(a["dy"])

    def run():
        for t in (x, w, b, v, eps_t):
            t.grad = None
        if grad:
            out["y"] = forward()
            out["y"].backward(dy)
        else:
            with torch.no_grad():
                out["y"] = forward()

    def result():
        return [out["y"].detach().numpy()] + ([x.grad.numpy(), w.grad.numpy(), b.grad.numpy()] if grad else [])

    return run, result


@pytest.mark.parametrize("shape", SHAPES, ids=[shape_id(s) for s in SHAPES])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("op", OPS, ids=[o.replace("+", "") for o in OPS])
@pytest.mark.parametrize("backend", ["numpy", "cython", "numba", "torch"])
def test_norm_family(benchmark, backend, op, method, shape):
    torch = torch_or_skip()
    a = _arrays(shape)
    grad = op == "fwd+bwd"
    restore = pin_threads(1)
    ctx = None
    try:
        want_run, want = _torch(torch, method, a, grad)
        want_run()
        if backend == "torch":
            run, result = want_run, want
        else:
            import minigrad as mg

            backend_or_skip(backend)
            ctx = mg.using_backend(backend)
            ctx.__enter__()
            run, result = _minigrad(method, a, grad)
        run()  # JIT compile / warm up, outside the timing
        for i, (got, ref) in enumerate(zip(result(), want())):
            scale = float(np.max(np.abs(ref))) or 1.0
            check_close(got, ref, f"{method} {op} {backend} output {i}", rtol=1e-3, atol=1e-4 * scale)
        benchmark.group = f"{method} {op} {shape_id(shape)} threads1"
        benchmark(run)
        record(benchmark, op=op, backend=backend, shape=shape, threads=1, dtype=DTYPE, norm=method)
    finally:
        if ctx is not None:
            ctx.__exit__(None, None, None)
        restore()
