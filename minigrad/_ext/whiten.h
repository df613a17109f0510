/* Decorrelated batch norm's forward passes (minigrad/nn/decorrelated.py) and its small symmetric eigensolver.

   Legend: x, y (N, C, S); channels in groups of g (group k holds channels [k*g, min((k + 1)*g, C)), gk of them;
   the last group may be short); cov, M (G, g, g); shift, bias (C,).

   mg_channel_mean_T: mean[c] over n, s: batch norm's statistics phase's mean (phases.h's mgp_channel_stats, its
                      blocks and bits), without the sums of squares zca_forward discards
   mg_group_cov_T:    cov[k, i, j] = sum over n, s of (x[n, kg+i, s] - shift[kg+i]) * (x[n, kg+j, s] - shift[kg+j])
                      (i, j < gk; 0 in the padding past gk), the centered values and their products in X:
                      16-float / 8-double lanes over s, each lane summed in X over one sample's row (S/16 or
                      S/8 products, fused multiply-adds), then widened and added in double over n in order (8
                      double lanes: a float vector's two halves added first); the lanes summed pairwise at the end
                      (the S % lanes rest in double apart)
   mg_group_whiten_T: y[n, kg+i, s] = sum over j < gk of M[k, i, j] * (x[n, kg+j, s] - shift[kg+j]) + bias[kg+i]
                      in X, j in order (fused multiply-adds), the bias last
   mg_zca_matrices_T: the g x g algebra between them (below)
   mg_zca_rows_T:     the backward's GEMM operand, rows [dY; x - shift; 1] per group (below)
   mg_zca_backward_p1_T, mg_zca_backward_dx_T: the backward's sums sum dY u^T, sum dY and its dx = F [dY; u; 1]
                      per group from dy and x, without those rows (below)
   mg_running_average_T, mg_zca_running_update_T: the running averages (below)
   mg_sym_eigh2:      eigenvalues (ascending) and orthonormal eigenvectors of one or two symmetric n x n float64
                      matrices: Householder tridiagonalization, then the implicit QL iteration (EISPACK's tred2 and
                      tql2, as JAMA writes them), the rotations applied to the rows of the transposed eigenvector
                      matrix so that they run in vectors, two matrices' iterations interleaved
   Vector widths are fixed (16 floats, 8 doubles), so the x86-64-v4 and -v3 clones (MG_FMA_CLONES below) give the
   same bits; only the baseline clone, without FMA, differs in the last bits of the two passes. */
#ifndef MG_WHITEN_H
#define MG_WHITEN_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "norm_simd.h"

/* MG_FMA_CLONES: the two passes' products and sums as fused multiply-adds, one rounding a term (more accurate
   than mg_clones.h's a*b then + c, and half the instructions) in the x86-64-v4 and -v3 clones; the baseline clone
   (x86-64 without FMA, CPUs before 2013) rounds twice, so there alone the last bits differ. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define MG_FMA_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"), \
                                     optimize("fp-contract=fast")))
#else
#define MG_FMA_CLONES
#endif

#define MG_WHITEN_DEFINE(T, VT, W)                                                                                  \
static inline VT mg_wload_##T(const T* p) { VT v; memcpy(&v, p, sizeof v); return v; }                            \
static inline void mg_wstore_##T(T* p, VT v) { memcpy(p, &v, sizeof v); }                                        \
/* the block's rows of sample n: group rows bi + p, bj + p (p < 4), or a row of zeros past gk */                    \
MG_AI void mg_cov_rows_##T(const T** pi, const T** pj, const T* xk, const T* zero, Py_ssize_t n, Py_ssize_t C,       \
                           Py_ssize_t S, Py_ssize_t gk, Py_ssize_t bi, Py_ssize_t bj) {                             \
    for (int p = 0; p < 4; p++) {                                                                                  \
        pi[p] = bi + p < gk ? xk + (n * C + bi + p) * S : zero;                                                    \
        pj[p] = bj + p < gk ? xk + (n * C + bj + p) * S : zero;                                                    \
    }                                                                                                              \
}                                                                                                                  \
/* One 4 x 4 block (rows bi.., bj..) of cov's raw sums, into accv (16 x 8 double lanes) and acct (the S % W rest): \
   diag (a constant: bi = bj) computes the pairs q <= p only, the others are not read. */                         \
MG_AI void mg_cov_block_##T(double (*restrict accv)[8], double* restrict acct, const T* xk, const T* sh,            \
                            const T* zero, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, Py_ssize_t gk,                 \
                            Py_ssize_t bi, Py_ssize_t bj, const int diag) {                                         \
    Py_ssize_t S8 = S - S % W;                                                                                      \
    VT a[4][4];                                                                                                    \
    memset(a, 0, sizeof a);                                                                                        \
    T si[4] = {sh[bi], sh[bi + 1], sh[bi + 2], sh[bi + 3]}, sj[4] = {sh[bj], sh[bj + 1], sh[bj + 2], sh[bj + 3]};   \
    for (Py_ssize_t n = 0; n < N; n++) {                                                                           \
        const T* pi[4];                                                                                            \
        const T* pj[4];                                                                                            \
        mg_cov_rows_##T(pi, pj, xk, zero, n, C, S, gk, bi, bj);                                                    \
        for (Py_ssize_t s = 0; s < S8; s += W) {                                                                   \
            VT u[4] = {mg_wload_##T(pi[0] + s) - si[0], mg_wload_##T(pi[1] + s) - si[1],                           \
                       mg_wload_##T(pi[2] + s) - si[2], mg_wload_##T(pi[3] + s) - si[3]};                          \
            VT v[4];                                                                                               \
            for (int q = 0; q < 4; q++) v[q] = diag ? u[q] : mg_wload_##T(pj[q] + s) - sj[q];                      \
            for (int p = 0; p < 4; p++)                                                                            \
                for (int q = 0; q < (diag ? p + 1 : 4); q++) a[p][q] += u[p] * v[q];                               \
        }                                                                                                          \
        /* NOTE: widened every sample: longer float sums (4 samples at S = 64) doubled the error */                \
        for (int p = 0; p < 4; p++)                                                                                \
            for (int q = 0; q < (diag ? p + 1 : 4); q++) {                                                         \
                mg_wwiden_##T(accv[p * 4 + q], a[p][q]);                                                           \
                a[p][q] = (VT){0};                                                                                 \
            }                                                                                                      \
        if (S8 < S)                                                                                                \
            for (int p = 0; p < 4; p++)                                                                            \
                for (int q = 0; q < (diag ? p + 1 : 4); q++) {                                                     \
                    double t = 0.0;                                                                                \
                    for (Py_ssize_t s = S8; s < S; s++) t += (double)((pi[p][s] - si[p]) * (pj[q][s] - sj[q]));    \
                    acct[p * 4 + q] += t;                                                                          \
                }                                                                                                  \
    }                                                                                                              \
}                                                                                                                  \
/* cov (g x g) = the sums of one group's centered products: xk the group's first row of sample 0 (rows C*S apart  \
   from sample to sample), sh its shifts (gp of them, 0 past gk), zero a row of S zeros for the rows past gk.      \
   Pairs i >= j by blocks of 4 rows (of the diagonal blocks only the pairs i >= j: 136 of 256 for g = 16); each    \
   block's lanes run over one sample in X, then are widened into double lanes. */                                 \
MG_FMA_CLONES static void mg_group_cov_one_##T(double* restrict cov, const T* xk, const T* sh, const T* zero,        \
                                              Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, Py_ssize_t gk,             \
                                              Py_ssize_t gp, Py_ssize_t g) {                                       \
    for (Py_ssize_t bi = 0; bi < gp; bi += 4)                                                                      \
        for (Py_ssize_t bj = 0; bj <= bi; bj += 4) {                                                               \
            double accv[16][8], acct[16];  /* 8 double lanes (mg_wwiden_float folds 16 float lanes) */            \
            memset(accv, 0, sizeof accv);                                                                          \
            memset(acct, 0, sizeof acct);                                                                          \
            if (bi == bj)                                                                                          \
                mg_cov_block_##T(accv, acct, xk, sh, zero, N, C, S, gk, bi, bj, 1);                                \
            else                                                                                                   \
                mg_cov_block_##T(accv, acct, xk, sh, zero, N, C, S, gk, bi, bj, 0);                                \
            for (int p = 0; p < 4; p++)                                                                            \
                for (int q = 0; q < 4; q++) {                                                                      \
                    Py_ssize_t i = bi + p, j = bj + q;                                                             \
                    if (i < gk && j < gk && j <= i) {                                                              \
                        double t = mg_wsum_lanes(accv[p * 4 + q], 8) + acct[p * 4 + q];                            \
                        cov[i * g + j] = t;                                                                        \
                        cov[j * g + i] = t;                                                                        \
                    }                                                                                              \
                }                                                                                                  \
        }                                                                                                          \
}                                                                                                                  \
/* y rows (gk of them) = Mp (gp x gk, zero rows past gk) (x - sh) + b, 8 output rows at a time */                  \
MG_FMA_CLONES static void mg_group_whiten_block_##T(T** yr, const T** xr, const T* sh,                 \
                                                   const T* Mp, const T* b, Py_ssize_t gk, Py_ssize_t gp,          \
                                                   Py_ssize_t S) {                                                 \
    Py_ssize_t S8 = S - S % W;                                                                                     \
    for (Py_ssize_t bi = 0; bi < gp; bi += 8) {                                                                    \
        const T* m = Mp + bi * gk;                                                                                 \
        for (Py_ssize_t s = 0; s < S8; s += W) {                                                                   \
            VT a[8];                                                                                               \
            for (int p = 0; p < 8; p++) a[p] = (VT){0};                                                            \
            for (Py_ssize_t j = 0; j < gk; j++) {                                                                  \
                VT v = mg_wload_##T(xr[j] + s) - sh[j];                                                            \
                for (int p = 0; p < 8; p++) a[p] += m[p * gk + j] * v;                                             \
            }                                                                                                      \
            for (int p = 0; p < 8 && bi + p < gk; p++) mg_wstore_##T(yr[bi + p] + s, a[p] + b[bi + p]);            \
        }                                                                                                          \
        for (Py_ssize_t s = S8; s < S; s++)                                                                        \
            for (int p = 0; p < 8 && bi + p < gk; p++) {                                                           \
                T t = 0;                                                                                           \
                for (Py_ssize_t j = 0; j < gk; j++) t += m[p * gk + j] * (xr[j][s] - sh[j]);                       \
                yr[bi + p][s] = t + b[bi + p];                                                                     \
            }                                                                                                      \
    }                                                                                                              \
}

