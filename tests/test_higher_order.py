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
from minigrad.nn.decorrelated import DecorrelatedBatchNorm2d
from minigrad.nn.functional import conv_grad
from minigrad.tensor import Function, Tanh

RNG = np.random.default_rng(0)


def arr(*shape, pos=False):
    a = RNG.standard_normal(shape)
    return np.abs(a) + 0.5 if pos else a


def T(*shape, pos=False):
    return mg.Tensor(arr(*shape, pos=pos), requires_grad=True)


def with_zeros(t, at=((1, 2), (2, 1), (2, 3))):
    for i in at:
        t.data[i] = 0.0
    return t


TGT = np.array([0, 2, 1])
IDX = np.array([[0, 1], [2, 0]])
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
    "batch_norm_sigmoid_train": (lambda x, w, b: F.batch_norm_sigmoid(x, None, None, w, b, training=True),
                                 lambda: [T(4, 3, 2), T(3), T(3)]),
    "batch_norm_sigmoid_eval": (lambda x, w, b: F.batch_norm_sigmoid(x, mg.Tensor(RM), mg.Tensor(RV), w, b),
                                lambda: [T(4, 3, 2), T(3), T(3)]),
    "batch_norm_tanh_train": (lambda x, w, b: F.batch_norm_tanh(x, None, None, w, b, training=True),
                              lambda: [T(4, 3, 2), T(3), T(3)]),
    "add_relu": (lambda a, b: F.add_relu(a, b) * a, lambda: [T(3, 4), T(3, 4)]),
    # the ops whose double backward is a node of its own (conv_grad.py, Prod, Scatter, exact gelu) or a compose
    "prod": (lambda a: a.prod(1) * a.prod(0).sum(), lambda: [T(3, 4)]),
    "prod_zeros": (lambda a: a.prod(1) * a.prod(0).sum(), lambda: [with_zeros(T(3, 4))]),
    "prod_all": (lambda a: a.prod() * a, lambda: [with_zeros(T(2, 3), ((0, 1),))]),
    "scatter": (lambda a, s: a.scatter(0, mg.Tensor(IDX), s) ** 2, lambda: [T(3, 3), T(2, 2)]),
    "scatter_add": (lambda a, s: a.scatter_add(1, mg.Tensor(IDX), s) ** 2, lambda: [T(3, 3), T(2, 2)]),
    # NOTE: a src larger than index: PyTorch 2.13's double backward raises here (ScatterBackward0, invalid shape)
    "scatter_src_larger": (lambda a, s: a.scatter(0, mg.Tensor(IDX), s) ** 2 + a.scatter_add(1, mg.Tensor(IDX), s),
                           lambda: [T(3, 3), T(3, 3)]),
    "gelu": (lambda x: F.gelu(x), lambda: [T(3, 4)]),
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1).tanh(), lambda: [T(2, 3, 5, 5), T(4, 3, 3, 3),
                                                                                      T(4)]),
    "conv2d_groups": (lambda x, w: F.conv2d(x, w, stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2) ** 2,
                      lambda: [T(1, 4, 7, 6), T(4, 2, 2, 3)]),
    "max_pool2d": (lambda x: F.max_pool2d(x, 3, 2, 1) ** 2, lambda: [T(2, 2, 5, 6)]),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False) ** 2, lambda: [T(2, 2, 5, 6)]),
    "adaptive_avg_pool2d": (lambda x: F.adaptive_avg_pool2d(x, (2, 3)) ** 2, lambda: [T(1, 2, 4, 6)]),
    "frn": (lambda x, w, b, e: F.filter_response_norm(x, w, b, eps=e), lambda: [T(2, 3, 4), T(3), T(3), T(1, pos=True)]),
    "frn_no_affine": (lambda x: F.filter_response_norm(x), lambda: [T(2, 3, 2, 2)]),
    "frn_tlu": (lambda x, w, t: F.tlu(F.filter_response_norm(x, w), t), lambda: [T(2, 3, 4), T(3), T(3)]),
    "frn_tlu_fused": (lambda x, w, b, t, e: F.filter_response_norm_tlu(x, w, b, t, eps=e),
                      lambda: [T(2, 3, 4), T(3), T(3), T(3), T(1, pos=True)]),
    "evonorm_b0_train": (lambda x, v, w, b: F.evonorm_b0(x, v, None, w, b, training=True),
                         lambda: [T(4, 3, 5), T(3), T(3), T(3)]),
    "evonorm_b0_eval": (lambda x, v, w, b: F.evonorm_b0(x, v, mg.Tensor(RV), w, b, training=False),
                        lambda: [T(4, 3, 5), T(3), T(3), T(3)]),
    "evonorm_s0": (lambda x, v, w, b: F.evonorm_s0(x, v, 2, w, b), lambda: [T(2, 4, 5), T(4), T(4), T(4)]),
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
        "batch_norm_sigmoid_train": lambda x, w, b: torch.sigmoid(tF.batch_norm(x, None, None, w, b, training=True)),
        "batch_norm_sigmoid_eval": lambda x, w, b: torch.sigmoid(tF.batch_norm(x, rm, rv, w, b, training=False)),
        "batch_norm_tanh_train": lambda x, w, b: torch.tanh(tF.batch_norm(x, None, None, w, b, training=True)),
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
        "prod": lambda a: a.prod(1) * a.prod(0).sum(),
        "prod_zeros": lambda a: a.prod(1) * a.prod(0).sum(),
        "prod_all": lambda a: a.prod() * a,
        "scatter": lambda a, s: a.scatter(0, torch.tensor(IDX), s) ** 2,
        "scatter_add": lambda a, s: a.scatter_add(1, torch.tensor(IDX), s) ** 2,
        "gelu": lambda x: tF.gelu(x),
        "conv2d": lambda x, w, b: tF.conv2d(x, w, b, stride=2, padding=1).tanh(),
        "conv2d_groups": lambda x, w: tF.conv2d(x, w, stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2) ** 2,
        "max_pool2d": lambda x: tF.max_pool2d(x, 3, 2, 1) ** 2,
        "avg_pool2d": lambda x: tF.avg_pool2d(x, 3, 2, 1, count_include_pad=False) ** 2,
        "adaptive_avg_pool2d": lambda x: tF.adaptive_avg_pool2d(x, (2, 3)) ** 2,
        # NOTE: PyTorch lacks these: the paper's equations as torch ops, differentiated twice by torch
        "frn": lambda x, w, b, e: _torch_frn(x, w, b, e.abs()),
        "frn_tlu": lambda x, w, t: torch.maximum(_torch_frn(x, w, None, 1e-6), t.reshape(1, -1, 1)),
        "frn_tlu_fused": lambda x, w, b, t, e: torch.maximum(_torch_frn(x, w, b, e.abs()), t.reshape(1, -1, 1)),
        "evonorm_b0_train": lambda x, v, w, b: _torch_evonorm_b0(x, v, w, b, None),
        "evonorm_b0_eval": lambda x, v, w, b: _torch_evonorm_b0(x, v, w, b, rv),
        "evonorm_s0": lambda x, v, w, b: _torch_evonorm_s0(x, v, w, b, 2),
    }[name]


