"""minigrad's random number generator: one NumPy Generator, reseeded by ``manual_seed``.

Every random draw in minigrad (randn, rand, init, dropout, shuffling without an explicit seed) comes from
``default_generator()``, so ``manual_seed(n)`` makes a run reproducible.
"""
import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed):
    """Reseed minigrad's default generator. Returns the generator."""
    global _generator
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"manual_seed: seed must be a non-negative integer, got {seed!r}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def default_generator():
    """The generator that minigrad's random functions draw from."""
    return _generator


def get_rng_state():
    """The default generator's state (a JSON-able dict), for checkpoints."""
    return _generator.bit_generator.state


def set_rng_state(state):
    _generator.bit_generator.state = state
