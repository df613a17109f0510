"""Kernel parity suite: every backend against the NumPy reference, and the reference against PyTorch.

Kernels are called through ``minigrad.kernels.load(name)`` so that the contract's argument checks run too,
except in the determinism tests, which call the raw module functions with an explicit ``n_threads``.
Backward passes are driven by a random ``dy`` (``y.sum()`` gives near-zero gradients through a norm).
With NUMBA_DISABLE_JIT=1 the Numba kernels run as plain Python: the large shapes are skipped for them then.
"""
import os

import numpy as np
import pytest

from conftest import BACKENDS, DTYPES, alloc_outputs, assert_same_bits_across_threads
from minigrad import kernels
from minigrad.kernels import contract, reference

TOL = {np.float32: 1e-5, np.float64: 1e-10}
EPS = 1e-5
NUMBA_AS_PYTHON = os.environ.get("NUMBA_DISABLE_JIT", "") not in ("", "0")

# batch norm (N, C, S): C=1, S=1 (BatchNorm1d), spatial 1x1, small S (< 8), odd sizes, large
BN_SHAPES = [(2, 1, 5), (16, 3, 1), (5, 4, 1), (3, 5, 7), (7, 13, 17), (6, 8, 4), (1, 3, 2), (9, 1, 1),
             (32, 64, 28 * 28), (4096, 1024, 1)]
# group norm (N, C, S, G): G=1 (layer norm), G=C (instance norm), M=1, odd sizes, large
GN_SHAPES = [(2, 6, 5, 3), (3, 5, 7, 1), (3, 5, 7, 5), (7, 12, 17, 4), (7, 13, 17, 13), (4, 6, 1, 6),
             (1, 1, 1, 1), (64, 129, 1, 1), (5, 12, 3, 2), (8, 16, 1, 4),
             (32, 64, 28 * 28, 32), (8192, 768, 1, 1)]
SM_SHAPES = [(1, 1), (3, 7), (13, 1000), (64, 33), (4096, 1024)]


def _size(shape):
    return int(np.prod(shape[:3]))


def skip_slow(name, shape):
    if name == "numba" and NUMBA_AS_PYTHON and _size(shape) > 20_000:
        pytest.skip("numba as plain Python (NUMBA_DISABLE_JIT=1): large shape skipped")


def ids(shapes):
    return ["x".join(map(str, s)) for s in shapes]


def assert_close(got, want, tol, what):
    """|got - want| <= tol*(|want| + max(max|want|, 1)): relative, with values near zero judged on the array's
    scale (the test data are O(1); a set of one value has dx = 0 up to rounding)."""
    scale = max(float(np.max(np.abs(want[np.isfinite(want)]), initial=0.0)), 1.0)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale, err_msg=what)


def make(rng, shape, dtype, loc=0.5, scale=2.0):
    return (loc + scale * rng.standard_normal(shape)).astype(dtype)


# ----------------------------------------------------------------------------------------------------------
# backends vs the reference


@pytest.mark.parametrize("shape", SM_SHAPES, ids=ids(SM_SHAPES))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_log_softmax(name, dtype, shape):
    skip_slow(name, shape)
    k, tol = kernels.load(name), TOL[dtype]
    rng = np.random.default_rng(0)
    x = make(rng, shape, dtype, scale=5.0)
    dy = make(rng, shape, dtype)
    y, y_ref = np.empty_like(x), np.empty_like(x)
    k.log_softmax_forward(y, x)
    reference.log_softmax_forward(y_ref, x)
    assert_close(y, y_ref, tol, "y")
    dx, dx_ref = np.empty_like(x), np.empty_like(x)
    k.log_softmax_backward(dx, dy, y_ref)
    reference.log_softmax_backward(dx_ref, dy, y_ref)
    assert_close(dx, dx_ref, tol, "dx")


def _bn_forward(fn, x, weight, bias):
    N, C, S = x.shape
    y, mean, rstd = alloc_outputs("batch_norm_forward", x.dtype, N=N, C=C, S=S)
    fn(y, mean, rstd, x, weight, bias, EPS)
    return y, mean, rstd


def _bn_backward(fn, dy, x, mean, rstd, weight):
    N, C, S = x.shape
    dx, dweight, dbias = alloc_outputs("batch_norm_backward", x.dtype, N=N, C=C, S=S)
    fn(dx, dweight, dbias, dy, x, mean, rstd, weight)
    return dx, dweight, dbias


@pytest.mark.parametrize("shape", BN_SHAPES, ids=ids(BN_SHAPES))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_batch_norm(name, dtype, shape):
    skip_slow(name, shape)
    k, tol = kernels.load(name), TOL[dtype]
    rng = np.random.default_rng(1)
    N, C, S = shape
    x, dy = make(rng, shape, dtype), make(rng, shape, dtype)
    weight, bias = make(rng, C, dtype, 1.0, 0.5), make(rng, C, dtype, 0.0, 0.5)

    got = _bn_forward(k.batch_norm_forward, x, weight, bias)
    want = _bn_forward(reference.batch_norm_forward, x, weight, bias)
    for what, g, w in zip(("y", "mean", "rstd"), got, want):
        assert_close(g, w, tol, what)

    _, mean, rstd = want
    got = _bn_backward(k.batch_norm_backward, dy, x, mean, rstd, weight)
    want = _bn_backward(reference.batch_norm_backward, dy, x, mean, rstd, weight)
    for what, g, w in zip(("dx", "dweight", "dbias"), got, want):
        assert_close(g, w, tol, what)

    running_mean, running_var = make(rng, C, dtype), (0.1 + rng.random(C)).astype(dtype)
    y, y_ref = np.empty_like(x), np.empty_like(x)
    k.batch_norm_inference(y, x, running_mean, running_var, weight, bias, EPS)
    reference.batch_norm_inference(y_ref, x, running_mean, running_var, weight, bias, EPS)
    assert_close(y, y_ref, tol, "y (inference)")


# ghost batch norm (N, C, S, chunk): chunks of equal size, a smaller last chunk (2 and 1 samples), chunk = N and
# chunk > N (plain batch norm), S = 1 (BatchNorm1d), odd sizes, the benchmark's shape
GHOST_SHAPES = [(16, 32, 64, 4), (10, 3, 7, 4), (7, 5, 1, 3), (9, 4, 5, 9), (5, 2, 3, 8), (13, 7, 11, 5),
                (2, 1, 1, 1)]


