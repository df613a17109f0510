"""The normalization family beyond PyTorch (Batch Renorm, ghost batch norm, FRN + TLU, EvoNorm-B0/S0) on every
backend, in float32 and float64, against the float64 NumPy reference written from the papers' equations
(tests/norm_family_reference.py): forward values, gradients against the reference's numeric gradients, gradcheck in
float64, and the papers' limiting cases. PyTorch has none of these methods; where a method is a composition of
torch ops (what a PyTorch user writes today), it is compared with that too, and so is the reference itself.
"""
import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
import norm_family_reference as ref
from conftest import BACKENDS, DTYPES
from minigrad import nn

torch = pytest.importorskip("torch")
TF = torch.nn.functional

VALUE_TOL = {np.float32: 1e-5, np.float64: 1e-11}
GRAD_TOL = {np.float32: 1e-4, np.float64: 1e-6}  # against float64 central differences (h = 1e-6)
EPS = 1e-5


@pytest.fixture(params=BACKENDS)
def backend(request):
    with mg.using_backend(request.param):
        yield request.param


def close(got, want, tol, what):
    """Relative, with values near zero judged on the array's scale."""
    want = np.asarray(want, np.float64)
    scale = max(float(np.max(np.abs(want), initial=0.0)), 1.0)
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=tol, atol=tol * scale, err_msg=what)


def data(shape, seed=0, loc=0.5, scale=2.0):
    return loc + scale * np.random.default_rng(seed).standard_normal(shape)


def tensors(dtype, *arrays):
    """float arrays -> Tensors of ``dtype`` requiring grad, and their values as float64 (what the reference sees)."""
    ts = [mg.Tensor(np.asarray(a).astype(dtype), requires_grad=True) for a in arrays]
    return ts, [t.data.astype(np.float64) for t in ts]


def check_against_reference(out, ts, ref_fn, ref_arrays, dy, dtype, what):
    """out = minigrad's output (backward already run with dy); compare values and every input's gradient with the
    reference and its numeric gradients."""
    close(out.numpy(), ref_fn(*ref_arrays), VALUE_TOL[dtype], f"{what}: forward")
    for i, (t, g) in enumerate(zip(ts, ref.numeric_grads(ref_fn, ref_arrays, dy))):
        assert t.grad is not None and t.grad.dtype == dtype, f"{what}: input {i} has no {dtype} gradient"
        close(t.grad.numpy(), g, GRAD_TOL[dtype], f"{what}: gradient of input {i}")


def affine(c, seed=3):
    rng = np.random.default_rng(seed)
    return 1 + 0.3 * rng.standard_normal(c), 0.2 * rng.standard_normal(c)


# ------------------------------------------------------------------ Batch Renormalization

BRN_SHAPES = [(6, 3), (4, 3, 5), (3, 4, 2, 3), (2, 2, 2, 2, 3)]


def brn_running(c):
    """Running statistics far enough from the batch's that some channels clip r and d and some do not."""
    rm = np.array([0.4, -3.0, 0.6, 5.0][:c] + [0.5] * max(c - 4, 0))
    rv = np.array([3.5, 0.2, 4.5, 40.0][:c] + [4.0] * max(c - 4, 0))
    return rm, rv


@pytest.mark.parametrize("shape", BRN_SHAPES, ids=["x".join(map(str, s)) for s in BRN_SHAPES])
@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_renorm_matches_reference(backend, dtype, shape):
    c = shape[1]
    w, b = affine(c)
    (x, wt, bt), (x64, w64, b64) = tensors(dtype, data(shape), w, b)
    rm0, rv0 = brn_running(c)
    rm, rv = mg.Tensor(rm0.astype(dtype)), mg.Tensor(rv0.astype(dtype))
    r_max, d_max, momentum = 1.5, 0.5, 0.2
    y = F.batch_renorm(x, rm, rv, wt, bt, training=True, momentum=momentum, eps=EPS, r_max=r_max, d_max=d_max)
    dy = np.random.default_rng(1).standard_normal(shape)
    y.backward(dy.astype(dtype))
    rm64, rv64 = rm0.astype(dtype).astype(np.float64), rv0.astype(dtype).astype(np.float64)
    _, r, d, new_rm, new_rv = ref.batch_renorm(x64, rm64, rv64, w64, b64, EPS, r_max, d_max, momentum)
    assert 1 / r_max in r or r_max in r, "the case must clip r somewhere"
    assert np.any(np.abs(d) == d_max) and np.any(np.abs(d) < d_max), "the case must clip d in some channels only"

    def f(x_, w_, b_):  # r and d held constant: the paper's stop_gradient
        return ref.batch_renorm(x_, rm64, rv64, w_, b_, EPS, r_max, d_max, momentum, r=r, d=d)[0]

    check_against_reference(y, [x, wt, bt], f, [x64, w64, b64], dy, dtype, f"batch_renorm {backend}")
    close(rm.numpy(), new_rm, VALUE_TOL[dtype], "running_mean")
    close(rv.numpy(), new_rv, VALUE_TOL[dtype], "running_var")


