"""Higher-order gradients: backward(create_graph=True), autograd.grad, gradgradcheck, vjp/jvp/hvp, against float64
finite differences and PyTorch's double backward."""
import gc
import weakref

import numpy as np
import pytest
import torch

import minigrad as mg
import minigrad.nn.functional as F
from minigrad.autograd import functional as AF
from minigrad.tensor import Tanh

RNG = np.random.default_rng(0)


def arr(*shape, pos=False):
    a = RNG.standard_normal(shape)
    return np.abs(a) + 0.5 if pos else a


def T(*shape, pos=False):
    return mg.Tensor(arr(*shape, pos=pos), requires_grad=True)


TGT = np.array([0, 2, 1])
RM, RV = np.abs(arr(3)), arr(3, pos=True)

# name: (fn, input shapes or tensors); every op whose backward is differentiable
OPS = {
    "add": (lambda a, b: a + b * b, lambda: [T(3, 4), T(4)]),
    "sub_neg": (lambda a, b: -(a - b) * a, lambda: [T(3, 4), T(3, 4)]),
    "mul": (lambda a, b: a * b * a, lambda: [T(3, 4), T(1, 4)]),
    "div": (lambda a, b: a / b, lambda: [T(3, 4), T(3, 4, pos=True)]),
    "pow_scalar": (lambda a: a ** 3, lambda: [T(3, 4)]),
    "pow_tensor": (lambda a, b: a ** b, lambda: [T(3, 4, pos=True), T(3, 4)]),
    "exp": (lambda a: a.exp(), lambda: [T(3)]),
    "log": (lambda a: a.log(), lambda: [T(3, pos=True)]),
    "sqrt": (lambda a: a.sqrt(), lambda: [T(3, pos=True)]),
    "tanh": (lambda a: a.tanh(), lambda: [T(3, 4)]),
    "sigmoid": (lambda a: a.sigmoid(), lambda: [T(3, 4)]),
    "relu": (lambda a: a.relu() * a, lambda: [T(3, 4)]),
    "abs_clip": (lambda a: a.abs() * a.clip(-0.5, 0.5) * a, lambda: [T(3, 4)]),
    "sin_cos": (lambda a: a.sin() * a.cos(), lambda: [T(3, 4)]),
    "log1p": (lambda a: a.log1p(), lambda: [T(3, pos=True)]),
    "max_min": (lambda a, b: mg.maximum(a, b) * mg.minimum(a, b) * a, lambda: [T(3, 4), T(3, 4)]),
    "where": (lambda a, b: mg.where(a.data > 0, a * a, b * a), lambda: [T(3, 4), T(3, 4)]),
    "sum": (lambda a: a.sum(1) ** 2, lambda: [T(3, 4)]),
    "mean": (lambda a: a.mean(0, keepdim=True) * a, lambda: [T(3, 4)]),
    "var_std": (lambda a: a.var(1) * a.std(0).sum(), lambda: [T(3, 4)]),
    "amax": (lambda a: a.amax(1) * a.sum(1), lambda: [T(3, 4)]),
    "max_dim": (lambda a: a.max(1).values ** 2, lambda: [T(3, 4)]),
    "logsumexp": (lambda a: a.logsumexp(1), lambda: [T(3, 4)]),
    "cumsum": (lambda a: a.cumsum(1) ** 2, lambda: [T(3, 4)]),
    "matmul": (lambda a, b: a @ b, lambda: [T(2, 3, 4), T(4, 5)]),
    "matvec": (lambda a, b: (a @ b) ** 2, lambda: [T(3, 4), T(4)]),
    "reshape_t": (lambda a: a.reshape(4, 3).T * a.reshape(4, 3).T, lambda: [T(3, 4)]),
    "permute_flip_roll": (lambda a: a.permute(2, 0, 1).flip(0).roll(1, 1) ** 2, lambda: [T(2, 3, 4)]),
    "index": (lambda a: a[[0, 0, 2]] ** 2, lambda: [T(3, 4)]),
    "slice": (lambda a: a[1:, ::2] ** 2, lambda: [T(3, 4)]),
    "gather": (lambda a: a.gather(1, mg.Tensor(np.array([[0, 0], [3, 1], [2, 2]]))) ** 2, lambda: [T(3, 4)]),
    "cat_stack": (lambda a, b: mg.cat([a * a, b], 1) * mg.stack([a, a], 2).sum(2)[:, :1], lambda: [T(3, 4), T(3, 2)]),
    "expand": (lambda a: a.expand(3, 4) * a, lambda: [T(1, 4)]),
    "linear": (lambda x, w, b: F.linear(x, w, b).tanh(), lambda: [T(3, 4), T(5, 4), T(5)]),
    "log_softmax": (lambda x: F.log_softmax(x, 1), lambda: [T(3, 4)]),
    "softmax": (lambda x: F.softmax(x, 0), lambda: [T(3, 4)]),
    "cross_entropy": (lambda x: F.cross_entropy(x, TGT), lambda: [T(3, 4)]),
    "cross_entropy_smooth": (lambda x: F.cross_entropy(x, TGT, reduction="none", label_smoothing=0.1),
                             lambda: [T(3, 4)]),
    "mse": (lambda x, y: F.mse_loss(x, y), lambda: [T(3, 4), T(3, 4)]),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), lambda: [T(3, 4)]),
    "batch_norm_train": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                         lambda: [T(4, 3, 2), T(3), T(3)]),
    "batch_norm_train_no_affine": (lambda x: F.batch_norm(x, None, None, training=True), lambda: [T(4, 3, 2)]),
    "batch_norm_eval": (lambda x, w, b: F.batch_norm(x, mg.Tensor(RM), mg.Tensor(RV), w, b, training=False),
                        lambda: [T(4, 3, 2), T(3), T(3)]),
    "batch_norm_eval_no_affine": (lambda x: F.batch_norm(x, mg.Tensor(RM), mg.Tensor(RV), training=False),
                                  lambda: [T(4, 3)]),
    "ghost_batch_norm": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True, virtual_batch_size=2),
                         lambda: [T(4, 3, 2), T(3), T(3)]),
    # NOTE: r and d saturated (running stats far off), so they are constants also for the finite differences
    "batch_renorm": (lambda x, w, b: F.batch_renorm(x, mg.Tensor(np.full(3, 100.0)), mg.Tensor(np.full(3, 100.0)),
                                                    w, b, training=True, r_max=1.5, d_max=0.5),
                     lambda: [T(4, 3, 2), T(3), T(3)]),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (2, 3), w, b), lambda: [T(4, 2, 3), T(2, 3), T(2, 3)]),
    "layer_norm_no_affine": (lambda x: F.layer_norm(x, (3,)), lambda: [T(4, 3)]),
    "group_norm": (lambda x, w, b: F.group_norm(x, 2, w, b), lambda: [T(2, 4, 3), T(4), T(4)]),
    "instance_norm": (lambda x, w, b: F.instance_norm(x, weight=w, bias=b), lambda: [T(2, 3, 4), T(3), T(3)]),
    "rms_norm": (lambda x, w: F.rms_norm(x, (4,), w), lambda: [T(3, 4), T(4)]),
    "batch_norm_relu_train": (lambda x, w, b: F.batch_norm_relu(x, None, None, w, b, training=True),
                              lambda: [T(4, 3, 2), T(3), T(3)]),
    "batch_norm_relu_eval": (lambda x, w, b: F.batch_norm_relu(x, mg.Tensor(RM), mg.Tensor(RV), w, b, training=False),
                             lambda: [T(4, 3, 2), T(3), T(3)]),
}


