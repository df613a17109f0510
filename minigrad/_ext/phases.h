/* The phase kernels' C: statistics, apply, backward sums and backward apply, for the channels layout
   x: (N, C, S) (one reduction set per channel, over n and s) and the rows layout x: (R, D) (one set per row).
   Signatures and math: minigrad/kernels/contract.py and minigrad/kernels/reference.phases.py; the coefficients
   between phases: minigrad/kernels/coefficients.py. Driven by phases.pyx, which parallelizes over disjoint
   writes (channel blocks, rows, or chunks of rows with their own column partials).

   Code paths:
     sums of a run of m values (mgp_sums_T): two 4-wide double accumulators per sum, then a scalar tail; fixed
       order, so results do not depend on the thread count. Used for channels with S > 1 and for rows.
     channels with S == 1 (BatchNorm1d shaped): the sums walk rows n and run across channels in per-channel
       double accumulators (independent lanes, vectorized across c, each channel's adds in order of n).
     elementwise passes: in X precision, plain loops that GCC vectorizes (AVX2 clone where the CPU has it).
     fused ReLU (mgp_*_relu_T): the same loop shapes with the mask recomputed per element in X.
     fused max (mgp_row_*_max_T, FRN + TLU): the rows' loop shapes, dy split between z and tau per element in X.
   Every sum is taken in double (float32 values are widened first), so a float32 sum cannot overflow.
   Included by phases.pyx after Python.h (Py_ssize_t). */
#ifndef MG_PHASES_H
#define MG_PHASES_H
#include <stdint.h>
#include <string.h>
#include "mg_clones.h"

#pragma GCC diagnostic ignored "-Wpsabi"
typedef double mgp_v4d __attribute__((vector_size(32)));
#define MGP_INLINE static inline __attribute__((always_inline))

/* the three reductions of the family, one loop shape:
     MGP_STATS   a += x - K,       q += (x - K)^2           (statistics; K a value of the set, or 0)
     MGP_DY      a += dy,          q += dy*(x - K)          (batch-norm shaped backward; K = mean)
     MGP_WDY     a += dy*w,        q += dy*w*(x - K)        (rows backward with a per-column weight) */
enum { MGP_STATS = 0, MGP_DY = 1, MGP_WDY = 2 };

MGP_INLINE mgp_v4d mgp_load4_float(const float* p) { mgp_v4d v = {p[0], p[1], p[2], p[3]}; return v; }
MGP_INLINE mgp_v4d mgp_load4_double(const double* p) { mgp_v4d v; memcpy(&v, p, sizeof v); return v; }
MGP_INLINE double mgp_hsum(mgp_v4d a, mgp_v4d b) { a += b; return (a[0] + a[1]) + (a[2] + a[3]); }

