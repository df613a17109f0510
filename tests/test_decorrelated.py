"""DecorrelatedBatchNorm2d (Huang et al., 2018): group size 1 is BatchNorm2d on every backend; the whitened output
has identity covariance per group; eval uses only the running statistics; float64 gradcheck (also with nearly
repeated eigenvalues); the forward against a float64 NumPy reference written from the paper's equations."""
import numpy as np
import pytest

import minigrad as mg
from conftest import BACKENDS, DTYPES
from minigrad import nn

EPS = 1e-5
TOL = {np.float32: 2e-4, np.float64: 1e-9}


def data(shape, seed=0):
    return 0.5 + 2.0 * np.random.default_rng(seed).standard_normal(shape)


def reference_zca(x, group_size, eps):
    """The paper's equations per group, float64, by the SVD-free route W = U diag(lambda^-1/2) U^T with an
    explicit loop over groups (the last group takes the remainder)."""
    N, C, H, W_ = x.shape
    out = np.empty_like(x, dtype=np.float64)
    for c0 in range(0, C, group_size):
        c1 = min(c0 + group_size, C)
        X = x[:, c0:c1].transpose(1, 0, 2, 3).reshape(c1 - c0, -1).astype(np.float64)
        mu = X.mean(axis=1, keepdims=True)
        sigma = (X - mu) @ (X - mu).T / X.shape[1] + eps * np.eye(c1 - c0)
        lam, D = np.linalg.eigh(sigma)
        Xhat = D @ np.diag(lam ** -0.5) @ D.T @ (X - mu)
        out[:, c0:c1] = Xhat.reshape(c1 - c0, N, H, W_).transpose(1, 0, 2, 3)
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_group_size_1_is_batch_norm(backend, dtype):
    x0, dy = data((4, 3, 5, 2)), data((4, 3, 5, 2), seed=1)
    w, b = data(3, seed=2), data(3, seed=3)
    dbn, bn = nn.DecorrelatedBatchNorm2d(3, group_size=1).to(dtype), nn.BatchNorm2d(3).to(dtype)
    for mod in (dbn, bn):
        mod.weight.data[...], mod.bias.data[...] = w, b
    grads = []
    with mg.using_backend(backend):
        for mod in (dbn, bn):
            x = mg.Tensor(x0.astype(dtype), requires_grad=True)
            for _ in range(2):  # two steps: the running averages compound
                y = mod(x)
            (y * mg.Tensor(dy.astype(dtype))).sum().backward()
            grads.append((y.numpy(), x.grad.numpy(), mod.weight.grad.numpy(), mod.bias.grad.numpy()))
    tol = TOL[dtype]
    for got, want, what in zip(grads[0], grads[1], ("y", "dx", "dweight", "dbias")):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=f"{what} {backend} {dtype}")
    np.testing.assert_allclose(dbn.running_mean.numpy(), bn.running_mean.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(dbn.running_cov.numpy().reshape(3), bn.running_var.numpy(), rtol=tol, atol=tol)
    assert int(dbn.num_batches_tracked.item()) == int(bn.num_batches_tracked.item()) == 2


@pytest.mark.parametrize("C,group_size", [(6, 3), (7, 3), (4, 16)])
def test_whitened_output_has_identity_covariance_per_group(C, group_size):
    rng = np.random.default_rng(0)
    mix = rng.standard_normal((C, C)) + 2 * np.eye(C)  # strongly correlated channels
    x0 = np.einsum("dc,nchw->ndhw", mix, rng.standard_normal((16, C, 4, 4))) + 3.0
    m = nn.DecorrelatedBatchNorm2d(C, group_size=group_size, eps=1e-12).double()
    m.weight.data[...] = rng.standard_normal(C)  # the affine must not matter: undo it below
    m.bias.data[...] = rng.standard_normal(C)
    y = m(mg.Tensor(x0)).numpy()
    xhat = (y - m.bias.numpy()[None, :, None, None]) / m.weight.numpy()[None, :, None, None]
    for c0 in range(0, C, group_size):
        c1 = min(c0 + group_size, C)
        Z = xhat[:, c0:c1].transpose(1, 0, 2, 3).reshape(c1 - c0, -1)
        np.testing.assert_allclose(Z.mean(axis=1), 0, atol=1e-10)
        np.testing.assert_allclose(Z @ Z.T / Z.shape[1], np.eye(c1 - c0), atol=1e-8)
    # across groups the channels stay correlated: the whitening is per group only
    if C > group_size:
        Z = xhat.transpose(1, 0, 2, 3).reshape(C, -1)
        assert np.abs((Z @ Z.T / Z.shape[1])[:group_size, group_size:]).max() > 0.05


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C,group_size", [(6, 3), (5, 2), (3, 16), (16, 16)])
def test_forward_matches_numpy_reference(dtype, C, group_size):
    x0 = data((6, C, 3, 3))
    m = nn.DecorrelatedBatchNorm2d(C, group_size=group_size, eps=EPS).to(dtype)
    y = m(mg.Tensor(x0.astype(dtype))).numpy()
    np.testing.assert_allclose(y, reference_zca(x0.astype(dtype), group_size, EPS), rtol=TOL[dtype],
                               atol=TOL[dtype] * 10)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("C,group_size", [(8, 4), (7, 3)])
@pytest.mark.parametrize("offset,scale", [(1e3, 1.0), (1.0, 1e-3)], ids=["large-mean", "tiny-variance"])
def test_float32_statistics_on_large_mean_and_tiny_variance(backend, C, group_size, offset, scale):
    """The float32 path (float32 passes over x, float64 g x g statistics) against the float64 module on the same
    float32 data: output, the three gradients and the running statistics, with correlated channels on a large
    mean (1e3, std about 1) or a tiny spread (mean 1, std about 1e-3). Both need the data centered before the
    covariance product: E[x x^T] - mu mu^T in float32 loses every digit here."""
    rng = np.random.default_rng(3)
    mix = rng.standard_normal((C, C)) + 2 * np.eye(C)
    x32 = (offset + scale * np.einsum("dc,nchw->ndhw", mix, rng.standard_normal((8, C, 4, 4)))).astype(np.float32)
    dy = rng.standard_normal(x32.shape)
    w, b = 1 + 0.2 * rng.standard_normal(C), 0.1 * rng.standard_normal(C)
    eps = 1e-5 * scale ** 2  # keeps the whitening well away from eps-dominated
    out = {}
    with mg.using_backend(backend):
        for dtype in (np.float32, np.float64):
            m = nn.DecorrelatedBatchNorm2d(C, group_size=group_size, eps=eps).to(dtype)
            m.weight.data[...], m.bias.data[...] = w, b
            x = mg.Tensor(x32.astype(dtype), requires_grad=True)
            y = m(x)
            (y * mg.Tensor(dy.astype(dtype))).sum().backward()
            out[dtype] = [y.numpy(), x.grad.numpy() * scale, m.weight.grad.numpy(), m.bias.grad.numpy(),
                          m.running_mean.numpy(), m.running_cov.numpy() / scale ** 2,
                          m.running_whitening.numpy() * scale]
    for got, want, what in zip(out[np.float32], out[np.float64],
                               ("y", "dx", "dweight", "dbias", "running_mean", "running_cov", "running_whitening")):
        assert got.dtype == np.float32, what
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=2e-3 * np.abs(want).max(), err_msg=what)


