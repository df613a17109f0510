"""Cross entropy's kernel pair (contract: cross_entropy_forward/backward) and batch norm's functional fast paths
(docs/perf/mlp-step.md, Session 33): the pair gives the log-softmax kernels' bits on every backend, and the
classifier's loss and gradient are those of the log-softmax kernels with the gather and the one-hot dy in NumPy;
batch norm's per-channel checks taken in one test still name the argument, and its running statistics update
through the kernel only where the buffers are C-contiguous."""
import numpy as np
import pytest
from conftest import BACKENDS, DTYPES, assert_same_bits_across_threads

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import kernels, nn

SHAPES = [(60, 10), (1, 1), (7, 3), (33, 129), (3, 1000)]


def _logits(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 5).astype(dtype)
    x[0] = x[0, 0]  # NOTE: a row of equal values (every exp(x - max) is 1)
    return x, rng.integers(0, shape[1], shape[0])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_cross_entropy_kernels_give_the_log_softmax_pair_bits(backend, dtype, shape):
    x, t = _logits(shape, dtype)
    m = shape[0]
    with kernels.using_backend(backend):
        k = kernels.kernels()
        logp, picked = np.full(shape, np.nan, dtype), np.full(m, np.nan)
        k.cross_entropy_forward(logp, picked, x, t)
        want = np.empty_like(x)
        k.log_softmax_forward(want, x)
        assert logp.tobytes() == want.tobytes()
        assert picked.tobytes() == want[np.arange(m), t].astype(np.float64).tobytes()
        for g in (1.0, 0.0, -3.7, 1e-30, np.inf):  # NOTE: g = 0 makes -0.0 at the targets, whose sum is +0.0
            v = -(np.asarray(g, dtype) / m)
            dy = np.zeros(shape, dtype)
            dy[np.arange(m), t] = v
            want_dx, dx = np.empty_like(x), np.full(shape, np.nan, dtype)
            with np.errstate(invalid="ignore"):  # NOTE: g = inf: inf - inf at the targets, NaN on both sides
                k.log_softmax_backward(want_dx, dy, logp)
                k.cross_entropy_backward(dx, logp, t, float(v))
            assert dx.tobytes() == want_dx.tobytes(), g


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_kernels_take_a_float64_scale_rounded_to_the_dtype(backend, dtype):
    """The scale is rounded to X as the assignment into dy rounds it (0.1 is not a float32)."""
    x, t = _logits((5, 4), dtype, seed=1)
    with kernels.using_backend(backend):
        k = kernels.kernels()
        logp = np.empty_like(x)
        k.cross_entropy_forward(logp, np.empty(5), x, t)
        dy = np.zeros_like(x)
        dy[np.arange(5), t] = 0.1
        want, dx = np.empty_like(x), np.empty_like(x)
        k.log_softmax_backward(want, dy, logp)
        k.cross_entropy_backward(dx, logp, t, 0.1)
        assert dx.tobytes() == want.tobytes()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_kernels_never_read_outside_a_row(backend, dtype):
    """A target outside [0, D) (the contract checks no values) gives NaN for its row's picked value and a dy of
    zeros in backward, on every backend as in the reference; the other rows are unchanged."""
    x, _ = _logits((5, 4), dtype, seed=2)
    t = np.array([0, -1, 4, 2**40, 3])
    results = {}
    for name in BACKENDS:
        with kernels.using_backend(name):
            k = kernels.kernels()
            logp, picked, dx = np.empty_like(x), np.full(5, 7.0), np.empty_like(x)
            k.cross_entropy_forward(logp, picked, x, t)
            k.cross_entropy_backward(dx, logp, t, -0.5)
            results[name] = logp, picked, dx
    logp, picked, dx = results[backend]
    assert np.isnan(picked[1:4]).all() and not np.isnan(picked[[0, 4]]).any()
    np.testing.assert_array_equal(picked[[0, 4]], logp[[0, 4], [0, 3]])
    np.testing.assert_array_equal(dx[1:4], -np.exp(logp[1:4].astype(np.float64)) * 0.0)
    for a, b in zip(results["numpy"], results[backend]):
        np.testing.assert_allclose(a, b, rtol=1e-6 if dtype == np.float32 else 1e-14)


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "numpy"])
def test_cross_entropy_kernels_bits_do_not_depend_on_threads(backend):
    x, t = _logits((64, 10), np.float32, seed=3)
    module = kernels.load(backend).module
    assert_same_bits_across_threads(module, [
        ("cross_entropy_forward", (np.empty_like(x), np.empty(64)), (x, t)),
        ("cross_entropy_backward", (np.empty_like(x),), (x, t, -0.25)),
    ])


