/* The phase kernels' C: statistics, apply, backward sums and backward apply, for the channels layout
   x: (N, C, S) (one reduction set per channel, over n and s) and the rows layout x: (R, D) (one set per row).
   Signatures and math: minigrad/kernels/contract.py and minigrad/kernels/reference.phases.py; the coefficients
   between phases: minigrad/kernels/coefficients.py. Driven by phases.pyx, which parallelizes over disjoint
   writes (channel blocks, rows, or chunks of rows with their own column partials).

   Code paths:
     sums of a run of m values (mgp_sums_T): two 4-wide double accumulators per sum, then a scalar tail; fixed
       order, so results do not depend on the thread count. Used for channels with S > 1 and for rows.
     row statistics (mgp_rows_stats_T): two rows a loop, each row's sums those of mgp_sums_T, the pair's horizontal
       sums and mean and m2 in vectors (mgp_stats_out2), the next pair's second row prefetched; one run of rows
       per thread. FRN + TLU's backward (mgp_rows_norm_backward_max_T): one run of rows per thread, a row's
       apply after the next row's sums; a row's blocks of 8 split as if no value tied the max, the row again
       with the exact split where one did, the run's later rows exact from then on. Float on AVX-512
       (mgp_rows_norm_backward_max_float_v4): the same sums' bits in blocks of 16, the split as masks.
     channels with S == 1 (BatchNorm1d shaped): the sums walk rows n and run across channels in per-channel
       double accumulators (independent lanes, vectorized across c, each channel's adds in order of n).
     elementwise passes: in X precision, plain loops that GCC vectorizes (AVX2 clone where the CPU has it).
     fused ReLU (mgp_*_relu_T): the same loop shapes with the mask recomputed per element in X.
     fused max (mgp_row_*_max_T, FRN + TLU): the rows' loop shapes, dy split between z and tau per element in X.
     fused gate (mgp_row_*_gate_T, EvoNorm): f = x*sigmoid(v*x) or x/max(lo, v*x + hi) and its partials per element
       in X; the sigmoid through a polynomial exp with fused multiply-adds (float: mgp_expf_fma, double:
       mgp_exp_fma). The sums can keep the sigmoids of a row for its backward apply (EvoNorm-S0's backward, one
       group at a time).
       Float in blocks of 16 lanes first (one zmm in the AVX-512 clone), then of 8, then the tail, each element
       through the same operations whichever takes it; float's sums take each partial in float, multiply it by
       dy scaled by a power of two and sum in float over blocks of 128 values, each block's sums added in double
       (the blocks of 8 and the tail: dy times the widened partial, in double). The apply, the backward apply
       and gate 0's sums come twice: for AVX-512 (*_v4: the exp's clamps as min/max instructions) and as clones
       for the other CPUs (*_any), the same bits, picked per call.
     FRN + TLU's forward (mgp_rows_norm_apply_max_T): 4 rows at a time, their rstd in one vector, the next
       block's taken before this block's applies.
     CPUs with AVX2 and FMA (x86-64-v3): row statistics and float's FRN + TLU backward (where AVX-512 is not used)
       as *_v3 intrinsics, the clones' operations with some double adds as fma(acc, 1, v) (the same rounding, on the
       multiply pipes), picked per call (mgp_cpu_v3).
   Every sum is taken in double (float32 values are widened first), so a float32 sum cannot overflow; the one
   exception, the float gate sums' blocks of 128, scales dy so that its products cannot overflow either.
   Included by phases.pyx after Python.h (Py_ssize_t). */
#ifndef MG_PHASES_H
#define MG_PHASES_H
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "mg_clones.h"

#pragma GCC diagnostic ignored "-Wpsabi"
#include "mg_expf.h"  /* mgp_v4d, MGP_INLINE, the vector expf and sigmoid */

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

/* two rows' mgp_hsum and mgp_stats_out_T in one: the four horizontal sums through two pairwise adds of
   interleaved lanes and one add of the halves (lane j: (v[0] + v[1]) + (v[2] + v[3]) of sum j, as mgp_hsum),
   plus the tails t = {ta0, ta1, tq0, tq1}, then both rows' mean and m2 in two lanes (one division for both).
   NOTE: the per-row costs decide at short rows (EvoNorm-B0's instance statistics, rows of H*W): about 40
   operations a pair in scalars, about 20 here */
typedef int64_t mgp_v4di __attribute__((vector_size(32)));
typedef double mgp_v2d __attribute__((vector_size(16)));
typedef int64_t mgp_v2di __attribute__((vector_size(16)));
MGP_INLINE void mgp_stats_out2(double* mean, double* m2, int center, double K0, double K1, double M, mgp_v4d a0,
                               mgp_v4d a1, mgp_v4d q0, mgp_v4d q1, mgp_v4d t) {
    const mgp_v4di lo = {0, 4, 2, 6}, hi = {1, 5, 3, 7}, h0 = {0, 1, 4, 5}, h1 = {2, 3, 6, 7};
    /* ha: a0[0] + a0[1], a1[0] + a1[1], a0[2] + a0[3], a1[2] + a1[3]; sum: s1 of rows 0, 1, then s2 of rows 0, 1 */
    const mgp_v4d ha = __builtin_shuffle(a0, a1, lo) + __builtin_shuffle(a0, a1, hi);
    const mgp_v4d hq = __builtin_shuffle(q0, q1, lo) + __builtin_shuffle(q0, q1, hi);
    const mgp_v4d sum = __builtin_shuffle(ha, hq, h0) + __builtin_shuffle(ha, hq, h1) + t;
    const mgp_v2d s1 = {sum[0], sum[1]}, s2 = {sum[2], sum[3]}, k = {K0, K1}, mv = {M, M}, zero = {0, 0};
    const mgp_v2d d = s1 / mv, v = center ? s2 - s1 * d : s2, mn = center ? k + d : zero;
    const mgp_v2d out = (mgp_v2d)((mgp_v2di)v & ~(mgp_v2di)(v < zero));  /* v < 0 ? 0 : v (NaN stays NaN) */
    memcpy(mean, &mn, sizeof mn);
    memcpy(m2, &out, sizeof out);
}
/* rows layout, one row of D values */
/* two rows' scalar tails from i on, d = x - K in order, into ta0, tq0, ta1, tq1 (declared here): the rows'
   statistics' tails in mgp_rows_stats_T_any and its AVX2 twin, mgp_rows_stats_T_v3 */
#define MGP_ROWS2_TAIL(x0, x1, i, D, K0, K1)                                                                 \
    double ta0 = 0, tq0 = 0, ta1 = 0, tq1 = 0;                                                               \
    for (; i < D; i++) {                                                                                     \
        const double d0 = (double)x0[i] - K0, d1 = (double)x1[i] - K1;                                       \
        ta0 += d0; tq0 += d0 * d0; ta1 += d1; tq1 += d1 * d1;                                                \
    }
#define MGP_ROWS(T)                                                                                          \
/* a row's mean and m2 from its sums s1 = sum(x - K), s2 = sum((x - K)^2) */                                 \
MGP_INLINE void mgp_stats_out_##T(double* mean, double* m2, int center, double K, double M, double s1,        \
                                  double s2) {                                                               \
    double v = center ? s2 - s1 * (s1 / M) : s2;                                                             \
    *mean = center ? K + s1 / M : 0.0;                                                                       \
    *m2 = v < 0 ? 0 : v;                                                                                     \
}                                                                                                            \
MG_CLONES static void mgp_row_stats_##T(double* mean, double* m2, const T* x, int center, Py_ssize_t D) {    \
    const double K = center ? (double)x[0] : 0.0;                                                            \
    double s1 = 0, s2 = 0;                                                                                   \
    mgp_sums_##T(MGP_STATS, x, x, x, D, K, &s1, &s2);  /* dy, w: never read */                                                  \
    mgp_stats_out_##T(mean, m2, center, K, (double)D, s1, s2);                                               \
}                                                                                                            \
/* mgp_row_stats_T of rows [r0, r1) (row r at x + r*D), 2 rows at a time, then the last alone: each row's sums in  \
   the accumulators, order, tail and horizontal adds of mgp_row_stats_T, so the same bits. NOTE: the loop is   \
   bound by its 12 vector operations per 8 values (the widenings take two), so the gain is in the per-row costs \
   (the horizontal adds, the division, the loop's exit) running beside the other row's; 4 rows spilled         \
   accumulators (docs/perf/norm-family.md, "2026-12-07 (session 30)") */                                         \
MG_CLONES static void mgp_rows_stats_##T##_any(double* mean, double* m2, const T* x, int center, Py_ssize_t r0, \
                                              Py_ssize_t r1, Py_ssize_t D) {                                      \
    const double M = (double)D;                                                                              \
    Py_ssize_t r = r0;                                                                                       \
    for (; r + 2 <= r1; r += 2) {                                                                            \
        const T *x0 = x + r * D, *x1 = x0 + D;                                                               \
        const double K0 = center ? (double)x0[0] : 0.0, K1 = center ? (double)x1[0] : 0.0;                   \
        const mgp_v4d k0 = {K0, K0, K0, K0}, k1 = {K1, K1, K1, K1};                                          \
        mgp_v4d a00 = {0, 0, 0, 0}, a01 = a00, q00 = a00, q01 = a00, a10 = a00, a11 = a00, q10 = a00, q11 = a00, d; \
        /* NOTE: the next pair's second row (or the last row) prefetched along this pair: the hardware prefetcher \
           follows this pair's two rows, and that row starts a new stream D values past them (B0's instance  \
           rows of 256 from L3: 0.86-0.91x the time; rows in L2 unchanged; docs/perf/norm-family.md, "EvoNorm \
           and FRN, session 32") */                                                                          \
        const T* nx = x + (r + 3 < r1 ? r + 3 : r1 - 1) * D;                                                 \
        Py_ssize_t i = 0;                                                                                    \
        for (; i + 8 <= D; i += 8) {                                                                         \
            __builtin_prefetch(nx + i, 0, 3);                                                                \
            d = mgp_load4_##T(x0 + i) - k0; a00 += d; q00 += d * d;                                          \
            d = mgp_load4_##T(x0 + i + 4) - k0; a01 += d; q01 += d * d;                                      \
            d = mgp_load4_##T(x1 + i) - k1; a10 += d; q10 += d * d;                                          \
            d = mgp_load4_##T(x1 + i + 4) - k1; a11 += d; q11 += d * d;                                      \
        }                                                                                                    \
        MGP_ROWS2_TAIL(x0, x1, i, D, K0, K1);                                                                \
        mgp_stats_out2(mean + r, m2 + r, center, K0, K1, M, a00 + a01, a10 + a11, q00 + q01, q10 + q11,        \
                       (mgp_v4d){ta0, ta1, tq0, tq1});                                                       \
    }                                                                                                        \
    for (; r < r1; r++) mgp_row_stats_##T(mean + r, m2 + r, x + r * D, center, D);                          \
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
#define MGP_MAX(T, U, V, W, SPLIT8, W8)                                                                           \
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
MGP_INLINE void mgp_max_row_##T(T* restrict y, const T* restrict x, Py_ssize_t D, T K, T sc, T of, T tau) {   \
    for (Py_ssize_t d = 0; d < D; d++) {                                                                     \
        const T z = (x[d] - K) * sc + of;                                                                    \
        y[d] = (z > tau || z != z) ? z : tau;                                                                \
    }                                                                                                        \
}                                                                                                            \
MG_CLONES static void mgp_row_apply_max_##T(T* restrict y, const T* restrict x, Py_ssize_t D, T K, T sc, T of,\
                                            T tau) {                                                         \
    mgp_max_row_##T(y, x, D, K, sc, of, tau);                                                                \
}                                                                                                            \
/* rstd = 1/sqrt(m2/D + eps) of n <= 4 consecutive rows (row j at x + j*D, m2 = sum(x^2)), lane j row j's.       \
   NOTE: for short rows the per-row costs (a sum's reduction and the two divisions and sqrt, in sequence) were   \
   about half the time at D = 64, so 4 rows go together: their sums of squares in one loop (each row's       \
   accumulators and order those of mgp_row_stats_T with center = 0, so the same bits), their rstd in one     \
   4-lane vector (per lane the operations of coefficients.rstd in its order) */                               \
MGP_INLINE mgp_v4d mgp_rows_rstd_##T(const T* restrict x, int n, Py_ssize_t D, double eps) {                 \
    double unused, m2;                                                                                       \
    mgp_v4d v = {1, 1, 1, 1};                                                                                \
    if (n == 4) {                                                                                            \
        const mgp_v4d z = {0, 0, 0, 0};                                                                      \
        mgp_v4d q00 = z, q01 = z, q10 = z, q11 = z, q20 = z, q21 = z, q30 = z, q31 = z, d;                   \
        const T *x0 = x, *x1 = x + D, *x2 = x + 2 * D, *x3 = x + 3 * D;                                      \
        Py_ssize_t i = 0;                                                                                    \
        for (; i + 8 <= D; i += 8) {                                                                         \
            d = mgp_load4_##T(x0 + i); q00 += d * d; d = mgp_load4_##T(x0 + i + 4); q01 += d * d;            \
            d = mgp_load4_##T(x1 + i); q10 += d * d; d = mgp_load4_##T(x1 + i + 4); q11 += d * d;            \
            d = mgp_load4_##T(x2 + i); q20 += d * d; d = mgp_load4_##T(x2 + i + 4); q21 += d * d;            \
            d = mgp_load4_##T(x3 + i); q30 += d * d; d = mgp_load4_##T(x3 + i + 4); q31 += d * d;            \
        }                                                                                                    \
        double t0 = 0, t1 = 0, t2 = 0, t3 = 0;                                                               \
        for (; i < D; i++) {                                                                                 \
            t0 += (double)x0[i] * (double)x0[i]; t1 += (double)x1[i] * (double)x1[i];                        \
            t2 += (double)x2[i] * (double)x2[i]; t3 += (double)x3[i] * (double)x3[i];                        \
        }                                                                                                    \
        v[0] = mgp_hsum(q00, q01) + t0; v[1] = mgp_hsum(q10, q11) + t1;                                      \
        v[2] = mgp_hsum(q20, q21) + t2; v[3] = mgp_hsum(q30, q31) + t3;                                      \
        /* NOTE: a sum of squares: never below 0, as row_stats clamps */                                     \
    } else {                                                                                                 \
        for (int j = 0; j < n; j++) {                                                                        \
            mgp_row_stats_##T(&unused, &m2, x + j * D, 0, D);                                                \
            v[j] = m2;                                                                                       \
        }                                                                                                    \
    }                                                                                                        \
    const mgp_v4d dv = {(double)D, (double)D, (double)D, (double)D}, ev = {eps, eps, eps, eps};              \
    const mgp_v4d one = {1, 1, 1, 1};                                                                        \
    v = v / dv + ev;                                                                                         \
    const mgp_v4d sq = {sqrt(v[0]), sqrt(v[1]), sqrt(v[2]), sqrt(v[3])};                                     \
    return one / sq;                                                                                         \
}                                                                                                            \
/* FRN + TLU forward of rows [r0, r1) of x (row r at x + r*D, channel r % C; w, of, tau: the (C,) per-channel   \
   values), in blocks of 4 rows from r0: rstd (mgp_rows_rstd_T, written out: the backward's),                 \
   scale = X(rstd*w[c]), y = max(x*scale + of[c], tau[c]) while the rows are in L1.                           \
   NOTE: the next block's sums and rstd are taken before this block's applies: its division-sqrt-division   \
   chain then runs beside them, not before them (16.8 -> 12.9 us at 512 rows of 64 float32, timed in C;       \
   docs/perf/norm-family.md, "FRN + TLU's small forward"); every row's operations are the same */              \