def test_batch_renorm_reference_matches_torch_composition():
    """The reference against what a PyTorch user writes: batch norm with weight*r and bias + weight*d, r and d
    detached, the running statistics updated by torch's batch norm."""
    x = data((5, 4, 3, 2))
    w, b = affine(4)
    rm0, rv0 = brn_running(4)
    y, r, d, new_rm, new_rv = ref.batch_renorm(x, rm0, rv0, w, b, EPS, 1.5, 0.5, 0.1)
    tx, tw, tb = (torch.tensor(a) for a in (x, w, b))
    trm, trv = torch.tensor(rm0), torch.tensor(rv0)
    mu, var = tx.mean((0, 2, 3)), tx.var((0, 2, 3), unbiased=False)
    sigma = (trv + EPS).sqrt()
    tr = ((var + EPS).sqrt() / sigma).clamp(1 / 1.5, 1.5)
    td = ((mu - trm) / sigma).clamp(-0.5, 0.5)
    ty = TF.batch_norm(tx, trm, trv, tw * tr, tb + tw * td, training=True, momentum=0.1, eps=EPS)
    np.testing.assert_allclose(y, ty.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(r, tr.numpy(), rtol=1e-14)
    np.testing.assert_allclose(new_rm, trm.numpy(), rtol=1e-14)
    np.testing.assert_allclose(new_rv, trv.numpy(), rtol=1e-14)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_renorm_matches_torch_composition(backend, dtype):
    x0 = data((4, 3, 5))
    w, b = affine(3)
    rm0, rv0 = brn_running(3)
    (x, wt, bt), (x64, w64, b64) = tensors(dtype, x0, w, b)
    rm, rv = mg.Tensor(rm0.astype(dtype)), mg.Tensor(rv0.astype(dtype))
    y = F.batch_renorm(x, rm, rv, wt, bt, True, 0.1, EPS, 1.5, 0.5)
    dy = np.random.default_rng(2).standard_normal(x0.shape)
    y.backward(dy.astype(dtype))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x64, w64, b64))
    trm, trv = (torch.tensor(a.astype(dtype).astype(np.float64)) for a in (rm0, rv0))
    with torch.no_grad():
        sigma = (trv + EPS).sqrt()
        tr = ((tx.var((0, 2), unbiased=False) + EPS).sqrt() / sigma).clamp(1 / 1.5, 1.5)
        td = ((tx.mean((0, 2)) - trm) / sigma).clamp(-0.5, 0.5)
    ty = TF.batch_norm(tx, trm, trv, tw * tr, tb + tw * td, training=True, momentum=0.1, eps=EPS)
    ty.backward(torch.tensor(dy))
    tol = VALUE_TOL[dtype] * 10
    for got, want, what in [(y, ty, "y"), (x.grad, tx.grad, "dx"), (wt.grad, tw.grad, "dweight"),
                            (bt.grad, tb.grad, "dbias"), (rm, trm, "running_mean"), (rv, trv, "running_var")]:
        close(got.numpy(), want.detach().numpy(), tol, what)


def test_batch_renorm_gradcheck_float64(backend):
    """Every channel clips r and d (running statistics far from the batch's), so r and d are locally constant
    and the finite differences see the same function as the stop-gradient backward."""
    x0 = data((3, 2, 4))
    w, b = affine(2)
    x, wt, bt = (mg.Tensor(a, requires_grad=True) for a in (x0, w, b))

    def fn(x_, w_, b_):
        rm, rv = mg.Tensor(np.full(2, -50.0)), mg.Tensor(np.full(2, 100.0))
        return F.batch_renorm(x_, rm, rv, w_, b_, True, 0.1, EPS, 2.0, 1.0)

    assert mg.gradcheck(fn, [x, wt, bt], eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 2, 5)], ids=["8x3", "4x3x2x5"])
def test_batch_renorm_with_r_max_1_d_max_0_is_batch_norm(backend, dtype, shape):
    """The paper's limit: r = 1 and d = 0 give batch norm (values, gradients, running statistics)."""
    x0 = data(shape)
    w, b = affine(shape[1])
    rm0, rv0 = brn_running(shape[1])
    outs = []
    for fn in (lambda x, rm, rv, w_, b_: F.batch_renorm(x, rm, rv, w_, b_, True, 0.1, EPS, 1.0, 0.0),
               lambda x, rm, rv, w_, b_: F.batch_norm(x, rm, rv, w_, b_, True, 0.1, EPS)):
        (x, wt, bt), _ = tensors(dtype, x0, w, b)
        rm, rv = mg.Tensor(rm0.astype(dtype)), mg.Tensor(rv0.astype(dtype))
        y = fn(x, rm, rv, wt, bt)
        y.backward(np.random.default_rng(4).standard_normal(shape).astype(dtype))
        outs.append([y.numpy(), x.grad.numpy(), wt.grad.numpy(), bt.grad.numpy(), rm.numpy(), rv.numpy()])
    for name, got, want in zip(["y", "dx", "dweight", "dbias", "running_mean", "running_var"], *outs):
        close(got, want, VALUE_TOL[dtype] * 10, f"batch_renorm(r_max=1, d_max=0) vs batch_norm: {name}")


def test_batch_renorm_eval_is_batch_norm_eval(backend):
    x0 = data((4, 3, 2, 2))
    w, b = affine(3)
    rm0, rv0 = brn_running(3)
    args = lambda: (mg.Tensor(rm0), mg.Tensor(rv0), mg.Tensor(w), mg.Tensor(b))  # noqa: E731
    got = F.batch_renorm(mg.Tensor(x0), *args(), training=False).numpy()
    want = F.batch_norm(mg.Tensor(x0), *args(), training=False).numpy()
    np.testing.assert_array_equal(got, want)


