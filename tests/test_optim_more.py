"""RMSprop, Adadelta, Adagrad and the schedulers MultiStepLR, ExponentialLR, LambdaLR, LinearLR, SequentialLR,
ReduceLROnPlateau against PyTorch: the same parameters and gradients give the same trajectory (float64, 1e-12
relative), the same lr sequences, and state dicts resume to the same trajectory."""
import copy

import numpy as np
import pytest
import torch

import minigrad as mg
from minigrad import Tensor, optim
from minigrad.nn import Parameter
from minigrad.optim import lr_scheduler

SHAPES = [(4, 3), (5,), (2, 3, 2)]


def _params(seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in SHAPES]
    return [Parameter(a.copy()) for a in arrays], [torch.nn.Parameter(torch.tensor(a)) for a in arrays]


def _grads(rng, params, tparams):
    for p, tp in zip(params, tparams):
        g = rng.standard_normal(p.shape)
        p.grad, tp.grad = Tensor(g.copy()), torch.tensor(g)


def _close(params, tparams):
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12, atol=1e-14)


CASES = {
    "rmsprop": dict(cls="RMSprop", kw={}),
    "rmsprop-all": dict(cls="RMSprop", kw=dict(lr=0.03, alpha=0.9, eps=1e-6, weight_decay=0.1, momentum=0.8,
                                               centered=True)),
    "rmsprop-centered-lowalpha": dict(cls="RMSprop", kw=dict(lr=0.01, alpha=0.3, centered=True)),  # lerp weight >= .5
    "rmsprop-max": dict(cls="RMSprop", kw=dict(lr=0.01, momentum=0.5, maximize=True)),
    "adadelta": dict(cls="Adadelta", kw={}),
    "adadelta-all": dict(cls="Adadelta", kw=dict(lr=0.5, rho=0.8, eps=1e-4, weight_decay=0.05, maximize=True)),
    "adagrad": dict(cls="Adagrad", kw={}),
    "adagrad-all": dict(cls="Adagrad", kw=dict(lr=0.1, lr_decay=0.05, weight_decay=0.02,
                                               initial_accumulator_value=0.3, eps=1e-6, maximize=True)),
}


