"""Shared test setup: the backends and dtypes every parity suite runs over, output allocation from the kernel
contract, and a session check that the build produced every backend it should have (a missing backend fails the
run instead of skipping its tests)."""
import os

import numpy as np
import pytest

import minigrad as mg
from minigrad import kernels
from minigrad.kernels import contract

BACKENDS = mg.available_backends()  # after the session check below: every backend, fastest first
DTYPES = [np.float32, np.float64]


def pytest_configure(config):
    config.addinivalue_line("markers", "network: needs PyPI (deselect with -m 'not network')")


def pytest_sessionstart(session):
    # NOTE: the file beside minigrad/__init__.py, not find_spec: an editable install's finder can resolve a missing
    # submodule to another checkout
    if not os.path.exists(os.path.join(os.path.dirname(mg.__file__), "_build_config.py")):
        raise pytest.UsageError("minigrad's compiled extensions are not built (no minigrad/_build_config.py): run "
                                "'python setup.py build_ext --inplace' (or 'pip install .') before the tests")
    for name in kernels.BACKENDS:
        why = kernels._why_unavailable(name)
        if why is not None:
            raise pytest.UsageError(f"backend {name!r} should be available but is not: {why}")


def alloc_outputs(kernel, dtype, **dims):
    """Empty output arrays of ``kernel`` in its argument order, shaped and typed by the contract (``dims`` gives the
    size of each shape symbol, e.g. N=2, C=3, S=5)."""
    _, arrays = contract.SPECS[kernel]
    dtypes = {"X": dtype, "f64": np.float64, "i64": np.int64}
    return tuple(np.empty(tuple(dims[s] for s in arrays[name][0]), dtypes[arrays[name][1]])
                 for name in contract.OUTPUTS[kernel])


def assert_same_bits_across_threads(module, calls, thread_counts=(1, 1, 2)):
    """Run each (kernel, outputs, inputs) of ``calls`` through the raw backend ``module`` once per thread count,
    into fresh NaN-filled outputs, and assert every run's outputs are bit-identical to the first's. Each call's
    arguments are checked against the contract first."""
    for kernel, outs, ins in calls:
        contract.check(kernel, outs + ins)
        results = []
        for n_threads in thread_counts:
            fresh = tuple(np.full_like(o, np.nan) for o in outs)
            getattr(module, kernel)(*fresh, *ins, n_threads)
            results.append(fresh)
        for run in results[1:]:
            for a, b in zip(results[0], run):
                np.testing.assert_array_equal(a, b, err_msg=kernel)  # bit-identical, not merely close