def test_batch_renorm_module_warmup_schedule():
    m = nn.BatchRenorm2d(3, r_max=3.0, d_max=5.0, warmup_steps=4)
    bounds = [m.clip_bounds(t) for t in range(10)]
    assert bounds[:4] == [(1.0, 0.0)] * 4  # the first warmup_steps updates are batch norm
    assert bounds[4] == (1.5, 1.25) and bounds[5] == (2.0, 2.5) and bounds[6] == (2.5, 3.75)
    assert bounds[7:] == [(3.0, 5.0)] * 3  # open after as many steps again
    assert nn.BatchRenorm2d(3).clip_bounds(0) == (3.0, 5.0)  # no warmup: open from the first step


def test_batch_renorm_module_trains_as_batch_norm_during_warmup_then_renormalizes(backend):
    rng = np.random.default_rng(5)
    brn, bn = nn.BatchRenorm2d(3, warmup_steps=2, dtype=np.float64), nn.BatchNorm2d(3, dtype=np.float64)
    for step in range(4):
        x = mg.Tensor(rng.standard_normal((4, 3, 2, 2)) * 3 + 2)
        before = (brn.running_mean.numpy().copy(), brn.running_var.numpy().copy())
        y_brn, y_bn = brn(x).numpy(), bn(x).numpy()
        if step < 2:
            np.testing.assert_allclose(y_brn, y_bn, rtol=1e-10, atol=1e-10)
        else:  # the clips open at step 2 (bounds (2, 2.5)), then (3, 5): the output is renormalized
            r_max, d_max = brn.clip_bounds(step)
            want = ref.batch_renorm(x.numpy(), *before, np.ones(3), np.zeros(3), 1e-5, r_max, d_max, 0.1)[0]
            np.testing.assert_allclose(y_brn, want, rtol=1e-10, atol=1e-10)
            assert not np.allclose(y_brn, y_bn, atol=1e-3)
        np.testing.assert_allclose(brn.running_mean.numpy(), bn.running_mean.numpy(), rtol=1e-12)
    assert int(brn.num_batches_tracked.data) == 4
    brn.eval()
    x = mg.Tensor(rng.standard_normal((2, 3, 2, 2)))
    np.testing.assert_allclose(brn(x).numpy(), bn.eval()(x).numpy(), rtol=1e-12)
    assert set(brn.state_dict()) == {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}


def test_batch_renorm_bad_arguments():
    x = mg.randn(4, 3)
    rm, rv = mg.zeros(3), mg.ones(3)
    with pytest.raises(ValueError, match="batch_renorm: running_mean and running_var are required"):
        F.batch_renorm(x, None, rv, training=True)
    with pytest.raises(ValueError, match="batch_renorm: r_max must be a finite number >= 1"):
        F.batch_renorm(x, rm, rv, training=True, r_max=0.5)
    with pytest.raises(ValueError, match="batch_renorm: d_max must be a finite number >= 0"):
        F.batch_renorm(x, rm, rv, training=True, d_max=-1)
    with pytest.raises(ValueError, match="batch_renorm: eps must be"):
        F.batch_renorm(x, rm, rv, eps=-1.0)  # eps=0 is accepted in eval, as PyTorch's batch norm
    with pytest.raises(ValueError, match="batch_renorm eps must be positive during training"):
        F.batch_renorm(x, rm, rv, training=True, eps=0.0)
    with pytest.raises(ValueError, match="batch_renorm: momentum must be"):
        F.batch_renorm(x, rm, rv, training=True, momentum=2.0)
    with pytest.raises(ValueError, match="batch_renorm: expected more than 1 value per channel"):
        F.batch_renorm(mg.randn(1, 3), rm, rv, training=True)
    with pytest.raises(ValueError, match="BatchRenorm2d: warmup_steps must be an int >= 0"):
        nn.BatchRenorm2d(3, warmup_steps=-1)
    with pytest.raises(ValueError, match="BatchRenorm1d: r_max must be"):
        nn.BatchRenorm1d(3, r_max=float("inf"))
    with pytest.raises(ValueError, match="BatchRenorm2d: expected 4D input"):
        nn.BatchRenorm2d(3)(x)


# ------------------------------------------------------------------ ghost batch norm

GHOST_CASES = [((8, 3, 5), 3), ((10, 2), 4), ((9, 3, 2, 2), 3), ((6, 2, 3), 6), ((8, 3, 3, 3), 3), ((7, 2, 11), 5),
               ((12, 4, 16), 4)]


@pytest.mark.parametrize("shape,vbs", GHOST_CASES, ids=[f"{'x'.join(map(str, s))}-v{v}" for s, v in GHOST_CASES])
@pytest.mark.parametrize("dtype", DTYPES)
def test_ghost_batch_norm_matches_reference(backend, dtype, shape, vbs):
    c = shape[1]
    w, b = affine(c)
    (x, wt, bt), (x64, w64, b64) = tensors(dtype, data(shape), w, b)
    rm, rv = mg.Tensor(np.full(c, 0.3, dtype)), mg.Tensor(np.full(c, 2.0, dtype))
    y = F.batch_norm(x, rm, rv, wt, bt, True, 0.25, EPS, virtual_batch_size=vbs)
    dy = np.random.default_rng(1).standard_normal(shape)
    y.backward(dy.astype(dtype))
    check_against_reference(y, [x, wt, bt], lambda *a: ref.ghost_batch_norm(a[0], vbs, a[1], a[2], EPS)[0],
                            [x64, w64, b64], dy, dtype, f"ghost batch norm {backend}")
    _, mean, uvar = ref.ghost_batch_norm(x64, vbs, w64, b64, EPS)
    close(rm.numpy(), 0.75 * np.float64(dtype(0.3)) + 0.25 * mean, VALUE_TOL[dtype], "running_mean")
    close(rv.numpy(), 0.75 * 2.0 + 0.25 * uvar, VALUE_TOL[dtype], "running_var")


