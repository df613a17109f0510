"""Hostile and careless input at the library level (issue 15): absurd thread counts, zero-size parameters,
absurd window geometry, a training batch of one. Each test reproduced its fault before the fix; the faults that
crashed or hung the process run in a subprocess with a timeout, so that a crash fails the test instead of
killing pytest."""
import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import nn, optim
from minigrad.data import DataLoader, TensorDataset
from minigrad.kernels import threads

from conftest import BACKENDS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(mg.__file__)))


def _run(code, *argv, timeout=120, **env):
    """Run ``code`` in a fresh interpreter on this checkout; a crash or a hang is a failed test, not a dead run."""
    full = dict(os.environ, PYTHONPATH=ROOT, **env)
    try:
        r = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *argv], capture_output=True, text=True,
                           env=full, cwd=ROOT, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the reproducer ran for more than {timeout} s (a hang)")
    assert r.returncode == 0, f"the reproducer died with status {r.returncode}:\n{r.stdout}\n{r.stderr[-3000:]}"
    return r


# ------------------------------------------------------------------ thread counts

@pytest.fixture
def restore_threads():
    prev = mg.get_num_threads()
    yield
    mg.set_num_threads(prev)


@pytest.mark.parametrize("n", [10**6, 40000, 2**31, 2**70])
def test_set_num_threads_clamps_an_absurd_count_with_a_warning(restore_threads, n):
    with pytest.warns(RuntimeWarning, match=f"set_num_threads: {n} threads .* using {threads.max_threads()}"):
        mg.set_num_threads(n)
    assert mg.get_num_threads() == threads.max_threads()


def test_set_num_threads_keeps_a_sane_count_and_takes_numpy_ints(restore_threads):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mg.set_num_threads(np.int64(4))  # more than a 2-core machine's CPUs, but within the bound: kept
    assert mg.get_num_threads() == 4 and type(mg.get_num_threads()) is int
    assert threads.max_threads() >= max(threads.TEAM_FLOOR, 1)


@pytest.mark.parametrize("value", [0, -1, -(10**6), 2.0, None])
def test_set_num_threads_refuses_non_positive_and_non_integers(value):
    with pytest.raises(ValueError, match="positive integer"):
        mg.set_num_threads(value)


_KERNELS_AFTER_THREADS = """
import warnings, numpy as np, minigrad as mg, minigrad.nn.functional as F
from minigrad import nn, optim
warnings.simplefilter("ignore")
for n in {counts}:
    if n is not None:
        mg.set_num_threads(n)
    for backend in {backends}:
        with mg.using_backend(backend):
            rng = np.random.default_rng(0)
            x = mg.Tensor(rng.standard_normal((64, 8, 16, 16)).astype(np.float32), requires_grad=True)
            y = nn.BatchNorm2d(8)(F.max_pool2d(x, 2))
            y = F.log_softmax(F.conv2d(y, mg.Tensor(np.ones((4, 8, 3, 3), np.float32))).reshape(64, -1), 1)
            y.backward(np.ones(y.shape, np.float32))
            p = mg.Tensor(np.ones(1 << 16, np.float32), requires_grad=True)
            p.grad = mg.Tensor(np.ones(1 << 16, np.float32))
            optim.Adam([p]).step()
            assert np.isfinite(x.grad.numpy()).all() and np.isfinite(p.numpy()).all()
print("ok", mg.get_num_threads())
"""


@pytest.mark.parametrize("n", [10**6, 40000, 2**31])
def test_kernels_run_after_set_num_threads_absurd(n):
    """Was: SIGSEGV in libgomp at 10**6, libgomp exiting the process at 40000, OverflowError at 2**31."""
    r = _run(_KERNELS_AFTER_THREADS.format(counts=[n], backends=BACKENDS))
    assert r.stdout.split() == ["ok", str(threads.max_threads())]


@pytest.mark.parametrize("var", ["MINIGRAD_NUM_THREADS", "OMP_NUM_THREADS"])
def test_kernels_run_with_an_absurd_thread_count_in_the_environment(var):
    env = {"MINIGRAD_NUM_THREADS": "", "OMP_NUM_THREADS": "", var: str(10**6)}
    r = _run(_KERNELS_AFTER_THREADS.format(counts=[None], backends=BACKENDS), **env)
    assert r.stdout.split() == ["ok", str(threads.max_threads())]
    r = _run("import minigrad as mg; mg.get_num_threads()", **env)
    assert f"{var}: 1000000 threads is more than this machine can use" in r.stderr


