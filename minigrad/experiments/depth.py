"""depth: plain vs batch-normalized MLPs (width 100) of increasing depth, sigmoid and ReLU. Per-layer gradient
norms at initialization (one batch of 60 training images), and test accuracy after a fixed budget of SGD steps.
Inits are PyTorch's default (kaiming-uniform with a = sqrt 5, i.e. U(+-1/sqrt(fan_in))).
"""
import numpy as np

import minigrad as mg
from minigrad.nn import functional as F

from . import plotting
from .common import Outputs, environment, fmt, linear_layers, load_data, mean_std, mlp, seeds_range, train_run

LR = 0.1
ACTS = ("sigmoid", "relu")


def grad_norms_at_init(model, x, y):
    """The Frobenius norm of d loss / d weight of every Linear, first layer first, on one batch (train mode)."""
    model.train()
    loss = F.cross_entropy(model(mg.Tensor(x)), mg.Tensor(y))
    loss.backward()
    norms = [float(np.linalg.norm(m.weight.grad.data)) for m in linear_layers(model)]
    for p in model.parameters():
        p.grad = None
    return norms


def run(cfg):
    depths = (3, 6, 10, 20) if not cfg.quick else (2, 5)
    steps = cfg.pick(cfg.steps, 1000, 60)
    lr = cfg.lr if cfg.lr is not None else LR
    seeds = seeds_range(cfg, 2, 1)
    with environment(cfg) as backend:
        data = load_data(cfg)
        config = dict(depths=list(depths), width=100, activations=list(ACTS), steps=steps, lr=lr, batch_size=60,
                      optimizer="SGD, no momentum", init="PyTorch default (kaiming-uniform, a=sqrt 5)",
                      grad_norm_batch="first 60 training images", seeds=seeds)
        out = Outputs(cfg, backend, config)
        results = {}
        for act in ACTS:
            for bn in (False, True):
                for depth in depths:
                    label = f"{act} {'BN' if bn else 'plain'} depth {depth}"
                    norms, finals = [], []
                    for seed in seeds:
                        mg.manual_seed(seed)
                        model = mlp(depth, act=act, bn=bn)
                        norms.append(grad_norms_at_init(model, data.x_train[:60], data.y_train[:60]))
                        h = train_run(model, data, steps=steps, lr=lr, seed=seed, eval_steps=[steps],
                                      desc=label, progress=cfg.progress)
                        finals.append(h.final_acc)
                    g = np.asarray(norms)
                    m, s = mean_std(finals)
                    results[label] = {"act": act, "bn": bn, "depth": depth, "grad_norms_per_seed": g,
                                      "grad_norms_mean": g.mean(0), "final_acc_per_seed": finals,
                                      "final_acc_mean": m, "final_acc_std": s,
                                      "grad_ratio_first_to_last": float(g.mean(0)[0] / max(g.mean(0)[-1], 1e-30))}
        out.record["results"] = results
        out.set_table(["network", "final test acc (mean)", "std", "grad norm first layer", "grad norm last layer",
                       "first/last"],
                      [[lb, r["final_acc_mean"], r["final_acc_std"], float(r["grad_norms_mean"][0]),
                        float(r["grad_norms_mean"][-1]), r["grad_ratio_first_to_last"]] for lb, r in results.items()])
        plot(out, plotting.as_json(out.record))
        findings = describe(results, depths, steps)
        report = out.write("Depth: plain vs batch-normalized MLPs",
                           f"MLPs of {', '.join(map(str, depths))} hidden layers of width 100, trained {steps} steps "
                           f"with SGD (lr {lr:g}, batch 60).", findings,
                           ["Gradient norms are of the weight matrices, layer 1 (input) to the output layer; "
                            "'first/last' is their ratio (below 1: gradients vanish towards the input).",
                            "Numbers below 0.001 print in scientific notation; the JSON holds them in full.",
                            "One lr for every network: plain sigmoid nets with PyTorch's default init can sit on "
                            "their initial plateau for the whole budget at this lr, even when shallow (paper-mnist "
                            "uses lr 0.5 and a longer run).",
                            "With BN and ReLU the gradient norm grows towards the input as depth grows: BN fixes "
                            "the forward scale, not the backward one (gradient explosion at init in deep BN nets, "
                            "Yang et al. 2019); the nets still train at this lr."])
    return report


def describe(results, depths, steps):
    deepest = max(depths)
    lines = []
    for act in ACTS:
        p, b = results[f"{act} plain depth {deepest}"], results[f"{act} BN depth {deepest}"]
        lines.append(f"{act}, {deepest} layers: first/last layer gradient-norm ratio at init {p['grad_ratio_first_to_last']:.2e} "
                     f"plain vs {b['grad_ratio_first_to_last']:.2e} with BN; accuracy after {steps} steps "
                     f"{fmt(p['final_acc_mean'])} plain vs {fmt(b['final_acc_mean'])} with BN.")
    return lines


ACT_STYLE = {"sigmoid": dict(ls="-", marker="o"), "relu": dict(ls="--", marker="s")}


@plotting.styled
def plot(out, record):
    """Gradient norms per layer at init (one panel per activation; colour: plain or BN, shade: depth) and the
    accuracy against depth (colour: plain or BN; line style and marker: activation)."""
    results = record["results"]
    depths = sorted(record["config"]["depths"])
    shades = {d: 0.35 + 0.65 * i / max(len(depths) - 1, 1) for i, d in enumerate(depths)}  # deeper: darker
    fig, ax = out.figure(3, 1)
    handles, labels = [], []
    for k, act in enumerate(ACTS):
        a = ax[0, k]
        for r in results.values():
            if r["act"] != act:
                continue
            method = "BN" if r["bn"] else "plain"
            g = np.asarray(r["grad_norms_mean"], dtype=float)
            line, = a.semilogy(np.arange(1, len(g) + 1), np.maximum(g, 1e-30),
                               color=plotting.shade(plotting.color(method), shades[r["depth"]]))
            if k == 0:
                handles.append(line)
                labels.append(f"{method}, depth {r['depth']}")
        a.set(title=f"{act}: gradient norm at init", xlabel="layer (1 = input)", ylabel="||dL/dW||")
        plotting.integer_ticks(a.xaxis)
    a = ax[0, 2]
    for act in ACTS:
        for bn in (False, True):
            method = "BN" if bn else "plain"
            rs = [results[f"{act} {method} depth {d}"] for d in depths]
            a.errorbar(depths, [r["final_acc_mean"] for r in rs], yerr=[r["final_acc_std"] or 0 for r in rs],
                       color=plotting.color(method), capsize=3, **ACT_STYLE[act])
    a.set(title=f"accuracy after {record['config']['steps']} steps", xlabel="depth (hidden layers)", ylabel="test accuracy", ylim=(0, 1))
    plotting.integer_ticks(a.xaxis, depths)
    for act in ACTS:
        handles.append(plotting.line_handle("neutral", **ACT_STYLE[act]))
        labels.append(f"{act} (right)")
    plotting.legend_below(fig, handles, labels, ncol=len(depths) + 1)  # two rows: plain, BN, activations
    out.save_figure(fig, "depth.png", "Left, middle: per-layer weight-gradient norms at init, mean over seeds "
                    "(vermillion: plain, blue: BN; darker: deeper). Right: test accuracy after the fixed budget "
                    "against depth (solid circles: sigmoid, dashed squares: relu; bars: std over seeds).")
