"""Data-parallel primitives over MPI (mpi4py), the ``minigrad[mpi]`` extra.

Launch one process per rank with the MPI implementation's own launcher, through mpi4py's runner so that an
exception on one rank aborts the whole job instead of leaving the others waiting in a collective:

    mpiexec -n 4 python -m mpi4py train_script.py

Every rank runs the same script; ``rank()`` tells them apart. Without MPI (mpi4py not installed, or a plain
``python script.py``) everything works as a world of one process: ``rank() == 0``, ``world_size() == 1`` and the
collectives return their input unchanged. ``init()`` is idempotent, and every function here calls it, so an
explicit call is optional. mpi4py is imported by ``init()``, never by ``import minigrad``.

The collectives work in place on contiguous NumPy arrays (or a Tensor's ``.data``) and return the array, like
``torch.distributed``'s on tensors.
"""
import os

import numpy as np

__all__ = ["init", "is_initialized", "launched", "rank", "world_size", "barrier", "all_reduce", "broadcast"]

_comm = None  # mpi4py's COMM_WORLD, or _Single() without MPI
_MPI = None
_OPS = ("sum", "prod", "min", "max")
# NOTE: how launchers announce a world of several processes (MPICH/Hydra, Open MPI, PMIx, Slurm)
_LAUNCHER_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "SLURM_NTASKS")
# NOTE: what an MPI launcher sets in each rank's environment (MPICH/Hydra and Intel MPI: PMI_RANK, PMI_SIZE,
# MPI_LOCALRANKID; Open MPI: OMPI_COMM_WORLD_*; PMIx launchers: PMIX_RANK). Not SLURM_*: a batch script's plain
# `python` has those too.
_LAUNCHER_VARS = ("PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK",
                  "PMIX_RANK")


class _Single:
    """The world of one process: what ``init()`` sets up when mpi4py is not installed."""

    def Get_rank(self):
        return 0

    def Get_size(self):
        return 1

    def Barrier(self):
        pass


def _launched_size():
    for var in _LAUNCHER_SIZE_VARS:
        try:
            size = int(os.environ.get(var, "1"))
        except ValueError:
            continue
        if size > 1:
            return size, var
    return 1, None


def init():
    """Join the MPI job (``MPI_Init`` through mpi4py); a second call does nothing.

    Without mpi4py, a single process works as a world of size 1; a process that a launcher started as one of
    several raises ImportError instead of training alone (every rank would think it is rank 0).
    """
    global _comm, _MPI
    if _comm is not None:
        return
    try:
        from mpi4py import MPI
    except ImportError as e:
        size, var = _launched_size()
        if size > 1:
            raise ImportError(f"minigrad.distributed: this process is one of {size} ({var}={size}) but mpi4py is "
                              f"not installed; install the extra: pip install 'minigrad[mpi]'") from e
        _comm = _Single()
        return
    _MPI, _comm = MPI, MPI.COMM_WORLD


def launched():
    """Whether an MPI launcher (``mpiexec``, ``mpirun``, ``srun`` with PMI) started this process, read from the
    environment variables launchers set, without importing mpi4py. ``minigrad train`` joins the job only then."""
    return any(var in os.environ for var in _LAUNCHER_VARS)


def is_initialized():
    """Whether ``init()`` has run (in this process)."""
    return _comm is not None


def rank():
    """This process's rank, 0 .. world_size() - 1."""
    init()
    return _comm.Get_rank()


def world_size():
    """The number of processes in the job (1 without MPI)."""
    init()
    return _comm.Get_size()


def barrier():
    """Wait until every rank gets here."""
    init()
    _comm.Barrier()


def _check_array(fn, array):
    if hasattr(array, "data") and not isinstance(array, np.ndarray):  # a Tensor: work on its array
        array = array.data
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{fn}: array must be a numpy.ndarray or a minigrad.Tensor, got {type(array).__name__}")
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{fn}: array must have a numeric dtype, got {array.dtype}")
    if not (array.flags.c_contiguous and array.flags.writeable):
        raise ValueError(f"{fn}: array must be C-contiguous and writeable (it is reduced in place); pass "
                         f"numpy.ascontiguousarray(array) and use the returned array")
    return array


def all_reduce(array, op="sum"):
    """Reduce ``array`` over every rank, in place: each rank ends with the elementwise ``op`` ("sum", "prod",
    "min" or "max") of all ranks' arrays, which must have the same shape and dtype. Returns the array."""
    if op not in _OPS:
        raise ValueError(f"all_reduce: op must be one of {', '.join(map(repr, _OPS))}, got {op!r}")
    array = _check_array("all_reduce", array)
    init()
    if _MPI is not None and _comm.Get_size() > 1:
        _comm.Allreduce(_MPI.IN_PLACE, array, op=getattr(_MPI, op.upper()))
    return array


def broadcast(array, root=0):
    """Copy rank ``root``'s ``array`` into every rank's ``array`` (same shape and dtype), in place; returns it."""
    array = _check_array("broadcast", array)
    size = world_size()
    if isinstance(root, bool) or not isinstance(root, (int, np.integer)) or not 0 <= root < size:
        raise ValueError(f"broadcast: root must be a rank in [0, {size}), got {root!r}")
    if size > 1:
        _comm.Bcast(array, root=int(root))
    return array


def _iall_reduce_sum(array):
    """A non-blocking in-place sum (MPI_Iallreduce): the request to ``.Wait()`` on, or None in a world of one."""
    init()
    if _MPI is None or _comm.Get_size() == 1:
        return None
    return _comm.Iallreduce(_MPI.IN_PLACE, array, op=_MPI.SUM)


def _broadcast_object(obj, root=0):
    """Rank ``root``'s picklable ``obj`` on every rank (``MPI_Bcast`` of its pickle); ``obj`` elsewhere is ignored."""
    init()
    return obj if _MPI is None or _comm.Get_size() == 1 else _comm.bcast(obj, root=root)


def _all_gather_object(obj):
    """Every rank's picklable ``obj``, as a list indexed by rank."""
    init()
    return [obj] if _MPI is None or _comm.Get_size() == 1 else _comm.allgather(obj)


def _local_size():
    """How many ranks of the job run on this machine (MPI_COMM_TYPE_SHARED), 1 without MPI."""
    init()
    if _MPI is None or _comm.Get_size() == 1:
        return 1
    local = _comm.Split_type(_MPI.COMM_TYPE_SHARED)
    try:
        return local.Get_size()
    finally:
        local.Free()


def _abort(status):
    """End every rank of the job now with exit status ``status`` (``MPI_Abort``): what a rank that cannot go on
    does, so that the others do not wait for it in a collective forever."""
    if _MPI is not None and _comm.Get_size() > 1:
        import sys
        sys.stdout.flush()
        sys.stderr.flush()
        _comm.Abort(int(status))
    raise SystemExit(status)
