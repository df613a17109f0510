"""NumPy's BLAS thread count, read and set through the OpenBLAS library already loaded in this process (ctypes on
its own ``openblas_get_num_threads`` / ``openblas_set_num_threads``, under whichever of their names the build
exports): no threadpoolctl needed.

OpenBLAS is found the way threadpoolctl finds it: among the libraries mapped into the process (``/proc/self/maps``)
or, where there is no /proc, in NumPy's wheel folders (``numpy.libs``, ``numpy/.dylibs``), opened with
``RTLD_NOLOAD`` so that a library not already loaded is never loaded a second time. NumPy built on another BLAS
(MKL, Accelerate, BLIS) has no OpenBLAS: every function here is then a quiet no-op (``None`` from the getter).

Why minigrad touches BLAS at all: docs/perf/threads.md ("Threads: who owns the cores").
"""
import ctypes
import glob
import numbers
import os
import sys

# the names under which OpenBLAS builds export the two functions: plain, 64-bit-integer suffixed, and the
# scipy-openblas wheels' prefixed ones (NumPy >= 2 ships libscipy_openblas64_ with scipy_openblas_*64_)
_PREFIXES = ("openblas_", "scipy_openblas_")
_SUFFIXES = ("", "64_", "_64_")


class _OpenBLAS:
    """One loaded OpenBLAS: its path and its get/set thread-count functions."""

    def __init__(self, path, lib):
        self.path = path
        self._get = self._symbol(lib, "get_num_threads", ctypes.c_int, [])
        self._set = self._symbol(lib, "set_num_threads", None, [ctypes.c_int])

    @staticmethod
    def _symbol(lib, name, restype, argtypes):
        for prefix in _PREFIXES:
            for suffix in _SUFFIXES:
                fn = getattr(lib, f"{prefix}{name}{suffix}", None)
                if fn is not None:
                    fn.restype, fn.argtypes = restype, argtypes
                    return fn
        return None

    def usable(self):
        return self._get is not None and self._set is not None

    def get_num_threads(self):
        return int(self._get())

    def set_num_threads(self, n):
        self._set(int(n))


_cache = {}  # path -> _OpenBLAS (or None where the path holds no usable OpenBLAS)


def _is_openblas(name):
    name = os.path.basename(name).lower()
    return "openblas" in name and (".so" in name or name.endswith((".dylib", ".dll")))


def _candidate_paths():
    """Paths of the OpenBLAS libraries loaded in this process, NumPy's first where it can be told."""
    paths = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) == 6 and _is_openblas(parts[5].strip()):
                    path = parts[5].strip()
                    if path not in paths:
                        paths.append(path)
    except OSError:  # NOTE: no /proc (macOS, Windows): NumPy's own wheel folders instead
        np = sys.modules.get("numpy")
        if np is not None:
            root = os.path.dirname(os.path.abspath(np.__file__))
            for d in (os.path.join(os.path.dirname(root), "numpy.libs"), os.path.join(root, ".dylibs")):
                paths += [p for p in sorted(glob.glob(os.path.join(d, "*"))) if _is_openblas(p)]
    return paths


def _open(path):
    if path not in _cache:
        lib = None
        try:
            # NOTE: RTLD_NOLOAD returns the copy already loaded and never loads a second one
            mode = getattr(os, "RTLD_NOLOAD", 0) | getattr(os, "RTLD_LAZY", 0)
            lib = ctypes.CDLL(path, mode=mode)
        except OSError:
            pass
        blas = _OpenBLAS(path, lib) if lib is not None else None
        _cache[path] = blas if blas is not None and blas.usable() else None
    return _cache[path]


def openblas_libraries():
    """The OpenBLAS libraries loaded in this process, each with ``path``, ``get_num_threads()`` and
    ``set_num_threads(n)``; empty when there is none (NumPy on another BLAS, or NumPy not imported)."""
    return [b for b in map(_open, _candidate_paths()) if b is not None]


def get_blas_num_threads():
    """The thread count of NumPy's OpenBLAS (the first one loaded), or None when no OpenBLAS is loaded."""
    libs = openblas_libraries()
    return libs[0].get_num_threads() if libs else None


def set_blas_num_threads(n):
    """Set the thread count of every OpenBLAS loaded in this process to ``n`` (a positive integer); returns the
    count read back from the first one, or None when no OpenBLAS is loaded (then nothing changes)."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"set_blas_num_threads: n must be a positive integer, got {n!r}")
    libs = openblas_libraries()
    for b in libs:
        b.set_num_threads(n)
    return libs[0].get_num_threads() if libs else None
