"""Hardening: bad input gets a clear Python error before any kernel runs, on every backend; results do not depend
on the run or the thread count; numerical extremes give documented results.

Documented results (README, "Numerical extremes"):
* a constant channel (variance 0) normalizes to exactly ``bias`` (rstd = 1/sqrt(eps)); its gradients are finite;
* values near float32's maximum are normalized correctly (statistics accumulate in float64);
* NaN anywhere in a reduction set makes that set's output NaN; other sets are untouched;
* +-inf in a reduction set gives NaN for that set (inf - inf), never a crash.
"""
import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from conftest import BACKENDS
from minigrad import kernels, nn



@pytest.fixture(params=BACKENDS)
def backend(request):
    with mg.using_backend(request.param):
        yield request.param


# ------------------------------------------------------------------ validation at the kernel boundary

def _bn_args(n=4, c=3, s=5, dtype=np.float32):
    x = np.random.default_rng(0).standard_normal((n, c, s)).astype(dtype)
    return [np.empty_like(x), np.empty(c), np.empty(c), x, np.ones(c, dtype), np.zeros(c, dtype), 1e-5]


BAD_KERNEL_CALLS = {
    "weight too short": (lambda a: a.__setitem__(4, np.ones(2, np.float32)), ValueError, "weight"),
    "y wrong shape": (lambda a: a.__setitem__(0, np.empty((4, 3, 6), np.float32)), ValueError, "'x'"),
    "mean float32": (lambda a: a.__setitem__(1, np.empty(3, np.float32)), TypeError, "mean"),
    "mixed dtypes": (lambda a: a.__setitem__(3, a[3].astype(np.float64)), TypeError, "'x'"),
    "int input": (lambda a: (a.__setitem__(0, np.empty((4, 3, 5), np.int32))), TypeError, "float32 or float64"),
    "non-contiguous": (lambda a: a.__setitem__(3, np.asfortranarray(a[3])), ValueError, "C-contiguous"),
    "2-d x": (lambda a: a.__setitem__(3, a[3].reshape(4, 15)), ValueError, "3 dims"),
    "eps negative": (lambda a: a.__setitem__(6, -1e-5), ValueError, "eps"),  # eps=0 is valid, as in PyTorch
    "eps nan": (lambda a: a.__setitem__(6, float("nan")), ValueError, "eps"),
    "list not array": (lambda a: a.__setitem__(4, [1.0, 1.0, 1.0]), TypeError, "ndarray"),
    "read-only output": (lambda a: a[0].setflags(write=False), ValueError, "writeable"),
    "empty": (lambda a: [a.__setitem__(0, np.empty((0, 3, 5), np.float32)),
                         a.__setitem__(3, np.empty((0, 3, 5), np.float32))], ValueError, "non-empty"),
}


@pytest.mark.parametrize("case", sorted(BAD_KERNEL_CALLS))
def test_kernel_boundary_rejects_bad_arguments(backend, case):
    mutate, exc, match = BAD_KERNEL_CALLS[case]
    args = _bn_args()
    mutate(args)
    with pytest.raises(exc, match=match):
        kernels.kernels().batch_norm_forward(*args)


@pytest.mark.parametrize("case", sorted(BAD_KERNEL_CALLS) + ["big-endian x", "valid"])
def test_compiled_accept_path_agrees_with_python_rules(case):
    """The compiled fast path (minigrad/_ext/_check.pyx) accepts exactly what the Python rules accept, and
    returns the same sizes."""
    from minigrad.kernels import contract
    if contract._accept is None:
        pytest.skip("extensions not built")
    args = _bn_args()
    if case == "big-endian x":
        args[3] = args[3].astype(">f4")
    elif case != "valid":
        BAD_KERNEL_CALLS[case][0](args)
    names, plan, fast, _, _ = contract._PLANS["batch_norm_forward"]
    accepted = contract._accept(tuple(args), len(names), fast, contract.SYMBOLS, contract._ELEMENT_SYMBOLS)
    try:
        dims = contract._check_arrays("batch_norm_forward", names, plan, tuple(args))
    except (TypeError, ValueError):
        assert accepted is None
    else:
        assert accepted == (dims, 4 * 3 * 5)
    if accepted is None:
        assert case != "valid"


def test_cython_wrappers_reject_non_arrays_and_wrong_dtypes():
    """The raw Cython kernels (called directly, without the contract) still refuse what they cannot read."""
    if "cython" not in BACKENDS:
        pytest.skip("extensions not built")
    from minigrad._ext import norm
    args = _bn_args()
    with pytest.raises(TypeError):
        norm.batch_norm_forward(None, *args[1:], 1)
    with pytest.raises(TypeError):
        norm.batch_norm_forward(args[0], args[1], args[2], [[1.0]], *args[4:], 1)
    args[3] = args[3].astype(np.int32)
    with pytest.raises(TypeError, match="float32 or float64"):
        norm.batch_norm_forward(*args, 1)


