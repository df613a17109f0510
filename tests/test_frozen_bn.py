"""FrozenBatchNorm2d against torchvision's definition (written out below), and freeze_batch_norm /
unfreeze_batch_norm: running statistics used and kept under model.train(), affine parameters frozen or not."""
import numpy as np
import pytest
import torch

from minigrad import Tensor, nn
from minigrad import optim
from minigrad.nn.utils import freeze_batch_norm, unfreeze_batch_norm


class TorchvisionFrozenBatchNorm2d(torch.nn.Module):
    """torchvision.ops.misc.FrozenBatchNorm2d, as torchvision defines it."""

    def __init__(self, num_features, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x):
        w = self.weight.reshape(1, -1, 1, 1)
        b = self.bias.reshape(1, -1, 1, 1)
        rv = self.running_var.reshape(1, -1, 1, 1)
        rm = self.running_mean.reshape(1, -1, 1, 1)
        scale = w * (rv + self.eps).rsqrt()
        bias = b - rm * scale
        return x * scale + bias


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_frozen_batch_norm_2d_matches_torchvision(dtype):
    rng = np.random.default_rng(0)
    c = 5
    t = TorchvisionFrozenBatchNorm2d(c, eps=1e-3).to(torch.float32 if dtype == np.float32 else torch.float64)
    for name in ("weight", "bias", "running_mean"):
        getattr(t, name).copy_(torch.tensor(rng.standard_normal(c)))
    t.running_var.copy_(torch.tensor(rng.random(c) + 0.5))
    m = nn.FrozenBatchNorm2d(c, eps=1e-3, dtype=dtype)
    assert sorted(m.state_dict()) == sorted(t.state_dict())
    assert not list(m.parameters())
    m.load_state_dict({k: v.numpy() for k, v in t.state_dict().items()})
    x = rng.standard_normal((4, c, 6, 7)).astype(dtype)
    xt, xm = torch.tensor(x, requires_grad=True), Tensor(x, requires_grad=True)
    dy = rng.standard_normal(x.shape).astype(dtype)
    yt, ym = t(xt), m(xm)
    yt.backward(torch.tensor(dy))
    ym.backward(Tensor(dy))
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(ym.data, yt.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(xm.grad.data, xt.grad.numpy(), rtol=tol, atol=tol)
    with pytest.raises(ValueError, match=r"shape \(N, 5, H, W\)"):
        m(Tensor(np.ones((4, 5), dtype)))


def _net():
    from minigrad import random
    random.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 16, 2))


@pytest.mark.parametrize("freeze_affine", [True, False])
def test_freeze_batch_norm_keeps_running_statistics_in_train_mode(freeze_affine):
    model = _net()
    bn = model[1]
    bn.running_mean.data[...] = [0.1, -0.2, 0.3]
    bn.running_var.data[...] = [1.5, 0.5, 2.0]
    before = {k: v.copy() for k, v in model.state_dict().items()}
    freeze_batch_norm(model, freeze_affine=freeze_affine)
    model.train()
    opt = optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    x = Tensor(np.random.default_rng(1).standard_normal((4, 2, 6, 6)).astype(np.float32))
    for _ in range(3):
        opt.zero_grad()
        y = model(x)
        y.sum().backward()
        opt.step()
    after = model.state_dict()
    for k in ("1.running_mean", "1.running_var", "1.num_batches_tracked"):
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)
    affine_moved = not np.array_equal(after["1.weight"], before["1.weight"])
    assert affine_moved != freeze_affine
    assert not np.array_equal(after["0.weight"], before["0.weight"]), "the rest keeps training"
    # train mode normalizes with the running statistics: the same output as eval
    y_train = model(x).data
    model.eval()
    np.testing.assert_array_equal(y_train, model(x).data)
    # unfreeze: batch statistics again, running statistics updated, requires_grad restored
    unfreeze_batch_norm(model)
    model.train()
    model(x)
    assert model.state_dict()["1.num_batches_tracked"] == before["1.num_batches_tracked"] + 1
    assert bn.weight.requires_grad and bn.bias.requires_grad


def test_requires_grad_false_alone_does_not_freeze_running_statistics():
    """The pitfall the helper exists for (PyTorch behaves the same way)."""
    model = _net()
    bn = model[1]
    bn.weight.requires_grad = False
    bn.bias.requires_grad = False
    before = bn.running_mean.data.copy()
    model.train()
    model(Tensor(np.random.default_rng(1).standard_normal((4, 2, 6, 6)).astype(np.float32)))
    assert not np.array_equal(bn.running_mean.data, before)


def test_freeze_batch_norm_needs_running_statistics():
    with pytest.raises(ValueError, match="track_running_stats=False"):
        freeze_batch_norm(nn.Sequential(nn.BatchNorm2d(3, track_running_stats=False)))
