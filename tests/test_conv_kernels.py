"""im2col, col2im and max_pool2d kernels: every backend against the NumPy reference, which is itself checked against
PyTorch (unfold, fold, max_pool2d with indices); odd shapes, stride/padding/dilation, ties and NaN, bad arguments.
Shapes stay small: the suite also runs with NUMBA_DISABLE_JIT=1."""
import numpy as np
import pytest

import minigrad as mg
from conftest import BACKENDS, DTYPES
from minigrad.kernels import contract, reference
from minigrad.kernels.rules import out_size
# (N, C, H, W, kh, kw, stride, padding, dilation)
CONV = [(2, 3, 7, 6, 3, 2, (1, 2), (1, 0), (2, 1)), (3, 2, 9, 8, 5, 5, (2, 2), (2, 2), (1, 1)),
        (1, 1, 5, 5, 1, 1, (1, 1), (0, 0), (1, 1)), (2, 4, 6, 7, 3, 3, (3, 1), (4, 3), (1, 2)),
        (2, 1, 4, 4, 5, 5, (1, 1), (2, 2), (1, 1)),
        # OW == W at unit width stride (the flat-copy path of the Cython im2col): 3x3 'same', dilated, row-strided
        (2, 3, 8, 8, 3, 3, (1, 1), (1, 1), (1, 1)), (2, 2, 6, 5, 3, 3, (1, 1), (2, 2), (2, 2)),
        (2, 3, 7, 6, 3, 3, (2, 1), (1, 1), (1, 1))]
# (N, C, H, W, kh, kw, stride, padding)
POOL = [(2, 3, 8, 8, 2, 2, (2, 2), (0, 0)), (2, 3, 7, 9, 2, 2, (2, 2), (0, 0)), (1, 2, 7, 8, 3, 3, (2, 1), (1, 1)),
        (2, 2, 5, 6, 3, 2, (1, 1), (1, 1)), (1, 1, 3, 3, 3, 3, (1, 1), (0, 0)),
        (3, 37, 6, 5, 2, 2, (2, 2), (0, 0))]  # 111 planes: several of the Cython kernels' dynamic chunks of 16


def _backend(name):
    if name not in mg.available_backends():
        pytest.skip(f"backend {name} not available")
    return mg.kernels.load(name)


def _out(H, W, kh, kw, stride, padding, dilation=(1, 1)):
    return (out_size(H, kh, stride[0], padding[0], dilation[0]), out_size(W, kw, stride[1], padding[1], dilation[1]))


def test_reference_matches_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(0)
    for N, C, H, W, kh, kw, s, p, d in CONV:
        x = rng.standard_normal((N, C, H, W))
        OH, OW = _out(H, W, kh, kw, s, p, d)
        cols = np.empty((C * kh * kw, N * OH * OW))
        reference.im2col(cols, x, kh, kw, s, p, d)
        u = F.unfold(torch.tensor(x), (kh, kw), dilation=d, padding=p, stride=s).numpy()  # (N, K, L)
        np.testing.assert_array_equal(cols.reshape(-1, N, OH * OW).transpose(1, 0, 2), u)
        dx = np.ones_like(x)
        reference.col2im(dx, cols, kh, kw, s, p, d)
        folded = F.fold(torch.tensor(u), (H, W), (kh, kw), dilation=d, padding=p, stride=s).numpy()
        np.testing.assert_allclose(dx, folded + 1, rtol=1e-12)
    for N, C, H, W, kh, kw, s, p in POOL:
        x = rng.integers(0, 3, (N, C, H, W)).astype(float)  # many ties: the first maximum must win
        tx = torch.tensor(x, requires_grad=True)
        ty, ti = F.max_pool2d(tx, (kh, kw), s, p, return_indices=True)
        y, a = np.empty(ty.shape), np.empty(ty.shape, np.int64)
        reference.max_pool2d_forward(y, a, x, kh, kw, s, p)
        np.testing.assert_array_equal(y, ty.detach().numpy())
        np.testing.assert_array_equal(a, ti.numpy())
        dy = rng.standard_normal(y.shape)
        ty.backward(torch.tensor(dy))
        dx = np.full_like(x, np.nan)
        reference.max_pool2d_backward(dx, dy, a)
        np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_im2col_col2im_parity(name, dtype):
    k = _backend(name)
    rng = np.random.default_rng(1)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    for N, C, H, W, kh, kw, s, p, d in CONV:
        x = rng.standard_normal((N, C, H, W)).astype(dtype)
        OH, OW = _out(H, W, kh, kw, s, p, d)
        want = np.empty((C * kh * kw, N * OH * OW), dtype)
        reference.im2col(want, x, kh, kw, s, p, d)
        for n_threads in (1, 2):
            cols = np.full_like(want, np.nan)
            k.module.im2col(cols, x, kh, kw, s, p, d, n_threads)
            np.testing.assert_array_equal(cols, want)
        k.im2col(cols, x, kh, kw, s, p, d)  # through the contract too
        np.testing.assert_array_equal(cols, want)
        g = rng.standard_normal(want.shape).astype(dtype)
        dx0 = rng.standard_normal(x.shape).astype(dtype)
        expect = dx0.copy()
        reference.col2im(expect, g, kh, kw, s, p, d)
        for n_threads in (1, 2):
            dx = dx0.copy()  # col2im accumulates into dx
            k.module.col2im(dx, g, kh, kw, s, p, d, n_threads)
            np.testing.assert_allclose(dx, expect, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_max_pool2d_parity(name, dtype):
    k = _backend(name)
    rng = np.random.default_rng(2)
    for N, C, H, W, kh, kw, s, p in POOL:
        OH, OW = _out(H, W, kh, kw, s, p)
        for x in (rng.standard_normal((N, C, H, W)).astype(dtype),
                  rng.integers(0, 2, (N, C, H, W)).astype(dtype),  # ties
                  np.where(rng.random((N, C, H, W)) < 0.2, np.nan, rng.standard_normal((N, C, H, W))).astype(dtype),
                  np.full((N, C, H, W), -np.inf, dtype)):
            want_y, want_a = np.empty((N, C, OH, OW), dtype), np.empty((N, C, OH, OW), np.int64)
            reference.max_pool2d_forward(want_y, want_a, x, kh, kw, s, p)
            dy = rng.standard_normal(want_y.shape).astype(dtype)
            want_dx = np.empty_like(x)
            reference.max_pool2d_backward(want_dx, dy, want_a)
            for n_threads in (1, 2, 3):
                y, a = np.full_like(want_y, 7.0), np.full_like(want_a, -5)
                k.module.max_pool2d_forward(y, a, x, kh, kw, s, p, n_threads)
                np.testing.assert_array_equal(y, want_y)
                np.testing.assert_array_equal(a, want_a)
                dx = np.full_like(x, np.nan)  # the kernel zeroes dx itself
                k.module.max_pool2d_backward(dx, dy, a, n_threads)
                np.testing.assert_allclose(dx, want_dx, rtol=1e-6, atol=1e-6)
            y, a, dx = np.empty_like(want_y), np.empty_like(want_a), np.empty_like(x)
            k.max_pool2d_forward(y, a, x, kh, kw, s, p)
            k.max_pool2d_backward(dx, dy, a)
            np.testing.assert_array_equal(a, want_a)


def _conv_args(dtype=np.float32):
    x = np.zeros((2, 3, 6, 6), dtype)
    return np.empty((3 * 9, 2 * 36), dtype), x, 3, 3, (1, 1), (1, 1), (1, 1)


def _pool_args():
    return np.empty((2, 3, 3, 3), np.float32), np.empty((2, 3, 3, 3), np.int64), np.zeros((2, 3, 6, 6), np.float32), \
        2, 2, (2, 2), (0, 0)


BAD = [
    ("im2col", lambda a: a[:2] + (0,) + a[3:], ValueError, "kh must be an int >= 1"),
    ("im2col", lambda a: a[:3] + (2.0,) + a[4:], ValueError, "kw must be an int >= 1"),
    ("im2col", lambda a: a[:4] + (1,) + a[5:], ValueError, "stride must be a pair"),
    ("im2col", lambda a: a[:4] + ((0, 1),) + a[5:], ValueError, "stride must be a pair"),
    ("im2col", lambda a: a[:5] + ((-1, 0),) + a[6:], ValueError, "padding must be a pair"),
    ("im2col", lambda a: a[:6] + ((1, 0),), ValueError, "dilation must be a pair"),
    ("im2col", lambda a: (np.empty((27, 71), np.float32),) + a[1:], ValueError, "cols must have shape"),
    ("im2col", lambda a: (a[0].astype(np.float64),) + a[1:], TypeError, "'x' must have dtype float64"),
    ("im2col", lambda a: a[:2] + (9, 9) + a[4:], ValueError, "too small"),
    ("col2im", lambda a: (a[1], a[0], 3, 3, (1, 1), (1, 1), (1, 1)), None, None),
    ("col2im", lambda a: (a[1][:, :, :, ::2], a[0], 3, 3, (1, 1), (1, 1), (1, 1)), ValueError, "'dx' must be C-contig"),
]
BAD_POOL = [
    (lambda a: (a[0][:, :, :2].copy(), a[1][:, :, :2].copy()) + a[2:], ValueError, "spatial shape"),
    (lambda a: (a[0], a[1].astype(np.int32)) + a[2:], TypeError, "'argmax' must have dtype int64"),
    (lambda a: a[:3] + (3, 3, (2, 2), (2, 2)), ValueError, "padding (2, 2) must be at most half"),
    (lambda a: a[:5] + ((True, 1),) + a[6:], ValueError, "stride must be a pair"),
]


@pytest.mark.parametrize("name", BACKENDS)
def test_bad_arguments(name):
    k = _backend(name)
    for kernel, edit, exc, msg in BAD:
        args = edit(_conv_args())
        if exc is None:
            getattr(k, kernel)(*args)  # the well-formed call works
            continue
        with pytest.raises(exc, match=msg.replace("(", r"\(").replace(")", r"\)")):
            getattr(k, kernel)(*args)
    for edit, exc, msg in BAD_POOL:
        with pytest.raises(exc, match=msg.replace("(", r"\(").replace(")", r"\)")):
            k.max_pool2d_forward(*edit(_pool_args()))
    y, a, x = _pool_args()[:3]
    dx = np.empty_like(x)
    for bad in (-1, 36):
        with pytest.raises(ValueError, match=r"argmax must hold indices in \[0, H\*W\)"):
            k.max_pool2d_backward(dx, y, np.full(a.shape, bad, np.int64))
    with pytest.raises(TypeError, match="takes 3 arguments"):
        k.max_pool2d_backward(dx, y)


@pytest.mark.parametrize("name", BACKENDS)
def test_a_geometry_accepted_once_does_not_accept_lookalikes(name):
    """The contract remembers window geometries it accepted (minigrad.kernels.contract._WINDOWS_OK); arguments equal
    to an accepted one but of another type (True == 1, 1.0 == 1) are still checked, and rejected."""
    k = _backend(name)
    args = _conv_args()
    k.im2col(*args)  # accepted, remembered
    k.im2col(*args)
    for edit, msg in ((lambda a: a[:4] + ((1.0, 1),) + a[5:], "stride must be a pair"),
                      (lambda a: a[:4] + ((True, 1),) + a[5:], "stride must be a pair"),
                      (lambda a: a[:2] + (3.0,) + a[3:], "kh must be an int"),
                      (lambda a: a[:2] + (True, 1) + a[4:], "kh must be an int"),
                      (lambda a: a[:5] + ((np.int64(1), 1),) + a[6:], None)):
        if msg is None:
            k.im2col(*edit(args))  # a NumPy integer is an int: accepted (checked, not remembered)
            continue
        with pytest.raises(ValueError, match=msg):
            k.im2col(*edit(args))


@pytest.mark.parametrize("name", BACKENDS)
def test_layers_run_on_the_backend_asked_for(name, monkeypatch):
    """conv2d and max_pool2d call the active backend's kernels (and agree with the numpy backend)."""
    backend = _backend(name)
    module = backend.module
    called = []
    kernels = ("im2col", "col2im", "max_pool2d_forward", "max_pool2d_backward")
    for kernel in kernels:
        raw = getattr(module, kernel)
        monkeypatch.setattr(module, kernel, lambda *a, _raw=raw, _k=kernel: (called.append(_k), _raw(*a))[1])
        backend.__dict__.pop(kernel, None)  # the registry caches its checked wrappers: rebuild them on the spies
    rng = np.random.default_rng(3)
    x0, w0 = rng.standard_normal((2, 3, 9, 9)), rng.standard_normal((4, 3, 3, 3))
    out = {}
    for which in ("numpy", name):
        with mg.using_backend(which):
            x, w = mg.Tensor(x0, requires_grad=True), mg.Tensor(w0, requires_grad=True)
            y = mg.nn.functional.max_pool2d(mg.nn.functional.conv2d(x, w, padding=1, stride=(1, 2)), 2)
            y.backward(np.ones(y.shape))
            out[which] = (y.numpy(), x.grad.numpy(), w.grad.numpy())
    for kernel in kernels:
        backend.__dict__.pop(kernel, None)
    assert sorted(set(called)) == sorted(kernels)
    for a, b in zip(out["numpy"], out[name]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", BACKENDS)
def test_checked_then_raw_checks_the_first_call(name):
    """conv2d's chunk loops check their first kernel call only (Backend.checked_then_raw): that call must still
    refuse bad arguments, and the unchecked repeats compute what a checked call does."""
    k = _backend(name)
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6))
    with pytest.raises(ValueError, match="cols"):
        k.checked_then_raw("im2col", (np.empty((27, 1)), x, 3, 3, (1, 1), (1, 1), (1, 1)))
    want, cols = np.empty((27, 72)), np.empty((27, 36))
    k.im2col(want, x, 3, 3, (1, 1), (1, 1), (1, 1))
    again = k.checked_then_raw("im2col", (cols, x[:1], 3, 3, (1, 1), (1, 1), (1, 1)))
    np.testing.assert_array_equal(cols, want.reshape(27, 2, 36)[:, 0])
    again(cols, x[1:], 3, 3, (1, 1), (1, 1), (1, 1))
    np.testing.assert_array_equal(cols, want.reshape(27, 2, 36)[:, 1])


