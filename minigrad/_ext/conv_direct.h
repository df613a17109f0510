/* Direct convolution at unit stride and dilation ("padded-width implicit GEMM"), one sample at a time.
   The math: minigrad/kernels/reference/conv.py (conv2d_direct). Included by conv.pyx.

   Legend: C input channels, O output channels, H, W input size, (ph, pw) padding, kh, kw window,
   Hp = H + 2*ph, Wp = W + 2*pw the padded size, OH = Hp - kh + 1, OW = Wp - kw + 1, K = C*kh*kw.

   The sample is copied, zero padded, into xp (C planes of Hp*Wp, channel stride CS = Hp*Wp). The output is computed
   over the padded width: flat positions q = oh*Wp + ow for ow in [0, Wp), so that for tap (i, j) the input of every
   q is the contiguous run xp[c*CS + i*Wp + j + q]:
       ypw[o, q] = sum over (c, i, j) of weight[o, c, i, j] * xp[c*CS + q + i*Wp + j]
   The last kw - 1 columns of each row are garbage (they read the next row) and are dropped when y is written; a
   valid q never reads outside its channel's plane. No im2col matrix is built.
   The micro-kernel holds an OB x PB tile of ypw (OB output channels, PB = PV vectors of positions) in registers
   and runs over (c, i, j): one load of PV vectors of x, OB broadcast weights, OB*PV fused multiply-adds.
   NOTE: every output is one chain acc = fma(w, x, acc) from 0 in (c, i, j) order, in every variant (AVX-512,
   AVX2+FMA, the scalar fma() of the baseline): the same bits whichever the CPU runs, and for any thread count. The
   tile sizes differ per variant (registers: 32 zmm, 16 ymm), which changes no sum. */
#ifndef MG_CONV_DIRECT_H
#define MG_CONV_DIRECT_H
#include <math.h>
#include <stddef.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define MG_DCONV_X86 1
#include <immintrin.h>
#else
#define MG_DCONV_X86 0
#endif

/* the variant the CPU runs, picked once (mg_dconv_init): 2 AVX-512, 1 AVX2 + FMA, 0 scalar fma() */
static int mg_dconv_isa = -1;

static void mg_dconv_init(void) {
    if (mg_dconv_isa >= 0)
        return;
#if MG_DCONV_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        mg_dconv_isa = 2;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        mg_dconv_isa = 1;
    else
        mg_dconv_isa = 0;
#else
    mg_dconv_isa = 0;
#endif
}

/* tile of the running variant: OB output channels x PB positions (PB = PV vectors) */
static inline ptrdiff_t mg_dconv_ob(void) { return mg_dconv_isa > 0 ? (mg_dconv_isa == 2 ? 8 : 4) : 4; }
static inline ptrdiff_t mg_dconv_pb(int f32) {
    /* PV vectors of VW lanes: 3 x 16 / 3 x 8 (AVX-512), 3 x 8 / 3 x 4 (AVX2), 8 / 4 scalars */
    if (mg_dconv_isa == 2)
        return f32 ? 48 : 24;
    if (mg_dconv_isa == 1)
        return f32 ? 24 : 12;
    return f32 ? 8 : 4;
}
static inline ptrdiff_t mg_round_up(ptrdiff_t a, ptrdiff_t b) { return (a + b - 1) / b * b; }

/* One variant's tile loop. ypw: (Obr, Qr) with Obr = O rounded up to OB, Qr = OH*Wp rounded up to PB; wpk: the
   weight packed (Obr/OB, K, OB), zero rows past O; xp: the padded sample, long enough for the last tile's reads. */
