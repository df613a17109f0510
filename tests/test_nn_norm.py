"""The normalization functionals and modules against PyTorch 2.13 and finite differences, on every backend.

Kernel-level parity (every backend against the NumPy reference) lives in test_kernels.py; this suite checks the
autograd nodes, the validation in front of the kernels and the modules' state (running statistics, momentum,
train/eval), driving backward with a random dy.
"""
import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from conftest import BACKENDS, DTYPES
from minigrad import nn

torch = pytest.importorskip("torch")
TF = torch.nn.functional

TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-9, atol=1e-10)}


@pytest.fixture(params=BACKENDS)
def backend(request):
    with mg.using_backend(request.param):
        yield request.param


def _data(shape, dtype, seed=0, noncontig=False):
    rng = np.random.default_rng(seed)
    if noncontig:  # a transposed view: not C-contiguous, the functional must copy it once
        a = rng.standard_normal(shape[::-1]).transpose(*reversed(range(len(shape))))
    else:
        a = rng.standard_normal(shape)
    return (a * 2 + 0.5).astype(dtype)


def _run(mg_fn, torch_fn, x, params, dtype, seed=1):
    """Forward and backward with the same random dy in minigrad (given dtype) and torch (float64)."""
    dy = np.random.default_rng(seed).standard_normal(x.shape).astype(dtype)
    mx = mg.Tensor(x, requires_grad=True)
    mp = [None if p is None else mg.Tensor(p.astype(dtype), requires_grad=True) for p in params]
    y = mg_fn(mx, *mp)
    y.backward(dy)
    tx = torch.tensor(x.astype(np.float64), requires_grad=True)
    tp = [None if p is None else torch.tensor(p.astype(np.float64), requires_grad=True) for p in params]
    ty = torch_fn(tx, *tp)
    ty.backward(torch.tensor(dy.astype(np.float64)))
    tol = TOL[dtype]
    assert y.dtype == dtype
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), **tol)
    np.testing.assert_allclose(mx.grad.numpy(), tx.grad.numpy(), **tol)
    for p, t in zip(mp, tp):
        if p is not None:
            assert p.grad.dtype == dtype
            np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=tol["rtol"] * 10, atol=tol["atol"] * 100)


BN_SHAPES = [(8, 3), (2, 1), (5, 4, 7), (4, 3, 5, 5), (3, 1, 1, 1), (2, 3, 2, 3, 4), (16, 5, 3, 3)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_train_matches_torch(backend, dtype, shape, affine):
    c = shape[1]
    x = _data(shape, dtype, noncontig=len(shape) == 4)
    rng = np.random.default_rng(5)
    w, b = (rng.standard_normal(c), rng.standard_normal(c)) if affine else (None, None)
    rm, rv = mg.Tensor(np.zeros(c, dtype)), mg.Tensor(np.ones(c, dtype))
    trm, trv = torch.zeros(c, dtype=torch.float64), torch.ones(c, dtype=torch.float64)
    _run(lambda t, w, b: F.batch_norm(t, rm, rv, w, b, True, 0.1, 1e-5),
         lambda t, w, b: TF.batch_norm(t, trm, trv, w, b, True, 0.1, 1e-5), x, [w, b], dtype)
    np.testing.assert_allclose(rm.numpy(), trm.numpy(), **TOL[dtype])
    np.testing.assert_allclose(rv.numpy(), trv.numpy(), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5, 5), (2, 3, 2, 3, 4)])
