"""DataLoader: batches of Tensors from a Dataset, with resumable, reproducible shuffling.

Shuffling: the loader owns one integer `seed` (given, drawn from `generator`, or drawn from minigrad's
default generator when neither is given) and an epoch counter. Epoch k's order is
`default_rng([seed, k]).permutation(N)`, a function of (seed, k) alone, so a run restored with
`load_state_dict` (or `set_epoch(k)`) at epoch k sees exactly the batches an uninterrupted run sees.

Batching: an array-backed dataset (`dataset.arrays()` not None, e.g. TensorDataset, MNIST) is batched by
fancy-indexing its arrays with the batch's indices; others item by item, then stacked. Each field becomes a
Tensor: integer or bool fields as int64 (labels), floating fields keep their dtype (Python floats: float32).
A `Subset` (also nested) of an array-backed dataset is batched through the base arrays. A `collate_fn` gets the
list of items and its result is yielded as it is.

Samplers (PyTorch's semantics): `sampler` is any iterable of item indices with a `len` (e.g. a
`DistributedSampler`), read afresh each epoch and batched by `batch_size` / `drop_last`; it replaces the loader's
own order, so `shuffle=True` with it is a ValueError, and the loader never calls its `set_epoch` (call it yourself
before each epoch, as in PyTorch). `batch_sampler` yields whole batches (lists of indices) and excludes
`batch_size`, `shuffle`, `sampler` and `drop_last`.

Workers: `num_workers`, `pin_memory`, `persistent_workers`, `prefetch_factor` and `timeout` are accepted and
checked as PyTorch checks them, but the batches are always loaded in the calling process, in order (no
subprocesses, no pinned memory: minigrad runs on the CPU). `worker_init_fn(worker_id)` is called in-process for
each of the `num_workers` ids when an epoch starts (only for the first epoch when `persistent_workers`).
"""
from __future__ import annotations

import numpy as np

from minigrad.random import default_generator
from minigrad.tensor import Tensor

__all__ = ["DataLoader", "collate", "default_collate"]


def _field(x):
    x = np.asarray(x)
    if x.dtype.kind in "biu":
        return x.astype(np.int64, copy=False)
    if x.dtype.kind == "f":
        return x
    raise TypeError(f"cannot batch values of dtype {x.dtype}")


def collate(items):
    """Stack a list of items (tuples or dicts of arrays/scalars/Tensors, or single ones) field by field into
    arrays."""
    first = items[0]
    if isinstance(first, (tuple, list)):
        return tuple(collate([item[i] for item in items]) for i in range(len(first)))
    if isinstance(first, dict):
        return {k: collate([item[k] for item in items]) for k in first}
    if isinstance(first, float):
        return np.asarray(items, dtype=np.float32)
    return _field(np.stack([np.asarray(x) for x in items]))


def _tensors(batch):
    if isinstance(batch, tuple):
        return tuple(_tensors(b) for b in batch)
    if isinstance(batch, dict):
        return {k: _tensors(v) for k, v in batch.items()}
    return Tensor(batch)


def default_collate(items):
    """The loader's default batching (``torch.utils.data.default_collate``): `collate`, then each field a Tensor."""
    return _tensors(collate(items))


def _base_arrays(dataset):
    """(arrays, index map) for an array-backed dataset or a (nested) Subset of one; (None, None) otherwise."""
    from .split import Subset  # NOTE: here, not at the top: split imports dataset, loader stays independent

    if isinstance(dataset, Subset):
        arrays, remap = _base_arrays(dataset.dataset)
        if arrays is None:
            return None, None
        indices = np.asarray(dataset.indices, dtype=np.int64)
        return arrays, (indices if remap is None else remap[indices])
    arrays = dataset.arrays() if hasattr(dataset, "arrays") else None
    return arrays, None


def _indices(values):
    """A sampler's indices as an int64 array (refusing floats, which fancy indexing would not take either)."""
    idx = np.asarray(values)
    if idx.size == 0:
        return np.zeros(0, np.int64)
    if idx.ndim != 1 or idx.dtype.kind not in "iu":
        raise TypeError(f"DataLoader: a sampler must yield integer indices (a batch_sampler lists of them), got "
                        f"{idx.dtype} values of shape {idx.shape}")
    return idx.astype(np.int64, copy=False)


def _default_seed():
    return int(default_generator().integers(2**63))