#define MG_DCONV_TILES(NAME, T, V, VW, OB, PV, ATTR, LOADU, STOREU, SET1, ZERO, FMA)                           \
ATTR static void NAME(T* ypw, const T* xp, const T* wpk, ptrdiff_t C, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t CS,  \
                      ptrdiff_t Wp, ptrdiff_t Obr, ptrdiff_t Qr) {                                             \
    const ptrdiff_t K = C * kh * kw;                                                                           \
    for (ptrdiff_t q0 = 0; q0 < Qr; q0 += (PV) * (VW)) {                                                       \
        for (ptrdiff_t ob = 0; ob < Obr; ob += (OB)) {                                                         \
            V acc[OB][PV];                                                                                     \
            for (int o = 0; o < (OB); o++)                                                                     \
                for (int v = 0; v < (PV); v++)                                                                 \
                    acc[o][v] = ZERO;                                                                          \
            const T* w = wpk + ob * K;                                                                         \
            for (ptrdiff_t c = 0; c < C; c++) {                                                                \
                for (ptrdiff_t i = 0; i < kh; i++) {                                                           \
                    const T* xr = xp + c * CS + i * Wp + q0;                                                   \
                    for (ptrdiff_t j = 0; j < kw; j++, w += (OB)) {                                            \
                        V xv[PV];                                                                              \
                        for (int v = 0; v < (PV); v++)                                                         \
                            xv[v] = LOADU(xr + j + v * (VW));                                                  \
                        for (int o = 0; o < (OB); o++) {                                                       \
                            V wv = SET1(w[o]);                                                                 \
                            for (int v = 0; v < (PV); v++)                                                     \
                                acc[o][v] = FMA(wv, xv[v], acc[o][v]);                                         \
                        }                                                                                      \
                    }                                                                                          \
                }                                                                                              \
            }                                                                                                  \
            for (int o = 0; o < (OB); o++)                                                                     \
                for (int v = 0; v < (PV); v++)                                                                 \
                    STOREU(ypw + (ob + o) * Qr + q0 + v * (VW), acc[o][v]);                                    \
        }                                                                                                      \
    }                                                                                                          \
}

#define MG_S_LOAD(p) (*(p))
#define MG_S_STORE(p, v) (*(p) = (v))
#define MG_S_SET1(a) (a)
MG_DCONV_TILES(mg_dconv_tiles_f32_scalar, float, float, 1, 4, 8, , MG_S_LOAD, MG_S_STORE, MG_S_SET1, 0.0f, fmaf)
MG_DCONV_TILES(mg_dconv_tiles_f64_scalar, double, double, 1, 4, 4, , MG_S_LOAD, MG_S_STORE, MG_S_SET1, 0.0, fma)
#if MG_DCONV_X86
#define MG_FMA512(a, b, c) _mm512_fmadd_ps(a, b, c)
#define MG_FMA512D(a, b, c) _mm512_fmadd_pd(a, b, c)
#define MG_FMA256(a, b, c) _mm256_fmadd_ps(a, b, c)
#define MG_FMA256D(a, b, c) _mm256_fmadd_pd(a, b, c)
MG_DCONV_TILES(mg_dconv_tiles_f32_avx512, float, __m512, 16, 8, 3, __attribute__((target("avx512f"))),
               _mm512_loadu_ps, _mm512_storeu_ps, _mm512_set1_ps, _mm512_setzero_ps(), MG_FMA512)
MG_DCONV_TILES(mg_dconv_tiles_f64_avx512, double, __m512d, 8, 8, 3, __attribute__((target("avx512f"))),
               _mm512_loadu_pd, _mm512_storeu_pd, _mm512_set1_pd, _mm512_setzero_pd(), MG_FMA512D)
MG_DCONV_TILES(mg_dconv_tiles_f32_avx2, float, __m256, 8, 4, 3, __attribute__((target("avx2,fma"))),
               _mm256_loadu_ps, _mm256_storeu_ps, _mm256_set1_ps, _mm256_setzero_ps(), MG_FMA256)
MG_DCONV_TILES(mg_dconv_tiles_f64_avx2, double, __m256d, 4, 4, 3, __attribute__((target("avx2,fma"))),
               _mm256_loadu_pd, _mm256_storeu_pd, _mm256_set1_pd, _mm256_setzero_pd(), MG_FMA256D)