def test_batch_norm_eval_matches_torch(backend, dtype, shape):
    c = shape[1]
    rng = np.random.default_rng(2)
    rm, rv = rng.standard_normal(c), rng.random(c) + 0.5
    w, b = rng.standard_normal(c), rng.standard_normal(c)
    _run(lambda t, w, b: F.batch_norm(t, mg.Tensor(rm.astype(dtype)), mg.Tensor(rv.astype(dtype)), w, b, False),
         lambda t, w, b: TF.batch_norm(t, torch.tensor(rm), torch.tensor(rv), w, b, False),
         _data(shape, dtype), [w, b], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,normalized", [((6, 10), (10,)), ((4, 6, 8), (6, 8)), ((3, 1), (1,)),
                                              ((2, 3, 7), (7,)), ((64, 33), (33,))])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_matches_torch(backend, dtype, shape, normalized, affine):
    rng = np.random.default_rng(3)
    w, b = (rng.standard_normal(normalized), rng.standard_normal(normalized)) if affine else (None, None)
    _run(lambda t, w, b: F.layer_norm(t, normalized, w, b, 1e-5),
         lambda t, w, b: TF.layer_norm(t, normalized, w, b, 1e-5), _data(shape, dtype), [w, b], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,groups", [((4, 6, 5, 5), 3), ((2, 4, 7), 2), ((3, 5, 2, 2), 1), ((2, 6, 3), 6),
                                          ((1, 4, 3, 3), 4), ((5, 8), 4)])
@pytest.mark.parametrize("affine", [True, False])
def test_group_norm_matches_torch(backend, dtype, shape, groups, affine):
    c = shape[1]
    rng = np.random.default_rng(4)
    w, b = (rng.standard_normal(c), rng.standard_normal(c)) if affine else (None, None)
    _run(lambda t, w, b: F.group_norm(t, groups, w, b), lambda t, w, b: TF.group_norm(t, groups, w, b),
         _data(shape, dtype, noncontig=len(shape) == 4), [w, b], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 3, 6), (2, 5, 4, 4), (2, 2, 2, 3, 3), (1, 1, 2)])
@pytest.mark.parametrize("affine", [True, False])
def test_instance_norm_matches_torch(backend, dtype, shape, affine):
    c = shape[1]
    rng = np.random.default_rng(6)
    w, b = (rng.standard_normal(c), rng.standard_normal(c)) if affine else (None, None)
    rm, rv = mg.Tensor(np.zeros(c, dtype)), mg.Tensor(np.ones(c, dtype))
    trm, trv = torch.zeros(c, dtype=torch.float64), torch.ones(c, dtype=torch.float64)
    _run(lambda t, w, b: F.instance_norm(t, rm, rv, w, b, True, 0.1),
         lambda t, w, b: TF.instance_norm(t, trm, trv, w, b, True, 0.1), _data(shape, dtype), [w, b], dtype)
    np.testing.assert_allclose(rm.numpy(), trm.numpy(), **TOL[dtype])
    np.testing.assert_allclose(rv.numpy(), trv.numpy(), **TOL[dtype])


GRADCHECKS = {
    "batch_norm_train": (lambda x, w, b: F.batch_norm(x, None, None, w, b, True), (4, 3, 2, 2)),
    "batch_norm_1d": (lambda x, w, b: F.batch_norm(x, None, None, w, b, True), (5, 3)),
    "batch_norm_eval": (lambda x, w, b: F.batch_norm(
        x, mg.Tensor(np.array([0.1, -0.2, 0.3])), mg.Tensor(np.array([1.5, 0.5, 2.0])), w, b, False), (4, 3, 2)),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (3, 2), w.reshape(3, 1) * mg.ones(1, 2, dtype="float64"),
                                                b.reshape(3, 1) * mg.ones(1, 2, dtype="float64")), (4, 3, 2)),
    "group_norm": (lambda x, w, b: F.group_norm(mg.concatenate([x, x * 0.5 + 1.0], axis=1), 3,
                                                mg.concatenate([w, w]), mg.concatenate([b, b])), (2, 3, 2)),
    "instance_norm": (lambda x, w, b: F.instance_norm(x, weight=w, bias=b), (2, 3, 4)),
}


@pytest.mark.parametrize("name", sorted(GRADCHECKS))
def test_gradcheck_float64(backend, name):
    fn, shape = GRADCHECKS[name]
    rng = np.random.default_rng(7)
    x = mg.Tensor(rng.standard_normal(shape), requires_grad=True)
    w = mg.Tensor(rng.standard_normal(3), requires_grad=True)
    b = mg.Tensor(rng.standard_normal(3), requires_grad=True)
    assert mg.gradcheck(fn, [x, w, b], eps=1e-6, atol=1e-6, rtol=1e-4)


# ------------------------------------------------------------------ modules

