/* EvoNorm-B0's training forward in one call (contract: evonorm_b0_forward; math: minigrad/kernels/reference/phases.py).
     x, y: (N, C, S), the N*C rows r = (n, c) of S values
   Three phases, each a loop that phases.pyx splits between threads over disjoint writes:
     1. statistics, one pass over x: each row's mean and m2 (mgp_rows_stats_T: row_stats's code and bits, shifted
        sums in double, so float32 data with a large mean or a tiny variance keep their statistics);
     2. per channel (mgb0_combine_T), no pass over x: the batch statistics combined from the rows' (Chan et al.):
        mean = (sum over n of the row means)/N, m2 = sum of the rows' m2 + S*sum((row mean - mean)^2), each sum in
        the order NumPy's sums over N took in the functional this replaces (in order of n; pairwise for C = 1);
        rstd = 1/sqrt(max(m2/(N*S), 0) + eps) (coefficients.rstd's operations), lo = X(1/rstd) into its rows;
     3. apply, one pass over runs of rows (mgb0_apply_T): each row's irstd, likewise over S, and hi = X(1/irstd)
        (lo and hi: the gate's two standard deviations, kept for the backward), then y = x/max(lo, v[c]*x + hi)*
        weight[c] + bias[c] (mgp_row_apply_gate_T).
   Every output has the bits of the phases and NumPy code it replaces, for any thread count. Processing channel by
   channel instead (each channel's N rows kept in cache between the statistics and the apply, or blocks of them)
   measured no faster: docs/perf/norm-family.md, "EvoNorm-B0's forward in one call, session 34".
   Included by phases.pyx (through phases.pxd) after Python.h (Py_ssize_t). */
#ifndef MG_EVONORM_B0_H
#define MG_EVONORM_B0_H
#include "phases.h"

/* 1/sqrt(max(m2/count, 0) + eps): NaN stays NaN; inf where it is 0 and eps = 0 (coefficients.rstd) */
MGP_INLINE double mgb0_rstd(double m2, double count, double eps) {
    const double var = m2 / count;
    return 1.0 / sqrt((var < 0 ? 0.0 : var) + eps);
}

/* NumPy's sum of n values (pairwise_sum: 8 accumulators up to 128 values, halves beyond), the order of its add.reduce
   over a contiguous axis: what the functional's sums over N took for C = 1; of the (a[i] - mu)^2 where sq */
static double mgb0_pairwise(const double* a, Py_ssize_t n, int sq, double mu) {
#define MGB0_TERM(i) (sq ? (a[i] - mu) * (a[i] - mu) : a[i])
    Py_ssize_t i;
    if (n < 8) {
        double res = 0.0;
        for (i = 0; i < n; i++) res += MGB0_TERM(i);
        return res;
    }
    if (n <= 128) {
        double r[8], res;
        for (i = 0; i < 8; i++) r[i] = MGB0_TERM(i);
        for (i = 8; i < n - (n % 8); i += 8)
            for (Py_ssize_t j = 0; j < 8; j++) r[j] += MGB0_TERM(i + j);
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += MGB0_TERM(i);
        return res;
    }
#undef MGB0_TERM
    Py_ssize_t n2 = n / 2;
    n2 -= n2 % 8;
    return mgb0_pairwise(a, n2, sq, mu) + mgb0_pairwise(a + n2, n - n2, sq, mu);
}

#define MGB0_CHANNEL(T)                                                                                      \
/* channel c's batch statistics from its rows' (imean, m2 in irstd) and its rows' lo */                      \
MGP_INLINE void mgb0_channel_##T(T* restrict lo, const double* restrict imean, const double* restrict irstd,    \
                                 double* restrict mean, double* restrict rstd, Py_ssize_t N, Py_ssize_t C,     \
                                 Py_ssize_t S, Py_ssize_t c, double eps) {                                   \
    double t0 = 0, t1 = 0, q = 0, mu;                                                                        \
    Py_ssize_t n;                                                                                            \
    if (C == 1) {  /* NOTE: the rows' values contiguous: NumPy's pairwise order */                           \
        t0 = mgb0_pairwise(imean, N, 0, 0);                                                                  \
        t1 = mgb0_pairwise(irstd, N, 0, 0);                                                                  \
        mu = t0 / (double)N;                                                                                 \
        q = mgb0_pairwise(imean, N, 1, mu);                                                                  \
    } else {  /* NOTE: in order of n, as NumPy reduces an outer axis */                                      \
        for (n = 0; n < N; n++) {                                                                            \
            t0 = n ? t0 + imean[n * C + c] : imean[n * C + c];                                               \
            t1 = n ? t1 + irstd[n * C + c] : irstd[n * C + c];                                               \
        }                                                                                                    \
        mu = t0 / (double)N;                                                                                 \
        for (n = 0; n < N; n++) {                                                                            \
            const double d = imean[n * C + c] - mu;                                                          \
            q = n ? q + d * d : d * d;                                                                       \
        }                                                                                                    \
    }                                                                                                        \
    mean[c] = mu;                                                                                            \
    rstd[c] = mgb0_rstd(t1 + (double)S * q, (double)(N * S), eps);                                           \
    const T l = (T)(1.0 / rstd[c]);                                                                          \
    for (n = 0; n < N; n++) lo[n * C + c] = l;                                                               \
}                                                                                                            \
/* channels [c0, c1) */                                                                                      \
static void mgb0_combine_##T(T* lo, double* imean, double* irstd, double* mean, double* rstd, Py_ssize_t N,  \
                             Py_ssize_t C, Py_ssize_t S, Py_ssize_t c0, Py_ssize_t c1, double eps) {         \
    for (Py_ssize_t c = c0; c < c1; c++) mgb0_channel_##T(lo, imean, irstd, mean, rstd, N, C, S, c, eps);      \
}                                                                                                            \
/* rows [r0, r1): irstd from the m2 there, hi = X(1/irstd) (a loop GCC vectorizes: sqrt and division round  \
   correctly in any width, so these are coefficients.rstd's bits in NumPy) */                               \
MG_CLONES static void mgb0_rows_##T(T* restrict hi, double* restrict irstd, Py_ssize_t S, Py_ssize_t r0,       \
                                    Py_ssize_t r1, double eps) {                                             \
    for (Py_ssize_t r = r0; r < r1; r++) {                                                                   \
        irstd[r] = mgb0_rstd(irstd[r], (double)S, eps);                                                      \
        hi[r] = (T)(1.0 / irstd[r]);                                                                         \
    }                                                                                                        \
}                                                                                                            \
/* rows [r0, r1): their irstd and hi (mgb0_rows_T), then y = x/max(lo, v[c]*x + hi)*w[c] + b[c], c = r % C */  \
static void mgb0_apply_##T(T* y, const T* lo, T* hi, double* irstd, const T* x, const T* v, const T* w,        \
                           const T* b, Py_ssize_t C, Py_ssize_t S, Py_ssize_t r0, Py_ssize_t r1, double eps) { \
    mgb0_rows_##T(hi, irstd, S, r0, r1, eps);                                                                \
    for (Py_ssize_t r = r0; r < r1; r++) {                                                                   \
        const Py_ssize_t c = r % C;                                                                          \
        mgp_row_apply_gate_##T(y + r * S, x + r * S, S, 1, v[c], lo[r], hi[r], w[c], b[c]);                  \
    }                                                                                                        \
}
MGB0_CHANNEL(float)
MGB0_CHANNEL(double)
#endif