def test_cross_entropy_kernels_refuse_with_the_argument_named():
    k = kernels.kernels()
    x = np.zeros((4, 3), np.float32)
    logp, picked, t = np.empty_like(x), np.zeros(4), np.zeros(4, np.int64)
    with pytest.raises(TypeError, match="'target' must have dtype int64"):
        k.cross_entropy_forward(logp, picked, x, t.astype(np.int32))
    with pytest.raises(ValueError, match="'target' has shape"):
        k.cross_entropy_forward(logp, picked, x, np.zeros(5, np.int64))
    with pytest.raises(TypeError, match="'picked' must have dtype float64"):
        k.cross_entropy_forward(logp, picked.astype(np.float32), x, t)
    with pytest.raises(ValueError, match="'target' has shape"):
        k.cross_entropy_backward(np.empty_like(x), x, np.zeros(3, np.int64), 1.0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_classifier_loss_and_gradient_are_the_log_softmax_pairs(backend, dtype, reduction):
    """F.cross_entropy's plain case: the loss is -sum(logp at the targets in float64) (/ m), the gradient the
    log-softmax backward of the one-hot -g/m, as computed before the kernel pair, bit for bit."""
    x, t = _logits((60, 10), dtype, seed=4)
    m = 60
    with kernels.using_backend(backend):
        k = kernels.kernels()
        xt = mg.Tensor(x, requires_grad=True)
        loss = F.cross_entropy(xt, mg.Tensor(t), reduction=reduction)
        (loss * 3.0).backward()
        logp = np.empty_like(x)
        k.log_softmax_forward(logp, x)
        total = -logp[np.arange(m), t].astype(np.float64).sum()
        assert loss.data.tobytes() == np.asarray(total / m if reduction == "mean" else total, dtype).tobytes()
        g = np.asarray(3.0, dtype)
        dy = np.zeros_like(x)
        dy[np.arange(m), t] = -(g / m if reduction == "mean" else g)
        want = np.empty_like(x)
        k.log_softmax_backward(want, dy, logp)
        assert xt.grad.data.tobytes() == want.tobytes()


# ------------------------------------------------------------------ batch norm's checks and running statistics

_PARAMS = ("weight", "bias", "running_mean", "running_var")


def _bn_args(dtype=np.float32, c=4):
    return {"weight": mg.Tensor(np.ones(c, dtype)), "bias": mg.Tensor(np.zeros(c, dtype)),
            "running_mean": mg.Tensor(np.zeros(c, dtype)), "running_var": mg.Tensor(np.ones(c, dtype))}


@pytest.mark.parametrize("name", _PARAMS)
@pytest.mark.parametrize("bad", ["shape", "dtype", "type"])
def test_batch_norm_names_the_per_channel_argument_that_is_wrong(name, bad):
    x = mg.Tensor(np.random.default_rng(5).standard_normal((6, 4)).astype(np.float32))
    args = _bn_args()
    a = args[name].data
    args[name] = {"shape": mg.Tensor(np.ones(5, np.float32)), "dtype": mg.Tensor(a.astype(np.float64)),
                  "type": a}[bad]
    err, text = {"shape": (ValueError, f"{name} must have shape \\(4,\\)"),
                 "dtype": (TypeError, f"{name} has dtype float64 but the input is float32"),
                 "type": (TypeError, f"{name} must be a minigrad.Tensor or None")}[bad]
    for fn, call in (("batch_norm", F.batch_norm), ("batch_norm_sigmoid", F.batch_norm_sigmoid)):
        with pytest.raises(err, match=f"{fn}: {text}"):
            call(x, args["running_mean"], args["running_var"], args["weight"], args["bias"], True, 0.1, 1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum", [0.1, None])
def test_running_statistics_in_strided_and_contiguous_buffers_agree(dtype, momentum):
    """The update's direct kernel call (C-contiguous buffers, a float momentum) and _update_running's path
    (a strided view set as the buffer's .data, which the kernel cannot take; a cumulative average) give the same
    running statistics, in place in the buffers' own arrays."""
    rng = np.random.default_rng(6)
    xs = [mg.Tensor(rng.standard_normal((8, 5)).astype(dtype)) for _ in range(3)]
    plain, strided = (nn.BatchNorm1d(5, momentum=momentum, dtype=dtype) for _ in range(2))
    views = []
    for name in ("running_mean", "running_var"):
        base = np.zeros((5, 2), dtype)
        base[:, 0] = getattr(strided, name).data
        getattr(strided, name).data = base[:, 0]
        views.append(base)
    for x in xs:
        for bn in (plain, strided):
            F.sigmoid(bn(x)).sum().backward()
    for name, base in zip(("running_mean", "running_var"), views):
        assert np.shares_memory(getattr(strided, name).data, base)
        assert getattr(strided, name).data.tobytes() == getattr(plain, name).data.tobytes()
    assert not np.array_equal(plain.running_mean.data, 0)
