"""The conv family beyond conv2d: conv1d, conv_transpose2d, max_pool2d (dilation, ceil_mode, return_indices),
avg_pool2d (ceil_mode, divisor_override), adaptive avg/max pooling of any size, max_unpool2d, interpolate and their
modules. Each against torch 2.13 (values, indices and gradients for a random dy; float32 and float64) on every
backend where it reaches a kernel, gradchecked in float64, with empty batches and bad arguments."""
import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F
from conftest import BACKENDS
from minigrad.kernels.rules import pool_out_size

torch = pytest.importorskip("torch")
TF = torch.nn.functional
TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}
DTYPES = (np.float32, np.float64)


def _backend(name):
    if name not in mg.available_backends():
        pytest.skip(f"backend {name} not available")
    return mg.kernels.using_backend(name)


def _parity(ours, theirs, shapes, dtype, seed=0, indices=False):
    """ours(*Tensors) and theirs(*torch tensors) agree in value (and indices) and in every input's gradient."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s).astype(dtype) for s in shapes]
    xs = [mg.Tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, ty = ours(*xs), theirs(*ts)
    if indices:
        (y, i), (ty, ti) = y, ty
        assert i.dtype == np.int64
        np.testing.assert_array_equal(i.numpy(), ti.numpy())
    assert y.dtype == dtype and y.shape == tuple(ty.shape)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), **TOL[dtype])
    dy = rng.standard_normal(y.shape).astype(dtype)
    y.backward(dy)
    ty.backward(torch.tensor(dy))
    for x, t in zip(xs, ts):
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), **TOL[dtype])
    return y


def _gradcheck(fn, shapes, seed=1):
    rng = np.random.default_rng(seed)
    assert mg.gradcheck(fn, [mg.Tensor(rng.standard_normal(s), requires_grad=True) for s in shapes])


# ------------------------------------------------------------------ conv2d's paths

# (x shape, weight shape, stride, padding, dilation, groups, bias, chunk): every path of conv.py's conv2d, with
# CHUNK_BYTES set so that the batch splits into chunks of `chunk` samples (a short last one included)
CONV2D_PATHS = [
    ((5, 3, 8, 8), (4, 3, 3, 3), 1, 1, 1, 1, True, 1),        # a chunk per sample
    ((5, 4, 7, 6), (6, 2, 3, 2), (2, 1), (1, 0), (1, 2), 2, False, 2),  # chunks of 2, a last one of 1; groups
    ((5, 8, 4, 4), (4, 8, 3, 3), 1, 1, 1, 1, True, 3),        # L = 16 < Kg = 72: the batch-inner weight gradient
    ((3, 6, 5, 7), (4, 3, 1, 1), 1, 0, 1, 2, True, 1),        # 1x1: a GEMM on the input itself
    ((3, 4, 7, 6), (6, 4, 1, 1), 2, 0, 3, 1, False, 1),       # 1x1 strided: on the subsampled input
    ((2, 4, 5, 5), (3, 4, 1, 1), 2, 1, 1, 1, True, 1),        # 1x1 padded: the im2col path
    ((3, 4, 7, 6), (4, 2, 3, 2), 1, (2, 0), (1, 2), 2, True, 2),  # unit stride: dx as a conv of dy, padding (0, 2)
    ((2, 3, 5, 5), (4, 3, 3, 3), 1, 3, 1, 1, False, 1),       # unit stride, padding 3 > d*(k - 1): dx by col2im
    ((1, 3, 6, 6), (2, 3, 3, 3), 2, 1, 1, 1, True, 1),        # batch 1
    ((0, 3, 6, 6), (2, 3, 3, 3), 1, 1, 1, 1, True, 1),        # empty batch
]


def _chunk_bytes(monkeypatch, xshape, wshape, stride, padding, dilation, dtype, chunk):
    """Set conv.CHUNK_BYTES so that a chunk holds `chunk` samples of this convolution's columns."""
    from minigrad.kernels.rules import out_size
    from minigrad.nn.functional import conv
    O, Cg, kh, kw = wshape
    pair = lambda v: v if isinstance(v, tuple) else (v, v)  # noqa: E731
    L = np.prod([out_size(n, k, s, p, d) for n, k, s, p, d in zip(xshape[2:], (kh, kw), pair(stride), pair(padding),
                                                                    pair(dilation))])
    monkeypatch.setattr(conv, "CHUNK_BYTES", int(chunk * xshape[1] * kh * kw * L * np.dtype(dtype).itemsize))
    monkeypatch.setattr(conv, "get_num_threads", lambda: 1)  # NOTE: a chunk holds at least one sample per thread


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV2D_PATHS)
def test_conv2d_paths_match_torch(backend, dtype, case, monkeypatch):
    xs, ws, stride, padding, dilation, groups, bias, chunk = case
    _chunk_bytes(monkeypatch, xs, ws, stride, padding, dilation, dtype, chunk)
    shapes = [xs, ws] + ([(ws[0],)] if bias else [])
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    with _backend(backend):
        _parity(lambda *a: F.conv2d(*a, **kw), lambda *a: TF.conv2d(*a, **kw), shapes, dtype)


