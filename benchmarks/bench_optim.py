"""Optimizer update kernels, every backend side by side with PyTorch's own step on one parameter.

Ops: ``sgd`` (momentum 0.9, the rule of ``torch.optim.SGD``) and ``adam`` (``torch.optim.Adam``), one step on a
flat float32 parameter. PyTorch's column is ``optimizer.step()`` with ``foreach=False`` (its CPU default), minus
nothing: that call is what a training step pays. Byte model (conftest.BYTES_FACTOR): SGD reads p, buf, g and
writes p, buf: 5 |p|; Adam reads p, m, v, g and writes p, m, v: 7 |p|.
Sizes: the MLP's largest weight (100 x 784) and a 4M-element parameter (16 MiB per array: DRAM-size).
Check, before the timing: one step from the same state equals the NumPy reference's bits (the compiled backends)
or PyTorch's result to float32 rounding (PyTorch may fuse a multiply-add).
"""
import numpy as np
import pytest

from conftest import backend_or_skip, pin_threads, record, torch_or_skip

SIZES = [78_400, 4_194_304]
LR, MOMENTUM, BETAS, EPS = 0.01, 0.9, (0.9, 0.999), 1e-8


def _state(op, size):
    rng = np.random.default_rng(size)
    p, g = (rng.standard_normal(size).astype(np.float32) for _ in range(2))
    if op == "sgd":
        return p, (rng.standard_normal(size).astype(np.float32),), g
    return p, (0.1 * rng.standard_normal(size).astype(np.float32), rng.random(size).astype(np.float32)), g


def _scalars(op, step=2):
    if op == "sgd":
        return (LR, MOMENTUM, 0.0, 0.0, False, False)
    return (LR, *BETAS, EPS, 0.0, False, step)


def _reference_step(op, p, state, g):
    from minigrad.kernels import reference

    out = [p.copy(), *(s.copy() for s in state)]
    getattr(reference, f"{op}_update")(*out, g, *_scalars(op))
    return out


def _torch_setup(torch, op, p, state, g):
    """A torch optimizer on one parameter whose state equals ``state`` after its first step (step 1 seeds it)."""
    param = torch.nn.Parameter(torch.from_numpy(p.copy()))
    param.grad = torch.from_numpy(g.copy())
    if op == "sgd":
        opt = torch.optim.SGD([param], lr=LR, momentum=MOMENTUM, foreach=False)
        opt.state[param]["momentum_buffer"] = torch.from_numpy(state[0].copy())
    else:
        opt = torch.optim.Adam([param], lr=LR, betas=BETAS, eps=EPS, foreach=False)
        opt.step()  # creates the state; then set it to ours at step 1, so the next step is step 2
        with torch.no_grad():
            param.copy_(torch.from_numpy(p))
        st = opt.state[param]
        st["exp_avg"].copy_(torch.from_numpy(state[0]))
        st["exp_avg_sq"].copy_(torch.from_numpy(state[1]))
        st["step"].fill_(1)
    return param, opt


@pytest.mark.parametrize("size", SIZES, ids=[str(s) for s in SIZES])
@pytest.mark.parametrize("op", ["sgd", "adam"])
@pytest.mark.parametrize("backend", ["numpy", "cython", "numba", "torch"])
def test_update(benchmark, backend, op, size, threads):
    if backend == "numpy" and threads > 1:
        pytest.skip("the NumPy reference has no threads")
    p, state, g = _state(op, size)
    want = _reference_step(op, p, state, g)
    restore = None
    if backend == "torch":
        torch = torch_or_skip()
        restore = pin_threads(threads)
        param, opt = _torch_setup(torch, op, p, state, g)
        opt.step()
        np.testing.assert_allclose(param.detach().numpy(), want[0], rtol=1e-6, atol=1e-6,
                                   err_msg=f"torch {op} step vs the reference")
        fn = opt.step
    else:
        mod = backend_or_skip(backend)
        if backend == "numba":
            restore = pin_threads(threads)
        kernel = getattr(mod, f"{op}_update")
        arrays = [p.copy(), *(s.copy() for s in state)]
        kernel(*arrays, g, *_scalars(op), threads)  # JIT compile / warm up, and the check
        for a, w in zip(arrays, want):
            np.testing.assert_array_equal(a, w, err_msg=f"{backend} {op} vs the reference")

        def fn():
            kernel(*arrays, g, *_scalars(op), threads)
    try:
        benchmark.group = f"optimizer {op} {size} threads{threads}"
        benchmark(fn)
        record(benchmark, op=op, backend=backend, shape=(size,), threads=threads, dtype=np.float32,
               norm="optimizer")
    finally:
        if restore:
            restore()
