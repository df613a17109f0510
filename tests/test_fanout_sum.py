"""The fan-out sum handed to the node (Function.backward_sum): add + ReLU's backward of two gradient contributions in
one kernel pass (add_relu_backward_sum) on every backend, against the walk's sum then the mask; the walk (eager and
minigrad.compile's replay) takes that path where the output got exactly two contributions and its node defines
backward_sum, the old sum elsewhere, with the same bits either way."""
import re

import numpy as np
import pytest

import minigrad as mg
from conftest import DTYPES
from minigrad import Tensor
from minigrad.app import models
from minigrad.nn import functional as F
from minigrad.optim import SGD
from minigrad.tensor import Function
from test_compile import _assert_same, _setup


def _arrays(dtype, M=3 * (1 << 14) + 5, seed=5):
    """dy0, dy1, y with sums that cancel (+0 and -0), inf - inf, NaN, and an inf sum where y is 0."""
    rng = np.random.default_rng(seed)
    dy0, dy1, y = (rng.standard_normal(M).astype(dtype) for _ in range(3))
    dy1[:3] = -dy0[:3]
    dy0[3], dy1[3] = np.inf, -np.inf
    dy0[4], dy1[5], dy0[6], dy1[6] = np.nan, np.inf, -0.0, -0.0
    y[4:7], y[5] = 1.0, 0.0
    return dy0, dy1, y


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["numpy", "cython", "numba"])
def test_add_relu_backward_sum_is_the_sum_then_the_mask(name, dtype):
    """Every backend, bit for bit the add kernel's sum then add_relu_backward (the reference's two steps), at 1, 2
    and 3 threads over more than one parallel chunk; through the contract too."""
    from minigrad.kernels import reference

    if name not in mg.available_backends():
        pytest.skip(f"backend {name} not available")
    k = mg.kernels.load(name)
    dy0, dy1, y = _arrays(dtype)
    want, s = np.empty_like(y), np.empty_like(y)
    with np.errstate(invalid="ignore"):
        reference.add(s, dy0, dy1)
        reference.add_relu_backward(want, s, y)
        got = np.empty_like(y)
        reference.add_relu_backward_sum(got, dy0, dy1, y)
        assert got.tobytes() == want.tobytes()
        assert np.isnan(want[3]) and np.isnan(want[5]) and np.signbit(want[6])  # inf - inf; inf * 0; -0 + -0
        for n_threads in (1, 2, 3):
            dx = np.full_like(y, np.nan)
            k.module.add_relu_backward_sum(dx, dy0, dy1, y, n_threads)
            assert dx.tobytes() == want.tobytes(), (name, n_threads)
        dx = np.empty_like(y)
        k.add_relu_backward_sum(dx, dy0, dy1, y)
        assert dx.tobytes() == want.tobytes()


def test_add_relu_backward_sum_checks_its_arguments():
    a = np.zeros(8, np.float32)
    with pytest.raises(ValueError, match="add_relu_backward_sum"):
        mg.kernels.kernels().add_relu_backward_sum(a, a, np.zeros(7, np.float32), a)
    with pytest.raises((TypeError, ValueError), match="add_relu_backward_sum"):
        mg.kernels.kernels().add_relu_backward_sum(a, a, a, np.zeros(8, np.float64))


@pytest.fixture
def fused_calls(monkeypatch):
    """The add_relu_backward_sum calls made through the backend (a list of their dx's sizes)."""
    k = mg.kernels.kernels()
    raw, calls = k.add_relu_backward_sum, []

    def spy(dx, *args):
        calls.append(dx.size)
        return raw(dx, *args)
    monkeypatch.setattr(k, "add_relu_backward_sum", spy)
    return calls


class _Flipped(Function):
    """x[::-1] whose gradient goes back as a view (negative strides: not C-contiguous)."""

    def forward(self, x):
        return x[::-1].copy()

    def backward(self, g):
        return g[::-1]


def _fan_out(add_relu, readers, a, b, ws, g):
    """``add_relu(a, b)`` read by ``readers`` ops (each ``y * w``, or ``flip(y) * w`` where the reader is "F": its
    gradient is not C-contiguous), their products summed into one loss against ``g``."""
    at, bt = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    y = add_relu(at, bt)
    out = None
    for r, w in zip(readers, ws):
        z = _Flipped.apply(y) * Tensor(w) if r == "F" else y * Tensor(w)
        out = z if out is None else out + z
    (out * Tensor(g)).sum().backward()
    return at.grad.data.tobytes(), bt.grad.data.tobytes()


