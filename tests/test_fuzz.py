"""Differential fuzzing: every backend against the NumPy reference, forward and backward, on random shapes
(ones and primes included), strides (transposed, negative, sliced views), dtypes, eps and affine flags.

Failing examples are kept in ``tests/hypothesis-db`` (committed), so a failure found once replays on every run.
``MINIGRAD_FUZZ_EXAMPLES`` sets the examples per test (default 60).
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

import minigrad as mg
import minigrad.nn.functional as F

BACKENDS = [b for b in mg.available_backends() if b != "numpy"]
EXAMPLES = int(os.environ.get("MINIGRAD_FUZZ_EXAMPLES", "60"))
DB = DirectoryBasedExampleDatabase(os.path.join(os.path.dirname(__file__), "hypothesis-db"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=DB, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

SIZES = st.sampled_from([1, 2, 3, 5, 7, 11, 13, 16, 17, 31])
TOL = {np.float32: dict(rtol=2e-4, atol=5e-5), np.float64: dict(rtol=1e-9, atol=1e-10)}


@st.composite
def arrays(draw, min_ndim, max_ndim, min_channels=1):
    """A float array of random shape and dtype, possibly a non-contiguous view (transposed, reversed, sliced)."""
    ndim = draw(st.integers(min_ndim, max_ndim))
    shape = [draw(SIZES) for _ in range(ndim)]
    if ndim >= 2:
        shape[1] = max(shape[1], min_channels)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    scale = draw(st.sampled_from([1e-3, 1.0, 50.0]))
    offset = draw(st.sampled_from([0.0, 3.0, -100.0]))
    layout = draw(st.sampled_from(["contiguous", "transposed", "reversed", "sliced"]))
    if layout == "transposed" and ndim >= 2:
        a = rng.standard_normal(shape[::-1]).T
    elif layout == "reversed":
        a = rng.standard_normal(shape)[::-1]
    elif layout == "sliced":
        big = rng.standard_normal([s * 2 for s in shape])
        a = big[tuple(slice(None, None, 2) for _ in shape)]
    else:
        a = rng.standard_normal(shape)
    a = (a * scale + offset).astype(dtype)
    dy = rng.standard_normal(a.shape).astype(dtype)
    return a, dy, seed


def _compare(fn, x, dy, params, backend):
    """Run fn under `backend` and under the reference; outputs and every gradient must agree."""
    results = []
    for name in (backend, "numpy"):
        with mg.using_backend(name):
            tx = mg.Tensor(x, requires_grad=True)
            tp = [None if p is None else mg.Tensor(p, requires_grad=True) for p in params]
            y = fn(tx, *tp)
            y.backward(dy)
            results.append([y.numpy(), tx.grad.numpy()] + [p.grad.numpy() for p in tp if p is not None])
    tol = TOL[x.dtype.type]
    for got, want in zip(*results):
        # NOTE: gradients of the affine parameters are sums over the batch: scale the tolerance by their size
        np.testing.assert_allclose(got, want, rtol=tol["rtol"] * 10, atol=tol["atol"] * 10 * max(1, x.size ** 0.5))


def _affine(draw, c, dtype, shape=None):
    if not draw(st.booleans()):
        return None, None
    rng = np.random.default_rng(c)
    shape = shape or (c,)
    return rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)


EPS = st.sampled_from([1e-5, 1e-3, 0.1])


@pytest.mark.parametrize("backend", BACKENDS)
@FUZZ
@given(data=st.data())
def test_fuzz_batch_norm(backend, data):
    x, dy, _ = data.draw(arrays(2, 5))
    if x.size // x.shape[1] < 2:
        x = np.concatenate([x, x * 0.5 + 1], axis=0)
        dy = np.concatenate([dy, dy], axis=0)
    w, b = _affine(data.draw, x.shape[1], x.dtype)
    eps = data.draw(EPS)
    training = data.draw(st.booleans())
    c = x.shape[1]
    rm = mg.Tensor(np.linspace(-1, 1, c).astype(x.dtype))
    rv = mg.Tensor(np.linspace(0.5, 2, c).astype(x.dtype))
    _compare(lambda t, w, b: F.batch_norm(t, mg.Tensor(rm.numpy().copy()), mg.Tensor(rv.numpy().copy()), w, b,
                                          training, 0.1, eps), x, dy, [w, b], backend)


@pytest.mark.parametrize("backend", BACKENDS)
@FUZZ
@given(data=st.data())
def test_fuzz_group_and_instance_norm(backend, data):
    x, dy, _ = data.draw(arrays(3, 5))
    c = x.shape[1]
    groups = data.draw(st.sampled_from([g for g in range(1, c + 1) if c % g == 0]))
    w, b = _affine(data.draw, c, x.dtype)
    eps = data.draw(EPS)
    if x.size // groups == 1:  # one value in all of each group: PyTorch refuses it, and so does minigrad
        with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
            F.group_norm(mg.Tensor(x), groups, None, None, eps)
    else:
        _compare(lambda t, w, b: F.group_norm(t, groups, w, b, eps), x, dy, [w, b], backend)
    if x.size // (x.shape[0] * c) > 1:
        _compare(lambda t, w, b: F.instance_norm(t, weight=w, bias=b, eps=eps), x, dy, [w, b], backend)


@pytest.mark.parametrize("backend", BACKENDS)
@FUZZ
@given(data=st.data())
def test_fuzz_layer_norm(backend, data):
    x, dy, _ = data.draw(arrays(1, 4))
    k = data.draw(st.integers(1, x.ndim))
    normalized = x.shape[x.ndim - k:]
    w, b = _affine(data.draw, 0, x.dtype, shape=normalized)
    eps = data.draw(EPS)
    _compare(lambda t, w, b: F.layer_norm(t, normalized, w, b, eps), x, dy, [w, b], backend)


@pytest.mark.parametrize("backend", BACKENDS)
@FUZZ
@given(data=st.data())
def test_fuzz_log_softmax(backend, data):
    x, dy, _ = data.draw(arrays(1, 3))
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1))
    _compare(lambda t: F.log_softmax(t, dim), x, dy, [], backend)
