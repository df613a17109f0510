"""The eager training step's short paths (docs/perf/mlp-step.md, "the eager step's Python") give what the general
paths give: SGD's unchecked call with gradients in other layouts, Linear's backward on 2-D and N-D input,
nn.Sequential running a module's forward without its call, cross entropy's ignore_index check."""
import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import Tensor, nn
from minigrad.optim import SGD


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["strided-1d", "transposed-2d", "strided-2d"])
def test_sgd_gradients_in_other_layouts_as_contiguous_ones(dtype, layout):
    # NOTE: from the second step SGD calls the kernel unchecked; a strided 1-D gradient passed through reshape(-1)
    # stayed strided and was read as contiguous (wrong values, reads past its end)
    rng = np.random.default_rng(0)
    shape = (5,) if layout == "strided-1d" else (4, 3)
    start = rng.standard_normal(shape).astype(dtype)
    params = [nn.Parameter(start.copy()), nn.Parameter(start.copy())]
    opts = [SGD([p], lr=0.1, momentum=0.9, weight_decay=1e-2, nesterov=True) for p in params]
    for _ in range(4):
        if layout == "strided-1d":
            g = rng.standard_normal(10).astype(dtype)[::2]
        elif layout == "transposed-2d":
            g = rng.standard_normal(shape[::-1]).astype(dtype).T
        else:
            g = rng.standard_normal((shape[0], 2 * shape[1])).astype(dtype)[:, ::2]
        assert not g.flags.c_contiguous
        params[0].grad, params[1].grad = Tensor(g), Tensor(np.ascontiguousarray(g))
        for opt in opts:
            opt.step()
        np.testing.assert_array_equal(params[0].data, params[1].data)
        np.testing.assert_array_equal(opts[0].state[params[0]]["momentum_buffer"],
                                      opts[1].state[params[1]]["momentum_buffer"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_backward_2d_as_nd(dtype, bias):
    # the 2-D input skips the reshapes to (M, in) and (M, out): the same GEMMs, the same bits as a 3-D input
    rng = np.random.default_rng(1)
    lin = nn.Linear(7, 5, bias=bias).to(dtype)
    x = rng.standard_normal((2, 3, 7)).astype(dtype)
    dy = rng.standard_normal((2, 3, 5)).astype(dtype)
    grads = []
    for xs, dys in ((x, dy), (x.reshape(6, 7), dy.reshape(6, 5))):
        lin.zero_grad()
        xt = Tensor(xs, requires_grad=True)
        lin(xt).backward(Tensor(dys))
        grads.append([xt.grad.data.reshape(6, 7), lin.weight.grad.data] + ([lin.bias.grad.data] if bias else []))
    for a, b in zip(*grads):
        np.testing.assert_array_equal(a, b)


class _CountedLinear(nn.Linear):
    calls = 0

    def __call__(self, *args, **kwargs):
        type(self).calls += 1
        return super().__call__(*args, **kwargs)


def test_sequential_calls_a_module_with_its_own_call():
    # Sequential runs forward directly only for a class that keeps Module.__call__
    mg.manual_seed(0)
    inner = _CountedLinear(4, 3)
    seq = nn.Sequential(nn.Linear(3, 4), inner, nn.Sigmoid())
    before = _CountedLinear.calls
    y = seq(Tensor(np.ones((2, 3), np.float32)))
    assert _CountedLinear.calls == before + 1
    y.sum().backward()
    want = F.sigmoid(F.linear(F.linear(Tensor(np.ones((2, 3), np.float32)), seq[0].weight, seq[0].bias),
                              inner.weight, inner.bias))
    np.testing.assert_array_equal(y.data, want.data)


def test_cross_entropy_ignore_index_types():
    x = Tensor(np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32))
    t = Tensor(np.array([0, 2, 1, 2]))
    base = F.cross_entropy(x, t, ignore_index=2).item()
    assert F.cross_entropy(x, t, ignore_index=np.int64(2)).item() == base
    with pytest.raises(TypeError, match="ignore_index"):
        F.cross_entropy(x, t, ignore_index=True)
    with pytest.raises(TypeError, match="ignore_index"):
        F.cross_entropy(x, t, ignore_index=2.0)
