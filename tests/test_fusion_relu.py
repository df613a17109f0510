"""A layer and the ReLU after it in one pass: F.conv2d_relu / F.linear_relu against the unfused pair on every backend,
nn.intrinsic.ConvReLU2d / LinearReLU made by fuse_model (Sequential, the zoo's residual blocks, ReLU(inplace=True))
against the unfused eval model, their gradients with grad on (the unfused ops) and their replay under
minigrad.compile."""
import warnings

import numpy as np
import pytest

import minigrad as mg
from minigrad import Tensor, nn
from minigrad.app.models import BasicBlock, build_model
from minigrad.nn import functional as F
from minigrad.nn.functional import conv as conv_mod
from minigrad.nn.intrinsic import ConvReLU2d, LinearReLU
from minigrad.nn.norm import _BatchNorm
from minigrad.nn.utils import fuse_model

BACKENDS = mg.available_backends()
DTYPES = [np.float32, np.float64]


def _tol(dtype):
    return dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-5)


def _randomized(model, seed=0):
    """BN running statistics and affine parameters away from 0/1, so that folding has work to do."""
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, _BatchNorm) and m.running_mean is not None:
            c = m.num_features
            m.running_mean.data[...] = rng.standard_normal(c)
            m.running_var.data[...] = rng.random(c) + 0.2
            if m.weight is not None:
                m.weight.data[...] = rng.standard_normal(c)
                m.bias.data[...] = 0.5 * rng.standard_normal(c)
    return model


@pytest.fixture
def epilogues(monkeypatch):
    """The number of conv2d output chunks that got the fused ReLU (so a test knows the one-pass path ran)."""
    calls = []
    real = conv_mod._epilogue

    def spy(y4, bias, relu):
        calls.append(relu)
        return real(y4, bias, relu)
    monkeypatch.setattr(conv_mod, "_epilogue", spy)
    return calls


