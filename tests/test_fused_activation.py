"""A batch norm and the sigmoid or tanh after it as one node (F.batch_norm_sigmoid, F.batch_norm_tanh, and
nn.Sequential's fusion of a BatchNorm followed by an nn.Sigmoid or nn.Tanh): the same bits as the pair on every
backend (values, gradients, running statistics, over SGD steps, eager and under minigrad.compile), PyTorch's values
within rounding, float64 finite differences, and the cases left unfused."""
import warnings

import numpy as np
import pytest
import torch

import minigrad as mg
from conftest import BACKENDS, DTYPES
from minigrad import Tensor, nn
from minigrad.app import models
from minigrad.nn import functional as F
from minigrad.optim import SGD

SHAPES = [(8, 6), (4, 5, 7), (6, 3, 4, 4)]
ACTS = {"sigmoid": (F.batch_norm_sigmoid, F.sigmoid, torch.sigmoid, nn.Sigmoid),
        "tanh": (F.batch_norm_tanh, F.tanh, torch.tanh, nn.Tanh)}


def data(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = (0.3 + 2 * rng.standard_normal(shape)).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    w, b = (1 + 0.3 * rng.standard_normal(c)).astype(dtype), (0.3 * rng.standard_normal(c)).astype(dtype)
    rm, rv = (0.2 * rng.standard_normal(c)).astype(dtype), (1 + rng.random(c)).astype(dtype)
    return x, dy, w, b, rm, rv


def run(fn, x, dy, w, b, rm, rv, training, momentum=0.1, eps=1e-5):
    """y, dx, [dweight, dbias], [running mean, running var] of ``fn`` driven by ``dy``."""
    xt = Tensor(x, requires_grad=True)
    wt = None if w is None else Tensor(w, requires_grad=True)
    bt = None if b is None else Tensor(b, requires_grad=True)
    rmt = None if rm is None else Tensor(rm.copy())
    rvt = None if rv is None else Tensor(rv.copy())
    y = fn(xt, rmt, rvt, wt, bt, training, momentum, eps)
    y.backward(Tensor(dy))
    return [y.data, xt.grad.data] + [t.grad.data for t in (wt, bt) if t is not None] + \
        [t.data for t in (rmt, rvt) if t is not None]


def pair(act):
    return lambda *a: ACTS[act][1](F.batch_norm(*a))


def assert_same_bits(got, want):
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.dtype == w.dtype and g.shape == w.shape, i
        assert g.tobytes() == w.tobytes(), f"output {i} differs"


def ops(y):
    """The types of the graph's nodes behind ``y``."""
    seen, todo, out = set(), [y], []
    while todo:
        t = todo.pop()
        if t._ctx is None or id(t._ctx) in seen:
            continue
        seen.add(id(t._ctx))
        out.append(type(t._ctx).__name__)
        todo.extend(t._ctx.parents)
    return out


# ------------------------------------------------------------------ the functionals

@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_equals_the_pair_bit_for_bit(name, dtype, shape, training, affine, act):
    x, dy, w, b, rm, rv = data(shape, dtype)
    if not affine:
        w = b = None
    with mg.using_backend(name):
        got = run(ACTS[act][0], x, dy, w, b, rm, rv, training)
        want = run(pair(act), x, dy, w, b, rm, rv, training)
    assert_same_bits(got, want)


@pytest.mark.parametrize("act", ACTS)
def test_without_running_statistics_and_eps0(act):
    """Training without running statistics; eval with eps = 0 and a zero running variance (inf/NaN where the pair
    gives them, without a warning)."""
    x, dy, w, b, rm, rv = data((8, 6), np.float64)
    assert_same_bits(run(ACTS[act][0], x, dy, w, b, None, None, True), run(pair(act), x, dy, w, b, None, None, True))
    rv[2] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = run(ACTS[act][0], x, dy, w, b, rm, rv, False, eps=0.0)
        want = run(pair(act), x, dy, w, b, rm, rv, False, eps=0.0)
    assert_same_bits(got, want)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("name", BACKENDS)
def test_against_torch(name, training, act):
    x, dy, w, b, rm, rv = data((8, 6, 5), np.float64, seed=1)
    with mg.using_backend(name):
        got = run(ACTS[act][0], x, dy, w, b, rm, rv, training, momentum=0.3)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    rmt, rvt = torch.tensor(rm), torch.tensor(rv)
    y = ACTS[act][2](torch.nn.functional.batch_norm(xt, rmt, rvt, wt, bt, training, 0.3, 1e-5))
    y.backward(torch.tensor(dy))
    want = [y.detach(), xt.grad, wt.grad, bt.grad, rmt, rvt]
    for i, (g, r) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, r.numpy(), rtol=1e-10, atol=1e-12, err_msg=f"output {i}")


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("training", [True, False])
def test_gradcheck(act, training):
    x, _, w, b, rm, rv = data((5, 3, 2), np.float64, seed=2)
    fn = ACTS[act][0]
    rmt, rvt = Tensor(rm), Tensor(rv)
    assert mg.gradcheck(lambda x, w, b: fn(x, None if training else rmt, None if training else rvt, w, b,
                                           training), [Tensor(a, requires_grad=True) for a in (x, w, b)])


