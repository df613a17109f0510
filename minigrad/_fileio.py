"""Reading files that may be hostile: regular files only, sizes known before reading, bounded reads; and writing
a file atomically.

Used by the checkpoint reader and writer, ``minigrad.save``/``load`` and the data loaders. A path that is (or links to) a FIFO, a device such as
/dev/zero, a socket or a directory is refused before anything is read: opening a FIFO for reading would block
until a writer appears, and a device can stream without end. Readers learn the file size first, check the sizes
the format declares against it, and then read exactly that much.
"""
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

__all__ = ["open_regular", "read_exact", "readinto_exact", "expect_eof", "write_atomic", "CHUNK"]

CHUNK = 1 << 20  # bytes per read: bounds the transient buffers of compressed streams

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _not_regular(path, mode, what):
    kind = next((name for test, name in _KINDS if test(mode)), "something else")
    real = os.path.realpath(path)
    via = f" (a link to {real})" if real != os.path.abspath(path) else ""
    return ValueError(f"{path}{via} is {kind}, not a regular file: expected {what} in a regular file")


def open_regular(path, what="data"):
    """Open `path` for reading in binary, unbuffered: returns `(file, size in bytes)`.

    Links are followed; what they resolve to must be a regular file, else ValueError naming `path` and `what`
    was expected. A missing file raises FileNotFoundError.
    """
    path = Path(path)
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(path, st.st_mode, what)
    # NOTE: O_NONBLOCK so that a path swapped for a FIFO after the stat cannot block the open; fstat then checks
    # the file actually opened.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _not_regular(path, st.st_mode, what)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        f = os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise
    return f, st.st_size


def readinto_exact(f, buf, name, what="data"):
    """Fill the writable buffer `buf` from `f` in chunks of at most CHUNK bytes; ValueError when `f` ends first."""
    mv = memoryview(buf).cast("B")
    n, pos = len(mv), 0
    while pos < n:
        want = min(CHUNK, n - pos)
        if hasattr(f, "readinto"):
            got = f.readinto(mv[pos:pos + want])
        else:
            data = f.read(want)
            got = len(data)
            mv[pos:pos + got] = data
        if not got:
            raise ValueError(f"{name}: truncated {what}: ends after {pos} of {n} bytes")
        pos += got


def read_exact(f, n, name, what="data"):
    """Read exactly `n` bytes from `f` (in chunks); ValueError naming `name` when `f` ends first."""
    buf = bytearray(n)
    readinto_exact(f, buf, name, what)
    return bytes(buf)


def expect_eof(f, name, what="data"):
    """ValueError naming `name` unless `f` has nothing left (one byte is read to find out)."""
    if f.read(1):
        raise ValueError(f"{name}: trailing bytes after the {what} its header declares")


def write_atomic(path, data):
    """Write the bytes `data` to `path` atomically: a temporary file `.<name>.<random>.tmp` beside it, flushed and
    fsynced, then renamed into place (a reader sees the old file or the new one, never a partial one); the
    directory is fsynced too, best effort, so the rename survives a crash. The temporary file is removed on error
    (a process killed mid-write leaves it: see `minigrad.checkpoint.remove_stale_tmp`)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
