"""Batch norm and group norm kernels in Cython/OpenMP. Signatures: minigrad/kernels/contract.py; the math and
its derivation: minigrad/kernels/reference.py (the oracle these kernels are tested against).

  N batch, C channels, S spatial size, G groups, Cg = C/G channels per group, M = size of a reduction set
  channels layout  x: (N, C, S) C-contiguous   batch norm: one set per channel, M = N*S
  group layout     x: (N, C, S) C-contiguous   group norm: one set per row (n, g) of Cg*S contiguous values

Constraints kept everywhere:
  - statistics in double: a *shifted* single pass, sum(x - K) and sum((x - K)^2) with K a value of the set, which
    stays accurate when |mean| >> std (unlike E[x^2] - E[x]^2); for float32 input x - K, its square and their sums
    run in float32 lanes over short fixed groups whose partials are then added in double (a set whose float32
    sums overflow is summed again in double);
  - elementwise passes in X precision so they vectorize, written as (x - K)*scale + shift with K = X(mean): x - K
    is (nearly) exact, so a large mean does not cancel catastrophically the way x*scale + (b - mean*scale) does;
  - parallel loops write disjoint slices only; every sum has a fixed order that does not depend on n_threads, so
    results are bit-identical for any thread count; parameter gradients of group norm go through partials of
    shape (n_chunks, C) (n_chunks from N alone) merged serially;
  - forward saves only mean and rstd; backward recomputes xhat = (x - mean)*rstd from x.
"""
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport isfinite, sqrt
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memset

from minigrad._ext._arrays cimport dim, is_float32, ptr

cnp.import_array()

# group norm backward: at most this many chunks of the batch, each with its own dweight/dbias partials
cdef Py_ssize_t MAX_CHUNKS = 64
# BatchNorm1d statistics (and backward sums): rows added per walk while the per-channel accumulators sit in
# registers (see mg_col_shifted_sums_float and mg_col_dy_sums_float)
cdef enum:
    ROWS_1D = 8
    ROWS_1D_DY = 4
# layer-norm shaped group norm backward: rows per block of X-precision dweight/dbias partials
cdef enum:
    LN_ROWS = 32
# batch norm: input bytes of a block of channels that is reduced and then finished while it is still in cache
cdef Py_ssize_t BN_BLOCK_BYTES = 4 << 20
cdef Py_ssize_t BN_RUN_BYTES = 16 << 10


# ---------------------------------------------------------------------------------------------------------
# shared building blocks (x: a contiguous run of m values)

# NOTE: without -ffast-math gcc never vectorizes a floating-point reduction (it would reorder the adds). These two
# reductions dominate the run time, so they are written in C with GCC vector extensions: eight double accumulators
# (two 4-wide vectors) in a fixed order, which vectorize on any x86-64 and do not depend on the thread count.
cdef extern from "mg_clones.h":  # MG_CLONES: the helpers below are compiled for AVX2 and the baseline (see there)
    pass

