"""small-batch: batch norm and its remedies at batch sizes 2 to 32.

One small CNN (three 3x3 convs of 8, 16, 32 channels at 28x28, 14x14 and 7x7, each followed by a normalization
and its nonlinearity, max-pool between them, global average pool, a linear classifier) trained at batch sizes 2,
4, 8, 16 and 32 with each normalization of ``METHODS``. Every batch size sees the same number of training samples
(``--steps`` counts steps at batch 32), with the linear scaling rule for the learning rate (Goyal et al. 2017; as
Wu & He 2018 for GroupNorm): SGD with momentum 0.9 at ``lr * B / 32``.

Test accuracy is taken in eval mode. For BN and Batch Renorm the eval mode uses running statistics, which at
small batches differ from the batch statistics the network was trained with: the classic failure (Ioffe 2017,
Wu & Johnson 2021). Two diagnostics separate it from a failure of training itself: the same BN network evaluated
with batch statistics over test batches of its training batch size (train mode, running statistics left as they
were), and with population statistics recomputed by ``minigrad.nn.utils.update_bn`` over training images in large
batches ("PreciseBN").

Ghost BN normalizes chunks of ``VIRTUAL_BATCH`` samples: at batch sizes up to that it is plain BN (not run again;
the table says "= BN"), above it it trains with batch-4 statistics but batch-B gradient steps.
"""
import numpy as np

import minigrad as mg
from minigrad import nn
from minigrad.data import DataLoader, TensorDataset
from minigrad.nn.utils import update_bn

from . import plotting
from .common import Outputs, environment, evaluate, fmt, load_data, mean_std, seeds_range, train_run

BATCH_SIZES = (2, 4, 8, 16, 32)
METHODS = ("no norm", "BN", "BatchRenorm", "ghost BN", "GroupNorm", "FRN+TLU", "EvoNorm-S0")
WIDTHS = (16, 32)
GROUPS = 4           # GroupNorm and EvoNorm-S0: 4 groups of 4 and 8 channels
VIRTUAL_BATCH = 4    # ghost BN
LR = 0.1             # at batch 32; lr = LR * B / 32
MOMENTUM = 0.9
RENORM_WARMUP = 0.1  # fraction of the steps that Batch Renorm runs as BN before its clips open (over as many again)
PRECISE_BATCH = 500  # batch size of the update_bn pass (PreciseBN)
DIAGNOSED = ("BN", "BatchRenorm")


def norm_act(method, c, warmup_steps):
    """The normalization of ``method`` for ``c`` channels followed by its nonlinearity, as a list of modules."""
    if method == "no norm":
        return [nn.ReLU()]
    if method == "BN":
        return [nn.BatchNorm2d(c), nn.ReLU()]
    if method == "BatchRenorm":
        return [nn.BatchRenorm2d(c, warmup_steps=warmup_steps), nn.ReLU()]
    if method == "ghost BN":
        return [nn.BatchNorm2d(c, virtual_batch_size=VIRTUAL_BATCH), nn.ReLU()]
    if method == "GroupNorm":
        return [nn.GroupNorm(GROUPS, c), nn.ReLU()]
    if method == "FRN+TLU":
        return [nn.FilterResponseNorm2d(c), nn.TLU(c)]
    if method == "EvoNorm-S0":
        return [nn.EvoNorm2d(c, version="S0", num_groups=GROUPS)]  # its sigmoid gate is the nonlinearity
    raise ValueError(f"unknown method {method!r}; choose from {METHODS}")


def small_cnn(method, warmup_steps=0):
    """conv3x3/2(16)-norm-act-conv3x3/2(32)-norm-act-flatten-linear(10): 28x28 to 14x14 to 7x7, convs without
    bias where a normalization follows."""
    layers, c_in = [], 1
    for c in WIDTHS:
        layers.append(nn.Conv2d(c_in, c, 3, stride=2, padding=1, bias=method == "no norm"))
        layers += norm_act(method, c, warmup_steps)
        c_in = c
    layers += [nn.Flatten(), nn.Linear(c_in * 7 * 7, 10)]
    return nn.Sequential(*layers)


