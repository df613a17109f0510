"""`Subset`, `ConcatDataset` and `random_split`, with PyTorch's semantics (``torch.utils.data``).

`random_split` draws its permutation from a NumPy Generator (the `generator` given, a fresh one from an integer
seed, else minigrad's default generator, which `minigrad.manual_seed` seeds): the split is reproducible, but it is
not the split PyTorch's generator would draw for the same seed.
"""
from __future__ import annotations

import bisect
import math
import warnings

import numpy as np

from minigrad.random import default_generator

from .dataset import Dataset

__all__ = ["Subset", "ConcatDataset", "random_split"]


class Subset(Dataset):
    """The items of `dataset` at `indices`, in that order: ``Subset(ds, idx)[i] == ds[idx[i]]``.

    A DataLoader batches a Subset of an array-backed dataset by fancy-indexing the base arrays (see
    `minigrad.data.loader`).
    """

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = [int(i) for i in indices]

    def __getitem__(self, index):
        if isinstance(index, list):
            return [self.dataset[self.indices[i]] for i in index]
        return self.dataset[self.indices[index]]

    def __len__(self):
        return len(self.indices)


class ConcatDataset(Dataset):
    """The items of several datasets one after another."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        self.cumulative_sizes = list(np.cumsum([len(d) for d in self.datasets]).tolist())

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, index):
        if index < 0:
            if -index > len(self):
                raise IndexError(f"ConcatDataset: index {index} out of range for length {len(self)}")
            index += len(self)
        d = bisect.bisect_right(self.cumulative_sizes, index)
        if d == len(self.datasets):
            raise IndexError(f"ConcatDataset: index {index} out of range for length {len(self)}")
        return self.datasets[d][index - (self.cumulative_sizes[d - 1] if d else 0)]


def _rng(generator):
    if generator is None:
        return default_generator()
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool) and generator >= 0:
        return np.random.default_rng(int(generator))
    raise TypeError(f"generator must be a numpy Generator, a non-negative integer seed or None, "
                    f"got {type(generator).__name__}")


def random_split(dataset, lengths, generator=None):
    """Split `dataset` into non-overlapping `Subset`s of the given `lengths`, in a random order.

    `lengths` are item counts summing to ``len(dataset)``, or fractions summing to 1: then each split gets
    ``floor(len * fraction)`` items and the remainder is dealt one by one from the first split on (as PyTorch
    does). `generator`: a NumPy Generator, an integer seed, or None for minigrad's default generator.
    """
    lengths = list(lengths)
    n = len(dataset)
    for i, length in enumerate(lengths):
        if isinstance(length, bool) or not isinstance(length, (int, float, np.integer, np.floating)):
            raise TypeError(f"random_split: lengths[{i}] must be a number, got {type(length).__name__}")
    if lengths and math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        counts = []
        for i, frac in enumerate(lengths):
            if not 0 <= frac <= 1:
                raise ValueError(f"random_split: fraction lengths[{i}] = {frac} is not between 0 and 1")
            counts.append(int(math.floor(n * frac)))
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        for i, c in enumerate(counts):
            if c == 0:
                warnings.warn(f"random_split: length of split at index {i} is 0; this results in an empty dataset",
                              stacklevel=2)
        lengths = counts
    for i, length in enumerate(lengths):
        if length < 0 or length != int(length):
            raise ValueError(f"random_split: lengths[{i}] = {length} must be a non-negative integer (or all "
                             "lengths fractions summing to 1)")
    lengths = [int(length) for length in lengths]
    if sum(lengths) != n:
        raise ValueError(f"random_split: the lengths {lengths} sum to {sum(lengths)}, not to the dataset's length {n}")
    order = _rng(generator).permutation(n).tolist()
    offsets = np.cumsum([0] + lengths).tolist()
    return [Subset(dataset, order[a:b]) for a, b in zip(offsets[:-1], offsets[1:])]
