"""The eager step's short paths (docs/perf/mlp-step.md, "Session 32"): the contract's compiled checked call
(minigrad/_ext/_check.pyx ``CheckedCall``) refuses what the Python rules refuse and picks the thread count the
Python path picks; ``Module._table_state`` with a ``TableNames`` reads what the attributes read, wherever a name
has moved between the tables."""
import numpy as np
import pytest

from minigrad import Tensor, kernels, nn
from minigrad.kernels import contract
from minigrad.nn.module import TableNames
from test_hardening import BAD_KERNEL_CALLS, _bn_args

pytestmark = pytest.mark.skipif(contract._CheckedCall is None, reason="extensions not built")


class Spy:
    def __init__(self):
        self.calls = []

    def __call__(self, *args):
        self.calls.append(args)


def _checked_call(raw, slow, threads=lambda: 7, kernel="batch_norm_forward", below=None):
    names, _, fast, eps_at, _ = contract._PLANS[kernel]
    below = contract.small(kernel) if below is None else below
    return contract._CheckedCall(raw, slow, threads, len(names), fast, contract._ELEMENT_SYMBOLS, eps_at, below,
                                 kernel, f"test.{kernel}")


@pytest.mark.parametrize("case", sorted(BAD_KERNEL_CALLS) + ["big-endian x", "eps int", "too few", "valid"])
def test_checked_call_refuses_what_the_python_rules_refuse(case):
    args = _bn_args()
    if case == "big-endian x":
        args[3] = args[3].astype(">f4")
    elif case == "eps int":  # NOTE: the Python rule takes an int; the compiled one hands anything not a float over
        args[6] = 0
    elif case == "too few":
        args = args[:-1]
    elif case != "valid":
        BAD_KERNEL_CALLS[case][0](args)
    raw, slow = Spy(), Spy()
    _checked_call(raw, slow)(*args)
    if case == "valid":
        assert len(raw.calls) == 1 and not slow.calls and raw.calls[0][:-1] == tuple(args)
    else:
        assert len(slow.calls) == 1 and not raw.calls and slow.calls[0] == tuple(args)


def test_checked_call_threads_from_the_element_count():
    args = _bn_args()  # (4, 3, 5): 60 elements
    for below, want in [(61, 1), (60, 7), (1, 7)]:
        raw = Spy()
        _checked_call(raw, Spy(), below=below)(*args)
        assert raw.calls[0][-1] == want, below


def test_backend_calls_are_checked_calls_where_only_eps_is_a_scalar_rule():
    backend = kernels.load("cython")
    assert type(backend.batch_norm_forward) is contract._CheckedCall
    assert type(backend.group_norm_forward) is not contract._CheckedCall  # num_groups: the Python rules
    with pytest.raises(ValueError, match="C-contiguous"):
        args = _bn_args()
        args[3] = np.asfortranarray(args[3])
        backend.batch_norm_forward(*args)


def test_table_names_read_as_the_attributes():
    bn = nn.BatchNorm1d(3)
    names = TableNames(("weight", "bias"), ("running_mean", "running_var", "num_batches_tracked"))
    plain = frozenset((nn.BatchNorm1d,))

    def reads_as_attributes(bn, names):
        got = bn._table_state(plain, names)
        return len(got) == len(names.names) and all(v is getattr(bn, n) for v, n in zip(got, names.names))

    assert reads_as_attributes(bn, names)
    bn.register_parameter("running_var", None)  # NOTE: over the buffer: in both tables, the parameter wins
    assert "running_var" in bn._buffers and reads_as_attributes(bn, names)
    bn = nn.BatchNorm1d(3)
    bn.running_mean = nn.Parameter(np.zeros(3, np.float32))  # NOTE: a buffer's name moved to the parameters
    assert reads_as_attributes(bn, names)
    bn = nn.BatchNorm1d(3)
    del bn.bias
    assert bn._table_state(plain, names) is None
    assert nn.BatchNorm1d(3)._table_state(frozenset(), names) is None
    one = TableNames(("weight",))
    assert reads_as_attributes(nn.BatchNorm1d(3), one)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_leaf_gradients_own_their_arrays(dtype):
    """The walk's first gradient of a leaf (tensor.py's _walk_arrays, _accumulate's common case inline) is an array
    no other leaf and no caller holds: add's backward gives both inputs one array, and a seed is the caller's."""
    a, b = (Tensor(np.arange(3, dtype=dtype), requires_grad=True) for _ in range(2))
    (a + b).backward(np.ones(3, dtype))
    assert not np.shares_memory(a.grad.data, b.grad.data)
    a.grad.data *= 2.0  # NOTE: clip_grad_norm_ and user code scale .grad in place
    assert np.array_equal(b.grad.data, np.ones(3, dtype))
    seed = np.ones(3, dtype)
    a.grad = None
    a.backward(seed)
    assert not np.shares_memory(a.grad.data, seed)


def test_accept_unpacks_a_plan_again_for_other_element_symbols():
    """``accept`` keeps each plan unpacked by its id, with the element symbols it was unpacked for."""
    args = tuple(_bn_args())  # (N, C, S) = (4, 3, 5)
    names, _, fast, _, _ = contract._PLANS["batch_norm_forward"]
    for element_symbols, want in [(contract._ELEMENT_SYMBOLS, 60), ((contract.SYMBOLS.index("C"),), 3)]:
        got = contract._accept(args, len(names), fast, contract.SYMBOLS, element_symbols)
        assert got[1] == want
