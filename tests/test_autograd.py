"""Autograd core: every differentiable op is gradchecked in float64, including broadcasting, and compared with
PyTorch; graph semantics (accumulation, no_grad, freeing) and bad input."""
import gc
import weakref

import numpy as np
import pytest

import minigrad as mg
from minigrad import Tensor, gradcheck

torch = pytest.importorskip("torch")


def t64(*shape, low=None, seed=0, requires_grad=True):
    rng = np.random.default_rng(seed + sum(shape))
    a = rng.standard_normal(shape)
    if low is not None:
        a = np.abs(a) + low
    return Tensor(a, requires_grad=requires_grad)


# (name, fn, input shapes, positive inputs?)
UNARY = [
    ("neg", lambda a: -a, False),
    ("exp", lambda a: a.exp(), False),
    ("log", lambda a: a.log(), True),
    ("sqrt", lambda a: a.sqrt(), True),
    ("tanh", lambda a: a.tanh(), False),
    ("sigmoid", lambda a: a.sigmoid(), False),
    ("relu", lambda a: a.relu(), False),
    ("abs", lambda a: a.abs(), False),
    ("pow_scalar", lambda a: a ** 3, False),
    ("pow_frac", lambda a: a ** 0.5, True),
    ("clip", lambda a: a.clip(-0.5, 0.7), False),
    ("sum_all", lambda a: a.sum(), False),
    ("sum_axis", lambda a: a.sum(axis=1), False),
    ("sum_keepdims", lambda a: a.sum(axis=(0, 2), keepdims=True), False),
    ("mean", lambda a: a.mean(axis=-1), False),
    ("var", lambda a: a.var(axis=1), False),
    ("var_biased_keep", lambda a: a.var(axis=(1, 2), keepdims=True, correction=0), False),
    ("max_axis", lambda a: a.max(axis=2), False),
    ("max_all", lambda a: a.max(), False),
    ("min_axis", lambda a: a.min(axis=0, keepdims=True), False),
    ("reshape", lambda a: a.reshape(6, -1) * Tensor(np.arange(20.0).reshape(1, 20) if a.numel() == 120 else 1.0), False),
    ("transpose", lambda a: a.transpose(0, 2) * Tensor(np.arange(a.shape[0] * 1.0)), False),
    ("permute", lambda a: a.permute(2, 0, 1).reshape(a.shape[2], -1)[1:], False),
    ("T", lambda a: a.reshape(a.shape[0], -1).T * 2.0, False),
    ("getitem_slice", lambda a: a[1:, ::2, -1], False),
    ("getitem_int_array", lambda a: a[np.array([0, 2, 0])], False),
    ("getitem_mixed", lambda a: a[:, np.array([1, 1, 3]), 2:], False),
    ("getitem_bool", lambda a: a[a.data > 0], False),
    ("softmax_via_ops", lambda a: (a - a.max(axis=-1, keepdims=True)).exp()
        / (a - a.max(axis=-1, keepdims=True)).exp().sum(axis=-1, keepdims=True), False),
]


@pytest.mark.parametrize("name,fn,positive", UNARY, ids=[u[0] for u in UNARY])
def test_unary_gradcheck(name, fn, positive):
    x = t64(4, 5, 6, low=0.5 if positive else None)
    assert gradcheck(fn, [x])


BINARY = [
    ("add", lambda a, b: a + b),
    ("sub", lambda a, b: a - b),
    ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / b),
    ("pow", lambda a, b: a ** b),
    ("maximum", lambda a, b: a.maximum(b)),
    ("minimum", lambda a, b: mg.minimum(a, b)),
    ("where", lambda a, b: mg.where(a.data > 0.8, a, b)),
]
# shape pairs, including every broadcasting pattern
SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((2, 3, 4), (3, 1)), ((1,), (2, 3)), ((), (2, 3))]


@pytest.mark.parametrize("name,fn", BINARY, ids=[b[0] for b in BINARY])
@pytest.mark.parametrize("sa,sb", SHAPES)
def test_binary_gradcheck_broadcasting(name, fn, sa, sb):
    positive = name in ("pow", "div")
    a, b = t64(*sa, low=0.5 if positive else None, seed=1), t64(*sb, low=0.5 if positive else None, seed=2)
    assert gradcheck(fn, [a, b])
    out = fn(a, b)
    assert out.shape == np.broadcast_shapes(sa, sb)


@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)),
                                   ((2, 3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 2))])
def test_matmul_gradcheck(sa, sb):
    assert gradcheck(lambda a, b: a @ b, [t64(*sa, seed=3), t64(*sb, seed=4)])