@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
@pytest.mark.parametrize("affine,track", [(True, True), (False, True), (True, False)])
def test_batchnorm2d_module_sequence_then_eval_matches_torch(backend, momentum, affine, track):
    ours = nn.BatchNorm2d(4, momentum=momentum, affine=affine, track_running_stats=track, dtype="float64")
    ref = torch.nn.BatchNorm2d(4, momentum=momentum, affine=affine, track_running_stats=track).double()
    rng = np.random.default_rng(8)
    for step in range(5):
        x = rng.standard_normal((6, 4, 3, 3)) * (step + 1) + step
        dy = rng.standard_normal(x.shape)
        y = ours(mg.Tensor(x))
        ty = ref(torch.tensor(x))
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-10)
        if affine:
            y.backward(dy)
            ty.backward(torch.tensor(dy))
            np.testing.assert_allclose(ours.weight.grad.numpy(), ref.weight.grad.numpy(), rtol=1e-9)
    ours.eval()
    ref.eval()
    x = rng.standard_normal((3, 4, 3, 3))
    np.testing.assert_allclose(ours(mg.Tensor(x)).numpy(), ref(torch.tensor(x)).detach().numpy(),
                               rtol=1e-10, atol=1e-10)
    state = ours.state_dict()
    assert list(state) == list(ref.state_dict())
    for k, v in ref.state_dict().items():
        np.testing.assert_allclose(state[k], v.numpy(), rtol=1e-10)
    ours.train()
    assert ours.training and all(m.training for m in ours.modules())


def test_module_names_and_buffers_match_torch():
    pairs = [(nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)), (nn.BatchNorm3d(3), torch.nn.BatchNorm3d(3)),
             (nn.LayerNorm((4, 5)), torch.nn.LayerNorm((4, 5))), (nn.GroupNorm(2, 4), torch.nn.GroupNorm(2, 4)),
             (nn.InstanceNorm2d(3, affine=True, track_running_stats=True),
              torch.nn.InstanceNorm2d(3, affine=True, track_running_stats=True)),
             (nn.InstanceNorm1d(3), torch.nn.InstanceNorm1d(3))]
    for ours, ref in pairs:
        ours_state, ref_state = ours.state_dict(), ref.state_dict()
        assert list(ours_state) == list(ref_state), type(ours).__name__
        for k in ref_state:
            np.testing.assert_array_equal(ours_state[k], ref_state[k].numpy())


@pytest.mark.parametrize("cls,tcls,shape", [(nn.InstanceNorm1d, torch.nn.InstanceNorm1d, (2, 3, 5)),
                                            (nn.InstanceNorm2d, torch.nn.InstanceNorm2d, (2, 3, 4, 4)),
                                            (nn.InstanceNorm3d, torch.nn.InstanceNorm3d, (2, 3, 2, 2, 3))])
def test_instance_norm_modules_track_running_stats(backend, cls, tcls, shape):
    ours = cls(3, affine=True, track_running_stats=True, dtype="float64")
    ref = tcls(3, affine=True, track_running_stats=True).double()
    rng = np.random.default_rng(9)
    for _ in range(3):
        x = rng.standard_normal(shape) + 2
        np.testing.assert_allclose(ours(mg.Tensor(x)).numpy(), ref(torch.tensor(x)).detach().numpy(), atol=1e-10)
    ours.eval()
    ref.eval()
    x = rng.standard_normal(shape)
    np.testing.assert_allclose(ours(mg.Tensor(x)).numpy(), ref(torch.tensor(x)).detach().numpy(), atol=1e-10)
    np.testing.assert_allclose(ours.running_var.numpy(), ref.running_var.numpy(), rtol=1e-10)


def test_layer_and_group_norm_modules(backend):
    x = np.random.default_rng(10).standard_normal((4, 6, 5))
    for ours, ref in [(nn.LayerNorm(5, dtype="float64"), torch.nn.LayerNorm(5).double()),
                      (nn.LayerNorm(5, bias=False, dtype="float64"), torch.nn.LayerNorm(5, bias=False).double()),
                      (nn.GroupNorm(3, 6, dtype="float64"), torch.nn.GroupNorm(3, 6).double())]:
        np.testing.assert_allclose(ours(mg.Tensor(x)).numpy(), ref(torch.tensor(x)).detach().numpy(), atol=1e-10)


