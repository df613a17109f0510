"""Checkpoints as one safetensors file: model state, optimizer state and JSON extras, written atomically.

Layout of the file (safetensors: tensors plus a string->string metadata header):
- tensors `model.<name>` for each model entry; arrays found inside the optimizer state and `extra` become
  `optim.<dotted.path>` and `extra.<dotted.path>`;
- metadata `minigrad.model_keys` (JSON list, keeps the model's key order), `minigrad.optimizer` and
  `minigrad.extra` (JSON with each array replaced by `{"__tensor__": name}`), and `minigrad.sha256`, a
  digest of every tensor (name, dtype, shape, bytes) and every other metadata entry, checked on load.

Loading parses JSON and raw tensor bytes only: nothing in the file is ever executed (no pickle). Any file
that is not a complete, intact checkpoint raises ValueError naming the file. The reader trusts nothing before
checking it: the path must be (or link to) a regular file; the header's length, and every tensor's dtype, shape
and byte range, must agree with each other and with the file size before the payload is read; then exactly
the declared bytes are read, straight into each tensor. A FIFO, /dev/zero or a file whose header lies is
refused before any payload is read, and loading never holds more than the tensors themselves.

JSON cannot say everything a state dict holds, so the encoding tags what it would lose: dicts with
non-string keys (an optimizer's `{0: {...}}`) become `{"__items__": [[key, value], ...]}`, tuples
`{"__tuple__": [...]}`; NumPy scalars become Python numbers.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import struct
from pathlib import Path

import numpy as np
from safetensors.numpy import save as _st_save

from minigrad._fileio import expect_eof, open_regular, read_exact, readinto_exact, write_atomic

__all__ = ["save_checkpoint", "load_checkpoint", "remove_stale_tmp"]

FORMAT = "minigrad.checkpoint/1"
_TAGS = ("__tensor__", "__items__", "__tuple__")
# safetensors' dtype names for what save_checkpoint can write (little-endian bool/int/uint/float)
_DTYPES = {"BOOL": "|b1", "U8": "|u1", "I8": "|i1", "U16": "<u2", "I16": "<i2", "U32": "<u4", "I32": "<i4",
           "U64": "<u8", "I64": "<i8", "F16": "<f2", "F32": "<f4", "F64": "<f8"}
MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit on the JSON header


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
        h.update(np.ascontiguousarray(x).reshape(-1).view(np.uint8))  # x.tobytes() without the copy
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

    write_atomic(path, blob)


def load_checkpoint(path, *, require_optimizer=False, require_extra=()):
    """Read a checkpoint written by `save_checkpoint`: returns `(model_state, optimizer_state, extra)`.

    optimizer_state and extra are None when they were not saved. Raises ValueError naming `path` when the
    file is not a regular file, or is truncated, corrupted or not a minigrad checkpoint; FileNotFoundError
    when it does not exist.

    To resume training, say what the run needs: `require_optimizer=True` refuses a model-only checkpoint
    (saved without optimizer state) and `require_extra=("epoch", ...)` one whose `extra` lacks those keys,
    each with a ValueError saying so, checked from the header before the tensors are read.
    """
    path = Path(path)
    f, size = open_regular(path, "a minigrad checkpoint")
    with f:
        try:
            metadata, entries = _read_header(f, size, path)
            _check_required(metadata, require_optimizer, require_extra)
            tensors = _read_tensors(f, entries, path)
            expect_eof(f, path, "tensors")
            if _digest(tensors, metadata) != metadata.get("minigrad.sha256"):
                raise ValueError("sha256 mismatch: the file is corrupted")
            model_state = {k: tensors[f"model.{k}"] for k in json.loads(metadata["minigrad.model_keys"])}
            optim = metadata.get("minigrad.optimizer")
            optimizer_state = None if optim is None else _decode(json.loads(optim), tensors)
            ext = metadata.get("minigrad.extra")
            extra = None if ext is None else _decode(json.loads(ext), tensors)
        except ValueError as e:
            msg = str(e)
            raise ValueError(msg if msg.startswith(str(path)) else f"{path}: cannot load checkpoint: {msg}") from None
        except Exception as e:  # KeyError, RecursionError, MemoryError on absurd shapes, ...
            raise ValueError(f"{path}: cannot load checkpoint: {type(e).__name__}: {e}") from None
    return model_state, optimizer_state, extra


def _read_header(f, size, path):
    """Read and check the safetensors header: returns `(metadata, [(name, dtype, shape, begin, end)])` sorted by
    position, having checked that the byte ranges tile the rest of the file exactly."""
    # safetensors: u64 little-endian header size, that many bytes of JSON header, then the tensors' bytes.
    if size < 8:
        raise ValueError(f"truncated file ({size} bytes): expected at least the 8-byte header length")
    (n,) = struct.unpack("<Q", read_exact(f, 8, path, "checkpoint"))
    if n > size - 8:
        raise ValueError(f"truncated file (header of {n} bytes, file of {size})")
    if n > MAX_HEADER_BYTES:
        raise ValueError(f"header of {n} bytes: expected at most {MAX_HEADER_BYTES}")
    try:
        header = json.loads(read_exact(f, n, path, "checkpoint header"))
    except ValueError as e:
        if str(e).startswith(str(path)):
            raise
        raise ValueError(f"its {n}-byte header is not JSON ({e}): expected a safetensors file") from None
    if not isinstance(header, dict):
        raise ValueError("malformed safetensors header: expected a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError("malformed safetensors metadata: expected an object of strings")
    if metadata.get("format") != FORMAT:
        raise ValueError(f"not a minigrad checkpoint (format {metadata.get('format')!r}, expected {FORMAT!r})")
    entries = []
    for name, info in header.items():
        if not (isinstance(info, dict) and info.get("dtype") in _DTYPES and _ints(info.get("shape"))
                and _ints(info.get("data_offsets")) and len(info["data_offsets"]) == 2):
            raise ValueError(f"malformed entry for tensor {name!r}: expected dtype (one of {sorted(_DTYPES)}), "
                             f"shape and data_offsets [begin, end]")
        dtype, shape = np.dtype(_DTYPES[info["dtype"]]), tuple(info["shape"])
        begin, end = info["data_offsets"]
        nbytes = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
        if end - begin != nbytes:
            raise ValueError(f"tensor {name!r}: {info['dtype']} {list(shape)} needs {nbytes} bytes, its data_offsets "
                             f"[{begin}, {end}] hold {end - begin}")
        entries.append((begin, end, name, dtype, shape))
    entries.sort()
    payload, pos = size - 8 - n, 0
    for begin, end, name, _, _ in entries:
        if begin != pos or end > payload:
            raise ValueError(f"tensor {name!r} at bytes [{begin}, {end}]: expected to start at {pos} and end by "
                             f"{payload} (the file's {size} bytes less the header)")
        pos = end
    if pos != payload:
        raise ValueError(f"file of {size} bytes, but its header accounts for {8 + n + pos}: "
                         f"{payload - pos} stray bytes")
    return metadata, entries


def _ints(v):
    return isinstance(v, list) and all(type(k) is int and 0 <= k < 2**62 for k in v)


def _check_required(metadata, require_optimizer, require_extra):
    if require_optimizer and "minigrad.optimizer" not in metadata:
        raise ValueError("a model-only checkpoint (no optimizer state): it holds weights, not a training run to "
                         "resume; load its weights with load_checkpoint(path)[0], or resume from a checkpoint that "
                         "save_checkpoint wrote with the optimizer's state_dict()")
    if require_extra:
        try:
            have = json.loads(metadata.get("minigrad.extra", "null"))
        except ValueError:
            raise ValueError("malformed minigrad.extra metadata: expected JSON") from None
        missing = [k for k in require_extra if not isinstance(have, dict) or k not in have]
        if missing:
            raise ValueError(f"no {', '.join(map(repr, missing))} in its extra state: expected a checkpoint "
                             "written by the training loop, which saves them to resume from")


def _read_tensors(f, entries, path):
    """Read each tensor's bytes, in file order, straight into its own array (aligned, writable, no copies)."""
    tensors = {}
    for _, _, name, dtype, shape in entries:
        x = np.empty(shape, dtype)
        if x.size:
            readinto_exact(f, x.reshape(-1).view(np.uint8), path, f"tensor {name!r}")
        tensors[name] = x
    return tensors


def remove_stale_tmp(directory):
    """Remove the temp files that interrupted saves left in `directory`; returns the removed paths, sorted.

    `save_checkpoint` writes `.<name>.<random>.tmp` beside its target and renames it into place, so a process
    killed between the two (SIGKILL, power loss) leaves that temp file behind; no complete checkpoint is ever
    one. Removes the directory's entries named `.*.tmp` that are regular files or links (never directories,
    nothing else). Call it when no other process saves into `directory`, e.g. when a training run starts: a
    save in flight elsewhere would lose its temp file and fail. A missing directory returns [].
    """
    directory = Path(directory)
    if not directory.exists():
        return []
    if not directory.is_dir():
        raise NotADirectoryError(f"remove_stale_tmp: {directory} is not a directory")
    removed = []
    for entry in sorted(directory.iterdir()):
        name = entry.name
        if not (name.startswith(".") and name.endswith(".tmp") and len(name) > len("..tmp")):
            continue
        try:
            mode = os.lstat(entry).st_mode
            if stat.S_ISREG(mode) or stat.S_ISLNK(mode):
                os.unlink(entry)
                removed.append(entry)
        except FileNotFoundError:  # removed meanwhile
            pass
    return removed