/* the terms of one element i of the set, in double (mode is a constant where this is inlined) */
#define MGP_TERMS(T)                                                                                          \
MGP_INLINE void mgp_term_##T(int mode, const T* x, const T* dy, const T* w, Py_ssize_t i, double K,          \
                             double* ta, double* tq) {                                                       \
    double d = (double)x[i] - K;                                                                             \
    double g = mode == MGP_STATS ? d : mode == MGP_DY ? (double)dy[i] : (double)dy[i] * (double)w[i];        \
    *ta = g;                                                                                                 \
    *tq = g * d;                                                                                             \
}                                                                                                            \
MGP_INLINE void mgp_term4_##T(int mode, const T* x, const T* dy, const T* w, Py_ssize_t i, mgp_v4d k,        \
                              mgp_v4d* ta, mgp_v4d* tq) {                                                    \
    mgp_v4d d = mgp_load4_##T(x + i) - k;                                                                    \
    mgp_v4d g = mode == MGP_STATS ? d : mode == MGP_DY ? mgp_load4_##T(dy + i)                               \
                                                       : mgp_load4_##T(dy + i) * mgp_load4_##T(w + i);        \
    *ta = g;                                                                                                 \
    *tq = g * d;                                                                                             \
}                                                                                                            \
/* *sa += sum of the a terms, *sq += sum of the q terms over [0, m) */                                       \
MGP_INLINE void mgp_sums_##T(int mode, const T* x, const T* dy, const T* w, Py_ssize_t m, double K,          \
                             double* sa, double* sq) {                                                       \
    const mgp_v4d k = {K, K, K, K};                                                                          \
    mgp_v4d a0 = {0, 0, 0, 0}, a1 = a0, q0 = a0, q1 = a0, ta, tq;                                            \
    Py_ssize_t i = 0;                                                                                        \
    for (; i + 8 <= m; i += 8) {                                                                             \
        mgp_term4_##T(mode, x, dy, w, i, k, &ta, &tq); a0 += ta; q0 += tq;                                   \
        mgp_term4_##T(mode, x, dy, w, i + 4, k, &ta, &tq); a1 += ta; q1 += tq;                               \
    }                                                                                                        \
    double a = 0, q = 0, sa1, sq1;                                                                           \
    for (; i < m; i++) { mgp_term_##T(mode, x, dy, w, i, K, &sa1, &sq1); a += sa1; q += sq1; }               \
    *sa += mgp_hsum(a0, a1) + a;                                                                             \
    *sq += mgp_hsum(q0, q1) + q;                                                                             \
}

/* channels layout: the sums of channels [c0, c1) over every n and s, into sa[c], sq[c] (zeroed first) */
#define MGP_CHANNELS(T)                                                                                      \
MGP_INLINE void mgp_channel_sums_##T(int mode, const T* x, const T* dy, Py_ssize_t N, Py_ssize_t C,          \
                                     Py_ssize_t S, Py_ssize_t c0, Py_ssize_t c1, const double* K,            \
                                     double* restrict sa, double* restrict sq) {                             \
    for (Py_ssize_t c = c0; c < c1; c++) { sa[c] = 0; sq[c] = 0; }                                           \
    for (Py_ssize_t n = 0; n < N; n++) {                                                                     \
        const Py_ssize_t o = n * C * S;                                                                      \
        if (S == 1) {  /* across channels: independent lanes, each in order of n */                          \
            for (Py_ssize_t c = c0; c < c1; c++) {                                                           \
                double ta, tq;                                                                               \
                mgp_term_##T(mode, x + o, dy + o, NULL, c, K[c], &ta, &tq);                                  \
                sa[c] += ta; sq[c] += tq;                                                                    \
            }                                                                                                \
        } else {                                                                                             \
            for (Py_ssize_t c = c0; c < c1; c++)                                                             \
                mgp_sums_##T(mode, x + o + c * S, dy + o + c * S, NULL, S, K[c], sa + c, sq + c);            \
        }                                                                                                    \
    }                                                                                                        \
}                                                                                                            \
/* mean, m2 of channels [c0, c1) (center: shifted by K = x[0, c, 0]; else mean = 0, m2 = sum(x^2));           \
   K: scratch (C,) */                                                                                        \