/* the sum of w <= 16 double lanes, pairwise */
static inline double mg_wsum_lanes(const double* v, int w) {
    double h[16];
    memcpy(h, v, (size_t)w * sizeof(double));
    for (w /= 2; w > 0; w /= 2)
        for (int l = 0; l < w; l++) h[l] += h[l + w];
    return h[0];
}
/* the covariance's g x g entries of block (bi, bj) from its lanes (pairs i >= j inside the group, both triangles) */
MG_AI void mg_cov_store(double* restrict cov, double (*accv)[8], const double* acct, Py_ssize_t bi,
                        Py_ssize_t bj, Py_ssize_t gk, Py_ssize_t g) {
    for (int p = 0; p < 4; p++)
        for (int q = 0; q < 4; q++) {
            Py_ssize_t i = bi + p, j = bj + q;
            if (i < gk && j < gk && j <= i) {
                double t = mg_wsum_lanes(accv[p * 4 + q], 8) + acct[p * 4 + q];
                cov[i * g + j] = t;
                cov[j * g + i] = t;
            }
        }
}
#define MG_W_float 16
#define MG_W_double 8

/* 64-byte vectors whatever the clone (one AVX-512 register, two AVX2 ones): the lane count fixes the summation
   order, so every clone gives the same bits */
typedef float mg_v16f __attribute__((vector_size(64)));
typedef double mg_v8d __attribute__((vector_size(64)));
/* av[0:8] += v's two halves (8 floats each) widened to double and added (exact but for a double rounding);
   av[0:8] += v for doubles */
static inline void mg_wwiden_float(double* av, mg_v16f v) {
    /* NOTE: the halves widened element by element: GCC 12 makes one vcvtps2pd of 8 lanes of each in the AVX-512
       clone (a memcpy of the halves, or __builtin_convertvector of a half, spilled v and converted 4 lanes at a
       time); the same values */
    mg_v8d lo = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]};
    mg_v8d hi = {v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15]};
    mg_v8d a;
    memcpy(&a, av, sizeof a);
    a += lo + hi;
    memcpy(av, &a, sizeof a);
}
static inline void mg_wwiden_double(double* av, mg_v8d v) {
    mg_v8d a;
    memcpy(&a, av, sizeof a);
    a += v;
    memcpy(av, &a, sizeof a);
}
/* mean[c] = K[c] + sum over n, s of (x[n, c, s] - K[c]) / (N S), K[c] = x[0, c, 0], channels [c0, c1): the a terms of
   phases.h's MGP_STATS sums, the same operations in the same order (per row n: 4-double lanes a0, a1 over blocks of
   8 values, the rest in a scalar, hsum (a0 + a1) pairwise, then added over n in order), so channel_stats's mean bit
   for bit (tests/test_decorrelated.py: test_compiled_mean_is_channel_stats). NOTE: its sums of squares dropped: 7.3
   -> 4.5 us at 16x32x8x8 (float32). sa: scratch (C,). */
#define MG_CHANNEL_MEAN(T)                                                                                          \
MG_CLONES static void mg_channel_mean_##T(double* restrict mean, double* restrict sa, const T* x, Py_ssize_t N,      \
                                          Py_ssize_t C, Py_ssize_t S, Py_ssize_t c0, Py_ssize_t c1) {               \
    for (Py_ssize_t c = c0; c < c1; c++) {                                                                         \
        mean[c] = (double)x[c * S];  /* K */                                                                       \
        sa[c] = 0.0;                                                                                               \
    }                                                                                                              \
    for (Py_ssize_t n = 0; n < N; n++)                                                                             \
        for (Py_ssize_t c = c0; c < c1; c++) {                                                                     \
            const T* p = x + (n * C + c) * S;                                                                      \
            const double K = mean[c];                                                                              \
            if (S == 1) {  /* phases.h: across channels, each in order of n */                                     \
                sa[c] += (double)p[0] - K;                                                                         \
                continue;                                                                                          \
            }                                                                                                      \
            const mg_v4d k = {K, K, K, K};                                                                         \
            mg_v4d a0 = {0, 0, 0, 0}, a1 = a0;                                                                     \
            Py_ssize_t i = 0;                                                                                      \
            for (; i + 8 <= S; i += 8) {                                                                           \
                mg_v4d d0 = {p[i], p[i + 1], p[i + 2], p[i + 3]}, d1 = {p[i + 4], p[i + 5], p[i + 6], p[i + 7]};   \
                a0 += d0 - k;                                                                                      \
                a1 += d1 - k;                                                                                      \
            }                                                                                                      \
            double a = 0;                                                                                          \
            for (; i < S; i++) a += (double)p[i] - K;                                                              \
            a0 += a1;                                                                                              \
            sa[c] += ((a0[0] + a0[1]) + (a0[2] + a0[3])) + a;                                                      \
        }                                                                                                          \
    const double M = (double)(N * S);                                                                              \
    for (Py_ssize_t c = c0; c < c1; c++) mean[c] = mean[c] + sa[c] / M;                                            \
}
MG_CHANNEL_MEAN(float)
MG_CHANNEL_MEAN(double)
MG_WHITEN_DEFINE(float, mg_v16f, 16)
MG_WHITEN_DEFINE(double, mg_v8d, 8)

/* The two passes for CPUs with AVX2 + FMA but no AVX-512 (AMD Zen 2/3, Intel client chips): the v3 clone of the
   64-byte vector code above splits each vector over two YMM registers, and its 4 x 4 blocks' 32 accumulators (16
   in the whitening) spill to the stack on every product: 5-10x slower than the same work in registers
   (docs/perf/decorrelated-forward.md, "The forward on AVX2, session 36"). Here the same lanes and the same
   operations in the same order, in 8-float / 4-double registers: a lane's chain does not depend on its neighbours,
   so the covariance runs each half of the 16-float (8-double) lanes as its own pass over the row (2 rows x 4 columns
   of a block, 8 accumulators), and the whitening 8 output rows over 8 (4) columns at a time. The bits are the v3
   clone's (tests/test_avx2_whiten.py), including its float64 rests: GCC vectorized `t += a * b` there in pairs (a
   product, then the add) and contracted only a last odd term (mg_rest_term_double). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#include <immintrin.h>
#define MG_V3 __attribute__((target("arch=x86-64-v3")))
#define MG_V3_AI static inline __attribute__((always_inline, target("arch=x86-64-v3")))

/* 1: the drivers take the AVX2 versions (CPUs with AVX2 and FMA but without x86-64-v4), 0: the clones */
static int mg_whiten_isa;
__attribute__((constructor)) static void mg_whiten_isa_init(void) {
    __builtin_cpu_init();
    mg_whiten_isa = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    !__builtin_cpu_supports("x86-64-v4");
}
/* tests: on = 1 takes the AVX2 versions (where the CPU has AVX2 and FMA), 0 the clones; returns the former */
static inline int mg_whiten_avx2(int on) {
    const int was = mg_whiten_isa;
    if (on >= 0) mg_whiten_isa = on && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return was;
}
#define MG_WHITEN_AVX2 mg_whiten_isa

/* one term of the v3 clone's float64 rests (t += u v, k = 0 .. L - 1 in order): the product rounded, then added,
   but a last odd term fused (GCC vectorized those loops by pairs and left one term to a contracted scalar epilogue) */
MG_V3_AI double mg_rest_term_double(double t, double u, double v, Py_ssize_t k, Py_ssize_t L) {
    return (k == L - 1 && L % 2) ? fma(u, v, t) : t + u * v;
}

/* rows p0, p0 + 1 of a 4 x 4 block against its 4 columns (of a diagonal block only q <= p), one sample's row:
   the lanes of half h of each W-wide chunk (VL of them: lanes h VL .. h VL + VL - 1), their products fused */