@pytest.mark.parametrize("case", CONV2D_PATHS[:5])
def test_conv2d_paths_double_backward_match_torch(case, monkeypatch):
    """The double backward (conv_grad.py) runs the same chunked array functions: second derivatives as torch's."""
    xs, ws, stride, padding, dilation, groups, bias, chunk = case
    _chunk_bytes(monkeypatch, xs, ws, stride, padding, dilation, np.float64, chunk)
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    got = []
    for lib, conv, grad, T in ((mg, F.conv2d, mg.autograd.grad, lambda a: mg.Tensor(a, requires_grad=True)),
                               (torch, TF.conv2d, torch.autograd.grad, lambda a: torch.tensor(a, requires_grad=True))):
        tx, tw = T(x), T(w)
        y = conv(tx, tw, **kw)
        gx, gw = grad((y * y).sum(), [tx, tw], create_graph=True)
        gx2, gw2 = grad((gx * gx).sum() + (gw * gw * gw).sum(), [tx, tw])
        got.append([np.asarray(v.detach().numpy() if lib is torch else v.numpy()) for v in (gx, gw, gx2, gw2)])
    for a, b in zip(*got):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)


# ------------------------------------------------------------------ conv1d

CONV1D = [  # (x shape, weight shape, stride, padding, dilation, groups, bias)
    ((2, 4, 11), (6, 2, 3), 2, 1, 2, 2, True), ((3, 3, 7), (5, 3, 1), 1, 0, 1, 1, False),
    ((1, 2, 9), (4, 2, 4), 3, 2, 1, 1, True), ((0, 2, 9), (4, 2, 3), 1, 1, 1, 1, True),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV1D)
def test_conv1d_matches_torch(backend, dtype, case):
    xs, ws, s, p, d, g, bias = case
    shapes = [xs, ws] + ([(ws[0],)] if bias else [])
    with _backend(backend):
        _parity(lambda *a: F.conv1d(*a[:2], a[2] if bias else None, s, p, d, g),
                lambda *a: TF.conv1d(*a[:2], a[2] if bias else None, s, p, d, g), shapes, dtype)


