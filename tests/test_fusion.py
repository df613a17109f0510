"""Batch norm folding (minigrad.nn.utils.fusion) against torch.nn.utils.fusion on the same weights, fused models
against their unfused eval selves, and update_bn against torch.optim.swa_utils.update_bn on the same data."""
import numpy as np
import pytest
import torch
from torch.nn.utils import fusion as tfusion
from torch.optim import swa_utils

import minigrad as mg
from minigrad import Tensor, nn
from minigrad.app.models import build_model
from minigrad.nn.norm import _BatchNorm
from minigrad.nn.utils import (fuse_conv_bn_eval, fuse_linear_bn_eval, fuse_model, freeze_batch_norm,
                               unfreeze_batch_norm, update_bn)
from minigrad.nn.utils import fusion


def _randomize_bn(bn, rng):
    """Running statistics and affine parameters away from their 0/1 defaults, so that folding has work to do."""
    c = bn.num_features
    bn.running_mean.data[...] = rng.standard_normal(c)
    bn.running_var.data[...] = rng.random(c) + 0.2
    if bn.weight is not None:
        bn.weight.data[...] = rng.standard_normal(c)
        bn.bias.data[...] = rng.standard_normal(c)


def _to_torch(m):
    """A torch copy of a minigrad Conv2d/Linear/BatchNorm (float64, eval mode)."""
    if isinstance(m, nn.Conv2d):
        t = torch.nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation, m.groups,
                            bias=m.bias is not None)
    elif isinstance(m, nn.Linear):
        t = torch.nn.Linear(m.in_features, m.out_features, bias=m.bias is not None)
    else:
        t = torch.nn.BatchNorm2d(m.num_features, eps=m.eps, affine=m.affine)
    t = t.double().eval()
    t.load_state_dict({k: torch.tensor(v) for k, v in m.state_dict().items()})
    return t


def _np(t):
    return t.detach().numpy()


@pytest.mark.parametrize("groups,bias,affine", [(1, True, True), (1, False, True), (3, False, True), (3, True, False),
                                                (6, True, True)])
def test_fuse_conv_bn_eval_matches_torch(groups, bias, affine):
    rng = np.random.default_rng(groups + 2 * bias)
    conv = nn.Conv2d(6, 9 if groups != 6 else 6, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2),
                     groups=groups, bias=bias, dtype=np.float64).eval()
    bn = nn.BatchNorm2d(conv.out_channels, eps=1e-3, affine=affine, dtype=np.float64).eval()
    _randomize_bn(bn, rng)
    before = {**{"c." + k: v for k, v in conv.state_dict().items()}, **{"b." + k: v for k, v in bn.state_dict().items()}}
    fused = fuse_conv_bn_eval(conv, bn)
    ref = tfusion.fuse_conv_bn_eval(_to_torch(conv), _to_torch(bn))
    np.testing.assert_allclose(fused.weight.data, _np(ref.weight), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fused.bias.data, _np(ref.bias), rtol=1e-12, atol=1e-12)
    assert fused.bias.data.dtype == np.float64 and fused.groups == groups and not fused.training
    # the originals untouched: a conv without bias keeps none
    assert (conv.bias is None) == (not bias) and fused is not conv
    after = {**{"c." + k: v for k, v in conv.state_dict().items()}, **{"b." + k: v for k, v in bn.state_dict().items()}}
    assert before.keys() == after.keys() and all(np.array_equal(before[k], after[k]) for k in before)
    x = Tensor(rng.standard_normal((2, 6, 7, 8)))
    np.testing.assert_allclose(fused(x).data, bn(conv(x)).data, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bias,num_features", [(True, 7), (False, 7), (True, 1)])
def test_fuse_linear_bn_eval_matches_torch(bias, num_features):
    rng = np.random.default_rng(num_features + bias)
    linear = nn.Linear(5, 7, bias=bias, dtype=np.float64).eval()
    bn = nn.BatchNorm1d(num_features, dtype=np.float64).eval()
    _randomize_bn(bn, rng)
    fused = fuse_linear_bn_eval(linear, bn)
    ref = tfusion.fuse_linear_bn_eval(_to_torch(linear), _to_torch(bn))
    np.testing.assert_allclose(fused.weight.data, _np(ref.weight), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fused.bias.data, _np(ref.bias), rtol=1e-12, atol=1e-12)
    assert (linear.bias is None) == (not bias)
    if num_features == 7:
        x = Tensor(rng.standard_normal((4, 5)))
        np.testing.assert_allclose(fused(x).data, bn(linear(x)).data, rtol=1e-12, atol=1e-12)


def test_fused_float32_layer_keeps_its_dtype_and_requires_grad():
    conv = nn.Conv2d(2, 3, 1, bias=False).eval()
    conv.weight.requires_grad = False
    fused = fuse_conv_bn_eval(conv, nn.BatchNorm2d(3).eval())
    assert fused.weight.data.dtype == fused.bias.data.dtype == np.float32
    assert not fused.weight.requires_grad and not fused.bias.requires_grad


def test_fuse_eval_errors_name_the_problem():
    conv, bn = nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3)
    with pytest.raises(ValueError, match="only for eval"):
        fuse_conv_bn_eval(conv, bn)
    conv.eval(), bn.eval()
    with pytest.raises(ValueError, match=r"num_features \(4\)"):
        fuse_conv_bn_eval(conv, nn.BatchNorm2d(4).eval())
    with pytest.raises(ValueError, match="track_running_stats=False"):
        fuse_conv_bn_eval(conv, nn.BatchNorm2d(3, track_running_stats=False).eval())
    with pytest.raises(TypeError, match="conv2d must be"):
        fuse_conv_bn_eval(nn.Linear(2, 3).eval(), bn)
    with pytest.raises(TypeError, match="bn must be"):
        fuse_linear_bn_eval(nn.Linear(2, 3).eval(), nn.LayerNorm(3))
    with pytest.raises(TypeError, match="model must be"):
        fuse_model(object())


