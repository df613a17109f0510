"""``minigrad.save`` and ``minigrad.load``: state dicts to and from one safetensors file, never pickle.

What can be saved is what a state dict holds: tensors (``Tensor``, ``Parameter``) and NumPy arrays, Python
numbers, strings, ``None`` and NumPy scalars, in any nesting of dicts, ``OrderedDict``s, lists and tuples. A
module's ``state_dict()``, an optimizer's (integer keys, tuples such as Adam's ``betas``) and a scheduler's round
trip exactly: the same types, keys, key order, dtypes and values.

The file is a standard safetensors file. Each array is a safetensors tensor named by its path in the object
(``conv1.weight`` for a module's state dict, ``state.0.exp_avg`` inside an optimizer's), so other safetensors
readers see the usual names. The rest of the structure is JSON in the safetensors metadata, entry
``minigrad.structure``, where every non-list container is a one-key object naming its type::

    {"dict": [[key, value], ...]}   {"odict": [...]}   {"tuple": [...]}
    {"array": name}   {"tensor": name, "requires_grad": bool}   {"parameter": name, "requires_grad": bool}
    {"scalar": "float32", "value": 0.5}

Loading parses JSON and raw bytes only: nothing in a file is ever executed. A safetensors file written by
another tool (no ``minigrad.structure``) loads as a flat ``{name: Tensor}`` dict, as PyTorch's
``safetensors.torch.load_file`` would give, ready for ``Module.load_state_dict``. The reader checks the header's
declared sizes against the file before it reads the payload and never reads more than the header declares.
"""
from __future__ import annotations

import io
import json
import os
import struct
from collections import OrderedDict
from typing import IO, Any, Union

import numpy as np

from minigrad._fileio import open_regular, write_atomic
from minigrad.tensor import Tensor

__all__ = ["save", "load"]

FileLike = Union[str, "os.PathLike[str]", IO[bytes]]

FORMAT = "minigrad.save/1"
_MAX_HEADER = 100_000_000  # safetensors' own limit on the JSON header
_CHUNK = 1 << 20


def _fail(f, what):
    return ValueError(f"minigrad.load: {_name(f)} is not a file minigrad.save or safetensors wrote: {what}")


def _name(f):
    if isinstance(f, (str, os.PathLike)):
        return repr(os.fspath(f))
    return f"the file object {getattr(f, 'name', type(f).__name__)!r}"


# --------------------------------------------------------------------------------------------------------
# The structure as JSON, arrays pulled out as safetensors tensors
# --------------------------------------------------------------------------------------------------------

def _array_for_file(a, where):
    if a.dtype.kind not in "biuf" or a.dtype.itemsize > 8:
        raise TypeError(f"minigrad.save: the array at {where} has dtype {a.dtype}, which safetensors cannot store "
                        "(bool, integer and float dtypes up to 64 bits can be saved)")
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    return a if a.flags.c_contiguous else a.copy(order="C")  # NOTE: np.ascontiguousarray makes 0-d into (1,)