def test_conv1d_unbatched_gradcheck_and_module():
    _parity(lambda x, w: F.conv1d(x, w, padding=1), lambda x, w: TF.conv1d(x, w, padding=1), [(3, 8), (2, 3, 3)],
            np.float64)
    _gradcheck(lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=(1,), dilation=2), [(2, 2, 9), (3, 2, 3), (3,)])
    m, tm = nn.Conv1d(4, 6, 3, stride=2, padding=1, groups=2), torch.nn.Conv1d(4, 6, 3, stride=2, padding=1, groups=2)
    assert m.weight.shape == tuple(tm.weight.shape)
    tm.load_state_dict({k: torch.tensor(v) for k, v in m.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((2, 4, 10)).astype(np.float32)
    np.testing.assert_allclose(m(mg.Tensor(x)).numpy(), tm(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ conv_transpose2d

CONVT = [  # (x shape, weight shape, stride, padding, output_padding, groups, dilation, bias)
    ((2, 4, 5, 6), (4, 3, 3, 2), 2, 1, 1, 2, 1, True),
    ((1, 3, 4, 3), (3, 2, 3, 3), (2, 3), (0, 1), (1, 2), 1, 1, False),
    ((2, 4, 5, 6), (4, 3, 3, 2), (1, 2), (0, 1), (2, 1), 1, (3, 2), True),  # output_padding >= stride (< dilation)
    ((2, 2, 3, 3), (2, 1, 1, 1), 1, 0, 0, 2, 1, True), ((2, 3, 5, 5), (3, 2, 5, 5), 1, 4, 0, 1, 1, True),
    ((0, 2, 3, 3), (2, 3, 2, 2), 2, 0, 0, 1, 1, True),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONVT)
def test_conv_transpose2d_matches_torch(backend, dtype, case):
    xs, ws, s, p, op, g, d, bias = case
    O = ws[1] * g
    shapes = [xs, ws] + ([(O,)] if bias else [])
    with _backend(backend):
        y = _parity(lambda *a: F.conv_transpose2d(*a[:2], a[2] if bias else None, s, p, op, g, d),
                    lambda *a: TF.conv_transpose2d(*a[:2], a[2] if bias else None, s, p, op, g, d), shapes, dtype)
    assert y.shape[1] == O


def test_conv_transpose2d_is_conv2d_adjoint_and_gradchecks():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 4, 7, 8)), rng.standard_normal((6, 2, 3, 3))
    y = F.conv2d(mg.Tensor(x), mg.Tensor(w), stride=2, padding=1, groups=2)
    u = rng.standard_normal(y.shape)
    xt = F.conv_transpose2d(mg.Tensor(u), mg.Tensor(w), stride=2, padding=1, output_padding=(0, 1), groups=2)
    assert xt.shape == x.shape  # <conv2d(x), u> == <x, conv_transpose2d(u)>
    np.testing.assert_allclose((y.numpy() * u).sum(), (x * xt.numpy()).sum(), rtol=1e-12)
    _gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1, dilation=2),
               [(2, 2, 3, 4), (2, 3, 2, 3), (3,)])


