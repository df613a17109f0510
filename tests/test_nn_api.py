"""The everyday nn API of issue 16 against PyTorch 2.13: leaky_relu, elu, silu, dropout2d, pad and their modules,
Softmax/LogSoftmax, ReLU(inplace=), register_buffer(persistent=), and cross_entropy/nll_loss with weight,
ignore_index, probability targets and (N, C, d1, ...) inputs. Values and gradients match torch; the
differentiable ones are gradchecked in float64."""
import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F
from minigrad import gradcheck
from minigrad.tensor import Tensor

torch = pytest.importorskip("torch")
tF = torch.nn.functional


def _pair(shape, seed=0, dtype=np.float64):
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return Tensor(x.copy(), requires_grad=True), torch.tensor(x, requires_grad=True)


def _compare(y, ty, xs, txs, tol=1e-10):
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=tol, atol=tol)
    g = np.random.default_rng(7).standard_normal(y.shape)
    (y * Tensor(g.astype(y.dtype))).sum().backward()
    (ty * torch.tensor(g, dtype=ty.dtype)).sum().backward()
    for x, tx in zip(xs, txs):
        np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=tol, atol=tol)


ACTS = {
    "leaky_relu": (lambda x: F.leaky_relu(x), lambda x: tF.leaky_relu(x)),
    "leaky_relu_0.2": (lambda x: F.leaky_relu(x, negative_slope=0.2), lambda x: tF.leaky_relu(x, 0.2)),
    "elu": (lambda x: F.elu(x), lambda x: tF.elu(x)),
    "elu_alpha": (lambda x: F.elu(x, alpha=0.5), lambda x: tF.elu(x, alpha=0.5)),
    "silu": (lambda x: F.silu(x), lambda x: tF.silu(x)),
}


@pytest.mark.parametrize("name", ACTS)
@pytest.mark.parametrize("shape", [(3, 4), (), (0, 2), (2, 3, 2)])
def test_activation_matches_torch(name, shape):
    f, tf = ACTS[name]
    x, tx = _pair(shape)
    _compare(f(x), tf(tx), [x], [tx])
    if np.prod(shape):
        gradcheck(f, [Tensor(x.data.copy(), requires_grad=True)])


@pytest.mark.parametrize("name", ACTS)
def test_activation_gradient_at_zero_and_large_input(name):
    f, tf = ACTS[name]
    v = np.array([0.0, -0.0, 800.0, -800.0, 1e-3])
    x, tx = Tensor(v.copy(), requires_grad=True), torch.tensor(v, requires_grad=True)
    _compare(f(x), tf(tx), [x], [tx])
    assert np.isfinite(x.grad).all()


def test_activation_float32_and_modules():
    x32, tx32 = _pair((4, 5), dtype=np.float32)
    for m, tm in [(nn.LeakyReLU(0.1), torch.nn.LeakyReLU(0.1)), (nn.ELU(alpha=2.0), torch.nn.ELU(alpha=2.0)),
                  (nn.SiLU(), torch.nn.SiLU()), (nn.ReLU(), torch.nn.ReLU()),
                  (nn.Softmax(dim=1), torch.nn.Softmax(dim=1)), (nn.LogSoftmax(dim=0), torch.nn.LogSoftmax(dim=0))]:
        x32.grad, tx32.grad = None, None
        y = m(x32)
        assert y.dtype == np.float32
        _compare(y, tm(tx32), [x32], [tx32], tol=1e-5)
        assert repr(m) == repr(tm).replace("inplace=False", "").replace("(, ", "(").replace(", )", ")")


def test_module_signatures_and_reprs():
    assert repr(nn.ReLU(True)) == "ReLU(inplace=True)" and repr(nn.ReLU()) == "ReLU()"
    assert repr(nn.LeakyReLU()) == "LeakyReLU(negative_slope=0.01)" and repr(nn.ELU()) == "ELU(alpha=1.0)"
    assert repr(nn.Dropout2d()) == repr(torch.nn.Dropout2d())
    assert repr(nn.Softmax(-1)) == repr(torch.nn.Softmax(-1))
    with pytest.raises(TypeError, match="inplace"):
        nn.ReLU(inplace="yes")


