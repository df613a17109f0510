"""EvoNorm-B0's training backward in one call (contract: evonorm_b0_backward): every backend against the float64
reference written by the chain rule, the compiled backends bit for bit against the phases it replaces
(row_backward_sums_gate, the NumPy coefficients of the functional before it, row_backward_apply_gate), the same
bits for any thread count, float32 gradients on data with a large mean or a tiny variance, a NaN kept in its
channel, the contract's checks, and the functional's training backward making this one call on every backend."""
import os

import numpy as np
import pytest

from conftest import BACKENDS, DTYPES, alloc_outputs, assert_same_bits_across_threads
from minigrad import kernels
from minigrad.kernels import reference

TOL = {np.float32: 3e-5, np.float64: 3e-11}
EPS = 1e-5
NUMBA_AS_PYTHON = os.environ.get("NUMBA_DISABLE_JIT", "") not in ("", "0")
# (N, C, S): C = 1 (the sums over N in NumPy's pairwise order; N past 8 and past 128), S = 1, N = 1, odd sizes,
# rows with and without a vector tail, the benchmark's shapes
SHAPES = [(2, 3, 5), (9, 1, 4), (200, 1, 3), (5, 4, 1), (1, 3, 7), (7, 13, 17), (200, 2, 9), (3, 6, 64),
          (16, 32, 64), (32, 64, 256)]
NAMES = ("dx", "dv", "dweight", "dbias")


def ids(shapes):
    return ["x".join(map(str, s)) for s in shapes]


def data(rng, shape, dtype, loc=0.3, scale=2.0, eps=EPS):
    """(dy, x, v, weight, lo, hi, imean, irstd, mean, rstd): x, its parameters and the saved arrays of its
    forward on the cython backend (every backend's forward gives these bits but the reference's)."""
    N, C, S = shape
    x = (loc + scale * rng.standard_normal(shape)).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    v, w, b = (rng.standard_normal(C).astype(dtype) for _ in range(3))
    y, lo, hi, imean, irstd, mean, rstd = alloc_outputs("evonorm_b0_forward", dtype, N=N, C=C, S=S)
    kernels.load("cython").evonorm_b0_forward(y, lo, hi, imean, irstd, mean, rstd, x, v, w, b, eps)
    return dy, x, v, w, lo, hi, imean, irstd, mean, rstd


def fused(k, args):
    """(dx, dv, dweight, dbias) of one call."""
    N, C, S = args[1].shape
    out = alloc_outputs("evonorm_b0_backward", args[1].dtype, N=N, C=C, S=S)
    k.evonorm_b0_backward(*out, *args)
    return out


def phases(k, args):
    """The same outputs from the phases and the NumPy the functional ran before (session 34's _EvoNorm.backward)."""
    dy, x, v, w, lo, hi, imean, irstd, mean, rstd = args
    (n, c, s), dtype = x.shape, x.dtype
    r = n * c
    v2 = np.ascontiguousarray(np.broadcast_to(v, (n, c))).reshape(-1)
    sums = np.empty((5, n, c))
    k.row_backward_sums_gate(*sums.reshape(5, r), dy.reshape(r, s), x.reshape(r, s), v2, lo.reshape(-1),
                             hi.reshape(-1), 1)
    w64 = w.astype(np.float64)
    b1 = w64 * sums[3] * irstd / s
    sums[2::2] *= w64
    tot = sums.sum(axis=1)
    b2 = tot[4] * rstd / (n * s)
    tot = tot.astype(dtype)
    co = np.empty((4, r), dtype)
    co4 = co.reshape(4, n, c)
    co4[1] = imean
    shift = co4[1].astype(np.float64)
    co4[0], co4[2], co4[3] = w64, b1 + b2, b1 * (shift - imean) + b2 * (shift - mean)
    dx = np.empty_like(x)
    k.row_backward_apply_gate(dx.reshape(r, s), dy.reshape(r, s), x.reshape(r, s), *co, v2, lo.reshape(-1),
                              hi.reshape(-1), 1)
    return dx, tot[2], tot[1], tot[0]


def close(got, want, tol, what):
    for name, g, r in zip(NAMES, got, want):
        scale = max(float(np.max(np.abs(r))), 1.0)
        np.testing.assert_allclose(g, r, rtol=tol, atol=tol * scale, err_msg=f"{what}: {name}")


@pytest.mark.parametrize("shape", SHAPES, ids=ids(SHAPES))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_evonorm_b0_backward(name, dtype, shape):
    """Against the reference; the compiled backends also bit for bit against the phases on the same backend."""
    if name == "numba" and NUMBA_AS_PYTHON and int(np.prod(shape)) > 20_000:
        pytest.skip("numba as plain Python (NUMBA_DISABLE_JIT=1): large shape skipped")
    check_backend(name, dtype, shape, data(np.random.default_rng(7), shape, dtype), fused, phases)


