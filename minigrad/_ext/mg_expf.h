/* A vectorizable expf and the sigmoid on it, shared by phases.h (EvoNorm's gate) and elementwise.pyx (the
   sigmoid kernels): float's exp through a polynomial GCC runs in vector lanes (mgp_expf, mgp_expf8); double's
   through libm for the elementwise sigmoid, through a polynomial for EvoNorm's gate (mgp_exp_fma). Included after
   Python.h. */
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
typedef double mgp_v8d __attribute__((vector_size(64)));
typedef uint64_t mgp_v4ul __attribute__((vector_size(32)));
typedef uint64_t mgp_v8ul __attribute__((vector_size(64)));
typedef int64_t mgp_v4l __attribute__((vector_size(32)));
typedef int64_t mgp_v8l __attribute__((vector_size(64)));
/* expf without a libm call, so that it runs in vector lanes (Cephes' expf: n = round(x/ln2) by the magic-number
   rounding, which leaves n in the low bits of t and needs no float -> int conversion; a degree-6 polynomial on
   the remainder; 2^n through the exponent bits). Within 1 ulp of the correctly rounded exp for every float in
   [-87.3, 88.3] (checked exhaustively), about 2^-126 below (the clamp keeps 2^n normal), inf above 88.37626 (the
   gate's exp below: finite up to exp's overflow at 88.72), NaN stays NaN.
   Lanes and the scalar tail give the same bits. */
#define MGP_EXPF_BODY(F, UI, SV, X0) MGP_EXPF_BODY_MA(F, UI, SV, X0, MGP_MA)
#define MGP_MA(F, a, b, c) ((a) * (b) + (c))  /* a*b + c, two roundings (the build's -ffp-contract=off) */
/* the clamps, a < b ? a : b and a > b ? a : b (NaN: b), as blends through the comparison's mask in vectors (U:
   the unsigned lanes of F's size). NOTE: the upper clamp, 88.5, gives n = 128 and 2^128's bits are inf's, so every x
   above 88.37626 gives inf without a third blend (session 31; lane loops of a < b ? a : b, one vminps in a small
   harness, were built lane by lane inside the gate kernels) */
#define MGP_MIN_S(F, U, a, b) ((a) < (b) ? (a) : (b))
#define MGP_MAX_S(F, U, a, b) ((a) > (b) ? (a) : (b))
#define MGP_MIN_V(F, U, a, b) mgp_blend_##F((U)((b) > (a)), (F){0} + (a), (b))
#define MGP_MAX_V(F, U, a, b) mgp_blend_##F((U)((b) < (a)), (F){0} + (a), (b))
#define MGP_BLEND(F, U) MGP_INLINE F mgp_blend_##F(U m, F a, F b) { return (F)((m & (U)a) | (~m & (U)b)); }
MGP_BLEND(mgp_v8f, mgp_v8u)
MGP_BLEND(mgp_v16f, mgp_v16u)
MGP_BLEND(mgp_v4d, mgp_v4ul)
MGP_BLEND(mgp_v8d, mgp_v8ul)
/* SV: S for a scalar F, V for a vector, M for a vector whose clamps are min/max instructions (AVX-512, below) */
#define MGP_EXPF_BODY_MA(F, UI, SV, X0, MA)                                                                  \
    const F magic = (F){0} + 12582912.0f;                                                                    \
    const F x = MGP_MAX_##SV(F, UI, -87.33654f, MGP_MIN_##SV(F, UI, 88.5f, X0));  /* NaN passes through both */      \
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
    return p * sc;