#endif

/* Sizes of one thread's scratch for a conv2d_direct call: xp (elements) and ypw (elements). */
static inline ptrdiff_t mg_dconv_xp_len(ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw,
                                        ptrdiff_t ph, ptrdiff_t pw, int f32) {
    ptrdiff_t Hp = H + 2 * ph, Wp = W + 2 * pw, OH = Hp - kh + 1;
    ptrdiff_t Qr = mg_round_up(OH * Wp, mg_dconv_pb(f32));
    /* the last channel's last tile reads up to Qr - 1 + (kh - 1)*Wp + kw - 1 past its plane's start */
    ptrdiff_t last = Qr + (kh - 1) * Wp + kw - 1;
    return (C - 1) * Hp * Wp + (last > Hp * Wp ? last : Hp * Wp);
}
static inline ptrdiff_t mg_dconv_ypw_len(ptrdiff_t O, ptrdiff_t H, ptrdiff_t W, ptrdiff_t kh, ptrdiff_t ph,
                                         ptrdiff_t pw, int f32) {
    ptrdiff_t Wp = W + 2 * pw, OH = H + 2 * ph - kh + 1;
    return mg_round_up(O, mg_dconv_ob()) * mg_round_up(OH * Wp, mg_dconv_pb(f32));
}

/* wpk (Obr/OB, K, OB) from weight (O, K); zero past O. Once per call. */
#define MG_DCONV_PACK(NAME, T)                                                                                 \
static void NAME(T* wpk, const T* weight, ptrdiff_t O, ptrdiff_t K) {                                          \
    ptrdiff_t OB = mg_dconv_ob(), Obr = mg_round_up(O, OB);                                                    \
    for (ptrdiff_t ob = 0; ob < Obr; ob += OB)                                                                 \
        for (ptrdiff_t k = 0; k < K; k++)                                                                      \
            for (ptrdiff_t o = 0; o < OB; o++)                                                                 \
                wpk[ob * K + k * OB + o] = ob + o < O ? weight[(ob + o) * K + k] : (T)0;           \
}
MG_DCONV_PACK(mg_dconv_pack_f32, float)
MG_DCONV_PACK(mg_dconv_pack_f64, double)

/* y[n] (O, OH, OW) from x[n] (C, H, W): pad into xp, the tiles into ypw, then the valid columns into y.
   xp, ypw: this thread's scratch of mg_dconv_xp_len and mg_dconv_ypw_len elements. */
#define MG_DCONV_SAMPLE(NAME, T, SFX)                                                                          \
static void NAME(T* y, const T* x, const T* wpk, T* xp, T* ypw, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,           \
                 ptrdiff_t O, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t ph, ptrdiff_t pw) {                          \
    ptrdiff_t Hp = H + 2 * ph, Wp = W + 2 * pw, OH = Hp - kh + 1, OW = Wp - kw + 1, CS = Hp * Wp;                \
    ptrdiff_t Obr = mg_round_up(O, mg_dconv_ob()), Qr = mg_round_up(OH * Wp, mg_dconv_pb(sizeof(T) == 4));       \
    memset(xp, 0, mg_dconv_xp_len(C, H, W, kh, kw, ph, pw, sizeof(T) == 4) * sizeof(T));                        \
    for (ptrdiff_t c = 0; c < C; c++)                                                                          \
        for (ptrdiff_t h = 0; h < H; h++)                                                                      \
            memcpy(xp + c * CS + (h + ph) * Wp + pw, x + (c * H + h) * W, W * sizeof(T));                      \
    switch (mg_dconv_isa) {                                                                                    \
    MG_DCONV_CASES_##SFX                                                                                       \
    default: mg_dconv_tiles_##SFX##_scalar(ypw, xp, wpk, C, kh, kw, CS, Wp, Obr, Qr);                          \
    }                                                                                                          \
    for (ptrdiff_t o = 0; o < O; o++)                                                                          \
        for (ptrdiff_t oh = 0; oh < OH; oh++)                                                                  \
            memcpy(y + (o * OH + oh) * OW, ypw + o * Qr + oh * Wp, OW * sizeof(T));                            \
}
#if MG_DCONV_X86
#define MG_DCONV_CASES_f32                                                                                     \
    case 2: mg_dconv_tiles_f32_avx512(ypw, xp, wpk, C, kh, kw, CS, Wp, Obr, Qr); break;                        \
    case 1: mg_dconv_tiles_f32_avx2(ypw, xp, wpk, C, kh, kw, CS, Wp, Obr, Qr); break;