def test_running_statistics_are_the_papers_averages():
    x1, x2 = data((8, 4, 3, 3)), data((8, 4, 3, 3), seed=5)
    m = nn.DecorrelatedBatchNorm2d(4, group_size=2, momentum=0.3).double()
    m(mg.Tensor(x1)), m(mg.Tensor(x2))
    W, mu = np.tile(np.eye(2), (2, 1, 1)), np.zeros(4)
    for x in (x1, x2):
        X = x.transpose(1, 0, 2, 3).reshape(4, -1)
        mu = 0.7 * mu + 0.3 * X.mean(axis=1)
        for gi in range(2):
            Xg = X[2 * gi:2 * gi + 2]
            sigma = np.cov(Xg, bias=True) + EPS * np.eye(2)
            lam, D = np.linalg.eigh(sigma)
            W[gi] = 0.7 * W[gi] + 0.3 * D @ np.diag(lam ** -0.5) @ D.T
    np.testing.assert_allclose(m.running_mean.numpy(), mu, rtol=1e-12)
    np.testing.assert_allclose(m.running_whitening.numpy(), W, rtol=1e-10)



@pytest.mark.parametrize("dtype", DTYPES)
def test_cumulative_running_statistics_with_momentum_none(dtype):
    """momentum=None: the running mean, covariance (unbiased) and whitening are the plain averages over the batches
    seen, num_batches_tracked counts them (the count's increment sets the weight 1/count of each update)."""
    xs = [data((6, 4, 3, 3), seed=s).astype(dtype) for s in (1, 2, 3)]
    m = nn.DecorrelatedBatchNorm2d(4, group_size=2, momentum=None).to(dtype)
    for x in xs:
        m(mg.Tensor(x))
    mus, covs, Ws = [], [], []
    for x in xs:
        X = x.astype(np.float64).transpose(1, 0, 2, 3).reshape(4, -1)
        mus.append(X.mean(axis=1))
        cov, W = np.empty((2, 2, 2)), np.empty((2, 2, 2))
        for gi in range(2):
            Xg = X[2 * gi:2 * gi + 2]
            cov[gi] = np.cov(Xg)  # unbiased, as batch norm's running_var
            lam, D = np.linalg.eigh(np.cov(Xg, bias=True) + EPS * np.eye(2))
            W[gi] = D @ np.diag(lam ** -0.5) @ D.T
        covs.append(cov)
        Ws.append(W)
    tol = TOL[dtype]
    assert int(m.num_batches_tracked.item()) == 3
    np.testing.assert_allclose(m.running_mean.numpy(), np.mean(mus, axis=0), rtol=tol, atol=tol)
    np.testing.assert_allclose(m.running_cov.numpy(), np.mean(covs, axis=0), rtol=tol, atol=tol)
    np.testing.assert_allclose(m.running_whitening.numpy(), np.mean(Ws, axis=0), rtol=tol, atol=tol)