def _make(case, params, groups=False):
    spec = CASES[case]
    if groups:  # two groups, the second with its own lr
        params = [{"params": params[:2]}, {"params": params[2:], "lr": 0.07}]
    return getattr(optim, spec["cls"])(params, **spec["kw"]), getattr(torch.optim, spec["cls"])


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("groups", [False, True])
def test_optimizer_matches_torch(case, groups):
    ours, theirs = _params()
    opt, tcls = _make(case, ours, groups)
    tparams = [{"params": theirs[:2]}, {"params": theirs[2:], "lr": 0.07}] if groups else theirs
    topt = tcls(tparams, **CASES[case]["kw"])
    rng = np.random.default_rng(1)
    for _ in range(12):
        _grads(rng, ours, theirs)
        opt.step()
        topt.step()
        _close(ours, theirs)
    # the state holds what PyTorch's holds, with the same values
    for p, tp in zip(ours, theirs):
        s, ts = opt.state[p], topt.state[tp]
        assert set(s) == set(ts)
        assert s["step"] == ts["step"].item() == 12
        for k in set(s) - {"step"}:
            np.testing.assert_allclose(s[k], ts[k].numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("case", sorted(CASES))
def test_float32_params_stay_float32(case):
    p = Parameter(np.arange(6, dtype=np.float32).reshape(2, 3))
    tp = torch.nn.Parameter(torch.tensor(p.data.copy()))
    opt, tcls = _make(case, [p])
    topt = tcls([tp], **CASES[case]["kw"])
    for i in range(3):
        g = np.full((2, 3), 0.5 + i, np.float32)
        p.grad, tp.grad = Tensor(g), torch.tensor(g)
        opt.step()
        topt.step()
    assert p.data.dtype == np.float32
    np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", sorted(CASES))
def test_state_dict_resumes_to_the_same_trajectory(case):
    ours, theirs = _params()
    opt, _ = _make(case, ours, groups=True)
    rng = np.random.default_rng(2)
    for _ in range(4):
        _grads(rng, ours, theirs)
        opt.step()
    state = copy.deepcopy(opt.state_dict())
    assert state["param_groups"][1]["params"] == [2]
    clones = [Parameter(p.data.copy()) for p in ours]
    opt2, _ = _make(case, clones, groups=True)
    opt2.load_state_dict(state)
    assert opt2.param_groups[1]["lr"] == 0.07
    for _ in range(5):
        g = [rng.standard_normal(p.shape) for p in ours]
        for o, ps in ((opt, ours), (opt2, clones)):
            for p, gi in zip(ps, g):
                p.grad = Tensor(gi.copy())
            o.step()
    for a, b in zip(ours, clones):
        np.testing.assert_array_equal(a.data, b.data)
    # and through minigrad.save / load
    import io
    buf = io.BytesIO()
    mg.save(opt.state_dict(), buf)
    buf.seek(0)
    back = mg.load(buf)
    assert back["param_groups"] == opt.state_dict()["param_groups"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_zero_size_parameter_is_a_no_op(case):
    ours, theirs = _params()
    empty = Parameter(np.zeros((0, 3)))
    opt, _ = _make(case, [empty] + ours)
    ref, _ = _make(case, [Parameter(p.data.copy()) for p in ours])
    rng = np.random.default_rng(3)
    for _ in range(3):
        g = [rng.standard_normal(p.shape) for p in ours]
        empty.grad = Tensor(np.zeros((0, 3)))
        for p, gi in zip(ours, g):
            p.grad = Tensor(gi.copy())
        for p, gi in zip(ref.param_groups[0]["params"], g):
            p.grad = Tensor(gi.copy())
        opt.step()
        ref.step()
    assert empty.data.shape == (0, 3) and empty not in opt.state
    for a, b in zip(ours, ref.param_groups[0]["params"]):
        np.testing.assert_array_equal(a.data, b.data)


def test_validation():
    params, _ = _params()
    for cls, kw, what in [(optim.RMSprop, dict(lr=-1), "learning rate"), (optim.RMSprop, dict(alpha=-0.1), "alpha"),
                          (optim.RMSprop, dict(momentum=-1), "momentum"), (optim.Adadelta, dict(rho=1.5), "rho"),
                          (optim.Adadelta, dict(eps=-1), "eps"), (optim.Adagrad, dict(lr_decay=-1), "lr_decay"),
                          (optim.Adagrad, dict(initial_accumulator_value=-1), "initial_accumulator_value"),
                          (optim.Adagrad, dict(weight_decay=-1), "weight_decay")]:
        with pytest.raises(ValueError, match=what):
            cls(params, **kw)
    with pytest.raises(ValueError, match="capturable"):
        optim.Adadelta(params, capturable=True)
    with pytest.raises(ValueError, match="differentiable"):
        optim.RMSprop(params, differentiable=True)


# ------------------------------------------------------------------------------------------------ schedulers

def _lrs(make_ours, make_theirs, n, groups=1):
    params, tparams = _params()
    if groups == 2:
        params = [{"params": params[:2]}, {"params": params[2:], "lr": 0.3}]
        tparams = [{"params": tparams[:2]}, {"params": tparams[2:], "lr": 0.3}]
    opt, topt = optim.SGD(params, lr=0.1), torch.optim.SGD(tparams, lr=0.1)
    s, ts = make_ours(opt), make_theirs(topt)
    ours, theirs = [s.get_last_lr()], [ts.get_last_lr()]
    for _ in range(n):
        opt.step()
        topt.step()
        s.step()
        ts.step()
        ours.append(s.get_last_lr())
        theirs.append(ts.get_last_lr())
    assert [g["lr"] for g in opt.param_groups] == ours[-1]
    return ours, theirs, s


class Warmup:
    """A callable object: its state is saved by LambdaLR.state_dict."""

    def __init__(self, n):
        self.n = n

    def __call__(self, epoch):
        return min(1.0, (epoch + 1) / self.n)


def _seq(lib):
    return lambda o: lib.SequentialLR(o, [lib.LinearLR(o, 0.1, total_iters=4), lib.ExponentialLR(o, 0.8),
                                          lib.MultiStepLR(o, [2, 5], 0.5)], milestones=[5, 9])


T = torch.optim.lr_scheduler
SCHEDULERS = {
    "multistep": (lambda o: lr_scheduler.MultiStepLR(o, [3, 7, 7, 12], 0.5), lambda o: T.MultiStepLR(o, [3, 7, 7, 12],
                                                                                                      0.5), 20),
    "exponential": (lambda o: lr_scheduler.ExponentialLR(o, 0.93), lambda o: T.ExponentialLR(o, 0.93), 25),
    "lambda": (lambda o: lr_scheduler.LambdaLR(o, lambda e: 0.95 ** e + 0.01 * e),
               lambda o: T.LambdaLR(o, lambda e: 0.95 ** e + 0.01 * e), 20),
    "lambda-object": (lambda o: lr_scheduler.LambdaLR(o, Warmup(6)), lambda o: T.LambdaLR(o, Warmup(6)), 12),
    "linear": (lambda o: lr_scheduler.LinearLR(o), lambda o: T.LinearLR(o), 10),
    "linear-down": (lambda o: lr_scheduler.LinearLR(o, 1.0, 0.05, total_iters=7),
                    lambda o: T.LinearLR(o, 1.0, 0.05, total_iters=7), 12),
    "sequential": (_seq(lr_scheduler), _seq(T), 20),
    "sequential-cosine-step": (
        lambda o: lr_scheduler.SequentialLR(o, [lr_scheduler.LinearLR(o, 0.5, total_iters=2),
                                                lr_scheduler.CosineAnnealingLR(o, 6, 0.001),
                                                lr_scheduler.StepLR(o, 2, 0.5)], milestones=[3, 10]),
        lambda o: T.SequentialLR(o, [T.LinearLR(o, 0.5, total_iters=2), T.CosineAnnealingLR(o, 6, 0.001),
                                     T.StepLR(o, 2, 0.5)], milestones=[3, 10]), 18),
}


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
@pytest.mark.parametrize("groups", [1, 2])
def test_scheduler_lr_sequence_matches_torch(name, groups):
    ours, theirs, _ = _lrs(*SCHEDULERS[name], groups=groups)
    np.testing.assert_allclose(ours, theirs, rtol=1e-13, atol=0)


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_scheduler_state_dict_resumes(name):
    make, make_t, n = SCHEDULERS[name]
    _, _, s = _lrs(make, make_t, n // 2)
    state = copy.deepcopy(s.state_dict())
    import io
    buf = io.BytesIO()
    mg.save(state, buf)  # a scheduler's state is saveable
    buf.seek(0)
    state = mg.load(buf)
    params, _ = _params()
    opt = optim.SGD(params, lr=0.1)
    s2 = make(opt)
    opt.load_state_dict({"state": {}, "param_groups": s.optimizer.state_dict()["param_groups"]})
    s2.load_state_dict(state)
    for _ in range(n - n // 2):
        s.step()
        s2.step()
        assert s2.get_last_lr() == s.get_last_lr()
        assert [g["lr"] for g in opt.param_groups] == s.get_last_lr()


def test_lambda_state_dict_keeps_callable_objects_only():
    params, _ = _params()
    opt = optim.SGD([{"params": params[:1]}, {"params": params[1:]}], lr=0.1)
    s = lr_scheduler.LambdaLR(opt, [Warmup(4), lambda e: 1.0])
    assert s.state_dict()["lr_lambdas"] == [{"n": 4}, None]
    w = Warmup(9)
    s2 = lr_scheduler.LambdaLR(opt, [w, lambda e: 1.0])
    s2.load_state_dict(s.state_dict())
    assert w.n == 4


def _plateau_run(lib, opt, metrics, **kw):
    s = lib.ReduceLROnPlateau(opt, **kw)
    out = []
    for m in metrics:
        s.step(m)
        out.append(s.get_last_lr())
    return out, s


PLATEAU = [dict(), dict(mode="max", factor=0.5, patience=1, threshold=0.01, cooldown=2),
           dict(patience=0, threshold_mode="abs", threshold=0.05, min_lr=0.004),
           dict(mode="max", threshold_mode="abs", patience=2, factor=0.3, eps=1e-3, min_lr=[0.01, 0.02])]


@pytest.mark.parametrize("kw", PLATEAU)
def test_reduce_on_plateau_matches_torch(kw):
    metrics = list(np.random.default_rng(4).uniform(0, 1, 40).round(2)) + [0.5] * 20
    params, tparams = _params()
    groups = [{"params": params[:2]}, {"params": params[2:], "lr": 0.3}]
    tgroups = [{"params": tparams[:2]}, {"params": tparams[2:], "lr": 0.3}]
    ours, s = _plateau_run(lr_scheduler, optim.SGD(groups, lr=0.1), metrics, **kw)
    theirs, _ = _plateau_run(T, torch.optim.SGD(tgroups, lr=0.1), metrics, **kw)
    np.testing.assert_allclose(ours, theirs, rtol=1e-13, atol=0)
    assert len({tuple(x) for x in ours}) > 1  # the schedule did reduce
    # resume mid-way from a state dict
    params2, _ = _params()
    opt2 = optim.SGD([{"params": params2[:2]}, {"params": params2[2:], "lr": 0.3}], lr=0.1)
    half, s_half = _plateau_run(lr_scheduler, opt2, metrics[:25], **kw)
    params3, _ = _params()
    opt3 = optim.SGD([{"params": params3[:2]}, {"params": params3[2:], "lr": 0.3}], lr=0.1)
    opt3.load_state_dict({"state": {}, "param_groups": opt2.state_dict()["param_groups"]})
    s3 = lr_scheduler.ReduceLROnPlateau(opt3, **kw)
    s3.load_state_dict(copy.deepcopy(s_half.state_dict()))
    rest = []
    for m in metrics[25:]:
        s3.step(mg.tensor(m))  # a one-element tensor works as a metric
        rest.append(s3.get_last_lr())
    np.testing.assert_allclose(half + rest, theirs, rtol=1e-13, atol=0)


def test_scheduler_validation():
    params, _ = _params()
    opt = optim.SGD(params, lr=0.1)
    with pytest.raises(ValueError, match="start_factor"):
        lr_scheduler.LinearLR(opt, start_factor=0)
    with pytest.raises(ValueError, match="end_factor"):
        lr_scheduler.LinearLR(opt, end_factor=1.5)
    with pytest.raises(ValueError, match="factor"):
        lr_scheduler.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="mode"):
        lr_scheduler.ReduceLROnPlateau(opt, mode="best")
    with pytest.raises(ValueError, match="lr_lambdas"):
        lr_scheduler.LambdaLR(opt, [lambda e: 1, lambda e: 1])
    with pytest.raises(ValueError, match="milestone"):
        lr_scheduler.SequentialLR(opt, [lr_scheduler.ExponentialLR(opt, 0.9)], milestones=[3])
    other = optim.SGD(_params()[0], lr=0.1)
    with pytest.raises(ValueError, match="another optimizer"):
        lr_scheduler.SequentialLR(opt, [lr_scheduler.ExponentialLR(other, 0.9)], milestones=[])
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        lr_scheduler.SequentialLR(opt, [lr_scheduler.ReduceLROnPlateau(opt)], milestones=[])
