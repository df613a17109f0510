"""The backend registry: names, errors, the environment variable, threads, and a light import."""
import os
import subprocess
import sys

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import kernels


def test_available_backends_and_default():
    avail = mg.available_backends()
    assert "numpy" in avail
    assert set(avail) <= {"numpy", "cython", "numba"}
    assert mg.get_backend() in avail
    # the default is the fastest available: cython when built
    assert avail[0] == ("cython" if "cython" in avail else avail[0])


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown backend 'cuda'.*known backends"):
        mg.set_backend("cuda")
    with pytest.raises(ValueError, match="unknown backend"):
        with mg.using_backend("torch"):
            pass


def test_unavailable_backend_names_what_is_missing(monkeypatch):
    monkeypatch.setattr(kernels.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RuntimeError, match="needs the 'numba' package"):
        mg.set_backend("numba")


def test_using_backend_restores_and_set_backend_sticks():
    before = mg.get_backend()
    with mg.using_backend("numpy"):
        assert mg.get_backend() == "numpy"
        assert kernels.kernels().name == "numpy"
    assert mg.get_backend() == before
    try:
        mg.set_backend("numpy")
        assert mg.get_backend() == "numpy"
    finally:
        mg.set_backend(before)


def test_using_backend_is_per_thread():
    """A block's backend is its thread's alone: another thread, started inside the block, reads the default, and
    its own block does not leak back."""
    import threading

    seen = {}

    def other():
        seen["before"] = mg.get_backend(), kernels.kernels().name
        with mg.using_backend("numpy"):
            seen["inside"] = mg.get_backend()
    default = mg.get_backend()
    other_backend = "numpy" if default != "numpy" else mg.available_backends()[-1]
    with mg.using_backend(other_backend):
        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert mg.get_backend() == other_backend
    assert seen == {"before": (default, default), "inside": "numpy"}
    assert mg.get_backend() == default


@pytest.mark.parametrize("value", [0, -1, 1.5, "2", True])
def test_set_num_threads_validates(value):
    with pytest.raises(ValueError, match="positive integer"):
        mg.set_num_threads(value)


def test_set_num_threads_round_trip():
    prev = mg.get_num_threads()
    try:
        mg.set_num_threads(1)
        assert mg.get_num_threads() == 1
    finally:
        mg.set_num_threads(prev)


def _python(code, **env):
    full = dict(os.environ, **env)
    full.pop("MINIGRAD_BACKEND", None) if "MINIGRAD_BACKEND" not in env else None
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full)


def test_import_is_light_and_does_not_import_numba_or_torch():
    r = _python("import sys, minigrad; print('numba' in sys.modules, 'torch' in sys.modules, "
                "'minigrad.kernels.numba' in sys.modules)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "False", "False"]


def test_numba_is_imported_on_first_use_of_its_backend():
    if "numba" not in mg.available_backends():
        pytest.skip("numba not installed")
    r = _python("import sys, minigrad as mg, minigrad.nn.functional as F\n"
                "F.layer_norm(mg.randn(4, 8), (8,))\n"
                "a = 'numba' in sys.modules\n"
                "with mg.using_backend('numba'):\n"
                "    F.layer_norm(mg.randn(4, 8), (8,))\n"
                "print(a, 'numba' in sys.modules)", MINIGRAD_BACKEND="numpy")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "True"]


def test_environment_variable_picks_the_backend():
    r = _python("import minigrad as mg; print(mg.get_backend())", MINIGRAD_BACKEND="numpy")
    assert r.stdout.strip() == "numpy"
    r = _python("import minigrad as mg; mg.get_backend()", MINIGRAD_BACKEND="nope")
    assert r.returncode != 0 and "unknown backend 'nope'" in r.stderr


def test_show_config_reports_build_and_backends():
    import io

    buf = io.StringIO()
    mg.show_config(file=buf)
    text = buf.getvalue()
    assert "available backends" in text and "threads" in text
    if "cython" in mg.available_backends():
        assert "OpenMP: yes" in text or "OpenMP: NO" in text


def test_every_backend_has_every_kernel():
    from minigrad.kernels import contract

    for name in mg.available_backends():
        module = kernels.load(name).module
        missing = [k for k in contract.SPECS if not callable(getattr(module, k, None))]
        assert not missing, f"{name} lacks {missing}"


def test_log_softmax_kernel_parity_across_backends():
    x = np.random.default_rng(0).standard_normal((7, 13)).astype(np.float32)
    outs = {}
    for name in mg.available_backends():
        with mg.using_backend(name):
            t = mg.Tensor(x, requires_grad=True)
            y = F.log_softmax(t, dim=1)
            y.backward(np.ones_like(x))
            outs[name] = (y.numpy(), t.grad.numpy())
    for name, (y, g) in outs.items():
        np.testing.assert_allclose(y, outs["numpy"][0], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(g, outs["numpy"][1], rtol=1e-5, atol=1e-6)