def test_ghost_batch_norm_last_chunk_of_one_sample_is_an_error():
    x = mg.randn(7, 3, 4)
    with pytest.raises(ValueError, match="batch_norm: virtual_batch_size=3 leaves a last chunk of 1 sample"):
        F.batch_norm(x, None, None, training=True, virtual_batch_size=3)
    F.batch_norm(x, None, None, training=True, virtual_batch_size=5)  # chunks of 5 and 2


@pytest.mark.parametrize("dtype", DTYPES)
def test_ghost_batch_norm_matches_torch_chunks(backend, dtype):
    """What a PyTorch user writes: batch norm on each chunk of x.split(v), concatenated."""
    x0 = data((8, 3, 4))
    w, b = affine(3)
    (x, wt, bt), (x64, w64, b64) = tensors(dtype, x0, w, b)
    y = F.batch_norm(x, None, None, wt, bt, True, virtual_batch_size=3)  # chunks of 3, 3 and 2
    dy = np.random.default_rng(6).standard_normal(x0.shape)
    y.backward(dy.astype(dtype))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x64, w64, b64))
    ty = torch.cat([TF.batch_norm(chunk, None, None, tw, tb, training=True, eps=EPS) for chunk in tx.split(3)])
    ty.backward(torch.tensor(dy))
    for got, want, what in [(y, ty, "y"), (x.grad, tx.grad, "dx"), (wt.grad, tw.grad, "dweight"),
                            (bt.grad, tb.grad, "dbias")]:
        close(got.numpy(), want.detach().numpy(), VALUE_TOL[dtype] * 10, what)


@pytest.mark.parametrize("dtype", DTYPES)
def test_ghost_batch_norm_with_virtual_batch_of_the_whole_batch_is_batch_norm(backend, dtype):
    x0 = data((6, 3, 2, 2))
    w, b = affine(3)
    outs = []
    for vbs in (None, 6, 100):
        (x, wt, bt), _ = tensors(dtype, x0, w, b)
        rm, rv = mg.Tensor(np.zeros(3, dtype)), mg.Tensor(np.ones(3, dtype))
        y = F.batch_norm(x, rm, rv, wt, bt, True, 0.1, EPS, virtual_batch_size=vbs)
        y.backward(np.random.default_rng(4).standard_normal(x0.shape).astype(dtype))
        outs.append([a.numpy() for a in (y, x.grad, wt.grad, bt.grad, rm, rv)])
    for other in outs[1:]:
        for got, want in zip(other, outs[0]):
            np.testing.assert_array_equal(got, want)


def test_ghost_batch_norm_chunks_are_independent(backend):
    """A chunk's output depends on its own samples only (the chunks are contiguous)."""
    x0 = data((8, 2, 3))
    y = F.batch_norm(mg.Tensor(x0), None, None, training=True, virtual_batch_size=4).numpy()
    x1 = x0.copy()
    x1[4:] = data((4, 2, 3), seed=9)
    y1 = F.batch_norm(mg.Tensor(x1), None, None, training=True, virtual_batch_size=4).numpy()
    np.testing.assert_array_equal(y[:4], y1[:4])
    np.testing.assert_allclose(y[:4], ref.batch_norm(x0[:4], np.ones(2), np.zeros(2), EPS), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [(5, 2, 3), (5, 2, 9)])
def test_ghost_batch_norm_gradcheck_float64(backend, shape):
    x0 = data(shape)
    w, b = affine(2)
    x, wt, bt = (mg.Tensor(a, requires_grad=True) for a in (x0, w, b))
    assert mg.gradcheck(lambda x_, w_, b_: F.batch_norm(x_, None, None, w_, b_, True, virtual_batch_size=3),
                        [x, wt, bt], eps=1e-6, atol=1e-6, rtol=1e-4)


def test_ghost_batch_norm_module_trains_per_chunk_and_evaluates_with_running_stats(backend):
    x0 = data((8, 3, 2, 2))
    m = nn.BatchNorm2d(3, momentum=0.5, dtype=np.float64, virtual_batch_size=4)
    y = m(mg.Tensor(x0)).numpy()
    y_ref, mean, uvar = ref.ghost_batch_norm(x0, 4, np.ones(3), np.zeros(3), 1e-5)
    np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(m.running_mean.numpy(), 0.5 * mean, rtol=1e-12)
    np.testing.assert_allclose(m.running_var.numpy(), 0.5 + 0.5 * uvar, rtol=1e-12)
    m.eval()
    plain = nn.BatchNorm2d(3, dtype=np.float64).eval()
    plain.load_state_dict(m.state_dict())
    np.testing.assert_array_equal(m(mg.Tensor(x0)).numpy(), plain(mg.Tensor(x0)).numpy())
    assert "virtual_batch_size=4" in repr(m)


def test_ghost_batch_norm_bad_arguments():
    for bad in (1, 0, 2.5, True, "4"):
        with pytest.raises(ValueError, match="batch_norm: virtual_batch_size must be None or an int >= 2"):
            F.batch_norm(mg.randn(4, 3), None, None, training=True, virtual_batch_size=bad)
        with pytest.raises(ValueError, match="BatchNorm1d: virtual_batch_size must be None or an int >= 2"):
            nn.BatchNorm1d(3, virtual_batch_size=bad)


# ------------------------------------------------------------------ Filter Response Normalization + TLU