def test_relu_inplace_is_a_documented_no_op_and_keeps_the_fusion():
    x = mg.randn(3, 4)
    before = x.data.copy()
    y = nn.ReLU(inplace=True)(x)
    np.testing.assert_array_equal(x.data, before)  # the input is not modified
    np.testing.assert_array_equal(y.data, np.maximum(before, 0))
    assert "ignored" in nn.ReLU.__doc__ and nn.ReLU.is_plain_relu
    assert type(nn.ReLU(inplace=True)).__dict__.get("is_plain_relu")
    # Sequential still fuses BatchNorm + ReLU(inplace=True): same output as the unfused pair
    seq = nn.Sequential(nn.BatchNorm1d(4), nn.ReLU(inplace=True))
    x = mg.randn(8, 4)
    fused = seq(x).data
    seq.fuse = False
    np.testing.assert_allclose(fused, seq(x).data, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape,dim", [((3, 4), None), ((2, 3, 4), None), ((5,), None), ((2, 3, 4, 2), None),
                                       ((2, 3), -1)])
def test_softmax_modules_default_dim_as_torch(shape, dim):
    x, tx = _pair(shape)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _compare(nn.Softmax(dim)(x), torch.nn.Softmax(dim)(tx), [x], [tx])
        x.grad = tx.grad = None
        _compare(nn.LogSoftmax(dim)(x), torch.nn.LogSoftmax(dim)(tx), [x], [tx])


# ------------------------------------------------------------------- dropout2d

def test_dropout2d_zeroes_whole_channels_and_scales():
    x = Tensor(np.ones((64, 32, 3, 5)), requires_grad=True)
    y = F.dropout2d(x, p=0.25, training=True)
    planes = y.data.reshape(64, 32, -1)
    assert np.all((planes == 0).all(-1) | (planes == 1 / 0.75).all(-1))  # a channel is all kept or all dropped
    assert abs((planes[:, :, 0] == 0).mean() - 0.25) < 0.05
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, y.data)  # the gradient is the same mask
    assert F.dropout2d(x, 0.5, training=False) is x
    assert np.all(F.dropout2d(x, 1.0).data == 0)
    m = nn.Dropout2d(p=0.5)
    m.eval()
    assert m(x) is x
    y3 = F.dropout2d(Tensor(np.ones((16, 8, 10))), 0.5)  # 3-d: (N, C, L), as torch 2.13
    assert np.all((y3.data == 0).all(-1) | (y3.data == 2).all(-1))


def test_dropout2d_bad_input():
    with pytest.raises(ValueError, match="p must be"):
        F.dropout2d(mg.randn(2, 3, 4, 4), p=1.5)
    with pytest.raises(ValueError, match="3-d or 4-d"):
        F.dropout2d(mg.randn(2, 3), p=0.5)
    with pytest.raises(ValueError, match="p must be"):
        nn.Dropout2d(-0.1)


# ------------------------------------------------------------------- pad

PADS = [
    ((2, 3, 4, 5), (1, 2), "constant", None),
    ((2, 3, 4, 5), (1, 2, 3, 0), "constant", 1.5),
    ((2, 3, 4, 5), (1, 1, 2, 2, 1, 0), "constant", -2.0),
    ((2, 3, 4, 5), (-1, 2, 0, -2), "constant", 0.0),
    ((5,), (2, 3), "constant", None),
    ((2, 3, 5), (2, 4), "reflect", None),
    ((3, 5), (4, 1), "reflect", None),
    ((2, 3, 4, 5), (1, 3, 3, 2), "reflect", None),
    ((3, 4, 5), (1, 3, 3, 2), "reflect", None),
    ((1, 2, 3, 4, 5), (1, 2, 3, 1, 2, 0), "reflect", None),
    ((2, 3, 5), (2, 4), "replicate", None),
    ((2, 3, 4, 5), (1, 3, 0, 2), "replicate", None),
    ((2, 3, 4, 5), (0, 0, 0, 0), "replicate", None),
    ((1, 2, 3, 4, 5), (1, 2, 3, 1, 2, 0), "replicate", None),
    ((2, 3, 4, 5), (5, 5, 6, 6, 1, 1, 0, 1), "constant", None),
]