def test_raw_cython_kernels_clamp_any_n_threads():
    """The compiled kernels take n_threads from callers that bypass the contract too: 0, negatives and absurd
    counts run (on 1 thread, or at most max(64, the CPUs)) and give the 1-thread bits. One kernel per module."""
    if "cython" not in BACKENDS:
        pytest.skip("the cython backend is not built")
    r = _run("""
        import numpy as np
        from minigrad.kernels import cython as k
        rng = np.random.default_rng(0)
        x = rng.standard_normal((16, 8, 4096))
        g = rng.standard_normal(1 << 16).astype(np.float32)
        img = rng.standard_normal((4, 3, 9, 9))
        def calls(n):
            mean, m2, y = np.empty(8), np.empty(8), np.empty_like(x)
            k.channel_stats(mean, m2, x, True, n)
            k.batch_norm_forward(y, np.empty(8), np.empty(8), x, np.ones(8), np.zeros(8), 1e-5, n)
            sm = np.empty((128, 4096))
            k.log_softmax_forward(sm, x.reshape(128, 4096), n)
            cols = np.empty((27, 4 * 49))
            k.im2col(cols, img, 3, 3, (1, 1), (0, 0), (1, 1), n)
            p, buf = np.ones(1 << 16, np.float32), np.empty(1 << 16, np.float32)
            k.sgd_update(p, buf, g, 0.1, 0.9, 0.0, 0.0, False, True, n)
            return [mean, m2, y, sm, cols, p]
        want = calls(1)
        for n in (0, -1, -2**31, 3, 10**6, 2**31, 2**62):
            assert all(np.array_equal(a, b) for a, b in zip(calls(n), want)), n
        print("ok")
        """)
    assert r.stdout.strip() == "ok"


def test_every_cython_wrapper_clamps_n_threads():
    """Each ``def`` in minigrad/_ext/*.pyx that takes ``n_threads`` types it Py_ssize_t (an int overflowed at
    2**31) and passes it through ``team_size`` before any nogil code. The fused BN+ReLU wrappers were added
    without either; a source check catches the next one, whichever kernel it is."""
    import glob
    import re
    missing = []
    for path in sorted(glob.glob(os.path.join(ROOT, "minigrad", "_ext", "*.pyx"))):
        src = open(path).read()
        for m in re.finditer(r"^def (\w+)\((.*?)\):\n(.*?)(?=^\S)", src, re.S | re.M):
            name, params, body = m.groups()
            if "n_threads" not in params:
                continue
            if not re.search(r"Py_ssize_t n_threads", params):
                missing.append(f"{os.path.basename(path)}:{name}: n_threads is not Py_ssize_t")
            head = body.split("with nogil")[0]
            if "team_size(n_threads)" not in head:
                missing.append(f"{os.path.basename(path)}:{name}: no team_size(n_threads) before nogil")
    assert not missing, missing


def test_fused_relu_kernels_clamp_any_n_threads():
    if "cython" not in BACKENDS:
        pytest.skip("the cython backend is not built")
    r = _run("""
        import numpy as np
        from minigrad.kernels import cython as k
        rng = np.random.default_rng(0)
        x, dy = rng.standard_normal((4, 8, 300)), rng.standard_normal((4, 8, 300))
        sh, sc, of, mean = rng.standard_normal(8), rng.random(8) + 0.5, rng.standard_normal(8), np.zeros(8)
        def calls(n):
            y, dx, sdy, sdyx = np.empty_like(x), np.empty_like(x), np.empty(8), np.empty(8)
            k.channel_apply_relu(y, x, sh, sc, of, n)
            k.channel_backward_sums_relu(sdy, sdyx, dy, x, mean, sh, sc, of, n)
            k.channel_backward_apply_relu(dx, dy, x, sc, sh, sh, sc, of, sc, of, n)
            return [y, dx, sdy, sdyx]
        want = calls(1)
        for n in (0, -1, 3, 10**6, 2**31, 2**62):
            assert all(np.array_equal(a, b) for a, b in zip(calls(n), want)), n
        print("ok")
        """)
    assert r.stdout.strip() == "ok", r.stderr[-2000:]