def _c(t):
    return t.reshape(1, -1, 1)


def _torch_frn(x, w, b, eps):
    y = _c(w) * x / ((x * x).mean(2, keepdim=True) + eps).sqrt()
    return y if b is None else y + _c(b)


def _torch_evonorm_b0(x, v, w, b, rv, eps=1e-5):
    batch_var = x.var((0, 2), unbiased=False, keepdim=True) if rv is None else _c(rv)
    den = torch.maximum((batch_var + eps).sqrt(), _c(v) * x + (x.var(2, unbiased=False, keepdim=True) + eps).sqrt())
    return x / den * _c(w) + _c(b)


def _torch_evonorm_s0(x, v, w, b, groups, eps=1e-5):
    n, c, s = x.shape
    xg = x.reshape(n, groups, -1)
    std = (xg.var(2, unbiased=False, keepdim=True) + eps).sqrt()
    y = ((x * torch.sigmoid(_c(v) * x)).reshape(n, groups, -1) / std).reshape(n, c, s)
    return y * _c(w) + _c(b)


@pytest.mark.parametrize("name", ["batch_norm_train", "batch_norm_eval", "batch_norm_sigmoid_train",
                                  "batch_norm_sigmoid_eval", "batch_norm_tanh_train", "layer_norm", "group_norm",
                                  "instance_norm", "rms_norm", "linear", "cross_entropy_smooth", "matmul",
                                  "var_std", "softmax", "prod", "prod_zeros", "prod_all", "scatter", "scatter_add",
                                  "gelu", "conv2d", "conv2d_groups", "max_pool2d", "avg_pool2d",
                                  "adaptive_avg_pool2d", "frn", "frn_tlu", "frn_tlu_fused", "evonorm_b0_train",
                                  "evonorm_b0_eval", "evonorm_s0"])
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


