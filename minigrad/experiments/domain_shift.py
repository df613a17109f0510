"""domain-shift: a batch-normalized LeNet trained on clean images, tested on shifted ones, before and after AdaBN.

LeNet-BN (``minigrad.models`` "lenet-bn") and, for reference, the same LeNet without BN are trained on the clean
training set. The test set is then shifted, made locally from the test images (``SHIFTS``: inverted contrast,
lower contrast, brighter background, Gaussian noise, rotation), and each network is evaluated on it:

- LeNet-BN as trained: eval mode, running statistics of the clean training data;
- LeNet-BN + AdaBN (Li et al. 2016): the running statistics recomputed by ``minigrad.nn.utils.update_bn`` over
  unlabelled shifted *training* images (the same shift applied to the first ``ADAPT_IMAGES`` training images; no
  labels, no gradient step), then eval mode;
- LeNet-BN with test-batch statistics: train mode on the shifted test images in batches of ``TEST_BATCH``
  (prediction-time BN; the running statistics restored after), which needs no adaptation pass but a batch;
- LeNet without BN: nothing to recalibrate.

The source domain is ``--data``: MNIST digits, or Fashion-MNIST clothing (``--data fashion-mnist``; skipped with
one line on stderr where its Debian package is not installed), shifted the same way (both hold ink 1 on 0).
"""
import sys
from pathlib import Path

import numpy as np

import minigrad as mg
from minigrad.app.models import build_model
from minigrad.data import DataLoader, TensorDataset, mnist
from minigrad.nn.utils import update_bn

from . import plotting
from .common import Outputs, environment, evaluate, fmt, load_data, mean_std, seeds_range, train_run

LR = 0.05          # minigrad train's default for the LeNets
MOMENTUM = 0.9
ADAPT_IMAGES = 10_000
ADAPT_BATCH = 200
TEST_BATCH = 200
VARIANTS = ("LeNet (no BN)", "LeNet-BN", "LeNet-BN + AdaBN", "LeNet-BN, test-batch statistics")
SOURCES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "synthetic": "synthetic digits"}
COLORS = {"LeNet (no BN)": "plain", "LeNet-BN": "BN", "LeNet-BN + AdaBN": "AdaBN",
          "LeNet-BN, test-batch statistics": "train mode"}


def rotate(x, degrees):
    """Images (N, C, H, W) rotated counter-clockwise by ``degrees`` about their centre, bilinear, zero outside."""
    n, c, h, w = x.shape
    t = np.deg2rad(degrees)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    # NOTE: each output pixel reads the input at its position rotated back (inverse mapping: no holes)
    ys = cy + (yy - cy) * np.cos(t) + (xx - cx) * np.sin(t)
    xs = cx - (yy - cy) * np.sin(t) + (xx - cx) * np.cos(t)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    fy, fx = ys - y0, xs - x0
    out = np.zeros_like(x)
    for dy, dx, wgt in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        yi, xi = y0 + dy, x0 + dx
        inside = (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
        out += np.where(inside, wgt, 0.0).astype(x.dtype) * x[:, :, np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)]
    return out


def _noisy(x, rng):
    return np.clip(x + 0.3 * rng.standard_normal(x.shape).astype(x.dtype), 0.0, 1.0)


# name -> (what it does, shift(x, rng)); x holds images in [0, 1] (ink 1, background 0)
SHIFTS = {
    "clean": ("the test images as they are", lambda x, rng: x),
    "inverted": ("1 - x: dark ink on a white background", lambda x, rng: 1.0 - x),
    "low contrast": ("0.3 x: ink at 30% intensity", lambda x, rng: 0.3 * x),
    "brighter": ("min(x + 0.5, 1): background at 0.5", lambda x, rng: np.minimum(x + 0.5, 1.0)),
    "noisy": ("clip(x + N(0, 0.3^2), 0, 1), independent per pixel", _noisy),
    "rotated 30°": ("rotated 30° counter-clockwise, bilinear", lambda x, rng: rotate(x, 30.0)),
}


