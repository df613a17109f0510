"""Datasets: the abstract `Dataset`, the array-backed `TensorDataset` and an offline `SyntheticDigits`.

A dataset maps an index to one item, a tuple of arrays or scalars. A dataset that keeps all its items in
arrays whose first axis is the item index says so through `arrays()`; `DataLoader` then batches by
fancy-indexing those arrays instead of calling `__getitem__` once per item.

Items are NumPy values, not Tensors: the loader wraps whole batches, so datasets know nothing of `Tensor`.
"""
from __future__ import annotations

import numpy as np

__all__ = ["Dataset", "TensorDataset", "SyntheticDigits", "synthetic"]


class Dataset:
    """Abstract map-style dataset: subclasses define `__getitem__(i)` and `__len__()`."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __len__")

    def arrays(self):
        """The item-indexed arrays backing this dataset, or None when items are built one by one.

        When not None, item `i` must equal `tuple(a[i] for a in self.arrays())`.
        """
        return None


def _as_array(x):
    # NOTE: duck-typed so a minigrad Tensor (or anything with .numpy()) works without importing it here.
    if hasattr(x, "numpy") and not isinstance(x, np.ndarray):
        x = x.numpy()
    return np.asarray(x)


class TensorDataset(Dataset):
    """Items are `(a[i], b[i], ...)` for the given arrays or Tensors, which share their first axis."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one array")
        self.tensors = tuple(_as_array(t) for t in tensors)
        n = len(self.tensors[0]) if self.tensors[0].ndim else -1
        for t in self.tensors:
            if t.ndim == 0 or len(t) != n:
                shapes = [t.shape for t in self.tensors]
                raise ValueError(f"TensorDataset arrays must share their first axis, got shapes {shapes}")

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return len(self.tensors[0])

    def arrays(self):
        return self.tensors


class ImageDataset(Dataset):
    """Images in `.data` (N, 1, H, W) float32 and labels in `.targets` (N,) int64; an item is `(image, int)`."""

    def __getitem__(self, index):
        return self.data[index], int(self.targets[index])

    def __len__(self):
        return len(self.targets)

    def arrays(self):
        return self.data, self.targets


class SyntheticDigits(ImageDataset):
    """A small deterministic 10-class image set for offline smoke runs, in the same format as `MNIST`.

    Each class has a fixed prototype, a few random strokes on a 28x28 canvas drawn from `seed`. An item is
    `prototype[label]` plus Gaussian noise of std `noise`, clipped to [0, 1]. Train and test draw their
    labels and noise from different streams of the same seed, so they share prototypes but not items.

    Shape: `.data` (N, 1, 28, 28) float32 in [0, 1], `.targets` (N,) int64; an item is
    `(float32 (1, 28, 28), int)`.
    """

    def __init__(self, n=1000, train=True, seed=0, num_classes=10, noise=0.25):
        if n < 0 or num_classes < 1:
            raise ValueError(f"need n >= 0 and num_classes >= 1, got n={n}, num_classes={num_classes}")
        self.classes = list(range(num_classes))
        self.prototypes = _prototypes(seed, num_classes)
        rng = np.random.default_rng([seed, 1 if train else 2])
        self.targets = rng.integers(0, num_classes, size=n).astype(np.int64)
        x = self.prototypes[self.targets] + noise * rng.standard_normal((n, 28, 28), dtype=np.float32)
        self.data = np.clip(x, 0.0, 1.0, out=x)[:, None]


def _prototypes(seed, num_classes):
    # Each prototype: 3 thick random line segments, intensity 1, on a zero canvas.
    rng = np.random.default_rng([seed, 0])
    yy, xx = np.mgrid[0:28, 0:28].astype(np.float32)
    protos = np.zeros((num_classes, 28, 28), np.float32)
    for c in range(num_classes):
        for _ in range(3):
            (y0, x0), (y1, x1) = rng.uniform(4, 24, size=(2, 2))
            # distance from each pixel to the segment (y0, x0)-(y1, x1)
            dy, dx = y1 - y0, x1 - x0
            t = np.clip(((yy - y0) * dy + (xx - x0) * dx) / max(dy * dy + dx * dx, 1e-6), 0, 1)
            dist = np.hypot(yy - (y0 + t * dy), xx - (x0 + t * dx))
            protos[c] = np.maximum(protos[c], dist < 1.5)
    return protos


def synthetic(n=1000, train=True, seed=0, **kwargs):
    """Shorthand for `SyntheticDigits(n, train, seed, ...)`."""
    return SyntheticDigits(n=n, train=train, seed=seed, **kwargs)
