/* A vectorizable expf and the sigmoid on it, shared by phases.h (EvoNorm's gate) and elementwise.pyx (the
   sigmoid kernels): float's exp through a polynomial GCC runs in vector lanes (mgp_expf, mgp_expf8), double's
   through libm. Included after Python.h. */
#ifndef MG_EXPF_H
#define MG_EXPF_H
#include <math.h>
#include <stdint.h>
#include <string.h>

#pragma GCC diagnostic ignored "-Wpsabi"
#ifndef MGP_INLINE
#define MGP_INLINE static inline __attribute__((always_inline))
#endif
typedef double mgp_v4d __attribute__((vector_size(32)));
typedef float mgp_v8f __attribute__((vector_size(32)));
typedef uint32_t mgp_v8u __attribute__((vector_size(32)));
typedef float mgp_v16f __attribute__((vector_size(64)));
typedef uint32_t mgp_v16u __attribute__((vector_size(64)));
/* expf without a libm call, so that it runs in vector lanes (Cephes' expf: n = round(x/ln2) by the magic-number
   rounding, which leaves n in the low bits of t and needs no float -> int conversion; a degree-6 polynomial on
   the remainder; 2^n through the exponent bits). Within 1 ulp of the correctly rounded exp for every float in
   [-87.3, 88.3] (checked exhaustively), about 2^-126 below (the clamp keeps 2^n normal), inf above, NaN stays NaN.
   Lanes and the scalar tail give the same bits. */
#define MGP_EXPF_BODY(F, UI, BL, X0) MGP_EXPF_BODY_MA(F, UI, BL, X0, MGP_MA)
#define MGP_MA(F, a, b, c) ((a) * (b) + (c))  /* a*b + c, two roundings (the build's -ffp-contract=off) */
#define MGP_EXPF_BODY_MA(F, UI, BL, X0, MA)                                                                  \
    const F hiv = (F){0} + 88.37626f, lov = (F){0} + -87.33654f, magic = (F){0} + 12582912.0f;               \
    F x = BL(X0 > hiv, hiv, X0);                                                                             \
    x = BL(x < lov, lov, x);  /* NaN passes through both */                                                  \
    const F t = MA(F, x, 1.44269504088896341f, magic);                                                       \
    const F n = t - magic;                                                                                   \
    F r = MA(F, n, -0.693359375f, x);                                                                        \
    r = MA(F, n, 2.12194440e-4f, r);                                                                         \
    const F z = r * r;                                                                                       \
    F p = MA(F, MA(F, MA(F, MA(F, MA(F, r, 1.9875691500e-4f, (F){0} + 1.3981999507e-3f), r,                  \
                               (F){0} + 8.3334519073e-3f), r, (F){0} + 4.1665795894e-2f), r,                 \
                     (F){0} + 1.6666665459e-1f), r, (F){0} + 5.0000001201e-1f);                              \
    p = MA(F, p, z, r) + 1.0f;                                                                               \
    UI bt, bm;                                                                                               \
    memcpy(&bt, &t, sizeof bt);                                                                              \
    memcpy(&bm, &magic, sizeof bm);                                                                          \
    const UI e = (bt - bm + 127u) << 23;                                                                     \
    F sc;                                                                                                    \
    memcpy(&sc, &e, sizeof sc);                                                                              \
    return BL(X0 > hiv, (F){0} + (float)INFINITY, p * sc);
