"""Eager against ``minigrad.compile`` in one process, interleaved, CPU time per step at 1 thread (the models and
steps of ``benchmarks/bench_end_to_end.py``; two copies of the model from the same seed, one per mode):

    PYTHONPATH=$PWD python scripts/compile_ab.py mlp-bn [--rounds 7] [--steps 20]
    PYTHONPATH=$PWD python scripts/compile_ab.py mlp-bn --old sgd-checked      # old against new, compiled
    PYTHONPATH=$PWD python scripts/compile_ab.py mlp-bn --old unfused --eager  # old against new, eager
    PYTHONPATH=$PWD python scripts/compile_ab.py resnet20 --calls --steps 3    # where a replayed step goes
    MINIGRAD_OLD_EXT=DIR PYTHONPATH=$PWD python scripts/compile_ab.py mlp-bn --old small-kernels  # DIR's .so kernels
    PYTHONPATH=$PWD python scripts/compile_ab.py mlp-bn --old swap --swap minigrad.optim.optimizer:SGD.step  # main's

Each round times ``--steps`` eager steps, then ``--steps`` replayed steps (process time); prints per-round figures
and the medians. ``--old NAME`` times compiled steps with one change undone against compiled steps as they are
instead (an old/new A/B of that change in one process). ``--calls`` times each function the replay calls (every
op's forward and backward, host computation and optimizer method, by name); ``--cprofile`` profiles the replayed
step; ``--source`` prints the generated replay function.
"""
import argparse
import functools
import os
import sys
import time

for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "MINIGRAD_NUM_THREADS"):
    os.environ[k] = "1"
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import step_cpu_time  # noqa: E402
from bench_end_to_end import CASES  # noqa: E402


def make_step(model, compiled):
    """The step of scripts/step_cpu_time.py (``step.fn`` the function called, compiled or not; ``step.net``)."""
    return step_cpu_time.build("minigrad-compiled" if compiled else "minigrad", model)


def _sgd_checked():
    """SGD's update through the checked kernel call every step (as before its unchecked calls)."""
    from minigrad.optim import optimizer
    saved = optimizer._remember_raw
    optimizer._remember_raw = lambda *a: None
    import gc
    # NOTE: the unchecked calls already prepared dropped, every optimizer's (the new step's prepares its own again
    # on its block's first step)
    for opt in [o for o in gc.get_objects() if isinstance(o, optimizer.Optimizer)]:
        for p, cached in list(opt._views.items()):
            opt._views[p] = cached[:3]
    return lambda: setattr(optimizer, "_remember_raw", saved)


def _kernels_getattr():
    """``minigrad.kernels.kernels()`` reading the thread's backend with getattr(local, "name", None), as before
    (an AttributeError raised and caught inside on every call in a thread that never set one)."""
    import threading

    from minigrad import kernels
    saved, local = kernels.kernels, threading.local()

    def old():
        name = getattr(local, "name", None) or kernels._default_name or kernels._default()
        backend = kernels._loaded.get(name)
        return backend if backend is not None else kernels.load(name)
    kernels.kernels = old
    return lambda: setattr(kernels, "kernels", saved)


def _keep_saved():
    """Replays that keep what each op saved and every activation until the step returns (the contexts' arrays
    until the next step's forward), as before: recorded with this undone."""
    from minigrad import capture
    walk, freed = capture._Trace.on_walk, capture._Trace._with_slots_freed

    def on_walk(self, roots, root_grads, create_graph, inputs, accumulate, retain_graph=False):
        return walk(self, roots, root_grads, create_graph, inputs, accumulate, True)
    capture._Trace.on_walk, capture._Trace._with_slots_freed = on_walk, lambda self, outs, lines: lines

    def undo():
        capture._Trace.on_walk, capture._Trace._with_slots_freed = walk, freed
    return undo


def _sigmoid_numpy():
    """The sigmoid as NumPy's composition, as before its kernels: forward -x, exp, + 1, reciprocal (four passes and
    an errstate), backward (g*y)*(1 - y)."""
    import numpy as np

    import minigrad.tensor
    tensor = sys.modules["minigrad.tensor"]  # NOTE: minigrad.tensor the attribute is the function
    fwd, bwd = tensor.Sigmoid.forward, tensor.Sigmoid.backward

    def forward(self, x):
        y = np.negative(x, out=np.empty_like(x))
        with np.errstate(over="ignore"):
            np.exp(y, out=y)
        y += 1
        np.reciprocal(y, out=y)
        self.y = y
        return y

    def backward(self, g):
        dx = g * self.y
        dx *= 1 - self.y
        return dx
    tensor.Sigmoid.forward, tensor.Sigmoid.backward = forward, backward

    def undo():
        tensor.Sigmoid.forward, tensor.Sigmoid.backward = fwd, bwd
    return undo


