"""F.batch_norm_relu against the unfused pair (F.batch_norm then F.relu) on every backend and against PyTorch,
and nn.Sequential's automatic fusion of a BatchNorm followed by a ReLU; F.filter_response_norm_tlu against
F.tlu(F.filter_response_norm(...)) and the same fusion of a FilterResponseNorm2d followed by a TLU."""
import numpy as np
import pytest
import torch

import minigrad as mg
from conftest import BACKENDS, DTYPES
from minigrad import Tensor, nn
from minigrad.nn import functional as F

TOL = {np.float32: 2e-5, np.float64: 1e-12}
SHAPES = [(8, 6), (4, 5, 7), (8, 6, 5, 5), (2, 3, 2, 3, 4)]


def run(fn, x, dy, w, b, rm, rv, training, momentum=0.1):
    xt = Tensor(x, requires_grad=True)
    wt = None if w is None else Tensor(w, requires_grad=True)
    bt = None if b is None else Tensor(b, requires_grad=True)
    rmt = None if rm is None else Tensor(rm.copy())
    rvt = None if rv is None else Tensor(rv.copy())
    y = fn(xt, rmt, rvt, wt, bt, training, momentum)
    (y * Tensor(dy)).sum().backward()
    return [y.data, xt.grad.data] + [t.grad.data for t in (wt, bt) if t is not None] + \
        [t.data for t in (rmt, rvt) if t is not None]


def unfused(x, rm, rv, w, b, training, momentum):
    return F.relu(F.batch_norm(x, rm, rv, w, b, training, momentum))


def data(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = (0.3 + rng.standard_normal(shape)).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    w, b = (1 + 0.3 * rng.standard_normal(c)).astype(dtype), (0.3 * rng.standard_normal(c)).astype(dtype)
    rm, rv = (0.2 * rng.standard_normal(c)).astype(dtype), (1 + rng.random(c)).astype(dtype)
    return x, dy, w, b, rm, rv


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_batch_norm_relu_equals_unfused(name, dtype, shape, training, affine):
    x, dy, w, b, rm, rv = data(shape, dtype)
    if not affine:
        w = b = None
    with mg.using_backend(name):
        got = run(F.batch_norm_relu, x, dy, w, b, rm, rv, training)
        want = run(unfused, x, dy, w, b, rm, rv, training)
    assert len(got) == len(want)
    for i, (g, r) in enumerate(zip(got, want)):
        scale = max(1.0, float(np.abs(r).max()))
        np.testing.assert_allclose(g, r, rtol=TOL[dtype], atol=TOL[dtype] * scale, err_msg=f"output {i}")
    if not training and name != "numpy":  # eval: y and dx bit for bit (see minigrad/nn/functional/fused.py)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("name", BACKENDS)
def test_batch_norm_relu_against_torch(name, training):
    x, dy, w, b, rm, rv = data((8, 6, 5, 5), np.float64, seed=1)
    with mg.using_backend(name):
        got = run(F.batch_norm_relu, x, dy, w, b, rm, rv, training, momentum=0.3)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    rmt, rvt = torch.tensor(rm), torch.tensor(rv)
    y = torch.relu(torch.nn.functional.batch_norm(xt, rmt, rvt, wt, bt, training, 0.3, 1e-5))
    y.backward(torch.tensor(dy))
    want = [y.detach(), xt.grad, wt.grad, bt.grad, rmt, rvt]
    for i, (g, r) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, r.numpy(), rtol=1e-10, atol=1e-10, err_msg=f"output {i}")


def test_batch_norm_relu_checks_like_batch_norm():
    x = Tensor(np.ones((1, 3), np.float32))
    with pytest.raises(ValueError, match="batch_norm_relu: expected more than 1 value per channel"):
        F.batch_norm_relu(x, None, None, training=True)
    with pytest.raises(ValueError, match="running_mean and running_var are required"):
        F.batch_norm_relu(Tensor(np.ones((2, 3), np.float32)), None, None)
    with pytest.raises(TypeError, match="weight has dtype float64"):
        F.batch_norm_relu(Tensor(np.ones((2, 3), np.float32)), None, None, Tensor(np.ones(3)), training=True)
    with pytest.raises(ValueError, match="eps"):
        F.batch_norm_relu(Tensor(np.ones((2, 3), np.float32)), None, None, training=True, eps=0.0)
    assert F.batch_norm_relu(Tensor(np.ones((0, 3), np.float32)), None, None, training=True).shape == (0, 3)