FRN_SHAPES = [(2, 3, 4, 5), (3, 2, 1, 1), (1, 4, 7), (2, 2, 3, 2, 2)]


@pytest.mark.parametrize("learned", [False, True], ids=["eps", "learned_eps"])
@pytest.mark.parametrize("shape", FRN_SHAPES, ids=["x".join(map(str, s)) for s in FRN_SHAPES])
@pytest.mark.parametrize("dtype", DTYPES)
def test_filter_response_norm_and_tlu_match_reference(backend, dtype, shape, learned):
    c = shape[1]
    w, b = affine(c)
    tau = 0.3 * np.random.default_rng(7).standard_normal(c)
    eps0 = np.array([-0.05]) if learned else 1e-6  # a negative learned eps: |eps| is used
    arrays = [data(shape, loc=0.3), w, b, tau] + ([eps0] if learned else [])
    ts, a64 = tensors(dtype, *arrays)
    eps = ts[4] if learned else eps0
    y = F.tlu(F.filter_response_norm(ts[0], ts[1], ts[2], eps), ts[3])
    dy = np.random.default_rng(1).standard_normal(shape)
    y.backward(dy.astype(dtype))

    def f(x_, w_, b_, tau_, *e):
        return ref.tlu(ref.filter_response_norm(x_, w_, b_, e[0] if e else eps0), tau_)

    check_against_reference(y, ts, f, a64, dy, dtype, f"frn+tlu {backend}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_filter_response_norm_and_tlu_match_torch_composition(backend, dtype):
    """The paper's Algorithm 1 in torch ops (and the reference against it)."""
    x0 = data((3, 4, 5, 2))
    w, b = affine(4)
    tau, eps0 = 0.2 * np.random.default_rng(8).standard_normal(4), np.array([0.01])
    ts, a64 = tensors(dtype, x0, w, b, tau, eps0)
    y = F.tlu(F.filter_response_norm(ts[0], ts[1], ts[2], ts[4]), ts[3])
    dy = np.random.default_rng(2).standard_normal(x0.shape)
    y.backward(dy.astype(dtype))
    tx, tw, tb, tt, te = (torch.tensor(a, requires_grad=True) for a in a64)
    nu2 = tx.pow(2).mean(dim=(2, 3), keepdim=True)
    ty = torch.maximum(tw.view(1, -1, 1, 1) * tx * torch.rsqrt(nu2 + te.abs()) + tb.view(1, -1, 1, 1),
                       tt.view(1, -1, 1, 1))
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(ref.tlu(ref.filter_response_norm(*a64[:3], a64[4]), a64[3]), ty.detach().numpy(),
                               rtol=1e-13, atol=1e-13)
    for got, want in zip([y] + [t.grad for t in ts], [ty, tx.grad, tw.grad, tb.grad, tt.grad, te.grad]):
        close(got.numpy(), want.detach().numpy(), VALUE_TOL[dtype] * 10, "frn+tlu vs torch")


def test_filter_response_norm_of_one_sample_does_not_depend_on_the_batch(backend):
    x0 = data((5, 3, 4, 4))
    w, b = affine(3)
    args = (mg.Tensor(w), mg.Tensor(b))
    whole = F.filter_response_norm(mg.Tensor(x0), *args).numpy()
    x1 = x0.copy()
    x1[1:] = 100 * data((4, 3, 4, 4), seed=11)
    changed = F.filter_response_norm(mg.Tensor(x1), *args).numpy()
    alone = F.filter_response_norm(mg.Tensor(x0[:1]), *args).numpy()
    np.testing.assert_array_equal(whole[:1], alone)
    np.testing.assert_array_equal(whole[:1], changed[:1])


def test_filter_response_norm_gradcheck_float64(backend):
    x0 = data((2, 3, 2, 3), loc=0.1)
    w, b = affine(3)
    ts = [mg.Tensor(a, requires_grad=True) for a in (x0, w, b, np.array([0.2]), 0.1 * np.arange(3.0))]
    assert mg.gradcheck(lambda x, w_, b_, e, t: F.tlu(F.filter_response_norm(x, w_, b_, e), t), ts,
                        eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("learned", [False, True], ids=["eps", "learned_eps"])
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "unfused"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_filter_response_norm_without_weight_or_bias_is_ones_and_zeros(backend, dtype, fused, learned):
    """weight None is weight = ones and bias None is bias = zeros, bit for bit, for y and the gradients of every
    other input (FRN + TLU fused and FRN then TLU): the backward gathers the parameters' per-channel sums of
    whichever of weight, bias, tau are present."""
    shape = (3, 5, 4, 3)
    c = shape[1]
    w, b = affine(c)
    tau = 0.3 * np.random.default_rng(7).standard_normal(c)
    x0, dy = data(shape, loc=0.3).astype(dtype), np.random.default_rng(1).standard_normal(shape).astype(dtype)

    def run(w_, b_):
        ts = {k: mg.Tensor(np.asarray(a, dtype), requires_grad=True) for k, a in
              (("x", x0), ("w", w_), ("b", b_), ("tau", tau), ("eps", [-0.05])) if a is not None}
        e = ts["eps"] if learned else 1e-3
        if fused:
            y = F.filter_response_norm_tlu(ts["x"], ts.get("w"), ts.get("b"), ts["tau"], e)
        else:
            y = F.tlu(F.filter_response_norm(ts["x"], ts.get("w"), ts.get("b"), e), ts["tau"])
        y.backward(dy)
        return {"y": y.numpy(), **{k: t.grad.numpy() for k, t in ts.items() if learned or k != "eps"}}

    full = {"weight": run(w, b), "bias": run(w, np.zeros(c)), "both": run(np.ones(c), np.zeros(c)),
            "no bias": run(np.ones(c), b)}
    for what, got, want in (("no weight", run(None, b), full["no bias"]), ("no bias", run(w, None), full["bias"]),
                            ("neither", run(None, None), full["both"])):
        assert set(got) <= set(want) and "tau" in got and "x" in got, what
        for k, g in got.items():
            np.testing.assert_array_equal(g, want[k], err_msg=f"{what}: {k}")


def test_filter_response_norm_modules(backend):
    x0 = data((2, 3, 4, 4))
    m, t = nn.FilterResponseNorm2d(3, learnable_eps=True, dtype=np.float64), nn.TLU(3, dtype=np.float64)
    assert set(m.state_dict()) == {"weight", "bias", "eps"} and set(t.state_dict()) == {"tau"}
    assert float(m.eps.data[0]) == 1e-6
    x = mg.Tensor(x0, requires_grad=True)
    y = t(m(x))
    np.testing.assert_allclose(y.numpy(), np.maximum(ref.filter_response_norm(x0, np.ones(3), np.zeros(3), 1e-6), 0),
                               rtol=1e-12, atol=1e-12)
    y.backward(np.ones(x0.shape))
    assert m.eps.grad is not None and t.tau.grad is not None
    assert "eps" not in nn.FilterResponseNorm2d(3).state_dict()
    with pytest.raises(ValueError, match="FilterResponseNorm2d: expected 4D input"):
        m(mg.randn(2, 3, 4))


def test_filter_response_norm_bad_arguments():
    x = mg.randn(2, 3, 4)
    with pytest.raises(ValueError, match="filter_response_norm: input must have at least 3 dims"):
        F.filter_response_norm(mg.randn(2, 3))
    with pytest.raises(ValueError, match="filter_response_norm: weight must have shape"):
        F.filter_response_norm(x, mg.ones(4))
    with pytest.raises(ValueError, match="filter_response_norm: eps must be"):
        F.filter_response_norm(x, eps=-1.0)  # eps=0 is accepted (tests/test_norm_eps0.py)
    with pytest.raises(ValueError, match=r"filter_response_norm: eps must have shape \(1,\)"):
        F.filter_response_norm(x, eps=mg.ones(3))
    with pytest.raises(TypeError, match="filter_response_norm: eps has dtype float64"):
        F.filter_response_norm(x, eps=mg.Tensor(np.ones(1)))
    with pytest.raises(TypeError, match="tlu: tau must be a minigrad.Tensor"):
        F.tlu(x, None)
    with pytest.raises(ValueError, match="tlu: tau must have shape"):
        F.tlu(x, mg.zeros(4))
    with pytest.raises(ValueError, match="FilterResponseNorm2d: num_features must be a positive integer"):
        nn.FilterResponseNorm2d(0)


# ------------------------------------------------------------------ EvoNorm

EVO_SHAPES = [(3, 4, 2, 3), (2, 6, 5), (4, 2, 1, 2)]


def evo_params(c, seed=12):
    rng = np.random.default_rng(seed)
    w, b = affine(c, seed)
    return rng.standard_normal(c), w, b


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("shape", EVO_SHAPES, ids=["x".join(map(str, s)) for s in EVO_SHAPES])
@pytest.mark.parametrize("dtype", DTYPES)
def test_evonorm_b0_matches_reference(backend, dtype, shape, training):
    c = shape[1]
    v, w, b = evo_params(c)
    (x, vt, wt, bt), (x64, v64, w64, b64) = tensors(dtype, data(shape), v, w, b)
    rv0 = np.linspace(0.5, 6.0, c).astype(dtype)
    rv = mg.Tensor(rv0.copy())
    y = F.evonorm_b0(x, vt, rv, wt, bt, training=training, momentum=0.3, eps=EPS)
    dy = np.random.default_rng(1).standard_normal(shape)
    y.backward(dy.astype(dtype))
    batch_var = None if training else rv0.astype(np.float64)
    check_against_reference(y, [x, vt, wt, bt], lambda *a: ref.evonorm_b0(*a, EPS, batch_var), [x64, v64, w64, b64],
                            dy, dtype, f"evonorm_b0 {backend}")
    m = x64.size // c
    want_rv = 0.7 * rv0.astype(np.float64) + 0.3 * x64.var(axis=(0,) + tuple(range(2, x64.ndim))) * m / (m - 1)
    close(rv.numpy(), want_rv if training else rv0, VALUE_TOL[dtype], "running_var")


@pytest.mark.parametrize("dtype", DTYPES)
def test_evonorm_b0_batch_statistics_from_instance_ones_on_large_mean(backend, dtype):
    """The batch variance is combined from the instance statistics (no pass of its own): exact on data whose mean is
    large against its spread, and the running variance gets the batch's unbiased variance."""
    shape = (4, 3, 5, 3)
    x0 = data(shape) + 300.0
    v, w, b = evo_params(3)
    (x, vt, wt, bt), (x64, v64, w64, b64) = tensors(dtype, x0, v, w, b)
    rv = mg.Tensor(np.ones(3, dtype))
    y = F.evonorm_b0(x, vt, rv, wt, bt, training=True, momentum=1.0, eps=EPS)
    dy = np.random.default_rng(3).standard_normal(shape)
    y.backward(dy.astype(dtype))
    check_against_reference(y, [x, vt, wt, bt], lambda *a: ref.evonorm_b0(*a, EPS), [x64, v64, w64, b64], dy, dtype,
                            f"evonorm_b0 large mean {backend}")
    xr = x.numpy().astype(np.float64)  # NOTE: the rounded input, so float32 is judged on its own data
    close(rv.numpy(), xr.var(axis=(0, 2, 3), ddof=1), VALUE_TOL[dtype], "running_var")


@pytest.mark.parametrize("groups", [1, 2, 4])
@pytest.mark.parametrize("dtype", DTYPES)
def test_evonorm_s0_matches_reference(backend, dtype, groups):
    shape = (3, 4, 2, 3)
    v, w, b = evo_params(4)
    (x, vt, wt, bt), a64 = tensors(dtype, data(shape), v, w, b)
    y = F.evonorm_s0(x, vt, groups, wt, bt, eps=EPS)
    dy = np.random.default_rng(1).standard_normal(shape)
    y.backward(dy.astype(dtype))
    check_against_reference(y, [x, vt, wt, bt], lambda x_, v_, w_, b_: ref.evonorm_s0(x_, v_, w_, b_, groups, EPS),
                            a64, dy, dtype, f"evonorm_s0 {backend}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_evonorm_matches_torch_composition(backend, dtype):
    """EvoNorm-B0 and -S0 in torch ops (and the reference against them)."""
    x0 = data((3, 4, 3, 2))
    v, w, b = evo_params(4)
    dy = np.random.default_rng(2).standard_normal(x0.shape)
    for version in ("B0", "S0"):
        (x, vt, wt, bt), a64 = tensors(dtype, x0, v, w, b)
        if version == "B0":
            y = F.evonorm_b0(x, vt, None, wt, bt, training=True, eps=EPS)
        else:
            y = F.evonorm_s0(x, vt, 2, wt, bt, eps=EPS)
        y.backward(dy.astype(dtype))
        tx, tv, tw, tb = (torch.tensor(a, requires_grad=True) for a in a64)
        V, W, B = (t.view(1, -1, 1, 1) for t in (tv, tw, tb))
        if version == "B0":
            batch_std = (tx.var(dim=(0, 2, 3), unbiased=False, keepdim=True) + EPS).sqrt()
            inst_std = (tx.var(dim=(2, 3), unbiased=False, keepdim=True) + EPS).sqrt()
            ty = tx / torch.maximum(batch_std, V * tx + inst_std) * W + B
            want = ref.evonorm_b0(*a64, EPS)
        else:
            g = tx.reshape(3, 2, -1)
            std = (g.var(dim=2, unbiased=False, keepdim=True) + EPS).sqrt()
            ty = ((tx * torch.sigmoid(V * tx)).reshape(3, 2, -1) / std).reshape(x0.shape) * W + B
            want = ref.evonorm_s0(*a64, 2, EPS)
        ty.backward(torch.tensor(dy))
        np.testing.assert_allclose(want, ty.detach().numpy(), rtol=1e-13, atol=1e-13)
        for got, t in zip([y, x.grad, vt.grad, wt.grad, bt.grad], [ty, tx.grad, tv.grad, tw.grad, tb.grad]):
            close(got.numpy(), t.detach().numpy(), VALUE_TOL[dtype] * 10, f"evonorm {version} vs torch")


def test_evonorm_b0_running_var_matches_torch_batch_norm(backend):
    x0 = data((4, 3, 2, 2))
    rv = mg.Tensor(np.full(3, 2.0))
    F.evonorm_b0(mg.Tensor(x0), mg.ones(3).double(), rv, training=True, momentum=0.3)
    trv = torch.full((3,), 2.0, dtype=torch.float64)
    TF.batch_norm(torch.tensor(x0), torch.zeros(3, dtype=torch.float64), trv, training=True, momentum=0.3)
    np.testing.assert_allclose(rv.numpy(), trv.numpy(), rtol=1e-14)


def test_evonorm_b0_eval_uses_only_running_statistics(backend):
    """In eval, a sample's output depends on itself and the running variance only, and nothing is updated."""
    x0 = data((5, 4, 3, 3))
    v, w, b = evo_params(4)
    m = nn.EvoNorm2d(4, "B0", dtype=np.float64)
    m.v.data[:], m.weight.data[:], m.bias.data[:] = v, w, b
    m.running_var.data[:] = [0.5, 2.0, 4.0, 9.0]
    m.eval()
    whole = m(mg.Tensor(x0)).numpy()
    x1 = x0.copy()
    x1[1:] = 50 * data((4, 4, 3, 3), seed=13)
    np.testing.assert_array_equal(m(mg.Tensor(x1)).numpy()[:1], whole[:1])
    np.testing.assert_array_equal(m(mg.Tensor(x0[:1])).numpy(), whole[:1])
    np.testing.assert_allclose(whole, ref.evonorm_b0(x0, v, w, b, 1e-5, [0.5, 2.0, 4.0, 9.0]), rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_array_equal(m.running_var.numpy(), [0.5, 2.0, 4.0, 9.0])
    m.running_var.data[:] = 1.0
    assert not np.allclose(m(mg.Tensor(x0)).numpy(), whole)
    m.train()
    y_train = m(mg.Tensor(x0)).numpy()  # the batch's variance in training
    np.testing.assert_allclose(y_train, ref.evonorm_b0(x0, v, w, b, 1e-5), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("version", ["B0", "S0"])
def test_evonorm_gradcheck_float64(backend, version):
    x0 = data((3, 4, 2, 2))
    v, w, b = evo_params(4)
    ts = [mg.Tensor(a, requires_grad=True) for a in (x0, v, w, b)]
    if version == "B0":
        fn = lambda x, v_, w_, b_: F.evonorm_b0(x, v_, None, w_, b_, training=True)  # noqa: E731
    else:
        fn = lambda x, v_, w_, b_: F.evonorm_s0(x, v_, 2, w_, b_)  # noqa: E731
    assert mg.gradcheck(fn, ts, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_evonorm_module(backend):
    s0 = nn.EvoNorm2d(64, "S0")
    assert s0.num_groups == 32 and set(s0.state_dict()) == {"weight", "bias", "v"}
    b0 = nn.EvoNorm2d(3)
    assert b0.version == "B0" and set(b0.state_dict()) == {"weight", "bias", "v", "running_var"}
    x0 = data((2, 64, 3, 3)).astype(np.float32)
    y = s0(mg.Tensor(x0))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), ref.evonorm_s0(x0.astype(np.float64), np.ones(64), np.ones(64),
                                                         np.zeros(64), 32, 1e-5), rtol=1e-5, atol=1e-5)
    s0.eval()
    np.testing.assert_array_equal(s0(mg.Tensor(x0)).numpy(), y.numpy())


def test_evonorm_bad_arguments():
    x = mg.randn(2, 4, 3, 3)
    v = mg.ones(4)
    with pytest.raises(ValueError, match="EvoNorm2d: version must be 'B0' or 'S0'"):
        nn.EvoNorm2d(4, "B1")
    with pytest.raises(ValueError, match="EvoNorm2d: num_groups=32 must divide the number of channels C=4"):
        nn.EvoNorm2d(4, "S0")
    nn.EvoNorm2d(4, "B0")  # B0 has no groups
    with pytest.raises(ValueError, match="evonorm_s0: num_groups=3 must divide"):
        F.evonorm_s0(x, v, 3)
    with pytest.raises(TypeError, match="evonorm_b0: v must be a minigrad.Tensor"):
        F.evonorm_b0(x, None, training=True)
    with pytest.raises(ValueError, match="evonorm_b0: running_var is required when training=False"):
        F.evonorm_b0(x, v)
    with pytest.raises(ValueError, match="evonorm_b0: running_var must have shape"):
        F.evonorm_b0(x, v, mg.ones(3), training=True)
    with pytest.raises(ValueError, match="evonorm_s0: input must have at least 3 dims"):
        F.evonorm_s0(mg.randn(2, 4), v, 2)
    with pytest.raises(ValueError, match="EvoNorm2d: momentum must be"):
        nn.EvoNorm2d(4, momentum=-0.1)



def test_evonorm_input_errors_from_the_array():
    """The functionals read the input's shape, dtype and size from its array once: every rule still raises as
    before, for both versions (a batch of one value per channel in training, parameters of another shape or
    dtype), and an empty input returns an empty output."""
    x = mg.Tensor(np.ones((2, 4, 3, 3), np.float32))
    v = mg.Tensor(np.ones(4, np.float32))
    for call in (lambda x, v, w: F.evonorm_b0(x, v, None, w, training=True), lambda x, v, w: F.evonorm_s0(x, v, 2, w)):
        with pytest.raises(TypeError, match="v has dtype float64 but the input is float32"):
            call(x, mg.Tensor(np.ones(4)), None)
        with pytest.raises(ValueError, match=r"weight must have shape \(4,\) to match the input, got \(3,\)"):
            call(x, v, mg.Tensor(np.ones(3, np.float32)))
        with pytest.raises(TypeError, match="weight has dtype float64 but the input is float32"):
            call(x, v, mg.Tensor(np.ones(4)))
        assert call(mg.Tensor(np.ones((0, 4, 3), np.float32)), v, None).shape == (0, 4, 3)
    with pytest.raises(ValueError, match="evonorm_b0: expected more than 1 value per channel when training"):
        F.evonorm_b0(mg.Tensor(np.ones((1, 4, 1), np.float32)), v, training=True)
    with pytest.raises(TypeError, match="evonorm_b0: running_var has dtype float64"):
        F.evonorm_b0(x, v, mg.Tensor(np.ones(4)), training=True)
    F.evonorm_b0(mg.Tensor(np.ones((1, 4, 1), np.float32)), v, mg.Tensor(np.ones(4, np.float32)), training=False)


# ------------------------------------------------------------------ every method: non-contiguous input, no torch

def test_non_contiguous_input_is_copied_once(backend):
    x0 = data((4, 3, 2, 5))
    xt = np.ascontiguousarray(x0.transpose(3, 2, 1, 0)).transpose(3, 2, 1, 0)  # same values, not C-contiguous
    assert not xt.flags.c_contiguous
    one, zero = mg.ones(3).double(), mg.zeros(3).double()
    cases = [lambda x: F.batch_renorm(x, mg.zeros(3).double(), mg.ones(3).double(), training=True),
             lambda x: F.batch_norm(x, None, None, training=True, virtual_batch_size=2),
             lambda x: F.filter_response_norm(x, one, zero),
             lambda x: F.evonorm_b0(x, one, None, training=True),
             lambda x: F.evonorm_s0(x, one, 3)]
    for fn in cases:
        np.testing.assert_array_equal(fn(mg.Tensor(xt)).numpy(), fn(mg.Tensor(x0)).numpy())


def test_the_family_needs_no_torch_at_import():
    import subprocess
    import sys

    code = ("import sys, minigrad.nn as nn, minigrad.nn.functional as F; nn.EvoNorm2d(4, 'S0', num_groups=2); "
            "assert 'torch' not in sys.modules and 'numba' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