def check_backend(name, dtype, shape, args, fused, phases):
    """``fused`` on backend ``name`` against the reference's; the compiled backends also bit for bit against
    ``phases`` on the same backend. The data must take both sides of the gate's max."""
    k = kernels.load(name)
    got = fused(k, args)
    close(got, fused(reference, args), TOL[dtype], f"{name} {shape}")
    dy, x, v, w, lo, hi = args[:6]
    if shape[2] > 1 and shape[0] * shape[1] > 2:
        u = v[None, :, None] * x + hi[:, :, None]
        assert 0 < np.count_nonzero(u > lo[:, :, None]) < x.size, "the test must take both sides of the max"
    if name != "numpy":
        for what, g, r in zip(NAMES, got, phases(k, args)):
            assert g.dtype == r.dtype and g.tobytes() == r.tobytes(), f"{name} {shape}: {what} differs"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_evonorm_b0_backward_same_bits_for_any_thread_count(name, dtype):
    rng = np.random.default_rng(3)
    for shape in [(3, 7, 9), (8, 16, 64) if NUMBA_AS_PYTHON else (16, 32, 64), (4, 1, 33)]:
        args = data(rng, shape, dtype)
        outs = alloc_outputs("evonorm_b0_backward", dtype, N=shape[0], C=shape[1], S=shape[2])
        assert_same_bits_across_threads(kernels.load(name).module, [("evonorm_b0_backward", outs, args)], (1, 2, 3))


@pytest.mark.parametrize("case", ["large mean", "tiny variance"])
@pytest.mark.parametrize("name", BACKENDS)
def test_evonorm_b0_backward_accurate_in_float32(name, case):
    """float32 data with a mean of 1e4 or a standard deviation of 1e-4 of its mean: the gradients within a few
    float32 roundings of the float64 reference's on the same inputs (x - X(imean) is exact there, so the statistics'
    terms of dx do not cancel)."""
    rng = np.random.default_rng(11)
    shape = (8, 5, 64)
    z = rng.standard_normal(shape)
    x = (1e4 + z if case == "large mean" else 1 + 1e-4 * z).astype(np.float32)
    args = list(data(rng, shape, np.float32, eps=1e-12))
    args[1] = x
    y, *saved = alloc_outputs("evonorm_b0_forward", np.float32, N=8, C=5, S=64)
    kernels.load("cython").evonorm_b0_forward(y, *saved, x, args[2], args[3], args[3], 1e-12)
    args[4:] = saved
    close(fused(kernels.load(name), args), fused(reference, args), 1e-5, f"{name} {case}")


@pytest.mark.parametrize("name", BACKENDS)
def test_evonorm_b0_backward_nan_stays_in_its_channel(name):
    """A NaN in x reaches its channel's gradients (through the batch std, every row of the channel), no other's."""
    rng = np.random.default_rng(2)
    args = list(data(rng, (3, 4, 6), np.float64))
    args[1] = args[1].copy()
    args[1][1, 2, 3] = np.nan
    with np.errstate(invalid="ignore"):
        dx, dv, dw, db = fused(kernels.load(name), args)
    assert np.isnan(dx[:, 2]).all() and np.isfinite(dx[:, [0, 1, 3]]).all()
    assert np.isnan(dv[2]) and np.isfinite(dv[[0, 1, 3]]).all() and np.isfinite(db).all()


@pytest.mark.parametrize("name", BACKENDS)
def test_evonorm_b0_backward_checks(name):
    k = kernels.load(name)
    args = list(data(np.random.default_rng(0), (2, 3, 4), np.float32))
    out = list(alloc_outputs("evonorm_b0_backward", np.float32, N=2, C=3, S=4))
    bad = list(args)
    bad[6] = bad[6].astype(np.float32)  # imean in float64
    with pytest.raises(TypeError, match="'imean'"):
        k.evonorm_b0_backward(*out, *bad)
    bad = list(args)
    bad[8] = np.empty(4)  # mean (C,)
    with pytest.raises(ValueError, match="'mean'"):
        k.evonorm_b0_backward(*out, *bad)
    bad = list(out)
    bad[1] = np.empty(3)  # dv in X
    with pytest.raises(TypeError, match="'dv'"):
        k.evonorm_b0_backward(*bad, *args)


@pytest.mark.parametrize("name", BACKENDS)
def test_functional_training_backward_is_one_call(name, monkeypatch):
    """F.evonorm_b0's training backward calls evonorm_b0_backward, alone, on the backend asked for; its gradients
    are that call's outputs."""
    import minigrad as mg
    import minigrad.nn.functional as F

    rng = np.random.default_rng(5)
    x0, dy = rng.standard_normal((4, 3, 5, 2)), rng.standard_normal((4, 3, 5, 2))
    ts = [mg.Tensor(a, requires_grad=True) for a in (x0, *rng.standard_normal((3, 3)))]
    calls, registry = [], kernels.kernels

    class Recorder:
        def __getattr__(self, kernel):
            backend = registry()
            calls.append((kernel, backend.name))
            return getattr(backend, kernel)

    with mg.using_backend(name):
        y = F.evonorm_b0(ts[0], ts[1], None, ts[2], ts[3], training=True)
        node = y._ctx
        monkeypatch.setattr(kernels, "kernels", Recorder)
        y.backward(mg.Tensor(dy))
    assert calls == [("evonorm_b0_backward", name)]
    want = fused(kernels.load(name), (dy.reshape(4, 3, 10), x0.reshape(4, 3, 10), ts[1].data, ts[2].data,
                                      node.lo.reshape(4, 3), node.hi.reshape(4, 3), node.imean, node.irstd, node.mean,
                                      node.rstd))
    for what, t, w in zip(NAMES, [ts[0], ts[1], ts[2], ts[3]], want):
        assert t.grad.data.reshape(w.shape).tobytes() == w.tobytes(), f"{name}: {what}"
