"""eval-mode: what the running statistics buy at test time, for the paper's batch-normalized MLP.

1. After training: test accuracy in eval mode (running statistics) at evaluation batch sizes 1, 2, 8, 32, 256
   (identical up to rounding: no sample depends on the others), against train mode (batch statistics) at 2, 8,
   32, 256 (batch size 1 has no batch variance), i.e. what happens when ``model.eval()`` is forgotten.
2. Forgetting ``eval()`` also overwrites the running statistics: eval-mode accuracy after one train-mode pass
   over the test set in batches of 8.
3. During training: eval-mode vs train-mode (batch 256) accuracy after few and many steps, and how far the first
   BN layer's running mean and variance are from the population statistics of its input (10,000 training images).
"""
import numpy as np

import minigrad as mg
from minigrad import nn
from minigrad.app.models import build_model

from . import plotting
from .common import Outputs, environment, evaluate, fmt, initialize, init_scheme_label, load_data, mean_std, \
    seeds_range, train_run
from .paper_mnist import INIT_STD, LR

EVAL_BATCHES = (1, 2, 8, 32, 256)


def running_stats_error(model, x):
    """For the first BatchNorm1d: mean |running_mean - mu| / sigma and mean running_var / sigma^2 over its
    features, where mu, sigma^2 are the population statistics of its input on ``x``."""
    k = next(i for i, m in enumerate(model) if isinstance(m, nn.BatchNorm1d))
    bn = model[k]
    with mg.no_grad():
        z = model[:k](mg.Tensor(x)).data.astype(np.float64)  # before the first BN: no running stats involved
    mu, var = z.mean(0), z.var(0)
    return (float(np.mean(np.abs(bn.running_mean.data - mu) / np.sqrt(var + bn.eps))),
            float(np.mean(bn.running_var.data / (var + bn.eps))))


def train_mode_accuracy(model, x, y, batch_size):
    """Accuracy with batch statistics, leaving the model's running statistics as they were."""
    state = model.state_dict()
    acc = evaluate(model, x, y, batch_size, train_mode=True)
    model.load_state_dict(state)
    return acc


def run(cfg):
    steps = cfg.pick(cfg.steps, 3000, 200)
    lr = cfg.lr if cfg.lr is not None else LR
    init_std = cfg.init_std if cfg.init_std is not None else INIT_STD
    seeds = seeds_range(cfg, 2, 1)
    checkpoints = sorted({s for s in (0, 1, 3, 10, 30, 100, 300, 1000, 3000, 10000, 30000) if s <= steps} | {steps})
    with environment(cfg) as backend:
        data = load_data(cfg)
        n_eval = len(data.y_test) if not cfg.quick else min(1000, len(data.y_test))
        x_test, y_test = data.x_test[:n_eval], data.y_test[:n_eval]
        x_pop = data.x_train[:10000]
        config = dict(model="mlp-bn (paper)", steps=steps, lr=lr, init=init_scheme_label(init_std), bn_momentum=0.1,
                      eval_batch_sizes=list(EVAL_BATCHES), test_images=n_eval, checkpoints=checkpoints, seeds=seeds,
                      population="first 10000 training images")
        out = Outputs(cfg, backend, config)

        def probe(model):
            mean_err, var_ratio = running_stats_error(model, x_pop)
            return {"train_mode_acc_256": train_mode_accuracy(model, x_test, y_test, 256),
                    "running_mean_err": mean_err, "running_var_ratio": var_ratio}

        per_seed = []
        for seed in seeds:
            mg.manual_seed(seed)
            model = initialize(build_model("mlp-bn"), init_std)
            h = train_run(model, data, steps=steps, lr=lr, seed=seed, eval_steps=checkpoints, probe=probe,
                          desc=f"mlp-bn seed {seed}", progress=cfg.progress)
            r = {"checkpoint_eval_acc": h.test_acc,
                 "checkpoint_train_mode_acc": [p["train_mode_acc_256"] for p in h.probes],
                 "running_mean_err": [p["running_mean_err"] for p in h.probes],
                 "running_var_ratio": [p["running_var_ratio"] for p in h.probes],
                 "eval_mode": {}, "train_mode": {}}
            for bs in EVAL_BATCHES:
                r["eval_mode"][bs] = evaluate(model, x_test, y_test, bs)
                if bs > 1:
                    r["train_mode"][bs] = train_mode_accuracy(model, x_test, y_test, bs)
            r["eval_before_forgetting"] = evaluate(model, x_test, y_test)
            evaluate(model, x_test, y_test, 8, train_mode=True)  # forgotten eval(): running stats overwritten
            r["eval_after_forgetting"] = evaluate(model, x_test, y_test)
            per_seed.append(r)

        def agg(get):
            return mean_std([get(r) for r in per_seed])

        summary = {"eval_mode": {bs: agg(lambda r, b=bs: r["eval_mode"][b]) for bs in EVAL_BATCHES},
                   "train_mode": {bs: agg(lambda r, b=bs: r["train_mode"][b]) for bs in EVAL_BATCHES if bs > 1},
                   "eval_before_forgetting": agg(lambda r: r["eval_before_forgetting"]),
                   "eval_after_forgetting": agg(lambda r: r["eval_after_forgetting"])}
        curves = {key: np.mean([r[key] for r in per_seed], 0).tolist()
                  for key in ("checkpoint_eval_acc", "checkpoint_train_mode_acc", "running_mean_err",
                              "running_var_ratio")}
        out.record.update(per_seed=per_seed, summary=summary, checkpoints=checkpoints, curves_mean=curves)
        rows = [[bs, summary["eval_mode"][bs][0], summary["train_mode"][bs][0] if bs > 1 else None,
                 summary["eval_mode"][bs][1], summary["train_mode"][bs][1] if bs > 1 else None]
                for bs in EVAL_BATCHES]
        out.set_table(["eval batch size", "eval mode acc (mean)", "train mode acc (mean)", "eval mode std",
                       "train mode std"], rows)
        plot(out, plotting.as_json(out.record))
        findings = describe(summary, checkpoints, curves)
        report = out.write("Eval mode: running statistics vs batch statistics",
                           f"The paper's BN MLP after {steps} steps (lr {lr:g}), evaluated on {n_eval} test images "
                           "with running statistics (eval) and with batch statistics (train mode).", findings)
    return report