MG_CLONES static void mgp_channel_stats_##T(double* mean, double* m2, const T* x, int center, Py_ssize_t N,   \
                                            Py_ssize_t C, Py_ssize_t S, Py_ssize_t c0, Py_ssize_t c1,        \
                                            double* K) {                                                     \
    const double M = (double)(N * S);                                                                        \
    for (Py_ssize_t c = c0; c < c1; c++) K[c] = center ? (double)x[c * S] : 0.0;                             \
    mgp_channel_sums_##T(MGP_STATS, x, x, N, C, S, c0, c1, K, mean, m2);  /* dy: never read */                                  \
    for (Py_ssize_t c = c0; c < c1; c++) {                                                                   \
        const double s1 = mean[c], s2 = m2[c];                                                               \
        double v = center ? s2 - s1 * (s1 / M) : s2;                                                         \
        mean[c] = center ? K[c] + s1 / M : 0.0;                                                              \
        m2[c] = v < 0 ? 0 : v;  /* rounding; NaN stays NaN */                                                \
    }                                                                                                        \
}                                                                                                            \
MG_CLONES static void mgp_channel_dy_sums_##T(double* sdy, double* sdyx, const T* dy, const T* x,            \
                                              const double* mean, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S,  \
                                              Py_ssize_t c0, Py_ssize_t c1) {                                \
    mgp_channel_sums_##T(MGP_DY, x, dy, N, C, S, c0, c1, mean, sdy, sdyx);                                   \
}                                                                                                            \
/* one row n: y = (x - K[c])*scale[c] + offset[c] over C*S values (X precision) */                           \
MG_CLONES static void mgp_channel_apply_##T(T* y, const T* x, Py_ssize_t C, Py_ssize_t S, const T* K,        \
                                            const T* scale, const T* offset) {                               \
    if (S == 1) {                                                                                            \
        for (Py_ssize_t c = 0; c < C; c++) y[c] = (x[c] - K[c]) * scale[c] + offset[c];                      \
        return;                                                                                              \
    }                                                                                                        \
    for (Py_ssize_t c = 0; c < C; c++) {                                                                     \
        const T Kc = K[c], sc = scale[c], oc = offset[c];                                                    \
        const T* xc = x + c * S;                                                                             \
        T* yc = y + c * S;                                                                                   \
        for (Py_ssize_t i = 0; i < S; i++) yc[i] = (xc[i] - Kc) * sc + oc;                                   \
    }                                                                                                        \
}                                                                                                            \
/* one row n: dx = a[c]*(dy - mdy[c]) + b[c]*(x - K[c]) + k[c] (X precision) */                              \
MG_CLONES static void mgp_channel_backward_apply_##T(T* dx, const T* dy, const T* x, Py_ssize_t C,           \
                                                     Py_ssize_t S, const T* a, const T* mdy, const T* K,     \
                                                     const T* b, const T* k) {                               \
    if (S == 1) {                                                                                            \
        for (Py_ssize_t c = 0; c < C; c++) dx[c] = a[c] * (dy[c] - mdy[c]) + b[c] * (x[c] - K[c]) + k[c];    \
        return;                                                                                              \
    }                                                                                                        \
    for (Py_ssize_t c = 0; c < C; c++) {                                                                     \
        const T ac = a[c], mc = mdy[c], Kc = K[c], bc = b[c], kc = k[c];                                     \
        const Py_ssize_t o = c * S;                                                                          \
        for (Py_ssize_t i = 0; i < S; i++) dx[o + i] = ac * (dy[o + i] - mc) + bc * (x[o + i] - Kc) + kc;    \
    }                                                                                                        \
}

/* fused ReLU (batch norm + ReLU): z = (x - K[c])*scale[c] + offset[c] in X, exactly as the apply computes it, so
   the backward's mask z > 0 is the forward's; g = z > 0 ? dy : 0 (PyTorch's threshold_backward) */
#define MGP_RELU(T, U)                                                                                        \
/* NOTE: the mask ANDed into dy's bits: GCC turned dy*(T)(z > 0), and for float the select z > 0 ? dy : 0, into   \
   a branch on z, 30-60x slower on random signs (docs/perf/norm-kernels.md) */                               \
