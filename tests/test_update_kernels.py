"""Parity suite of the in-place update kernels (running statistics, SGD, Adam): every backend gives the NumPy
reference's bits, at 1 and 2 threads, float32 and float64, sizes below and above the one-thread cut-off.

The reference itself is checked against PyTorch by tests/test_optim.py (optimizers) and tests/test_nn_norm.py
(running statistics); here the compiled backends must repeat its roundings exactly.
"""
import numpy as np
import pytest

from minigrad import kernels
from conftest import BACKENDS, DTYPES
from minigrad.kernels import contract, reference

SIZES = [1, 7, 100, 78_400]  # the last is above contract.SMALL: the compiled kernels use their threads

SGD_CASES = {  # lr, momentum, dampening, weight_decay, nesterov
    "momentum": (0.01, 0.9, 0.0, 0.0, False),
    "plain": (0.1, 0.0, 0.0, 0.0, False),
    "dampening+wd": (0.05, 0.8, 0.3, 1e-2, False),
    "nesterov+wd": (0.02, 0.9, 0.0, 5e-4, True),
}
ADAM_CASES = {  # lr, beta1, beta2, eps, weight_decay, decoupled
    "adam": (1e-3, 0.9, 0.999, 1e-8, 0.0, False),
    "adam+l2": (1e-2, 0.8, 0.99, 1e-6, 1e-2, False),
    "adamw": (3e-3, 0.9, 0.999, 1e-8, 1e-2, True),
    "eps0": (1e-3, 0.5, 0.9, 0.0, 0.0, False),
}


def _arrays(rng, m, dtype, k):
    return [rng.standard_normal(m).astype(dtype) for _ in range(k)]


def _step_matches_reference(backend, kernel, state, grad, scalars, what):
    """One ``kernel`` step from ``state`` on ``backend`` (checked call, then the raw kernel at 1 and 2 threads)
    gives the reference's bits; returns the reference's new state."""
    want = [a.copy() for a in state]
    getattr(reference, kernel)(*want, grad, *scalars)
    got = [a.copy() for a in state]
    getattr(backend, kernel)(*got, grad, *scalars)
    _assert_bits(got, want, what)
    for n_threads in (1, 2):
        raw = [a.copy() for a in state]
        getattr(backend.module, kernel)(*raw, grad, *scalars, n_threads)
        _assert_bits(raw, want, f"{what} raw n_threads={n_threads}")
    return want


def _assert_bits(got, want, what):
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w, err_msg=what)


@pytest.mark.parametrize("m", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(SGD_CASES))
@pytest.mark.parametrize("name", BACKENDS)
def test_sgd_update_equals_reference(name, case, dtype, m):
    rng = np.random.default_rng(m)
    lr, momentum, dampening, wd, nesterov = SGD_CASES[case]
    p, buf, g1, g2 = _arrays(rng, m, dtype, 4)
    backend = kernels.load(name)
    for first, grad in ((True, g1), (False, g2)):  # the first step copies g into the buffer, later ones blend
        p, buf = _step_matches_reference(backend, "sgd_update", (p, buf), grad,
                                         (lr, momentum, dampening, wd, nesterov, first),
                                         f"{name} sgd {case} first={first}")


@pytest.mark.parametrize("m", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(ADAM_CASES))
@pytest.mark.parametrize("name", BACKENDS)
def test_adam_update_equals_reference(name, case, dtype, m):
    rng = np.random.default_rng(m)
    lr, beta1, beta2, eps, wd, decoupled = ADAM_CASES[case]
    p, grad = _arrays(rng, m, dtype, 2)
    exp_avg, exp_avg_sq = np.zeros(m, dtype), np.zeros(m, dtype)
    backend = kernels.load(name)
    for step in (1, 2, 50):
        p, exp_avg, exp_avg_sq = _step_matches_reference(backend, "adam_update", (p, exp_avg, exp_avg_sq), grad,
                                                         (lr, beta1, beta2, eps, wd, decoupled, step),
                                                         f"{name} adam {case} step={step}")
        grad = grad[::-1].copy()


@pytest.mark.parametrize("rows", [1, 3, 16])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_running_stats_update_equals_reference(name, dtype, rows):
    rng = np.random.default_rng(rows)
    C = 37
    rm, rv = rng.standard_normal(C).astype(dtype), rng.random(C).astype(dtype) + 0.5
    mean = 100.0 + rng.standard_normal((rows, C))
    rstd = 1.0 / np.sqrt(rng.random((rows, C)) + 1e-3)
    for momentum in (0.1, 1.0, 0.0, 1 / 3):
        scalars = (momentum, 1e-5, 49.0)
        want = [rm.copy(), rv.copy()]
        reference.running_stats_update(*want, mean, rstd, *scalars)
        got = [rm.copy(), rv.copy()]
        kernels.load(name).running_stats_update(*got, mean, rstd, *scalars)
        _assert_bits(got, want, f"{name} running stats momentum={momentum}")


