"""paper-mnist: Ioffe & Szegedy (2015), Sec. 4.1 and Figure 1.

The 784-100-100-100-10 sigmoid MLP (``minigrad.models`` "mlp" / "mlp-bn"), weights from a small Gaussian,
mini-batches of 60, plain SGD, trained with and without batch norm before each sigmoid. Figure 1(a): test
accuracy against training steps, evaluated in eval mode on the whole test set. Figure 1(b, c): the 15th, 50th and
85th percentiles of the input to one fixed sigmoid of the last hidden layer, on a fixed batch of test images.
"""
import numpy as np

import minigrad as mg
from minigrad import nn
from minigrad.app.models import build_model

from . import plotting
from .common import Outputs, environment, eval_schedule, fmt, init_scheme_label, initialize, load_data, \
    mean_std, seeds_range, train_run

LR = 0.5          # the paper gives none; see the notes in the report
INIT_STD = 0.01   # "small random Gaussian values"
UNIT = 0          # the sigmoid of the last hidden layer whose input is tracked
PROBE_IMAGES = 1000
PERCENTILES = (15, 50, 85)
TARGETS = (0.9, 0.95)
NETWORKS = {"without BN": "mlp", "with BN": "mlp-bn"}


def sigmoid_input_probe(model, x):
    """A probe for ``train_run``: percentiles of the input to sigmoid ``UNIT`` of the last hidden layer on the
    images ``x``, in eval mode (with BN: normalized by the running statistics, as at test time)."""
    last = max(i for i, m in enumerate(model) if isinstance(m, nn.Sigmoid))
    head = model[:last]

    def probe(_model):
        was_training = model.training
        model.eval()
        with mg.no_grad():
            z = head(mg.Tensor(x)).data[:, UNIT]
        model.train(was_training)
        return np.percentile(z.astype(np.float64), PERCENTILES).tolist()

    return probe