#define MG_COV_HALF(T, V, VL, W, SFX)                                                                               \
MG_V3_AI void mg_cov_half_##T(V acc[2][4], const T* const* pi, const T* const* pj, const T* si, const T* sj,        \
                              const int p0, const int diag, Py_ssize_t SW, const int h) {                          \
    const V s0 = _mm256_set1_##SFX(si[p0]), s1 = _mm256_set1_##SFX(si[p0 + 1]);                                     \
    V t[4];                                                                                                        \
    for (int q = 0; q < 4; q++) {                                                                                  \
        t[q] = _mm256_set1_##SFX(sj[q]);                                                                           \
        acc[0][q] = acc[1][q] = _mm256_setzero_##SFX();                                                            \
    }                                                                                                              \
    for (Py_ssize_t s = h * VL; s < SW; s += W) {                                                                  \
        const V u[2] = {_mm256_sub_##SFX(_mm256_loadu_##SFX(pi[p0] + s), s0),                                      \
                        _mm256_sub_##SFX(_mm256_loadu_##SFX(pi[p0 + 1] + s), s1)};                                 \
        for (int q = 0; q < (diag ? p0 + 2 : 4); q++) {                                                            \
            const V v = _mm256_sub_##SFX(_mm256_loadu_##SFX(pj[q] + s), t[q]);                                     \
            for (int r = 0; r < 2; r++)                                                                            \
                if (!diag || q <= p0 + r) acc[r][q] = _mm256_fmadd_##SFX(u[r], v, acc[r][q]);                      \
        }                                                                                                          \
    }                                                                                                              \
}
MG_COV_HALF(float, __m256, 8, 16, ps)
MG_COV_HALF(double, __m256d, 4, 8, pd)

/* av[0:8] += the two halves' lanes widened and added (mg_wwiden_float: (double)lo + (double)hi, then added);
   float64: av[0:4] += lo, av[4:8] += hi (mg_wwiden_double) */
MG_V3_AI void mg_widen_halves_float(double* av, __m256 lo, __m256 hi) {
    __m256d a0 = _mm256_loadu_pd(av), a1 = _mm256_loadu_pd(av + 4);
    a0 = _mm256_add_pd(a0, _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(lo)),
                                         _mm256_cvtps_pd(_mm256_castps256_ps128(hi))));
    a1 = _mm256_add_pd(a1, _mm256_add_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(lo, 1)),
                                         _mm256_cvtps_pd(_mm256_extractf128_ps(hi, 1))));
    _mm256_storeu_pd(av, a0);
    _mm256_storeu_pd(av + 4, a1);
}
MG_V3_AI void mg_widen_halves_double(double* av, __m256d lo, __m256d hi) {
    _mm256_storeu_pd(av, _mm256_add_pd(_mm256_loadu_pd(av), lo));
    _mm256_storeu_pd(av + 4, _mm256_add_pd(_mm256_loadu_pd(av + 4), hi));
}
/* the S % W rest of pair (p, q), summed in double: float32 products rounded in float (not fusable), float64 as the
   v3 clone (mg_rest_term_double) */
MG_V3_AI double mg_cov_rest_float(const float* a, float ka, const float* b, float kb, Py_ssize_t L) {
    double t = 0.0;
    for (Py_ssize_t s = 0; s < L; s++) t += (double)((a[s] - ka) * (b[s] - kb));
    return t;
}
MG_V3_AI double mg_cov_rest_double(const double* a, double ka, const double* b, double kb, Py_ssize_t L) {
    double t = 0.0;
    for (Py_ssize_t s = 0; s < L; s++) t = mg_rest_term_double(t, a[s] - ka, b[s] - kb, s, L);
    return t;
}
/* mg_group_cov_one_T (above) on AVX2: the same blocks, sums and widenings */
#define MG_COV_AVX2(T, V, VL, W)                                                                                    \
MG_V3_AI void mg_cov_block_avx2_##T(double (*restrict accv)[8], double* restrict acct, const T* xk, const T* sh,     \
                                    const T* zero, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, Py_ssize_t gk,         \
                                    Py_ssize_t bi, Py_ssize_t bj, const int diag) {                                 \
    Py_ssize_t SW = S - S % W;                                                                                     \
    const T si[4] = {sh[bi], sh[bi + 1], sh[bi + 2], sh[bi + 3]}, sj[4] = {sh[bj], sh[bj + 1], sh[bj + 2], sh[bj + 3]};\
    for (Py_ssize_t n = 0; n < N; n++) {                                                                           \
        const T* pi[4];                                                                                            \
        const T* pj[4];                                                                                            \
        mg_cov_rows_##T(pi, pj, xk, zero, n, C, S, gk, bi, bj);                                                    \
        for (int p0 = 0; p0 < 4; p0 += 2) {                                                                        \
            V lo[2][4], hi[2][4];                                                                                  \
            mg_cov_half_##T(lo, pi, pj, si, sj, p0, diag, SW, 0);                                                  \
            mg_cov_half_##T(hi, pi, pj, si, sj, p0, diag, SW, 1);                                                  \
            for (int r = 0; r < 2; r++)                                                                            \
                for (int q = 0; q < (diag ? p0 + r + 1 : 4); q++)                                                  \
                    mg_widen_halves_##T(accv[(p0 + r) * 4 + q], lo[r][q], hi[r][q]);                               \
        }                                                                                                          \
        if (SW < S)                                                                                                \
            for (int p = 0; p < 4; p++)                                                                            \
                for (int q = 0; q < (diag ? p + 1 : 4); q++)                                                       \
                    acct[p * 4 + q] += mg_cov_rest_##T(pi[p] + SW, si[p], pj[q] + SW, sj[q], S - SW);              \
    }                                                                                                              \
}                                                                                                                  \
MG_V3 static void mg_group_cov_one_avx2_##T(double* restrict cov, const T* xk, const T* sh, const T* zero,           \
                                           Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, Py_ssize_t gk, Py_ssize_t gp,  \
                                           Py_ssize_t g) {                                                         \
    for (Py_ssize_t bi = 0; bi < gp; bi += 4)                                                                      \
        for (Py_ssize_t bj = 0; bj <= bi; bj += 4) {                                                               \
            double accv[16][8], acct[16];                                                                          \
            memset(accv, 0, sizeof accv);                                                                          \
            memset(acct, 0, sizeof acct);                                                                          \
            if (bi == bj)                                                                                          \
                mg_cov_block_avx2_##T(accv, acct, xk, sh, zero, N, C, S, gk, bi, bj, 1);                           \
            else                                                                                                   \
                mg_cov_block_avx2_##T(accv, acct, xk, sh, zero, N, C, S, gk, bi, bj, 0);                           \
            mg_cov_store(cov, accv, acct, bi, bj, gk, g);                                                          \
        }                                                                                                          \
}

/* mg_group_whiten_block_T (above) on AVX2: 8 output rows of VL lanes at a time (each lane's terms j in order, fused,
   the bias last); the rest of each row (S % W, W the clones' lane count) one column at a time as the v3 clone:
   float32 fused, float64 mg_rest_term_double */
MG_V3_AI float mg_whiten_rest_float(const float* const* xr, const float* sh, const float* m, Py_ssize_t s,
                                    Py_ssize_t gk) {
    float t = 0;
    for (Py_ssize_t j = 0; j < gk; j++) t = fmaf(m[j], xr[j][s] - sh[j], t);
    return t;
}
MG_V3_AI double mg_whiten_rest_double(const double* const* xr, const double* sh, const double* m, Py_ssize_t s,
                                      Py_ssize_t gk) {
    double t = 0;
    for (Py_ssize_t j = 0; j < gk; j++) t = mg_rest_term_double(t, m[j], xr[j][s] - sh[j], j, gk);
    return t;
}
#define MG_WHITEN_AVX2_DEFINE(T, V, VL, W, SFX)                                                                     \
MG_V3 static void mg_group_whiten_block_avx2_##T(T** yr, const T** xr, const T* sh, const T* Mp, const T* b,        \
                                                 Py_ssize_t gk, Py_ssize_t gp, Py_ssize_t S) {                     \
    Py_ssize_t SW = S - S % W;                                                                                     \
    for (Py_ssize_t bi = 0; bi < gp; bi += 8) {                                                                    \
        const T* m = Mp + bi * gk;                                                                                 \
        for (Py_ssize_t s = 0; s < SW; s += VL) {                                                                  \
            V a[8];                                                                                                \
            for (int p = 0; p < 8; p++) a[p] = _mm256_setzero_##SFX();                                             \
            for (Py_ssize_t j = 0; j < gk; j++) {                                                                  \
                const V v = _mm256_sub_##SFX(_mm256_loadu_##SFX(xr[j] + s), _mm256_set1_##SFX(sh[j]));            \
                for (int p = 0; p < 8; p++) a[p] = _mm256_fmadd_##SFX(_mm256_set1_##SFX(m[p * gk + j]), v, a[p]);  \
            }                                                                                                      \
            for (int p = 0; p < 8 && bi + p < gk; p++)                                                             \
                _mm256_storeu_##SFX(yr[bi + p] + s, _mm256_add_##SFX(a[p], _mm256_set1_##SFX(b[bi + p])));         \
        }                                                                                                          \
        for (Py_ssize_t s = SW; s < S; s++)                                                                        \
            for (int p = 0; p < 8 && bi + p < gk; p++)                                                             \
                yr[bi + p][s] = mg_whiten_rest_##T(xr, sh, m + p * gk, s, gk) + b[bi + p];                         \
    }                                                                                                              \
}
MG_COV_AVX2(float, __m256, 8, 16)
MG_COV_AVX2(double, __m256d, 4, 8)
MG_WHITEN_AVX2_DEFINE(float, __m256, 8, 16, ps)
MG_WHITEN_AVX2_DEFINE(double, __m256d, 4, 8, pd)
#else
#define MG_WHITEN_AVX2 0
#define mg_group_cov_one_avx2_float mg_group_cov_one_float
#define mg_group_cov_one_avx2_double mg_group_cov_one_double
#define mg_group_whiten_block_avx2_float mg_group_whiten_block_float
#define mg_group_whiten_block_avx2_double mg_group_whiten_block_double
static inline int mg_whiten_avx2(int on) { (void)on; return 0; }
#endif