#define MGP_BL_S(m, a, b) ((m) ? (a) : (b))
MGP_INLINE float mgp_expf(float x0) { MGP_EXPF_BODY(float, uint32_t, MGP_BL_S, x0) }
/* m ? a : b per lane (m a comparison's mask) */
#define MGP_BL_8F(m, a, b) ((mgp_v8f)(((mgp_v8u)(m) & (mgp_v8u)(a)) | (~(mgp_v8u)(m) & (mgp_v8u)(b))))
MGP_INLINE mgp_v8f mgp_expf8(mgp_v8f x0) { MGP_EXPF_BODY(mgp_v8f, mgp_v8u, MGP_BL_8F, x0) }
/* the same ops on 16 lanes: one zmm in an AVX-512 clone, two ymm (an unrolled mgp_expf8) in the AVX2 one */
#define MGP_BL_16F(m, a, b) ((mgp_v16f)(((mgp_v16u)(m) & (mgp_v16u)(a)) | (~(mgp_v16u)(m) & (mgp_v16u)(b))))
MGP_INLINE mgp_v16f mgp_expf16(mgp_v16f x0) { MGP_EXPF_BODY(mgp_v16f, mgp_v16u, MGP_BL_16F, x0) }
MGP_INLINE float mgp_sigmoid_float(float z) { return 1.0f / (1.0f + mgp_expf(-z)); }
MGP_INLINE double mgp_sigmoid_double(double z) { return 1.0 / (1.0 + exp(-z)); }
MGP_INLINE mgp_v8f mgp_sigmoidv_float(mgp_v8f z) { return 1.0f / (1.0f + mgp_expf8(-z)); }
MGP_INLINE mgp_v16f mgp_sigmoidv16_float(mgp_v16f z) { return 1.0f / (1.0f + mgp_expf16(-z)); }
MGP_INLINE mgp_v4d mgp_sigmoidv_double(mgp_v4d z) {  /* libm's exp per lane */
    mgp_v4d s = {mgp_sigmoid_double(z[0]), mgp_sigmoid_double(z[1]), mgp_sigmoid_double(z[2]),
                 mgp_sigmoid_double(z[3])};
    return s;
}
/* The same exp with each a*b + c of the range reduction and the polynomial fused (one rounding): about a third
   fewer vector operations, most of the sigmoid's time (EvoNorm's gate kernels only; the elementwise sigmoid keeps
   mgp_expf's bits). Within 1.02 ulp of exp on [-87.3, 88.3] (22 floats of 2.1e9 over 1 ulp; mgp_expf: 0.99;
   checked exhaustively, docs/perf/norm-family.md, "2026-12-07 (session 30)"), the same clamps, inf and NaN, and
   the scalar gives the lanes' bits (all 2^32 inputs). Lane by lane
   __builtin_fmaf, so that every clone gives the same bits: one vfmadd on 16 or 8 lanes in the clones with FMA
   (MGP_CLONES_FMA: x86-64-v4 and -v3), libm's correctly rounded fmaf per lane in the baseline clone (slow; only
   x86-64 CPUs without FMA, before 2013, run it). */
#define MGP_FMA_S(F, a, b, c) __builtin_fmaf((a), (b), (c))
#define MGP_FMA_V(F, a, b, c) mgp_fma_lanes_##F((a), (F){0} + (b), (c))
#define MGP_FMA_LANES(F, N)                                                                                  \
MGP_INLINE F mgp_fma_lanes_##F(F a, F b, F c) {                                                              \
    F r;                                                                                                     \
    for (int i = 0; i < N; i++) r[i] = __builtin_fmaf(a[i], b[i], c[i]);                                     \
    return r;                                                                                                \
}
MGP_FMA_LANES(mgp_v8f, 8)
MGP_FMA_LANES(mgp_v16f, 16)
MGP_INLINE float mgp_expf_fma(float x0) { MGP_EXPF_BODY_MA(float, uint32_t, MGP_BL_S, x0, MGP_FMA_S) }
MGP_INLINE mgp_v8f mgp_expf8_fma(mgp_v8f x0) { MGP_EXPF_BODY_MA(mgp_v8f, mgp_v8u, MGP_BL_8F, x0, MGP_FMA_V) }
MGP_INLINE mgp_v16f mgp_expf16_fma(mgp_v16f x0) { MGP_EXPF_BODY_MA(mgp_v16f, mgp_v16u, MGP_BL_16F, x0, MGP_FMA_V) }
MGP_INLINE float mgp_sigmoid_fma_float(float z) { return 1.0f / (1.0f + mgp_expf_fma(-z)); }
MGP_INLINE mgp_v8f mgp_sigmoidv_fma_float(mgp_v8f z) { return 1.0f / (1.0f + mgp_expf8_fma(-z)); }
MGP_INLINE mgp_v16f mgp_sigmoidv16_fma_float(mgp_v16f z) { return 1.0f / (1.0f + mgp_expf16_fma(-z)); }
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define MGP_CLONES_FMA __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MGP_CLONES_FMA
#endif
#endif