MG_CLONES static void mgp_rows_norm_apply_max_##T(T* restrict y, double* rstd_out, T* scale, const T* restrict x,\
                                                 Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t D, const T* w,     \
                                                 const T* of, const T* tau, Py_ssize_t C, double eps) {      \
    Py_ssize_t c = r0 % C;                                                                                   \
    int n = r1 - r0 < 4 ? (int)(r1 - r0) : 4, next_n = n;                                                   \
    mgp_v4d rstd = mgp_rows_rstd_##T(x + r0 * D, n, D, eps), next = rstd;                                    \
    for (Py_ssize_t r = r0; r < r1; r += 4) {                                                                \
        if (r + 4 < r1) {                                                                                    \
            next_n = r1 - r - 4 < 4 ? (int)(r1 - r - 4) : 4;                                                 \
            next = mgp_rows_rstd_##T(x + (r + 4) * D, next_n, D, eps);                                       \
        }                                                                                                    \
        for (int j = 0; j < n; j++) {                                                                        \
            const T sc = (T)(rstd[j] * (double)w[c]);                                                        \
            rstd_out[r + j] = rstd[j];                                                                       \
            scale[r + j] = sc;                                                                               \
            mgp_max_row_##T(y + (r + j) * D, x + (r + j) * D, D, 0, sc, of[c], tau[c]);                      \
            if (++c == C) c = 0;  /* NOTE: the next row is the next sample's channel 0 (no division per row) */\
        }                                                                                                    \
        rstd = next;                                                                                         \
        n = next_n;                                                                                          \
    }                                                                                                        \
}                                                                                                            \
/* 4 elements at x, dy: the (g, t) split in X lanes (V: 4 lanes of T, W: 4 lanes of U), widened to double; g's \
   4 values are also stored at g. exact (a constant where this is inlined) 0: the split of a block without a tie, \
   g = dy where z >= tau, t = dy elsewhere (NaN included), the block's z == tau lanes ORed into *ties: the caller \
   takes the row again with exact = 1 where any is set */                                                    \
MGP_INLINE void mgp_max_split4_##T(const T* x, const T* dy, T K, T sc, T of, T tau, T* g, mgp_v4d* xd,       \
                                   mgp_v4d* gd, mgp_v4d* td, int exact, W* ties) {                           \
    V xv, dv, gv, tv2;                                                                                       \
    memcpy(&xv, x, sizeof xv);                                                                               \
    memcpy(&dv, dy, sizeof dv);                                                                              \
    const V kv = {K, K, K, K}, sv = {sc, sc, sc, sc}, ov = {of, of, of, of}, tv = {tau, tau, tau, tau};      \
    const V z = (xv - kv) * sv + ov;                                                                         \
    if (exact) {                                                                                             \
        const V h = dv * (T)0.5;                                                                             \
        const W gt = (W)(z > tv), eq = (W)(z == tv), bd = (W)dv, bh = (W)h;                                  \
        gv = (V)((bd & gt) | (bh & eq)); tv2 = (V)((bd & ~(gt | eq)) | (bh & eq));                           \
    } else {                                                                                                 \
        const W ge = (W)(z >= tv), bd = (W)dv;                                                               \
        *ties |= (W)(z == tv);                                                                               \
        gv = (V)(bd & ge); tv2 = (V)(bd & ~ge);                                                              \
    }                                                                                                        \
    memcpy(g, &gv, sizeof gv);                                                                               \
    /* NOTE: element-wise initializers: one vcvtps2pd each with AVX */                                       \
    *xd = (mgp_v4d){xv[0], xv[1], xv[2], xv[3]};                                                             \
    *gd = (mgp_v4d){gv[0], gv[1], gv[2], gv[3]};                                                             \
    *td = (mgp_v4d){tv2[0], tv2[1], tv2[2], tv2[3]};                                                         \
}                                                                                                            \
/* 8 elements: two of the above (float has one 8-lane split, mgp_max_split8v_float, passed as SPLIT8; W8: the \
   lanes of its ties) */                                                                                     \
MGP_INLINE void mgp_max_split8_##T(const T* x, const T* dy, T K, T sc, T of, T tau, T* g, mgp_v4d* xd,       \
                                   mgp_v4d* gd, mgp_v4d* td, int exact, W* ties) {                           \
    mgp_max_split4_##T(x, dy, K, sc, of, tau, g, xd, gd, td, exact, ties);                                   \
    mgp_max_split4_##T(x + 4, dy + 4, K, sc, of, tau, g + 4, xd + 1, gd + 1, td + 1, exact, ties);           \
}                                                                                                            \
/* one row: *sg = sum(g), *sgx = sum(g*(x - M)), *st = sum(t) in double; the loop shape of mgp_relu_sums_T,  \
   in explicit 4-lane vectors (the scalar split of mgp_max_split_T did not vectorize: 2.4x slower). With keep \
   (a constant where this is inlined) the row's g is also stored in g[0, D), else 8 at a time in a scratch.  \
   exact 0 (a constant): the blocks of 8 through the split without a tie, and 1 returned, nothing written but \
   g, where a block had one (the tail is always exact) */                                                    \
MGP_INLINE int mgp_row_sums_max_pass_##T(double* sg, double* sgx, double* st, T* restrict g, int keep,       \
                                         const T* restrict dy, const T* restrict x, Py_ssize_t D, double M, T K, \
                                         T sc, T of, T tau, int exact) {                                     \
    const mgp_v4d mv = {M, M, M, M};                                                                         \
    mgp_v4d a0 = {0, 0, 0, 0}, a1 = a0, q0 = a0, q1 = a0, u0 = a0, u1 = a0, xd[2], gd[2], td[2];             \
    W8 ties = {0};                                                                                           \
    T scratch[8] __attribute__((aligned(32)));                                                               \
    Py_ssize_t i = 0;                                                                                        \
    for (; i + 8 <= D; i += 8) {                                                                             \
        SPLIT8(x + i, dy + i, K, sc, of, tau, keep ? g + i : scratch, xd, gd, td, exact, &ties);             \
        a0 += gd[0]; q0 += gd[0] * (xd[0] - mv); u0 += td[0];                                                \
        a1 += gd[1]; q1 += gd[1] * (xd[1] - mv); u1 += td[1];                                                \
    }                                                                                                        \
    if (!exact) {                                                                                            \
        uint64_t any[4];                                                                                     \
        memcpy(any, &ties, sizeof any);                                                                      \
        if (any[0] | any[1] | any[2] | any[3]) return 1;                                                     \
    }                                                                                                        \
    double a = 0, q = 0, u = 0;                                                                              \
    for (; i < D; i++) {                                                                                     \
        T gi, t;                                                                                             \
        mgp_max_split_##T((x[i] - K) * sc + of, tau, dy[i], &gi, &t);                                        \
        if (keep) g[i] = gi;                                                                                 \
        a += gi; q += (double)gi * ((double)x[i] - M); u += t;                                               \
    }                                                                                                        \
    *sg = mgp_hsum(a0, a1) + a;                                                                              \
    *sgx = mgp_hsum(q0, q1) + q;                                                                             \
    *st = mgp_hsum(u0, u1) + u;                                                                              \
    return 0;                                                                                                \
}                                                                                                            \
/* the pass above, without a tie first where fast (a constant or not), the exact one where fast is 0 or a block \
   had a tie: the same bits either way (no tie: z >= tau is z > tau). Returns 1 where the exact pass ran.    \
   NOTE: the split without a tie is 7 vector operations per 8 values instead of 11 (no dy/2, one compare and \
   two blends fewer); ties are rare in float data but not in all (x == 0 with offset == tau, TLU's init) */  \
MGP_INLINE int mgp_row_sums_max_in_##T(double* sg, double* sgx, double* st, T* restrict g, int keep,         \
                                       const T* restrict dy, const T* restrict x, Py_ssize_t D, double M, T K, \
                                       T sc, T of, T tau, int fast) {                                        \
    if (fast && !mgp_row_sums_max_pass_##T(sg, sgx, st, g, keep, dy, x, D, M, K, sc, of, tau, 0)) return 0;  \
    mgp_row_sums_max_pass_##T(sg, sgx, st, g, keep, dy, x, D, M, K, sc, of, tau, 1);                         \
    return 1;                                                                                                \
}                                                                                                            \
MG_CLONES static void mgp_row_sums_max_##T(double* sg, double* sgx, double* st, const T* restrict dy,        \
                                           const T* restrict x, Py_ssize_t D, double M, T K, T sc, T of,     \
                                           T tau) {                                                          \
    mgp_row_sums_max_in_##T(sg, sgx, st, NULL, 0, dy, x, D, M, K, sc, of, tau, 0);                           \
}                                                                                                            \
/* one row: dx = a*(g - mg) + b*(x - K) + k */                                                                \
MGP_INLINE void mgp_row_backward_apply_max_in_##T(T* restrict dx, const T* restrict dy, const T* restrict x,  \
                                                  Py_ssize_t D, T a, T mg, T K, T b, T k, T sc, T of,        \
                                                  T tau) {                                                   \
    for (Py_ssize_t d = 0; d < D; d++) {                                                                     \
        T g, t;                                                                                              \
        mgp_max_split_##T((x[d] - K) * sc + of, tau, dy[d], &g, &t);                                         \
        dx[d] = a * (g - mg) + b * (x[d] - K) + k;                                                           \
    }                                                                                                        \
}                                                                                                            \
MG_CLONES static void mgp_row_backward_apply_max_##T(T* restrict dx, const T* restrict dy,                   \
                                                     const T* restrict x, Py_ssize_t D, T a, T mg, T K, T b, \
                                                     T k, T sc, T of, T tau) {                               \
    mgp_row_backward_apply_max_in_##T(dx, dy, x, D, a, mg, K, b, k, sc, of, tau);                            \
}                                                                                                            \
/* FRN + TLU's backward of rows [r0, r1) (row r at x + r*D, channel r % C; rstd, scale: per row; w, of, tau: the  \
   (C,) per-channel values; no center: mean 0, shift 0). Per row: the sums, the coefficients of                 \
   coefficients.backward(center=False) in its operations and order (a = rstd*w, b = -a*(sgx*rstd/D)*rstd,      \
   k = -b*(mean - shift), mg = 0), then dx while the row is in L1: dy and x are read from memory once. The sums  \
   leave the row's g in dx, so the apply, dx = a*(g - mg) + b*(x - K) + k, does not split dy again.              \
   NOTE: the next row's sums are taken before this row's apply, so the sums' horizontal adds and b's division     \
   run beside them, not before them (512 rows of 64 float32: 0.86x the time of a row at a time; docs/perf/     \
   norm-family.md, "2026-12-07 (session 30)"); every row's operations are the same */                             \
MGP_INLINE void mgp_row_norm_apply_max_##T(T* restrict dx, const T* restrict x, Py_ssize_t D, double rstd, T w,  \
                                           double sgx) {                                                     \
    /* NOTE: inlined with the constants mean 0, shift 0 (x - 0 is x exactly: the subtractions fold away) */      \
    const double a = rstd * (double)w, b = -a * (sgx * rstd / (double)D) * rstd;                             \
    const double k = -b * (0.0 - (double)(T)0);                                                              \
    const T ta = (T)a, tmg = (T)0, tK = (T)0, tb = (T)b, tk = (T)k;                                          \
    for (Py_ssize_t d = 0; d < D; d++) dx[d] = ta * (dx[d] - tmg) + tb * (x[d] - tK) + tk;                  \
}                                                                                                            \
MG_CLONES static void mgp_rows_norm_backward_max_##T##_any(T* restrict dx, double* sg, double* sgx, double* st,     \
                                                          const T* restrict dy, const T* restrict x,         \
                                                          const double* rstd, const T* w, const T* scale,    \
                                                          const T* of, const T* tau, Py_ssize_t r0,          \
                                                          Py_ssize_t r1, Py_ssize_t D, Py_ssize_t C) {       \
    if (r0 >= r1) return;                                                                                    \
    Py_ssize_t c = r0 % C, cn;                                                                               \
    /* NOTE: once a row has a tie the run's later rows take the exact split at once: a run with ties costs at  \
       most one row's sums more than the exact split alone */                                                \
    int fast = !mgp_row_sums_max_in_##T(sg + r0, sgx + r0, st + r0, dx + r0 * D, 1, dy + r0 * D, x + r0 * D, D, \
                                        0.0, (T)0, scale[r0], of[c], tau[c], 1);                             \
    for (Py_ssize_t r = r0; r < r1; r++) {                                                                   \
        cn = c + 1 == C ? 0 : c + 1;  /* NOTE: the next row is the next sample's channel 0 (no division per row) */ \
        if (r + 1 < r1)                                                                                      \
            fast = !mgp_row_sums_max_in_##T(sg + r + 1, sgx + r + 1, st + r + 1, dx + (r + 1) * D, 1,        \
                                            dy + (r + 1) * D, x + (r + 1) * D, D, 0.0, (T)0, scale[r + 1],   \
                                            of[cn], tau[cn], fast);                                          \
        mgp_row_norm_apply_max_##T(dx + r * D, x + r * D, D, rstd[r], w[c], sgx[r]);                         \
        c = cn;                                                                                              \
    }                                                                                                        \
}
/* fused gate (EvoNorm), rows with per-row v, lo, hi and affine (scale, offset); gate 0: f = x*sigmoid(v*x),
   gate 1: f = x/den, den = max(lo, u), u = v*x + hi in X (np.maximum's NaN), mu the share of u in the max's
   backward (1, 1/2 on a tie, 0 otherwise, NaN included). Partials (contract): df/dx, df/dv, df/dhi, df/dlo.
   Written in explicit vectors (V: L lanes of T, 8 for float and 4 for double, W: L lanes of the same-size
   unsigned U; GCC vector extensions, blends through masks; the sums after the macro's instances) with a
   scalar tail that computes each element the same way: the scalar
   loops with a sigmoid or a max did not vectorize (3-6 ns an element against 0.2 for the plain apply).
   V2, W2: L2 lanes, the same operations on a wider block first (float: 16, one zmm in the AVX-512 clone, which
   runs the exp polynomial and the blends on half the instructions; double: L2 = L, no wider block), then the
   blocks of L, then the tail: every element goes through the same operations whichever block takes it, so the
   bits do not depend on the clone or on D (docs/perf/norm-family.md, "2026-12-06 night: EvoNorm"). */