def _pair(a, b):
    return (a + b).relu()


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("readers, fused", [("yy", 1), ("yyy", 0), ("yF", 0), ("Fy", 0)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_the_walk_hands_two_contributions_to_add_relu(fused_calls, dtype, readers, fused, threads):
    """Two readers of add_relu's output: one add_relu_backward_sum call; three (the sum of three, in the walk's
    order) or a contribution that is not C-contiguous: the old sum. The gradients are the unfused pair's bits (whose
    ReLU node takes no pending sum) in every case, at 1 and 2 threads (the add kernel on the team: 2^17 elements)."""
    rng = np.random.default_rng(1)
    shape = (1 << 9, 1 << 8)
    a, b, g = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
    ws = [rng.standard_normal(shape).astype(dtype) for _ in readers]
    old = mg.get_num_threads()
    mg.set_num_threads(threads)
    try:
        got = _fan_out(F.add_relu, readers, a, b, ws, g)
        assert len(fused_calls) == fused
        assert got == _fan_out(_pair, readers, a, b, ws, g)
    finally:
        mg.set_num_threads(old)


@pytest.mark.parametrize("readers, fused", [("yy", 1), ("yyy", 0), ("yF", 0)])
def test_the_replay_takes_the_pair_where_eager_does(fused_calls, readers, fused):
    """minigrad.compile's replay of the graphs above: the fused call where eager makes it, the old sum elsewhere (a
    third contribution, one not C-contiguous), with eager's gradients bit for bit."""
    rng = np.random.default_rng(4)
    shape = (64, 48)
    a, b, g = (rng.standard_normal(shape).astype(np.float32) for _ in range(3))
    ws = [Tensor(rng.standard_normal(shape).astype(np.float32)) for _ in readers]
    at, bt, gt = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True), Tensor(g)
    opt = SGD([at, bt], lr=0.0)

    def step(s):
        opt.zero_grad()
        y = F.add_relu(at * s, bt)
        out = None
        for r, w in zip(readers, ws):
            z = _Flipped.apply(y) * w if r == "F" else y * w
            out = z if out is None else out + z
        loss = (out * gt).sum()
        loss.backward()
        return loss

    compiled = mg.compile(step)
    for i in range(4):  # record, check, replay twice
        s = Tensor(np.float32(1 + i / 8))
        before = len(fused_calls)
        compiled(s)
        assert len(fused_calls) - before == fused * (2 if i == 1 else 1)  # the check runs replay and eager
        got = [at.grad.data.tobytes(), bt.grad.data.tobytes()]
        step(s)
        assert got == [at.grad.data.tobytes(), bt.grad.data.tobytes()]
        fused_calls.clear()
    (entry,) = [e for entries in compiled._cache.values() for e in entries]
    assert entry.state == "checked"


def test_autograd_grad_takes_the_old_sum(fused_calls):
    """autograd.grad's walk (inputs given) sums as before; the same bits as backward()'s fused path."""
    rng = np.random.default_rng(2)
    a, b, w0, w1 = (rng.standard_normal((5, 7)) for _ in range(4))
    at, bt = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    y = F.add_relu(at, bt)
    loss = (y * Tensor(w0) + y * Tensor(w1)).sum()
    (ga,) = mg.autograd.grad(loss, [at], retain_graph=True)
    assert not fused_calls
    loss.backward()
    assert fused_calls and ga.data.tobytes() == at.grad.data.tobytes()


def test_compiled_replay_makes_the_fused_call(fused_calls):
    """resnet-tiny's blocks 2 and 3 take their input from the previous block's add + ReLU, which fans out to conv1
    and the shortcut: the replay makes the fused calls eager makes, with eager's bits (parameters, gradients,
    momentum)."""
    def setup():
        return _setup(lambda: models.build_model("resnet-tiny", in_channels=3), "sgd")

    rng = np.random.default_rng(3)
    batches = [(Tensor(rng.standard_normal((4, 3, 8, 8)).astype(np.float32)), Tensor(rng.integers(0, 10, 4)))
               for _ in range(4)]
    net_a, opt_a, step_a = setup()
    for x, y in batches:
        step_a(x, y)
    eager_calls = len(fused_calls)
    assert eager_calls == 2 * len(batches)
    net_b, opt_b, step_b = setup()
    step_b = mg.compile(step_b)
    for x, y in batches[:3]:  # record, check, then replay
        step_b(x, y)
    before = len(fused_calls)
    step_b(*batches[3])
    assert len(fused_calls) - before == 2  # the replay's own calls
    (entry,) = [e for entries in step_b._cache.values() for e in entries]
    assert entry.state == "checked"  # replayed, not eager
    assert len(re.findall(r"if type\((g\d+)\) is not tuple else B\d+\(\*\1\)", entry.trace.src)) == 2
    _assert_same(net_a, opt_a, net_b, opt_b)