def test_checks_like_batch_norm():
    x = Tensor(np.ones((1, 3), np.float32))
    with pytest.raises(ValueError, match="batch_norm_sigmoid: Expected more than 1 value per channel"):
        F.batch_norm_sigmoid(x, None, None, training=True)
    with pytest.raises(ValueError, match="batch_norm_tanh: running_mean and running_var are required"):
        F.batch_norm_tanh(Tensor(np.ones((2, 3), np.float32)), None, None)
    with pytest.raises(TypeError, match="batch_norm_sigmoid: weight has dtype float64"):
        F.batch_norm_sigmoid(Tensor(np.ones((2, 3), np.float32)), None, None, Tensor(np.ones(3)), training=True)
    with pytest.raises(ValueError, match="eps"):
        F.batch_norm_sigmoid(Tensor(np.ones((2, 3), np.float32)), None, None, training=True, eps=0.0)
    with pytest.raises(TypeError, match="batch_norm_sigmoid: input must be"):
        F.batch_norm_sigmoid(np.ones((2, 3)), None, None, training=True)
    empty = F.batch_norm_sigmoid(Tensor(np.ones((0, 3), np.float32)), None, None, training=True)
    assert empty.shape == (0, 3) and empty.dtype == np.float32


# ------------------------------------------------------------------ nn.Sequential's fusion

def mlp(fuse, dtype, act=nn.Sigmoid, **bn):
    """The paper's MLP with BN (models._mlp's layers) at a smaller input, with ``act``."""
    mg.manual_seed(0)
    layers, prev = [nn.Flatten()], 36
    for width in (20, 16, 16):
        layers += [nn.Linear(prev, width, bias=False, dtype=dtype), nn.BatchNorm1d(width, dtype=dtype, **bn), act()]
        prev = width
    m = nn.Sequential(*layers, nn.Linear(16, 10, dtype=dtype))
    m.fuse = fuse
    return m


def train(model, steps=4, compiled=False, seed=0, create_graph=False):
    """Losses, then the last step's gradients, then the state dict after ``steps`` SGD steps with momentum, then
    an eval forward and its input gradient."""
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    dtype = model[1].weight.dtype
    rng = np.random.default_rng(seed)

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward(create_graph=create_graph)
        opt.step()
        return loss
    fn = mg.compile(step) if compiled else step
    out = []
    for _ in range(steps):
        x = Tensor(rng.standard_normal((12, 1, 6, 6)).astype(dtype))
        out.append(fn(x, Tensor(rng.integers(0, 10, 12))).data)
    out += [p.grad.data for p in model.parameters() if p.grad is not None]
    out += list(model.state_dict().values())
    model.eval()
    x = Tensor(rng.standard_normal((5, 1, 6, 6)).astype(dtype), requires_grad=True)
    y = model(x)
    y.backward(Tensor(rng.standard_normal(y.shape).astype(dtype)))
    model.train()
    return out + [y.data, x.grad.data], fn


@pytest.mark.parametrize("act", [nn.Sigmoid, nn.Tanh])
@pytest.mark.parametrize("dtype", DTYPES)
def test_sequential_fuses_bit_for_bit(dtype, act):
    fused, plain = mlp(True, dtype, act), mlp(False, dtype, act)
    x = Tensor(np.random.default_rng(3).standard_normal((4, 1, 6, 6)).astype(dtype))
    kinds = ops(fused(x))
    assert "_BatchNormTrainThen" in kinds and act.__name__ not in kinds and "_BatchNormTrain" not in kinds
    assert {act.__name__, "_BatchNormTrain"} <= set(ops(plain(x)))
    fused.eval()
    assert "_ChannelAffineThen" in ops(fused(Tensor(x.data, requires_grad=True)))
    fused.train()
    assert_same_bits(train(fused)[0], train(plain)[0])


@pytest.mark.parametrize("bn", [dict(momentum=None), dict(track_running_stats=False), dict(affine=False)],
                         ids=["cumulative", "untracked", "no_affine"])
