"""Decorrelated batch norm's kernels (the contract's zca_forward, zca_rows, sym_eigh, running_average_update,
zca_running_update) and their passes: the parallel drivers over whiten.h.

Signatures and checks: minigrad/kernels/contract.py (each function here takes the contract's arguments, then
n_threads); the math: minigrad/kernels/reference/whiten.py; the wrappers that hand a non-converging eigensolver to
LAPACK: minigrad/kernels/cython.py. Legend: x (N, C, S), G = ceil(C / g) groups of g channels.

  zca_forward(y, cov, lam, U, W, s, shift, dshift, mean, x, weight, bias, g, eps, n_threads)   the training forward
      in one call: mean: channel_stats's (phases.h, its bits); shift = X(mean), d = mean - shift (dshift, 0 past C);
      group_cov, then per pair of groups whiten.h's mg_zca_matrices (cov the biased covariance, lam/U its
      eigendecomposition with eps, W = (cov + eps I)^(-1/2), s = sqrt(max(lam, eps))), then group_whiten with
      M = X(diag(w) W) and bias X(b - diag(w) W d); False (y not written) when the eigensolver does not converge (non-finite input)
  zca_rows(B, dy, x, shift, g, n_threads)           B (N, G, 2g+1, S) OUT: rows [dY; x - shift; 1] per group, zeros
                                                    past C
  zca_backward_p1(P, sdy, dy, x, shift, g, n_threads)   P (G, g, g), sdy (G, g) float64 OUT: sum dY u^T and sum dY
                                                    per group, u = X(x - shift), zeros past C
  zca_backward_dx(dx, dy, x, shift, F, g, n_threads)    dx (N, C, S) OUT; F (G, g, 2g+1): dx = F[k] [dY; u; 1]
  sym_eigh(lam, U, A, n_threads)                    A (G, n, n) float64 symmetric; lam (G, n), U (G, n, n) OUT;
                                                    False when the iteration does not converge (serial: n is small)
  running_average_update(running, new, momentum, scale, n_threads)   running = X((1 - momentum)*running
                                                    + momentum*(new*scale)) in float64, element by element (serial)
  zca_running_update(running_mean, running_cov, running_whitening, mean, cov, whitening, momentum, scale, g,
                     n_threads)                     the three in one call (serial), the padding's the identity
  group_cov(cov, x, shift, g, n_threads)            cov (G, g, g) float64 OUT; x (N, C, S); shift (C,) in x's dtype
  group_whiten(y, x, shift, M, bias, g, n_threads)  y, x (N, C, S); shift, bias (C,); M (G, g, g), all in x's dtype
      (zca_forward's two passes alone, for tests/test_decorrelated.py; not contract kernels)

The covariance and the backward's sums run over groups in parallel (each group's sum over n in order), the
whitening and dx over (group, sample) pairs, the rows over samples, so results are bit-identical for any n_threads.
The raw functions trust their arguments (C-contiguous arrays of the dtypes above): call them through the contract
(minigrad.kernels.kernels()).
"""
cimport numpy as cnp
from cython.parallel cimport prange

from minigrad._ext._arrays cimport dim, is_float32, ptr
from minigrad._ext._openmp cimport team_size

cnp.import_array()

cdef extern from *:
    """
    /* norm_simd.h's helpers are unused here */
    #pragma GCC diagnostic ignored "-Wunused-function"
    """

