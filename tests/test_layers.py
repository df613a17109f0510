"""Layer functionals and modules against PyTorch in float64 (values and gradients, random dy), plus gradcheck."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import minigrad
import minigrad.nn.functional as F
from minigrad import Tensor, nn
from minigrad.models import MODELS, build_model
from minigrad.nn.functional import activation

RNG = np.random.default_rng(0)


def _pair(*shapes):
    """minigrad and torch float64 leaves with the same random values."""
    arrays = [RNG.standard_normal(s) for s in shapes]
    ours = [Tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    return ours, theirs


def _check(y, ty, ours, theirs, atol=1e-10):
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10, atol=atol)
    dy = RNG.standard_normal(ty.shape)
    y.backward(dy)
    ty.backward(torch.tensor(dy))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.data, b.grad.numpy(), rtol=1e-10, atol=atol)


def test_linear_matches_torch():
    (x, w, b), (tx, tw, tb) = _pair((5, 3, 7), (4, 7), (4,))
    _check(F.linear(x, w, b), TF.linear(tx, tw, tb), [x, w, b], [tx, tw, tb])
    (x, w), (tx, tw) = _pair((6, 7), (4, 7))
    _check(F.linear(x, w), TF.linear(tx, tw), [x, w], [tx, tw])


@pytest.mark.parametrize("N,C,H,W,O,k,stride,padding,dilation,groups", [
    (2, 3, 8, 8, 4, 3, 1, 0, 1, 1),
    (2, 4, 9, 7, 6, 3, 2, 1, 1, 2),
    (1, 4, 10, 9, 4, (3, 2), (2, 1), (2, 1), (2, 1), 4),  # depthwise, asymmetric everything
    (3, 6, 7, 7, 9, 1, 2, 0, 1, 3),
    (2, 1, 28, 28, 6, 5, 1, 2, 1, 1),  # LeNet's first conv
])
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_matches_torch(N, C, H, W, O, k, stride, padding, dilation, groups, bias):
    kh, kw = (k, k) if isinstance(k, int) else k
    ours, theirs = _pair((N, C, H, W), (O, C // groups, kh, kw), (O,))
    if not bias:
        ours, theirs = ours[:2], theirs[:2]
    y = F.conv2d(*ours, stride=stride, padding=padding, dilation=dilation, groups=groups)
    ty = TF.conv2d(*theirs, stride=stride, padding=padding, dilation=dilation, groups=groups)
    _check(y, ty, ours, theirs)


def test_conv2d_non_contiguous_input():
    x = RNG.standard_normal((6, 3, 9, 2)).transpose(3, 1, 0, 2)  # (2, 3, 6, 9), not C-contiguous
    w = RNG.standard_normal((5, 3, 3, 3))
    y = F.conv2d(Tensor(x), Tensor(w), padding=1)
    np.testing.assert_allclose(y.data, TF.conv2d(torch.tensor(x), torch.tensor(w), padding=1).numpy(), atol=1e-12)


def test_conv2d_gradcheck():
    x = Tensor(RNG.standard_normal((2, 4, 5, 4)), requires_grad=True)
    w = Tensor(RNG.standard_normal((4, 2, 2, 3)), requires_grad=True)
    b = Tensor(RNG.standard_normal(4), requires_grad=True)
    assert minigrad.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=1, dilation=(1, 2),
                                                       groups=2), (x, w, b))


def test_conv2d_validation_names_both_numbers():
    x, w = Tensor(np.zeros((1, 3, 8, 8))), Tensor(np.zeros((4, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"3 channels.*expects 2"):
        F.conv2d(x, w)
    with pytest.raises(ValueError, match="stride"):
        F.conv2d(Tensor(np.zeros((1, 2, 8, 8))), w, stride=0)
    with pytest.raises(ValueError, match="too small"):
        F.conv2d(Tensor(np.zeros((1, 2, 2, 2))), w)
    with pytest.raises(ValueError, match="4 dims"):
        F.conv2d(Tensor(np.zeros((2, 8, 8))), w)


@pytest.mark.parametrize("k,s,p", [(2, None, 0), (3, 2, 1), ((3, 2), (1, 2), (1, 0)), (3, 1, 0)])
def test_max_pool2d_matches_torch(k, s, p):
    (x,), (tx,) = _pair((2, 3, 9, 8))
    _check(F.max_pool2d(x, k, s, p), TF.max_pool2d(tx, k, s, p), [x], [tx])


def test_max_pool2d_ties_go_to_first_element():
    x = Tensor(np.ones((1, 1, 4, 4)), requires_grad=True)
    tx = torch.ones((1, 1, 4, 4), dtype=torch.float64, requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    TF.max_pool2d(tx, 2).sum().backward()
    np.testing.assert_array_equal(x.grad.data, tx.grad.numpy())


@pytest.mark.parametrize("k,s,p,cip", [(2, None, 0, True), (3, 2, 1, True), (3, 2, 1, False),
                                       ((3, 2), 1, (1, 1), False)])
def test_avg_pool2d_matches_torch(k, s, p, cip):
    (x,), (tx,) = _pair((2, 3, 9, 8))
    _check(F.avg_pool2d(x, k, s, p, count_include_pad=cip), TF.avg_pool2d(tx, k, s, p, count_include_pad=cip),
           [x], [tx])


@pytest.mark.parametrize("size", [1, (1, 1), 2, (3, 4)])
def test_adaptive_avg_pool2d_matches_torch(size):
    (x,), (tx,) = _pair((2, 3, 6, 8))
    _check(F.adaptive_avg_pool2d(x, size), TF.adaptive_avg_pool2d(tx, size), [x], [tx])


def test_adaptive_avg_pool2d_any_size_matches_torch():
    # was NotImplementedError: an output size that does not divide the input size (PyTorch's overlapping windows)
    (x,), (tx,) = _pair((1, 1, 7, 7))
    _check(F.adaptive_avg_pool2d(x, 3), TF.adaptive_avg_pool2d(tx, 3), [x], [tx])


def test_dropout_statistics_and_eval_identity():
    minigrad.manual_seed(0)
    x = Tensor(np.ones((200, 500)), requires_grad=True)
    y = F.dropout(x, 0.3)
    kept = y.data != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y.data[kept], 1 / 0.7)
    y.backward(np.ones(y.shape))
    np.testing.assert_array_equal(x.grad.data, y.data)  # d/dx = mask / (1 - p)
    m = nn.Dropout(0.3).eval()
    assert m(x) is x
    assert F.dropout(x, 0.3, training=False) is x
    assert not F.dropout(x, 1.0).data.any()
    minigrad.manual_seed(5)
    a = F.dropout(x, 0.5).data
    minigrad.manual_seed(5)
    np.testing.assert_array_equal(a, F.dropout(x, 0.5).data)


def test_erf_is_accurate():
    xs = np.concatenate([np.linspace(-7, 7, 20001), [0.0, 2.5, -2.5, 1e-300, 30.0]])
    np.testing.assert_allclose(activation.erf(xs), [math.erf(v) for v in xs], rtol=0, atol=2e-15)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_matches_torch(approximate):
    (x,), (tx,) = _pair((7, 300))
    x.data[0, :5] = tx.data[0, :5] = torch.tensor([0.0, -9.0, 9.0, 1e-8, -3.0], dtype=torch.float64)
    y, ty = F.gelu(x, approximate), TF.gelu(tx, approximate=approximate)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=0, atol=1e-12)
    _check(y, ty, [x], [tx], atol=1e-12)


def test_flatten_and_modules_shapes():
    x = Tensor(np.zeros((2, 3, 4, 5)))
    assert nn.Flatten()(x).shape == (2, 60)
    assert F.flatten(x, 1, 2).shape == (2, 12, 5)
    assert nn.Identity()(x) is x
    assert nn.AdaptiveAvgPool2d(1)(x).shape == (2, 3, 1, 1)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_loss_matches_torch(reduction, smoothing):
    (x,), (tx,) = _pair((6, 5))
    t = RNG.integers(0, 5, 6)
    y = nn.CrossEntropyLoss(reduction=reduction, label_smoothing=smoothing)(x, Tensor(t))
    ty = torch.nn.CrossEntropyLoss(reduction=reduction, label_smoothing=smoothing)(tx, torch.tensor(t))
    _check(y, ty, [x], [tx])


@pytest.mark.parametrize("bad,dtype", [([0, 5, 1], np.int64), ([0, -1, 1], np.int64), ([-7, 0, 0], np.int64),
                                       ([0, 5, 1], np.int32), ([0, -1, 1], np.int32), ([9, 0, 0], np.uint8)])
def test_losses_reject_targets_out_of_range(bad, dtype):
    x = Tensor(np.zeros((3, 5), np.float32), requires_grad=True)
    for loss in (F.cross_entropy, F.nll_loss):
        with pytest.raises(ValueError, match=r"target values must be in \[0, 5\)"):
            loss(x, Tensor(np.array(bad, dtype)))
    assert F.cross_entropy(x, Tensor(np.array([0, 4, 2], dtype))).item() == pytest.approx(np.log(5))


def test_nll_and_mse_loss_modules():
    (x, z), (tx, tz) = _pair((6, 5), (6, 5))
    t = RNG.integers(0, 5, 6)
    _check(nn.NLLLoss()(x, Tensor(t)), torch.nn.NLLLoss()(tx, torch.tensor(t)), [x], [tx])
    (x,), (tx,) = _pair((6, 5))
    _check(nn.MSELoss("sum")(x, z.detach()), torch.nn.MSELoss(reduction="sum")(tx, tz.detach()), [x], [tx])


def test_linear_and_conv_init_bounds():
    minigrad.manual_seed(0)
    lin = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    for p in (lin.weight, lin.bias):
        assert np.abs(p.data).max() <= bound and np.abs(p.data).max() > 0.95 * bound
    conv = nn.Conv2d(6, 16, 5)
    bound = 1 / math.sqrt(6 * 25)
    assert np.abs(conv.weight.data).max() <= bound and conv.weight.dtype == np.float32
    assert nn.Linear(3, 2, bias=False).bias is None


def test_init_functions_follow_torch_formulas():
    t = Tensor(np.zeros((200, 100, 3, 3)))
    fan_in, fan_out = 100 * 9, 200 * 9
    nn.init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu")
    assert abs(t.data.std() - math.sqrt(2 / fan_out)) < 0.01 * math.sqrt(2 / fan_out)
    nn.init.kaiming_uniform_(t, nonlinearity="relu")
    assert np.abs(t.data).max() <= math.sqrt(6 / fan_in)
    nn.init.xavier_uniform_(t, gain=nn.init.calculate_gain("tanh"))
    assert np.abs(t.data).max() <= 5 / 3 * math.sqrt(6 / (fan_in + fan_out))
    nn.init.xavier_normal_(t)
    assert abs(t.data.std() - math.sqrt(2 / (fan_in + fan_out))) < 0.01 * math.sqrt(2 / (fan_in + fan_out))
    nn.init.constant_(t, 3)
    assert (t.data == 3).all()
    nn.init.zeros_(t)
    assert not t.data.any()
    g = np.random.default_rng(1)
    a = nn.init.normal_(Tensor(np.zeros(5)), generator=g).data.copy()
    np.testing.assert_array_equal(a, np.random.default_rng(1).normal(0, 1, 5))


def _torch_lenet_bn():
    T = torch.nn
    return T.Sequential(
        T.Conv2d(1, 6, 5, padding=2, bias=False), T.BatchNorm2d(6), T.ReLU(), T.MaxPool2d(2),
        T.Conv2d(6, 16, 5, bias=False), T.BatchNorm2d(16), T.ReLU(), T.MaxPool2d(2), T.Flatten(),
        T.Linear(400, 120, bias=False), T.BatchNorm1d(120), T.ReLU(),
        T.Linear(120, 84, bias=False), T.BatchNorm1d(84), T.ReLU(), T.Linear(84, 10)).double()


@pytest.mark.parametrize("train", [True, False])
def test_lenet_bn_matches_torch(train):
    minigrad.manual_seed(0)
    model = build_model("lenet-bn", dtype=np.float64)
    ref = _torch_lenet_bn()
    state = model.state_dict()
    assert list(state) == list(ref.state_dict())
    # non-trivial running statistics so that eval mode is tested for real
    for k, v in state.items():
        if "running_mean" in k:
            state[k] = RNG.standard_normal(v.shape) * 0.1
        elif "running_var" in k:
            state[k] = RNG.uniform(0.5, 2.0, v.shape)
    model.load_state_dict(state)
    ref.load_state_dict({k: torch.tensor(v) for k, v in state.items()})
    model.train(train)
    ref.train(train)
    x = RNG.standard_normal((8, 1, 28, 28))
    t = RNG.integers(0, 10, 8)
    loss = F.cross_entropy(model(Tensor(x)), Tensor(t))
    tloss = TF.cross_entropy(ref(torch.tensor(x)), torch.tensor(t))
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-10)
    loss.backward()
    tloss.backward()
    tparams = dict(ref.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.data, tparams[name].grad.numpy(), rtol=1e-8, atol=1e-12, err_msg=name)
    tstate = ref.state_dict()
    for name, v in model.state_dict().items():  # running statistics updated the same way
        np.testing.assert_allclose(v, tstate[name].numpy(), rtol=1e-10, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_models_forward_backward(name):
    minigrad.manual_seed(0)
    model = build_model(name)
    y = model(Tensor(np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)))
    assert y.shape == (4, 10) and y.dtype == np.float32
    y.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(ValueError, match="unknown model"):
        build_model("vgg")