def test_concatenate_and_stack_gradcheck():
    a, b, c = t64(2, 3, seed=5), t64(4, 3, seed=6), t64(2, 3, seed=7)
    assert gradcheck(lambda a, b: mg.concatenate([a, b], axis=0) * 3.0, [a, b])
    assert gradcheck(lambda a, c: mg.stack([a, c, a], axis=1), [a, c])


def test_scalars_and_arrays_on_either_side():
    x = Tensor(np.array([1.0, 2.0, 4.0], dtype=np.float32), requires_grad=True)
    y = 2 * x + 1 - x / 2 + 3 / x - np.ones(3, np.float32) * x + 2.0 ** x
    assert y.dtype == np.float32  # Python scalars do not promote float32 to float64
    y.sum().backward()
    xd = np.array([1.0, 2.0, 4.0])
    expect = 2 - 0.5 - 3 / xd ** 2 - 1 + np.log(2) * 2.0 ** xd
    np.testing.assert_allclose(x.grad.numpy(), expect, rtol=1e-5)
    z = np.ones(3) @ x  # ndarray on the left, Tensor on the right
    assert isinstance(z, Tensor)


def test_against_torch_mlp_values_and_grads():
    rng = np.random.default_rng(0)
    xa, w1a, w2a = rng.standard_normal((5, 4)), rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
    x, w1, w2 = Tensor(xa), Tensor(w1a, requires_grad=True), Tensor(w2a, requires_grad=True)
    out = ((x @ w1).relu() @ w2).sigmoid().log().mean()
    out.backward()
    tx, tw1, tw2 = (torch.tensor(a, requires_grad=True) for a in (xa, w1a, w2a))
    tout = torch.log(torch.sigmoid(torch.relu(tx @ tw1) @ tw2)).mean()
    tout.backward()
    np.testing.assert_allclose(out.item(), tout.item(), rtol=1e-12)
    np.testing.assert_allclose(w1.grad.numpy(), tw1.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(w2.grad.numpy(), tw2.grad.numpy(), rtol=1e-10)


def test_gradients_accumulate_across_backward_calls_and_fan_out():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * x + x).sum().backward()  # fan-out: x used three times
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.data + 1)
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.data + 1 + 3)


def test_no_grad_builds_no_graph():
    x = Tensor(np.ones(3), requires_grad=True)
    with mg.no_grad():
        y = x * 2
    assert not y.requires_grad and y.is_leaf
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()

    @mg.no_grad()
    def f(a):
        return a * 2
    assert not f(x).requires_grad
    assert mg.is_grad_enabled()


def test_mode_switches_are_per_thread_and_restored():
    """no_grad in one thread does not reach another; nesting and exceptions restore the modes (the ops skip the
    thread-local lookups only while no switch is active anywhere)."""
    import threading
    import sys
    T = sys.modules["minigrad.tensor"]
    x = Tensor(np.ones(3), requires_grad=True)
    entered, release, seen = threading.Event(), threading.Event(), {}

    def other():
        with mg.no_grad():
            seen["other"] = (x * 2).requires_grad
            entered.set()
            release.wait(5)

    t = threading.Thread(target=other)
    t.start()
    entered.wait(5)
    seen["main"] = (x * 2).requires_grad  # while the other thread is inside no_grad
    release.set()
    t.join()
    assert seen == {"other": False, "main": True}
    with pytest.raises(ZeroDivisionError):
        with mg.no_grad():
            with mg.enable_grad():
                assert (x * 2).requires_grad
            1 / 0
    assert (x * 2).requires_grad and mg.is_grad_enabled()
    assert T._active_switches == 0


def test_detach_and_integer_tensors():
    x = Tensor(np.ones(3), requires_grad=True)
    assert not (x * 2).detach().requires_grad
    labels = Tensor(np.array([1, 2, 3]))
    assert labels.dtype == np.int64
    with pytest.raises(TypeError, match="float32 and float64"):
        Tensor(np.array([1, 2]), requires_grad=True)


def test_backward_frees_graph():
    x = Tensor(np.ones((100, 100)), requires_grad=True)
    y = (x * 2).exp()
    ctx = weakref.ref(y._ctx)
    y.sum().backward()
    gc.collect()
    assert ctx() is None, "the graph must be freed after backward"
    assert y._ctx is None


def test_graph_has_no_reference_cycles():
    gc.collect()
    gc.disable()
    try:
        x = Tensor(np.ones(10), requires_grad=True)
        y = ((x * 2).sigmoid() + x).sum()
        node = weakref.ref(y._ctx)
        del y
        assert node() is None, "dropping the output must free its graph without the cycle collector"
    finally:
        gc.enable()


def test_deep_graph_no_recursion_limit():
    x = Tensor(np.ones(2), requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 1.0001 ** 5000, rtol=1e-6)


