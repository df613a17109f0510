"""Batch Renorm's backward in the kernel's call: ``batch_norm_backward(..., r=, d=)`` on every backend against the
reference, against the composition it replaced (weight*r before the kernel, dweight = r*sum(dy*xhat) + d*sum(dy)
after it, in NumPy) bit for bit, its contract, and the node's one call."""
import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from conftest import BACKENDS, DTYPES, alloc_outputs
from minigrad import kernels
from minigrad.kernels import reference

TOL = {np.float32: 1e-5, np.float64: 1e-10}
EPS = 1e-5
# (N, C, S): the benchmark's shapes, S = 1 (BatchNorm1d), small S, odd sizes, one channel
SHAPES = [(16, 32, 64), (32, 64, 256), (7, 5, 1), (3, 5, 7), (6, 40, 3), (2, 1, 1)]


def _inputs(shape, dtype, kind="plain"):
    """x, dy, weight and the forward's mean, rstd, r, d (reference.batch_renorm_forward with running statistics
    that clip r and d both ways on some channels and not on others); ``kind``: plain, large mean, tiny variance."""
    rng = np.random.default_rng(3)
    N, C, S = shape
    x = rng.standard_normal(shape)
    if kind == "large mean":
        x = x * 1e-3 + 1e4
    elif kind == "tiny variance":
        x = x * 1e-6 + 0.5
    x = x.astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    weight, bias = (1 + 0.5 * rng.standard_normal(C)).astype(dtype), (0.5 * rng.standard_normal(C)).astype(dtype)
    sd = float(x.astype(np.float64).std())
    running_mean = (x.astype(np.float64).mean() + sd * rng.uniform(-2, 2, C)).astype(dtype)
    running_var = (sd * sd * np.exp(rng.uniform(-2, 2, C))).astype(dtype)
    outs = alloc_outputs("batch_renorm_forward", dtype, N=N, C=C, S=S)
    reference.batch_renorm_forward(*outs, x, weight, bias, running_mean, running_var, 1.5, 0.5, EPS)
    _, mean, rstd, r, d = outs
    return x, dy, weight, mean, rstd, r, d


def _backward(fn, x, dy, weight, mean, rstd, *args, **options):
    N, C, S = x.shape
    dx, dweight, dbias = alloc_outputs("batch_norm_backward", x.dtype, N=N, C=C, S=S)
    fn(dx, dweight, dbias, dy, x, mean, rstd, weight, *args, **options)
    return dx, dweight, dbias


def _composed(fn, x, dy, weight, mean, rstd, r, d, *args):
    """The composition the keywords replaced (the node's before session 37), through ``fn`` without them."""
    dx, dweight, dbias = _backward(fn, x, dy, (weight * r).astype(x.dtype), mean, rstd, *args)
    return dx, (r * dweight + d * dbias).astype(x.dtype), dbias


@pytest.mark.parametrize("kind", ["plain", "large mean", "tiny variance"])
@pytest.mark.parametrize("shape", SHAPES, ids=["x".join(map(str, s)) for s in SHAPES])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_against_reference(name, dtype, shape, kind):
    """Every backend's r, d path (the checked call) against the reference's, which is written from the paper's
    backward (r, d constants: batch norm's with w*r; dweight = sum(dy*(xhat*r + d))); r and d clip both ways."""
    k = kernels.load(name)
    x, dy, weight, mean, rstd, r, d = _inputs(shape, dtype, kind)
    if shape[1] >= 32 and kind == "plain":  # the data reach both clips and the inside
        assert (r == 1.5).any() and (r == 1 / 1.5).any() and ((r > 1 / 1.5) & (r < 1.5)).any()
        assert (d == 0.5).any() and (d == -0.5).any() and (np.abs(d) < 0.5).any()
    got = _backward(k.batch_norm_backward, x, dy, weight, mean, rstd, r=r, d=d)
    want = _backward(reference.batch_norm_backward, x, dy, weight, mean, rstd, r=r, d=d)
    for what, g, w in zip(("dx", "dweight", "dbias"), got, want):
        np.testing.assert_allclose(g, w, rtol=TOL[dtype], atol=TOL[dtype] * max(np.abs(w).max(), 1.0), err_msg=what)
    # the reference from the paper's equations in float64: dweight = sum(dy*(xhat*r + d)) over N and S
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    xhat = (x64 - mean[:, None]) * rstd[:, None]
    np.testing.assert_allclose(got[1], (dy64 * (xhat * r[:, None] + d[:, None])).sum(axis=(0, 2)),
                               rtol=TOL[dtype] * 10, atol=TOL[dtype] * 10 * max(np.abs(got[1]).max(), 1.0))


