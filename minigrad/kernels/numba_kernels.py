"""The old import path of the Numba backend, now the package minigrad.kernels.numba."""
from minigrad.kernels.numba import *  # noqa: F401,F403