@pytest.mark.parametrize("name", OPS)
def test_gradgradcheck(name):
    fn, make = OPS[name]
    assert mg.gradgradcheck(fn, make())


def test_gradgradcheck_catches_a_wrong_second_derivative(monkeypatch):
    # a planted fault: tanh's double backward with the wrong sign of y^2
    monkeypatch.setattr(Tanh, "backward_graph",
                        lambda self, g: g * (1 + self.parents[0].tanh() * self.parents[0].tanh()))
    assert mg.gradcheck(lambda a: a.tanh(), [T(3)])  # first order untouched
    with pytest.raises(mg.GradcheckError, match="create_graph=True differs"):
        mg.gradgradcheck(lambda a: a.tanh(), [T(3)])


# ------------------------------------------------------------------ against PyTorch's double backward

def _torch_fn(name):
    tF = torch.nn.functional
    rm, rv = torch.tensor(RM), torch.tensor(RV)
    return {
        "batch_norm_train": lambda x, w, b: tF.batch_norm(x, None, None, w, b, training=True),
        "batch_norm_eval": lambda x, w, b: tF.batch_norm(x, rm, rv, w, b, training=False),
        "layer_norm": lambda x, w, b: tF.layer_norm(x, (2, 3), w, b),
        "group_norm": lambda x, w, b: tF.group_norm(x, 2, w, b),
        "instance_norm": lambda x, w, b: tF.instance_norm(x, weight=w, bias=b),
        "rms_norm": lambda x, w: tF.rms_norm(x, (4,), w, eps=float(np.finfo(np.float64).eps)),
        "linear": lambda x, w, b: tF.linear(x, w, b).tanh(),
        "cross_entropy_smooth": lambda x: tF.cross_entropy(x, torch.tensor(TGT), reduction="none",
                                                           label_smoothing=0.1),
        "matmul": lambda a, b: a @ b,
        "var_std": lambda a: a.var(1) * a.std(0).sum(),
        "softmax": lambda x: tF.softmax(x, 0),
    }[name]