# conv2d_direct: (N, C, H, W, O, kh, kw, padding); C and O not multiples of the tiles (8 and 4 output channels, 48,
# 24, 12 or 8 positions), kernel sizes 1, 3, 5 and non-square, padding 0, 1, 2, a width below one vector; and one
# geometry whose O and OH*OW are multiples of 16
DIRECT = [(2, 3, 7, 9, 13, 3, 3, (1, 1)), (2, 5, 6, 5, 4, 5, 5, (2, 2)), (1, 2, 5, 4, 3, 1, 3, (0, 1)),
          (3, 1, 4, 6, 9, 1, 1, (0, 0)), (2, 4, 8, 8, 8, 3, 3, (0, 0)), (1, 17, 3, 11, 6, 3, 2, (2, 0)),
          (2, 6, 10, 3, 17, 5, 3, (2, 1)),
          (3, 8, 8, 8, 32, 3, 3, (1, 1))]  # O and OH*OW multiples of 16: the weight gradient's transpose in blocks


def test_conv2d_direct_reference_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    for N, C, H, W, O, kh, kw, p in DIRECT:
        x, w = rng.standard_normal((N, C, H, W)), rng.standard_normal((O, C, kh, kw))
        want = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), padding=p).numpy()
        y = np.full(want.shape, np.nan)
        reference.conv2d_direct(y, x, w.reshape(O, -1), kh, kw, p)
        np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_conv2d_direct_parity(name, dtype):
    k = _backend(name)
    rng = np.random.default_rng(5)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    for N, C, H, W, O, kh, kw, p in DIRECT:
        x = rng.standard_normal((N, C, H, W)).astype(dtype)
        w = rng.standard_normal((O, C * kh * kw)).astype(dtype)
        want = np.empty((N, O) + _out(H, W, kh, kw, (1, 1), p), dtype)
        reference.conv2d_direct(want, x, w, kh, kw, p)
        ys = []
        for n_threads in (1, 2, 3):
            y = np.full_like(want, np.nan)
            k.module.conv2d_direct(y, x, w, kh, kw, p, n_threads)
            np.testing.assert_allclose(y, want, rtol=tol, atol=tol)
            ys.append(y)
        for y in ys[1:]:
            np.testing.assert_array_equal(y, ys[0])  # the same bits for any thread count
        y = np.full_like(want, np.nan)
        k.conv2d_direct(y, x, w, kh, kw, p)  # through the contract too
        np.testing.assert_array_equal(y, ys[0])
        dy = rng.standard_normal(want.shape).astype(dtype)
        want_dw = np.empty_like(w)
        reference.conv2d_direct_weight_grad(want_dw, x, dy, kh, kw, p)
        dws = []
        for n_threads in (1, 2, 3):
            dw = np.full_like(w, np.nan)
            k.module.conv2d_direct_weight_grad(dw, x, dy, kh, kw, p, n_threads)
            np.testing.assert_allclose(dw, want_dw, rtol=tol, atol=tol * N * H * W)
            dws.append(dw)
        for dw in dws[1:]:
            np.testing.assert_array_equal(dw, dws[0])
        dw = np.full_like(w, np.nan)
        k.conv2d_direct_weight_grad(dw, x, dy, kh, kw, p)
        np.testing.assert_array_equal(dw, dws[0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_conv2d_direct_backward_is_the_two_kernels(name, dtype):
    """conv2d_direct_backward (both gradients in one parallel region) gives the bits of conv2d_direct_weight_grad
    and of conv2d_direct on dy with the flipped weight at padding k-1-p, the same backend's, for any thread count
    and (Cython) in every variant; the weight gradient's chunks and dx's samples handed out together."""
    k = _backend(name)
    rng = np.random.default_rng(11)
    variants = ("scalar", "avx2", "avx512")
    ext = k.module if hasattr(k.module, "conv2d_direct_variant") else None
    best = ext.conv2d_direct_variant() if ext is not None else "scalar"
    # DIRECT's geometries (all with p < k) and ResNet-20's 16-channel layer at a few samples (several chunks)
    geometries = DIRECT + [(9, 16, 32, 32, 16, 3, 3, (1, 1))] if name == "cython" else DIRECT
    try:
        for N, C, H, W, O, kh, kw, p in geometries:
            x = rng.standard_normal((N, C, H, W)).astype(dtype)
            w = rng.standard_normal((O, C * kh * kw)).astype(dtype)
            dy = rng.standard_normal((N, O) + _out(H, W, kh, kw, (1, 1), p)).astype(dtype)
            for variant in variants[:variants.index(best) + 1]:
                if ext is not None:
                    ext.conv2d_direct_variant(variant)
                want_dx, want_dw = np.empty_like(x), np.empty_like(w)
                k.module.conv2d_direct_weight_grad(want_dw, x, dy, kh, kw, p, 2)
                k.module.conv2d_direct(want_dx, dy, reference.conv.flipped_weight(w, C, kh, kw), kh, kw,
                                       (kh - 1 - p[0], kw - 1 - p[1]), 2)
                for n_threads in (1, 2, 3):
                    dx, dw = np.full_like(x, np.nan), np.full_like(w, np.nan)
                    k.module.conv2d_direct_backward(dx, dw, x, dy, w, kh, kw, p, n_threads)
                    np.testing.assert_array_equal(dx, want_dx)
                    np.testing.assert_array_equal(dw, want_dw)
            dx, dw = np.full_like(x, np.nan), np.full_like(w, np.nan)
            k.conv2d_direct_backward(dx, dw, x, dy, w, kh, kw, p)  # through the contract too
            np.testing.assert_array_equal(dx, want_dx)
            np.testing.assert_array_equal(dw, want_dw)
            if ext is None:
                want = np.empty_like(x)
                reference.conv2d_direct_backward(want, np.empty_like(w), x, dy, w, kh, kw, p)
                np.testing.assert_allclose(dx, want, rtol=2e-4 if dtype == np.float32 else 1e-12,
                                           atol=2e-4 if dtype == np.float32 else 1e-12)
    finally:
        if ext is not None:
            ext.conv2d_direct_variant(best)


@pytest.mark.parametrize("name", BACKENDS)
def test_conv2d_direct_backward_bad_arguments(name):
    k = _backend(name)
    args = (np.empty((2, 3, 6, 6), np.float32), np.empty((4, 27), np.float32), np.zeros((2, 3, 6, 6), np.float32),
            np.zeros((2, 4, 6, 6), np.float32), np.ones((4, 27), np.float32), 3, 3, (1, 1))
    k.conv2d_direct_backward(*args)  # the well-formed call works
    np.testing.assert_array_equal(args[0], 0)
    np.testing.assert_array_equal(args[1], 0)
    with pytest.raises(ValueError, match=r"padding \(3, 1\) must be below the kernel size \(3, 3\)"):
        k.conv2d_direct_backward(*args[:3], np.zeros((2, 4, 10, 6), np.float32), args[4], 3, 3, (3, 1))
    with pytest.raises(ValueError, match=r"dy must have spatial shape \(OH, OW\) = \(6, 6\)"):
        k.conv2d_direct_backward(*args[:3], np.zeros((2, 4, 5, 6), np.float32), *args[4:])
    with pytest.raises(ValueError, match=r"weight must have shape \(O, C\*kh\*kw\) = \(4, 27\)"):
        k.conv2d_direct_backward(args[0], np.empty((4, 20), np.float32), args[2], args[3],
                                 np.ones((4, 20), np.float32), *args[5:])


@pytest.mark.parametrize("W", [19, 9])
@pytest.mark.parametrize("name", BACKENDS)
def test_conv2d_direct_non_finite_input_stays_in_its_outputs(name, W):
    """The compiled kernels compute over the padded width, where the last kw - 1 columns of a row read the next
    row, or (narrow planes, W = 9) with masked row loads: an inf or NaN in x must reach only the outputs whose
    window holds it, as in the reference."""
    k = _backend(name)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 6, W))
    x[0, 1, 2, 0], x[1, 2, 4, W - 1], x[1, 0, 0, 3] = np.inf, np.nan, -np.inf
    w = rng.standard_normal((5, 27))
    want, y = np.empty((2, 5, 6, W)), np.empty((2, 5, 6, W))
    reference.conv2d_direct(want, x, w, 3, 3, (1, 1))
    k.conv2d_direct(y, x, w, 3, 3, (1, 1))
    assert np.isfinite(want).sum() > 0.5 * want.size
    np.testing.assert_array_equal(np.isfinite(y), np.isfinite(want))
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)
    # the weight gradient: x's first column reaches no entry of tap j = 2 (it reads padding there), its last none
    # of j = 0; with padding 0 the wrapped rows of the padded width would carry them to those entries
    for p in ((1, 1), (0, 0)):
        dy = rng.standard_normal((2, 5, 6 + 2 * p[0] - 2, W + 2 * p[1] - 2))
        want, dw = np.empty((5, 27)), np.empty((5, 27))
        reference.conv2d_direct_weight_grad(want, x, dy, 3, 3, p)
        k.conv2d_direct_weight_grad(dw, x, dy, 3, 3, p)
        assert np.isfinite(want).any()
        np.testing.assert_array_equal(np.isfinite(dw), np.isfinite(want))
        np.testing.assert_allclose(dw, want, rtol=1e-12, atol=1e-12)


