"""Data parallelism over MPI ranks: ``DistributedDataParallel`` (see ``minigrad.distributed``)."""
from minigrad.nn.parallel.distributed import DistributedDataParallel

__all__ = ["DistributedDataParallel"]
