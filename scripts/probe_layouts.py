"""Probe minigrad against PyTorch with arrays in every layout: inputs, weights and gradients C-contiguous,
Fortran, transposed, sliced with steps, flipped (negative strides) and broadcast (stride 0), float32 and float64,
on each backend at 1 and 2 threads, eagerly and inside ``minigrad.compile`` (the layout changing between steps,
``.data`` and ``.grad`` assigned between steps). A value that differs beyond float tolerance is printed; the exit
status is the number of differences (docs/hardening.md, session 30).

    python scripts/probe_layouts.py [--backends numpy,cython,numba] [--threads 1,2] [--quick]

Layers without a PyTorch twin (Batch Renorm, ghost batch norm, FRN + TLU, EvoNorm) are compared with the same
layer on C-contiguous arrays; PyTorch's layers are compared with PyTorch on C-contiguous arrays.
"""
import argparse
import sys

import numpy as np
import torch

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F
from minigrad import Tensor

LAYOUTS = ("c", "fortran", "transposed", "step", "flip", "broadcast")


def layout(v, kind):
    """An array equal to ``v`` (C-contiguous) in layout ``kind``, or None where that layout cannot hold it
    (``broadcast``: ``v`` must be constant along axis 0)."""
    if kind == "c":
        return v.copy()
    if kind == "fortran":
        return np.asfortranarray(v) if v.ndim > 1 else None
    if kind == "transposed":
        if v.ndim < 2:
            return None
        axes = tuple(reversed(range(v.ndim)))
        return np.ascontiguousarray(v.transpose(axes)).transpose(axes)
    if kind == "step":
        buf = np.zeros(v.shape[:-1] + (2 * v.shape[-1],), v.dtype)
        buf[..., ::2] = v
        return buf[..., ::2]
    if kind == "flip":
        return np.flip(np.flip(v).copy())
    if kind == "broadcast":
        if v.ndim < 2 or v.shape[0] < 2 or not (v == v[:1]).all():
            return None
        return np.broadcast_to(v[:1], v.shape)
    raise ValueError(kind)


def _tol(dtype):
    return (2e-4, 2e-5) if dtype == np.float32 else (1e-9, 1e-11)


class Probe:
    def __init__(self, verbose=False):
        self.failures, self.checks, self.verbose = [], 0, verbose
        self.errors, self.n_errors = {}, 0  # message -> the first case that raised it

    def error(self, what, e):
        key = f"{type(e).__name__}: {e}"
        if key not in self.errors:
            self.errors[key] = what
        self.n_errors += 1

    def close(self, what, got, want, dtype):
        self.checks += 1
        got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
        rtol, atol = _tol(dtype)
        if got.shape != want.shape or not np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=True):
            err = np.abs(got - want).max() if got.shape == want.shape else f"shapes {got.shape} {want.shape}"
            self.failures.append(f"{what}: max |diff| {err}")
            if self.verbose:
                print("FAIL", self.failures[-1], flush=True)


def _values(rng, shape, dtype, const0=False):
    v = rng.standard_normal(shape)
    if const0:
        v = np.broadcast_to(v[:1], shape).copy()
    return v.astype(dtype)


# ------------------------------------------------------------------ layers against PyTorch (or themselves)