@pytest.mark.parametrize("name", ["batch_norm_train", "batch_norm_eval", "layer_norm", "group_norm",
                                  "instance_norm", "rms_norm", "linear", "cross_entropy_smooth", "matmul",
                                  "var_std", "softmax"])
def test_double_backward_matches_torch(name):
    """d/d(inputs, dy) of sum(dx_i * v_i) for every first-order gradient dx_i, in float64, as PyTorch's."""
    fn, make = OPS[name]
    xs = make()
    txs = [torch.tensor(x.data, requires_grad=True) for x in xs]
    out = fn(*xs)
    dy = arr(*out.shape)
    vs = [arr(*x.shape) for x in xs]
    g = mg.Tensor(dy, requires_grad=True)
    gs = mg.autograd.grad(out, xs, g, create_graph=True)
    sum(((d * mg.Tensor(v)).sum() for d, v in zip(gs[1:], vs[1:])), (gs[0] * mg.Tensor(vs[0])).sum()).backward()

    tout = _torch_fn(name)(*txs)
    tg = torch.tensor(dy, requires_grad=True)
    tgs = torch.autograd.grad(tout, txs, tg, create_graph=True)
    sum((d * torch.tensor(v)).sum() for d, v in zip(tgs, vs)).backward()
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    for d, td in zip(gs, tgs):
        np.testing.assert_allclose(d.data, td.detach().numpy(), rtol=1e-10, atol=1e-12)
    for x, tx in zip(xs, txs):  # NOTE: None where nothing depends on it (the bias), zeros alike
        mine = np.zeros(x.shape) if x.grad is None else x.grad.data
        theirs = np.zeros(x.shape) if tx.grad is None else tx.grad.numpy()
        np.testing.assert_allclose(mine, theirs, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(g.grad.data, tg.grad.numpy(), rtol=1e-9, atol=1e-11)


# ------------------------------------------------------------------ the engine: grad, retain_graph, inputs

def test_grad_leaves_dot_grad_alone_and_allow_unused():
    x, y = T(3), T(3)
    (gx,) = mg.autograd.grad((x * x).sum(), x)
    np.testing.assert_allclose(gx.data, 2 * x.data)
    assert x.grad is None and not gx.requires_grad
    with pytest.raises(RuntimeError, match="not used"):
        mg.autograd.grad((x * 2).sum(), [x, y])
    assert mg.autograd.grad((x * 2).sum(), [x, y], allow_unused=True)[1] is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.autograd.grad((x * 2).sum(), [mg.Tensor(np.ones(3))])


def test_grad_with_respect_to_an_intermediate():
    x = T(3)
    h = x.exp()
    (gh,) = mg.autograd.grad((h * h).sum(), h)
    np.testing.assert_allclose(gh.data, 2 * np.exp(x.data))


def test_retain_graph_walks_twice_and_default_frees():
    x = T(3)
    y = (x * x).exp().sum()
    y.backward(retain_graph=True)
    first = x.grad.data.copy()
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2 * first)
    z = (x * 2).exp()
    ctx = weakref.ref(z._ctx)
    z.sum().backward()
    gc.collect()
    assert ctx() is None