# ---------------------------------------------------------------- the functionals

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("geom", [
    dict(k=3, stride=1, padding=1, groups=1, bias=True),
    dict(k=3, stride=2, padding=0, groups=3, bias=False),
    dict(k=(3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=1, bias=True),
    dict(k=1, stride=1, padding=0, groups=3, bias=True),   # 1x1 without padding: no im2col
    dict(k=1, stride=2, padding=0, groups=1, bias=False),
], ids=["3x3", "groups-stride-nobias", "odd", "pointwise-groups", "pointwise-stride-nobias"])
def test_conv2d_relu_equals_the_pair(backend, dtype, geom, epilogues, monkeypatch):
    monkeypatch.setattr(conv_mod, "CHUNK_BYTES", 2048)  # many chunks of a few samples: the epilogue per chunk
    geom = dict(geom)
    k, groups, bias = geom.pop("k"), geom.pop("groups"), geom.pop("bias")
    k = k if isinstance(k, tuple) else (k, k)
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((7, 6, 9, 8)).astype(dtype))
    w = Tensor(rng.standard_normal((9, 6 // groups) + k).astype(dtype))
    b = Tensor(rng.standard_normal(9).astype(dtype)) if bias else None
    with mg.using_backend(backend), mg.no_grad():
        want = F.relu(F.conv2d(x, w, b, groups=groups, **geom)).data
        assert not epilogues or not any(epilogues)
        got = F.conv2d_relu(x, w, b, groups=groups, **geom).data
    assert any(epilogues), "the fused path did not run"
    assert got.dtype == dtype and got.shape == want.shape and got.min() == 0
    np.testing.assert_allclose(got, want, **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(5, 7), (2, 3, 7), (7,)])
def test_linear_relu_equals_the_pair(dtype, bias, shape):
    rng = np.random.default_rng(1)
    x = Tensor(rng.standard_normal(shape).astype(dtype))
    w = Tensor(rng.standard_normal((4, 7)).astype(dtype))
    b = Tensor(rng.standard_normal(4).astype(dtype)) if bias else None
    with mg.no_grad():
        got = F.linear_relu(x, w, b).data
    np.testing.assert_allclose(got, F.relu(F.linear(x, w, b)).data, **_tol(dtype))
    assert got.dtype == dtype and got.min() == 0


def test_fused_functionals_check_their_arguments():
    x, w = mg.randn(2, 4, 5, 5), mg.randn(3, 2, 3, 3)
    with pytest.raises(ValueError, match="conv2d_relu: input has 4 channels but weight expects 2"):
        F.conv2d_relu(x, w)
    with pytest.raises(ValueError, match="linear_relu: input has 5 features but weight expects 4"):
        F.linear_relu(mg.randn(2, 5), mg.randn(3, 4))


@pytest.mark.parametrize("which", ["conv", "linear"])
def test_with_grad_the_unfused_ops_run_and_gradients_match(which, epilogues):
    rng = np.random.default_rng(2)
    if which == "conv":
        x = Tensor(rng.standard_normal((3, 4, 6, 5)), requires_grad=True)
        w = Tensor(rng.standard_normal((6, 2, 3, 3)), requires_grad=True)
        b = Tensor(rng.standard_normal(6), requires_grad=True)
        fused, pair = (lambda *a: F.conv2d_relu(*a, padding=1, groups=2)), \
            (lambda *a: F.relu(F.conv2d(*a, padding=1, groups=2)))
    else:
        x = Tensor(rng.standard_normal((5, 7)), requires_grad=True)
        w = Tensor(rng.standard_normal((4, 7)), requires_grad=True)
        b = Tensor(rng.standard_normal(4), requires_grad=True)
        fused, pair = F.linear_relu, (lambda *a: F.relu(F.linear(*a)))
    dy = rng.standard_normal(fused(x, w, b).shape)
    grads = []
    for fn in (fused, pair):
        for t in (x, w, b):
            t.grad = None
        (fn(x, w, b) * Tensor(dy)).sum().backward()
        grads.append([t.grad.data.copy() for t in (x, w, b)])
    for g1, g2 in zip(*grads):
        np.testing.assert_array_equal(g1, g2)
    assert not any(epilogues)
    assert mg.gradcheck(fused, (x, w, b))


# ---------------------------------------------------------------- the modules and fuse_model

def test_intrinsic_modules_share_the_layers_parameters_and_check_their_arguments():
    conv, lin = nn.Conv2d(2, 4, 3, bias=False), nn.Linear(3, 2)
    fused = ConvReLU2d(conv, nn.ReLU(inplace=True))
    assert fused.weight is conv.weight and fused.bias is None and list(fused.state_dict()) == ["weight"]
    assert repr(fused).startswith("ConvReLU2d(2, 4, kernel_size=(3, 3)") and "bias=False" in repr(fused)
    assert repr(LinearReLU(lin)) == "LinearReLU(in_features=3, out_features=2, bias=True)"
    assert list(LinearReLU(lin).state_dict()) == ["weight", "bias"]
    with pytest.raises(TypeError, match="ConvReLU2d: the layer must be a minigrad.nn.Conv2d, got Linear"):
        ConvReLU2d(lin)
    with pytest.raises(TypeError, match="LinearReLU: relu must be a minigrad.nn.ReLU"):
        LinearReLU(lin, nn.Sigmoid())
    with pytest.raises(TypeError, match="must be a minigrad.nn.Conv2d"):  # not a Conv2d to fold a BN into
        from minigrad.nn.utils import fuse_conv_bn_eval
        fuse_conv_bn_eval(fused.eval(), nn.BatchNorm2d(4).eval())


def _cases(dtype):
    return {
        "conv-bn-relu": (nn.Sequential(nn.Conv2d(4, 6, 3, padding=1, groups=2, bias=False, dtype=dtype),
                                       nn.BatchNorm2d(6, dtype=dtype), nn.ReLU()), (4, 7, 6),
                         ["ConvReLU2d", "Identity", "Identity"]),
        "conv-relu-inplace": (nn.Sequential(nn.Conv2d(3, 4, 1, dtype=dtype), nn.ReLU(inplace=True),
                                            nn.Conv2d(4, 4, 3, stride=2, groups=4, dtype=dtype),
                                            nn.BatchNorm2d(4, dtype=dtype), nn.ReLU(inplace=True)), (3, 9, 9),
                              ["ConvReLU2d", "Identity", "ConvReLU2d", "Identity", "Identity"]),
        "linear-bn-relu": (nn.Sequential(nn.Flatten(), nn.Linear(12, 5, bias=False, dtype=dtype),
                                         nn.BatchNorm1d(5, dtype=dtype), nn.ReLU(), nn.Linear(5, 3, dtype=dtype),
                                         nn.ReLU()), (3, 2, 2),
                           ["Flatten", "LinearReLU", "Identity", "Identity", "LinearReLU", "Identity"]),
        # not merged: a ReLU after an unfoldable BN (Sequential's own BN+ReLU fusion runs it), a LeakyReLU
        "not-merged": (nn.Sequential(nn.Conv2d(2, 3, 3, dtype=dtype),
                                     nn.BatchNorm2d(3, track_running_stats=False, dtype=dtype), nn.ReLU(),
                                     nn.Conv2d(3, 3, 1, dtype=dtype), nn.LeakyReLU(0.1)), (2, 6, 6),
                       ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "LeakyReLU"]),
    }


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(_cases(np.float32)))
def test_fuse_model_merges_the_relu_and_equals_the_unfused_eval_model(case, dtype, backend):
    mg.manual_seed(0)
    model, shape, kinds = _cases(dtype)[case]
    model = _randomized(model)
    fused = fuse_model(model)
    assert [type(m).__name__ for m in fused] == kinds
    x = Tensor(np.random.default_rng(1).standard_normal((5,) + shape).astype(dtype))
    with mg.using_backend(backend), mg.no_grad():
        want = model.eval()(x).data
        got = fused(x).data
        folded = fuse_model(model, relu=False)(x).data
    assert got.dtype == dtype
    np.testing.assert_allclose(got, want, **(_tol(dtype) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)))
    np.testing.assert_array_equal(got, folded)  # the epilogue: the same bits as the folded layer and its ReLU


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["lenet-bn", "resnet-tiny", "mlp-bn"])
def test_fused_zoo_model(name, dtype, backend, epilogues):
    model = _randomized(build_model(name, dtype=dtype), seed=3)
    fused = fuse_model(model)
    kinds = {type(m).__name__ for m in fused.modules()}
    assert "ReLU" not in kinds and not any(isinstance(m, _BatchNorm) for m in fused.modules())
    if name == "resnet-tiny":
        blocks = [m for m in fused.modules() if isinstance(m, BasicBlock)]
        # conv1's ReLU merged; conv2's is after the residual add, so conv2 stays a Conv2d
        assert all(type(b.conv1) is ConvReLU2d and type(b.relu1) is nn.Identity for b in blocks)
        assert all(type(b.conv2) is nn.Conv2d for b in blocks)
        assert list(fused.state_dict()) == list(fuse_model(model, relu=False).state_dict())
    x = Tensor(np.random.default_rng(1).standard_normal((4, 1, 28, 28)).astype(dtype))
    with mg.using_backend(backend), mg.no_grad():
        want = model.eval()(x).data
        got = fused(x).data
    assert any(epilogues) == (name != "mlp-bn")
    np.testing.assert_allclose(got, want, **(dict(rtol=1e-10, atol=1e-10) if dtype == np.float64
                                             else dict(rtol=1e-4, atol=1e-4)))