def describe(summary, checkpoints, curves):
    e, t = summary["eval_mode"], summary["train_mode"]
    lines = [f"Eval mode gives {fmt(e[1][0])} at batch size 1 and {fmt(e[256][0])} at 256: the batch size does "
             "not matter once running statistics are used.",
             f"Forgetting eval() (batch statistics): {fmt(t[2][0])} at batch size 2, {fmt(t[8][0])} at 8, "
             f"{fmt(t[32][0])} at 32, {fmt(t[256][0])} at 256.",
             f"One forgotten-eval() pass in batches of 8 rewrites the running statistics: eval accuracy "
             f"{fmt(summary['eval_before_forgetting'][0])} before, {fmt(summary['eval_after_forgetting'][0])} after."]
    for i, s in enumerate(checkpoints):
        if s in (checkpoints[1] if len(checkpoints) > 1 else 0, 10, 100, checkpoints[-1]):
            lines.append(f"After {s} steps: eval-mode {fmt(curves['checkpoint_eval_acc'][i])} vs train-mode "
                         f"{fmt(curves['checkpoint_train_mode_acc'][i])}; first BN running mean off by "
                         f"{curves['running_mean_err'][i]:.2f} sigma, running var / true var "
                         f"{curves['running_var_ratio'][i]:.2f}.")
    return lines


@plotting.styled
def plot(out, record):
    """Accuracy by evaluation batch size and during training (green: running statistics, purple: batch
    statistics), and the first BN layer's running statistics against the population's."""
    summary, curves = record["summary"], record["curves_mean"]
    fig, ax = out.figure(3, 1)
    eval_c, train_c = plotting.color("eval mode"), plotting.color("train mode")
    a = ax[0, 0]
    bs = [int(b) for b in summary["eval_mode"]]
    tb = [int(b) for b in summary["train_mode"]]
    a.errorbar(bs, [summary["eval_mode"][str(b)][0] for b in bs], yerr=[summary["eval_mode"][str(b)][1] for b in bs],
               marker="o", color=eval_c, capsize=3)
    a.errorbar(tb, [summary["train_mode"][str(b)][0] for b in tb],
               yerr=[summary["train_mode"][str(b)][1] for b in tb], marker="s", color=train_c, capsize=3)
    a.set(xscale="log", title="by evaluation batch size", xlabel="evaluation batch size", ylabel="test accuracy")
    a.set_xticks(bs, [str(b) for b in bs])
    a.minorticks_off()
    # NOTE: symlog is linear below 1 and logarithmic above, so step 0 sits on the axis at 0
    x = np.asarray(record["checkpoints"])
    a = ax[0, 1]
    a.plot(x, curves["checkpoint_eval_acc"], marker="o", color=eval_c)
    a.plot(x, curves["checkpoint_train_mode_acc"], marker="s", color=train_c)
    a.set(title="during training", xlabel="training step", ylabel="test accuracy", ylim=(0, 1))
    a = ax[0, 2]
    neutral = plotting.PALETTE["neutral"]
    a.plot(x, curves["running_var_ratio"], marker="^", color="black")
    a.plot(x, curves["running_mean_err"], marker="v", ls="--", color=neutral)
    a.axhline(1.0, color=neutral, lw=1, ls=":")
    a.set(yscale="log", title="first BN layer's running stats", xlabel="training step",
          ylabel="vs population (log scale)")
    for a in ax[0, 1:]:
        a.set_xscale("symlog", linthresh=1)
        ticks = [t for t in (0, 1, 10, 100, 1000, 10000, 100000) if t <= max(x[-1], 1)]
        a.set_xticks(ticks, [f"{t:g}" if t < 1000 else f"{t // 1000}k" for t in ticks])
        a.minorticks_off()
        a.set_xlim(0, max(x[-1], 1) * 1.4)
    plotting.legend_below(
        fig, [plotting.line_handle("eval mode", marker="o"), plotting.line_handle("train mode", marker="s"),
              plotting.line_handle("black", marker="^"), plotting.line_handle("neutral", marker="v", ls="--")],
        ["eval mode (running statistics)", "train mode (batch statistics, batch 256 in the middle)",
         "running var / population var", "|running mean - population mean| / population std"], ncol=2)
    out.save_figure(fig, "eval_mode.png", "Left: test accuracy with running statistics (eval mode) and with "
                    "batch statistics (eval() forgotten) by evaluation batch size. Middle: both during training. "
                    "Right: the first BN layer's running statistics against the population's (dotted: 1, where the variance "
                    "ratio should end). Mean over seeds; step 0 is drawn at 0 on a log-scaled step axis.")