def test_backward_inputs_accumulates_only_there():
    x, w = T(3), T(3)
    (x * w).sum().backward(inputs=[w])
    assert x.grad is None
    np.testing.assert_allclose(w.grad.data, x.data)


def test_third_order():
    x = T(4)
    y = (x ** 4).sum()
    (g,) = mg.autograd.grad(y, x, create_graph=True)
    (h,) = mg.autograd.grad(g.sum(), x, create_graph=True)
    (t,) = mg.autograd.grad(h.sum(), x)
    np.testing.assert_allclose(t.data, 24 * x.data)


def test_first_order_path_unchanged_by_create_graph_false():
    x = T(3, 4)
    y = F.layer_norm(x, (4,))
    (g,) = mg.autograd.grad(y, x, mg.Tensor(arr(3, 4)))
    assert not g.requires_grad


@pytest.mark.parametrize("build", [
    lambda x: x.prod(1).sum(),
    lambda x: F.gelu(x).sum(),
    lambda x: F.max_pool2d(x.reshape(1, 1, 3, 4), 2).sum(),
    lambda x: F.conv2d(x.reshape(1, 1, 3, 4), mg.Tensor(np.ones((1, 1, 2, 2)))).sum(),
])
def test_unsupported_double_backward_raises(build):
    x = T(3, 4)
    with pytest.raises(RuntimeError, match="double backward of .* is not supported"):
        mg.autograd.grad(build(x), x, create_graph=True)
    (g,) = mg.autograd.grad(build(x), x)  # first order still works
    assert g.shape == x.shape


# ------------------------------------------------------------------ worked examples against PyTorch

def _critic_params():
    return [arr(8, 4) * 0.5, arr(8) * 0.1, arr(8), arr(8), arr(1, 8) * 0.5, arr(1) * 0.1]


def _critic(p, x, lib):
    fn = torch.nn.functional if lib is torch else F
    h = fn.linear(x, p[0], p[1])
    h = fn.batch_norm(h, None, None, p[2], p[3], training=True)
    h = fn.layer_norm(h.tanh(), (8,))
    return fn.linear(h, p[4], p[5])


