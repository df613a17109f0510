"""DistributedSampler: each rank's share of a dataset's indices, as ``torch.utils.data.DistributedSampler``."""
from __future__ import annotations

import numbers

import numpy as np

__all__ = ["DistributedSampler"]


def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"DistributedSampler: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


class DistributedSampler:
    """The indices of ``dataset`` that rank ``rank`` of ``num_replicas`` serves, PyTorch's rule:

    every rank draws the same permutation of ``range(len(dataset))`` (seeded with ``seed + epoch``; in order
    without ``shuffle``), then, without ``drop_last``, pads it by repeating its first indices up to a multiple of
    ``num_replicas`` (with ``drop_last``, cuts it down to one), and takes every ``num_replicas``-th index from
    position ``rank``. So the ranks' shares are disjoint (but for the padding) and of equal length
    ``len(sampler)``. Call ``set_epoch(epoch)`` before each epoch for a fresh order.

    ``num_replicas`` and ``rank`` default to ``minigrad.distributed.world_size()`` and ``rank()``.
    NOTE: the permutation is NumPy's (``numpy.random.default_rng(seed + epoch).permutation``), not
    ``torch.randperm``'s: the same seed orders the items differently from PyTorch; the split is the same.
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        if num_replicas is None or rank is None:
            from minigrad import distributed
            num_replicas = distributed.world_size() if num_replicas is None else num_replicas
            rank = distributed.rank() if rank is None else rank
        self.num_replicas = _check_int("num_replicas", num_replicas, 1)
        self.rank = _check_int("rank", rank, 0)
        if self.rank >= self.num_replicas:
            raise ValueError(f"DistributedSampler: rank must be in [0, {self.num_replicas}), got {rank!r}")
        self.dataset, self.shuffle, self.drop_last = dataset, bool(shuffle), bool(drop_last)
        self.seed = _check_int("seed", seed, 0)
        self.epoch = 0
        n = len(dataset)
        if self.drop_last and n % self.num_replicas:
            self.num_samples = (n - self.num_replicas) // self.num_replicas + 1 if n > self.num_replicas else 0
        else:
            self.num_samples = -(-n // self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch):
        """Make the next iteration use the order of epoch ``epoch`` (the same on every rank)."""
        self.epoch = _check_int("epoch", epoch, 0)

    def _permutation(self, n):
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng(self.seed + self.epoch).permutation(n)

    def indices(self):
        """This rank's indices for the current epoch, an int64 array of length ``len(self)``."""
        order = np.asarray(self._permutation(len(self.dataset)), dtype=np.int64)
        if self.drop_last:
            order = order[:self.total_size]
        elif self.total_size > len(order) and len(order):
            order = np.resize(order, self.total_size)  # NOTE: repeats the order from its start, as PyTorch pads
        return order[self.rank:self.total_size:self.num_replicas]

    def __iter__(self):
        return iter(self.indices().tolist())

    def __len__(self):
        return self.num_samples

    def __repr__(self):
        return (f"DistributedSampler(num_replicas={self.num_replicas}, rank={self.rank}, shuffle={self.shuffle}, "
                f"seed={self.seed}, drop_last={self.drop_last})")