def _cases():
    """(name, minigrad module factory, torch module factory or None, input shape, input constant along axis 0)."""
    T = torch.nn
    return [
        ("Linear", lambda: nn.Linear(6, 5), lambda: T.Linear(6, 5), (4, 6)),
        ("Linear3d", lambda: nn.Linear(6, 5), lambda: T.Linear(6, 5), (2, 3, 6)),
        ("Conv2d", lambda: nn.Conv2d(3, 4, 3, padding=1), lambda: T.Conv2d(3, 4, 3, padding=1), (2, 3, 6, 6)),
        ("Conv2d-s2", lambda: nn.Conv2d(8, 4, 3, stride=2, padding=1), lambda: T.Conv2d(8, 4, 3, stride=2, padding=1),
         (2, 8, 7, 7)),
        ("Conv2d-1x1s2", lambda: nn.Conv2d(3, 4, 1, stride=2), lambda: T.Conv2d(3, 4, 1, stride=2), (2, 3, 6, 6)),
        ("Conv2d-g2", lambda: nn.Conv2d(4, 6, 3, groups=2), lambda: T.Conv2d(4, 6, 3, groups=2), (2, 4, 5, 5)),
        ("Conv2d-direct", lambda: nn.Conv2d(8, 8, 3, padding=1), lambda: T.Conv2d(8, 8, 3, padding=1), (2, 8, 6, 6)),
        ("Conv1d", lambda: nn.Conv1d(3, 4, 3), lambda: T.Conv1d(3, 4, 3), (2, 3, 9)),
        ("ConvT2d", lambda: nn.ConvTranspose2d(3, 4, 3, stride=2), lambda: T.ConvTranspose2d(3, 4, 3, stride=2),
         (2, 3, 4, 4)),
        ("MaxPool2d", lambda: nn.MaxPool2d(2), lambda: T.MaxPool2d(2), (2, 3, 6, 6)),
        ("AvgPool2d", lambda: nn.AvgPool2d(3, 2, 1), lambda: T.AvgPool2d(3, 2, 1), (2, 3, 7, 7)),
        ("AdaptiveAvg", lambda: nn.AdaptiveAvgPool2d(2), lambda: T.AdaptiveAvgPool2d(2), (2, 3, 5, 5)),
        ("AdaptiveMax", lambda: nn.AdaptiveMaxPool2d(2), lambda: T.AdaptiveMaxPool2d(2), (2, 3, 5, 5)),
        ("ReLU", nn.ReLU, T.ReLU, (3, 4, 5)),
        ("Sigmoid", nn.Sigmoid, T.Sigmoid, (3, 4, 5)),
        ("Tanh", nn.Tanh, T.Tanh, (3, 4, 5)),
        ("GELU", nn.GELU, T.GELU, (3, 4, 5)),
        ("SiLU", nn.SiLU, T.SiLU, (3, 4, 5)),
        ("LeakyReLU", lambda: nn.LeakyReLU(0.1), lambda: T.LeakyReLU(0.1), (3, 4, 5)),
        ("ELU", nn.ELU, T.ELU, (3, 4, 5)),
        ("Softmax", lambda: nn.Softmax(dim=1), lambda: T.Softmax(dim=1), (3, 4, 5)),
        ("Softmax-1", lambda: nn.Softmax(dim=-1), lambda: T.Softmax(dim=-1), (3, 4, 5)),
        ("LogSoftmax", lambda: nn.LogSoftmax(dim=1), lambda: T.LogSoftmax(dim=1), (4, 5)),
        ("BatchNorm1d", lambda: nn.BatchNorm1d(5), lambda: T.BatchNorm1d(5), (6, 5)),
        ("BatchNorm1d-3d", lambda: nn.BatchNorm1d(4), lambda: T.BatchNorm1d(4), (3, 4, 5)),
        ("BatchNorm2d", lambda: nn.BatchNorm2d(3), lambda: T.BatchNorm2d(3), (2, 3, 4, 5)),
        ("BatchNorm2d-eval", lambda: nn.BatchNorm2d(3).eval(), lambda: T.BatchNorm2d(3).eval(), (2, 3, 4, 5)),
        ("BatchNorm3d", lambda: nn.BatchNorm3d(3), lambda: T.BatchNorm3d(3), (2, 3, 2, 3, 4)),
        ("LayerNorm", lambda: nn.LayerNorm(5), lambda: T.LayerNorm(5), (3, 4, 5)),
        ("LayerNorm2", lambda: nn.LayerNorm((4, 5)), lambda: T.LayerNorm((4, 5)), (3, 4, 5)),
        ("RMSNorm", lambda: nn.RMSNorm(5), lambda: T.RMSNorm(5), (3, 4, 5)),
        ("GroupNorm", lambda: nn.GroupNorm(2, 4), lambda: T.GroupNorm(2, 4), (3, 4, 3, 3)),
        ("InstanceNorm2d", lambda: nn.InstanceNorm2d(3, affine=True), lambda: T.InstanceNorm2d(3, affine=True),
         (2, 3, 4, 5)),
        ("InstanceNorm1d", lambda: nn.InstanceNorm1d(3, affine=True, track_running_stats=True),
         lambda: T.InstanceNorm1d(3, affine=True, track_running_stats=True), (2, 3, 6)),
        ("BatchRenorm2d", lambda: nn.BatchRenorm2d(3), None, (2, 3, 4, 5)),
        ("BatchRenorm1d", lambda: nn.BatchRenorm1d(5), None, (6, 5)),
        ("GhostBN2d", lambda: nn.BatchNorm2d(3, virtual_batch_size=2), None, (4, 3, 3, 3)),
        ("GhostBN1d", lambda: nn.BatchNorm1d(5, virtual_batch_size=3), None, (6, 5)),
        ("FRN", lambda: nn.FilterResponseNorm2d(3), None, (2, 3, 4, 5)),
        ("FRN-leps", lambda: nn.FilterResponseNorm2d(3, learnable_eps=True), None, (2, 3, 4, 5)),
        ("TLU", lambda: nn.TLU(3), None, (2, 3, 4, 5)),
        ("EvoNormB0", lambda: nn.EvoNorm2d(4, "B0"), None, (2, 4, 3, 3)),
        ("EvoNormS0", lambda: nn.EvoNorm2d(4, "S0", num_groups=2), None, (2, 4, 3, 3)),
        ("DecorrelatedBN", lambda: nn.DecorrelatedBatchNorm2d(4), None, (3, 4, 3, 3)),
        ("WeightNorm", lambda: nn.utils.parametrizations.weight_norm(nn.Linear(6, 5)),
         lambda: torch.nn.utils.parametrizations.weight_norm(T.Linear(6, 5)), (4, 6)),
        ("SpectralNorm", _seeded(lambda: nn.utils.parametrizations.spectral_norm(nn.Linear(6, 5))), None, (4, 6)),
        ("SpectralNormConv", _seeded(lambda: nn.utils.parametrizations.spectral_norm(nn.Conv2d(3, 4, 3))), None,
         (2, 3, 5, 5)),
        ("FrozenBN", lambda: nn.FrozenBatchNorm2d(3), None, (2, 3, 4, 5)),
        ("Upsample", lambda: nn.Upsample(scale_factor=2), lambda: T.Upsample(scale_factor=2), (2, 3, 3, 4)),
        ("UpsampleBilinear", lambda: nn.Upsample(scale_factor=2, mode="bilinear"),
         lambda: T.Upsample(scale_factor=2, mode="bilinear"), (2, 3, 3, 4)),
        # Sequential's fused pairs (batch norm then an activation, linear or conv then ReLU, FRN then TLU)
        ("Seq-Linear-BN-ReLU", lambda: nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU()),
         lambda: T.Sequential(T.Linear(6, 5), T.BatchNorm1d(5), T.ReLU()), (4, 6)),
        ("Seq-BN-Sigmoid", lambda: nn.Sequential(nn.BatchNorm1d(5), nn.Sigmoid()),
         lambda: T.Sequential(T.BatchNorm1d(5), T.Sigmoid()), (4, 5)),
        ("Seq-BN2d-Tanh", lambda: nn.Sequential(nn.BatchNorm2d(3), nn.Tanh()),
         lambda: T.Sequential(T.BatchNorm2d(3), T.Tanh()), (2, 3, 4, 4)),
        ("Seq-BN2d-ReLU-eval", lambda: nn.Sequential(nn.BatchNorm2d(3), nn.ReLU()).eval(),
         lambda: T.Sequential(T.BatchNorm2d(3), T.ReLU()).eval(), (2, 3, 4, 4)),
        ("Seq-Conv-ReLU", lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()),
         lambda: T.Sequential(T.Conv2d(3, 4, 3, padding=1), T.ReLU()), (2, 3, 5, 5)),
        ("Seq-Conv-BN-ReLU", lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()),
         lambda: T.Sequential(T.Conv2d(3, 4, 3), T.BatchNorm2d(4), T.ReLU()), (2, 3, 5, 5)),
        ("Seq-Linear-ReLU", lambda: nn.Sequential(nn.Linear(6, 5), nn.ReLU()),
         lambda: T.Sequential(T.Linear(6, 5), T.ReLU()), (4, 6)),
        ("Seq-FRN-TLU", lambda: nn.Sequential(nn.FilterResponseNorm2d(3), nn.TLU(3)), None, (2, 3, 4, 5)),
    ]