@pytest.mark.parametrize("shape,pad,mode,value", PADS)
def test_pad_matches_torch(shape, pad, mode, value):
    x, tx = _pair(shape)
    y = F.pad(x, pad, mode=mode, value=value)
    ty = tF.pad(tx, pad, mode=mode, value=value)
    assert y.shape == tuple(ty.shape)
    _compare(y, ty, [x], [tx])
    gradcheck(lambda a: F.pad(a, pad, mode, value), [Tensor(x.data.copy(), requires_grad=True)])


def test_pad_float32_keeps_dtype():
    x, tx = _pair((2, 3, 4), dtype=np.float32)
    for mode in ("constant", "reflect", "replicate"):
        y = F.pad(x, (1, 2), mode=mode)
        assert y.dtype == np.float32
        np.testing.assert_array_equal(y.data, tF.pad(tx, (1, 2), mode=mode).detach().numpy())


@pytest.mark.parametrize("call,exc,match", [
    (lambda x: F.pad(x, (1,)), RuntimeError, "divisible by 2"),
    (lambda x: F.pad(x, (1, 1), mode="circular"), NotImplementedError, "mode"),
    (lambda x: F.pad(x, (4, 0), mode="reflect"), RuntimeError, "less than"),
    (lambda x: F.pad(x, (1, 1, 1, 1, 1, 1), mode="reflect"), NotImplementedError, "last 1, 2 or 3"),
    (lambda x: F.pad(x, (1, 1, 1, 1, 1, 1, 1, 1, 1, 1)), ValueError, "dims"),
    (lambda x: F.pad(x, (1.5, 1)), TypeError, "tuple of ints"),
    (lambda x: F.pad(x, (-5, 0)), ValueError, "removes more"),
    (lambda x: F.pad(x, (-1, 0), mode="replicate"), ValueError, "non-negative"),
])
def test_pad_bad_input_raises_as_torch_class(call, exc, match):
    x = mg.randn(2, 3, 4)
    with pytest.raises(exc, match=match):
        call(x)


# ------------------------------------------------------------------- register_buffer

class _WithBuffers(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)
        self.register_buffer("kept", mg.ones(3))
        self.register_buffer("scratch", mg.zeros(3), persistent=False)


def test_non_persistent_buffers_are_left_out_of_state_dict():
    m = _WithBuffers()
    sd = m.state_dict()
    assert "kept" in sd and "scratch" not in sd
    assert [n for n, _ in m.named_buffers()] == ["kept", "scratch"]  # still a buffer
    m.double()
    assert m.scratch.dtype == np.float64
    m.load_state_dict(sd)  # strict: the non-persistent buffer is not expected either
    with pytest.raises(KeyError, match="scratch"):
        m.load_state_dict({**sd, "scratch": np.zeros(3)})
    # as torch: the same keys
    tm = torch.nn.Module()
    tm.register_buffer("kept", torch.ones(3))
    tm.register_buffer("scratch", torch.zeros(3), persistent=False)
    assert list(tm.state_dict()) == ["kept"]
    # re-registering as persistent puts it back
    m.register_buffer("scratch", mg.zeros(3), persistent=True)
    assert "scratch" in m.state_dict()


def test_register_buffer_bad_input():
    m = nn.Module()
    with pytest.raises(TypeError, match="buffer"):
        m.register_buffer("b", [1, 2])
    with pytest.raises(KeyError, match="'.'"):
        m.register_buffer("a.b", mg.ones(1))


# ------------------------------------------------------------------- cross_entropy / nll_loss

def _targets(shape, c, seed=1, ignore=None):
    t = np.random.default_rng(seed).integers(0, c, shape)
    if ignore is not None:
        t.reshape(-1)[::3] = ignore
    return t