def shifted(name, x, seed):
    """``SHIFTS[name]`` applied to ``x`` (float32), with noise drawn from ``seed``."""
    return SHIFTS[name][1](x, np.random.default_rng(seed)).astype(np.float32)


def evaluate_variants(plain, bn, x_adapt, x_test, y_test):
    """Accuracy of each of ``VARIANTS`` on (x_test, y_test); AdaBN adapts on ``x_adapt``. ``bn`` is left as it
    was."""
    state = bn.state_dict()
    acc = {"LeNet (no BN)": evaluate(plain, x_test, y_test), "LeNet-BN": evaluate(bn, x_test, y_test)}
    acc["LeNet-BN, test-batch statistics"] = evaluate(bn, x_test, y_test, TEST_BATCH, train_mode=True)
    bn.load_state_dict(state)
    update_bn(DataLoader(TensorDataset(x_adapt), batch_size=ADAPT_BATCH), bn)
    acc["LeNet-BN + AdaBN"] = evaluate(bn, x_test, y_test)
    bn.load_state_dict(state)
    return acc


def run(cfg):
    if cfg.data == "fashion-mnist" and not Path(mnist.FASHION_MNIST_DIR).is_dir():
        print(f"domain-shift: Fashion-MNIST case skipped: {mnist.FASHION_MNIST_DIR} not found (install the Debian "
              f"package dataset-fashion-mnist)", file=sys.stderr)
        return None
    source = SOURCES[cfg.data]
    steps = cfg.pick(cfg.steps, 2000, 100)
    lr = cfg.lr if cfg.lr is not None else LR
    seeds = seeds_range(cfg, 3, 1)
    with environment(cfg) as backend:
        data = load_data(cfg)
        n_test = len(data.y_test) if not cfg.quick else min(1000, len(data.y_test))
        n_adapt = min(ADAPT_IMAGES if not cfg.quick else 1000, len(data.y_train))
        x_test, y_test = data.x_test[:n_test], data.y_test[:n_test]
        config = dict(source=source, models="lenet-bn and lenet (minigrad.models)", steps=steps, batch_size=60, lr=lr,
                      optimizer=f"SGD, momentum {MOMENTUM}, constant lr, no weight decay", bn_momentum=0.1,
                      shifts={k: v[0] for k, v in SHIFTS.items()}, test_images=n_test,
                      adabn=f"update_bn over the first {n_adapt} training images, shifted, unlabelled, in batches "
                            f"of {ADAPT_BATCH}",
                      test_batch_statistics=f"train mode on the shifted test images in batches of {TEST_BATCH}",
                      seeds=seeds)
        out = Outputs(cfg, backend, config)
        per_seed = []
        for seed in seeds:
            nets = {}
            for name in ("lenet", "lenet-bn"):
                mg.manual_seed(seed)
                nets[name] = build_model(name)
                train_run(nets[name], data, steps=steps, lr=lr, seed=seed, eval_steps=[], momentum=MOMENTUM,
                          desc=f"{name} seed {seed}", progress=cfg.progress)
            accs = {}
            for k, shift in enumerate(SHIFTS):
                x_adapt = shifted(shift, data.x_train[:n_adapt], [seed, k, 0])
                accs[shift] = evaluate_variants(nets["lenet"], nets["lenet-bn"], x_adapt,
                                                shifted(shift, x_test, [seed, k, 1]), y_test)
            per_seed.append(accs)
        summary = {s: {v: mean_std([a[s][v] for a in per_seed]) for v in VARIANTS} for s in SHIFTS}
        examples = {s: np.round(shifted(s, data.x_test[:1], [0, k, 1])[0, 0], 3) for k, s in enumerate(SHIFTS)}
        out.record.update(per_seed=per_seed, summary=summary, examples=examples, example_label=int(data.y_test[0]))
        out.set_table(["test images"] + list(VARIANTS),
                      [[s] + [f"{summary[s][v][0]:.4f} ± {summary[s][v][1]:.4f}" for v in VARIANTS] for s in SHIFTS])
        plot(out, plotting.as_json(out.record))
        report = out.write(
            f"Domain shift: AdaBN recalibration of a batch-normalized LeNet ({source})",
            f"LeNet and LeNet-BN trained {steps} steps on clean {source} training images (batch 60, SGD, momentum {MOMENTUM}, "
            f"lr {lr:g}), evaluated on {n_test} test images under each shift. Cells: test accuracy, mean ± std over "
            f"{len(seeds)} seed(s).", describe(summary),
            ["Shifts (made from the test images; AdaBN sees the same shift of training images, with fresh noise): "
             + "; ".join(f"{k}: {v[0]}" for k, v in SHIFTS.items()) + ".",
             "AdaBN changes only the BN layers' running means and variances (every BN, the convolutional and "
             "the fully connected ones); no weight is trained on the shifted data and no label is used.",
             "Test-batch statistics need a batch of test images from the same shift at prediction time; their "
             f"accuracy depends on that batch size ({TEST_BATCH} here)."])
    return report