def _seeded(make):
    """``make`` with minigrad's generator seeded first: every module built alike (spectral norm's random u)."""
    def build():
        mg.manual_seed(0)
        return make()
    return build


def _randomize(m, rng, dtype):
    """Non-trivial parameters and buffers (weights away from 1, biases away from 0), as float arrays by name."""
    values = {}
    for name, p in list(m.named_parameters()) + [(n, b) for n, b in m.named_buffers() if b is not None]:
        if p.data.dtype.kind != "f":
            continue
        v = rng.standard_normal(p.data.shape)
        if "var" in name:  # NOTE: running variances positive
            v = np.abs(v) + 0.5
        values[name] = v.astype(dtype)
    return values


def _set(m, values, kind):
    """Assign each parameter's and buffer's ``.data`` the value in layout ``kind`` (C where it cannot)."""
    for name, t in list(m.named_parameters()) + list(m.named_buffers()):
        if name in values:
            a = layout(values[name], kind) if kind != "broadcast" else None
            t.data = a if a is not None else values[name].copy()


def probe_layer(probe, name, make, make_torch, shape, dtype, tag, rng):
    values = _randomize(make().to(dtype), rng, dtype)
    xv = _values(rng, shape, dtype)
    # NOTE: constant along axis 0, the broadcast layout's input; not for (N, F) input, where every sample alike
    # leaves batch norm's statistics degenerate (its gradients then rounding noise, which no layout need match)
    xb = _values(rng, shape, dtype, const0=True) if len(shape) > 2 else None

    def run_mg(x, dy, pkind):
        mod = make().to(dtype)
        _set(mod, values, pkind)
        xt = Tensor(x, requires_grad=True)
        y = mod(xt)
        if dy is None:
            return (y.data,)
        y.backward(Tensor(dy))
        grads = {n: p.grad.data.copy() for n, p in mod.named_parameters() if p.grad is not None}
        bufs = {n: b.data.copy() for n, b in mod.named_buffers() if b is not None and b.data.dtype.kind == "f"}
        return y.data.copy(), xt.grad.data.copy(), grads, bufs

    def run_torch(x, dy):
        mod = make_torch().to(torch.float64 if dtype == np.float64 else torch.float32)
        sd = mod.state_dict()
        with torch.no_grad():
            for n, v in values.items():
                if n in sd:
                    sd[n].copy_(torch.from_numpy(v))
        xt = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_(True)
        y = mod(xt)
        y.backward(torch.from_numpy(np.ascontiguousarray(dy)))
        grads = {n: p.grad.numpy().copy() for n, p in mod.named_parameters() if p.grad is not None}
        bufs = {n: b.numpy().copy() for n, b in mod.named_buffers() if b.dtype.is_floating_point}
        return y.detach().numpy().copy(), xt.grad.numpy().copy(), grads, bufs

    for base in (xv, xb) if xb is not None else (xv,):
        y0 = run_mg(base, None, "c")[0]
        dyv = _values(rng, y0.shape, dtype)
        ref = run_torch(base, dyv) if make_torch is not None else run_mg(base, dyv, "c")
        for xk in LAYOUTS:
            x = layout(base, xk)
            if x is None or (xk == "broadcast") != (base is xb):
                continue
            for dk in ("c", "transposed", "step", "flip"):
                dy = layout(dyv, dk)
                if dy is None:
                    continue
                for pk in (("c", "step", "flip", "transposed") if dk == "c" else ("c",)):
                    what = f"{tag} {name} x={xk} dy={dk} params={pk}"
                    try:
                        got = run_mg(x, dy, pk)
                    except Exception as e:  # an error is not a silent wrong answer; counted apart
                        probe.error(what, e)
                        continue
                    probe.close(what + " y", got[0], ref[0], dtype)
                    probe.close(what + " dx", got[1], ref[1], dtype)
                    for n, g in got[2].items():
                        if n in ref[2]:
                            probe.close(what + f" d{n}", g, ref[2][n], dtype)
                    for n, b in got[3].items():
                        if n in ref[3]:
                            probe.close(what + f" buffer {n}", b, ref[3][n], dtype)


