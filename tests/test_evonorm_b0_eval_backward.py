"""EvoNorm-B0's eval backward in one call (evonorm_b0_backward with constant_lo=True: lo the running std, a
constant): every backend against the float64 reference by the chain rule, the compiled backends bit for bit
against the phases and NumPy the functional ran before (row_backward_sums_gate, the eval coefficients,
row_backward_apply_gate), the same bits for any thread count, float32 gradients on data with a large mean or a
tiny variance, a NaN kept in its row, the keyword's check, and the functional's eval backward making this one
call."""
import numpy as np
import pytest

from conftest import BACKENDS, DTYPES, alloc_outputs
from minigrad import kernels
from minigrad.kernels import reference
from test_evonorm_b0_backward import NAMES, NUMBA_AS_PYTHON, SHAPES, check_backend, close, data, ids

EPS = 1e-5


def eval_data(rng, shape, dtype, **kw):
    """data()'s arrays with lo the running std X(sqrt(running_var + eps)) per channel (and mean, rstd unread)."""
    args = list(data(rng, shape, dtype, **kw))
    running_var = np.exp(rng.uniform(-1.0, 1.0, shape[1])) * float(args[1].astype(np.float64).var())
    args[4] = np.ascontiguousarray(np.broadcast_to(np.sqrt(running_var + EPS).astype(dtype), shape[:2]))
    args[8], args[9] = np.full(shape[1], np.nan), np.full(shape[1], np.nan)  # NOTE: not read: NaN would show
    return args


def fused(k, args):
    N, C, S = args[1].shape
    out = alloc_outputs("evonorm_b0_backward", args[1].dtype, N=N, C=C, S=S)
    k.evonorm_b0_backward(*out, *args, constant_lo=True)
    return out


def phases(k, args):
    """The same outputs from the phases and the NumPy of _EvoNorm.backward's eval branch before session 37."""
    dy, x, v, w, lo, hi, imean, irstd = args[:8]
    (n, c, s), dtype = x.shape, x.dtype
    r = n * c
    v2 = np.ascontiguousarray(np.broadcast_to(v, (n, c))).reshape(-1)
    sums = np.empty((5, n, c))
    k.row_backward_sums_gate(*sums.reshape(5, r), dy.reshape(r, s), x.reshape(r, s), v2, lo.reshape(-1),
                             hi.reshape(-1), 1)
    w64 = w.astype(np.float64)
    a, b, m1 = w64, w64 * sums[3] * irstd / s, imean
    sums[2] *= w64
    tot = sums.sum(axis=1).astype(dtype)
    co = np.empty((4, r), dtype)
    co4 = co.reshape(4, n, c)
    co4[1] = m1
    shift = co4[1].astype(np.float64)
    co4[0], co4[2], co4[3] = a, b, b * (shift - m1)
    dx = np.empty_like(x)
    k.row_backward_apply_gate(dx.reshape(r, s), dy.reshape(r, s), x.reshape(r, s), *co, v2, lo.reshape(-1),
                              hi.reshape(-1), 1)
    return dx, tot[2], tot[1], tot[0]


@pytest.mark.parametrize("shape", SHAPES, ids=ids(SHAPES))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_eval_backward(name, dtype, shape):
    """Against the reference; the compiled backends also bit for bit against the phases on the same backend."""
    if name == "numba" and NUMBA_AS_PYTHON and int(np.prod(shape)) > 20_000:
        pytest.skip("numba as plain Python (NUMBA_DISABLE_JIT=1): large shape skipped")
    check_backend(name, dtype, shape, eval_data(np.random.default_rng(7), shape, dtype), fused, phases)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_eval_backward_same_bits_for_any_thread_count(name, dtype):
    module = kernels.load(name).module
    rng = np.random.default_rng(3)
    for shape in [(3, 7, 9), (8, 16, 64) if NUMBA_AS_PYTHON else (16, 32, 64), (4, 1, 33)]:
        args = eval_data(rng, shape, dtype)
        outs = [fused(kernels.load(name), args)]
        for n_threads in (1, 2, 3):
            out = alloc_outputs("evonorm_b0_backward", dtype, N=shape[0], C=shape[1], S=shape[2])
            module.evonorm_b0_backward(*out, *args, n_threads, constant_lo=True)
            outs.append(out)
        for out in outs[1:]:
            for what, g, r in zip(NAMES, out, outs[0]):
                assert g.tobytes() == r.tobytes(), f"{name} {shape}: {what}"


