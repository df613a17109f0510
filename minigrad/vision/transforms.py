"""Image transforms with torchvision's semantics, PIL-free.

An image is either a NumPy array laid out as a PIL image would be, (H, W) or (H, W, C) (what the datasets give
before ``ToTensor``), or a minigrad Tensor (..., C, H, W) (after it). The geometric transforms keep the kind and
layout they get. Random draws come from minigrad's default generator (``minigrad.manual_seed`` seeds it), one
draw per call as torchvision makes them, so a seeded pipeline is reproducible (not the same draws as torch's).
"""
from __future__ import annotations

import numbers

import numpy as np

from minigrad.random import default_generator
from minigrad.tensor import Tensor

__all__ = ["Compose", "ToTensor", "Normalize", "RandomCrop", "RandomHorizontalFlip", "Lambda"]


class Compose:
    """Apply ``transforms`` one after another."""

    def __init__(self, transforms):
        self.transforms = list(transforms)
        for i, t in enumerate(self.transforms):
            if not callable(t):
                raise TypeError(f"Compose: transforms[{i}] is not callable ({type(t).__name__})")

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self):
        return f"{type(self).__name__}(" + "".join(f"\n    {t}" for t in self.transforms) + "\n)"


class Lambda:
    """Apply a user function: ``Lambda(lambda x: x * 2)``."""

    def __init__(self, lambd):
        if not callable(lambd):
            raise TypeError(f"Lambda: argument should be callable, got {type(lambd).__name__}")
        self.lambd = lambd

    def __call__(self, img):
        return self.lambd(img)

    def __repr__(self):
        return f"{type(self).__name__}()"


def _as_image_array(pic, who):
    if isinstance(pic, np.ndarray):
        return pic
    if hasattr(pic, "getbands"):  # a PIL image: its array view, (H, W) or (H, W, C)
        return np.asarray(pic)
    raise TypeError(f"{who}: pic should be a NumPy array (H, W) or (H, W, C) or a PIL image, got {type(pic).__name__}")


class ToTensor:
    """A uint8 image (H, W) or (H, W, C) to a float32 Tensor (C, H, W) in [0, 1] (divided by 255).

    As torchvision does for arrays: other dtypes are only transposed to (C, H, W), not scaled.
    """

    def __call__(self, pic):
        pic = _as_image_array(pic, "ToTensor")
        if pic.ndim not in (2, 3):
            raise ValueError(f"ToTensor: pic should be 2 or 3 dimensional (H, W) or (H, W, C), got {pic.ndim} "
                             f"dimensions, shape {pic.shape}")
        if pic.ndim == 2:
            pic = pic[:, :, None]
        x = np.ascontiguousarray(pic.transpose(2, 0, 1))
        if x.dtype == np.uint8:
            x = x.astype(np.float32) / np.float32(255)
        return Tensor(x)

    def __repr__(self):
        return f"{type(self).__name__}()"


class Normalize:
    """``(x - mean[c]) / std[c]`` per channel of a float Tensor (..., C, H, W); one value applies to every channel.

    Computed in the image's dtype, as torchvision does; ``inplace=True`` writes into the image.
    """

    def __init__(self, mean, std, inplace=False):
        self.mean, self.std, self.inplace = mean, std, inplace

    def __call__(self, tensor):
        if not isinstance(tensor, Tensor):
            raise TypeError(f"Normalize: expected a Tensor image (..., C, H, W), got {type(tensor).__name__}")
        x = tensor.data
        if x.dtype.kind != "f":
            raise TypeError(f"Normalize: expected a floating-point Tensor image, got {x.dtype}")
        if x.ndim < 3:
            raise ValueError(f"Normalize: expected a Tensor image of size (..., C, H, W), got shape {x.shape}")
        mean = np.asarray(self.mean, dtype=x.dtype).reshape(-1)
        std = np.asarray(self.std, dtype=x.dtype).reshape(-1)
        c = x.shape[-3]
        for name, v in (("mean", mean), ("std", std)):
            if v.size not in (1, c):
                raise ValueError(f"Normalize: {name} has {v.size} values for an image of {c} channels")
        if (std == 0).any():
            raise ValueError(f"Normalize: std evaluated to zero after conversion to {x.dtype}, leading to division "
                             "by zero")
        mean, std = mean[:, None, None], std[:, None, None]
        if self.inplace:
            x -= mean
            x /= std
            return tensor
        return Tensor((x - mean) / std)

    def __repr__(self):
        return f"{type(self).__name__}(mean={self.mean}, std={self.std})"


def _pair(size, name):
    if isinstance(size, numbers.Number) and not isinstance(size, bool):
        return int(size), int(size)
    if isinstance(size, (tuple, list)) and len(size) == 1:
        return int(size[0]), int(size[0])
    if isinstance(size, (tuple, list)) and len(size) == 2:
        return int(size[0]), int(size[1])
    raise ValueError(f"{name}: size must be an int or a sequence of 1 or 2 ints, got {size!r}")