def test_sequential_fuses_bit_for_bit_module_options(bn):
    assert_same_bits(train(mlp(True, np.float32, **bn))[0], train(mlp(False, np.float32, **bn))[0])


def test_frozen_batch_norm_fuses_bit_for_bit():
    from minigrad.nn.utils import freeze_batch_norm
    fused, plain = freeze_batch_norm(mlp(True, np.float64)), freeze_batch_norm(mlp(False, np.float64))
    assert_same_bits(train(fused)[0], train(plain)[0])


@pytest.mark.parametrize("bn", [{}, dict(momentum=None)], ids=["momentum", "cumulative"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_compiled_replays_the_fused_step_bit_for_bit(dtype, bn):
    """minigrad.compile records the fused node (its running-statistics update inside) and replays it: eager's
    bits (fused or not), no fallback; with momentum=None each replayed step's factor is 1/its count."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got, fn = train(mlp(True, dtype, **bn), steps=6, compiled=True)
    assert [e.state for es in fn._cache.values() for e in es] == ["checked"]
    assert_same_bits(got, train(mlp(True, dtype, **bn), steps=6)[0])
    assert_same_bits(got, train(mlp(False, dtype, **bn), steps=6)[0])


def test_double_backward_through_the_fused_module():
    """create_graph=True through the fused nodes (their compose: the forward rebuilt as Tensor ops and
    differentiated, which sums in another order than the pair's nodes do): the pair's first and second
    derivatives within rounding."""
    results = []
    for fuse in (True, False):
        m = mlp(fuse, np.float64)
        x = Tensor(np.random.default_rng(4).standard_normal((6, 1, 6, 6)), requires_grad=True)
        loss = F.cross_entropy(m(x), Tensor(np.arange(6)))
        (gx,) = mg.autograd.grad(loss, [x], create_graph=True)
        (gx * gx).sum().backward()
        results.append([gx.data] + [p.grad.data for p in m.parameters()])
    fused, plain = results
    for a, b in zip(fused, plain):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)


class Shifted(nn.BatchNorm1d):
    def forward(self, x):
        return super().forward(x) + 100.0


class MySigmoid(nn.Sigmoid):
    def forward(self, x):
        return x.sigmoid() * 2.0


class Unknown(nn.Module):
    """A user's activation that borrows the marker with a name nothing fuses."""
    plain_activation = "gelu"

    def forward(self, x):
        return x.sigmoid() * 3.0


@pytest.mark.parametrize("case", ["ghost", "subclass_forward", "sync", "sigmoid_subclass", "unknown", "fuse_off"])
def test_cases_left_unfused(case):
    """Ghost batches, a BatchNorm subclass with its own forward (a user's, SyncBatchNorm), a Sigmoid subclass, an
    activation whose marker names nothing fused and ``fuse = False`` run as the two modules: their own forwards'
    results, no fused node."""
    dt = np.float64
    bn = {"ghost": lambda: nn.BatchNorm1d(3, dtype=dt, virtual_batch_size=2),
          "subclass_forward": lambda: Shifted(3, dtype=dt), "sync": lambda: nn.SyncBatchNorm(3, dtype=dt)}.get(
        case, lambda: nn.BatchNorm1d(3, dtype=dt))
    act = {"sigmoid_subclass": MySigmoid, "unknown": Unknown}.get(case, nn.Sigmoid)
    mg.manual_seed(0)
    seq = nn.Sequential(bn(), act())
    seq.fuse = case != "fuse_off"
    mg.manual_seed(0)
    alone = nn.Sequential(bn(), act())
    x = Tensor(np.random.default_rng(0).standard_normal((6, 3)), requires_grad=True)
    y = seq(x)
    kinds = ops(y)
    assert "_BatchNormTrainThen" not in kinds and "_ChannelAffineThen" not in kinds, kinds
    want = alone[1](alone[0](x))  # the two modules called one after the other
    np.testing.assert_array_equal(y.data, want.data)
    if case == "subclass_forward":  # NOTE: its + 100 ran: the sigmoid of it is 1
        assert (y.data == 1.0).all()
    if case in ("sigmoid_subclass", "unknown"):
        assert (y.data > 1).any()


def test_the_mlp_of_the_paper_runs_fused():
    """models._mlp with BN (the paper's MLP-BN step) runs its three BatchNorm + Sigmoid pairs as three nodes."""
    m = models._mlp(784, 10, True, np.float32)
    kinds = ops(m(Tensor(np.random.default_rng(0).standard_normal((4, 1, 28, 28)).astype(np.float32))))
    assert kinds.count("_BatchNormTrainThen") == 3 and "Sigmoid" not in kinds
