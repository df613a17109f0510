"""Export a minigrad model to ONNX: ``minigrad.onnx.export(model, example_input, path)``.

Needs the optional extra ``pip install minigrad[onnx]`` (the ``onnx`` package to build and check the file,
``onnxruntime`` to check that the file computes what the model computes). Importing this module imports neither:
``export`` imports them when called.

How: the example input runs through the model once in eval mode and every module and Tensor op it meets appends
ONNX nodes (``minigrad.onnx.trace``; one converter per layer in ``minigrad.onnx.modules``). Tracing rather than
walking the module tree because the model zoo's residual blocks, and users' own modules, compute in a Python
``forward`` (``relu(bn2(conv2(...)) + shortcut(x))``) that no module tree describes; a tracer records that code as
it runs, and the layers themselves are still converted whole, by module, into the ONNX op that has their meaning
(Conv, BatchNormalization, LayerNormalization, ...) rather than into their autograd internals.
"""
import numbers
import os
import warnings
from pathlib import Path

import numpy as np

from .graph import ExportError, Graph

__all__ = ["export", "ExportError", "MIN_OPSET", "MAX_OPSET"]

MIN_OPSET, MAX_OPSET = 17, 21  # LayerNormalization needs 17; the converters are written for these


def _require(package):
    import importlib

    try:
        return importlib.import_module(package)
    except ImportError as e:
        raise ImportError(f"minigrad.onnx.export needs the {package!r} package: pip install minigrad[onnx]") from e


def _check_path(path):
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise TypeError(f"export: path must be a non-empty str or os.PathLike, got {path!r}")
    p = Path(os.fspath(path))
    if p.is_dir():
        raise ValueError(f"export: path {str(p)!r} is a directory, expected a file name such as model.onnx")
    if not p.parent.is_dir():
        raise ValueError(f"export: path {str(p)!r}: its directory {str(p.parent)!r} does not exist")
    return p


def _check_args(model, example_input, path, opset, fold_batch_norm, dynamic_batch):
    from minigrad.nn.module import Module
    from minigrad.tensor import Tensor

    if not isinstance(model, Module):
        raise TypeError(f"export: model must be a minigrad.nn.Module, got {type(model).__name__}")
    if isinstance(example_input, np.ndarray):
        example_input = Tensor(example_input)
    if not isinstance(example_input, Tensor):
        raise TypeError(f"export: example_input must be a minigrad.Tensor, got {type(example_input).__name__}")
    if example_input.dtype not in (np.float32, np.float64):
        raise TypeError(f"export: example_input must be float32 or float64, got {example_input.dtype}")
    if example_input.ndim < 1 or example_input.shape[0] < 1:
        raise ValueError(f"export: example_input must have a batch dim of size >= 1, got shape {example_input.shape}")
    p = _check_path(path)
    if isinstance(opset, bool) or not isinstance(opset, numbers.Integral) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"export: opset must be an int in [{MIN_OPSET}, {MAX_OPSET}], got {opset!r}")
    for name, flag in (("fold_batch_norm", fold_batch_norm), ("dynamic_batch", dynamic_batch)):
        if not isinstance(flag, bool):
            raise TypeError(f"export: {name} must be a bool, got {flag!r}")
    return example_input, p


def _other_input(x, dynamic_batch):
    """A second input for the check: the batch reversed and scaled, one sample longer with a dynamic batch (a
    value of the example baked into the graph as a constant, or a fixed batch size, then shows)."""
    a = x[::-1] * x.dtype.type(0.5)
    return np.concatenate([a, x[:1]]) if dynamic_batch else np.ascontiguousarray(a)


