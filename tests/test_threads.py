"""Who owns the cores (docs/perf/threads.md): NumPy's OpenBLAS thread count read and set without threadpoolctl
(minigrad/kernels/blas.py), ``set_num_threads``'s BLAS policy, the OMP_WAIT_POLICY set by ``import minigrad``, and
a training step that gives the same bits at 1 and 2 threads. No timings here: those are in docs/perf/threads.md."""
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import minigrad as mg
from minigrad.kernels import blas, threads

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(mg.__file__)))


def _numpy_blas_name():
    try:
        return np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"].lower()
    except Exception:  # NOTE: NumPy < 1.26 has no dict form: nothing to tell
        return ""


needs_openblas = pytest.mark.skipif("openblas" not in _numpy_blas_name(), reason="NumPy is not built on OpenBLAS")


def _run(code, **env):
    """``code`` in a fresh interpreter on this checkout (the OpenMP runtime reads its environment when it loads)."""
    full = {k: v for k, v in os.environ.items()  # NOTE: scripts imported by other tests set some of these
            if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS",
                         "OMP_NUM_THREADS", "MINIGRAD_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS")}
    full.update(PYTHONPATH=ROOT, **env)
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=full,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 0, f"status {r.returncode}:\n{r.stdout}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture
def restore():
    prev, prev_blas = mg.get_num_threads(), mg.get_blas_num_threads()
    yield
    mg.set_num_threads(prev, blas=prev_blas)


# ------------------------------------------------------------------ NumPy's BLAS

@needs_openblas
def test_finds_numpys_openblas():
    libs = blas.openblas_libraries()
    assert libs, "NumPy is built on OpenBLAS but none was found among the loaded libraries"
    assert any("openblas" in os.path.basename(b.path).lower() for b in libs)


@needs_openblas
@pytest.mark.parametrize("n", [1, 2, 3])
def test_sets_and_reads_back_the_blas_thread_count(restore, n):
    assert mg.set_blas_num_threads(n) == n
    assert mg.get_blas_num_threads() == n
    threadpoolctl = pytest.importorskip("threadpoolctl")  # an independent reader of the same library
    counts = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["internal_api"] == "openblas"]
    assert counts and all(c == n for c in counts)


@needs_openblas
def test_set_num_threads_puts_blas_at_one_thread_unless_told(restore):
    mg.set_blas_num_threads(2)
    mg.set_num_threads(2)
    assert (mg.get_num_threads(), mg.get_blas_num_threads()) == (2, 1)
    mg.set_num_threads(2, blas=2)
    assert mg.get_blas_num_threads() == 2
    mg.set_num_threads(1, blas=None)
    assert (mg.get_num_threads(), mg.get_blas_num_threads()) == (1, 2)


@pytest.mark.parametrize("value", [0, -1, 1.5, "2", True])
def test_set_num_threads_refuses_a_bad_blas_count(restore, value):
    with pytest.raises(ValueError, match="set_num_threads: blas must be a positive integer or None"):
        mg.set_num_threads(2, blas=value)
    with pytest.raises(ValueError, match="set_blas_num_threads: n must be a positive integer"):
        mg.set_blas_num_threads(value)


def test_no_openblas_is_a_quiet_no_op(monkeypatch, restore):
    """NumPy on MKL or Accelerate, or a library that is not loaded: None from the getter, nothing set, no warning."""
    monkeypatch.setattr(blas, "_candidate_paths", lambda: [])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert blas.openblas_libraries() == []
        assert mg.get_blas_num_threads() is None
        assert mg.set_blas_num_threads(2) is None
        mg.set_num_threads(2)
    assert mg.get_num_threads() == 2


def test_a_path_not_loaded_or_without_the_symbols_is_skipped(tmp_path):
    """RTLD_NOLOAD: a library not already loaded is never loaded; a loaded one without OpenBLAS's functions is
    no OpenBLAS."""
    missing = str(tmp_path / "libopenblas_not_here.so")
    libm = next((line.split(None, 5)[5].strip() for line in open("/proc/self/maps")
                 if "libm.so" in line), None) if os.path.exists("/proc/self/maps") else None
    assert blas._open(missing) is None
    if libm is not None:
        assert blas._open(libm) is None