def _model(fuse, momentum=0.1):
    mg.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, momentum=momentum), nn.ReLU(), nn.Flatten(),
                      nn.Linear(4 * 36, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 2))
    m.fuse = fuse
    return m


@pytest.mark.parametrize("momentum", [0.1, None])
def test_sequential_fuses_batch_norm_relu(monkeypatch, momentum):
    calls = []
    real = F.batch_norm_relu
    monkeypatch.setattr(F, "batch_norm_relu", lambda *a, **k: calls.append(1) or real(*a, **k))
    x = np.random.default_rng(0).standard_normal((6, 3, 8, 8)).astype(np.float32)
    models = [_model(True, momentum), _model(False, momentum)]
    results = []
    for m in models:
        grads = []
        for mode in ("train", "eval"):
            getattr(m, mode)()
            xt = Tensor(x, requires_grad=True)
            y = m(xt)
            y.sum().backward()
            grads.append((y.data, xt.grad.data))
        results.append((grads, m.state_dict()))
    assert len(calls) == 4, "two BatchNorm+ReLU pairs, train and eval, must run fused"
    (g1, s1), (g2, s2) = results
    for (y1, dx1), (y2, dx2) in zip(g1, g2):
        np.testing.assert_allclose(y1, y2, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(dx1, dx2, rtol=1e-4, atol=1e-5)
    for k in s1:
        np.testing.assert_allclose(s1[k], s2[k], rtol=1e-5, atol=1e-6, err_msg=k)
    assert s1["1.num_batches_tracked"] == 1


def test_sequential_does_not_fuse_other_pairs(monkeypatch):
    calls = []
    monkeypatch.setattr(F, "batch_norm_relu", lambda *a, **k: calls.append(1))

    class MyReLU(nn.ReLU):
        def forward(self, x):
            return x.relu() * 2.0

    x = Tensor(np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32))
    nn.Sequential(nn.BatchNorm1d(3), MyReLU())(x)
    nn.Sequential(nn.BatchNorm1d(3), nn.Tanh(), nn.ReLU())(x)
    nn.Sequential(nn.ReLU(), nn.BatchNorm1d(3))(x)
    assert not calls


def test_sequential_never_fuses_past_a_subclass_forward():
    """A BatchNorm subclass with its own forward (SyncBatchNorm, a user's override) followed by a ReLU in a
    Sequential runs that forward, not the fused kernel."""
    import minigrad as mg
    from minigrad import nn

    class Shifted(nn.BatchNorm1d):
        def forward(self, x):
            return super().forward(x) + 100.0

    seq = nn.Sequential(Shifted(3, dtype="float64"), nn.ReLU())
    x = mg.Tensor(np.random.default_rng(0).standard_normal((5, 3)))
    np.testing.assert_array_equal(seq(x).numpy(), (seq[0](x) * 1.0).relu().numpy())
    assert (seq(x).numpy() > 50).all()
    seq_sync = nn.Sequential(nn.SyncBatchNorm(3, dtype="float64"), nn.ReLU())
    seq_sync.fuse = False
    want = seq_sync(x).numpy()
    seq_sync.fuse = True
    np.testing.assert_array_equal(seq_sync(x).numpy(), want)


# ------------------------------------------------------------------ FRN + TLU (F.filter_response_norm_tlu)

FRN_SHAPES = [(2, 3, 4, 5), (4, 6, 1, 9), (3, 2, 7), (2, 5, 14, 14)]


def frn_data(shape, dtype, seed=0):
    """x, dy, weight, bias, tau, eps; channel 0 of x all zeros and tau[0] = bias[0], so that channel's values
    before the max tie with tau exactly (z = 0*rstd*w + b = b) and take Maximum's tie rule."""
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = (0.3 + rng.standard_normal(shape)).astype(dtype)
    x[:, 0] = 0
    dy = rng.standard_normal(shape).astype(dtype)
    w, b = (1 + 0.3 * rng.standard_normal(c)).astype(dtype), (0.3 * rng.standard_normal(c)).astype(dtype)
    tau = (0.2 * rng.standard_normal(c)).astype(dtype)
    tau[0] = b[0]
    return x, dy, w, b, tau, np.full(1, 1e-3, dtype)