typedef float mgp_v4f __attribute__((vector_size(16)));
typedef uint32_t mgp_v4u __attribute__((vector_size(16)));
#if MGP_SPLIT_V4
/* the gate kernels' AVX-512 versions (*_v4: mg_expf.h's exps with min/max clamps) and the clones for the other
   CPUs (*_any), picked per call by this flag, set when the module is loaded */
static int mgp_cpu_v4;
__attribute__((constructor)) static void mgp_cpu_v4_init(void) {
    __builtin_cpu_init();
    mgp_cpu_v4 = __builtin_cpu_supports("x86-64-v4");
}
/* tests: on = 0 takes the clones, 1 the AVX-512 versions (the gates' and FRN + TLU's float backward; 1 only where
   the CPU has AVX-512); returns the former */
MGP_INLINE int mgp_gate_v4(int on) {
    const int was = mgp_cpu_v4;
    if (on >= 0) mgp_cpu_v4 = on && __builtin_cpu_supports("x86-64-v4");
    return was;
}
/* the gate kernels for AVX2 + FMA (*_v3: mg_expf.h's exps and phases.h's den with intrinsics; session 36), picked
   where the CPU has x86-64-v3 but not AVX-512, by this flag, set when the module is loaded */
static int mgp_cpu_v3;
__attribute__((constructor)) static void mgp_cpu_v3_init(void) {
    __builtin_cpu_init();
    mgp_cpu_v3 = __builtin_cpu_supports("x86-64-v3");
}
/* tests: on = 0 takes the clones (*_any) where the AVX-512 versions are off, 1 the AVX2 versions (1 only where the
   CPU has x86-64-v3); returns the former */
MGP_INLINE int mgp_gate_v3(int on) {
    const int was = mgp_cpu_v3;
    if (on >= 0) mgp_cpu_v3 = on && __builtin_cpu_supports("x86-64-v3");
    return was;
}
/* the gate kernels' version for the other CPUs (*_any, MGP_GATE_PICK) is compiled for the baseline only: where the
   CPU has x86-64-v3 the *_v3 kernels run instead, so its x86-64-v3 clone was reached only by tests (session 37) */
#define MGP_BASELINE
/* call F's AVX-512, AVX2 or other CPUs' version with ARGS */
#define MGP_GATE_PICK(F, ARGS)                                                                               \
    do {                                                                                                     \
        if (mgp_cpu_v4) F##_v4 ARGS;                                                                         \
        else if (mgp_cpu_v3) F##_v3 ARGS;                                                                    \
        else F##_any ARGS;                                                                                   \
    } while (0)
#define MGP_GATE_DISPATCH(T)                                                                                 \
MGP_INLINE void mgp_row_apply_gate_##T(T* restrict y, const T* restrict x, Py_ssize_t D, int gate, T v, T lo, \
                                       T hi, T sc, T of) {                                                   \
    if (mgp_cpu_v4) mgp_row_apply_gate_##T##_v4(y, x, D, gate, v, lo, hi, sc, of);                          \
    else if (mgp_cpu_v3) mgp_row_apply_gate_##T##_v3p(y, x, D, gate, v, lo, hi, sc, of);  /* gate 0's pairs */ \
    else mgp_row_apply_gate_##T##_any(y, x, D, gate, v, lo, hi, sc, of);                                    \
}                                                                                                            \
MGP_INLINE void mgp_row_backward_apply_gate_##T(T* dx, const T* restrict dy, const T* restrict x,             \
                                                Py_ssize_t D, int gate, T a, T K, T b, T k, T v, T lo, T hi, \
                                                const T* kept) {                                             \
    MGP_GATE_PICK(mgp_row_backward_apply_gate_##T, (dx, dy, x, D, gate, a, K, b, k, v, lo, hi, kept));       \
}
#else
MGP_INLINE int mgp_gate_v4(int on) { (void)on; return 0; }
MGP_INLINE int mgp_gate_v3(int on) { (void)on; return 0; }
#endif
/* gate 0's f = x*sigmoid(v*x) from e = exp(-v*x), the exp's argument -v*x taken as (-v)*x (the same bits but for
   a NaN's sign; no negation per element): float as x/(1 + e), one rounding and one operation fewer than x*(1/(1 + e))
   (docs/perf/norm-family.md, "EvoNorm and FRN, session 32"); double keeps x*(1/(1 + e)) */
#define MGP_XSIG_float(x, e) ((x) / (1 + (e)))
#define MGP_XSIG_double(x, e) ((x) * (1 / (1 + (e))))
/* gate 0's y = f*sc + of: float as one FMA (one rounding; one vector operation of the apply's about 18,
   docs/perf/norm-family.md, "EvoNorm's gate, session 34"), lane by lane as mg_expf.h's exp so that every clone
   gives the same bits; double keeps two roundings (F: the lanes' type, S: a scalar) */
#define MGP_GATE0_Y_float(F, FMA, f, sc, of) FMA(F, f, sc, MGP_LANES(F, of))
#define MGP_GATE0_Y_double(F, FMA, f, sc, of) ((f) * (sc) + (of))
/* sc and of as MGP_GATE0_Y_T takes them, taken once a row. NOTE: float's lanes (F){0} + s are an addition GCC must
   keep; inside the loop's gate 0 branch it was not hoisted (an add and a broadcast of each per block) */
#define MGP_GATE0_AFF_float(F, s) ((F){0} + (s))
#define MGP_GATE0_AFF_double(F, s) (s)
#define MGP_GATE0_YS_float(f, sc, of) __builtin_fmaf((f), (sc), (of))
#define MGP_GATE0_YS_double(f, sc, of) ((f) * (sc) + (of))
#define mgp_gate_exp_float mgp_expf_fma
#define mgp_gate_exp_double mgp_exp_fma
#define MGP_GATE(T, U, V, W, L, V2, W2, L2)                                                                  \
MGP_INLINE T mgp_gate_den_##T(T x, T v, T lo, T hi, T* mu) {                                                 \
    const T u = v * x + hi;                                                                                  \
    *mu = u > lo ? (T)1 : u == lo ? (T)0.5 : (T)0;                                                           \
    return (u > lo || u != u) ? u : lo;                                                                      \
}                                                                                                            \
MGP_INLINE V mgp_bl_##T(W m, V a, V b) { return (V)((m & (W)a) | (~m & (W)b)); }                             \
MGP_INLINE V mgp_gate_denv_##T(V x, T v, T lo, T hi, V* mu) {                                                \
    const V u = v * x + hi, lov = (V){0} + lo;                                                               \
    const W gt = (W)(u > lov), eq = (W)(u == lov), nan = (W)(u != u);                                        \
    *mu = mgp_bl_##T(gt, (V){0} + 1, mgp_bl_##T(eq, (V){0} + (T)0.5, (V){0}));                               \
    return mgp_bl_##T(gt | nan, u, lov);                                                                     \
}                                                                                                            \
MGP_INLINE V2 mgp_bl2_##T(W2 m, V2 a, V2 b) { return (V2)((m & (W2)a) | (~m & (W2)b)); }                     \
MGP_INLINE V2 mgp_gate_denv2_##T(V2 x, T v, T lo, T hi, V2* mu) {  /* mgp_gate_denv_T on L2 lanes */         \
    const V2 u = v * x + hi, lov = (V2){0} + lo;                                                             \
    const W2 gt = (W2)(u > lov), eq = (W2)(u == lov), nan = (W2)(u != u);                                    \
    *mu = mgp_bl2_##T(gt, (V2){0} + 1, mgp_bl2_##T(eq, (V2){0} + (T)0.5, (V2){0}));                          \
    return mgp_bl2_##T(gt | nan, u, lov);                                                                    \
}                                                                                                            \
MGP_INLINE V mgp_loadv_##T(const T* p) { V v; memcpy(&v, p, sizeof v); return v; }                           \
MGP_INLINE V2 mgp_loadv2_##T(const T* p) { V2 v; memcpy(&v, p, sizeof v); return v; }                        \

/* MGP_GATE_ROWS's loads of V2 (L2 lanes), which may be V */
#define MGP_LOADV2(T, V, V2, p) _Generic((V2){0}, V: mgp_loadv_##T, default: mgp_loadv2_##T)(p)
/* EXP, EXP2: the exp on L and L2 lanes; FMA: gate 0's y's fused multiply-add (mg_expf.h's MGP_FMA_V, or MGP_FMA_3);
   DEN, DEN2: gate 1's den on L and L2 lanes (mgp_gate_denv_T and mgp_gate_denv2_T, or mgp_gate_den_v3_*) */
#define MGP_GATE_ROWS(T, V, L, V2, L2, SFX, ATTR, EXP, EXP2, FMA, DEN, DEN2)                                 \
/* one row: y = f*sc + of (blocks of L2, of L, then the tail: the same operations per element in each) */    \
ATTR static void mgp_row_apply_gate_##T##SFX(T* restrict y, const T* restrict x, Py_ssize_t D, int gate, T v, \
                                             T lo, T hi, T sc, T of) {                                       \
    const T nv = -v;                                                                                         \
    const __auto_type sc2 = MGP_GATE0_AFF_##T(V2, sc);                                                       \
    const __auto_type of2 = MGP_GATE0_AFF_##T(V2, of);                                                       \
    const __auto_type sc1 = MGP_GATE0_AFF_##T(V, sc);                                                        \
    const __auto_type of1 = MGP_GATE0_AFF_##T(V, of);                                                        \
    Py_ssize_t d = 0;                                                                                        \
    for (; d + L2 <= D; d += L2) {                                                                           \
        const V2 xv = MGP_LOADV2(T, V, V2, x + d);                                                                 \
        V2 yv, mu;                                                                                           \
        if (gate == 0) yv = MGP_GATE0_Y_##T(V2, FMA, MGP_XSIG_##T(xv, EXP2(nv * xv)), sc2, of2);             \
        else yv = xv / DEN2(xv, v, lo, hi, &mu) * sc + of;                                                   \
        memcpy(y + d, &yv, sizeof yv);                                                                       \
    }                                                                                                        \
    for (; d + L <= D; d += L) {                                                                             \
        const V xv = mgp_loadv_##T(x + d);                                                                   \
        V yv, mu;                                                                                            \
        if (gate == 0) yv = MGP_GATE0_Y_##T(V, FMA, MGP_XSIG_##T(xv, EXP(nv * xv)), sc1, of1);               \
        else yv = xv / DEN(xv, v, lo, hi, &mu) * sc + of;                                                    \
        memcpy(y + d, &yv, sizeof yv);                                                                       \
    }                                                                                                        \
    for (; d < D; d++) {                                                                                     \
        T mu;                                                                                                \
        y[d] = gate == 0 ? MGP_GATE0_YS_##T(MGP_XSIG_##T(x[d], mgp_gate_exp_##T(nv * x[d])), sc, of)         \
                         : x[d] / mgp_gate_den_##T(x[d], v, lo, hi, &mu) * sc + of;                          \
    }                                                                                                        \
}                                                                                                            \
/* one row: dx = a*dy*df/dx + b*(x - K) + k; with kept: what mgp_row_sums_gate_T kept for this row (gate 0 the   \
   sigmoids, gate 1 the quotients r = 1/den), not recomputed (the same bits; the exp and the division are most of \
   this pass). kept may be dx itself (each element read before its dx is written: EvoNorm-B0's backward keeps r \
   there, no buffer). df/dx = s + v*x*s*(1 - s) as s - (-v*x)*(s*(1 - s)): the same bits, -v*x being the exp's \
   argument */                                                                                               \
