"""The bound replay's kernel calls (``capture._Trace._raw_call``): the active backend's own kernels, unchecked, with
the thread count the contract's checked call passes for their size, and the replay still eager's bits."""
import re

import numpy as np
import pytest

import minigrad as mg
from conftest import BACKENDS
from minigrad import kernels
from minigrad.kernels import contract
from test_compile import _run_both, _small_mlp

_CALL = re.compile(r"\b(K[0-9]+)\((.*), ([0-9]+)\)$")


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", BACKENDS)
def test_bound_kernels_are_the_backends_own_with_the_contracts_threads(name, dtype, threads):
    # NOTE: batch 2100 x 16 features: above contract.SMALL, so the batch norm and sigmoid kernels take the threads;
    # the cross entropy's 2100 x 10 stays below it
    rng = np.random.default_rng(4)
    batches = [(mg.Tensor(rng.standard_normal((2100, 12)).astype(dtype)), mg.Tensor(rng.integers(0, 10, 2100)))
               for _ in range(3)]
    prev = mg.get_num_threads()
    mg.set_num_threads(threads)
    try:
        with kernels.using_backend(name):
            compiled = _run_both(_small_mlp(True, dtype), "sgd", batches)
            module = kernels.kernels().module
    finally:
        mg.set_num_threads(prev)
    (entry,) = [e for entries in compiled._cache.values() for e in entries]
    calls = [m.groups() for line in entry.trace.src.splitlines() if (m := _CALL.search(line.strip()))]
    seen = set()
    for k, args, n in calls:
        fn = entry.trace.ns[k]
        assert fn is getattr(module, fn.__name__), k  # NOTE: the module's function, not the contract's checked call
        elements = 2100 * (10 if fn.__name__.startswith("log_softmax") else 16)
        assert int(n) == (1 if elements < contract.small(fn.__name__) else threads), (fn.__name__, n)
        seen.add(fn.__name__)
    want = {"batch_norm_forward", "batch_norm_backward", "log_softmax_forward", "log_softmax_backward"}
    assert want | ({"sigmoid_forward", "sigmoid_backward"} if dtype == np.float32 else set()) == seen
