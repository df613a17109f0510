"""Which layers, losses, optimizers and schedulers a ``minigrad.compile``d training step replays, and why the others
run eagerly: the survey of docs/compile.md.

    PYTHONPATH=$PWD python scripts/compile_survey.py [NAME ...]

Each case is a small training step (a 3x3 conv to 4 channels over (8, 3, 6, 6) input, the layer, cross entropy over
the flattened logits (targets in [0, 16)), backward, the optimizer, optionally a scheduler), run 6 times eagerly and
6 times compiled from the same seed. A line per case: ``replays`` (the compile cache holds one checked recording and
no warning was given), or ``eager`` with the warning's reason; then ``same`` or ``DIFFERENT`` (losses and state_dict
bit for bit against eager: a compiled step must never differ, replayed or not). Eval-mode forwards after each
training round are compiled and compared too (a recording must follow the running statistics that training changes).
"""
import sys
import warnings

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import nn
from minigrad.nn.utils import clip_grad_norm_
from minigrad.nn.utils.parametrizations import spectral_norm, weight_norm
from minigrad.optim import SGD, Adadelta, Adagrad, Adam, AdamW, RMSprop
from minigrad.optim import lr_scheduler as sched


def conv(*layers):
    return lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), *[m() for m in layers], nn.Flatten())


class PoolUnpool(nn.Module):
    def __init__(self):
        super().__init__()
        self.pool, self.unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)

    def forward(self, x):
        return self.unpool(*self.pool(x))


def class_weight():
    return mg.Tensor(np.linspace(0.5, 2.0, 144).astype(np.float32))


def ce(o, y):
    return F.cross_entropy(o, y)