def test_conv2d_direct_variants_give_the_same_bits():
    """AVX-512, AVX2 + FMA and the scalar fma() variant of the Cython kernels: one fma chain per output (per lane of
    16 or 8, then the lanes in order, in the weight gradient) in the same order, so the same bits (those this CPU
    can run)."""
    if "cython" not in mg.available_backends():
        pytest.skip("cython backend not built")
    from minigrad._ext import conv as ext
    rng = np.random.default_rng(7)
    names = ("scalar", "avx2", "avx512")
    best = ext.conv2d_direct_variant()
    try:
        for dtype in DTYPES:
            for N, C, H, W, O, kh, kw, p in DIRECT + TAILS + [(2, 16, 12, 12, 16, 3, 3, (1, 1))]:
                x = rng.standard_normal((N, C, H, W)).astype(dtype)
                w = rng.standard_normal((O, C * kh * kw)).astype(dtype)
                dy = rng.standard_normal((N, O) + _out(H, W, kh, kw, (1, 1), p)).astype(dtype)
                ys, dws = [], []
                for variant in names[:names.index(best) + 1]:
                    ext.conv2d_direct_variant(variant)
                    y, dw = np.full(dy.shape, np.nan, dtype), np.full(w.shape, np.nan, dtype)
                    ext.conv2d_direct(y, x, w, kh, kw, p, 2)
                    ext.conv2d_direct_weight_grad(dw, x, dy, kh, kw, p, 2)
                    ys.append(y)
                    dws.append(dw)
                for y, dw in zip(ys[1:], dws[1:]):
                    np.testing.assert_array_equal(y, ys[0])
                    np.testing.assert_array_equal(dw, dws[0])
    finally:
        ext.conv2d_direct_variant(best)
    with pytest.raises(ValueError):
        ext.conv2d_direct_variant("sse9")


BAD_DIRECT = [
    (lambda a: a[:2] + (a[2][:, :20].copy(),) + a[3:], ValueError, "weight must have shape (O, C*kh*kw) = (4, 27)"),
    (lambda a: (a[0][:, :, :5].copy(),) + a[1:], ValueError, "y must have spatial shape (OH, OW) = (6, 6)"),
    (lambda a: (a[0][:, :3].copy(),) + a[1:], ValueError, "'weight' has shape (4, 27), but O=3"),
    (lambda a: a[:5] + ((1, -1),), ValueError, "padding must be a pair"),
    (lambda a: a[:5] + (1,), ValueError, "padding must be a pair"),
    (lambda a: a[:2] + (np.ones((4, 81), np.float32), 9, 3, (1, 1)), ValueError, "too small"),
    (lambda a: a[:2] + (a[2].astype(np.float64),) + a[3:], TypeError, "'weight' must have dtype float32"),
    (lambda a: a[:1] + (a[1][:, :, :, ::2],) + a[2:], ValueError, "'x' must be C-contiguous"),
]


