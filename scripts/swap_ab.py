"""Old against new in one process: the training step with some functions taken from another checkout (their
source, executed in this tree's module namespace) against this tree's, CPU time per step at 1 thread, alternated
rounds (the models and steps of ``benchmarks/bench_end_to_end.py``; eager steps: a compiled step replays the
functions it recorded, so swapping them between rounds changes nothing there; use scripts/compile_ab.py --old):

    PYTHONPATH=$PWD python scripts/swap_ab.py /work/main mlp-bn minigrad.tensor:_backward_pass \
        minigrad.nn.module:Module.__getattr__ [--optim-so] [--torch] [--rounds 14] [--steps 300]

Each name is ``module:qualname`` (a module-level function, or a class's method as ``Class.method``); the old
definition is the same name in OLD_TREE's file of that module. Two models from the same seed run, one with the old
functions and one with the new; the last losses are compared (bit for bit). Prints the medians and the median of
the per-round ratios old/new. ``--optim-so`` also gives the old model OLD_TREE's built ``minigrad/_ext/optim``
extension (its ``sgd_update``, loaded as a second copy of the module, which SGD's unchecked path then calls);
``--old-contract`` gives the old model a backend made by OLD_TREE's ``contract.Backend`` (its checked calls).
A name may also be a module-level constant (``module:NAME``, its old assignment evaluated in this tree's module).
``--torch`` times PyTorch's eager step in the same rounds (the order reversed every other round) and prints
PyTorch / old and PyTorch / new.
"""
import argparse
import ast
import glob
import importlib
import importlib.util
import os
import statistics
import sys
import time

for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "MINIGRAD_NUM_THREADS"):
    os.environ[k] = "1"
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


_OLD_NAMESPACES = {}  # path -> the namespace the old definitions of that file run in


def old_definition(tree, modname, qual):
    """(the object holding the name, the name, the old object, the new object) for ``func`` or ``Class.method``.
    NOTE: the old definitions of one file share one namespace (a copy of this tree's module), so that old functions
    that call each other (``_backward_pass`` and ``_walk_arrays``) call the old ones."""
    mod = importlib.import_module(modname)
    path = os.path.join(tree, *modname.split(".")) + ".py"
    source = open(path).read()
    first, _, method = qual.partition(".")
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and not method and any(
                isinstance(t, ast.Name) and t.id == first for t in node.targets):  # NOTE: a module-level constant
            ns = dict(mod.__dict__)
            exec(compile(ast.get_source_segment(source, node), path, "exec"), ns)
            return mod, first, ns[first], getattr(mod, first)
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == first:
            decorators = "".join(f"@{ast.get_source_segment(source, d)}\n" for d in node.decorator_list)
            ns = _OLD_NAMESPACES.setdefault(path, dict(mod.__dict__))
            exec(compile(decorators + ast.get_source_segment(source, node), path, "exec"), ns)
            if not method:  # NOTE: a name this tree no longer has: None (the swap back deletes it)
                return mod, first, ns[first], getattr(mod, first, None)
            cls = getattr(mod, first)
            return cls, method, ns[first].__dict__[method], cls.__dict__[method]
    raise KeyError(f"{qual} not found in {path}")


def old_optim(tree):
    """``sgd_update`` of OLD_TREE's built optim extension, loaded beside this tree's."""
    path, = glob.glob(os.path.join(tree, "minigrad", "_ext", "optim.cpython-*.so"))
    spec = importlib.util.spec_from_file_location("minigrad._ext.optim", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.sgd_update


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("old_tree")
    p.add_argument("model")
    p.add_argument("names", nargs="*")
    p.add_argument("--optim-so", action="store_true")
    p.add_argument("--torch", action="store_true")
    p.add_argument("--old-contract", action="store_true")
    p.add_argument("--rounds", type=int, default=14)
    p.add_argument("--steps", type=int, default=300)
    a = p.parse_args(argv)
    import minigrad
    from minigrad.allocator import tune_allocator
    from minigrad.kernels import cython as cython_kernels
    tune_allocator()
    minigrad.set_num_threads(1)
    swaps = [old_definition(a.old_tree, *n.split(":")) for n in a.names]
    if a.optim_so:  # NOTE: SGD's unchecked path reads the backend module's sgd_update when it caches the call
        swaps.append((cython_kernels, "sgd_update", old_optim(a.old_tree), cython_kernels.sgd_update))
    if a.old_contract:  # NOTE: kernels() reads the registry's _loaded when called: a dict holding the old backend
        registry = importlib.import_module("minigrad.kernels")
        backend = registry.kernels()
        _, _, old_backend, _ = old_definition(a.old_tree, "minigrad.kernels.contract", "Backend")
        swaps.append((registry, "_loaded", {backend.name: old_backend(backend.name, backend.module)},
                      registry._loaded))

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
    if a.torch:
        steps["torch"] = step_cpu_time.build("torch", a.model)
        for _ in range(3):
            steps["torch"]()
    times, losses = {k: [] for k in steps}, {}
    order = list(steps)
    for r in range(a.rounds):
        for which in order if r % 2 == 0 else order[::-1]:
            use("old" if which == "old" else "new")
            step = steps[which]
            t0 = time.process_time()
            for _ in range(a.steps):
                losses[which] = step()
            times[which].append((time.process_time() - t0) / a.steps * 1e6)
    use("new")
    old, new = times["old"], times["new"]
    med = statistics.median
    vs_torch = "" if not a.torch else (f"  torch {med(times['torch']):.1f}; torch/old "
                                       f"{med([t / o for t, o in zip(times['torch'], old)]):.3f}, torch/new "
                                       f"{med([t / n for t, n in zip(times['torch'], new)]):.3f}")
    print(f"{a.model} eager, CPU us a step (medians of {a.rounds} rounds of {a.steps} steps): old {med(old):.1f}  "
          f"new {med(new):.1f}; old/new {med([o / n for o, n in zip(old, new)]):.3f} (per-round median){vs_torch}; "
          f"same last loss: {losses['old'] == losses['new']}; load {' '.join(open('/proc/loadavg').read().split()[:3])}")


if __name__ == "__main__":
    main()