/* drivers: groups [k0, k1) of cov; (group, sample) pairs [p0, p1) of y, pair p = k*N + n. Return -1 when out of
   memory. */
#define MG_WHITEN_DRIVERS(T)                                                                                        \
static int mg_group_cov_##T(double* cov, const T* x, const T* shift, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S,     \
                            Py_ssize_t g, Py_ssize_t k0, Py_ssize_t k1) {                                          \
    Py_ssize_t gp = (g + 3) / 4 * 4;                                                                               \
    T* sh = (T*)malloc((size_t)gp * sizeof(T));                                                                    \
    T* zero = (T*)calloc((size_t)S, sizeof(T));                                                                    \
    int err = (sh == NULL || zero == NULL) ? -1 : 0;                                                               \
    for (Py_ssize_t k = k0; k < k1 && !err; k++) {                                                                 \
        Py_ssize_t c0 = k * g, gk = C - c0 < g ? C - c0 : g;                                                       \
        for (Py_ssize_t i = 0; i < gp; i++) sh[i] = i < gk ? shift[c0 + i] : (T)0;                                 \
        memset(cov + k * g * g, 0, (size_t)(g * g) * sizeof(double));                                              \
        if (MG_WHITEN_AVX2)                                                                                        \
            mg_group_cov_one_avx2_##T(cov + k * g * g, x + c0 * S, sh, zero, N, C, S, gk, (gk + 3) / 4 * 4, g);    \
        else                                                                                                       \
            mg_group_cov_one_##T(cov + k * g * g, x + c0 * S, sh, zero, N, C, S, gk, (gk + 3) / 4 * 4, g);         \
    }                                                                                                              \
    free(sh); free(zero);                                                                                          \
    return err;                                                                                                    \
}                                                                                                                  \
static int mg_group_whiten_##T(T* y, const T* x, const T* shift, const T* M, const T* bias, Py_ssize_t N,          \
                               Py_ssize_t C, Py_ssize_t S, Py_ssize_t g, Py_ssize_t p0, Py_ssize_t p1) {           \
    Py_ssize_t gp = (g + 7) / 8 * 8;                                                                               \
    T* Mp = (T*)malloc((size_t)(gp * g) * sizeof(T));                                                              \
    const T** xr = (const T**)malloc((size_t)g * sizeof(T*));                                                      \
    T** yr = (T**)malloc((size_t)g * sizeof(T*));                                                                  \
    int err = (Mp == NULL || xr == NULL || yr == NULL) ? -1 : 0;                                                   \
    Py_ssize_t kcur = -1, gk = 0, c0 = 0;                                                                          \
    for (Py_ssize_t p = p0; p < p1 && !err; p++) {                                                                 \
        Py_ssize_t k = p / N, n = p % N;                                                                           \
        if (k != kcur) { /* Mp: group k's gk x gk block, gk columns a row, zero rows up to gp */                   \
            kcur = k;                                                                                              \
            c0 = k * g;                                                                                            \
            gk = C - c0 < g ? C - c0 : g;                                                                          \
            memset(Mp, 0, (size_t)(gp * g) * sizeof(T));                                                           \
            for (Py_ssize_t i = 0; i < gk; i++)                                                                    \
                for (Py_ssize_t j = 0; j < gk; j++) Mp[i * gk + j] = M[(k * g + i) * g + j];                       \
        }                                                                                                          \
        for (Py_ssize_t i = 0; i < gk; i++) {                                                                      \
            xr[i] = x + (n * C + c0 + i) * S;                                                                      \
            yr[i] = y + (n * C + c0 + i) * S;                                                                      \
        }                                                                                                          \
        if (MG_WHITEN_AVX2)                                                                                        \
            mg_group_whiten_block_avx2_##T(yr, xr, shift + c0, Mp, bias + c0, gk, (gk + 7) / 8 * 8, S);            \
        else                                                                                                       \
            mg_group_whiten_block_##T(yr, xr, shift + c0, Mp, bias + c0, gk, (gk + 7) / 8 * 8, S);                 \
    }                                                                                                              \
    free(Mp); free(xr); free(yr);                                                                                  \
    return err;                                                                                                    \
}

MG_WHITEN_DRIVERS(float)
MG_WHITEN_DRIVERS(double)

/* The backward's two passes (minigrad/nn/decorrelated.py's _ZCAWhiten.backward) from dy and x directly, without the
   rows buffer [dY; u; 1] that zca_rows writes for two batched GEMMs; u = X(x - shift), zca_forward's.
   mg_zca_backward_p1_T, groups [k0, k1):   P[k, i, j] = sum over n, s of dy[n, kg+i, s] u[n, kg+j, s] and
       sdy[k, i] = sum over n, s of dy[n, kg+i, s] (i, j < gk; zeros past gk), float64: blocks of 4 dy rows x 3
       columns of [u; 1] (12 accumulators of 8 floats / 4 doubles: AVX2's 16 registers hold them with the 4 loads),
       each lane summed over one sample's row in X (fused multiply-adds), then widened into 4 double lanes (8 float
       lanes: their two halves added in double) and added over n in order; the lanes summed pairwise at the end,
       the S % lanes rest in double apart (float32 products rounded in float)
   mg_zca_backward_dx_T, (group, sample) pairs [p0, p1), p = k*N + n:
       dx[n, kg+i, s] = sum over j < gk of F[k, i, j] dy[n, kg+j, s], then of F[k, i, g+j] u[n, kg+j, s], in X in
       that order (fused multiply-adds), then + F[k, i, 2g]: 64 floats / 32 doubles of columns at a time staged as
       [dy; u] (2gk rows, zeros past S), then 16 floats / 8 doubles of them by blocks of 4 output rows x 2 vectors
       (8 accumulators)
   32-byte vectors in MG_FMA_CLONES: the v3 (AVX2) and v4 clones give the same bits, the baseline clone (no FMA)
   differs in the last bits. */
#define MG_ZCA_BACKWARD(T, VT, W)                                                                                   \
static inline VT mg_bload_##T(const T* p) { VT v; memcpy(&v, p, sizeof v); return v; }                            \
static inline void mg_bstore_##T(T* p, VT v) { memcpy(p, &v, sizeof v); }                                        \
/* acc (4 double lanes) += the lanes of a, widened (float: its halves added in double) */                          \
MG_AI void mg_p1_widen_##T(double* restrict acc, VT a) {                                                           \
    mg_v4d v;                                                                                                      \
    if (W == 8) {                                                                                                  \
        mg_v4d lo = {a[0], a[1], a[2], a[3]}, hi = {a[4 % W], a[5 % W], a[6 % W], a[7 % W]};                      \
        v = lo + hi;                                                                                               \
    } else {                                                                                                       \
        v = (mg_v4d){a[0], a[1], a[2], a[3 % W]};                                                                  \
    }                                                                                                              \
    mg_v4d t;                                                                                                      \
    memcpy(&t, acc, sizeof t);                                                                                     \
    t += v;                                                                                                        \
    memcpy(acc, &t, sizeof t);                                                                                     \
}                                                                                                                  \
/* group P (g x g) and sdy (g): dr[i] the dy rows of sample 0 (gk of them, then zero rows up to gk rounded up to   \
   4), cr[j] the columns' rows (gk x rows, the ones row, zero rows up to gk + 1 rounded up to 3) with shifts csh    \
   (0 past gk); a row r advances by step[r] from sample to sample (C S, or 0 for the ones and zero rows) */        \
