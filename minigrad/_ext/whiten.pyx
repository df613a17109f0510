"""Decorrelated batch norm's kernels (the contract's zca_forward, zca_rows, sym_eigh, running_average_update) and
their passes: the parallel drivers over whiten.h.

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
  sym_eigh(lam, U, A, n_threads)                    A (G, n, n) float64 symmetric; lam (G, n), U (G, n, n) OUT;
                                                    False when the iteration does not converge (serial: n is small)
  running_average_update(running, new, momentum, scale, n_threads)   running = X((1 - momentum)*running
                                                    + momentum*(new*scale)) in float64, element by element (serial)
  group_cov(cov, x, shift, g, n_threads)            cov (G, g, g) float64 OUT; x (N, C, S); shift (C,) in x's dtype
  group_whiten(y, x, shift, M, bias, g, n_threads)  y, x (N, C, S); shift, bias (C,); M (G, g, g), all in x's dtype
      (zca_forward's two passes alone, for tests/test_decorrelated.py; not contract kernels)

The covariance runs over groups in parallel (each group's sum over n in order), the whitening over (group, sample)
pairs, the rows over samples, so results are bit-identical for any n_threads. The raw functions trust their
arguments (C-contiguous arrays of the dtypes above): call them through the contract (minigrad.kernels.kernels()).
"""
cimport numpy as cnp
from cython.parallel cimport prange

from minigrad._ext._arrays cimport dim, is_float32, ptr
from minigrad._ext._openmp cimport team_size

cnp.import_array()

cdef extern from *:
    """
    /* phases.h's other helpers are unused here */
    #pragma GCC diagnostic ignored "-Wunused-function"
    """

cdef extern from "phases.h" nogil:
    void mgp_channel_stats_float(double* mean, double* m2, const float* x, int center, Py_ssize_t N, Py_ssize_t C,
                                 Py_ssize_t S, Py_ssize_t c0, Py_ssize_t c1, double* K)
    void mgp_channel_stats_double(double* mean, double* m2, const double* x, int center, Py_ssize_t N,
                                  Py_ssize_t C, Py_ssize_t S, Py_ssize_t c0, Py_ssize_t c1, double* K)

cdef extern from "whiten.h" nogil:
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
    int mg_sym_eigh2(double* d0, double* U0, const double* A0, double* d1, double* U1, const double* A1,
                     double* work, Py_ssize_t n)
    int mg_zca_matrices_float(double* cov, double* lam, double* U, double* W, double* s, float* Mx, float* bx,
                              const double* d, const double* w, const double* b, Py_ssize_t gk0, Py_ssize_t gk1,
                              Py_ssize_t g, double m, double eps, double* work)
    int mg_zca_matrices_double(double* cov, double* lam, double* U, double* W, double* s, double* Mx, double* bx,
                               const double* d, const double* w, const double* b, Py_ssize_t gk0, Py_ssize_t gk1,
                               Py_ssize_t g, double m, double eps, double* work)

from libc.stdlib cimport calloc, free, malloc


