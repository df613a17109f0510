/* Group norm (and layer/instance norm), group layout x: (N, C, S) as N*G contiguous rows of M = Cg*S values, one
   reduction set per row: the row helpers besides the run reductions of norm_runs.h (mg_shifted_sums_*,
   mg_dy_sums_*). S > 1: per-channel coefficients over runs of S values; S == 1 (layer-norm shaped): one weight
   per element, the mg_ln_* helpers. Declared for Cython in norm_kernels.pxd. */
#ifndef MG_NORM_ROWS_H
#define MG_NORM_ROWS_H

#include "norm_runs.h"

#define MG_ROW_ELEMENTWISE(T)                                                                                  \
/* y = (x - K)*scale + shift over a run of a row: mg_affine with an AVX-512 clone (see mg_shifted_sums_float) */ \
MG_CLONES_V4 static void mg_row_affine_##T(T* y, const T* x, Py_ssize_t m, T K, T scale, T shift) {            \
    MG_AFFINE_BODY(y, x, m, K, scale, shift)                                                                   \
}                                                                                                              \
/* S > 1: dx = r*(w*dy - mg) + b*(x - K) + k for one channel of a group */                                     \
MG_CLONES static void mg_gn_dx_##T(T* dx, const T* dy, const T* x, Py_ssize_t m,                               \
                                   T r, T w, T mg, T K, T b, T k) {                                            \
    for (Py_ssize_t i = 0; i < m; i++) dx[i] = r * (w * dy[i] - mg) + b * (x[i] - K) + k;                      \
}                                                                                                              \
/* S == 1: y = ((x - K)*r - dmr)*w + bias, dmr = (mean - K)*r */                                               \
MG_CLONES static void mg_ln_affine_##T(T* y, const T* x, const T* w, const T* bias,                            \
                                       Py_ssize_t m, T K, T r, T dmr) {                                        \
    for (Py_ssize_t i = 0; i < m; i++) y[i] = ((x[i] - K) * r - dmr) * w[i] + bias[i];                         \
}
MG_ROW_ELEMENTWISE(float)
MG_ROW_ELEMENTWISE(double)

/* S == 1 backward, the two row reductions with g = dy*w: sw = sum(g), swx = sum(g*(x - K)) over [0, m), K = X(mean)
   (the caller subtracts (mean - K)*sw). The products are taken in X precision (x - K is exact where
   |mean| >> std) and summed in X precision over MG_LN_RUN values per lane only, then in double: float32
   products cost a rounding of 2^-24 each (the float32 output's own precision). Fixed order, as everywhere.
   NOTE: not in double: two conversions per value made this the slowest pass
   (docs/perf/norm-kernels.md#layer-norm-backward) */
#define MG_LN_RUN 4
#define MG_LN_BACKWARD(T)                                                                                      \
MG_CLONES static void mg_ln_row_sums_##T(const T* dy, const T* x, const T* w, Py_ssize_t m, T K,               \
                                         double* sw, double* swx) {                                            \
    enum { L = sizeof(mg_vx_##T) / sizeof(T) };                                                                \
    mg_v4d a0 = {0, 0, 0, 0}, a1 = a0, q0 = a0, q1 = a0;                                                       \
    Py_ssize_t i = 0;                                                                                          \
    for (; i + MG_LN_RUN * L <= m; i += MG_LN_RUN * L) {                                                       \
        mg_vx_##T ga = {0}, ea = {0};                                                                          \
        for (int h = 0; h < MG_LN_RUN * L; h += L) {                                                           \
            mg_vx_##T g = mg_loadx_##T(dy + i + h) * mg_loadx_##T(w + i + h);                                  \
            ga += g; ea += g * (mg_loadx_##T(x + i + h) - K);                                                  \
        }                                                                                                      \
        mg_widen_add_##T(&a0, &a1, ga); mg_widen_add_##T(&q0, &q1, ea);                                        \
    }                                                                                                          \
    double a = 0, q = 0;                                                                                       \
    for (; i < m; i++) { T g = dy[i] * w[i]; a += g; q += g * (x[i] - K); }                                    \
    *sw = mg_hsum(a0, a1) + a;                                                                                 \
    *swx = mg_hsum(q0, q1) + q;                                                                                \
}                                                                                                              \
/* dx = r*(w*dy - mg) + b*(x - K) + k, and this block's parameter-gradient partials in X precision:            \
   fb += dy, fw += dy*xhat with xhat = (x - K)*r - dmr (elementwise: vectorizes, no reassociation) */          \
MG_CLONES static void mg_ln_dx_##T(T* restrict dx, const T* restrict dy, const T* restrict x,                  \
                                   const T* restrict w, Py_ssize_t m, T r, T mg, T K, T b, T k, T dmr,         \
                                   T* restrict fw, T* restrict fb) {                                           \
    for (Py_ssize_t i = 0; i < m; i++) {                                                                       \
        T g = dy[i], d = x[i] - K;                                                                             \
        dx[i] = r * (w[i] * g - mg) + b * d + k;                                                               \
        fb[i] += g;                                                                                            \
        fw[i] += g * (d * r - dmr);                                                                            \
    }                                                                                                          \
}                                                                                                              \
/* pw += fw, pb += fb (in double), then fw = fb = 0 */                                                         \
MG_CLONES static void mg_ln_flush_##T(double* restrict pw, double* restrict pb, T* restrict fw,                \
                                      T* restrict fb, Py_ssize_t m) {                                          \
    for (Py_ssize_t i = 0; i < m; i++) {                                                                       \
        pw[i] += fw[i]; pb[i] += fb[i]; fw[i] = 0; fb[i] = 0;                                                  \
    }                                                                                                          \
}
MG_LN_BACKWARD(float)
MG_LN_BACKWARD(double)

#endif