MGP_INLINE float mgp_expf(float x0) { MGP_EXPF_BODY(float, uint32_t, S, x0) }
MGP_INLINE mgp_v8f mgp_expf8(mgp_v8f x0) { MGP_EXPF_BODY(mgp_v8f, mgp_v8u, V, x0) }
/* the same ops on 16 lanes: one zmm in an AVX-512 clone, two ymm (an unrolled mgp_expf8) in the AVX2 one */
MGP_INLINE mgp_v16f mgp_expf16(mgp_v16f x0) { MGP_EXPF_BODY(mgp_v16f, mgp_v16u, V, x0) }
MGP_INLINE float mgp_sigmoid_float(float z) { return 1.0f / (1.0f + mgp_expf(-z)); }
MGP_INLINE double mgp_sigmoid_double(double z) { return 1.0 / (1.0 + exp(-z)); }
MGP_INLINE mgp_v8f mgp_sigmoidv_float(mgp_v8f z) { return 1.0f / (1.0f + mgp_expf8(-z)); }
MGP_INLINE mgp_v16f mgp_sigmoidv16_float(mgp_v16f z) { return 1.0f / (1.0f + mgp_expf16(-z)); }
MGP_INLINE mgp_v4d mgp_sigmoidv_double(mgp_v4d z) {  /* libm's exp per lane */
    mgp_v4d s = {mgp_sigmoid_double(z[0]), mgp_sigmoid_double(z[1]), mgp_sigmoid_double(z[2]),
                 mgp_sigmoid_double(z[3])};
    return s;
}
/* EvoNorm's float gate exp: e = exp(w) for the sigmoid 1/(1 + e) and x/(1 + e), with a third fewer vector
   operations than mgp_expf, most of the gate's time (docs/perf/norm-family.md, "EvoNorm's gate, session 34"):
   the range reduction and the polynomial as fused multiply-adds (one rounding each), a degree-6 minimax
   polynomial (1 + r + r^2*P(r), P of degree 4 fitted for exp's relative error on |r| <= ln2/2: 0.06 ulp with
   these float coefficients; mgp_expf's degree 7 takes one FMA more), x clamped to [-89, 89] and 2^n by its two
   halves 2^(n>>1) and 2^(n - (n>>1)), so that p*2^(n>>1) is exact and only the last product rounds (AVX-512: one
   vscalefps for the scale, the same bits). So exp is finite up to its overflow at 88.72 and inf above (x = inf
   included), and rounds once to a subnormal down to -89; below -89 it stays at exp(-89) = 2.2e-39, where 1 + e
   is 1 as it is for the exact value. NaN stays NaN. Checked against long double on 2^28 floats across the whole
   range (scripts/gate_sigmoid_check.c 16): within 1.01 ulp wherever the result is a normal float; the scalar's,
   8 and 16 lanes' and AVX-512's bits the same. Lane by lane __builtin_fmaf, so that every clone gives the same
   bits: one vfmadd on 16 or 8 lanes in the clones with FMA (MGP_CLONES_FMA: x86-64-v4 and -v3), libm's correctly
   rounded fmaf per lane in the baseline clone (slow; only x86-64 CPUs without FMA, before 2013, run it). */
#define MGP_FMA_S(F, a, b, c) __builtin_fmaf((a), (b), (c))
/* NOTE: b broadcast only when a scalar: (F){0} + b on a vector b is an addition GCC must keep (-0 + 0 is +0) */
#define MGP_LANES(F, b) _Generic((b), F: (b), default: (F){0} + (b))
#define MGP_FMA_V(F, a, b, c) mgp_fma_lanes_##F((a), MGP_LANES(F, b), (c))
#define MGP_FMA_LANES(F, N)                                                                                  \
MGP_INLINE F mgp_fma_lanes_##F(F a, F b, F c) {                                                              \
    F r;                                                                                                     \
    for (int i = 0; i < N; i++) r[i] = __builtin_fmaf(a[i], b[i], c[i]);                                     \
    return r;                                                                                                \
}
MGP_FMA_LANES(mgp_v8f, 8)
MGP_FMA_LANES(mgp_v16f, 16)
typedef int32_t mgp_v8i __attribute__((vector_size(32)));
typedef int32_t mgp_v16i __attribute__((vector_size(64)));
/* p*2^n, n = t - magic, as the product of two normal powers (I: the signed lanes; unsigned, then signed: no
   overflow for NaN's bits) */
