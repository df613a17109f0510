"""``minigrad.vision``, the counterpart of torchvision: ``from minigrad.vision import datasets, transforms``.

``transforms``: ``Compose``, ``ToTensor``, ``Normalize``, ``RandomCrop``, ``RandomHorizontalFlip``, ``Lambda``.
``datasets``: ``MNIST`` and ``FashionMNIST`` with torchvision's signature, served from ``minigrad.data``'s files.
No PIL: an untransformed image is a uint8 NumPy array (H, W), where torchvision gives a PIL image.
"""
from minigrad.vision import datasets, transforms  # noqa: F401

__all__ = ["datasets", "transforms"]