def _ce_general():
    """Cross entropy's plain case (no weight, no smoothing, no ignored target) through the general path, as before
    its fast path: the forward's per-row weights, products and their sum, the backward's in float64."""
    import numpy as np

    from minigrad import kernels
    loss = sys.modules["minigrad.nn.functional.loss"]
    fwd, bwd = loss._CrossEntropy.forward, loss._CrossEntropy.backward

    def forward(self, x, target, weight, valid, smoothing, reduction):
        m, c = x.shape
        logp = np.empty_like(x)
        kernels.kernels().log_softmax_forward(logp, np.ascontiguousarray(x))
        rows = np.arange(m)
        wt = valid.astype(np.float64) if weight is None else np.where(valid, weight[target], 0.0)
        loss = -(1.0 - smoothing) * wt * logp[rows, target]
        self.logp, self.target, self.weight, self.valid, self.wt = logp, target, weight, valid, wt
        self.smoothing, self.reduction = smoothing, reduction
        total = loss.sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(total / wt.sum() if reduction == "mean" else total, dtype=x.dtype)

    def backward(self, g):
        m, c = self.logp.shape
        s, rows = self.smoothing, np.arange(m)
        p = np.exp(self.logp)
        dx = p * ((1.0 - s) * self.wt)[:, None]
        dx[rows, self.target] -= (1.0 - s) * self.wt
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = g / self.wt.sum() if self.reduction == "mean" else g
        return (dx * scale).astype(p.dtype, copy=False)
    loss._CrossEntropy.forward, loss._CrossEntropy.backward = forward, backward

    def undo():
        loss._CrossEntropy.forward, loss._CrossEntropy.backward = fwd, bwd
    return undo


def _sgd_loop():
    """SGD's step as the base class's loop (``Optimizer.step``: ``_update`` per parameter), as before Session 26's
    inlined unchecked calls."""
    from minigrad.optim import optimizer
    saved = optimizer.SGD.step
    optimizer.SGD.step = optimizer.Optimizer.step
    return lambda: setattr(optimizer.SGD, "step", saved)


def _call_checks():
    """The compiled call's key and guard as before Session 26: the arguments through the general ``_flatten`` and
    the guard's flags compared one by one in Python (``--old call-checks``; the walk's dtype test is not undone)."""
    from minigrad import capture
    flat, guard = capture._flatten_call, capture._Trace.guard

    def old_guard(self):
        for m, flag in zip(self.guard_modules, self.guard_training):
            if m.training is not flag:
                return False
        if capture._module.attr_epoch != self.guard_epoch:
            if tuple(capture._module_state(m) for m in self.guard_modules) != self.guard_state:
                return False
            self.guard_epoch = capture._module.attr_epoch
        for t, (flag, _, _) in zip(self.guard_leaves, self.guard_leaf):
            if t.requires_grad is not flag:
                return False
        return True
    capture._flatten_call = lambda args, kwargs, leaves: capture._flatten((args, kwargs), leaves)
    capture._Trace.guard = old_guard

    def undo():
        capture._flatten_call, capture._Trace.guard = flat, guard
    return undo


def _unfused():
    """nn.Sequential's fusions off (``Sequential.fuse = False`` on the class): the MLP's BatchNorm + Sigmoid pairs
    as two nodes each, as before F.batch_norm_sigmoid."""
    from minigrad import nn
    nn.Sequential.fuse = False
    return lambda: setattr(nn.Sequential, "fuse", True)


def _small_kernels():
    """log_softmax_forward/backward and sigmoid_forward from another build's .so files (the directory in
    $MINIGRAD_OLD_EXT, as scripts/small_kernels_bits.py takes it): docs/perf/small-kernels.md's step A/B."""
    from small_kernels_bits import load

    from minigrad import kernels
    from minigrad.kernels import cython as backend
    d = os.environ["MINIGRAD_OLD_EXT"]
    sm, ew = load(d, "softmax"), load(d, "elementwise")
    names = {"log_softmax_forward": sm, "log_softmax_backward": sm, "sigmoid_forward": ew}
    new = {k: getattr(backend, k) for k in names}
    checked = kernels.load("cython")  # NOTE: its closures bind the raw kernel on first use: dropped both ways
    for k, mod in names.items():
        setattr(backend, k, getattr(mod, k))
        checked.__dict__.pop(k, None)

    def undo():
        for k, f in new.items():
            setattr(backend, k, f)
            checked.__dict__.pop(k, None)
    return undo


