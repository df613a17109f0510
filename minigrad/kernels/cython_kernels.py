"""The old import path of the Cython backend, now minigrad.kernels.cython."""
from minigrad.kernels.cython import *  # noqa: F401,F403