def test_eval_uses_only_running_statistics():
    x0 = data((8, 5, 3, 3))
    m = nn.DecorrelatedBatchNorm2d(5, group_size=2).double()
    for seed in range(3):
        m(mg.Tensor(data((8, 5, 3, 3), seed=10 + seed)))
    m.eval()
    state = {k: np.array(v) for k, v in m.state_dict().items()}
    x = mg.Tensor(x0, requires_grad=True)
    y = m(x)
    # the same as applying the running statistics by hand, and one sample alone gives its own rows
    Wfull = np.zeros((6, 6))
    for gi in range(3):
        Wfull[2 * gi:2 * gi + 2, 2 * gi:2 * gi + 2] = state["running_whitening"][gi]
    xc = x0 - state["running_mean"][None, :, None, None]
    want = np.einsum("dc,nchw->ndhw", Wfull[:5, :5], xc) * state["weight"][None, :, None, None] \
        + state["bias"][None, :, None, None]
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(m(mg.Tensor(x0[:1])).numpy(), y.numpy()[:1], rtol=1e-12, atol=1e-12)
    for k, v in m.state_dict().items():  # eval leaves the buffers alone
        np.testing.assert_array_equal(np.asarray(v), state[k], err_msg=k)
    assert mg.gradcheck(lambda a: m(a), [x], atol=1e-7, rtol=1e-5)


def _case_input(case, rng):
    """(x0, C, group size) of a gradcheck case."""
    C, g = (5, 2) if case == "remainder_group" else (3, 3)
    if case == "generic" or case == "remainder_group":
        x0 = data((4, C, 2, 2))
    else:
        # orthonormal-ish rows: sample covariance with all eigenvalues (nearly) equal
        Q, _ = np.linalg.qr(rng.standard_normal((16, 16)))
        rows = Q[:C] - Q[:C].mean(axis=1, keepdims=True)
        rows, _ = np.linalg.qr(rows.T)  # orthonormal and centred: covariance exactly I/16
        X = rows.T * 4.0
        if case == "near_repeated":
            X = X * (1 + 1e-7 * np.arange(C))[:, None]
        x0 = np.ascontiguousarray(X.reshape(C, 4, 2, 2).transpose(1, 0, 2, 3)) + 1.0
        lam = np.linalg.eigvalsh(np.cov(X, bias=True))
        assert np.ptp(lam) < 1e-5  # the case is what it says
    return x0, C, g


CASES = ["generic", "near_repeated", "exactly_repeated", "remainder_group"]