def _perturbed(name, dtype, seed=0):
    model = build_model(name, dtype=dtype)
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            _randomize_bn(m, rng)
    return model


@pytest.mark.parametrize("backend", mg.available_backends())
@pytest.mark.parametrize("name", ["mlp-bn", "lenet-bn", "resnet-tiny"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_zoo_model_equals_unfused_eval(name, dtype, backend):
    model = _perturbed(name, dtype)
    before = model.state_dict()
    fused = fuse_model(model)
    # every BN of the zoo follows a conv or linear: all folded; the original keeps its BNs and its training mode
    assert not any(isinstance(m, _BatchNorm) for m in fused.modules())
    assert any(isinstance(m, _BatchNorm) for m in model.modules()) and model.training
    assert not any(m.training for m in fused.modules())
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    # the order of the modules kept: the unfused model's keys, less the BNs', in the same order
    assert [k for k in fused.state_dict() if k in before] == [k for k in before if not _is_bn_key(model, k)]
    x = Tensor(np.random.default_rng(1).standard_normal((5, 1, 28, 28)).astype(dtype))
    with mg.using_backend(backend):
        ref = model.eval()(x).data
        got = fused(x).data
    assert got.dtype == dtype
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got, ref, **tol)


def _is_bn_key(model, key):
    return isinstance(dict(model.named_modules())[key.rsplit(".", 1)[0]], _BatchNorm)


def test_fused_model_state_dict_order():
    fused = fuse_model(_perturbed("lenet-bn", np.float64))
    assert [type(m).__name__ for m in fused] == ["ConvReLU2d", "Identity", "Identity", "MaxPool2d", "ConvReLU2d",
                                                 "Identity", "Identity", "MaxPool2d", "Flatten", "LinearReLU",
                                                 "Identity", "Identity", "LinearReLU", "Identity", "Identity", "Linear"]
    folded = fuse_model(_perturbed("lenet-bn", np.float64), relu=False)
    assert [type(m).__name__ for m in folded] == ["Conv2d", "Identity", "ReLU", "MaxPool2d", "Conv2d", "Identity",
                                                  "ReLU", "MaxPool2d", "Flatten", "Linear", "Identity", "ReLU",
                                                  "Linear", "Identity", "ReLU", "Linear"]
    assert list(fused.state_dict()) == list(folded.state_dict())  # the fused layers keep the layers' keys


def test_fuse_model_leaves_what_it_cannot_fold():
    class Custom(nn.Sequential):
        def forward(self, x):  # a forward of its own: its pairs are not known to be adjacent
            return self[1](self[0](x) * 2)

    rng = np.random.default_rng(3)
    model = nn.Sequential(
        nn.Conv2d(2, 3, 3, dtype=np.float64), nn.ReLU(), nn.BatchNorm2d(3, dtype=np.float64),  # BN after ReLU
        nn.Conv2d(3, 3, 1, dtype=np.float64), nn.BatchNorm2d(3, track_running_stats=False, dtype=np.float64),
        Custom(nn.Conv2d(3, 3, 1, dtype=np.float64), nn.BatchNorm2d(3, dtype=np.float64)),
        nn.Conv2d(3, 4, 1, groups=1, dtype=np.float64), nn.BatchNorm2d(4, dtype=np.float64))
    for m in model.modules():
        if isinstance(m, _BatchNorm) and m.running_mean is not None:
            _randomize_bn(m, rng)
    fused = fuse_model(model)
    kinds = [type(m).__name__ for m in fused]
    assert kinds == ["ConvReLU2d", "Identity", "BatchNorm2d", "Conv2d", "BatchNorm2d", "Custom", "Conv2d",
                     "Identity"]
    assert type(fused[5][1]).__name__ == "BatchNorm2d"
    x = Tensor(rng.standard_normal((3, 2, 6, 6)))
    np.testing.assert_allclose(fused(x).data, model.eval()(x).data, rtol=1e-12, atol=1e-12)


def test_known_block_subclass_with_own_forward_is_not_folded():
    from minigrad.app.models import BasicBlock

    class Mine(BasicBlock):
        def forward(self, x):
            return self.bn1(self.conv1(x) + 1)

    mine = fuse_model(Mine(2, 4))
    assert isinstance(mine.bn1, nn.BatchNorm2d) and isinstance(mine.bn2, nn.BatchNorm2d)
    assert isinstance(mine.shortcut[1], nn.Identity)  # a plain Sequential inside: folded
    block = fuse_model(BasicBlock(2, 2))
    assert isinstance(block.bn1, nn.Identity) and isinstance(block.bn2, nn.Identity)
    assert isinstance(block.conv1, nn.Conv2d) and block.conv1.bias is not None
    assert "minigrad.app.models.BasicBlock" in fusion.KNOWN_BLOCKS


# ---------------------------------------------------------------- update_bn

def _torch_lenet_bn():
    T = torch.nn
    return T.Sequential(
        T.Conv2d(1, 6, 5, padding=2, bias=False), T.BatchNorm2d(6), T.ReLU(), T.MaxPool2d(2),
        T.Conv2d(6, 16, 5, bias=False), T.BatchNorm2d(16), T.ReLU(), T.MaxPool2d(2), T.Flatten(),
        T.Linear(400, 120, bias=False), T.BatchNorm1d(120), T.ReLU(),
        T.Linear(120, 84, bias=False), T.BatchNorm1d(84), T.ReLU(), T.Linear(84, 10)).double()


def _pair(seed=0):
    model = _perturbed("lenet-bn", np.float64, seed)
    tmodel = _torch_lenet_bn()
    tmodel.load_state_dict({k: torch.tensor(v) for k, v in model.state_dict().items()})
    return model, tmodel


def _bns(model):
    return [m for m in model.modules() if isinstance(m, (_BatchNorm, torch.nn.modules.batchnorm._BatchNorm))]


@pytest.mark.parametrize("tuples", [True, False])
@pytest.mark.parametrize("train_mode", [True, False])
def test_update_bn_matches_torch(tuples, train_mode):
    model, tmodel = _pair()
    model.train(train_mode), tmodel.train(train_mode)
    for m, t in zip(_bns(model), _bns(tmodel)):
        m.momentum = t.momentum = 0.3
    _bns(model)[1].momentum = _bns(tmodel)[1].momentum = None
    rng = np.random.default_rng(5)
    xs = [rng.standard_normal((n, 1, 28, 28)) * 2 + 0.5 for n in (16, 16, 7)]
    ys = [rng.integers(0, 10, len(x)) for x in xs]
    loader = [(Tensor(x), Tensor(y)) for x, y in zip(xs, ys)] if tuples else [Tensor(x) for x in xs]
    tloader = [(torch.tensor(x), torch.tensor(y)) for x, y in zip(xs, ys)] if tuples else [torch.tensor(x) for x in xs]
    assert update_bn(loader, model) is None
    swa_utils.update_bn(tloader, tmodel)
    for m, t in zip(_bns(model), _bns(tmodel)):
        np.testing.assert_allclose(m.running_mean.data, _np(t.running_mean), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(m.running_var.data, _np(t.running_var), rtol=1e-10, atol=1e-10)
        assert int(m.num_batches_tracked.data) == int(t.num_batches_tracked) == 3
        assert m.momentum == t.momentum
    assert all(m.training == train_mode for m in model.modules())
    # cumulative average, written out for the first BN: the mean of the three batch means
    conv = model[0]
    with mg.no_grad():
        means = [conv(Tensor(x)).data.mean(axis=(0, 2, 3)) for x in xs]
    np.testing.assert_allclose(model[1].running_mean.data, np.mean(means, axis=0), rtol=1e-10, atol=1e-12)


def test_update_bn_restores_each_modules_mode_and_momentum_on_error():
    model, _ = _pair()
    model.eval()
    model[1].train()
    momenta = [m.momentum for m in _bns(model)]

    def loader():
        yield Tensor(np.zeros((2, 1, 28, 28)))
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError, match="disk gone"):
        update_bn(loader(), model)
    assert [m.momentum for m in _bns(model)] == momenta
    assert [m.training for m in model.modules()] == [m is model[1] for m in model.modules()]


def test_update_bn_input_errors():
    model, _ = _pair()
    with pytest.raises(TypeError, match="loader must be iterable"):
        update_bn(3, model)
    with pytest.raises(TypeError, match="model must be"):
        update_bn([], object())
    with pytest.raises(ValueError, match="empty batch tuple"):
        update_bn([()], model)
    with pytest.raises(RuntimeError, match="cuda"):
        update_bn([], model, device="cuda")
    freeze_batch_norm(model)
    stats = model.state_dict()
    with pytest.raises(ValueError, match="frozen"):
        update_bn([Tensor(np.zeros((2, 1, 28, 28)))], model)
    assert all(np.array_equal(v, model.state_dict()[k]) for k, v in stats.items())  # nothing reset
    unfreeze_batch_norm(model)
    update_bn([Tensor(np.zeros((2, 1, 28, 28)))], model)


def test_update_bn_without_batch_norm_is_a_no_op():
    model = build_model("lenet", dtype=np.float64)
    update_bn([Tensor(np.zeros((2, 1, 28, 28)))], model)
    assert model.training