MG_FMA_CLONES static void mg_zca_p1_group_##T(double* restrict P, double* restrict sdy, double (*restrict accv)[4],  \
                                              double* restrict acct, const T* const* dr, const Py_ssize_t* dstep,  \
                                              const T* const* cr, const Py_ssize_t* cstep, const T* csh,           \
                                              Py_ssize_t N, Py_ssize_t S, Py_ssize_t gk, Py_ssize_t g) {           \
    Py_ssize_t SW = S - S % W, nbj = (gk + 1 + 2) / 3, nb = (gk + 3) / 4 * nbj;                                    \
    memset(accv, 0, (size_t)(nb * 12) * sizeof *accv);                                                             \
    memset(acct, 0, (size_t)(nb * 12) * sizeof *acct);                                                             \
    /* NOTE: samples outer, blocks inner: one sample's rows of the group stay in L2 for all its blocks (blocks     \
       outer streamed all N samples again per block: docs/perf/norm-family.md, session 38) */                      \
    for (Py_ssize_t n = 0; n < N; n++)                                                                             \
        for (Py_ssize_t bi = 0; bi < gk; bi += 4)                                                                  \
            for (Py_ssize_t bj = 0; bj < gk + 1; bj += 3) {                                                        \
                const Py_ssize_t blk = (bi / 4) * nbj + bj / 3;                                                    \
                double (*av)[4] = accv + blk * 12;                                                                 \
                double* at = acct + blk * 12;                                                                      \
                const T s0 = csh[bj], s1 = csh[bj + 1], s2 = csh[bj + 2];                                          \
                const T* d[4];                                                                                     \
                const T* c[3];                                                                                     \
                for (int p = 0; p < 4; p++) d[p] = dr[bi + p] + n * dstep[bi + p];                                 \
                for (int q = 0; q < 3; q++) c[q] = cr[bj + q] + n * cstep[bj + q];                                 \
                VT a[4][3];                                                                                        \
                for (int p = 0; p < 4; p++)                                                                        \
                    for (int q = 0; q < 3; q++) a[p][q] = (VT){0};                                                 \
                for (Py_ssize_t s = 0; s < SW; s += W) {                                                           \
                    const VT u0 = mg_bload_##T(c[0] + s) - s0, u1 = mg_bload_##T(c[1] + s) - s1,                   \
                             u2 = mg_bload_##T(c[2] + s) - s2;                                                     \
                    for (int p = 0; p < 4; p++) {                                                                  \
                        const VT v = mg_bload_##T(d[p] + s);                                                       \
                        a[p][0] += v * u0;                                                                         \
                        a[p][1] += v * u1;                                                                         \
                        a[p][2] += v * u2;                                                                         \
                    }                                                                                              \
                }                                                                                                  \
                for (int p = 0; p < 4; p++)                                                                        \
                    for (int q = 0; q < 3; q++) mg_p1_widen_##T(av[p * 3 + q], a[p][q]);                           \
                if (SW < S) {                                                                                      \
                    const T sh[3] = {s0, s1, s2};                                                                  \
                    for (int p = 0; p < 4; p++)                                                                    \
                        for (int q = 0; q < 3; q++) {                                                              \
                            double t = 0.0;                                                                        \
                            for (Py_ssize_t s = SW; s < S; s++) t += (double)(d[p][s] * (c[q][s] - sh[q]));        \
                            at[p * 3 + q] += t;                                                                    \
                        }                                                                                          \
                }                                                                                                  \
            }                                                                                                      \
    for (Py_ssize_t bi = 0; bi < gk; bi += 4)                                                                      \
        for (Py_ssize_t bj = 0; bj < gk + 1; bj += 3) {                                                            \
            const Py_ssize_t blk = (bi / 4) * nbj + bj / 3;                                                        \
            for (int p = 0; p < 4 && bi + p < gk; p++)                                                             \
                for (int q = 0; q < 3 && bj + q < gk + 1; q++) {                                                   \
                    double t = mg_wsum_lanes(accv[blk * 12 + p * 3 + q], 4) + acct[blk * 12 + p * 3 + q];          \
                    if (bj + q < gk)                                                                               \
                        P[(bi + p) * g + bj + q] = t;                                                              \
                    else                                                                                           \
                        sdy[bi + p] = t;                                                                           \
                }                                                                                                  \
        }                                                                                                          \
}                                                                                                                  \
static int mg_zca_backward_p1_##T(double* P, double* sdy, const T* dy, const T* x, const T* shift, Py_ssize_t N,    \
                                  Py_ssize_t C, Py_ssize_t S, Py_ssize_t g, Py_ssize_t k0, Py_ssize_t k1) {        \
    Py_ssize_t nd = (g + 3) / 4 * 4, nc = (g + 1 + 2) / 3 * 3;                                                     \
    T* rows = (T*)calloc((size_t)(2 * S), sizeof(T));  /* a row of zeros, a row of ones */                         \
    const T** dr = (const T**)malloc((size_t)(nd + nc) * sizeof(T*));                                              \
    Py_ssize_t* step = (Py_ssize_t*)malloc((size_t)(nd + nc) * sizeof(Py_ssize_t));                                \
    T* csh = (T*)malloc((size_t)nc * sizeof(T));                                                                   \
    Py_ssize_t nb = nd / 4 * (nc / 3);  /* the blocks' lanes and rests */                                          \
    double (*accv)[4] = (double (*)[4])malloc((size_t)(nb * 12) * sizeof *accv);                                   \
    double* acct = (double*)malloc((size_t)(nb * 12) * sizeof(double));                                            \
    int err = (rows == NULL || dr == NULL || step == NULL || csh == NULL || accv == NULL || acct == NULL) ? -1 : 0; \
    if (!err)                                                                                                      \
        for (Py_ssize_t s = 0; s < S; s++) rows[S + s] = (T)1;                                                     \
    for (Py_ssize_t k = k0; k < k1 && !err; k++) {                                                                 \
        Py_ssize_t c0 = k * g, gk = C - c0 < g ? C - c0 : g;                                                       \
        const T** cr = dr + nd;                                                                                    \
        for (Py_ssize_t i = 0; i < nd; i++) {                                                                      \
            dr[i] = i < gk ? dy + (c0 + i) * S : rows;                                                             \
            step[i] = i < gk ? C * S : 0;                                                                          \
        }                                                                                                          \
        for (Py_ssize_t j = 0; j < nc; j++) {                                                                      \
            cr[j] = j < gk ? x + (c0 + j) * S : (j == gk ? rows + S : rows);                                       \
            step[nd + j] = j < gk ? C * S : 0;                                                                     \
            csh[j] = j < gk ? shift[c0 + j] : (T)0;                                                                \
        }                                                                                                          \
        memset(P + k * g * g, 0, (size_t)(g * g) * sizeof(double));                                               \
        memset(sdy + k * g, 0, (size_t)g * sizeof(double));                                                        \
        mg_zca_p1_group_##T(P + k * g * g, sdy + k * g, accv, acct, dr, step, cr, step + nd, csh, N, S, gk, g);    \
    }                                                                                                              \
    free(rows); free(dr); free(step); free(csh); free(accv); free(acct);                                           \
    return err;                                                                                                    \
}                                                                                                                  \
/* one (group, sample) pair: yr, dr, xr the gk rows of dx, dy, x; Fp (gk rounded up to 4 rows of 2gk: F[k, i, :gk], \
   F[k, i, g:g+gk], zero rows past gk), b (F[k, i, 2g], 0 past gk); buf (2gk x 8W), out (2W) scratch. NOTE: 8W  \
   columns staged at a time (256 bytes a row), then blocks of 2W: staging 2W at a time read 48 rows in 64-byte     \
   pieces, slower than the GEMM in float64 (docs/perf/norm-family.md, session 38) */                               \
MG_FMA_CLONES static void mg_zca_dx_pair_##T(T* const* yr, const T* const* dr, const T* const* xr, const T* sh,    \
                                             const T* Fp, const T* b, T* restrict buf, T* restrict out,            \
                                             Py_ssize_t gk, Py_ssize_t S) {                                        \
    const Py_ssize_t CW = 2 * W, CS = 8 * W, J = 2 * gk;                                                           \
    for (Py_ssize_t s0 = 0; s0 < S; s0 += CS) {                                                                    \
        const Py_ssize_t L = S - s0 < CS ? S - s0 : CS, LW = (L + CW - 1) / CW * CW;                               \
        for (Py_ssize_t j = 0; j < gk; j++) {                                                                      \
            T* bd = buf + j * CS;                                                                                  \
            T* bu = buf + (gk + j) * CS;                                                                           \
            if (L == CS) {                                                                                         \
                for (Py_ssize_t t = 0; t < CS; t += W) {                                                           \
                    mg_bstore_##T(bd + t, mg_bload_##T(dr[j] + s0 + t));                                           \
                    mg_bstore_##T(bu + t, mg_bload_##T(xr[j] + s0 + t) - sh[j]);                                   \
                }                                                                                                  \
            } else {                                                                                               \
                for (Py_ssize_t t = 0; t < LW; t++) {                                                              \
                    bd[t] = t < L ? dr[j][s0 + t] : (T)0;                                                          \
                    bu[t] = t < L ? xr[j][s0 + t] - sh[j] : (T)0;                                                  \
                }                                                                                                  \
            }                                                                                                      \
        }                                                                                                          \
        for (Py_ssize_t c0 = 0; c0 < L; c0 += CW) {                                                                \
            const int full = c0 + CW <= L;                                                                         \
            for (Py_ssize_t bi = 0; bi < gk; bi += 4) {                                                            \
                const T* f = Fp + bi * J;                                                                          \
                VT a[8];                                                                                           \
                for (int p = 0; p < 8; p++) a[p] = (VT){0};                                                        \
                for (Py_ssize_t j = 0; j < J; j++) {                                                               \
                    const VT u0 = mg_bload_##T(buf + j * CS + c0), u1 = mg_bload_##T(buf + j * CS + c0 + W);       \
                    for (int p = 0; p < 4; p++) {                                                                  \
                        const T c = f[p * J + j];                                                                  \
                        a[2 * p] += c * u0;                                                                        \
                        a[2 * p + 1] += c * u1;                                                                    \
                    }                                                                                              \
                }                                                                                                  \
                for (int p = 0; p < 4 && bi + p < gk; p++) {                                                       \
                    const T c = b[bi + p];                                                                         \
                    T* y = yr[bi + p] + s0 + c0;                                                                   \
                    if (full) {                                                                                    \
                        mg_bstore_##T(y, a[2 * p] + c);                                                            \
                        mg_bstore_##T(y + W, a[2 * p + 1] + c);                                                    \
                    } else {                                                                                       \
                        mg_bstore_##T(out, a[2 * p] + c);                                                          \
                        mg_bstore_##T(out + W, a[2 * p + 1] + c);                                                  \
                        memcpy(y, out, (size_t)(L - c0) * sizeof(T));                                              \
                    }                                                                                              \
                }                                                                                                  \
            }                                                                                                      \
        }                                                                                                          \
    }                                                                                                              \
}                                                                                                                  \
static int mg_zca_backward_dx_##T(T* dx, const T* dy, const T* x, const T* shift, const T* F, Py_ssize_t N,         \
                                  Py_ssize_t C, Py_ssize_t S, Py_ssize_t g, Py_ssize_t p0, Py_ssize_t p1) {        \
    Py_ssize_t g4 = (g + 3) / 4 * 4, J = 2 * g + 1;                                                                \
    T* Fp = (T*)malloc((size_t)(g4 * 2 * g + g4 + 2 * g * 8 * W + 2 * W) * sizeof(T));                            \
    const T** rr = (const T**)malloc((size_t)(3 * g) * sizeof(T*));                                                \
    int err = (Fp == NULL || rr == NULL) ? -1 : 0;                                                                 \
    T* b = Fp + g4 * 2 * g;                                                                                        \
    T* buf = b + g4;                                                                                               \
    T* out = buf + 2 * g * 8 * W;                                                                                  \
    Py_ssize_t kcur = -1, gk = 0, c0 = 0;                                                                          \
    for (Py_ssize_t p = p0; p < p1 && !err; p++) {                                                                 \
        Py_ssize_t k = p / N, n = p % N;                                                                           \
        if (k != kcur) {                                                                                           \
            kcur = k;                                                                                              \
            c0 = k * g;                                                                                            \
            gk = C - c0 < g ? C - c0 : g;                                                                          \
            memset(Fp, 0, (size_t)(g4 * 2 * g + g4) * sizeof(T));                                                  \
            for (Py_ssize_t i = 0; i < gk; i++) {                                                                  \
                const T* Fi = F + (k * g + i) * J;                                                                 \
                for (Py_ssize_t j = 0; j < gk; j++) {                                                              \
                    Fp[i * 2 * gk + j] = Fi[j];                                                                    \
                    Fp[i * 2 * gk + gk + j] = Fi[g + j];                                                           \
                }                                                                                                  \
                b[i] = Fi[2 * g];                                                                                  \
            }                                                                                                      \
        }                                                                                                          \
        for (Py_ssize_t i = 0; i < gk; i++) {                                                                      \
            rr[i] = dx + (n * C + c0 + i) * S;                                                                     \
            rr[g + i] = dy + (n * C + c0 + i) * S;                                                                 \
            rr[2 * g + i] = x + (n * C + c0 + i) * S;                                                              \
        }                                                                                                          \
        mg_zca_dx_pair_##T((T* const*)rr, rr + g, rr + 2 * g, shift + c0, Fp, b, buf, out, gk, S);                 \
    }                                                                                                              \
    free(Fp); free(rr);                                                                                            \
    return err;                                                                                                    \
}
MG_ZCA_BACKWARD(float, mg_vx_float, 8)
MG_ZCA_BACKWARD(double, mg_vx_double, 4)

