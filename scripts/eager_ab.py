"""Old against new eager training step in one process, with PyTorch's eager step in the same rounds: CPU time per
step at 1 thread, alternated rounds (the order of the three reversed every other round), medians.

    PYTHONPATH=$PWD python scripts/eager_ab.py /work/main mlp-bn minigrad.nn.functional.dense:_Linear.backward \
        [--optim-so] [--rounds 16] [--steps 300]

The old model runs with the named functions taken from OLD_TREE's source (``scripts/swap_ab.py``'s
``old_definition``); ``--optim-so`` also gives it OLD_TREE's built ``minigrad/_ext/optim`` extension (its
``sgd_update``, loaded as a second copy of the module, which SGD's unchecked path then calls). The last losses of the
two minigrad models are compared bit for bit. Prints the medians, the median of the per-round ratios old/new, and
PyTorch / new (steps/s of new over PyTorch's).
"""
import argparse
import glob
import importlib.util
import os
import statistics
import sys
import time

for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "MINIGRAD_NUM_THREADS"):
    os.environ[k] = "1"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from swap_ab import old_definition  # noqa: E402 (sets up the benchmarks path too)


def old_optim(tree):
    """``sgd_update`` of OLD_TREE's built optim extension, loaded beside this tree's."""
    path, = glob.glob(os.path.join(tree, "minigrad", "_ext", "optim.cpython-*.so"))
    spec = importlib.util.spec_from_file_location("minigrad._ext.optim", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.sgd_update


def main():
    p = argparse.ArgumentParser()
    p.add_argument("old_tree")
    p.add_argument("model")
    p.add_argument("names", nargs="*")
    p.add_argument("--optim-so", action="store_true")
    p.add_argument("--rounds", type=int, default=16)
    p.add_argument("--steps", type=int, default=300)
    a = p.parse_args()
    import minigrad
    from minigrad.allocator import tune_allocator
    from minigrad.kernels import cython as cython_kernels
    tune_allocator()
    minigrad.set_num_threads(1)
    swaps = [old_definition(a.old_tree, *n.split(":")) for n in a.names]
    if a.optim_so:  # NOTE: SGD's unchecked path reads the backend module's sgd_update when it caches the call
        swaps.append((cython_kernels, "sgd_update", old_optim(a.old_tree), cython_kernels.sgd_update))

    def use(which):
        for owner, name, old, new in swaps:
            setattr(owner, name, old if which == "old" else new)

    saved, sys.argv = sys.argv, sys.argv[:1]
    import step_cpu_time
    sys.argv = saved
    steps = {}
    for which in ("old", "new"):
        use(which)
        steps[which] = step_cpu_time.build("minigrad", a.model)
        for _ in range(3):
            steps[which]()
    steps["torch"] = step_cpu_time.build("torch", a.model)
    for _ in range(3):
        steps["torch"]()
    times, losses = {k: [] for k in steps}, {}
    order = ["old", "new", "torch"]
    for r in range(a.rounds):
        for which in order if r % 2 == 0 else order[::-1]:
            use("old" if which == "old" else "new")
            step = steps[which]
            t0 = time.process_time()
            for _ in range(a.steps):
                losses[which] = step()
            times[which].append((time.process_time() - t0) / a.steps * 1e6)
    use("new")
    old, new, torch = times["old"], times["new"], times["torch"]
    med = statistics.median
    print(f"{a.model} eager, CPU us a step (medians of {a.rounds} rounds of {a.steps} steps): old {med(old):.1f}  "
          f"new {med(new):.1f}  torch {med(torch):.1f}; old/new {med([o / n for o, n in zip(old, new)]):.3f} "
          f"(per-round median); torch/old {med([t / o for t, o in zip(torch, old)]):.3f}, torch/new "
          f"{med([t / n for t, n in zip(torch, new)]):.3f}; same last loss: {losses['old'] == losses['new']}; load "
          f"{' '.join(open('/proc/loadavg').read().split()[:3])}")


if __name__ == "__main__":
    main()