class _NoDoubleBackward(Function):  # a custom op with neither backward_graph nor compose
    def forward(self, x):
        return 2 * x

    def backward(self, g):
        return 2 * g


@pytest.mark.parametrize("build", [
    lambda x: _NoDoubleBackward.apply(x).sum(),
])
def test_unsupported_double_backward_raises(build):
    x = T(3, 4)
    with pytest.raises(RuntimeError, match="double backward of .* is not supported"):
        mg.autograd.grad(build(x), x, create_graph=True)
    (g,) = mg.autograd.grad(build(x), x)  # first order still works
    assert g.shape == x.shape


def test_decorrelated_batch_norm_eval_gradgradcheck():
    m = DecorrelatedBatchNorm2d(4, group_size=2).double()
    x = T(5, 4, 2, 2)
    m(x)  # NOTE: one training step, so the running whitening is not the identity
    m.eval()
    assert mg.gradgradcheck(lambda x: m(x) ** 2, [x])


def test_conv2d_third_order_matches_torch():
    """conv's three ops (conv, input grad, weight grad) close under differentiation: third order as PyTorch's."""
    x, w = arr(2, 2, 5, 4), arr(3, 2, 2, 3)
    res = []
    for lib, fn, grad in ((mg, F.conv2d, mg.autograd.grad), (torch, torch.nn.functional.conv2d, torch.autograd.grad)):
        X, W = lib.tensor(x, requires_grad=True), lib.tensor(w, requires_grad=True)
        y = fn(X, W, stride=(2, 1), padding=1) ** 2
        gx, gw = grad(y.sum(), [X, W], create_graph=True)
        hx, hw = grad((gx * gx).sum() + (gw ** 3).sum(), [X, W], create_graph=True)
        tx, tw = grad((hx * hx).sum() + hw.sum(), [X, W])
        res.append([a.detach().numpy() for a in (gx, gw, hx, hw, tx, tw)])
    for a, b in zip(*res):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("op", [conv_grad._Conv2dInputGrad, conv_grad._Conv2dWeightGrad])
def test_gradgradcheck_catches_a_wrong_conv_double_backward(monkeypatch, op):
    # a planted fault: the gradients of one of conv's backward ops with the wrong sign (their array backward is
    # the second order; their backward_graph the third, checked against PyTorch above)
    right = op.backward
    monkeypatch.setattr(op, "backward", lambda self, g: tuple(None if t is None else -t for t in right(self, g)))
    fn = lambda x, w: F.conv2d(x, w, padding=1).tanh()  # noqa: E731
    assert mg.gradcheck(fn, [T(1, 2, 4, 4), T(2, 2, 3, 3)])
    with pytest.raises(mg.GradcheckError):
        mg.gradgradcheck(fn, [T(1, 2, 4, 4), T(2, 2, 3, 3)])


# ------------------------------------------------------------------ a second walk of a freed graph