CE_CASES = [
    # input shape, weight?, ignore_index (None: default, no ignored target), reduction, smoothing
    ((5, 4), False, None, "mean", 0.0),
    ((5, 4), True, None, "mean", 0.0),
    ((5, 4), True, 2, "mean", 0.0),
    ((6, 4), True, -100, "sum", 0.0),
    ((6, 4), True, -1, "none", 0.0),
    ((6, 4), False, -100, "mean", 0.0),
    ((6, 4), True, -100, "mean", 0.2),
    ((6, 4), False, 1, "none", 0.3),
    ((3, 4, 2, 5), True, -100, "mean", 0.0),
    ((3, 4, 2, 5), False, -100, "none", 0.1),
    ((3, 4, 7), True, 3, "sum", 0.25),
    ((4,), True, None, "none", 0.0),
    ((4,), False, None, "mean", 0.1),
]


def _ce_args(shape, weighted, ignore, seed=0):
    c = shape[1] if len(shape) > 1 else shape[0]
    tshape = shape[:1] + shape[2:] if len(shape) > 1 else ()
    ign = ignore if ignore is not None else -100
    t = _targets(tshape, c, ignore=ign if ignore is not None else None)
    w = np.random.default_rng(5).uniform(0.2, 2.0, c) if weighted else None
    return c, t, w, ign


@pytest.mark.parametrize("shape,weighted,ignore,reduction,smoothing", CE_CASES)
def test_cross_entropy_matches_torch(shape, weighted, ignore, reduction, smoothing):
    c, t, w, ign = _ce_args(shape, weighted, ignore)
    x, tx = _pair(shape)
    kw = dict(ignore_index=ign, reduction=reduction, label_smoothing=smoothing)
    y = F.cross_entropy(x, Tensor(t), weight=None if w is None else Tensor(w), **kw)
    ty = tF.cross_entropy(tx, torch.tensor(t), weight=None if w is None else torch.tensor(w), **kw)
    assert y.shape == tuple(ty.shape)
    _compare(y, ty, [x], [tx])
    gradcheck(lambda a: F.cross_entropy(a, Tensor(t), weight=None if w is None else Tensor(w), **kw),
              [Tensor(x.data.copy(), requires_grad=True)])
    # the module, float32
    x32, tx32 = _pair(shape, dtype=np.float32)
    m = nn.CrossEntropyLoss(weight=None if w is None else Tensor(w.astype(np.float32)), **kw)
    tm = torch.nn.CrossEntropyLoss(weight=None if w is None else torch.tensor(w, dtype=torch.float32), **kw)
    _compare(m(x32, Tensor(t)), tm(tx32, torch.tensor(t)), [x32], [tx32], tol=1e-5)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8])
def test_index_target_paths_agree(dtype):
    """The targets' host check has a short path when nothing is ignored (the usual case): it returns what the
    general path (``np.where(valid, t, 0)``) returns, as a new array (never the caller's), and refuses the same
    out-of-range values; an ignore_index inside [0, C) is ignored, not taken as a class."""
    from minigrad.nn.functional.loss import _index_target
    t = np.array([3, 0, 4, 1, 1, 2], dtype)
    for ignore in (-100, 2):  # nothing ignored (the short path) / two rows ignored (the general one)
        got, valid = _index_target("ce", (6, 5), (6,), 5, ignore, t)
        t64 = t.astype(np.int64)
        assert got.dtype == np.int64 and np.array_equal(valid, t64 != ignore)
        assert np.array_equal(got, np.where(t64 != ignore, t64, 0))
        assert not np.shares_memory(got, t)
    for bad in ([3, 0, 5, 1, 1, 2], [3, 0, 9, 1, 1, 2]):
        for ignore in (-100, 2):
            with pytest.raises(ValueError, match=r"target values must be in \[0, 5\)"):
                _index_target("ce", (6, 5), (6,), 5, ignore, np.array(bad, dtype))
    if np.dtype(dtype).kind == "i":
        with pytest.raises(ValueError, match=r"got range \[-1, 3\]"):
            _index_target("ce", (6, 5), (6,), 5, -100, np.array([3, 0, -1, 1, 1, 2], dtype))


