"""Optimizers, schedulers and clip_grad_norm_ against PyTorch: same parameters, same gradients, same results."""
import copy

import numpy as np
import pytest
import torch

import minigrad as mg
from minigrad import Tensor, optim
from minigrad.nn import Parameter
from minigrad.nn.utils import clip_grad_norm_
from minigrad.optim import lr_scheduler

SHAPES = [(4, 3), (5,), (2, 3, 2)]


def _params(seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in SHAPES]
    return [Parameter(a.copy()) for a in arrays], [torch.nn.Parameter(torch.tensor(a)) for a in arrays]


def _run(make_ours, make_theirs, steps=6, groups=False):
    ours, theirs = _params()
    if groups:  # two groups, the second with its own lr
        opt = make_ours([{"params": ours[:2]}, {"params": ours[2:], "lr": 0.03}])
        topt = make_theirs([{"params": theirs[:2]}, {"params": theirs[2:], "lr": 0.03}])
    else:
        opt, topt = make_ours(ours), make_theirs(theirs)
    rng = np.random.default_rng(1)
    for _ in range(steps):
        for p, tp in zip(ours, theirs):
            g = rng.standard_normal(p.shape)
            p.grad, tp.grad = Tensor(g.copy()), torch.tensor(g)
        opt.step()
        topt.step()
        for p, tp in zip(ours, theirs):
            np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12, atol=1e-14)
    return opt, ours


