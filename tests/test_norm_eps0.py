"""eps=0, GroupNorm's one-value check, empty batches and num_batches_tracked-less state dicts, against PyTorch 2.13
on every backend: where a set has zero variance PyTorch gives inf or NaN (0 for instance norm), finite elsewhere."""
import warnings
from collections import OrderedDict

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F
from minigrad import kernels

torch = pytest.importorskip("torch")
TF = torch.nn.functional

BACKENDS = mg.available_backends()


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 5, dtype=torch.float64, generator=g)
    x[:, 1, :] = 0.1  # channel 1: zero variance in every set that holds it
    x[1, 2, :] = -2.0  # one instance of channel 2 too
    w, b = torch.randn(3, dtype=torch.float64, generator=g), torch.randn(3, dtype=torch.float64, generator=g)
    return x, w, b, torch.randn(4, 3, 5, dtype=torch.float64, generator=g)


RM = np.array([0.0, 0.3, -0.2])
RV = np.array([1.0, 0.0, 2.0])  # running variance 0 in channel 1: an infinite scale in eval

CASES = {
    "batch_norm_eval": (lambda x, w, b: TF.batch_norm(x, torch.tensor(RM), torch.tensor(RV), w, b, False, 0.1, 0.0),
                        lambda x, w, b: F.batch_norm(x, mg.Tensor(RM), mg.Tensor(RV), w, b, False, 0.1, 0.0)),
    "group_norm": (lambda x, w, b: TF.group_norm(x, 3, w, b, 0.0), lambda x, w, b: F.group_norm(x, 3, w, b, 0.0)),
    "group_norm_g1": (lambda x, w, b: TF.group_norm(x, 1, w, b, 0.0), lambda x, w, b: F.group_norm(x, 1, w, b, 0.0)),
    "layer_norm": (lambda x, w, b: TF.layer_norm(x, (5,), None, None, 0.0),
                   lambda x, w, b: F.layer_norm(x, (5,), None, None, 0.0)),
    "instance_norm": (lambda x, w, b: TF.instance_norm(x, None, None, w, b, True, 0.1, 0.0),
                      lambda x, w, b: F.instance_norm(x, None, None, w, b, True, 0.1, 0.0)),
    "instance_norm_eval": (
        lambda x, w, b: TF.instance_norm(x, torch.tensor(RM), torch.tensor(RV), w, b, False, 0.1, 0.0),
        lambda x, w, b: F.instance_norm(x, mg.Tensor(RM), mg.Tensor(RV), w, b, False, 0.1, 0.0)),
    "rms_norm": (lambda x, w, b: TF.rms_norm(x * (x != 0.1), (5,), None, 0.0),
                 lambda x, w, b: F.rms_norm(x * mg.Tensor((x.data != 0.1).astype(np.float64)), (5,), None, 0.0)),
}