ATTR static void mgp_row_backward_apply_gate_##T##SFX(T* dx, const T* restrict dy, const T* restrict x,       \
                                                      Py_ssize_t D, int gate, T a, T K, T b, T k, T v, T lo, T hi, \
                                                      const T* kept) {                                       \
    const T nv = -v;                                                                                         \
    Py_ssize_t d = 0;                                                                                        \
    for (; d + L2 <= D; d += L2) {                                                                           \
        const V2 xv = MGP_LOADV2(T, V, V2, x + d), dv = MGP_LOADV2(T, V, V2, dy + d);                                    \
        V2 fx;                                                                                               \
        if (gate == 0) {                                                                                     \
            const V2 w = nv * xv, s = kept ? MGP_LOADV2(T, V, V2, kept + d) : 1 / (1 + EXP2(w));                   \
            fx = s - w * (s * (1 - s));                                                                      \
        } else {                                                                                             \
            V2 mu;                                                                                           \
            const V2 den = DEN2(xv, v, lo, hi, &mu), r = kept ? MGP_LOADV2(T, V, V2, kept + d) : 1 / den;          \
            fx = r - xv * r * r * v * mu;                                                                    \
        }                                                                                                    \
        const V2 out = a * dv * fx + b * (xv - K) + k;                                                       \
        memcpy(dx + d, &out, sizeof out);                                                                    \
    }                                                                                                        \
    for (; d + L <= D; d += L) {                                                                             \
        const V xv = mgp_loadv_##T(x + d), dv = mgp_loadv_##T(dy + d);                                       \
        V fx;                                                                                                \
        if (gate == 0) {                                                                                     \
            const V w = nv * xv, s = kept ? mgp_loadv_##T(kept + d) : 1 / (1 + EXP(w));                      \
            fx = s - w * (s * (1 - s));                                                                      \
        } else {                                                                                             \
            V mu;                                                                                            \
            const V den = DEN(xv, v, lo, hi, &mu), r = kept ? mgp_loadv_##T(kept + d) : 1 / den;             \
            fx = r - xv * r * r * v * mu;                                                                    \
        }                                                                                                    \
        const V out = a * dv * fx + b * (xv - K) + k;                                                        \
        memcpy(dx + d, &out, sizeof out);                                                                    \
    }                                                                                                        \
    for (; d < D; d++) {                                                                                     \
        T fx;                                                                                                \
        if (gate == 0) {                                                                                     \
            const T w = nv * x[d], s = kept ? kept[d] : (T)1 / ((T)1 + mgp_gate_exp_##T(w));                 \
            fx = s - w * (s * ((T)1 - s));                                                                   \
        } else {                                                                                             \
            T mu;                                                                                            \
            const T den = mgp_gate_den_##T(x[d], v, lo, hi, &mu), r = kept ? kept[d] : (T)1 / den;          \
            fx = r - x[d] * r * r * v * mu;                                                                  \
        }                                                                                                    \
        dx[d] = a * dy[d] * fx + b * (x[d] - K) + k;                                                         \
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
#if MGP_SPLIT_V4
/* The rows' kernels on CPUs with AVX2 and FMA (x86-64-v3, AVX-512 ones included): the same operations, order and
   bits as the *_any clones, with some double adds taken as a fused multiply-add by 1 (fma(v, 1, acc) rounds
   v + acc once, as vaddpd does: v*1 is exact). NOTE: the clones' loops are bound by the two FP add pipes (Zen 3:
   the adds, subtractions and widenings, with the two multiply pipes half idle); an add moved to a multiply pipe
   balances them (docs/perf/norm-family.md, "FRN's and the row kernels' AVX2 paths, session 36"). Picked per call
   by mgp_rows_cpu_v3, set when the module is loaded. */
static int mgp_rows_cpu_v3;
__attribute__((constructor)) static void mgp_rows_cpu_v3_init(void) {
    __builtin_cpu_init();
    mgp_rows_cpu_v3 = __builtin_cpu_supports("x86-64-v3");
}
/* tests: on = 0 takes the *_any clones, 1 the v3 kernels (1 only where the CPU has them); returns the former */
MGP_INLINE int mgp_rows_v3(int on) {
    const int was = mgp_rows_cpu_v3;
    if (on >= 0) mgp_rows_cpu_v3 = on && __builtin_cpu_supports("x86-64-v3");
    return was;
}
MGP_INLINE MGP_TARGET_V3 __m256d mgp_add_v3(__m256d acc, __m256d v) {
    return _mm256_fmadd_pd(acc, _mm256_set1_pd(1.0), v);  /* NOTE: acc*1 + v: acc's NaN first, as acc + v's */
}
MGP_INLINE MGP_TARGET_V3 __m256d mgp_wload_v3_float(const float* p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); }
MGP_INLINE MGP_TARGET_V3 __m256d mgp_wload_v3_double(const double* p) { return _mm256_loadu_pd(p); }
/* one row's 4 values into its sums: d = x - K (center; else x itself, x - 0 being x), a += d, q += d*d */
#define MGP_STATS4_V3(T, p, center, k, a, q) do {                                                            \
        __m256d d_ = mgp_wload_v3_##T(p);                                                                    \
        if (center) d_ = _mm256_sub_pd(d_, k);                                                               \
        a = mgp_add_v3(a, d_);                                                                               \
        q = _mm256_add_pd(q, _mm256_mul_pd(d_, d_));                                                         \
    } while (0)
#define MGP_ROWS_V3(T)                                                                                       \
/* mgp_rows_stats_T_any's pairs of rows (center a constant where this is inlined) */                         \
MGP_INLINE MGP_TARGET_V3 void mgp_rows_stats_pairs_v3_##T(double* mean, double* m2, const T* x, int center,   \
                                                        Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t D) {        \
    const double M = (double)D;                                                                              \
    for (Py_ssize_t r = r0; r + 2 <= r1; r += 2) {                                                           \
        const T *x0 = x + r * D, *x1 = x0 + D;                                                               \
        const double K0 = center ? (double)x0[0] : 0.0, K1 = center ? (double)x1[0] : 0.0;                   \
        const __m256d k0 = _mm256_set1_pd(K0), k1 = _mm256_set1_pd(K1);                                     \
        __m256d a00 = _mm256_setzero_pd(), a01 = a00, q00 = a00, q01 = a00, a10 = a00, a11 = a00, q10 = a00, \
                q11 = a00;                                                                                   \
        const T* nx = x + (r + 3 < r1 ? r + 3 : r1 - 1) * D;  /* NOTE: as mgp_rows_stats_T_any's prefetch */ \
        Py_ssize_t i = 0;                                                                                    \
        for (; i + 8 <= D; i += 8) {                                                                         \
            __builtin_prefetch(nx + i, 0, 3);                                                                \
            MGP_STATS4_V3(T, x0 + i, center, k0, a00, q00);                                                  \
            MGP_STATS4_V3(T, x0 + i + 4, center, k0, a01, q01);                                              \
            MGP_STATS4_V3(T, x1 + i, center, k1, a10, q10);                                                  \
            MGP_STATS4_V3(T, x1 + i + 4, center, k1, a11, q11);                                              \
        }                                                                                                    \
        MGP_ROWS2_TAIL(x0, x1, i, D, K0, K1);                                                                \
        mgp_stats_out2(mean + r, m2 + r, center, K0, K1, M, (mgp_v4d)_mm256_add_pd(a00, a01),                \
                       (mgp_v4d)_mm256_add_pd(a10, a11), (mgp_v4d)_mm256_add_pd(q00, q01),                   \
                       (mgp_v4d)_mm256_add_pd(q10, q11), (mgp_v4d){ta0, ta1, tq0, tq1});                     \
    }                                                                                                        \
}                                                                                                            \
MGP_TARGET_V3 static void mgp_rows_stats_##T##_v3(double* mean, double* m2, const T* x, int center,          \
                                                  Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t D) {              \
    if (center) mgp_rows_stats_pairs_v3_##T(mean, m2, x, 1, r0, r1, D);                                      \
    else mgp_rows_stats_pairs_v3_##T(mean, m2, x, 0, r0, r1, D);                                             \
    if ((r1 - r0) % 2) mgp_row_stats_##T(mean + r1 - 1, m2 + r1 - 1, x + (r1 - 1) * D, center, D);           \
}                                                                                                            \
/* row_stats: the v3 kernel where the CPU has it */                                                          \
MGP_INLINE void mgp_rows_stats_##T(double* mean, double* m2, const T* x, int center, Py_ssize_t r0,          \
                                   Py_ssize_t r1, Py_ssize_t D) {                                            \
    if (mgp_rows_cpu_v3) mgp_rows_stats_##T##_v3(mean, m2, x, center, r0, r1, D);                                 \
    else mgp_rows_stats_##T##_any(mean, m2, x, center, r0, r1, D);                                           \
}
MGP_ROWS_V3(float)
MGP_ROWS_V3(double)
#else
MGP_INLINE int mgp_rows_v3(int on) { (void)on; return 0; }
#define mgp_rows_stats_float mgp_rows_stats_float_any
#define mgp_rows_stats_double mgp_rows_stats_double_any
#endif
/* FRN + TLU's backward sums, float: mgp_max_split4_float's operations on 8 lanes at once, each half widened
   (the same bits as two 4-lane splits; the 4-lane splits ran the sums pass at about 2.7 cycles an element).
   NOTE: every half is widened from memory (vcvtps2pd ymm, m128: no shuffle-port uop), x where it lies, g and t
   where they are stored (g: dx's row in the fused kernel, else a scratch; t: the stack); widened from registers,
   the 6 conversions and 3 lane extracts per 8 values all queue on the one shuffle port (the sums pass 1.25-1.35x
   slower; docs/perf/norm-family.md, "2026-12-06 night"). The empty asm with a memory clobber keeps GCC from
   forwarding the stored g and t back as registers. */
MGP_INLINE mgp_v4d mgp_widen4_mem_float(const float* p) { return (mgp_v4d){p[0], p[1], p[2], p[3]}; }
MGP_INLINE void mgp_max_split8v_float(const float* x, const float* dy, float K, float sc, float of, float tau,
                                      float* g, mgp_v4d* xd, mgp_v4d* gd, mgp_v4d* td, int exact, mgp_v8u* ties) {
    mgp_v8f xv, dv, gv, tv2;
    memcpy(&xv, x, sizeof xv);
    memcpy(&dv, dy, sizeof dv);
    const mgp_v8f kv = {K, K, K, K, K, K, K, K}, sv = {sc, sc, sc, sc, sc, sc, sc, sc};
    const mgp_v8f ov = {of, of, of, of, of, of, of, of}, tv = {tau, tau, tau, tau, tau, tau, tau, tau};
    const mgp_v8f z = (xv - kv) * sv + ov;
    if (exact) {
        const mgp_v8f h = dv * 0.5f;
        const mgp_v8u gt = (mgp_v8u)(z > tv), eq = (mgp_v8u)(z == tv), bd = (mgp_v8u)dv, bh = (mgp_v8u)h;
        gv = (mgp_v8f)((bd & gt) | (bh & eq)); tv2 = (mgp_v8f)((bd & ~(gt | eq)) | (bh & eq));
    } else {
        const mgp_v8u ge = (mgp_v8u)(z >= tv), bd = (mgp_v8u)dv;
        *ties |= (mgp_v8u)(z == tv);
        gv = (mgp_v8f)(bd & ge); tv2 = (mgp_v8f)(bd & ~ge);
    }
    float t[8] __attribute__((aligned(32)));
    memcpy(g, &gv, sizeof gv);
    memcpy(t, &tv2, sizeof tv2);
    __asm__ volatile("" ::: "memory");
    xd[0] = mgp_widen4_mem_float(x); xd[1] = mgp_widen4_mem_float(x + 4);
    gd[0] = mgp_widen4_mem_float(g); gd[1] = mgp_widen4_mem_float(g + 4);
    td[0] = mgp_widen4_mem_float(t); td[1] = mgp_widen4_mem_float(t + 4);
}
MGP_MAX(float, uint32_t, mgp_v4f, mgp_v4u, mgp_max_split8v_float, mgp_v8u)
MGP_MAX(double, uint64_t, mgp_v4d, mgp_v4ul, mgp_max_split8_double, mgp_v4ul)
#define mgp_rows_norm_backward_max_double mgp_rows_norm_backward_max_double_any
#if MGP_SPLIT_V4
/* the float sums passes' scalar tail from i on (the AVX2 and AVX-512 ones below): g and the sums a, q, u (declared
   here) of mgp_max_split_float, value by value */
#define MGP_MAX_SUMS_TAIL(g, dy, x, i, D, sc, of, tau)                                                       \
    double a = 0, q = 0, u = 0;                                                                              \
    for (; i < D; i++) {                                                                                     \
        float gi, ti;                                                                                        \
        mgp_max_split_float(x[i] * sc + of, tau, dy[i], &gi, &ti);                                           \
        g[i] = gi;                                                                                           \
        a += gi; q += (double)gi * (double)x[i]; u += ti;                                                    \
    }
/* FRN + TLU's backward, float, AVX2 and FMA (picked per call by mgp_rows_cpu_v3 where mgp_cpu_v4 is not set): the
   operations of mgp_rows_norm_backward_max_float_any (mgp_max_split8v_float's split, x, g and t widened from
   memory, 4-lane double sums) in intrinsics, sum(g) and sum(t) added through mgp_add_v3 (the same bits) */
MGP_INLINE MGP_TARGET_V3 void mgp_max_acc4_v3(__m256d* A, __m256d* Q, __m256d* U, const float* x, const float* g,
                                              const float* t) {
    const __m256d gd = mgp_wload_v3_float(g);
    *A = mgp_add_v3(*A, gd);
    *Q = _mm256_add_pd(*Q, _mm256_mul_pd(gd, mgp_wload_v3_float(x)));
    *U = mgp_add_v3(*U, mgp_wload_v3_float(t));
}
MGP_INLINE MGP_TARGET_V3 int mgp_row_sums_max_pass_v3(double* sg, double* sgx, double* st, float* restrict g,
                                                      const float* restrict dy, const float* restrict x,
                                                      Py_ssize_t D, float sc, float of, float tau, int exact) {
    __m256d A0 = _mm256_setzero_pd(), A1 = A0, Q0 = A0, Q1 = A0, U0 = A0, U1 = A0;
    __m256 ties = _mm256_setzero_ps();
    float t[8] __attribute__((aligned(32)));
    Py_ssize_t i = 0;
    for (; i + 8 <= D; i += 8) {
        const __m256 dv = _mm256_loadu_ps(dy + i), tw = _mm256_set1_ps(tau);
        const __m256 z = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), _mm256_set1_ps(sc)), _mm256_set1_ps(of));
        __m256 gv, tv;
        if (exact) {
            const __m256 gt = _mm256_cmp_ps(z, tw, _CMP_GT_OQ), eq = _mm256_cmp_ps(z, tw, _CMP_EQ_OQ);
            const __m256 h = _mm256_and_ps(_mm256_mul_ps(dv, _mm256_set1_ps(0.5f)), eq);
            gv = _mm256_or_ps(_mm256_and_ps(dv, gt), h);
            tv = _mm256_or_ps(_mm256_andnot_ps(_mm256_or_ps(gt, eq), dv), h);
        } else {
            const __m256 ge = _mm256_cmp_ps(z, tw, _CMP_GE_OQ);
            ties = _mm256_or_ps(ties, _mm256_cmp_ps(z, tw, _CMP_EQ_OQ));
            gv = _mm256_and_ps(dv, ge);
            tv = _mm256_andnot_ps(ge, dv);
        }
        _mm256_storeu_ps(g + i, gv);
        _mm256_store_ps(t, tv);
        __asm__ volatile("" ::: "memory");  /* NOTE: widened from memory, as mgp_max_split8v_float's */
        mgp_max_acc4_v3(&A0, &Q0, &U0, x + i, g + i, t);
        mgp_max_acc4_v3(&A1, &Q1, &U1, x + i + 4, g + i + 4, t + 4);
    }
    if (!exact && _mm256_movemask_ps(ties)) return 1;
    MGP_MAX_SUMS_TAIL(g, dy, x, i, D, sc, of, tau);
    *sg = mgp_hsum((mgp_v4d)A0, (mgp_v4d)A1) + a;
    *sgx = mgp_hsum((mgp_v4d)Q0, (mgp_v4d)Q1) + q;
    *st = mgp_hsum((mgp_v4d)U0, (mgp_v4d)U1) + u;
    return 0;
}
/* FRN + TLU's float backward's row loop on the AVX2 (S = v3) or AVX-512 (S = v4) sums pass: the S versions of
   mgp_row_sums_max_in_T and of mgp_rows_norm_backward_max_float_any's row loop */