cdef extern from *:
    """
    #include <string.h>
    #pragma GCC diagnostic ignored "-Wpsabi"
    typedef double mg_v4d __attribute__((vector_size(32)));
    /* NOTE: element by element, not __builtin_convertvector: GCC 12 lowers that one to two 2-wide conversions glued
       through the stack (store-forwarding stalls); this form compiles to one vcvtps2pd ymm in the AVX2 clone. */
    static inline mg_v4d mg_load4_float(const float* p) { mg_v4d v = {p[0], p[1], p[2], p[3]}; return v; }
    static inline mg_v4d mg_load4_double(const double* p) { mg_v4d v; memcpy(&v, p, sizeof v); return v; }
    static inline void mg_store4(double* p, mg_v4d v) { memcpy(p, &v, sizeof v); }
    static inline double mg_hsum(mg_v4d a, mg_v4d b) { a += b; return (a[0] + a[1]) + (a[2] + a[3]); }

    /* s1 += sum(x - K), s2 += sum((x - K)^2) over x[0:m] */
    #define MG_SHIFTED_SUMS(T)                                                                    \
    MG_CLONES static void mg_shifted_sums_##T(const T* x, Py_ssize_t m, double K, double* s1, double* s2) { \
        const mg_v4d k = {K, K, K, K};                                                            \
        mg_v4d a0 = {0, 0, 0, 0}, a1 = a0, q0 = a0, q1 = a0;                                       \
        Py_ssize_t i = 0;                                                                         \
        for (; i + 8 <= m; i += 8) {                                                              \
            mg_v4d d0 = mg_load4_##T(x + i) - k, d1 = mg_load4_##T(x + i + 4) - k;                \
            a0 += d0; a1 += d1; q0 += d0 * d0; q1 += d1 * d1;                                     \
        }                                                                                         \
        double a = 0, q = 0;                                                                      \
        for (; i < m; i++) { double d = (double)x[i] - K; a += d; q += d * d; }                   \
        *s1 += mg_hsum(a0, a1) + a;                                                               \
        *s2 += mg_hsum(q0, q1) + q;                                                               \
    }
    /* sdy += sum(dy), sdyx += sum(dy*(x - mean)) over [0, m) */
    #define MG_DY_SUMS(T)                                                                         \
    MG_CLONES static void mg_dy_sums_##T(const T* dy, const T* x, Py_ssize_t m, double mean,                \
                               double* sdy, double* sdyx) {                                       \
        const mg_v4d k = {mean, mean, mean, mean};                                                \
        mg_v4d a0 = {0, 0, 0, 0}, a1 = a0, q0 = a0, q1 = a0;                                       \
        Py_ssize_t i = 0;                                                                         \
        for (; i + 8 <= m; i += 8) {                                                              \
            mg_v4d g0 = mg_load4_##T(dy + i), g1 = mg_load4_##T(dy + i + 4);                      \
            a0 += g0; a1 += g1;                                                                   \
            q0 += g0 * (mg_load4_##T(x + i) - k); q1 += g1 * (mg_load4_##T(x + i + 4) - k);       \
        }                                                                                         \
        double a = 0, q = 0;                                                                      \
        for (; i < m; i++) { a += dy[i]; q += (double)dy[i] * ((double)x[i] - mean); }            \
        *sdy += mg_hsum(a0, a1) + a;                                                              \
        *sdyx += mg_hsum(q0, q1) + q;                                                             \
    }
    /* layer-norm shaped group-norm backward (S == 1, per-element weight), the two row reductions with g = dy*w:
       sw = sum(g), swx = sum(g*(x - K)) over [0, m), K = X(mean) (the caller subtracts (mean - K)*sw).
       NOTE: the products are taken in X precision (x - K is exact where |mean| >> std) and summed in X precision
       over runs of MG_LN_RUN values per lane only, then in double: float32 products cost a rounding of 2^-24 each
       (the float32 output's own precision), but converting every value to double made this the slowest pass
       (two conversions per value; measured 1.7x slower end to end at (8192, 768)). Fixed order, as everywhere. */
    typedef float mg_vx_float __attribute__((vector_size(32)));
    typedef double mg_vx_double __attribute__((vector_size(32)));
    static inline mg_vx_float mg_loadx_float(const float* p) { mg_vx_float v; memcpy(&v, p, sizeof v); return v; }
    static inline mg_vx_double mg_loadx_double(const double* p) { mg_vx_double v; memcpy(&v, p, sizeof v); return v; }
    /* acc0, acc1 += v, widened to double (a vector of 8 floats or of 4 doubles) */
    static inline void mg_widen_add_float(mg_v4d* a0, mg_v4d* a1, mg_vx_float v) {
        mg_v4d lo = {v[0], v[1], v[2], v[3]}, hi = {v[4], v[5], v[6], v[7]};
        *a0 += lo; *a1 += hi;
    }
    static inline void mg_widen_add_double(mg_v4d* a0, mg_v4d* a1, mg_vx_double v) { *a0 += v; (void)a1; }
    #define MG_LN_RUN 4
    #define MG_LN_ROW_SUMS(T)                                                                     \
    MG_CLONES static void mg_ln_row_sums_##T(const T* dy, const T* x, const T* w, Py_ssize_t m, T K, \
                                             double* sw, double* swx) {                          \
        enum { L = sizeof(mg_vx_##T) / sizeof(T) };                                               \
        mg_v4d a0 = {0, 0, 0, 0}, a1 = a0, q0 = a0, q1 = a0;                                       \
        Py_ssize_t i = 0;                                                                         \
        for (; i + MG_LN_RUN * L <= m; i += MG_LN_RUN * L) {                                      \
            mg_vx_##T ga = {0}, ea = {0};                                                         \
            for (int h = 0; h < MG_LN_RUN * L; h += L) {                                          \
                mg_vx_##T g = mg_loadx_##T(dy + i + h) * mg_loadx_##T(w + i + h);                 \
                ga += g; ea += g * (mg_loadx_##T(x + i + h) - K);                                 \
            }                                                                                     \
            mg_widen_add_##T(&a0, &a1, ga); mg_widen_add_##T(&q0, &q1, ea);                       \
        }                                                                                         \
        double a = 0, q = 0;                                                                      \
        for (; i < m; i++) { T g = dy[i] * w[i]; a += g; q += g * (x[i] - K); }                   \
        *sw = mg_hsum(a0, a1) + a;                                                                \
        *swx = mg_hsum(q0, q1) + q;                                                               \
    }                                                                                             \
    /* dx = r*(w*dy - mg) + b*(x - K) + k, and this block's parameter-gradient partials in X precision:     \
       fb += dy, fw += dy*xhat with xhat = (x - K)*r - dmr (elementwise: vectorizes, no reassociation) */    \
    MG_CLONES static void mg_ln_dx_##T(T* restrict dx, const T* restrict dy, const T* restrict x,        \
                                       const T* restrict w, Py_ssize_t m, T r, T mg, T K, T b, T k, T dmr, \
                                       T* restrict fw, T* restrict fb) {                          \
        for (Py_ssize_t i = 0; i < m; i++) {                                                      \
            T g = dy[i], d = x[i] - K;                                                            \
            dx[i] = r * (w[i] * g - mg) + b * d + k;                                              \
            fb[i] += g;                                                                           \
            fw[i] += g * (d * r - dmr);                                                           \
        }                                                                                         \
    }                                                                                             \
    /* pw += fw, pb += fb (in double), then fw = fb = 0 */                                          \
    MG_CLONES static void mg_ln_flush_##T(double* restrict pw, double* restrict pb, T* restrict fw,    \
                                          T* restrict fb, Py_ssize_t m) {                         \
        for (Py_ssize_t i = 0; i < m; i++) {                                                      \
            pw[i] += fw[i]; pb[i] += fb[i]; fw[i] = 0; fb[i] = 0;                                 \
        }                                                                                         \
    }
    /* the elementwise passes, in X precision (GCC vectorizes them; the AVX2 clone does 8 floats a step) */
    #define MG_ELEMENTWISE(T)                                                                     \
    MG_CLONES static void mg_affine_##T(T* y, const T* x, Py_ssize_t m, T K, T scale, T shift) {  \
        for (Py_ssize_t i = 0; i < m; i++) y[i] = (x[i] - K) * scale + shift;                     \
    }                                                                                             \
    /* the same pass for the group-norm rows, with an AVX-512 clone (MG_CLONES_V4; see mg_shifted_sums_float) */ \
    MG_CLONES_V4 static void mg_row_affine_##T(T* y, const T* x, Py_ssize_t m, T K, T scale, T shift) { \
        for (Py_ssize_t i = 0; i < m; i++) y[i] = (x[i] - K) * scale + shift;                     \
    }                                                                                             \
    MG_CLONES static void mg_affine2_##T(T* dx, const T* dy, const T* x, Py_ssize_t m,            \
                                         T a, T mdy, T K, T b, T k) {                             \
        for (Py_ssize_t i = 0; i < m; i++) dx[i] = a * (dy[i] - mdy) + b * (x[i] - K) + k;        \
    }                                                                                             \
    MG_CLONES static void mg_gn_dx_##T(T* dx, const T* dy, const T* x, Py_ssize_t m,              \
                                       T r, T w, T mg, T K, T b, T k) {                           \
        for (Py_ssize_t i = 0; i < m; i++) dx[i] = r * (w * dy[i] - mg) + b * (x[i] - K) + k;     \
    }                                                                                             \
    MG_CLONES static void mg_ln_affine_##T(T* y, const T* x, const T* w, const T* bias,           \
                                           Py_ssize_t m, T K, T r, T dmr) {                       \
        for (Py_ssize_t i = 0; i < m; i++) y[i] = ((x[i] - K) * r - dmr) * w[i] + bias[i];        \
    }
    /* BatchNorm1d (S == 1): nr rows (stride ldx) of m channels into per-channel accumulators, vectorized across
       channels (independent lanes: no reassociation, each s1[c] still adds its rows one by one, in order). The nr
       rows are added while the accumulators sit in registers: one load/store of s1, s2 per nr rows. */
    #define MG_COLUMNS(T)                                                                         \
    MG_CLONES static void mg_col_shifted_sums_##T(const T* restrict x, Py_ssize_t ldx, Py_ssize_t nr,      \
                                                  const double* restrict K, Py_ssize_t m,         \
                                                  double* restrict s1, double* restrict s2) {     \
        Py_ssize_t c = 0;                                                                         \
        for (; c + 8 <= m; c += 8) {                                                              \
            mg_v4d k0 = mg_load4_double(K + c), k1 = mg_load4_double(K + c + 4);                  \
            mg_v4d a0 = mg_load4_double(s1 + c), a1 = mg_load4_double(s1 + c + 4);                \
            mg_v4d q0 = mg_load4_double(s2 + c), q1 = mg_load4_double(s2 + c + 4);                \
            for (Py_ssize_t j = 0; j < nr; j++) {                                                 \
                mg_v4d d0 = mg_load4_##T(x + j * ldx + c) - k0, d1 = mg_load4_##T(x + j * ldx + c + 4) - k1; \
                a0 += d0; a1 += d1; q0 += d0 * d0; q1 += d1 * d1;                                 \
            }                                                                                     \
            mg_store4(s1 + c, a0); mg_store4(s1 + c + 4, a1);                                     \
            mg_store4(s2 + c, q0); mg_store4(s2 + c + 4, q1);                                     \
        }                                                                                         \
        for (; c < m; c++)                                                                        \
            for (Py_ssize_t j = 0; j < nr; j++) {                                                 \
                double d = (double)x[j * ldx + c] - K[c]; s1[c] += d; s2[c] += d * d;             \
            }                                                                                     \
    }                                                                                             \
    MG_CLONES static void mg_col_dy_sums_##T(const T* restrict dy, const T* restrict x, Py_ssize_t ldx, \
                                             Py_ssize_t nr, const double* restrict mean, Py_ssize_t m, \
                                             double* restrict sdy, double* restrict sdyx) {       \
        Py_ssize_t c = 0;                                                                         \
        for (; c + 8 <= m; c += 8) {                                                              \
            mg_v4d k0 = mg_load4_double(mean + c), k1 = mg_load4_double(mean + c + 4);            \
            mg_v4d a0 = mg_load4_double(sdy + c), a1 = mg_load4_double(sdy + c + 4);              \
            mg_v4d q0 = mg_load4_double(sdyx + c), q1 = mg_load4_double(sdyx + c + 4);            \
            for (Py_ssize_t j = 0; j < nr; j++) {                                                 \
                mg_v4d g0 = mg_load4_##T(dy + j * ldx + c), g1 = mg_load4_##T(dy + j * ldx + c + 4); \
                a0 += g0; a1 += g1;                                                               \
                q0 += g0 * (mg_load4_##T(x + j * ldx + c) - k0);                                  \
                q1 += g1 * (mg_load4_##T(x + j * ldx + c + 4) - k1);                              \
            }                                                                                     \
            mg_store4(sdy + c, a0); mg_store4(sdy + c + 4, a1);                                   \
            mg_store4(sdyx + c, q0); mg_store4(sdyx + c + 4, q1);                                 \
        }                                                                                         \
        for (; c < m; c++)                                                                        \
            for (Py_ssize_t j = 0; j < nr; j++) {                                                 \
                double g = dy[j * ldx + c]; sdy[c] += g; sdyx[c] += g * ((double)x[j * ldx + c] - mean[c]); \
            }                                                                                     \
    }
    /* the elementwise passes of one row, per-channel coefficients (X precision) */
    #define MG_COL_AFFINE(T)                                                                      \
    MG_CLONES static void mg_col_affine_##T(T* restrict y, const T* restrict x, Py_ssize_t m,    \
                                            const T* restrict K, const T* restrict scale,         \
                                            const T* restrict shift) {                            \
        for (Py_ssize_t c = 0; c < m; c++) y[c] = (x[c] - K[c]) * scale[c] + shift[c];            \
    }                                                                                             \
    MG_CLONES static void mg_col_affine2_##T(T* restrict dx, const T* restrict dy, const T* restrict x, \
                                             Py_ssize_t m, const T* restrict a, const T* restrict mdy, \
                                             const T* restrict K, const T* restrict b, const T* restrict k) { \
        for (Py_ssize_t c = 0; c < m; c++) dx[c] = a[c] * (dy[c] - mdy[c]) + b[c] * (x[c] - K[c]) + k[c]; \
    }
    /* float64 sums, the elementwise passes and the float32 channel sums: runs of at least this many values go
       one channel per call, as before (measured 4-9% slower interleaved at S = 12544, 9-40% slower at S = 196,
       cause not found; 5-8% faster at S = 49) */
    #define MG_SHORT_RUN 128
    #define MG_LANE_RUN 512  /* see mg_channel_lane_sums_float */
    /* batch norm, one row's run of nc channels of S values each (x[c*S:(c+1)*S] is channel c), per-channel sums:
       s1[c] += sum(x - K[c]), s2[c] += sum((x - K[c])^2). Two channels at a time, each with exactly the operations
       and order of mg_shifted_sums (same bits): at small S one channel's adds are bound by their latency, and the
       two channels' independent chains overlap (and the call overhead is paid once per row, not per channel). */
    #define MG_CHANNEL_SUMS(T)                                                                    \
    MG_CLONES static void mg_channel_shifted_sums_##T(const T* restrict x, Py_ssize_t nc, Py_ssize_t S,      \
                                                      const double* restrict K, double* restrict s1,         \
                                                      double* restrict s2) {                                 \
        Py_ssize_t c = 0;                                                                         \
        for (; c + 2 <= nc && S < MG_SHORT_RUN; c += 2) {                                         \
            const T* xa = x + c * S;                                                              \
            const T* xb = xa + S;                                                                 \
            const double Ka = K[c], Kb = K[c + 1];                                                \
            const mg_v4d ka = {Ka, Ka, Ka, Ka}, kb = {Kb, Kb, Kb, Kb};                            \
            mg_v4d a0 = {0, 0, 0, 0}, a1 = a0, q0 = a0, q1 = a0, b0 = a0, b1 = a0, r0 = a0, r1 = a0; \
            Py_ssize_t i = 0;                                                                     \
            for (; i + 8 <= S; i += 8) {                                                          \
                mg_v4d d0 = mg_load4_##T(xa + i) - ka, d1 = mg_load4_##T(xa + i + 4) - ka;        \
                mg_v4d e0 = mg_load4_##T(xb + i) - kb, e1 = mg_load4_##T(xb + i + 4) - kb;        \
                a0 += d0; a1 += d1; q0 += d0 * d0; q1 += d1 * d1;                                 \
                b0 += e0; b1 += e1; r0 += e0 * e0; r1 += e1 * e1;                                 \
            }                                                                                     \
            double a = 0, q = 0, b = 0, r = 0;                                                    \
            for (; i < S; i++) {                                                                  \
                double d = (double)xa[i] - Ka, e = (double)xb[i] - Kb;                            \
                a += d; q += d * d; b += e; r += e * e;                                           \
            }                                                                                     \
            s1[c] += mg_hsum(a0, a1) + a;                                                         \
            s2[c] += mg_hsum(q0, q1) + q;                                                         \
            s1[c + 1] += mg_hsum(b0, b1) + b;                                                     \
            s2[c + 1] += mg_hsum(r0, r1) + r;                                                     \
        }                                                                                         \
        for (; c < nc; c++) mg_shifted_sums_##T(x + c * S, S, K[c], s1 + c, s2 + c);              \
    }                                                                                             \
    /* sdy[c] += sum(dy), sdyx[c] += sum(dy*(x - mean[c])): two channels at a time, as mg_dy_sums (same bits) */ \
    MG_CLONES static void mg_channel_dy_sums_##T(const T* restrict dy, const T* restrict x, Py_ssize_t nc,   \
                                                 Py_ssize_t S, const double* restrict mean,                 \
                                                 double* restrict sdy, double* restrict sdyx) {             \
        Py_ssize_t c = 0;                                                                         \
        for (; c + 2 <= nc && S < MG_SHORT_RUN; c += 2) {                                         \
            const T* ga = dy + c * S;                                                             \
            const T* gb = ga + S;                                                                 \
            const T* xa = x + c * S;                                                              \
            const T* xb = xa + S;                                                                 \
            const double Ma = mean[c], Mb = mean[c + 1];                                          \
            const mg_v4d ka = {Ma, Ma, Ma, Ma}, kb = {Mb, Mb, Mb, Mb};                            \
            mg_v4d a0 = {0, 0, 0, 0}, a1 = a0, q0 = a0, q1 = a0, b0 = a0, b1 = a0, r0 = a0, r1 = a0; \
            Py_ssize_t i = 0;                                                                     \
            for (; i + 8 <= S; i += 8) {                                                          \
                mg_v4d g0 = mg_load4_##T(ga + i), g1 = mg_load4_##T(ga + i + 4);                  \
                mg_v4d h0 = mg_load4_##T(gb + i), h1 = mg_load4_##T(gb + i + 4);                  \
                a0 += g0; a1 += g1;                                                               \
                q0 += g0 * (mg_load4_##T(xa + i) - ka); q1 += g1 * (mg_load4_##T(xa + i + 4) - ka); \
                b0 += h0; b1 += h1;                                                               \
                r0 += h0 * (mg_load4_##T(xb + i) - kb); r1 += h1 * (mg_load4_##T(xb + i + 4) - kb); \
            }                                                                                     \
            double a = 0, q = 0, b = 0, r = 0;                                                    \
            for (; i < S; i++) {                                                                  \
                a += ga[i]; q += (double)ga[i] * ((double)xa[i] - Ma);                            \
                b += gb[i]; r += (double)gb[i] * ((double)xb[i] - Mb);                            \
            }                                                                                     \
            sdy[c] += mg_hsum(a0, a1) + a;                                                        \
            sdyx[c] += mg_hsum(q0, q1) + q;                                                       \
            sdy[c + 1] += mg_hsum(b0, b1) + b;                                                    \
            sdyx[c + 1] += mg_hsum(r0, r1) + r;                                                   \
        }                                                                                         \
        for (; c < nc; c++) mg_dy_sums_##T(dy + c * S, x + c * S, S, mean[c], sdy + c, sdyx + c);  \
    }
    /* the elementwise passes over one row's run of nc channels, per-channel coefficients (X precision). Each
       channel in full vectors, the last one overlapping the one before where L does not divide S (it rewrites
       the same values: no scalar remainder per channel; x's last vector is loaded first, so y may be x). */
    #define MG_CHANNEL_AFFINE(T)                                                                  \
    MG_CLONES static void mg_channel_affine_##T(T* y, const T* x, Py_ssize_t nc, Py_ssize_t S,    \
                                                const T* K, const T* scale, const T* shift) {     \
        enum { L = sizeof(mg_vx_##T) / sizeof(T) };                                               \
        if (S < L || S >= MG_SHORT_RUN) {                                                         \
            for (Py_ssize_t c = 0; c < nc; c++) mg_affine_##T(y + c * S, x + c * S, S, K[c], scale[c], shift[c]); \
            return;                                                                               \
        }                                                                                         \
        for (Py_ssize_t c = 0; c < nc; c++) {                                                     \
            const T* xc = x + c * S;                                                              \
            T* yc = y + c * S;                                                                    \
            const T Kc = K[c], sc = scale[c], bc = shift[c];                                      \
            const mg_vx_##T xt = mg_loadx_##T(xc + S - L);                                        \
            Py_ssize_t i = 0;                                                                     \
            for (; i + L <= S; i += L) {                                                          \
                mg_vx_##T v = (mg_loadx_##T(xc + i) - Kc) * sc + bc;                              \
                memcpy(yc + i, &v, sizeof v);                                                     \
            }                                                                                     \
            if (i < S) {                                                                          \
                mg_vx_##T v = (xt - Kc) * sc + bc;                                                \
                memcpy(yc + S - L, &v, sizeof v);                                                 \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
    MG_CLONES static void mg_channel_affine2_##T(T* dx, const T* dy, const T* x, Py_ssize_t nc, Py_ssize_t S, \
                                                 const T* a, const T* mdy, const T* K, const T* b,\
                                                 const T* k) {                                    \
        enum { L = sizeof(mg_vx_##T) / sizeof(T) };                                               \
        if (S < L || S >= MG_SHORT_RUN) {                                                         \
            for (Py_ssize_t c = 0; c < nc; c++)                                                   \
                mg_affine2_##T(dx + c * S, dy + c * S, x + c * S, S, a[c], mdy[c], K[c], b[c], k[c]); \
            return;                                                                               \
        }                                                                                         \
        for (Py_ssize_t c = 0; c < nc; c++) {                                                     \
            const T* gc = dy + c * S;                                                             \
            const T* xc = x + c * S;                                                              \
            T* dc = dx + c * S;                                                                   \
            const T ac = a[c], mc = mdy[c], Kc = K[c], bc = b[c], kc = k[c];                      \
            const mg_vx_##T gt = mg_loadx_##T(gc + S - L), xt = mg_loadx_##T(xc + S - L);         \
            Py_ssize_t i = 0;                                                                     \
            for (; i + L <= S; i += L) {                                                          \
                mg_vx_##T v = ac * (mg_loadx_##T(gc + i) - mc) + bc * (mg_loadx_##T(xc + i) - Kc) + kc; \
                memcpy(dc + i, &v, sizeof v);                                                     \
            }                                                                                     \
            if (i < S) {                                                                          \
                mg_vx_##T v = ac * (gt - mc) + bc * (xt - Kc) + kc;                               \
                memcpy(dc + S - L, &v, sizeof v);                                                 \
            }                                                                                     \
        }                                                                                         \
    }
    MG_COLUMNS(double)
    MG_COL_AFFINE(float)
    MG_COL_AFFINE(double)
    MG_SHIFTED_SUMS(double)
    MG_DY_SUMS(double)
    MG_LN_ROW_SUMS(float)
    MG_LN_ROW_SUMS(double)
    MG_ELEMENTWISE(float)
    MG_ELEMENTWISE(double)
    MG_CHANNEL_SUMS(double)
    MG_CHANNEL_AFFINE(float)
    MG_CHANNEL_AFFINE(double)
    /* float32 input: the batch-norm (and group-norm) reductions in float32 lanes over short fixed groups.
       NOTE: converting every float to double before adding made these passes bound by arithmetic (cvtps2pd, sub,
       add, mul, add in 4-wide doubles: about 24 GB/s), below the memory bandwidth. Here x - K (exact where the
       set's values are near K: |mean| >> std), its square and the sums run in 8-wide float32 vectors. A run of m
       values is cut into groups of MG_F32_GROUP vectors (the last one shorter; where 8 does not divide m its last
       vector overlaps the one before, the old lanes masked off); a group's vectors go to four accumulators in turn
       (each lane adds at most MG_F32_GROUP/4 values in float32, a relative rounding of a few 2^-24, the float32
       data's own precision), the four are added pairwise, then the two halves, then widened and added to the run's
       double partials, in a fixed order (the float64 path is unchanged). K must be a float32 value (it is: a value
       of x); for the backward sums, Kx = float(mean), and sum(dy*(x - mean)) = sum(dy*(x - Kx)) - (mean - Kx)*sum(dy)
       in double.
       NOTE: the pass is bound by the two float adders (x - K and the two sums: three adds per vector; at 2.6 GHz
       about 120 us for 6.4 MB, where reading alone takes 65 us), so what counts is the adds per vector and that they
       do not wait on each other: the four accumulators are four independent chains. The old scheme (groups of 4
       vectors in one chain, each group widened on its own, a scalar tail in double; one chain per channel for runs
       under 128 values) made the statistics pass 1.4x slower at (64, 128, 196) (runs of 24.5 vectors) and 1.45x
       at (32, 64, 784), timed alone in C. Two accumulators instead of four (fewer adds to combine them) measured
       5-15% faster alone but not in the kernel (interleaved, 1 thread), so four stay. */
    #define MG_F32_GROUP 32
    #define MG_AI static inline __attribute__((always_inline))
    typedef float mg_v4f __attribute__((vector_size(16)));
    typedef int mg_v8i __attribute__((vector_size(32)));
    typedef long long mg_v4l __attribute__((vector_size(32)));
    /* the two halves of v added in float32, widened to double */
    MG_AI mg_v4d mg_fold_widen(mg_vx_float v) {
        mg_v4f lo = {v[0], v[1], v[2], v[3]}, hi = {v[4], v[5], v[6], v[7]};
        lo += hi;
        mg_v4d r = {lo[0], lo[1], lo[2], lo[3]};
        return r;
    }
    /* *s1 += (a[0] + a[1]) + (a[2] + a[3]), *s2 likewise with q */
    MG_AI void mg_hsum2(mg_v4d a, mg_v4d q, double* s1, double* s2) {
        mg_v4d h = __builtin_shuffle(a, q, (mg_v4l){0, 4, 2, 6}) + __builtin_shuffle(a, q, (mg_v4l){1, 5, 3, 7});
        *s1 += h[0] + h[2];
        *s2 += h[1] + h[3];
    }
    /* lanes 8 - m%8 .. 7 set: the new values of the overlapping last vector x[m-8:m] */
    MG_AI mg_v8i mg_tail_mask(Py_ssize_t m) {
        static const int tbl[16] = {0, 0, 0, 0, 0, 0, 0, 0, -1, -1, -1, -1, -1, -1, -1, -1};
        mg_v8i v; memcpy(&v, tbl + (m % 8), sizeof v); return v;
    }
    /* the float32 sums overflow where |x - K| > 1.8e19 (a square) or the data is not finite: such a set is summed
       again converting every value to double, as the float64 path (rare; results: as before this scheme) */
    #define MG_FINITE2(a, q) (__builtin_isfinite(a) && __builtin_isfinite(q))
    __attribute__((noinline, cold)) static void mg_f32_shifted_sums_slow(const float* x, Py_ssize_t m, double K,
                                                                         double* s1, double* s2) {
        double a = 0, q = 0;
        for (Py_ssize_t i = 0; i < m; i++) { double d = (double)x[i] - K; a += d; q += d * d; }
        *s1 = a; *s2 = q;
    }
    __attribute__((noinline, cold)) static void mg_f32_dy_sums_slow(const float* dy, const float* x, Py_ssize_t m,
                                                                    double mean, double* sdy, double* sdyx) {
        double a = 0, q = 0;
        for (Py_ssize_t i = 0; i < m; i++) { a += dy[i]; q += (double)dy[i] * ((double)x[i] - mean); }
        *sdy = a; *sdyx = q;
    }
    /* m >= 8 values of x: lane partials a += sum(x - k), q += sum((x - k)^2), group by group (see above) */
    MG_AI void mg_f32_run_sums(const float* x, Py_ssize_t m, float k, mg_v4d* a, mg_v4d* q) {
        const mg_v8i mask = mg_tail_mask(m);
        Py_ssize_t i = 0;
        while (i < m) {
            const Py_ssize_t end = m - i > 8 * MG_F32_GROUP ? i + 8 * MG_F32_GROUP : m;
            mg_vx_float a0 = {0}, a1 = a0, a2 = a0, a3 = a0, q0 = a0, q1 = a0, q2 = a0, q3 = a0;
            for (; i + 32 <= end; i += 32) {
                mg_vx_float d0 = mg_loadx_float(x + i) - k, d1 = mg_loadx_float(x + i + 8) - k;
                mg_vx_float d2 = mg_loadx_float(x + i + 16) - k, d3 = mg_loadx_float(x + i + 24) - k;
                a0 += d0; a1 += d1; a2 += d2; a3 += d3;
                q0 += d0 * d0; q1 += d1 * d1; q2 += d2 * d2; q3 += d3 * d3;
            }
            for (; i + 8 <= end; i += 8) { mg_vx_float d = mg_loadx_float(x + i) - k; a0 += d; q0 += d * d; }
            if (i < end) {  /* end == m */
                mg_vx_float d = (mg_vx_float)((mg_v8i)(mg_loadx_float(x + m - 8) - k) & mask);
                a1 += d; q1 += d * d;
                i = m;
            }
            *a += mg_fold_widen((a0 + a1) + (a2 + a3));
            *q += mg_fold_widen((q0 + q1) + (q2 + q3));
        }
    }
    /* m >= 8: lane partials a += sum(dy), q += sum(dy*(x - k)) */
    MG_AI void mg_f32_run_dy_sums(const float* dy, const float* x, Py_ssize_t m, float k, mg_v4d* a, mg_v4d* q) {
        const mg_v8i mask = mg_tail_mask(m);
        Py_ssize_t i = 0;
        while (i < m) {
            const Py_ssize_t end = m - i > 8 * MG_F32_GROUP ? i + 8 * MG_F32_GROUP : m;
            mg_vx_float a0 = {0}, a1 = a0, a2 = a0, a3 = a0, q0 = a0, q1 = a0, q2 = a0, q3 = a0;
            for (; i + 32 <= end; i += 32) {
                mg_vx_float g0 = mg_loadx_float(dy + i), g1 = mg_loadx_float(dy + i + 8);
                mg_vx_float g2 = mg_loadx_float(dy + i + 16), g3 = mg_loadx_float(dy + i + 24);
                a0 += g0; a1 += g1; a2 += g2; a3 += g3;
                q0 += g0 * (mg_loadx_float(x + i) - k); q1 += g1 * (mg_loadx_float(x + i + 8) - k);
                q2 += g2 * (mg_loadx_float(x + i + 16) - k); q3 += g3 * (mg_loadx_float(x + i + 24) - k);
            }
            for (; i + 8 <= end; i += 8) {
                mg_vx_float g = mg_loadx_float(dy + i);
                a0 += g; q0 += g * (mg_loadx_float(x + i) - k);
            }
            if (i < end) {  /* end == m */
                mg_vx_float g = mg_loadx_float(dy + m - 8);
                a1 += (mg_vx_float)((mg_v8i)g & mask);
                q1 += (mg_vx_float)((mg_v8i)(g * (mg_loadx_float(x + m - 8) - k)) & mask);
                i = m;
            }
            *a += mg_fold_widen((a0 + a1) + (a2 + a3));
            *q += mg_fold_widen((q0 + q1) + (q2 + q3));
        }
    }
    /* s1 += sum(x - K), s2 += sum((x - K)^2) over x[0:m] (K a float32 value); overflow checked here when check */
    MG_AI void mg_f32_shifted_sums(const float* x, Py_ssize_t m, double K, double* s1, double* s2, int check) {
        double ta = 0, tq = 0;
        if (m >= 8) {
            mg_v4d a = {0, 0, 0, 0}, q = a;
            mg_f32_run_sums(x, m, (float)K, &a, &q);
            mg_hsum2(a, q, &ta, &tq);
        } else {
            for (Py_ssize_t i = 0; i < m; i++) { double d = (double)x[i] - K; ta += d; tq += d * d; }
        }
        if (check && __builtin_expect(!MG_FINITE2(ta, tq), 0)) mg_f32_shifted_sums_slow(x, m, K, &ta, &tq);
        *s1 += ta;
        *s2 += tq;
    }
    /* sdy += sum(dy), sdyx += sum(dy*(x - mean)) over [0, m); overflow checked here when check */
    MG_AI void mg_f32_dy_sums(const float* dy, const float* x, Py_ssize_t m, double mean, double* sdy,
                              double* sdyx, int check) {
        const float k = (float)mean;
        double ta = 0, tq = 0;
        if (m >= 8) {
            mg_v4d a = {0, 0, 0, 0}, q = a;
            mg_f32_run_dy_sums(dy, x, m, k, &a, &q);
            mg_hsum2(a, q, &ta, &tq);
        } else {
            for (Py_ssize_t i = 0; i < m; i++) { ta += dy[i]; tq += (double)dy[i] * ((double)x[i] - (double)k); }
        }
        tq -= (mean - (double)k) * ta;
        if (check && __builtin_expect(!MG_FINITE2(ta, tq), 0)) mg_f32_dy_sums_slow(dy, x, m, mean, &ta, &tq);
        *sdy += ta;
        *sdyx += tq;
    }
    /* NOTE: the rows of group norm (and layer/instance norm) are reduced here and rescaled by mg_row_affine, the
       two helpers with an AVX-512 clone: timed in one process on a quiet moment, the group-norm forward on
       (32, 64, 784) took 198 us against 246 us with AVX2 only (Numba's LLVM code, in AVX-512: 202 us), the
       instance-norm forward 236 against 273 us (Numba: 241-250). Every helper cloned so made the BatchNorm2d
       backward 14-17% slower, so the others keep AVX2 (mg_clones.h). */
    MG_CLONES_V4 static void mg_shifted_sums_float(const float* x, Py_ssize_t m, double K, double* s1, double* s2) {
        mg_f32_shifted_sums(x, m, K, s1, s2, 1);
    }
    MG_CLONES static void mg_dy_sums_float(const float* dy, const float* x, Py_ssize_t m, double mean,
                                           double* sdy, double* sdyx) {
        mg_f32_dy_sums(dy, x, m, mean, sdy, sdyx, 1);
    }
    /* one row's run of nc channels of S values each, per-channel sums (overflow: checked on the totals by
       _bn_stats_block, _bn_dy_sums_block). A short run (8 <= S < MG_SHORT_RUN) is one group in one accumulator:
       its vectors (the last one overlapping, its old lanes masked off), then the two halves, then widened; longer
       runs as mg_shifted_sums_float. NOTE: the four-accumulator groups of mg_f32_run_sums on every run were
       2-10% slower at S = 49, (256, 512, 49) (interleaved, 1 thread), where a run is six vectors. */
    MG_CLONES static void mg_channel_shifted_sums_float(const float* restrict x, Py_ssize_t nc, Py_ssize_t S,
                                                        const double* restrict K, double* restrict s1,
                                                        double* restrict s2) {
        if (S < 8 || S >= MG_SHORT_RUN) {
            for (Py_ssize_t c = 0; c < nc; c++) mg_f32_shifted_sums(x + c * S, S, K[c], s1 + c, s2 + c, 0);
            return;
        }
        const mg_v8i mask = mg_tail_mask(S);
        for (Py_ssize_t c = 0; c < nc; c++) {
            const float* xc = x + c * S;
            const float k = (float)K[c];
            mg_vx_float va = {0}, vq = {0};
            Py_ssize_t i = 0;
            for (; i + 8 <= S; i += 8) { mg_vx_float d = mg_loadx_float(xc + i) - k; va += d; vq += d * d; }
            if (i < S) {
                mg_vx_float d = (mg_vx_float)((mg_v8i)(mg_loadx_float(xc + S - 8) - k) & mask);
                va += d; vq += d * d;
            }
            mg_hsum2(mg_fold_widen(va), mg_fold_widen(vq), s1 + c, s2 + c);
        }
    }
    MG_CLONES static void mg_channel_dy_sums_float(const float* restrict dy, const float* restrict x,
                                                   Py_ssize_t nc, Py_ssize_t S, const double* restrict mean,
                                                   double* restrict sdy, double* restrict sdyx) {
        if (S < 8 || S >= MG_SHORT_RUN) {
            for (Py_ssize_t c = 0; c < nc; c++)
                mg_f32_dy_sums(dy + c * S, x + c * S, S, mean[c], sdy + c, sdyx + c, 0);
            return;
        }
        const mg_v8i mask = mg_tail_mask(S);  /* a short run: as mg_channel_shifted_sums_float */
        for (Py_ssize_t c = 0; c < nc; c++) {
            const float* gc = dy + c * S;
            const float* xc = x + c * S;
            const float k = (float)mean[c];
            mg_vx_float va = {0}, vq = {0};
            Py_ssize_t i = 0;
            for (; i + 8 <= S; i += 8) {
                mg_vx_float g = mg_loadx_float(gc + i);
                va += g; vq += g * (mg_loadx_float(xc + i) - k);
            }
            if (i < S) {
                mg_vx_float g = mg_loadx_float(gc + S - 8);
                va += (mg_vx_float)((mg_v8i)g & mask);
                vq += (mg_vx_float)((mg_v8i)(g * (mg_loadx_float(xc + S - 8) - k)) & mask);
            }
            double ta = 0, tq = 0;
            mg_hsum2(mg_fold_widen(va), mg_fold_widen(vq), &ta, &tq);
            sdy[c] += ta;
            sdyx[c] += tq - (mean[c] - (double)k) * ta;
        }
    }
    /* BatchNorm2d, float32, runs of MG_SHORT_RUN <= S < MG_LANE_RUN values: one row's run of nc channels, added
       into per-channel LANE partials p1, p2 (4 doubles per channel, mg_f32_run_sums's widened lanes, accumulated
       over the rows in order); mg_lanes_finish adds each channel's lanes into s1, s2 once, after the last row.
       NOTE: closing every run into s1[c] (the lanes added as scalars, then s1[c] read and written), as the short
       runs above do, cost a fifth of the statistics pass at (64, 128, 196), runs of 196 values: timed alone in C,
       138 against 110 us (5% at runs of 784). On short runs the lanes were slower (49 values: 1.1 against 1.6 ms
       at (256, 512, 49)), so those keep their scalar closing, as do runs from MG_LANE_RUN on, where one closing
       per run is too little to measure (the forward measured 0.97-1.06x at runs of 784 and 12544, interleaved A/B
       with both allocation orders; 0.89-0.97x at 196). The totals are the same sums of float32-rounded
       partials in another order (in double: bit-identical in the cases tested). Overflow: checked on the totals
       by _bn_stats_block, _bn_dy_sums_block. */
    MG_CLONES static void mg_channel_lane_sums_float(const float* restrict x, Py_ssize_t nc, Py_ssize_t S,
                                                     const double* restrict K, double* restrict p1,
                                                     double* restrict p2) {
        for (Py_ssize_t c = 0; c < nc; c++) {
            mg_v4d a = mg_load4_double(p1 + 4 * c), q = mg_load4_double(p2 + 4 * c);
            mg_f32_run_sums(x + c * S, S, (float)K[c], &a, &q);
            mg_store4(p1 + 4 * c, a);
            mg_store4(p2 + 4 * c, q);
        }
    }
    /* as mg_channel_lane_sums_float: lanes of sum(dy) and sum(dy*(x - Kx)), Kx = float(mean[c]) (the caller
       takes sum(dy*(x - mean)) = sum(dy*(x - Kx)) - (mean - Kx)*sum(dy) from the totals) */
    MG_CLONES static void mg_channel_lane_dy_sums_float(const float* restrict dy, const float* restrict x,
                                                        Py_ssize_t nc, Py_ssize_t S, const double* restrict mean,
                                                        double* restrict p1, double* restrict p2) {
        for (Py_ssize_t c = 0; c < nc; c++) {
            mg_v4d a = mg_load4_double(p1 + 4 * c), q = mg_load4_double(p2 + 4 * c);
            mg_f32_run_dy_sums(dy + c * S, x + c * S, S, (float)mean[c], &a, &q);
            mg_store4(p1 + 4 * c, a);
            mg_store4(p2 + 4 * c, q);
        }
    }
    /* s1[c] += (l0 + l1) + (l2 + l3) of p1's lanes of channel c, s2 likewise from p2 */
    static void mg_lanes_finish(const double* p1, const double* p2, Py_ssize_t nc, double* s1, double* s2) {
        for (Py_ssize_t c = 0; c < nc; c++)
            mg_hsum2(mg_load4_double(p1 + 4 * c), mg_load4_double(p2 + 4 * c), s1 + c, s2 + c);
    }
    /* BatchNorm1d (S == 1): nr rows (stride ldx) of m channels, vectorized across channels. The rows go in
       groups of MG_COL_GROUP from the first: each channel's group is added in a float32 lane (rows in order),
       then widened into s1, s2 (per channel, groups in order). The caller passes ROWS_1D = 2 groups per call, so
       that s1, s2 are loaded and stored once per two groups: the statistics pass at (4096, 1024) took 0.65-0.76
       against 1.03-1.09 ms with one group per call, timed alone in C (the bits depend on the groups only); the
       whole forward 0.98-0.99x at (4096, 1024) and 0.88-0.96x at (4099, 1001), interleaved A/B, same bits.
       Four groups per call were slower (0.85-0.98 ms): 16 rows 4 KB apart share one set of the 8-way L1. */
    #define MG_COL_GROUP 4
    MG_CLONES static void mg_col_shifted_sums_float(const float* restrict x, Py_ssize_t ldx, Py_ssize_t nr,
                                                    const double* restrict K, Py_ssize_t m,
                                                    double* restrict s1, double* restrict s2) {
        Py_ssize_t c = 0;
        for (; c + 8 <= m; c += 8) {
            const mg_vx_float k = {(float)K[c], (float)K[c + 1], (float)K[c + 2], (float)K[c + 3],
                                   (float)K[c + 4], (float)K[c + 5], (float)K[c + 6], (float)K[c + 7]};
            mg_v4d a0 = mg_load4_double(s1 + c), a1 = mg_load4_double(s1 + c + 4);
            mg_v4d q0 = mg_load4_double(s2 + c), q1 = mg_load4_double(s2 + c + 4);
            Py_ssize_t j = 0;
            for (; j + MG_COL_GROUP <= nr; j += MG_COL_GROUP) {
                const float* r = x + j * ldx + c;
                mg_vx_float d0 = mg_loadx_float(r) - k, d1 = mg_loadx_float(r + ldx) - k;
                mg_vx_float d2 = mg_loadx_float(r + 2 * ldx) - k, d3 = mg_loadx_float(r + 3 * ldx) - k;
                mg_widen_add_float(&a0, &a1, ((d0 + d1) + d2) + d3);
                mg_widen_add_float(&q0, &q1, ((d0 * d0 + d1 * d1) + d2 * d2) + d3 * d3);
            }
            if (j < nr) {  /* the last rows of the input: a shorter group */
                mg_vx_float va = {0}, vq = {0};
                for (; j < nr; j++) { mg_vx_float d = mg_loadx_float(x + j * ldx + c) - k; va += d; vq += d * d; }
                mg_widen_add_float(&a0, &a1, va); mg_widen_add_float(&q0, &q1, vq);
            }
            mg_store4(s1 + c, a0); mg_store4(s1 + c + 4, a1);
            mg_store4(s2 + c, q0); mg_store4(s2 + c + 4, q1);
        }
        for (; c < m; c++) {  /* as one lane of the vectors (same bits: a block's edge does not matter) */
            const float k = (float)K[c];
            for (Py_ssize_t j0 = 0; j0 < nr; j0 += MG_COL_GROUP) {
                float va = 0, vq = 0;
                for (Py_ssize_t j = j0; j < nr && j < j0 + MG_COL_GROUP; j++) {
                    float d = x[j * ldx + c] - k; va += d; vq += d * d;
                }
                s1[c] += va; s2[c] += vq;
            }
        }
    }
    /* sdy += sum(dy), sdyx += sum(dy*(x - Kx)) with Kx = float(mean): the caller subtracts (mean - Kx)*sdy.
       One group of at most MG_COL_GROUP rows per call (ROWS_1D_DY): two groups per call, reading 16 rows 4 KB
       apart (dy and x), made the BatchNorm1d backward at (4096, 1024) 3-21% slower (interleaved A/B). */
    MG_CLONES static void mg_col_dy_sums_float(const float* restrict dy, const float* restrict x, Py_ssize_t ldx,
                                               Py_ssize_t nr, const double* restrict mean, Py_ssize_t m,
                                               double* restrict sdy, double* restrict sdyx) {
        Py_ssize_t c = 0;
        for (; c + 8 <= m; c += 8) {
            const mg_vx_float k = {(float)mean[c], (float)mean[c + 1], (float)mean[c + 2], (float)mean[c + 3],
                                   (float)mean[c + 4], (float)mean[c + 5], (float)mean[c + 6], (float)mean[c + 7]};
            mg_vx_float va = {0}, vq = {0};
            for (Py_ssize_t j = 0; j < nr; j++) {
                mg_vx_float g = mg_loadx_float(dy + j * ldx + c);
                va += g; vq += g * (mg_loadx_float(x + j * ldx + c) - k);
            }
            mg_v4d a0 = mg_load4_double(sdy + c), a1 = mg_load4_double(sdy + c + 4);
            mg_v4d q0 = mg_load4_double(sdyx + c), q1 = mg_load4_double(sdyx + c + 4);
            mg_widen_add_float(&a0, &a1, va); mg_widen_add_float(&q0, &q1, vq);
            mg_store4(sdy + c, a0); mg_store4(sdy + c + 4, a1);
            mg_store4(sdyx + c, q0); mg_store4(sdyx + c + 4, q1);
        }
        for (; c < m; c++) {  /* as one lane of the vectors */
            const float k = (float)mean[c];
            float va = 0, vq = 0;
            for (Py_ssize_t j = 0; j < nr; j++) { float g = dy[j * ldx + c]; va += g; vq += g * (x[j * ldx + c] - k); }
            sdy[c] += va; sdyx[c] += vq;
        }
    }
    """
    enum: MG_SHORT_RUN
    enum: MG_LANE_RUN
    void mg_channel_shifted_sums_float(const float* x, Py_ssize_t nc, Py_ssize_t S, const double* K, double* s1,
                                       double* s2) noexcept nogil
    void mg_channel_dy_sums_float(const float* dy, const float* x, Py_ssize_t nc, Py_ssize_t S,
                                  const double* mean, double* sdy, double* sdyx) noexcept nogil
    void mg_channel_lane_sums_float(const float* x, Py_ssize_t nc, Py_ssize_t S, const double* K, double* p1,
                                    double* p2) noexcept nogil
    void mg_channel_lane_dy_sums_float(const float* dy, const float* x, Py_ssize_t nc, Py_ssize_t S,
                                       const double* mean, double* p1, double* p2) noexcept nogil
    void mg_lanes_finish(const double* p1, const double* p2, Py_ssize_t nc, double* s1, double* s2) noexcept nogil
    void mg_channel_shifted_sums_double(const double* x, Py_ssize_t nc, Py_ssize_t S, const double* K,
                                        double* s1, double* s2) noexcept nogil
    void mg_channel_dy_sums_double(const double* dy, const double* x, Py_ssize_t nc, Py_ssize_t S,
                                   const double* mean, double* sdy, double* sdyx) noexcept nogil
    void mg_channel_affine_float(float* y, const float* x, Py_ssize_t nc, Py_ssize_t S, const float* K,
                                 const float* scale, const float* shift) noexcept nogil
    void mg_channel_affine_double(double* y, const double* x, Py_ssize_t nc, Py_ssize_t S, const double* K,
                                  const double* scale, const double* shift) noexcept nogil
    void mg_channel_affine2_float(float* dx, const float* dy, const float* x, Py_ssize_t nc, Py_ssize_t S,
                                  const float* a, const float* mdy, const float* K, const float* b,
                                  const float* k) noexcept nogil
    void mg_channel_affine2_double(double* dx, const double* dy, const double* x, Py_ssize_t nc, Py_ssize_t S,
                                   const double* a, const double* mdy, const double* K, const double* b,
                                   const double* k) noexcept nogil
    void mg_col_shifted_sums_float(const float* x, Py_ssize_t ldx, Py_ssize_t nr, const double* K, Py_ssize_t m,
                                   double* s1, double* s2) noexcept nogil
    void mg_col_shifted_sums_double(const double* x, Py_ssize_t ldx, Py_ssize_t nr, const double* K,
                                    Py_ssize_t m, double* s1, double* s2) noexcept nogil
    void mg_col_dy_sums_float(const float* dy, const float* x, Py_ssize_t ldx, Py_ssize_t nr, const double* mean,
                              Py_ssize_t m, double* sdy, double* sdyx) noexcept nogil
    void mg_col_dy_sums_double(const double* dy, const double* x, Py_ssize_t ldx, Py_ssize_t nr,
                               const double* mean, Py_ssize_t m, double* sdy, double* sdyx) noexcept nogil
    void mg_col_affine_float(float* y, const float* x, Py_ssize_t m, const float* K, const float* scale,
                             const float* shift) noexcept nogil
    void mg_col_affine_double(double* y, const double* x, Py_ssize_t m, const double* K, const double* scale,
                              const double* shift) noexcept nogil
    void mg_col_affine2_float(float* dx, const float* dy, const float* x, Py_ssize_t m, const float* a,
                              const float* mdy, const float* K, const float* b, const float* k) noexcept nogil
    void mg_col_affine2_double(double* dx, const double* dy, const double* x, Py_ssize_t m, const double* a,
                               const double* mdy, const double* K, const double* b,
                               const double* k) noexcept nogil
    void mg_shifted_sums_float(const float* x, Py_ssize_t m, double K, double* s1, double* s2) noexcept nogil
    void mg_shifted_sums_double(const double* x, Py_ssize_t m, double K, double* s1, double* s2) noexcept nogil
    void mg_dy_sums_float(const float* dy, const float* x, Py_ssize_t m, double mean,
                          double* sdy, double* sdyx) noexcept nogil
    void mg_dy_sums_double(const double* dy, const double* x, Py_ssize_t m, double mean,
                           double* sdy, double* sdyx) noexcept nogil
    void mg_ln_row_sums_float(const float* dy, const float* x, const float* w, Py_ssize_t m, float K,
                              double* sw, double* swx) noexcept nogil
    void mg_ln_row_sums_double(const double* dy, const double* x, const double* w, Py_ssize_t m, double K,
                               double* sw, double* swx) noexcept nogil
    void mg_ln_dx_float(float* dx, const float* dy, const float* x, const float* w, Py_ssize_t m, float r, float mg,
                        float K, float b, float k, float dmr, float* fw, float* fb) noexcept nogil
    void mg_ln_dx_double(double* dx, const double* dy, const double* x, const double* w, Py_ssize_t m, double r,
                         double mg, double K, double b, double k, double dmr, double* fw, double* fb) noexcept nogil
    void mg_ln_flush_float(double* pw, double* pb, float* fw, float* fb, Py_ssize_t m) noexcept nogil
    void mg_ln_flush_double(double* pw, double* pb, double* fw, double* fb, Py_ssize_t m) noexcept nogil
    void mg_row_affine_float(float* y, const float* x, Py_ssize_t m, float K, float scale,
                             float shift) noexcept nogil
    void mg_row_affine_double(double* y, const double* x, Py_ssize_t m, double K, double scale,
                              double shift) noexcept nogil
    void mg_affine2_float(float* dx, const float* dy, const float* x, Py_ssize_t m,
                          float a, float mdy, float K, float b, float k) noexcept nogil
    void mg_affine2_double(double* dx, const double* dy, const double* x, Py_ssize_t m,
                           double a, double mdy, double K, double b, double k) noexcept nogil
    void mg_gn_dx_float(float* dx, const float* dy, const float* x, Py_ssize_t m,
                        float r, float w, float mg, float K, float b, float k) noexcept nogil
    void mg_gn_dx_double(double* dx, const double* dy, const double* x, Py_ssize_t m,
                         double r, double w, double mg, double K, double b, double k) noexcept nogil
    void mg_ln_affine_float(float* y, const float* x, const float* w, const float* bias, Py_ssize_t m,
                            float K, float r, float dmr) noexcept nogil
    void mg_ln_affine_double(double* y, const double* x, const double* w, const double* bias, Py_ssize_t m,
                             double K, double r, double dmr) noexcept nogil


