"""lr-sweep: the paper's MLP, plain and batch-normalized, at learning rates 1x, 5x and 30x a base rate (as the
paper's BN-x5 and BN-x30, Sec. 4.2.1): steps to a target test accuracy, final accuracy, divergence.

A run counts as diverged when its loss became NaN/inf or its final test accuracy is within 2 points of chance;
the table tells the two apart (a small init can also leave the plain net at chance, on its initial plateau).
"""
import numpy as np

import minigrad as mg
from minigrad.app.models import build_model

from . import plotting
from .common import Outputs, environment, eval_schedule, fmt, init_scheme_label, initialize, load_data, \
    mean_std, seeds_range, train_run
from .paper_mnist import INIT_STD, LR

MULTIPLIERS = (1, 5, 30)
TARGET = 0.95


def diverged(hist, chance):
    return hist.diverged_at is not None or hist.final_acc <= chance + 0.02


def run(cfg):
    steps = cfg.pick(cfg.steps, 5000, 300)
    every = max(steps // 50, 1)
    base = cfg.lr if cfg.lr is not None else LR
    init_std = cfg.init_std if cfg.init_std is not None else INIT_STD
    seeds = seeds_range(cfg, 2, 1)
    with environment(cfg) as backend:
        data = load_data(cfg)
        target = TARGET if cfg.data == "mnist" else 0.9
        config = dict(steps=steps, eval_every=every, base_lr=base, multipliers=list(MULTIPLIERS),
                      init=init_scheme_label(init_std), batch_size=60, optimizer="SGD, no momentum",
                      target_accuracy=target, seeds=seeds, divergence="NaN/inf loss or final accuracy <= chance + 0.02")
        out = Outputs(cfg, backend, config)
        schedule = eval_schedule(steps, every)
        results = {}
        for bn in (False, True):
            for mult in MULTIPLIERS:
                label = f"{'BN' if bn else 'plain'}-x{mult}"
                runs = []
                for seed in seeds:
                    mg.manual_seed(seed)
                    model = initialize(build_model("mlp-bn" if bn else "mlp"), init_std)
                    runs.append(train_run(model, data, steps=steps, lr=base * mult, seed=seed, eval_steps=schedule,
                                          desc=f"{label} seed {seed}", progress=cfg.progress))
                hits = [h.steps_to(target) for h in runs]
                m, s = mean_std([h.final_acc for h in runs])
                results[label] = {
                    "bn": bn, "multiplier": mult, "lr": base * mult,
                    "test_acc_per_seed": [h.test_acc for h in runs],
                    "test_acc_mean": np.mean([h.test_acc for h in runs], 0),
                    "final_acc_per_seed": [h.final_acc for h in runs], "final_acc_mean": m, "final_acc_std": s,
                    "steps_to_target_per_seed": hits,
                    "steps_to_target_median": int(np.median(hits)) if None not in hits else None,
                    "diverged_per_seed": [diverged(h, data.chance) for h in runs],
                    "nan_at_step_per_seed": [h.diverged_at for h in runs],
                    "nan_runs": sum(h.diverged_at is not None for h in runs),
                    "chance_runs": sum(h.diverged_at is None and diverged(h, data.chance) for h in runs),
                }
        out.record["eval_steps"] = schedule
        out.record["results"] = results
        rows = [[label, r["lr"], r["final_acc_mean"], r["final_acc_std"], r["steps_to_target_median"],
                 r["nan_runs"], r["chance_runs"], len(seeds)] for label, r in results.items()]
        out.set_table(["network", "lr", "final test acc (mean)", "std", f"steps to {target:.0%} (median)",
                       "NaN-loss runs", "runs ending at chance", "runs"], rows)
        plot(out, plotting.as_json(out.record))
        findings = describe(results, target, steps)
        report = out.write("Learning-rate sweep: plain vs batch-normalized sigmoid MLP",
                           f"The paper's MNIST MLP at base lr {base:g} times {', '.join(map(str, MULTIPLIERS))}, "
                           f"with and without BN, {steps} steps of plain SGD (batch 60).", findings,
                           ["Steps to target are evaluation steps (every %d steps); '-' means not reached by "
                            "every seed." % every])
    return report


def describe(results, target, steps):
    lines = []
    for label, r in results.items():
        state = ("trained" if not any(r["diverged_per_seed"]) else
                 f"diverged ({r['nan_runs']} NaN-loss, {r['chance_runs']} at chance of {len(r['diverged_per_seed'])} runs)")
        reach = (f"reached {target:.0%} at step {r['steps_to_target_median']}" if r["steps_to_target_median"]
                 is not None else f"did not reach {target:.0%} in {steps} steps")
        lines.append(f"{label} (lr {r['lr']:g}): {state}, {reach}, final accuracy {fmt(r['final_acc_mean'])}.")
    return lines


MULT_STYLE = {1: "-", 5: "--", 30: ":"}


@plotting.styled
def plot(out, record):
    """Test accuracy during training (colour: plain or BN; line style: lr multiplier) and the final accuracy
    per network, with the runs that diverged marked."""
    results = record["results"]
    target = record["config"]["target_accuracy"]
    x = np.asarray(record["eval_steps"])
    fig, ax = out.figure(2, 1, size=(5.6, 3.6))
    a = ax[0, 0]
    for r in results.values():
        a.plot(x, np.asarray(r["test_acc_mean"], dtype=float), ls=MULT_STYLE.get(r["multiplier"], "-"),
               color=plotting.color("BN" if r["bn"] else "plain"))
    a.axhline(target, color=plotting.PALETTE["neutral"], lw=1)
    a.annotate(f"{target:.0%}", (x[-1], target), xytext=(0, -4), textcoords="offset points", ha="right",
               va="top", color=plotting.PALETTE["neutral"])
    a.set(title="test accuracy (mean over seeds)", xlabel="training step", ylabel="test accuracy", ylim=(0, 1))
    plotting.thousands(a.xaxis)
    a = ax[0, 1]
    labels = list(results)
    m = [results[lb]["final_acc_mean"] or 0.0 for lb in labels]
    s = [results[lb]["final_acc_std"] or 0.0 for lb in labels]
    names = [f"{'BN' if results[lb]['bn'] else 'plain'}\nx{results[lb]['multiplier']}" for lb in labels]
    bars = a.bar(names, m, yerr=s, capsize=3,
                 color=[plotting.color("BN" if results[lb]["bn"] else "plain") for lb in labels])
    for b, lb in zip(bars, labels):
        if any(results[lb]["diverged_per_seed"]):
            a.annotate("diverged", (b.get_x() + b.get_width() / 2, b.get_height()), xytext=(0, 3),
                       textcoords="offset points", ha="center", va="bottom")
    a.set(title="final test accuracy", ylabel="test accuracy", ylim=(0, 1.05))
    a.grid(False, axis="x")
    mults = sorted({r["multiplier"] for r in results.values()})
    lr = {r["multiplier"]: r["lr"] for r in results.values()}
    plotting.legend_below(fig, [plotting.line_handle("plain"), plotting.line_handle("BN")]
                          + [plotting.line_handle("neutral", ls=MULT_STYLE.get(k, "-")) for k in mults],
                          ["plain", "BN"] + [f"x{k} (lr {lr[k]:g})" for k in mults], ncol=2 + len(mults))
    out.save_figure(fig, "lr_sweep.png", "Left: test accuracy during training (vermillion: plain, blue: BN; line "
                    "style: lr multiplier). Right: final accuracy per network and lr multiplier (bars: std over "
                    "seeds; 'diverged': in at least one seed).")