MGP_INLINE T mgp_relu_g_##T(T x, T dy, T K, T sc, T of) {                                                    \
    U bits;                                                                                                  \
    memcpy(&bits, &dy, sizeof bits);                                                                         \
    bits &= -(U)((x - K) * sc + of > 0);                                                                     \
    memcpy(&dy, &bits, sizeof bits);                                                                         \
    return dy;                                                                                               \
}                                                                                                            \
/* *sa += sum(g), *sq += sum(g*(x - M)) over [0, m), g masked; the loop shape of mgp_sums_T */               \
MGP_INLINE void mgp_relu_sums_##T(const T* x, const T* dy, Py_ssize_t m, double M, T K, T sc, T of,          \
                                  double* sa, double* sq) {                                                  \
    const mgp_v4d mv = {M, M, M, M};                                                                         \
    mgp_v4d a0 = {0, 0, 0, 0}, a1 = a0, q0 = a0, q1 = a0;                                                    \
    Py_ssize_t i = 0;                                                                                        \
    T gb[8];                                                                                                 \
    for (; i + 8 <= m; i += 8) {                                                                             \
        for (int j = 0; j < 8; j++) gb[j] = mgp_relu_g_##T(x[i + j], dy[i + j], K, sc, of);                  \
        const mgp_v4d g0 = mgp_load4_##T(gb), g1 = mgp_load4_##T(gb + 4);                                    \
        a0 += g0; q0 += g0 * (mgp_load4_##T(x + i) - mv);                                                    \
        a1 += g1; q1 += g1 * (mgp_load4_##T(x + i + 4) - mv);                                                \
    }                                                                                                        \
    double a = 0, q = 0;                                                                                     \
    for (; i < m; i++) {                                                                                     \
        const double g = mgp_relu_g_##T(x[i], dy[i], K, sc, of);                                             \
        a += g; q += g * ((double)x[i] - M);                                                                 \
    }                                                                                                        \
    *sa += mgp_hsum(a0, a1) + a;                                                                             \
    *sq += mgp_hsum(q0, q1) + q;                                                                             \
}                                                                                                            \
/* channels [c0, c1): sdy = sum(g), sdyx = sum(g*(x - mean)) over n (in order) and s */                       \
MG_CLONES static void mgp_channel_dy_sums_relu_##T(double* sdy, double* sdyx, const T* dy, const T* x,       \
                                                   const double* mean, const T* K, const T* scale,           \
                                                   const T* offset, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S,\
                                                   Py_ssize_t c0, Py_ssize_t c1) {                           \
    for (Py_ssize_t c = c0; c < c1; c++) { sdy[c] = 0; sdyx[c] = 0; }                                        \
    for (Py_ssize_t n = 0; n < N; n++) {                                                                     \
        const Py_ssize_t o = n * C * S;                                                                      \
        for (Py_ssize_t c = c0; c < c1; c++) {                                                               \
            if (S == 1) {                                                                                    \
                const double g = mgp_relu_g_##T(x[o + c], dy[o + c], K[c], scale[c], offset[c]);             \
                sdy[c] += g; sdyx[c] += g * ((double)x[o + c] - mean[c]);                                    \
            } else {                                                                                         \
                mgp_relu_sums_##T(x + o + c * S, dy + o + c * S, S, mean[c], K[c], scale[c], offset[c],      \
                                  sdy + c, sdyx + c);                                                        \
            }                                                                                                \
        }                                                                                                    \
    }                                                                                                        \
}                                                                                                            \
/* one row n: y = max(0, z) with np.maximum's bits (NaN stays NaN, -0 gives +0) */                          \
MG_CLONES static void mgp_channel_apply_relu_##T(T* restrict y, const T* restrict x, Py_ssize_t C,           \
                                                 Py_ssize_t S, const T* K, const T* scale, const T* offset) { \
    for (Py_ssize_t c = 0; c < C; c++) {                                                                     \
        const T Kc = K[c], sc = scale[c], oc = offset[c];                                                    \
        const T* xc = x + c * S;                                                                             \
        T* yc = y + c * S;                                                                                   \
        for (Py_ssize_t i = 0; i < S; i++) {                                                                 \
            const T z = (xc[i] - Kc) * sc + oc;                                                              \
            yc[i] = z <= 0 ? 0 : z;                                                                          \
        }                                                                                                    \
    }                                                                                                        \
}                                                                                                            \
/* one row n: dx = a[c]*(g - mdy[c]) + b[c]*(x - K[c]) + k[c] */                                             \
MG_CLONES static void mgp_channel_backward_apply_relu_##T(T* restrict dx, const T* restrict dy,              \
                                                          const T* restrict x, Py_ssize_t C, Py_ssize_t S,   \
                                                          const T* a, const T* mdy, const T* K, const T* b,  \
                                                          const T* k, const T* scale, const T* offset) {     \
    for (Py_ssize_t c = 0; c < C; c++) {                                                                     \
        const T ac = a[c], mc = mdy[c], Kc = K[c], bc = b[c], kc = k[c], sc = scale[c], oc = offset[c];      \
        const Py_ssize_t o = c * S;                                                                          \
        for (Py_ssize_t i = 0; i < S; i++) {                                                                 \
            const T g = mgp_relu_g_##T(x[o + i], dy[o + i], Kc, sc, oc);                                     \
            dx[o + i] = ac * (g - mc) + bc * (x[o + i] - Kc) + kc;                                           \
        }                                                                                                    \
    }                                                                                                        \
}