@pytest.mark.parametrize("case", ["large mean", "tiny variance"])
@pytest.mark.parametrize("name", BACKENDS)
def test_eval_backward_accurate_in_float32(name, case):
    """float32 data with a mean of 1e4 or a standard deviation of 1e-4 of its mean (the instance statistics from
    the forward on that x, the running std near the batch's): within 1e-5 of the float64 reference's scale."""
    rng = np.random.default_rng(11)
    shape = (8, 5, 64)
    z = rng.standard_normal(shape)
    x = (1e4 + z if case == "large mean" else 1 + 1e-4 * z).astype(np.float32)
    args = eval_data(rng, shape, np.float32, eps=1e-12)
    y, *saved = alloc_outputs("evonorm_b0_forward", np.float32, N=8, C=5, S=64)
    kernels.load("cython").evonorm_b0_forward(y, *saved, x, args[2], args[3], args[3], 1e-12)
    args[1] = x
    args[4] = np.ascontiguousarray(np.broadcast_to(saved[0][0] * np.float32(1.3), (8, 5)))  # lo: a running std
    args[5:8] = saved[1:4]
    close(fused(kernels.load(name), args), fused(reference, args), 1e-5, f"{name} {case}")


@pytest.mark.parametrize("name", BACKENDS)
def test_eval_nan_stays_in_its_row(name):
    """lo is a constant: a NaN in x reaches its own row's dx (the instance std) and its channel's dv, no other
    row's dx (in training it reaches the whole channel through the batch std)."""
    args = eval_data(np.random.default_rng(2), (3, 4, 6), np.float64)
    args[1] = args[1].copy()
    args[1][1, 2, 3] = np.nan
    with np.errstate(invalid="ignore"):
        dx, dv, dw, db = fused(kernels.load(name), args)
    assert np.isnan(dx[1, 2]).all()
    mask = np.ones((3, 4), bool)
    mask[1, 2] = False
    assert np.isfinite(dx[mask]).all()
    assert np.isnan(dv[2]) and np.isfinite(dv[[0, 1, 3]]).all() and np.isfinite(db).all()


@pytest.mark.parametrize("name", BACKENDS)
def test_constant_lo_must_be_a_bool(name):
    k = kernels.load(name)
    args = eval_data(np.random.default_rng(0), (2, 3, 4), np.float32)
    out = alloc_outputs("evonorm_b0_backward", np.float32, N=2, C=3, S=4)
    for bad in (1, "yes", None):
        with pytest.raises(TypeError, match="constant_lo must be a bool"):
            k.evonorm_b0_backward(*out, *args, constant_lo=bad)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_functional_eval_backward_is_one_call(name, dtype, monkeypatch):
    """F.evonorm_b0's eval backward (training=False, running_var) makes one kernel call, evonorm_b0_backward with
    constant_lo=True, on the backend asked for; its gradients are that call's outputs."""
    import minigrad as mg
    import minigrad.nn.functional as F

    rng = np.random.default_rng(5)
    x0, dy = rng.standard_normal((4, 3, 5, 2)).astype(dtype), rng.standard_normal((4, 3, 5, 2)).astype(dtype)
    ts = [mg.Tensor(a, requires_grad=True) for a in (x0, *rng.standard_normal((3, 3)).astype(dtype))]
    running_var = mg.Tensor((1 + rng.random(3)).astype(dtype))
    calls, registry = [], kernels.kernels

    class Recorder:
        def __getattr__(self, kernel):
            backend = registry()

            def call(*args, **options):
                calls.append((kernel, backend.name, options))
                return getattr(backend, kernel)(*args, **options)
            return call
    with mg.using_backend(name):
        y = F.evonorm_b0(ts[0], ts[1], running_var, ts[2], ts[3], training=False)
        node = y._ctx
        monkeypatch.setattr(kernels, "kernels", Recorder)
        y.backward(mg.Tensor(dy))
    assert calls == [("evonorm_b0_backward", name, {"constant_lo": True})]
    monkeypatch.undo()
    want = fused(kernels.load(name), (dy.reshape(4, 3, 10), x0.reshape(4, 3, 10), ts[1].data, ts[2].data,
                                      node.lo.reshape(4, 3), node.hi.reshape(4, 3), node.imean, node.irstd,
                                      node.mean, node.rstd))
    for what, t, w in zip(NAMES, ts, want):
        assert t.grad.data.reshape(w.shape).tobytes() == w.tobytes(), f"{name}: {what}"