@pytest.mark.parametrize("shape,weighted,ignore,reduction,smoothing", [c for c in CE_CASES if c[4] == 0.0])
def test_nll_loss_matches_torch(shape, weighted, ignore, reduction, smoothing):
    c, t, w, ign = _ce_args(shape, weighted, ignore)
    x, tx = _pair(shape)
    kw = dict(ignore_index=ign, reduction=reduction)
    y = F.nll_loss(x, Tensor(t), weight=None if w is None else Tensor(w), **kw)
    ty = tF.nll_loss(tx, torch.tensor(t), weight=None if w is None else torch.tensor(w), **kw)
    assert y.shape == tuple(ty.shape)
    _compare(y, ty, [x], [tx])
    gradcheck(lambda a: F.nll_loss(a, Tensor(t), weight=None if w is None else Tensor(w), **kw),
              [Tensor(x.data.copy(), requires_grad=True)])
    m = nn.NLLLoss(weight=None if w is None else Tensor(w), **kw)
    tm = torch.nn.NLLLoss(weight=None if w is None else torch.tensor(w), **kw)
    x.grad = tx.grad = None
    _compare(m(x, Tensor(t)), tm(tx, torch.tensor(t)), [x], [tx])


@pytest.mark.parametrize("shape", [(5, 4), (3, 4, 2, 3), (4,)])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_probability_targets_match_torch(shape, weighted, reduction, smoothing):
    cdim = 1 if len(shape) > 1 else 0
    x, tx = _pair(shape)
    q = np.random.default_rng(3).uniform(size=shape)
    q /= q.sum(axis=cdim, keepdims=True)
    tq, ttq = Tensor(q.copy(), requires_grad=True), torch.tensor(q, requires_grad=True)
    w = np.random.default_rng(5).uniform(0.2, 2.0, shape[cdim]) if weighted else None
    kw = dict(reduction=reduction, label_smoothing=smoothing)
    y = F.cross_entropy(x, tq, weight=None if w is None else Tensor(w), **kw)
    ty = tF.cross_entropy(tx, ttq, weight=None if w is None else torch.tensor(w), **kw)
    _compare(y, ty, [x, tq], [tx, ttq])
    gradcheck(lambda a, b: F.cross_entropy(a, b, weight=None if w is None else Tensor(w), **kw),
              [Tensor(x.data.copy(), requires_grad=True), Tensor(q.copy(), requires_grad=True)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("shape", [(60, 10), (3, 4, 2, 5), (4,)])
def test_cross_entropy_plain_case_matches_torch_and_the_general_path(shape, reduction, dtype):
    """No weight, no smoothing, no ignored target, a reduction (the fast path: a gather and a sum forward, one
    log_softmax_backward kernel call backward): the loss bit for bit the general path's (weight=ones takes it) and
    within rounding of torch's; the gradient within 4 ulps of its largest value of torch's (PyTorch's own
    formula, nll's -g/m at the targets then log_softmax's backward), on every backend; the double backward as
    the general path's."""
    c = shape[1] if len(shape) > 1 else shape[0]
    t = _targets(shape[:1] + shape[2:] if len(shape) > 1 else (), c)
    x = (np.random.default_rng(2).standard_normal(shape) * 4).astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    ty = tF.cross_entropy(tx, torch.tensor(t), reduction=reduction)
    ty.backward(torch.tensor(0.75, dtype=ty.dtype))
    eps = np.finfo(dtype).eps
    for name in mg.available_backends():
        with mg.kernels.using_backend(name):
            xm = Tensor(x.copy(), requires_grad=True)
            y = F.cross_entropy(xm, Tensor(t), reduction=reduction)
            y.backward(Tensor(np.asarray(0.75, dtype)))
            general = F.cross_entropy(Tensor(x.copy()), Tensor(t), reduction=reduction,
                                      weight=Tensor(np.ones(c, dtype)))
        assert y.dtype == dtype and y.data.tobytes() == general.data.tobytes(), name
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=8 * eps)
        g = tx.grad.numpy()
        np.testing.assert_allclose(xm.grad, g, rtol=0, atol=4 * eps * np.abs(g).max())
    x64 = x.astype(np.float64)
    gradcheck(lambda a: F.cross_entropy(a, Tensor(t), reduction=reduction), [Tensor(x64, requires_grad=True)])
    xa, xb = Tensor(x64.copy(), requires_grad=True), Tensor(x64.copy(), requires_grad=True)
    (ga,) = mg.autograd.grad(F.cross_entropy(xa, Tensor(t), reduction=reduction), [xa], create_graph=True)
    (gb,) = mg.autograd.grad(F.cross_entropy(xb, Tensor(t), reduction=reduction, weight=Tensor(np.ones(c))),
                             [xb], create_graph=True)
    (ga * ga).sum().backward()
    (gb * gb).sum().backward()
    np.testing.assert_allclose(xa.grad, xb.grad, rtol=1e-12, atol=1e-15)


def test_cross_entropy_every_target_ignored_is_nan_as_torch():
    t = np.full(4, -100)
    x, tx = _pair((4, 3))
    assert np.isnan(F.cross_entropy(x, Tensor(t)).item())
    assert np.isnan(tF.cross_entropy(tx, torch.tensor(t)).item())
    assert np.isnan(F.nll_loss(x, Tensor(t)).item())
    assert F.cross_entropy(x, Tensor(t), reduction="sum").item() == 0.0


@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_double_backward_with_weight_and_ignore(weighted):
    t = np.array([0, 2, -100, 1, 2])
    w = Tensor(np.array([0.5, 2.0, 1.5])) if weighted else None
    x, tx = _pair((5, 3))
    (g,) = mg.autograd.grad(F.cross_entropy(x, Tensor(t), weight=w, label_smoothing=0.1), [x], create_graph=True)
    (tg,) = torch.autograd.grad(tF.cross_entropy(tx, torch.tensor(t), weight=None if w is None else
                                                 torch.tensor(w.data), label_smoothing=0.1), [tx],
                                create_graph=True)
    np.testing.assert_allclose(g.data, tg.detach().numpy(), rtol=1e-10, atol=1e-12)
    (g * g).sum().backward()
    (tg * tg).sum().backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("call,exc,match", [
    (lambda x: F.cross_entropy(x, Tensor(np.array([0, 4, 1]))), ValueError, r"\[0, 4\)"),
    (lambda x: F.cross_entropy(x, Tensor(np.array([0, 1]))), ValueError, "target must have shape"),
    (lambda x: F.cross_entropy(x, Tensor(np.array([0.0, 1, 1]))), TypeError, "integer"),
    (lambda x: F.cross_entropy(x, Tensor(np.array([0, 1, 1])), weight=Tensor(np.ones(3))), ValueError, "weight"),
    (lambda x: F.cross_entropy(x, Tensor(np.array([0, 1, 1])), "sum"), TypeError, "keyword"),
    (lambda x: F.nll_loss(x, Tensor(np.array([0, 1, 1])), ignore_index=1.5), TypeError, "ignore_index"),
    (lambda x: F.cross_entropy(x, Tensor(np.array([0, 1, 1])), weight=mg.ones(4, requires_grad=True)),
     NotImplementedError, "weight"),
    (lambda x: nn.CrossEntropyLoss("mean"), TypeError, "keyword"),
])
def test_loss_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call(mg.randn(3, 4))


def test_legacy_reduction_arguments_as_torch():
    x, tx = _pair((4, 3))
    t = np.array([0, 1, 2, 1])
    for sa, red in [(None, False), (False, None), (True, True), (False, True)]:
        y = F.cross_entropy(x, Tensor(t), size_average=sa, reduce=red)
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ty = tF.cross_entropy(tx, torch.tensor(t), size_average=sa, reduce=red)
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12)


def test_loss_module_weight_is_a_buffer_as_torch():
    w = np.array([1.0, 2.0, 3.0])
    assert list(nn.CrossEntropyLoss(weight=Tensor(w)).state_dict()) == \
        list(torch.nn.CrossEntropyLoss(weight=torch.tensor(w)).state_dict()) == ["weight"]
    assert list(nn.NLLLoss().state_dict()) == list(torch.nn.NLLLoss().state_dict()) == []