# ------------------------------------------------------------------ losses and functionals

def probe_losses(probe, dtype, tag, rng):
    N, C = 5, 4
    logits = _values(rng, (N, C), dtype)
    target = rng.integers(0, C, N)
    other = _values(rng, (N, C), dtype)
    tl = lambda a: torch.from_numpy(np.ascontiguousarray(a))
    cases = [
        ("cross_entropy", lambda x: F.cross_entropy(x, Tensor(target)),
         lambda x: torch.nn.functional.cross_entropy(x, torch.from_numpy(target))),
        ("cross_entropy-smooth", lambda x: F.cross_entropy(x, Tensor(target), label_smoothing=0.1),
         lambda x: torch.nn.functional.cross_entropy(x, torch.from_numpy(target), label_smoothing=0.1)),
        ("nll_loss", lambda x: F.nll_loss(F.log_softmax(x, dim=1), Tensor(target)),
         lambda x: torch.nn.functional.nll_loss(torch.log_softmax(x, 1), torch.from_numpy(target))),
        ("mse_loss", lambda x: F.mse_loss(x, Tensor(layout(other, "transposed"))),
         lambda x: torch.nn.functional.mse_loss(x, tl(other))),
        ("mse_loss-sum", lambda x: F.mse_loss(x, Tensor(layout(other, "step")), reduction="sum"),
         lambda x: torch.nn.functional.mse_loss(x, tl(other), reduction="sum")),
    ]
    for name, f, ft in cases:
        xt = tl(logits).requires_grad_(True)
        lt = ft(xt)
        lt.backward()
        for xk in ("c", "fortran", "transposed", "step", "flip"):
            x = Tensor(layout(logits, xk), requires_grad=True)
            what = f"{tag} {name} x={xk}"
            try:
                loss = f(x)
                loss.backward()
            except Exception as e:
                probe.error(what, e)
                continue
            probe.close(what + " loss", loss.data, lt.detach().numpy(), dtype)
            probe.close(what + " dx", x.grad.data, xt.grad.numpy(), dtype)