@pytest.mark.parametrize("second", [
    lambda y, x: y.backward(),
    lambda y, x: mg.autograd.grad(y, x),
    lambda y, x: y.backward(inputs=[x]),
    lambda y, x: (y * 2).backward(),  # a new graph on top of the freed one
])
@pytest.mark.parametrize("first", [lambda y, x: y.backward(), lambda y, x: mg.autograd.grad(y, x)])
def test_second_walk_of_a_freed_graph_raises_as_torch(first, second):
    x = T(3)
    y = (x * x).exp().sum()
    first(y, x)
    with pytest.raises(RuntimeError, match="backward through the graph a second time.*retain_graph=True"):
        second(y, x)
    tx = torch.tensor(x.data, requires_grad=True)
    ty = (tx * tx).exp().sum()
    ty.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time.*retain_graph=True"):
        ty.backward()


def test_freed_graph_raises_also_where_torch_saved_nothing():
    """A documented difference: PyTorch walks a freed graph again where its nodes saved no tensor (x + 1, sum);
    minigrad frees every node and raises for any second walk. retain_graph=True works in both."""
    x = T(3)
    y = (x + 1).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()
    y = (x + 1).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.data, [3.0, 3.0, 3.0])


def test_fresh_graph_over_leaves_after_a_walk_is_fine():
    x = T(3)
    (x * x).sum().backward()
    (x * x).sum().backward()  # the leaves are not freed: a new graph from them walks
    np.testing.assert_allclose(x.grad.data, 4 * x.data)
    h = (x * 2).detach().requires_grad_()
    (h * h).sum().backward()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad.data, 4 * h.data)


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


# ------------------------------------------------------------------ conv1d, conv_transpose2d, dilated/adaptive max
# pooling, max_unpool2d, interpolate: double backward against finite differences and PyTorch's

R2 = np.random.default_rng(20)  # NOTE: its own stream, so the data of the tests above stays as it was


def T2(*shape):
    return mg.Tensor(R2.standard_normal(shape), requires_grad=True)


def _unpool_indices(shape, k):
    """max_pool2d's indices of a fixed input (windows k, stride k: no index repeats)."""
    return F.max_pool2d(mg.Tensor(np.random.default_rng(21).standard_normal(shape)), k, return_indices=True)[1]


IDX_UNPOOL = _unpool_indices((2, 2, 4, 6), 2)
IDX_UNPOOL_ODD = _unpool_indices((1, 2, 5, 7), 2)