def describe(summary):
    def a(s, v):
        return summary[s][v][0]

    lines = [f"Clean: LeNet {fmt(a('clean', 'LeNet (no BN)'))}, LeNet-BN {fmt(a('clean', 'LeNet-BN'))}; AdaBN on "
             f"clean images leaves it at {fmt(a('clean', 'LeNet-BN + AdaBN'))}."]
    for s in SHIFTS:
        if s == "clean":
            continue
        lines.append(f"{s}: LeNet-BN {fmt(a(s, 'LeNet-BN'))} -> {fmt(a(s, 'LeNet-BN + AdaBN'))} with AdaBN "
                     f"({fmt(a(s, 'LeNet-BN, test-batch statistics'))} with test-batch statistics); "
                     f"LeNet without BN {fmt(a(s, 'LeNet (no BN)'))}.")
    return lines


@plotting.styled
def plot(out, record):
    """Grouped bars: accuracy under each shift, one colour per variant; an example test image of each shift above."""
    summary = record["summary"]
    shifts = list(summary)
    fig, ax = out.figure(1, 1, size=(13.8, 5.2))
    a = ax[0, 0]
    width = 0.8 / len(VARIANTS)
    for i, v in enumerate(VARIANTS):
        xs = np.arange(len(shifts)) + (i - (len(VARIANTS) - 1) / 2) * width
        a.bar(xs, [summary[s][v][0] for s in shifts], width, yerr=[summary[s][v][1] or 0 for s in shifts],
              color=plotting.color(COLORS[v]), capsize=2, label=v)
    a.set_xticks(np.arange(len(shifts)), shifts)
    a.set(ylabel="test accuracy", ylim=(0, 1.0), xlim=(-0.5, len(shifts) - 0.5))
    a.grid(axis="x", visible=False)
    for k, s in enumerate(shifts):  # one shifted test image above each group
        inset = a.inset_axes([k - 0.2, 1.03, 0.4, 0.3], transform=a.get_xaxis_transform())
        inset.imshow(np.asarray(record["examples"][s], dtype=float), cmap="gray", vmin=0, vmax=1)
        inset.set_xticks([])
        inset.set_yticks([])
        inset.grid(False)
        for spine in inset.spines.values():  # a frame, so that the white inverted image has an edge
            spine.set(visible=True, color=plotting.PALETTE["neutral"], linewidth=1)
    handles = [plotting.band_handle(plotting.color(COLORS[v]), alpha=1.0) for v in VARIANTS]
    plotting.legend_below(fig, handles, list(VARIANTS), ncol=2)
    fig.subplots_adjust(top=0.7)
    out.save_figure(fig, "domain_shift.png",
                    "Test accuracy of LeNet (vermillion), LeNet-BN with its training statistics (blue), after "
                    "AdaBN on unlabelled shifted training images (teal) and with test-batch statistics (purple), "
                    "under each shift of the test images (one example above each group); bars: std over seeds.")