CASES = {
    "sgd": (lambda p: optim.SGD(p, lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    "sgd-momentum-wd": (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=1e-2),
                        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=1e-2)),
    "sgd-nesterov": (lambda p: optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
                     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    "adam": (lambda p: optim.Adam(p, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1),
             lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)),
    "adamw": (lambda p: optim.AdamW(p, lr=0.01), lambda p: torch.optim.AdamW(p, lr=0.01)),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("groups", [False, True])
@pytest.mark.parametrize("backend", mg.available_backends())
def test_optimizer_matches_torch(case, groups, backend):
    with mg.using_backend(backend):  # the update kernels of every backend
        _run(*CASES[case], groups=groups)


@pytest.mark.parametrize("case", sorted(CASES))
def test_update_follows_replaced_data_state_and_layout(case):
    """The flat views the update kernels get are refreshed when a parameter's data or its state is replaced, and
    a non-contiguous parameter is updated in place by the reference rule: the results equal PyTorch's."""
    make_ours, make_theirs = CASES[case]
    ours, theirs = _params()
    ours[0].data = np.asfortranarray(ours[0].data)  # (4, 3) in Fortran order: not C-contiguous
    opt, topt = make_ours(ours), make_theirs(theirs)
    rng = np.random.default_rng(1)
    for step in range(6):
        for p, tp in zip(ours, theirs):
            g = rng.standard_normal(p.shape)
            p.grad, tp.grad = Tensor(g.copy()), torch.tensor(g)
        if step == 2:
            ours[1].data = ours[1].data.copy()  # a new array object for the same values
        if step == 4:
            opt.load_state_dict(opt.state_dict())  # new state arrays
        opt.step()
        topt.step()
        for p, tp in zip(ours, theirs):
            np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("case", ["sgd-momentum-wd", "adamw"])
def test_state_dict_round_trip_continues_identically(case):
    make_ours, _ = CASES[case]
    opt, params = _run(*CASES[case], steps=3)
    state = copy.deepcopy(opt.state_dict())
    assert sorted(state["state"]) == [0, 1, 2]
    assert state["param_groups"][0]["params"] == [0, 1, 2]
    # a fresh optimizer over copies of the parameters, loaded from the state, must step exactly as the original
    clones = [Parameter(p.data.copy()) for p in params]
    opt2 = make_ours(clones)
    opt2.load_state_dict(state)
    g = [np.random.default_rng(9).standard_normal(p.shape) for p in params]
    for o, ps in ((opt, params), (opt2, clones)):
        for p, gi in zip(ps, g):
            p.grad = Tensor(gi.copy())
        o.step()
    for a, b in zip(params, clones):
        np.testing.assert_array_equal(a.data, b.data)
    # state_dict arrays are copies, not views of the live state
    key = next(iter(state["state"][0]))
    if isinstance(state["state"][0][key], np.ndarray):
        assert not np.shares_memory(opt.state_dict()["state"][0][key], next(iter(opt.state.values()))[key])


def test_zero_grad():
    params, _ = _params()
    opt = optim.SGD(params, lr=0.1)
    for p in params:
        p.grad = Tensor(np.ones(p.shape))
    opt.zero_grad(set_to_none=False)
    assert all(not p.grad.data.any() for p in params)
    opt.zero_grad()
    assert all(p.grad is None for p in params)


def test_validation():
    params, _ = _params()
    with pytest.raises(ValueError, match="learning rate"):
        optim.SGD(params, lr=-1)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD(params, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="more than one group"):
        optim.Adam([{"params": params}, {"params": params[:1]}])
    opt = optim.SGD(params, lr=0.1)
    with pytest.raises(ValueError, match="groups"):
        opt.load_state_dict({"state": {}, "param_groups": [{"lr": 0.1, "params": [0]}]})


def _lrs(make_ours, make_theirs, n):
    params, tparams = _params()
    opt, topt = optim.SGD(params, lr=0.1), torch.optim.SGD(tparams, lr=0.1)
    s, ts = make_ours(opt), make_theirs(topt)
    ours, theirs = [s.get_last_lr()[0]], [ts.get_last_lr()[0]]
    for _ in range(n):
        opt.step()
        topt.step()
        s.step()
        ts.step()
        ours.append(s.get_last_lr()[0])
        theirs.append(ts.get_last_lr()[0])
    assert opt.param_groups[0]["lr"] == ours[-1]
    return ours, theirs, s


SCHEDULERS = {
    "step": (lambda o: lr_scheduler.StepLR(o, 3, 0.5), lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5), 20),
    "cosine": (lambda o: lr_scheduler.CosineAnnealingLR(o, 7, 0.001),
               lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 7, 0.001), 30),
    "onecycle": (lambda o: lr_scheduler.OneCycleLR(o, 0.5, epochs=3, steps_per_epoch=11),
                 lambda o: torch.optim.lr_scheduler.OneCycleLR(o, 0.5, epochs=3, steps_per_epoch=11,
                                                               cycle_momentum=False), 33),
    "onecycle-linear": (lambda o: lr_scheduler.OneCycleLR(o, 0.2, total_steps=20, pct_start=0.25,
                                                          anneal_strategy="linear", div_factor=10),
                        lambda o: torch.optim.lr_scheduler.OneCycleLR(o, 0.2, total_steps=20, pct_start=0.25,
                                                                      anneal_strategy="linear", div_factor=10,
                                                                      cycle_momentum=False), 19),
}


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_scheduler_lr_sequence_matches_torch(name):
    ours, theirs, _ = _lrs(*SCHEDULERS[name])
    np.testing.assert_allclose(ours, theirs, rtol=1e-13, atol=0)


def test_scheduler_state_dict_resumes():
    make = SCHEDULERS["onecycle"][0]
    _, _, s = _lrs(*SCHEDULERS["onecycle"][:2], 10)
    params, _ = _params()
    opt = optim.SGD(params, lr=0.1)
    opt.load_state_dict({"state": {}, "param_groups": s.optimizer.state_dict()["param_groups"]})
    s2 = make(opt)
    s2.load_state_dict(s.state_dict())
    s.step()
    s2.step()
    assert s2.get_last_lr() == s.get_last_lr()


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    params, tparams = _params()
    rng = np.random.default_rng(3)
    for p, tp in zip(params, tparams):
        g = rng.standard_normal(p.shape)
        p.grad, tp.grad = Tensor(g.copy()), torch.tensor(g)
    total = clip_grad_norm_(params, max_norm, norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tparams, max_norm, norm_type)
    # PyTorch returns the norm as a 0-d tensor in the gradients' dtype
    assert isinstance(total, Tensor) and total.shape == () and total.dtype == np.float64
    np.testing.assert_allclose(total.item(), ttotal.item(), rtol=1e-12)
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p.grad.data, tp.grad.numpy(), rtol=1e-12)
    assert optim.clip_grad_norm_ is clip_grad_norm_


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_clip_grad_norm_nonfinite_as_torch(bad):
    """A non-finite norm: error_if_nonfinite=True raises and leaves the gradients; False scales them as PyTorch
    does (a nan norm makes every gradient nan)."""
    params, tparams = _params()
    rng = np.random.default_rng(4)
    for i, (p, tp) in enumerate(zip(params, tparams)):
        g = rng.standard_normal(p.shape)
        if i == 0:
            g.reshape(-1)[0] = bad
        p.grad, tp.grad = Tensor(g.copy()), torch.tensor(g)
    before = [p.grad.data.copy() for p in params]
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p.grad.data, b)
    total = clip_grad_norm_(params, 1.0)
    ttotal = torch.nn.utils.clip_grad_norm_(tparams, 1.0)
    np.testing.assert_array_equal(total.item(), ttotal.item())
    for p, tp in zip(params, tparams):
        np.testing.assert_array_equal(p.grad.data, tp.grad.numpy())