cdef extern from "whiten.h" nogil:
    void mg_channel_mean_float(double* mean, double* sa, const float* x, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S,
                               Py_ssize_t c0, Py_ssize_t c1)
    void mg_channel_mean_double(double* mean, double* sa, const double* x, Py_ssize_t N, Py_ssize_t C,
                                Py_ssize_t S, Py_ssize_t c0, Py_ssize_t c1)
    int mg_group_cov_float(double* cov, const float* x, const float* shift, Py_ssize_t N, Py_ssize_t C,
                           Py_ssize_t S, Py_ssize_t g, Py_ssize_t k0, Py_ssize_t k1)
    int mg_group_cov_double(double* cov, const double* x, const double* shift, Py_ssize_t N, Py_ssize_t C,
                            Py_ssize_t S, Py_ssize_t g, Py_ssize_t k0, Py_ssize_t k1)
    int mg_group_whiten_float(float* y, const float* x, const float* shift, const float* M, const float* bias,
                              Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, Py_ssize_t g, Py_ssize_t p0, Py_ssize_t p1)
    int mg_group_whiten_double(double* y, const double* x, const double* shift, const double* M,
                               const double* bias, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, Py_ssize_t g,
                               Py_ssize_t p0, Py_ssize_t p1)
    void mg_zca_rows_float(float* B, const float* dy, const float* x, const float* shift, Py_ssize_t N,
                           Py_ssize_t C, Py_ssize_t S, Py_ssize_t g, Py_ssize_t n0, Py_ssize_t n1)
    void mg_zca_rows_double(double* B, const double* dy, const double* x, const double* shift, Py_ssize_t N,
                            Py_ssize_t C, Py_ssize_t S, Py_ssize_t g, Py_ssize_t n0, Py_ssize_t n1)
    void mg_running_average_float(float* run, const double* new, Py_ssize_t n, double f, double scale)
    void mg_running_average_double(double* run, const double* new, Py_ssize_t n, double f, double scale)
    void mg_zca_running_update_float(float* rmean, float* rcov, float* rW, const double* mean, const double* cov,
                                     const double* W, Py_ssize_t C, Py_ssize_t G, Py_ssize_t g, double f,
                                     double scale)
    void mg_zca_running_update_double(double* rmean, double* rcov, double* rW, const double* mean,
                                      const double* cov, const double* W, Py_ssize_t C, Py_ssize_t G, Py_ssize_t g,
                                      double f, double scale)
    int mg_zca_backward_p1_float(double* P, double* sdy, const float* dy, const float* x, const float* shift,
                                 Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, Py_ssize_t g, Py_ssize_t k0, Py_ssize_t k1)
    int mg_zca_backward_p1_double(double* P, double* sdy, const double* dy, const double* x, const double* shift,
                                  Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, Py_ssize_t g, Py_ssize_t k0,
                                  Py_ssize_t k1)
    int mg_zca_backward_dx_float(float* dx, const float* dy, const float* x, const float* shift, const float* F,
                                 Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, Py_ssize_t g, Py_ssize_t p0, Py_ssize_t p1)
    int mg_zca_backward_dx_double(double* dx, const double* dy, const double* x, const double* shift,
                                  const double* F, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, Py_ssize_t g,
                                  Py_ssize_t p0, Py_ssize_t p1)
    int mg_whiten_avx2(int on)
    int mg_sym_eigh2(double* d0, double* U0, const double* A0, double* d1, double* U1, const double* A1,
                     double* work, Py_ssize_t n)
    int mg_zca_matrices_float(double* cov, double* lam, double* U, double* W, double* s, float* Mx, float* bx,
                              const double* d, const double* w, const double* b, Py_ssize_t gk0, Py_ssize_t gk1,
                              Py_ssize_t g, double m, double eps, double* work)
    int mg_zca_matrices_double(double* cov, double* lam, double* U, double* W, double* s, double* Mx, double* bx,
                               const double* d, const double* w, const double* b, Py_ssize_t gk0, Py_ssize_t gk1,
                               Py_ssize_t g, double m, double eps, double* work)

from libc.stdlib cimport calloc, free, malloc


# The passes over one block of their parallel loop ([b0, b1): channels for the mean, groups for the covariance,
# (group, sample) pairs for the whitening), in x's dtype. NOTE: the drivers call them directly on one thread: an
# OpenMP region of one thread costs about 0.4 us, three of them a tenth of zca_forward's Python-side overhead
cdef void _mean_block(bint f32, double* mean, double* work, void* x, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S,
                      Py_ssize_t b0, Py_ssize_t b1) noexcept nogil:
    # channel_stats's mean (whiten.h: phases.h's blocks and bits), its sums in work[:C]
    if f32:
        mg_channel_mean_float(mean, work, <float*>x, N, C, S, b0, b1)
    else:
        mg_channel_mean_double(mean, work, <double*>x, N, C, S, b0, b1)


cdef int _cov_block(bint f32, double* cov, void* x, void* shift, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S,
                    Py_ssize_t g, Py_ssize_t b0, Py_ssize_t b1) noexcept nogil:
    if f32:
        return mg_group_cov_float(cov, <float*>x, <float*>shift, N, C, S, g, b0, b1)
    return mg_group_cov_double(cov, <double*>x, <double*>shift, N, C, S, g, b0, b1)


