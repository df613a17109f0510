"""The phase kernels in Cython/OpenMP: the parallel drivers over the C of phases.h.

Signatures: minigrad/kernels/contract.py (the phase kernels); math: minigrad/kernels/reference.phases.py.

  channels x: (N, C, S)   statistics and backward sums over blocks of channels in parallel (each channel's sum
                          runs over n in order, whatever the blocks); the elementwise passes over rows n
  rows     x: (R, D)      statistics and elementwise passes over rows in parallel; the backward sums' column
                          reductions (dweight, dbias) go through per-chunk partials (R_CHUNKS chunks, a number
                          that depends on R alone) merged serially in order; FRN + TLU's forward in runs of
                          blocks of 4 rows (row_norm_apply_max), its backward in blocks of 4 rows, row by row
                          (row_norm_backward_max), both on x: (N, C, S) as N*C rows with per-channel weight,
                          offset and tau
  groups   x: (N, C, S)   EvoNorm-S0's backward over (n, group) pairs in parallel, each group's rows in order
So every result is bit-identical for any n_threads.
"""
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport pow, sqrt
from libc.stdlib cimport calloc, free, malloc

from minigrad._ext._arrays cimport dim, is_float32, ptr
from minigrad._ext._openmp cimport team_size

cnp.import_array()

# rows backward: at most this many chunks of rows, each with its own (D,) column partials
cdef Py_ssize_t R_CHUNKS = 64


# ---------------------------------------------------------------------------------------------------------
# channels layout x: (N, C, S)

