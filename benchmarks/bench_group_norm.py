"""GroupNorm (32 groups) and InstanceNorm2d (group norm with one channel per group) kernels and autograd, every
backend side by side. Ops and byte model in ``_norms.py`` and ``conftest.py``."""
from _norms import parametrize, run_case

CASES = [("GroupNorm", (32, 64, 28, 28)), ("InstanceNorm2d", (32, 64, 28, 28))]


@parametrize(CASES, ["forward", "backward", "fwd+bwd"])
def test_group_norm(benchmark, backend, op, norm, shape, threads):
    run_case(benchmark, norm, backend, op, shape, threads)