#define MGP_SCALE2(F, UI, I, p, t, magic)                                                                    \
    UI bt, bm;                                                                                               \
    memcpy(&bt, &t, sizeof bt);                                                                              \
    memcpy(&bm, &magic, sizeof bm);                                                                          \
    const I k = (I)(bt - bm), k1 = k >> 1;                                                                   \
    const UI e1 = (UI)(k1 + 127) << 23, e2 = (UI)(k - k1 + 127) << 23;                                       \
    F s1, s2;                                                                                                \
    memcpy(&s1, &e1, sizeof s1);                                                                             \
    memcpy(&s2, &e2, sizeof s2);                                                                             \
    return p * s1 * s2;
#define MGP_GEXPF_BODY(F, UI, SV, X0, MA)                                                                    \
    const F magic = (F){0} + 12582912.0f;                                                                    \
    const F x = MGP_CLAMP89_##SV(F, UI, X0);  /* NaN passes through */                                       \
    const F t = MA(F, x, 1.44269504088896341f, magic);                                                       \
    const F n = t - magic;                                                                                   \
    F r = MA(F, n, -0.693359375f, x);                                                                        \
    r = MA(F, n, 2.12194440e-4f, r);                                                                         \
    F p = MA(F, MA(F, MA(F, MA(F, r, 0x1.6a2434p-10f, (F){0} + 0x1.1239e2p-7f), r, (F){0} + 0x1.5558f2p-5f), \
                     r, (F){0} + 0x1.555492p-3f), r, (F){0} + 0x1.fffffcp-2f);                               \
    p = MA(F, p, r * r, r) + 1.0f;
#define MGP_CLAMP89_S(F, U, a) MGP_MAX_S(F, U, -89.0f, MGP_MIN_S(F, U, 89.0f, a))
#define MGP_CLAMP89_V(F, U, a) MGP_MAX_V(F, U, -89.0f, MGP_MIN_V(F, U, 89.0f, a))
MGP_INLINE float mgp_expf_fma(float x0) {
    MGP_GEXPF_BODY(float, uint32_t, S, x0, MGP_FMA_S) MGP_SCALE2(float, uint32_t, int32_t, p, t, magic)
}
MGP_INLINE mgp_v8f mgp_expf8_fma(mgp_v8f x0) {
    MGP_GEXPF_BODY(mgp_v8f, mgp_v8u, V, x0, MGP_FMA_V) MGP_SCALE2(mgp_v8f, mgp_v8u, mgp_v8i, p, t, magic)
}
MGP_INLINE mgp_v16f mgp_expf16_fma(mgp_v16f x0) {
    MGP_GEXPF_BODY(mgp_v16f, mgp_v16u, V, x0, MGP_FMA_V) MGP_SCALE2(mgp_v16f, mgp_v16u, mgp_v16i, p, t, magic)
}
/* double's exp without a libm call, so that EvoNorm's float64 gate runs in vector lanes too: n = round(x/ln2) by
   the magic-number rounding (1.5*2^52), r = x - n*ln2 in two steps (Cephes' ln2 split: n*C1 and x - n*C1 exact),
   exp(r) on |r| <= ln2/2 by its Taylor polynomial to degree 13 (truncation below 5e-18 relative), each step a
   fused multiply-add (__builtin_fma lane by lane, as mgp_expf_fma); 2^n as two normal powers 2^(n>>1) and
   2^(n - (n>>1)), so that p*2^(n>>1) is exact and only the last product rounds: results that overflow give inf and
   subnormal results round once, like libm's. x is clamped to [-750, 750] (NaN passes through) only to keep n's
   halves in the exponent's range. Within about 1 ulp of exp (scripts/gate_exp_check.c: docs/perf/norm-family.md,
   "EvoNorm, session 31"); the scalar gives its lanes' bits. */
