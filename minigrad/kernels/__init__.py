"""The backend registry: one dict from backend name to the module that holds its kernels.

Every backend module (``reference`` in NumPy, ``cython`` over the compiled ``minigrad._ext``, ``numba`` in Numba)
offers the same functions with the same signatures, written down once in ``minigrad.kernels.contract``. Autograd ops never
import a backend module: they call ``kernels()``, which returns the active backend's functions wrapped by the
contract's argument checks, so that shapes, dtypes and strides are validated before any ``nogil`` code runs,
whatever the backend (a compiled accept path for valid calls; the Python rules name any error).

Backends are imported lazily: Numba is imported the first time its backend is used, never by ``import minigrad``.
"""
import contextlib
import importlib
import importlib.util
import os
import threading

from minigrad.kernels import contract
from minigrad.kernels.threads import (  # noqa: F401
    get_blas_num_threads, get_num_threads, set_blas_num_threads, set_num_threads,
)

# name -> module path. Order is the order of preference for the default backend: fastest first.
BACKENDS = {
    "cython": "minigrad.kernels.cython",
    "numba": "minigrad.kernels.numba",
    "numpy": "minigrad.kernels.reference",
}


class _State(threading.local):
    # NOTE: a class default, so that a thread which never set a backend reads None without the AttributeError that
    # getattr(local, "name", None) raises and catches inside (about 0.9 us of each kernel call's 1 us lookup)
    name = None


_state = _State()
_default_name = None
_loaded = {}  # name -> contract.Backend


def _why_unavailable(name):
    """None when backend ``name`` can be used, else a sentence saying what is missing."""
    if name == "numpy":
        return None
    if name == "numba":
        if importlib.util.find_spec("numba") is None:
            return "the numba backend needs the 'numba' package: pip install numba"
        return None
    if name == "cython":
        try:
            importlib.import_module(BACKENDS["cython"])
        except ImportError as e:
            return ("the cython backend needs minigrad's compiled extensions, which are not built "
                    f"({e}); reinstall with 'pip install .' or run 'python setup.py build_ext --inplace'")
        return None
    return f"unknown backend {name!r}; known backends are {sorted(BACKENDS)}"


def available_backends():
    """Names of the backends that can be used here, fastest first."""
    return [name for name in BACKENDS if _why_unavailable(name) is None]


def _check_name(name):
    if not isinstance(name, str) or name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; known backends are {sorted(BACKENDS)}")
    why = _why_unavailable(name)
    if why is not None:
        raise RuntimeError(f"backend {name!r} is not available: {why}")


def _default():
    global _default_name
    if _default_name is None:
        env = os.environ.get("MINIGRAD_BACKEND", "").strip()
        if env:
            _check_name(env)
            _default_name = env
        else:
            _default_name = available_backends()[0]
    return _default_name


def get_backend():
    """Name of the active backend."""
    return _state.name or _default()


def set_backend(name):
    """Make ``name`` ("numpy", "cython" or "numba") the active backend, for this thread and as the default."""
    global _default_name
    _check_name(name)
    _default_name = name
    _state.name = name


@contextlib.contextmanager
def using_backend(name):
    """``with using_backend("numba"): ...`` runs the block on that backend and restores the previous one."""
    _check_name(name)
    prev = _state.name
    _state.name = name
    try:
        yield
    finally:
        _state.name = prev


def load(name):
    """The checked kernels of backend ``name`` (imports it on first use)."""
    backend = _loaded.get(name)
    if backend is None:
        _check_name(name)
        module = importlib.import_module(BACKENDS[name])
        backend = contract.Backend(name, module)
        _loaded[name] = backend
    return backend


def kernels():
    """The active backend's kernels, each validating its arguments before the call."""
    # NOTE: get_backend and load inlined: every kernel call of every op goes through here
    name = _state.name or _default_name or _default()
    backend = _loaded.get(name)
    return backend if backend is not None else load(name)