def frn_run(fused, x, dy, w, b, tau, eps, learned):
    ts = [Tensor(a, requires_grad=True) for a in (x, w, b, tau)] + ([Tensor(eps, requires_grad=True)] if learned
                                                                    else [])
    e = ts[4] if learned else float(eps[0])
    w_, b_ = ts[1], ts[2]
    if fused:
        y = F.filter_response_norm_tlu(ts[0], w_, b_, ts[3], e)
    else:
        y = F.tlu(F.filter_response_norm(ts[0], w_, b_, e), ts[3])
    (y * Tensor(dy)).sum().backward()
    return [y.data] + [t.grad.data for t in ts]


@pytest.mark.parametrize("learned", [False, True])
@pytest.mark.parametrize("shape", FRN_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_filter_response_norm_tlu_equals_unfused(name, dtype, shape, learned):
    """y and the gradients of x, weight, bias, tau (and the learned eps) as F.tlu(F.filter_response_norm(...)):
    y bit for bit (the value before the max is FRN's, in X), the gradients within rounding, ties included."""
    x, dy, w, b, tau, eps = frn_data(shape, dtype)
    with mg.using_backend(name):
        got = frn_run(True, x, dy, w, b, tau, eps, learned)
        want = frn_run(False, x, dy, w, b, tau, eps, learned)
    assert len(got) == len(want) == 5 + learned
    np.testing.assert_array_equal(got[0], want[0], err_msg="y")
    kept = want[0] > tau.reshape(1, -1, *([1] * (x.ndim - 2)))
    assert 0 < np.count_nonzero(kept[:, 1:]) < kept[:, 1:].size, "the max must keep some values and not others"
    for what, g, r in zip(("y", "dx", "dweight", "dbias", "dtau", "deps"), got, want):
        scale = max(1.0, float(np.abs(r).max()))
        np.testing.assert_allclose(g, r, rtol=TOL[dtype] * 5, atol=TOL[dtype] * 5 * scale, err_msg=what)
    # the tied channel: dtau[0] = half of the channel's dy (and x's share reaches x through FRN's backward)
    np.testing.assert_allclose(got[4][0], 0.5 * dy[:, 0].astype(np.float64).sum(), rtol=TOL[dtype] * 5,
                               atol=TOL[dtype] * 5 * np.abs(dy[:, 0]).sum())


@pytest.mark.parametrize("name", BACKENDS)
def test_filter_response_norm_tlu_against_torch(name):
    """The PyTorch composition (what a PyTorch user writes: FRN's equation then torch.maximum), float64."""
    x, dy, w, b, tau, eps = frn_data((3, 4, 5, 6), np.float64, seed=3)
    x[:, 0] += 0.5  # NOTE: no ties here: torch.maximum's tie rule is also halves, but keep the comparison plain
    with mg.using_backend(name):
        got = frn_run(True, x, dy, w, b, tau, eps, True)
    tx, tw, tb, tt, te = (torch.tensor(a, requires_grad=True) for a in (x, w, b, tau, eps))
    c = lambda t: t.reshape(1, -1, 1, 1)  # noqa: E731
    ty = torch.maximum(c(tw) * tx / ((tx * tx).mean((2, 3), keepdim=True) + te.abs()).sqrt() + c(tb), c(tt))
    ty.backward(torch.tensor(dy))
    for g, t in zip(got, (ty, tx.grad, tw.grad, tb.grad, tt.grad, te.grad)):
        np.testing.assert_allclose(g, t.detach().numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", BACKENDS)
def test_filter_response_norm_tlu_gradcheck_float64(name):
    rng = np.random.default_rng(5)
    ts = [Tensor(rng.standard_normal(s), requires_grad=True) for s in ((2, 3, 3, 4), (3,), (3,), (3,))]
    ts.append(Tensor(np.full(1, 0.1), requires_grad=True))
    with mg.using_backend(name):
        assert mg.gradcheck(lambda x, w, b, t, e: F.filter_response_norm_tlu(x, w, b, t, e), ts, eps=1e-6,
                            atol=1e-5, rtol=1e-4)
        assert mg.gradgradcheck(lambda x, w, b, t: F.filter_response_norm_tlu(x, w, b, t), ts[:4])


def test_filter_response_norm_tlu_checks_its_arguments():
    x = mg.randn(2, 3, 4)
    with pytest.raises(TypeError, match=r"filter_response_norm_tlu: tau must be a minigrad.Tensor of shape \(3,\)"):
        F.filter_response_norm_tlu(x, None, None)
    with pytest.raises(ValueError, match="filter_response_norm_tlu: tau must have shape"):
        F.filter_response_norm_tlu(x, tau=mg.zeros(4))
    with pytest.raises(ValueError, match="filter_response_norm_tlu: weight must have shape"):
        F.filter_response_norm_tlu(x, mg.ones(4), tau=mg.zeros(3))
    with pytest.raises(ValueError, match="filter_response_norm_tlu: input must have at least 3 dims"):
        F.filter_response_norm_tlu(mg.randn(2, 3), tau=mg.zeros(3))
    with pytest.raises(ValueError, match="filter_response_norm_tlu: eps must be"):
        F.filter_response_norm_tlu(x, tau=mg.zeros(3), eps=-1.0)
    tau = Tensor(np.zeros(3, np.float32), requires_grad=True)
    y = F.filter_response_norm_tlu(Tensor(np.ones((0, 3, 4), np.float32)), tau=tau)
    assert y.shape == (0, 3, 4)
    y.sum().backward()
    assert tau.grad is not None and not tau.grad.numpy().any()


def _frn_model(fuse):
    mg.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.FilterResponseNorm2d(4, learnable_eps=True), nn.TLU(4),
                      nn.FilterResponseNorm2d(4), nn.TLU(4), nn.Flatten(), nn.Linear(4 * 36, 2))
    for i in (2, 4):
        m[i].tau.data[:] = np.linspace(-0.5, 0.5, 4)  # NOTE: not the zeros they start at, so tau's gradient is seen
    m.fuse = fuse
    return m


def test_sequential_fuses_filter_response_norm_tlu(monkeypatch):
    calls = []
    real = F.filter_response_norm_tlu
    monkeypatch.setattr(F, "filter_response_norm_tlu", lambda *a, **k: calls.append(1) or real(*a, **k))
    x = np.random.default_rng(0).standard_normal((3, 3, 8, 8)).astype(np.float32)
    results = []
    for m in (_frn_model(True), _frn_model(False)):
        xt = Tensor(x, requires_grad=True)
        y = m(xt)
        (y * y).sum().backward()
        results.append((y.data, xt.grad.data, {k: p.grad.data for k, p in m.named_parameters()}))
    assert len(calls) == 2, "two FilterResponseNorm2d+TLU pairs must run fused"
    (y1, dx1, g1), (y2, dx2, g2) = results
    np.testing.assert_allclose(y1, y2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx1, dx2, rtol=1e-4, atol=1e-6)
    assert set(g1) == set(g2) and "2.tau" in g1 and "1.eps" in g1
    for k in g1:
        np.testing.assert_allclose(g1[k], g2[k], rtol=1e-4, atol=1e-5, err_msg=k)


def test_sequential_does_not_fuse_other_frn_pairs(monkeypatch):
    calls = []
    monkeypatch.setattr(F, "filter_response_norm_tlu", lambda *a, **k: calls.append(1))

    class MyTLU(nn.TLU):
        def forward(self, x):
            return super().forward(x) * 2.0

    class Shifted(nn.FilterResponseNorm2d):
        def forward(self, x):
            return super().forward(x) + 100.0

    x = mg.Tensor(np.random.default_rng(1).standard_normal((2, 3, 4, 4)).astype(np.float32))
    nn.Sequential(nn.FilterResponseNorm2d(3), MyTLU(3))(x)
    nn.Sequential(nn.FilterResponseNorm2d(3), nn.ReLU(), nn.TLU(3))(x)
    nn.Sequential(nn.TLU(3), nn.FilterResponseNorm2d(3))(x)
    seq = nn.Sequential(Shifted(3), nn.TLU(3))
    assert (seq(x).numpy() > 50).all()  # the subclass's forward ran
    assert not calls


# ------------------------------------------------------------------ add + ReLU (F.add_relu), the residual block

def _add_relu_data(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    flat_a, flat_b = a.reshape(-1), b.reshape(-1)
    flat_b[:3] = -flat_a[:3]  # a + b == 0 exactly: the mask's boundary (gradient 0, as relu's at 0)
    if flat_a.size > 6:
        flat_a[3:6] = [np.inf, -np.inf, np.nan]
    return a, b, rng.standard_normal(shape).astype(dtype)


def _add_relu_run(fn, a, b, g, same=False):
    at = Tensor(a, requires_grad=True)
    bt = at if same else Tensor(b, requires_grad=True)
    y = fn(at, bt)
    (y * Tensor(g)).sum().backward()
    return [y.data, at.grad.data] + ([] if same else [bt.grad.data])


@pytest.mark.parametrize("same", [False, True])
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4, 5), (1, 1, 1, 1)], ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
def test_add_relu_equals_the_pair_bit_for_bit(dtype, shape, same):
    """Values and both gradients the pair's bits, with ties (a + b == 0), inf and NaN in the input, and one tensor
    passed twice (its gradient accumulated)."""
    a, b, g = _add_relu_data(shape, dtype)
    with np.errstate(invalid="ignore"):
        got = _add_relu_run(F.add_relu, a, b, g, same)
        want = _add_relu_run(lambda p, q: (p + q).relu(), a, b, g, same)
    for i, (x, r) in enumerate(zip(got, want)):
        assert x.dtype == r.dtype == dtype
        np.testing.assert_array_equal(x, r, err_msg=f"output {i}")