#define MGP_FMAD_S(F, a, b, c) __builtin_fma((a), (b), (c))
#define MGP_FMAD_V(F, a, b, c) mgp_fmad_lanes_##F((a), MGP_LANES(F, b), (c))
#define MGP_FMAD_LANES(F, N)                                                                                 \
MGP_INLINE F mgp_fmad_lanes_##F(F a, F b, F c) {                                                             \
    F r;                                                                                                     \
    for (int i = 0; i < N; i++) r[i] = __builtin_fma(a[i], b[i], c[i]);                                      \
    return r;                                                                                                \
}
MGP_FMAD_LANES(mgp_v4d, 4)
MGP_FMAD_LANES(mgp_v8d, 8)
#define MGP_EXP_BODY(F, U, I, SV, X0, MA)                                                                     \
    const F magic = (F){0} + 6755399441055744.0;                                                             \
    const F x = MGP_MAX_##SV(F, U, -750.0, MGP_MIN_##SV(F, U, 750.0, X0));  /* NaN passes through both */         \
    const F t = MA(F, x, 1.4426950408889634, magic);                                                         \
    const F n = t - magic;                                                                                   \
    F r = MA(F, n, -6.93145751953125e-1, x);                                                                 \
    r = MA(F, n, -1.42860682030941723212e-6, r);                                                             \
    F p = MA(F, r, 1.6059043836821613e-10, (F){0} + 2.08767569878681e-09);                                  \
    p = MA(F, p, r, (F){0} + 2.505210838544172e-08);                                                         \
    p = MA(F, p, r, (F){0} + 2.755731922398589e-07);                                                         \
    p = MA(F, p, r, (F){0} + 2.7557319223985893e-06);                                                        \
    p = MA(F, p, r, (F){0} + 2.48015873015873e-05);                                                          \
    p = MA(F, p, r, (F){0} + 0.0001984126984126984);                                                         \
    p = MA(F, p, r, (F){0} + 0.001388888888888889);                                                          \
    p = MA(F, p, r, (F){0} + 0.008333333333333333);                                                          \
    p = MA(F, p, r, (F){0} + 0.041666666666666664);                                                          \
    p = MA(F, p, r, (F){0} + 0.16666666666666666);                                                           \
    p = MA(F, p, r, (F){0} + 0.5);                                                                           \
    p = MA(F, p, r * r, r) + 1.0;                                                                            \
    U bt, bm;                                                                                                \
    memcpy(&bt, &t, sizeof bt);                                                                              \
    memcpy(&bm, &magic, sizeof bm);                                                                          \
    const I k = (I)(bt - bm), k1 = k >> 1;  /* unsigned, then signed: no overflow for NaN's bits */          \
    const U e1 = (U)(k1 + 1023) << 52, e2 = (U)(k - k1 + 1023) << 52;                                        \
    F s1, s2;                                                                                                \
    memcpy(&s1, &e1, sizeof s1);                                                                             \
    memcpy(&s2, &e2, sizeof s2);                                                                             \
    return p * s1 * s2;
MGP_INLINE double mgp_exp_fma(double x0) { MGP_EXP_BODY(double, uint64_t, int64_t, S, x0, MGP_FMAD_S) }
MGP_INLINE mgp_v4d mgp_exp4_fma(mgp_v4d x0) { MGP_EXP_BODY(mgp_v4d, mgp_v4ul, mgp_v4l, V, x0, MGP_FMAD_V) }
MGP_INLINE mgp_v8d mgp_exp8_fma(mgp_v8d x0) { MGP_EXP_BODY(mgp_v8d, mgp_v8ul, mgp_v8l, V, x0, MGP_FMAD_V) }
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define MGP_CLONES_FMA __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
/* The gate's exps for AVX-512 (phases.h's *_v4 kernels, picked at run time beside the *_v3 ones and the baseline):
   each clamp one vminps / vmaxps (a double's vminpd / vmaxpd) instead of the blend GCC builds from a compare, a
   mask-to-vector move and a vpternlogd. The same results: min(a, b) is a < b ? a : b and max(a, b) a > b ? a : b,
   b when either is NaN (the instructions' operand order, which the intrinsics keep without -ffinite-math-only),
   so with the bound as a, NaN passes through as MGP_MIN_V's and MGP_MAX_V's blends let it. */
