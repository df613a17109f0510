"""backends: the same short training run of the paper's BN MLP on every available kernel backend, at 1 and 2
threads. The loss and accuracy curves must agree to float tolerance (the NumPy reference is the oracle); the
time per step shows what each backend costs.

NOTE: all backends run in one process, as a user would switch them; TOOLCHAIN.md warns that 2-thread timings on
shared machines are noisy, so the reported time is the median step and the report says so.
"""
import numpy as np

import minigrad as mg
from minigrad.app.models import build_model

from . import plotting
from .common import Outputs, environment, eval_schedule, fmt, init_scheme_label, initialize, load_data, threads, \
    train_run
from .paper_mnist import INIT_STD, LR

THREADS = (1, 2)
ORACLE = "numpy"


def run(cfg):
    steps = cfg.pick(cfg.steps, 300, 12)
    lr = cfg.lr if cfg.lr is not None else LR
    init_std = cfg.init_std if cfg.init_std is not None else INIT_STD
    names = [b for b in mg.available_backends()]
    with environment(cfg) as default_backend:
        data = load_data(cfg)
        schedule = eval_schedule(steps, max(steps // 5, 1))
        config = dict(model="mlp-bn (paper)", steps=steps, lr=lr, init=init_scheme_label(init_std), seed=0,
                      backends=names, threads=list(THREADS), eval_steps=schedule, oracle=ORACLE,
                      timing="median over steps of forward + backward + SGD update")
        out = Outputs(cfg, default_backend, config)
        runs = {}
        for name in names:
            for n in THREADS:
                with mg.using_backend(name), threads(n):
                    ran = mg.get_backend()
                    mg.manual_seed(0)
                    model = initialize(build_model("mlp-bn"), init_std)
                    h = train_run(model, data, steps=steps, lr=lr, seed=0, eval_steps=schedule,
                                  desc=f"{name} x{n}", progress=cfg.progress)
                runs[f"{name} x{n}"] = {"backend": ran, "threads": n, "losses": h.losses, "test_acc": h.test_acc,
                                        "ms_per_step": h.ms_per_step()}
        oracle = runs[f"{ORACLE} x1"] if f"{ORACLE} x1" in runs else next(iter(runs.values()))
        for r in runs.values():
            r["max_abs_loss_diff"] = float(np.max(np.abs(np.asarray(r["losses"]) - np.asarray(oracle["losses"]))))
            r["max_abs_acc_diff"] = float(np.max(np.abs(np.asarray(r["test_acc"]) - np.asarray(oracle["test_acc"]))))
        out.record["eval_steps"] = schedule
        out.record["runs"] = runs
        out.record["max_abs_loss_diff"] = max(r["max_abs_loss_diff"] for r in runs.values())
        out.record["max_abs_acc_diff"] = max(r["max_abs_acc_diff"] for r in runs.values())
        out.set_table(["backend x threads", "ms/step (median)", "final loss", "final test acc",
                       "max abs loss diff vs numpy x1", "max abs acc diff"],
                      [[k, r["ms_per_step"], r["losses"][-1], r["test_acc"][-1], r["max_abs_loss_diff"],
                        r["max_abs_acc_diff"]] for k, r in runs.items()])
        plot(out, plotting.as_json(out.record))
        fastest = min(runs, key=lambda k: runs[k]["ms_per_step"])
        findings = [f"Largest |loss difference| from the NumPy reference over all {steps} steps and all "
                    f"backends/threads: {out.record['max_abs_loss_diff']:.3e}; largest test-accuracy difference "
                    f"{out.record['max_abs_acc_diff']:.4f}.",
                    f"Fastest: {fastest} at {fmt(runs[fastest]['ms_per_step'], 3)} ms/step; "
                    + ", ".join(f"{k} {fmt(r['ms_per_step'], 3)}" for k, r in runs.items()) + " ms/step."]
        report = out.write("Backends: the same training run on every kernel backend",
                           f"The paper's BN MLP, {steps} SGD steps from one seed, on backends {', '.join(names)} "
                           f"at {' and '.join(map(str, THREADS))} threads.", findings,
                           ["A step here is mostly BLAS matmuls and Python autograd; the batch-norm kernels are "
                            "a small share of it, so backends differ less than in the kernel benchmarks.",
                            "2-thread timings on a shared 2-core machine vary run to run (TOOLCHAIN.md, Noise)."])
    return report


THREAD_STYLE = {1: "-", 2: "--"}


@plotting.styled
def plot(out, record):
    """Loss curves, their difference from the oracle and the time per step (colour: backend; line style or
    hatching: thread count)."""
    runs = record["runs"]
    oracle = record["config"]["oracle"]
    ref = f"{oracle} x1" if f"{oracle} x1" in runs else next(iter(runs))
    fig, ax = out.figure(3, 1)
    for k, r in runs.items():
        c, ls = plotting.color(r["backend"]), THREAD_STYLE.get(r["threads"], ":")
        ax[0, 0].plot(r["losses"], lw=1.0, color=c, ls=ls)
        if k != ref:
            diff = np.abs(np.asarray(r["losses"], dtype=float) - np.asarray(runs[ref]["losses"], dtype=float))
            ax[0, 1].semilogy(np.maximum(np.maximum.accumulate(diff), 1e-12), color=c, ls=ls)
    ax[0, 0].set(title="training loss (all runs overlap)", xlabel="step", ylabel="cross entropy")
    ax[0, 1].set(title=f"|loss - loss of {ref}|, max so far", xlabel="step", ylabel="absolute difference")
    names = list(runs)
    bars = ax[0, 2].bar(range(len(names)), [runs[k]["ms_per_step"] for k in names],
                        color=[plotting.color(runs[k]["backend"]) for k in names])
    ax[0, 2].set_xticks(range(len(names)), [str(runs[k]["threads"]) for k in names])
    for b, k in zip(bars, names):
        if runs[k]["threads"] > 1:
            b.set_hatch("//")
            b.set_edgecolor("white")
    ax[0, 2].set(title="median time per step", ylabel="ms", xlabel="threads (colour: backend)")
    ax[0, 2].grid(False, axis="x")
    backends = list(dict.fromkeys(r["backend"] for r in runs.values()))
    threads = sorted({r["threads"] for r in runs.values()})
    plotting.legend_below(fig, [plotting.line_handle(b) for b in backends]
                          + [plotting.line_handle("neutral", ls=THREAD_STYLE.get(n, ":")) for n in threads],
                          backends + [f"{n} thread{'s' if n > 1 else ''} (hatched bar: 2)" if n > 1 else
                                      f"{n} thread" for n in threads], ncol=len(backends) + len(threads))
    out.save_figure(fig, "backends.png", "Left: loss curves (on top of each other); middle: running maximum of the "
                    f"difference from {ref} (floored at 1e-12); right: median time per training step "
                    "(colour: backend; dashed or hatched: 2 threads).")
