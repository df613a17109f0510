/* The reductions and elementwise passes of the normalization kernels over one contiguous run of m values: the
   building blocks of both layouts (norm_channels.h, norm_rows.h). Declared for Cython in norm_kernels.pxd.

   A forward reduction and its backward twin share a loop and differ only in the terms added per element:
     forward  (bwd = 0): A = x - K,  Q = (x - K)^2      s1 += sum(A),  s2 += sum(Q)       (shifted statistics)
     backward (bwd = 1): A = dy,     Q = dy*(x - K)     sdy += sum(A), sdyx += sum(Q)     (K = mean, or X(mean))
   Each loop is written once, in an always-inlined helper taking bwd, and instantiated for both by callers that
   pass bwd as a constant: the branch folds away, and each instance does exactly the operations, in the order, of
   a loop written out for it. dy is never read when bwd = 0 (callers pass x for it). */
#ifndef MG_NORM_RUNS_H
#define MG_NORM_RUNS_H

#include "norm_simd.h"

/* the terms A, Q of one element (or one vector of elements): xk = x - K, g = dy; each expression is evaluated
   only in its branch (no load of dy in the forward) */
#define MG_TERMS(bwd, A, Q, xk, g)                                                                             \
    do { if (bwd) { A = (g); Q = A * (xk); } else { A = (xk); Q = A * A; } } while (0)
/* MG_TERMS on the overlapping last vector of a run, x[m-8:m], the lanes already added masked to +0: the forward
   masks x - K (its square is then +0), the backward masks both terms */
#define MG_TAIL_TERMS(bwd, A, Q, xk, g, mask)                                                                  \
    do {                                                                                                       \
        if (bwd) { A = (g); Q = MG_MASKED(A * (xk), mask); A = MG_MASKED(A, mask); }                           \
        else { A = MG_MASKED(xk, mask); Q = A * A; }                                                           \
    } while (0)

/* an elementwise pass that rides along a reduction over another run of the same length (the pipelined blocks of
   batch norm, norm_channels.h): bwd = 0, the forward's out = (x - K)*b + k (b the scale, k the shift); bwd = 1, the
   backward's out = a*(g - m) + b*(x - K) + k. Per element the operations of mg_affine_T and mg_affine2_T, so any cut
   of the run into pieces gives their bits. out may be x (each value is read before it is written). */
#define MG_PASS(T)                                                                                             \
typedef struct { T* out; const T* g; const T* x; T a, m, K, b, k; } mg_pass_##T;                                \
/* out[j:j+L], one vector */                                                                                   \
MG_AI void mg_pass_##T##_vec(const mg_pass_##T* e, Py_ssize_t j, const int bwd) {                               \
    mg_vx_##T v;                                                                                               \
    if (bwd) v = e->a * (mg_loadx_##T(e->g + j) - e->m) + e->b * (mg_loadx_##T(e->x + j) - e->K) + e->k;       \
    else v = (mg_loadx_##T(e->x + j) - e->K) * e->b + e->k;                                                    \
    memcpy(e->out + j, &v, sizeof v);                                                                          \
}                                                                                                              \
/* out[i0:m] */                                                                                                \
MG_AI void mg_pass_##T##_rest(const mg_pass_##T* e, Py_ssize_t i0, Py_ssize_t m, const int bwd) {               \
    for (Py_ssize_t i = i0; i < m; i++) {                                                                      \
        if (bwd) e->out[i] = e->a * (e->g[i] - e->m) + e->b * (e->x[i] - e->K) + e->k;                         \
        else e->out[i] = (e->x[i] - e->K) * e->b + e->k;                                                       \
    }                                                                                                          \
}
MG_PASS(float)
MG_PASS(double)

/* ---- float64: every term in double ------------------------------------------------------------------------ */

/* s1 += sum(A), s2 += sum(Q) over [0, m); with e (else NULL), e's elementwise pass over [0, m) too, 8 values beside
   each 8 of the sums' main steps, the rest after them.
   NOTE: without -ffast-math GCC never vectorizes a floating-point reduction (it would reorder the adds), so the
   vectors are explicit: eight double accumulators (two 4-wide vectors) in a fixed order, then a scalar tail. */
