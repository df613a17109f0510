"""SGD's group call (``SGD._group_call``: one ``sgd_update_many`` kernel call for a parameter group, from the step
after every parameter has its checked call; with momentum or without): the bits of the per-parameter loop, and the
per-parameter loop again wherever a parameter is not as the group call saw it."""
import numpy as np
import pytest

import minigrad as mg
from conftest import BACKENDS
from minigrad import kernels
from minigrad.optim import SGD

SHAPES = [(7, 5), (5,), (300, 200), (3, 1, 2)]  # (300, 200): above contract.SMALL, the kernel's threads
CASES = {"momentum": dict(momentum=0.9), "nesterov+wd": dict(momentum=0.9, nesterov=True, weight_decay=1e-2),
         "dampening": dict(momentum=0.8, dampening=0.3),
         # NOTE: without momentum the scratch buffers and the first-step rule (dampening has no effect there)
         "plain": dict(), "plain+wd+dampening": dict(weight_decay=1e-2, dampening=0.5)}


def _pair(dtype, **hyper):
    """Two optimizers over equal parameters: the group call's, and one that always takes the per-parameter loop."""
    rng = np.random.default_rng(0)
    values = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    out = []
    for group_call in (True, False):
        ps = [mg.Tensor(v.copy(), requires_grad=True) for v in values]
        opt = SGD(ps, lr=0.05, **hyper)
        if not group_call:
            opt._group_call = lambda *a: False
        out.append((ps, opt))
    return out


def _set_grads(pairs, rng, skip=()):
    for i, s in enumerate(SHAPES):
        g = rng.standard_normal(s)
        for ps, _ in pairs:
            ps[i].grad = None if i in skip else mg.Tensor(g.astype(ps[i].data.dtype))


def _same(pairs, what):
    for a, b in zip(pairs[0][0], pairs[1][0]):
        np.testing.assert_array_equal(a.data, b.data, err_msg=what)


def _counting(opt):
    """Count the group's kernel calls (wraps the call _remember_group saved)."""
    calls = []
    saved = opt._groups[0]
    call = saved[5]
    opt._groups[0] = (*saved[:5], lambda *a: (calls.append(1), call(*a)), *saved[6:])
    return calls


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", BACKENDS)
def test_group_call_gives_the_per_parameter_bits(name, dtype, case):
    rng, threads = np.random.default_rng(1), mg.get_num_threads()
    mg.set_num_threads(2)
    try:
        with kernels.using_backend(name):
            _steps_alike(dtype, rng, **CASES[case])
    finally:
        mg.set_num_threads(threads)


def _steps_alike(dtype, rng, **hyper):
    pairs = _pair(dtype, **hyper)
    for step in range(5):
        _set_grads(pairs, rng)
        for _, opt in pairs:
            opt.step()
        _same(pairs, f"step {step}")
        if step == 1:
            calls = _counting(pairs[0][1])
    assert len(calls) == 3  # NOTE: steps 2-4 (step 0 makes the buffers, step 1 the unchecked calls)


def test_a_missing_gradient_takes_the_per_parameter_loop():
    rng = np.random.default_rng(2)
    pairs = _pair(np.float32, momentum=0.9)
    for step in range(6):
        _set_grads(pairs, rng, skip=(1,) if step in (3, 4) else ())
        for _, opt in pairs:
            opt.step()
        _same(pairs, f"step {step}")


def test_replaced_data_and_loaded_state_take_the_per_parameter_loop():
    rng = np.random.default_rng(3)
    pairs = _pair(np.float32, momentum=0.9)
    for step in range(8):
        if step == 3:  # a parameter's array replaced (the group call saw the old one)
            for ps, _ in pairs:
                ps[2].data = ps[2].data * 0.5
        if step == 5:  # the momentum buffers replaced by a loaded state
            sd = pairs[1][1].state_dict()
            for _, opt in pairs:
                opt.load_state_dict(sd)
        _set_grads(pairs, rng)
        for _, opt in pairs:
            opt.step()
        _same(pairs, f"step {step}")
        for a, b in zip(pairs[0][1].state.values(), pairs[1][1].state.values()):
            np.testing.assert_array_equal(a["momentum_buffer"], b["momentum_buffer"], err_msg=f"step {step}")


def test_plain_sgd_after_a_loaded_state_and_a_new_momentum():
    """Without momentum: a state loaded (new state dicts), then momentum switched on (a buffer made by the loop),
    then off again (the scratch buffers, the momentum buffers kept as they were): the per-parameter loop's bits
    throughout, parameters and state."""
    rng = np.random.default_rng(4)
    pairs = _pair(np.float32)
    for step in range(9):
        if step == 3:
            sd = pairs[1][1].state_dict()
            for _, opt in pairs:
                opt.load_state_dict(sd)
        for _, opt in pairs:
            opt.param_groups[0]["momentum"] = 0.9 if step in (5, 6) else 0
        _set_grads(pairs, rng)
        for _, opt in pairs:
            opt.step()
        _same(pairs, f"step {step}")
        for a, b in zip(pairs[0][1].state.values(), pairs[1][1].state.values()):
            assert a.keys() == b.keys()
            for k in a:
                np.testing.assert_array_equal(a[k], b[k], err_msg=f"step {step}")
