"""conv2d's kernel calls per geometry (``conv._call``): the contract's checks on the first call of a kernel with
arrays of given shapes and dtypes, later calls straight to the kernel; arrays of another dtype or shape are checked
again (and refused where the contract refuses them)."""
import numpy as np
import pytest

import minigrad as mg
from minigrad.kernels import contract, reference
from minigrad.nn.functional import conv as cv


def test_conv_call_checks_once_per_shape_and_dtype(monkeypatch):
    checked = []
    real = contract._checked
    monkeypatch.setattr(contract, "_checked", lambda kernel, args: checked.append(kernel) or real(kernel, args))
    # NOTE: a geometry of its own, not _geometry's (whose cached calls other tests made)
    g = cv._ConvGeometry((2, 4, 5, 5), (6, 4, 3, 3), (1, 1), (1, 1), (1, 1), 1, 5, 5, 4)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 5, 5)).astype(np.float32)
    w = rng.standard_normal((6, 36)).astype(np.float32)
    want = np.empty((2, 6, 5, 5), np.float32)
    reference.conv2d_direct(want, x, w, 3, 3, (1, 1))
    for _ in range(3):
        y = np.full((2, 6, 5, 5), np.nan, np.float32)
        cv._call(g, "conv2d_direct", y, x, w, 3, 3, (1, 1))
        np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    assert checked == ["conv2d_direct"]
    with pytest.raises(TypeError, match="dtype"):  # float64 y for float32 x: checked again, refused
        cv._call(g, "conv2d_direct", np.empty((2, 6, 5, 5)), x, w, 3, 3, (1, 1))
    with pytest.raises(ValueError, match="spatial shape"):  # another y shape: checked again, refused
        cv._call(g, "conv2d_direct", np.empty((2, 6, 6, 6), np.float32), x, w, 3, 3, (1, 1))
    assert checked == ["conv2d_direct"] * 3


def test_conv_call_checks_again_per_backend_and_thread_count(monkeypatch):
    checked = []
    real = contract._checked
    monkeypatch.setattr(contract, "_checked", lambda kernel, args: checked.append(kernel) or real(kernel, args))
    g = cv._ConvGeometry((2, 4, 5, 5), (6, 4, 3, 3), (1, 1), (1, 1), (1, 1), 1, 5, 5, 4)
    x = np.ones((2, 4, 5, 5), np.float32)
    w = np.ones((6, 36), np.float32)
    y = np.empty((2, 6, 5, 5), np.float32)
    threads = mg.get_num_threads()
    try:
        for n in (1, 2, 1):
            mg.set_num_threads(n)
            cv._call(g, "conv2d_direct", y, x, w, 3, 3, (1, 1))
        with mg.using_backend("numpy"):
            cv._call(g, "conv2d_direct", y, x, w, 3, 3, (1, 1))
    finally:
        mg.set_num_threads(threads)
    assert len(checked) == 3
    assert (y[:, :, 1:-1, 1:-1] == 36).all()