def _ghost(fn_f, fn_b, x, dy, weight, bias, chunk):
    N, C, S = x.shape
    G = -(-N // chunk)
    y, mean, rstd = alloc_outputs("ghost_batch_norm_forward", x.dtype, N=N, C=C, S=S, G=G)
    fn_f(y, mean, rstd, x, weight, bias, chunk, EPS)
    dx, dweight, dbias = alloc_outputs("ghost_batch_norm_backward", x.dtype, N=N, C=C, S=S, G=G)
    fn_b(dx, dweight, dbias, dy, x, mean, rstd, weight, chunk)
    return y, mean, rstd, dx, dweight, dbias


@pytest.mark.parametrize("shape", GHOST_SHAPES, ids=ids(GHOST_SHAPES))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_ghost_batch_norm(name, dtype, shape):
    """Every backend against the reference; and each chunk against plain batch norm on that chunk alone (the
    backend's own batch_norm kernels: the chunk bounds, a short last chunk, chunk >= N being batch norm)."""
    k, tol = kernels.load(name), TOL[dtype]
    rng = np.random.default_rng(3)
    N, C, S, chunk = shape
    x, dy = make(rng, (N, C, S), dtype), make(rng, (N, C, S), dtype)
    weight, bias = make(rng, C, dtype, 1.0, 0.5), make(rng, C, dtype, 0.0, 0.5)
    got = _ghost(k.ghost_batch_norm_forward, k.ghost_batch_norm_backward, x, dy, weight, bias, chunk)
    want = _ghost(reference.ghost_batch_norm_forward, reference.ghost_batch_norm_backward, x, dy, weight, bias,
                  chunk)
    for what, g, w in zip(("y", "mean", "rstd", "dx", "dweight", "dbias"), got, want):
        assert_close(g, w, tol, what)
    y, mean, rstd, dx, dweight, dbias = got
    sums = np.zeros((2, C))
    for i, n0 in enumerate(range(0, N, chunk)):
        s = slice(n0, n0 + chunk)
        y1, mean1, rstd1 = _bn_forward(k.batch_norm_forward, x[s], weight, bias)
        dx1, dweight1, dbias1 = _bn_backward(k.batch_norm_backward, dy[s], x[s], mean1, rstd1, weight)
        for what, g, w in (("y", y[s], y1), ("mean", mean[i], mean1), ("rstd", rstd[i], rstd1), ("dx", dx[s], dx1)):
            assert_close(g, w, tol, f"{what} of chunk {i}")
        sums += (dweight1, dbias1)
    assert_close(dweight, sums[0].astype(dtype), tol, "dweight")
    assert_close(dbias, sums[1].astype(dtype), tol, "dbias")


# Batch Renorm (N, C, S): S = 1 (BatchNorm1d), small S, odd sizes, the benchmark's shape
RENORM_SHAPES = [(16, 32, 64), (7, 5, 1), (3, 5, 7), (6, 40, 3), (2, 1, 1), (32, 64, 256)]


def _renorm(fn, x, weight, bias, running_mean, running_var, r_max, d_max):
    N, C, S = x.shape
    outs = alloc_outputs("batch_renorm_forward", x.dtype, N=N, C=C, S=S)
    fn(*outs, x, weight, bias, running_mean, running_var, r_max, d_max, EPS)
    return outs


@pytest.mark.parametrize("shape", RENORM_SHAPES, ids=ids(RENORM_SHAPES))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_batch_renorm_forward(name, dtype, shape):
    """Every backend against the reference, with running statistics that make both r and d clip on some channels
    and not on others; and r_max = 1, d_max = 0 is the backend's own batch_norm_forward, bit for bit (the reference,
    written from the paper's equations, within rounding)."""
    skip_slow(name, shape)
    k, tol = kernels.load(name), TOL[dtype]
    rng = np.random.default_rng(9)
    N, C, S = shape
    x = make(rng, shape, dtype)
    weight, bias = make(rng, C, dtype, 1.0, 0.5), make(rng, C, dtype, 0.0, 0.5)
    running_mean = make(rng, C, dtype, 0.5, 1.5)
    running_var = (4.0 * np.exp(rng.uniform(-2.0, 2.0, C))).astype(dtype)  # var(x) = 4: r on both sides
    got = _renorm(k.batch_renorm_forward, x, weight, bias, running_mean, running_var, 1.5, 0.5)
    want = _renorm(reference.batch_renorm_forward, x, weight, bias, running_mean, running_var, 1.5, 0.5)
    for what, g, w in zip(("y", "mean", "rstd", "r", "d"), got, want):
        assert_close(g, w, tol, what)
    if C >= 32:  # the test data reach both clips and the inside
        r, d = want[3], want[4]
        assert (r == 1.5).any() and (r == 1 / 1.5).any() and (np.abs(r - 1.0) < 0.4).any()
        assert (np.abs(d) == 0.5).any() and (np.abs(d) < 0.5).any()
    y, mean, rstd, r, d = _renorm(k.batch_renorm_forward, x, weight, bias, running_mean, running_var, 1.0, 0.0)
    y_bn, mean_bn, rstd_bn = _bn_forward(k.batch_norm_forward, x, weight, bias)
    assert (r == 1).all() and (d == 0).all()
    for what, g, w in (("y", y, y_bn), ("mean", mean, mean_bn), ("rstd", rstd, rstd_bn)):
        if name == "numpy":
            assert_close(g, w, tol, f"{what}: r_max=1, d_max=0 is batch_norm_forward")
        else:
            np.testing.assert_array_equal(g, w, err_msg=f"{what}: r_max=1, d_max=0 is batch_norm_forward")


@pytest.mark.parametrize("name", BACKENDS)
def test_batch_renorm_forward_contract(name):
    """r_max: a finite float >= 1, d_max: >= 0; the running statistics are (C,) arrays of x's dtype."""
    k = kernels.load(name)
    x = np.ones((4, 3, 5), np.float32)
    w, b = np.ones(3, np.float32), np.zeros(3, np.float32)
    outs = alloc_outputs("batch_renorm_forward", x.dtype, N=4, C=3, S=5)
    for bad in (0.5, np.inf, np.nan, 2, "3"):
        with pytest.raises(ValueError, match="r_max must be a finite float >= 1.0"):
            k.batch_renorm_forward(*outs, x, w, b, b, w, bad, 0.5, EPS)
    for bad in (-0.1, np.inf, 1):
        with pytest.raises(ValueError, match="d_max must be a finite float >= 0.0"):
            k.batch_renorm_forward(*outs, x, w, b, b, w, 1.5, bad, EPS)
    with pytest.raises(TypeError, match="'running_var' must have dtype float32"):
        k.batch_renorm_forward(*outs, x, w, b, b, w.astype(np.float64), 1.5, 0.5, EPS)
    with pytest.raises(ValueError, match="'running_mean' has shape"):
        k.batch_renorm_forward(*outs, x, w, b, np.zeros(4, np.float32), w, 1.5, 0.5, EPS)


@pytest.mark.parametrize("name", BACKENDS)
def test_ghost_batch_norm_contract(name):
    """chunk: an int >= 1, and mean/rstd with ceil(N/chunk) rows; the errors name them."""
    k = kernels.load(name)
    x = np.ones((10, 3, 4), np.float32)
    w, b = np.ones(3, np.float32), np.zeros(3, np.float32)
    y, mean, rstd = np.empty_like(x), np.empty((3, 3)), np.empty((3, 3))
    for bad in (0, -4, True, 4.0, None):
        with pytest.raises(ValueError, match="chunk must be an int >= 1"):
            k.ghost_batch_norm_forward(y, mean, rstd, x, w, b, bad, EPS)
    with pytest.raises(ValueError, match=r"mean and rstd must have shape \(ceil\(N/chunk\), C\) = \(2, 3\)"):
        k.ghost_batch_norm_forward(y, mean, rstd, x, w, b, 5, EPS)
    with pytest.raises(ValueError, match="ceil"):
        k.ghost_batch_norm_backward(np.empty_like(x), w.copy(), b.copy(), x, x, mean, rstd, w, 3)


def _gn_forward(fn, x, weight, bias, G):
    N, C, S = x.shape
    y, mean, rstd = alloc_outputs("group_norm_forward", x.dtype, N=N, C=C, S=S, G=G)
    fn(y, mean, rstd, x, weight, bias, G, EPS)
    return y, mean, rstd


def _gn_backward(fn, dy, x, mean, rstd, weight, G):
    N, C, S = x.shape
    dx, dweight, dbias = alloc_outputs("group_norm_backward", x.dtype, N=N, C=C, S=S, G=G)
    fn(dx, dweight, dbias, dy, x, mean, rstd, weight, G)
    return dx, dweight, dbias


@pytest.mark.parametrize("shape", GN_SHAPES, ids=ids(GN_SHAPES))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_group_norm(name, dtype, shape):
    skip_slow(name, shape)
    k, tol = kernels.load(name), TOL[dtype]
    rng = np.random.default_rng(2)
    N, C, S, G = shape
    x, dy = make(rng, (N, C, S), dtype), make(rng, (N, C, S), dtype)
    weight, bias = make(rng, C, dtype, 1.0, 0.5), make(rng, C, dtype, 0.0, 0.5)

    got = _gn_forward(k.group_norm_forward, x, weight, bias, G)
    want = _gn_forward(reference.group_norm_forward, x, weight, bias, G)
    for what, g, w in zip(("y", "mean", "rstd"), got, want):
        assert_close(g, w, tol, what)

    _, mean, rstd = want
    got = _gn_backward(k.group_norm_backward, dy, x, mean, rstd, weight, G)
    want = _gn_backward(reference.group_norm_backward, dy, x, mean, rstd, weight, G)
    for what, g, w in zip(("dx", "dweight", "dbias"), got, want):
        assert_close(g, w, tol, what)


# ----------------------------------------------------------------------------------------------------------
# numerics: large means, NaN


@pytest.mark.parametrize("loc, scale", [(1e4, 1.0), (1e4, 1e-2)])
@pytest.mark.parametrize("name", BACKENDS)
def test_float32_large_mean(name, loc, scale):
    """float32 input 1e4 + N(0, scale^2): variance (hence rstd) and y right against float64 truth."""
    k = kernels.load(name)
    rng = np.random.default_rng(3)
    N, C, S = 8, 3, 300
    x = make(rng, (N, C, S), np.float32, loc, scale)
    x64 = x.astype(np.float64)  # the exact values the kernel sees
    weight, bias = np.ones(C, np.float32), np.zeros(C, np.float32)

    y, mean, rstd = _bn_forward(k.batch_norm_forward, x, weight, bias)
    var = x64.var(axis=(0, 2))
    np.testing.assert_allclose(rstd, 1 / np.sqrt(var + EPS), rtol=1e-4)
    np.testing.assert_allclose(mean, x64.mean(axis=(0, 2)), rtol=1e-10)
    xhat = (x64 - x64.mean(axis=(0, 2))[:, None]) / np.sqrt(var + EPS)[:, None]
    np.testing.assert_allclose(y, xhat, atol=1e-3)

    G = 3
    y, mean, rstd = _gn_forward(k.group_norm_forward, x, weight, bias, G)
    xg = x64.reshape(N, G, -1)
    np.testing.assert_allclose(rstd, 1 / np.sqrt(xg.var(axis=2) + EPS), rtol=1e-4)
    xhat = ((xg - xg.mean(axis=2, keepdims=True)) / np.sqrt(xg.var(axis=2, keepdims=True) + EPS)).reshape(x.shape)
    np.testing.assert_allclose(y, xhat, atol=1e-3)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_nan_propagates(name, dtype):
    k = kernels.load(name)
    rng = np.random.default_rng(4)
    N, C, S = 4, 3, 5
    x = make(rng, (N, C, S), dtype)
    x[1, 1, 2] = np.nan
    weight, bias = np.ones(C, dtype), np.zeros(C, dtype)
    y, mean, rstd = _bn_forward(k.batch_norm_forward, x, weight, bias)
    assert np.isnan(y[:, 1]).all() and np.isnan(mean[1]) and np.isnan(rstd[1])
    assert np.isfinite(y[:, [0, 2]]).all()
    dx, dweight, dbias = _bn_backward(k.batch_norm_backward, x, x, mean, rstd, weight)
    assert np.isnan(dx[:, 1]).all() and np.isnan(dweight[1]) and np.isnan(dbias[1])

    y, mean, rstd = _gn_forward(k.group_norm_forward, x, weight, bias, 3)
    assert np.isnan(y[1, 1]).all() and np.isnan(mean[1, 1]) and np.isfinite(y[0]).all()
    dx, dweight, dbias = _gn_backward(k.group_norm_backward, x, x, mean, rstd, weight, 3)
    assert np.isnan(dx[1, 1]).all() and np.isnan(dweight[1])

    x2 = x.reshape(N, C * S)
    y2 = np.empty_like(x2)
    k.log_softmax_forward(y2, x2)
    assert np.isnan(y2[1]).all() and np.isfinite(y2[[0, 2, 3]]).all()


# ----------------------------------------------------------------------------------------------------------
# the contract's checks, for every backend


@pytest.mark.parametrize("name", BACKENDS)
def test_checks_reject_bad_arguments(name):
    k = kernels.load(name)
    x = np.ones((2, 4, 3))
    w, b = np.ones(4), np.zeros(4)
    y, mean, rstd = np.zeros_like(x), np.zeros(4), np.zeros(4)
    with pytest.raises(TypeError, match="float32 or float64"):
        k.batch_norm_forward(y.astype(np.int64), mean, rstd, x, w, b, EPS)
    with pytest.raises(TypeError, match="'x' must have dtype float32"):
        k.batch_norm_forward(y.astype(np.float32), mean, rstd, x, w, b, EPS)
    with pytest.raises(TypeError, match="'mean' must have dtype float64"):
        k.batch_norm_forward(y.astype(np.float32), mean.astype(np.float32), rstd, x.astype(np.float32),
                             w.astype(np.float32), b.astype(np.float32), EPS)
    with pytest.raises(ValueError, match="'weight' has shape"):
        k.batch_norm_forward(y, mean, rstd, x, np.ones(5), b, EPS)
    with pytest.raises(ValueError, match="must have 3 dims"):
        k.batch_norm_forward(y, mean, rstd, x.reshape(2, 12), w, b, EPS)
    with pytest.raises(ValueError, match="C-contiguous"):
        k.batch_norm_forward(y, mean, rstd, np.ones((2, 3, 4)).transpose(0, 2, 1), w, b, EPS)
    with pytest.raises(ValueError, match="eps"):  # eps=0 is PyTorch's too (refused above the kernels in training)
        k.batch_norm_forward(y, mean, rstd, x, w, b, -1.0)
    with pytest.raises(TypeError, match="takes 7 arguments"):
        k.batch_norm_forward(y, mean, rstd, x, w, b)
    gmean, grstd = np.empty((2, 3)), np.empty((2, 3))
    with pytest.raises(ValueError, match="num_groups=3 must divide"):
        k.group_norm_forward(y, gmean, grstd, x, w, b, 3, EPS)
    with pytest.raises(ValueError, match="positive integer"):
        k.group_norm_forward(y, gmean, grstd, x, w, b, 0, EPS)
    with pytest.raises(ValueError, match="C-contiguous"):
        k.log_softmax_forward(np.empty((3, 4)), np.ones((4, 3)).T)
    ro = np.empty((3, 4))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        k.log_softmax_forward(ro, np.ones((3, 4)))


@pytest.mark.parametrize("name", BACKENDS)
def test_backend_that_ran_is_the_one_asked_for(name):
    backend = kernels.load(name)
    assert backend.name == name
    assert backend.module.__name__ == kernels.BACKENDS[name]
    assert backend.batch_norm_forward.__qualname__ == f"{name}.batch_norm_forward"


# ----------------------------------------------------------------------------------------------------------
# determinism: bit-identical across runs and across thread counts (raw kernels, explicit n_threads)


def _all_kernel_calls(dtype):
    """(kernel name, outputs, inputs) covering each code path: S >= 8, 1 < S < 8, S = 1, G = 1, G = C; decorrelated
    batch norm's with a padded last group and group size 1."""
    rng = np.random.default_rng(5)
    calls = []
    for N, C, S in [(7, 13, 17), (6, 40, 3), (300, 70, 1)]:
        x, dy = make(rng, (N, C, S), dtype), make(rng, (N, C, S), dtype)
        w, b = make(rng, C, dtype, 1.0, 0.5), make(rng, C, dtype, 0.0, 0.5)
        y, mean, rstd = _bn_forward(reference.batch_norm_forward, x, w, b)
        calls.append(("batch_norm_forward", (y, mean, rstd), (x, w, b, EPS)))
        calls.append(("batch_norm_backward", (np.empty_like(x), np.empty_like(w), np.empty_like(w)),
                      (dy, x, mean, rstd, w)))
        calls.append(("batch_norm_inference", (np.empty_like(x),), (x, w, np.abs(w), w, b, EPS)))
        calls.append(("batch_renorm_forward", alloc_outputs("batch_renorm_forward", dtype, N=N, C=C, S=S),
                      (x, w, b, b, np.abs(w), 1.5, 0.5, EPS)))
        chunk = max(N // 3, 2)  # NOTE: N = 7 leaves a last chunk of 1 sample
        G = -(-N // chunk)
        outs = alloc_outputs("ghost_batch_norm_forward", dtype, N=N, C=C, S=S, G=G)
        calls.append(("ghost_batch_norm_forward", outs, (x, w, b, chunk, EPS)))
        calls.append(("ghost_batch_norm_backward", (np.empty_like(x), np.empty_like(w), np.empty_like(w)),
                      (dy, x, *_ghost(reference.ghost_batch_norm_forward, reference.ghost_batch_norm_backward, x,
                                      dy, w, b, chunk)[1:3], w, chunk)))
        for G in (1, C):
            y, mean, rstd = _gn_forward(reference.group_norm_forward, x, w, b, G)
            calls.append(("group_norm_forward", (y, mean, rstd), (x, w, b, G, EPS)))
            calls.append(("group_norm_backward", (np.empty_like(x), np.empty_like(w), np.empty_like(w)),
                          (dy, x, mean, rstd, w, G)))
    for shape in [(7, 37, 17, 16), (40, 6, 3, 4), (3, 5, 1, 1)]:
        x, weight, bias = zca_inputs(rng, shape, dtype)
        N, C, S, g = shape
        calls.append(("zca_forward", zca_outputs(x, g), (x, weight, bias, g, EPS)))
        calls.append(("zca_rows", alloc_outputs("zca_rows", dtype, N=N, G=-(-C // g), J=2 * g + 1, S=S),
                      (x, x, x[0, :, 0].copy(), g)))
        G = -(-C // g)
        calls.append(("zca_backward_p1", alloc_outputs("zca_backward_p1", dtype, G=G, g=g),
                      (x[::-1].copy(), x, x[0, :, 0].copy(), g)))
        calls.append(("zca_backward_dx", alloc_outputs("zca_backward_dx", dtype, N=N, C=C, S=S),
                      (x[::-1].copy(), x, x[0, :, 0].copy(), make(rng, (G, g, 2 * g + 1), dtype), g)))
    calls.append(("sym_eigh", alloc_outputs("sym_eigh", np.float64, G=4, g=16), (SPD_CASES[0][1],)))
    x = make(rng, (37, 129), dtype)
    calls.append(("log_softmax_forward", (np.empty_like(x),), (x,)))
    calls.append(("log_softmax_backward", (np.empty_like(x),), (x, x)))
    return calls


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_deterministic_across_runs_and_threads(name, dtype):
    assert_same_bits_across_threads(kernels.load(name).module, _all_kernel_calls(dtype))


@pytest.mark.skipif("numba" not in BACKENDS, reason="numba not installed")
@pytest.mark.parametrize("dtype", DTYPES)
def test_numba_serial_and_parallel_twins_agree(dtype):
    """The Numba norms run a serial twin (parallel=False) for one thread and the parallel one for more: the same
    bits, zeros' signs included, also with several rows per group-norm chunk (N > MAX_CHUNKS) and a dy of signed
    zeros (the chunks' first rows assign their partials)."""
    module = kernels.load("numba").module
    if not NUMBA_AS_PYTHON:
        from minigrad.kernels.numba import norm
        assert norm._pick(norm._gn_backward, 1) is norm._gn_backward.serial
        assert norm._pick(norm._gn_backward, 2) is norm._gn_backward.parallel
    rng = np.random.default_rng(8)
    x, dy = make(rng, (130, 12, 6), dtype), np.zeros((130, 12, 6), dtype)
    dy[::2] = -0.0
    w, b = make(rng, 12, dtype, 1.0, 0.5), make(rng, 12, dtype, 0.0, 0.5)
    y, mean, rstd = _gn_forward(reference.group_norm_forward, x, w, b, 3)
    zeros = ("group_norm_backward", (np.empty_like(x), np.empty_like(w), np.empty_like(w)),
             (dy, x, mean, rstd, w, 3))
    for kernel, outs, ins in _all_kernel_calls(dtype) + [zeros]:
        if "norm" not in kernel:
            continue
        results = []
        for n_threads in (1, 2, 3):
            fresh = tuple(np.full_like(o, np.nan) for o in outs)
            getattr(module, kernel)(*fresh, *ins, n_threads)
            results.append(fresh)
        for run in results[1:]:
            for a, b in zip(results[0], run):
                np.testing.assert_array_equal(a, b, err_msg=kernel)
                np.testing.assert_array_equal(np.signbit(a), np.signbit(b), err_msg=f"{kernel}: signs of zeros")


# ----------------------------------------------------------------------------------------------------------
# decorrelated batch norm (ZCA whitening of groups of channels): zca_forward, zca_rows, sym_eigh,
# running_average_update


# (N, C, S, group_size): whole groups; a padded last group (C % group_size > 0); group size 1 (batch norm) and 16; one
# group wider than C; S = 1; S not a multiple of the vector lanes (16 floats, 8 doubles); the benchmark's shape
ZCA_SHAPES = [(6, 32, 15, 16), (3, 37, 49, 16), (2, 5, 7, 3), (4, 8, 9, 1), (9, 3, 1, 16), (7, 13, 17, 4),
              (2, 20, 13, 20), (5, 6, 1, 1), (32, 64, 256, 16)]
ZCA_TOL = {np.float32: 2e-5, np.float64: 1e-10}


def zca_inputs(rng, shape, dtype):
    """x (N, C, S) with correlated channels and a mean away from 0; the padded weight (G, g) float64; bias (C,)."""
    N, C, S, g = shape
    mix = rng.standard_normal((C, C)) + 2 * np.eye(C)
    x = (0.5 + np.einsum("dc,ncs->nds", mix, rng.standard_normal((N, C, S)))).astype(dtype)
    weight = np.ones((-(-C // g), g))  # NOTE: 1 past C, as decorrelated.py pads it
    weight.reshape(-1)[:C] = 1 + 0.2 * rng.standard_normal(C)
    return x, weight, 0.1 * rng.standard_normal(C)


def zca_outputs(x, g):
    N, C, S = x.shape
    return alloc_outputs("zca_forward", x.dtype, N=N, C=C, S=S, G=-(-C // g), g=g)


def zca_forward(k, x, weight, bias, g):
    """zca_forward's outputs by name."""
    outs = zca_outputs(x, g)
    k.zca_forward(*outs, x, weight, bias, g, EPS)
    return dict(zip(contract.OUTPUTS["zca_forward"], outs))


@pytest.mark.parametrize("shape", ZCA_SHAPES, ids=ids(ZCA_SHAPES))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_zca_forward(name, dtype, shape):
    """Every backend against the reference: y and the statistics kept for the backward and the running averages.
    U is unique only up to signs (and not at all in a repeated eigenvalue's space, e.g. the padding's): it is checked
    for what it must be, orthonormal eigenvectors of cov + eps I for the ascending lam."""
    skip_slow(name, shape)
    rng = np.random.default_rng(11)
    x, weight, bias = zca_inputs(rng, shape, dtype)
    g = shape[3]
    got, want = zca_forward(kernels.load(name), x, weight, bias, g), zca_forward(reference, x, weight, bias, g)
    tol = ZCA_TOL[dtype]
    for what in ("y", "cov", "lam", "s", "mean", "shift"):
        assert_close(got[what], want[what], tol, what)
    # NOTE: W's entries on an eigenvalue near eps (the padding's, lam = eps) carry the eigensolver's absolute error,
    # an ulp of |A|, times lam^(-3/2)/2: 8e-11 of max|W| here in float64 (LAPACK's against tql2's)
    assert_close(got["W"], want["W"], max(tol, 1e-9), "W")
    # shift = X(mean), dshift = mean - shift (zeros past C), exactly
    np.testing.assert_array_equal(got["shift"], got["mean"].astype(dtype))
    C = shape[1]
    np.testing.assert_array_equal(got["dshift"].reshape(-1)[:C], got["mean"] - got["shift"])
    np.testing.assert_array_equal(got["dshift"].reshape(-1)[C:], 0)
    U, lam = got["U"], got["lam"]
    # NOTE: the eigensolvers read the lower triangle (the reference's float32 cov, two GEMMs, is symmetric only to
    # float32's rounding)
    L = np.tril(got["cov"] + EPS * np.eye(g))
    A = L + np.swapaxes(np.tril(L, -1), 1, 2)
    assert np.all(np.diff(lam, axis=1) >= 0)
    assert np.abs(np.swapaxes(U, 1, 2) @ U - np.eye(g)).max() <= 1e-13
    assert np.abs(A @ U - U * lam[:, None, :]).max() <= 1e-13 * np.abs(A).max()


@pytest.mark.parametrize("shape", ZCA_SHAPES[:-1], ids=ids(ZCA_SHAPES[:-1]))
def test_reference_zca_forward_is_the_papers(shape):
    """The reference in float64 against the paper's equations written out per group (the last group takes the
    remainder, no padding): mu = E[x], Sigma = E[(x - mu)(x - mu)^T], W = (Sigma + eps I)^(-1/2) = D diag(lam^-1/2)
    D^T, y = weight * W (x - mu) + bias."""
    rng = np.random.default_rng(12)
    x, weight, bias = zca_inputs(rng, shape, np.float64)
    N, C, S, g = shape
    got = zca_forward(reference, x, weight, bias, g)
    for k, c0 in enumerate(range(0, C, g)):
        c1 = min(c0 + g, C)
        X = x[:, c0:c1].transpose(1, 0, 2).reshape(c1 - c0, -1)
        mu = X.mean(axis=1)
        sigma = (X - mu[:, None]) @ (X - mu[:, None]).T / X.shape[1]
        lam, D = np.linalg.eigh(sigma + EPS * np.eye(c1 - c0))
        W = D @ np.diag(lam ** -0.5) @ D.T
        y = weight.reshape(-1)[c0:c1, None] * (W @ (X - mu[:, None])) + bias[c0:c1, None]
        r = c1 - c0
        assert_close(got["mean"][c0:c1], mu, 1e-14, "mean")
        assert_close(got["cov"][k, :r, :r], sigma, 1e-12, "cov")
        assert_close(got["W"][k, :r, :r], W, 1e-10, "W")
        assert_close(got["y"][:, c0:c1], y.reshape(r, N, S).transpose(1, 0, 2), 1e-10, "y")
        np.testing.assert_array_equal(got["cov"][k, r:], 0)  # the padding: zeros, W the identity/sqrt(eps)
        np.testing.assert_allclose(got["W"][k, r:, r:], np.eye(g - r) / np.sqrt(EPS), rtol=1e-12)


@pytest.mark.parametrize("shape", ZCA_SHAPES, ids=ids(ZCA_SHAPES))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_zca_rows(name, dtype, shape):
    """The backward's rows [dy; x - shift; 1] per group: copies and one subtraction in X, so every backend gives the
    reference's bits; and the reference's rows are what they say (zeros past C)."""
    skip_slow(name, shape)
    rng = np.random.default_rng(13)
    N, C, S, g = shape
    G = -(-C // g)
    x, dy, shift = make(rng, (N, C, S), dtype), make(rng, (N, C, S), dtype), make(rng, C, dtype)
    got, want = (alloc_outputs("zca_rows", dtype, N=N, G=G, J=2 * g + 1, S=S)[0] for _ in range(2))
    kernels.load(name).zca_rows(got, dy, x, shift, g)
    reference.zca_rows(want, dy, x, shift, g)
    np.testing.assert_array_equal(got, want)
    for k in range(G):
        r = min(g, C - k * g)
        np.testing.assert_array_equal(want[:, k, :r], dy[:, k * g:k * g + r])
        np.testing.assert_array_equal(want[:, k, g:g + r], x[:, k * g:k * g + r] - shift[k * g:k * g + r, None])
        np.testing.assert_array_equal(want[:, k, r:g], 0)
        np.testing.assert_array_equal(want[:, k, g + r:2 * g], 0)
        np.testing.assert_array_equal(want[:, k, 2 * g], 1)


# the backward's kernels: the ZCA shapes, a group size that is not a multiple of 8 with S = 63 (neither a multiple of
# the 8-float lanes nor of dx's 16-column chunks), and x at a large mean with a tiny variance (mean 1e4, variance
# 1e-6: u = x - shift is exact in X, so the products must carry no error from the mean)
ZCA_BACKWARD_CASES = [(shape, 0.5, 1.0) for shape in ZCA_SHAPES] + [((3, 24, 63, 12), 0.5, 1.0),
                                                                    ((5, 19, 33, 6), 1e4, 1e-3),
                                                                    ((4, 32, 64, 16), 1e4, 1e-3)]


def zca_backward_inputs(rng, shape, dtype, loc, scale):
    """dy, x (N, C, S), shift = X(the channel means), F (G, g, 2g+1) for the backward's kernels."""
    N, C, S, g = shape
    x = make(rng, (N, C, S), dtype, loc, scale)
    dy = make(rng, (N, C, S), dtype, 0.0, 1.0)
    shift = x.astype(np.float64).mean(axis=(0, 2)).astype(dtype)
    return dy, x, shift, make(rng, (-(-C // g), g, 2 * g + 1), dtype, 0.0, 1.0)


def zca_backward_exact(dy, x, shift, F, g):
    """The backward kernels' values in float64 from the same inputs (u = X(x - shift), the contract's), and the
    abs-sum bounds sum |dy| |u| (P), sum |dy| (sdy) and sum |F| |[dy; u; 1]| (dx): the float64 oracle."""
    N, C, S = x.shape
    G = F.shape[0]
    d, u, Fd = dy.astype(np.float64), (x - shift[:, None]).astype(np.float64), F.astype(np.float64)
    out = {k: np.zeros(sh) for k, sh in (("P", (G, g, g)), ("sdy", (G, g)), ("dx", (N, C, S)))}
    bound = {k: np.zeros_like(v) for k, v in out.items()}
    for k in range(G):
        c0 = k * g
        r = min(g, C - c0)
        dk, uk = d[:, c0:c0 + r], u[:, c0:c0 + r]
        out["P"][k, :r, :r] = np.einsum("nis,njs->ij", dk, uk)
        bound["P"][k, :r, :r] = np.einsum("nis,njs->ij", np.abs(dk), np.abs(uk))
        out["sdy"][k, :r], bound["sdy"][k, :r] = dk.sum(axis=(0, 2)), np.abs(dk).sum(axis=(0, 2))
        rows = np.concatenate([dk, uk, np.ones((N, 1, S))], axis=1)
        Fk = np.concatenate([Fd[k, :r, :r], Fd[k, :r, g:g + r], Fd[k, :r, 2 * g:]], axis=1)
        out["dx"][:, c0:c0 + r] = np.einsum("ij,njs->nis", Fk, rows)
        bound["dx"][:, c0:c0 + r] = np.einsum("ij,njs->nis", np.abs(Fk), np.abs(rows))
    return out, bound


@pytest.mark.parametrize("case", ZCA_BACKWARD_CASES, ids=[f"{'x'.join(map(str, c[0]))}-mean{c[1]:g}"
                                                         for c in ZCA_BACKWARD_CASES])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_zca_backward_kernels(name, dtype, case):
    """zca_backward_p1 and zca_backward_dx on every backend against the float64 oracle: |got - exact| within a few
    ulps of X of the abs-sum bound (the sums are over N*S products for P, 2g+1 terms for dx: the compiled kernels'
    lanes, the reference's GEMMs), zeros past C exactly. NOTE: a ones row of 1.0001 in the reference's rows (a
    planted fault) fails 12 of its cases."""
    shape, loc, scale = case
    skip_slow(name, shape)
    N, C, S, g = shape
    G = -(-C // g)
    dy, x, shift, F = zca_backward_inputs(np.random.default_rng(17), shape, dtype, loc, scale)
    k = kernels.load(name)
    P, sdy = np.full((G, g, g), np.nan), np.full((G, g), np.nan)
    dx = np.full((N, C, S), np.nan, dtype)
    k.zca_backward_p1(P, sdy, dy, x, shift, g)
    k.zca_backward_dx(dx, dy, x, shift, F, g)
    exact, bound = zca_backward_exact(dy, x, shift, F, g)
    eps = float(np.finfo(dtype).eps)
    # NOTE: measured at most 0.95 (P), 0.55 (sdy), 3.11 (dx) ulps of the bound (scripts/zca_backward_accuracy.py)
    for what, got in (("P", P), ("sdy", sdy), ("dx", dx)):
        err = np.abs(got.astype(np.float64) - exact[what])
        assert np.all(err <= 8 * eps * bound[what]), (what, float(np.max(err / np.maximum(bound[what], 1e-300))))
    for kk in range(G):
        r = min(g, C - kk * g)
        np.testing.assert_array_equal(P[kk, r:], 0)
        np.testing.assert_array_equal(P[kk, :, r:], 0)
        np.testing.assert_array_equal(sdy[kk, r:], 0)


def _spd_cases():
    rng = np.random.default_rng(5)
    Q, _ = np.linalg.qr(rng.standard_normal((16, 16)))
    A = rng.standard_normal((4, 16, 16))
    B = rng.standard_normal((2, 16, 3))
    yield "random", A @ np.swapaxes(A, 1, 2) + EPS * np.eye(16)
    yield "rank 3 + eps I (13 repeated)", B @ np.swapaxes(B, 1, 2) + EPS * np.eye(16)
    yield "eps I", np.tile(EPS * np.eye(16), (2, 1, 1))
    yield "graded 1e-12..1e2", ((Q * np.logspace(-12, 2, 16)) @ Q.T)[None]
    yield "clustered", ((Q * np.r_[[1.0] * 8, [1 + 1e-13] * 8]) @ Q.T)[None]
    yield "diagonal", np.diag(np.arange(16.0))[None]
    yield "5 x 5 indefinite", A[:3, :5, :5] + np.swapaxes(A[:3, :5, :5], 1, 2)
    yield "1 x 1", np.full((2, 1, 1), 3.0)
    for scale in (1e-300, 1e-200, 1e200, 1e300):  # tql2's products would leave the double range unscaled
        yield f"scaled {scale:g}", ((Q * np.logspace(-3, 0, 16) * scale) @ Q.T)[None]


SPD_CASES = list(_spd_cases())


@pytest.mark.parametrize("case", SPD_CASES, ids=[n for n, _ in SPD_CASES])
@pytest.mark.parametrize("name", BACKENDS)
def test_sym_eigh_as_accurate_as_lapack(name, case):
    """sym_eigh (tred2 + tql2 on the cython and numba backends, LAPACK's on numpy): residual |A U - U diag(lam)|,
    orthogonality |U^T U - I| and eigenvalues against LAPACK's within a few ulps of |A| (LAPACK's own residuals on
    these are 2e-16 to 3e-15), repeated, clustered, tiny and huge eigenvalues included."""
    A = np.ascontiguousarray(case[1])
    G, n, _ = A.shape
    lam, U = alloc_outputs("sym_eigh", np.float64, G=G, g=n)
    kernels.load(name).sym_eigh(lam, U, A)
    norm = np.abs(np.linalg.eigvalsh(A)).max()
    assert np.all(np.diff(lam, axis=1) >= 0)
    assert np.abs(A @ U - U * lam[:, None, :]).max() <= 1e-14 * norm
    assert np.abs(np.swapaxes(U, 1, 2) @ U - np.eye(n)).max() <= 1e-14
    assert np.abs(lam - np.linalg.eigvalsh(A)).max() <= 1e-14 * norm


@pytest.mark.parametrize("name", [b for b in BACKENDS if b != "numpy"])
def test_eigensolver_that_does_not_converge_hands_over_to_lapack(name, monkeypatch):
    """Where tql2 reports that it did not converge (60 steps for an eigenvalue), sym_eigh and zca_forward give the
    reference's results, LAPACK's, bit for bit (planted: the solver made to report it; unplanted, tql2's results
    differ from LAPACK's in the last bits)."""
    k = kernels.load(name)
    A = np.ascontiguousarray(SPD_CASES[0][1])
    x, weight, bias = zca_inputs(np.random.default_rng(14), (3, 7, 5, 3), np.float32)

    def both():
        got, want = alloc_outputs("sym_eigh", np.float64, G=4, g=16), alloc_outputs("sym_eigh", np.float64, G=4, g=16)
        k.sym_eigh(*got, A)
        reference.sym_eigh(*want, A)
        return [got[0], want[0]], [zca_forward(m, x, weight, bias, 3)["W"] for m in (k, reference)]

    assert all(not np.array_equal(*pair) for pair in both())
    if name == "cython":
        from minigrad.kernels import cython as module
        failing = type("Failing", (), {"zca_forward": staticmethod(lambda *a: False),
                                       "sym_eigh": staticmethod(lambda *a: False)})
        monkeypatch.setattr(module, "_whiten", failing)
    else:
        from minigrad.kernels.numba import whiten as module
        monkeypatch.setattr(module, "_sym_eigh", lambda *a: False)
        monkeypatch.setattr(module, "_zca_matrices", lambda *a: False)
    for pair in both():
        np.testing.assert_array_equal(*pair)
    got, want = zca_forward(k, x, weight, bias, 3), zca_forward(reference, x, weight, bias, 3)
    for what in got:
        np.testing.assert_array_equal(got[what], want[what], err_msg=what)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_running_average_update(name, dtype):
    """running = X((1 - momentum)*running + momentum*(new*scale)) in float64 on the compiled backends, bit for bit;
    the reference (NumPy) rounds (1 - momentum)*running to float32 first: float64 the same bits, float32 within an
    ulp of each rounding."""
    rng = np.random.default_rng(15)
    k = kernels.load(name)
    for M in (1, 7, 768):
        for momentum, scale in ((0.1, 1.0), (0.3, 64 / 63), (1 / 3, 1.0), (1.0, 1.0)):
            running, new = make(rng, M, dtype), make(rng, M, np.float64)
            got, want = running.copy(), running.copy()
            k.running_average_update(got, new, momentum, scale)
            reference.running_average_update(want, new, momentum, scale)
            if dtype == np.float64:
                np.testing.assert_array_equal(got, want)
            else:  # the reference's two roundings: of (1 - momentum)*running to X, of the sum
                assert np.all(np.abs(got - want) <= np.spacing(np.abs(want)) + np.spacing(np.abs(running)))
            if name != "numpy":
                exact = ((1.0 - momentum) * running.astype(np.float64) + momentum * (new * scale)).astype(dtype)
                np.testing.assert_array_equal(got, exact)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("C, g", [(32, 16), (37, 16), (5, 2), (4, 1), (3, 16)])
def test_zca_running_update(name, dtype, C, g):
    """The three running averages in one call: bit for bit the backend's running_average_update of the mean, of
    cov*scale and of the whitening matrix, the last group's padding (rows or columns past C) replaced by the
    identity's entries first (scale 1 then: (cov*scale)*1 = cov*scale)."""
    rng = np.random.default_rng(19)
    k = kernels.load(name)
    g = min(g, C)
    G = -(-C // g)
    r = C - (G - 1) * g
    for momentum, scale in ((0.1, 64 / 63), (1 / 3, 1.0), (1.0, 4 / 3)):
        bufs = [make(rng, (C,), dtype), make(rng, (G, g, g), dtype), make(rng, (G, g, g), dtype)]
        mean, cov, W = make(rng, (C,), np.float64), make(rng, (G, g, g), np.float64), make(rng, (G, g, g), np.float64)
        got = [b.copy() for b in bufs]
        k.zca_running_update(*got, mean, cov, W, momentum, scale, g)
        news = [mean, cov * scale, W.copy()]
        for a in news[1:]:
            a[-1, r:, :] = 0
            a[-1, :, r:] = 0
            a[-1, r:, r:] = np.eye(g - r)
        if r == g:  # NOTE: unpadded, the module passes cov and the scale (the same bits as cov*scale times 1)
            news[1], scales = cov, (1.0, scale, 1.0)
        else:
            scales = (1.0, 1.0, 1.0)
        for b, new, sc, out in zip(bufs, news, scales, got):
            want = b.copy()
            k.running_average_update(want.reshape(-1), new.reshape(-1), momentum, sc)
            np.testing.assert_array_equal(out, want)
        # the padding averages in the identity: 1 on its diagonal, 0 off it
        if r < g and dtype == np.float64:
            pad = np.zeros((g, g), bool)
            pad[r:, :] = pad[:, r:] = True
            eye = np.broadcast_to(np.eye(g), (g, g))
            np.testing.assert_allclose(got[2][-1][pad], ((1 - momentum) * bufs[2][-1] + momentum * eye)[pad],
                                       rtol=1e-15, atol=1e-15)


def test_zca_running_update_checks_its_arguments():
    k = kernels.load("cython")
    run = [np.zeros(5, np.float32), np.zeros((3, 2, 2), np.float32), np.zeros((3, 2, 2), np.float32)]
    new = [np.zeros(5), np.zeros((3, 2, 2)), np.zeros((3, 2, 2))]
    with pytest.raises(ValueError, match=r"G must be ceil\(C/group_size\)"):
        k.zca_running_update(*run, *new, 0.1, 1.0, 3)
    with pytest.raises(TypeError, match="'running_cov' must have dtype float32"):  # X: running_mean's dtype
        k.zca_running_update(run[0], np.zeros((3, 2, 2)), run[2], *new, 0.1, 1.0, 2)
    with pytest.raises(TypeError, match="'cov' must have dtype float64"):
        k.zca_running_update(*run, new[0], run[1].copy(), new[2], 0.1, 1.0, 2)
    with pytest.raises(ValueError, match="C-contiguous"):
        k.zca_running_update(run[0], np.zeros((3, 2, 2), np.float32).transpose(0, 2, 1), run[2], *new, 0.1, 1.0, 2)


def _zca_args(dtype=np.float32):
    """Valid zca_forward arguments (a padded last group: C = 5, group size 2, G = 3)."""
    x, weight, bias = zca_inputs(np.random.default_rng(16), (4, 5, 3, 2), dtype)
    return [*zca_outputs(x, 2), x, weight, bias, 2, EPS]


ZCA_BAD = {  # argument index -> (value, error, match)
    "group_size not covering G": (12, 3, ValueError, r"G must be ceil\(C/group_size\) = 2"),
    "group_size 0": (12, 0, ValueError, "group_size must be an int >= 1"),
    "group_size bool": (12, True, ValueError, "group_size must be an int >= 1"),
    "group_size float": (12, 2.0, ValueError, "group_size must be an int >= 1"),
    "mean float32": (8, np.empty(5, np.float32), TypeError, "'mean' must have dtype float64"),
    "shift float64": (6, np.empty(5), TypeError, "'shift' must have dtype float32"),
    "weight (C,)": (10, np.ones(5), ValueError, "'weight' must have 2 dims"),
    "bias float32": (11, np.zeros(5, np.float32), TypeError, "'bias' must have dtype float64"),
    "lam wrong g": (2, np.empty((3, 3)), ValueError, "'lam' has shape"),
    "x non-contiguous": (9, np.ones((4, 3, 5), np.float32).transpose(0, 2, 1), ValueError, "C-contiguous"),
    "eps negative": (13, -1e-5, ValueError, "eps"),
    "y read-only": (0, np.zeros((4, 5, 3), np.float32), ValueError, "writeable"),
}


@pytest.mark.parametrize("case", sorted(ZCA_BAD))
@pytest.mark.parametrize("name", BACKENDS)
def test_zca_forward_rejects_bad_arguments(name, case):
    i, value, exc, match = ZCA_BAD[case]
    args = _zca_args()
    if case == "y read-only":
        value.flags.writeable = False
    args[i] = value
    with pytest.raises(exc, match=match):
        kernels.load(name).zca_forward(*args)


@pytest.mark.parametrize("name", BACKENDS)
def test_zca_kernels_check_their_arguments(name):
    k = kernels.load(name)
    args = _zca_args()
    G3 = [np.empty((3, 3, 3)), np.empty((3, 3)), np.empty((3, 3, 3)), np.empty((3, 3, 3)), np.empty((3, 3))]
    with pytest.raises(ValueError, match="g = group_size = 2, got g=3"):  # every g-sized array agreeing, but not 2
        k.zca_forward(args[0], *G3, args[6], np.empty((3, 3)), *args[8:10], np.ones((3, 3)), *args[11:])
    x, dy, shift = args[9], args[9].copy(), np.zeros(5, np.float32)
    with pytest.raises(ValueError, match=r"2\*group_size \+ 1"):
        k.zca_rows(np.empty((4, 3, 4, 3), np.float32), dy, x, shift, 2)
    with pytest.raises(TypeError, match="'dy' must have dtype float64"):  # X is B's dtype, the first array's
        k.zca_rows(np.empty((4, 3, 5, 3)), dy, x, shift, 2)
    with pytest.raises(ValueError, match=r"G must be ceil\(C/group_size\)"):
        k.zca_rows(np.empty((4, 2, 5, 3), np.float32), dy, x, shift, 2)
    F = np.zeros((3, 2, 5), np.float32)
    with pytest.raises(ValueError, match=r"F must have shape \(G, group_size, 2\*group_size \+ 1\)"):
        k.zca_backward_dx(np.empty_like(x), dy, x, shift, np.zeros((3, 2, 4), np.float32), 2)
    with pytest.raises(TypeError, match="'F' must have dtype float32"):
        k.zca_backward_dx(np.empty_like(x), dy, x, shift, F.astype(np.float64), 2)
    with pytest.raises(ValueError, match="output 'dx' must be writeable"):
        ro = np.empty_like(x)
        ro.flags.writeable = False
        k.zca_backward_dx(ro, dy, x, shift, F, 2)
    with pytest.raises(TypeError, match="'P' must have dtype float64"):
        k.zca_backward_p1(np.empty((3, 2, 2), np.float32), np.empty((3, 2)), dy, x, shift, 2)
    with pytest.raises(ValueError, match=r"G must be ceil\(C/group_size\)"):
        k.zca_backward_p1(np.empty((2, 2, 2)), np.empty((2, 2)), dy, x, shift, 2)
    with pytest.raises(ValueError, match="C-contiguous"):
        k.zca_backward_p1(np.empty((3, 2, 2)), np.empty((3, 2)), dy, np.asfortranarray(x), shift, 2)
    with pytest.raises(TypeError, match="'A' must have dtype float64"):
        k.sym_eigh(np.empty((2, 3)), np.empty((2, 3, 3)), np.eye(3, dtype=np.float32)[None].repeat(2, 0))
    with pytest.raises(ValueError, match="'U' has shape"):
        k.sym_eigh(np.empty((2, 3)), np.empty((2, 3, 4)), np.eye(3)[None].repeat(2, 0))
    with pytest.raises(TypeError, match="'new' must have dtype float64"):
        k.running_average_update(np.zeros(4), np.zeros(4, np.float32), 0.1, 1.0)
    with pytest.raises(ValueError, match="'new' has shape"):
        k.running_average_update(np.zeros(4), np.zeros(5), 0.1, 1.0)
    with pytest.raises(ValueError, match="must have 1 dims"):
        k.running_average_update(np.zeros((2, 2)), np.zeros((2, 2)), 0.1, 1.0)


# ----------------------------------------------------------------------------------------------------------
# the reference itself vs PyTorch, float64, random dy


torch = pytest.importorskip("torch")
F = torch.nn.functional


def _torch_grads(out, inputs, dy):
    return torch.autograd.grad(out, inputs, torch.from_numpy(dy))


@pytest.mark.parametrize("shape", BN_SHAPES[:-2], ids=ids(BN_SHAPES[:-2]))
def test_reference_batch_norm_vs_torch(shape):
    N, C, S = shape
    if N * S == 1:
        pytest.skip("torch refuses training batch norm with one value per channel")
    rng = np.random.default_rng(6)
    x, dy = make(rng, shape, np.float64), make(rng, shape, np.float64)
    w, b = make(rng, C, np.float64, 1.0, 0.5), make(rng, C, np.float64, 0.0, 0.5)
    y, mean, rstd = _bn_forward(reference.batch_norm_forward, x, w, b)
    dx, dw, db = _bn_backward(reference.batch_norm_backward, dy, x, mean, rstd, w)

    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty, tmean, trstd = torch.ops.aten.native_batch_norm(tx, tw, tb, None, None, True, 0.1, EPS)
    assert_close(y, ty.detach().numpy(), 1e-12, "y")
    assert_close(mean, tmean.detach().numpy(), 1e-12, "mean")
    assert_close(rstd, trstd.detach().numpy(), 1e-12, "rstd")
    tdx, tdw, tdb = _torch_grads(ty, (tx, tw, tb), dy)
    assert_close(dx, tdx.numpy(), 1e-10, "dx")
    assert_close(dw, tdw.numpy(), 1e-10, "dweight")
    assert_close(db, tdb.numpy(), 1e-10, "dbias")
    ty2 = F.batch_norm(tx, None, None, tw, tb, training=True, eps=EPS)
    assert_close(y, ty2.detach().numpy(), 1e-12, "y (functional)")

    rm, rv = make(rng, C, np.float64), 0.1 + rng.random(C)
    y = np.empty_like(x)
    reference.batch_norm_inference(y, x, rm, rv, w, b, EPS)
    ty = F.batch_norm(tx, torch.tensor(rm), torch.tensor(rv), tw, tb, training=False, eps=EPS)
    assert_close(y, ty.detach().numpy(), 1e-12, "y (inference)")


@pytest.mark.parametrize("shape", GN_SHAPES[:-2], ids=ids(GN_SHAPES[:-2]))
def test_reference_group_norm_vs_torch(shape):
    N, C, S, G = shape
    rng = np.random.default_rng(7)
    x, dy = make(rng, (N, C, S), np.float64), make(rng, (N, C, S), np.float64)
    w, b = make(rng, C, np.float64, 1.0, 0.5), make(rng, C, np.float64, 0.0, 0.5)
    y, mean, rstd = _gn_forward(reference.group_norm_forward, x, w, b, G)
    dx, dw, db = _gn_backward(reference.group_norm_backward, dy, x, mean, rstd, w, G)

    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty, tmean, trstd = torch.ops.aten.native_group_norm(tx, tw, tb, N, C, S, G, EPS)
    assert_close(y, ty.detach().numpy(), 1e-12, "y")
    assert_close(mean, tmean.detach().numpy(), 1e-12, "mean")
    assert_close(rstd, trstd.detach().numpy(), 1e-12, "rstd")
    for what, got, want in zip(("dx", "dweight", "dbias"), (dx, dw, db), _torch_grads(ty, (tx, tw, tb), dy)):
        assert_close(got, want.numpy(), 1e-10, what)
    if C // G * S > 1:  # F.group_norm refuses a set of one value (native_group_norm above accepts it)
        assert_close(y, F.group_norm(tx, G, tw, tb, EPS).detach().numpy(), 1e-12, "y (functional)")
    if G == 1 and S == 1:  # layer norm over the rows of (R, D)
        ty = F.layer_norm(tx.reshape(N, C), (C,), tw, tb, EPS)
        assert_close(y.reshape(N, C), ty.detach().numpy(), 1e-12, "y (layer_norm)")
        grads = _torch_grads(ty, (tx, tw, tb), dy.reshape(N, C))
        for what, got, want in zip(("dx", "dweight", "dbias"), (dx, dw, db), grads):
            assert_close(got, want.numpy(), 1e-10, what + " (layer_norm)")
    if G == C and S > 1:  # instance norm
        ty = F.instance_norm(tx, weight=tw, bias=tb, eps=EPS)
        assert_close(y, ty.detach().numpy(), 1e-12, "y (instance_norm)")
        grads = _torch_grads(ty, (tx, tw, tb), dy)
        for what, got, want in zip(("dx", "dweight", "dbias"), (dx, dw, db), grads):
            assert_close(got, want.numpy(), 1e-10, what + " (instance_norm)")


@pytest.mark.parametrize("shape", SM_SHAPES[:-1], ids=ids(SM_SHAPES[:-1]))
def test_reference_log_softmax_vs_torch(shape):
    rng = np.random.default_rng(8)
    x, dy = make(rng, shape, np.float64, scale=5.0), make(rng, shape, np.float64)
    y, dx = np.empty_like(x), np.empty_like(x)
    reference.log_softmax_forward(y, x)
    reference.log_softmax_backward(dx, dy, y)
    tx = torch.tensor(x, requires_grad=True)
    ty = F.log_softmax(tx, dim=1)
    assert_close(y, ty.detach().numpy(), 1e-12, "y")
    (tdx,) = _torch_grads(ty, (tx,), dy)
    assert_close(dx, tdx.numpy(), 1e-10, "dx")