# name: (minigrad fn, torch fn, inputs); torch.nn.functional's op of the same name and arguments
RESAMPLE_OPS = {
    "conv1d": (lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1, dilation=2, groups=2) ** 2,
               lambda x, w, b: torch.nn.functional.conv1d(x, w, b, stride=2, padding=1, dilation=2, groups=2) ** 2,
               lambda: [T2(2, 4, 9), T2(6, 2, 3), T2(6)]),
    "conv_transpose2d": (lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1).tanh(),
                         lambda x, w, b: torch.nn.functional.conv_transpose2d(x, w, b, stride=2, padding=1,
                                                                              output_padding=1).tanh(),
                         lambda: [T2(2, 3, 3, 4), T2(3, 2, 3, 3), T2(2)]),
    "conv_transpose2d_groups_dilation": (
        lambda x, w: F.conv_transpose2d(x, w, stride=(2, 3), padding=(1, 0), output_padding=(1, 2), groups=2,
                                        dilation=2) ** 2,
        lambda x, w: torch.nn.functional.conv_transpose2d(x, w, stride=(2, 3), padding=(1, 0),
                                                          output_padding=(1, 2), groups=2, dilation=2) ** 2,
        lambda: [T2(1, 4, 3, 3), T2(4, 3, 2, 3)]),
    # NOTE: output_padding >= stride (< dilation): the conv2d over y has more outputs than x (the zero-extended path)
    "conv_transpose2d_output_padding_past_stride": (
        lambda x, w: F.conv_transpose2d(x, w, stride=1, padding=1, output_padding=(1, 0), dilation=(2, 1)) ** 2,
        lambda x, w: torch.nn.functional.conv_transpose2d(x, w, stride=1, padding=1, output_padding=(1, 0),
                                                          dilation=(2, 1)) ** 2,
        lambda: [T2(2, 2, 3, 4), T2(2, 3, 3, 3)]),
    "max_pool2d_dilation": (lambda x: F.max_pool2d(x, 2, 1, 1, dilation=2) ** 2,
                            lambda x: torch.nn.functional.max_pool2d(x, 2, 1, 1, dilation=2) ** 2,
                            lambda: [T2(2, 2, 5, 6)]),
    "max_pool2d_dilation_ceil": (lambda x: F.max_pool2d(x, 3, 2, 1, dilation=(2, 1), ceil_mode=True) ** 2,
                                 lambda x: torch.nn.functional.max_pool2d(x, 3, 2, 1, dilation=(2, 1),
                                                                          ceil_mode=True) ** 2,
                                 lambda: [T2(1, 2, 7, 6)]),
    "adaptive_max_pool2d": (lambda x: F.adaptive_max_pool2d(x, (2, 3)) ** 2,
                            lambda x: torch.nn.functional.adaptive_max_pool2d(x, (2, 3)) ** 2,
                            lambda: [T2(2, 2, 5, 7)]),
    "max_unpool2d": (lambda x: F.max_unpool2d(x, IDX_UNPOOL, 2) ** 2 * F.max_unpool2d(x, IDX_UNPOOL, 2),
                     lambda x: torch.nn.functional.max_unpool2d(x, torch.tensor(IDX_UNPOOL.data), 2) ** 3,
                     lambda: [T2(2, 2, 2, 3)]),
    "max_unpool2d_output_size": (
        lambda x: F.max_unpool2d(x, IDX_UNPOOL_ODD, 2, output_size=(5, 7)) ** 2,
        lambda x: torch.nn.functional.max_unpool2d(x, torch.tensor(IDX_UNPOOL_ODD.data), 2, output_size=(5, 7)) ** 2,
        lambda: [T2(1, 2, 2, 3)]),
    "interpolate_nearest": (lambda x: F.interpolate(x, size=(5, 7)) ** 2,
                            lambda x: torch.nn.functional.interpolate(x, size=(5, 7)) ** 2,
                            lambda: [T2(2, 2, 3, 4)]),
    "interpolate_nearest_down": (lambda x: F.interpolate(x, scale_factor=0.5) ** 2,
                                 lambda x: torch.nn.functional.interpolate(x, scale_factor=0.5) ** 2,
                                 lambda: [T2(1, 2, 6, 5)]),
    "interpolate_nearest_exact_1d": (lambda x: F.interpolate(x, size=7, mode="nearest-exact") ** 2,
                                     lambda x: torch.nn.functional.interpolate(x, size=7, mode="nearest-exact") ** 2,
                                     lambda: [T2(2, 3, 4)]),
    "interpolate_bilinear": (lambda x: F.interpolate(x, scale_factor=2, mode="bilinear") ** 2,
                             lambda x: torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear") ** 2,
                             lambda: [T2(2, 2, 3, 4)]),
    "interpolate_bilinear_align_corners": (
        lambda x: F.interpolate(x, size=(5, 3), mode="bilinear", align_corners=True) ** 2,
        lambda x: torch.nn.functional.interpolate(x, size=(5, 3), mode="bilinear", align_corners=True) ** 2,
        lambda: [T2(2, 2, 3, 4)]),
}


@pytest.mark.parametrize("name", RESAMPLE_OPS)
def test_gradgradcheck_conv_family_and_resampling(name):
    fn, _, make = RESAMPLE_OPS[name]
    assert mg.gradgradcheck(fn, make())


@pytest.mark.parametrize("name", RESAMPLE_OPS)
def test_double_backward_of_conv_family_and_resampling_matches_torch(name):
    """d/d(inputs, dy) of sum(dx_i * v_i) for every first-order gradient dx_i, in float64, as PyTorch's."""
    fn, tfn, make = RESAMPLE_OPS[name]
    xs = make()
    txs = [torch.tensor(x.data, requires_grad=True) for x in xs]
    out = fn(*xs)
    dy = R2.standard_normal(out.shape)
    vs = [R2.standard_normal(x.shape) for x in xs]
    g = mg.Tensor(dy, requires_grad=True)
    gs = mg.autograd.grad(out, xs, g, create_graph=True)
    sum(((d * mg.Tensor(v)).sum() for d, v in zip(gs[1:], vs[1:])), (gs[0] * mg.Tensor(vs[0])).sum()).backward()

    tout = tfn(*txs)
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


