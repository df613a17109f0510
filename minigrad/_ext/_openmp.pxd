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
    static inline void omp_set_num_threads(int n) { (void)n; }
    #endif
    """
    bint MINIGRAD_OPENMP
    int omp_get_thread_num() noexcept nogil
    int omp_get_max_threads() noexcept nogil
    void omp_set_num_threads(int n) noexcept nogil
