"""Old against new in one process on ONE model: ``scripts/swap_ab.py``'s swap of definitions (the old ones from
another checkout's source), but both sides time the same model's steps, block by block, the order reversed every
other round. swap_ab.py's two models from one seed differ in their arrays' addresses, which alone moved its control
(no names swapped) by up to 4.7% (docs/perf/mlp-step.md); here a control with no names swapped compares one model
with itself. Prints the medians and the median of the per-round ratios old/new.

    PYTHONPATH=$PWD python scripts/eager_one_model_ab.py /work/main mlp-bn NAMES... [--rounds 61] [--steps 100]
"""
import argparse
import statistics
import sys
import time

from swap_ab import old_definition


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("old_tree")
    p.add_argument("model")
    p.add_argument("names", nargs="*")
    p.add_argument("--rounds", type=int, default=61)
    p.add_argument("--steps", type=int, default=100)
    a = p.parse_args(argv)
    import minigrad
    from minigrad.allocator import tune_allocator
    tune_allocator()
    minigrad.set_num_threads(1)
    swaps = [old_definition(a.old_tree, *n.split(":")) for n in a.names]

    def use(which):
        for owner, name, old, new in swaps:
            setattr(owner, name, old if which == "old" else new)

    saved, sys.argv = sys.argv, sys.argv[:1]
    import step_cpu_time
    sys.argv = saved
    step = step_cpu_time.build("minigrad", a.model)
    for which in ("old", "new"):
        use(which)
        for _ in range(3):
            step()
    times = {"old": [], "new": []}
    for r in range(a.rounds):
        for which in ("old", "new") if r % 2 == 0 else ("new", "old"):
            use(which)
            t0 = time.process_time()
            for _ in range(a.steps):
                step()
            times[which].append((time.process_time() - t0) / a.steps * 1e6)
    use("new")
    old, new = times["old"], times["new"]
    med = statistics.median
    ratios = sorted(o / n for o, n in zip(old, new))
    q = len(ratios) // 4
    print(f"{a.model} eager, one model, CPU us a step (medians of {a.rounds} rounds of {a.steps} steps): old "
          f"{med(old):.1f}  new {med(new):.1f}; old/new {med(ratios):.3f} (per-round median; quartiles "
          f"{ratios[q]:.3f}-{ratios[-q - 1]:.3f}); load {' '.join(open('/proc/loadavg').read().split()[:3])}")


if __name__ == "__main__":
    main()
