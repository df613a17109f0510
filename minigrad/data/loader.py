"""DataLoader: batches of Tensors from a Dataset, with resumable, reproducible shuffling.

Shuffling: the loader owns one integer `seed` (given, drawn from `generator`, or drawn from minigrad's
default generator when neither is given) and an epoch counter. Epoch k's order is
`default_rng([seed, k]).permutation(N)`, a function of (seed, k) alone, so a run restored with
`load_state_dict` (or `set_epoch(k)`) at epoch k sees exactly the batches an uninterrupted run sees.

Batching: an array-backed dataset (`dataset.arrays()` not None, e.g. TensorDataset, MNIST) is batched by
fancy-indexing its arrays with the batch's indices; others item by item, then stacked. Each field becomes a
Tensor: integer or bool fields as int64 (labels), floating fields keep their dtype (Python floats: float32).
"""
from __future__ import annotations

import numpy as np

from minigrad.random import default_generator
from minigrad.tensor import Tensor

__all__ = ["DataLoader", "collate"]


def _field(x):
    x = np.asarray(x)
    if x.dtype.kind in "biu":
        return x.astype(np.int64, copy=False)
    if x.dtype.kind == "f":
        return x
    raise TypeError(f"cannot batch values of dtype {x.dtype}")


def collate(items):
    """Stack a list of items (tuples of arrays/scalars, or single arrays) field by field into arrays."""
    first = items[0]
    if isinstance(first, (tuple, list)):
        return tuple(collate([item[i] for item in items]) for i in range(len(first)))
    if isinstance(first, float):
        return np.asarray(items, dtype=np.float32)
    return _field(np.stack([np.asarray(x) for x in items]))


def _default_seed():
    return int(default_generator().integers(2**63))


class DataLoader:
    """Iterate over `dataset` in batches of `batch_size`, yielding a tuple of Tensors per batch.

    Args:
        shuffle: a fresh order every epoch (see the module docstring); else 0..N-1.
        drop_last: drop the last batch when smaller than `batch_size`.
        seed: integer seed of the shuffling; `generator`: a numpy Generator to draw that seed from.
    `len(loader)` is the number of batches per epoch. Each `iter(loader)` runs epoch `loader.epoch` and then
    advances the counter; `set_epoch(k)` chooses the next epoch, `state_dict()` / `load_state_dict()` save
    and restore `{"epoch", "seed"}`.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None, generator=None):
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        if seed is None:
            seed = int(generator.integers(2**63)) if generator is not None else _default_seed()
        self.seed = int(seed)
        self.epoch = 0

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def set_epoch(self, epoch):
        """Make the next `iter(self)` run epoch `epoch` (its shuffle order depends on it)."""
        self.epoch = int(epoch)

    def state_dict(self):
        return {"epoch": self.epoch, "seed": self.seed}

    def load_state_dict(self, state):
        self.epoch = int(state["epoch"])
        if "seed" in state:
            self.seed = int(state["seed"])

    def order(self, epoch):
        """The item indices of epoch `epoch`, in the order they are served."""
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, int(epoch)]).permutation(n)

    def __iter__(self):
        epoch, self.epoch = self.epoch, self.epoch + 1
        return self._batches(self.order(epoch))

    def _batches(self, order):
        arrays = self.dataset.arrays() if hasattr(self.dataset, "arrays") else None
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            idx = order[start:start + self.batch_size]
            if arrays is not None:
                batch = tuple(_field(a[idx]) for a in arrays)
            else:
                batch = collate([self.dataset[int(i)] for i in idx])
            yield tuple(Tensor(b) for b in batch) if isinstance(batch, tuple) else Tensor(batch)