cdef inline void _shifted_sums(const floating* x, Py_ssize_t m, double K,
                               double* s1, double* s2) noexcept nogil:
    """s1 += sum(x - K), s2 += sum((x - K)^2), in double."""
    if floating is float:
        mg_shifted_sums_float(x, m, K, s1, s2)
    else:
        mg_shifted_sums_double(x, m, K, s1, s2)


cdef inline void _dy_sums(const floating* dy, const floating* x, Py_ssize_t m, double mean,
                          double* sdy, double* sdyx) noexcept nogil:
    """sdy += sum(dy), sdyx += sum(dy*(x - mean)) (= sum(dy*xhat)/rstd), in double."""
    if floating is float:
        mg_dy_sums_float(dy, x, m, mean, sdy, sdyx)
    else:
        mg_dy_sums_double(dy, x, m, mean, sdy, sdyx)


cdef inline void _affine(floating* y, const floating* x, Py_ssize_t m,
                         floating K, floating scale, floating shift) noexcept nogil:
    """y = (x - K)*scale + shift, in X precision (vectorizes)."""
    if floating is float:
        mg_row_affine_float(y, x, m, K, scale, shift)
    else:
        mg_row_affine_double(y, x, m, K, scale, shift)


cdef inline void _affine2(floating* dx, const floating* dy, const floating* x, Py_ssize_t m,
                          floating a, floating mdy, floating K, floating b, floating k) noexcept nogil:
    """dx = a*(dy - mdy) + b*(x - K) + k, in X precision (vectorizes): the fused backward pass.
    NOTE: dy - mdy before scaling, so that a large rstd does not amplify the rounding of a cancellation."""
    if floating is float:
        mg_affine2_float(dx, dy, x, m, a, mdy, K, b, k)
    else:
        mg_affine2_double(dx, dy, x, m, a, mdy, K, b, k)