/* sqrt(a^2 + b^2): the plain formula where it cannot overflow or underflow, libm's hypot (slower) elsewhere */
static inline double mg_hypot(double a, double b) {
    double r = sqrt(a * a + b * b);
    return (r > 0x1p-500 && r < 0x1p500) ? r : hypot(a, b);
}

/* Householder part (EISPACK's tred2, as JAMA writes it) of nq = 1 or 2 symmetric n x n matrices A[q] (row-major,
   both triangles), their operations interleaved statement by statement (two independent chains of sums and
   divisions overlap in the core; each matrix's operations and their order are tred2's, so its bits do not depend
   on the interleaving): the diagonal d[q] and subdiagonal e[q] of the tridiagonal form (e[i] couples i and i + 1,
   e[n-1] = 0; A scaled first, see mg_tridiag_scale) and Z[q] = V^T, V the transformation (so tql2's rotations
   update rows of Z). up[q][0] * up[q][1] undoes the scale.
   NOTE: V is stored transposed (V_(i, j) at Z[j * n + i]): tred2's inner loops walk V's columns, here contiguous
   (vectors where they are not sums), and V^T is Z itself, no copy */
#define V_(q, i, j) ((q) ? Z1 : Z0)[(j) * n + (i)]
/* matrix q's d, e (q is 0 or 1, a constant once unrolled: restrict pointers, not an array of them) */
#define D_(q) ((q) ? d1 : d0)
#define E_(q) ((q) ? e1 : e0)
#define MG_TRED2_ARGS double* restrict d0, double* restrict d1, double* restrict e0, double* restrict e1, \
                      double* restrict Z0, double* restrict Z1
/* one step of tred2's row i for the matrices whose scale is not 0 (nq of them, their pointers in d, e, Z) */
MG_AI void mg_tred2_row(const int nq, MG_TRED2_ARGS, const double* scale, double* h, Py_ssize_t i, Py_ssize_t n) {
    double f[2], g[2], hh[2];
    for (Py_ssize_t k = 0; k < i; k++)
        for (int q = 0; q < nq; q++) {
            D_(q)[k] /= scale[q];
            h[q] += D_(q)[k] * D_(q)[k];
        }
    for (int q = 0; q < nq; q++) {
        f[q] = D_(q)[i - 1];
        g[q] = sqrt(h[q]);
        if (f[q] > 0) g[q] = -g[q];
        E_(q)[i] = scale[q] * g[q];
        h[q] -= f[q] * g[q];
        D_(q)[i - 1] = f[q] - g[q];
        for (Py_ssize_t j = 0; j < i; j++) E_(q)[j] = 0.0;
    }
    for (Py_ssize_t j = 0; j < i; j++) {
        for (int q = 0; q < nq; q++) {
            f[q] = D_(q)[j];
            V_(q, j, i) = f[q];
            g[q] = E_(q)[j] + V_(q, j, j) * f[q];
        }
        for (Py_ssize_t k = j + 1; k <= i - 1; k++)
            for (int q = 0; q < nq; q++) {
                g[q] += V_(q, k, j) * D_(q)[k];
                E_(q)[k] += V_(q, k, j) * f[q];
            }
        for (int q = 0; q < nq; q++) E_(q)[j] = g[q];
    }
    for (int q = 0; q < nq; q++) f[q] = 0.0;
    for (Py_ssize_t j = 0; j < i; j++)
        for (int q = 0; q < nq; q++) {
            E_(q)[j] /= h[q];
            f[q] += E_(q)[j] * D_(q)[j];
        }
    for (int q = 0; q < nq; q++) {
        hh[q] = f[q] / (h[q] + h[q]);
        for (Py_ssize_t j = 0; j < i; j++) E_(q)[j] -= hh[q] * D_(q)[j];
    }
    for (int q = 0; q < nq; q++)
        for (Py_ssize_t j = 0; j < i; j++) {
            double fj = D_(q)[j], gj = E_(q)[j];
            for (Py_ssize_t k = j; k <= i - 1; k++) V_(q, k, j) -= (fj * E_(q)[k] + gj * D_(q)[k]);
            D_(q)[j] = V_(q, i - 1, j);
            V_(q, i, j) = 0.0;
        }
}
/* one step of the transformations' accumulation, column i + 1, for the matrices with d[i + 1] != 0 */
MG_AI void mg_tred2_accumulate(const int nq, MG_TRED2_ARGS, Py_ssize_t i, Py_ssize_t n) {
    double h[2], g[2];
    for (int q = 0; q < nq; q++) {
        h[q] = D_(q)[i + 1];
        for (Py_ssize_t k = 0; k <= i; k++) D_(q)[k] = V_(q, k, i + 1) / h[q];
    }
    for (Py_ssize_t j = 0; j <= i; j++) {
        for (int q = 0; q < nq; q++) g[q] = 0.0;
        for (Py_ssize_t k = 0; k <= i; k++)
            for (int q = 0; q < nq; q++) g[q] += V_(q, k, i + 1) * V_(q, k, j);
        for (int q = 0; q < nq; q++)
            for (Py_ssize_t k = 0; k <= i; k++) V_(q, k, j) -= g[q] * D_(q)[k];
    }
}
/* NOTE: scaled by a power of two (exact) to a largest entry in [0.5, 1), as LAPACK's dsyev scales: tql2's products
   of two off-diagonal entries would overflow near 1e154 and underflow near 1e-154. V = the scaled A, d its last
   row */
