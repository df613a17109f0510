/* EvoNorm-B0's training forward and backward, each in one call (contract: evonorm_b0_forward, evonorm_b0_backward;
   math: minigrad/kernels/reference/phases.py).
     x, y, dy, dx: (N, C, S), the N*C rows r = (n, c) of S values
   The forward's three phases, each a loop that phases.pyx splits between threads over disjoint writes:
     1. statistics, one pass over x: each row's mean and m2 (mgp_rows_stats_T: row_stats's code and bits, shifted
        sums in double, so float32 data with a large mean or a tiny variance keep their statistics);
     2. per channel (mgb0_combine_T), no pass over x: the batch statistics combined from the rows' (Chan et al.):
        mean = (sum over n of the row means)/N, m2 = sum of the rows' m2 + S*sum((row mean - mean)^2), each sum in
        the order NumPy's sums over N took in the functional this replaces (in order of n; pairwise for C = 1);
        rstd = 1/sqrt(max(m2/(N*S), 0) + eps) (coefficients.rstd's operations), lo = X(1/rstd) into its rows;
     3. apply, one pass over runs of rows (mgb0_apply_T): each row's irstd, likewise over S, and hi = X(1/irstd)
        (lo and hi: the gate's two standard deviations, kept for the backward), then y = x/max(lo, v[c]*x + hi)*
        weight[c] + bias[c] (mgp_row_apply_gate_T).
   The backward's three, likewise (the batch std's term of dx needs every row's sums before any dx):
     1. the gate sums of each row, one pass over dy and x (mgp_row_sums_gate_T with gate 1), its quotients
        r = 1/den kept in dx (no buffer; docs/perf/norm-family.md, "The gate backward's chain, session 35");
     2. per channel (mgb0_backward_combine_T): their sums over n (the order as above), dbias, dweight, dv and the
        batch std's coefficient;
     3. dx, one pass over runs of rows (mgb0_backward_apply_T): the row's coefficients, then
        mgp_row_backward_apply_gate_T (gate 1, r read back from dx).
   Every output has the bits of the phases and NumPy code it replaces, for any thread count. Processing channel by
   channel instead (each channel's N rows kept in cache between the statistics and the apply, or blocks of them)
   measured no faster: docs/perf/norm-family.md, "EvoNorm-B0's forward in one call, session 34"; nor for the
   backward's sums and dx ("EvoNorm-B0's backward in one call, session 35").
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
   over a contiguous axis: what the functional's sums over N took for C = 1; of the (a[i] - mu)^2 where sq, else of
   the a[i]*w (w = 1: a[i] itself) */
static double mgb0_pairwise(const double* a, Py_ssize_t n, int sq, double mu, double w) {
#define MGB0_TERM(i) (sq ? (a[i] - mu) * (a[i] - mu) : a[i] * w)
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
    return mgb0_pairwise(a, n2, sq, mu, w) + mgb0_pairwise(a + n2, n - n2, sq, mu, w);
}