def test_bad_input_errors():
    a, b = mg.randn(3, 4), mg.randn(5, 6)
    with pytest.raises(ValueError, match="not aligned"):
        a @ b
    x = Tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(RuntimeError, match="one-element"):
        (x * 2).backward()
    with pytest.raises(ValueError, match="grad has shape"):
        (x * 2).backward(np.ones(3))
    (x * 2).backward(np.ones((2, 2)))
    np.testing.assert_allclose(x.grad.numpy(), 2)
    with pytest.raises(TypeError):
        Tensor("hello")
    with pytest.raises(ValueError, match="axis"):
        x.sum(axis=5)


def test_gradcheck_reports_worst_element():
    class Wrong(mg.Function):
        def forward(self, x):
            return x * 2

        def backward(self, g):
            out = g * 2
            out.reshape(-1)[3] = 0.0
            return out

    with pytest.raises(mg.GradcheckError, match=r"element \(1, 0\)"):
        gradcheck(lambda a: Wrong.apply(a), [t64(3, 3)])


def test_factories_dtypes_and_seeding():
    assert mg.tensor([1, 2]).dtype == np.int64 and mg.tensor([1.0, 2]).dtype == np.float32  # as PyTorch (issue 16)
    assert mg.tensor(1.5).dtype == np.float32
    assert mg.Tensor(np.zeros(2, np.float64)).dtype == np.float64
    assert mg.zeros(2, 3).shape == (2, 3) and mg.ones((2, 3), dtype="float64").dtype == np.float64
    assert mg.full((2,), 7.0).numpy().tolist() == [7.0, 7.0]
    assert mg.arange(5).dtype == np.int64 and mg.arange(0.0, 1.0, 0.5).dtype == np.float32
    assert mg.zeros_like(mg.ones(3)).numpy().sum() == 0 and mg.ones_like(mg.zeros(2)).numpy().sum() == 2
    mg.manual_seed(3)
    a = mg.randn(4).numpy().copy(), mg.rand(2).numpy().copy()
    mg.manual_seed(3)
    b = mg.randn(4).numpy(), mg.rand(2).numpy()
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert len(mg.zeros(5, 2)) == 5 and mg.zeros(5, 2).ndim == 2 and mg.zeros(5, 2).T.shape == (2, 5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float32_and_float64_grads_keep_dtype(dtype):
    x = Tensor(np.ones((2, 3), dtype), requires_grad=True)
    ((x * 2).tanh() @ Tensor(np.ones((3, 2), dtype))).sum().backward()
    assert x.grad.dtype == dtype


def test_detect_anomaly_names_op():
    x = Tensor(np.array([-1.0, 1.0]), requires_grad=True)
    with mg.detect_anomaly(), np.errstate(invalid="ignore", divide="ignore"):
        with pytest.raises(FloatingPointError, match=r"Log\.forward produced NaN"):
            x.log()
        z = Tensor(np.array([0.0, 1.0]), requires_grad=True)
        with pytest.raises(FloatingPointError, match=r"Sqrt\.backward produced inf"):
            z.sqrt().sum().backward()
    with np.errstate(invalid="ignore"):
        assert np.isnan(x.log().numpy()[0])  # outside the context: NaN propagates, no error


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backward_fast_walk_matches_the_general_walk(dtype):
    """``backward()`` of a loss takes the engine's short loop (``_walk_arrays``); ``backward(inputs=...)`` over
    every leaf takes the general one. Fan-out, broadcasting, a float32 leaf in a float64 graph, a leaf used as the
    root's parent twice and a second walk's accumulation: the same gradients, bit for bit."""
    def build():
        rng = np.random.default_rng(3)
        a = Tensor(rng.standard_normal((4, 3)).astype(dtype), requires_grad=True)
        b = Tensor(rng.standard_normal((3,)).astype(dtype), requires_grad=True)  # broadcast over rows
        c = Tensor(rng.standard_normal((4, 1)).astype(np.float32), requires_grad=True)  # promoted when dtype is 64
        h = (a * b).sigmoid()
        y = (h * h + h * c + a).sum() + (b * b).sum()
        return y, (a, b, c)

    y1, leaves1 = build()
    y1.backward(retain_graph=True)
    y1.backward()
    y2, leaves2 = build()
    y2.backward(inputs=list(leaves2), retain_graph=True)
    y2.backward(inputs=list(leaves2))
    for p1, p2 in zip(leaves1, leaves2):
        assert p1.grad.dtype == p1.dtype and p1.grad.shape == p1.shape
        assert p1.grad.data.tobytes() == p2.grad.data.tobytes()
    with pytest.raises(RuntimeError, match="second time"):
        y1.backward()