def test_fused_model_with_grad_on_gives_the_unfused_gradients(epilogues):
    model = _randomized(build_model("resnet-tiny", dtype=np.float64), seed=4)
    folded, fused = fuse_model(model, relu=False), fuse_model(model)
    x = np.random.default_rng(5).standard_normal((3, 1, 12, 12))
    grads = []
    for net in (folded, fused):
        xt = Tensor(x, requires_grad=True)
        net(xt).sum().backward()
        grads.append([xt.grad.data] + [p.grad.data for p in net.parameters()])
    assert not any(epilogues)  # grad on: the unfused ops ran
    assert len(grads[0]) == len(grads[1])
    for a, b in zip(*grads):
        np.testing.assert_array_equal(a, b)
    f8 = np.float64
    small = fuse_model(_randomized(nn.Sequential(nn.Conv2d(2, 3, 3, dtype=f8), nn.BatchNorm2d(3, dtype=f8), nn.ReLU())))
    x = Tensor(np.random.default_rng(6).standard_normal((2, 2, 5, 5)), requires_grad=True)
    assert mg.gradcheck(lambda t: small(t), (x,))


@pytest.mark.parametrize("name", ["lenet-bn", "resnet-tiny"])
def test_fused_model_under_compile(name, epilogues):
    model = _randomized(build_model(name), seed=5)
    fused = fuse_model(model)
    forward = mg.compile(fused.__call__)
    rng = np.random.default_rng(6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback to eager
        for _ in range(4):  # record, check, replay, replay
            x = Tensor(rng.standard_normal((2, 1, 28, 28)).astype(np.float32))
            with mg.no_grad():
                got = forward(x).data
                want = fused(x).data
                ref = model.eval()(x).data
            np.testing.assert_array_equal(got, want)
            np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
    assert any(epilogues)


def test_fuse_model_again_merges_what_a_fold_only_pass_left():
    model = _randomized(build_model("resnet-tiny", dtype=np.float64), seed=7)
    once, twice = fuse_model(model), fuse_model(fuse_model(model, relu=False))
    kinds = lambda m: [type(s).__name__ for s in m.modules()]  # noqa: E731
    assert kinds(twice) == kinds(once) and kinds(fuse_model(once)) == kinds(once)
    x = Tensor(np.random.default_rng(8).standard_normal((2, 1, 28, 28)))
    with mg.no_grad():
        np.testing.assert_array_equal(twice(x).data, once(x).data)