@pytest.mark.parametrize("shape", SHAPES, ids=["x".join(map(str, s)) for s in SHAPES])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_same_bits_as_the_composition(name, dtype, shape):
    """The raw kernel with r, d against the same backend's composition without them, byte for byte, at 1 and 2
    threads (the NumPy reference: the same functions, so the same bits too)."""
    module = kernels.load(name).module
    x, dy, weight, mean, rstd, r, d = _inputs(shape, dtype)
    if dy.size > 3:  # edge values: the channel of dy.flat[0] gives inf and NaN sums, its dx NaN
        dy.reshape(-1)[:3] = [np.inf, -0.0, np.nan]
    for n_threads in (1, 2):
        with np.errstate(all="ignore"):
            got = _backward(module.batch_norm_backward, x, dy, weight, mean, rstd, n_threads, r=r, d=d)
            want = _composed(module.batch_norm_backward, x, dy, weight, mean, rstd, r, d, n_threads)
        for what, g, w in zip(("dx", "dweight", "dbias"), got, want):
            assert g.tobytes() == w.tobytes(), f"{what}, {n_threads} threads"


@pytest.mark.parametrize("name", BACKENDS)
def test_without_r_and_d_is_batch_norm(name):
    """r=None, d=None is the plain call, byte for byte; r = 1, d = 0 gives batch norm's gradients."""
    k = kernels.load(name)
    x, dy, weight, mean, rstd, r, d = _inputs((6, 40, 3), np.float32)
    plain = _backward(k.batch_norm_backward, x, dy, weight, mean, rstd)
    for got in (_backward(k.batch_norm_backward, x, dy, weight, mean, rstd, r=None, d=None),
                _backward(k.batch_norm_backward, x, dy, weight, mean, rstd, r=np.ones(40), d=np.zeros(40))):
        for what, g, w in zip(("dx", "dweight", "dbias"), got, plain):
            assert g.tobytes() == w.tobytes(), what


@pytest.mark.parametrize("name", BACKENDS)
def test_contract(name):
    """r and d: both or neither, (C,) float64 C-contiguous; the errors name the argument. The raw function refuses
    one without the other too (it is called unchecked by the node)."""
    k = kernels.load(name)
    x, dy, weight, mean, rstd, r, d = _inputs((4, 3, 5), np.float32)
    call = lambda **kw: _backward(k.batch_norm_backward, x, dy, weight, mean, rstd, **kw)  # noqa: E731
    with pytest.raises(ValueError, match="r and d must be given together"):
        call(r=r)
    with pytest.raises(ValueError, match="r and d must be given together"):
        call(d=d)
    with pytest.raises(TypeError, match="'r' must have dtype float64"):
        call(r=r.astype(np.float32), d=d)
    with pytest.raises(ValueError, match=r"'d' must have shape \(C\) = \(3,\)"):
        call(r=r, d=np.zeros(4))
    with pytest.raises(ValueError, match="'d' must be C-contiguous"):
        call(r=r, d=np.zeros(6)[::2])
    with pytest.raises(TypeError, match="'r' must be a numpy.ndarray"):
        call(r=[1.0, 1.0, 1.0], d=d)
    with pytest.raises(TypeError, match="unexpected keyword argument 'q'"):
        call(r=r, d=d, q=d)
    with pytest.raises(ValueError, match="r and d must be given together"):
        _backward(k.module.batch_norm_backward, x, dy, weight, mean, rstd, 1, r=r)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_node_makes_one_call_with_r_and_d(name, dtype, monkeypatch):
    """Batch Renorm's backward node: exactly one kernel call, batch_norm_backward with the forward's r and d and
    the weight itself; its gradients are that call's."""
    module = kernels.load(name).module
    raw, calls = module.batch_norm_backward, []

    def counted(*args, **options):
        calls.append(options)
        return raw(*args, **options)
    rng = np.random.default_rng(0)
    x = mg.Tensor(rng.standard_normal((6, 3, 2, 5)).astype(dtype) * 3, requires_grad=True)
    w = mg.Tensor((1 + rng.random(3)).astype(dtype), requires_grad=True)
    b = mg.Tensor(rng.random(3).astype(dtype), requires_grad=True)
    with kernels.using_backend(name):
        y = F.batch_renorm(x, mg.Tensor(np.zeros(3, dtype)), mg.Tensor(np.ones(3, dtype)), w, b, True, 0.1, EPS,
                           1.5, 0.5)
        node = y._ctx
        monkeypatch.setattr(module, "batch_norm_backward", counted)
        y.backward(mg.Tensor(rng.standard_normal(y.shape).astype(dtype)))
    assert len(calls) == 1 and calls[0]["r"] is node.r and calls[0]["d"] is node.d