# positions a valid output needs, Qn = (OH - 1)*Wp + OW, that leave 1 or 2 vectors past the last whole tile of 3 for
# 16, 8 and 4 lanes (and 1 to 7 scalars past tiles of 8 or 4), no whole tile at all, and ResNet-20's 8x8 layer
TAILS = [(2, 64, 8, 8, 64, 3, 3, (1, 1)), (1, 3, 6, 7, 5, 3, 3, (1, 1)), (2, 5, 9, 9, 7, 3, 3, (1, 1)),
         (1, 2, 3, 9, 3, 3, 3, (1, 1)), (1, 2, 4, 7, 3, 3, 3, (1, 1)), (1, 9, 1, 5, 9, 1, 3, (0, 1)),
         # the masked rows of narrow "same" planes (OW == W <= 16, AVX-512): masks the same for every vector (W
         # divides the vector, L whole vectors) or not, kernel 5x5, a width of 16 and 17 (the padded width again)
         (2, 9, 5, 8, 10, 3, 3, (1, 1)), (1, 5, 3, 16, 9, 3, 3, (1, 1)), (2, 3, 4, 4, 9, 5, 5, (2, 2)),
         (1, 4, 2, 17, 8, 3, 3, (1, 1)), (2, 3, 16, 16, 16, 3, 3, (1, 1)),
         # AVX2's masked rows (OW == W <= 8; at W = 8 float32's masks the same for every vector, float64's per
         # vector): the last tile of 1 vector (L = 32) and of 2 (L = 64 above), kernels 1x1 and 5x5 at W = 8, a
         # kernel wider than the plane (5 > W = 3)
         (1, 4, 4, 8, 6, 3, 3, (1, 1)), (2, 5, 3, 8, 7, 1, 1, (0, 0)), (2, 3, 8, 8, 5, 5, 5, (2, 2)),
         (1, 2, 5, 3, 4, 5, 5, (2, 2))]


def test_conv2d_direct_tail_tiles_in_every_variant():
    """Each variant this CPU runs computes the positions past its last whole tile with tiles of 2 and 1 vectors
    (conv_direct.h, mg_dconv_run; on narrow planes over the rows without padding: AVX-512's MG_DCONV_MTILES, AVX2's
    MG_DCONV_MTILES256): every
    output written (y starts NaN) and equal to the reference."""
    if "cython" not in mg.available_backends():
        pytest.skip("cython backend not built")
    from minigrad._ext import conv as ext
    rng = np.random.default_rng(8)
    names = ("scalar", "avx2", "avx512")
    best = ext.conv2d_direct_variant()
    try:
        for variant in names[:names.index(best) + 1]:
            ext.conv2d_direct_variant(variant)
            for dtype in DTYPES:
                tol = 2e-5 if dtype == np.float32 else 1e-12
                for N, C, H, W, O, kh, kw, p in TAILS:
                    x = rng.standard_normal((N, C, H, W)).astype(dtype)
                    w = rng.standard_normal((O, C * kh * kw)).astype(dtype)
                    want = np.empty((N, O) + _out(H, W, kh, kw, (1, 1), p), dtype)
                    reference.conv2d_direct(want, x, w, kh, kw, p)
                    for n_threads in (1, 2):
                        y = np.full_like(want, np.nan)
                        ext.conv2d_direct(y, x, w, kh, kw, p, n_threads)
                        np.testing.assert_allclose(y, want, rtol=tol, atol=tol * np.sqrt(C * kh * kw),
                                                   err_msg=f"{variant} {dtype.__name__} {(N, C, H, W, O)}")
    finally:
        ext.conv2d_direct_variant(best)


# the weight gradient's tiles (conv_direct.h, MG_DCONV_WG_AVX512): O in tiles of 2 vectors (32 float32 or 16 float64
# channels) and a tail of 1 vector, whole or partial (O = 32, 48, 40, 33, 70, 17, 24, 8), taps in runs of 3 (kw = 3,
# 12 a tile) with a partial last tile (C*kh = 6, 15, 9), single taps (kw != 3, 12 a tile; K = 8, 75, 3)
WG_TILES = [(2, 2, 6, 6, 32, 3, 3, (1, 1)), (2, 5, 5, 7, 48, 3, 3, (1, 1)), (3, 3, 4, 4, 40, 3, 3, (0, 1)),
            (1, 4, 5, 5, 33, 3, 3, (1, 1)), (2, 2, 4, 6, 70, 3, 3, (1, 1)), (2, 3, 5, 5, 17, 3, 3, (1, 1)),
            (2, 3, 5, 5, 24, 3, 3, (1, 1)), (2, 2, 6, 6, 40, 2, 2, (1, 0)), (1, 3, 7, 7, 48, 5, 5, (2, 2)),
            (3, 3, 5, 4, 33, 1, 1, (0, 0)), (2, 4, 4, 4, 8, 3, 3, (1, 1)), (2, 1, 5, 6, 20, 3, 3, (1, 1)),
            (2, 4, 6, 6, 40, 2, 2, (1, 0)), (1, 4, 7, 7, 48, 5, 5, (2, 2)), (3, 5, 5, 4, 33, 1, 1, (0, 0))]
# NOTE: below 4 input channels (ext.WG_ROWS_BELOW) the rows tiles run, one sample a chunk; from 4 the plain ones


