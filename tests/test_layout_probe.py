"""Layouts and references probed against PyTorch (scripts/probe_layouts.py; docs/hardening.md, session 30): arrays
in other layouts (Fortran, transposed, stepped, flipped, broadcast) through layers, losses, optimizers and
``minigrad.compile`` on every backend; and the grad tensor a caller keeps a reference to, which PyTorch accumulates
into in place and a new set_to_none backward replaces."""
import os
import sys
import warnings

import numpy as np
import pytest
import torch

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F
from minigrad import Tensor

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
import probe_layouts  # noqa: E402

BACKENDS = mg.available_backends()


_step = probe_layouts.train_step


@pytest.mark.parametrize("compiled", [False, True])
def test_kept_grad_reference_keeps_its_step(compiled):
    # NOTE: the replay wrote every step's gradient into one reused grad tensor: a reference kept to an earlier
    # step's p.grad changed under the caller from the third call on (PyTorch's set_to_none backward makes new ones)
    rng = np.random.default_rng(0)
    m = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = mg.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    step = _step(m, opt)
    run = mg.compile(step) if compiled else step
    kept = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NOTE: a replay that falls back to eager would not test the replay
        for _ in range(5):
            run(Tensor(rng.standard_normal((5, 6)).astype(np.float32)), Tensor(rng.integers(0, 3, 5)))
            kept += [(p.grad, p.grad.data.copy()) for p in m.parameters()]
    for g, values in kept:
        np.testing.assert_array_equal(g.data, values)


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("shape", [(3,), ()])
def test_accumulation_into_a_kept_grad_as_pytorch(compiled, shape):
    # PyTorch accumulates into the grad tensor in place: a reference kept before zero_grad(set_to_none=False) and
    # backward holds the new gradient (minigrad made a new tensor, leaving the reference on the zeros)
    start = np.linspace(0.5, 1.5, int(np.prod(shape))).reshape(shape)
    tp = torch.nn.Parameter(torch.from_numpy(start.copy()))
    p = nn.Parameter(start.copy())
    topt, opt = torch.optim.SGD([tp], lr=0.1), mg.optim.SGD([p], lr=0.1)

    def step(k):
        opt.zero_grad(set_to_none=False)
        (p * k * p).sum().backward()
        opt.step()

    run = mg.compile(step) if compiled else step
    tkept, kept = [], []
    for k in (0.5, 1.5, 2.5, 3.5):
        topt.zero_grad(set_to_none=False)
        (tp * k * tp).sum().backward()
        topt.step()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            run(Tensor(np.float64(k)))  # NOTE: a tensor: the same key every call, so the later calls replay
        tkept.append(tp.grad)
        kept.append(p.grad)
    for a, b in zip(kept, tkept):
        np.testing.assert_allclose(a.data, b.numpy(), rtol=1e-12, atol=1e-15)
    assert all(g is kept[0] for g in kept) and all(g is tkept[0] for g in tkept)


def test_accumulation_leaves_a_shared_array_alone():
    # a backward may give two leaves the same array; accumulating into one must not change the other's gradient
    a, b = nn.Parameter(np.ones(3)), nn.Parameter(np.ones(3))
    (a + b).sum().backward()
    before = b.grad.data.copy()
    (a * 2).sum().backward()
    np.testing.assert_array_equal(b.grad.data, before)
    np.testing.assert_array_equal(a.grad.data, np.full(3, 3.0))


def test_cross_entropy_logits_in_any_layout():
    # np.empty_like kept a Fortran input's order for the log-softmax output, which the kernel refuses
    rng = np.random.default_rng(2)
    logits, target = rng.standard_normal((5, 4)), rng.integers(0, 4, 5)
    for kind in ("fortran", "transposed", "step", "flip"):
        x = Tensor(probe_layouts.layout(logits, kind), requires_grad=True)
        F.cross_entropy(x, Tensor(target)).backward()
        xt = torch.from_numpy(logits.copy()).requires_grad_(True)
        torch.nn.functional.cross_entropy(xt, torch.from_numpy(target)).backward()
        np.testing.assert_allclose(x.grad.data, xt.grad.numpy(), rtol=1e-12, atol=1e-15)


def _assert_no_difference(probe):
    assert not probe.failures, "\n".join(probe.failures[:20])


@pytest.mark.parametrize("backend", BACKENDS)
def test_layers_in_every_layout_as_pytorch(backend):
    probe = probe_layouts.Probe()
    with mg.using_backend(backend):
        for name, make, make_torch, shape in probe_layouts._cases():
            probe_layouts.probe_layer(probe, name, make, make_torch, shape, np.float32, backend,
                                      np.random.default_rng(0))
    _assert_no_difference(probe)
    assert probe.checks > 1000


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("threads", [1, 2])
def test_optimizers_and_compile_in_every_layout_as_pytorch(backend, threads):
    probe, saved = probe_layouts.Probe(), mg.get_num_threads()
    mg.set_num_threads(threads)
    try:
        with mg.using_backend(backend), warnings.catch_warnings():
            warnings.simplefilter("error")
            for dtype in (np.float32, np.float64):
                rng = np.random.default_rng(1)
                probe_layouts.probe_losses(probe, dtype, backend, rng)
                probe_layouts.probe_optimizers(probe, dtype, backend, rng)
                probe_layouts.probe_compile(probe, dtype, backend, rng)
    finally:
        mg.set_num_threads(saved)
    _assert_no_difference(probe)