CASES = {  # name: (model, loss, optimizer, scheduler, clip)
    "BatchNorm2d": (conv(lambda: nn.BatchNorm2d(4)),),
    "BatchNorm2d(momentum=None)": (conv(lambda: nn.BatchNorm2d(4, momentum=None)),),
    "BatchNorm2d(virtual_batch_size=4)": (conv(lambda: nn.BatchNorm2d(4, virtual_batch_size=4)),),
    "BatchNorm2d(affine=False, track_running_stats=False)": (
        conv(lambda: nn.BatchNorm2d(4, affine=False, track_running_stats=False)),),
    "BatchNorm1d": (lambda: nn.Sequential(nn.Flatten(), nn.Linear(108, 144), nn.BatchNorm1d(144)),),
    "BatchRenorm2d": (conv(lambda: nn.BatchRenorm2d(4)),),
    "BatchRenorm2d(warmup_steps=2)": (conv(lambda: nn.BatchRenorm2d(4, warmup_steps=2)),),
    "BatchRenorm1d": (lambda: nn.Sequential(nn.Flatten(), nn.Linear(108, 144), nn.BatchRenorm1d(144)),),
    "BatchRenorm2d(momentum=None)": (conv(lambda: nn.BatchRenorm2d(4, momentum=None)),),
    "DecorrelatedBatchNorm2d": (conv(lambda: nn.DecorrelatedBatchNorm2d(4, group_size=3)),),
    "DecorrelatedBatchNorm2d(momentum=None)": (conv(lambda: nn.DecorrelatedBatchNorm2d(4, momentum=None)),),
    "SyncBatchNorm (no MPI)": (conv(lambda: nn.SyncBatchNorm(4)),),
    "FrozenBatchNorm2d": (conv(lambda: nn.FrozenBatchNorm2d(4)),),
    "GroupNorm": (conv(lambda: nn.GroupNorm(2, 4)),),
    "InstanceNorm2d(track_running_stats=True)": (
        conv(lambda: nn.InstanceNorm2d(4, affine=True, track_running_stats=True)),),
    "LayerNorm": (conv(lambda: nn.LayerNorm([4, 6, 6])),),
    "RMSNorm": (conv(lambda: nn.RMSNorm([6])),),
    "EvoNorm2d B0": (conv(lambda: nn.EvoNorm2d(4)),),
    "EvoNorm2d S0": (conv(lambda: nn.EvoNorm2d(4, version="S0", num_groups=2)),),
    "FilterResponseNorm2d + TLU": (conv(lambda: nn.FilterResponseNorm2d(4), lambda: nn.TLU(4)),),
    "FilterResponseNorm2d(learnable_eps=True)": (conv(lambda: nn.FilterResponseNorm2d(4, learnable_eps=True)),),
    "Dropout": (conv(lambda: nn.Dropout(0.3)),),
    "Dropout2d": (conv(lambda: nn.Dropout2d(0.3)),),
    "MaxPool2d": (conv(lambda: nn.MaxPool2d(2)),),
    "MaxPool2d + MaxUnpool2d": (conv(PoolUnpool),),
    "AvgPool2d": (conv(lambda: nn.AvgPool2d(2)),),
    "AdaptiveAvgPool2d / AdaptiveMaxPool2d": (conv(lambda: nn.AdaptiveAvgPool2d(3), lambda: nn.AdaptiveMaxPool2d(2)),),
    "Upsample (nearest, bilinear)": (conv(lambda: nn.Upsample(scale_factor=2),
                                          lambda: nn.Upsample(scale_factor=0.5, mode="bilinear")),),
    "ConvTranspose2d": (lambda: nn.Sequential(nn.ConvTranspose2d(3, 4, 3), nn.Flatten(), nn.Linear(256, 144)),),
    "ReLU, GELU, Sigmoid, SiLU, Tanh, Softmax": (conv(nn.ReLU, nn.GELU, nn.Sigmoid, nn.SiLU, nn.Tanh,
                                                      lambda: nn.Softmax(1)),),
    "ELU, LeakyReLU": (conv(nn.ELU, nn.LeakyReLU),),
    "weight_norm": (lambda: nn.Sequential(weight_norm(nn.Conv2d(3, 4, 3, padding=1)), nn.Flatten()),),
    "spectral_norm": (lambda: nn.Sequential(spectral_norm(nn.Conv2d(3, 4, 3, padding=1)), nn.Flatten()),),
    "cross_entropy(weight=)": (conv(), lambda o, y: F.cross_entropy(o, y, weight=class_weight())),
    "cross_entropy(label_smoothing=0.1, ignore_index=3)": (
        conv(), lambda o, y: F.cross_entropy(o, y, label_smoothing=0.1, ignore_index=3)),
    "cross_entropy(reduction='sum' / 'none')": (
        conv(), lambda o, y: F.cross_entropy(o, y, reduction="sum") + F.cross_entropy(o, y, reduction="none").sum()),
    "cross_entropy (probability targets)": (conv(), lambda o, y: F.cross_entropy(o, F.softmax(o.detach(), 1))),
    "nll_loss": (conv(), lambda o, y: F.nll_loss(F.log_softmax(o, 1), y)),
    "nll_loss(weight=)": (conv(), lambda o, y: F.nll_loss(F.log_softmax(o, 1), y, weight=class_weight())),
    "CrossEntropyLoss / NLLLoss modules (weight=)": (
        conv(), lambda o, y: nn.CrossEntropyLoss(weight=class_weight())(o, y)
        + nn.NLLLoss(weight=class_weight(), reduction="sum")(F.log_softmax(o, 1), y)),
    "MSELoss": (conv(), lambda o, y: nn.MSELoss()(o, o.detach() * 0.5)),
    "SGD(momentum, nesterov, weight_decay)": (
        conv(), ce, lambda p: SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    "SGD(momentum, dampening)": (conv(), ce, lambda p: SGD(p, lr=0.05, momentum=0.9, dampening=0.1)),
    "Adam(weight_decay)": (conv(), ce, lambda p: Adam(p, lr=1e-3, weight_decay=1e-2)),
    "AdamW": (conv(), ce, lambda p: AdamW(p, lr=1e-3, weight_decay=0.1)),
    "RMSprop(momentum)": (conv(), ce, lambda p: RMSprop(p, lr=1e-3, momentum=0.9)),
    "Adagrad": (conv(), ce, lambda p: Adagrad(p, lr=1e-2)),
    "Adadelta": (conv(), ce, lambda p: Adadelta(p)),
    "StepLR": (conv(), ce, None, lambda o: sched.StepLR(o, 2)),
    "OneCycleLR": (conv(), ce, None, lambda o: sched.OneCycleLR(o, 0.1, total_steps=20)),
    "CosineAnnealingLR": (conv(), ce, None, lambda o: sched.CosineAnnealingLR(o, 5)),
    "SequentialLR(LinearLR, ExponentialLR)": (conv(), ce, None, lambda o: sched.SequentialLR(
        o, [sched.LinearLR(o, 0.5, total_iters=2), sched.ExponentialLR(o, 0.9)], milestones=[2])),
    "clip_grad_norm_ in the step": (conv(), ce, None, None, 0.5),
}


def run(case, compiled, steps=6):
    build, loss, make_opt, make_sched, clip = (case + (None,) * 5)[:5]
    loss = loss or ce
    mg.manual_seed(0)
    net = build()
    opt = (make_opt or (lambda p: SGD(p, lr=0.05, momentum=0.9)))(net.parameters())
    lr_sched = make_sched(opt) if make_sched else None

    def step(x, y):
        opt.zero_grad()
        out = loss(net(x), y)
        out.backward()
        if clip:
            clip_grad_norm_(net.parameters(), clip)
        opt.step()
        if lr_sched is not None:
            lr_sched.step()
        return out
    evaluate = mg.no_grad()(lambda x: net(x))
    if compiled:
        step, evaluate = mg.compile(step), mg.compile(evaluate)
    rng = np.random.default_rng(0)
    xs = [mg.Tensor(rng.standard_normal((8, 3, 6, 6)).astype(np.float32)) for _ in range(steps)]
    ys = [mg.Tensor(rng.integers(0, 16, 8)) for _ in range(steps)]  # NOTE: every model has >= 16 logits
    out = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            net.train()
            out += [step(x, y).data.tobytes() for x, y in zip(xs, ys)]
            net.eval()
            out += [evaluate(x).data.tobytes() for x in xs[:2]]
    reasons = [str(w.message) for w in caught if "minigrad.compile" in str(w.message)]
    states = [e.state for entries in getattr(step, "_cache", {}).values() for e in entries]
    return out, {k: v.tobytes() for k, v in net.state_dict().items()}, reasons, states


def main(names):
    for name, case in CASES.items():
        if names and name not in names:
            continue
        eager, compiled = run(case, False), run(case, True)
        same = "same" if eager[:2] == compiled[:2] else "DIFFERENT"
        if compiled[2] or set(compiled[3]) != {"checked"}:
            reason = compiled[2][0].split(": ", 1)[-1] if compiled[2] else f"states {compiled[3]}"
            print(f"{name:52s} eager    {same:9s} {reason}")
        else:
            print(f"{name:52s} replays  {same}")


if __name__ == "__main__":
    main(sys.argv[1:])