class DataLoader:
    """Iterate over `dataset` in batches of `batch_size`, yielding a tuple of Tensors per batch.

    Args:
        shuffle: a fresh order every epoch (see the module docstring); else 0..N-1.
        drop_last: drop the last batch when smaller than `batch_size`.
        seed: integer seed of the shuffling; `generator`: a numpy Generator to draw that seed from.
        collate_fn: batches a list of items (default: `default_collate`).
        sampler: the item indices of an epoch (replaces `shuffle`); batch_sampler: the batches (lists of
            indices) of an epoch (replaces `batch_size`, `shuffle`, `sampler`, `drop_last`). See the module
            docstring.
        num_workers, pin_memory, persistent_workers, prefetch_factor, timeout, worker_init_fn: accepted and
            checked as in PyTorch; loading runs in-process (see the module docstring).
    `len(loader)` is the number of batches per epoch. Each `iter(loader)` runs epoch `loader.epoch` and then
    advances the counter; `set_epoch(k)` chooses the next epoch, `state_dict()` / `load_state_dict()` save
    and restore `{"epoch", "seed"}`.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None, generator=None, *,
                 num_workers=0, collate_fn=None, pin_memory=False, persistent_workers=False, timeout=0,
                 worker_init_fn=None, prefetch_factor=None, sampler=None, batch_sampler=None):
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle (the sampler orders the "
                             "items: shuffle in the sampler)")
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None or drop_last):
            raise ValueError("DataLoader: batch_sampler option is mutually exclusive with batch_size, shuffle, "
                             "sampler, and drop_last")
        for name, s in (("sampler", sampler), ("batch_sampler", batch_sampler)):
            if s is not None and not (hasattr(s, "__iter__") and hasattr(s, "__len__")):
                raise TypeError(f"DataLoader: {name} must be an iterable with a len() (a Sampler), got "
                                f"{type(s).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be an integer >= 1, got {batch_size!r}")
        if isinstance(num_workers, bool) or not isinstance(num_workers, (int, np.integer)) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be a non-negative integer (0: load in the main process), "
                             f"got {num_workers!r}")
        if not timeout >= 0:
            raise ValueError(f"DataLoader: timeout must be non-negative, got {timeout!r}")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("DataLoader: prefetch_factor needs num_workers > 0 (as in PyTorch); leave it None")
        if prefetch_factor is not None and prefetch_factor < 0:
            raise ValueError(f"DataLoader: prefetch_factor must be non-negative, got {prefetch_factor!r}")
        if persistent_workers and num_workers == 0:
            raise ValueError("DataLoader: persistent_workers needs num_workers > 0 (as in PyTorch)")
        for name, fn in (("collate_fn", collate_fn), ("worker_init_fn", worker_init_fn)):
            if fn is not None and not callable(fn):
                raise TypeError(f"DataLoader: {name} must be callable, got {type(fn).__name__}")
        self.num_workers, self.pin_memory = int(num_workers), bool(pin_memory)
        self.persistent_workers, self.timeout, self.prefetch_factor = bool(persistent_workers), timeout, prefetch_factor
        self.collate_fn, self.worker_init_fn = collate_fn, worker_init_fn
        self._workers_started = False
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.sampler, self.batch_sampler = sampler, batch_sampler
        if seed is None:
            seed = int(generator.integers(2**63)) if generator is not None else _default_seed()
        self.seed = int(seed)
        self.epoch = 0

    def __len__(self):
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        n = len(self.dataset) if self.sampler is None else len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def set_epoch(self, epoch):
        """Make the next `iter(self)` run epoch `epoch` (its shuffle order depends on it)."""
        self.epoch = int(epoch)

    def state_dict(self):
        """``{'epoch', 'seed'}``: what fixes the order of the batches still to come (for a checkpoint)."""
        return {"epoch": self.epoch, "seed": self.seed}

    def load_state_dict(self, state):
        """Restore ``state_dict()``'s epoch (and seed), so the next epoch is served in the same order."""
        self.epoch = int(state["epoch"])
        if "seed" in state:
            self.seed = int(state["seed"])

    def order(self, epoch):
        """The item indices of epoch `epoch`, in the order they are served (with a sampler: its current indices,
        whatever `epoch`; with a batch_sampler: the batches concatenated)."""
        if self.batch_sampler is not None:
            return np.concatenate([_indices(b) for b in self.batch_sampler] or [np.zeros(0, np.int64)])
        if self.sampler is not None:
            return _indices(list(self.sampler))
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, int(epoch)]).permutation(n)

    def __iter__(self):
        epoch, self.epoch = self.epoch, self.epoch + 1
        if self.worker_init_fn is not None and self.num_workers and not (
                self.persistent_workers and self._workers_started):
            for worker_id in range(self.num_workers):
                self.worker_init_fn(worker_id)
        self._workers_started = True
        if self.batch_sampler is not None:
            return self._batches(_indices(b) for b in self.batch_sampler)
        order = self.order(epoch)
        return self._batches(order[start:start + self.batch_size]
                             for start in range(0, len(self) * self.batch_size, self.batch_size))

    def _batches(self, batches):
        arrays, remap = _base_arrays(self.dataset) if self.collate_fn is None else (None, None)
        for idx in batches:
            if arrays is not None:
                if remap is not None:
                    idx = remap[idx]
                yield tuple(Tensor(_field(a[idx])) for a in arrays)
                continue
            items = [self.dataset[int(i)] for i in idx]
            yield self.collate_fn(items) if self.collate_fn is not None else default_collate(items)
