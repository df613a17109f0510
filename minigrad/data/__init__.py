"""Datasets and the DataLoader: `Dataset`, `TensorDataset`, `SyntheticDigits`, `MNIST`, `FashionMNIST`."""
from .distributed import DistributedSampler
from .dataset import Dataset, SyntheticDigits, TensorDataset, synthetic
from .loader import DataLoader, collate
from .mnist import MNIST, FashionMNIST, cache_dir, fetch_mnist, parse_idx, read_idx

__all__ = ["Dataset", "TensorDataset", "SyntheticDigits", "synthetic", "DataLoader", "collate", "DistributedSampler",
           "MNIST", "FashionMNIST", "read_idx", "parse_idx", "fetch_mnist", "cache_dir"]
