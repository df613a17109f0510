"""What a replayed MLP-BN step (``minigrad.compile``, 1 thread) spends outside its recorded calls:

    PYTHONPATH=$PWD python scripts/replay_overhead.py            # CPU time: real, stubbed replay, stubbed call
    PYTHONPATH=$PWD python scripts/replay_overhead.py --after    # the call's pieces right after a replay
    PYTHONHASHSEED=0 valgrind --tool=callgrind --collect-atstart=no --toggle-collect=starmap_next \
        --callgrind-out-file=/dev/null python scripts/replay_overhead.py --count replay    # or --count call

Stubbed: every recorded callable of the replay (each op's forward and backward, host computation, optimizer
method: the ``f``/``B``/``h``/``m`` names of its namespace) returns its output of one real replay, so what is timed
is the replay function's own lines (the unrolled walk, the gradient checks and sums, the leaves' grads, the frees)
and, for "call", ``Compiled.__call__`` around it. ``--count`` runs 100 of them inside ``itertools.starmap`` for
callgrind's toggle (docs/perf/mlp-step.md). ``--after`` times each piece of the call once right after each of 700
real replays (its caches cold, as in a training loop), by ``time.thread_time`` (about 1 us of it in each figure).
The step is recorded without capture's bound lines (its plain replay, every op's own forward and backward), which
is what the stubs replace; ``--bound`` keeps them (then the bound nodes' kernels are not stubbed).
"""
import itertools
import os
import sys
import time

os.environ["STEP_THREADS"] = "1"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import step_cpu_time  # noqa: E402


def setup():
    import minigrad
    from minigrad.allocator import tune_allocator
    tune_allocator()
    minigrad.set_num_threads(1)
    if "--bound" not in sys.argv:
        from minigrad import capture
        capture._Trace._bound_set = lambda self: set()
    step = step_cpu_time.build("minigrad-compiled", "mlp-bn")
    for _ in range(5):
        step()
    comp = step.fn
    (entry,) = [e for es in comp._cache.values() for e in es]
    free = dict(zip(step.__code__.co_freevars, [c.cell_contents for c in step.__closure__]))
    return comp, entry.trace, free["xt"], free["yt"]


def stubs(comp, trace, xt, yt):
    """(the recorded callables, stubs returning their outputs of one real replay)."""
    ns, last = trace.ns, {}
    real = {k: v for k, v in ns.items() if k[0] in "fBhm" and k[1:].isdigit() and callable(v)}

    def keep(k, fn):
        def call(*args, **kwargs):
            last[k] = out = fn(*args, **kwargs)
            return out
        return call
    ns.update({k: keep(k, fn) for k, fn in real.items()})
    comp(xt, yt)
    ns.update(real)
    return real, {k: (lambda out: lambda *a, **kw: out)(last.get(k)) for k in real}


def main():
    comp, trace, xt, yt = setup()
    a0, a1 = xt.data, yt.data
    if "--after" in sys.argv:
        from minigrad import capture, kernels
        pc, t = time.thread_time, capture._t  # NOTE: CPU time: a figure of a preempted call would be wall time
        pieces = {"nothing": lambda: None, "grad mode": t._grad_enabled, "backend": kernels.get_backend,
                  "threads": kernels.get_num_threads, "_same_call": lambda: capture._same_call(comp._last, (xt, yt)),
                  "full key and lookup": lambda: comp._cache.get((capture._flatten_call((xt, yt), {}, []),
                                                                  t._grad_enabled(), kernels.get_backend(),
                                                                  kernels.get_num_threads())),
                  "guard": trace.guard, "rebuild": lambda: trace.rebuild((a0,))}
        total = dict.fromkeys(pieces, 0.0)
        for _ in range(700):
            for k, f in pieces.items():
                trace.replay(a0, a1)
                t0 = pc()
                f()
                total[k] += pc() - t0
        print(", ".join(f"{k} {v / 700 * 1e6:.2f} us" for k, v in total.items()), f"(load {os.getloadavg()[0]:.1f})")
        return
    real, stub = stubs(comp, trace, xt, yt)
    if "--count" in sys.argv:
        trace.ns.update(stub)
        f = (lambda: trace.replay(a0, a1)) if sys.argv[-1] == "replay" else (lambda: comp(xt, yt))
        for _ in range(50):
            f()
        for _ in itertools.starmap(f, [()] * 100):
            pass
        return

    def timed(fn, n):
        c0 = time.process_time()
        for _ in range(n):
            fn()
        return (time.process_time() - c0) / n * 1e6
    rows = {"real": [], "stubbed replay": [], "stubbed call": []}
    for _ in range(7):
        trace.ns.update(real)
        rows["real"].append(timed(lambda: comp(xt, yt), 500))
        trace.ns.update(stub)
        rows["stubbed replay"].append(timed(lambda: trace.replay(a0, a1), 2000))
        rows["stubbed call"].append(timed(lambda: comp(xt, yt), 2000))
    trace.ns.update(real)
    print(", ".join(f"{k} {np.median(v):.1f} us" for k, v in rows.items()),
          f"(medians of 7 rounds, CPU time; {len(real)} recorded calls; load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
