"""minigrad: a small, fast tensor autograd engine for the CPU.

Normalization kernels (batch, layer, group and instance norm) are hand-written three times behind one
signature: a NumPy reference, Cython/OpenMP and Numba. ``minigrad.set_backend`` picks one.
"""
from minigrad.allocator import tune_allocator
from minigrad import kernels  # NOTE: sets OMP_WAIT_POLICY before any kernel loads libgomp (kernels/threads.py)
from minigrad.gradcheck import GradcheckError, gradcheck, gradgradcheck
from minigrad import autograd
from minigrad.kernels import (
    available_backends,
    get_backend,
    get_blas_num_threads,
    get_num_threads,
    set_backend,
    set_blas_num_threads,
    set_num_threads,
    using_backend,
)
from minigrad.random import manual_seed
from minigrad.serialization import load, save
from minigrad.tensor import (
    DimError,
    IndexRangeError,
    DtypeError,
    Function,
    ShapeError,
    Size,
    Tensor,
    arange,
    as_tensor,
    cat,
    clamp,
    clip,
    concat,
    concatenate,
    detect_anomaly,
    empty,
    empty_like,
    enable_grad,
    exp,
    from_numpy,
    full,
    full_like,
    is_grad_enabled,
    log,
    matmul,
    maximum,
    mean,
    minimum,
    no_grad,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    relu,
    sigmoid,
    sqrt,
    stack,
    sum,
    tanh,
    tensor,
    where,
    zeros,
    zeros_like,
)
from minigrad import _tensor_docs  # noqa: F401,E402  (docstrings of Tensor's one-line methods; before ops)
from minigrad.ops import *  # noqa: F401,F403  (torch-style function forms: minigrad.flatten, minigrad.max, ...)
from minigrad.ops import max, min  # noqa: F401  (not star-exported names shadowing builtins, explicit)
from minigrad.dtypes import (  # noqa: F401  (dtype objects: NumPy dtypes, so t.dtype == minigrad.float32)
    bool_, double, float16, float32, float64, get_default_dtype, half, int8, int16, int32, int64, long, short, uint8,
)
from minigrad.dtypes import ALIASES as _ALIASES
from minigrad._device import device
from minigrad import accelerator, backends, cuda  # noqa: F401

float, int, bool = _ALIASES["float"], _ALIASES["int"], _ALIASES["bool"]  # torch.float, torch.int, torch.bool
del _ALIASES

from minigrad import nn, optim, utils  # noqa: E402  (after Tensor: nn builds on it; utils.data loads lazily)
from minigrad.capture import compile  # noqa: E402,A001  (the step decorator; shadows the builtin here only)

__version__ = "0.1.0"


def __getattr__(name):
    # NOTE: the data sets, checkpoints and models (safetensors, the app layer) are imported on first use, keeping
    # ``import minigrad`` light (``minigrad.onnx`` itself imports the onnx package only inside ``export``)
    if name in ("data", "checkpoint", "models", "onnx"):
        import importlib

        return importlib.import_module(f"minigrad.{name}")
    raise AttributeError(f"module 'minigrad' has no attribute {name!r}")


def show_config(file=None):
    """Print how minigrad was built and what it can run: backends, OpenMP, threads."""
    import importlib.util
    import os
    import sys

    out = file or sys.stdout
    lines = [f"minigrad {__version__}"]
    try:
        from minigrad import _build_config as bc

        lines.append(f"  compiled extensions: yes (OpenMP: {'yes' if bc.OPENMP else 'NO - kernels run serially'}"
                     f"{', sanitized: ASan + UBSan' if getattr(bc, 'SANITIZE', False) else ''})")
        lines.append(f"  compile args: {' '.join(bc.COMPILE_ARGS)}")
    except ImportError:
        lines.append("  compiled extensions: not built")
    why = kernels._why_unavailable("cython")
    if why:
        lines.append(f"  cython backend: unavailable ({why})")
    lines.append(f"  numba: {'installed (imported lazily)' if importlib.util.find_spec('numba') else 'not installed'}")
    lines.append(f"  available backends: {', '.join(available_backends())}")
    lines.append(f"  active backend: {get_backend()}")
    n, blas = get_num_threads(), get_blas_num_threads()  # NOTE: in this order: the first read sets BLAS's count
    lines.append(f"  threads: {n} (NumPy's OpenBLAS: "
                 f"{'not loaded' if blas is None else blas}; OMP_WAIT_POLICY="
                 f"{os.environ.get('OMP_WAIT_POLICY', '(runtime default)')}, GOMP_SPINCOUNT="
                 f"{os.environ.get('GOMP_SPINCOUNT', '(runtime default)')})")
    print("\n".join(lines), file=out)
