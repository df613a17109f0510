"""``minigrad.utils.data``, the counterpart of ``torch.utils.data``: the classes of ``minigrad.data`` under
PyTorch's names.

``Dataset``, ``TensorDataset``, ``DataLoader`` (``num_workers``, ``pin_memory``, ``persistent_workers``,
``drop_last``, ``collate_fn``; workers run in-process), ``Subset``, ``ConcatDataset``, ``random_split`` and
``default_collate``.
"""
from minigrad.data.dataset import Dataset, TensorDataset
from minigrad.data.loader import DataLoader, default_collate
from minigrad.data.split import ConcatDataset, Subset, random_split

__all__ = ["Dataset", "TensorDataset", "DataLoader", "default_collate", "Subset", "ConcatDataset", "random_split"]
