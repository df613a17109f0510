# OpenMP shim: the kernels call these names whether or not the build has OpenMP.
# NOTE: without _OPENMP the functions below report one thread and Cython's prange runs serially.
cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define MINIGRAD_OPENMP 1
    #else
    #define MINIGRAD_OPENMP 0
    static inline int omp_get_thread_num(void) { return 0; }
    static inline int omp_get_max_threads(void) { return 1; }
    static inline int omp_get_num_procs(void) { return 1; }
    static inline void omp_set_num_threads(int n) { (void)n; }
    #endif
    """
    bint MINIGRAD_OPENMP
    int omp_get_thread_num() noexcept nogil
    int omp_get_max_threads() noexcept nogil
    int omp_get_num_procs() noexcept nogil
    void omp_set_num_threads(int n) noexcept nogil


# NOTE: the thread bound of minigrad.kernels.threads (TEAM_FLOOR there), for calls that bypass the contract
cdef enum:
    MG_TEAM_FLOOR = 64


cdef inline int team_size(Py_ssize_t n_threads) noexcept nogil:
    """n_threads as a team libgomp can start: at least 1, at most max(64, the processors). Every def wrapper
    passes its n_threads through here (10**6 threads crash libgomp; 0 or fewer are undefined in OpenMP)."""
    if n_threads <= 1:
        return 1
    if n_threads <= MG_TEAM_FLOOR:
        return <int>n_threads
    # NOTE: omp_get_num_procs asks the kernel for the affinity mask: only on this rare path
    return <int>min(n_threads, max(MG_TEAM_FLOOR, omp_get_num_procs()))
