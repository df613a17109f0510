"""weight_norm and spectral_norm parametrizations against PyTorch 2.13's torch.nn.utils.parametrizations: state_dict
keys and values, forward, gradients with respect to the originals, train against eval, power iterations (at
registration and per step), loading torch's state dict; remove_parametrizations; setting through the right
inverse."""
import numpy as np
import pytest
import torch
from torch.nn.utils import parametrizations as TP
from torch.nn.utils import parametrize as tparametrize

import minigrad as mg
from minigrad import Tensor, nn
from minigrad.nn.utils import parametrizations as P
from minigrad.nn.utils import parametrize


def pair(kind):
    """A torch module and a minigrad twin (float64) with the same weights."""
    torch.manual_seed(0)
    if kind == "linear":
        t, m = torch.nn.Linear(5, 4).double(), nn.Linear(5, 4, dtype=np.float64)
    else:
        t, m = torch.nn.Conv2d(3, 4, 3).double(), nn.Conv2d(3, 4, 3, dtype=np.float64)
    m.load_state_dict({k: v.numpy() for k, v in t.state_dict().items()})
    return t, m


def x_for(kind, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((6, 5) if kind == "linear" else (2, 3, 7, 7))


def step(t, m, x, dy):
    """Forward both, backward a random dy; returns (torch output, minigrad output), zeroing grads first."""
    t.zero_grad()
    m.zero_grad()
    yt = t(torch.tensor(x))
    yt.backward(torch.tensor(dy))
    ym = m(Tensor(x))
    ym.backward(Tensor(dy))
    return yt.detach().numpy(), ym.data


def check_same(t, m, what, tol=1e-12):
    tsd, msd = t.state_dict(), m.state_dict()
    assert list(tsd) == list(msd), what
    for k in tsd:
        np.testing.assert_allclose(msd[k], tsd[k].numpy(), rtol=tol, atol=tol, err_msg=f"{what}: {k}")
    tgrads = {k: p.grad for k, p in t.named_parameters()}
    for k, p in m.named_parameters():
        if p.grad is not None or tgrads.get(k) is not None:
            np.testing.assert_allclose(p.grad.data, tgrads[k].numpy(), rtol=tol, atol=tol, err_msg=f"{what}: d{k}")


@pytest.mark.parametrize("kind,dim", [("linear", 0), ("linear", 1), ("linear", None), ("linear", -1),
                                      ("conv", 0), ("conv", 1), ("conv", -2), ("conv", None)])
def test_weight_norm_matches_torch(kind, dim):
    t, m = pair(kind)
    TP.weight_norm(t, dim=dim)
    P.weight_norm(m, dim=dim)
    assert type(m).__name__ == type(t).__name__
    x = x_for(kind)
    yt, ym = step(t, m, x, np.random.default_rng(2).standard_normal(t(torch.tensor(x)).shape))
    np.testing.assert_allclose(ym, yt, rtol=1e-12, atol=1e-12)
    check_same(t, m, "weight_norm")
    np.testing.assert_allclose(m.weight.data, t.weight.detach().numpy(), rtol=1e-13, atol=1e-14)
    names = [k for k, _ in m.named_parameters()]
    assert "parametrizations.weight.original0" in names and "parametrizations.weight.original1" in names


@pytest.mark.parametrize("kind,dim,n_iter", [("linear", None, 1), ("linear", 1, 3), ("conv", None, 1),
                                             ("conv", 1, 2), ("conv", -1, 1)])
def test_spectral_norm_matches_torch(kind, dim, n_iter):
    """torch's buffers (after its 15 registration iterations) loaded into minigrad, then several training steps
    (n_iter power iterations each) and eval steps (none), compared each time."""
    t, m = pair(kind)
    TP.spectral_norm(t, n_power_iterations=n_iter, dim=dim)
    P.spectral_norm(m, n_power_iterations=n_iter, dim=dim)
    assert list(m.state_dict()) == list(t.state_dict())
    m.load_state_dict({k: v.numpy() for k, v in t.state_dict().items()})
    rng = np.random.default_rng(3)
    x = x_for(kind)
    shape = t(torch.tensor(x)).shape  # NOTE: train mode: one more power step on torch's side
    m(Tensor(x))
    for mode in ("train", "train", "train", "eval", "eval", "train"):
        getattr(t, mode)()
        getattr(m, mode)()
        u_before = m.state_dict()["parametrizations.weight.0._u"]
        yt, ym = step(t, m, x, rng.standard_normal(shape))
        np.testing.assert_allclose(ym, yt, rtol=1e-11, atol=1e-12, err_msg=mode)
        check_same(t, m, f"spectral_norm {mode}", tol=1e-11)
        moved = not np.array_equal(u_before, m.state_dict()["parametrizations.weight.0._u"])
        assert moved == (mode == "train") or np.allclose(u_before, m.state_dict()["parametrizations.weight.0._u"])


def test_spectral_norm_registration_power_iterations():
    """The power iterations at registration, from torch's own initial draws of u and v."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(6, 4).double()
    torch.manual_seed(5)
    u0, v0 = torch.empty(4, dtype=torch.float64).normal_(0, 1), torch.empty(6, dtype=torch.float64).normal_(0, 1)
    torch.manual_seed(5)
    TP.spectral_norm(lin)
    sd = lin.state_dict()
    m = nn.Linear(6, 4, dtype=np.float64)
    m.weight.data[...] = sd["parametrizations.weight.original"].numpy()
    P.spectral_norm(m)
    sn = m.parametrizations.weight[0]
    sn._u.data[...] = u0.numpy() / np.linalg.norm(u0.numpy())
    sn._v.data[...] = v0.numpy() / np.linalg.norm(v0.numpy())
    # NOTE: 15 at registration, then one more: register_parametrization checks the parametrization by calling
    # it, in training mode (PyTorch's order, which minigrad keeps)
    sn._power_method(m.parametrizations.weight.original.data, 16)
    np.testing.assert_allclose(sn._u.data, sd["parametrizations.weight.0._u"].numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(sn._v.data, sd["parametrizations.weight.0._v"].numpy(), rtol=1e-12, atol=1e-13)
    # and minigrad's own registration converges to the top singular value
    m2 = P.spectral_norm(nn.Linear(6, 4, dtype=np.float64), n_power_iterations=30)
    w = m2.parametrizations.weight.original.data
    m2(Tensor(np.ones((1, 6))))
    np.testing.assert_allclose(np.linalg.svd(m2.weight.data, compute_uv=False)[0], 1.0, rtol=1e-6)
    assert np.linalg.svd(w, compute_uv=False)[0] > 0


def test_spectral_norm_1d_weight_matches_torch():
    torch.manual_seed(0)
    t = torch.nn.BatchNorm1d(5).double()
    with torch.no_grad():
        t.weight.normal_()
    m = nn.BatchNorm1d(5, dtype=np.float64)
    m.weight.data[...] = t.weight.detach().numpy()
    TP.spectral_norm(t)
    P.spectral_norm(m)
    x = np.random.default_rng(0).standard_normal((8, 5))
    yt, ym = step(t, m, x, np.random.default_rng(1).standard_normal((8, 5)))
    np.testing.assert_allclose(ym, yt, rtol=1e-12, atol=1e-12)
    check_same(t, m, "spectral_norm 1d")


@pytest.mark.parametrize("which", ["weight_norm", "spectral_norm"])
def test_torch_state_dict_loads_into_minigrad(which):
    t, m = pair("conv")
    getattr(TP, which)(t)
    getattr(P, which)(m)
    with torch.no_grad():
        for p in t.parameters():
            p.add_(0.1 * torch.randn_like(p))
    t.eval()
    m.eval()
    m.load_state_dict({k: v.numpy() for k, v in t.state_dict().items()})
    x = x_for("conv", 7)
    np.testing.assert_allclose(m(Tensor(x)).data, t(torch.tensor(x)).detach().numpy(), rtol=1e-12, atol=1e-12)


def test_remove_parametrizations():
    t, m = pair("linear")
    TP.weight_norm(t)
    P.weight_norm(m)
    with pytest.raises(ValueError, match="sequence of tensors"):
        parametrize.remove_parametrizations(m, "weight", leave_parametrized=False)
    value = m.weight.data.copy()
    parametrize.remove_parametrizations(m, "weight")
    tparametrize.remove_parametrizations(t, "weight")
    assert type(m) is nn.Linear and sorted(m.state_dict()) == sorted(t.state_dict()) == ["bias", "weight"]
    np.testing.assert_array_equal(m.weight.data, value)
    assert isinstance(m.weight, nn.Parameter) and m.weight.requires_grad
    m2 = P.spectral_norm(nn.Linear(3, 2))
    original = m2.parametrizations.weight.original
    parametrize.remove_parametrizations(m2, "weight", leave_parametrized=False)
    assert m2.weight is original and not parametrize.is_parametrized(m2)
    with pytest.raises(ValueError, match="no parametrization"):
        parametrize.remove_parametrizations(m2, "weight")


def test_setting_a_parametrized_weight_goes_through_the_right_inverse():
    m = P.weight_norm(nn.Linear(4, 3, dtype=np.float64))
    w = np.arange(12.0).reshape(3, 4) + 1
    m.weight = Tensor(w)
    np.testing.assert_allclose(m.weight.data, w, rtol=1e-14)
    np.testing.assert_allclose(m.parametrizations.weight.original0.data.ravel(), np.linalg.norm(w, axis=1))


def test_bad_arguments():
    with pytest.raises(ValueError, match="dim must be"):
        P.weight_norm(nn.Linear(3, 2), dim=2)
    with pytest.raises(ValueError, match="n_power_iterations"):
        P.spectral_norm(nn.Linear(3, 2), n_power_iterations=0)
    with pytest.raises(IndexError, match="dim"):
        P.spectral_norm(nn.Linear(3, 2), dim=3)
    with pytest.raises(ValueError, match="no parameter or buffer 'kernel'"):
        P.weight_norm(nn.Linear(3, 2), name="kernel")
    mg.manual_seed(0)