MG_AI void mg_run_sums_double(const double* dy, const double* x, Py_ssize_t m, double K, double* s1, double* s2,
                              const mg_pass_double* e, const int bwd) {
    const mg_v4d k = {K, K, K, K};
    mg_v4d a0 = {0, 0, 0, 0}, a1 = a0, q0 = a0, q1 = a0;
    Py_ssize_t i = 0;
    for (; i + 8 <= m; i += 8) {
        mg_v4d A0, A1, Q0, Q1;
        MG_TERMS(bwd, A0, Q0, mg_load4_double(x + i) - k, mg_load4_double(dy + i));
        MG_TERMS(bwd, A1, Q1, mg_load4_double(x + i + 4) - k, mg_load4_double(dy + i + 4));
        a0 += A0; a1 += A1; q0 += Q0; q1 += Q1;
        if (e) {
            mg_pass_double_vec(e, i, bwd);
            mg_pass_double_vec(e, i + 4, bwd);
        }
    }
    if (e) mg_pass_double_rest(e, i, m, bwd);
    double a = 0, q = 0;
    for (; i < m; i++) { double A, Q; MG_TERMS(bwd, A, Q, x[i] - K, dy[i]); a += A; q += Q; }
    *s1 += mg_hsum(a0, a1) + a;
    *s2 += mg_hsum(q0, q1) + q;
}
/* s1 += sum(x - K), s2 += sum((x - K)^2) over x[0:m] */
MG_CLONES static void mg_shifted_sums_double(const double* x, Py_ssize_t m, double K, double* s1, double* s2) {
    mg_run_sums_double(x, x, m, K, s1, s2, NULL, 0);
}
/* sdy += sum(dy), sdyx += sum(dy*(x - mean)) over [0, m) */
MG_CLONES static void mg_dy_sums_double(const double* dy, const double* x, Py_ssize_t m, double mean,
                                        double* sdy, double* sdyx) {
    mg_run_sums_double(dy, x, m, mean, sdy, sdyx, NULL, 1);
}

/* ---- float32: terms and short sums in float32 lanes, partials in double --------------------------------------
   x - K (exact where the set's values are near K: |mean| >> std), its square and the sums run in 8-wide float32
   vectors. A run of m values is cut into groups of MG_F32_GROUP vectors (the last one shorter; where 8 does not
   divide m its last vector overlaps the one before, the old lanes masked off); a group's vectors go to four
   accumulators in turn (each lane adds at most MG_F32_GROUP/4 values in float32, a relative rounding of a few
   2^-24, the float32 data's own precision), the four are added pairwise, then the two halves, then widened and
   added to the run's double partials, in a fixed order. K must be a float32 value (it is: a value of x); for the
   backward sums, Kx = float(mean), and sum(dy*(x - mean)) = sum(dy*(x - Kx)) - (mean - Kx)*sum(dy) in double.
   NOTE: float32 lanes because converting every value to double made these passes bound by arithmetic, below
   the memory bandwidth; four accumulators because the pass is bound by its float adds and four chains do not
   wait on each other (docs/perf/norm-kernels.md#float32-sums). */
#define MG_F32_GROUP 32
/* the float32 sums overflow where |x - K| > 1.8e19 (a square) or the data is not finite: such a set is summed
   again converting every value to double, as the float64 path (rare) */
#define MG_FINITE2(a, q) (__builtin_isfinite(a) && __builtin_isfinite(q))

/* m >= 8 values: lane partials a += sum(A), q += sum(Q) (A, Q in float32, k a float32 value), group by group; with
   e (else NULL), e's elementwise pass over [0, m) too, 32 values beside each 32 of the sums' main steps, the rest
   after them */
MG_AI void mg_f32_run_sums(const float* dy, const float* x, Py_ssize_t m, float k, mg_v4d* a, mg_v4d* q,
                           const mg_pass_float* e, const int bwd) {
    const mg_v8i mask = mg_tail_mask(m);
    Py_ssize_t i = 0, done = 0;
    while (i < m) {
        const Py_ssize_t end = m - i > 8 * MG_F32_GROUP ? i + 8 * MG_F32_GROUP : m;
        mg_vx_float a0 = {0}, a1 = a0, a2 = a0, a3 = a0, q0 = a0, q1 = a0, q2 = a0, q3 = a0;
        for (; i + 32 <= end; i += 32) {
            mg_vx_float A0, A1, A2, A3, Q0, Q1, Q2, Q3;
            MG_TERMS(bwd, A0, Q0, mg_loadx_float(x + i) - k, mg_loadx_float(dy + i));
            MG_TERMS(bwd, A1, Q1, mg_loadx_float(x + i + 8) - k, mg_loadx_float(dy + i + 8));
            MG_TERMS(bwd, A2, Q2, mg_loadx_float(x + i + 16) - k, mg_loadx_float(dy + i + 16));
            MG_TERMS(bwd, A3, Q3, mg_loadx_float(x + i + 24) - k, mg_loadx_float(dy + i + 24));
            a0 += A0; a1 += A1; a2 += A2; a3 += A3;
            q0 += Q0; q1 += Q1; q2 += Q2; q3 += Q3;
            if (e) {
                for (Py_ssize_t j = i; j < i + 32; j += 8) mg_pass_float_vec(e, j, bwd);
                done = i + 32;
            }
        }
        for (; i + 8 <= end; i += 8) {
            mg_vx_float A, Q;
            MG_TERMS(bwd, A, Q, mg_loadx_float(x + i) - k, mg_loadx_float(dy + i));
            a0 += A; q0 += Q;
        }
        if (i < end) {  /* end == m */
            mg_vx_float A, Q;
            MG_TAIL_TERMS(bwd, A, Q, mg_loadx_float(x + m - 8) - k, mg_loadx_float(dy + m - 8), mask);
            a1 += A; q1 += Q;
            i = m;
        }
        *a += mg_fold_widen((a0 + a1) + (a2 + a3));
        *q += mg_fold_widen((q0 + q1) + (q2 + q3));
    }
    if (e) mg_pass_float_rest(e, done, m, bwd);
}
/* *s1 = sum(A), *s2 = sum(Q) over [0, m), every term in double (K: a double) */
MG_AI void mg_f32_scalar_sums(const float* dy, const float* x, Py_ssize_t m, double K, double* s1, double* s2,
                              const int bwd) {
    double a = 0, q = 0;
    for (Py_ssize_t i = 0; i < m; i++) {
        double A, Q;
        MG_TERMS(bwd, A, Q, (double)x[i] - K, (double)dy[i]);
        a += A; q += Q;
    }
    *s1 = a; *s2 = q;
}
/* the overflow fallbacks: every value in double, about the exact K = mean in the backward */
MG_COLD void mg_f32_shifted_sums_slow(const float* x, Py_ssize_t m, double K, double* s1, double* s2) {
    mg_f32_scalar_sums(x, x, m, K, s1, s2, 0);
}
MG_COLD void mg_f32_dy_sums_slow(const float* dy, const float* x, Py_ssize_t m, double mean, double* sdy,
                                 double* sdyx) {
    mg_f32_scalar_sums(dy, x, m, mean, sdy, sdyx, 1);
}
/* s1 += sum(A), s2 += sum(Q) over [0, m) with K (the forward: a float32 value; the backward: the mean, the terms
   taken about Kx = float(mean) and moved to the mean in double); overflow checked here when check; e (else NULL):
   as mg_f32_run_sums's */