def test_group_norm_kernel_rejects_groups_not_dividing(backend):
    x = np.ones((2, 6, 4), np.float32)
    args = [np.empty_like(x), np.empty((2, 4)), np.empty((2, 4)), x, np.ones(6, np.float32),
            np.zeros(6, np.float32), 4, 1e-5]
    with pytest.raises(ValueError, match="must divide"):
        kernels.kernels().group_norm_forward(*args)
    args[6] = 0
    with pytest.raises(ValueError, match="num_groups"):
        kernels.kernels().group_norm_forward(*args)


# ------------------------------------------------------------------ validation at the functional boundary

def test_negative_stride_and_noncontiguous_inputs_equal_contiguous(backend):
    rng = np.random.default_rng(1)
    base = rng.standard_normal((6, 4, 5, 5)).astype(np.float32)
    views = [base[::-1], base[:, ::-1], base.transpose(0, 1, 3, 2), base[::2], base[..., ::-1]]
    for v in views:
        want = F.batch_norm(mg.Tensor(np.ascontiguousarray(v)), None, None, training=True).numpy()
        got = F.batch_norm(mg.Tensor(v), None, None, training=True).numpy()
        np.testing.assert_array_equal(got, want)
        want = F.group_norm(mg.Tensor(np.ascontiguousarray(v)), 2).numpy()
        np.testing.assert_array_equal(F.group_norm(mg.Tensor(v), 2).numpy(), want)


@pytest.mark.parametrize("shape", [(0, 3, 4), (0, 3), (4, 0, 3), (4, 3, 0)])
def test_zero_size_batches_return_empty_like_pytorch(backend, shape):
    x = mg.Tensor(np.empty(shape, np.float32), requires_grad=True)
    c = shape[1]
    rm, rv = mg.zeros(c), mg.ones(c)
    y = F.batch_norm(x, rm, rv, training=True)
    assert y.shape == shape
    y.backward(np.empty(shape, np.float32))
    assert x.grad.shape == shape
    assert rm.numpy().tolist() == [0.0] * c and rv.numpy().tolist() == [1.0] * c  # untouched, as PyTorch
    assert F.layer_norm(mg.Tensor(np.empty((0, 5), np.float32)), (5,)).shape == (0, 5)
    if c and shape[0] == 0:
        assert F.group_norm(mg.Tensor(np.empty(shape, np.float32)), 1).shape == shape


def test_functional_errors_name_the_argument():
    x = mg.randn(4, 6, 3)
    cases = [
        (lambda: F.group_norm(x, 4), ValueError, "num_groups=4 must divide the number of channels C=6"),
        (lambda: F.group_norm(x, 0), ValueError, "num_groups must be a positive integer"),
        (lambda: F.batch_norm(x, mg.zeros(6), mg.ones(6), training=True, momentum=-0.1), ValueError, "momentum"),
        (lambda: F.batch_norm(x, None, None, training=True, eps=-1.0), ValueError, "eps"),
        (lambda: F.batch_norm(x, mg.zeros(5), mg.ones(6), training=True), ValueError, "running_mean"),
        (lambda: F.batch_norm(x, None, None, bias=mg.zeros(6, dtype="float64"), training=True), TypeError,
         "bias has dtype float64"),
        (lambda: F.instance_norm(mg.randn(4, 6)), ValueError, "at least 3 dims"),
        (lambda: F.layer_norm(x, (6,)), ValueError, "trailing dims"),
        (lambda: F.batch_norm(x.numpy(), None, None, training=True), TypeError, "minigrad.Tensor"),
        (lambda: nn.BatchNorm1d(0), ValueError, "num_features"),
        (lambda: nn.BatchNorm1d(3, momentum=2.0), ValueError, "momentum"),
        (lambda: nn.GroupNorm(4, 6), ValueError, "must divide"),
        (lambda: F.cross_entropy(mg.randn(3, 4), mg.Tensor(np.array([0, 4, 1]))), ValueError, r"\[0, 4\)"),
        (lambda: F.cross_entropy(mg.randn(3, 4), mg.Tensor(np.array([0.0, 1, 1]))), TypeError, "integer"),
    ]
    for call, exc, match in cases:
        with pytest.raises(exc, match=match):
            call()


# ------------------------------------------------------------------ determinism

CASES = {
    "batch_norm": lambda x, w, b: F.batch_norm(x, None, None, w, b, True),
    "batch_norm_1d": lambda x, w, b: F.batch_norm(x.reshape(-1, 16), None, None, w, b, True),
    "group_norm": lambda x, w, b: F.group_norm(x, 4, w, b),
    "layer_norm": lambda x, w, b: F.layer_norm(x.reshape(-1, 16), (16,), w, b),
    "instance_norm": lambda x, w, b: F.instance_norm(x, weight=w, bias=b),
}