#define MGB0_CHANNEL(T)                                                                                      \
/* channel c's batch statistics from its rows' (imean, m2 in irstd) and its rows' lo */                      \
MGP_INLINE void mgb0_channel_##T(T* restrict lo, const double* restrict imean, const double* restrict irstd,    \
                                 double* restrict mean, double* restrict rstd, Py_ssize_t N, Py_ssize_t C,     \
                                 Py_ssize_t S, Py_ssize_t c, double eps) {                                   \
    double t0 = 0, t1 = 0, q = 0, mu;                                                                        \
    Py_ssize_t n;                                                                                            \
    if (C == 1) {  /* NOTE: the rows' values contiguous: NumPy's pairwise order */                           \
        t0 = mgb0_pairwise(imean, N, 0, 0, 1);                                                               \
        t1 = mgb0_pairwise(irstd, N, 0, 0, 1);                                                               \
        mu = t0 / (double)N;                                                                                 \
        q = mgb0_pairwise(imean, N, 1, mu, 1);                                                               \
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

/* the backward: per row r = (n, c) the gate sums s[k*R + r] (k: sdy, sdyf, sdv, shi, slo; R = N*C), then with
   a = weight[c] (w) and g = dy*w, hi = the row's std with d hi/dx_i = (x_i - imean)*irstd/S and lo = the channel's
   batch std with d lo/dx_i = (x_i - mean)*rstd/(N*S):
     dbias = sum_n sdy, dweight = sum_n sdyf, dv = sum_n w*sdv,  b2 = (sum_n w*slo)*rstd/(N*S)   (per channel)
     b1 = w*shi*irstd/S, shift = X(imean), b = X(b1 + b2), k = X(b1*(shift - imean) + b2*(shift - mean))   (per row)
     dx = w*dy*df/dx + b*(x - shift) + k
   the operations and their order as the functional's NumPy had them (the sums over n as mgb0_channel_T's). With lo
   a constant (eval: the running std; rstd and b2 NULL) no b2: b = X(b1), k = X(b1*(shift - imean)), the eval
   NumPy's operations */
#define MGB0_BACKWARD(T)                                                                                     \
/* rows [r0, r1): their gate sums into s[k*R + r] */                                                         \
static void mgb0_backward_sums_##T(double* s, T* dx, const T* dy, const T* x, const T* v, const T* lo,        \
                                   const T* hi, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, Py_ssize_t r0,     \
                                   Py_ssize_t r1) {                                                          \
    const Py_ssize_t R = N * C;                                                                              \
    for (Py_ssize_t r = r0; r < r1; r++)                                                                     \
        mgp_row_sums_gate_##T(s + r, s + R + r, s + 2 * R + r, s + 3 * R + r, s + 4 * R + r, dy + r * S,      \
                              x + r * S, S, 1, v[r % C], lo[r], hi[r], dx + r * S);                          \
}                                                                                                            \
/* channels [c0, c1): dbias, dweight, dv and b2 from the rows' sums */                                       \
static void mgb0_backward_combine_##T(T* dv, T* dweight, T* dbias, double* b2, const double* s, const T* w,   \
                                      const double* rstd, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S,          \
                                      Py_ssize_t c0, Py_ssize_t c1) {                                        \
    const Py_ssize_t R = N * C;                                                                              \
    for (Py_ssize_t c = c0; c < c1; c++) {                                                                   \
        double t[5];                                                                                         \
        for (int k = 0; k < 5; k++) {                                                                        \
            const double wk = (k == 2 || k == 4) ? (double)w[c] : 1.0;  /* NOTE: sdv, slo times w first */   \
            const double* sk = s + k * R;                                                                    \
            /* NOTE: from NumPy's identity 0.0 (so a sum of -0.0 terms is 0.0); for C = 1 the rows' values are \
               contiguous: NumPy's pairwise order, else in order of n, as NumPy reduces an outer axis */       \
            if (C == 1) {                                                                                    \
                t[k] = 0.0 + mgb0_pairwise(sk, N, 0, 0, wk);                                                 \
            } else {                                                                                         \
                t[k] = 0.0;                                                                                  \
                for (Py_ssize_t n = 0; n < N; n++) t[k] = t[k] + sk[n * C + c] * wk;                         \
            }                                                                                                \
        }                                                                                                    \
        dbias[c] = (T)t[0];                                                                                  \
        dweight[c] = (T)t[1];                                                                                \
        dv[c] = (T)t[2];                                                                                     \
        if (rstd) b2[c] = t[4] * rstd[c] / (double)(N * S);  /* NOTE: NULL: lo a constant, no b2 */          \
    }                                                                                                        \
}                                                                                                            \
/* rows [r0, r1): the row's coefficients (shi = s + 3*R), then dx */                                         \
static void mgb0_backward_apply_##T(T* dx, const T* dy, const T* x, const double* shi, const T* v, const T* w, \
                                    const T* lo, const T* hi, const double* imean, const double* irstd,      \
                                    const double* mean, const double* b2, Py_ssize_t C, Py_ssize_t S,        \
                                    Py_ssize_t r0, Py_ssize_t r1) {                                          \
    for (Py_ssize_t r = r0; r < r1; r++) {                                                                   \
        const Py_ssize_t c = r % C;                                                                          \
        const double b1 = (double)w[c] * shi[r] * irstd[r] / (double)S;                                      \
        const T shift = (T)imean[r];                                                                         \
        const double b = b2 ? b1 + b2[c] : b1;                                                              \
        const double k = b2 ? b1 * ((double)shift - imean[r]) + b2[c] * ((double)shift - mean[c])            \
                            : b1 * ((double)shift - imean[r]);                                               \
        mgp_row_backward_apply_gate_##T(dx + r * S, dy + r * S, x + r * S, S, 1, w[c], shift, (T)b, (T)k, v[c], \
                                        lo[r], hi[r], dx + r * S);                                           \
    }                                                                                                        \
}
MGB0_BACKWARD(float)
MGB0_BACKWARD(double)
#endif