MG_AI void mg_tridiag_scale(double* restrict d, double* restrict Z, const double* restrict A, Py_ssize_t n,
                            double* up) {
    /* the largest |A_ij| (NaN skipped), in 8 lanes: a maximum in any order (the serial chain took 4% of the
       solver's time at n = 16) */
    double lane[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0}, amax = 0.0;
    Py_ssize_t nn = n * n, i8 = nn - nn % 8;
    for (Py_ssize_t i = 0; i < i8; i += 8)
        for (int l = 0; l < 8; l++) lane[l] = fabs(A[i + l]) > lane[l] ? fabs(A[i + l]) : lane[l];
    for (Py_ssize_t i = i8; i < nn; i++) amax = fabs(A[i]) > amax ? fabs(A[i]) : amax;
    for (int l = 0; l < 8; l++) amax = lane[l] > amax ? lane[l] : amax;
    int ex = 0;
    if (amax > 0.0 && amax < INFINITY) frexp(amax, &ex);
    /* 2^-ex as two exact factors (2^+-ex alone can overflow for |ex| up to 1074) */
    const double down1 = ldexp(1.0, -(ex / 2)), down2 = ldexp(1.0, -(ex - ex / 2));
    up[0] = ldexp(1.0, ex / 2);
    up[1] = ldexp(1.0, ex - ex / 2);
    for (Py_ssize_t i = 0; i < n; i++)
        for (Py_ssize_t j = 0; j < n; j++) Z[j * n + i] = A[i * n + j] * down1 * down2;
    for (Py_ssize_t j = 0; j < n; j++) d[j] = Z[j * n + n - 1];
}
MG_AI void mg_eigh_tridiag(const int nq, MG_TRED2_ARGS, const double** A, Py_ssize_t n, double** up) {
    for (int q = 0; q < nq; q++) mg_tridiag_scale(D_(q), q ? Z1 : Z0, A[q], n, up[q]);
    for (Py_ssize_t i = n - 1; i > 0; i--) {
        double scale[2] = {0.0, 0.0}, h[2] = {0.0, 0.0};
        for (Py_ssize_t k = 0; k < i; k++)
            for (int q = 0; q < nq; q++) scale[q] += fabs(D_(q)[k]);
        int zero = 0;
        for (int q = 0; q < nq; q++)
            if (scale[q] == 0.0) {
                zero |= 1 << q;
                E_(q)[i] = D_(q)[i - 1];
                for (Py_ssize_t j = 0; j < i; j++) {
                    D_(q)[j] = V_(q, i - 1, j);
                    V_(q, i, j) = 0.0;
                    V_(q, j, i) = 0.0;
                }
            }
        if (zero == 0)
            mg_tred2_row(nq, d0, d1, e0, e1, Z0, Z1, scale, h, i, n);
        else  /* NOTE: a zero row (rare): the other matrix alone */
            for (int q = 0; q < nq; q++)
                if (!(zero >> q & 1))
                    mg_tred2_row(1, D_(q), NULL, E_(q), NULL, q ? Z1 : Z0, NULL, scale + q, h + q, i, n);
        for (int q = 0; q < nq; q++) D_(q)[i] = h[q];
    }
    /* accumulate the transformations */
    for (Py_ssize_t i = 0; i < n - 1; i++) {
        int zero = 0;
        for (int q = 0; q < nq; q++) {
            V_(q, n - 1, i) = V_(q, i, i);
            V_(q, i, i) = 1.0;
            if (D_(q)[i + 1] == 0.0) zero |= 1 << q;
        }
        if (zero == 0)
            mg_tred2_accumulate(nq, d0, d1, e0, e1, Z0, Z1, i, n);
        else
            for (int q = 0; q < nq; q++)
                if (!(zero >> q & 1)) mg_tred2_accumulate(1, D_(q), NULL, E_(q), NULL, q ? Z1 : Z0, NULL, i, n);
        for (int q = 0; q < nq; q++)
            for (Py_ssize_t k = 0; k <= i; k++) V_(q, k, i + 1) = 0.0;
    }
    for (int q = 0; q < nq; q++) {
        for (Py_ssize_t j = 0; j < n; j++) {
            D_(q)[j] = V_(q, n - 1, j);
            V_(q, n - 1, j) = 0.0;
        }
        V_(q, n - 1, n - 1) = 1.0;
        for (Py_ssize_t i = 1; i < n; i++) E_(q)[i - 1] = E_(q)[i];
        E_(q)[n - 1] = 0.0;
    }
}
#undef V_
#undef D_
#undef E_
#undef MG_TRED2_ARGS

/* tql2 (the implicit QL iteration) of one matrix as a state machine, so that two matrices' iterations run
   interleaved rotation by rotation: each rotation's chain (a square root, a division, the next p) is serial, and
   two independent chains overlap in the core. The operations of each matrix and their order are tql2's exactly
   (the bits do not depend on the interleaving). mg_ql_next starts the next QL sweep (1), or says the matrix is
   done (0) or did not converge in 60 sweeps for an eigenvalue (-1); mg_ql_rot is one rotation of the sweep
   (i from m - 1 down to l); mg_ql_end closes the sweep. */
typedef struct {
    double* d;
    double* e;
    double* Z;
    Py_ssize_t n, l, m, i;
    int iter, active;
    double f, tst1, c, c2, c3, el1, s, s2, p, dl1;
} mg_ql;

static inline int mg_ql_next(mg_ql* q) {
    const double eps = 0x1p-52;
    double* d = q->d;
    double* e = q->e;
    if (q->active) {  /* after a sweep: another for this l, or l has converged */
        if (fabs(e[q->l]) > eps * q->tst1) goto sweep;
        d[q->l] += q->f;
        e[q->l] = 0.0;
        q->l++;
        q->active = 0;
    }
    for (; q->l < q->n; q->l++) {
        Py_ssize_t l = q->l, m = l;
        q->tst1 = fmax(q->tst1, fabs(d[l]) + fabs(e[l]));
        while (m < q->n - 1 && !(fabs(e[m]) <= eps * q->tst1)) m++;  /* NOTE: e[n-1] = 0 ends it; NaN stops at n-1 */
        if (m > l) {
            q->m = m;
            q->active = 1;
            q->iter = 0;
            goto sweep;
        }
        d[l] += q->f;
        e[l] = 0.0;
    }
    return 0;
sweep:
    if (++q->iter > 60) return -1;
    {
        Py_ssize_t l = q->l, m = q->m;
        double g = d[l];
        double p = (d[l + 1] - g) / (2.0 * e[l]);
        double r = mg_hypot(p, 1.0);
        if (p < 0) r = -r;
        d[l] = e[l] / (p + r);
        d[l + 1] = e[l] * (p + r);
        q->dl1 = d[l + 1];
        double h = g - d[l];
        for (Py_ssize_t i = l + 2; i < q->n; i++) d[i] -= h;
        q->f += h;
        q->p = d[m];
        q->c = q->c2 = q->c3 = 1.0;
        q->el1 = e[l + 1];
        q->s = q->s2 = 0.0;
        q->i = m - 1;
    }
    return 1;
}

static inline void mg_ql_rot(mg_ql* q) {
    Py_ssize_t i = q->i, n = q->n;
    double* restrict d = q->d;
    double* restrict e = q->e;
    double c = q->c, s = q->s, p = q->p;
    q->c3 = q->c2;
    q->c2 = c;
    q->s2 = s;
    double g = c * e[i], h = c * p;
    double r = mg_hypot(p, e[i]);
    e[i + 1] = s * r;
    double ir = 1.0 / r;
    s = e[i] * ir;
    c = p * ir;
    p = c * d[i] - s * g;
    d[i + 1] = h + s * (c * g + s * d[i]);
    double* restrict z0 = q->Z + i * n;
    double* restrict z1 = q->Z + (i + 1) * n;
    for (Py_ssize_t k = 0; k < n; k++) {
        double t = z1[k];
        z1[k] = s * z0[k] + c * t;
        z0[k] = c * z0[k] - s * t;
    }
    q->c = c;
    q->s = s;
    q->p = p;
    q->i = i - 1;
}

static inline void mg_ql_end(mg_ql* q) {
    Py_ssize_t l = q->l;
    double p = -q->s * q->s2 * q->c3 * q->el1 * q->e[l] / q->dl1;
    q->e[l] = q->s * p;
    q->d[l] = q->c * p;
}

/* d ascending (selection sort, as tql2) with Z's rows, unscaled, and U = Z^T */
static void mg_eigh_finish(double* restrict d, double* restrict U, double* restrict Z, Py_ssize_t n,
                           const double* up) {
    for (Py_ssize_t i = 0; i < n - 1; i++) {
        Py_ssize_t k = i;
        double p = d[i];
        for (Py_ssize_t j = i + 1; j < n; j++)
            if (d[j] < p) {
                k = j;
                p = d[j];
            }
        if (k != i) {
            d[k] = d[i];
            d[i] = p;
            for (Py_ssize_t j = 0; j < n; j++) {
                double t = Z[i * n + j];
                Z[i * n + j] = Z[k * n + j];
                Z[k * n + j] = t;
            }
        }
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        d[i] = d[i] * up[0] * up[1];
        for (Py_ssize_t k = 0; k < n; k++) U[k * n + i] = Z[i * n + k];
    }
}

/* One or two symmetric n x n matrices (row-major, both triangles): A0 -> d0 (n,) ascending and U0 (n x n,
   row-major, column i the eigenvector of d0[i]), and A1 -> d1, U1 when d1 is not NULL, their QL iterations
   interleaved (above). work: 3 n*n + 2 n doubles. Returns 0, or -1 when the QL iteration does not converge in 60
   steps for an eigenvalue of either (non-finite input): the caller falls back to LAPACK. NOTE: cloned for AVX2 and
   AVX-512 (MG_CLONES_V4) for the rotations' row updates (16 doubles: 8 SSE2 pairs in the baseline clone, 2 AVX-512
   vectors); the build's -ffp-contract=off and no reassociated sum keep every clone's bits the baseline's. */
MG_CLONES_V4 static int mg_sym_eigh2(double* restrict d0, double* restrict U0, const double* restrict A0,
                                     double* restrict d1, double* restrict U1, const double* restrict A1,
                                     double* restrict work, Py_ssize_t n) {
    double up0[2], up1[2];
    mg_ql a = {.d = d0, .e = work + 3 * n * n, .Z = work + n * n, .n = n};  /* the rest 0 */
    mg_ql b = {.d = d1, .e = work + 3 * n * n + n, .Z = work + 2 * n * n, .n = n};
    const double* Aq[2] = {A0, A1};
    double* upq[2] = {up0, up1};
    if (d1 != NULL)
        mg_eigh_tridiag(2, d0, d1, a.e, b.e, a.Z, b.Z, Aq, n, upq);
    else
        mg_eigh_tridiag(1, d0, NULL, a.e, NULL, a.Z, NULL, Aq, n, upq);
    int sa = mg_ql_next(&a), sb = d1 != NULL ? mg_ql_next(&b) : 0;
    while (sa > 0 || sb > 0) {
        if (sa > 0) {
            mg_ql_rot(&a);
            if (a.i < a.l) {
                mg_ql_end(&a);
                sa = mg_ql_next(&a);
            }
        }
        if (sb > 0) {
            mg_ql_rot(&b);
            if (b.i < b.l) {
                mg_ql_end(&b);
                sb = mg_ql_next(&b);
            }
        }
    }
    if (sa < 0 || sb < 0) return -1;
    mg_eigh_finish(d0, U0, a.Z, n, up0);
    if (d1 != NULL) mg_eigh_finish(d1, U1, b.Z, n, up1);
    return 0;
}

