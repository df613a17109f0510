"""BatchNorm1d/2d kernels and autograd, every backend side by side (torch as the reference column).

Ops and byte model in ``_norms.py`` and ``conftest.py``. Run a backend alone with ``-k cython`` (see run_all.py).
"""
from _norms import parametrize, run_case

CASES = [
    ("BatchNorm2d", (32, 64, 28, 28)),
    ("BatchNorm2d", (64, 128, 14, 14)),
    ("BatchNorm2d", (16, 32, 112, 112)),
    ("BatchNorm2d", (256, 512, 7, 7)),
    ("BatchNorm1d", (60, 100)),
    ("BatchNorm1d", (4096, 1024)),
]


@parametrize(CASES, ["forward", "inference", "backward", "fwd+bwd"])
def test_batch_norm(benchmark, backend, op, norm, shape, threads):
    run_case(benchmark, norm, backend, op, shape, threads)