def test_add_relu_against_torch_and_its_double_backward():
    a, b, g = _add_relu_data((4, 3, 5), np.float64, seed=2)
    a[0, 0, :3], b[0, 0, :3] = 1.0, -1.0
    a, b = np.nan_to_num(a, posinf=3.0, neginf=-3.0), np.nan_to_num(b, posinf=3.0, neginf=-3.0)
    got = _add_relu_run(F.add_relu, a, b, g)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    y = torch.relu(ta + tb)
    y.backward(torch.tensor(g))
    for x, r in zip(got, (y.detach(), ta.grad, tb.grad)):
        np.testing.assert_array_equal(x, r.numpy())
    # the gradient is differentiable again (create_graph) and equals the pair's: g * mask, whose derivative in a is 0
    for fn in (F.add_relu, lambda p, q: (p + q).relu()):
        at, bt = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
        (ga,) = mg.autograd.grad(fn(at, bt).sum() * 1.0, [at], create_graph=True)
        (gg,) = mg.autograd.grad((ga * Tensor(g)).sum() + (fn(at, bt) * fn(at, bt)).sum(), [at])
        np.testing.assert_allclose(gg.data, 2 * np.maximum(a + b, 0), rtol=1e-12)


def test_add_relu_falls_back_to_the_pair_where_shapes_or_dtypes_differ():
    a = Tensor(np.arange(-3.0, 3.0).reshape(2, 3), requires_grad=True)
    b = Tensor(np.float32([1.0, -2.0, 0.5]), requires_grad=True)
    y = F.add_relu(a, b)  # broadcasting and float64 + float32
    assert y.dtype == np.float64 and y.shape == (2, 3)
    np.testing.assert_array_equal(y.data, np.maximum(a.data + b.data.astype(np.float64), 0))
    y.sum().backward()
    np.testing.assert_array_equal(b.grad.data, np.float32([1, 0, 1]))  # row 1 > 0 at columns 0 and 2 only