@pytest.mark.parametrize("case", CASES)
def test_gradcheck_float64(case):
    rng = np.random.default_rng(3)
    x0, C, g = _case_input(case, rng)
    x = mg.Tensor(x0, requires_grad=True)
    w = mg.Tensor(rng.standard_normal(C), requires_grad=True)
    dy = mg.Tensor(rng.standard_normal(x0.shape))

    def fn(x_, w_):
        m = nn.DecorrelatedBatchNorm2d(C, group_size=g).double()
        y = m(x_) * w_.reshape((1, C, 1, 1))
        return (y * y * dy).sum()  # nonlinear in y: the gradient through Sigma is exercised

    assert mg.gradcheck(fn, [x, w], eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("case", CASES)
def test_training_gradgradcheck_float64(case):
    """Double backward in training (through the eigendecomposition's backward), also where eigenvalues repeat."""
    rng = np.random.default_rng(4)
    x0, C, g = _case_input(case, rng)
    x = mg.Tensor(x0, requires_grad=True)
    w = mg.Tensor(rng.standard_normal(C), requires_grad=True)
    m = nn.DecorrelatedBatchNorm2d(C, group_size=g).double()
    assert mg.gradgradcheck(lambda x_, w_: (m(x_) * w_.reshape((1, C, 1, 1))) ** 2, [x, w], atol=1e-5, rtol=1e-4)


def test_second_derivative_matches_torch_eigh_composition():
    """ZCA whitening written with torch.linalg.eigh (distinct eigenvalues, where torch's eigh backward is
    defined): the same output, gradient and gradient of the gradient's norm."""
    torch = pytest.importorskip("torch")
    C, g = 4, 2
    x0 = data((5, C, 3, 2), seed=7)
    X = mg.Tensor(x0, requires_grad=True)
    y = nn.DecorrelatedBatchNorm2d(C, group_size=g).double()(X)
    (gx,) = mg.autograd.grad((y ** 3).sum(), X, create_graph=True)
    (hx,) = mg.autograd.grad((gx * gx).sum(), X)
    Xt = torch.tensor(x0, requires_grad=True)
    G = Xt.reshape(5, C // g, g, 6).permute(1, 2, 0, 3).reshape(C // g, g, -1)
    xc = G - G.mean(2, keepdim=True)
    lam, U = torch.linalg.eigh(xc @ xc.transpose(1, 2) / xc.shape[2] + EPS * torch.eye(g, dtype=torch.float64))
    yt = ((U * lam.rsqrt().unsqueeze(1)) @ U.transpose(1, 2) @ xc).reshape(C // g, g, 5, 6).permute(2, 0, 1, 3)
    yt = yt.reshape(x0.shape)
    (gt,) = torch.autograd.grad((yt ** 3).sum(), Xt, create_graph=True)
    (ht,) = torch.autograd.grad((gt * gt).sum(), Xt)
    for got, want in ((y, yt), (gx, gt), (hx, ht)):
        want = want.detach().numpy()
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-8, atol=1e-10 * np.abs(want).max())


@pytest.mark.parametrize("C", [6, 5])
def test_eval_float32_matches_float64(C):
    """Eval runs in x's dtype (one float32 GEMM per group): output and dx against the same running statistics in
    float64, with (C=6) and without (C=5) whole groups."""
    m64 = nn.DecorrelatedBatchNorm2d(C, group_size=2).double()
    for seed in range(2):
        m64(mg.Tensor(data((8, C, 3, 3), seed=20 + seed)))
    m32 = nn.DecorrelatedBatchNorm2d(C, group_size=2)
    m32.load_state_dict({k: np.asarray(v) for k, v in m64.state_dict().items()})
    m32 = m32.to(np.float32)
    x0, dy = data((4, C, 3, 3), seed=5), data((4, C, 3, 3), seed=6)
    got = []
    for m, dtype in ((m32, np.float32), (m64, np.float64)):
        m.eval()
        x = mg.Tensor(x0.astype(dtype), requires_grad=True)
        y = m(x)
        (y * mg.Tensor(dy.astype(dtype))).sum().backward()
        got.append((y.numpy(), x.grad.numpy()))
    for a, b, what in zip(got[0], got[1], ("y", "dx")):
        assert a.dtype == np.float32, what
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * np.abs(b).max(), err_msg=what)  # float32 rounding


def test_bad_arguments_raise_naming_them():
    with pytest.raises(ValueError, match="group_size"):
        nn.DecorrelatedBatchNorm2d(4, group_size=0)
    with pytest.raises(ValueError, match="num_features"):
        nn.DecorrelatedBatchNorm2d(0)
    with pytest.raises(ValueError, match="eps"):
        nn.DecorrelatedBatchNorm2d(4, eps=0.0)
    with pytest.raises(ValueError, match="momentum"):
        nn.DecorrelatedBatchNorm2d(4, momentum=2.0)
    m = nn.DecorrelatedBatchNorm2d(4)
    with pytest.raises(ValueError, match=r"\(N, 4, H, W\)"):
        m(mg.Tensor(np.zeros((2, 3, 2, 2), np.float32)))
    with pytest.raises(ValueError, match="more than 1 value"):
        m(mg.Tensor(np.zeros((1, 4, 1, 1), np.float32)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_float16_training_is_refused_naming_the_module(backend):
    """The kernels' passes run in float32 or float64: an all-float16 module says so, naming itself, before any kernel
    runs; float16 input with float32 parameters computes in float32."""
    x = mg.Tensor(data((4, 3, 2, 2)).astype(np.float16))
    with mg.using_backend(backend):
        with pytest.raises(TypeError, match="DecorrelatedBatchNorm2d: .* float32 or float64, got float16"):
            nn.DecorrelatedBatchNorm2d(3).to(np.float16)(x)
        assert nn.DecorrelatedBatchNorm2d(3)(x).dtype == np.float32


# the compiled forward (minigrad/_ext/whiten.pyx): its passes against their NumPy versions (the kernels zca_forward,
# zca_rows, sym_eigh and running_average_update on every backend: tests/test_kernels.py)
whiten = pytest.importorskip("minigrad._ext.whiten")
from minigrad.kernels.reference import whiten as ref_whiten  # noqa: E402
from minigrad.nn import decorrelated as dec  # noqa: E402


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,C,S,g", [(16, 32, 64, 16), (3, 37, 49, 16), (2, 5, 7, 3), (4, 8, 9, 1), (2, 20, 13, 20),
                                     (3, 24, 300, 7)])
def test_compiled_passes_match_numpy(dtype, N, C, S, g):
    """group_cov and group_whiten against the reference's (padded last group, S not a
    multiple of the lanes, more than 256 values a row); bit-identical at 1 and 2 threads."""
    rng = np.random.default_rng(4)
    x = (0.5 + 2 * rng.standard_normal((N, C, S))).astype(dtype)
    shift = x.mean(axis=(0, 2)).astype(dtype)
    G = -(-C // g)
    M, bias = rng.standard_normal((G, g, g)).astype(dtype), rng.standard_normal(C).astype(dtype)
    got = [(np.empty((G, g, g)), np.empty_like(x)) for _ in range(2)]
    for (cov, y), threads in zip(got, (1, 2)):
        whiten.group_cov(cov, x, shift, g, threads)
        whiten.group_whiten(y, x, shift, M, bias, g, threads)
    for a, b in zip(*got):
        np.testing.assert_array_equal(a, b)
    cov, y = got[0]
    want_cov, want_y = np.empty((G, g, g)), np.empty((N, C, S))
    ref_whiten.group_cov(want_cov, x.astype(np.float64), shift.astype(np.float64), g)
    ref_whiten.group_whiten(want_y, x.astype(np.float64), shift.astype(np.float64), M.astype(np.float64),
                            bias.astype(np.float64), g)
    tol = {np.float32: 1e-6, np.float64: 1e-14}[dtype]
    np.testing.assert_allclose(cov, want_cov, rtol=tol, atol=tol * np.abs(want_cov).max())
    np.testing.assert_allclose(y, want_y, rtol=tol, atol=10 * tol * np.abs(want_y).max())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C,group_size", [(6, 3), (5, 2), (3, 16), (32, 16)])
def test_compiled_forward_matches_numpy_path(dtype, C, group_size):
    """The cython backend's one-call forward (zca_forward) and the NumPy path of the other backends: the output
    and the statistics left for the running averages and the backward."""
    x0 = data((6, C, 3, 5)).astype(dtype)
    out = {}
    for backend in ("cython", "numpy"):
        m = nn.DecorrelatedBatchNorm2d(C, group_size=group_size, eps=EPS).to(dtype)
        m.weight.data[...] = 1 + 0.1 * np.arange(C)
        m.bias.data[...] = 0.1 * np.arange(C)
        with mg.using_backend(backend):
            y, ctx = dec._ZCAWhiten.apply_with_ctx(mg.Tensor(x0), m.weight, m.bias, G=m._G, g=m._g, eps=EPS)
        out[backend] = (y.numpy(), ctx.cov, ctx.whitening, ctx.s)
    tol = {np.float32: 1e-5, np.float64: 1e-12}[dtype]
    for got, want, what in zip(out["cython"], out["numpy"], ("y", "cov", "whitening", "s")):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max(), err_msg=what)


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_mean_far_above_the_spread(backend):
    """float32 data with mean 1e3 and std 1e-3 (the mean's float32 rounding, up to 3e-5, is 3% of a std): the
    passes run on x - X(mean), and the rounding's share is put back in float64 (the covariance's - m d d^T, the
    bias's - W d), so the whitened output still has mean 0 and identity covariance per group."""
    rng = np.random.default_rng(6)
    C = 6
    mix = rng.standard_normal((C, C)) + 2 * np.eye(C)
    x32 = (1e3 + 1e-3 * np.einsum("dc,nchw->ndhw", mix, rng.standard_normal((16, C, 8, 8)))).astype(np.float32)
    m = nn.DecorrelatedBatchNorm2d(C, group_size=3, eps=1e-14)
    with mg.using_backend(backend):
        y = m(mg.Tensor(x32)).numpy().astype(np.float64)
    for c0 in (0, 3):
        Z = y[:, c0:c0 + 3].transpose(1, 0, 2, 3).reshape(3, -1)
        np.testing.assert_allclose(Z.mean(axis=1), 0, atol=1e-4)
        np.testing.assert_allclose(Z @ Z.T / Z.shape[1], np.eye(3), atol=1e-4)


@pytest.mark.parametrize("shape", [(3, 37, 5, 7), (16, 32, 8, 8), (4, 5, 1, 1), (2, 3, 2, 4), (5, 6, 1, 9)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threads", [1, 2])
def test_compiled_mean_is_channel_stats(threads, dtype, shape):
    """zca_forward's mean (whiten.h's mean-only copy of the statistics phase's sums) is batch norm's statistics
    phase (phases.h) bit for bit, at any thread count: S = 35 (blocks of 8 and a rest), 64, 1 (across channels), 8
    and 9; a large mean (the shift K = x[0, c, 0] matters)."""
    N, C = shape[:2]
    x = (data(shape) + 300.0 * np.arange(C)[:, None, None]).astype(dtype)
    m = nn.DecorrelatedBatchNorm2d(C).to(dtype)
    before = mg.get_num_threads()
    try:
        mg.set_num_threads(threads)
        with mg.using_backend("cython"):
            _, ctx = dec._ZCAWhiten.apply_with_ctx(mg.Tensor(x), m.weight, m.bias, G=m._G, g=m._g, eps=EPS)
            mean = np.empty(C)
            mg.kernels.kernels().channel_stats(mean, np.empty(C), x.reshape(N, C, -1), True)
    finally:
        mg.set_num_threads(before)
    np.testing.assert_array_equal(ctx.mean, mean)


@pytest.mark.parametrize("backend", BACKENDS)
def test_running_update_of_buffers_no_kernel_takes(backend):
    """Running buffers the fused kernel (zca_running_update) refuses: dtypes that differ, a strided view. Each
    buffer is then updated alone, by the kernels where they take it and by the reference's formula where not: the
    same values as one call would give to buffers of one dtype (float64 here, so the formulas agree)."""
    x = mg.Tensor(data((6, 5, 3, 3)))
    want = nn.DecorrelatedBatchNorm2d(5, group_size=2, momentum=0.3).double()
    got = nn.DecorrelatedBatchNorm2d(5, group_size=2, momentum=0.3).double()
    got.running_cov.data = got.running_cov.data.astype(np.float32)  # dtypes that differ
    wide = np.zeros((3, 2, 4))
    wide[:, :, ::2] = got.running_whitening.data
    got.running_whitening.data = wide[:, :, ::2]  # a strided view
    with mg.using_backend(backend):
        for _ in range(2):
            want(x), got(x)
    np.testing.assert_array_equal(got.running_mean.numpy(), want.running_mean.numpy())
    np.testing.assert_allclose(got.running_cov.numpy(), want.running_cov.numpy(), rtol=1e-6, atol=1e-7)
    assert got.running_cov.data.dtype == np.float32
    np.testing.assert_allclose(got.running_whitening.numpy(), want.running_whitening.numpy(), rtol=1e-15)
    assert np.shares_memory(got.running_whitening.data, wide)  # updated in place
    np.testing.assert_array_equal(got.running_whitening.numpy()[-1, 1], [0, 1])  # the padding: the identity