@needs_openblas
@pytest.mark.parametrize("env, want", [({"OMP_NUM_THREADS": "2"}, 1), ({"MINIGRAD_NUM_THREADS": "2"}, 1),
                                       ({"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}, 2)])
def test_thread_count_from_the_environment_sets_blas_too(env, want):
    """A user who sets only the environment gets BLAS at 1 thread when minigrad first reads its count; an explicit
    OPENBLAS_NUM_THREADS is theirs and stays."""
    r = _run("import minigrad as mg; mg.set_blas_num_threads(2); b = mg.get_blas_num_threads(); "
             "n = mg.get_num_threads(); print(b, n, mg.get_blas_num_threads())", **env)
    before, n, after = r.stdout.split()
    assert (before, n, after) == ("2", "2", str(want))


@needs_openblas
@pytest.mark.parametrize("env, want", [({}, "1"), ({"OPENBLAS_NUM_THREADS": "2"}, "2")])
def test_blas_is_at_one_thread_from_import(env, want):
    """``import minigrad`` puts BLAS at 1 thread before any GEMM (not at the first read of the thread count, which
    the first step's products came before: a multi-threaded GEMM rounds differently, so that step differed from
    later ones); an explicit OPENBLAS_NUM_THREADS stays."""
    r = _run("import numpy, minigrad as mg; print(mg.kernels.threads._num_threads, mg.get_blas_num_threads())",
             OMP_NUM_THREADS="2", **env)
    assert r.stdout.split() == ["None", want]


# ------------------------------------------------------------------ OpenMP's wait policy

_DISPLAY = """
import os, numpy as np, minigrad as mg, minigrad.nn as nn
print("env", os.environ.get("OMP_WAIT_POLICY"), os.environ.get("GOMP_SPINCOUNT"), mg.kernels.threads.wait_policy_set,
      flush=True)
with mg.using_backend("cython"):
    nn.BatchNorm2d(4)(mg.randn(8, 4, 64, 64))  # loads libgomp, which prints its settings (OMP_DISPLAY_ENV)
"""


@pytest.fixture
def cython_with_openmp():
    if "cython" not in mg.available_backends():
        pytest.skip("the cython backend is not built")
    from minigrad import _build_config
    if not _build_config.OPENMP:
        pytest.skip("built without OpenMP")


def _libgomp_policy(stderr):
    lines = [ln.strip() for ln in stderr.splitlines() if "OMP_WAIT_POLICY =" in ln or "GOMP_SPINCOUNT =" in ln]
    return " ".join(lines)


def test_import_sets_a_short_spin_that_libgomp_reads(cython_with_openmp):
    r = _run(_DISPLAY, OMP_DISPLAY_ENV="VERBOSE")
    assert "env passive 1000 passive, GOMP_SPINCOUNT=1000" in r.stdout
    got = _libgomp_policy(r.stderr)
    assert "OMP_WAIT_POLICY = 'PASSIVE'" in got and "GOMP_SPINCOUNT = '1000'" in got, got


@pytest.mark.parametrize("env, printed, libgomp", [
    ({"OMP_WAIT_POLICY": "active"}, "env active None None", "OMP_WAIT_POLICY = 'ACTIVE'"),
    ({"OMP_WAIT_POLICY": "passive"}, "env passive None None", "GOMP_SPINCOUNT = '0'"),
    ({"GOMP_SPINCOUNT": "5000"}, "env None 5000 None", "GOMP_SPINCOUNT = '5000'"),
])
def test_the_users_wait_policy_wins(cython_with_openmp, env, printed, libgomp):
    r = _run(_DISPLAY, OMP_DISPLAY_ENV="VERBOSE", **env)
    assert printed in r.stdout
    assert libgomp in _libgomp_policy(r.stderr)


def test_no_policy_once_an_openmp_runtime_is_loaded(cython_with_openmp):
    """libgomp already loaded (by another library) read its environment then: minigrad leaves it alone."""
    r = _run("import ctypes; ctypes.CDLL('libgomp.so.1'); import os, minigrad as mg; "
             "print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'), mg.kernels.threads.wait_policy_set)")
    assert r.stdout.split() == ["None", "None", "None"]


# ------------------------------------------------------------------ the same step at 1 and 2 threads

def _steps(model, n, blas_threads, steps=2):
    from minigrad import models, optim
    import minigrad.nn.functional as F

    mg.set_num_threads(n, blas=blas_threads)
    mg.manual_seed(0)
    net = models.build_model(model, in_channels=3 if model == "resnet-tiny" else 1)
    rng = np.random.default_rng(0)
    side = 16 if model == "resnet-tiny" else 28
    x = mg.Tensor(rng.random((8, 3 if model == "resnet-tiny" else 1, side, side), dtype=np.float32))
    y = mg.Tensor(rng.integers(0, 10, 8))
    opt = optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, {k: v.copy() for k, v in net.state_dict().items()}


@pytest.mark.parametrize("model", ["lenet-bn", "resnet-tiny"])
def test_a_training_step_gives_the_same_bits_at_1_and_2_threads(restore, model):
    """Two steps (forward, backward, SGD) at 1 thread, at 2 with BLAS at 1 (the default) and at 2 with BLAS at 2:
    the same losses and parameters, bit for bit."""
    want_loss, want = _steps(model, 1, 1)
    for blas_threads in (1, 2):
        loss, got = _steps(model, 2, blas_threads)
        assert loss == want_loss, (blas_threads, loss, want_loss)
        for k in want:
            np.testing.assert_array_equal(got[k], want[k], err_msg=f"{model} {k} at 2 threads, BLAS {blas_threads}")


# ------------------------------------------------------------------ im2col and col2im, the chunks' kernels

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, window", [
    ((3, 16, 32, 32), (3, 3, (2, 2), (1, 1), (1, 1))),  # a chunk of ResNet-20's 16 -> 32 stride-2 conv
    ((1, 5, 9, 7), (3, 2, (1, 2), (1, 0), (2, 1))),     # one sample: fewer samples than threads
])
def test_im2col_col2im_same_bits_at_any_thread_count(dtype, shape, window):
    """The Cython kernels at any thread count: im2col the reference's bits, col2im (which adds) the same bits as at
    1 thread (tests/test_conv_kernels.py compares col2im with the reference within rounding)."""
    if "cython" not in mg.available_backends():
        pytest.skip("the cython backend is not built")
    from minigrad.kernels import reference
    from minigrad.kernels.rules import out_size

    k = mg.kernels.load("cython").module
    kh, kw, s, p, d = window
    N, C, H, W = shape
    L = N * out_size(H, kh, s[0], p[0], d[0]) * out_size(W, kw, s[1], p[1], d[1])
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(dtype)
    want = np.empty((C * kh * kw, L), dtype)
    reference.im2col(want, x, kh, kw, s, p, d)
    g = rng.standard_normal(want.shape).astype(dtype)
    dx0 = rng.standard_normal(shape).astype(dtype)
    first = None
    for n_threads in (1, 2, 3, 7):
        cols = np.full_like(want, np.nan)
        k.im2col(cols, x, kh, kw, s, p, d, n_threads)
        np.testing.assert_array_equal(cols, want)
        dx = dx0.copy()  # NOTE: col2im adds into dx
        k.col2im(dx, g, kh, kw, s, p, d, n_threads)
        if first is None:
            first = dx
        np.testing.assert_array_equal(dx, first, err_msg=f"col2im at {n_threads} threads")


# ------------------------------------------------------------------ add + ReLU kernels (a residual block's output)

def _add_relu_arrays(dtype, M=3 * (1 << 14) + 5, seed=4):
    """a, b, dy with ties (a + b == 0: +0 and -0), inf, -inf and NaN in the inputs and an inf dy where y is 0."""
    rng = np.random.default_rng(seed)
    a, b, dy = (rng.standard_normal(M).astype(dtype) for _ in range(3))
    b[:3] = -a[:3]
    a[3:6], b[6], a[7], b[7] = [np.inf, -np.inf, np.nan], np.nan, -0.0, -0.0
    dy[1], dy[4] = np.inf, -np.inf
    return a, b, dy


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["numpy", "cython", "numba"])
def test_add_relu_kernels_match_the_reference_at_any_thread_count(name, dtype):
    """Every backend against the reference (the unfused pair's operations), bit for bit, at 1, 2 and 3 threads,
    over more than one parallel chunk; through the contract too."""
    from minigrad.kernels import reference

    if name not in mg.available_backends():
        pytest.skip(f"backend {name} not available")
    k = mg.kernels.load(name)
    a, b, dy = _add_relu_arrays(dtype)
    want_y, want_dx = np.empty_like(a), np.empty_like(a)
    with np.errstate(invalid="ignore"):
        reference.add_relu_forward(want_y, a, b)
        reference.add_relu_backward(want_dx, dy, want_y)
        np.testing.assert_array_equal(want_y, np.maximum(a + b, 0))  # the reference is the pair's arithmetic
        np.testing.assert_array_equal(want_dx, dy * (a + b > 0))
        assert not np.signbit(want_y[7]) and np.isnan(want_dx[4])  # -0 + -0 gives +0 (np.maximum); inf * 0 NaN
        for n_threads in (1, 2, 3):
            y, dx = np.full_like(a, np.nan), np.full_like(a, np.nan)
            k.module.add_relu_forward(y, a, b, n_threads)
            k.module.add_relu_backward(dx, dy, y, n_threads)
            assert y.tobytes() == want_y.tobytes() and dx.tobytes() == want_dx.tobytes(), (name, n_threads)
        y = np.empty_like(a)
        k.add_relu_forward(y, a, b)
        assert y.tobytes() == want_y.tobytes()


def test_add_relu_kernels_check_their_arguments():
    a = np.zeros(8, np.float32)
    with pytest.raises(ValueError, match="add_relu_forward"):
        mg.kernels.kernels().add_relu_forward(np.zeros(7, np.float32), a, a)
    with pytest.raises((TypeError, ValueError), match="add_relu_backward"):
        mg.kernels.kernels().add_relu_backward(a, a, np.zeros(8, np.float64))


# ------------------------------------------------------------------ add (autograd's fan-out sums)

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["numpy", "cython", "numba"])
def test_add_kernels_match_numpy_at_any_thread_count(name, dtype):
    """y = a + b on every backend, bit for bit NumPy's a + b (+-0, inf - inf, NaN included), at 1, 2 and 3 threads
    over more than one parallel chunk; through the contract too."""
    if name not in mg.available_backends():
        pytest.skip(f"backend {name} not available")
    k = mg.kernels.load(name)
    a, b, _ = _add_relu_arrays(dtype)
    a[8], b[8] = np.inf, -np.inf
    with np.errstate(invalid="ignore"):
        want = a + b
        assert np.isnan(want[8]) and not np.signbit(want[0]) and np.signbit(want[7])  # inf - inf; x - x = +0; -0
        for n_threads in (1, 2, 3):
            y = np.full_like(a, np.nan)
            k.module.add(y, a, b, n_threads)
            assert y.tobytes() == want.tobytes(), (name, n_threads)
        y = np.empty_like(a)
        k.add(y, a, b)
        assert y.tobytes() == want.tobytes()