def group_cov(cnp.ndarray cov not None, cnp.ndarray x not None, cnp.ndarray shift not None, Py_ssize_t g,
              Py_ssize_t n_threads):
    """cov[k] = sum over n, s of the centered products of group k's channels (whiten.h)."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t N = dim(x, 0), C = dim(x, 1), S = dim(x, 2), G = dim(cov, 0)
    cdef Py_ssize_t nb = min(G, n_threads), blk
    cdef bint f32 = is_float32(x)
    cdef void* pc = ptr(cov), *px = ptr(x), *ps = ptr(shift)
    cdef int err = 0
    for blk in prange(nb, nogil=True, schedule='static', num_threads=nb):
        if f32:
            err |= mg_group_cov_float(<double*>pc, <float*>px, <float*>ps, N, C, S, g, blk * G // nb,
                                      (blk + 1) * G // nb)
        else:
            err |= mg_group_cov_double(<double*>pc, <double*>px, <double*>ps, N, C, S, g, blk * G // nb,
                                       (blk + 1) * G // nb)
    if err:
        raise MemoryError()


def group_whiten(cnp.ndarray y not None, cnp.ndarray x not None, cnp.ndarray shift not None,
                 cnp.ndarray M not None, cnp.ndarray bias not None, Py_ssize_t g, Py_ssize_t n_threads):
    """y = M[k] (x - shift) + bias on group k's channels, per sample (whiten.h)."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t N = dim(x, 0), C = dim(x, 1), S = dim(x, 2), G = dim(M, 0)
    cdef Py_ssize_t P = N * G, nb = min(P, n_threads), blk
    cdef bint f32 = is_float32(x)
    cdef void* py = ptr(y), *px = ptr(x), *ps = ptr(shift), *pm = ptr(M), *pb = ptr(bias)
    cdef int err = 0
    for blk in prange(nb, nogil=True, schedule='static', num_threads=nb):
        if f32:
            err |= mg_group_whiten_float(<float*>py, <float*>px, <float*>ps, <float*>pm, <float*>pb, N, C, S, g,
                                         blk * P // nb, (blk + 1) * P // nb)
        else:
            err |= mg_group_whiten_double(<double*>py, <double*>px, <double*>ps, <double*>pm, <double*>pb, N, C,
                                          S, g, blk * P // nb, (blk + 1) * P // nb)
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
    cdef Py_ssize_t P = N * G, nbc = min(G, n_threads), nbw = min(P, n_threads), blk
    cdef Py_ssize_t nbs = min(C, n_threads)
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
        # the mean: batch norm's statistics phase (phases.h: channel_stats's code, blocks and bits), m2 discarded
        for blk in prange(nbs, schedule='static', num_threads=nbs):
            if f32:
                mgp_channel_stats_float(pmean, work, <float*>px, 1, N, C, S, blk * C // nbs, (blk + 1) * C // nbs,
                                        work + C)
            else:
                mgp_channel_stats_double(pmean, work, <double*>px, 1, N, C, S, blk * C // nbs,
                                         (blk + 1) * C // nbs, work + C)
        for c in range(C, G * g):
            d[c] = 0.0
        for c in range(C):
            if f32:
                (<float*>sh)[c] = <float>pmean[c]
                d[c] = pmean[c] - <double>(<float*>sh)[c]
            else:
                (<double*>sh)[c] = pmean[c]
                d[c] = 0.0
        for blk in prange(nbc, schedule='static', num_threads=nbc):
            if f32:
                err |= mg_group_cov_float(pcov, <float*>px, <float*>sh, N, C, S, g, blk * G // nbc,
                                          (blk + 1) * G // nbc)
            else:
                err |= mg_group_cov_double(pcov, <double*>px, <double*>sh, N, C, S, g, blk * G // nbc,
                                           (blk + 1) * G // nbc)
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
                for blk in prange(nbw, schedule='static', num_threads=nbw):
                    if f32:
                        err |= mg_group_whiten_float(<float*>py, <float*>px, <float*>sh, <float*>Mx, <float*>bx,
                                                     N, C, S, g, blk * P // nbw, (blk + 1) * P // nbw)
                    else:
                        err |= mg_group_whiten_double(<double*>py, <double*>px, <double*>sh, <double*>Mx,
                                                      <double*>bx, N, C, S, g, blk * P // nbw,
                                                      (blk + 1) * P // nbw)
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


def running_average_update(cnp.ndarray buf not None, cnp.ndarray new not None, double f, double scale,
                           Py_ssize_t n_threads):
    """buf = X((1 - f)*buf + f*(new*scale)) in float64, element by element; buf float32 or float64 and new float64,
    both C-contiguous of one size (ValueError otherwise). Serial: n_threads is unused."""
    n_threads = team_size(n_threads)  # NOTE: clamped as every wrapper's (tests/test_reliability.py)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(buf), i
    if (cnp.PyArray_SIZE(new) != n or not cnp.PyArray_IS_C_CONTIGUOUS(buf) or not cnp.PyArray_IS_C_CONTIGUOUS(new)
            or cnp.PyArray_TYPE(new) != cnp.NPY_FLOAT64 or not cnp.PyArray_ISWRITEABLE(buf)):
        raise ValueError("running_average_update: running (float32 or float64) and new (float64) must be "
                         "C-contiguous of one size, running writeable")
    cdef double* pn = <double*>ptr(new)
    cdef float* pf
    cdef double* pd
    if cnp.PyArray_TYPE(buf) == cnp.NPY_FLOAT32:
        pf = <float*>ptr(buf)
        for i in range(n):
            pf[i] = <float>((1.0 - f) * <double>pf[i] + f * (pn[i] * scale))
    elif cnp.PyArray_TYPE(buf) == cnp.NPY_FLOAT64:
        pd = <double*>ptr(buf)
        for i in range(n):
            pd[i] = (1.0 - f) * pd[i] + f * (pn[i] * scale)
    else:
        raise ValueError("running_average_update: running must be float32 or float64")
