"""The Python cost of tensor._leaf_array (docs/hardening.md, session 30): 14 leaves' first gradients (an MLP-BN
step's), main's pass-through against the flags read for every leaf and the new test, best of 9 timeit repeats.

    PYTHONPATH=$PWD python scripts/leaf_grad_cost.py
"""
import importlib, timeit, numpy as np
T = importlib.import_module('minigrad.tensor')
g = np.empty((100, 100), np.float32)


def old(g, owners):  # main: the gradient as it comes
    return g


def flags(g, owners):  # the first version: flags read for every leaf
    owner = g if g.base is None else g.base
    if not g.flags.writeable or id(owner) in owners:
        return g.copy()
    owners.add(id(owner))
    return g


for name, fn in (("main", old), ("flags always", flags), ("new", T._leaf_array)) * 2:
    def f():
        o = set()
        for _ in range(14):
            fn(g, o)
            o.clear()
    t = min(timeit.repeat(f, number=20000, repeat=9)) / 20000
    print(f"{name:14s} {t * 1e6:.2f} us for 14 leaves")