def test_add_kernel_checks_its_arguments():
    a = np.zeros(8, np.float32)
    with pytest.raises(ValueError, match="add"):
        mg.kernels.kernels().add(np.zeros(7, np.float32), a, a)
    with pytest.raises((TypeError, ValueError), match="add"):
        mg.kernels.kernels().add(a, a, np.zeros(8, np.float64))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("backend", ["numpy", "cython", "numba"])
def test_fan_out_sums_are_the_same_bits_at_any_thread_count(backend, dtype):
    """A tensor used three times (two fan-out sums of 2**17 elements and more, the add kernel's size) and a leaf
    used twice through one add (its backward's one array for both inputs): .grad bit for bit equal at 1 and 2
    threads, and to NumPy's sums; the shared array is not written into."""
    if backend not in mg.available_backends():
        pytest.skip(f"backend {backend} not available")
    rng = np.random.default_rng(6)
    shape = (2, 4, 128, 130)  # 133120 elements: over contract.SMALL_PASS
    xd, wd, gd = (rng.standard_normal(shape).astype(dtype) for _ in range(3))

    def run(n_threads):
        prev = mg.get_num_threads()
        mg.set_num_threads(n_threads)
        try:
            with mg.kernels.using_backend(backend):
                x, w = mg.Tensor(xd, requires_grad=True), mg.Tensor(wd, requires_grad=True)
                s = x + x  # add's backward: one array for both parents, then summed into x's gradient
                y = s * w + s.exp() + s
                y.backward(mg.Tensor(gd))
                return x.grad.data.copy(), w.grad.data.copy()
        finally:
            mg.set_num_threads(prev)

    one, two = run(1), run(2)
    assert one[0].tobytes() == two[0].tobytes() and one[1].tobytes() == two[1].tobytes()
    gs = gd * wd + gd * np.exp(xd + xd) + gd  # s's three uses (one thread: NumPy's sums, as before the kernel)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(two[0], gs + gs, rtol=tol, atol=tol)
    np.testing.assert_array_equal(two[1], gd * (xd + xd))