cdef int _channel_stats(double* mean, double* m2, const floating* x, int center, Py_ssize_t N, Py_ssize_t C,
                        Py_ssize_t S, int n_threads) noexcept nogil:
    cdef Py_ssize_t nb = min(C, max(n_threads, 1)), blk
    cdef double* K = <double*>malloc(C * sizeof(double))
    if K == NULL:
        return -1
    for blk in prange(nb, schedule='static', num_threads=n_threads):
        if floating is float:
            mgp_channel_stats_float(mean, m2, x, center, N, C, S, blk * C // nb, (blk + 1) * C // nb, K)
        else:
            mgp_channel_stats_double(mean, m2, x, center, N, C, S, blk * C // nb, (blk + 1) * C // nb, K)
    free(K)
    return 0


cdef void _channel_dy_sums(double* sdy, double* sdyx, const floating* dy, const floating* x, const double* mean,
                           Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, int n_threads) noexcept nogil:
    cdef Py_ssize_t nb = min(C, max(n_threads, 1)), blk
    for blk in prange(nb, schedule='static', num_threads=n_threads):
        if floating is float:
            mgp_channel_dy_sums_float(sdy, sdyx, dy, x, mean, N, C, S, blk * C // nb, (blk + 1) * C // nb)
        else:
            mgp_channel_dy_sums_double(sdy, sdyx, dy, x, mean, N, C, S, blk * C // nb, (blk + 1) * C // nb)


cdef void _channel_apply(floating* y, const floating* x, const floating* shift, const floating* scale,
                         const floating* offset, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S,
                         int n_threads) noexcept nogil:
    cdef Py_ssize_t n
    for n in prange(N, schedule='static', num_threads=n_threads):
        if floating is float:
            mgp_channel_apply_float(y + n * C * S, x + n * C * S, C, S, shift, scale, offset)
        else:
            mgp_channel_apply_double(y + n * C * S, x + n * C * S, C, S, shift, scale, offset)


cdef void _channel_backward_apply(floating* dx, const floating* dy, const floating* x, const floating* a,
                                  const floating* mdy, const floating* shift, const floating* b, const floating* k,
                                  Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, int n_threads) noexcept nogil:
    cdef Py_ssize_t n, o
    for n in prange(N, schedule='static', num_threads=n_threads):
        o = n * C * S
        if floating is float:
            mgp_channel_backward_apply_float(dx + o, dy + o, x + o, C, S, a, mdy, shift, b, k)
        else:
            mgp_channel_backward_apply_double(dx + o, dy + o, x + o, C, S, a, mdy, shift, b, k)


# fused ReLU: the same drivers

cdef void _channel_dy_sums_relu(double* sdy, double* sdyx, const floating* dy, const floating* x,
                                const double* mean, const floating* shift, const floating* scale,
                                const floating* offset, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S,
                                int n_threads) noexcept nogil:
    cdef Py_ssize_t nb = min(C, max(n_threads, 1)), blk
    for blk in prange(nb, schedule='static', num_threads=n_threads):
        if floating is float:
            mgp_channel_dy_sums_relu_float(sdy, sdyx, dy, x, mean, shift, scale, offset, N, C, S,
                                           blk * C // nb, (blk + 1) * C // nb)
        else:
            mgp_channel_dy_sums_relu_double(sdy, sdyx, dy, x, mean, shift, scale, offset, N, C, S,
                                            blk * C // nb, (blk + 1) * C // nb)


cdef void _channel_apply_relu(floating* y, const floating* x, const floating* shift, const floating* scale,
                              const floating* offset, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S,
                              int n_threads) noexcept nogil:
    cdef Py_ssize_t n
    for n in prange(N, schedule='static', num_threads=n_threads):
        if floating is float:
            mgp_channel_apply_relu_float(y + n * C * S, x + n * C * S, C, S, shift, scale, offset)
        else:
            mgp_channel_apply_relu_double(y + n * C * S, x + n * C * S, C, S, shift, scale, offset)


cdef void _channel_backward_apply_relu(floating* dx, const floating* dy, const floating* x, const floating* a,
                                       const floating* mdy, const floating* shift, const floating* b,
                                       const floating* k, const floating* scale, const floating* offset,
                                       Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, int n_threads) noexcept nogil:
    cdef Py_ssize_t n, o
    for n in prange(N, schedule='static', num_threads=n_threads):
        o = n * C * S
        if floating is float:
            mgp_channel_backward_apply_relu_float(dx + o, dy + o, x + o, C, S, a, mdy, shift, b, k, scale, offset)
        else:
            mgp_channel_backward_apply_relu_double(dx + o, dy + o, x + o, C, S, a, mdy, shift, b, k, scale, offset)


# ---------------------------------------------------------------------------------------------------------
# rows layout x: (R, D)

# each thread one run of pairs of rows (mgp_rows_stats_T: two rows' sums in one loop)
cdef void _row_stats(double* mean, double* m2, const floating* x, int center, Py_ssize_t R, Py_ssize_t D,
                     int n_threads) noexcept nogil:
    cdef Py_ssize_t nblk = (R + 1) // 2
    cdef Py_ssize_t nt = min(nblk, max(n_threads, 1)), t, r0, r1
    if nt == 1:  # NOTE: no parallel region to open (1.7-1.8 us a call here); the one run's bits
        if floating is float:
            mgp_rows_stats_float(mean, m2, x, center, 0, R, D)
        else:
            mgp_rows_stats_double(mean, m2, x, center, 0, R, D)
        return
    for t in prange(nt, schedule='static', num_threads=n_threads):
        r0 = t * nblk // nt * 2
        r1 = min((t + 1) * nblk // nt * 2, R)
        if floating is float:
            mgp_rows_stats_float(mean, m2, x, center, r0, r1, D)
        else:
            mgp_rows_stats_double(mean, m2, x, center, r0, r1, D)


cdef void _row_apply(floating* y, const floating* x, const floating* shift, const floating* scale,
                     const floating* offset, const floating* weight, const floating* bias, Py_ssize_t R,
                     Py_ssize_t D, int n_threads) noexcept nogil:
    cdef Py_ssize_t r
    for r in prange(R, schedule='static', num_threads=n_threads):
        if floating is float:
            mgp_row_apply_float(y + r * D, x + r * D, D, shift[r], scale[r], offset[r], weight, bias)
        else:
            mgp_row_apply_double(y + r * D, x + r * D, D, shift[r], scale[r], offset[r], weight, bias)


# chunk q of nq owns rows [q*R//nq, (q+1)*R//nq) and the partials pw[q*D:(q+1)*D], pb[...]; merged in order
cdef int _row_backward_sums(double* sg, double* sgx, floating* dweight, floating* dbias, const floating* dy,
                            const floating* x, const double* mean, const double* rstd, const floating* weight,
                            Py_ssize_t R, Py_ssize_t D, int n_threads) noexcept nogil:
    cdef Py_ssize_t nq = min(R, R_CHUNKS), q, r, d
    cdef double* pw = <double*>calloc(2 * nq * D, sizeof(double))
    cdef double* pb = pw + nq * D
    if pw == NULL:
        return -1
    for q in prange(nq, schedule='static', num_threads=n_threads):
        for r in range(q * R // nq, (q + 1) * R // nq):
            if floating is float:
                mgp_row_backward_sums_float(sg + r, sgx + r, pw + q * D, pb + q * D, dy + r * D, x + r * D,
                                            weight, D, mean[r], rstd[r])
            else:
                mgp_row_backward_sums_double(sg + r, sgx + r, pw + q * D, pb + q * D, dy + r * D, x + r * D,
                                             weight, D, mean[r], rstd[r])
    for q in range(1, nq):
        for d in range(D):
            pw[d] += pw[q * D + d]
            pb[d] += pb[q * D + d]
    for d in range(D):
        dweight[d] = <floating>pw[d]
        dbias[d] = <floating>pb[d]
    free(pw)
    return 0


cdef void _row_backward_apply(floating* dx, const floating* dy, const floating* x, const floating* weight,
                              const floating* a, const floating* mg, const floating* shift, const floating* b,
                              const floating* k, Py_ssize_t R, Py_ssize_t D, int n_threads) noexcept nogil:
    cdef Py_ssize_t r
    for r in prange(R, schedule='static', num_threads=n_threads):
        if floating is float:
            mgp_row_backward_apply_float(dx + r * D, dy + r * D, x + r * D, weight, D, a[r], mg[r], shift[r],
                                         b[r], k[r])
        else:
            mgp_row_backward_apply_double(dx + r * D, dy + r * D, x + r * D, weight, D, a[r], mg[r], shift[r],
                                          b[r], k[r])


# fused max (FRN + TLU): the rows drivers, per-row coefficients and threshold

cdef void _row_apply_max(floating* y, const floating* x, const floating* shift, const floating* scale,
                         const floating* offset, const floating* tau, Py_ssize_t R, Py_ssize_t D,
                         int n_threads) noexcept nogil:
    cdef Py_ssize_t r
    for r in prange(R, schedule='static', num_threads=n_threads):
        if floating is float:
            mgp_row_apply_max_float(y + r * D, x + r * D, D, shift[r], scale[r], offset[r], tau[r])
        else:
            mgp_row_apply_max_double(y + r * D, x + r * D, D, shift[r], scale[r], offset[r], tau[r])


# FRN + TLU forward in one pass per row (n, c) of x: (N, C, S) seen as R = N*C rows of D = S: m2 = sum(x^2),
# rstd = 1/sqrt(m2/D + eps) (written out, for the backward), scale = X(rstd*weight[c]), y = max(x*scale + offset[c],
# tau[c]) while the row is in cache, c = r % C; each thread one run of blocks of 4 rows (mgp_rows_norm_apply_max_T:
# a block's rstd is one vector, taken before the previous block's applies)
cdef void _row_norm_apply_max(floating* y, double* rstd, floating* scale, const floating* x, const floating* weight,
                              const floating* offset, const floating* tau, double eps, Py_ssize_t R, Py_ssize_t D,
                              Py_ssize_t C, int n_threads) noexcept nogil:
    cdef Py_ssize_t nblk = (R + 3) // 4
    cdef Py_ssize_t nt = min(nblk, max(n_threads, 1)), t, r0, r1
    for t in prange(nt, schedule='static', num_threads=n_threads):
        r0 = t * nblk // nt * 4
        r1 = min((t + 1) * nblk // nt * 4, R)
        if floating is float:
            mgp_rows_norm_apply_max_float(y, rstd, scale, x, r0, r1, D, weight, offset, tau, C, eps)
        else:
            mgp_rows_norm_apply_max_double(y, rstd, scale, x, r0, r1, D, weight, offset, tau, C, eps)


# each thread one run of rows (mgp_rows_norm_backward_max_T: a row's apply after the next row's sums)
cdef void _row_norm_backward_max(floating* dx, double* sg, double* sgx, double* st, const floating* dy,
                                 const floating* x, const double* rstd, const floating* weight,
                                 const floating* scale, const floating* offset, const floating* tau, Py_ssize_t R,
                                 Py_ssize_t D, Py_ssize_t C, int n_threads) noexcept nogil:
    cdef Py_ssize_t nt = min(R, max(n_threads, 1)), t, r0, r1
    if nt == 1:  # NOTE: as in _row_stats
        if floating is float:
            mgp_rows_norm_backward_max_float(dx, sg, sgx, st, dy, x, rstd, weight, scale, offset, tau, 0, R, D, C)
        else:
            mgp_rows_norm_backward_max_double(dx, sg, sgx, st, dy, x, rstd, weight, scale, offset, tau, 0, R, D, C)
        return
    for t in prange(nt, schedule='static', num_threads=n_threads):
        r0 = t * R // nt
        r1 = (t + 1) * R // nt
        if floating is float:
            mgp_rows_norm_backward_max_float(dx, sg, sgx, st, dy, x, rstd, weight, scale, offset, tau, r0, r1, D, C)
        else:
            mgp_rows_norm_backward_max_double(dx, sg, sgx, st, dy, x, rstd, weight, scale, offset, tau, r0, r1, D,
                                              C)


cdef void _row_sums_max(double* sg, double* sgx, double* st, const floating* dy, const floating* x,
                        const double* mean, const floating* shift, const floating* scale, const floating* offset,
                        const floating* tau, Py_ssize_t R, Py_ssize_t D, int n_threads) noexcept nogil:
    cdef Py_ssize_t r
    for r in prange(R, schedule='static', num_threads=n_threads):
        if floating is float:
            mgp_row_sums_max_float(sg + r, sgx + r, st + r, dy + r * D, x + r * D, D, mean[r], shift[r], scale[r],
                                   offset[r], tau[r])
        else:
            mgp_row_sums_max_double(sg + r, sgx + r, st + r, dy + r * D, x + r * D, D, mean[r], shift[r],
                                    scale[r], offset[r], tau[r])


cdef void _row_backward_apply_max(floating* dx, const floating* dy, const floating* x, const floating* a,
                                  const floating* mg, const floating* shift, const floating* b, const floating* k,
                                  const floating* scale, const floating* offset, const floating* tau, Py_ssize_t R,
                                  Py_ssize_t D, int n_threads) noexcept nogil:
    cdef Py_ssize_t r
    for r in prange(R, schedule='static', num_threads=n_threads):
        if floating is float:
            mgp_row_backward_apply_max_float(dx + r * D, dy + r * D, x + r * D, D, a[r], mg[r], shift[r], b[r],
                                             k[r], scale[r], offset[r], tau[r])
        else:
            mgp_row_backward_apply_max_double(dx + r * D, dy + r * D, x + r * D, D, a[r], mg[r], shift[r], b[r],
                                              k[r], scale[r], offset[r], tau[r])


# fused gate (EvoNorm): the rows drivers, per-row v, lo, hi and coefficients

cdef void _row_apply_gate(floating* y, const floating* x, const floating* v, const floating* lo, const floating* hi,
                          const floating* scale, const floating* offset, int gate, Py_ssize_t R, Py_ssize_t D,
                          int n_threads) noexcept nogil:
    cdef Py_ssize_t r
    for r in prange(R, schedule='static', num_threads=n_threads):
        if floating is float:
            mgp_row_apply_gate_float(y + r * D, x + r * D, D, gate, v[r], lo[r], hi[r], scale[r], offset[r])
        else:
            mgp_row_apply_gate_double(y + r * D, x + r * D, D, gate, v[r], lo[r], hi[r], scale[r], offset[r])


cdef void _row_sums_gate(double* sdy, double* sdyf, double* sdv, double* shi, double* slo, const floating* dy,
                         const floating* x, const floating* v, const floating* lo, const floating* hi, int gate,
                         Py_ssize_t R, Py_ssize_t D, int n_threads) noexcept nogil:
    cdef Py_ssize_t r
    for r in prange(R, schedule='static', num_threads=n_threads):
        if floating is float:
            mgp_row_sums_gate_float(sdy + r, sdyf + r, sdv + r, shi + r, slo + r, dy + r * D, x + r * D, D, gate,
                                    v[r], lo[r], hi[r], NULL)
        else:
            mgp_row_sums_gate_double(sdy + r, sdyf + r, sdv + r, shi + r, slo + r, dy + r * D, x + r * D, D, gate,
                                     v[r], lo[r], hi[r], NULL)


cdef void _row_backward_apply_gate(floating* dx, const floating* dy, const floating* x, const floating* a,
                                   const floating* shift, const floating* b, const floating* k, const floating* v,
                                   const floating* lo, const floating* hi, int gate, Py_ssize_t R, Py_ssize_t D,
                                   int n_threads) noexcept nogil:
    cdef Py_ssize_t r
    for r in prange(R, schedule='static', num_threads=n_threads):
        if floating is float:
            mgp_row_backward_apply_gate_float(dx + r * D, dy + r * D, x + r * D, D, gate, a[r], shift[r], b[r], k[r],
                                              v[r], lo[r], hi[r], NULL)
        else:
            mgp_row_backward_apply_gate_double(dx + r * D, dy + r * D, x + r * D, D, gate, a[r], shift[r], b[r],
                                               k[r], v[r], lo[r], hi[r], NULL)


# EvoNorm-S0's backward, group by group (x: (N, C, S), groups of P = C/G channels, count M = P*S): the gate sums
# of the group's rows (row_backward_sums_gate with gate 0), then its coefficients, then dx for its rows
# (row_backward_apply_gate) while they are in cache:
#   dinv = sum_c w[c]*sdyf[n, c],  bg = -dinv*grstd^3/M,  a = X(w[c]*grstd),  shift = X(gmean),  b = X(bg),
#   k = X(bg*(shift - gmean))  (the same operations as _EvoNorm.backward's NumPy form)
# NOTE: each thread keeps the group's sigmoids (P*S values of X) from the sums for dx, which then skips the exp
# and the division; without the buffer (malloc failed) dx recomputes them, with the same bits
cdef void _evonorm_s0_backward(floating* dx, double* sdy, double* sdyf, double* sdv, const floating* dy,
                               const floating* x, const floating* v, const floating* weight, const double* gmean,
                               const double* grstd, Py_ssize_t N, Py_ssize_t C, Py_ssize_t G, Py_ssize_t S,
                               int n_threads) noexcept nogil:
    cdef Py_ssize_t ng, n, c, r, j, P = C // G
    cdef double dinv, gr, bg, unused_hi, unused_lo
    cdef floating shift
    cdef floating* keep
    cdef floating* row_keep
    with parallel(num_threads=n_threads):
        keep = <floating*>malloc(P * S * sizeof(floating))
        for ng in prange(N * G, schedule='static'):
            n = ng // G
            dinv = 0
            for j in range(P):
                c = (ng % G) * P + j
                r = n * C + c
                row_keep = keep + j * S if keep != NULL else NULL
                if floating is float:
                    mgp_row_sums_gate_float(sdy + r, sdyf + r, sdv + r, &unused_hi, &unused_lo, dy + r * S,
                                            x + r * S, S, 0, v[c], 0, 0, row_keep)
                else:
                    mgp_row_sums_gate_double(sdy + r, sdyf + r, sdv + r, &unused_hi, &unused_lo, dy + r * S,
                                             x + r * S, S, 0, v[c], 0, 0, row_keep)
                dinv = dinv + <double>weight[c] * sdyf[r]
            gr = grstd[ng]
            bg = -dinv * pow(gr, 3.0) / <double>(P * S)
            shift = <floating>gmean[ng]
            for j in range(P):
                c = (ng % G) * P + j
                r = n * C + c
                row_keep = keep + j * S if keep != NULL else NULL
                if floating is float:
                    mgp_row_backward_apply_gate_float(dx + r * S, dy + r * S, x + r * S, S, 0,
                                                      <float>(<double>weight[c] * gr), shift, <float>bg,
                                                      <float>(bg * (<double>shift - gmean[ng])), v[c], 0, 0,
                                                      row_keep)
                else:
                    mgp_row_backward_apply_gate_double(dx + r * S, dy + r * S, x + r * S, S, 0,
                                                       <double>weight[c] * gr, shift, bg,
                                                       bg * (<double>shift - gmean[ng]), v[c], 0, 0, row_keep)
        free(keep)


# ---------------------------------------------------------------------------------------------------------
# the def wrappers: contract signatures + n_threads (the contract has checked the arguments)

def channel_stats(cnp.ndarray mean not None, cnp.ndarray m2 not None, cnp.ndarray x not None, bint center,
                  Py_ssize_t n_threads):
    """Per-channel mean and m2 = sum((x - mean)^2) (center=False: mean = 0, m2 = sum(x^2))."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t N = dim(x, 0), C = dim(x, 1), S = dim(x, 2)
    cdef bint f32 = is_float32(x)
    cdef void* p_mean = ptr(mean), *p_m2 = ptr(m2), *p_x = ptr(x)
    cdef int err
    with nogil:
        if f32:
            err = _channel_stats(<double*>p_mean, <double*>p_m2, <float*>p_x, center, N, C, S, n_threads)
        else:
            err = _channel_stats(<double*>p_mean, <double*>p_m2, <double*>p_x, center, N, C, S, n_threads)
    if err:
        raise MemoryError()


def channel_apply(cnp.ndarray y not None, cnp.ndarray x not None, cnp.ndarray shift not None,
                  cnp.ndarray scale not None, cnp.ndarray offset not None, Py_ssize_t n_threads):
    """y = (x - shift[c])*scale[c] + offset[c]."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t N = dim(x, 0), C = dim(x, 1), S = dim(x, 2)
    cdef bint f32 = is_float32(x)
    cdef void* p_y = ptr(y), *p_x = ptr(x), *p_shift = ptr(shift), *p_scale = ptr(scale), *p_offset = ptr(offset)
    with nogil:
        if f32:
            _channel_apply(<float*>p_y, <float*>p_x, <float*>p_shift, <float*>p_scale, <float*>p_offset,
                           N, C, S, n_threads)
        else:
            _channel_apply(<double*>p_y, <double*>p_x, <double*>p_shift, <double*>p_scale, <double*>p_offset,
                           N, C, S, n_threads)


def channel_backward_sums(cnp.ndarray sdy not None, cnp.ndarray sdyx not None, cnp.ndarray dy not None,
                          cnp.ndarray x not None, cnp.ndarray mean not None, Py_ssize_t n_threads):
    """sdy = sum(dy), sdyx = sum(dy*(x - mean[c])) per channel."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t N = dim(x, 0), C = dim(x, 1), S = dim(x, 2)
    cdef bint f32 = is_float32(x)
    cdef void* p_sdy = ptr(sdy), *p_sdyx = ptr(sdyx), *p_dy = ptr(dy), *p_x = ptr(x), *p_mean = ptr(mean)
    with nogil:
        if f32:
            _channel_dy_sums(<double*>p_sdy, <double*>p_sdyx, <float*>p_dy, <float*>p_x, <double*>p_mean,
                             N, C, S, n_threads)
        else:
            _channel_dy_sums(<double*>p_sdy, <double*>p_sdyx, <double*>p_dy, <double*>p_x, <double*>p_mean,
                             N, C, S, n_threads)


def channel_backward_apply(cnp.ndarray dx not None, cnp.ndarray dy not None, cnp.ndarray x not None,
                           cnp.ndarray a not None, cnp.ndarray mdy not None, cnp.ndarray shift not None,
                           cnp.ndarray b not None, cnp.ndarray k not None, Py_ssize_t n_threads):
    """dx = a[c]*(dy - mdy[c]) + b[c]*(x - shift[c]) + k[c]."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t N = dim(x, 0), C = dim(x, 1), S = dim(x, 2)
    cdef bint f32 = is_float32(x)
    cdef void* p_dx = ptr(dx), *p_dy = ptr(dy), *p_x = ptr(x), *p_a = ptr(a), *p_mdy = ptr(mdy)
    cdef void* p_shift = ptr(shift), *p_b = ptr(b), *p_k = ptr(k)
    with nogil:
        if f32:
            _channel_backward_apply(<float*>p_dx, <float*>p_dy, <float*>p_x, <float*>p_a, <float*>p_mdy,
                                    <float*>p_shift, <float*>p_b, <float*>p_k, N, C, S, n_threads)
        else:
            _channel_backward_apply(<double*>p_dx, <double*>p_dy, <double*>p_x, <double*>p_a, <double*>p_mdy,
                                    <double*>p_shift, <double*>p_b, <double*>p_k, N, C, S, n_threads)


def channel_apply_relu(cnp.ndarray y not None, cnp.ndarray x not None, cnp.ndarray shift not None,
                       cnp.ndarray scale not None, cnp.ndarray offset not None, Py_ssize_t n_threads):
    """y = max(0, (x - shift[c])*scale[c] + offset[c])."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t N = dim(x, 0), C = dim(x, 1), S = dim(x, 2)
    cdef bint f32 = is_float32(x)
    cdef void* p_y = ptr(y), *p_x = ptr(x), *p_shift = ptr(shift), *p_scale = ptr(scale), *p_offset = ptr(offset)
    with nogil:
        if f32:
            _channel_apply_relu(<float*>p_y, <float*>p_x, <float*>p_shift, <float*>p_scale, <float*>p_offset,
                                N, C, S, n_threads)
        else:
            _channel_apply_relu(<double*>p_y, <double*>p_x, <double*>p_shift, <double*>p_scale,
                                <double*>p_offset, N, C, S, n_threads)


def channel_backward_sums_relu(cnp.ndarray sdy not None, cnp.ndarray sdyx not None, cnp.ndarray dy not None,
                               cnp.ndarray x not None, cnp.ndarray mean not None, cnp.ndarray shift not None,
                               cnp.ndarray scale not None, cnp.ndarray offset not None, Py_ssize_t n_threads):
    """channel_backward_sums of g = dy where (x - shift[c])*scale[c] + offset[c] > 0, else 0."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t N = dim(x, 0), C = dim(x, 1), S = dim(x, 2)
    cdef bint f32 = is_float32(x)
    cdef void* p_sdy = ptr(sdy), *p_sdyx = ptr(sdyx), *p_dy = ptr(dy), *p_x = ptr(x), *p_mean = ptr(mean)
    cdef void* p_shift = ptr(shift), *p_scale = ptr(scale), *p_offset = ptr(offset)
    with nogil:
        if f32:
            _channel_dy_sums_relu(<double*>p_sdy, <double*>p_sdyx, <float*>p_dy, <float*>p_x, <double*>p_mean,
                                  <float*>p_shift, <float*>p_scale, <float*>p_offset, N, C, S, n_threads)
        else:
            _channel_dy_sums_relu(<double*>p_sdy, <double*>p_sdyx, <double*>p_dy, <double*>p_x, <double*>p_mean,
                                  <double*>p_shift, <double*>p_scale, <double*>p_offset, N, C, S, n_threads)


def channel_backward_apply_relu(cnp.ndarray dx not None, cnp.ndarray dy not None, cnp.ndarray x not None,
                                cnp.ndarray a not None, cnp.ndarray mdy not None, cnp.ndarray shift not None,
                                cnp.ndarray b not None, cnp.ndarray k not None, cnp.ndarray scale not None,
                                cnp.ndarray offset not None, Py_ssize_t n_threads):
    """channel_backward_apply of g = dy where (x - shift[c])*scale[c] + offset[c] > 0, else 0."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t N = dim(x, 0), C = dim(x, 1), S = dim(x, 2)
    cdef bint f32 = is_float32(x)
    cdef void* p_dx = ptr(dx), *p_dy = ptr(dy), *p_x = ptr(x), *p_a = ptr(a), *p_mdy = ptr(mdy)
    cdef void* p_shift = ptr(shift), *p_b = ptr(b), *p_k = ptr(k), *p_scale = ptr(scale), *p_offset = ptr(offset)
    with nogil:
        if f32:
            _channel_backward_apply_relu(<float*>p_dx, <float*>p_dy, <float*>p_x, <float*>p_a, <float*>p_mdy,
                                         <float*>p_shift, <float*>p_b, <float*>p_k, <float*>p_scale,
                                         <float*>p_offset, N, C, S, n_threads)
        else:
            _channel_backward_apply_relu(<double*>p_dx, <double*>p_dy, <double*>p_x, <double*>p_a,
                                         <double*>p_mdy, <double*>p_shift, <double*>p_b, <double*>p_k,
                                         <double*>p_scale, <double*>p_offset, N, C, S, n_threads)


def row_stats(cnp.ndarray mean not None, cnp.ndarray m2 not None, cnp.ndarray x not None, bint center,
              Py_ssize_t n_threads):
    """Per-row mean and m2 = sum((x - mean)^2) (center=False: mean = 0, m2 = sum(x^2))."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t R = dim(x, 0), D = dim(x, 1)
    cdef bint f32 = is_float32(x)
    cdef void* p_mean = ptr(mean), *p_m2 = ptr(m2), *p_x = ptr(x)
    with nogil:
        if f32:
            _row_stats(<double*>p_mean, <double*>p_m2, <float*>p_x, center, R, D, n_threads)
        else:
            _row_stats(<double*>p_mean, <double*>p_m2, <double*>p_x, center, R, D, n_threads)


def row_apply(cnp.ndarray y not None, cnp.ndarray x not None, cnp.ndarray shift not None,
              cnp.ndarray scale not None, cnp.ndarray offset not None, cnp.ndarray weight not None,
              cnp.ndarray bias not None, Py_ssize_t n_threads):
    """y = ((x - shift[r])*scale[r] + offset[r])*weight[d] + bias[d]."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t R = dim(x, 0), D = dim(x, 1)
    cdef bint f32 = is_float32(x)
    cdef void* p_y = ptr(y), *p_x = ptr(x), *p_shift = ptr(shift), *p_scale = ptr(scale), *p_offset = ptr(offset)
    cdef void* p_weight = ptr(weight), *p_bias = ptr(bias)
    with nogil:
        if f32:
            _row_apply(<float*>p_y, <float*>p_x, <float*>p_shift, <float*>p_scale, <float*>p_offset,
                       <float*>p_weight, <float*>p_bias, R, D, n_threads)
        else:
            _row_apply(<double*>p_y, <double*>p_x, <double*>p_shift, <double*>p_scale, <double*>p_offset,
                       <double*>p_weight, <double*>p_bias, R, D, n_threads)


def row_backward_sums(cnp.ndarray sg not None, cnp.ndarray sgx not None, cnp.ndarray dweight not None,
                      cnp.ndarray dbias not None, cnp.ndarray dy not None, cnp.ndarray x not None,
                      cnp.ndarray mean not None, cnp.ndarray rstd not None, cnp.ndarray weight not None,
                      Py_ssize_t n_threads):
    """Per row sg = sum(dy*w), sgx = sum(dy*w*(x - mean)); per column dbias = sum(dy), dweight = sum(dy*xhat)."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t R = dim(x, 0), D = dim(x, 1)
    cdef bint f32 = is_float32(x)
    cdef void* p_sg = ptr(sg), *p_sgx = ptr(sgx), *p_dweight = ptr(dweight), *p_dbias = ptr(dbias)
    cdef void* p_dy = ptr(dy), *p_x = ptr(x), *p_mean = ptr(mean), *p_rstd = ptr(rstd), *p_weight = ptr(weight)
    cdef int err
    with nogil:
        if f32:
            err = _row_backward_sums(<double*>p_sg, <double*>p_sgx, <float*>p_dweight, <float*>p_dbias,
                                     <float*>p_dy, <float*>p_x, <double*>p_mean, <double*>p_rstd,
                                     <float*>p_weight, R, D, n_threads)
        else:
            err = _row_backward_sums(<double*>p_sg, <double*>p_sgx, <double*>p_dweight, <double*>p_dbias,
                                     <double*>p_dy, <double*>p_x, <double*>p_mean, <double*>p_rstd,
                                     <double*>p_weight, R, D, n_threads)
    if err:
        raise MemoryError()


def row_backward_apply(cnp.ndarray dx not None, cnp.ndarray dy not None, cnp.ndarray x not None,
                       cnp.ndarray weight not None, cnp.ndarray a not None, cnp.ndarray mg not None,
                       cnp.ndarray shift not None, cnp.ndarray b not None, cnp.ndarray k not None,
                       Py_ssize_t n_threads):
    """dx = a[r]*(weight[d]*dy - mg[r]) + b[r]*(x - shift[r]) + k[r]."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t R = dim(x, 0), D = dim(x, 1)
    cdef bint f32 = is_float32(x)
    cdef void* p_dx = ptr(dx), *p_dy = ptr(dy), *p_x = ptr(x), *p_weight = ptr(weight), *p_a = ptr(a)
    cdef void* p_mg = ptr(mg), *p_shift = ptr(shift), *p_b = ptr(b), *p_k = ptr(k)
    with nogil:
        if f32:
            _row_backward_apply(<float*>p_dx, <float*>p_dy, <float*>p_x, <float*>p_weight, <float*>p_a,
                                <float*>p_mg, <float*>p_shift, <float*>p_b, <float*>p_k, R, D, n_threads)
        else:
            _row_backward_apply(<double*>p_dx, <double*>p_dy, <double*>p_x, <double*>p_weight, <double*>p_a,
                                <double*>p_mg, <double*>p_shift, <double*>p_b, <double*>p_k, R, D, n_threads)


def row_apply_max(cnp.ndarray y not None, cnp.ndarray x not None, cnp.ndarray shift not None,
                  cnp.ndarray scale not None, cnp.ndarray offset not None, cnp.ndarray tau not None,
                  Py_ssize_t n_threads):
    """y = max((x - shift[r])*scale[r] + offset[r], tau[r])."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t R = dim(x, 0), D = dim(x, 1)
    cdef bint f32 = is_float32(x)
    cdef void* p_y = ptr(y), *p_x = ptr(x), *p_shift = ptr(shift), *p_scale = ptr(scale), *p_offset = ptr(offset)
    cdef void* p_tau = ptr(tau)
    with nogil:
        if f32:
            _row_apply_max(<float*>p_y, <float*>p_x, <float*>p_shift, <float*>p_scale, <float*>p_offset,
                           <float*>p_tau, R, D, n_threads)
        else:
            _row_apply_max(<double*>p_y, <double*>p_x, <double*>p_shift, <double*>p_scale, <double*>p_offset,
                           <double*>p_tau, R, D, n_threads)


def row_norm_apply_max(cnp.ndarray y not None, cnp.ndarray rstd not None, cnp.ndarray scale not None,
                       cnp.ndarray x not None, cnp.ndarray weight not None, cnp.ndarray offset not None,
                       cnp.ndarray tau not None, double eps, Py_ssize_t n_threads):
    """Per row (n, c) of x: (N, C, S): rstd = 1/sqrt(sum(x^2)/S + eps), scale = X(weight[c]*rstd),
    y = max(x*scale + offset[c], tau[c])."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t C = dim(x, 1), R = dim(x, 0) * C, D = dim(x, 2)
    cdef bint f32 = is_float32(x)
    cdef void* p_y = ptr(y), *p_rstd = ptr(rstd), *p_scale = ptr(scale), *p_x = ptr(x), *p_weight = ptr(weight)
    cdef void* p_offset = ptr(offset), *p_tau = ptr(tau)
    with nogil:
        if f32:
            _row_norm_apply_max(<float*>p_y, <double*>p_rstd, <float*>p_scale, <float*>p_x, <float*>p_weight,
                                <float*>p_offset, <float*>p_tau, eps, R, D, C, n_threads)
        else:
            _row_norm_apply_max(<double*>p_y, <double*>p_rstd, <double*>p_scale, <double*>p_x, <double*>p_weight,
                                <double*>p_offset, <double*>p_tau, eps, R, D, C, n_threads)


def row_norm_backward_max(cnp.ndarray dx not None, cnp.ndarray sg not None, cnp.ndarray sgx not None,
                          cnp.ndarray st not None, cnp.ndarray dy not None, cnp.ndarray x not None,
                          cnp.ndarray rstd not None, cnp.ndarray weight not None, cnp.ndarray scale not None,
                          cnp.ndarray offset not None, cnp.ndarray tau not None, Py_ssize_t n_threads):
    """FRN + TLU's backward per row (n, c) of x: (N, C, S): row_backward_sums_max, coefficients.backward
    (center=False), then row_backward_apply_max, the row in cache (formula: reference.phases.row_norm_backward_max)."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t C = dim(x, 1), R = dim(x, 0) * C, D = dim(x, 2)
    cdef bint f32 = is_float32(x)
    cdef void* p_dx = ptr(dx), *p_sg = ptr(sg), *p_sgx = ptr(sgx), *p_st = ptr(st), *p_dy = ptr(dy), *p_x = ptr(x)
    cdef void* p_rstd = ptr(rstd), *p_weight = ptr(weight), *p_scale = ptr(scale), *p_offset = ptr(offset)
    cdef void* p_tau = ptr(tau)
    with nogil:
        if f32:
            _row_norm_backward_max(<float*>p_dx, <double*>p_sg, <double*>p_sgx, <double*>p_st, <float*>p_dy,
                                   <float*>p_x, <double*>p_rstd, <float*>p_weight, <float*>p_scale,
                                   <float*>p_offset, <float*>p_tau, R, D, C, n_threads)
        else:
            _row_norm_backward_max(<double*>p_dx, <double*>p_sg, <double*>p_sgx, <double*>p_st, <double*>p_dy,
                                   <double*>p_x, <double*>p_rstd, <double*>p_weight, <double*>p_scale,
                                   <double*>p_offset, <double*>p_tau, R, D, C, n_threads)


def row_backward_sums_max(cnp.ndarray sg not None, cnp.ndarray sgx not None, cnp.ndarray st not None,
                          cnp.ndarray dy not None, cnp.ndarray x not None, cnp.ndarray mean not None,
                          cnp.ndarray shift not None, cnp.ndarray scale not None, cnp.ndarray offset not None,
                          cnp.ndarray tau not None, Py_ssize_t n_threads):
    """Per row sg = sum(g), sgx = sum(g*(x - mean)), st = sum(t), dy split by the max (contract)."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t R = dim(x, 0), D = dim(x, 1)
    cdef bint f32 = is_float32(x)
    cdef void* p_sg = ptr(sg), *p_sgx = ptr(sgx), *p_st = ptr(st), *p_dy = ptr(dy), *p_x = ptr(x)
    cdef void* p_mean = ptr(mean), *p_shift = ptr(shift), *p_scale = ptr(scale), *p_offset = ptr(offset)
    cdef void* p_tau = ptr(tau)
    with nogil:
        if f32:
            _row_sums_max(<double*>p_sg, <double*>p_sgx, <double*>p_st, <float*>p_dy, <float*>p_x,
                          <double*>p_mean, <float*>p_shift, <float*>p_scale, <float*>p_offset, <float*>p_tau,
                          R, D, n_threads)
        else:
            _row_sums_max(<double*>p_sg, <double*>p_sgx, <double*>p_st, <double*>p_dy, <double*>p_x,
                          <double*>p_mean, <double*>p_shift, <double*>p_scale, <double*>p_offset, <double*>p_tau,
                          R, D, n_threads)


def row_backward_apply_max(cnp.ndarray dx not None, cnp.ndarray dy not None, cnp.ndarray x not None,
                           cnp.ndarray a not None, cnp.ndarray mg not None, cnp.ndarray shift not None,
                           cnp.ndarray b not None, cnp.ndarray k not None, cnp.ndarray scale not None,
                           cnp.ndarray offset not None, cnp.ndarray tau not None, Py_ssize_t n_threads):
    """dx = a[r]*(g - mg[r]) + b[r]*(x - shift[r]) + k[r], g as in row_backward_sums_max."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t R = dim(x, 0), D = dim(x, 1)
    cdef bint f32 = is_float32(x)
    cdef void* p_dx = ptr(dx), *p_dy = ptr(dy), *p_x = ptr(x), *p_a = ptr(a), *p_mg = ptr(mg)
    cdef void* p_shift = ptr(shift), *p_b = ptr(b), *p_k = ptr(k), *p_scale = ptr(scale), *p_offset = ptr(offset)
    cdef void* p_tau = ptr(tau)
    with nogil:
        if f32:
            _row_backward_apply_max(<float*>p_dx, <float*>p_dy, <float*>p_x, <float*>p_a, <float*>p_mg,
                                    <float*>p_shift, <float*>p_b, <float*>p_k, <float*>p_scale, <float*>p_offset,
                                    <float*>p_tau, R, D, n_threads)
        else:
            _row_backward_apply_max(<double*>p_dx, <double*>p_dy, <double*>p_x, <double*>p_a, <double*>p_mg,
                                    <double*>p_shift, <double*>p_b, <double*>p_k, <double*>p_scale,
                                    <double*>p_offset, <double*>p_tau, R, D, n_threads)


def _gate_avx512(int on=-1):
    """Tests only: whether EvoNorm's gate kernels and FRN + TLU's float32 backward take their AVX-512 versions
    (phases.h: the exp's clamps as min/max instructions; the max's split as masks) or the clones for other CPUs;
    on = 0 or 1 sets it (1 only where the CPU has AVX-512). Returns the former setting."""
    return bool(mgp_gate_v4(on))


def _rows_avx2(int on=-1):
    """Tests only: whether row_stats and FRN + TLU's float32 backward (where the AVX-512 version is off) take their
    AVX2 + FMA versions (phases.h: *_v3) or the clones; on = 0 or 1 sets it (1 only where the CPU has them).
    Returns the former setting."""
    return bool(mgp_rows_v3(on))


def _gate_avx2(int on=-1):
    """Tests only: whether EvoNorm's gate kernels take their AVX2 + FMA versions (phases.h's *_v3: the exps' fused
    multiply-adds, clamps and gate 1's blends as AVX2 intrinsics) or the clones for other CPUs, where the AVX-512
    versions are off (_gate_avx512); on = 0 or 1 sets it (1 only where the CPU has x86-64-v3). Returns the former
    setting."""
    return bool(mgp_gate_v3(on))


def row_apply_gate(cnp.ndarray y not None, cnp.ndarray x not None, cnp.ndarray v not None, cnp.ndarray lo not None,
                   cnp.ndarray hi not None, cnp.ndarray scale not None, cnp.ndarray offset not None, int gate,
                   Py_ssize_t n_threads):
    """y = f*scale[r] + offset[r], f the gate (contract)."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t R = dim(x, 0), D = dim(x, 1)
    cdef bint f32 = is_float32(x)
    cdef void* p_y = ptr(y), *p_x = ptr(x), *p_v = ptr(v), *p_lo = ptr(lo), *p_hi = ptr(hi)
    cdef void* p_scale = ptr(scale), *p_offset = ptr(offset)
    with nogil:
        if f32:
            _row_apply_gate(<float*>p_y, <float*>p_x, <float*>p_v, <float*>p_lo, <float*>p_hi, <float*>p_scale,
                            <float*>p_offset, gate, R, D, n_threads)
        else:
            _row_apply_gate(<double*>p_y, <double*>p_x, <double*>p_v, <double*>p_lo, <double*>p_hi,
                            <double*>p_scale, <double*>p_offset, gate, R, D, n_threads)


def row_backward_sums_gate(cnp.ndarray sdy not None, cnp.ndarray sdyf not None, cnp.ndarray sdv not None,
                           cnp.ndarray shi not None, cnp.ndarray slo not None, cnp.ndarray dy not None,
                           cnp.ndarray x not None, cnp.ndarray v not None, cnp.ndarray lo not None,
                           cnp.ndarray hi not None, int gate, Py_ssize_t n_threads):
    """Per row sum(dy), sum(dy*f) and sum(dy*df/dv), sum(dy*df/dhi), sum(dy*df/dlo) (contract)."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t R = dim(x, 0), D = dim(x, 1)
    cdef bint f32 = is_float32(x)
    cdef void* p_sdy = ptr(sdy), *p_sdyf = ptr(sdyf), *p_sdv = ptr(sdv), *p_shi = ptr(shi), *p_slo = ptr(slo)
    cdef void* p_dy = ptr(dy), *p_x = ptr(x), *p_v = ptr(v), *p_lo = ptr(lo), *p_hi = ptr(hi)
    with nogil:
        if f32:
            _row_sums_gate(<double*>p_sdy, <double*>p_sdyf, <double*>p_sdv, <double*>p_shi, <double*>p_slo,
                           <float*>p_dy, <float*>p_x, <float*>p_v, <float*>p_lo, <float*>p_hi, gate, R, D, n_threads)
        else:
            _row_sums_gate(<double*>p_sdy, <double*>p_sdyf, <double*>p_sdv, <double*>p_shi, <double*>p_slo,
                           <double*>p_dy, <double*>p_x, <double*>p_v, <double*>p_lo, <double*>p_hi, gate, R, D,
                           n_threads)


def row_backward_apply_gate(cnp.ndarray dx not None, cnp.ndarray dy not None, cnp.ndarray x not None,
                            cnp.ndarray a not None, cnp.ndarray shift not None, cnp.ndarray b not None,
                            cnp.ndarray k not None, cnp.ndarray v not None, cnp.ndarray lo not None,
                            cnp.ndarray hi not None, int gate, Py_ssize_t n_threads):
    """dx = a[r]*dy*df/dx + b[r]*(x - shift[r]) + k[r] (contract)."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t R = dim(x, 0), D = dim(x, 1)
    cdef bint f32 = is_float32(x)
    cdef void* p_dx = ptr(dx), *p_dy = ptr(dy), *p_x = ptr(x), *p_a = ptr(a), *p_shift = ptr(shift)
    cdef void* p_b = ptr(b), *p_k = ptr(k), *p_v = ptr(v), *p_lo = ptr(lo), *p_hi = ptr(hi)
    with nogil:
        if f32:
            _row_backward_apply_gate(<float*>p_dx, <float*>p_dy, <float*>p_x, <float*>p_a, <float*>p_shift,
                                     <float*>p_b, <float*>p_k, <float*>p_v, <float*>p_lo, <float*>p_hi, gate, R, D,
                                     n_threads)
        else:
            _row_backward_apply_gate(<double*>p_dx, <double*>p_dy, <double*>p_x, <double*>p_a, <double*>p_shift,
                                     <double*>p_b, <double*>p_k, <double*>p_v, <double*>p_lo, <double*>p_hi, gate,
                                     R, D, n_threads)


def evonorm_s0_backward(cnp.ndarray dx not None, cnp.ndarray sdy not None, cnp.ndarray sdyf not None,
                        cnp.ndarray sdv not None, cnp.ndarray dy not None, cnp.ndarray x not None,
                        cnp.ndarray v not None, cnp.ndarray weight not None, cnp.ndarray gmean not None,
                        cnp.ndarray grstd not None, int num_groups, Py_ssize_t n_threads):
    """EvoNorm-S0's backward group by group: the gate sums per row, the group's coefficients, dx (contract)."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t N = dim(x, 0), C = dim(x, 1), S = dim(x, 2)
    cdef Py_ssize_t G = num_groups
    cdef bint f32 = is_float32(x)
    cdef void* p_dx = ptr(dx), *p_sdy = ptr(sdy), *p_sdyf = ptr(sdyf), *p_sdv = ptr(sdv), *p_dy = ptr(dy)
    cdef void* p_x = ptr(x), *p_v = ptr(v), *p_w = ptr(weight), *p_gm = ptr(gmean), *p_gr = ptr(grstd)
    with nogil:
        if f32:
            _evonorm_s0_backward(<float*>p_dx, <double*>p_sdy, <double*>p_sdyf, <double*>p_sdv, <float*>p_dy,
                                 <float*>p_x, <float*>p_v, <float*>p_w, <double*>p_gm, <double*>p_gr, N, C, G, S,
                                 n_threads)
        else:
            _evonorm_s0_backward(<double*>p_dx, <double*>p_sdy, <double*>p_sdyf, <double*>p_sdv, <double*>p_dy,
                                 <double*>p_x, <double*>p_v, <double*>p_w, <double*>p_gm, <double*>p_gr, N, C, G, S,
                                 n_threads)


# EvoNorm-B0's training forward (evonorm_b0.h): the rows' statistics (_row_stats: m2 into irstd), the channels'
# batch statistics and lo (blocks of channels), then the rows' irstd, hi and gate apply (runs of rows)
cdef void _evonorm_b0_forward(floating* y, floating* lo, floating* hi, double* imean, double* irstd, double* mean,
                              double* rstd, const floating* x, const floating* v, const floating* weight,
                              const floating* bias, double eps, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S,
                              int n_threads) noexcept nogil:
    cdef Py_ssize_t R = N * C, nb = min(C, max(n_threads, 1)), nt = min(R, max(n_threads, 1)), blk
    _row_stats(imean, irstd, x, 1, R, S, n_threads)
    if rstd == NULL:  # NOTE: lo a constant (eval: the running std, given), no batch statistics
        pass
    elif nb == 1:  # NOTE: as in _row_stats
        if floating is float:
            mgb0_combine_float(lo, imean, irstd, mean, rstd, N, C, S, 0, C, eps)
        else:
            mgb0_combine_double(lo, imean, irstd, mean, rstd, N, C, S, 0, C, eps)
    else:
        for blk in prange(nb, schedule='static', num_threads=n_threads):
            if floating is float:
                mgb0_combine_float(lo, imean, irstd, mean, rstd, N, C, S, blk * C // nb, (blk + 1) * C // nb,
                                   eps)
            else:
                mgb0_combine_double(lo, imean, irstd, mean, rstd, N, C, S, blk * C // nb, (blk + 1) * C // nb,
                                    eps)
    if nt == 1:
        if floating is float:
            mgb0_apply_float(y, lo, hi, irstd, x, v, weight, bias, C, S, 0, R, eps)
        else:
            mgb0_apply_double(y, lo, hi, irstd, x, v, weight, bias, C, S, 0, R, eps)
        return
    for blk in prange(nt, schedule='static', num_threads=n_threads):
        if floating is float:
            mgb0_apply_float(y, lo, hi, irstd, x, v, weight, bias, C, S, blk * R // nt, (blk + 1) * R // nt,
                             eps)
        else:
            mgb0_apply_double(y, lo, hi, irstd, x, v, weight, bias, C, S, blk * R // nt, (blk + 1) * R // nt,
                              eps)


def evonorm_b0_forward(cnp.ndarray y not None, cnp.ndarray lo not None, cnp.ndarray hi not None,
                       cnp.ndarray imean not None, cnp.ndarray irstd not None, cnp.ndarray mean not None,
                       cnp.ndarray rstd not None, cnp.ndarray x not None, cnp.ndarray v not None,
                       cnp.ndarray weight not None, cnp.ndarray bias not None, double eps, Py_ssize_t n_threads,
                       bint constant_lo=False):
    """EvoNorm-B0's training forward in one call: statistics, the batch's from the rows', the gate apply (contract);
    constant_lo: lo given (eval: the running std), mean and rstd not written."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t N = dim(x, 0), C = dim(x, 1), S = dim(x, 2)
    cdef bint f32 = is_float32(x)
    cdef void* p_y = ptr(y), *p_lo = ptr(lo), *p_hi = ptr(hi), *p_im = ptr(imean), *p_ir = ptr(irstd)
    cdef void* p_mean = NULL if constant_lo else ptr(mean), *p_rstd = NULL if constant_lo else ptr(rstd)
    cdef void* p_x = ptr(x), *p_v = ptr(v), *p_w = ptr(weight)
    cdef void* p_b = ptr(bias)
    with nogil:
        if f32:
            _evonorm_b0_forward(<float*>p_y, <float*>p_lo, <float*>p_hi, <double*>p_im, <double*>p_ir,
                                <double*>p_mean, <double*>p_rstd, <float*>p_x, <float*>p_v, <float*>p_w, <float*>p_b,
                                eps, N, C, S, n_threads)
        else:
            _evonorm_b0_forward(<double*>p_y, <double*>p_lo, <double*>p_hi, <double*>p_im, <double*>p_ir,
                                <double*>p_mean, <double*>p_rstd, <double*>p_x, <double*>p_v, <double*>p_w,
                                <double*>p_b, eps, N, C, S, n_threads)


# EvoNorm-B0's backward (evonorm_b0.h): the rows' gate sums (runs of rows, into a (5, N*C) scratch; the gate's
# quotients kept in dx), the channels' sums over n and dv, dweight, dbias, b2 (blocks of channels), then dx (runs of
# rows); mean and rstd NULL: lo a constant (eval), no b2
cdef int _evonorm_b0_backward(floating* dx, floating* dv, floating* dweight, floating* dbias, const floating* dy,
                              const floating* x, const floating* v, const floating* weight, const floating* lo,
                              const floating* hi, const double* imean, const double* irstd, const double* mean,
                              const double* rstd, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S,
                              int n_threads) noexcept nogil:
    cdef Py_ssize_t R = N * C, nb = min(C, max(n_threads, 1)), nt = min(R, max(n_threads, 1)), blk
    cdef double* s = <double*>malloc((5 * R + C) * sizeof(double))
    cdef double* b2
    if s == NULL:
        return -1
    b2 = s + 5 * R if rstd != NULL else NULL  # NOTE: rstd NULL: lo a constant (eval), no batch std term
    if nt == 1:  # NOTE: as in _row_stats
        if floating is float:
            mgb0_backward_sums_float(s, dx, dy, x, v, lo, hi, N, C, S, 0, R)
        else:
            mgb0_backward_sums_double(s, dx, dy, x, v, lo, hi, N, C, S, 0, R)
    else:
        for blk in prange(nt, schedule='static', num_threads=n_threads):
            if floating is float:
                mgb0_backward_sums_float(s, dx, dy, x, v, lo, hi, N, C, S, blk * R // nt, (blk + 1) * R // nt)
            else:
                mgb0_backward_sums_double(s, dx, dy, x, v, lo, hi, N, C, S, blk * R // nt, (blk + 1) * R // nt)
    if nb == 1:
        if floating is float:
            mgb0_backward_combine_float(dv, dweight, dbias, b2, s, weight, rstd, N, C, S, 0, C)
        else:
            mgb0_backward_combine_double(dv, dweight, dbias, b2, s, weight, rstd, N, C, S, 0, C)
    else:
        for blk in prange(nb, schedule='static', num_threads=n_threads):
            if floating is float:
                mgb0_backward_combine_float(dv, dweight, dbias, b2, s, weight, rstd, N, C, S, blk * C // nb,
                                            (blk + 1) * C // nb)
            else:
                mgb0_backward_combine_double(dv, dweight, dbias, b2, s, weight, rstd, N, C, S, blk * C // nb,
                                             (blk + 1) * C // nb)
    if nt == 1:
        if floating is float:
            mgb0_backward_apply_float(dx, dy, x, s + 3 * R, v, weight, lo, hi, imean, irstd, mean, b2, C, S, 0, R)
        else:
            mgb0_backward_apply_double(dx, dy, x, s + 3 * R, v, weight, lo, hi, imean, irstd, mean, b2, C, S, 0, R)
    else:
        for blk in prange(nt, schedule='static', num_threads=n_threads):
            if floating is float:
                mgb0_backward_apply_float(dx, dy, x, s + 3 * R, v, weight, lo, hi, imean, irstd, mean, b2, C, S,
                                          blk * R // nt, (blk + 1) * R // nt)
            else:
                mgb0_backward_apply_double(dx, dy, x, s + 3 * R, v, weight, lo, hi, imean, irstd, mean, b2, C, S,
                                           blk * R // nt, (blk + 1) * R // nt)
    free(s)
    return 0


def evonorm_b0_backward(cnp.ndarray dx not None, cnp.ndarray dv not None, cnp.ndarray dweight not None,
                        cnp.ndarray dbias not None, cnp.ndarray dy not None, cnp.ndarray x not None,
                        cnp.ndarray v not None, cnp.ndarray weight not None, cnp.ndarray lo not None,
                        cnp.ndarray hi not None, cnp.ndarray imean not None, cnp.ndarray irstd not None,
                        cnp.ndarray mean not None, cnp.ndarray rstd not None, Py_ssize_t n_threads,
                        bint constant_lo=False):
    """EvoNorm-B0's backward in one call: the gate sums per row, the channels' dv, dweight, dbias and
    coefficients, dx (contract); constant_lo: lo the running std (eval), mean and rstd not read."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t N = dim(x, 0), C = dim(x, 1), S = dim(x, 2)
    cdef bint f32 = is_float32(x)
    cdef void* p_dx = ptr(dx), *p_dv = ptr(dv), *p_dw = ptr(dweight), *p_db = ptr(dbias), *p_dy = ptr(dy)
    cdef void* p_x = ptr(x), *p_v = ptr(v), *p_w = ptr(weight), *p_lo = ptr(lo), *p_hi = ptr(hi)
    cdef void* p_im = ptr(imean), *p_ir = ptr(irstd), *p_mean = NULL, *p_rstd = NULL
    if not constant_lo:
        p_mean, p_rstd = ptr(mean), ptr(rstd)
    cdef int err
    with nogil:
        if f32:
            err = _evonorm_b0_backward(<float*>p_dx, <float*>p_dv, <float*>p_dw, <float*>p_db, <float*>p_dy,
                                       <float*>p_x, <float*>p_v, <float*>p_w, <float*>p_lo, <float*>p_hi,
                                       <double*>p_im, <double*>p_ir, <double*>p_mean, <double*>p_rstd, N, C, S,
                                       n_threads)
        else:
            err = _evonorm_b0_backward(<double*>p_dx, <double*>p_dv, <double*>p_dw, <double*>p_db, <double*>p_dy,
                                       <double*>p_x, <double*>p_v, <double*>p_w, <double*>p_lo, <double*>p_hi,
                                       <double*>p_im, <double*>p_ir, <double*>p_mean, <double*>p_rstd, N, C, S,
                                       n_threads)
    if err:
        raise MemoryError()