/* rows layout, one row of D values */
#define MGP_ROWS(T)                                                                                          \
MG_CLONES static void mgp_row_stats_##T(double* mean, double* m2, const T* x, int center, Py_ssize_t D) {    \
    const double K = center ? (double)x[0] : 0.0, M = (double)D;                                             \
    double s1 = 0, s2 = 0;                                                                                   \
    mgp_sums_##T(MGP_STATS, x, x, x, D, K, &s1, &s2);  /* dy, w: never read */                                                  \
    double v = center ? s2 - s1 * (s1 / M) : s2;                                                             \
    *mean = center ? K + s1 / M : 0.0;                                                                       \
    *m2 = v < 0 ? 0 : v;                                                                                     \
}                                                                                                            \
/* y = ((x - K)*scale + offset)*w[d] + bias[d] */                                                            \
MG_CLONES static void mgp_row_apply_##T(T* restrict y, const T* restrict x, Py_ssize_t D, T K, T scale,      \
                                        T offset, const T* restrict w, const T* restrict bias) {             \
    for (Py_ssize_t d = 0; d < D; d++) y[d] = ((x[d] - K) * scale + offset) * w[d] + bias[d];                \
}                                                                                                            \
/* sg = sum(dy*w), sgx = sum(dy*w*(x - mean)); column partials pw += dy*(x - mean)*rstd, pb += dy (double) */  \
MG_CLONES static void mgp_row_backward_sums_##T(double* sg, double* sgx, double* restrict pw,                \
                                                double* restrict pb, const T* restrict dy,                   \
                                                const T* restrict x, const T* restrict w, Py_ssize_t D,      \
                                                double mean, double rstd) {                                  \
    double a = 0, q = 0;                                                                                     \
    mgp_sums_##T(MGP_WDY, x, dy, w, D, mean, &a, &q);                                                        \
    *sg = a;                                                                                                 \
    *sgx = q;                                                                                                \
    for (Py_ssize_t d = 0; d < D; d++) {                                                                     \
        const double g = dy[d];                                                                              \
        pb[d] += g;                                                                                          \
        pw[d] += g * (((double)x[d] - mean) * rstd);                                                         \
    }                                                                                                        \
}                                                                                                            \
/* dx = a*(w[d]*dy - mg) + b*(x - K) + k */                                                                  \
MG_CLONES static void mgp_row_backward_apply_##T(T* restrict dx, const T* restrict dy, const T* restrict x,  \
                                                 const T* restrict w, Py_ssize_t D, T a, T mg, T K, T b,     \
                                                 T k) {                                                      \
    for (Py_ssize_t d = 0; d < D; d++) dx[d] = a * (w[d] * dy[d] - mg) + b * (x[d] - K) + k;                 \
}

/* fused max (FRN + TLU), rows with per-row coefficients and threshold: z = (x - K)*scale + offset in X, exactly as
   the apply computes it, so the backward's split is the forward's. dy is split between z and tau by Maximum's rule
   (z > tau: g = dy, t = 0; a tie: g = t = dy/2; else, NaN included: g = 0, t = dy) */
