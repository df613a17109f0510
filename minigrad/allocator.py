"""Allocator tuning for training loops: keep freed memory for reuse instead of returning it to the kernel.

NOTE: glibc's malloc serves large blocks (above a threshold that starts at 128 KiB) with mmap and returns them with
munmap on free, and trims the heap's top once more than twice that threshold is free. A training step allocates
and frees the same few-megabyte activations every step, so every step page-faults them back in and the kernel zeroes
each page: measured on LeNet-BN (batch 64, 1 thread) this made a step 2.4x slower (17.5 ms against 7.3 ms). Raising
both thresholds makes glibc keep those blocks on its heap and reuse them. PyTorch's step time does not change
with it (its CPU allocator behaves the same either way here).

NOTE: NumPy madvises every array of >= 4 MiB for transparent huge pages. On 2 MiB pages the physical address is the
virtual one modulo 2 MiB, so a norm kernel's rows a multiple of 128 KiB apart share L2 sets, and arrays a few bytes
apart modulo 2 MiB (as glibc places same-sized ones) slow a streaming kernel as well: in one process, the kernels of
five of the benchmarks' large norm cases (BatchNorm2d (16, 32, 112, 112) and (256, 512, 7, 7), BatchNorm1d (4096,
1024), LayerNorm (8192, 768) forward and backward) and batch norm at float64 ran 1.2-2.5x slower on them, and
nothing measured ran faster on them by more than 9% (the GEMMs and triads not measurably; the training steps
allocate nothing that large). So the tuning turns NumPy's madvise off too (docs/perf/memory-placement.md,
scripts/thp_ab.py).

This changes the whole process's allocator, so minigrad never does it on import: the command line (``minigrad
train``, ``experiment``, ``bench``) and the benchmarks call ``tune_allocator()``; scripts may call it too.
"""
import ctypes
import ctypes.util
import sys

# mallopt parameter numbers from glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

_applied = None


def tune_allocator(mmap_threshold=32 << 20, trim_threshold=256 << 20, numpy_huge_pages=False):
    """Raise glibc's mmap and trim thresholds (bytes) so that per-step activations are reused, not page-faulted
    back in, and set whether NumPy asks for transparent huge pages for its arrays of >= 4 MiB (NumPy's default is
    yes; ``numpy_huge_pages=False``: 4 KiB pages, see the module's note). Returns True when the thresholds were
    applied; False where the C library is not glibc (the thresholds do not change there)."""
    global _applied
    if not sys.platform.startswith("linux"):
        return False
    set_numpy_huge_pages(numpy_huge_pages)
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold)) == 1 and mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)) == 1
    _applied = (mmap_threshold, trim_threshold) if ok else None
    return ok


def set_numpy_huge_pages(on):
    """Whether NumPy madvises its allocations of >= 4 MiB for transparent huge pages from now on (arrays already
    allocated keep their pages); returns the setting before. Linux only: NumPy madvises nowhere else."""
    import numpy as np
    core = getattr(np, "_core", None) or np.core  # NOTE: np.core before NumPy 2
    return bool(core.multiarray._set_madvise_hugepage(bool(on)))


def allocator_tuning():
    """The (mmap_threshold, trim_threshold) that ``tune_allocator`` applied in this process, or None."""
    return _applied