# ------------------------------------------------------------------ optimizers

def _optimizers():
    return [
        ("SGD", lambda ps: mg.optim.SGD(ps, lr=0.1), lambda ps: torch.optim.SGD(ps, lr=0.1)),
        ("SGD-m", lambda ps: mg.optim.SGD(ps, lr=0.1, momentum=0.9),
         lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9)),
        ("SGD-nesterov-wd", lambda ps: mg.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
         lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
        ("SGD-damp", lambda ps: mg.optim.SGD(ps, lr=0.1, momentum=0.5, dampening=0.3),
         lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.5, dampening=0.3)),
        ("Adam", lambda ps: mg.optim.Adam(ps, lr=0.01, weight_decay=0.01),
         lambda ps: torch.optim.Adam(ps, lr=0.01, weight_decay=0.01)),
        ("AdamW", lambda ps: mg.optim.AdamW(ps, lr=0.01), lambda ps: torch.optim.AdamW(ps, lr=0.01)),
        ("RMSprop", lambda ps: mg.optim.RMSprop(ps, lr=0.01, momentum=0.9),
         lambda ps: torch.optim.RMSprop(ps, lr=0.01, momentum=0.9)),
        ("Adagrad", lambda ps: mg.optim.Adagrad(ps, lr=0.1), lambda ps: torch.optim.Adagrad(ps, lr=0.1)),
        ("Adadelta", lambda ps: mg.optim.Adadelta(ps), lambda ps: torch.optim.Adadelta(ps)),
    ]


def probe_optimizers(probe, dtype, tag, rng, steps=5):
    """Each step's gradient in another layout; ``p.data`` replaced by a strided copy of itself on step 3 and by a
    C-contiguous one on step 4; the parameters: a (4, 3) matrix and a (5,) vector."""
    shapes = [(4, 3), (5,)]
    for name, make, make_torch in _optimizers():
        start = [_values(rng, s, dtype) for s in shapes]
        grads = [[_values(rng, s, dtype) for s in shapes] for _ in range(steps)]
        tp = [torch.from_numpy(v.copy()).requires_grad_(True) for v in start]
        topt = make_torch(tp)
        for gs in grads:
            for p, g in zip(tp, gs):
                p.grad = torch.from_numpy(g.copy())
            topt.step()
        for gk in ("c", "transposed", "step", "flip", "fortran"):
            for pk in ("c", "step", "flip"):
                ps = [nn.Parameter(layout(v, pk) if layout(v, pk) is not None else v.copy()) for v in start]
                opt = make(ps)
                for i, gs in enumerate(grads):
                    if i == 2:
                        for p in ps:
                            p.data = layout(p.data.copy(), "step")
                    elif i == 3:
                        for p in ps:
                            p.data = np.ascontiguousarray(p.data)
                    for p, g in zip(ps, gs):
                        a = layout(g, gk)
                        p.grad = Tensor(a if a is not None else g.copy())
                    opt.step()
                for j, (p, q) in enumerate(zip(ps, tp)):
                    probe.close(f"{tag} {name} grad={gk} param={pk} p{j}", p.data, q.detach().numpy(), dtype)


# ------------------------------------------------------------------ minigrad.compile

def train_step(m, opt, set_to_none=True):
    """A user's training step over model ``m`` and optimizer ``opt`` (cross entropy, SGD's order of calls)."""
    def step(x, y):
        opt.zero_grad(set_to_none=set_to_none)
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