# ------------------------------------------------------------------ optimizers: zero-size parameters

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.1),
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda ps: optim.Adam(ps, lr=0.1, weight_decay=0.01),
    lambda ps: optim.AdamW(ps, lr=0.1),
], ids=["sgd", "sgd-nesterov", "adam", "adamw"])
def test_optimizers_step_over_a_zero_size_parameter(backend, make):
    """PyTorch's optimizers skip an empty parameter (its state is created and stays empty); ours raised."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    empty, full = np.zeros((0, 3), np.float32), rng.standard_normal((4, 3)).astype(np.float32)
    grad = rng.standard_normal((4, 3)).astype(np.float32)
    ps = [mg.Tensor(empty.copy(), requires_grad=True), mg.Tensor(full.copy(), requires_grad=True)]
    tp = [torch.tensor(empty, requires_grad=True), torch.tensor(full, requires_grad=True)]
    opt = make(ps)
    topt = {"SGD": torch.optim.SGD, "Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW}[type(opt).__name__](
        tp, **{k: v for k, v in opt.defaults.items()})
    with mg.using_backend(backend):
        for _ in range(3):
            ps[0].grad, ps[1].grad = mg.Tensor(empty.copy()), mg.Tensor(grad.copy())
            tp[0].grad, tp[1].grad = torch.tensor(empty), torch.tensor(grad)
            opt.step()
            topt.step()
    assert ps[0].shape == (0, 3)
    np.testing.assert_allclose(ps[1].numpy(), tp[1].detach().numpy(), rtol=1e-6, atol=1e-7)
    # the empty parameter's state as PyTorch keeps it (plain SGD keeps none; ours holds an empty dict)
    ours = {i: s for i, s in opt.state_dict()["state"].items() if s}
    theirs = topt.state_dict()["state"]
    assert ours.keys() == theirs.keys()
    if 0 in ours:
        assert ours[0].keys() == theirs[0].keys()
        assert all(np.shape(ours[0][k]) == tuple(theirs[0][k].shape) for k in ours[0])


# ------------------------------------------------------------------ window geometry

BIG = 2**62
# (call, expected): "ok" (a result, checked below), or (exception type, words the message must contain)
GEOMETRY = {
    "conv2d padding=2**62": ("F.conv2d(x, w, padding=BIG)", (ValueError, "padding")),
    "conv2d stride=padding=2**62": ("F.conv2d(x, w, stride=BIG, padding=BIG)", (ValueError, "padding")),
    "conv2d stride=2**62 padding=2**61": ("F.conv2d(x, w, stride=BIG, padding=BIG // 2)",
                                          (ValueError, "padded input")),
    "conv2d stride=2**63-1": ("F.conv2d(x, w, stride=2**63 - 1, padding=1)", (ValueError, "stride")),
    "conv2d dilation=2**62": ("F.conv2d(x, w, dilation=BIG)", (ValueError, "dilation")),
    "conv2d padding=2**40": ("F.conv2d(x, w, padding=2**40)", (ValueError, "padding")),
    "conv2d stride=2**62": ("F.conv2d(x, w, stride=BIG)", "ok"),
    "max_pool2d kernel=2**40": ("F.max_pool2d(x, 2**40)", (ValueError, "too small")),
    "max_pool2d kernel=2**40 padding=2**39": ("F.max_pool2d(x, 2**40, stride=1, padding=2**39)", "ok"),
    "max_pool2d kernel=2**62 padding=2**61": ("F.max_pool2d(x, BIG, padding=BIG // 2)", "ok"),
    "max_pool2d kernel=2**63": ("F.max_pool2d(x, 2**63, padding=2**61)", (ValueError, "kernel_size")),
    "max_pool2d stride=2**63-1": ("F.max_pool2d(x, 3, stride=2**63 - 1, padding=1)", (ValueError, "stride")),
    "avg_pool2d kernel=2**40": ("F.avg_pool2d(x, 2**40)", (ValueError, "too small")),
    "avg_pool2d kernel=2**40 padding=2**39": ("F.avg_pool2d(x, 2**40, stride=1, padding=2**39)",
                                              (ValueError, "padding")),
    "avg_pool2d kernel=(2**20, 1) padding=(2**19, 0)": ("F.avg_pool2d(x, (2**20, 1), stride=1, padding=(2**19, 0))",
                                                        "ok"),
    "avg_pool2d padding=2**62": ("F.avg_pool2d(x, BIG, stride=BIG, padding=BIG)", (ValueError, "padding")),
    "adaptive_avg_pool2d output=2**62": ("F.adaptive_avg_pool2d(x, BIG)", (ValueError, "output")),
    "adaptive_avg_pool2d output=0": ("F.adaptive_avg_pool2d(x, 0)", (ValueError, "output_size")),
    "im2col via the contract, padding=2**62": (
        "mg.kernels.kernels().im2col(np.empty((18, 1), np.float32), x.numpy(), 3, 3, (BIG, BIG), (BIG, BIG), (1, 1))",
        (ValueError, "im2col: padding")),
    "max_pool2d_forward via the contract, kernel 2**40": (
        "mg.kernels.kernels().max_pool2d_forward(np.empty((1, 2, 6, 6), np.float32), np.empty((1, 2, 6, 6), "
        "np.int64), x.numpy(), 2**40, 2**40, (1, 1), (2**39, 2**39))", "ok"),
    # NOTE: the strided kernels' scratch holds stride_h * stride_w phase planes: conv2d routes a stride past the
    # padded input to im2col ("conv2d stride=2**62" above hung there before), and the contract refuses it
    "conv2d_strided via the contract, stride=2**62": (
        "mg.kernels.kernels().conv2d_strided(np.empty((1, 3, 1, 1), np.float32), x.numpy(), "
        "w.numpy().reshape(3, -1), 3, 3, (BIG, BIG), (0, 0))", (ValueError, "conv2d_strided: stride")),
    "conv2d_strided_weight_grad via the contract, stride=2**62": (
        "mg.kernels.kernels().conv2d_strided_weight_grad(np.empty((3, 18), np.float32), x.numpy(), "
        "np.ones((1, 3, 1, 1), np.float32), 3, 3, (BIG, BIG), (0, 0))",
        (ValueError, "conv2d_strided_weight_grad: stride")),
}

_GEOMETRY_RUN = """
import json, sys, time, numpy as np, minigrad as mg
import minigrad.nn.functional as F
BIG = 2**62
mg.set_backend(sys.argv[1])
rng = np.random.default_rng(0)
x = mg.Tensor(rng.standard_normal((1, 2, 5, 5)).astype(np.float32), requires_grad=True)
w = mg.Tensor(rng.standard_normal((3, 2, 3, 3)).astype(np.float32), requires_grad=True)
out = {}
for name, call in json.loads(sys.argv[2]).items():
    start = time.perf_counter()
    try:
        y = eval(call)
        if isinstance(y, mg.Tensor):
            y.backward(np.ones(y.shape, np.float32))
            x.grad = w.grad = None
            y = y.numpy()
        out[name] = ["ok", None if y is None else y.tolist()]
    except Exception as e:
        out[name] = [type(e).__name__, str(e)]
    out[name].append(time.perf_counter() - start)
