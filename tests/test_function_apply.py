"""Function.apply and apply_with_ctx: the fast paths (one, two, three inputs, a node made without Function.__init__'s
frame, an output Tensor without Tensor.__init__'s) give what the plain steps give: the node's parents and
needs_input_grad, the output's flags, an op's own __init__ still run, non-array outputs, no_grad and integer
outputs, and the topological order of a walk with fan-out."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import Tensor
from minigrad.tensor import Function, _topological_order


class Scale(Function):
    def forward(self, *arrays, k=2.0):
        self.k = k
        return sum(arrays) * np.asarray(k, arrays[0].dtype)

    def backward(self, g):
        gs = tuple(g * np.asarray(self.k, g.dtype) if need else None for need in self.needs_input_grad)
        return gs if len(gs) > 1 else gs[0]


class WithInit(Scale):
    def __init__(self, parents):
        super().__init__(parents)
        self.made_by_init = True


class ScalarOut(Function):
    differentiable = False

    def forward(self, x):
        return float(x.sum())


@pytest.mark.parametrize("how", ["apply", "apply_with_ctx"])
@pytest.mark.parametrize("cls", [Scale, WithInit])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_node_and_output_as_the_plain_steps(how, cls, n):
    xs = [Tensor(np.arange(3, dtype=np.float32) + i, requires_grad=(i != 1)) for i in range(n)]
    out = getattr(cls, how)(*xs, k=3.0)
    y, ctx = out if how == "apply_with_ctx" else (out, out._ctx)
    assert type(y) is Tensor and y.grad is None and y.requires_grad and y._ctx is ctx
    assert type(ctx) is cls and ctx.parents == tuple(xs) and all(p is x for p, x in zip(ctx.parents, xs))
    assert ctx.needs_input_grad == tuple(i != 1 for i in range(n)) and ctx.k == 3.0
    assert getattr(ctx, "made_by_init", False) == (cls is WithInit)
    np.testing.assert_array_equal(y.data, sum(x.data for x in xs) * np.float32(3.0))
    y.sum().backward()
    for i, x in enumerate(xs):
        if i == 1:
            assert x.grad is None
        else:
            np.testing.assert_array_equal(x.grad.data, np.full(3, 3.0, np.float32))


@pytest.mark.parametrize("how", ["apply", "apply_with_ctx"])
def test_no_grad_integer_and_non_array_outputs(how):
    def run(*args, cls=Scale):
        out = getattr(cls, how)(*args)
        return out[0] if how == "apply_with_ctx" else out
    x = Tensor(np.ones(2, np.float32), requires_grad=True)
    with mg.no_grad():
        y = run(x)
    assert not y.requires_grad and y._ctx is None and y.grad is None
    i = run(Tensor(np.arange(2)), Tensor(np.arange(2)))  # int64: never requires grad
    assert i.data.dtype == np.int64 and not i.requires_grad and i._ctx is None
    s = run(x, cls=ScalarOut)  # a float, not an ndarray: Tensor(out)
    assert type(s.data) is np.ndarray and s.data.shape == () and not s.requires_grad and s._ctx is None
    z = run(Tensor(np.ones(2, np.float32)))  # no input requires grad
    assert not z.requires_grad and z._ctx is None


def _reference_order(roots):
    """The walk's order as first written: (node, done) pairs on the stack."""
    order, seen, stack = [], set(), [(r, False) for r in reversed(roots)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
        elif node not in seen:
            seen.add(node)
            stack.append((node, True))
            if node._ctx is not None:
                stack.extend((p, False) for p in node._ctx.parents if p.requires_grad and p not in seen)
    return order[::-1]


def test_topological_order_with_fan_out():
    # NOTE: the order of the walk decides the order of fan-out sums (the bits): random graphs with fan-out
    rng = np.random.default_rng(0)
    for trial in range(20):
        nodes = [Tensor(rng.standard_normal(2), requires_grad=bool(i % 3)) for i in range(3)]
        for _ in range(12):
            a, b = (nodes[j] for j in rng.integers(len(nodes), size=2))
            nodes.append(a * b if rng.integers(2) else a + b)
        roots = [nodes[-1]] if trial % 2 else [nodes[-1], nodes[-3]]
        roots = [r for r in roots if r.requires_grad]
        got, want = _topological_order(roots), _reference_order(roots)
        assert [id(t) for t in got] == [id(t) for t in want]
        pos = {id(t): i for i, t in enumerate(got)}
        for t in got:
            for p in (t._ctx.parents if t._ctx is not None else ()):
                assert not p.requires_grad or pos[id(t)] < pos[id(p)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_leaf_gradients_stay_arrays_when_accumulated(dtype):
    # NOTE: 0-d + 0-d gives a NumPy scalar; a leaf's .grad must still hold an ndarray (np.asarray(t.grad) works)
    x = Tensor(np.array(2.0, dtype), requires_grad=True)
    for _ in range(3):
        (x * 3).backward()
    assert type(x.grad.data) is np.ndarray and x.grad.data.dtype == dtype and x.grad.data.shape == ()
    np.testing.assert_array_equal(np.asarray(x.grad), np.array(9.0, dtype))
    w = Tensor(np.ones((2, 3), dtype), requires_grad=True)
    (w * 2).sum().backward()
    (w * 2).sum().backward()
    assert type(w.grad.data) is np.ndarray
    np.testing.assert_array_equal(w.grad.data, np.full((2, 3), 4.0, dtype))