def _check_in_onnxruntime(data, pairs):
    """Run the serialized model in onnxruntime on each ``(input, expected output)``; ExportError on a mismatch.
    Skipped (False) where onnxruntime is not installed or has no kernel for an op at this dtype."""
    try:
        import onnxruntime as ort
    except ImportError:
        return False
    try:
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as e:  # NOTE: onnxruntime's CPU provider lacks float64 Conv, AveragePool, Erf, ...
        if type(e).__name__ == "NotImplemented":
            warnings.warn(f"minigrad.onnx.export: onnxruntime cannot run this model ({str(e).splitlines()[0]}); "
                          f"the file is valid ONNX (onnx.checker passed) but was not checked against the model; "
                          f"export in float32 to run it in onnxruntime", stacklevel=3)
            return False
        raise
    untraced = "the model computes something the tracer did not record (an op on .data, or control flow that " \
               "depends on the input)"
    for x, expected in pairs:
        try:
            (got,) = session.run(None, {"input": x})
        except Exception as e:  # e.g. a constant of the example's batch size broadcast against another batch
            raise ExportError(f"export: onnxruntime fails on an input of shape {x.shape} "
                              f"({str(e).splitlines()[0]}): {untraced}") from None
        tol = 1e-4 if x.dtype == np.float32 else 1e-10
        scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
        err = float(np.max(np.abs(got - expected), initial=0.0))
        if got.shape != expected.shape or not err <= tol * scale:
            raise ExportError(f"export: onnxruntime's output differs from the model's on an input of shape {x.shape} "
                              f"(shape {got.shape} vs {expected.shape}, max abs error {err:.3g}): {untraced}")
    return True


def export(model, example_input, path, opset=17, fold_batch_norm=True, dynamic_batch=True):
    """Write ``model`` in eval mode as an ONNX file at ``path``; returns the ``onnx.ModelProto``.

    Args:
        model: a ``minigrad.nn.Module`` made of the layers of ``minigrad.onnx.modules.CONVERTERS`` (Linear,
            Conv2d, ``nn.intrinsic``'s ConvReLU2d and LinearReLU, pooling, activations, Flatten, Dropout, Identity,
            the normalizations), ``nn.Sequential`` and
            modules whose ``forward`` combines them with ``+ - * /``, ``relu``, ``reshape``, ... (the model
            zoo's residual blocks). Anything else raises ``ExportError`` naming the module or op.
        example_input: a float32 or float64 Tensor ``(N, ...)``; the file computes in its dtype.
        path: the file to write (its directory must exist); written atomically, only after the checks pass.
        opset: the ONNX opset, 17 to 21; the IR version is the lowest that opset needs (8 for 17, which
            onnxruntime loads).
        fold_batch_norm: fold each BatchNorm that follows a Conv2d or Linear into it first, and a ReLU after
            such a layer with it (``minigrad.nn.utils.fusion.fuse_model``: Conv or Gemm, then Relu); the other
            BatchNorms become BatchNormalization (inference mode).
        dynamic_batch: the batch dim of the input and output is symbolic (``"batch"``), else fixed to N.

    The model's ``training`` flags (every submodule's) are restored afterwards; its parameters and buffers are
    not changed. The file passes ``onnx.checker.check_model(full_check=True)``, and where onnxruntime is
    installed its output is compared with the model's on the example input and on a second input (the batch
    reversed and halved, with one more sample when the batch is dynamic): a mismatch raises ``ExportError``
    and writes nothing. onnxruntime's CPU provider has no float64 Conv, AveragePool or Erf (GELU) kernels: such
    a float64 model is written with a warning that it could not be checked.

    Example::

        >>> model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
        >>> minigrad.onnx.export(model, minigrad.randn(3, 4), "model.onnx")  # doctest: +SKIP
    """
    x, p = _check_args(model, example_input, path, opset, fold_batch_norm, dynamic_batch)
    onnx = _require("onnx")
    from minigrad import __version__
    from minigrad._fileio import write_atomic
    from minigrad.nn.utils.fusion import fuse_model
    from minigrad.tensor import Tensor, no_grad

    from .trace import trace

    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        net = fuse_model(model) if fold_batch_norm else model
        graph = Graph(x.dtype, int(opset), dynamic_batch)
        in_name, out_name, y = trace(graph, net, x)
        x2 = _other_input(x.data, dynamic_batch)
        with no_grad():
            y2 = net(Tensor(x2))
    finally:
        for m, mode in modes:
            object.__setattr__(m, "training", mode)
    proto = graph.to_model(in_name, x.shape, out_name, y.shape, __version__)
    onnx.checker.check_model(proto, full_check=True)
    data = proto.SerializeToString()
    _check_in_onnxruntime(data, [(np.ascontiguousarray(x.data), y.data), (x2, y2.data)])
    write_atomic(p, data)
    return proto