#define MGP_MAX_ROW_LOOP(S, TGT)                                                                                     \
MGP_INLINE TGT int mgp_row_sums_max_in_##S(double* sg, double* sgx, double* st, float* restrict g,                   \
                                                    const float* restrict dy, const float* restrict x, Py_ssize_t D, \
                                                    float sc, float of, float tau, int fast) {                       \
    if (fast && !mgp_row_sums_max_pass_##S(sg, sgx, st, g, dy, x, D, sc, of, tau, 0)) return 0;                      \
    mgp_row_sums_max_pass_##S(sg, sgx, st, g, dy, x, D, sc, of, tau, 1);                                             \
    return 1;                                                                                                        \
}                                                                                                                    \
TGT static void mgp_rows_norm_backward_max_float_##S(float* restrict dx, double* sg, double* sgx,                    \
                                                               double* st, const float* restrict dy,                 \
                                                               const float* restrict x, const double* rstd,          \
                                                               const float* w, const float* scale, const float* of,  \
                                                               const float* tau, Py_ssize_t r0, Py_ssize_t r1,       \
                                                               Py_ssize_t D, Py_ssize_t C) {                         \
    if (r0 >= r1) return;                                                                                            \
    Py_ssize_t c = r0 % C, cn;                                                                                       \
    int fast = !mgp_row_sums_max_in_##S(sg + r0, sgx + r0, st + r0, dx + r0 * D, dy + r0 * D, x + r0 * D, D,         \
                                       scale[r0], of[c], tau[c], 1);                                                 \
    for (Py_ssize_t r = r0; r < r1; r++) {                                                                           \
        cn = c + 1 == C ? 0 : c + 1;                                                                                 \
        if (r + 1 < r1)                                                                                              \
            fast = !mgp_row_sums_max_in_##S(sg + r + 1, sgx + r + 1, st + r + 1, dx + (r + 1) * D, dy + (r + 1) * D, \
                                           x + (r + 1) * D, D, scale[r + 1], of[cn], tau[cn], fast);                 \
        mgp_row_norm_apply_max_float(dx + r * D, x + r * D, D, rstd[r], w[c], sgx[r]);                               \
        c = cn;                                                                                                      \
    }                                                                                                                \
}
MGP_MAX_ROW_LOOP(v3, MGP_TARGET_V3)
/* FRN + TLU's backward, float, AVX-512 (picked per call by mgp_cpu_v4, as the gate kernels): the operations of
   mgp_rows_norm_backward_max_float_any in intrinsics, the split on 16 lanes, each sum in one 8-lane double
   accumulator (lane j: the row's elements j mod 8, so its halves are a0 and a1 of mgp_row_sums_max_pass_T and the
   bits are the same). Without a tie, dy and x are widened from memory and the split is a mask: sum(g) and sum(t)
   as masked adds of dy (the lanes left out would add +0, which changes no sum: a sum from +0 is never -0), sum(g*x)
   on dy zeroed where not g (so that 0*inf still gives NaN). NOTE: GCC's x86-64-v4 clone of the generic pass built
   the widenings lane by lane (1.4x slower than the AVX2 clone); the AVX2 clone spends 6 widenings and 8 double
   operations per 8 values (docs/perf/norm-family.md, "FRN's backward and S0's gate against the triad, session 35") */
MGP_INLINE MGP_TARGET_V4 void mgp_max_acc8_v4(__m512d* A, __m512d* Q, __m512d* U, const float* x, const float* dy,
                                              __m256 gv, __m256 tv, __mmask8 ge, int exact) {
    const __m512d xd = _mm512_cvtps_pd(_mm256_loadu_ps(x));
    if (exact) {
        const __m512d gd = _mm512_cvtps_pd(gv);
        *A = _mm512_add_pd(*A, gd);
        *Q = _mm512_add_pd(*Q, _mm512_mul_pd(gd, xd));
        *U = _mm512_add_pd(*U, _mm512_cvtps_pd(tv));
    } else {
        const __m512d dd = _mm512_cvtps_pd(_mm256_loadu_ps(dy));
        *A = _mm512_mask_add_pd(*A, ge, *A, dd);
        *Q = _mm512_add_pd(*Q, _mm512_mul_pd(_mm512_maskz_mov_pd(ge, dd), xd));
        *U = _mm512_mask_add_pd(*U, (__mmask8)~ge, *U, dd);
    }
}
MGP_INLINE MGP_TARGET_V4 int mgp_row_sums_max_pass_v4(double* sg, double* sgx, double* st, float* restrict g,
                                                      const float* restrict dy, const float* restrict x,
                                                      Py_ssize_t D, float sc, float of, float tau, int exact) {
    __m512d A = _mm512_setzero_pd(), Q = A, U = A;
    __mmask16 ties = 0;
    Py_ssize_t i = 0;
    for (; i + 16 <= D; i += 16) {
        const __m512 dv = _mm512_loadu_ps(dy + i), tw = _mm512_set1_ps(tau);
        const __m512 z = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), _mm512_set1_ps(sc)), _mm512_set1_ps(of));
        __m512 gv, tv = dv;
        __mmask16 ge = 0;
        if (exact) {
            const __mmask16 gt = _mm512_cmp_ps_mask(z, tw, _CMP_GT_OQ), eq = _mm512_cmp_ps_mask(z, tw, _CMP_EQ_OQ);
            const __m512 h = _mm512_mul_ps(dv, _mm512_set1_ps(0.5f));
            gv = _mm512_mask_mov_ps(_mm512_maskz_mov_ps(gt, dv), eq, h);
            tv = _mm512_mask_mov_ps(_mm512_maskz_mov_ps((__mmask16)~(gt | eq), dv), eq, h);
        } else {
            ge = _mm512_cmp_ps_mask(z, tw, _CMP_GE_OQ);
            ties |= _mm512_cmp_ps_mask(z, tw, _CMP_EQ_OQ);
            gv = _mm512_maskz_mov_ps(ge, dv);
        }
        _mm512_storeu_ps(g + i, gv);
        mgp_max_acc8_v4(&A, &Q, &U, x + i, dy + i, _mm512_castps512_ps256(gv), _mm512_castps512_ps256(tv),
                        (__mmask8)ge, exact);
        mgp_max_acc8_v4(&A, &Q, &U, x + i + 8, dy + i + 8, _mm512_extractf32x8_ps(gv, 1),
                        _mm512_extractf32x8_ps(tv, 1), (__mmask8)(ge >> 8), exact);
    }
    for (; i + 8 <= D; i += 8) {
        const __m256 dv = _mm256_loadu_ps(dy + i), tw = _mm256_set1_ps(tau);
        const __m256 z = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), _mm256_set1_ps(sc)), _mm256_set1_ps(of));
        __m256 gv, tv = dv;
        __mmask8 ge = 0;
        if (exact) {
            const __mmask8 gt = _mm256_cmp_ps_mask(z, tw, _CMP_GT_OQ), eq = _mm256_cmp_ps_mask(z, tw, _CMP_EQ_OQ);
            const __m256 h = _mm256_mul_ps(dv, _mm256_set1_ps(0.5f));
            gv = _mm256_mask_mov_ps(_mm256_maskz_mov_ps(gt, dv), eq, h);
            tv = _mm256_mask_mov_ps(_mm256_maskz_mov_ps((__mmask8)~(gt | eq), dv), eq, h);
        } else {
            ge = _mm256_cmp_ps_mask(z, tw, _CMP_GE_OQ);
            ties |= _mm256_cmp_ps_mask(z, tw, _CMP_EQ_OQ);
            gv = _mm256_maskz_mov_ps(ge, dv);
        }
        _mm256_storeu_ps(g + i, gv);
        mgp_max_acc8_v4(&A, &Q, &U, x + i, dy + i, gv, tv, ge, exact);
    }
    if (!exact && ties) return 1;
    MGP_MAX_SUMS_TAIL(g, dy, x, i, D, sc, of, tau);
    const mgp_v4d A0 = (mgp_v4d)_mm512_castpd512_pd256(A), A1 = (mgp_v4d)_mm512_extractf64x4_pd(A, 1);
    const mgp_v4d Q0 = (mgp_v4d)_mm512_castpd512_pd256(Q), Q1 = (mgp_v4d)_mm512_extractf64x4_pd(Q, 1);
    const mgp_v4d U0 = (mgp_v4d)_mm512_castpd512_pd256(U), U1 = (mgp_v4d)_mm512_extractf64x4_pd(U, 1);
    *sg = mgp_hsum(A0, A1) + a;
    *sgx = mgp_hsum(Q0, Q1) + q;
    *st = mgp_hsum(U0, U1) + u;
    return 0;
}
MGP_MAX_ROW_LOOP(v4, MGP_TARGET_V4)
MGP_INLINE void mgp_rows_norm_backward_max_float(float* restrict dx, double* sg, double* sgx, double* st,
                                                 const float* restrict dy, const float* restrict x,
                                                 const double* rstd, const float* w, const float* scale,
                                                 const float* of, const float* tau, Py_ssize_t r0, Py_ssize_t r1,
                                                 Py_ssize_t D, Py_ssize_t C) {
    if (mgp_cpu_v4) mgp_rows_norm_backward_max_float_v4(dx, sg, sgx, st, dy, x, rstd, w, scale, of, tau, r0, r1, D, C);
    else if (mgp_rows_cpu_v3)
        mgp_rows_norm_backward_max_float_v3(dx, sg, sgx, st, dy, x, rstd, w, scale, of, tau, r0, r1, D, C);
    else mgp_rows_norm_backward_max_float_any(dx, sg, sgx, st, dy, x, rstd, w, scale, of, tau, r0, r1, D, C);
}
#else
#define mgp_rows_norm_backward_max_float mgp_rows_norm_backward_max_float_any
#endif
MGP_INLINE mgp_v4d mgp_widen4_mem_double(const double* p) { return mgp_load4_double(p); }
MGP_INLINE mgp_v8d mgp_widen8_mem_float(const float* p) {
    return (mgp_v8d){p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]};
}
MGP_INLINE mgp_v8d mgp_widen8_mem_double(const double* p) { mgp_v8d v; memcpy(&v, p, sizeof v); return v; }
MGP_INLINE mgp_v4d mgp_half8d(mgp_v8d v, int h) {
    const mgp_v4d lo = {v[0], v[1], v[2], v[3]}, hi = {v[4], v[5], v[6], v[7]};
    return h == 0 ? lo : hi;
}
/* blocks of 16 floats or 8 doubles (one zmm in the AVX-512 clone, two ymm in the AVX2 one), then of 8 or 4 */
MGP_GATE(float, uint32_t, mgp_v8f, mgp_v8u, 8, mgp_v16f, mgp_v16u, 16)
MGP_GATE(double, uint64_t, mgp_v4d, mgp_v4ul, 4, mgp_v8d, mgp_v8ul, 8)
#define MGP_GATE_GENERIC(T) MGP_FMA_V, mgp_gate_denv_##T, mgp_gate_denv2_##T
#define MGP_GATE_ROWS_OF(...) MGP_GATE_ROWS(__VA_ARGS__)  /* MGP_GATE_GENERIC's and MGP_GATE_V3's commas expanded */
#if MGP_SPLIT_V4
/* gate 1's den for AVX2 (the *_v3 kernels): mgp_gate_denv_T's blends as vcmpps / vblendvps (GCC 12 builds a
   16-lane or 8 double-lane comparison lane by lane outside AVX-512); the same selections, so the same bits. The
   64-byte vectors through their halves (mg_expf.h's MGP_HALVES_V3) */
#define MGP_GATE_DEN_V3(F, T, M, S, F2)                                                                      \
MGP_INLINE MGP_TARGET_V3 F mgp_gate_den_v3_##F(F x, T v, T lo, T hi, F* mu) {                                \
    const F u = v * x + hi, lov = (F){0} + lo;                                                               \
    const M gt = _mm256_cmp_##S((M)u, (M)lov, _CMP_GT_OQ), eq = _mm256_cmp_##S((M)u, (M)lov, _CMP_EQ_OQ);    \
    const M nan = _mm256_cmp_##S((M)u, (M)u, _CMP_UNORD_Q);                                                  \
    *mu = (F)_mm256_blendv_##S(_mm256_and_##S(eq, (M)((F){0} + (T)0.5)), (M)((F){0} + 1), gt);              \
    return (F)_mm256_blendv_##S((M)lov, (M)u, _mm256_or_##S(gt, nan));                                      \
}                                                                                                            \
MGP_INLINE MGP_TARGET_V3 F2 mgp_gate_den_v3_##F2(F2 x, T v, T lo, T hi, F2* mu) {                            \
    F m0, m1;                                                                                                \
    const F d0 = mgp_gate_den_v3_##F(mgp_half3_##F2(x, 0), v, lo, hi, &m0);                                  \
    const F d1 = mgp_gate_den_v3_##F(mgp_half3_##F2(x, 1), v, lo, hi, &m1);                                  \
    *mu = mgp_join3_##F2(m0, m1);                                                                            \
    return mgp_join3_##F2(d0, d1);                                                                           \
}
MGP_GATE_DEN_V3(mgp_v8f, float, __m256, ps, mgp_v16f)
MGP_GATE_DEN_V3(mgp_v4d, double, __m256d, pd, mgp_v8d)
#define MGP_GATE_V3(T, V, V2) MGP_FMA_3, mgp_gate_den_v3_##V, mgp_gate_den_v3_##V2
/* NOTE: the AVX2 versions take blocks of 8 floats or 4 doubles only (L2 = L): a 64-byte vector's loads, stores and
   broadcasts went through the stack outside AVX-512 (the apply 1.7 ns an element against ... in blocks of 8) */
MGP_GATE_ROWS_OF(float, mgp_v8f, 8, mgp_v16f, 16, _v4, MGP_TARGET_V4, mgp_expf8_fma_v4, mgp_expf16_fma_v4,
              MGP_GATE_GENERIC(float))
MGP_GATE_ROWS_OF(float, mgp_v8f, 8, mgp_v8f, 8, _v3, MGP_TARGET_V3, mgp_expf8_fma_v3, mgp_expf8_fma_v3,
                 MGP_GATE_V3(float, mgp_v8f, mgp_v8f))