#define MG_DCONV_CASES_f64                                                                                     \
    case 2: mg_dconv_tiles_f64_avx512(ypw, xp, wpk, C, kh, kw, CS, Wp, Obr, Qr); break;                        \
    case 1: mg_dconv_tiles_f64_avx2(ypw, xp, wpk, C, kh, kw, CS, Wp, Obr, Qr); break;
#else
#define MG_DCONV_CASES_f32
#define MG_DCONV_CASES_f64
#endif
MG_DCONV_SAMPLE(mg_dconv_sample_f32, float, f32)
MG_DCONV_SAMPLE(mg_dconv_sample_f64, double, f64)

/* ---------------------------------------------------------------------------------------------------------------
   Weight gradient of the same convolution, over a chunk of S samples (S fixed by the caller from the geometry
   alone, never from the thread count):
       part[o, (c, i, j)] = sum over samples s, then (oh, ow), of dy[s, o, oh, ow] * xp[s, c*CS + (oh + i)*Wp + ow + j]
   over the valid positions only (a row's last chunk masked: no garbage column is read, so an inf in x reaches only
   the entries whose sums hold it). The caller adds the chunks' parts in chunk order.
   The micro-kernel holds an OB x TB tile (OB output channels x TB taps) of LW-lane partial sums in registers and
   runs over the chunk's positions: OB loads of dy, TB loads of x, OB*TB fused multiply-adds; at the end each
   entry's LW lanes are added in lane order. The chunk (its padded x and its dy) stays in L2 while every tile runs
   over it; one tile per sample instead spent as much in the lane sums as in the products (8x8 planes).
   NOTE: LW is 16 (float) or 8 (double) lanes in every variant (AVX-512: one register; the scalar fma() variant: LW
   scalars), so that the sums are the same bits whichever runs. There is no AVX2 variant: conv2d keeps the im2col
   weight gradient where AVX-512 is missing. */
#define MG_DCONV_WG_OB 4
#define MG_DCONV_WG_TB 6