def run(cfg):
    steps = cfg.pick(cfg.steps, 50_000, 600)
    every = max(steps // (100 if not cfg.quick else 20), 1)
    lr = cfg.lr if cfg.lr is not None else LR
    init_std = cfg.init_std if cfg.init_std is not None else INIT_STD
    seeds = seeds_range(cfg, 1, 1)
    with environment(cfg) as backend:
        data = load_data(cfg)
        x_probe = data.x_test[:PROBE_IMAGES]
        config = dict(steps=steps, eval_every=every, lr=lr, init=init_scheme_label(init_std), batch_size=60,
                      optimizer="SGD, no momentum, no weight decay, constant lr", seeds=seeds,
                      probe=f"input to sigmoid {UNIT} of hidden layer 3, first {len(x_probe)} test images, eval mode",
                      eval="whole test set, eval mode", bn_momentum=0.1, bn_eps=1e-5)
        out = Outputs(cfg, backend, config)
        schedule = eval_schedule(steps, every)
        results = {}
        for label, model_name in NETWORKS.items():
            runs = []
            for seed in seeds:
                mg.manual_seed(seed)
                model = initialize(build_model(model_name), init_std)
                h = train_run(model, data, steps=steps, lr=lr, seed=seed, eval_steps=schedule,
                              probe=sigmoid_input_probe(model, x_probe), desc=f"{label} seed {seed}",
                              progress=cfg.progress)
                runs.append(h)
            results[label] = summarize(runs)
        out.record["eval_steps"] = schedule
        out.record["percentiles"] = list(PERCENTILES)
        out.record["results"] = results
        plot(out, plotting.as_json(out.record))
        rows = []
        for label, r in results.items():
            rows.append([label, r["final_acc_mean"], r["final_acc_std"]]
                        + [r["steps_to"][str(t)]["median"] for t in TARGETS] + [r["ms_per_step"]])
        out.set_table(["network", "final test acc (mean)", "std over seeds"]
                      + [f"steps to {t:.0%} (median)" for t in TARGETS] + ["ms/step"], rows)
        findings = describe(results, steps)
        notes = [
            f"Learning rate {lr:g} and init {init_scheme_label(init_std)} are ours: the paper states neither an lr "
            "nor the init std. Without BN the result depends strongly on both: with a std of 0.01 the signal "
            "shrinks ~100x per layer at the start, so the plain network first sits on a plateau near chance "
            "until the weights grow; a larger lr shortens the plateau, and too large an lr diverges. With BN "
            "the network is nearly insensitive to the init scale (each layer is renormalized) and tolerates a "
            "much larger lr; see the lr-sweep and init-sweep reports.",
            (f"Steps: the paper's {steps}" if steps == 50_000 else f"Steps: {steps} of the paper's 50,000") +
            f" (about {1e3 * sum(r['ms_per_step'] for r in results.values()) * steps / 1e6:.0f} s of training for "
            f"both networks at the measured ms/step). The accuracy is evaluated every {every} steps on the whole "
            "test set; steps-to-target are therefore multiples of that interval.",
            "The percentile curves use running statistics (eval mode), so early in training the BN network's "
            "curves reflect running statistics that are still converging from (mean 0, var 1).",
        ]
        report = out.write("Paper MNIST: Ioffe & Szegedy (2015) Figure 1",
                           "The 784-100-100-100-10 sigmoid MLP trained with plain SGD, batch 60, with and without "
                           "batch normalization before each sigmoid.", findings, notes)
    return report


def summarize(runs):
    acc = np.array([h.test_acc for h in runs])               # (seeds, evals)
    pct = np.array([[p for p in h.probes] for h in runs], dtype=float)  # (seeds, evals, 3); NaN after divergence
    final = [h.final_acc for h in runs]
    m, s = mean_std(final)
    steps_to = {}
    for t in TARGETS:
        hits = [h.steps_to(t) for h in runs]
        reached = [v for v in hits if v is not None]
        steps_to[str(t)] = {"per_seed": hits,
                            "median": int(np.median(reached)) if len(reached) == len(hits) else None}
    return {"test_acc_mean": acc.mean(0), "test_acc_std": acc.std(0), "test_acc_per_seed": acc,
            "percentiles_seed0": pct[0], "final_acc_per_seed": final, "final_acc_mean": m, "final_acc_std": s,
            "steps_to": steps_to, "diverged_at": [h.diverged_at for h in runs],
            "ms_per_step": float(np.mean([h.ms_per_step() for h in runs])),
            "loss_first_100_mean": float(np.mean(runs[0].losses[:100])),
            "loss_last_100_mean": float(np.mean(runs[0].losses[-100:]))}


def describe(results, steps):
    a, b = results["without BN"], results["with BN"]
    lines = [f"Final test accuracy after {steps} steps: {fmt(b['final_acc_mean'])} with BN against "
             f"{fmt(a['final_acc_mean'])} without."]
    for t in TARGETS:
        sa, sb = a["steps_to"][str(t)]["median"], b["steps_to"][str(t)]["median"]
        if sb is not None and sa is not None:
            lines.append(f"{t:.0%} test accuracy: step {sb} with BN, step {sa} without ({sa / max(sb, 1):.1f}x).")
        elif sb is not None:
            lines.append(f"{t:.0%} test accuracy: step {sb} with BN; not reached without BN within {steps} steps.")
    for label, r in results.items():
        p = np.asarray(r["percentiles_seed0"], dtype=float)[1:]  # after step 0
        median, width = p[:, 1], p[:, 2] - p[:, 0]
        lines.append(f"{label}: over training the median input to the sigmoid ranges over [{np.nanmin(median):.2f}, "
                     f"{np.nanmax(median):.2f}] (span {np.nanmax(median) - np.nanmin(median):.2f}) and the 15-85 "
                     f"width over [{np.nanmin(width):.2f}, {np.nanmax(width):.2f}]; at the end "
                     f"{p[-1, 0]:.2f}/{p[-1, 1]:.2f}/{p[-1, 2]:.2f}.")
    return lines


@plotting.styled
def plot(out, record):
    """Figure 1 from the run's JSON ``record``: (a) test accuracy, (b, c) the sigmoid input's median and its
    15th-85th percentile band, one colour per network, one legend under the panels."""
    results = record["results"]
    x = np.asarray(record["eval_steps"])
    fig, ax = out.figure(3, 1)
    a = ax[0, 0]
    for label, r in results.items():
        m, s = np.asarray(r["test_acc_mean"], dtype=float), np.asarray(r["test_acc_std"], dtype=float)
        a.plot(x, m, color=plotting.color(label))
        a.fill_between(x, m - s, m + s, color=plotting.color(label), alpha=0.25, lw=0)
    late = [np.nanmin(np.asarray(r["test_acc_mean"], dtype=float)[len(x) // 2:]) for r in results.values()]
    a.set(title="(a) test accuracy", xlabel="training step", ylabel="test accuracy",
          ylim=(max(0.0, float(min(late)) - 0.05), 1.0))
    pct = {label: np.asarray(r["percentiles_seed0"], dtype=float) for label, r in results.items()}
    lo = min(np.nanmin(p) for p in pct.values())
    hi = max(np.nanmax(p) for p in pct.values())
    for k, (label, panel) in enumerate((("without BN", "(b)"), ("with BN", "(c)"))):
        a, p = ax[0, k + 1], pct[label]
        a.fill_between(x, p[:, 0], p[:, 2], color=plotting.color(label), alpha=0.25, lw=0)
        a.plot(x, p[:, 1], color=plotting.color(label))
        a.set(title=f"{panel} sigmoid input, {label}", xlabel="training step", ylabel="input to sigmoid",
              ylim=(lo - 0.2, hi + 0.2))  # one scale for (b) and (c), so their drift compares by eye
    for a in ax[0]:
        plotting.thousands(a.xaxis)
    q = record["percentiles"]
    plotting.legend_below(fig, [plotting.line_handle("without BN"), plotting.line_handle("with BN"),
                                plotting.line_handle("neutral"), plotting.band_handle()],
                          ["without BN", "with BN", f"(b, c) median ({q[1]}th percentile)",
                           f"(b, c) {q[0]}th to {q[2]}th percentile"])
    out.save_figure(fig, "figure1.png", "Figure 1: (a) test accuracy (line: mean over seeds, band: one std); "
                    f"(b, c) the input to one sigmoid of the last hidden layer on {PROBE_IMAGES} test images: "
                    f"median (line) and {q[0]}th to {q[2]}th percentile (band), seed 0.")