cdef inline double _rstd(double s1, double s2, double M, double eps, double* mean, double K) noexcept nogil:
    """From shifted sums: mean = K + s1/M, var = s2/M - (s1/M)^2 (clamped at 0; NaN stays NaN); returns rstd."""
    cdef double d = s1 / M, var = s2 / M - d * d
    mean[0] = K + d
    if var < 0:
        var = 0
    return 1.0 / sqrt(var + eps)


# ---------------------------------------------------------------------------------------------------------
# batch norm, channels layout x: (N, C, S)
# NOTE: the work is split into blocks of channels [c0, c1), in parallel over disjoint writes; each block
#   1. computes its statistics (or the two backward reductions), walking n = 0..N-1 and reading x[n, c0:c1, :],
#      one contiguous stretch per row, into its own per-channel sums. (Walking one channel at a time instead
#      reads N runs of S values at stride C*S: measured 2.5x slower at (32, 64, 784).) Each channel's sum runs
#      over n in order whatever the blocks, so the result does not depend on n_threads;
#   2. then at once its elementwise pass (x - K)*scale + shift over the same stretches: with large S the blocks
#      are sized to stay in cache between the two passes (_bn_n_blocks), so the second read is not from DRAM.
# the lane partials (p1 then p2, 4 doubles per channel each) of channels [c0, c1) in the scratch lanes (8*C,),
# zeroed; returns p1 (p2 = p1 + 4*(c1 - c0))
cdef inline double* _zeroed_lanes(double* lanes, Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    memset(lanes + 8 * c0, 0, 8 * (c1 - c0) * sizeof(double))
    return lanes + 8 * c0


# float32 backward sums are taken about Kx = float(mean): sdyx = sum(dy*(x - mean)) from them, channels [c0, c1)
cdef inline void _about_mean(double* sdyx, const double* sdy, const double* mean,
                             Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    cdef Py_ssize_t c
    for c in range(c0, c1):
        sdyx[c] = sdyx[c] - (mean[c] - <double>(<float>mean[c])) * sdy[c]


# x: (N, C, S); s1, s2, K: (C,); lanes: scratch (8*C,) (see _zeroed_lanes);
# channels [c0, c1)
cdef void _bn_stats_block(double* s1, double* s2, const double* K, const floating* x,
                          Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, Py_ssize_t c0, Py_ssize_t c1,
                          double* lanes) noexcept nogil:
    cdef Py_ssize_t n, c, i
    cdef double d
    cdef double* p1
    cdef double* p2
    cdef const floating* row
    for c in range(c0, c1):
        s1[c] = 0
        s2[c] = 0
    if S == 1:  # BatchNorm1d: walks along ROWS_1D rows at a time, vectorized across channels
        for n in range((N + ROWS_1D - 1) // ROWS_1D):
            i = n * ROWS_1D
            if floating is float:
                mg_col_shifted_sums_float(x + i * C + c0, C, min(ROWS_1D, N - i), K + c0, c1 - c0, s1 + c0, s2 + c0)
            else:
                mg_col_shifted_sums_double(x + i * C + c0, C, min(ROWS_1D, N - i), K + c0, c1 - c0, s1 + c0,
                                           s2 + c0)
    elif floating is float and MG_SHORT_RUN <= S < MG_LANE_RUN:
        p1 = _zeroed_lanes(lanes, c0, c1)
        p2 = p1 + 4 * (c1 - c0)
        for n in range(N):
            mg_channel_lane_sums_float(x + (n * C + c0) * S, c1 - c0, S, K + c0, p1, p2)
        mg_lanes_finish(p1, p2, c1 - c0, s1 + c0, s2 + c0)
    else:
        for n in range(N):
            row = x + (n * C + c0) * S
            if floating is float:
                mg_channel_shifted_sums_float(row, c1 - c0, S, K + c0, s1 + c0, s2 + c0)
            else:
                mg_channel_shifted_sums_double(row, c1 - c0, S, K + c0, s1 + c0, s2 + c0)
    if floating is float:  # float32 sums that overflowed (|x - K| > 1.8e19, or data not finite): again in double
        for c in range(c0, c1):
            if not (isfinite(s1[c]) and isfinite(s2[c])):
                s1[c] = 0
                s2[c] = 0
                for n in range(N):
                    for i in range(S):
                        d = <double>x[(n * C + c) * S + i] - K[c]
                        s1[c] += d
                        s2[c] += d * d


# dy, x: (N, C, S); sdy, sdyx, mean: (C,); lanes: scratch (8*C,) as _bn_stats_block's; channels [c0, c1)
cdef void _bn_dy_sums_block(double* sdy, double* sdyx, const double* mean, const floating* dy, const floating* x,
                            Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, Py_ssize_t c0, Py_ssize_t c1,
                            double* lanes) noexcept nogil:
    cdef Py_ssize_t n, c, i, j
    cdef double* p1
    cdef double* p2
    for c in range(c0, c1):
        sdy[c] = 0
        sdyx[c] = 0
    if S == 1:  # BatchNorm1d: walks along ROWS_1D_DY rows at a time, vectorized across channels
        for n in range((N + ROWS_1D_DY - 1) // ROWS_1D_DY):
            i = n * ROWS_1D_DY * C + c0
            if floating is float:
                mg_col_dy_sums_float(dy + i, x + i, C, min(ROWS_1D_DY, N - n * ROWS_1D_DY), mean + c0, c1 - c0,
                                     sdy + c0, sdyx + c0)
            else:
                mg_col_dy_sums_double(dy + i, x + i, C, min(ROWS_1D_DY, N - n * ROWS_1D_DY), mean + c0, c1 - c0,
                                      sdy + c0, sdyx + c0)
        if floating is float:
            _about_mean(sdyx, sdy, mean, c0, c1)
    elif floating is float and MG_SHORT_RUN <= S < MG_LANE_RUN:
        p1 = _zeroed_lanes(lanes, c0, c1)
        p2 = p1 + 4 * (c1 - c0)
        for n in range(N):
            i = (n * C + c0) * S
            mg_channel_lane_dy_sums_float(dy + i, x + i, c1 - c0, S, mean + c0, p1, p2)
        mg_lanes_finish(p1, p2, c1 - c0, sdy + c0, sdyx + c0)
        _about_mean(sdyx, sdy, mean, c0, c1)
    else:
        for n in range(N):
            i = (n * C + c0) * S
            if floating is float:
                mg_channel_dy_sums_float(dy + i, x + i, c1 - c0, S, mean + c0, sdy + c0, sdyx + c0)
            else:
                mg_channel_dy_sums_double(dy + i, x + i, c1 - c0, S, mean + c0, sdy + c0, sdyx + c0)
    if floating is float:  # float32 sums that overflowed (|dy*(x - Kx)| > 3.4e38, or not finite): again in double
        for c in range(c0, c1):
            if not (isfinite(sdy[c]) and isfinite(sdyx[c])):
                sdy[c] = 0
                sdyx[c] = 0
                for n in range(N):
                    for j in range(S):
                        i = (n * C + c) * S + j
                        sdy[c] += dy[i]
                        sdyx[c] += <double>dy[i] * (<double>x[i] - mean[c])


# x, y: (C*S,) one row; per-channel K, scale, shift: (C,)
cdef void _affine_row(floating* y, const floating* x, const floating* K, const floating* scale,
                      const floating* shift, Py_ssize_t C, Py_ssize_t S) noexcept nogil:
    cdef Py_ssize_t c
    if S == 1:
        if floating is float:
            mg_col_affine_float(y, x, C, K, scale, shift)
        else:
            mg_col_affine_double(y, x, C, K, scale, shift)
    elif floating is float:
        mg_channel_affine_float(y, x, C, S, K, scale, shift)
    else:
        mg_channel_affine_double(y, x, C, S, K, scale, shift)


# dx, dy, x: (C*S,) one row; per-channel coefficients (C,)
cdef void _affine2_row(floating* dx, const floating* dy, const floating* x, const floating* a, const floating* mdy,
                       const floating* K, const floating* b, const floating* k,
                       Py_ssize_t C, Py_ssize_t S) noexcept nogil:
    cdef Py_ssize_t c
    if S == 1:
        if floating is float:
            mg_col_affine2_float(dx, dy, x, C, a, mdy, K, b, k)
        else:
            mg_col_affine2_double(dx, dy, x, C, a, mdy, K, b, k)
    elif floating is float:
        mg_channel_affine2_float(dx, dy, x, C, S, a, mdy, K, b, k)
    else:
        mg_channel_affine2_double(dx, dy, x, C, S, a, mdy, K, b, k)


cdef inline void _bn_dx_coefficients(double sdy, double sdyx, double M, double mean, double rstd, double w,
                                     double* a, double* mdy, double* b, double* k, floating* Kx) noexcept nogil:
    """dx = rstd*w*(dy - mean(dy) - xhat*mean(dy*xhat)) rewritten as a*(dy - mdy) + b*(x - Kx) + k, Kx = X(mean):
       terms 1, 2: a = rstd*w, mdy = mean(dy); term 3: xhat = rstd*((x - Kx) - (mean - Kx)), so
       b = -a*mean(dy*xhat)*rstd and k = -b*(mean - Kx)."""
    cdef double mdyxhat = sdyx * rstd / M
    mdy[0] = sdy / M
    Kx[0] = <floating>mean
    a[0] = rstd * w
    b[0] = -a[0] * mdyxhat * rstd
    k[0] = -b[0] * (mean - Kx[0])


cdef Py_ssize_t _bn_n_blocks(Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, Py_ssize_t itemsize,
                             int n_threads) noexcept nogil:
    """One block of channels per thread; or, where a channel's runs are long (S*itemsize >= BN_RUN_BYTES), blocks
    of at most BN_BLOCK_BYTES of input (at least one channel) and at least one per thread.
    NOTE: a block is read n by n in runs of (c1 - c0)*S values C*S apart. Short runs defeat the hardware
    prefetcher (measured 1.3-2.5x slower at (256, 512, 49) and (4096, 1024, 1)), so small S keeps whole-thread
    blocks and their second pass reads from DRAM."""
    cdef Py_ssize_t nt = min(C, max(n_threads, 1)), per_block
    if S * itemsize < BN_RUN_BYTES:
        return nt
    per_block = max(1, BN_BLOCK_BYTES // max(1, N * S * itemsize))
    return max((C + per_block - 1) // per_block, nt)


# x, y: (N, C, S); s1, s2, K: scratch (C,); lanes: scratch (8*C,); coef: scratch (3*C,); channels [c0, c1)
cdef void _bn_forward_block(floating* y, double* mean, double* rstd, const floating* x, const floating* weight,
                            const floating* bias, double eps, double* s1, double* s2, double* K, double* lanes,
                            floating* coef, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S,
                            Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    cdef floating* Kx = coef
    cdef floating* scale = coef + C
    cdef floating* shift = coef + 2 * C
    cdef double mu, r, sc
    cdef Py_ssize_t c, n
    for c in range(c0, c1):
        K[c] = x[c * S]  # the shift: a value of the channel, x[0, c, 0]
    _bn_stats_block(s1, s2, K, x, N, C, S, c0, c1, lanes)
    for c in range(c0, c1):
        r = _rstd(s1[c], s2[c], <double>(N * S), eps, &mu, K[c])
        mean[c] = mu
        rstd[c] = r
        Kx[c] = <floating>mu
        sc = r * weight[c]
        scale[c] = <floating>sc
        shift[c] = <floating>(bias[c] - (mu - Kx[c]) * sc)
    for n in range(N):
        _affine_row(y + (n * C + c0) * S, x + (n * C + c0) * S, Kx + c0, scale + c0, shift + c0, c1 - c0, S)


# x, y: (N, C, S)
cdef int _bn_forward(floating* y, double* mean, double* rstd,
                     const floating* x, const floating* weight, const floating* bias, double eps,
                     Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, int n_threads) noexcept nogil:
    cdef Py_ssize_t nb = _bn_n_blocks(N, C, S, sizeof(floating), n_threads), blk
    cdef double* buf = <double*>malloc(11 * C * sizeof(double))
    cdef floating* coef = <floating*>malloc(3 * C * sizeof(floating))
    if buf == NULL or coef == NULL:
        free(buf)
        free(coef)
        return -1
    for blk in prange(nb, schedule='static', num_threads=n_threads):
        _bn_forward_block(y, mean, rstd, x, weight, bias, eps, buf, buf + C, buf + 2 * C, buf + 3 * C, coef,
                          N, C, S, blk * C // nb, (blk + 1) * C // nb)
    free(buf)
    free(coef)
    return 0


# dx, dy, x: (N, C, S); sdy, sdyx: scratch (C,); lanes: scratch (8*C,); coef: scratch (5*C,); channels [c0, c1)
cdef void _bn_backward_block(floating* dx, floating* dweight, floating* dbias,
                             const floating* dy, const floating* x, const double* mean, const double* rstd,
                             const floating* weight, double* sdy, double* sdyx, double* lanes, floating* coef,
                             Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    cdef floating* a = coef
    cdef floating* Kx = coef + C
    cdef floating* b = coef + 2 * C
    cdef floating* k = coef + 3 * C
    cdef floating* mdy = coef + 4 * C
    cdef double ad, md, bd, kd
    cdef Py_ssize_t c, n, i
    # two reductions per channel, one pass
    _bn_dy_sums_block(sdy, sdyx, mean, dy, x, N, C, S, c0, c1, lanes)
    for c in range(c0, c1):
        dbias[c] = <floating>sdy[c]
        dweight[c] = <floating>(sdyx[c] * rstd[c])
        _bn_dx_coefficients(sdy[c], sdyx[c], <double>(N * S), mean[c], rstd[c], weight[c],
                            &ad, &md, &bd, &kd, &Kx[c])
        a[c] = <floating>ad
        mdy[c] = <floating>md
        b[c] = <floating>bd
        k[c] = <floating>kd
    # the fused dx pass; xhat is recomputed from x (forward saved only mean and rstd)
    for n in range(N):
        i = (n * C + c0) * S
        _affine2_row(dx + i, dy + i, x + i, a + c0, mdy + c0, Kx + c0, b + c0, k + c0, c1 - c0, S)


# dx, dy, x: (N, C, S)
cdef int _bn_backward(floating* dx, floating* dweight, floating* dbias,
                      const floating* dy, const floating* x, const double* mean, const double* rstd,
                      const floating* weight,
                      Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, int n_threads) noexcept nogil:
    cdef Py_ssize_t nb = _bn_n_blocks(N, C, S, 2 * sizeof(floating), n_threads), blk
    cdef double* buf = <double*>malloc(10 * C * sizeof(double))
    cdef floating* coef = <floating*>malloc(5 * C * sizeof(floating))
    if buf == NULL or coef == NULL:
        free(buf)
        free(coef)
        return -1
    for blk in prange(nb, schedule='static', num_threads=n_threads):
        _bn_backward_block(dx, dweight, dbias, dy, x, mean, rstd, weight, buf, buf + C, buf + 2 * C, coef,
                           N, C, S, blk * C // nb, (blk + 1) * C // nb)
    free(buf)
    free(coef)
    return 0


# ---------------------------------------------------------------------------------------------------------
# batch norm, inference (y = (x - running_mean)*scale + bias)

# x, y: (N, C, S); running_mean, running_var, weight, bias: (C,)
cdef int _bn_inference(floating* y, const floating* x, const floating* running_mean, const floating* running_var,
                       const floating* weight, const floating* bias, double eps,
                       Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, int n_threads) noexcept nogil:
    cdef floating* scale = <floating*>malloc(C * sizeof(floating))
    cdef Py_ssize_t c, n
    if scale == NULL:
        return -1
    for c in range(C):
        scale[c] = <floating>(weight[c] / sqrt(<double>running_var[c] + eps))
    for n in prange(N, schedule='static', num_threads=n_threads):
        _affine_row(y + n * C * S, x + n * C * S, running_mean, scale, bias, C, S)
    free(scale)
    return 0


# ---------------------------------------------------------------------------------------------------------
# group norm, x: (N, C, S) as N*G contiguous rows of M = Cg*S values; affine per channel

# x, y: (Cg*S,) the row of (n, g); weight, bias: the Cg channels of group g
cdef void _gn_forward_row(floating* y, double* mean, double* rstd, const floating* x,
                          const floating* weight, const floating* bias, double eps,
                          Py_ssize_t Cg, Py_ssize_t S) noexcept nogil:
    cdef Py_ssize_t M = Cg * S, c, j
    cdef double mu, r, sc
    r = _rstd_row(x, M, eps, &mu)
    mean[0] = mu
    rstd[0] = r
    cdef floating Kx = <floating>mu, rx, dmr
    if S == 1:  # layer-norm shaped: per-element weight, one flat vectorizable loop
        rx = <floating>r
        dmr = <floating>((mu - Kx) * r)
        if floating is float:
            mg_ln_affine_float(y, x, weight, bias, M, Kx, rx, dmr)
        else:
            mg_ln_affine_double(y, x, weight, bias, M, Kx, rx, dmr)
    else:
        for c in range(Cg):
            sc = r * weight[c]
            _affine(y + c * S, x + c * S, S, Kx, <floating>sc, <floating>(bias[c] - (mu - Kx) * sc))


cdef inline double _rstd_row(const floating* x, Py_ssize_t M, double eps, double* mean) noexcept nogil:
    cdef double s1 = 0, s2 = 0, K = x[0]
    _shifted_sums(x, M, K, &s1, &s2)
    return _rstd(s1, s2, <double>M, eps, mean, K)


cdef inline void _gn_dx_coefficients(double sw, double swx, double M, double mean, double rstd, floating Kx,
                                     floating* rx, floating* mg, floating* bx, floating* kx) noexcept nogil:
    """From the two reductions with g = dy*w, sw = sum(g) and swx = sum(g*(x - mean)):
       dx = rstd*(g - mean(g) - xhat*mean(g*xhat)) = rstd*(w*dy - mg) + b*(x - Kx) + k, with
       xhat = rstd*((x - Kx) - (mean - Kx)): b = -rstd*mean(g*xhat)*rstd, k = -b*(mean - Kx)."""
    cdef double mgx = swx * rstd / M  # mean(g*xhat)
    cdef double b = -rstd * mgx * rstd
    rx[0] = <floating>rstd
    mg[0] = <floating>(sw / M)
    bx[0] = <floating>b
    kx[0] = <floating>(-b * (mean - Kx))


# dx, dy, x: (Cg*S,) the row of (n, g), S > 1; pw, pb: this chunk's dweight, dbias partials of the Cg channels
cdef void _gn_backward_row(floating* dx, double* pw, double* pb, const floating* dy, const floating* x,
                           double mean, double rstd, const floating* weight,
                           Py_ssize_t Cg, Py_ssize_t S) noexcept nogil:
    cdef Py_ssize_t c
    cdef double sw = 0, swx = 0, sdy, sdyx
    cdef floating Kx = <floating>mean, rx, mg, bx, kx
    # two reductions with g = dy*w: sw = sum(g), swx = sum(g*(x - mean)); and the per-channel partials
    for c in range(Cg):
        sdy = 0
        sdyx = 0
        _dy_sums(dy + c * S, x + c * S, S, mean, &sdy, &sdyx)
        pb[c] += sdy
        pw[c] += sdyx * rstd
        sw += weight[c] * sdy
        swx += weight[c] * sdyx
    _gn_dx_coefficients(sw, swx, <double>(Cg * S), mean, rstd, Kx, &rx, &mg, &bx, &kx)
    for c in range(Cg):
        _gn_dx(dx + c * S, dy + c * S, x + c * S, S, rx, weight[c], mg, Kx, bx, kx)


# dx, dy, x: (M,) the row of (n, g), S == 1 (layer-norm shaped: one weight per element); fw, fb: (M,) the
# dweight, dbias partials of the current block of rows, in X precision (flushed into double by the caller)
cdef void _ln_backward_row(floating* dx, floating* fw, floating* fb, const floating* dy, const floating* x,
                           double mean, double rstd, const floating* weight, Py_ssize_t M) noexcept nogil:
    cdef double sw, swx
    cdef floating Kx = <floating>mean, rx, mg, bx, kx, dmr
    # two reductions with g = dy*w: sw = sum(g), swx = sum(g*(x - Kx)) - (mean - Kx)*sw = sum(g*(x - mean))
    if floating is float:
        mg_ln_row_sums_float(dy, x, weight, M, Kx, &sw, &swx)
    else:
        mg_ln_row_sums_double(dy, x, weight, M, Kx, &sw, &swx)
    swx = swx - (mean - Kx) * sw
    _gn_dx_coefficients(sw, swx, <double>M, mean, rstd, Kx, &rx, &mg, &bx, &kx)
    dmr = <floating>((mean - Kx) * rstd)
    if floating is float:
        mg_ln_dx_float(dx, dy, x, weight, M, rx, mg, Kx, bx, kx, dmr, fw, fb)
    else:
        mg_ln_dx_double(dx, dy, x, weight, M, rx, mg, Kx, bx, kx, dmr, fw, fb)


cdef inline void _ln_flush(double* pw, double* pb, floating* fw, floating* fb, Py_ssize_t m) noexcept nogil:
    """pw += fw, pb += fb in double; fw = fb = 0."""
    if floating is float:
        mg_ln_flush_float(pw, pb, fw, fb, m)
    else:
        mg_ln_flush_double(pw, pb, fw, fb, m)


cdef inline void _gn_dx(floating* dx, const floating* dy, const floating* x, Py_ssize_t m,
                        floating r, floating w, floating mg, floating K, floating b, floating k) noexcept nogil:
    """dx = r*(w*dy - mg) + b*(x - K) + k for one channel of a group (X precision, vectorizes)."""
    if floating is float:
        mg_gn_dx_float(dx, dy, x, m, r, w, mg, K, b, k)
    else:
        mg_gn_dx_double(dx, dy, x, m, r, w, mg, K, b, k)


# x, y: (N, C, S); mean, rstd: (N, G) float64 OUT; weight, bias: (C,). Rows (n, g) in parallel.
cdef int _gn_forward(floating* y, double* mean, double* rstd, const floating* x, const floating* weight,
                     const floating* bias, double eps, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, Py_ssize_t G,
                     int n_threads) noexcept nogil:
    cdef Py_ssize_t Cg = C // G, i, n, g
    for i in prange(N * G, schedule='static', num_threads=n_threads):
        n = i // G
        g = i % G
        _gn_forward_row(y + (n * C + g * Cg) * S, mean + i, rstd + i, x + (n * C + g * Cg) * S,
                        weight + g * Cg, bias + g * Cg, eps, Cg, S)
    return 0


# dx, dy, x: (N, C, S); dweight, dbias: (C,) OUT; mean, rstd: (N, G) float64; weight: (C,).
# Units (chunk of n, group g) in parallel, each owning pw[chunk, channels of g]; the chunks are merged serially, in
# order. With S == 1 each unit adds its rows in blocks of LN_ROWS (counted from the chunk's first row, so the same
# blocks for any n_threads) into X-precision partials fw, fb, and each block into pw, pb.
# NOTE: per-row double partials cost a read-modify-write of 2*Cg doubles per row (measured 1.7x slower end to
# end at (8192, 768) together with the double row reductions); a block of 32 float32 rows adds ~1e-7 relative
# error to dweight, dbias.
cdef int _gn_backward(floating* dx, floating* dweight, floating* dbias, const floating* dy, const floating* x,
                      const double* mean, const double* rstd, const floating* weight,
                      Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, Py_ssize_t G, int n_threads) noexcept nogil:
    cdef Py_ssize_t Cg = C // G, n_chunks = min(N, MAX_CHUNKS), u, q, g, n, n0, n1, c, i, o
    if S == 1:  # at least a block of rows per chunk: fewer partials to allocate and merge for short inputs
        n_chunks = max(1, min(N // LN_ROWS, MAX_CHUNKS))
    cdef double* pw = <double*>calloc(2 * n_chunks * C, sizeof(double))
    cdef double* pb = pw + n_chunks * C
    cdef floating* fw = NULL
    cdef floating* fb
    if pw == NULL:
        return -1
    if S == 1:
        fw = <floating*>calloc(2 * n_chunks * C, sizeof(floating))
        if fw == NULL:
            free(pw)
            return -1
    fb = fw + n_chunks * C
    for u in prange(n_chunks * G, schedule='static', num_threads=n_threads):
        q = u // G
        g = u % G
        o = q * C + g * Cg
        n0 = q * N // n_chunks
        n1 = (q + 1) * N // n_chunks
        for n in range(n0, n1):
            i = (n * C + g * Cg) * S
            if S == 1:
                _ln_backward_row(dx + i, fw + o, fb + o, dy + i, x + i, mean[n * G + g], rstd[n * G + g],
                                 weight + g * Cg, Cg)
                if (n - n0) % LN_ROWS == LN_ROWS - 1 or n == n1 - 1:
                    _ln_flush(pw + o, pb + o, fw + o, fb + o, Cg)
            else:
                _gn_backward_row(dx + i, pw + o, pb + o, dy + i, x + i, mean[n * G + g], rstd[n * G + g],
                                 weight + g * Cg, Cg, S)
    # merge the chunks in order, into the first chunk's row (q outer: contiguous, vectorizes; same order per c)
    for q in range(1, n_chunks):
        for c in range(C):
            pw[c] += pw[q * C + c]
            pb[c] += pb[q * C + c]
    for c in range(C):
        dweight[c] = <floating>pw[c]
        dbias[c] = <floating>pb[c]
    free(pw)
    free(fw)
    return 0


# ---------------------------------------------------------------------------------------------------------
# the def wrappers: contract signatures + n_threads (see _arrays.pxd: the contract has checked the arguments)

# x, y: (N, C, S); mean, rstd: (C,) float64 OUT; weight, bias: (C,)
def batch_norm_forward(cnp.ndarray y not None, cnp.ndarray mean not None, cnp.ndarray rstd not None,
                       cnp.ndarray x not None, cnp.ndarray weight not None, cnp.ndarray bias not None,
                       double eps, int n_threads):
    """Training-mode batch norm forward (formula: reference.batch_norm_forward)."""
    cdef Py_ssize_t N = dim(x, 0), C = dim(x, 1), S = dim(x, 2)
    cdef bint f32 = is_float32(x)
    cdef void* p_y = ptr(y), *p_mean = ptr(mean), *p_rstd = ptr(rstd), *p_x = ptr(x), *p_weight = ptr(weight)
    cdef void* p_bias = ptr(bias)
    cdef int err
    if N * C * S == 0:
        return
    with nogil:
        if f32:
            err = _bn_forward(<float*>p_y, <double*>p_mean, <double*>p_rstd, <float*>p_x,
                              <float*>p_weight, <float*>p_bias, eps, N, C, S, n_threads)
        else:
            err = _bn_forward(<double*>p_y, <double*>p_mean, <double*>p_rstd, <double*>p_x,
                              <double*>p_weight, <double*>p_bias, eps, N, C, S, n_threads)
    if err:
        raise MemoryError()


# x, y: (N, C, S); running_mean, running_var, weight, bias: (C,)
def batch_norm_inference(cnp.ndarray y not None, cnp.ndarray x not None, cnp.ndarray running_mean not None,
                         cnp.ndarray running_var not None, cnp.ndarray weight not None, cnp.ndarray bias not None,
                         double eps, int n_threads):
    """y = (x - running_mean)*scale + bias, scale = weight/sqrt(running_var + eps), in X precision."""
    cdef Py_ssize_t N = dim(x, 0), C = dim(x, 1), S = dim(x, 2)
    cdef bint f32 = is_float32(x)
    cdef void* p_y = ptr(y), *p_x = ptr(x), *p_running_mean = ptr(running_mean), *p_running_var = ptr(running_var)
    cdef void* p_weight = ptr(weight), *p_bias = ptr(bias)
    cdef int err
    if N * C * S == 0:
        return
    with nogil:
        if f32:
            err = _bn_inference(<float*>p_y, <float*>p_x, <float*>p_running_mean, <float*>p_running_var,
                                <float*>p_weight, <float*>p_bias, eps, N, C, S, n_threads)
        else:
            err = _bn_inference(<double*>p_y, <double*>p_x, <double*>p_running_mean,
                                <double*>p_running_var, <double*>p_weight, <double*>p_bias, eps,
                                N, C, S, n_threads)
    if err:
        raise MemoryError()


# dx, dy, x: (N, C, S); dweight, dbias: (C,) OUT; mean, rstd: (C,) float64; weight: (C,)
def batch_norm_backward(cnp.ndarray dx not None, cnp.ndarray dweight not None, cnp.ndarray dbias not None,
                        cnp.ndarray dy not None, cnp.ndarray x not None, cnp.ndarray mean not None,
                        cnp.ndarray rstd not None, cnp.ndarray weight not None, int n_threads):
    """dx = rstd*w*(dy - mean(dy) - xhat*mean(dy*xhat)); dweight = sum(dy*xhat); dbias = sum(dy)."""
    cdef Py_ssize_t N = dim(x, 0), C = dim(x, 1), S = dim(x, 2)
    cdef bint f32 = is_float32(x)
    cdef void* p_dx = ptr(dx), *p_dweight = ptr(dweight), *p_dbias = ptr(dbias), *p_dy = ptr(dy), *p_x = ptr(x)
    cdef void* p_mean = ptr(mean), *p_rstd = ptr(rstd), *p_weight = ptr(weight)
    cdef int err
    if N * C * S == 0:
        return
    with nogil:
        if f32:
            err = _bn_backward(<float*>p_dx, <float*>p_dweight, <float*>p_dbias, <float*>p_dy,
                               <float*>p_x, <double*>p_mean, <double*>p_rstd, <float*>p_weight,
                               N, C, S, n_threads)
        else:
            err = _bn_backward(<double*>p_dx, <double*>p_dweight, <double*>p_dbias, <double*>p_dy,
                               <double*>p_x, <double*>p_mean, <double*>p_rstd, <double*>p_weight,
                               N, C, S, n_threads)
    if err:
        raise MemoryError()


# x, y: (N, C, S); mean, rstd: (N, G) float64 OUT; weight, bias: (C,)
def group_norm_forward(cnp.ndarray y not None, cnp.ndarray mean not None, cnp.ndarray rstd not None,
                       cnp.ndarray x not None, cnp.ndarray weight not None, cnp.ndarray bias not None,
                       Py_ssize_t num_groups, double eps, int n_threads):
    """Group norm forward (formula: reference.group_norm_forward); rows (n, g) in parallel."""
    cdef Py_ssize_t N = dim(x, 0), C = dim(x, 1), S = dim(x, 2)
    cdef bint f32 = is_float32(x)
    cdef void* p_y = ptr(y), *p_mean = ptr(mean), *p_rstd = ptr(rstd), *p_x = ptr(x), *p_weight = ptr(weight)
    cdef void* p_bias = ptr(bias)
    if N * C * S == 0:
        return
    if num_groups < 1 or C % num_groups:
        raise ValueError(f"num_groups={num_groups} must divide C={C}")
    with nogil:
        if f32:
            _gn_forward(<float*>p_y, <double*>p_mean, <double*>p_rstd, <float*>p_x,
                        <float*>p_weight, <float*>p_bias, eps, N, C, S, num_groups, n_threads)
        else:
            _gn_forward(<double*>p_y, <double*>p_mean, <double*>p_rstd, <double*>p_x,
                        <double*>p_weight, <double*>p_bias, eps, N, C, S, num_groups, n_threads)


# dx, dy, x: (N, C, S); dweight, dbias: (C,) OUT; mean, rstd: (N, G) float64; weight: (C,)
def group_norm_backward(cnp.ndarray dx not None, cnp.ndarray dweight not None, cnp.ndarray dbias not None,
                        cnp.ndarray dy not None, cnp.ndarray x not None, cnp.ndarray mean not None,
                        cnp.ndarray rstd not None, cnp.ndarray weight not None, Py_ssize_t num_groups,
                        int n_threads):
    """Group norm backward (formula: reference.group_norm_backward)."""
    cdef Py_ssize_t N = dim(x, 0), C = dim(x, 1), S = dim(x, 2)
    cdef bint f32 = is_float32(x)
    cdef void* p_dx = ptr(dx), *p_dweight = ptr(dweight), *p_dbias = ptr(dbias), *p_dy = ptr(dy), *p_x = ptr(x)
    cdef void* p_mean = ptr(mean), *p_rstd = ptr(rstd), *p_weight = ptr(weight)
    cdef int err
    if N * C * S == 0:
        return
    if num_groups < 1 or C % num_groups:
        raise ValueError(f"num_groups={num_groups} must divide C={C}")
    with nogil:
        if f32:
            err = _gn_backward(<float*>p_dx, <float*>p_dweight, <float*>p_dbias, <float*>p_dy,
                               <float*>p_x, <double*>p_mean, <double*>p_rstd, <float*>p_weight,
                               N, C, S, num_groups, n_threads)
        else:
            err = _gn_backward(<double*>p_dx, <double*>p_dweight, <double*>p_dbias, <double*>p_dy,
                               <double*>p_x, <double*>p_mean, <double*>p_rstd, <double*>p_weight,
                               N, C, S, num_groups, n_threads)
    if err:
        raise MemoryError()


# ---------------------------------------------------------------------------------------------------------
# running statistics (rule and roundings: reference.running_stats_update)

cdef void _running_stats(floating* running_mean, floating* running_var, const double* mean, const double* rstd,
                         double momentum, double eps, double count, Py_ssize_t N, Py_ssize_t C) noexcept nogil:
    cdef floating keep = <floating>(1.0 - momentum)
    cdef double sm, sv, r
    cdef Py_ssize_t n, c
    for c in range(C):
        sm = 0
        sv = 0
        for n in range(N):  # NOTE: rows in order, as NumPy's sum over the outer axis adds them
            sm = sm + mean[n * C + c]
            r = rstd[n * C + c]
            sv = sv + (1.0 / (r * r) - eps) * (count / (count - 1))
        running_mean[c] = <floating>((sm / N) * momentum + <double>(running_mean[c] * keep))
        running_var[c] = <floating>((sv / N) * momentum + <double>(running_var[c] * keep))


def running_stats_update(cnp.ndarray running_mean not None, cnp.ndarray running_var not None,
                         cnp.ndarray mean not None, cnp.ndarray rstd not None, double momentum, double eps,
                         double count, int n_threads):
    """running = (1 - momentum)*running + momentum*stat for the mean and the unbiased variance."""
    cdef Py_ssize_t N = dim(mean, 0), C = dim(mean, 1)
    cdef bint f32 = is_float32(running_mean)
    cdef void* p_rm = ptr(running_mean), *p_rv = ptr(running_var), *p_mean = ptr(mean), *p_rstd = ptr(rstd)
    with nogil:
        if f32:
            _running_stats(<float*>p_rm, <float*>p_rv, <double*>p_mean, <double*>p_rstd, momentum, eps, count, N, C)
        else:
            _running_stats(<double*>p_rm, <double*>p_rv, <double*>p_mean, <double*>p_rstd, momentum, eps, count,
                           N, C)