def test_conv_transpose2d_module_matches_torch():
    m = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2, dilation=1)
    tm = torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
    assert m.weight.shape == tuple(tm.weight.shape)
    bound = 1 / np.sqrt(3 * 9)  # fan_in from weight's dim 1, as PyTorch
    assert np.abs(m.weight.numpy()).max() <= bound and np.abs(m.bias.numpy()).max() <= bound
    tm.load_state_dict({k: torch.tensor(v) for k, v in m.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((2, 4, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(m(mg.Tensor(x)).numpy(), tm(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ max_pool2d, avg_pool2d

MAXPOOL = [  # (x shape, kernel, stride, padding, dilation, ceil_mode)
    ((2, 3, 8, 9), 3, 2, 1, 1, True), ((2, 3, 7, 9), 2, None, 0, 1, True),
    ((1, 2, 10, 7), (3, 2), (2, 3), (1, 1), 1, True), ((2, 3, 8, 9), 3, 2, 1, 2, True),
    ((2, 2, 9, 8), (2, 3), 1, (1, 0), (2, 3), False), ((1, 1, 5, 5), 6, 6, 0, 1, True),
    ((0, 3, 8, 8), 2, 2, 0, 1, True), ((2, 3, 6, 6), 2, 2, 0, 1, False),
    ((1, 2, 5, 5), 2, 2, 1, 1, True),  # ceil_mode's last window would start in the right padding: dropped
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", MAXPOOL)
def test_max_pool2d_matches_torch(backend, dtype, case):
    xs, k, s, p, d, ceil = case
    with _backend(backend):
        _parity(lambda x: F.max_pool2d(x, k, s, p, d, ceil, return_indices=True),
                lambda x: TF.max_pool2d(x, k, s, p, d, ceil, return_indices=True), [xs], dtype, indices=True)
        m, tm = nn.MaxPool2d(k, s, p, d, ceil_mode=ceil), torch.nn.MaxPool2d(k, s, p, d, ceil_mode=ceil)
        _parity(m, tm, [xs], dtype)


def test_max_pool2d_nan_ties_and_gradcheck():
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 1, 1] = x[0, 0, 3, 3] = np.nan
    for d, ceil in ((1, True), (2, True), (2, False)):
        y, i = F.max_pool2d(mg.Tensor(x), 2, 2, 1, d, ceil, True)
        ty, ti = TF.max_pool2d(torch.tensor(x), 2, 2, 1, d, ceil, True)
        np.testing.assert_array_equal(i.numpy(), ti.numpy())
        np.testing.assert_array_equal(y.numpy(), ty.numpy())
    rng = np.random.default_rng(2)  # distinct values: the finite differences do not cross a tie
    x = mg.Tensor(rng.permutation(2 * 3 * 7 * 8).reshape(2, 3, 7, 8) / 10.0, requires_grad=True)
    assert mg.gradcheck(lambda x: F.max_pool2d(x, 3, 2, 1, 2, True), [x])
    assert mg.gradcheck(lambda x: F.max_pool2d(x, 3, 2, 1, 1, True), [x])


AVGPOOL = [  # (x shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
    ((2, 3, 8, 9), 3, 2, 1, True, True, None), ((2, 3, 8, 9), 3, 2, 1, True, False, None),
    ((1, 2, 7, 10), (3, 2), (2, 3), (1, 1), True, True, None), ((2, 3, 8, 9), (3, 2), (2, 1), 1, False, True, 5),
    ((2, 3, 7, 7), 2, None, 0, True, False, -3), ((0, 3, 8, 8), 3, 2, 1, True, True, None),
    ((2, 3, 9, 8), 3, 2, 1, False, False, None), ((1, 2, 5, 5), 2, 2, 1, True, True, None),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", AVGPOOL)
def test_avg_pool2d_matches_torch(dtype, case):
    xs, k, s, p, ceil, cip, div = case
    _parity(lambda x: F.avg_pool2d(x, k, s, p, ceil, cip, div), lambda x: TF.avg_pool2d(x, k, s, p, ceil, cip, div),
            [xs], dtype)
    _parity(nn.AvgPool2d(k, s, p, ceil, cip, div), torch.nn.AvgPool2d(k, s, p, ceil, cip, div), [xs], dtype)


def test_avg_pool2d_gradcheck():
    _gradcheck(lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False), [(2, 2, 8, 7)])
    _gradcheck(lambda x: F.avg_pool2d(x, (2, 3), 1, (1, 1), divisor_override=4), [(1, 2, 5, 6)])


@pytest.mark.parametrize("size,k,s,p,d", [(8, 3, 2, 1, 1), (7, 2, 2, 0, 1), (5, 6, 6, 0, 1), (9, 3, 2, 1, 2),
                                          (10, 3, 3, 1, 1), (6, 4, 3, 2, 1), (1, 1, 1, 0, 1), (5, 2, 2, 1, 1),
                                          (9, 2, 4, 1, 3)])
def test_ceil_mode_rule_matches_torch(size, k, s, p, d):
    # the last window starts inside the input or the left padding; torch gives the size of the output
    t = TF.max_pool2d(torch.zeros(1, 1, size, 1), (k, 1), (s, 1), (p, 0), (d, 1), ceil_mode=True)
    assert pool_out_size("f", size, k, s, p, d, True) == t.shape[2]


# ------------------------------------------------------------------ adaptive pooling, max_unpool2d

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,size", [((2, 3, 7, 9), (3, 5)), ((2, 3, 7, 9), (10, None)), ((1, 2, 5, 5), 5),
                                        ((2, 2, 6, 8), (4, 3)), ((0, 2, 5, 5), 3), ((1, 1, 1, 1), (2, 3))])
def test_adaptive_pooling_matches_torch(backend, dtype, shape, size):
    with _backend(backend):
        _parity(lambda x: F.adaptive_avg_pool2d(x, size), lambda x: TF.adaptive_avg_pool2d(x, size), [shape], dtype)
        _parity(lambda x: F.adaptive_max_pool2d(x, size, True), lambda x: TF.adaptive_max_pool2d(x, size, True),
                [shape], dtype, indices=True)
        _parity(nn.AdaptiveMaxPool2d(size), torch.nn.AdaptiveMaxPool2d(size), [shape], dtype)
        _parity(nn.AdaptiveAvgPool2d(size), torch.nn.AdaptiveAvgPool2d(size), [shape], dtype)


def test_adaptive_pooling_gradcheck():
    _gradcheck(lambda x: F.adaptive_avg_pool2d(x, (3, 4)), [(2, 2, 7, 5)])
    x = mg.Tensor(np.random.default_rng(3).permutation(70).reshape(1, 2, 7, 5) / 7.0, requires_grad=True)
    assert mg.gradcheck(lambda x: F.adaptive_max_pool2d(x, (3, 4)), [x])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k,s,p,out", [(2, 2, 0, (8, 9)), (3, 2, 1, (8, 9)), (3, 1, 1, None), (2, 2, 0, (1, 1, 9, 9))])
def test_max_unpool2d_matches_torch(backend, dtype, k, s, p, out):
    def run(f, pool, unpool):
        def g(x):
            y, i = pool(x, k, s, p, return_indices=True)
            return unpool(y, i, k, s, p, out)
        return g
    with _backend(backend):
        _parity(run(F, F.max_pool2d, F.max_unpool2d), run(TF, TF.max_pool2d, TF.max_unpool2d), [(2, 3, 8, 9)], dtype)
    x = mg.Tensor(np.random.default_rng(0).standard_normal((1, 2, 4, 4)))
    y, i = nn.MaxPool2d(2, return_indices=True)(x)
    z = nn.MaxUnpool2d(2)(y, i)
    assert z.shape == (1, 2, 4, 4) and np.array_equal(np.sort(z.numpy()[z.numpy() != 0]), np.sort(y.numpy().ravel()))
    _gradcheck(lambda v: F.max_unpool2d(v, mg.Tensor(np.array([[[[0, 3], [9, 15]]]])), 2), [(1, 1, 2, 2)])


# ------------------------------------------------------------------ interpolate, Upsample

INTERP = [  # (shape, kwargs)
    ((2, 3, 4, 9), dict(size=(7, 5))), ((2, 3, 4, 9), dict(scale_factor=1.7)), ((2, 3, 5, 6), dict(scale_factor=2)),
    ((2, 3, 6, 6), dict(scale_factor=(0.5, 3))), ((2, 3, 5), dict(scale_factor=3)), ((2, 3, 7), dict(size=4)),
    ((2, 3, 4, 9), dict(size=(7, 5), mode="bilinear")), ((2, 3, 4, 9), dict(size=(7, 5), mode="bilinear",
                                                                            align_corners=True)),
    ((2, 3, 4, 9), dict(scale_factor=(2.5, 0.6), mode="bilinear", align_corners=True)),
    ((2, 3, 4, 9), dict(scale_factor=(2.5, 0.6), mode="bilinear")),
    ((2, 3, 5, 5), dict(scale_factor=1.3, mode="bilinear", recompute_scale_factor=True)),
    ((1, 1, 1, 1), dict(size=(3, 2), mode="bilinear")),
    ((1, 2, 3, 4), dict(size=1, mode="bilinear", align_corners=True)),
    ((2, 3, 4, 9), dict(scale_factor=1.7, mode="nearest-exact")), ((0, 3, 4, 4), dict(scale_factor=2)),
    ((2, 3, 4, 4), dict(size=(4, 4), mode="bilinear")),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,kw", INTERP)
def test_interpolate_matches_torch(dtype, shape, kw):
    _parity(lambda x: F.interpolate(x, **kw), lambda x: TF.interpolate(x, **kw), [shape], dtype)
    _parity(nn.Upsample(**kw), torch.nn.Upsample(**kw), [shape], dtype)


def test_interpolate_gradcheck():
    _gradcheck(lambda x: F.interpolate(x, size=(5, 7), mode="bilinear"), [(1, 2, 3, 4)])
    _gradcheck(lambda x: F.interpolate(x, scale_factor=(1.5, 0.7), mode="bilinear", align_corners=True), [(1, 2, 3, 4)])
    _gradcheck(lambda x: F.interpolate(x, scale_factor=2.5), [(1, 2, 3, 4)])


# ------------------------------------------------------------------ bad arguments

X = mg.Tensor(np.zeros((1, 2, 5, 5), np.float32))
W1, W2 = mg.Tensor(np.zeros((3, 2, 3), np.float32)), mg.Tensor(np.zeros((2, 3, 3, 3), np.float32))
BAD = [
    (lambda: F.max_pool2d(X, 3, padding=2), ValueError, "padding .* at most half"),
    (lambda: F.max_pool2d(X, 2, dilation=0), ValueError, "dilation"),
    (lambda: F.max_pool2d(X, 2, stride=0), ValueError, "stride"),
    (lambda: F.max_pool2d(X, 6), ValueError, "too small"),
    (lambda: F.max_pool2d(mg.Tensor(np.zeros((1, 1, 1, 1))), 2, 2, 1, 3, True), ValueError, "padding only"),
    (lambda: F.avg_pool2d(X, 2, divisor_override=0), ValueError, "divisor_override"),
    (lambda: F.avg_pool2d(X, 3, padding=2, ceil_mode=True), ValueError, "padding .* at most half"),
    (lambda: F.adaptive_max_pool2d(X, 0), ValueError, "output_size"),
    (lambda: F.adaptive_avg_pool2d(X, (2, -1)), ValueError, "output_size"),
    (lambda: F.adaptive_avg_pool2d(X, 2**62), ValueError, "output"),
    (lambda: F.conv1d(X, W1), ValueError, "conv1d: input must have"),
    (lambda: F.conv1d(mg.Tensor(np.zeros((1, 2, 5), np.float32)), W1, stride=0), ValueError, "stride"),
    (lambda: F.conv1d(mg.Tensor(np.zeros((1, 4, 5), np.float32)), W1), ValueError, "channels"),
    (lambda: F.conv1d(mg.Tensor(np.zeros((1, 2, 2), np.float32)), W1), ValueError, "too small"),
    (lambda: F.conv1d(mg.Tensor(np.zeros((1, 2, 5), np.float32)), W1, groups=2), ValueError, "channels"),
    (lambda: F.conv_transpose2d(X, W2, stride=2, output_padding=2), ValueError, "output_padding"),
    (lambda: F.conv_transpose2d(X, W2, padding=5), ValueError, "padding"),
    (lambda: F.conv_transpose2d(X, W2, groups=3), ValueError, "groups"),
    (lambda: F.conv_transpose2d(X, W2, mg.Tensor(np.zeros(2, np.float32))), ValueError, "bias"),
    (lambda: F.conv_transpose2d(X, mg.Tensor(np.zeros((3, 3, 3, 3), np.float32))), ValueError, "channels"),
    (lambda: F.conv_transpose2d(X, mg.Tensor(np.zeros((2, 3, 3, 3)))), TypeError, "dtype"),
    (lambda: F.interpolate(X, size=3, scale_factor=2), ValueError, "only one of size or scale_factor"),
    (lambda: F.interpolate(X), ValueError, "either size or scale_factor"),
    (lambda: F.interpolate(X, scale_factor=2, align_corners=True), ValueError, "align_corners"),
    (lambda: F.interpolate(mg.Tensor(np.zeros((1, 2, 5), np.float32)), scale_factor=2, mode="bilinear"),
     NotImplementedError, "4-d"),
    (lambda: F.interpolate(X, scale_factor=2, mode="bicubic"), NotImplementedError, "mode"),
    (lambda: F.interpolate(X, scale_factor=0.1), ValueError, "scale_factor"),
    (lambda: F.interpolate(X, size=(2, 0)), ValueError, "size"),
    (lambda: F.interpolate(X, scale_factor=2, antialias=True), NotImplementedError, "antialias"),
    (lambda: F.max_unpool2d(X, mg.Tensor(np.full((1, 2, 5, 5), 100)), 2), IndexError, "indices"),
    (lambda: F.max_unpool2d(X, mg.Tensor(np.zeros((1, 2, 5, 5), np.int32)), 2), ValueError, "indices"),
    (lambda: F.max_unpool2d(X, mg.Tensor(np.zeros((1, 2, 5, 5), np.int64)), 2, output_size=(20, 10)), ValueError,
     "output_size"),
    (lambda: nn.ConvTranspose2d(2, 3, 3, stride=1, output_padding=1), ValueError, "output_padding"),
    (lambda: nn.Conv1d(3, 4, (3, 3)), ValueError, "kernel_size"),
]


@pytest.mark.parametrize("call,exc,msg", BAD)
def test_bad_arguments_name_the_argument(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


def test_ceil_mode_shapes_reach_every_backend_kernel():
    """The contract accepts the ceil_mode size (the last window cut by the input's end) and no other; Cython's
    unrolled 2x2 path then reads inside the input only (the float32 parity above compares it with torch)."""
    x = np.arange(2 * 7 * 7, dtype=np.float64).reshape(1, 2, 7, 7)
    for name in mg.available_backends():
        k = mg.kernels.load(name)
        y, a = np.empty((1, 2, 4, 4)), np.empty((1, 2, 4, 4), np.int64)
        k.max_pool2d_forward(y, a, x, 2, 2, (2, 2), (0, 0))
        np.testing.assert_array_equal(y[0, 0, 3], [43, 45, 47, 48])  # the last row's windows: one row
        with pytest.raises(ValueError, match="spatial shape"):
            k.max_pool2d_forward(np.empty((1, 2, 5, 4)), np.empty((1, 2, 5, 4), np.int64), x, 2, 2, (2, 2), (0, 0))