def _shared_grad_step(lib, params, G=None):
    """Two leaves given one gradient array by add's backward (with ``G``, the caller's seed itself), then clipped in
    place by clip_grad_norm_."""
    a, b = params
    y = (a + b) * 2 if G is None else a + b
    if G is None:
        y.sum().backward()
    else:
        y.backward(G)
    (torch.nn.utils.clip_grad_norm_ if lib == "torch" else nn.utils.clip_grad_norm_)([a, b], 0.5)


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("seed", [False, True])
def test_leaves_given_one_array_get_a_gradient_each(compiled, seed):
    # NOTE: a and b's .grad were one array: clip_grad_norm_ scaled it twice and a later in-place scale of a's
    # gradient reached b's (and, with a seed passed to backward, the caller's array), silently
    start = np.array([0.5, -1.0, 2.0])
    tparams = [torch.nn.Parameter(torch.from_numpy(start * k)) for k in (1.0, 2.0)]
    params = [nn.Parameter(start * k) for k in (1.0, 2.0)]
    G = np.array([1.0, -2.0, 0.5])
    _shared_grad_step("torch", tparams, torch.from_numpy(G.copy()) if seed else None)
    tparams[0].grad.mul_(3.0)

    opt = mg.optim.SGD(params, lr=0.1)

    def step(g):
        opt.zero_grad()  # NOTE: not p.grad = None, which a recording does not see
        _shared_grad_step("minigrad", params, g)

    run = mg.compile(step) if compiled else step
    for _ in range(3):
        Gm = G.copy()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            run(Tensor(Gm) if seed else None)
        params[0].grad.data *= 3.0
        for p, q in zip(params, tparams):
            np.testing.assert_allclose(p.grad.data, q.grad.numpy(), rtol=1e-12)
        np.testing.assert_array_equal(Gm, G)


def test_a_broadcast_gradient_is_written_in_place_as_pytorch():
    # sum's and mean's backward give a read-only broadcast: zero_grad(set_to_none=False) and clip_grad_norm_ raised
    p, tp = nn.Parameter(np.ones((2, 3))), torch.nn.Parameter(torch.ones((2, 3), dtype=torch.float64))
    opt, topt = mg.optim.SGD([p], lr=0.1), torch.optim.SGD([tp], lr=0.1)
    for loss in (lambda p: p.sum(), lambda p: p.mean(), lambda p: (p.sum(0) * 2).sum()):
        opt.zero_grad(), topt.zero_grad()
        loss(p).backward()
        loss(tp).backward()
        nn.utils.clip_grad_norm_([p], 0.5)
        torch.nn.utils.clip_grad_norm_([tp], 0.5)
        np.testing.assert_allclose(p.grad.data, tp.grad.numpy(), rtol=1e-12)
        opt.step(), topt.step()
        opt.zero_grad(set_to_none=False), topt.zero_grad(set_to_none=False)
    np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("make, tmake, shape", [
    (lambda: nn.BatchNorm2d(3), lambda: torch.nn.BatchNorm2d(3), (4, 3, 5, 5)),
    (lambda: nn.InstanceNorm1d(3, track_running_stats=True),
     lambda: torch.nn.InstanceNorm1d(3, track_running_stats=True), (2, 3, 6)),
    (lambda: nn.BatchNorm1d(3, momentum=None), lambda: torch.nn.BatchNorm1d(3, momentum=None), (5, 3))])
def test_strided_running_stats_updated_in_place(backend, make, tmake, shape):
    # NOTE: running statistics whose .data a user set to a strided view: PyTorch updates them in place; the update
    # kernel takes C-contiguous buffers only, so it raised here. The view (and the array under it) must see the
    # update, and the values between its elements stay as they were
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    m, t = make(), tmake()
    under_m, under_v = np.full(6, 7.0, np.float32), np.full(6, 7.0, np.float32)
    under_m[::2], under_v[::2] = 0.0, 1.0
    m.running_mean.data, m.running_var.data = under_m[::2], under_v[::2]
    with mg.using_backend(backend):
        for _ in range(2):
            m(Tensor(x))
            t(torch.tensor(x))
    np.testing.assert_allclose(under_m[::2], t.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(under_v[::2], t.running_var.numpy(), rtol=1e-5, atol=1e-6)
    assert (under_m[1::2] == 7.0).all() and (under_v[1::2] == 7.0).all()