def _run_case(name, threads):
    rng = np.random.default_rng(2)
    x = mg.Tensor(rng.standard_normal((64, 16, 9, 9)).astype(np.float32), requires_grad=True)
    w = mg.Tensor(rng.standard_normal(16).astype(np.float32), requires_grad=True)
    b = mg.Tensor(rng.standard_normal(16).astype(np.float32), requires_grad=True)
    prev = mg.get_num_threads()
    mg.set_num_threads(threads)
    try:
        y = CASES[name](x, w, b)
        y.backward(rng.standard_normal(y.shape).astype(np.float32))
    finally:
        mg.set_num_threads(prev)
    return [y.numpy(), x.grad.numpy(), w.grad.numpy(), b.grad.numpy()]


@pytest.mark.parametrize("name", sorted(CASES))
def test_bit_identical_across_runs_and_thread_counts(backend, name):
    """Reductions merge per-thread partials in a fixed order, so 1, 2 and 4 threads give the same bits."""
    first = _run_case(name, 1)
    for threads in (1, 2, 4):
        for a, b in zip(first, _run_case(name, threads)):
            np.testing.assert_array_equal(a, b, err_msg=f"{name} with {threads} threads")


# ------------------------------------------------------------------ numerical extremes

def test_constant_channel_gives_bias_and_finite_grads(backend):
    x = np.full((8, 3, 4, 4), 7.0, np.float32)
    x[:, 1] = np.random.default_rng(3).standard_normal((8, 4, 4))
    t = mg.Tensor(x, requires_grad=True)
    w = mg.Tensor(np.array([2.0, 3.0, 4.0], np.float32), requires_grad=True)
    b = mg.Tensor(np.array([0.5, -1.0, 0.25], np.float32), requires_grad=True)
    y = F.batch_norm(t, None, None, w, b, True)
    assert np.all(y.numpy()[:, 0] == 0.5) and np.all(y.numpy()[:, 2] == 0.25)
    y.backward(np.random.default_rng(4).standard_normal(x.shape).astype(np.float32))
    assert np.isfinite(t.grad.numpy()).all() and np.isfinite(w.grad.numpy()).all()
    g = F.group_norm(mg.Tensor(np.full((2, 4, 3), -2.0, np.float32)), 2)
    assert np.all(g.numpy() == 0.0)


def test_values_near_float32_overflow(backend):
    rng = np.random.default_rng(5)
    x64 = 3.0e38 + 1e36 * rng.standard_normal((4, 2, 8))
    x = np.clip(x64, -3.3e38, 3.3e38).astype(np.float32)
    y = F.batch_norm(mg.Tensor(x), None, None, training=True).numpy()
    xd = x.astype(np.float64)
    truth = (xd - xd.mean(axis=(0, 2), keepdims=True)) / np.sqrt(xd.var(axis=(0, 2), keepdims=True) + 1e-5)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y, truth, atol=1e-3)
    y = F.layer_norm(mg.Tensor(x), (8,)).numpy()
    assert np.isfinite(y).all()


@pytest.mark.parametrize("shape", [(6, 13, 1), (4, 3, 50), (3, 2, 300)], ids=["S1", "short", "long"])
def test_batch_norm_spread_beyond_float32_squares(backend, shape):
    # |x - K| ~ 1e20: (x - K)^2 overflows float32, so float32 partial sums must fall back to double
    rng = np.random.default_rng(8)
    x = (1e20 * rng.standard_normal(shape)).astype(np.float32)
    dy = (1e30 * rng.standard_normal(shape)).astype(np.float32)  # dy*(x - mean) overflows float32 too
    t = mg.Tensor(x, requires_grad=True)
    y = F.batch_norm(t, None, None, training=True)
    y.backward(dy)
    xd, g = x.astype(np.float64), dy.astype(np.float64)
    mean, var = xd.mean(axis=(0, 2), keepdims=True), xd.var(axis=(0, 2), keepdims=True)
    rstd = 1 / np.sqrt(var + 1e-5)
    xhat = (xd - mean) * rstd
    dx = rstd * (g - g.mean(axis=(0, 2), keepdims=True) - xhat * (g * xhat).mean(axis=(0, 2), keepdims=True))
    np.testing.assert_allclose(y.numpy(), xhat, atol=1e-4)
    np.testing.assert_allclose(t.grad.numpy(), dx, rtol=0, atol=1e-4 * np.abs(dx).max())


def test_inf_gives_nan_only_in_its_reduction_set(backend):
    x = np.random.default_rng(6).standard_normal((4, 3, 5)).astype(np.float32)
    x[2, 1, 3] = np.inf
    y = F.batch_norm(mg.Tensor(x), None, None, training=True).numpy()
    assert np.isnan(y[:, 1]).all()
    assert np.isfinite(y[:, [0, 2]]).all()
    y = F.layer_norm(mg.Tensor(x), (5,)).numpy()
    assert np.isnan(y[2, 1]).all() and np.isfinite(np.delete(y.reshape(12, 5), 7, axis=0)).all()


def test_detect_anomaly_names_normalization_op(backend):
    x = np.ones((2, 3, 4), np.float32)
    x[0, 0, 0] = np.nan
    with mg.detect_anomaly():
        with pytest.raises(FloatingPointError, match="_BatchNormTrain.forward"):
            F.batch_norm(mg.Tensor(x, requires_grad=True), None, None, training=True)