def test_conv2d_direct_weight_grad_tiles_in_every_variant(monkeypatch):
    """Each variant this CPU runs, on geometries that hit the wide tiles, their tails and partial tap tiles: every
    entry written (dweight starts NaN), equal to the reference, the same bits for 1, 2 and 3 threads and across the
    variants; with the default chunks and with chunks of 1 and 2 samples (a larger chunk after a smaller one, in one
    thread's scratch; below ext.WG_ROWS_BELOW input channels always one sample a chunk)."""
    if "cython" not in mg.available_backends():
        pytest.skip("cython backend not built")
    from minigrad._ext import conv as ext
    rng = np.random.default_rng(9)
    names = ("scalar", "avx2", "avx512")
    best, default = ext.conv2d_direct_variant(), ext.DIRECT_WG_CHUNK_BYTES
    try:
        for dtype in DTYPES:
            tol = 2e-5 if dtype == np.float32 else 1e-12
            for N, C, H, W, O, kh, kw, p in WG_TILES:
                N = N + 4  # 5 to 7 samples: chunks of 1 and 2 below
                x = rng.standard_normal((N, C, H, W)).astype(dtype)
                dy = rng.standard_normal((N, O) + _out(H, W, kh, kw, (1, 1), p)).astype(dtype)
                want = np.empty((O, C * kh * kw), dtype)
                reference.conv2d_direct_weight_grad(want, x, dy, kh, kw, p)
                lanes = 64 // x.itemsize  # dy^T's rows: O rounded up to 64 bytes
                sample = (C * (H + 2 * p[0]) * (W + 2 * p[1]) + dy[0, 0].size * -(-O // lanes) * lanes) * x.itemsize
                for budget in (default, 2 * sample):
                    monkeypatch.setattr(ext, "DIRECT_WG_CHUNK_BYTES", budget)
                    sizes = ext.conv2d_direct_weight_grad_chunks(N, C, H, W, O, kh, kw, p, dtype == np.float32)
                    if C < ext.WG_ROWS_BELOW:
                        assert sizes == [1] * N, sizes
                    else:
                        assert budget == default or sorted(set(sizes)) == [1, 2], sizes
                    dws = []
                    for variant in names[:names.index(best) + 1]:
                        ext.conv2d_direct_variant(variant)
                        for n_threads in (1, 2, 3):
                            dw = np.full_like(want, np.nan)
                            ext.conv2d_direct_weight_grad(dw, x, dy, kh, kw, p, n_threads)
                            np.testing.assert_allclose(dw, want, rtol=tol, atol=tol * N * H * W,
                                                       err_msg=f"{variant} {dtype.__name__} {(N, C, H, W, O)}")
                            dws.append(dw)
                    for dw in dws[1:]:  # the same bits for every variant and thread count
                        np.testing.assert_array_equal(dw, dws[0])
    finally:
        ext.conv2d_direct_variant(best)


def test_conv2d_direct_weight_grad_chunks_balanced():
    """The weight gradient's chunks (from N and the geometry only): an even count (at most N), sizes within one
    sample, so 2 threads' static halves hold N // 2 and N - N // 2 samples; ResNet-20's layers at batch 32; N = 0
    gives zeros."""
    if "cython" not in mg.available_backends():
        pytest.skip("cython backend not built")
    from minigrad._ext import conv as ext
    assert ext.conv2d_direct_weight_grad_chunks(32, 64, 8, 8, 64, 3, 3, (1, 1)) == [16, 16]
    assert ext.conv2d_direct_weight_grad_chunks(32, 32, 16, 16, 32, 3, 3, (1, 1)) == [8] * 4
    assert ext.conv2d_direct_weight_grad_chunks(32, 16, 32, 32, 16, 3, 3, (1, 1)) == [4] * 8
    for N in (1, 2, 3, 7, 31, 32, 33, 100):
        for C, H, O, f32 in ((16, 32, 16, True), (64, 8, 64, True), (64, 8, 64, False), (3, 40, 16, True),
                             (128, 64, 128, True)):
            sizes = ext.conv2d_direct_weight_grad_chunks(N, C, H, H, O, 3, 3, (1, 1), f32)
            assert sum(sizes) == N and max(sizes) - min(sizes) <= 1, (N, C, sizes)
            assert len(sizes) % 2 == 0 or len(sizes) == N, (N, C, sizes)
            half = len(sizes) // 2 if len(sizes) % 2 == 0 else len(sizes)
            assert len(sizes) == N or sum(sizes[:half]) == N // 2, (N, C, sizes)
    dw = np.full((3, 36), np.nan, np.float32)
    ext.conv2d_direct_weight_grad(dw, np.ones((0, 4, 5, 5), np.float32), np.ones((0, 3, 5, 5), np.float32), 3, 3,
                                  (1, 1), 2)
    np.testing.assert_array_equal(dw, 0)


@pytest.mark.parametrize("name", BACKENDS)
def test_conv2d_direct_bad_arguments(name):
    k = _backend(name)
    args = (np.empty((2, 4, 6, 6), np.float32), np.zeros((2, 3, 6, 6), np.float32), np.ones((4, 27), np.float32),
            3, 3, (1, 1))
    k.conv2d_direct(*args)  # the well-formed call works
    np.testing.assert_array_equal(args[0], 0)
    for edit, exc, msg in BAD_DIRECT:
        with pytest.raises(exc, match=msg.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
            k.conv2d_direct(*edit(args))


def _conv2d_calls(name, direct, monkeypatch, kernels_, stride, seed, dy_shape, x_shape=(3, 8, 9, 8),
                  w_shape=(5, 8, 3, 3), padding=1):
    """conv2d (by default 3x3, padding 1) forward and backward on x (3, 8, 9, 8) and w (5, 8, 3, 3) at ``stride``, on
    the im2col path (``conv.DIRECT`` False) and then with DIRECT = ``direct``, recording the calls of ``kernels_``
    (name, first argument's shape) in the second; asserts that the values and gradients of both paths equal each
    other and PyTorch's. Returns the calls, (x0, w0, b0) and PyTorch's output."""
    torch = pytest.importorskip("torch")
    from minigrad.nn.functional import conv as cv
    backend = _backend(name)
    module = backend.module
    called = []
    for kernel in kernels_:
        raw = getattr(module, kernel)
        monkeypatch.setattr(module, kernel, lambda *a, _raw=raw, _k=kernel: (called.append((_k, a[0].shape)),
                                                                              _raw(*a))[1])
        backend.__dict__.pop(kernel, None)
    rng = np.random.default_rng(seed)
    x0, w0, b0 = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    dy = rng.standard_normal(dy_shape)
    out = {}
    try:
        for mode in (False, direct):
            called.clear()  # NOTE: the calls of the last pass (DIRECT = direct) are returned
            monkeypatch.setattr(cv, "DIRECT", mode)
            with mg.using_backend(name):
                x, w, b = (mg.Tensor(a, requires_grad=True) for a in (x0, w0, b0))
                y = mg.nn.functional.conv2d(x, w, b, stride=stride, padding=padding)
                y.backward(dy)
                out[mode] = (y.numpy(), x.grad.numpy(), w.grad.numpy(), b.grad.numpy())
    finally:
        for kernel in kernels_:
            backend.__dict__.pop(kernel, None)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x0, w0, b0))
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride=stride, padding=padding)
    ty.backward(torch.tensor(dy))
    for a, b, t in zip(out[False], out[direct], (ty, tx.grad, tw.grad, tb.grad)):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(b, t.detach().numpy(), rtol=1e-10, atol=1e-10)
    return called, (x0, w0, b0), ty


