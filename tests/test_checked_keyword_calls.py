"""Keyword calls through the compiled checked call (minigrad/_ext/_check.pyx ``CheckedKeywordCall``, session 38):
``batch_norm_backward(..., r=, d=)`` and ``evonorm_b0_backward(..., constant_lo=)`` raise the Python rules' errors
(``contract.check_options``) word for word, reach the kernel only with valid keywords, pick the Python path's thread
count, and give the Python path's results bit for bit."""
import numpy as np
import pytest

from conftest import BACKENDS, DTYPES, alloc_outputs
from minigrad import kernels
from minigrad.kernels import contract
from test_batch_renorm_backward import _inputs
from test_evonorm_b0_backward import data

pytestmark = pytest.mark.skipif(contract._CheckedCall is None, reason="extensions not built")

def _python_backend(name, monkeypatch):
    """The backend as it is without the compiled checks: every call through the Python closure."""
    with monkeypatch.context() as m:
        m.setattr(contract, "_CheckedCall", None)
        m.setattr(contract, "_CheckedKeywordCall", None)
        backend = contract.Backend(name, kernels.load(name).module)
        calls = (backend.batch_norm_backward, backend.evonorm_b0_backward)
    assert not isinstance(calls[0], contract._CheckedCall) and not isinstance(calls[1], contract._CheckedCall)
    return backend


def _outputs(kernel, dtype, shape):
    N, C, S = shape
    out = alloc_outputs(kernel, dtype, N=N, C=C, S=S)
    for a in out:
        a.fill(np.nan)
    return out


def _bn(dtype=np.float32, shape=(4, 3, 5)):
    """batch_norm_backward's positional arguments (NaN-filled outputs) and Batch Renorm's r, d."""
    x, dy, weight, mean, rstd, r, d = _inputs(shape, dtype)
    return (*_outputs("batch_norm_backward", dtype, shape), dy, x, mean, rstd, weight), r, d


def _evo(dtype=np.float32, shape=(2, 3, 4)):
    """evonorm_b0_backward's positional arguments (NaN-filled outputs), its forward's saved arrays."""
    return (*_outputs("evonorm_b0_backward", dtype, shape), *data(np.random.default_rng(0), shape, dtype))


# name -> keywords built from Batch Renorm's (r, d) on C = 3 (the refused cases: the error check_options raises)
BAD_R_D = {
    "only r": lambda r, d: {"r": r},
    "only d": lambda r, d: {"d": d},
    "only r, d None": lambda r, d: {"r": r, "d": None},
    "r float32": lambda r, d: {"r": r.astype(np.float32), "d": d},
    "r big-endian": lambda r, d: {"r": r.astype(">f8"), "d": d},
    "r int64": lambda r, d: {"r": np.arange(3), "d": d},
    "d shape (4,)": lambda r, d: {"r": r, "d": np.zeros(4)},
    "r shape (1, 3)": lambda r, d: {"r": r.reshape(1, 3), "d": d},
    "r shape (C,) of another C": lambda r, d: {"r": np.ones(2), "d": np.ones(2)},
    "d not contiguous": lambda r, d: {"r": r, "d": np.zeros(6)[::2]},
    "r a list": lambda r, d: {"r": [1.0, 1.0, 1.0], "d": d},
    "r a float": lambda r, d: {"r": 1.0, "d": d},
    "unknown keyword": lambda r, d: {"r": r, "d": d, "q": d},
    "constant_lo on batch norm": lambda r, d: {"constant_lo": True},
}
BAD_CONSTANT_LO = {"1": 1, "yes": "yes", "None": None, "1.0": 1.0, "array": np.array([True])}


def _error(fn, *args, **options):
    with pytest.raises((TypeError, ValueError)) as info:
        fn(*args, **options)
    return type(info.value), str(info.value)


@pytest.mark.parametrize("case", sorted(BAD_R_D))
@pytest.mark.parametrize("name", BACKENDS)
def test_bad_r_d_raise_the_python_rules_error(name, case, monkeypatch):
    """A bad keyword call through the compiled path raises check_options's error (type and message), the Python
    path's; the outputs are not written."""
    compiled = kernels.load(name).batch_norm_backward
    assert type(compiled) is contract._CheckedKeywordCall
    args, r, d = _bn()
    options = BAD_R_D[case](r, d)
    want = _error(contract.check_options, "batch_norm_backward", args, options)
    assert _error(compiled, *args, **options) == want
    assert _error(_python_backend(name, monkeypatch).batch_norm_backward, *args, **options) == want
    for out in args[:3]:
        assert np.isnan(out).all()  # NOTE: untouched


@pytest.mark.parametrize("case", sorted(BAD_CONSTANT_LO))
@pytest.mark.parametrize("name", BACKENDS)
def test_bad_constant_lo_raises_the_python_rules_error(name, case, monkeypatch):
    compiled = kernels.load(name).evonorm_b0_backward
    assert type(compiled) is contract._CheckedKeywordCall
    args, options = _evo(), {"constant_lo": BAD_CONSTANT_LO[case]}
    want = _error(contract.check_options, "evonorm_b0_backward", args, options)
    assert want[0] is TypeError and "constant_lo must be a bool" in want[1]
    assert _error(compiled, *args, **options) == want
    assert _error(_python_backend(name, monkeypatch).evonorm_b0_backward, *args, **options) == want