# ------------------------------------------------------------------ errors and numerics

def test_batch_of_one_in_training_raises():
    bn = nn.BatchNorm1d(4)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(mg.randn(1, 4))
    bn.eval()
    assert bn(mg.randn(1, 4)).shape == (1, 4)  # eval uses running statistics: fine
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        nn.InstanceNorm1d(3)(mg.randn(2, 3, 1))


def test_bad_arguments_have_clear_errors():
    x = mg.randn(4, 3, 5)
    with pytest.raises(ValueError, match="weight must have shape"):
        F.batch_norm(x, None, None, mg.ones(4), None, True)
    with pytest.raises(ValueError, match="2 to 5 dims"):
        F.batch_norm(mg.randn(4), None, None, training=True)
    with pytest.raises(TypeError, match="float32 and float64"):
        F.batch_norm(x, None, None, mg.ones(3, dtype="float64"), None, True)
    with pytest.raises(ValueError, match="eps"):
        F.batch_norm(x, None, None, training=True, eps=0)
    with pytest.raises(ValueError, match="momentum"):
        F.batch_norm(x, mg.zeros(3), mg.ones(3), training=True, momentum=1.5)
    with pytest.raises(ValueError, match="running_mean and running_var are required"):
        F.batch_norm(x, None, None, training=False)
    with pytest.raises(ValueError, match="must divide"):
        F.group_norm(mg.randn(2, 6, 3), 4)
    with pytest.raises(ValueError, match="normalized_shape"):
        F.layer_norm(mg.randn(2, 6), (5,))
    with pytest.raises(TypeError, match="float32 or float64"):
        F.layer_norm(mg.Tensor(np.ones((2, 3), np.int64)), (3,))
    with pytest.raises(ValueError, match="expected 4D"):
        nn.BatchNorm2d(3)(mg.randn(4, 3))


@pytest.mark.parametrize("fn", ["batch_norm", "layer_norm", "group_norm", "instance_norm"])
def test_float32_large_mean_tiny_variance(backend, fn):
    rng = np.random.default_rng(11)
    for mean, std in [(1e4, 1.0), (1e4, 1e-2)]:
        x64 = mean + std * rng.standard_normal((8, 4, 16, 16))
        x32 = x64.astype(np.float32)
        calls = {"batch_norm": (lambda t: F.batch_norm(t, None, None, training=True, eps=1e-12),
                                lambda t: TF.batch_norm(t, None, None, training=True, eps=1e-12)),
                 "layer_norm": (lambda t: F.layer_norm(t, (16, 16), eps=1e-12),
                                lambda t: TF.layer_norm(t, (16, 16), eps=1e-12)),
                 "group_norm": (lambda t: F.group_norm(t, 2, eps=1e-12), lambda t: TF.group_norm(t, 2, eps=1e-12)),
                 "instance_norm": (lambda t: F.instance_norm(t, eps=1e-12),
                                   lambda t: TF.instance_norm(t, eps=1e-12))}[fn]
        y = calls[0](mg.Tensor(x32)).numpy()
        # the truth: the same float32 values, normalized in float64
        truth = calls[1](torch.tensor(x32.astype(np.float64))).numpy()
        assert np.abs(y - truth).max() < 1e-3, (mean, std, np.abs(y - truth).max())


@pytest.mark.parametrize("fn", ["batch_norm", "layer_norm", "group_norm"])
def test_nan_propagates_without_crash(backend, fn):
    x = np.random.default_rng(12).standard_normal((4, 2, 3)).astype(np.float32)
    x[1, 0, 2] = np.nan
    t = mg.Tensor(x, requires_grad=True)
    y = {"batch_norm": lambda: F.batch_norm(t, None, None, training=True),
         "layer_norm": lambda: F.layer_norm(t, (3,)),
         "group_norm": lambda: F.group_norm(t, 2)}[fn]()
    assert np.isnan(y.numpy()).any()
    y.backward(np.ones(x.shape, np.float32))
    assert np.isnan(t.grad.numpy()).any()
    if fn == "batch_norm":  # channel 1 never saw the NaN: it stays finite
        assert np.isfinite(y.numpy()[:, 1]).all()