MGP_GATE_ROWS_OF(float, mgp_v8f, 8, mgp_v16f, 16, _any, MGP_BASELINE, mgp_expf8_fma, mgp_expf16_fma,
              MGP_GATE_GENERIC(float))
MGP_GATE_ROWS_OF(double, mgp_v4d, 4, mgp_v8d, 8, _v4, MGP_TARGET_V4, mgp_exp4_fma_v4, mgp_exp8_fma_v4,
              MGP_GATE_GENERIC(double))
MGP_GATE_ROWS_OF(double, mgp_v4d, 4, mgp_v4d, 4, _v3, MGP_TARGET_V3, mgp_exp4_fma_v3, mgp_exp4_fma_v3,
                 MGP_GATE_V3(double, mgp_v4d, mgp_v4d))
/* gate 0's apply for AVX2 (session 38; MGP_GATE_DISPATCH picks it where the CPU has x86-64-v3 but not AVX-512):
   pairs of blocks of L whose two exps run side by side (mg_expf.h's mgp_expf8x2_fma_v3, mgp_exp4x2_fma_v3: one
   exp is a dependent chain that left the FMA pipes idle), then the rest of the row, and gate 1, by the *_v3
   kernels above; per element the same operations, so the same bits */
#define MGP_GATE0_PAIRS_V3(T, V, L, EXP2X)                                                                   \
MGP_TARGET_V3 static void mgp_row_apply_gate_##T##_v3p(T* restrict y, const T* restrict x, Py_ssize_t D,       \
                                                      int gate, T v, T lo, T hi, T sc, T of) {               \
    Py_ssize_t d = 0;                                                                                        \
    if (gate == 0) {                                                                                         \
        const T nv = -v;                                                                                     \
        const __auto_type sc1 = MGP_GATE0_AFF_##T(V, sc);                                                    \
        const __auto_type of1 = MGP_GATE0_AFF_##T(V, of);                                                    \
        for (; d + 2 * L <= D; d += 2 * L) {                                                                 \
            const V x0 = mgp_loadv_##T(x + d), x1 = mgp_loadv_##T(x + d + L);                                \
            V e0, e1;                                                                                        \
            EXP2X(nv * x0, nv * x1, &e0, &e1);                                                               \
            const V y0 = MGP_GATE0_Y_##T(V, MGP_FMA_3, MGP_XSIG_##T(x0, e0), sc1, of1);                      \
            const V y1 = MGP_GATE0_Y_##T(V, MGP_FMA_3, MGP_XSIG_##T(x1, e1), sc1, of1);                      \
            memcpy(y + d, &y0, sizeof y0);                                                                   \
            memcpy(y + d + L, &y1, sizeof y1);                                                               \
        }                                                                                                    \
    }                                                                                                        \
    mgp_row_apply_gate_##T##_v3(y + d, x + d, D - d, gate, v, lo, hi, sc, of);                               \
}
MGP_GATE0_PAIRS_V3(float, mgp_v8f, 8, mgp_expf8x2_fma_v3)
MGP_GATE0_PAIRS_V3(double, mgp_v4d, 4, mgp_exp4x2_fma_v3)
MGP_GATE_ROWS_OF(double, mgp_v4d, 4, mgp_v8d, 8, _any, MGP_BASELINE, mgp_exp4_fma, mgp_exp8_fma,
              MGP_GATE_GENERIC(double))
MGP_GATE_DISPATCH(float)
MGP_GATE_DISPATCH(double)
#else
MGP_GATE_ROWS_OF(float, mgp_v8f, 8, mgp_v16f, 16, , MGP_CLONES_FMA, mgp_expf8_fma, mgp_expf16_fma, MGP_GATE_GENERIC(float))
MGP_GATE_ROWS_OF(double, mgp_v4d, 4, mgp_v8d, 8, , MGP_CLONES_FMA, mgp_exp4_fma, mgp_exp8_fma, MGP_GATE_GENERIC(double))
#endif
/* gate 0's row sums (mgp_row_sums_gate_T's gate 0): sum(dy), sum(dy*f), sum(dy*df/dv), f = x*s, s = sigmoid(v*x),
   df/dv = x^2*s*(1 - s); with keep: the sigmoids in X into keep[0, D), for the backward apply of the same row.
   float: f and df/dv in float (f = x*s, df/dv = f*(x*(1 - s))). The blocks of 16 multiply them by dy' = dy*2^p
   and sum in float, 16 lanes, over MGP_FBLOCK values (8 a lane), each block's sums then widened and added in
   double and the row's total scaled back by 2^-p (exact): 2 float multiplies and 3 adds per 16 values, where
   widening dy and each partial took 6 widenings and 10 double operations and bound the pass by arithmetic, not
   bytes. 2^p (mgp_dy_scale_float, once a row) brings the row's largest |dy| to [0.5, 1), so a subnormal dy's
   products do not underflow. Each term is within about 3 float ulps of dy*f, dy*df/dv, the product and a lane's
   8 adds up to 8 more, so a row's sums are within about 11*2^-24 of the sum of their terms' magnitudes (about 3
   when every product was summed in double; measured: under 1*2^-24 more, docs/perf/norm-family.md, "EvoNorm and
   FRN, session 33"; blocks of 64 were 1.07-1.12x slower, 256 no faster). The blocks of 8 and the tail (under 16
   values a row) widen f and df/dv and multiply by dy in double, as before. NOTE: there f and df/dv are stored and
   widened from memory (vcvtps2pd zmm, m256; the empty asm with a memory clobber keeps GCC from forwarding them
   back as registers), dy through a pointer hidden behind an empty asm, else GCC 12 builds its widening lane by
   lane (docs/perf/norm-family.md, "2026-12-06 night: EvoNorm") */
#ifndef MGP_FBLOCK  /* scripts/gate_probe.c sweeps it */
#define MGP_FBLOCK 128
#endif
_Static_assert(MGP_FBLOCK % 32 == 0, "the gates' float sums flush after pairs of blocks of 16");
/* 2^p with 2^p*max|dy| in [0.5, 1) (p clamped to [-100, 100]; 1 where every dy is 0): the largest |dy| by the
   bits (for |dy| the integer order of the bits is the float order, NaN above inf). A row with an inf or NaN dy
   takes 2^-100: its sums are inf or NaN whatever the finite terms add to, and scaled down those cannot overflow
   to an inf of the other sign (inf - inf, a NaN where double's sums give inf) */
MGP_INLINE float mgp_dy_scale_float(const float* dy, Py_ssize_t D) {
    uint32_t m = 0;
    for (Py_ssize_t i = 0; i < D; i++) {
        uint32_t b;
        memcpy(&b, dy + i, sizeof b);
        b &= 0x7fffffffu;
        m = b > m ? b : m;
    }
    const uint32_t e = m >> 23;  /* the biased exponent; 2^(253 - e)*max|dy| is in [0.5, 1) for a normal max */
    if (m == 0) return 1.0f;
    const int pe = 253 - (int)e;
    const uint32_t sb = (uint32_t)(pe < 27 ? 27 : pe > 227 ? 227 : pe) << 23;
    float s;
    memcpy(&s, &sb, sizeof s);
    return s;
}
/* the 16 float lanes of a block's sums b, widened, added to s (8 double lanes), and b zeroed */
MGP_INLINE void mgp_fblock_flush(mgp_v8d* s, mgp_v16f* b) {
    float t[16] __attribute__((aligned(64)));
    memcpy(t, b, sizeof t);
    *s += mgp_widen8_mem_float(t);
    *s += mgp_widen8_mem_float(t + 8);
    *b = (mgp_v16f){0};
}
MGP_INLINE void mgp_sig_terms8_float(mgp_v8d* a, mgp_v8d* f, mgp_v8d* g, const float* dy, const float* t) {
    __asm__("" : "+r"(dy));
    const mgp_v8d gd = mgp_widen8_mem_float(dy);
    *a += gd; *f += gd * mgp_widen8_mem_float(t); *g += gd * mgp_widen8_mem_float(t + 16);
}
#define MGP_ROW_SUMS_SIG_FLOAT(SFX, ATTR, EXP, EXP2)                                                         \
ATTR static void mgp_row_sums_sig_float##SFX(double* sdy, double* sdyf, double* sdv, const float* restrict dy, \
                                             const float* restrict x, Py_ssize_t D, float v, float* restrict keep) { \
    mgp_v8d a = {0, 0, 0, 0, 0, 0, 0, 0}, f = a, g = a, as = a, fs = a, gs = a;                              \
    mgp_v16f ab = {0}, fb = ab, gb = ab;                                                                     \
    float tb[32] __attribute__((aligned(64)));  /* f in [0, 16), df/dv in [16, 32) */                        \
    const float nv = -v, p = D >= 16 ? mgp_dy_scale_float(dy, D) : 1.0f;                                      \
    Py_ssize_t i = 0;                                                                                        \
    for (; i + 32 <= D; i += 32) {  /* two blocks of 16: their exp and division chains in flight together */  \
        mgp_v16f x0, x1, d0, d1;                                                                             \
        memcpy(&x0, x + i, sizeof x0);                                                                       \
        memcpy(&x1, x + i + 16, sizeof x1);                                                                  \
        memcpy(&d0, dy + i, sizeof d0);                                                                      \
        memcpy(&d1, dy + i + 16, sizeof d1);                                                                 \
        const mgp_v16f s0 = 1 / (1 + EXP2(nv * x0)), s1 = 1 / (1 + EXP2(nv * x1));                           \
        if (keep) { memcpy(keep + i, &s0, sizeof s0); memcpy(keep + i + 16, &s1, sizeof s1); }               \
        const mgp_v16f f0 = x0 * s0, g0 = f0 * (x0 * (1.0f - s0)), f1 = x1 * s1, g1 = f1 * (x1 * (1.0f - s1)); \
        d0 *= p; d1 *= p;                                                                                    \
        ab += d0; fb += d0 * f0; gb += d0 * g0;                                                              \
        ab += d1; fb += d1 * f1; gb += d1 * g1;                                                              \
        if ((i + 32) % MGP_FBLOCK == 0 || i + 48 > D) {                                                      \
            mgp_fblock_flush(&as, &ab); mgp_fblock_flush(&fs, &fb); mgp_fblock_flush(&gs, &gb);              \
        }                                                                                                    \
    }                                                                                                        \
    for (; i + 16 <= D; i += 16) {  /* at most one, flushed as one block at a time flushes it */             \
        mgp_v16f xv, dv;                                                                                     \
        memcpy(&xv, x + i, sizeof xv);                                                                       \
        memcpy(&dv, dy + i, sizeof dv);                                                                      \
        const mgp_v16f s = 1 / (1 + EXP2(nv * xv));                                                          \
        if (keep) memcpy(keep + i, &s, sizeof s);                                                            \
        const mgp_v16f fv = xv * s, gv = fv * (xv * (1.0f - s));                                             \
        dv *= p;                                                                                             \
        ab += dv; fb += dv * fv; gb += dv * gv;                                                              \
        if ((i + 16) % MGP_FBLOCK == 0 || i + 32 > D) {                                                      \
            mgp_fblock_flush(&as, &ab); mgp_fblock_flush(&fs, &fb); mgp_fblock_flush(&gs, &gb);              \
        }                                                                                                    \
    }                                                                                                        \
    for (; i + 8 <= D; i += 8) {                                                                             \
        mgp_v8f xv;                                                                                          \
        memcpy(&xv, x + i, sizeof xv);                                                                       \
        const mgp_v8f s = 1 / (1 + EXP(nv * xv));                                                            \
        if (keep) memcpy(keep + i, &s, sizeof s);                                                            \
        const mgp_v8f fv = xv * s, gv = fv * (xv * (1.0f - s));                                              \
        memcpy(tb, &fv, sizeof fv);                                                                          \
        memcpy(tb + 16, &gv, sizeof gv);                                                                     \
        __asm__ volatile("" ::: "memory");                                                                   \
        mgp_sig_terms8_float(&a, &f, &g, dy + i, tb);                                                        \
    }                                                                                                        \
    double ta = 0, tf = 0, tv = 0;                                                                           \
    for (; i < D; i++) {                                                                                     \
        const float s = 1.0f / (1.0f + mgp_expf_fma(nv * x[i])), fx = x[i] * s;                              \
        const double gd = dy[i];                                                                             \
        if (keep) keep[i] = s;                                                                               \
        ta += gd; tf += gd * fx; tv += gd * (fx * (x[i] * (1.0f - s)));                                      \
    }                                                                                                        \
    const double q = 1 / (double)p;                                                                          \
    *sdy = mgp_hsum(mgp_half8d(as, 0), mgp_half8d(as, 1)) * q;                                               \
    *sdyf = mgp_hsum(mgp_half8d(fs, 0), mgp_half8d(fs, 1)) * q;                                              \
    *sdv = mgp_hsum(mgp_half8d(gs, 0), mgp_half8d(gs, 1)) * q;                                               \
    if (D % 16 >= 8) {  /* NOTE: else a and the rest are +0: adding them changes nothing (ta starts at +0) */    \
        *sdy += mgp_hsum(mgp_half8d(a, 0), mgp_half8d(a, 1));                                                \
        *sdyf += mgp_hsum(mgp_half8d(f, 0), mgp_half8d(f, 1));                                               \
        *sdv += mgp_hsum(mgp_half8d(g, 0), mgp_half8d(g, 1));                                                \
    }                                                                                                        \
    *sdy += ta; *sdyf += tf; *sdv += tv;                                                                     \
}
#if MGP_SPLIT_V4
MGP_ROW_SUMS_SIG_FLOAT(_v4, MGP_TARGET_V4, mgp_expf8_fma_v4, mgp_expf16_fma_v4)
/* gate 0's float sums for AVX2: MGP_ROW_SUMS_SIG_FLOAT's operations in its order, each 16-lane float block as two
   8-lane halves and each 8-lane double accumulator as two 4-lane ones (lane j of 16 is half j/8's lane j%8; a
   flush adds lanes 0-7, then 8-15, to the double lanes as mgp_fblock_flush), so the same bits: outside AVX-512
   GCC keeps 64-byte vectors on the stack (the sums 2.4-4.4 ns an element in that form, session 36) */