#include <immintrin.h>
#define MGP_SPLIT_V4 1
#define MGP_TARGET_V4 __attribute__((target("arch=x86-64-v4")))
#define MGP_MINMAX_V4(F, M, W, S)                                                                            \
MGP_INLINE MGP_TARGET_V4 F mgp_vmin_##F(F a, F b) { return (F)_mm##W##_min_##S((M)a, (M)b); }               \
MGP_INLINE MGP_TARGET_V4 F mgp_vmax_##F(F a, F b) { return (F)_mm##W##_max_##S((M)a, (M)b); }
MGP_MINMAX_V4(mgp_v8f, __m256, 256, ps)
MGP_MINMAX_V4(mgp_v16f, __m512, 512, ps)
MGP_MINMAX_V4(mgp_v4d, __m256d, 256, pd)
MGP_MINMAX_V4(mgp_v8d, __m512d, 512, pd)
#define MGP_MIN_M(F, U, a, b) mgp_vmin_##F((F){0} + (a), (b))
#define MGP_MAX_M(F, U, a, b) mgp_vmax_##F((F){0} + (a), (b))
/* the gate exp's 2^n as one vscalefps (n integral: p*2^n rounded once), for mgp_expf_fma's bits; its clamps as
   vminps / vmaxps. NOTE: not one vrangeps (imm 2, |x| <= 89 with x's sign): it gives 89 with a NaN's sign for a NaN */
#define MGP_SCALEF_V4(F, M, W)                                                                               \
MGP_INLINE MGP_TARGET_V4 F mgp_vscalef_##F(F p, F n) { return (F)_mm##W##_scalef_ps((M)p, (M)n); }
MGP_SCALEF_V4(mgp_v8f, __m256, 256)
MGP_SCALEF_V4(mgp_v16f, __m512, 512)
#define MGP_CLAMP89_M(F, U, a) MGP_MAX_M(F, U, -89.0f, MGP_MIN_M(F, U, 89.0f, a))
MGP_INLINE MGP_TARGET_V4 mgp_v8f mgp_expf8_fma_v4(mgp_v8f x0) {
    MGP_GEXPF_BODY(mgp_v8f, mgp_v8u, M, x0, MGP_FMA_V)
    return mgp_vscalef_mgp_v8f(p, n);
}
MGP_INLINE MGP_TARGET_V4 mgp_v16f mgp_expf16_fma_v4(mgp_v16f x0) {
    MGP_GEXPF_BODY(mgp_v16f, mgp_v16u, M, x0, MGP_FMA_V)
    return mgp_vscalef_mgp_v16f(p, n);
}
MGP_INLINE MGP_TARGET_V4 mgp_v4d mgp_exp4_fma_v4(mgp_v4d x0) {
    MGP_EXP_BODY(mgp_v4d, mgp_v4ul, mgp_v4l, M, x0, MGP_FMAD_V)
}
MGP_INLINE MGP_TARGET_V4 mgp_v8d mgp_exp8_fma_v4(mgp_v8d x0) {
    MGP_EXP_BODY(mgp_v8d, mgp_v8ul, mgp_v8l, M, x0, MGP_FMAD_V)
}
/* The gate's exps for AVX2 + FMA (phases.h's *_v3 kernels, picked at run time where the CPU has x86-64-v3 but not
   AVX-512), session 36: in the x86-64-v3 clones of the generic code above GCC 12 builds __builtin_fmaf's lanes one
   by one (vfmadd213ss, vinsertps) and a 16-lane (or 8 double-lane) comparison lane by lane (vcomiss, seta, vpinsrd),
   5-10x slower than the AVX-512 versions. Here each fused multiply-add is one vfmadd on 8 float or 4 double lanes
   (the same single rounding as __builtin_fmaf's), each clamp one vminps / vmaxps (as MGP_MIN_M's: the bound as a,
   NaN passes through) and 2^n through the exponent bits as MGP_SCALE2 (vpsrad; for double's int64 lanes, which have
   no arithmetic shift in AVX2, k >> 1 as the logical shift with k's sign bit put back: the same value). The 16-lane
   and 8 double-lane versions run the 8- and 4-lane ones on their two halves. So the same bits as the clones'. */
