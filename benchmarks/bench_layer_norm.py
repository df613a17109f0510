"""LayerNorm kernels (rows (R, D): group norm with one group over (R, D, 1)) and autograd, every backend side by
side. Ops and byte model in ``_norms.py`` and ``conftest.py``."""
from _norms import parametrize, run_case

CASES = [("LayerNorm", (8192, 768)), ("LayerNorm", (60, 100))]


@parametrize(CASES, ["forward", "backward", "fwd+bwd"])
def test_layer_norm(benchmark, backend, op, norm, shape, threads):
    run_case(benchmark, norm, backend, op, shape, threads)
