"""A CIFAR ResNet-20 written for PyTorch (tests/ports/resnet20.py, only its imports changed to minigrad) runs the
same source under both libraries: PyTorch's trained weights load strictly and give the same logits; one training
forward/backward gives the same gradients; SGD with momentum follows the same loss trajectory."""
import pathlib
import types

import numpy as np
import pytest

import minigrad as mg

torch = pytest.importorskip("torch")

SOURCE = (pathlib.Path(__file__).parent / "ports" / "resnet20.py").read_text()
MG_IMPORTS = ("import minigrad as torch\nimport minigrad.nn as nn\nimport minigrad.nn.functional as F\n"
              "import minigrad.nn.init as init\n")
TORCH_IMPORTS = ("import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\nimport torch.nn.init as init\n")


def _module(source, name):
    mod = types.ModuleType(name)
    exec(compile(source, f"<{name}>", "exec"), mod.__dict__)
    return mod


def test_port_differs_from_torch_source_by_imports_only():
    assert MG_IMPORTS in SOURCE
    assert "minigrad" not in SOURCE.replace(MG_IMPORTS, "").split("\n", 2)[2]


MG = _module(SOURCE, "resnet20_minigrad")
TH = _module(SOURCE.replace(MG_IMPORTS, TORCH_IMPORTS), "resnet20_torch")


def _trained_torch(option, steps=3, seed=0):
    """A torch ResNet-20 after a few SGD steps on random data: weights and running statistics non-trivial."""
    torch.manual_seed(seed)
    net = TH.resnet20(option).double()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x, y = torch.randn(4, 3, 16, 16, generator=g, dtype=torch.float64), torch.randint(0, 10, (4,), generator=g)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    opt.zero_grad()
    return net


def _state_numpy(net, dtype):
    return {k: (v.numpy().astype(dtype) if v.is_floating_point() else v.numpy()) for k, v in net.state_dict().items()}


@pytest.mark.parametrize("option", ["A", "B"])
def test_torch_weights_load_strictly_and_give_the_same_logits(option, tmp_path):
    tnet = _trained_torch(option).float().eval()
    state = _state_numpy(tnet, np.float32)
    assert any(k.endswith("num_batches_tracked") and v == 3 for k, v in state.items())
    net = MG.resnet20(option)
    assert net.load_state_dict(state, strict=True) == ([], [])
    net.eval()
    x = np.random.default_rng(1).standard_normal((4, 3, 16, 16)).astype(np.float32)
    want = tnet(torch.from_numpy(x)).detach().numpy()
    got = net(mg.Tensor(x)).data
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    # minigrad.save / minigrad.load round trip of the same state dict
    mg.save(net.state_dict(), tmp_path / "resnet20.safetensors")
    back = mg.load(tmp_path / "resnet20.safetensors")
    fresh = MG.resnet20(option)
    fresh.load_state_dict(back, strict=True)
    np.testing.assert_array_equal(fresh.eval()(mg.Tensor(x)).data, got)


@pytest.mark.parametrize("option", ["A", "B"])
def test_train_mode_gradients_match_torch(option):
    tnet = _trained_torch(option).train()
    net = MG.resnet20(option).double()
    net.load_state_dict(_state_numpy(tnet, np.float64), strict=True)
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((4, 3, 16, 16)), rng.integers(0, 10, 4)
    loss_t = torch.nn.functional.cross_entropy(tnet(torch.from_numpy(x)), torch.from_numpy(y))
    loss_t.backward()
    loss = mg.nn.functional.cross_entropy(net(mg.Tensor(x)), mg.Tensor(y))
    loss.backward()
    np.testing.assert_allclose(float(loss.data), loss_t.item(), rtol=1e-10)
    tparams = dict(tnet.named_parameters())
    for name, p in net.named_parameters():
        np.testing.assert_allclose(p.grad, tparams[name].grad.numpy(), rtol=1e-7, atol=1e-9, err_msg=name)
    for name, b in tnet.named_buffers():  # running statistics updated alike
        np.testing.assert_allclose(net.state_dict()[name], b.numpy(), rtol=1e-10, err_msg=name)


def test_sgd_momentum_loss_trajectory_matches_torch():
    tnet = _trained_torch("A", steps=1)
    net = MG.resnet20("A").double()
    net.load_state_dict(_state_numpy(tnet, np.float64), strict=True)
    topt = torch.optim.SGD(tnet.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    opt = mg.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    rng = np.random.default_rng(3)
    losses, tlosses = [], []
    for _ in range(3):
        x, y = rng.standard_normal((4, 3, 16, 16)), rng.integers(0, 10, 4)
        topt.zero_grad()
        lt = torch.nn.functional.cross_entropy(tnet(torch.from_numpy(x)), torch.from_numpy(y))
        lt.backward()
        topt.step()
        opt.zero_grad()
        lm = mg.nn.functional.cross_entropy(net(mg.Tensor(x)), mg.Tensor(y))
        lm.backward()
        opt.step()
        tlosses.append(lt.item())
        losses.append(float(lm.data))
    np.testing.assert_allclose(losses, tlosses, rtol=1e-8)
    assert len(set(np.round(tlosses, 6))) == 3  # the loss moves: the comparison is not of a constant