def test_backend_asked_for_is_the_one_that_ran(monkeypatch):
    from minigrad import kernels

    ran = []
    for name in BACKENDS:
        backend = kernels.load(name)
        raw = backend.module.batch_norm_forward
        monkeypatch.setattr(backend.module, "batch_norm_forward",
                            lambda *a, _raw=raw, _name=name: (ran.append(_name), _raw(*a))[1])
        backend.__dict__.pop("batch_norm_forward", None)  # drop the cached checked wrapper
    for name in BACKENDS:
        with mg.using_backend(name):
            assert mg.get_backend() == name
            F.batch_norm(mg.randn(4, 3), None, None, training=True)
    assert ran == BACKENDS
    for name in BACKENDS:
        kernels.load(name).__dict__.pop("batch_norm_forward", None)


# ------------------------------------------------------------------ RMSNorm (built on the phase kernels)

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,normalized", [((6, 10), (10,)), ((4, 6, 8), (6, 8)), ((3, 1), (1,)),
                                              ((2, 3, 7), (7,)), ((64, 33), (33,)), ((5,), (5,))])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("eps", [None, 1e-5])
def test_rms_norm_matches_torch(backend, dtype, shape, normalized, affine, eps):
    rng = np.random.default_rng(9)
    w = rng.standard_normal(normalized) if affine else None
    # NOTE: eps=None is the dtype's machine epsilon in both; torch runs in float64 here, so pass minigrad's value
    t_eps = float(np.finfo(dtype).eps) if eps is None else eps
    _run(lambda t, w: F.rms_norm(t, normalized, w, eps), lambda t, w: TF.rms_norm(t, normalized, w, t_eps),
         _data(shape, dtype, noncontig=len(shape) == 3), [w], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rms_norm_eps_none_is_the_dtype_epsilon_as_torch(backend, dtype):
    """A row of tiny values: eps dominates mean(x^2), so the output shows which eps was used."""
    x = np.full((2, 4), 1e-5, dtype)
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    want = TF.rms_norm(torch.tensor(x, dtype=tdtype), (4,)).numpy()
    got = F.rms_norm(mg.Tensor(x), (4,)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert not np.allclose(got, F.rms_norm(mg.Tensor(x), (4,), eps=1e-5).numpy(), rtol=1e-3)


def test_rms_norm_module_matches_torch(backend):
    x = _data((3, 4, 5), np.float64)
    for kwargs in ({}, {"eps": 1e-3}, {"elementwise_affine": False}):
        ours, ref = nn.RMSNorm((4, 5), dtype="float64", **kwargs), torch.nn.RMSNorm((4, 5), **kwargs).double()
        assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
        assert repr(ours) == repr(ref)
        if ours.weight is not None:
            w = np.random.default_rng(1).standard_normal((4, 5))
            ours.weight.data[...] = w
            ref.weight.data = torch.tensor(w)
        np.testing.assert_allclose(ours(mg.Tensor(x)).numpy(), ref(torch.tensor(x)).detach().numpy(), atol=1e-12)


def test_rms_norm_gradcheck_float64(backend):
    rng = np.random.default_rng(10)
    x = mg.Tensor(rng.standard_normal((4, 3, 2)), requires_grad=True)
    w = mg.Tensor(rng.standard_normal((3, 2)), requires_grad=True)
    assert mg.gradcheck(lambda x, w: F.rms_norm(x, (3, 2), w, 1e-5), [x, w], eps=1e-6, atol=1e-6, rtol=1e-4)


def test_rms_norm_bad_arguments():
    x = mg.randn(2, 3)
    with pytest.raises(ValueError, match="rms_norm: normalized_shape"):
        F.rms_norm(x, (4,))
    with pytest.raises(ValueError, match="rms_norm: weight must have shape"):
        F.rms_norm(x, (3,), mg.ones(4))
    with pytest.raises(ValueError, match="rms_norm: eps must be"):
        F.rms_norm(x, (3,), eps=-1.0)
    assert F.rms_norm(mg.randn(0, 3), (3,)).shape == (0, 3)
