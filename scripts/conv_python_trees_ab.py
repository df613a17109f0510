"""conv2d's Python per call, this tree's ``minigrad/nn/functional/conv.py`` (new) against another tree's (old, loaded
as a second module of the same package, so that both run on this tree's kernels), in one process, alternated:
``F.conv2d`` forward and backward on one sample of 2x2 pixels, 3x3, padding 1 (the kernels' work is small: the call
is mostly Python), ResNet-20's channel counts. Main-thread CPU, medians of rounds of 500 calls, us a call
(docs/perf/threads.md, session 34; conv_python_ab.py is session 33's, within one tree, and times both).

    PYTHONPATH=$PWD python scripts/conv_python_trees_ab.py /work/main 2 21     # old tree, threads, rounds
"""
import importlib.util
import os
import sys

import numpy as np

from conv_python_ab import ab  # scripts/, on sys.path when run as a script
from minigrad.nn.functional import conv as new


def load(tree):
    path = os.path.join(tree, "minigrad", "nn", "functional", "conv.py")
    spec = importlib.util.spec_from_file_location("minigrad.nn.functional._conv_old", path)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def main(tree, threads, rounds, n=500):
    old = load(tree).conv2d
    grads = ab({"old": lambda: old, "new": lambda: new.conv2d}, threads, rounds, n)
    assert all(np.array_equal(a, b) for C in (16, 32, 64) for a, b in zip(grads[C, "old"], grads[C, "new"])), \
        "the trees differ in bits"


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
