"""F.batch_norm_relu against the unfused pair (F.batch_norm then F.relu) on every backend and against PyTorch,
and nn.Sequential's automatic fusion of a BatchNorm followed by a ReLU."""
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