#define MGP_TARGET_V3 __attribute__((target("arch=x86-64-v3")))
#define MGP_OPS_V3(F, M, S)                                                                                  \
MGP_INLINE MGP_TARGET_V3 F mgp_vfma3_##F(F a, F b, F c) { return (F)_mm256_fmadd_##S((M)a, (M)b, (M)c); }    \
MGP_INLINE MGP_TARGET_V3 F mgp_vmin3_##F(F a, F b) { return (F)_mm256_min_##S((M)a, (M)b); }                 \
MGP_INLINE MGP_TARGET_V3 F mgp_vmax3_##F(F a, F b) { return (F)_mm256_max_##S((M)a, (M)b); }
MGP_OPS_V3(mgp_v8f, __m256, ps)
MGP_OPS_V3(mgp_v4d, __m256d, pd)
/* a 64-byte vector F2 as its two 32-byte halves F, and back, through a union: GCC keeps both in ymm registers
   (memcpy went through the stack and general registers, __builtin_shufflevector's upper half lane by lane) */
#define MGP_HALVES_V3(F2, F)                                                                                 \
typedef union { F2 w; F h[2]; } mgp_u3_##F2;                                                                 \
MGP_INLINE MGP_TARGET_V3 F mgp_half3_##F2(F2 a, int h) { mgp_u3_##F2 u; u.w = a; return u.h[h]; }           \
MGP_INLINE MGP_TARGET_V3 F2 mgp_join3_##F2(F lo, F hi) { mgp_u3_##F2 u; u.h[0] = lo; u.h[1] = hi; return u.w; }
MGP_HALVES_V3(mgp_v16f, mgp_v8f)
MGP_HALVES_V3(mgp_v8d, mgp_v4d)
#define MGP_FMA_HALVES_V3(F2, F)                                                                             \
MGP_INLINE MGP_TARGET_V3 F2 mgp_vfma3_##F2(F2 a, F2 b, F2 c) {                                               \
    return mgp_join3_##F2(mgp_vfma3_##F(mgp_half3_##F2(a, 0), mgp_half3_##F2(b, 0), mgp_half3_##F2(c, 0)),   \
                          mgp_vfma3_##F(mgp_half3_##F2(a, 1), mgp_half3_##F2(b, 1), mgp_half3_##F2(c, 1)));  \
}
MGP_FMA_HALVES_V3(mgp_v16f, mgp_v8f)
#define MGP_FMA_3(F, a, b, c) mgp_vfma3_##F((a), MGP_LANES(F, b), (c))
#define MGP_MIN_3(F, U, a, b) mgp_vmin3_##F((F){0} + (a), (b))
#define MGP_MAX_3(F, U, a, b) mgp_vmax3_##F((F){0} + (a), (b))
#define MGP_CLAMP89_3(F, U, a) MGP_MAX_3(F, U, -89.0f, MGP_MIN_3(F, U, 89.0f, a))
MGP_INLINE MGP_TARGET_V3 mgp_v8f mgp_expf8_fma_v3(mgp_v8f x0) {
    MGP_GEXPF_BODY(mgp_v8f, mgp_v8u, 3, x0, MGP_FMA_3) MGP_SCALE2(mgp_v8f, mgp_v8u, mgp_v8i, p, t, magic)
}
MGP_INLINE MGP_TARGET_V3 mgp_v4d mgp_exp4_fma_v3(mgp_v4d x0) {
    MGP_EXP_BODY(mgp_v4d, mgp_v4ul, mgp_v4l, 3, x0, MGP_FMA_3)
}
#define MGP_WIDE_V3(F2, F, NAME, NAME2)                                                                      \
MGP_INLINE MGP_TARGET_V3 F2 NAME2(F2 x0) {                                                                   \
    return mgp_join3_##F2(NAME(mgp_half3_##F2(x0, 0)), NAME(mgp_half3_##F2(x0, 1)));                        \
}
MGP_WIDE_V3(mgp_v16f, mgp_v8f, mgp_expf8_fma_v3, mgp_expf16_fma_v3)
MGP_WIDE_V3(mgp_v8d, mgp_v4d, mgp_exp4_fma_v3, mgp_exp8_fma_v3)
/* mgp_exp4_fma_v3 on two blocks at once, *e0 = exp(x0) and *e1 = exp(x1), each step written for both (session 38):
   the exp is one dependent chain of about 20 operations (13 of them the polynomial's fused multiply-adds, 4 cycles
   each on Zen 3), so one block at a time left the FMA pipes waiting on the chain; two chains side by side fill them.
   The same operations per lane as MGP_EXP_BODY's (P2 below), so the same bits. */