@pytest.mark.parametrize("name", BACKENDS)
def test_bad_positional_argument_with_keywords_names_the_argument(name):
    """The positional arguments are checked first, keywords or not."""
    args, r, d = _bn()
    args = list(args)
    args[4] = np.asfortranarray(args[4].reshape(4, 15)).reshape(4, 3, 5)  # x, not C-contiguous
    assert not args[4].flags.c_contiguous
    with pytest.raises(ValueError, match="argument 'x' must be C-contiguous"):
        kernels.load(name).batch_norm_backward(*args, r=r, d=d)


@pytest.mark.parametrize("shape", [(4, 3, 5), (64, 40, 16)], ids=["small", "threaded"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_keyword_calls_give_the_python_paths_bits(name, dtype, shape, monkeypatch):
    """Every keyword form (none, r=None/d=None, r and d; constant_lo False, True, np.bool_ through the Python path)
    gives the Python path's outputs byte for byte."""
    backends = (kernels.load(name), _python_backend(name, monkeypatch))
    _, r, d = _bn(dtype, shape)
    for options in ({}, {"r": None, "d": None}, {"r": r, "d": d}):
        got = []
        for backend in backends:
            args = _bn(dtype, shape)[0]
            backend.batch_norm_backward(*args, **options)
            got.append([a.tobytes() for a in args[:3]])
        assert got[0] == got[1], options
    for options in ({}, {"constant_lo": False}, {"constant_lo": True}, {"constant_lo": np.True_}):
        got = []
        for backend in backends:
            args = _evo(dtype, shape)
            backend.evonorm_b0_backward(*args, **options)
            got.append([a.tobytes() for a in args[:4]])
        assert got[0] == got[1], options


class Spy:
    def __init__(self):
        self.calls = []

    def __call__(self, *args, **options):
        self.calls.append((args, options))


def _keyword_call(raw, slow, kernel="batch_norm_backward", threads=lambda: 7, below=None):
    names, _, fast, eps_at, _ = contract._PLANS[kernel]
    below = contract.small(kernel) if below is None else below
    return contract._CheckedKeywordCall(raw, slow, threads, len(names), fast, contract._ELEMENT_SYMBOLS, eps_at,
                                        below, kernel, f"test.{kernel}", contract._option_plan(kernel))


@pytest.mark.parametrize("case", sorted(BAD_R_D) + ["np.bool_ constant_lo", "too few with r, d"])
def test_refused_keywords_reach_the_slow_path_only(case):
    """What the compiled keyword checks refuse goes to ``slow(*args, **options)`` unchanged, never to the kernel
    (including what the Python rules accept: an np.bool_ flag)."""
    raw, slow = Spy(), Spy()
    if case == "np.bool_ constant_lo":
        args, options = _evo(), {"constant_lo": np.True_}
        _keyword_call(raw, slow, "evonorm_b0_backward")(*args, **options)
    else:
        args, r, d = _bn()
        options = {"r": r, "d": d} if case == "too few with r, d" else BAD_R_D[case](r, d)
        args = args[:-1] if case == "too few with r, d" else args
        _keyword_call(raw, slow)(*args, **options)
    assert not raw.calls and len(slow.calls) == 1
    assert slow.calls[0][0] == tuple(args) and slow.calls[0][1].keys() == options.keys()
    assert all(slow.calls[0][1][k] is v for k, v in options.items())


@pytest.mark.parametrize("below, want", [(61, 1), (60, 7)])
def test_valid_keywords_reach_the_kernel_with_the_thread_count(below, want):
    """Valid keywords (and none) reach ``raw(*args, n_threads, **options)``; one thread below ``below`` elements
    (the (4, 3, 5) arguments: 60)."""
    args, r, d = _bn()
    for options in ({}, {"r": r, "d": d}, {"r": None, "d": None}):
        raw, slow = Spy(), Spy()
        _keyword_call(raw, slow, below=below)(*args, **options)
        assert not slow.calls and len(raw.calls) == 1
        assert raw.calls[0][0] == (*args, want) and raw.calls[0][1] == options
    for flag in (True, False):
        raw, slow = Spy(), Spy()
        _keyword_call(raw, slow, "evonorm_b0_backward", below=1)(*_evo(), constant_lo=flag)
        assert not slow.calls and raw.calls[0][0][-1] == 7 and raw.calls[0][1] == {"constant_lo": flag}


def test_kernels_without_keywords_keep_the_plain_checked_call():
    backend = kernels.load("cython")
    assert type(backend.batch_norm_forward) is contract._CheckedCall
    assert set(contract.OPTIONS) == {"batch_norm_backward", "evonorm_b0_backward", "evonorm_b0_forward"}
    for kernel in contract.OPTIONS:
        assert type(getattr(backend, kernel)) is contract._CheckedKeywordCall
        assert getattr(backend, kernel).__qualname__ == f"cython.{kernel}"
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        backend.batch_norm_forward(*alloc_outputs("batch_norm_forward", np.float32, N=2, C=3, S=1),
                                   np.ones((2, 3, 1), np.float32), np.ones(3, np.float32), np.ones(3, np.float32),
                                   1e-5, r=None)
