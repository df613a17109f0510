"""``minigrad.backends``: the availability queries scripts make to pick a device (``backends.mps.is_available()``)
and the flags they set (``backends.cudnn.benchmark``); none of these backends exists in minigrad. (The kernel
backends, NumPy/Cython/Numba, are ``minigrad.kernels``.)"""
from minigrad.backends import cuda, cudnn, mps  # noqa: F401