def _same(a, b):
    """The same NaN and +-inf positions, finite values equal to float64 rounding."""
    a, b = np.asarray(a), np.asarray(b)
    for test in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(test(a), test(b))
    fin = np.isfinite(a)
    np.testing.assert_allclose(a[fin], b[fin], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_eps0_matches_torch(backend, case):
    x, w, b, dy = _data()
    tf, mf = CASES[case]
    X, W, B = (t.clone().requires_grad_(True) for t in (x, w, b))
    ty = tf(X, W, B)
    ty.backward(dy)
    mX, mW, mB = (mg.Tensor(t.numpy().copy(), requires_grad=True) for t in (x, w, b))
    with kernels.using_backend(backend), warnings.catch_warnings():
        warnings.simplefilter("error")  # NOTE: inf and NaN are the answer here, not a reason to warn
        my = mf(mX, mW, mB)
        my.backward(mg.Tensor(dy.numpy()))
    # every case but these reaches a zero-variance set (instance norm gives 0 there; group norm over 3 channels has none)
    assert np.isfinite(ty.detach().numpy()).all() == (case in ("group_norm_g1", "instance_norm"))
    _same(ty.detach(), my.data)
    _same(X.grad, mX.grad)
    if W.grad is not None:
        _same(W.grad, mW.grad)
        _same(B.grad, mB.grad)


def test_instance_norm_eps0_running_stats_match_torch():
    x, w, b, _ = _data()
    trm, trv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    TF.instance_norm(x, trm, trv, None, None, True, 0.1, 0.0)
    rm, rv = mg.zeros(3, dtype="float64"), mg.ones(3, dtype="float64")
    F.instance_norm(mg.Tensor(x.numpy()), rm, rv, None, None, True, 0.1, 0.0)
    np.testing.assert_allclose(rm.data, trm.numpy(), rtol=1e-12)
    np.testing.assert_allclose(rv.data, trv.numpy(), rtol=1e-12)


@pytest.mark.parametrize("make", [lambda: nn.LayerNorm(5, eps=0), lambda: nn.GroupNorm(3, 3, eps=0),
                                  lambda: nn.InstanceNorm1d(3, eps=0), lambda: nn.RMSNorm(5, eps=0),
                                  lambda: nn.BatchNorm1d(3, eps=0).eval()])
def test_eps0_modules_run_as_torch(make):
    m = make()
    tm = getattr(torch.nn, type(m).__name__)(*([3, 3] if isinstance(m, nn.GroupNorm) else
                                               [5] if isinstance(m, (nn.LayerNorm, nn.RMSNorm)) else [3]), eps=0)
    tm.train(m.training).double()
    x, _, _, _ = _data()
    _same(tm(x).detach(), m.double()(mg.Tensor(x.numpy())).data)


def test_eps0_family_runs():
    x, _, _, _ = _data()
    t = mg.Tensor(x.numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NOTE: evonorm's division is a Tensor op, which warns on x/0 as NumPy
        for y in (F.filter_response_norm(t, eps=0.0), F.evonorm_s0(t, mg.ones(3, dtype="float64"), 3, eps=0.0),
                  F.batch_renorm(t, mg.Tensor(RM), mg.Tensor(RV), eps=0.0)):
            assert y.shape == t.shape and np.isfinite(y.data[:, 0]).all()  # channel 0 has variance: finite


def test_batch_statistics_need_eps_positive_as_torch():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError) as te:
        TF.batch_norm(x, None, None, training=True, eps=0.0)
    for f in (lambda e: F.batch_norm(mg.Tensor(x.numpy()), None, None, training=True, eps=e),
              lambda e: F.batch_norm_relu(mg.Tensor(x.numpy()), None, None, training=True, eps=e),
              lambda e: nn.BatchNorm1d(3, eps=e)(mg.Tensor(x.numpy()))):
        with pytest.raises(ValueError, match="eps must be positive during training, but got 0.0"):
            f(0.0)
    assert "batch_norm eps must be positive during training, but got 0.0" in str(te.value)
    for f in (lambda: nn.LayerNorm(3, eps=-1e-5)(mg.ones(2, 3)), lambda: F.group_norm(mg.ones(2, 3, 2), 3, eps=-1.0),
              lambda: nn.BatchNorm1d(3, eps=-1.0)):
        with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
            f()


@pytest.mark.parametrize("shape,groups", [((1, 4), 4), ((1, 4, 1), 4), ((1, 4, 1, 1), 4), ((2, 4), 4), ((1, 4), 2),
                                          ((1, 4, 1), 2), ((0, 4, 3), 4)])
def test_group_norm_one_value_per_group_raises_as_torch(shape, groups):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    for train in (True, False):
        tm, m = torch.nn.GroupNorm(groups, 4).train(train), nn.GroupNorm(groups, 4).train(train)
        try:
            want = tm(torch.from_numpy(x)).detach().numpy()
        except ValueError as e:
            with pytest.raises(ValueError, match=str(e).replace("[", r"\[").replace("]", r"\]")):
                m(mg.Tensor(x))
        else:
            np.testing.assert_allclose(m(mg.Tensor(x)).data, want, atol=1e-4)


@pytest.mark.parametrize("make", [lambda: nn.GroupNorm(2, 4), lambda: nn.InstanceNorm1d(4, affine=True),
                                  lambda: nn.LayerNorm(3), lambda: nn.BatchNorm1d(4), lambda: nn.RMSNorm(3)])
def test_empty_batch_gives_zero_parameter_gradients(make):
    m = make()
    for train in (True, False):
        m.train(train)
        m.zero_grad()
        x = mg.Tensor(np.zeros((0, 4, 3), np.float32), requires_grad=True)
        y = m(x)
        assert y.shape == (0, 4, 3)
        y.sum().backward()
        for name, p in m.named_parameters():
            assert p.grad is not None and p.grad.shape == p.shape and not p.grad.any(), name


def _bn_net(lib):
    return lib.nn.Sequential(lib.nn.Conv2d(1, 2, 1), lib.nn.BatchNorm2d(2), lib.nn.BatchNorm2d(2, affine=False))


def test_state_dict_without_num_batches_tracked_loads_as_torch():
    tnet, net = _bn_net(torch), _bn_net(mg)
    tnet[1].num_batches_tracked += 5
    net[1].num_batches_tracked.data += 5
    tsd = tnet.state_dict()
    del tsd["1.num_batches_tracked"], tsd["2.num_batches_tracked"]
    with pytest.raises(RuntimeError, match="Missing key"):  # PyTorch's metadata says version 2: strict refuses
        tnet.load_state_dict(tsd)
    plain = {k: v.numpy() for k, v in tsd.items()}  # no metadata: an old or converted checkpoint
    tnet.load_state_dict({k: torch.from_numpy(v) for k, v in plain.items()}, strict=True)
    assert net.load_state_dict(plain, strict=True) == ([], [])
    assert int(net[1].num_batches_tracked.data) == int(tnet[1].num_batches_tracked) == 5
    np.testing.assert_array_equal(net[0].weight.data, plain["0.weight"])
    versioned = OrderedDict(plain)
    versioned._metadata = {k: dict(v) for k, v in tsd._metadata.items()}
    with pytest.raises(KeyError, match="1.num_batches_tracked"):
        net.load_state_dict(versioned)
    assert net.load_state_dict(versioned, strict=False)[0] == ["1.num_batches_tracked", "2.num_batches_tracked"]
    versioned._metadata["1"]["version"] = 1  # a pre-0.4.1 save of layer 1: its count may be missing
    with pytest.raises(KeyError, match=r"\['2.num_batches_tracked'\]"):
        net.load_state_dict(versioned)