def test_running_stats_reference_formula():
    """The reference against the formula written out: running = (1 - m)*running + m*stat, unbiased variance."""
    rng = np.random.default_rng(0)
    rm, rv = np.zeros(5), np.ones(5)
    var = rng.random((4, 5)) + 0.1
    mean = rng.standard_normal((4, 5))
    eps, count, m = 1e-5, 10.0, 0.1
    reference.running_stats_update(rm, rv, mean, 1.0 / np.sqrt(var + eps), m, eps, count)
    np.testing.assert_allclose(rm, m * mean.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(rv, (1 - m) + m * (var * count / (count - 1)).mean(axis=0), rtol=1e-12)


@pytest.mark.parametrize("name", BACKENDS)
def test_update_kernels_reject_bad_arguments(name):
    backend = kernels.load(name)
    p = np.zeros(4, np.float32)
    with pytest.raises(TypeError, match="'momentum_buffer'"):
        backend.sgd_update(p, np.zeros(4), np.zeros(4, np.float32), 0.1, 0.9, 0.0, 0.0, False, True)
    with pytest.raises(ValueError, match="'grad'"):
        backend.sgd_update(p, np.zeros(4, np.float32), np.zeros(5, np.float32), 0.1, 0.9, 0.0, 0.0, False, True)
    with pytest.raises(ValueError, match="writeable"):
        ro = np.zeros(4, np.float32)
        ro.setflags(write=False)
        backend.adam_update(ro, p.copy(), p.copy(), p.copy(), 1e-3, 0.9, 0.999, 1e-8, 0.0, False, 1)
    with pytest.raises(ValueError, match="'rstd'"):
        backend.running_stats_update(p, p.copy(), np.zeros((1, 4)), np.zeros((1, 5)), 0.1, 1e-5, 3.0)
    assert "sgd_update" in contract.SPECS and "adam_update" in contract.SPECS


@pytest.mark.parametrize("case", sorted(SGD_CASES))
@pytest.mark.parametrize("name", BACKENDS)
def test_sgd_update_many_equals_sgd_update_per_group(name, case):
    """The list kernel: groups of every size (below and above the one-thread cut-off) and both dtypes in one call
    give the reference's bits per group, checked and raw at 1 and 2 threads."""
    rng = np.random.default_rng(5)
    lr, momentum, dampening, wd, nesterov = SGD_CASES[case]
    shapes = [(m, dtype) for m in SIZES for dtype in DTYPES]
    state = [_arrays(rng, m, dtype, 2) for m, dtype in shapes]
    backend = kernels.load(name)
    for first in (True, False):
        grads = tuple(rng.standard_normal(m).astype(dtype) for m, dtype in shapes)
        scalars = (lr, momentum, dampening, wd, nesterov, first)
        want = [[a.copy() for a in s] for s in state]
        for (p, buf), g in zip(want, grads):
            reference.sgd_update(p, buf, g, *scalars)
        runs = {"checked": lambda *a: backend.sgd_update_many(*a)}
        runs.update({f"raw n_threads={n}": (lambda *a, n=n: backend.module.sgd_update_many(*a, n)) for n in (1, 2)})
        for what, run in runs.items():
            got = [[a.copy() for a in s] for s in state]
            run(tuple(p for p, _ in got), tuple(b for _, b in got), grads, *scalars)
            for g_, w_ in zip(got, want):
                _assert_bits(g_, w_, f"{name} sgd_update_many {case} first={first} {what}")
        state = want


@pytest.mark.parametrize("name", BACKENDS)
def test_sgd_update_many_rejects_bad_arguments(name):
    backend = kernels.load(name)
    p, q = np.zeros(4, np.float32), np.zeros(3)
    ok = ((p, q), (p.copy(), q.copy()), (p.copy(), q.copy()))
    backend.sgd_update_many(*ok, 0.1, 0.9, 0.0, 0.0, False, True)
    with pytest.raises(TypeError, match="'params' must be a tuple"):
        backend.sgd_update_many(list(ok[0]), *ok[1:], 0.1, 0.9, 0.0, 0.0, False, True)
    with pytest.raises(ValueError, match="one length"):
        backend.sgd_update_many(ok[0], ok[1][:1], ok[2], 0.1, 0.9, 0.0, 0.0, False, True)
    with pytest.raises(ValueError, match="group 1: sgd_update: argument 'grad'"):
        backend.sgd_update_many(*ok[:2], (p.copy(), np.zeros(4)), 0.1, 0.9, 0.0, 0.0, False, True)
    with pytest.raises(TypeError, match="group 0: .*'momentum_buffer'"):
        backend.sgd_update_many(ok[0], (np.zeros(4), q.copy()), ok[2], 0.1, 0.9, 0.0, 0.0, False, True)
    with pytest.raises(TypeError, match="takes 9 arguments"):
        backend.sgd_update_many(*ok, 0.1, 0.9, 0.0, 0.0, False)
    assert "sgd_update_many" in contract.LIST_SPECS and callable(backend.module.sgd_update_many)
