"""Optimizer updates in Cython/OpenMP: one fused pass over a flattened parameter and its state.

The rules, rounding by rounding, are those of minigrad/kernels/reference/optim.py (sgd_update, adam_update), which are
PyTorch's. Every hyperparameter is rounded to X (the parameter's dtype) first and each operation is done in X, in
the reference's order, so the result has the reference's bits: NumPy does the same steps as whole-array passes.
NOTE: the build has no -march flag, so GCC never contracts a*b + c into an FMA here (which would round once); it
has -fno-math-errno, so sqrt vectorizes.
A fused pass reads and writes each array once, where NumPy's version makes a pass per operation (3-4 for SGD,
about 10 for Adam) and allocates temporaries. Elements are independent: the prange writes disjoint elements.
"""
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport sqrt
from libc.stdlib cimport free, malloc

from minigrad._ext._arrays cimport dim, is_float32, ptr
from minigrad._ext._openmp cimport team_size

cnp.import_array()


# the update loops: C in optim_kernels.h (MG_CLONES: AVX2 and baseline, same bits)
cdef extern from "optim_kernels.h":
    void mg_sgd_float(float* p, float* buf, const float* grad, Py_ssize_t m, float wd, float mom, float keep,
                      float lr, int has_wd, int has_damp, int nesterov, int first) noexcept nogil
    void mg_sgd_double(double* p, double* buf, const double* grad, Py_ssize_t m, double wd, double mom,
                       double keep, double lr, int has_wd, int has_damp, int nesterov, int first) noexcept nogil
    void mg_adam_float(float* p, float* m, float* v, const float* grad, Py_ssize_t n, float decay, float wd,
                       float keep1, float b2, float keep2, float bc2, float eps, float step_size, int decoupled,
                       int has_wd) noexcept nogil
    void mg_adam_double(double* p, double* m, double* v, const double* grad, Py_ssize_t n, double decay,
                        double wd, double keep1, double b2, double keep2, double bc2, double eps, double step_size,
                        int decoupled, int has_wd) noexcept nogil

# elements per parallel chunk (the updates are elementwise: chunking changes no result)
cdef Py_ssize_t CHUNK = 1 << 14


