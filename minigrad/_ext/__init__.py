"""Compiled Cython kernels (built by setup.py). Imported only through ``minigrad.kernels``."""
