"""Checkpoints as one safetensors file: model state, optimizer state and JSON extras, written atomically.

Layout of the file (safetensors: tensors plus a string->string metadata header):
- tensors `model.<name>` for each model entry; arrays found inside the optimizer state and `extra` become
  `optim.<dotted.path>` and `extra.<dotted.path>`;
- metadata `minigrad.model_keys` (JSON list, keeps the model's key order), `minigrad.optimizer` and
  `minigrad.extra` (JSON with each array replaced by `{"__tensor__": name}`), and `minigrad.sha256`, a
  digest of every tensor (name, dtype, shape, bytes) and every other metadata entry, checked on load.

Loading parses JSON and raw tensor bytes only: nothing in the file is ever executed (no pickle). Any file
that is not a complete, intact checkpoint raises ValueError naming the file.

JSON cannot say everything a state dict holds, so the encoding tags what it would lose: dicts with
non-string keys (an optimizer's `{0: {...}}`) become `{"__items__": [[key, value], ...]}`, tuples
`{"__tuple__": [...]}`; NumPy scalars become Python numbers.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from pathlib import Path

import numpy as np
from safetensors.numpy import load as _st_load
from safetensors.numpy import save as _st_save

__all__ = ["save_checkpoint", "load_checkpoint"]

FORMAT = "minigrad.checkpoint/1"
_TAGS = ("__tensor__", "__items__", "__tuple__")


# --------------------------------------------------------------------------------------------------------
# JSON encoding of nested state, arrays pulled out as tensors
# --------------------------------------------------------------------------------------------------------

def _encode(obj, path, tensors):
    if hasattr(obj, "numpy") and not isinstance(obj, (np.ndarray, np.generic)):
        obj = obj.numpy()  # a minigrad Tensor
    if isinstance(obj, np.ndarray):
        name = ".".join(path)
        if name in tensors:
            raise ValueError(f"checkpoint: two entries map to the tensor name {name!r}")
        tensors[name] = obj
        return {"__tensor__": name}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, path + (str(i),), tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, path + (str(i),), tensors) for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj) and not any(k in _TAGS for k in obj):
            return {k: _encode(v, path + (k,), tensors) for k, v in obj.items()}
        return {"__items__": [[_encode(k, path + ("key",), {}), _encode(v, path + (str(k),), tensors)]
                              for k, v in obj.items()]}
    raise TypeError(f"checkpoint: cannot store {type(obj).__name__} at {'.'.join(path)!r}")


def _decode(obj, tensors):
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if "__tuple__" in obj:
        return tuple(_decode(v, tensors) for v in obj["__tuple__"])
    if "__items__" in obj:
        return {_hashable(_decode(k, tensors)): _decode(v, tensors) for k, v in obj["__items__"]}
    return {k: _decode(v, tensors) for k, v in obj.items()}


def _hashable(key):
    return tuple(_hashable(k) for k in key) if isinstance(key, (list, tuple)) else key


def _digest(tensors, metadata):
    h = hashlib.sha256()
    for name in sorted(tensors):
        x = tensors[name]
        h.update(json.dumps([name, x.dtype.str, list(x.shape)]).encode())
        h.update(x.tobytes())
    for key in sorted(metadata):
        if key != "minigrad.sha256":
            h.update(json.dumps([key, metadata[key]]).encode())
    return h.hexdigest()


# --------------------------------------------------------------------------------------------------------
# Save / load
# --------------------------------------------------------------------------------------------------------

def save_checkpoint(path, model_state, optimizer_state=None, extra=None):
    """Write a checkpoint to `path` atomically: a temp file in the same directory, fsync, os.replace.

    model_state: dict name -> array (or Tensor). optimizer_state: nested dicts/lists of arrays, numbers and
    strings, or None. extra: JSON-able dict (epoch, rng state, ...), arrays allowed, or None.
    """
    path = Path(path)
    tensors = {}
    model_keys = []
    for name, value in model_state.items():
        if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
            value = value.numpy()
        if not isinstance(value, np.ndarray):
            raise TypeError(f"checkpoint: model_state[{name!r}] is {type(value).__name__}, not an array")
        tensors[f"model.{name}"] = value
        model_keys.append(name)
    metadata = {"format": FORMAT, "minigrad.model_keys": json.dumps(model_keys)}
    if optimizer_state is not None:
        metadata["minigrad.optimizer"] = json.dumps(_encode(optimizer_state, ("optim",), tensors))
    if extra is not None:
        metadata["minigrad.extra"] = json.dumps(_encode(extra, ("extra",), tensors))
    for name, x in tensors.items():
        if x.dtype.kind not in "biuf" or x.dtype.byteorder == ">":
            raise TypeError(f"checkpoint: tensor {name!r} has unsupported dtype {x.dtype}")
        # NOTE: not np.ascontiguousarray, which turns a 0-d array into shape (1,).
        tensors[name] = x if x.flags.c_contiguous else x.copy(order="C")
    metadata["minigrad.sha256"] = _digest(tensors, metadata)
    blob = _st_save(tensors, metadata=metadata)

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    # NOTE: fsync the directory so the rename itself survives a crash (best effort: not on every OS).
    try:
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def load_checkpoint(path):
    """Read a checkpoint written by `save_checkpoint`: returns `(model_state, optimizer_state, extra)`.

    optimizer_state and extra are None when they were not saved. Raises ValueError naming `path` when the
    file is truncated, corrupted or not a minigrad checkpoint.
    """
    path = Path(path)
    raw = path.read_bytes()
    try:
        metadata = _read_metadata(raw)
        if metadata.get("format") != FORMAT:
            raise ValueError(f"not a minigrad checkpoint (format {metadata.get('format')!r})")
        tensors = _st_load(raw)
        if _digest(tensors, metadata) != metadata.get("minigrad.sha256"):
            raise ValueError("sha256 mismatch: the file is corrupted")
        model_state = {k: tensors[f"model.{k}"] for k in json.loads(metadata["minigrad.model_keys"])}
        optim = metadata.get("minigrad.optimizer")
        optimizer_state = None if optim is None else _decode(json.loads(optim), tensors)
        ext = metadata.get("minigrad.extra")
        extra = None if ext is None else _decode(json.loads(ext), tensors)
    except ValueError as e:
        raise ValueError(f"{path}: cannot load checkpoint: {e}") from None
    except Exception as e:  # safetensors' own error type, KeyError, ...
        raise ValueError(f"{path}: cannot load checkpoint: {type(e).__name__}: {e}") from None
    return model_state, optimizer_state, extra


def _read_metadata(raw):
    # safetensors: u64 little-endian header size, then that many bytes of JSON header.
    if len(raw) < 8:
        raise ValueError(f"truncated file ({len(raw)} bytes)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ValueError(f"truncated file (header of {n} bytes, file of {len(raw)})")
    header = json.loads(raw[8:8 + n])
    if not isinstance(header, dict):
        raise ValueError("malformed safetensors header")
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError("malformed safetensors metadata")
    return metadata
