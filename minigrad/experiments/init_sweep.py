"""init-sweep: the paper's MLP, plain and batch-normalized, from Gaussian inits of std 1e-3 up to 10 and the
named schemes xavier and kaiming: final test accuracy after a fixed budget, as a heatmap.
"""
import numpy as np

import minigrad as mg
from minigrad.app.models import build_model

from . import plotting
from .common import Outputs, environment, fmt, init_scheme_label, initialize, load_data, mean_std, seeds_range, \
    train_run
from .paper_mnist import LR

SCHEMES = (1e-3, 1e-2, 0.1, 1.0, 3.0, 10.0, "xavier", "kaiming")
NETWORKS = {"plain": "mlp", "BN": "mlp-bn"}


def run(cfg):
    steps = cfg.pick(cfg.steps, 2000, 150)
    lr = cfg.lr if cfg.lr is not None else LR
    seeds = seeds_range(cfg, 2, 1)
    with environment(cfg) as backend:
        data = load_data(cfg)
        config = dict(steps=steps, lr=lr, schemes=[init_scheme_label(s) for s in SCHEMES], batch_size=60,
                      optimizer="SGD, no momentum", seeds=seeds, biases="zero", eval="test set at the last step")
        out = Outputs(cfg, backend, config)
        acc = np.zeros((len(NETWORKS), len(SCHEMES), len(seeds)))
        for i, (label, model_name) in enumerate(NETWORKS.items()):
            for j, scheme in enumerate(SCHEMES):
                for k, seed in enumerate(seeds):
                    mg.manual_seed(seed)
                    model = initialize(build_model(model_name), scheme)
                    h = train_run(model, data, steps=steps, lr=lr, seed=seed, eval_steps=[steps],
                                  desc=f"{label} {init_scheme_label(scheme)} seed {seed}", progress=cfg.progress)
                    acc[i, j, k] = h.final_acc
        mean, std = acc.mean(2), acc.std(2)
        out.record["networks"] = list(NETWORKS)
        out.record["schemes"] = [init_scheme_label(s) for s in SCHEMES]
        out.record["final_acc_per_seed"] = acc
        out.record["final_acc_mean"] = mean
        out.record["final_acc_std"] = std
        out.set_table(["init"] + [f"{n} acc (mean)" for n in NETWORKS] + [f"{n} std" for n in NETWORKS],
                      [[init_scheme_label(s)] + list(mean[:, j]) + list(std[:, j]) for j, s in enumerate(SCHEMES)])
        plot(out, plotting.as_json(out.record))
        findings = describe(mean, data.chance)
        report = out.write("Init-scale sweep: plain vs batch-normalized sigmoid MLP",
                           f"Final test accuracy after {steps} steps of SGD (lr {lr:g}, batch 60) from each init.",
                           findings, ["xavier: normal, gain 1; kaiming: normal, fan_in, gain sqrt(2); biases zero.",
                            "Why BN still loses accuracy at very large stds: BN makes the output invariant to the "
                            "scale of W, but the gradient scales as 1/||W||, so the relative update, i.e. the "
                            "effective learning rate, shrinks as 1/||W||^2 (Sec. 3.3 of the paper). Within a "
                            "fixed budget a large init trains like a small lr, not like a broken network.",
                            "Without BN, tiny stds start on a plateau (the signal shrinks at every layer and the "
                            "gradients to the first layers vanish); large stds saturate the sigmoids."])
    return report


def describe(mean, chance):
    labels = [init_scheme_label(s) for s in SCHEMES]
    lines = []
    for i, net in enumerate(NETWORKS):
        ok = [labels[j] for j in range(len(SCHEMES)) if mean[i, j] > chance + 0.1]
        best = int(np.argmax(mean[i]))
        lines.append(f"{net}: best {fmt(float(mean[i, best]))} from {labels[best]}, worst "
                     f"{fmt(float(mean[i].min()))} from {labels[int(np.argmin(mean[i]))]}; spread over inits "
                     f"{fmt(float(mean[i].max() - mean[i].min()))}; {len(ok)}/{len(SCHEMES)} inits train "
                     f"(> chance + 10 points).")
    return lines


@plotting.styled
def plot(out, record):
    """The heatmap of final accuracy, network by init; the row labels take the networks' colours."""
    mean = np.asarray(record["final_acc_mean"], dtype=float)
    std = np.asarray(record["final_acc_std"], dtype=float)
    schemes, networks = record["schemes"], record["networks"]
    fig, ax = out.figure(1, 1, size=(11.0, 3.4))
    a = ax[0, 0]
    im = a.imshow(mean, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    a.set_xticks(range(len(schemes)), [s[len("N(0, "):-len("^2)")] if s.startswith("N(0, ") else s for s in schemes])
    a.set_yticks(range(len(networks)), networks)
    for label, net in zip(a.get_yticklabels(), networks):
        label.set_color(plotting.color(net))
        label.set_fontweight("bold")
    a.grid(False)
    for i in range(mean.shape[0]):
        for j in range(mean.shape[1]):
            a.text(j, i, f"{mean[i, j]:.3f}\n±{std[i, j]:.3f}", ha="center", va="center",
                   color="white" if mean[i, j] < 0.6 else "black")
    fig.colorbar(im, ax=a, label="final test accuracy")
    a.set(title="final test accuracy by init (mean ± std over seeds)", xlabel="initial weights: std s of N(0, s²), or a named scheme")
    out.save_figure(fig, "init_sweep.png", "Final test accuracy by init scheme, plain and batch-normalized "
                    "(a number s: weights from N(0, s²)).")