def _encode(obj, where, tensors):
    """The JSON form of ``obj`` at path ``where`` (a tuple of keys); arrays go into ``tensors``."""
    from minigrad.nn.module import Parameter

    if isinstance(obj, (Tensor, np.ndarray)):
        name = ".".join(map(str, where)) or "tensor"
        base, k = name, 1
        while name in tensors:  # paths such as ("a.b",) and ("a", "b") would collide
            name, k = f"{base}#{k}", k + 1
        if isinstance(obj, np.ndarray):
            tensors[name] = _array_for_file(obj, _path(where))
            return {"array": name}
        tensors[name] = _array_for_file(obj.data, _path(where))
        kind = "parameter" if isinstance(obj, Parameter) else "tensor"
        return {kind: name, "requires_grad": bool(obj.requires_grad)}
    if isinstance(obj, np.generic):  # NOTE: before float, of which np.float64 is a subclass
        if obj.dtype.kind not in "biuf":
            raise TypeError(f"minigrad.save: cannot store the NumPy scalar {obj!r} at {_path(where)} "
                            "(bool, integer and float scalars can be saved)")
        return {"scalar": obj.dtype.str, "value": obj.item()}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, tuple):
        return {"tuple": [_encode(v, where + (i,), tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, where + (i,), tensors) for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        items = []
        for key, value in obj.items():
            if not (key is None or isinstance(key, (bool, int, float, str))):
                raise TypeError(f"minigrad.save: the dict at {_path(where)} has the key {key!r} of type "
                                f"{type(key).__name__}; keys must be str, int, float, bool or None")
            items.append([key, _encode(value, where + (key,), tensors)])
        return {"odict" if isinstance(obj, OrderedDict) else "dict": items}
    raise TypeError(f"minigrad.save: cannot store {type(obj).__name__} at {_path(where)}: only tensors, NumPy "
                    "arrays and scalars, numbers, strings, None and dicts/lists/tuples of them are saved "
                    "(minigrad.save never pickles)")


def _path(where):
    return "obj" + "".join(f"[{k!r}]" for k in where)


def _decode(node, arrays, f):
    """The object that ``node`` (from ``_encode``) describes, with its arrays taken from ``arrays``."""
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, list):
        return [_decode(v, arrays, f) for v in node]
    if not isinstance(node, dict) or not node:
        raise _fail(f, f"unexpected {type(node).__name__} in its structure")
    tag = next(iter(node))
    body = node[tag]
    if tag in ("dict", "odict"):
        out = OrderedDict() if tag == "odict" else {}
        if not isinstance(body, list):
            raise _fail(f, f"a {tag} that is not a list of items")
        for item in body:
            if not (isinstance(item, list) and len(item) == 2) or isinstance(item[0], (list, dict)):
                raise _fail(f, f"a {tag} item that is not [key, value]")
            out[item[0]] = _decode(item[1], arrays, f)
        return out
    if tag == "tuple":
        if not isinstance(body, list):
            raise _fail(f, "a tuple that is not a list")
        return tuple(_decode(v, arrays, f) for v in body)
    if tag in ("array", "tensor", "parameter"):
        if not isinstance(body, str) or body not in arrays:
            raise _fail(f, f"its structure names the tensor {body!r}, which the file does not hold")
        a = arrays[body]
        if tag == "array":
            return a
        grad = bool(node.get("requires_grad", False)) and a.dtype in (np.float32, np.float64)
        if tag == "parameter":
            from minigrad.nn.module import Parameter
            return Parameter(a, requires_grad=grad)
        return Tensor(a, requires_grad=grad)
    if tag == "scalar":
        try:
            dtype = np.dtype(body)
        except TypeError:
            raise _fail(f, f"a scalar of unknown dtype {body!r}") from None
        if dtype.kind not in "biuf":
            raise _fail(f, f"a scalar of dtype {dtype}")
        return dtype.type(node.get("value"))
    raise _fail(f, f"unknown tag {tag!r} in its structure")


# --------------------------------------------------------------------------------------------------------
# save and load
# --------------------------------------------------------------------------------------------------------

def save(obj: Any, f: FileLike) -> None:
    """Save a state dict (or any nesting of dicts, lists and tuples of tensors, arrays, numbers and strings) to
    ``f``, a path or a binary file object opened for writing, as one safetensors file; PyTorch's
    ``torch.save(obj, f)`` for state dicts, without pickle.

    A path is written atomically: the file appears complete or not at all (a temporary file beside it is
    renamed over it). Raises TypeError, naming where in ``obj``, for anything that is not a state-dict value
    (modules, functions, arbitrary objects: save ``module.state_dict()`` instead).

    Example::

        minigrad.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}, "ckpt.safetensors")
        ckpt = minigrad.load("ckpt.safetensors")
        model.load_state_dict(ckpt["model"])
    """
    from safetensors.numpy import save as st_save

    tensors: dict[str, np.ndarray] = {}
    structure = _encode(obj, (), tensors)
    metadata = {"format": FORMAT, "minigrad.structure": json.dumps(structure, allow_nan=True)}
    data = st_save(tensors, metadata=metadata)
    if isinstance(f, (str, os.PathLike)):
        write_atomic(f, data)
        return
    if isinstance(f, io.TextIOBase) or not hasattr(f, "write"):
        raise TypeError(f"minigrad.save: f must be a path or a file object opened in binary mode ('wb'), got "
                        f"{type(f).__name__}")
    f.write(data)


def load(f: FileLike) -> Any:
    """Load what ``save`` wrote to ``f`` (a path or a binary file object opened for reading): the same nesting,
    key types and order, with tensors as ``Tensor`` (``Parameter`` where a Parameter was saved), arrays as
    NumPy arrays and scalars as they were; PyTorch's ``torch.load(f)`` for state dicts.

    A safetensors file from another tool loads as ``{name: Tensor}``. Nothing in the file is executed. A file
    that is not a complete safetensors file raises ValueError naming it, before its payload is read.
    """
    if isinstance(f, (str, os.PathLike)):
        stream, size = open_regular(f, "a file written by minigrad.save")
        with stream:
            raw = _read_bounded(stream, f, size)
    else:
        if isinstance(f, io.TextIOBase) or not hasattr(f, "read"):
            raise TypeError(f"minigrad.load: f must be a path or a file object opened in binary mode ('rb'), got "
                            f"{type(f).__name__}")
        size = None
        if getattr(f, "seekable", lambda: False)():
            here = f.tell()
            size = f.seek(0, io.SEEK_END) - here
            f.seek(here)
        raw = _read_bounded(f, f, size)
    return _from_bytes(raw, f)


def _read_exactly(stream, n, f, what):
    parts, left = [], n
    while left > 0:
        chunk = stream.read(min(left, _CHUNK))
        if not chunk:
            raise _fail(f, f"it ends {left} bytes before the end of its {what}")
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _read_bounded(stream, f, size):
    """The safetensors file's bytes: the header first, its declared sizes checked against ``size`` (the bytes
    left in the file, when known), then exactly the payload the header declares."""
    head = _read_exactly(stream, 8, f, "8-byte header length")
    (n,) = struct.unpack("<Q", head)
    if n > _MAX_HEADER or (size is not None and 8 + n > size):
        raise _fail(f, f"its header declares {n} bytes of JSON" + (f" in a file of {size} bytes" if size else ""))
    header_bytes = _read_exactly(stream, n, f, "header")
    try:
        header = json.loads(header_bytes)
    except (UnicodeDecodeError, ValueError):
        raise _fail(f, "its header is not JSON") from None
    if not isinstance(header, dict):
        raise _fail(f, "its header is not a JSON object")
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int and o >= 0 for o in offsets)):
            raise _fail(f, f"tensor {name!r} has no valid data_offsets")
        end = max(end, offsets[1])
    if size is not None and 8 + n + end > size:
        raise _fail(f, f"its header declares {8 + n + end} bytes in a file of {size} bytes")
    return head + header_bytes + _read_exactly(stream, end, f, "tensor data")


def _from_bytes(raw, f):
    from safetensors.numpy import load as st_load

    (n,) = struct.unpack("<Q", raw[:8])
    metadata = json.loads(raw[8:8 + n]).get("__metadata__") or {}
    try:
        arrays = st_load(raw)
    except Exception as e:  # safetensors raises its own error type for a malformed file
        raise _fail(f, str(e)) from None
    arrays = {k: (a if a.flags.writeable else a.copy()) for k, a in arrays.items()}
    if not isinstance(metadata, dict) or "minigrad.structure" not in metadata:
        return {k: Tensor(a) for k, a in arrays.items()}
    try:
        structure = json.loads(metadata["minigrad.structure"])
    except (TypeError, ValueError):
        raise _fail(f, "its minigrad.structure metadata is not JSON") from None
    return _decode(structure, arrays, f)

