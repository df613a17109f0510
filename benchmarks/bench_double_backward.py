"""The double backward of BatchNorm2d (32, 64, 28, 28) and LayerNorm (8192, 768), minigrad beside PyTorch.

Case and timed region in ``_double_backward.py``. Run each framework in its own process:

    python -m pytest benchmarks/bench_double_backward.py -k "minigrad and threads1"
    python -m pytest benchmarks/bench_double_backward.py -k "torch and threads1"

(``scripts/double_backward_vs_torch.py`` does both and prints the ratio). Each round runs the forward outside the
timing (pedantic ``setup``); the gradient norms after the first round are checked against the same framework in
float64 (the float32 double backward must be close to it) and recorded in ``extra_info``.
"""
import numpy as np
import pytest

from _double_backward import CASES, build, case_id
from conftest import pin_threads, record, torch_or_skip

ROUNDS = 5


@pytest.mark.parametrize("norm,shape", CASES, ids=[case_id(*c) for c in CASES])
@pytest.mark.parametrize("framework", ["minigrad", "torch"])
def test_double_backward(benchmark, framework, norm, shape, threads):
    restore = None
    if framework == "torch":
        torch_or_skip()
        restore = pin_threads(threads)
    try:
        setup, step, summary, _ = build(framework, norm, shape)
        args, _ = setup()
        step(*args)  # warm-up, and the check (outside the timing)
        got = summary(*args)
        ref_setup, ref_step, ref_summary, _ = build(framework, norm, shape, np.float64)
        ref_args, _ = ref_setup()
        ref_step(*ref_args)
        want = ref_summary(*ref_args)
        np.testing.assert_allclose(got, want, rtol=1e-3, err_msg=f"{framework} {norm}: float32 against float64")
        benchmark.group = f"double backward {case_id(norm, shape)} threads{threads}"
        benchmark.pedantic(step, setup=setup, rounds=ROUNDS, warmup_rounds=0)
        record(benchmark, op="double backward", backend=framework if framework == "torch" else "minigrad",
               shape=shape, threads=threads, dtype=np.float32, norm=norm, framework=framework, grad_norms=got)
    finally:
        if restore:
            restore()