def batch_stats_accuracy(model, x, y, batch_size):
    """Accuracy with batch statistics over test batches of ``batch_size``; the running statistics are restored."""
    state = model.state_dict()
    acc = evaluate(model, x, y, batch_size, train_mode=True)
    model.load_state_dict(state)
    return acc


def precise_bn_accuracy(model, x_pop, x, y):
    """Eval accuracy after ``update_bn`` over ``x_pop`` in batches of ``PRECISE_BATCH``; the statistics are
    restored after."""
    state = model.state_dict()
    update_bn(DataLoader(TensorDataset(x_pop), batch_size=PRECISE_BATCH), model)
    acc = evaluate(model, x, y)
    model.load_state_dict(state)
    return acc


def run(cfg):
    steps32 = cfg.pick(cfg.steps, 128, 8)
    samples = steps32 * max(BATCH_SIZES)
    lr = cfg.lr if cfg.lr is not None else LR
    seeds = seeds_range(cfg, 3, 1)
    with environment(cfg) as backend:
        data = load_data(cfg)
        n_test = min(2000 if not cfg.quick else 500, len(data.y_test))
        x_test, y_test = data.x_test[:n_test], data.y_test[:n_test]
        x_pop = data.x_train[:2000 if not cfg.quick else 500]
        config = dict(model="small CNN: conv3x3 8/16/32 channels, norm + act after each, max-pool, global avg pool, "
                            "linear", batch_sizes=list(BATCH_SIZES), methods=list(METHODS),
                      samples_seen=samples, steps={b: samples // b for b in BATCH_SIZES},
                      optimizer=f"SGD, momentum {MOMENTUM}, constant lr = {lr:g} * B / 32, no weight decay",
                      lr_at_32=lr, groups=GROUPS, virtual_batch_size=VIRTUAL_BATCH,
                      renorm=f"r_max 3, d_max 5, warmup_steps = {RENORM_WARMUP:g} * steps",
                      bn_momentum=0.1, test_images=n_test, eval="eval mode, batches of 1000",
                      precise_bn=f"update_bn over the first {len(x_pop)} training images in batches of "
                                 f"{PRECISE_BATCH}", seeds=seeds)
        out = Outputs(cfg, backend, config)
        results = {}
        for method in METHODS:
            for b in BATCH_SIZES:
                key = f"{method} @{b}"
                if method == "ghost BN" and b <= VIRTUAL_BATCH:
                    results[key] = {"method": method, "batch_size": b, "same_as": f"BN @{b}"}
                    continue
                steps = samples // b
                r = {"method": method, "batch_size": b, "steps": steps, "lr": lr * b / 32, "acc_per_seed": [],
                     "batch_stats_acc_per_seed": [], "precise_bn_acc_per_seed": [], "diverged_per_seed": []}
                for seed in seeds:
                    mg.manual_seed(seed)
                    model = small_cnn(method, int(RENORM_WARMUP * steps))
                    h = train_run(model, data, steps=steps, lr=lr * b / 32, seed=seed, eval_steps=[],
                                  momentum=MOMENTUM, batch_size=b, desc=f"{key} seed {seed}", progress=cfg.progress)
                    r["diverged_per_seed"].append(h.diverged_at is not None)
                    if h.diverged_at is not None:
                        r["acc_per_seed"].append(data.chance)
                        continue
                    r["acc_per_seed"].append(evaluate(model, x_test, y_test))
                    if method in DIAGNOSED:
                        r["batch_stats_acc_per_seed"].append(batch_stats_accuracy(model, x_test, y_test, b))
                    if method == "BN":
                        r["precise_bn_acc_per_seed"].append(precise_bn_accuracy(model, x_pop, x_test, y_test))
                for name in ("acc", "batch_stats_acc", "precise_bn_acc"):
                    r[f"{name}_mean"], r[f"{name}_std"] = mean_std(r[f"{name}_per_seed"])
                results[key] = r
        for key, r in results.items():  # ghost BN at B <= VIRTUAL_BATCH is BN: the same numbers, said so
            if "same_as" in r:
                results[key] = {**results[r["same_as"]], "method": r["method"], "same_as": r["same_as"]}
        out.record["results"] = results
        rows = []
        for method in METHODS:
            rows.append([method] + [cell(results[f"{method} @{b}"], "acc") for b in BATCH_SIZES])
        for method in DIAGNOSED:
            rows.append([f"{method}, batch statistics"] + [cell(results[f"{method} @{b}"], "batch_stats_acc")
                                                          for b in BATCH_SIZES])
        rows.append(["BN, PreciseBN (update_bn)"] + [cell(results[f"BN @{b}"], "precise_bn_acc") for b in BATCH_SIZES])
        out.set_table(["method"] + [f"batch {b}" for b in BATCH_SIZES], rows)
        plot(out, plotting.as_json(out.record))
        findings = describe(results, samples)
        report = out.write(
            "Small batches: batch norm and its remedies",
            f"A small CNN trained on {samples} training samples (the same number at every batch size; "
            f"{samples // 2} steps at batch 2, {samples // 32} at batch 32) with SGD, momentum {MOMENTUM}, lr "
            f"{lr:g} * B / 32, then evaluated in eval mode on {n_test} test images. Cells: test accuracy, mean ± std "
            f"over {len(seeds)} seed(s). The last three rows are diagnostics of BN and Batch Renorm, explained "
            "in the notes.", findings,
            ["'batch statistics': the trained network evaluated in train mode on test batches of its training "
             "batch size (what its layers saw in training; the running statistics restored after).",
             f"'PreciseBN': the BN network's running statistics recomputed by update_bn over {len(x_pop)} training "
             f"images in batches of {PRECISE_BATCH} (population statistics), then eval mode.",
             f"Ghost BN normalizes chunks of {VIRTUAL_BATCH} samples: at batch sizes up to {VIRTUAL_BATCH} it is BN "
             "(its cells repeat BN's, marked '= BN'; not trained again). Above that it trains with the statistics "
             "of batch 4 but the gradient steps of batch B, which isolates the noise of the statistics from the "
             "number of steps.",
             f"Batch Renorm: r_max 3, d_max 5; the first {RENORM_WARMUP:g} of the steps as BN, then the clips "
             "open linearly over as many steps (the paper's schedule, scaled to these short runs).",
             f"GroupNorm and EvoNorm-S0 use {GROUPS} groups (the layers have 16 and 32 channels); FRN is "
             "followed by TLU in place of the ReLU, EvoNorm-S0 has its own nonlinearity.",
             "A run whose loss turned non-finite counts as chance accuracy (0.1).",
             "Short runs: the absolute accuracies are below what these nets reach with full training; the "
             "comparison is between methods at an equal number of samples seen."])
    return report


def cell(r, name):
    """'mean ± std' for the table, '= BN' added where ghost BN is BN."""
    m, s = r.get(f"{name}_mean"), r.get(f"{name}_std")
    if m is None or (isinstance(m, float) and np.isnan(m)):
        return "-"
    text = f"{m:.4f} ± {s:.4f}"
    return text + " (= BN)" if "same_as" in r else text


def describe(results, samples):
    def acc(method, b, name="acc"):
        return results[f"{method} @{b}"][f"{name}_mean"]

    lo, hi = min(BATCH_SIZES), max(BATCH_SIZES)
    ranked = sorted(METHODS, key=lambda m: -acc(m, lo))
    lines = [f"BN: {fmt(acc('BN', hi))} at batch {hi}, {fmt(acc('BN', lo))} at batch {lo} (eval mode, running "
             f"statistics). With batch statistics at its own batch size the same networks give "
             f"{fmt(acc('BN', hi, 'batch_stats_acc'))} and {fmt(acc('BN', lo, 'batch_stats_acc'))}; with "
             f"PreciseBN statistics {fmt(acc('BN', hi, 'precise_bn_acc'))} and "
             f"{fmt(acc('BN', lo, 'precise_bn_acc'))}.",
             f"At batch {lo}, best to worst: " + ", ".join(f"{m} {fmt(acc(m, lo))}" for m in ranked) + ".",
             f"Batch-independent methods (GroupNorm, FRN+TLU, EvoNorm-S0) from batch {hi} to {lo}: "
             + "; ".join(f"{m} {fmt(acc(m, hi))} -> {fmt(acc(m, lo))}" for m in ("GroupNorm", "FRN+TLU", "EvoNorm-S0"))
             + f"; without normalization {fmt(acc('no norm', hi))} -> {fmt(acc('no norm', lo))}.",
             f"Batch Renorm: {fmt(acc('BatchRenorm', hi))} at batch {hi}, {fmt(acc('BatchRenorm', lo))} at {lo}.",
             f"Ghost BN (chunks of {VIRTUAL_BATCH}) at batch {hi}: {fmt(acc('ghost BN', hi))}, against BN "
             f"{fmt(acc('BN', VIRTUAL_BATCH))} at batch {VIRTUAL_BATCH} and {fmt(acc('BN', hi))} at batch {hi}."]
    return lines


MARKERS = {"no norm": "x", "BN": "o", "BatchRenorm": "s", "ghost BN": "D", "GroupNorm": "^", "FRN+TLU": "v",
           "EvoNorm-S0": "P"}


@plotting.styled
def plot(out, record):
    """Test accuracy against batch size, one line per method (left), and BN's eval-time diagnostics (right)."""
    results = record["results"]
    bs = list(record["config"]["batch_sizes"])
    fig, ax = out.figure(2, 1, size=(6.6, 4.6))
    handles, labels = [], []

    def draw(a, method, name, **kw):
        pts = [(b, results[f"{method} @{b}"]) for b in bs]
        pts = [(b, r) for b, r in pts if r.get(f"{name}_mean") is not None and "same_as" not in r]
        return a.errorbar([b for b, _ in pts], [r[f"{name}_mean"] for _, r in pts],
                          yerr=[r[f"{name}_std"] or 0 for _, r in pts], capsize=3, **kw)

    a = ax[0, 0]
    for method in record["config"]["methods"]:
        h = draw(a, method, "acc", color=plotting.color(method), marker=MARKERS[method])
        handles.append(h)
        labels.append(method)
    a.set(title="eval-mode test accuracy", ylabel="test accuracy")
    a = ax[0, 1]
    diag = [("BN", "acc", dict(color=plotting.color("BN"), marker="o"), "BN, running statistics"),
            ("BN", "batch_stats_acc", dict(color=plotting.color("train mode"), marker="o", ls="--"),
             "BN, batch statistics (train mode)"),
            ("BN", "precise_bn_acc", dict(color=plotting.color("eval mode"), marker="o", ls=":"),
             "BN, PreciseBN (update_bn)"),
            ("BatchRenorm", "batch_stats_acc", dict(color=plotting.color("BatchRenorm"), marker="s", ls="--"),
             "BatchRenorm, batch statistics")]
    for method, name, kw, label in diag:
        h = draw(a, method, name, **kw)
        if name != "acc":
            handles.append(h)
            labels.append(label)
    draw(a, "BatchRenorm", "acc", color=plotting.color("BatchRenorm"), marker="s")
    a.set(title="BN-type: which statistics at test time", ylabel="test accuracy")
    for a in ax[0]:
        a.set_xscale("log", base=2)
        a.set_xticks(bs, [str(b) for b in bs])
        a.minorticks_off()
        a.set_xlabel(f"batch size ({record['config']['samples_seen']} samples seen at each)")
    lo = min(min(line.get_ydata()) for a in ax[0] for line in a.get_lines() if len(line.get_ydata()))
    for a in ax[0]:
        a.set_ylim(max(0.0, lo - 0.03), 1.0)
    plotting.legend_below(fig, handles, labels, ncol=4)
    out.save_figure(fig, "small_batch.png",
                    "Left: eval-mode test accuracy against training batch size, one colour per method (mean and "
                    "std over seeds, equal samples seen). Ghost BN (chunks of 4) is drawn only above batch 4, "
                    "where it differs from BN. Right: the BN network evaluated with running statistics (solid), "
                    "with batch statistics at its training batch size (dashed) and with PreciseBN statistics "
                    "(dotted); Batch Renorm in indigo, solid: running statistics.")