#define MGP_MAX(T, U, V, W)                                                                                       \
/* NOTE: masks ANDed into the bits, as mgp_relu_g_T (no branch on z; a masked-out inf dy gives 0) */          \
MGP_INLINE void mgp_max_split_##T(T z, T tau, T dy, T* g, T* t) {                                            \
    const T h = dy * (T)0.5;                                                                                 \
    const U gt = -(U)(z > tau), eq = -(U)(z == tau), lt = ~(gt | eq);                                        \
    U bd, bh;                                                                                                \
    memcpy(&bd, &dy, sizeof bd);                                                                             \
    memcpy(&bh, &h, sizeof bh);                                                                              \
    const U bg = (bd & gt) | (bh & eq), bt = (bd & lt) | (bh & eq);                                          \
    memcpy(g, &bg, sizeof bg);                                                                               \
    memcpy(t, &bt, sizeof bt);                                                                               \
}                                                                                                            \
/* one row: y = max(z, tau) with np.maximum's NaN (from z or from tau) */                                     \
MG_CLONES static void mgp_row_apply_max_##T(T* restrict y, const T* restrict x, Py_ssize_t D, T K, T sc, T of,\
                                            T tau) {                                                         \
    for (Py_ssize_t d = 0; d < D; d++) {                                                                     \
        const T z = (x[d] - K) * sc + of;                                                                    \
        y[d] = (z > tau || z != z) ? z : tau;                                                                \
    }                                                                                                        \
}                                                                                                            \
/* 4 elements at x, dy: the (g, t) split in X lanes (V: 4 lanes of T, W: 4 lanes of U), widened to double */       \
MGP_INLINE void mgp_max_split4_##T(const T* x, const T* dy, T K, T sc, T of, T tau, mgp_v4d* xd, mgp_v4d* gd,  \
                                   mgp_v4d* td) {                                                            \
    V xv, dv;                                                                                                \
    memcpy(&xv, x, sizeof xv);                                                                               \
    memcpy(&dv, dy, sizeof dv);                                                                              \
    const V kv = {K, K, K, K}, sv = {sc, sc, sc, sc}, ov = {of, of, of, of}, tv = {tau, tau, tau, tau};      \
    const V z = (xv - kv) * sv + ov, h = dv * (T)0.5;                                                        \
    const W gt = (W)(z > tv), eq = (W)(z == tv), bd = (W)dv, bh = (W)h;                                      \
    *xd = __builtin_convertvector(xv, mgp_v4d);                                                              \
    *gd = __builtin_convertvector((V)((bd & gt) | (bh & eq)), mgp_v4d);                                      \
    *td = __builtin_convertvector((V)((bd & ~(gt | eq)) | (bh & eq)), mgp_v4d);                              \
}                                                                                                            \
/* one row: *sg = sum(g), *sgx = sum(g*(x - M)), *st = sum(t) in double; the loop shape of mgp_relu_sums_T, */ \
/* in explicit 4-lane vectors (the scalar split of mgp_max_split_T did not vectorize: 2.4x slower) */         \
MG_CLONES static void mgp_row_sums_max_##T(double* sg, double* sgx, double* st, const T* restrict dy,        \
                                           const T* restrict x, Py_ssize_t D, double M, T K, T sc, T of,     \
                                           T tau) {                                                          \
    const mgp_v4d mv = {M, M, M, M};                                                                         \
    mgp_v4d a0 = {0, 0, 0, 0}, a1 = a0, q0 = a0, q1 = a0, u0 = a0, u1 = a0, xd, gd, td;                      \
    Py_ssize_t i = 0;                                                                                        \
    for (; i + 8 <= D; i += 8) {                                                                             \
        mgp_max_split4_##T(x + i, dy + i, K, sc, of, tau, &xd, &gd, &td);                                    \
        a0 += gd; q0 += gd * (xd - mv); u0 += td;                                                            \
        mgp_max_split4_##T(x + i + 4, dy + i + 4, K, sc, of, tau, &xd, &gd, &td);                            \
        a1 += gd; q1 += gd * (xd - mv); u1 += td;                                                            \
    }                                                                                                        \
    double a = 0, q = 0, u = 0;                                                                              \
    for (; i < D; i++) {                                                                                     \
        T g, t;                                                                                              \
        mgp_max_split_##T((x[i] - K) * sc + of, tau, dy[i], &g, &t);                                         \
        a += g; q += (double)g * ((double)x[i] - M); u += t;                                                 \
    }                                                                                                        \
    *sg = mgp_hsum(a0, a1) + a;                                                                              \
    *sgx = mgp_hsum(q0, q1) + q;                                                                             \
    *st = mgp_hsum(u0, u1) + u;                                                                              \
}                                                                                                            \
/* one row: dx = a*(g - mg) + b*(x - K) + k */                                                                \
MG_CLONES static void mgp_row_backward_apply_max_##T(T* restrict dx, const T* restrict dy,                   \
                                                     const T* restrict x, Py_ssize_t D, T a, T mg, T K, T b, \
                                                     T k, T sc, T of, T tau) {                               \
    for (Py_ssize_t d = 0; d < D; d++) {                                                                     \
        T g, t;                                                                                              \
        mgp_max_split_##T((x[d] - K) * sc + of, tau, dy[d], &g, &t);                                         \
        dx[d] = a * (g - mg) + b * (x[d] - K) + k;                                                           \
    }                                                                                                        \
}
MGP_TERMS(float)
MGP_TERMS(double)
MGP_CHANNELS(float)
MGP_CHANNELS(double)
MGP_ROWS(float)
MGP_ROWS(double)
MGP_RELU(float, uint32_t)
MGP_RELU(double, uint64_t)
typedef float mgp_v4f __attribute__((vector_size(16)));
typedef uint32_t mgp_v4u __attribute__((vector_size(16)));
typedef uint64_t mgp_v4ul __attribute__((vector_size(32)));
MGP_MAX(float, uint32_t, mgp_v4f, mgp_v4u)
MGP_MAX(double, uint64_t, mgp_v4d, mgp_v4ul)

#endif
