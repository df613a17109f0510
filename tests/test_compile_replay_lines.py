"""The replayed MLP-BN step's lines written in place of Python calls (docs/compile.md, Session 32): the batch counter
as its statement, the bound cross entropy's flag read from the target check's all-true mask, the batch statistics
written to the context only where the host computation reads them; and the guard's leaf test (requires_grad, shape
and dtype in one pass) still sending a frozen parameter to a new recording. Results stay eager's, bit for bit."""
import warnings

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import nn
from minigrad.optim import SGD
from test_compile import _assert_same_nets, _setup


def _build(momentum=0.1):
    return nn.Sequential(nn.Linear(12, 16, bias=False), nn.BatchNorm1d(16, momentum=momentum), nn.Sigmoid(),
                         nn.Linear(16, 16, bias=False), nn.BatchNorm1d(16, momentum=momentum), nn.Sigmoid(),
                         nn.Linear(16, 10))


def _pair(build=_build):
    """(eager step, compiled step, eager net, compiled net), each from the same seed."""
    net_a, _, step_a = _setup(build, "sgd")
    net_b, _, step_b = _setup(build, "sgd")
    return step_a, mg.compile(step_b), net_a, net_b


def _batches(n, seed=0):
    rng = np.random.default_rng(seed)
    return [(mg.Tensor(rng.standard_normal((10, 12)).astype(np.float32)), mg.Tensor(rng.integers(0, 10, 10)))
            for _ in range(n)]


def _source(compiled):
    (entry,) = [e for es in compiled._cache.values() for e in es]
    assert entry.state == "checked"
    return entry.trace.src


def test_lines_in_place_of_calls_give_eagers_bits():
    """Six replays after the check: the counters count every batch (the statement, no host call), the flag takes
    the mask's identity, the statistics go to the context in the host computation's branch only; every loss,
    parameter, buffer (num_batches_tracked included) and gradient equal eager's."""
    step_a, compiled, net_a, net_b = _pair()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for x, y in _batches(8):
            assert step_a(x, y).data.tobytes() == compiled(x, y).data.tobytes()
    _assert_same_nets(net_a, net_b)
    assert [int(m.num_batches_tracked.data) for m in net_b.modules() if isinstance(m, nn.BatchNorm1d)] == [8, 8]
    src = _source(compiled)
    assert src.count("[()] += 1") == 2
    flag = [line.strip() for line in src.splitlines() if "np.count_nonzero" in line]
    assert len(flag) == 1 and " is c" in flag[0]
    # NOTE: the statistics' writes to a context, one per batch norm, each inside the fallback branch
    to_ctx = [line for line in src.splitlines() if ".mean, x" in line]
    assert len(to_ctx) == 2 and all(line.startswith("     ") for line in to_ctx)


def test_cumulative_average_keeps_the_statistics_in_the_forward():
    """``momentum=None``: the running statistics stay a host computation (the factor is read per step), which
    reads the context's statistics: the forward still writes them, at the top level."""
    step_a, compiled, net_a, net_b = _pair(lambda: _build(momentum=None))
    for x, y in _batches(6, seed=1):
        assert step_a(x, y).data.tobytes() == compiled(x, y).data.tobytes()
    _assert_same_nets(net_a, net_b)
    to_ctx = [line for line in _source(compiled).splitlines() if ".mean, x" in line]
    assert len(to_ctx) == 2 and all(line.startswith("    x") for line in to_ctx)


def test_guard_sends_a_frozen_parameter_to_a_new_recording():
    """A parameter frozen (``requires_grad = False``) between replays fails the guard: a new recording (its
    gradient None, as eager leaves it), never the old one's; results stay eager's. (A parameter given another dtype:
    test_compile.py's test_live_tensor_of_another_dtype_is_a_new_recording.)"""
    step_a, compiled, net_a, net_b = _pair()
    for i, (x, y) in enumerate(_batches(7, seed=2)):
        if i == 4:
            for net in (net_a, net_b):
                net[6].weight.requires_grad = False
        assert step_a(x, y).data.tobytes() == compiled(x, y).data.tobytes()
    _assert_same_nets(net_a, net_b)
    assert [e.state for es in compiled._cache.values() for e in es] == ["checked", "checked"]
    assert net_b[6].weight.grad is None


class _ReadLinear(nn.Module):
    """A linear layer's output read by a host computation (``h > 0``, returned): that _Linear stays unbound (its
    output array must not be reused), the batch norm + sigmoid after it bound."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(12, 16, bias=False)
        self.rest = nn.Sequential(nn.BatchNorm1d(16), nn.Sigmoid(), nn.Linear(16, 10))

    def forward(self, x):
        h = self.lin(x)
        return self.rest(h), h > 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bound_batch_norm_after_an_unbound_linear_reads_its_new_output(dtype):
    """The batch norm's input as a view of the _Linear's own output array only where that _Linear is bound: here
    it is not, and the batch norm reads each replay's new output (eager's bits, float32 and float64)."""
    outs = []
    for _ in range(2):
        mg.manual_seed(0)
        net = _ReadLinear().to(dtype=dtype)
        opt = SGD(net.parameters(), lr=0.05, momentum=0.9)

        def step(x, y, net=net, opt=opt):
            opt.zero_grad()
            out, positive = net(x)
            loss = F.cross_entropy(out, y)
            loss.backward()
            opt.step()
            return loss, positive
        outs.append((step, net))
    (step_a, net_a), (step_b, net_b) = outs
    compiled = mg.compile(step_b)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for x, y in _batches(6, seed=3):
            x = mg.Tensor(x.data.astype(dtype))
            (la, pa), (lb, pb) = step_a(x, y), compiled(x, y)
            assert la.data.tobytes() == lb.data.tobytes() and pa.data.tobytes() == pb.data.tobytes()
    _assert_same_nets(net_a, net_b)
    src = _source(compiled)
    assert "K" in src and ".reshape(10, 16, 1)" in src  # NOTE: the batch norm bound, its input the plain reshape


def test_leaf_gradients_written_without_leaf_array_are_new_arrays_each_replay():
    """The leaves whose gradient comes from one bound backward take that array as it is (no ``_leaf_array``): it
    must be a new array each replay, so a gradient kept from one step is not changed by the next (eager's: a new
    array per step)."""
    step_a, compiled, net_a, net_b = _pair()
    kept_a, kept_b = [], []
    for x, y in _batches(6, seed=4):
        step_a(x, y)
        compiled(x, y)
        kept_a.append([p.grad.data for p in net_a.parameters()])
        kept_b.append([(p.grad.data, p.grad.data.copy()) for p in net_b.parameters()])
    for grads_a, grads_b in zip(kept_a, kept_b):
        for a, (b, copy) in zip(grads_a, grads_b):
            assert a.tobytes() == b.tobytes() == copy.tobytes()
    assert len({id(g) for grads in kept_b for g, _ in grads}) == 6 * len(kept_b[0])
    src = _source(compiled)
    assert "_leaf_array" not in src and src.count("n.data = g") == len(kept_b[0])
