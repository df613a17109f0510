# Runtime facts about the compiled extension: whether it has OpenMP, and its thread pool.
from minigrad._ext._openmp cimport MINIGRAD_OPENMP, omp_get_max_threads, omp_set_num_threads, team_size


def openmp_enabled():
    """True when the extension was compiled with OpenMP."""
    return bool(MINIGRAD_OPENMP)


def openmp_max_threads():
    return omp_get_max_threads()


def openmp_set_num_threads(Py_ssize_t n):
    omp_set_num_threads(team_size(n))  # NOTE: bounded as the kernels' teams are