print(json.dumps(out))
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_absurd_window_geometry_fails_fast_with_the_argument_named(backend):
    """Was: Cython's conv2d returned uninitialised memory at padding = stride = 2**62 (its index arithmetic
    overflowed), the NumPy backend's max_pool2d looped over 2**80 window taps, and NumPy's own errors named no
    argument. Now one rule (minigrad.kernels.rules.window_out_size, check_array_size) refuses, before any backend
    runs, what the 64-bit indices cannot hold; windows that fit run in time proportional to the input."""
    calls = {name: call for name, (call, _) in GEOMETRY.items()}
    r = _run(_GEOMETRY_RUN, backend, json.dumps(calls), timeout=240)
    results = json.loads(r.stdout)
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 5)).astype(np.float32)  # the reproducer's x
    for name, (_, want) in GEOMETRY.items():
        kind, value, seconds = results[name]
        assert seconds < 10, f"{name}: took {seconds:.1f} s"
        if want == "ok":
            assert kind == "ok", f"{name}: {kind}: {value}"
            continue
        assert kind == want[0].__name__, f"{name}: got {kind}: {value}"
        assert want[1] in value and value.split(":")[0] in name, f"{name}: message {value!r}"
    # the windows that fit give the right values: every window covers the whole 5x5 plane
    planes_max = x.max(axis=(2, 3))
    for name in ("max_pool2d kernel=2**40 padding=2**39", "max_pool2d kernel=2**62 padding=2**61"):
        y = np.array(results[name][1], np.float32)
        assert y.shape[:2] == (1, 2) and (y == planes_max[:, :, None, None]).all(), name
    y = np.array(results["avg_pool2d kernel=(2**20, 1) padding=(2**19, 0)"][1])
    np.testing.assert_allclose(y, np.broadcast_to(x.sum(axis=2, dtype=np.float64)[:, :, None, :] / 2**20, y.shape),
                               rtol=1e-6)
    assert results["conv2d stride=2**62"][1] is not None


# ------------------------------------------------------------------ a training batch of one

def test_a_last_batch_of_one_gets_pytorchs_message_and_what_to_do():
    rng = np.random.default_rng(0)
    data = TensorDataset(rng.standard_normal((9, 4)).astype(np.float32), np.zeros(9, np.int64))
    model = nn.Sequential(nn.Linear(4, 10), nn.BatchNorm1d(10))
    with pytest.raises(ValueError) as err:
        for x, _ in DataLoader(data, batch_size=4, drop_last=False):
            model(x)
    message = str(err.value)
    assert message.startswith("batch_norm: Expected more than 1 value per channel when training, got input "
                              "size (1, 10)")
    assert "drop_last=True" in message and "model.eval()" in message
    assert sum(1 for x, _ in DataLoader(data, batch_size=4, drop_last=True) if model(x) is not None) == 2
    model.eval()
    assert model(mg.Tensor(data.tensors[0][:1])).shape == (1, 10)