def _torch_conv_transpose2d_cropped(x, w, stride, padding, output_padding, groups=1, dilation=1):
    """torch's conv_transpose2d with no padding and no output_padding, then cropped (or zero-extended) to the
    padded op's window: the same values, differentiable thrice by torch (its double backward refuses an
    output_padding: "output_padding is not supported for non-transposed convolutions")."""
    tF = torch.nn.functional
    full = tF.conv_transpose2d(x, w, stride=stride, groups=groups, dilation=dilation)
    (ph, pw), (oh, ow) = padding, output_padding
    H, W = full.shape[2] - 2 * ph + oh, full.shape[3] - 2 * pw + ow
    full = tF.pad(full, (0, max(0, pw + W - full.shape[3]), 0, max(0, ph + H - full.shape[2])))
    return full[:, :, ph:ph + H, pw:pw + W]


THIRD_ORDER_TORCH = {
    "conv_transpose2d_groups_dilation": lambda x, w: _torch_conv_transpose2d_cropped(
        x, w, (2, 3), (1, 0), (1, 2), groups=2, dilation=2) ** 2,
    "conv_transpose2d_output_padding_past_stride": lambda x, w: _torch_conv_transpose2d_cropped(
        x, w, (1, 1), (1, 1), (1, 0), dilation=(2, 1)) ** 2,
    "interpolate_bilinear": RESAMPLE_OPS["interpolate_bilinear"][1],
    "interpolate_nearest": RESAMPLE_OPS["interpolate_nearest"][1],
}


@pytest.mark.parametrize("name", THIRD_ORDER_TORCH)
def test_third_order_of_conv_transpose2d_and_interpolate_matches_torch(name):
    """Their backward ops close under differentiation (conv's three ops; resampling and its adjoint)."""
    fn, tfn_checked, make = RESAMPLE_OPS[name]
    tfn = THIRD_ORDER_TORCH[name]
    data = [x.data for x in make()]
    targs = [torch.tensor(a) for a in data]
    np.testing.assert_allclose(tfn(*targs).numpy(), tfn_checked(*targs).numpy(), rtol=1e-12, atol=1e-12)
    res = []
    for lib, f, grad in ((mg, fn, mg.autograd.grad), (torch, tfn, torch.autograd.grad)):
        xs = [lib.tensor(a, requires_grad=True) for a in data]
        gs = grad(f(*xs).sum(), xs, create_graph=True)
        hs = grad(sum((g ** 3).sum() for g in gs), xs, create_graph=True)
        ts = grad(sum((h * h).sum() for h in hs), xs)
        res.append([a.detach().numpy() for a in gs + hs + ts])
    for a, b in zip(*res):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)


def test_gradgradcheck_catches_a_wrong_conv_transpose2d_double_backward(monkeypatch):
    # a planted fault: conv_transpose2d's input gradient under create_graph with the wrong sign
    right = conv_grad.conv_transpose2d_backward_graph
    monkeypatch.setattr(conv_grad, "conv_transpose2d_backward_graph",
                        lambda node, dy: tuple(None if t is None else -t for t in right(node, dy)))
    fn, _, make = RESAMPLE_OPS["conv_transpose2d_output_padding_past_stride"]
    assert mg.gradcheck(fn, make())
    with pytest.raises(mg.GradcheckError):
        mg.gradgradcheck(fn, make())


def test_gradgradcheck_catches_a_wrong_resampling_double_backward(monkeypatch):
    # a planted fault: the adjoint of interpolate's backward reads the columns in reverse
    from minigrad.nn.functional import resample

    right = resample._Resample2dAdjoint.backward
    monkeypatch.setattr(resample._Resample2dAdjoint, "backward", lambda self, g: right(self, g)[..., ::-1])
    fn, _, make = RESAMPLE_OPS["interpolate_bilinear"]
    assert mg.gradcheck(fn, make())
    with pytest.raises(mg.GradcheckError):
        mg.gradgradcheck(fn, make())