def _block_pair(in_ch, out_ch, stride, dtype):
    from minigrad.app.models import BasicBlock

    class PlainReLU(nn.ReLU):  # a subclass: not fused (as in nn.Sequential), so the block runs bn1 then relu1
        pass

    mg.manual_seed(3)
    fused = BasicBlock(in_ch, out_ch, stride, dtype)
    mg.manual_seed(3)
    plain = BasicBlock(in_ch, out_ch, stride, dtype)
    plain.relu1 = PlainReLU()
    return fused, plain


def _block_run(block, x, g, train):
    block.train(train)
    xt = Tensor(x, requires_grad=True)
    y = block(xt)
    (y * Tensor(g)).sum().backward()
    out = {"y": y.data, "dx": xt.grad.data}
    out.update({"d" + k: p.grad.data for k, p in block.named_parameters()})
    out.update({k: v.copy() for k, v in block.state_dict().items()})
    return out


def _torch_block(sd, x, g, stride, train):
    """The block in PyTorch from the state dict: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))."""
    tf = torch.nn.functional
    p = {k: torch.tensor(v, requires_grad=k.endswith(("weight", "bias"))) for k, v in sd.items()}

    def bn(z, name):
        return tf.batch_norm(z, p[name + ".running_mean"], p[name + ".running_var"], p[name + ".weight"],
                             p[name + ".bias"], train, 0.1, 1e-5)

    xt = torch.tensor(x, requires_grad=True)
    y = torch.relu(bn(tf.conv2d(xt, p["conv1.weight"], None, stride, 1), "bn1"))
    y = bn(tf.conv2d(y, p["conv2.weight"], None, 1, 1), "bn2")
    short = bn(tf.conv2d(xt, p["shortcut.0.weight"], None, stride), "shortcut.1") if "shortcut.0.weight" in p else xt
    y = torch.relu(y + short)
    y.backward(torch.tensor(g))
    out = {"y": y.detach(), "dx": xt.grad}
    out.update({"d" + k: t.grad for k, t in p.items() if t.requires_grad})
    out.update({k: t.detach() for k, t in p.items() if not t.requires_grad})
    return out


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("geometry", [(4, 4, 1), (3, 6, 2)], ids=["identity", "projection"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_basic_block_fuses_bn1_relu1(monkeypatch, name, dtype, geometry, train):
    """The zoo's BasicBlock runs bn1 -> relu1 as F.batch_norm_relu (train and eval) and the residual add + ReLU as
    F.add_relu; values, gradients and running statistics as the unfused block (within rounding: the fused BN's
    sums run in another order, see the module docstring) and as PyTorch; the state_dict keys unchanged."""
    in_ch, out_ch, stride = geometry
    fused, plain = _block_pair(in_ch, out_ch, stride, dtype)
    for b in (fused, plain):  # the same BN state away from (1, 0, 0, 1) in both, so that eval mode tests it
        rng = np.random.default_rng(4)
        for m in b.modules():
            if isinstance(m, nn.BatchNorm2d):
                for t, v in ((m.running_mean, 0.2 * rng.standard_normal(m.num_features)),
                             (m.running_var, 1 + rng.random(m.num_features)),
                             (m.weight, 1 + 0.3 * rng.standard_normal(m.num_features)),
                             (m.bias, 0.3 * rng.standard_normal(m.num_features))):
                    t.data[...] = v
    x = rng.standard_normal((3, in_ch, 7, 6)).astype(dtype)
    g = rng.standard_normal((3, out_ch, 7 if stride == 1 else 4, 6 if stride == 1 else 3)).astype(dtype)
    state = {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in plain.state_dict().items()}
    calls = []
    real = F.batch_norm_relu
    monkeypatch.setattr(F, "batch_norm_relu", lambda *a, **k: calls.append(1) or real(*a, **k))
    with mg.using_backend(name):
        got = _block_run(fused, x, g, train)
        assert len(calls) == 1, "bn1 -> relu1 must run fused"
        want = _block_run(plain, x, g, train)
        assert len(calls) == 1, "a ReLU subclass must not be fused"
    ref = _torch_block(state, x.astype(np.float64), g.astype(np.float64), stride, train)
    assert list(got) == list(want) and set(state) <= set(got) and "relu1" not in "".join(state)
    tol = 5e-4 if dtype == np.float32 else 1e-10
    for k in got:
        scale = max(1.0, float(np.abs(want[k]).max()))
        np.testing.assert_allclose(got[k], want[k], rtol=tol, atol=tol * scale, err_msg=k)
        if k in ref and not k.endswith("num_batches_tracked"):  # F.batch_norm in torch does not count
            np.testing.assert_allclose(got[k], ref[k].numpy(), rtol=tol, atol=tol * scale, err_msg="torch " + k)