def _hw_axes(img):
    """(image as an array, the axes of H and W, whether it was a Tensor)."""
    if isinstance(img, Tensor):
        if img.data.ndim < 2:
            raise ValueError(f"expected an image Tensor (..., H, W), got shape {img.data.shape}")
        return img.data, (img.data.ndim - 2, img.data.ndim - 1), True
    x = _as_image_array(img, "transform")
    if x.ndim not in (2, 3):
        raise ValueError(f"expected an image array (H, W) or (H, W, C), got shape {x.shape}")
    return x, (0, 1), False


_PAD_MODES = {"constant": "constant", "edge": "edge", "reflect": "reflect", "symmetric": "symmetric"}


class RandomCrop:
    """Crop a random ``size`` window (int: square; (h, w)), after ``padding`` if given.

    ``padding``: int (all sides), (left/right, top/bottom) or (left, top, right, bottom); ``pad_if_needed`` pads
    an image smaller than ``size``; ``fill`` the constant; ``padding_mode`` 'constant', 'edge', 'reflect' or
    'symmetric'. The window's top-left corner is drawn uniformly: row in [0, H - h], then column in [0, W - w]
    (no draw when the image is exactly ``size``).
    """

    def __init__(self, size, padding=None, pad_if_needed=False, fill=0, padding_mode="constant"):
        self.size = _pair(size, "RandomCrop")
        if padding is not None:
            p = [padding] if isinstance(padding, numbers.Number) else list(padding)
            if len(p) not in (1, 2, 4) or any(not isinstance(v, numbers.Integral) or v < 0 for v in p):
                raise ValueError(f"RandomCrop: padding must be an int >= 0 or a sequence of 2 or 4 of them, "
                                 f"got {padding!r}")
        if padding_mode not in _PAD_MODES:
            raise ValueError(f"RandomCrop: padding_mode must be one of {sorted(_PAD_MODES)}, got {padding_mode!r}")
        self.padding, self.pad_if_needed, self.fill, self.padding_mode = padding, pad_if_needed, fill, padding_mode

    @staticmethod
    def _pad(x, axes, left, top, right, bottom, fill, mode):
        width = [(0, 0)] * x.ndim
        width[axes[0]], width[axes[1]] = (top, bottom), (left, right)
        if mode == "constant":
            return np.pad(x, width, mode="constant", constant_values=fill)
        return np.pad(x, width, mode=_PAD_MODES[mode])

    def __call__(self, img):
        x, axes, is_tensor = _hw_axes(img)
        if self.padding is not None:
            p = [self.padding] if isinstance(self.padding, numbers.Number) else list(self.padding)
            left, top, right, bottom = (p * 4 if len(p) == 1 else p * 2 if len(p) == 2 else p)[:4]
            x = self._pad(x, axes, left, top, right, bottom, self.fill, self.padding_mode)
        th, tw = self.size
        h, w = x.shape[axes[0]], x.shape[axes[1]]
        if self.pad_if_needed and w < tw:
            x = self._pad(x, axes, tw - w, 0, tw - w, 0, self.fill, self.padding_mode)
        if self.pad_if_needed and h < th:
            x = self._pad(x, axes, 0, th - h, 0, th - h, self.fill, self.padding_mode)
        h, w = x.shape[axes[0]], x.shape[axes[1]]
        if h < th or w < tw:
            raise ValueError(f"RandomCrop: required crop size {(th, tw)} is larger than the input image size {(h, w)}")
        if (h, w) == (th, tw):
            i = j = 0
        else:
            rng = default_generator()
            i, j = int(rng.integers(0, h - th + 1)), int(rng.integers(0, w - tw + 1))
        index = [slice(None)] * x.ndim
        index[axes[0]], index[axes[1]] = slice(i, i + th), slice(j, j + tw)
        out = np.ascontiguousarray(x[tuple(index)])
        return Tensor(out) if is_tensor else out

    def __repr__(self):
        return f"{type(self).__name__}(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror the image left-right with probability ``p`` (one uniform draw per call: flip when it is < p)."""

    def __init__(self, p=0.5):
        if not 0 <= p <= 1:
            raise ValueError(f"RandomHorizontalFlip: p must be a probability in [0, 1], got {p!r}")
        self.p = p

    def __call__(self, img):
        x, axes, is_tensor = _hw_axes(img)
        if default_generator().random() < self.p:
            out = np.ascontiguousarray(np.flip(x, axis=axes[1]))
            return Tensor(out) if is_tensor else out
        return img

    def __repr__(self):
        return f"{type(self).__name__}(p={self.p})"