def _sigmoid_arrays(dtype, M=3 * (1 << 14) + 13, seed=5):
    """x over the whole range (|x| up to 120: exp(-x) overflows below -88 in float32, -709 not reached in float64),
    with inf, -inf, NaN, +-0, the float32 overflow edge and a denormal x; dy with inf, NaN and -0."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(M) * 30).astype(dtype)
    x[:14] = [np.inf, -np.inf, np.nan, -0.0, 0.0, -88.5, -88.0, -87.5, 88.5, 1e-40, -1e-40, 17.0, -17.0, 1e-3]
    dy = rng.standard_normal(M).astype(dtype)
    dy[14:17] = [np.inf, np.nan, -0.0]
    return x, dy


def _ulps_apart(a, b):
    """|a - b| in units of b's last place (the spacing at b; a denormal's at the smallest normal); 0 where both are
    NaN or equal."""
    b64 = b.astype(np.float64)
    spacing = np.maximum(np.spacing(np.abs(b)), np.finfo(b.dtype).tiny).astype(np.float64)
    with np.errstate(invalid="ignore"):
        d = np.abs(a.astype(np.float64) - b64) / spacing
    d[np.isnan(a) & np.isnan(b)] = 0
    d[(a == b)] = 0  # NOTE: the infinities
    return d


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["numpy", "cython", "numba"])
def test_sigmoid_kernels_match_torch_at_any_thread_count(name, dtype):
    """Every backend's forward within 4 ulps of torch.sigmoid (each exp is within 1 ulp of the true one: NumPy's,
    libm's, PyTorch's, the Cython kernels' vector expf; 3 is the largest seen), NaN where torch has NaN, 0.5 at -0,
    exactly 0 and 1 at -inf and inf; the backward bit for bit the reference's and torch's sigmoid_backward
    (dy*(1 - y)*y in X, no exp); both bit for bit the same at 1, 2 and 3 threads over several chunks, and through
    the contract."""
    torch = pytest.importorskip("torch")
    from minigrad.kernels import reference

    if name not in mg.available_backends():
        pytest.skip(f"backend {name} not available")
    k = mg.kernels.load(name)
    x, dy = _sigmoid_arrays(dtype)
    want_y = torch.sigmoid(torch.from_numpy(x)).numpy()
    y1 = np.full_like(x, 7)
    k.module.sigmoid_forward(y1, x, 1)
    assert np.nanmax(_ulps_apart(y1, want_y)) <= 4, (name, np.nanmax(_ulps_apart(y1, want_y)))
    assert np.array_equal(np.isnan(y1), np.isnan(want_y)) and np.isnan(y1[2])
    assert y1[0] == 1 and y1[1] == 0 and y1[3] == 0.5 and y1[4] == 0.5
    assert np.all((y1 >= 0) & (y1 <= 1) | np.isnan(x))
    want_dx = torch.ops.aten.sigmoid_backward(torch.from_numpy(dy), torch.from_numpy(y1)).numpy()
    ref_dx = np.empty_like(x)
    with np.errstate(invalid="ignore"):
        reference.sigmoid_backward(ref_dx, dy, y1)
    assert ref_dx.tobytes() == want_dx.tobytes()
    for n_threads in (1, 2, 3):
        y, dx = np.full_like(x, np.nan), np.full_like(x, np.nan)
        k.module.sigmoid_forward(y, x, n_threads)
        with np.errstate(invalid="ignore"):
            k.module.sigmoid_backward(dx, dy, y, n_threads)
        assert y.tobytes() == y1.tobytes() and dx.tobytes() == want_dx.tobytes(), (name, n_threads)
    y = np.empty_like(x)
    k.sigmoid_forward(y, x)
    assert y.tobytes() == y1.tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_tensor_op_against_torch(dtype):
    """Tensor.sigmoid (the kernels; NumPy for float64's forward, float16 and empty arrays) on a non-contiguous
    input, forward within 4 ulps of torch and the gradient bit for bit torch's sigmoid_backward of that y, on every
    backend."""
    torch = pytest.importorskip("torch")
    x, dy = _sigmoid_arrays(dtype, M=2 * 60 * 101)
    x = x.reshape(120, 101)[::2, :100]  # NOTE: non-contiguous, the MLP's (60, 100)
    dy = dy[: 6000].reshape(60, 100)
    tx = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_()
    ty = torch.sigmoid(tx)
    ty.backward(torch.from_numpy(dy))
    for name in mg.available_backends():
        with mg.kernels.using_backend(name):
            t = mg.tensor(x, requires_grad=True)
            y = t.sigmoid()
            with np.errstate(invalid="ignore"):
                y.backward(mg.tensor(dy))
        assert np.nanmax(_ulps_apart(y.numpy(), ty.detach().numpy())) <= 4, name
        # NOTE: not against tx.grad: where y is near 1, 1 - y turns y's ulps into large relative differences
        want = torch.ops.aten.sigmoid_backward(torch.from_numpy(dy), torch.from_numpy(y.numpy())).numpy()
        assert t.grad.numpy().tobytes() == want.tobytes(), name
    assert mg.tensor(np.zeros((0, 3), dtype)).sigmoid().shape == (0, 3)
    h = mg.tensor(np.array([-1.0, 0.0, 2.0], np.float16)).sigmoid().numpy()
    assert h.dtype == np.float16 and np.allclose(h, torch.sigmoid(torch.tensor([-1.0, 0.0, 2.0])).numpy(), atol=1e-3)


def test_sigmoid_kernels_check_their_arguments():
    a = np.zeros(8, np.float32)
    with pytest.raises(ValueError, match="sigmoid_forward"):
        mg.kernels.kernels().sigmoid_forward(np.zeros(7, np.float32), a)
    with pytest.raises((TypeError, ValueError), match="sigmoid_backward"):
        mg.kernels.kernels().sigmoid_backward(a, a, np.zeros(8, np.float64))


@needs_openblas
def test_show_config_reports_blas_and_the_wait_policy(restore):
    import io

    mg.set_num_threads(2)
    out = io.StringIO()
    mg.show_config(file=out)
    assert (f"threads: 2 (NumPy's OpenBLAS: 1; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(runtime default)')}, "
            f"GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT', '(runtime default)')})") in out.getvalue()


def test_one_pass_kernels_run_on_one_thread_below_small_pass(restore, monkeypatch):
    """At 2 threads the batch norm's channel phases and max pooling get one thread below contract.SMALL_PASS
    elements (LeNet-BN's second batch norm, 64 x 16 x 10 x 10) and the thread count at or above it (ResNet-20's
    smallest, 32 x 64 x 8 x 8); other kernels keep contract.SMALL (conv2d_direct on LeNet's 64 x 6 x 14 x 14)."""
    from minigrad.kernels import contract
    backend = mg.kernels.kernels()
    module = backend.module
    seen = []
    for name in ("channel_stats", "max_pool2d_forward", "conv2d_direct"):
        raw = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _raw=raw, _k=name: (seen.append((_k, a[-1])), _raw(*a))[1])
        backend.__dict__.pop(name, None)
    mg.set_num_threads(2)
    try:
        for shape, want in (((64, 16, 10, 10), 1), ((32, 64, 8, 8), 2)):
            assert (np.prod(shape) < contract.SMALL_PASS) == (want == 1)
            x = np.ones(shape, np.float32)
            backend.channel_stats(np.empty(shape[1]), np.empty(shape[1]), x.reshape(shape[0], shape[1], -1), True)
            y = np.empty(shape[:2] + (shape[2] // 2, shape[3] // 2), np.float32)
            backend.max_pool2d_forward(y, np.empty(y.shape, np.int64), x, 2, 2, (2, 2), (0, 0))
        backend.conv2d_direct(np.empty((64, 16, 10, 10), np.float32), np.ones((64, 6, 14, 14), np.float32),
                              np.ones((16, 150), np.float32), 5, 5, (0, 0))
    finally:
        for name in ("channel_stats", "max_pool2d_forward", "conv2d_direct"):
            backend.__dict__.pop(name, None)
    assert seen == [("channel_stats", 1), ("max_pool2d_forward", 1), ("channel_stats", 2), ("max_pool2d_forward", 2),
                    ("conv2d_direct", 2)]


def test_compiled_fan_out_sums_are_eagers_at_two_threads():
    """minigrad.compile's replayed walk sums a tensor's gradients as eager's does (tensor._sum_grads: the add
    kernel on the team at 2 threads): three steps with fan-out sums of 2**17 elements and more (recorded, checked,
    replayed) at 2 threads give the .grad of three eager steps bit for bit, and the replay's sums go through
    _sum_grads."""
    rng = np.random.default_rng(7)
    shape = (2, 4, 128, 130)
    xd, wd, cd = (rng.standard_normal(shape).astype(np.float32) for _ in range(3))
    calls = []

    def make():
        x, w = mg.Tensor(xd, requires_grad=True), mg.Tensor(wd, requires_grad=True)

        def step(c):
            s = x + x
            loss = ((s * w + s.exp() + s) * c).sum()
            loss.backward()
            return loss
        return x, w, step

    prev = mg.get_num_threads()
    mg.set_num_threads(2)
    T = sys.modules["minigrad.tensor"]
    real = T._sum_grads

    def counted(a, b):
        calls.append(a.size)
        return real(a, b)
    T._sum_grads = counted
    try:
        out = []
        for compiled in (False, True):
            x, w, step = make()
            fn = mg.compile(step) if compiled else step
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # NOTE: a fallback to eager would warn
                for _ in range(3):
                    before = len(calls)
                    fn(mg.Tensor(cd))
            out.append((x.grad.data.copy(), w.grad.data.copy()))
    finally:
        T._sum_grads = real
        mg.set_num_threads(prev)
    assert out[0][0].tobytes() == out[1][0].tobytes() and out[0][1].tobytes() == out[1][1].tobytes()
    assert len(calls) > before and min(calls[before:]) >= mg.kernels.contract.SMALL_PASS  # the replay's sums