def probe_compile(probe, dtype, tag, rng, steps=6):
    """A small MLP-BN training step compiled and eager side by side (PyTorch the reference): the input in another
    layout every step, a weight's ``.data`` replaced by a strided copy on step 3, a user-set ``.grad`` on step 4
    (cleared by zero_grad). NOTE: the first Linear has no bias: under batch norm its gradient is rounding noise,
    which Adam's normalized step makes an O(lr) difference in float32."""
    for opt_name, make, make_torch in _optimizers()[:6]:
        shapes = {"0.weight": (8, 6), "1.weight": (8,), "1.bias": (8,), "3.weight": (3, 8),
                  "3.bias": (3,)}
        values = {k: _values(rng, s, dtype) for k, s in shapes.items()}
        xs = [_values(rng, (5, 6), dtype) for _ in range(steps)]
        ys = [rng.integers(0, 3, 5) for _ in range(steps)]

        tm = torch.nn.Sequential(torch.nn.Linear(6, 8, bias=False), torch.nn.BatchNorm1d(8), torch.nn.Sigmoid(),
                                 torch.nn.Linear(8, 3)).to(torch.float64 if dtype == np.float64 else torch.float32)
        with torch.no_grad():
            for k, p in tm.named_parameters():
                p.copy_(torch.from_numpy(values[k]))
        topt = make_torch(list(tm.parameters()))
        tloss = []
        for x, y in zip(xs, ys):
            topt.zero_grad()
            loss = torch.nn.functional.cross_entropy(tm(torch.from_numpy(x)), torch.from_numpy(y))
            loss.backward()
            topt.step()
            tloss.append(loss.item())

        for compiled in (False, True):
            m = nn.Sequential(nn.Linear(6, 8, bias=False), nn.BatchNorm1d(8), nn.Sigmoid(), nn.Linear(8, 3)).to(dtype)
            for k, p in m.named_parameters():
                p.data = values[k].copy()
            opt = make(list(m.parameters()))

            step = train_step(m, opt)
            run = mg.compile(step) if compiled else step
            kinds = ("c", "transposed", "step", "flip", "fortran", "c")
            for i, (x, y) in enumerate(zip(xs, ys)):
                if i == 3:
                    w = m[0].weight
                    w.data = layout(w.data.copy(), "step")
                    m[3].bias.data = layout(m[3].bias.data.copy(), "flip")
                if i == 4:
                    m[3].weight.grad = Tensor(np.full((3, 8), 7.0, dtype))
                xa = layout(x, kinds[i % len(kinds)])
                loss = run(Tensor(xa if xa is not None else x), Tensor(y))
                probe.close(f"{tag} compile={compiled} {opt_name} step {i} loss", loss.data, tloss[i], dtype)
            for k, p in m.named_parameters():
                probe.close(f"{tag} compile={compiled} {opt_name} {k}", p.data,
                            dict(tm.named_parameters())[k].detach().numpy(), dtype)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", default=",".join(mg.available_backends()))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--only", default="layers,losses,optim,compile")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    probe = Probe(args.verbose)
    only = args.only.split(",")
    torch.set_num_threads(1)
    for backend in args.backends.split(","):
        for threads in map(int, args.threads.split(",")):
            mg.set_backend(backend)
            mg.set_num_threads(threads)
            for dtype in map(np.dtype, args.dtypes.split(",")):
                tag = f"[{backend} t{threads} {dtype}]"
                rng = np.random.default_rng(0)
                torch.manual_seed(0)
                if "layers" in only:
                    for name, make, make_torch, shape in _cases():
                        probe_layer(probe, name, make, make_torch, shape, dtype.type, tag, rng)
                if "losses" in only:
                    probe_losses(probe, dtype.type, tag, rng)
                if "optim" in only:
                    probe_optimizers(probe, dtype.type, tag, rng)
                if "compile" in only:
                    probe_compile(probe, dtype.type, tag, rng)
                print(f"{tag}: {probe.checks} checks, {len(probe.failures)} differences so far", flush=True)
    for f in probe.failures:
        print("DIFF", f)
    for message, what in probe.errors.items():
        print(f"ERROR {message} (first: {what})")
    print(f"{probe.checks} checks, {len(probe.failures)} differences, {probe.n_errors} errors")
    return min(len(probe.failures), 255)


if __name__ == "__main__":
    sys.exit(main())