def _contract_call():
    """The checked kernel calls through ``_checked`` for every kernel, as before its inline path (``--old
    contract-call``): the active backend's cached closures replaced by the old one-line closure."""
    from minigrad import kernels
    from minigrad.kernels import contract
    backend = kernels.kernels()
    new = {k: v for k, v in vars(backend).items() if k in contract.SPECS}

    def old_call(kernel):
        raw, below = getattr(backend.module, kernel), contract.small(kernel)

        def call(*args):
            return raw(*args, 1 if contract._checked(kernel, args)[1] < below else contract.get_num_threads())
        return call
    olds = _OLD_CALLS.setdefault(id(backend), {})
    for k in contract.SPECS:
        setattr(backend, k, olds.get(k) or olds.setdefault(k, old_call(k)))

    def undo():
        for k in contract.SPECS:
            if k in new:
                setattr(backend, k, new[k])
            else:
                delattr(backend, k)
    return undo


def _modes_local():
    """Grad and anomaly mode read from a plain threading.local with getattr's default, as before minigrad.tensor's
    _Modes class (``--old modes-local``): an AttributeError raised and caught per read in a thread that never set
    one."""
    import threading
    tensor = sys.modules["minigrad.tensor"]
    saved = tensor._modes, tensor._grad_enabled, tensor._anomaly_enabled
    tensor._modes = threading.local()
    tensor._grad_enabled = lambda: getattr(tensor._modes, "grad", True)
    tensor._anomaly_enabled = lambda: getattr(tensor._modes, "anomaly", False)

    def undo():
        tensor._modes, tensor._grad_enabled, tensor._anomaly_enabled = saved
    return undo


def _unbound():
    """Recordings without the bound lines (``--old unbound``): every op's own forward and backward called on
    replay, as before capture's bound ``_Linear`` path."""
    from minigrad import capture
    saved = capture._Trace._bound_set
    capture._Trace._bound_set = lambda self: set()

    def undo():
        capture._Trace._bound_set = saved
    return undo


_OLD_CALLS = {}
_SWAPS = {}


def _swap(tree, names):
    """The old definitions of ``names`` from ``tree`` (``--old swap --swap NAME ... [--tree DIR]``; swap_ab.py's
    ``old_definition``): in place for the old step's recording and its timed blocks."""
    from swap_ab import old_definition
    if names and names[-1] in OLD:  # NOTE: changes of OLD's named last (``--swap NAME ... contract-call``): all
        undo_swap, undo_old = _swap(tree, names[:-1]), OLD[names[-1]]()
        return lambda: (undo_old(), undo_swap())
    # NOTE: made once: a recording names the functions it calls (SGD.step), and its check compares them by identity;
    # each in place before the next is read, so a later old definition sees an earlier old name (capture:_acc
    # before capture:_Trace.__init__, whose namespace holds it)
    swaps = _SWAPS.get(names)
    if swaps is None:
        swaps = _SWAPS[names] = []
        for n in names:
            swaps.append(old_definition(tree, *n.split(":")))
            setattr(swaps[-1][0], swaps[-1][1], swaps[-1][2])
    for holder, name, old, _ in swaps:
        setattr(holder, name, old)

    def undo():
        for holder, name, _, new in reversed(swaps):
            if new is None:
                delattr(holder, name)
            else:
                setattr(holder, name, new)
    return undo


OLD = {"unfused": _unfused, "call-checks": _call_checks, "sgd-checked": _sgd_checked, "sgd-loop": _sgd_loop,
       "kernels-getattr": _kernels_getattr, "keep-saved": _keep_saved, "sigmoid-numpy": _sigmoid_numpy,
       "ce-general": _ce_general, "small-kernels": _small_kernels, "contract-call": _contract_call,
       "modes-local": _modes_local, "unbound": _unbound}
NOT_BITWISE = {"sigmoid-numpy", "ce-general"}  # NOTE: ce-general's backward rounds differently (its loss is the same)