cdef void _sgd(floating* p, floating* buf, const floating* grad, Py_ssize_t M, double lr, double momentum,
               double dampening, double weight_decay, bint nesterov, bint first, int n_threads) noexcept nogil:
    cdef floating wd = <floating>weight_decay, mom = <floating>momentum, keep = <floating>(1 - dampening)
    cdef floating lrx = <floating>lr
    cdef int has_wd = weight_decay != 0, has_damp = dampening != 0
    cdef Py_ssize_t k, lo, n
    if n_threads == 1:  # NOTE: no parallel region to open (elementwise: one pass over M gives the chunks' bits)
        if floating is float:
            mg_sgd_float(p, buf, grad, M, wd, mom, keep, lrx, has_wd, has_damp, nesterov, first)
        else:
            mg_sgd_double(p, buf, grad, M, wd, mom, keep, lrx, has_wd, has_damp, nesterov, first)
        return
    for k in prange((M + CHUNK - 1) // CHUNK, schedule='static', num_threads=n_threads):
        lo = k * CHUNK
        n = min(CHUNK, M - lo)
        if floating is float:
            mg_sgd_float(p + lo, buf + lo, grad + lo, n, wd, mom, keep, lrx, has_wd, has_damp, nesterov, first)
        else:
            mg_sgd_double(p + lo, buf + lo, grad + lo, n, wd, mom, keep, lrx, has_wd, has_damp, nesterov, first)


cdef void _adam(floating* p, floating* m, floating* v, const floating* grad, Py_ssize_t M, double lr, double beta1,
                double beta2, double eps, double weight_decay, bint decoupled, long step,
                int n_threads) noexcept nogil:
    cdef floating decay = <floating>(1 - lr * weight_decay), wd = <floating>weight_decay
    cdef floating keep1 = <floating>(1 - beta1), b2 = <floating>beta2, keep2 = <floating>(1 - beta2)
    cdef floating bc2 = <floating>sqrt(1 - beta2 ** step), epsx = <floating>eps
    cdef floating step_size = <floating>(lr / (1 - beta1 ** step))
    cdef int has_wd = weight_decay != 0 and not decoupled
    cdef Py_ssize_t k, lo, n
    if n_threads == 1:  # NOTE: as in _sgd
        if floating is float:
            mg_adam_float(p, m, v, grad, M, decay, wd, keep1, b2, keep2, bc2, epsx, step_size, decoupled, has_wd)
        else:
            mg_adam_double(p, m, v, grad, M, decay, wd, keep1, b2, keep2, bc2, epsx, step_size, decoupled, has_wd)
        return
    for k in prange((M + CHUNK - 1) // CHUNK, schedule='static', num_threads=n_threads):
        lo = k * CHUNK
        n = min(CHUNK, M - lo)
        if floating is float:
            mg_adam_float(p + lo, m + lo, v + lo, grad + lo, n, decay, wd, keep1, b2, keep2, bc2, epsx, step_size,
                          decoupled, has_wd)
        else:
            mg_adam_double(p + lo, m + lo, v + lo, grad + lo, n, decay, wd, keep1, b2, keep2, bc2, epsx,
                           step_size, decoupled, has_wd)


# the def wrappers: contract signatures + n_threads (see _arrays.pxd: the contract has checked the arguments)

def sgd_update(cnp.ndarray param not None, cnp.ndarray momentum_buffer not None, cnp.ndarray grad not None,
               double lr, double momentum, double dampening, double weight_decay, bint nesterov, bint first,
               Py_ssize_t n_threads):
    """One SGD step with momentum on flattened arrays (rule: reference.sgd_update)."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t M = dim(param, 0)
    cdef bint f32 = is_float32(param)
    cdef void* p_param = ptr(param), *p_buf = ptr(momentum_buffer), *p_grad = ptr(grad)
    with nogil:
        if f32:
            _sgd(<float*>p_param, <float*>p_buf, <float*>p_grad, M, lr, momentum, dampening, weight_decay, nesterov,
                 first, n_threads)
        else:
            _sgd(<double*>p_param, <double*>p_buf, <double*>p_grad, M, lr, momentum, dampening, weight_decay,
                 nesterov, first, n_threads)


# ps, bufs, grads: k flat arrays each, group i's elements at offs[i]:offs[i + 1] of the k groups laid end to end
# (offs[k] = M). One parallel region for all of them: thread t updates elements _cut(M, t, team):_cut(M, t + 1, team)
# of that concatenation, group by group. NOTE: one region a step, not one per large group: at 2 threads each region
# wakes the worker (the passive wait), which cost more than the update itself on ResNet-20's 65 parameters
# (docs/perf/threads.md, session 37); elementwise, so any split gives the same bits
cdef inline Py_ssize_t _cut(Py_ssize_t M, Py_ssize_t t, Py_ssize_t team) noexcept nogil:
    """Where thread t's share of M elements starts: t*M/team rounded down to 16 elements (a 64-byte line of
    float32), M for t = team."""
    return M if t >= team else (M * t // team) & ~(<Py_ssize_t>15)


cdef void _sgd_many(void** ps, void** bufs, void** grads, const char* f32, const Py_ssize_t* offs, Py_ssize_t k,
                    double lr, double momentum, double dampening, double weight_decay, bint nesterov, bint first,
                    int team) noexcept nogil:
    cdef Py_ssize_t t, i, lo, hi, a, b, M = offs[k]
    for t in prange(team, schedule='static', num_threads=team):
        lo, hi = _cut(M, t, team), _cut(M, t + 1, team)
        for i in range(k):
            a, b = max(lo, offs[i]), min(hi, offs[i + 1])
            if a >= b:
                continue
            a, b = a - offs[i], b - a  # NOTE: from here a is the position in group i, b the count
            if f32[i]:
                _sgd(<float*>ps[i] + a, <float*>bufs[i] + a, <float*>grads[i] + a, b, lr, momentum, dampening,
                     weight_decay, nesterov, first, 1)
            else:
                _sgd(<double*>ps[i] + a, <double*>bufs[i] + a, <double*>grads[i] + a, b, lr, momentum, dampening,
                     weight_decay, nesterov, first, 1)


def sgd_update_many(tuple params not None, tuple momentum_buffers not None, tuple grads not None, double lr,
                    double momentum, double dampening, double weight_decay, bint nesterov, bint first,
                    Py_ssize_t n_threads):
    """sgd_update on each (params[i], momentum_buffers[i], grads[i]), in one call (rule: reference.sgd_update); each
    group is checked by the contract as an sgd_update call, so each holds arrays of one dtype."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t i, k = len(params)
    cdef cnp.ndarray param
    cdef void** p = <void**>malloc(3 * k * sizeof(void*) + 1)
    cdef Py_ssize_t* offs = <Py_ssize_t*>malloc((k + 1) * sizeof(Py_ssize_t))
    cdef char* f32 = <char*>malloc(k + 1)
    if p == NULL or offs == NULL or f32 == NULL:
        free(p)
        free(offs)
        free(f32)
        raise MemoryError("sgd_update_many: the groups' pointers")
    cdef int team
    try:
        offs[0] = 0
        for i in range(k):
            param = <cnp.ndarray>params[i]
            p[i], p[k + i], p[2 * k + i] = ptr(param), ptr(<cnp.ndarray>momentum_buffers[i]), \
                ptr(<cnp.ndarray>grads[i])
            offs[i + 1], f32[i] = offs[i] + dim(param, 0), is_float32(param)
        # NOTE: below two chunks in all, one thread (contract.SMALL's cut-off): no parallel region for one chunk's work
        team = n_threads if offs[k] >= 2 * CHUNK else 1
        with nogil:
            _sgd_many(p, p + k, p + 2 * k, f32, offs, k, lr, momentum, dampening, weight_decay, nesterov, first, team)
    finally:
        free(p)
        free(offs)
        free(f32)


def adam_update(cnp.ndarray param not None, cnp.ndarray exp_avg not None, cnp.ndarray exp_avg_sq not None,
                cnp.ndarray grad not None, double lr, double beta1, double beta2, double eps, double weight_decay,
                bint decoupled, long step, Py_ssize_t n_threads):
    """One Adam (AdamW when decoupled) step on flattened arrays (rule: reference.adam_update)."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t M = dim(param, 0)
    cdef bint f32 = is_float32(param)
    cdef void* p_param = ptr(param), *p_m = ptr(exp_avg), *p_v = ptr(exp_avg_sq), *p_grad = ptr(grad)
    with nogil:
        if f32:
            _adam(<float*>p_param, <float*>p_m, <float*>p_v, <float*>p_grad, M, lr, beta1, beta2, eps, weight_decay,
                  decoupled, step, n_threads)
        else:
            _adam(<double*>p_param, <double*>p_m, <double*>p_v, <double*>p_grad, M, lr, beta1, beta2, eps,
                  weight_decay, decoupled, step, n_threads)