MGP_INLINE MGP_TARGET_V3 mgp_v4d mgp_widen3(mgp_v8f b, int h) {
    return (mgp_v4d)_mm256_cvtps_pd(h ? _mm256_extractf128_ps((__m256)b, 1) : _mm256_castps256_ps128((__m256)b));
}
/* one 8-lane half's partials into t, what the sums keep into keep: gate 0: the sigmoid s; f = x*s and
   df/dv = f*(x*(1 - s)); gate 1: r = 1/den; f = x*r and, with q = f*r, q*(x*mu), q*mu, q*(1 - mu) (the negated
   df/dv, df/dhi, df/dlo), as the macros' blocks */
MGP_INLINE MGP_TARGET_V3 void mgp_gate_terms8_v3(mgp_v8f t[4], const float* x, int gate, float v, float lo, float hi,
                                                 float* keep) {
    mgp_v8f xv, mu;
    memcpy(&xv, x, sizeof xv);
    if (gate == 0) {
        const mgp_v8f s = 1 / (1 + mgp_expf8_fma_v3(-v * xv));
        if (keep) memcpy(keep, &s, sizeof s);
        t[0] = xv * s; t[1] = t[0] * (xv * (1.0f - s));
    } else {
        const mgp_v8f r = 1.0f / mgp_gate_den_v3_mgp_v8f(xv, v, lo, hi, &mu);
        if (keep) memcpy(keep, &r, sizeof r);
        t[0] = xv * r;
        const mgp_v8f q = t[0] * r;
        t[1] = q * (xv * mu); t[2] = q * mu; t[3] = q * (1.0f - mu);
    }
}
/* gate 0's terms of mgp_gate_terms8_v3 for two halves x[0..7], x[8..15] at once, their exps side by side
   (mgp_expf8x2_fma_v3, session 38; the same operations per lane) */
MGP_INLINE MGP_TARGET_V3 void mgp_gate0_terms8x2_v3(mgp_v8f t[2][4], const float* x, float v, float* keep) {
    mgp_v8f x0, x1, e0, e1;  /* NOTE: not one memcpy into x[2]: GCC copied it through the stack in 16-byte pieces */
    memcpy(&x0, x, sizeof x0);
    memcpy(&x1, x + 8, sizeof x1);
    mgp_expf8x2_fma_v3(-v * x0, -v * x1, &e0, &e1);
    for (int h = 0; h < 2; h++) {
        const mgp_v8f xv = h ? x1 : x0, s = 1 / (1 + (h ? e1 : e0));
        if (keep) memcpy(keep + 8 * h, &s, sizeof s);
        t[h][0] = xv * s; t[h][1] = t[h][0] * (xv * (1.0f - s));
    }
}
/* the float gate sums' vector part for AVX2 (gate 0: 3 sums, the terms added; gate 1: 5, df/dv, df/dhi and df/dlo's
   negated terms subtracted): MGP_ROW_SUMS_SIG_FLOAT's and MGP_ROW_SUMS_DEN_FLOAT's operations in their order, each
   16-lane float block as two 8-lane halves and each 8-lane double accumulator as two 4-lane ones (lane j of 16 is
   half j/8's lane j%8; a flush adds lanes 0-7, then 8-15, to the double lanes as mgp_fblock_flush), so the same
   bits: outside AVX-512 GCC keeps 64-byte vectors on the stack (the sums 2.4-4.4 ns an element in that form,
   session 36). Returns where the scalar tail starts; out[j]: the blocks' sums (scaled back) plus the blocks of 8's */
MGP_INLINE MGP_TARGET_V3 Py_ssize_t mgp_gate_sums_v3(double out[5], const float* dy, const float* x, Py_ssize_t D,
                                                     int gate, float v, float lo, float hi, float* keep) {
    const int n = gate == 0 ? 3 : 5;
    mgp_v4d acc[5][2] = {{{0}}}, accs[5][2] = {{{0}}};
    mgp_v8f b[5][2] = {{{0}}}, t[4];
    const float p = D >= 16 ? mgp_dy_scale_float(dy, D) : 1.0f;
    Py_ssize_t i = 0;
    /* the blocks of 16 in order (the macros' pairs and their last single block: the same adds per lane), flushed
       where the macros flush: after a pair's second block at a multiple of MGP_FBLOCK or with no pair after it, and
       after a single last block */
    for (; i + 16 <= D; i += 16) {
        if (gate == 0) {  /* NOTE: both halves' exps side by side (session 38), then the halves' sums in order */
            mgp_v8f th[2][4];
            mgp_gate0_terms8x2_v3(th, x + i, v, keep ? keep + i : NULL);
            for (int h = 0; h < 2; h++) {
                mgp_v8f d;
                memcpy(&d, dy + i + 8 * h, sizeof d);
                d *= p;
                b[0][h] += d;
                b[1][h] += d * th[h][0];
                b[2][h] += d * th[h][1];
            }
        } else {
            for (int h = 0; h < 2; h++) {
                mgp_v8f d;
                mgp_gate_terms8_v3(t, x + i + 8 * h, gate, v, lo, hi, keep ? keep + i + 8 * h : NULL);
                memcpy(&d, dy + i + 8 * h, sizeof d);
                d *= p;
                b[0][h] += d;
                b[1][h] += d * t[0];
                for (int j = 2; j < n; j++) b[j][h] -= d * t[j - 1];
            }
        }
        if ((i + 16) % MGP_FBLOCK == 0 || i + 32 > D) {
            for (int j = 0; j < n; j++) {
                for (int h = 0; h < 2; h++) {
                    accs[j][0] += mgp_widen3(b[j][h], 0); accs[j][1] += mgp_widen3(b[j][h], 1);
                }
                b[j][0] = b[j][1] = (mgp_v8f){0};
            }
        }
    }
    for (; i + 8 <= D; i += 8) {
        mgp_v8f dv;
        mgp_gate_terms8_v3(t, x + i, gate, v, lo, hi, keep ? keep + i : NULL);
        memcpy(&dv, dy + i, sizeof dv);
        for (int h = 0; h < 2; h++) {
            const mgp_v4d gd = mgp_widen3(dv, h);
            acc[0][h] += gd;
            acc[1][h] += gd * mgp_widen3(t[0], h);
            for (int j = 2; j < n; j++) {
                if (gate == 0) acc[j][h] += gd * mgp_widen3(t[j - 1], h);
                else acc[j][h] -= gd * mgp_widen3(t[j - 1], h);
            }
        }
    }
    const double q = 1 / (double)p;
    for (int j = 0; j < n; j++) {
        out[j] = mgp_hsum(accs[j][0], accs[j][1]) * q;
        if (D % 16 >= 8) out[j] += mgp_hsum(acc[j][0], acc[j][1]);  /* NOTE: as the macros' */
    }
    return i;
}
MGP_TARGET_V3 static void mgp_row_sums_sig_float_v3(double* sdy, double* sdyf, double* sdv, const float* restrict dy,
                                                    const float* restrict x, Py_ssize_t D, float v,
                                                    float* restrict keep) {
    double o[5];
    Py_ssize_t i = mgp_gate_sums_v3(o, dy, x, D, 0, v, 0, 0, keep);
    const float nv = -v;
    double ta = 0, tf = 0, tv = 0;
    for (; i < D; i++) {  /* the macro's tail */
        const float s = 1.0f / (1.0f + mgp_expf_fma(nv * x[i])), fx = x[i] * s;
        const double gd = dy[i];
        if (keep) keep[i] = s;
        ta += gd; tf += gd * fx; tv += gd * (fx * (x[i] * (1.0f - s)));
    }
    *sdy = o[0] + ta; *sdyf = o[1] + tf; *sdv = o[2] + tv;
}
MGP_ROW_SUMS_SIG_FLOAT(_any, MGP_BASELINE, mgp_expf8_fma, mgp_expf16_fma)
MGP_INLINE void mgp_row_sums_sig_float(double* sdy, double* sdyf, double* sdv, const float* restrict dy,
                                       const float* restrict x, Py_ssize_t D, float v, float* restrict keep) {
    MGP_GATE_PICK(mgp_row_sums_sig_float, (sdy, sdyf, sdv, dy, x, D, v, keep));
}
#else
MGP_ROW_SUMS_SIG_FLOAT(, MGP_CLONES_FMA, mgp_expf8_fma, mgp_expf16_fma)
#endif
/* double: every term in double, blocks of 8 (one zmm in the AVX-512 clone) to 8-lane accumulators, then of 4,
   then the tail, each term the same way in each (the sigmoids on mgp_exp_fma; for AVX-512 and as clones, as the
   float sums) */
#define MGP_ROW_SUMS_SIG_DOUBLE(SFX, ATTR, EXP4, EXP8)                                                       \
ATTR static void mgp_row_sums_sig_double##SFX(double* sdy, double* sdyf, double* sdv, const double* restrict dy, \
                                              const double* restrict x, Py_ssize_t D, double v,              \
                                              double* restrict keep) {                                       \
    mgp_v8d a8 = {0, 0, 0, 0, 0, 0, 0, 0}, f8 = a8, g8 = a8;                                                 \
    const double nv = -v;                                                                                    \
    Py_ssize_t i = 0;                                                                                        \
    for (; i + 8 <= D; i += 8) {                                                                             \
        const mgp_v8d xd = mgp_widen8_mem_double(x + i), g = mgp_widen8_mem_double(dy + i);                  \
        const mgp_v8d sd = 1 / (1 + EXP8(nv * xd));                                                          \
        if (keep) memcpy(keep + i, &sd, sizeof sd);                                                          \
        a8 += g;                                                                                             \
        f8 += g * (xd * sd);                                                                                 \
        g8 += g * (xd * xd * (sd * (1 - sd)));                                                               \
    }                                                                                                        \
    mgp_v4d a = {0, 0, 0, 0}, f = a, gv = a;                                                                 \
    for (; i + 4 <= D; i += 4) {                                                                             \
        const mgp_v4d xd = mgp_load4_double(x + i), g = mgp_load4_double(dy + i);                            \
        const mgp_v4d sd = 1 / (1 + EXP4(nv * xd));                                                          \
        if (keep) memcpy(keep + i, &sd, sizeof sd);                                                          \
        a += g;                                                                                              \
        f += g * (xd * sd);                                                                                  \
        gv += g * (xd * xd * (sd * (1 - sd)));                                                               \
    }                                                                                                        \
    double ta = 0, tf = 0, tv = 0;                                                                           \
    for (; i < D; i++) {                                                                                     \
        const double xd = x[i], g = dy[i], s = 1 / (1 + mgp_exp_fma(nv * x[i]));                             \
        if (keep) keep[i] = s;                                                                               \
        ta += g; tf += g * (xd * s); tv += g * (xd * xd * (s * (1 - s)));                                    \
    }                                                                                                        \
    *sdy = mgp_hsum(mgp_half8d(a8, 0) + a, mgp_half8d(a8, 1)) + ta;                                          \
    *sdyf = mgp_hsum(mgp_half8d(f8, 0) + f, mgp_half8d(f8, 1)) + tf;                                         \
    *sdv = mgp_hsum(mgp_half8d(g8, 0) + gv, mgp_half8d(g8, 1)) + tv;                                         \
}
#if MGP_SPLIT_V4
MGP_ROW_SUMS_SIG_DOUBLE(_v4, MGP_TARGET_V4, mgp_exp4_fma_v4, mgp_exp8_fma_v4)
/* float64's gate 0 sums for AVX2: the macro's, each 8-lane block and accumulator as two 4-lane halves (the same
   operations per lane, so the same bits; as the float sums, the 64-byte accumulators stayed on the stack) */
MGP_INLINE MGP_TARGET_V3 void mgp_sig4d_v3(mgp_v4d* a, mgp_v4d* f, mgp_v4d* g, const double* x, const double* dy,
                                           double nv, double* keep) {
    const mgp_v4d xd = mgp_load4_double(x), gd = mgp_load4_double(dy);
    const mgp_v4d sd = 1 / (1 + mgp_exp4_fma_v3(nv * xd));
    if (keep) memcpy(keep, &sd, sizeof sd);
    *a += gd;
    *f += gd * (xd * sd);
    *g += gd * (xd * xd * (sd * (1 - sd)));
}
MGP_TARGET_V3 static void mgp_row_sums_sig_double_v3(double* sdy, double* sdyf, double* sdv, const double* restrict dy,
                                                     const double* restrict x, Py_ssize_t D, double v,
                                                     double* restrict keep) {
    mgp_v4d a8[2] = {{0}}, f8[2] = {{0}}, g8[2] = {{0}}, a = {0}, f = {0}, gv = {0};
    const double nv = -v;
    Py_ssize_t i = 0;
    for (; i + 8 <= D; i += 8) {  /* NOTE: the two halves' exps side by side (session 38), then mgp_sig4d_v3's sums */
        const mgp_v4d x0 = mgp_load4_double(x + i), x1 = mgp_load4_double(x + i + 4);
        mgp_v4d e[2];
        mgp_exp4x2_fma_v3(nv * x0, nv * x1, e, e + 1);
        for (int h = 0; h < 2; h++) {
            const mgp_v4d xd = h ? x1 : x0, gd = mgp_load4_double(dy + i + 4 * h), sd = 1 / (1 + e[h]);
            if (keep) memcpy(keep + i + 4 * h, &sd, sizeof sd);
            a8[h] += gd;
            f8[h] += gd * (xd * sd);
            g8[h] += gd * (xd * xd * (sd * (1 - sd)));
        }
    }
    for (; i + 4 <= D; i += 4) mgp_sig4d_v3(&a, &f, &gv, x + i, dy + i, nv, keep ? keep + i : NULL);
    double ta = 0, tf = 0, tv = 0;
    for (; i < D; i++) {  /* the macro's tail */
        const double xd = x[i], g = dy[i], s = 1 / (1 + mgp_exp_fma(nv * x[i]));
        if (keep) keep[i] = s;
        ta += g; tf += g * (xd * s); tv += g * (xd * xd * (s * (1 - s)));
    }
    *sdy = mgp_hsum(a8[0] + a, a8[1]) + ta;
    *sdyf = mgp_hsum(f8[0] + f, f8[1]) + tf;
    *sdv = mgp_hsum(g8[0] + gv, g8[1]) + tv;
}
MGP_ROW_SUMS_SIG_DOUBLE(_any, MGP_BASELINE, mgp_exp4_fma, mgp_exp8_fma)
MGP_INLINE void mgp_row_sums_sig_double(double* sdy, double* sdyf, double* sdv, const double* restrict dy,
                                        const double* restrict x, Py_ssize_t D, double v, double* restrict keep) {
    MGP_GATE_PICK(mgp_row_sums_sig_double, (sdy, sdyf, sdv, dy, x, D, v, keep));
}
#else
MGP_ROW_SUMS_SIG_DOUBLE(, MGP_CLONES_FMA, mgp_exp4_fma, mgp_exp8_fma)
#endif
/* gate 1's row sums (mgp_row_sums_gate_T's gate 1): sum(dy), sum(dy*f), sum(dy*df/dv), sum(dy*df/dhi),
   sum(dy*df/dlo), f = x*r, r = 1/den; df/dv = -x^2*r^2*mu, df/dhi = -x*r^2*mu, df/dlo = -x*r^2*(1 - mu); with keep:
   the r in X into keep[0, D), for the backward apply of the same row.
   float: as gate 0's, the partials in float (r = 1/den, f = x*r, q = f*r, then q*(x*mu), q*mu and q*(1 - mu), the
   last two exact); the blocks of 16 (one zmm in the AVX-512 clone) multiply them by the scaled dy and sum in
   float blocks as gate 0's, the blocks of 8 and the tail widen them and multiply by dy in double. Every term in
   double (the division too, 4 lanes) ran at about 3 cycles an element, bound by the widening shuffles and the 15
   double operations per 4 values, not by the division (docs/perf/norm-family.md, "2026-12-07: the phases at the
   memory limit" and "2026-12-07 (session 30)") */