#define MG_DCONV_WG(NAME, T, V, LW, ATTR, MASKLOAD, FMA, STOREU, ZERO, MASKT)                                     \
ATTR static void NAME(T* part, const T* dy, const T* xp, ptrdiff_t S, ptrdiff_t O, ptrdiff_t C, ptrdiff_t kh,    \
                      ptrdiff_t kw, ptrdiff_t CS, ptrdiff_t Wp, ptrdiff_t OH, ptrdiff_t OW) {                  \
    const ptrdiff_t K = C * kh * kw, L = OH * OW;                                                              \
    for (ptrdiff_t t0 = 0; t0 < K; t0 += MG_DCONV_WG_TB) {                                                     \
        ptrdiff_t off[MG_DCONV_WG_TB];                                                                         \
        for (int t = 0; t < MG_DCONV_WG_TB; t++) {                                                             \
            ptrdiff_t k = t0 + t < K ? t0 + t : K - 1; /* past K: a repeat, not stored */                      \
            ptrdiff_t c = k / (kh * kw), i = k / kw % kh, j = k % kw;                                          \
            off[t] = c * CS + i * Wp + j;                                                                      \
        }                                                                                                      \
        for (ptrdiff_t ob = 0; ob < O; ob += MG_DCONV_WG_OB) {                                                 \
            V acc[MG_DCONV_WG_OB][MG_DCONV_WG_TB];                                                             \
            for (int o = 0; o < MG_DCONV_WG_OB; o++)                                                           \
                for (int t = 0; t < MG_DCONV_WG_TB; t++)                                                       \
                    acc[o][t] = ZERO;                                                                          \
            for (ptrdiff_t s = 0; s < S; s++) {                                                                \
                const T* d[MG_DCONV_WG_OB];                                                                    \
                const T* xs = xp + s * C * CS;                                                                 \
                for (int o = 0; o < MG_DCONV_WG_OB; o++) /* past O: a repeat, not stored */                    \
                    d[o] = dy + (s * O + (ob + o < O ? ob + o : O - 1)) * L;                                   \
                for (ptrdiff_t oh = 0; oh < OH; oh++) {                                                        \
                    for (ptrdiff_t ow = 0; ow < OW; ow += (LW)) {                                              \
                        MASKT m = MG_DCONV_MASK_##MASKT(OW - ow);                                              \
                        V dv[MG_DCONV_WG_OB];                                                                  \
                        for (int o = 0; o < MG_DCONV_WG_OB; o++)                                               \
                            dv[o] = MASKLOAD(m, d[o] + oh * OW + ow);                                          \
                        for (int t = 0; t < MG_DCONV_WG_TB; t++) {                                             \
                            V xv = MASKLOAD(m, xs + off[t] + oh * Wp + ow);                                    \
                            for (int o = 0; o < MG_DCONV_WG_OB; o++)                                           \
                                acc[o][t] = FMA(dv[o], xv, acc[o][t]);                                         \
                        }                                                                                      \
                    }                                                                                          \
                }                                                                                              \
            }                                                                                                  \
            /* NOTE: every tile stored first, under constant bounds: a conditional loop over acc kept it in memory */ \
            T lanes[MG_DCONV_WG_OB][MG_DCONV_WG_TB][LW];                                                       \
            for (int o = 0; o < MG_DCONV_WG_OB; o++)                                                           \
                for (int t = 0; t < MG_DCONV_WG_TB; t++)                                                       \
                    STOREU(lanes[o][t], acc[o][t]);                                                            \
            for (int o = 0; o < MG_DCONV_WG_OB && ob + o < O; o++)                                             \
                for (int t = 0; t < MG_DCONV_WG_TB && t0 + t < K; t++) {                                       \
                    T sum = lanes[o][t][0];                                                                    \
                    for (int l = 1; l < (LW); l++)                                                             \
                        sum += lanes[o][t][l];                                                                 \
                    part[(ob + o) * K + t0 + t] = sum;                                                         \
                }                                                                                              \
        }                                                                                                      \
    }                                                                                                          \
}

/* the scalar variant's "vector": LW lanes in a struct, each op lane by lane with fma() */
typedef struct { float v[16]; } mg_lanes_f32;
typedef struct { double v[8]; } mg_lanes_f64;
#define MG_DCONV_MASK_ptrdiff_t(n) (n)
#define MG_LANES_OPS(SFX, T, LW, FMAF)                                                                         \
static inline mg_lanes_##SFX mg_lanes_load_##SFX(ptrdiff_t m, const T* p) {                                    \
    mg_lanes_##SFX r;                                                                                          \
    for (int l = 0; l < (LW); l++)                                                                             \
        r.v[l] = l < m ? p[l] : (T)0;                                                                          \
    return r;                                                                                                  \
}                                                                                                              \
static inline mg_lanes_##SFX mg_lanes_fma_##SFX(mg_lanes_##SFX a, mg_lanes_##SFX b, mg_lanes_##SFX c) {        \
    for (int l = 0; l < (LW); l++)                                                                             \
        c.v[l] = FMAF(a.v[l], b.v[l], c.v[l]);                                                                 \
    return c;                                                                                                  \
}                                                                                                              \
static inline void mg_lanes_store_##SFX(T* p, mg_lanes_##SFX a) { memcpy(p, a.v, sizeof(a.v)); }
MG_LANES_OPS(f32, float, 16, fmaf)
MG_LANES_OPS(f64, double, 8, fma)
static const mg_lanes_f32 mg_lanes_zero_f32 = {{0}};
static const mg_lanes_f64 mg_lanes_zero_f64 = {{0}};
MG_DCONV_WG(mg_dconv_wg_f32_scalar, float, mg_lanes_f32, 16, , mg_lanes_load_f32, mg_lanes_fma_f32,
            mg_lanes_store_f32, mg_lanes_zero_f32, ptrdiff_t)