def _calls(comp, steps):
    """Wrap every function the replay calls (``f``/``B``/``h``/``m`` names of its namespace) with a CPU timer."""
    (entry,) = [e for es in comp.fn._cache.values() for e in es]
    ns, pc, total, names = entry.trace.ns, time.process_time, {}, {}

    def timed(k, fn):
        def call(*args, **kwargs):
            c0 = pc()
            try:
                return fn(*args, **kwargs)
            finally:
                total[k] = total.get(k, 0.0) + pc() - c0
        return call

    def run():
        c0 = pc()
        for _ in range(steps):
            comp()
        return (pc() - c0) / steps * 1e3
    plain = run()
    for k, fn in list(ns.items()):
        if k[0] in "fBhm" and k[1:].isdigit() and callable(fn):
            names[k] = getattr(getattr(fn, "func", fn), "__qualname__", k)
            ns[k] = timed(k, fn)
    timed_ms = run()
    by = {}
    for k, v in total.items():
        by[names[k]] = by.get(names[k], 0.0) + v / steps * 1e3
    print(f"step {plain:.3f} ms CPU (with timers {timed_ms:.3f}; in the calls {sum(by.values()):.3f}); load "
          f"{os.getloadavg()[0]:.2f}")
    for n, v in sorted(by.items(), key=lambda kv: -kv[1]):
        print(f"  {n:45s} {v:8.3f} ms")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model", choices=[m for m, _ in CASES])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--cprofile", action="store_true")
    p.add_argument("--source", action="store_true")
    p.add_argument("--calls", action="store_true", help="CPU time of the replay's calls (each op's forward and "
                   "backward, host computation, optimizer method), by function")
    p.add_argument("--old", choices=sorted(OLD) + ["swap"], help="instead of eager against compiled: compiled with "
                   "this change undone (A) against compiled as it is (B), toggled around each timed block")
    p.add_argument("--eager", action="store_true", help="with --old: both steps eager (an old/new A/B of eager)")
    p.add_argument("--swap", nargs="+", metavar="NAME", help="with --old swap: the old definitions of these names "
                   "(module:qualname, as scripts/swap_ab.py takes them) from the tree in --tree; last names from "
                   "--old's choices undo those changes too")
    p.add_argument("--tree", default="/work/main", help="with --old swap: the old checkout")
    p.add_argument("--flip", action="store_true", help="with --old and both steps alike (both compiled, or both "
                   "eager): the two models' roles swapped (a check of the bias of one model's arrays over the other's)")
    a = p.parse_args()
    if a.old == "swap":
        OLD["swap"] = functools.partial(_swap, a.tree, tuple(a.swap))
    import minigrad
    from minigrad.allocator import tune_allocator
    tune_allocator()
    minigrad.set_num_threads(1)
    both = not (a.old is not None and a.eager)
    eager, comp = make_step(a.model, a.old is not None and both), make_step(a.model, both)
    if a.flip:  # NOTE: the old step on the second model's arrays (their addresses, alignment), the new on the first
        eager, comp = comp, eager
    names = ("eager", "compiled") if a.old is None else (f"old ({a.old})", "new")
    for _ in range(4):
        undo = OLD[a.old]() if a.old is not None else None  # NOTE: the old step recorded with the change undone
        le = eager()
        if undo is not None:
            undo()
        lc = comp()
    # same seed, same steps: bit for bit (not NOT_BITWISE's: the sigmoid's old exp is NumPy's, a last-bit apart)
    assert le == lc or a.old in NOT_BITWISE, (le, lc)
    if a.source:
        (entry,) = [e for es in comp.fn._cache.values() for e in es]
        print(entry.trace.src)
    if a.calls:
        return _calls(comp, a.steps)
    if a.cprofile:
        import cProfile
        import pstats
        pr = cProfile.Profile()
        pr.enable()
        for _ in range(a.steps):
            comp()
        pr.disable()
        pstats.Stats(pr).sort_stats("tottime").print_stats(30)
        return
    te, tc = [], []
    for r in range(a.rounds):
        # NOTE: the order reversed every other round, against drift within a round
        for step, out in ((eager, te), (comp, tc)) if r % 2 == 0 else ((comp, tc), (eager, te)):
            undo = OLD[a.old]() if a.old is not None and step is eager else None
            c0 = time.process_time()
            for _ in range(a.steps):
                step()
            out.append((time.process_time() - c0) / a.steps * 1e3)
            if undo is not None:
                undo()
        print(f"round {r}: {names[0]} {te[-1]:.3f} ms  {names[1]} {tc[-1]:.3f} ms  ratio {te[-1] / tc[-1]:.2f}",
              flush=True)
    print(f"{a.model}: {names[0]} {np.median(te):.3f} ms  {names[1]} {np.median(tc):.3f} ms  ratio "
          f"{np.median(te) / np.median(tc):.3f}, median of per-round ratios "
          f"{np.median(np.array(te) / np.array(tc)):.3f} (medians of {a.rounds} rounds of {a.steps} steps, CPU time; "
          f"load {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