/* The g x g algebra between the passes, for group k and, when gk1 > 0, group k + 1 too (their eigensolvers
   interleaved: mg_sym_eigh2), float64: with the raw sums cov (gk x gk, zero-padded to g x g), d = mean - shift
   (0 past gk), w, b (C,):
     cov <- cov/m - d d^T (the biased covariance);  lam, U = eigh(cov + eps I);  s = sqrt(max(lam, eps))
     W = (U diag(1/s)) U^T;  Mx = X(w_i W_ij);  bx = X(b_i - sum_j w_i W_ij d_j)  (i, j < gk)
   The arrays hold group k's values then group k + 1's (g*g apart for cov, U, W, Mx; g apart for lam, s, bx, d, w,
   b). Returns -1 when the eigensolver does not converge (work: 5 g*g + 2 g doubles). Cloned as the eigensolver
   (MG_CLONES_V4): the divisions and W's sums run in vectors across columns, each value's operations unchanged. */
#define MG_ZCA_MATRICES(T)                                                                                          \
MG_CLONES_V4 static int mg_zca_matrices_##T(double* cov, double* lam, double* U, double* W, double* s, T* Mx,       \
                                            T* bx, const double* d, const double* w, const double* b,              \
                                            Py_ssize_t gk0, Py_ssize_t gk1, Py_ssize_t g, double m, double eps,    \
                                            double* work) {                                                        \
    Py_ssize_t ng = gk1 > 0 ? 2 : 1, gg = g * g;                                                                   \
    double* A = work;  /* ng matrices cov + eps I */                                                               \
    for (Py_ssize_t q = 0; q < ng; q++)                                                                            \
        for (Py_ssize_t i = 0; i < g; i++)                                                                         \
            for (Py_ssize_t j = 0; j < g; j++) {                                                                   \
                double c = cov[q * gg + i * g + j] / m - d[q * g + i] * d[q * g + j];                              \
                cov[q * gg + i * g + j] = c;                                                                       \
                A[q * gg + i * g + j] = i == j ? c + eps : c;                                                      \
            }                                                                                                      \
    if (mg_sym_eigh2(lam, U, A, ng == 2 ? lam + g : NULL, U + gg, A + gg, work + 2 * gg, g)) return -1;            \
    for (Py_ssize_t q = 0; q < ng; q++) {                                                                          \
        Py_ssize_t gk = q ? gk1 : gk0;                                                                             \
        double* Uq = U + q * gg;                                                                                   \
        double* Wq = W + q * gg;                                                                                   \
        double* sq = s + q * g;                                                                                    \
        const double* dq = d + q * g;                                                                              \
        const double* wq = w + q * g;                                                                              \
        for (Py_ssize_t k = 0; k < g; k++) sq[k] = sqrt(lam[q * g + k] > eps ? lam[q * g + k] : eps);              \
        double* Us = work;  /* U diag(1/s), then W = Us U^T */                                                     \
        double* Ut = work + gg;                                                                                    \
        for (Py_ssize_t i = 0; i < g; i++)                                                                         \
            for (Py_ssize_t k = 0; k < g; k++) {                                                                   \
                Us[i * g + k] = Uq[i * g + k] / sq[k];                                                             \
                Ut[k * g + i] = Uq[i * g + k];                                                                     \
            }                                                                                                      \
        /* NOTE: W[i, j] = sum over k in order of Us[i, k] U[j, k], summed across j in vectors (the same bits) */  \
        for (Py_ssize_t i = 0; i < g; i++) {                                                                       \
            double* restrict wr = Wq + i * g;                                                                      \
            for (Py_ssize_t j = 0; j < g; j++) wr[j] = 0.0;                                                        \
            for (Py_ssize_t k = 0; k < g; k++) {                                                                   \
                const double u = Us[i * g + k];                                                                    \
                const double* restrict ut = Ut + k * g;                                                            \
                for (Py_ssize_t j = 0; j < g; j++) wr[j] += u * ut[j];                                             \
            }                                                                                                      \
        }                                                                                                          \
        for (Py_ssize_t i = 0; i < gk; i++) {                                                                      \
            double t = b[q * g + i];                                                                               \
            for (Py_ssize_t j = 0; j < gk; j++) {                                                                  \
                Mx[q * gg + i * g + j] = (T)(wq[i] * Wq[i * g + j]);                                               \
                t -= wq[i] * Wq[i * g + j] * dq[j];                                                                \
            }                                                                                                      \
            bx[q * g + i] = (T)t;                                                                                  \
        }                                                                                                          \
    }                                                                                                              \
    return 0;                                                                                                      \
}
MG_ZCA_MATRICES(float)
MG_ZCA_MATRICES(double)

/* The backward's rows, samples [n0, n1): B (N, G, 2g+1, S) gets, per group, rows [dY; x - shift; 1] (zeros past
   gk in the first two) */
#define MG_ZCA_ROWS(T)                                                                                              \
MG_CLONES static void mg_zca_rows_##T(T* B, const T* dy, const T* x, const T* shift, Py_ssize_t N, Py_ssize_t C,   \
                                      Py_ssize_t S, Py_ssize_t g, Py_ssize_t n0, Py_ssize_t n1) {                  \
    Py_ssize_t G = (C + g - 1) / g, R = 2 * g + 1;                                                                 \
    (void)N;                                                                                                       \
    for (Py_ssize_t n = n0; n < n1; n++)                                                                           \
        for (Py_ssize_t k = 0; k < G; k++) {                                                                       \
            T* b = B + (n * G + k) * R * S;                                                                        \
            for (Py_ssize_t i = 0; i < g; i++) {                                                                   \
                Py_ssize_t c = k * g + i;                                                                          \
                T* restrict bd = b + i * S;                                                                        \
                T* restrict bx = b + (g + i) * S;                                                                  \
                if (c < C) {                                                                                       \
                    const T* restrict xr = x + (n * C + c) * S;                                                    \
                    T sh = shift[c];                                                                               \
                    memcpy(bd, dy + (n * C + c) * S, (size_t)S * sizeof(T));                                       \
                    for (Py_ssize_t s = 0; s < S; s++) bx[s] = xr[s] - sh;                                         \
                } else {                                                                                           \
                    memset(bd, 0, (size_t)S * sizeof(T));                                                          \
                    memset(bx, 0, (size_t)S * sizeof(T));                                                          \
                }                                                                                                  \
            }                                                                                                      \
            T* restrict one = b + 2 * g * S;                                                                       \
            for (Py_ssize_t s = 0; s < S; s++) one[s] = (T)1;                                                      \
        }                                                                                                          \
}
MG_ZCA_ROWS(float)
MG_ZCA_ROWS(double)

/* The running averages, serial, in float64 and rounded once (NumPy's order, no fused multiply-add: the build's
   -ffp-contract=off): run = X((1 - f) run + f (new scale)), n values. */
#define MG_RUNNING(T)                                                                                               \
static void mg_running_average_##T(T* run, const double* new, Py_ssize_t n, double f, double scale) {              \
    for (Py_ssize_t i = 0; i < n; i++) run[i] = (T)((1.0 - f) * (double)run[i] + f * (new[i] * scale));            \
}                                                                                                                  \
/* All three of decorrelated batch norm's (C channels, G groups of g): rmean (C,) from mean; rcov, rW (G, g, g)    \
   from cov * scale and W, where the last group's padding (rows or columns past C) averages in the identity.      \
   The same values as mg_running_average of the three with the padding written into copies of cov * scale and W  \
   (scale 1 then): v * 1.0 = v. */                                                                                 \
static void mg_zca_running_update_##T(T* rmean, T* rcov, T* rW, const double* mean, const double* cov,             \
                                      const double* W, Py_ssize_t C, Py_ssize_t G, Py_ssize_t g, double f,         \
                                      double scale) {                                                              \
    Py_ssize_t r = C - (G - 1) * g, last = (G - 1) * g * g;  /* the last group's channels, its first entry */     \
    mg_running_average_##T(rmean, mean, C, f, 1.0);                                                                \
    mg_running_average_##T(rcov, cov, last, f, scale);                                                             \
    mg_running_average_##T(rW, W, last, f, 1.0);                                                                   \
    for (Py_ssize_t i = 0; i < g; i++)                                                                             \
        for (Py_ssize_t j = 0; j < g; j++) {                                                                       \
            Py_ssize_t e = last + i * g + j;                                                                       \
            int pad = i >= r || j >= r;                                                                            \
            double eye = i == j ? 1.0 : 0.0;                                                                       \
            mg_running_average_##T(rcov + e, pad ? &eye : cov + e, 1, f, pad ? 1.0 : scale);                       \
            mg_running_average_##T(rW + e, pad ? &eye : W + e, 1, f, 1.0);                                         \
        }                                                                                                          \
}
MG_RUNNING(float)
MG_RUNNING(double)

#endif