def test_wgan_gp_gradient_penalty_matches_torch():
    real, fake, alpha = arr(6, 4), arr(6, 4), RNG.random((6, 1))
    ps = _critic_params()
    results = []
    for lib in (mg, torch):
        P = [lib.tensor(a, requires_grad=True) for a in ps]
        x = lib.tensor(alpha * real + (1 - alpha) * fake, requires_grad=True)
        out = _critic(P, x, lib)
        if lib is torch:
            (gx,) = torch.autograd.grad(out.sum(), x, create_graph=True)
        else:
            (gx,) = mg.autograd.grad(out.sum(), x, create_graph=True)
        penalty = ((((gx * gx).sum(1) + 1e-12).sqrt() - 1) ** 2).mean()
        loss = _critic(P, lib.tensor(fake), lib).mean() - _critic(P, lib.tensor(real), lib).mean() + 10 * penalty
        loss.backward()
        results.append((loss.item(), [p.grad.numpy() if lib is mg else p.grad.numpy() for p in P]))
    (l1, g1), (l2, g2) = results
    assert l1 == pytest.approx(l2, rel=1e-12)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def _mlp(p, x, lib):
    fn = torch.nn.functional if lib is torch else F
    h = fn.linear(x, p[0], p[1])
    h = fn.batch_norm(h, None, None, p[2], p[3], training=True).relu()
    return fn.linear(h, p[4], p[5])


def test_maml_inner_outer_step_matches_torch():
    ps = [arr(6, 3) * 0.5, arr(6) * 0.1, arr(6) * 0.1 + 1, arr(6) * 0.1, arr(2, 6) * 0.5, arr(2) * 0.1]
    xs, ys = arr(8, 3), RNG.integers(0, 2, 8)
    xq, yq = arr(8, 3), RNG.integers(0, 2, 8)
    lr = 0.1
    results = []
    for lib in (mg, torch):
        P = [lib.tensor(a, requires_grad=True) for a in ps]
        fn = torch.nn.functional if lib is torch else F
        inner = fn.cross_entropy(_mlp(P, lib.tensor(xs), lib), lib.tensor(ys))
        gs = (torch.autograd.grad if lib is torch else mg.autograd.grad)(inner, P, create_graph=True)
        fast = [p - lr * g for p, g in zip(P, gs)]
        outer = fn.cross_entropy(_mlp(fast, lib.tensor(xq), lib), lib.tensor(yq))
        outer.backward()
        results.append((outer.item(), [p.grad.numpy() for p in P]))
    (l1, g1), (l2, g2) = results
    assert l1 == pytest.approx(l2, rel=1e-12)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------ functional: vjp, jvp, hvp

def _f(x, w):
    return ((x @ w).tanh() ** 2).sum() + (x * x * w.sum()).sum()


def test_hvp_vjp_jvp_match_torch():
    x, w, vx, vw = arr(3, 4), arr(4, 2), arr(3, 4), arr(4, 2)
    out, (hx, hw) = AF.hvp(_f, (mg.Tensor(x), mg.Tensor(w)), (mg.Tensor(vx), mg.Tensor(vw)))
    tout, (thx, thw) = torch.autograd.functional.hvp(
        _f, (torch.tensor(x), torch.tensor(w)), (torch.tensor(vx), torch.tensor(vw)))
    assert out.item() == pytest.approx(tout.item(), rel=1e-12)
    np.testing.assert_allclose(hx.data, thx.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(hw.data, thw.numpy(), rtol=1e-10, atol=1e-12)

    g = lambda x: (x @ mg.Tensor(w)).tanh()  # noqa: E731
    tg = lambda x: (x @ torch.tensor(w)).tanh()  # noqa: E731
    u = arr(3, 2)
    _, vj = AF.vjp(g, mg.Tensor(x), mg.Tensor(u))
    _, tvj = torch.autograd.functional.vjp(tg, torch.tensor(x), torch.tensor(u))
    np.testing.assert_allclose(vj.data, tvj.numpy(), rtol=1e-12)
    _, jv = AF.jvp(g, mg.Tensor(x), mg.Tensor(vx))
    _, tjv = torch.autograd.functional.jvp(tg, torch.tensor(x), torch.tensor(vx))
    np.testing.assert_allclose(jv.data, tjv.numpy(), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="shapes"):
        AF.hvp(_f, (mg.Tensor(x), mg.Tensor(w)), (mg.Tensor(vx),))