def test_clip_grad_norm_no_grads_and_float32():
    params, _ = _params()
    assert clip_grad_norm_(params, 1.0).item() == 0.0
    p = Tensor(np.zeros(3, np.float32), requires_grad=True)
    p.grad = Tensor(np.array([3.0, 4.0, 0.0], np.float32))
    total = clip_grad_norm_([p], 1.0)
    assert total.dtype == np.float32 and total.item() == 5.0
    np.testing.assert_allclose(p.grad.data, [0.6, 0.8, 0.0], rtol=1e-6)


def test_clip_grad_value_matches_torch():
    from minigrad.nn.utils import clip_grad_value_
    params, tparams = _params()
    rng = np.random.default_rng(5)
    for p, tp in zip(params, tparams):
        g = 2 * rng.standard_normal(p.shape)
        p.grad, tp.grad = Tensor(g.copy()), torch.tensor(g)
    assert clip_grad_value_(params, 0.7) is None
    torch.nn.utils.clip_grad_value_(tparams, 0.7)
    for p, tp in zip(params, tparams):
        np.testing.assert_array_equal(p.grad.data, tp.grad.numpy())


@pytest.mark.parametrize("backend", mg.available_backends())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["sgd", "sgd-momentum-wd", "sgd-nesterov"])
def test_sgd_unchecked_calls_equal_the_checked_ones(case, dtype, backend, monkeypatch):
    """From its second step SGD calls the update kernel without the contract's checks (they ran on the first call
    with the same arrays); the parameters stay bit for bit those of the checked calls, through a replaced parameter
    array, a reloaded state, a non-contiguous gradient, a thread-count and a backend change, and a gradient of the
    wrong dtype is still refused by name."""
    from minigrad.optim import optimizer as optimizer_module

    def run(unchecked):
        if not unchecked:
            # NOTE: no unchecked call is ever prepared (SGD.step and _update read what this leaves)
            monkeypatch.setattr(optimizer_module, "_remember_raw", lambda *a: None)
        ours, _ = _params()
        for p in ours:
            p.data = p.data.astype(dtype)
        opt = CASES[case][0](ours)
        rng = np.random.default_rng(1)
        with mg.using_backend(backend):
            for step in range(8):
                for p in ours:
                    g = rng.standard_normal(p.shape).astype(dtype)
                    p.grad = Tensor(np.asfortranarray(g) if step == 3 else g)
                if step == 2:
                    ours[1].data = ours[1].data.copy()
                if step == 4:
                    opt.load_state_dict(opt.state_dict())
                if step in (5, 7):
                    mg.set_num_threads(2 if step == 5 else 1)
                with mg.using_backend("numpy" if step == 6 else backend):
                    opt.step()
            ours[0].grad = Tensor(np.ones(ours[0].shape, np.float16))
            with pytest.raises(TypeError, match="'grad' must have dtype"):
                opt.step()
        monkeypatch.undo()
        return [p.data.copy() for p in ours]

    threads = mg.get_num_threads()
    try:
        for a, b in zip(run(True), run(False)):
            assert a.dtype == dtype
            np.testing.assert_array_equal(a, b)
    finally:
        mg.set_num_threads(threads)