def test_conv2d_direct_weight_grad_rows_accuracy():
    """Below ext.WG_ROWS_BELOW input channels the weight gradient sums each output row's chain apart, a sample a
    chunk (conv_direct.h, ROWS): a ResNet stem's (3 -> 16, 3x3, padding 1, 32x32, 8 samples: one chain over all 8192
    positions before) as accurate as the im2col path's GEMM against a long double reference, in float32 and float64,
    in every variant; the threshold is the constant itself and conv2d's rule (conv.DIRECT_MIN_CHANNELS)."""
    if "cython" not in mg.available_backends():
        pytest.skip("cython backend not built")
    from minigrad._ext import conv as ext
    from minigrad.nn.functional import conv as cv
    assert ext.WG_ROWS_BELOW == cv.DIRECT_MIN_CHANNELS
    assert ext.conv2d_direct_weight_grad_chunks(32, 3, 32, 32, 16, 3, 3, (1, 1)) == [1] * 32
    rng = np.random.default_rng(4)
    x64, dy64 = rng.standard_normal((8, 3, 32, 32)), rng.standard_normal((8, 16, 32, 32))
    xp = np.pad(x64.astype(np.longdouble), ((0, 0), (0, 0), (1, 1), (1, 1)))
    want = np.empty((16, 3, 3, 3), np.longdouble)
    for i in range(3):
        for j in range(3):
            want[:, :, i, j] = np.einsum("nohw,nchw->oc", dy64.astype(np.longdouble), xp[:, :, i:i + 32, j:j + 32])
    names = ("scalar", "avx2", "avx512")
    best = ext.conv2d_direct_variant()
    try:
        for dtype in DTYPES:
            x, dy = x64.astype(dtype), dy64.astype(dtype)
            g = cv._geometry(x.shape, (16, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1, x.itemsize, 2)
            with pytest.MonkeyPatch.context() as m:
                m.setattr(cv, "DIRECT", False)
                gemm = np.abs(cv.conv2d_weight_grad(x, dy, g).reshape(want.shape) - want)
            for variant in names[:names.index(best) + 1]:
                ext.conv2d_direct_variant(variant)
                dw = np.empty((16, 27), dtype)
                ext.conv2d_direct_weight_grad(dw, x, dy, 3, 3, (1, 1), 2)
                err = np.abs(dw.reshape(want.shape) - want)
                # NOTE: one chain over a sample's positions: 2.7x the GEMM's max error here and 3.5x its mean; over the
                # chunk's (8 samples) 4-10x
                assert err.max() <= 2 * gemm.max() and err.mean() <= 1.5 * gemm.mean(), \
                    (variant, dtype, float(err.max()), float(gemm.max()), float(err.mean()), float(gemm.mean()))
    finally:
        ext.conv2d_direct_variant(best)


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("direct", [None, True])
@pytest.mark.parametrize("C, O, k", [(3, 16, 3), (2, 32, 3), (1, 16, 3), (3, 8, 3), (3, 16, 5)])
def test_conv2d_few_channels_weight_grad(name, direct, C, O, k, monkeypatch):
    """Below conv.DIRECT_MIN_CHANNELS input channels the weight gradient runs conv2d_direct_weight_grad where the
    direct kernels are fast for 3x3 windows from 2 channels with output channels a multiple of 16 (a ResNet's stem,
    conv._few_channels_wg), elsewhere im2col + GEMM (unless DIRECT is True); the input gradient stays on col2im.
    Values and gradients as the im2col path's and PyTorch's."""
    kernels_ = ("conv2d_direct_weight_grad", "conv2d_direct_backward", "im2col", "col2im")
    called, _, _ = _conv2d_calls(name, direct, monkeypatch, kernels_, 1, 10, (2, O, 7, 6), (2, C, 7, 6),
                                 (O, C, k, k), k // 2)
    variant = getattr(_backend(name).module, "conv2d_direct_variant", lambda: "scalar")()
    stem = C >= 2 and k == 3 and O % 16 == 0  # conv._few_channels_wg, spelled out
    names = [n for n, _ in called]
    assert ("conv2d_direct_weight_grad" in names) == (bool(direct) or (variant != "scalar" and stem))
    assert "conv2d_direct_backward" not in names and "col2im" in names


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("direct", [None, True])
def test_conv2d_runs_the_direct_kernel_at_unit_stride(name, direct, monkeypatch):
    """conv2d at unit stride and dilation without groups: forward and (at O <= C) input gradient call
    conv2d_direct, the weight gradient (at C >= 8) conv2d_direct_weight_grad, where they are fast (``conv.DIRECT``
    None: the Cython backend with vector FMAs) or everywhere (True); values and gradients equal those of the im2col
    path (DIRECT = False) and of PyTorch."""
    kernels_ = ("conv2d_direct", "conv2d_direct_weight_grad", "conv2d_direct_backward")
    called, _, _ = _conv2d_calls(name, direct, monkeypatch, kernels_, 1, 8, (3, 5, 9, 8))
    variant = getattr(_backend(name).module, "conv2d_direct_variant", lambda: "scalar")()
    forward = [("conv2d_direct", (3, 5, 9, 8))] if direct or variant != "scalar" else []
    # both gradients in one call (C = 8: not the stem's 3; O = 5 <= C)
    backward = [("conv2d_direct_backward", (3, 8, 9, 8))] if forward else []
    assert called == forward + backward


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("direct", [None, True])
@pytest.mark.parametrize("C", [3, 4, 6])
def test_conv2d_few_channels_paths(name, direct, C, monkeypatch):
    """LeNet's second conv shrunk (5x5, no padding, O = 10 > C): from conv.DIRECT_MIN_CHANNELS (4) input channels on,
    the weight gradient runs conv2d_direct_weight_grad and the input gradient the flipped forward on conv2d_direct
    where the direct kernels are fast; below, im2col + GEMM (unless DIRECT is True) and GEMM + col2im. Values and
    gradients as the im2col path's and PyTorch's."""
    kernels_ = ("conv2d_direct", "conv2d_direct_weight_grad", "conv2d_direct_backward", "im2col", "col2im")
    called, _, _ = _conv2d_calls(name, direct, monkeypatch, kernels_, 1, 9, (3, 10, 6, 5), (3, C, 10, 9),
                                 (10, C, 5, 5), 0)
    variant = getattr(_backend(name).module, "conv2d_direct_variant", lambda: "scalar")()
    fast = bool(direct) or variant != "scalar"
    wide = C >= 4  # conv.DIRECT_MIN_CHANNELS, spelled out: LeNet-BN's 6 channels must take the direct kernels
    names = [k for k, _ in called]
    assert names[0] == ("conv2d_direct" if fast else "im2col")
    # dx by the flipped forward (O > C: never at fewer channels, even where DIRECT is True), with the weight gradient
    # in conv2d_direct_backward; else dx by col2im, and the weight gradient alone on its direct kernel where DIRECT
    # is True
    assert ("conv2d_direct_backward" in names) == (fast and wide)
    assert ("conv2d_direct_weight_grad" in names) == (fast and bool(direct) and not wide)
    assert ("col2im" in names) == (not (fast and wide))
    assert names.count("conv2d_direct") == (1 if fast else 0)


# conv2d_strided: (N, C, H, W, O, kh, kw, stride, padding). ResNet-20's downsampling convs (3x3, stride 2, padding 1,
# even planes: the phase merges at stride 2); odd H and W (phases of unequal sizes, rows no window reaches); padding
# 0, 1, 2, 4 and unequal (above the kernel: outputs that read only padding); kernels 1, 3, 5 and non-square; strides
# 2 to 5 and unequal, 1 in one axis, larger than the kernel (phases with no tap: a zero gradient); C and O not
# multiples of the tiles; a width below one vector and of 1
STRIDED = [(2, 16, 8, 8, 32, 3, 3, (2, 2), (1, 1)), (2, 3, 7, 9, 5, 3, 3, (2, 2), (1, 1)),
           (1, 2, 8, 7, 3, 3, 2, (2, 3), (0, 1)), (3, 5, 9, 10, 13, 1, 1, (2, 2), (1, 0)),
           (2, 4, 11, 6, 9, 5, 5, (3, 2), (2, 2)), (1, 3, 5, 5, 4, 3, 3, (1, 2), (1, 1)),
           (2, 2, 6, 6, 3, 1, 3, (4, 4), (0, 2)), (1, 1, 1, 1, 2, 1, 1, (2, 2), (0, 0)),
           (1, 9, 3, 19, 17, 3, 3, (2, 2), (1, 1)), (2, 6, 13, 12, 7, 3, 3, (2, 2), (0, 0)),
           (1, 8, 34, 33, 8, 3, 3, (2, 2), (1, 1)),  # rows longer than one vector at stride 2 (the merge's second)
           (1, 2, 5, 5, 3, 3, 3, (2, 2), (4, 4)), (2, 3, 6, 7, 4, 2, 3, (5, 3), (3, 2)),  # padding above the kernel
           # 1x1 at stride 2 (ResNet's shortcut; the compact copy of x, one column phase): odd sizes, rows over a
           # vector, padding (odd in w), and the forward's tiles straight into y (O and OH*OW whole tiles)
           (2, 9, 7, 9, 5, 1, 1, (2, 2), (0, 0)), (1, 4, 5, 34, 8, 1, 1, (2, 2), (0, 0)),
           (2, 8, 6, 7, 8, 1, 1, (2, 2), (1, 1)), (2, 16, 32, 32, 32, 1, 1, (2, 2), (0, 0))]


def _strided_out(N, C, H, W, O, kh, kw, s, p):
    return (N, O) + _out(H, W, kh, kw, s, p)


def test_conv2d_strided_reference_matches_torch():
    """The forward, and the input and weight gradients as PyTorch's autograd computes them."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(10)
    for N, C, H, W, O, kh, kw, s, p in STRIDED:
        x, w = rng.standard_normal((N, C, H, W)), rng.standard_normal((O, C, kh, kw))
        tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
        ty = torch.nn.functional.conv2d(tx, tw, stride=s, padding=p)
        y = np.full(ty.shape, np.nan)
        reference.conv2d_strided(y, x, w.reshape(O, -1), kh, kw, s, p)
        np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
        dy = rng.standard_normal(ty.shape)
        ty.backward(torch.tensor(dy))
        dx = np.full(x.shape, np.nan)
        reference.conv2d_strided_input_grad(dx, dy, w.reshape(O, -1), kh, kw, s, p)
        np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-12, atol=1e-12)
        dw = np.full((O, C * kh * kw), np.nan)
        reference.conv2d_strided_weight_grad(dw, x, dy, kh, kw, s, p)
        np.testing.assert_allclose(dw, tw.grad.numpy().reshape(O, -1), rtol=1e-12, atol=1e-11)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_conv2d_strided_parity(name, dtype):
    k = _backend(name)
    rng = np.random.default_rng(11)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    for geom in STRIDED:
        N, C, H, W, O, kh, kw, s, p = geom
        x = rng.standard_normal((N, C, H, W)).astype(dtype)
        w = rng.standard_normal((O, C * kh * kw)).astype(dtype)
        dy = rng.standard_normal(_strided_out(*geom)).astype(dtype)
        want, want_dx, want_dw = np.empty(dy.shape, dtype), np.empty_like(x), np.empty_like(w)
        reference.conv2d_strided(want, x, w, kh, kw, s, p)
        reference.conv2d_strided_input_grad(want_dx, dy, w, kh, kw, s, p)
        reference.conv2d_strided_weight_grad(want_dw, x, dy, kh, kw, s, p)
        for kernel, out, args, expect, terms in (("conv2d_strided", want, (x, w), want, C * kh * kw),
                                                 ("conv2d_strided_input_grad", x, (dy, w), want_dx, O * kh * kw),
                                                 ("conv2d_strided_weight_grad", w, (x, dy), want_dw, dy[:, 0].size)):
            outs = []
            for n_threads in (1, 2, 3):
                a = np.full_like(out, np.nan)
                getattr(k.module, kernel)(a, *args, kh, kw, s, p, n_threads)
                np.testing.assert_allclose(a, expect, rtol=tol, atol=tol * np.sqrt(terms),
                                           err_msg=f"{kernel} {dtype.__name__} {geom} {n_threads} threads")
                outs.append(a)
            for a in outs[1:]:
                np.testing.assert_array_equal(a, outs[0])  # the same bits for any thread count
            a = np.full_like(out, np.nan)
            getattr(k, kernel)(a, *args, kh, kw, s, p)  # through the contract too
            np.testing.assert_array_equal(a, outs[0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_conv2d_strided_backward_is_the_two_kernels(name, dtype):
    """conv2d_strided_backward (both gradients in one parallel region) gives the bits of conv2d_strided_weight_grad
    and conv2d_strided_input_grad, the same backend's, for any thread count and (Cython) in every variant."""
    k = _backend(name)
    rng = np.random.default_rng(12)
    variants = ("scalar", "avx2", "avx512")
    ext = k.module if hasattr(k.module, "conv2d_direct_variant") else None
    best = ext.conv2d_direct_variant() if ext is not None else "scalar"
    # STRIDED's geometries and ResNet-20's first stride-2 layer at a few samples (several chunks)
    geometries = STRIDED + [(9, 16, 32, 32, 32, 3, 3, (2, 2), (1, 1))] if name == "cython" else STRIDED
    try:
        for geom in geometries:
            N, C, H, W, O, kh, kw, s, p = geom
            x = rng.standard_normal((N, C, H, W)).astype(dtype)
            w = rng.standard_normal((O, C * kh * kw)).astype(dtype)
            dy = rng.standard_normal(_strided_out(*geom)).astype(dtype)
            for variant in variants[:variants.index(best) + 1]:
                if ext is not None:
                    ext.conv2d_direct_variant(variant)
                want_dx, want_dw = np.empty_like(x), np.empty_like(w)
                k.module.conv2d_strided_weight_grad(want_dw, x, dy, kh, kw, s, p, 2)
                k.module.conv2d_strided_input_grad(want_dx, dy, w, kh, kw, s, p, 2)
                for n_threads in (1, 2, 3):
                    dx, dw = np.full_like(x, np.nan), np.full_like(w, np.nan)
                    k.module.conv2d_strided_backward(dx, dw, x, dy, w, kh, kw, s, p, n_threads)
                    np.testing.assert_array_equal(dx, want_dx, err_msg=f"{geom} {variant} {n_threads}")
                    np.testing.assert_array_equal(dw, want_dw, err_msg=f"{geom} {variant} {n_threads}")
            dx, dw = np.full_like(x, np.nan), np.full_like(w, np.nan)
            k.conv2d_strided_backward(dx, dw, x, dy, w, kh, kw, s, p)  # through the contract too
            np.testing.assert_array_equal(dx, want_dx)
            np.testing.assert_array_equal(dw, want_dw)
    finally:
        if ext is not None:
            ext.conv2d_direct_variant(best)
    with pytest.raises(ValueError, match=r"dy must have spatial shape \(OH, OW\) = \(3, 3\)"):
        k.conv2d_strided_backward(np.empty((1, 2, 6, 6)), np.empty((4, 18)), np.zeros((1, 2, 6, 6)),
                                  np.zeros((1, 4, 4, 3)), np.zeros((4, 18)), 3, 3, (2, 2), (1, 1))


@pytest.mark.parametrize("name", BACKENDS)
def test_conv2d_strided_non_finite_input_stays_in_its_outputs(name):
    """The compiled kernels compute over padded widths (the phase planes of x, the padded dy), where the last columns
    of a row read the next row: an inf or NaN must reach only the outputs whose window holds it, as in the
    reference; x's row and column that no window reaches (H, W odd at padding 0) reach nothing."""
    k = _backend(name)
    rng = np.random.default_rng(12)
    for p in ((1, 1), (0, 0)):
        x = rng.standard_normal((2, 3, 7, 19))
        x[0, 1, 2, 0], x[1, 2, 4, 18], x[1, 0, 0, 3], x[0, 2, 6, 5] = np.inf, np.nan, -np.inf, np.inf
        w = rng.standard_normal((5, 27))
        want = np.empty(_strided_out(2, 3, 7, 19, 5, 3, 3, (2, 2), p))
        y = np.empty_like(want)
        reference.conv2d_strided(want, x, w, 3, 3, (2, 2), p)
        k.conv2d_strided(y, x, w, 3, 3, (2, 2), p)
        assert np.isfinite(want).sum() > 0.5 * want.size
        np.testing.assert_array_equal(np.isfinite(y), np.isfinite(want))
        np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)
        dy = rng.standard_normal(want.shape)
        dy[0, 1, 0, 0], dy[1, 4, -1, -1], dy[1, 2, 1, -1] = np.inf, np.nan, -np.inf
        want, dx = np.empty_like(x), np.empty_like(x)
        reference.conv2d_strided_input_grad(want, dy, w, 3, 3, (2, 2), p)
        k.conv2d_strided_input_grad(dx, dy, w, 3, 3, (2, 2), p)
        assert np.isfinite(want).sum() > 0.5 * want.size
        np.testing.assert_array_equal(np.isfinite(dx), np.isfinite(want))
        np.testing.assert_allclose(dx, want, rtol=1e-12, atol=1e-12)
        # the weight gradient of the finite dy: x's non-finite values reach only the taps whose sums hold them
        # (at padding 0, x's last row and column, never read, reach none)
        dy = rng.standard_normal(dy.shape)
        want, dw = np.empty_like(w), np.empty_like(w)
        reference.conv2d_strided_weight_grad(want, x, dy, 3, 3, (2, 2), p)
        k.conv2d_strided_weight_grad(dw, x, dy, 3, 3, (2, 2), p)
        assert np.isfinite(want).any()
        np.testing.assert_array_equal(np.isfinite(dw), np.isfinite(want))
        np.testing.assert_allclose(dw, want, rtol=1e-12, atol=1e-12)


def test_conv2d_strided_variants_give_the_same_bits():
    """AVX-512, AVX2 + FMA and the scalar fma() variant of conv_strided.h: one fma chain per output (per lane, then
    the lanes in order, in the weight gradient) in the same order, and the same data movement (the AVX-512 copies,
    split and merge of stride 2's phases), so the same bits."""
    if "cython" not in mg.available_backends():
        pytest.skip("cython backend not built")
    from minigrad._ext import conv as ext
    rng = np.random.default_rng(13)
    names = ("scalar", "avx2", "avx512")
    best = ext.conv2d_direct_variant()
    try:
        for dtype in DTYPES:
            for geom in STRIDED + [(2, 16, 32, 32, 32, 3, 3, (2, 2), (1, 1))]:
                N, C, H, W, O, kh, kw, s, p = geom
                x = rng.standard_normal((N, C, H, W)).astype(dtype)
                w = rng.standard_normal((O, C * kh * kw)).astype(dtype)
                dy = rng.standard_normal(_strided_out(*geom)).astype(dtype)
                outs = []
                for variant in names[:names.index(best) + 1]:
                    ext.conv2d_direct_variant(variant)
                    y, dx, dw = (np.full(a.shape, np.nan, dtype) for a in (dy, x, w))
                    ext.conv2d_strided(y, x, w, kh, kw, s, p, 2)
                    ext.conv2d_strided_input_grad(dx, dy, w, kh, kw, s, p, 2)
                    ext.conv2d_strided_weight_grad(dw, x, dy, kh, kw, s, p, 2)
                    outs.append((y, dx, dw))
                for out in outs[1:]:
                    for a, b in zip(out, outs[0]):
                        np.testing.assert_array_equal(a, b, err_msg=f"{dtype.__name__} {geom}")
    finally:
        ext.conv2d_direct_variant(best)


BAD_STRIDED = [
    (lambda a: a[:2] + (a[2][:, :20].copy(),) + a[3:], ValueError, "weight must have shape (O, C*kh*kw) = (4, 27)"),
    (lambda a: (a[0][:, :, :2].copy(),) + a[1:], ValueError, "y must have spatial shape (OH, OW) = (3, 3)"),
    (lambda a: a[:5] + ((2, 0), (1, 1)), ValueError, "stride must be a pair"),
    (lambda a: a[:5] + (2, (1, 1)), ValueError, "stride must be a pair"),
    (lambda a: a[:5] + ((2, 2), (1, -1)), ValueError, "padding must be a pair"),
    (lambda a: a[:2] + (np.ones((4, 81), np.float32), 9, 3, (2, 2), (1, 1)), ValueError, "too small"),
    (lambda a: a[:2] + (a[2].astype(np.float64),) + a[3:], TypeError, "'weight' must have dtype float32"),
]
BAD_STRIDED_INPUT_GRAD = [
    (lambda a: (a[0][:, :, :3].copy(),) + a[1:], ValueError, "dy must have spatial shape (OH, OW) = (2, 3)"),
    (lambda a: a[:1] + (a[1][:, :, :2].copy(),) + a[2:], ValueError, "dy must have spatial shape (OH, OW) = (3, 3)"),
    (lambda a: a[:2] + (a[2][:3].copy(),) + a[3:], ValueError, "'weight' has shape (3, 27), but O=4"),
    (lambda a: a[:1] + (a[1][:, :, :, ::2],) + a[2:], ValueError, "'dy' must be C-contiguous"),
    (lambda a: a[:5] + ((2, 2), (1,)), ValueError, "padding must be a pair"),
]


BAD_STRIDED_WEIGHT_GRAD = [
    (lambda a: a[:2] + (a[2][:, :, :2].copy(),) + a[3:], ValueError, "dy must have spatial shape (OH, OW) = (3, 3)"),
    (lambda a: (a[0][:, :26].copy(),) + a[1:], ValueError, "dweight must have shape (O, C*kh*kw) = (4, 27)"),
    (lambda a: a[:5] + ((2, 2, 1), (1, 1)), ValueError, "stride must be a pair"),
    (lambda a: a[:1] + (a[1].astype(np.float64),) + a[2:], TypeError, "'x' must have dtype float32"),
]


@pytest.mark.parametrize("name", BACKENDS)
def test_conv2d_strided_bad_arguments(name):
    k = _backend(name)
    args = (np.empty((2, 4, 3, 3), np.float32), np.zeros((2, 3, 6, 6), np.float32), np.ones((4, 27), np.float32),
            3, 3, (2, 2), (1, 1))
    k.conv2d_strided(*args)  # the well-formed call works
    np.testing.assert_array_equal(args[0], 0)
    for edit, exc, msg in BAD_STRIDED:
        with pytest.raises(exc, match=msg.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
            k.conv2d_strided(*edit(args))
    args = (np.empty((2, 3, 6, 6), np.float32), np.zeros((2, 4, 3, 3), np.float32), np.ones((4, 27), np.float32),
            3, 3, (2, 2), (1, 1))
    k.conv2d_strided_input_grad(*args)
    np.testing.assert_array_equal(args[0], 0)
    k.conv2d_strided_input_grad(args[0][:, :, :5].copy(), *args[1:])  # H = 5 and 6 give OH = 3: both valid
    for edit, exc, msg in BAD_STRIDED_INPUT_GRAD:
        with pytest.raises(exc, match=msg.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
            k.conv2d_strided_input_grad(*edit(args))
    args = (np.empty((4, 27), np.float32), np.zeros((2, 3, 6, 6), np.float32), np.ones((2, 4, 3, 3), np.float32),
            3, 3, (2, 2), (1, 1))
    k.conv2d_strided_weight_grad(*args)
    np.testing.assert_array_equal(args[0], 0)
    for edit, exc, msg in BAD_STRIDED_WEIGHT_GRAD:
        with pytest.raises(exc, match=msg.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
            k.conv2d_strided_weight_grad(*edit(args))


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("direct", [None, True])
def test_conv2d_runs_the_strided_kernels_at_stride_2(name, direct, monkeypatch):
    """conv2d at stride 2 (dilation 1, no groups, not a 1x1 without padding): the forward calls conv2d_strided and
    (at C >= 8) the gradients conv2d_strided_weight_grad and conv2d_strided_input_grad, where they are fast (``conv.DIRECT`` None: the Cython
    backend with vector FMAs) or everywhere (True); values and gradients equal those of the im2col path
    (DIRECT = False) and of PyTorch."""
    from minigrad.nn.functional import conv as cv
    kernels_ = ("conv2d_strided", "conv2d_strided_input_grad", "conv2d_strided_weight_grad",
                "conv2d_strided_backward")
    called, (x0, w0, b0), ty = _conv2d_calls(name, direct, monkeypatch, kernels_, 2, 14, (3, 5, 5, 4))
    variant = getattr(_backend(name).module, "conv2d_direct_variant", lambda: "scalar")()
    fast = direct or variant != "scalar"
    # both gradients in one call
    assert called == ([("conv2d_strided", (3, 5, 5, 4)), ("conv2d_strided_backward", (3, 8, 9, 8))] if fast else [])
    # the fused bias + ReLU epilogue (no gradient: chunk by chunk over the strided kernel's output)
    monkeypatch.setattr(cv, "DIRECT", direct)
    with mg.using_backend(name), mg.no_grad():
        y = mg.nn.functional.conv2d_relu(mg.Tensor(x0), mg.Tensor(w0), mg.Tensor(b0), stride=2, padding=1)
    np.testing.assert_allclose(y.numpy(), np.maximum(ty.detach().numpy(), 0), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("direct", [None, True])
@pytest.mark.parametrize("C", [4, 8])
def test_conv2d_strided_1x1_runs_the_strided_kernels(name, direct, C, monkeypatch):
    """A 1x1 convolution at stride 2 (a ResNet's downsampling shortcut) runs the strided kernels as any other stride-2
    convolution where they are fast (or everywhere, DIRECT True): the forward on conv2d_strided and, from 8 input
    channels on (at any count where DIRECT is True), both gradients in conv2d_strided_backward; below 8 the gradients
    on NumPy's GEMMs of the forward's subsampled input. Values and gradients as the im2col path's and PyTorch's."""
    kernels_ = ("conv2d_strided", "conv2d_strided_input_grad", "conv2d_strided_weight_grad",
                "conv2d_strided_backward")
    called, _, _ = _conv2d_calls(name, direct, monkeypatch, kernels_, 2, 16, (3, 5, 5, 4), (3, C, 9, 8),
                                 (5, C, 1, 1), 0)
    variant = getattr(_backend(name).module, "conv2d_direct_variant", lambda: "scalar")()
    fast = direct or variant != "scalar"
    backward = [("conv2d_strided_backward", (3, C, 9, 8))] if C >= 8 or direct else []
    assert called == ([("conv2d_strided", (3, 5, 5, 4))] + backward if fast else [])


def test_conv2d_geometry_is_cached_per_thread_count():
    """conv2d's checked geometry is cached (conv._geometry) by everything it depends on, the thread count too: its
    chunk of samples (nb) holds at least one sample per thread; a geometry that fails a check raises every time."""
    from minigrad.nn.functional import conv as cv
    # 48x48: a sample's columns (72, 2304) above CHUNK_BYTES, so that nb is the thread count
    x, w = mg.Tensor(np.zeros((4, 8, 48, 48), np.float32)), mg.Tensor(np.zeros((8, 8, 3, 3), np.float32))
    before = mg.get_num_threads()
    seen = []
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(cv, "conv2d_forward", lambda x, w, g, *a, **k: (seen.append(g), np.zeros(
        (g.N, g.O, g.OH, g.OW), x.dtype))[1])
    try:
        for n in (1, 3, 1):
            mg.set_num_threads(n)
            mg.nn.functional.conv2d(x, w, padding=1)
        assert [g.nb for g in seen] == [1, 3, 1] and seen[0] is seen[2]
    finally:
        monkeypatch.undo()
        mg.set_num_threads(before)
    for _ in range(2):
        with pytest.raises(ValueError, match="too small for kernel"):
            mg.nn.functional.conv2d(mg.Tensor(np.zeros((1, 8, 2, 2), np.float32)), w)


def test_conv2d_strided_weight_grad_chunks(monkeypatch):
    """The strided weight gradient's chunks are the unit-stride kernel's rule (_wg_chunks: an even count, sizes
    within one sample; ResNet-20's stride-2 layers at batch 32 in 6 and 4 chunks, 16 samples a half); with chunks of 1 and 2 samples (a
    larger chunk after a smaller one in one thread's scratch) every variant and 1-3 threads give the reference's
    values and the same bits; N = 0 gives zeros."""
    if "cython" not in mg.available_backends():
        pytest.skip("cython backend not built")
    from minigrad._ext import conv as ext
    assert ext.conv2d_strided_weight_grad_chunks(32, 16, 32, 32, 32, 3, 3, (2, 2), (1, 1)) == [5, 5, 6, 5, 5, 6]
    assert ext.conv2d_strided_weight_grad_chunks(32, 32, 16, 16, 64, 3, 3, (2, 2), (1, 1)) == [8] * 4
    rng = np.random.default_rng(15)
    names = ("scalar", "avx2", "avx512")
    best = ext.conv2d_direct_variant()
    try:
        for dtype in DTYPES:
            tol = 2e-5 if dtype == np.float32 else 1e-12
            for N, C, H, W, O, kh, kw, s, p in ((7, 8, 9, 8, 33, 3, 3, (2, 2), (1, 1)), (5, 3, 7, 9, 5, 3, 3, (2, 3),
                                                                                       (1, 0))):
                x = rng.standard_normal((N, C, H, W)).astype(dtype)
                dy = rng.standard_normal(_strided_out(N, C, H, W, O, kh, kw, s, p)).astype(dtype)
                want = np.empty((O, C * kh * kw), dtype)
                reference.conv2d_strided_weight_grad(want, x, dy, kh, kw, s, p)
                lanes = 64 // x.itemsize
                sample = (C * (H + 2 * p[0]) * (W + 2 * p[1]) + dy[0, 0].size * -(-O // lanes) * lanes) * x.itemsize
                monkeypatch.setattr(ext, "DIRECT_WG_CHUNK_BYTES", 2 * sample)
                sizes = ext.conv2d_strided_weight_grad_chunks(N, C, H, W, O, kh, kw, s, p, dtype == np.float32)
                # NOTE: below ext.WG_ROWS_BELOW input channels (the second geometry) one sample a chunk
                assert sorted(set(sizes)) == ([1] if C < ext.WG_ROWS_BELOW else [1, 2]) and sum(sizes) == N, sizes
                dws = []
                for variant in names[:names.index(best) + 1]:
                    ext.conv2d_direct_variant(variant)
                    for n_threads in (1, 2, 3):
                        dw = np.full_like(want, np.nan)
                        ext.conv2d_strided_weight_grad(dw, x, dy, kh, kw, s, p, n_threads)
                        np.testing.assert_allclose(dw, want, rtol=tol, atol=tol * N * H * W,
                                                   err_msg=f"{variant} {dtype.__name__} {(N, C, H, W, O)}")
                        dws.append(dw)
                for dw in dws[1:]:
                    np.testing.assert_array_equal(dw, dws[0])
    finally:
        ext.conv2d_direct_variant(best)
    dw = np.full((3, 36), np.nan, np.float32)
    ext.conv2d_strided_weight_grad(dw, np.ones((0, 4, 5, 5), np.float32), np.ones((0, 3, 3, 3), np.float32), 3, 3,
                                   (2, 2), (1, 1), 2)
    np.testing.assert_array_equal(dw, 0)