MGP_INLINE void mgp_den_terms8_float(mgp_v8d* acc, const float* dy, const float* t) {
    __asm__("" : "+r"(dy));
    const mgp_v8d gd = mgp_widen8_mem_float(dy);
    acc[0] += gd; acc[1] += gd * mgp_widen8_mem_float(t);
    acc[2] -= gd * mgp_widen8_mem_float(t + 16); acc[3] -= gd * mgp_widen8_mem_float(t + 32);
    acc[4] -= gd * mgp_widen8_mem_float(t + 48);
}
#define MGP_ROW_SUMS_DEN_FLOAT(SFX, ATTR, DEN, DEN2)                                                         \
ATTR static void mgp_row_sums_den_float##SFX(double* sdy, double* sdyf, double* sdv, double* shi, double* slo, \
                                             const float* restrict dy, const float* restrict x, Py_ssize_t D, \
                                             float v, float lo, float hi, float* restrict keep) {            \
    mgp_v8d acc[5] = {{0}}, accs[5] = {{0}};                                                                 \
    mgp_v16f b0 = {0}, b1 = b0, b2 = b0, b3 = b0, b4 = b0;                                                   \
    float tb[64] __attribute__((aligned(64)));  /* f, df/dv, df/dhi, df/dlo (negated): 16 each */            \
    const float p = D >= 16 ? mgp_dy_scale_float(dy, D) : 1.0f;                                               \
    Py_ssize_t i = 0;                                                                                        \
    for (; i + 32 <= D; i += 32) {  /* two blocks of 16 in flight, as gate 0's */                            \
        mgp_v16f x0, x1, m0, m1, d0, d1;                                                                     \
        memcpy(&x0, x + i, sizeof x0);                                                                       \
        memcpy(&x1, x + i + 16, sizeof x1);                                                                  \
        memcpy(&d0, dy + i, sizeof d0);                                                                      \
        memcpy(&d1, dy + i + 16, sizeof d1);                                                                 \
        const mgp_v16f r0 = 1.0f / DEN2(x0, v, lo, hi, &m0), r1 = 1.0f / DEN2(x1, v, lo, hi, &m1);           \
        if (keep) { memcpy(keep + i, &r0, sizeof r0); memcpy(keep + i + 16, &r1, sizeof r1); }               \
        const mgp_v16f f0 = x0 * r0, q0 = f0 * r0, f1 = x1 * r1, q1 = f1 * r1;                               \
        const mgp_v16f v0 = q0 * (x0 * m0), h0 = q0 * m0, l0 = q0 * (1.0f - m0);                             \
        const mgp_v16f v1 = q1 * (x1 * m1), h1 = q1 * m1, l1 = q1 * (1.0f - m1);                             \
        d0 *= p; d1 *= p;                                                                                    \
        b0 += d0; b1 += d0 * f0; b2 -= d0 * v0; b3 -= d0 * h0; b4 -= d0 * l0;                                \
        b0 += d1; b1 += d1 * f1; b2 -= d1 * v1; b3 -= d1 * h1; b4 -= d1 * l1;                                \
        if ((i + 32) % MGP_FBLOCK == 0 || i + 48 > D) {                                                      \
            mgp_fblock_flush(accs, &b0); mgp_fblock_flush(accs + 1, &b1); mgp_fblock_flush(accs + 2, &b2);   \
            mgp_fblock_flush(accs + 3, &b3); mgp_fblock_flush(accs + 4, &b4);                                \
        }                                                                                                    \
    }                                                                                                        \
    for (; i + 16 <= D; i += 16) {  /* at most one, flushed as one block at a time flushes it */             \
        mgp_v16f xv, mu, dv;                                                                                 \
        memcpy(&xv, x + i, sizeof xv);                                                                       \
        memcpy(&dv, dy + i, sizeof dv);                                                                      \
        const mgp_v16f r = 1.0f / DEN2(xv, v, lo, hi, &mu);                                                  \
        if (keep) memcpy(keep + i, &r, sizeof r);                                                            \
        const mgp_v16f fv = xv * r, q = fv * r;                                                              \
        const mgp_v16f tv = q * (xv * mu), th = q * mu, tl = q * (1.0f - mu);                                \
        dv *= p;                                                                                             \
        b0 += dv; b1 += dv * fv; b2 -= dv * tv; b3 -= dv * th; b4 -= dv * tl;                                \
        if ((i + 16) % MGP_FBLOCK == 0 || i + 32 > D) {                                                      \
            mgp_fblock_flush(accs, &b0); mgp_fblock_flush(accs + 1, &b1); mgp_fblock_flush(accs + 2, &b2);   \
            mgp_fblock_flush(accs + 3, &b3); mgp_fblock_flush(accs + 4, &b4);                                \
        }                                                                                                    \
    }                                                                                                        \
    for (; i + 8 <= D; i += 8) {                                                                             \
        mgp_v8f xv, mu;                                                                                      \
        memcpy(&xv, x + i, sizeof xv);                                                                       \
        const mgp_v8f r = 1.0f / DEN(xv, v, lo, hi, &mu);                                                    \
        if (keep) memcpy(keep + i, &r, sizeof r);                                                            \
        const mgp_v8f fv = xv * r, q = fv * r;                                                               \
        const mgp_v8f tv = q * (xv * mu), th = q * mu, tl = q * (1.0f - mu);                                 \
        memcpy(tb, &fv, sizeof fv); memcpy(tb + 16, &tv, sizeof tv);                                         \
        memcpy(tb + 32, &th, sizeof th); memcpy(tb + 48, &tl, sizeof tl);                                    \
        __asm__ volatile("" ::: "memory");                                                                   \
        mgp_den_terms8_float(acc, dy + i, tb);                                                               \
    }                                                                                                        \
    double ta = 0, tf = 0, tv = 0, th = 0, tl = 0;                                                           \
    for (; i < D; i++) {                                                                                     \
        float mu;                                                                                            \
        const float r = 1.0f / mgp_gate_den_float(x[i], v, lo, hi, &mu), fx = x[i] * r, q = fx * r;          \
        if (keep) keep[i] = r;                                                                               \
        const double gd = dy[i];                                                                             \
        ta += gd; tf += gd * fx; tv -= gd * (q * (x[i] * mu)); th -= gd * (q * mu); tl -= gd * (q * (1.0f - mu)); \
    }                                                                                                        \
    const double pq = 1 / (double)p;                                                                         \
    double* const out[5] = {sdy, sdyf, sdv, shi, slo};                                                       \
    const double tail[5] = {ta, tf, tv, th, tl};                                                             \
    for (int j = 0; j < 5; j++) {                                                                            \
        double t = mgp_hsum(mgp_half8d(accs[j], 0), mgp_half8d(accs[j], 1)) * pq;                            \
        if (D % 16 >= 8) t += mgp_hsum(mgp_half8d(acc[j], 0), mgp_half8d(acc[j], 1));  /* NOTE: as gate 0's */ \
        *out[j] = t + tail[j];                                                                               \
    }                                                                                                        \
}
#if MGP_SPLIT_V4
/* mgp_gate_denv_float's results through mask registers: each blend one vblendmps (or a zero-masked move) where
   GCC builds it from a mask-to-vector move and a vpternlogd */
#define MGP_GATE_DEN_V4(F, M, W, K)                                                                          \
MGP_INLINE MGP_TARGET_V4 F mgp_gate_den_v4_##F(F x, float v, float lo, float hi, F* mu) {                    \
    const F u = v * x + hi, lov = (F){0} + lo;                                                               \
    const K gt = _mm##W##_cmp_ps_mask((M)u, (M)lov, _CMP_GT_OQ), eq = _mm##W##_cmp_ps_mask((M)u, (M)lov, _CMP_EQ_OQ); \
    const K nan = _mm##W##_cmp_ps_mask((M)u, (M)u, _CMP_UNORD_Q);                                            \
    *mu = (F)_mm##W##_mask_blend_ps(gt, _mm##W##_maskz_mov_ps(eq, (M)((F){0} + 0.5f)), (M)((F){0} + 1.0f));  \
    return (F)_mm##W##_mask_blend_ps(gt | nan, (M)lov, (M)u);                                                \
}
MGP_GATE_DEN_V4(mgp_v8f, __m256, 256, __mmask8)
MGP_GATE_DEN_V4(mgp_v16f, __m512, 512, __mmask16)
MGP_ROW_SUMS_DEN_FLOAT(_v4, MGP_TARGET_V4, mgp_gate_den_v4_mgp_v8f, mgp_gate_den_v4_mgp_v16f)
MGP_TARGET_V3 static void mgp_row_sums_den_float_v3(double* sdy, double* sdyf, double* sdv, double* shi,
                                                    double* slo, const float* restrict dy, const float* restrict x,
                                                    Py_ssize_t D, float v, float lo, float hi, float* restrict keep) {
    double o[5];
    Py_ssize_t i = mgp_gate_sums_v3(o, dy, x, D, 1, v, lo, hi, keep);
    double ta = 0, tf = 0, tv = 0, th = 0, tl = 0;
    for (; i < D; i++) {  /* the macro's tail */
        float mu;
        const float r = 1.0f / mgp_gate_den_float(x[i], v, lo, hi, &mu), fx = x[i] * r, q = fx * r;
        if (keep) keep[i] = r;
        const double gd = dy[i];
        ta += gd; tf += gd * fx; tv -= gd * (q * (x[i] * mu)); th -= gd * (q * mu); tl -= gd * (q * (1.0f - mu));
    }
    *sdy = o[0] + ta; *sdyf = o[1] + tf; *sdv = o[2] + tv; *shi = o[3] + th; *slo = o[4] + tl;
}
MGP_ROW_SUMS_DEN_FLOAT(_any, MG_CLONES, mgp_gate_denv_float, mgp_gate_denv2_float)
MGP_INLINE void mgp_row_sums_den_float(double* sdy, double* sdyf, double* sdv, double* shi, double* slo,
                                       const float* restrict dy, const float* restrict x, Py_ssize_t D, float v,
                                       float lo, float hi, float* restrict keep) {
    MGP_GATE_PICK(mgp_row_sums_den_float, (sdy, sdyf, sdv, shi, slo, dy, x, D, v, lo, hi, keep));
}
#else
MGP_ROW_SUMS_DEN_FLOAT(, MG_CLONES_V4, mgp_gate_denv_float, mgp_gate_denv2_float)
#endif
/* double: every term in double, 4 lanes, one division per element, then the tail */
MG_CLONES static void mgp_row_sums_den_double(double* sdy, double* sdyf, double* sdv, double* shi, double* slo,
                                              const double* restrict dy, const double* restrict x, Py_ssize_t D,
                                              double v, double lo, double hi, double* restrict keep) {
    mgp_v4d a = {0, 0, 0, 0}, f = a, gv = a, gh = a, gl = a;
    const mgp_v4d one = {1, 1, 1, 1};
    Py_ssize_t i = 0;
    for (; i + 4 <= D; i += 4) {
        const mgp_v4d xd = mgp_load4_double(x + i), g = mgp_load4_double(dy + i);
        mgp_v4d mu;
        const mgp_v4d r = one / mgp_gate_denv_double(xd, v, lo, hi, &mu), q = g * xd * (r * r);
        if (keep) memcpy(keep + i, &r, sizeof r);
        a += g;
        f += g * (xd * r);
        gv -= q * xd * mu; gh -= q * mu; gl -= q * (one - mu);
    }
    double ta = 0, tf = 0, tv = 0, th = 0, tl = 0;
    for (; i < D; i++) {
        const double xd = x[i], g = dy[i];
        double mu;
        const double r = 1 / mgp_gate_den_double(x[i], v, lo, hi, &mu);
        if (keep) keep[i] = r;
        const double q = g * xd * (r * r);
        ta += g; tf += g * (xd * r); tv -= q * xd * mu; th -= q * mu; tl -= q * (1 - mu);
    }
    const mgp_v4d z = {0, 0, 0, 0};
    *sdy = mgp_hsum(a, z) + ta; *sdyf = mgp_hsum(f, z) + tf; *sdv = mgp_hsum(gv, z) + tv;
    *shi = mgp_hsum(gh, z) + th; *slo = mgp_hsum(gl, z) + tl;
}
/* one row: the sums of the gate (above); gate 0 leaves *shi, *slo 0 */
#define MGP_GATE_SUMS(T)                                                                                      \
MGP_INLINE void mgp_row_sums_gate_##T(double* sdy, double* sdyf, double* sdv, double* shi, double* slo,       \
                                      const T* restrict dy, const T* restrict x, Py_ssize_t D, int gate, T v, \
                                      T lo, T hi, T* restrict keep) {                                        \
    if (gate == 0) {                                                                                         \
        mgp_row_sums_sig_##T(sdy, sdyf, sdv, dy, x, D, v, keep);                                             \
        *shi = 0; *slo = 0;                                                                                  \
    } else {                                                                                                 \
        mgp_row_sums_den_##T(sdy, sdyf, sdv, shi, slo, dy, x, D, v, lo, hi, keep);                           \
    }                                                                                                        \
}
MGP_GATE_SUMS(float)
MGP_GATE_SUMS(double)

#endif