cdef int _whiten_block(bint f32, void* y, void* x, void* shift, void* M, void* bias, Py_ssize_t N, Py_ssize_t C,
                       Py_ssize_t S, Py_ssize_t g, Py_ssize_t b0, Py_ssize_t b1) noexcept nogil:
    if f32:
        return mg_group_whiten_float(<float*>y, <float*>x, <float*>shift, <float*>M, <float*>bias, N, C, S, g, b0,
                                     b1)
    return mg_group_whiten_double(<double*>y, <double*>x, <double*>shift, <double*>M, <double*>bias, N, C, S, g,
                                  b0, b1)


cdef int _cov(bint f32, double* cov, void* x, void* shift, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, Py_ssize_t g,
              Py_ssize_t G, Py_ssize_t n_threads) noexcept nogil:
    """The covariance pass over groups in parallel (each group's sum over n in order); -1 when out of memory."""
    cdef Py_ssize_t nb = min(G, n_threads), blk
    cdef int err = 0
    if nb == 1:
        return _cov_block(f32, cov, x, shift, N, C, S, g, 0, G)
    for blk in prange(nb, schedule='static', num_threads=nb):
        err |= _cov_block(f32, cov, x, shift, N, C, S, g, blk * G // nb, (blk + 1) * G // nb)
    return err


cdef int _whiten(bint f32, void* y, void* x, void* shift, void* M, void* bias, Py_ssize_t N, Py_ssize_t C,
                 Py_ssize_t S, Py_ssize_t g, Py_ssize_t G, Py_ssize_t n_threads) noexcept nogil:
    """The whitening pass over (group, sample) pairs in parallel; -1 when out of memory."""
    cdef Py_ssize_t P = N * G, nb = min(N * G, n_threads), blk
    cdef int err = 0
    if nb == 1:
        return _whiten_block(f32, y, x, shift, M, bias, N, C, S, g, 0, P)
    for blk in prange(nb, schedule='static', num_threads=nb):
        err |= _whiten_block(f32, y, x, shift, M, bias, N, C, S, g, blk * P // nb, (blk + 1) * P // nb)
    return err


def _passes_avx2(int on=-1):
    """Tests only: whether the covariance and whitening passes take whiten.h's AVX2 versions (the default on CPUs
    with AVX2 and FMA but no AVX-512) or the clones; on = 0 or 1 sets it (1 only where the CPU has AVX2 and FMA).
    Returns the former setting."""
    return bool(mg_whiten_avx2(on))


def group_cov(cnp.ndarray cov not None, cnp.ndarray x not None, cnp.ndarray shift not None, Py_ssize_t g,
              Py_ssize_t n_threads):
    """cov[k] = sum over n, s of the centered products of group k's channels (whiten.h)."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t N = dim(x, 0), C = dim(x, 1), S = dim(x, 2), G = dim(cov, 0)
    cdef bint f32 = is_float32(x)
    cdef double* pc = <double*>ptr(cov)
    cdef void* px = ptr(x)
    cdef void* ps = ptr(shift)
    cdef int err
    with nogil:
        err = _cov(f32, pc, px, ps, N, C, S, g, G, n_threads)
    if err:
        raise MemoryError()


def group_whiten(cnp.ndarray y not None, cnp.ndarray x not None, cnp.ndarray shift not None,
                 cnp.ndarray M not None, cnp.ndarray bias not None, Py_ssize_t g, Py_ssize_t n_threads):
    """y = M[k] (x - shift) + bias on group k's channels, per sample (whiten.h)."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t N = dim(x, 0), C = dim(x, 1), S = dim(x, 2), G = dim(M, 0)
    cdef bint f32 = is_float32(x)
    cdef void* py = ptr(y)
    cdef void* px = ptr(x)
    cdef void* ps = ptr(shift)
    cdef void* pm = ptr(M)
    cdef void* pb = ptr(bias)
    cdef int err
    with nogil:
        err = _whiten(f32, py, px, ps, pm, pb, N, C, S, g, G, n_threads)
    if err:
        raise MemoryError()


def sym_eigh(cnp.ndarray lam not None, cnp.ndarray U not None, cnp.ndarray A not None, Py_ssize_t n_threads):
    """lam[k], U[k] = the ascending eigenvalues and eigenvectors (columns) of A[k]; False when the iteration did not
    converge for some matrix (non-finite input; the caller falls back to LAPACK). Serial (n_threads is unused), two
    matrices at a time (their QL iterations interleaved: whiten.h's mg_sym_eigh2)."""
    n_threads = team_size(n_threads)  # NOTE: clamped as every wrapper's (tests/test_reliability.py)
    cdef Py_ssize_t G = dim(A, 0), n = dim(A, 1), k
    cdef double* pl = <double*>ptr(lam)
    cdef double* pu = <double*>ptr(U)
    cdef double* pa = <double*>ptr(A)
    cdef double* work = <double*>malloc((3 * n * n + 2 * n) * sizeof(double))
    cdef int err = 0
    if work == NULL:
        raise MemoryError()
    with nogil:
        for k in range(0, G, 2):
            err |= mg_sym_eigh2(pl + k * n, pu + k * n * n, pa + k * n * n, pl + (k + 1) * n if k + 1 < G else NULL,
                                pu + (k + 1) * n * n, pa + (k + 1) * n * n, work, n)
    free(work)
    return err == 0


def zca_forward(cnp.ndarray y not None, cnp.ndarray cov not None, cnp.ndarray lam not None, cnp.ndarray U not None,
                cnp.ndarray W not None, cnp.ndarray s not None, cnp.ndarray shift not None, cnp.ndarray dshift not None,
                cnp.ndarray mean not None, cnp.ndarray x not None, cnp.ndarray weight not None,
                cnp.ndarray bias not None, Py_ssize_t g, double eps, Py_ssize_t n_threads):
    """Decorrelated batch norm's training forward (the module docstring's zca_forward)."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t N = dim(x, 0), C = dim(x, 1), S = dim(x, 2), G = dim(cov, 0), k, i, c, gk, gk1
    cdef Py_ssize_t nbs = min(C, n_threads), blk
    cdef bint f32 = is_float32(x)
    cdef double m = <double>(N * S)
    cdef double* pmean = <double*>ptr(mean)
    cdef double* pw = <double*>ptr(weight)
    cdef double* pb = <double*>ptr(bias)
    cdef double* pcov = <double*>ptr(cov)
    cdef double* plam = <double*>ptr(lam)
    cdef double* pU = <double*>ptr(U)
    cdef double* pW = <double*>ptr(W)
    cdef double* ps = <double*>ptr(s)
    cdef void* px = ptr(x), *py = ptr(y)
    cdef size_t xs = 4 if f32 else 8
    # shift (C,), bias' (C,), M (G*g*g) in X; d (G*g); work (5 g*g + 2 g: two groups' matrices, and the mean's)
    cdef char* sh = <char*>ptr(shift)
    cdef char* bx = <char*>malloc(C * xs)
    cdef char* Mx = <char*>malloc(G * g * g * xs)
    cdef double* d = <double*>ptr(dshift)
    cdef double* work = <double*>malloc((5 * g * g + 2 * g + 2 * C) * sizeof(double))
    cdef int err = 0, bad = 0
    if bx == NULL or Mx == NULL or work == NULL:
        free(bx); free(Mx); free(work)
        raise MemoryError()
    with nogil:
        # the mean: batch norm's statistics phase's (channel_stats's bits), without its sums of squares
        if nbs == 1:
            _mean_block(f32, pmean, work, px, N, C, S, 0, C)
        else:
            for blk in prange(nbs, schedule='static', num_threads=nbs):
                _mean_block(f32, pmean, work, px, N, C, S, blk * C // nbs, (blk + 1) * C // nbs)
        for c in range(C, G * g):
            d[c] = 0.0
        for c in range(C):
            if f32:
                (<float*>sh)[c] = <float>pmean[c]
                d[c] = pmean[c] - <double>(<float*>sh)[c]
            else:
                (<double*>sh)[c] = pmean[c]
                d[c] = 0.0
        err = _cov(f32, pcov, px, sh, N, C, S, g, G, n_threads)
        if not err:
            for k in range(0, G, 2):  # two groups at a time: their eigensolvers interleaved (whiten.h)
                gk = min(g, C - k * g)
                gk1 = min(g, C - (k + 1) * g) if k + 1 < G else 0
                if f32:
                    bad |= mg_zca_matrices_float(pcov + k * g * g, plam + k * g, pU + k * g * g, pW + k * g * g,
                                                 ps + k * g, <float*>Mx + k * g * g, <float*>bx + k * g, d + k * g,
                                                 pw + k * g, pb + k * g, gk, gk1, g, m, eps, work)
                else:
                    bad |= mg_zca_matrices_double(pcov + k * g * g, plam + k * g, pU + k * g * g, pW + k * g * g,
                                                  ps + k * g, <double*>Mx + k * g * g, <double*>bx + k * g,
                                                  d + k * g, pw + k * g, pb + k * g, gk, gk1, g, m, eps, work)
            if not bad:
                err = _whiten(f32, py, px, sh, Mx, bx, N, C, S, g, G, n_threads)
    free(bx); free(Mx); free(work)
    if err:
        raise MemoryError()
    return not bad


def zca_rows(cnp.ndarray B not None, cnp.ndarray dy not None, cnp.ndarray x not None, cnp.ndarray shift not None,
             Py_ssize_t g, Py_ssize_t n_threads):
    """The backward's rows [dY; x - shift; 1] per group (whiten.h), over samples in parallel."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t N = dim(x, 0), C = dim(x, 1), S = dim(x, 2), nb = min(N, n_threads), blk
    cdef bint f32 = is_float32(x)
    cdef void* pB = ptr(B), *pd = ptr(dy), *px = ptr(x), *ps = ptr(shift)
    for blk in prange(nb, nogil=True, schedule='static', num_threads=nb):
        if f32:
            mg_zca_rows_float(<float*>pB, <float*>pd, <float*>px, <float*>ps, N, C, S, g, blk * N // nb,
                              (blk + 1) * N // nb)
        else:
            mg_zca_rows_double(<double*>pB, <double*>pd, <double*>px, <double*>ps, N, C, S, g, blk * N // nb,
                               (blk + 1) * N // nb)


cdef int _p1_block(bint f32, double* P, double* sdy, void* dy, void* x, void* shift, Py_ssize_t N, Py_ssize_t C,
                   Py_ssize_t S, Py_ssize_t g, Py_ssize_t b0, Py_ssize_t b1) noexcept nogil:
    if f32:
        return mg_zca_backward_p1_float(P, sdy, <float*>dy, <float*>x, <float*>shift, N, C, S, g, b0, b1)
    return mg_zca_backward_p1_double(P, sdy, <double*>dy, <double*>x, <double*>shift, N, C, S, g, b0, b1)


cdef int _dx_block(bint f32, void* dx, void* dy, void* x, void* shift, void* F, Py_ssize_t N, Py_ssize_t C,
                   Py_ssize_t S, Py_ssize_t g, Py_ssize_t b0, Py_ssize_t b1) noexcept nogil:
    if f32:
        return mg_zca_backward_dx_float(<float*>dx, <float*>dy, <float*>x, <float*>shift, <float*>F, N, C, S, g, b0,
                                        b1)
    return mg_zca_backward_dx_double(<double*>dx, <double*>dy, <double*>x, <double*>shift, <double*>F, N, C, S, g,
                                     b0, b1)


def zca_backward_p1(cnp.ndarray P not None, cnp.ndarray sdy not None, cnp.ndarray dy not None,
                    cnp.ndarray x not None, cnp.ndarray shift not None, Py_ssize_t g, Py_ssize_t n_threads):
    """The backward's sums P[k] = sum dY u^T and sdy[k] = sum dY per group (whiten.h), over groups in parallel (each
    group's sum over n in order: the same bits for any n_threads)."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t N = dim(x, 0), C = dim(x, 1), S = dim(x, 2), G = dim(P, 0), nb = min(G, n_threads), blk
    cdef bint f32 = is_float32(x)
    cdef double* pP = <double*>ptr(P)
    cdef double* psdy = <double*>ptr(sdy)
    cdef void* pd = ptr(dy), *px = ptr(x), *ps = ptr(shift)
    cdef int err = 0
    with nogil:
        if nb == 1:
            err = _p1_block(f32, pP, psdy, pd, px, ps, N, C, S, g, 0, G)
        else:
            for blk in prange(nb, schedule='static', num_threads=nb):
                err |= _p1_block(f32, pP, psdy, pd, px, ps, N, C, S, g, blk * G // nb, (blk + 1) * G // nb)
    if err:
        raise MemoryError()


def zca_backward_dx(cnp.ndarray dx not None, cnp.ndarray dy not None, cnp.ndarray x not None,
                    cnp.ndarray shift not None, cnp.ndarray F not None, Py_ssize_t g, Py_ssize_t n_threads):
    """dx = F[k] [dY; u; 1] per group (whiten.h), over (group, sample) pairs in parallel (disjoint writes)."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t N = dim(x, 0), C = dim(x, 1), S = dim(x, 2), G = dim(F, 0), P = N * G
    cdef Py_ssize_t nb = min(P, n_threads), blk
    cdef bint f32 = is_float32(x)
    cdef void* pdx = ptr(dx), *pd = ptr(dy), *px = ptr(x), *ps = ptr(shift), *pF = ptr(F)
    cdef int err = 0
    with nogil:
        if nb == 1:
            err = _dx_block(f32, pdx, pd, px, ps, pF, N, C, S, g, 0, P)
        else:
            for blk in prange(nb, schedule='static', num_threads=nb):
                err |= _dx_block(f32, pdx, pd, px, ps, pF, N, C, S, g, blk * P // nb, (blk + 1) * P // nb)
    if err:
        raise MemoryError()


def running_average_update(cnp.ndarray buf not None, cnp.ndarray new not None, double f, double scale,
                           Py_ssize_t n_threads):
    """buf = X((1 - f)*buf + f*(new*scale)) in float64, element by element (whiten.h); buf float32 or float64 and new
    float64, both C-contiguous of one size (ValueError otherwise). Serial: n_threads is unused."""
    n_threads = team_size(n_threads)  # NOTE: clamped as every wrapper's (tests/test_reliability.py)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(buf)
    if (cnp.PyArray_SIZE(new) != n or not cnp.PyArray_IS_C_CONTIGUOUS(buf) or not cnp.PyArray_IS_C_CONTIGUOUS(new)
            or cnp.PyArray_TYPE(new) != cnp.NPY_FLOAT64 or not cnp.PyArray_ISWRITEABLE(buf)):
        raise ValueError("running_average_update: running (float32 or float64) and new (float64) must be "
                         "C-contiguous of one size, running writeable")
    if cnp.PyArray_TYPE(buf) == cnp.NPY_FLOAT32:
        mg_running_average_float(<float*>ptr(buf), <double*>ptr(new), n, f, scale)
    elif cnp.PyArray_TYPE(buf) == cnp.NPY_FLOAT64:
        mg_running_average_double(<double*>ptr(buf), <double*>ptr(new), n, f, scale)
    else:
        raise ValueError("running_average_update: running must be float32 or float64")


def zca_running_update(cnp.ndarray running_mean not None, cnp.ndarray running_cov not None,
                       cnp.ndarray running_whitening not None, cnp.ndarray mean not None, cnp.ndarray cov not None,
                       cnp.ndarray whitening not None, double momentum, double scale, Py_ssize_t g,
                       Py_ssize_t n_threads):
    """The three running averages of decorrelated batch norm in one call (whiten.h's mg_zca_running_update: the
    contract's zca_running_update). Serial: n_threads is unused."""
    n_threads = team_size(n_threads)  # NOTE: clamped as every wrapper's (tests/test_reliability.py)
    cdef Py_ssize_t C = dim(running_mean, 0), G = dim(running_cov, 0)
    if is_float32(running_mean):
        mg_zca_running_update_float(<float*>ptr(running_mean), <float*>ptr(running_cov),
                                    <float*>ptr(running_whitening), <double*>ptr(mean), <double*>ptr(cov),
                                    <double*>ptr(whitening), C, G, g, momentum, scale)
    else:
        mg_zca_running_update_double(<double*>ptr(running_mean), <double*>ptr(running_cov),
                                     <double*>ptr(running_whitening), <double*>ptr(mean), <double*>ptr(cov),
                                     <double*>ptr(whitening), C, G, g, momentum, scale)