MG_DCONV_WG(mg_dconv_wg_f64_scalar, double, mg_lanes_f64, 8, , mg_lanes_load_f64, mg_lanes_fma_f64,
            mg_lanes_store_f64, mg_lanes_zero_f64, ptrdiff_t)
#if MG_DCONV_X86
#define MG_DCONV_MASK___mmask16(n) ((__mmask16)((n) >= 16 ? 0xFFFF : (1u << (n)) - 1))
#define MG_DCONV_MASK___mmask8(n) ((__mmask8)((n) >= 8 ? 0xFF : (1u << (n)) - 1))
MG_DCONV_WG(mg_dconv_wg_f32_avx512, float, __m512, 16, __attribute__((target("avx512f"))), _mm512_maskz_loadu_ps,
            MG_FMA512, _mm512_storeu_ps, _mm512_setzero_ps(), __mmask16)
MG_DCONV_WG(mg_dconv_wg_f64_avx512, double, __m512d, 8, __attribute__((target("avx512f"))), _mm512_maskz_loadu_pd,
            MG_FMA512D, _mm512_storeu_pd, _mm512_setzero_pd(), __mmask8)
#endif

/* part (O, K) of a chunk of S samples x (S, C, H, W), dy (S, O, OH, OW); xp: scratch of S*C*Hp*Wp elements */
#define MG_DCONV_WG_CHUNK(NAME, T, SFX)                                                                        \
static void NAME(T* part, const T* x, const T* dy, T* xp, ptrdiff_t S, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,    \
                 ptrdiff_t O, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t ph, ptrdiff_t pw) {                          \
    ptrdiff_t Hp = H + 2 * ph, Wp = W + 2 * pw, OH = Hp - kh + 1, OW = Wp - kw + 1, CS = Hp * Wp;                \
    memset(xp, 0, S * C * CS * sizeof(T));                                                                     \
    for (ptrdiff_t c = 0; c < S * C; c++)                                                                      \
        for (ptrdiff_t h = 0; h < H; h++)                                                                      \
            memcpy(xp + c * CS + (h + ph) * Wp + pw, x + (c * H + h) * W, W * sizeof(T));                      \
    if (MG_DCONV_X86 && mg_dconv_isa == 2)                                                                     \
        MG_DCONV_WG_AVX512_##SFX(part, dy, xp, S, O, C, kh, kw, CS, Wp, OH, OW);                               \
    else                                                                                                       \
        mg_dconv_wg_##SFX##_scalar(part, dy, xp, S, O, C, kh, kw, CS, Wp, OH, OW);                             \
}
#if MG_DCONV_X86
#define MG_DCONV_WG_AVX512_f32 mg_dconv_wg_f32_avx512
#define MG_DCONV_WG_AVX512_f64 mg_dconv_wg_f64_avx512
#else
#define MG_DCONV_WG_AVX512_f32 mg_dconv_wg_f32_scalar
#define MG_DCONV_WG_AVX512_f64 mg_dconv_wg_f64_scalar
#endif
MG_DCONV_WG_CHUNK(mg_dconv_wg_chunk_f32, float, f32)
MG_DCONV_WG_CHUNK(mg_dconv_wg_chunk_f64, double, f64)

#endif
