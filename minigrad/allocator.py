"""Allocator tuning for training loops: keep freed memory for reuse instead of returning it to the kernel.

NOTE: glibc's malloc serves large blocks (above a threshold that starts at 128 KiB) with mmap and returns them with
munmap on free, and trims the heap's top once more than twice that threshold is free. A training step allocates
and frees the same few-megabyte activations every step, so every step page-faults them back in and the kernel zeroes
each page: measured on LeNet-BN (batch 64, 1 thread) this made a step 2.4x slower (17.5 ms against 7.3 ms). Raising
both thresholds makes glibc keep those blocks on its heap and reuse them. PyTorch's step time does not change
with it (its CPU allocator behaves the same either way here).

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


def tune_allocator(mmap_threshold=32 << 20, trim_threshold=256 << 20):
    """Raise glibc's mmap and trim thresholds (bytes) so that per-step activations are reused, not page-faulted
    back in. Returns True when applied; False where the C library is not glibc (nothing changes there)."""
    global _applied
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold)) == 1 and mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)) == 1
    _applied = (mmap_threshold, trim_threshold) if ok else None
    return ok


def allocator_tuning():
    """The (mmap_threshold, trim_threshold) that ``tune_allocator`` applied in this process, or None."""
    return _applied