MG_AI void mg_f32_sums(const float* dy, const float* x, Py_ssize_t m, double K, double* s1, double* s2, int check,
                       const mg_pass_float* e, const int bwd) {
    const float k = (float)K;
    double ta = 0, tq = 0;
    if (m >= 8) {
        mg_v4d a = {0, 0, 0, 0}, q = a;
        mg_f32_run_sums(dy, x, m, k, &a, &q, e, bwd);
        mg_hsum2(a, q, &ta, &tq);
    } else {
        mg_f32_scalar_sums(dy, x, m, bwd ? (double)k : K, &ta, &tq, bwd);
        if (e) mg_pass_float_rest(e, 0, m, bwd);
    }
    if (bwd) tq -= (K - (double)k) * ta;
    if (check && __builtin_expect(!MG_FINITE2(ta, tq), 0)) {
        if (bwd) mg_f32_dy_sums_slow(dy, x, m, K, &ta, &tq);
        else mg_f32_shifted_sums_slow(x, m, K, &ta, &tq);
    }
    *s1 += ta;
    *s2 += tq;
}
/* NOTE: the rows of group norm (and layer/instance norm) are reduced here and rescaled by mg_row_affine, the two
   helpers with an AVX-512 clone (MG_CLONES_V4): faster on those rows, slower where every helper had one
   (docs/perf/norm-kernels.md#avx-512-clones) */
MG_CLONES_V4 static void mg_shifted_sums_float(const float* x, Py_ssize_t m, double K, double* s1, double* s2) {
    mg_f32_sums(x, x, m, K, s1, s2, 1, NULL, 0);
}
MG_CLONES static void mg_dy_sums_float(const float* dy, const float* x, Py_ssize_t m, double mean,
                                       double* sdy, double* sdyx) {
    mg_f32_sums(dy, x, m, mean, sdy, sdyx, 1, NULL, 1);
}

/* ---- the elementwise passes over a run, in X precision (GCC vectorizes them; the AVX2 clone does 8 floats a
   step) ----------------------------------------------------------------------------------------------------- */

/* y = (x - K)*scale + shift */
#define MG_AFFINE_BODY(y, x, m, K, scale, shift)                                                               \
    for (Py_ssize_t i = 0; i < m; i++) y[i] = (x[i] - K) * scale + shift;
#define MG_RUN_ELEMENTWISE(T)                                                                                  \
MG_CLONES static void mg_affine_##T(T* y, const T* x, Py_ssize_t m, T K, T scale, T shift) {                   \
    MG_AFFINE_BODY(y, x, m, K, scale, shift)                                                                   \
}                                                                                                              \
/* dx = a*(dy - mdy) + b*(x - K) + k                                                                           \
   NOTE: dy - mdy before scaling, so that a large rstd does not amplify the rounding of a cancellation */      \
MG_CLONES static void mg_affine2_##T(T* dx, const T* dy, const T* x, Py_ssize_t m, T a, T mdy, T K, T b, T k) { \
    for (Py_ssize_t i = 0; i < m; i++) dx[i] = a * (dy[i] - mdy) + b * (x[i] - K) + k;                         \
}
MG_RUN_ELEMENTWISE(float)
MG_RUN_ELEMENTWISE(double)

#endif