#define MGP_P2(S) S(0) S(1)
MGP_INLINE MGP_TARGET_V3 void mgp_exp4x2_fma_v3(mgp_v4d x0, mgp_v4d x1, mgp_v4d* e0, mgp_v4d* e1) {
    typedef mgp_v4d F;
    const F magic = (F){0} + 6755399441055744.0;
#define MGP_E2_A(i) const F x_##i = MGP_MAX_3(mgp_v4d, U, -750.0, MGP_MIN_3(mgp_v4d, U, 750.0, x##i));
#define MGP_E2_B(i) const F t##i = MGP_FMA_3(mgp_v4d, x_##i, 1.4426950408889634, magic);
#define MGP_E2_C(i) const F n##i = t##i - magic;
#define MGP_E2_D(i) F r##i = MGP_FMA_3(mgp_v4d, n##i, -6.93145751953125e-1, x_##i);
#define MGP_E2_E(i) r##i = MGP_FMA_3(mgp_v4d, n##i, -1.42860682030941723212e-6, r##i);
#define MGP_E2_F(i) F p##i = MGP_FMA_3(mgp_v4d, r##i, 1.6059043836821613e-10, (F){0} + 2.08767569878681e-09);
#define MGP_E2_P(i) p##i = MGP_FMA_3(mgp_v4d, p##i, r##i, (F){0} + MGP_E2_K);
    MGP_P2(MGP_E2_A) MGP_P2(MGP_E2_B) MGP_P2(MGP_E2_C) MGP_P2(MGP_E2_D) MGP_P2(MGP_E2_E) MGP_P2(MGP_E2_F)
#define MGP_E2_K 2.505210838544172e-08
    MGP_P2(MGP_E2_P)
#undef MGP_E2_K
#define MGP_E2_K 2.755731922398589e-07
    MGP_P2(MGP_E2_P)
#undef MGP_E2_K
#define MGP_E2_K 2.7557319223985893e-06
    MGP_P2(MGP_E2_P)
#undef MGP_E2_K
#define MGP_E2_K 2.48015873015873e-05
    MGP_P2(MGP_E2_P)
#undef MGP_E2_K
#define MGP_E2_K 0.0001984126984126984
    MGP_P2(MGP_E2_P)
#undef MGP_E2_K
#define MGP_E2_K 0.001388888888888889
    MGP_P2(MGP_E2_P)
#undef MGP_E2_K
#define MGP_E2_K 0.008333333333333333
    MGP_P2(MGP_E2_P)
#undef MGP_E2_K
#define MGP_E2_K 0.041666666666666664
    MGP_P2(MGP_E2_P)
#undef MGP_E2_K
#define MGP_E2_K 0.16666666666666666
    MGP_P2(MGP_E2_P)
#undef MGP_E2_K
#define MGP_E2_K 0.5
    MGP_P2(MGP_E2_P)
#undef MGP_E2_K
#define MGP_E2_G(i) p##i = MGP_FMA_3(mgp_v4d, p##i, r##i * r##i, r##i) + 1.0;
#define MGP_E2_H(i)                                                                                          \
    mgp_v4ul bt##i, bm##i;                                                                                   \
    memcpy(&bt##i, &t##i, sizeof bt##i);                                                                     \
    memcpy(&bm##i, &magic, sizeof bm##i);                                                                    \
    const mgp_v4l k##i = (mgp_v4l)(bt##i - bm##i), k1##i = k##i >> 1;                                        \
    const mgp_v4ul e1##i = (mgp_v4ul)(k1##i + 1023) << 52, e2##i = (mgp_v4ul)(k##i - k1##i + 1023) << 52;      \
    F s1##i, s2##i;                                                                                          \
    memcpy(&s1##i, &e1##i, sizeof s1##i);                                                                    \
    memcpy(&s2##i, &e2##i, sizeof s2##i);                                                                    \
    *e##i = p##i * s1##i * s2##i;
    MGP_P2(MGP_E2_G) MGP_P2(MGP_E2_H)
#undef MGP_E2_A
#undef MGP_E2_B
#undef MGP_E2_C
#undef MGP_E2_D
#undef MGP_E2_E
#undef MGP_E2_F
#undef MGP_E2_P
#undef MGP_E2_G
#undef MGP_E2_H
}
/* mgp_expf8_fma_v3 on two blocks at once, as mgp_exp4x2_fma_v3 (MGP_GEXPF_BODY's and MGP_SCALE2's operations per
   lane, so the same bits) */
MGP_INLINE MGP_TARGET_V3 void mgp_expf8x2_fma_v3(mgp_v8f x0, mgp_v8f x1, mgp_v8f* e0, mgp_v8f* e1) {
    typedef mgp_v8f F;
    const F magic = (F){0} + 12582912.0f;
#define MGP_E2_A(i) const F x_##i = MGP_CLAMP89_3(mgp_v8f, U, x##i);
#define MGP_E2_B(i) const F t##i = MGP_FMA_3(mgp_v8f, x_##i, 1.44269504088896341f, magic);
#define MGP_E2_C(i) const F n##i = t##i - magic;
#define MGP_E2_D(i) F r##i = MGP_FMA_3(mgp_v8f, n##i, -0.693359375f, x_##i);
#define MGP_E2_E(i) r##i = MGP_FMA_3(mgp_v8f, n##i, 2.12194440e-4f, r##i);
#define MGP_E2_F(i) F p##i = MGP_FMA_3(mgp_v8f, r##i, 0x1.6a2434p-10f, (F){0} + 0x1.1239e2p-7f);
#define MGP_E2_P(i) p##i = MGP_FMA_3(mgp_v8f, p##i, r##i, (F){0} + MGP_E2_K);
    MGP_P2(MGP_E2_A) MGP_P2(MGP_E2_B) MGP_P2(MGP_E2_C) MGP_P2(MGP_E2_D) MGP_P2(MGP_E2_E) MGP_P2(MGP_E2_F)
#define MGP_E2_K 0x1.5558f2p-5f
    MGP_P2(MGP_E2_P)
#undef MGP_E2_K
#define MGP_E2_K 0x1.555492p-3f
    MGP_P2(MGP_E2_P)
#undef MGP_E2_K
#define MGP_E2_K 0x1.fffffcp-2f
    MGP_P2(MGP_E2_P)
#undef MGP_E2_K
#define MGP_E2_G(i) p##i = MGP_FMA_3(mgp_v8f, p##i, r##i * r##i, r##i) + 1.0f;
#define MGP_E2_H(i)                                                                                          \
    mgp_v8u bt##i, bm##i;                                                                                    \
    memcpy(&bt##i, &t##i, sizeof bt##i);                                                                     \
    memcpy(&bm##i, &magic, sizeof bm##i);                                                                    \
    const mgp_v8i k##i = (mgp_v8i)(bt##i - bm##i), k1##i = k##i >> 1;                                        \
    const mgp_v8u e1##i = (mgp_v8u)(k1##i + 127) << 23, e2##i = (mgp_v8u)(k##i - k1##i + 127) << 23;          \
    F s1##i, s2##i;                                                                                          \
    memcpy(&s1##i, &e1##i, sizeof s1##i);                                                                    \
    memcpy(&s2##i, &e2##i, sizeof s2##i);                                                                    \
    *e##i = p##i * s1##i * s2##i;
    MGP_P2(MGP_E2_G) MGP_P2(MGP_E2_H)
#undef MGP_E2_A
#undef MGP_E2_B
#undef MGP_E2_C
#undef MGP_E2_D
#undef MGP_E2_E
#undef MGP_E2_F
#undef MGP_E2_P
#undef MGP_E2_G
#undef MGP_E2_H
}
#else
#define MGP_CLONES_FMA
#define MGP_SPLIT_V4 0
#endif
#endif
