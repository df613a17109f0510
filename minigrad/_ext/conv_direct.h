/* Direct convolution at unit stride and dilation ("padded-width implicit GEMM"), one sample at a time.
   The math: minigrad/kernels/reference/conv.py (conv2d_direct). Included by conv.pyx.

   Legend: C input channels, O output channels, H, W input size, (ph, pw) padding, kh, kw window,
   Hp = H + 2*ph, Wp = W + 2*pw the padded size, OH = Hp - kh + 1, OW = Wp - kw + 1, K = C*kh*kw.

   The sample is copied, zero padded, into xp (C planes of Hp*Wp, channel stride CS = Hp*Wp). The output is computed
   over the padded width: flat positions q = oh*Wp + ow for ow in [0, Wp), so that for tap (i, j) the input of every
   q is the contiguous run xp[c*CS + i*Wp + j + q]:
       ypw[o, q] = sum over (c, i, j) of weight[o, c, i, j] * xp[c*CS + q + i*Wp + j]
   The last kw - 1 columns of each row are garbage (they read the next row) and are dropped when y is written; a
   valid q never reads outside its channel's plane. No im2col matrix is built. (AVX-512 on narrow "same" planes,
   OW == W <= 16, and AVX2 on those up to 8 wide: rows without the padding columns and masked loads instead,
   MG_DCONV_MTILES, MG_DCONV_MTILES256; elsewhere AVX-512's tiles
   store their valid lanes straight into y, MG_DCONV_CTILES; the same sums.)
   The micro-kernel holds an OB x PB tile of ypw (OB output channels, PB = PV vectors of positions) in registers
   and runs over (c, i, j): one load of PV vectors of x, OB broadcast weights, OB*PV fused multiply-adds.
   NOTE: every output is one chain acc = fma(w, x, acc) from 0 in (c, i, j) order, in every variant (AVX-512,
   AVX2+FMA, the scalar fma() of the baseline): the same bits whichever the CPU runs, and for any thread count. The
   tile sizes differ per variant (registers: 32 zmm, 16 ymm), which changes no sum. */
#ifndef MG_CONV_DIRECT_H
#define MG_CONV_DIRECT_H
#include <math.h>
#include <stddef.h>
#include <stdint.h>
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
/* the AVX-512 tile, 8 channels x 3 vectors: of 8x3, 6x4, 12x2, 4x6 and 16x1 the fastest on ResNet-20's layers
   (docs/perf/conv.md); -D both to measure another */
#ifndef MG_DCONV_OB512
#define MG_DCONV_OB512 8
#define MG_DCONV_PV512 3
#endif
/* the AVX2 tile, 4 channels x 3 vectors (12 of the 16 ymm registers accumulate) */
#ifndef MG_DCONV_OB256
#define MG_DCONV_OB256 4
#define MG_DCONV_PV256 3
#endif
static inline ptrdiff_t mg_dconv_ob(void) {
    return mg_dconv_isa > 0 ? (mg_dconv_isa == 2 ? MG_DCONV_OB512 : MG_DCONV_OB256) : 4;
}
static inline ptrdiff_t mg_dconv_pb(int f32) {
    /* PV vectors of VW lanes: 3 x 16 / 3 x 8 (AVX-512), 3 x 8 / 3 x 4 (AVX2), 8 / 4 scalars */
    if (mg_dconv_isa == 2)
        return f32 ? 16 * MG_DCONV_PV512 : 8 * MG_DCONV_PV512;
    if (mg_dconv_isa == 1)
        return f32 ? 8 * MG_DCONV_PV256 : 4 * MG_DCONV_PV256;
    return f32 ? 8 : 4;
}
static inline ptrdiff_t mg_round_up(ptrdiff_t a, ptrdiff_t b) { return (a + b - 1) / b * b; }

/* The tiles' shared steps, over acc[OB][PV] (vectors V) and w (the packed weights of the tile's OB channels, OB a
   tap): MG_TILE_ZERO: acc = 0. MG_TILE_TAP: one tap, PV vectors of the input (LOADV: an expression in v), OB
   broadcast weights, OB*PV fused multiply-adds. MG_TILE_STORE: acc into out (rows Qr apart, row ob + o) at q0.
   MG_DCONV_TAPS: the taps in (c, i, j) order, xr (XR: an expression in c and i) the input run of tap (c, i, 0). */
#define MG_TILE_ZERO(OB, PV, ZERO)                                                                                    \
    for (int o = 0; o < (OB); o++)                                                                                    \
        for (int v = 0; v < (PV); v++)                                                                                \
            acc[o][v] = ZERO;
#define MG_TILE_TAP(V, OB, PV, LOADV, SET1, FMA)                                                                      \
    {                                                                                                                 \
        V xv[PV];                                                                                                     \
        for (int v = 0; v < (PV); v++)                                                                                \
            xv[v] = LOADV;                                                                                            \
        for (int o = 0; o < (OB); o++) {                                                                              \
            V wv = SET1(w[o]);                                                                                        \
            for (int v = 0; v < (PV); v++)                                                                            \
                acc[o][v] = FMA(wv, xv[v], acc[o][v]);                                                                \
        }                                                                                                             \
    }
#define MG_TILE_STORE(OB, PV, VW, STOREU, out, Qr)                                                                    \
    for (int o = 0; o < (OB); o++)                                                                                    \
        for (int v = 0; v < (PV); v++)                                                                                \
            STOREU((out) + (ob + o) * (Qr) + q0 + v * (VW), acc[o][v]);
#define MG_DCONV_TAPS(T, V, OB, PV, XR, LOADV, SET1, FMA)                                                             \
    for (ptrdiff_t c = 0; c < C; c++) {                                                                               \
        for (ptrdiff_t i = 0; i < kh; i++) {                                                                          \
            const T* xr = XR;                                                                                         \
            for (ptrdiff_t j = 0; j < kw; j++, w += (OB))                                                             \
                MG_TILE_TAP(V, OB, PV, LOADV, SET1, FMA)                                                              \
        }                                                                                                             \
    }
/* One variant's tile loop over nt tiles of PV vectors from position q_begin. ypw: (Obr, Qr) with Obr = O rounded
   up to OB, Qr = OH*Wp rounded up to PB; wpk: the weight packed (Obr/OB, K, OB), zero rows past O; xp: the padded
   sample, long enough for the reads of a tile ending at Qr. */
#define MG_DCONV_TILES(NAME, T, V, VW, OB, PV, ATTR, LOADU, STOREU, SET1, ZERO, FMA)                                  \
ATTR static void NAME(T* ypw, const T* xp, const T* wpk, ptrdiff_t C, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t CS,       \
                      ptrdiff_t Wp, ptrdiff_t Obr, ptrdiff_t Qr, ptrdiff_t q_begin, ptrdiff_t nt) {                   \
    const ptrdiff_t K = C * kh * kw;                                                                                  \
    for (ptrdiff_t q0 = q_begin; q0 < q_begin + nt * (PV) * (VW); q0 += (PV) * (VW)) {                                \
        for (ptrdiff_t ob = 0; ob < Obr; ob += (OB)) {                                                                \
            V acc[OB][PV];                                                                                            \
            MG_TILE_ZERO(OB, PV, ZERO)                                                                                \
            const T* w = wpk + ob * K;                                                                                \
            MG_DCONV_TAPS(T, V, OB, PV, xp + c * CS + i * Wp + q0, LOADU(xr + j + v * (VW)), SET1, FMA)               \
            MG_TILE_STORE(OB, PV, VW, STOREU, ypw, Qr)                                                                \
        }                                                                                                             \
    }                                                                                                                 \
}

#define MG_S_LOAD(p) (*(p))
#define MG_S_STORE(p, v) (*(p) = (v))
#define MG_S_SET1(a) (a)
/* each variant with its tile (NAME) and the tiles of 2 and 1 vectors (NAME_pv2, NAME_pv1) for the positions past
   the last whole tile (mg_dconv_run); TILES: MG_DCONV_TILES, or conv_strided.h's MG_SCONV_TILES */
#define MG_TILES3(TILES, NAME, T, V, VW, OB, PV, ATTR, LOADU, STOREU, SET1, ZERO, FMA)                                \
    TILES(NAME, T, V, VW, OB, PV, ATTR, LOADU, STOREU, SET1, ZERO, FMA)                                               \
    TILES(NAME##_pv2, T, V, VW, OB, 2, ATTR, LOADU, STOREU, SET1, ZERO, FMA)                                          \
    TILES(NAME##_pv1, T, V, VW, OB, 1, ATTR, LOADU, STOREU, SET1, ZERO, FMA)
/* the variants' tiles, PREFIX_f32_scalar ... PREFIX_f64_avx2 (MG_TILES_X86 below): one list of tile sizes and
   intrinsics for conv_direct.h's and conv_strided.h's, so that one weight packing (mg_dconv_ob) serves both */
#define MG_TILES_SCALAR(TILES, PREFIX)                                                                                \
    MG_TILES3(TILES, PREFIX##_f32_scalar, float, float, 1, 4, 8, , MG_S_LOAD, MG_S_STORE, MG_S_SET1, 0.0f, fmaf)      \
    MG_TILES3(TILES, PREFIX##_f64_scalar, double, double, 1, 4, 4, , MG_S_LOAD, MG_S_STORE, MG_S_SET1, 0.0, fma)
MG_TILES_SCALAR(MG_DCONV_TILES, mg_dconv_tiles)
#if MG_DCONV_X86
#define MG_FMA512(a, b, c) _mm512_fmadd_ps(a, b, c)
#define MG_FMA512D(a, b, c) _mm512_fmadd_pd(a, b, c)
#define MG_FMA256(a, b, c) _mm256_fmadd_ps(a, b, c)
#define MG_FMA256D(a, b, c) _mm256_fmadd_pd(a, b, c)
#define MG_AVX512 __attribute__((target("avx512f")))
#define MG_TILES_X86(TILES, PREFIX)                                                                                   \
    MG_TILES3(TILES, PREFIX##_f32_avx512, float, __m512, 16, MG_DCONV_OB512, MG_DCONV_PV512, MG_AVX512,               \
              _mm512_loadu_ps, _mm512_storeu_ps, _mm512_set1_ps, _mm512_setzero_ps(), MG_FMA512)                      \
    MG_TILES3(TILES, PREFIX##_f64_avx512, double, __m512d, 8, MG_DCONV_OB512, MG_DCONV_PV512, MG_AVX512,              \
              _mm512_loadu_pd, _mm512_storeu_pd, _mm512_set1_pd, _mm512_setzero_pd(), MG_FMA512D)                     \
    MG_TILES3(TILES, PREFIX##_f32_avx2, float, __m256, 8, MG_DCONV_OB256, MG_DCONV_PV256,                             \
              __attribute__((target("avx2,fma"))),                                                                    \
              _mm256_loadu_ps, _mm256_storeu_ps, _mm256_set1_ps, _mm256_setzero_ps(), MG_FMA256)                      \
    MG_TILES3(TILES, PREFIX##_f64_avx2, double, __m256d, 4, MG_DCONV_OB256, MG_DCONV_PV256,                           \
              __attribute__((target("avx2,fma"))),                                                                    \
              _mm256_loadu_pd, _mm256_storeu_pd, _mm256_set1_pd, _mm256_setzero_pd(), MG_FMA256D)
MG_TILES_X86(MG_DCONV_TILES, mg_dconv_tiles)
#endif

#if MG_DCONV_X86
/* AVX-512, "same" convolutions (OW == W) on narrow planes: the rows of xp unpadded (width W, only the kh - 1 padding
   rows; xm, channel stride CS = Hp*W), positions q = oh*W + ow with no garbage columns, and each tap's run read with
   a masked load: a lane whose input column ow + j - pw falls outside [0, W), or whose q is past L = OH*W, loads 0
   instead, which is what the padded width reads there. So every valid output is the same fma chain as in the
   padded-width tiles (the same bits), without the 2*pw columns a row computed for nothing (ResNet-20's 8x8 layers:
   64 positions a sample, not 80). The masks are formed once a tile; kw <= MG_DCONV_KWMAX. */
#define MG_DCONV_KWMAX 7
/* the masked tiles' blocks of OB channels at q0, each tap's runs read with LOADV (xr: the tap's row), into ypw */
#define MG_MTILES_OB(T, V, VW, OB, PV, LOADV, STOREU, SET1, ZERO, FMA)                                                \
    for (ptrdiff_t ob = 0; ob < Obr; ob += (OB)) {                                                                    \
        V acc[OB][PV];                                                                                                \
        MG_TILE_ZERO(OB, PV, ZERO)                                                                                    \
        const T* w = wpk + ob * K;                                                                                    \
        MG_DCONV_TAPS(T, V, OB, PV, xm + c * CS + i * W + q0 - pw, LOADV, SET1, FMA)                                  \
        MG_TILE_STORE(OB, PV, VW, STOREU, ypw, Qr)                                                                    \
    }
#define MG_DCONV_MTILES(NAME, T, V, M, VW, OB, PV, PER, LOADM, STOREU, SET1, ZERO, FMA)                               \
MG_AVX512 static void NAME(T* ypw, const T* xm, const T* wpk, ptrdiff_t C, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t CS,  \
                           ptrdiff_t W, ptrdiff_t pw, ptrdiff_t L, ptrdiff_t Obr, ptrdiff_t Qr, ptrdiff_t q_begin,    \
                           ptrdiff_t nt) {                                                                            \
    const ptrdiff_t K = C * kh * kw;                                                                                  \
    for (ptrdiff_t q0 = q_begin; q0 < q_begin + nt * (PV) * (VW); q0 += (PV) * (VW)) {                                \
        M msk[MG_DCONV_KWMAX][PV];                                                                                    \
        for (ptrdiff_t j = 0; j < kw; j++)                                                                            \
            for (int v = 0; v < (PV); v++) {                                                                          \
                M m = 0;                                                                                              \
                for (int l = 0; l < (VW); l++) {                                                                      \
                    ptrdiff_t q = q0 + v * (VW) + l, col = q % W + j - pw;                                            \
                    if (q < L && col >= 0 && col < W)                                                                 \
                        m |= (M)((M)1 << l);                                                                          \
                }                                                                                                     \
                msk[j][v] = m;                                                                                        \
            }                                                                                                         \
        MG_MTILES_OB(T, V, VW, OB, PV, LOADM(msk[j][(PER) ? 0 : v], xr + j + v * (VW)), STOREU, SET1, ZERO, FMA)     \
    }                                                                                                                 \
}
/* PER: the masks the same for every vector (W divides VW and L is whole vectors): kw masks, which stay in the mask
   registers, not kw*PV reloaded at each tap */
#define MG_DCONV_MTILES3(TILES, NAME, T, V, M, VW, OB, PV, LOADM, STOREU, SET1, ZERO, FMA)                          \
    TILES(NAME, T, V, M, VW, OB, PV, 0, LOADM, STOREU, SET1, ZERO, FMA)                                               \
    TILES(NAME##_pv2, T, V, M, VW, OB, 2, 0, LOADM, STOREU, SET1, ZERO, FMA)                                          \
    TILES(NAME##_pv1, T, V, M, VW, OB, 1, 0, LOADM, STOREU, SET1, ZERO, FMA)                                          \
    TILES(NAME##_per, T, V, M, VW, OB, PV, 1, LOADM, STOREU, SET1, ZERO, FMA)                                         \
    TILES(NAME##_per_pv2, T, V, M, VW, OB, 2, 1, LOADM, STOREU, SET1, ZERO, FMA)                                      \
    TILES(NAME##_per_pv1, T, V, M, VW, OB, 1, 1, LOADM, STOREU, SET1, ZERO, FMA)
MG_DCONV_MTILES3(MG_DCONV_MTILES, mg_dconv_mtiles_f32_avx512, float, __m512, __mmask16, 16, MG_DCONV_OB512,
                 MG_DCONV_PV512, _mm512_maskz_loadu_ps, _mm512_storeu_ps, _mm512_set1_ps, _mm512_setzero_ps(), MG_FMA512)
MG_DCONV_MTILES3(MG_DCONV_MTILES, mg_dconv_mtiles_f64_avx512, double, __m512d, __mmask8, 8, MG_DCONV_OB512,
                 MG_DCONV_PV512, _mm512_maskz_loadu_pd, _mm512_storeu_pd, _mm512_set1_pd, _mm512_setzero_pd(),
                 MG_FMA512D)
/* AVX2, MG_DCONV_MTILES' twin: the lane masks (MI lanes of all ones where a lane loads) formed once a tile with
   one division a vector, each tap's run read with _mm256_maskload (PER: the masks of vector 0 for every vector) */
#define MG_LANES256(a) _mm256_loadu_si256((const __m256i*)(a))
#define MG_DCONV_MTILES256(NAME, T, V, MI, VW, OB, PV, PER, LOADM, STOREU, SET1, ZERO, FMA)                           \
__attribute__((target("avx2,fma"))) static void NAME(T* ypw, const T* xm, const T* wpk, ptrdiff_t C, ptrdiff_t kh,   \
                                                     ptrdiff_t kw, ptrdiff_t CS, ptrdiff_t W, ptrdiff_t pw,           \
                                                     ptrdiff_t L, ptrdiff_t Obr, ptrdiff_t Qr, ptrdiff_t q_begin,     \
                                                     ptrdiff_t nt) {                                                  \
    const ptrdiff_t K = C * kh * kw;                                                                                  \
    for (ptrdiff_t q0 = q_begin; q0 < q_begin + nt * (PV) * (VW); q0 += (PV) * (VW)) {                                \
        MI msk[MG_DCONV_KWMAX][PV][VW];                                                                               \
        for (int v = 0; v < (PV); v++) {                                                                              \
            ptrdiff_t qs = q0 + v * (VW), ow = qs % W;                                                                \
            for (int l = 0; l < (VW); l++, ow = ow + 1 == W ? 0 : ow + 1)                                             \
                for (ptrdiff_t j = 0; j < kw; j++) {                                                                  \
                    ptrdiff_t col = ow + j - pw;                                                                      \
                    msk[j][v][l] = qs + l < L && col >= 0 && col < W ? -1 : 0;                                        \
                }                                                                                                     \
        }                                                                                                             \
        MG_MTILES_OB(T, V, VW, OB, PV, LOADM(xr + j + v * (VW), MG_LANES256(msk[j][(PER) ? 0 : v])), STOREU, SET1,    \
                     ZERO, FMA)                                                                                       \
    }                                                                                                                 \
}
MG_DCONV_MTILES3(MG_DCONV_MTILES256, mg_dconv_mtiles_f32_avx2, float, __m256, int32_t, 8, MG_DCONV_OB256,
                 MG_DCONV_PV256, _mm256_maskload_ps, _mm256_storeu_ps, _mm256_set1_ps, _mm256_setzero_ps(), MG_FMA256)
MG_DCONV_MTILES3(MG_DCONV_MTILES256, mg_dconv_mtiles_f64_avx2, double, __m256d, int64_t, 4, MG_DCONV_OB256,
                 MG_DCONV_PV256, _mm256_maskload_pd, _mm256_storeu_pd, _mm256_set1_pd, _mm256_setzero_pd(),
                 MG_FMA256D)
/* AVX-512, the padded-width tiles storing straight into y: a vector's valid lanes (q % Wp < OW, q < Qn) are
   consecutive outputs of y (the garbage columns are the only gaps), so they are compressed to the front of the vector
   and stored under a prefix mask at y[o, valid positions before the vector]: no ypw, no copy of each row into y. */
#define MG_DCONV_CTILES(NAME, T, V, M, VW, OB, PV, LOADU, SET1, ZERO, FMA, COMPRESS, MSTORE)                          \
MG_AVX512 static void NAME(T* y, const T* xp, const T* wpk, ptrdiff_t C, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t CS,    \
                           ptrdiff_t Wp, ptrdiff_t O, ptrdiff_t OW, ptrdiff_t L, ptrdiff_t Qn, ptrdiff_t q_begin,     \
                           ptrdiff_t nt) {                                                                            \
    const ptrdiff_t K = C * kh * kw, Obr = mg_round_up(O, (OB));                                                      \
    for (ptrdiff_t q0 = q_begin; q0 < q_begin + nt * (PV) * (VW); q0 += (PV) * (VW)) {                                \
        M msk[PV], pre[PV];                                                                                           \
        ptrdiff_t dst[PV];                                                                                            \
        for (int v = 0; v < (PV); v++) {                                                                              \
            ptrdiff_t qs = q0 + v * (VW);                                                                             \
            M m = 0;                                                                                                  \
            int n = 0;                                                                                                \
            for (int l = 0; l < (VW); l++)                                                                            \
                if (qs + l < Qn && (qs + l) % Wp < OW) {                                                              \
                    m |= (M)((M)1 << l);                                                                              \
                    n++;                                                                                              \
                }                                                                                                     \
            msk[v] = m;                                                                                               \
            pre[v] = (M)(((unsigned)1 << n) - 1);                                                                     \
            dst[v] = qs / Wp * OW + (qs % Wp < OW ? qs % Wp : OW);                                                    \
        }                                                                                                             \
        for (ptrdiff_t ob = 0; ob < Obr; ob += (OB)) {                                                                \
            V acc[OB][PV];                                                                                            \
            MG_TILE_ZERO(OB, PV, ZERO)                                                                                \
            const T* w = wpk + ob * K;                                                                                \
            MG_DCONV_TAPS(T, V, OB, PV, xp + c * CS + i * Wp + q0, LOADU(xr + j + v * (VW)), SET1, FMA)               \
            for (int o = 0; o < (OB); o++)                                                                            \
                if (ob + o < O)                                                                                       \
                    for (int v = 0; v < (PV); v++)                                                                    \
                        MSTORE(y + (ob + o) * L + dst[v], pre[v], COMPRESS(msk[v], acc[o][v]));                       \
        }                                                                                                             \
    }                                                                                                                 \
}
#define MG_DCONV_CTILES3(NAME, T, V, M, VW, LOADU, SET1, ZERO, FMA, COMPRESS, MSTORE)                                 \
    MG_DCONV_CTILES(NAME, T, V, M, VW, MG_DCONV_OB512, MG_DCONV_PV512, LOADU, SET1, ZERO, FMA, COMPRESS, MSTORE)      \
    MG_DCONV_CTILES(NAME##_pv2, T, V, M, VW, MG_DCONV_OB512, 2, LOADU, SET1, ZERO, FMA, COMPRESS, MSTORE)             \
    MG_DCONV_CTILES(NAME##_pv1, T, V, M, VW, MG_DCONV_OB512, 1, LOADU, SET1, ZERO, FMA, COMPRESS, MSTORE)
MG_DCONV_CTILES3(mg_dconv_ctiles_f32_avx512, float, __m512, __mmask16, 16, _mm512_loadu_ps, _mm512_set1_ps,
                 _mm512_setzero_ps(), MG_FMA512, _mm512_maskz_compress_ps, _mm512_mask_storeu_ps)
MG_DCONV_CTILES3(mg_dconv_ctiles_f64_avx512, double, __m512d, __mmask8, 8, _mm512_loadu_pd, _mm512_set1_pd,
                 _mm512_setzero_pd(), MG_FMA512D, _mm512_maskz_compress_pd, _mm512_mask_storeu_pd)
#ifndef MG_DCONV_CSTORE
#define MG_DCONV_CSTORE 1
#endif
/* the masked path runs where OW == W, kw <= MG_DCONV_KWMAX and W <= MG_DCONV_MASKED_MAXW (-D to measure another) */
#ifndef MG_DCONV_MASKED_MAXW
#define MG_DCONV_MASKED_MAXW 16
#endif
#endif

/* The tiles of one variant (F, with VW lanes and PV vectors a tile) over the Qn positions a valid output needs,
   Qn = (OH - 1)*Wp + OW, in whole vectors: whole tiles, then the rest in tiles of 2 vectors and 1, rather than
   one more whole tile (ResNet-20's 8x8 layers: Qn = 78, 5 vectors of 16: one tile of 3 and one of 2, not 2 tiles
   of 3, whose last 16 positions were garbage). Positions past Qn in ypw are left unwritten and never read. */
#define mg_dconv_run(F, VW, PV)                                                                                       \
    do {                                                                                                              \
        ptrdiff_t nv_ = (Qn + (VW) - 1) / (VW), n3_ = nv_ / (PV), r_ = nv_ - n3_ * (PV), q_ = n3_ * (PV) * (VW);      \
        F(ypw, xp, wpk, C, kh, kw, CS, Wp, Obr, Qr, 0, n3_);                                                          \
        F##_pv2(ypw, xp, wpk, C, kh, kw, CS, Wp, Obr, Qr, q_, r_ / 2);                                                \
        F##_pv1(ypw, xp, wpk, C, kh, kw, CS, Wp, Obr, Qr, q_ + r_ / 2 * 2 * (VW), r_ % 2);                            \
    } while (0)

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
#define MG_DCONV_PACK(NAME, T)                                                                                        \
static void NAME(T* wpk, const T* weight, ptrdiff_t O, ptrdiff_t K) {                                                 \
    ptrdiff_t OB = mg_dconv_ob(), Obr = mg_round_up(O, OB);                                                           \
    for (ptrdiff_t ob = 0; ob < Obr; ob += OB)                                                                        \
        for (ptrdiff_t k = 0; k < K; k++)                                                                             \
            for (ptrdiff_t o = 0; o < OB; o++)                                                                        \
                wpk[ob * K + k * OB + o] = ob + o < O ? weight[(ob + o) * K + k] : (T)0;                              \
}
MG_DCONV_PACK(mg_dconv_pack_f32, float)
MG_DCONV_PACK(mg_dconv_pack_f64, double)

/* wpk as MG_DCONV_PACK's of wf (C, O*kh*kw), wf[c, (o, i, j)] = weight[o, (c, kh-1-i, kw-1-j)] (the flipped,
   transposed weight with which the input gradient is a unit-stride convolution of dy), without making wf; zero past
   C. Once per call, before the region (serial). NOTE: each (o, i, j)'s OB channels read through one pointer
   stepping by kh*kw, no index arithmetic per element (a loop over (c, o*kh*kw) with a division per column took
   a fifth to a quarter of a one-sample backward call at 64 -> 64, 3x3: docs/perf/threads.md, session 32). */
#define MG_DCONV_PACK_FLIPPED(NAME, T)                                                                                \
static void NAME(T* wpk, const T* weight, ptrdiff_t O, ptrdiff_t C, ptrdiff_t kh, ptrdiff_t kw) {                     \
    ptrdiff_t OB = mg_dconv_ob(), KK = kh * kw;                                                                       \
    for (ptrdiff_t cb = 0; cb < C; cb += OB) {                                                                        \
        ptrdiff_t nc = C - cb < OB ? C - cb : OB;                                                                     \
        for (ptrdiff_t o = 0; o < O; o++) {                                                                           \
            const T* src = weight + (o * C + cb) * KK + KK - 1;                                                       \
            for (ptrdiff_t ij = 0; ij < KK; ij++, wpk += OB) {                                                        \
                ptrdiff_t c = 0;                                                                                      \
                for (; c < nc; c++)                                                                                   \
                    wpk[c] = src[c * KK - ij];                                                                        \
                for (; c < OB; c++)                                                                                   \
                    wpk[c] = (T)0;                                                                                    \
            }                                                                                                         \
        }                                                                                                             \
    }                                                                                                                 \
}
MG_DCONV_PACK_FLIPPED(mg_dconv_pack_flipped_f32, float)
MG_DCONV_PACK_FLIPPED(mg_dconv_pack_flipped_f64, double)

/* y[n] (O, OH, OW) from x[n] (C, H, W): x into xp's interior, the tiles into ypw, then the valid columns into y.
   xp, ypw: this thread's scratch of mg_dconv_xp_len and mg_dconv_ypw_len elements; xp zeroed by the caller once per
   call, not per sample: every sample writes the same interior positions, so the padding stays zero. */
#define MG_DCONV_SAMPLE(NAME, T, SFX)                                                                                 \
static void NAME(T* y, const T* x, const T* wpk, T* xp, T* ypw, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,                \
                 ptrdiff_t O, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t ph, ptrdiff_t pw) {                               \
    ptrdiff_t Hp = H + 2 * ph, Wp = W + 2 * pw, OH = Hp - kh + 1, OW = Wp - kw + 1, CS = Hp * Wp;                     \
    ptrdiff_t Obr = mg_round_up(O, mg_dconv_ob()), Qr = mg_round_up(OH * Wp, mg_dconv_pb(sizeof(T) == 4));            \
    MG_DCONV_MASKED_##SFX                                                                                             \
    for (ptrdiff_t c = 0; c < C; c++)                                                                                 \
        for (ptrdiff_t h = 0; h < H; h++)                                                                             \
            memcpy(xp + c * CS + (h + ph) * Wp + pw, x + (c * H + h) * W, W * sizeof(T));                             \
    ptrdiff_t Qn = (OH - 1) * Wp + OW;                                                                                \
    MG_DCONV_CSTORE_##SFX                                                                                             \
    switch (mg_dconv_isa) {                                                                                           \
    MG_DCONV_CASES_##SFX                                                                                              \
    default: mg_dconv_run(mg_dconv_tiles_##SFX##_scalar, 1, sizeof(T) == 4 ? 8 : 4);                                 \
    }                                                                                                                 \
    for (ptrdiff_t o = 0; o < O; o++)                                                                                 \
        for (ptrdiff_t oh = 0; oh < OH; oh++)                                                                         \
            memcpy(y + (o * OH + oh) * OW, ypw + o * Qr + oh * Wp, OW * sizeof(T));                                   \
}
#if MG_DCONV_X86
/* the masked path (MG_DCONV_MTILES): x into xm = xp + pw (a guard for the reads of the first tap), a channel's rows
   in one copy; the tiles over the L = OH*W positions (whole tiles, then 2 and 1 vectors), then each channel's L
   outputs in one copy. The padding rows stay zero as in the other path (every sample writes the same interior). */
#define MG_DCONV_MASKED_BODY(COND, F, T, VW, PV)                                                                      \
    if ((COND) && OW == W && kw <= MG_DCONV_KWMAX && W <= MG_DCONV_MASKED_MAXW) {                                     \
        T* xm = xp + pw;                                                                                              \
        ptrdiff_t L = OH * W, CSm = Hp * W, Qm = mg_round_up(L, (VW) * (PV));                                         \
        for (ptrdiff_t c = 0; c < C; c++)                                                                             \
            memcpy(xm + c * CSm + ph * W, x + c * H * W, H * W * sizeof(T));                                          \
        ptrdiff_t nv = (L + (VW) - 1) / (VW), n3 = nv / (PV), r = nv - n3 * (PV);                                     \
        ptrdiff_t q = n3 * (PV) * (VW);                                                                               \
        if ((VW) % W == 0 && L % (VW) == 0) {                                                                         \
            F##_per(ypw, xm, wpk, C, kh, kw, CSm, W, pw, L, Obr, Qm, 0, n3);                                          \
            F##_per_pv2(ypw, xm, wpk, C, kh, kw, CSm, W, pw, L, Obr, Qm, q, r / 2);                                   \
            F##_per_pv1(ypw, xm, wpk, C, kh, kw, CSm, W, pw, L, Obr, Qm, q + r / 2 * 2 * (VW), r % 2);                \
        } else {                                                                                                      \
            F(ypw, xm, wpk, C, kh, kw, CSm, W, pw, L, Obr, Qm, 0, n3);                                                \
            F##_pv2(ypw, xm, wpk, C, kh, kw, CSm, W, pw, L, Obr, Qm, q, r / 2);                                       \
            F##_pv1(ypw, xm, wpk, C, kh, kw, CSm, W, pw, L, Obr, Qm, q + r / 2 * 2 * (VW), r % 2);                    \
        }                                                                                                             \
        for (ptrdiff_t o = 0; o < O; o++)                                                                             \
            memcpy(y + o * L, ypw + o * Qm, L * sizeof(T));                                                           \
        return;                                                                                                       \
    }
#define MG_DCONV_CSTORE_BODY(SFX, VW)                                                                                 \
    if (mg_dconv_isa == 2 && MG_DCONV_CSTORE) {                                                                       \
        ptrdiff_t nv_ = (Qn + (VW) - 1) / (VW), n3_ = nv_ / MG_DCONV_PV512, r_ = nv_ - n3_ * MG_DCONV_PV512;          \
        ptrdiff_t q_ = n3_ * MG_DCONV_PV512 * (VW), L_ = OH * OW;                                                     \
        mg_dconv_ctiles_##SFX##_avx512(y, xp, wpk, C, kh, kw, CS, Wp, O, OW, L_, Qn, 0, n3_);                         \
        mg_dconv_ctiles_##SFX##_avx512_pv2(y, xp, wpk, C, kh, kw, CS, Wp, O, OW, L_, Qn, q_, r_ / 2);                 \
        mg_dconv_ctiles_##SFX##_avx512_pv1(y, xp, wpk, C, kh, kw, CS, Wp, O, OW, L_, Qn, q_ + r_ / 2 * 2 * (VW),      \
                                           r_ % 2);                                                                   \
        return;                                                                                                       \
    }
#define MG_DCONV_CSTORE_f32 MG_DCONV_CSTORE_BODY(f32, 16)
#define MG_DCONV_CSTORE_f64 MG_DCONV_CSTORE_BODY(f64, 8)
/* AVX2's masked path on planes up to MG_DCONV_MASKED_MAXW256 wide (-D 0 to turn it off) */
#ifndef MG_DCONV_MASKED_MAXW256
#define MG_DCONV_MASKED_MAXW256 8
#endif
#define MG_DCONV_MASKED_f32                                                                                           \
    MG_DCONV_MASKED_BODY(mg_dconv_isa == 2, mg_dconv_mtiles_f32_avx512, float, 16, MG_DCONV_PV512)                    \
    MG_DCONV_MASKED_BODY(mg_dconv_isa == 1 && W <= MG_DCONV_MASKED_MAXW256, mg_dconv_mtiles_f32_avx2, float, 8,       \
                         MG_DCONV_PV256)
#define MG_DCONV_MASKED_f64                                                                                           \
    MG_DCONV_MASKED_BODY(mg_dconv_isa == 2, mg_dconv_mtiles_f64_avx512, double, 8, MG_DCONV_PV512)                    \
    MG_DCONV_MASKED_BODY(mg_dconv_isa == 1 && W <= MG_DCONV_MASKED_MAXW256, mg_dconv_mtiles_f64_avx2, double, 4,      \
                         MG_DCONV_PV256)
#define MG_DCONV_CASES_f32                                                                                            \
    case 2: mg_dconv_run(mg_dconv_tiles_f32_avx512, 16, MG_DCONV_PV512); break;                                       \
    case 1: mg_dconv_run(mg_dconv_tiles_f32_avx2, 8, MG_DCONV_PV256); break;
#define MG_DCONV_CASES_f64                                                                                            \
    case 2: mg_dconv_run(mg_dconv_tiles_f64_avx512, 8, MG_DCONV_PV512); break;                                        \
    case 1: mg_dconv_run(mg_dconv_tiles_f64_avx2, 4, MG_DCONV_PV256); break;
#else
#define MG_DCONV_CSTORE_f32
#define MG_DCONV_CSTORE_f64
#define MG_DCONV_MASKED_f32
#define MG_DCONV_MASKED_f64
#define MG_DCONV_CASES_f32
#define MG_DCONV_CASES_f64
#endif
MG_DCONV_SAMPLE(mg_dconv_sample_f32, float, f32)
MG_DCONV_SAMPLE(mg_dconv_sample_f64, double, f64)

/* ---------------------------------------------------------------------------------------------------------------
   Weight gradient of the same convolution, over a chunk of S samples (S fixed by the caller from the geometry
   alone, never from the thread count):
       part[o, (c, i, j)] = sum over samples s, then (oh, ow), of
                            dy[s, o, oh, ow] * xp[s, c*CS + (sh*oh + i)*Wp + sw*ow + j]
   (sh, sw) the stride: (1, 1) for this convolution; conv_strided.h's chunk driver runs these tiles at any stride
   dy is first transposed into dyt (S, OH*OW, Or), output channels last (Or: O rounded up to 64 bytes, zeros past O),
   so that the vectors run over output channels: the micro-kernel holds OV vectors of LW output channels x TB taps
   of dweight in registers and runs over the valid positions (oh, ow) one at a time: OV loads of dyt, TB broadcasts
   of x, OV*TB fused multiply-adds (AVX-512: 2 x 12 where O allows, half the broadcasts per FMA of 1 x 24). No
   position outside the output is read (so an inf in x reaches only the entries whose sums hold it), no lane is
   wasted on 8-wide planes, and each entry is one fma chain over (s, oh, ow) in order, in every variant and tile:
   the same bits whichever runs. The caller adds the chunks' parts in chunk order.
   ROWS (below MG_WG_ROWS_BELOW input channels, mg_wg_rows): each output row's chain instead starts from 0 and is
   added to the tile's running sum (lanes, in memory: once a row), so an entry is the sum over (s, oh) in order of
   chains over ow. NOTE: a few channels' chain over all of a chunk's positions (the stem's, 8 samples of 32x32, 8192
   terms) had 8-10x the float32 error of OpenBLAS's blocked sums; the rows' sums, one sample a chunk (conv.pyx's
   _wg_chunks), have the same order of error (docs/perf/threads.md, session 35). */
/* NOTE: conv.DIRECT_MIN_CHANNELS: below it conv2d runs this kernel only for the few geometries it wins (a ResNet's
   stem), so other layers keep their bits; their sums are the ones a rows variant changes */
#define MG_WG_ROWS_BELOW 4
static inline int mg_wg_rows(ptrdiff_t C) { return C < MG_WG_ROWS_BELOW; }
/* lanes += acc, then acc = 0 (ROWS: at the end of each output row's chain) */
#define MG_DCONV_WG_ROW_END(OV, RB, KW, LOADU, ADD, STOREU, ZERO)                                                     \
    for (int u = 0; u < (OV); u++)                                                                                    \
        for (int r = 0; r < (RB); r++)                                                                                \
            for (int j = 0; j < (KW); j++) {                                                                          \
                STOREU(lanes[u][r][j], ADD(LOADU(lanes[u][r][j]), acc[u][r][j]));                                     \
                acc[u][r][j] = ZERO;                                                                                  \
            }
#define MG_DCONV_WG(NAME, T, V, LW, OV, RB, KW, ROWS, ATTR, LOADU, SET1, FMA, ADD, STOREU, ZERO)                      \
ATTR static void NAME(T* part, const T* dyt, const T* xp, ptrdiff_t S, ptrdiff_t O, ptrdiff_t Or, ptrdiff_t C,        \
                      ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t CS, ptrdiff_t Wp, ptrdiff_t OH, ptrdiff_t OW,             \
                      ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t ob_begin, ptrdiff_t ob_end) {                             \
    /* a tile: OV vectors of LW output channels x RB runs of KW taps (KW == kw: the rows (c, i); KW == 1: single      \
       taps (c, i, j)), over the channels [ob_begin, ob_end), ob_end - ob_begin a multiple of OV*LW */                \
    const ptrdiff_t K = C * kh * kw, L = OH * OW, R = (KW) == 1 ? K : C * kh;                                         \
    for (ptrdiff_t ob = ob_begin; ob < ob_end; ob += (OV) * (LW)) {                                                   \
        for (ptrdiff_t r0 = 0; r0 < R; r0 += (RB)) {                                                                  \
            ptrdiff_t off[RB];                                                                                        \
            for (int r = 0; r < (RB); r++) {                                                                          \
                ptrdiff_t q = r0 + r < R ? r0 + r : R - 1; /* past R: a repeat, not stored */                         \
                off[r] = (KW) == 1 ? q / (kh * kw) * CS + q / kw % kh * Wp + q % kw : q / kh * CS + q % kh * Wp;      \
            }                                                                                                         \
            V acc[OV][RB][KW];                                                                                        \
            T lanes[OV][RB][KW][LW]; /* ROWS: the running sum */                                                      \
            if (ROWS)                                                                                                 \
                memset(lanes, 0, sizeof(lanes));                                                                      \
            for (int u = 0; u < (OV); u++)                                                                            \
                for (int r = 0; r < (RB); r++)                                                                        \
                    for (int j = 0; j < (KW); j++)                                                                    \
                        acc[u][r][j] = ZERO;                                                                          \
            for (ptrdiff_t s = 0; s < S; s++) {                                                                       \
                const T* xs = xp + s * C * CS;                                                                        \
                const T* d = dyt + s * L * Or + ob;                                                                   \
                for (ptrdiff_t oh = 0; oh < OH; oh++) {                                                               \
                    if (ROWS && oh + s > 0) /* the last row's chain into lanes, and a new chain from 0 */             \
                        MG_DCONV_WG_ROW_END(OV, RB, KW, LOADU, ADD, STOREU, ZERO)                                     \
                    for (ptrdiff_t ow = 0; ow < OW; ow++) {                                                           \
                        const T* xq = xs + oh * sh * Wp + ow * sw;                                                    \
                        V dv[OV];                                                                                     \
                        for (int u = 0; u < (OV); u++)                                                                \
                            dv[u] = LOADU(d + (oh * OW + ow) * Or + u * (LW));                                        \
                        for (int r = 0; r < (RB); r++)                                                                \
                            for (int j = 0; j < (KW); j++)                                                            \
                                for (int u = 0; u < (OV); u++)                                                        \
                                    acc[u][r][j] = FMA(dv[u], SET1(xq[off[r] + j]), acc[u][r][j]);                    \
                    }                                                                                                 \
                }                                                                                                     \
            }                                                                                                         \
            /* NOTE: stored first under constant bounds: a conditional loop over acc kept it in memory */             \
            if (ROWS)                                                                                                 \
                MG_DCONV_WG_ROW_END(OV, RB, KW, LOADU, ADD, STOREU, ZERO)                                             \
            else                                                                                                      \
                for (int u = 0; u < (OV); u++)                                                                        \
                    for (int r = 0; r < (RB); r++)                                                                    \
                        for (int j = 0; j < (KW); j++)                                                                \
                            STOREU(lanes[u][r][j], acc[u][r][j]);                                                     \
            for (int l = 0; l < (OV) * (LW) && ob + l < O; l++)                                                       \
                for (int r = 0; r < (RB) && r0 + r < R; r++)                                                          \
                    for (int j = 0; j < (KW); j++)                                                                    \
                        part[(ob + l) * K + (r0 + r) * (KW) + j] = lanes[l / (LW)][r][j][l % (LW)];                   \
        }                                                                                                             \
    }                                                                                                                 \
}

/* the scalar variant's "vector": LW lanes in a struct, each op lane by lane with fma() */
typedef struct { float v[16]; } mg_lanes_f32;
typedef struct { double v[8]; } mg_lanes_f64;
#define MG_LANES_OPS(SFX, T, LW, FMAF)                                                                                \
static inline mg_lanes_##SFX mg_lanes_load_##SFX(const T* p) {                                                        \
    mg_lanes_##SFX r;                                                                                                 \
    memcpy(r.v, p, sizeof(r.v));                                                                                      \
    return r;                                                                                                         \
}                                                                                                                     \
static inline T mg_lanes_set1_##SFX(T a) { return a; }                                                                \
static inline mg_lanes_##SFX mg_lanes_fma_##SFX(mg_lanes_##SFX a, T b, mg_lanes_##SFX c) {                            \
    for (int l = 0; l < (LW); l++)                                                                                    \
        c.v[l] = FMAF(a.v[l], b, c.v[l]);                                                                             \
    return c;                                                                                                         \
}                                                                                                                     \
static inline mg_lanes_##SFX mg_lanes_add_##SFX(mg_lanes_##SFX a, mg_lanes_##SFX b) {                                \
    for (int l = 0; l < (LW); l++)                                                                                    \
        a.v[l] += b.v[l];                                                                                             \
    return a;                                                                                                         \
}                                                                                                                     \
static inline void mg_lanes_store_##SFX(T* p, mg_lanes_##SFX a) { memcpy(p, a.v, sizeof(a.v)); }
MG_LANES_OPS(f32, float, 16, fmaf)
MG_LANES_OPS(f64, double, 8, fma)
static const mg_lanes_f32 mg_lanes_zero_f32 = {{0}};
static const mg_lanes_f64 mg_lanes_zero_f64 = {{0}};
/* each variant twice: KW = 3 (taps in runs of 3 along a row: 3x3 kernels; 3x fewer offsets to load) and KW = 1;
   each of those twice, with ROWS (suffix r, RB3R and RB1R runs a tile) and without */
#define MG_DCONV_WG_QUAD(NAME, T, V, LW, OV, RB3, RB1, RB3R, RB1R, ATTR, LOADU, SET1, FMA, ADD, STOREU, ZERO)         \
    MG_DCONV_WG(NAME##_k3, T, V, LW, OV, RB3, 3, 0, ATTR, LOADU, SET1, FMA, ADD, STOREU, ZERO)                        \
    MG_DCONV_WG(NAME##_k1, T, V, LW, OV, RB1, 1, 0, ATTR, LOADU, SET1, FMA, ADD, STOREU, ZERO)                        \
    MG_DCONV_WG(NAME##_k3r, T, V, LW, OV, RB3R, 3, 1, ATTR, LOADU, SET1, FMA, ADD, STOREU, ZERO)                      \
    MG_DCONV_WG(NAME##_k1r, T, V, LW, OV, RB1R, 1, 1, ATTR, LOADU, SET1, FMA, ADD, STOREU, ZERO)
#define MG_DCONV_WG_PAIR(NAME, T, V, LW, OV, RB3, RB1, ATTR, LOADU, SET1, FMA, ADD, STOREU, ZERO)                     \
    MG_DCONV_WG_QUAD(NAME, T, V, LW, OV, RB3, RB1, RB3, RB1, ATTR, LOADU, SET1, FMA, ADD, STOREU, ZERO)
MG_DCONV_WG_PAIR(mg_dconv_wg_f32_scalar, float, mg_lanes_f32, 16, 1, 2, 8, , mg_lanes_load_f32, mg_lanes_set1_f32,
                 mg_lanes_fma_f32, mg_lanes_add_f32, mg_lanes_store_f32, mg_lanes_zero_f32)
MG_DCONV_WG_PAIR(mg_dconv_wg_f64_scalar, double, mg_lanes_f64, 8, 1, 2, 8, , mg_lanes_load_f64, mg_lanes_set1_f64,
                 mg_lanes_fma_f64, mg_lanes_add_f64, mg_lanes_store_f64, mg_lanes_zero_f64)
#if MG_DCONV_X86
/* NOTE: without predictive commoning (-O3's), GCC reused each broadcast x value across positions through
   registers spilled to the stack, and broadcast from registers on port 5, one of the two FMA ports: 1.3x slower
   than broadcasting from memory inside each FMA. AVX2 measured no faster without it, so keeps it. */
#define MG_AVX512_WG __attribute__((target("avx512f"), optimize("no-predictive-commoning")))
/* AVX-512: tiles of 2 vectors of channels x 12 taps where O allows (half the broadcasts per FMA), 1 x 24 for the
   rest; -DMG_DCONV_WG_OV512=1 to measure 1 x 24 alone */
#ifndef MG_DCONV_WG_OV512
#define MG_DCONV_WG_OV512 2
#endif
/* ROWS, 1 vector: 9 x 3 taps (a 3-channel 3x3 window, the stem's, in one tile; 27 of the 32 registers), 27 taps */
MG_DCONV_WG_QUAD(mg_dconv_wg_f32_avx512, float, __m512, 16, 1, 8, 24, 9, 27, MG_AVX512_WG,
                 _mm512_loadu_ps, _mm512_set1_ps, MG_FMA512, _mm512_add_ps, _mm512_storeu_ps, _mm512_setzero_ps())
MG_DCONV_WG_QUAD(mg_dconv_wg_f64_avx512, double, __m512d, 8, 1, 8, 24, 9, 27, MG_AVX512_WG,
                 _mm512_loadu_pd, _mm512_set1_pd, MG_FMA512D, _mm512_add_pd, _mm512_storeu_pd, _mm512_setzero_pd())
/* ISA's wide tiles (mg_dconv_wg_SFX_ISA_ov): OV vectors of LW channels x RB3 / OV runs of 3 taps (k3) or RB1 / OV
   taps (k1); BITS-bit vectors, intrinsics _mmBITS_*_SUF */
#define MG_DCONV_WG_OV_PAIR(SFX, ISA, T, V, LW, OV, RB3, RB1, ATTR, BITS, SUF, FMA)                                   \
    MG_DCONV_WG_PAIR(mg_dconv_wg_##SFX##_##ISA##_ov, T, V, LW, OV, (RB3) / (OV), (RB1) / (OV), ATTR,                  \
                     _mm##BITS##_loadu_##SUF, _mm##BITS##_set1_##SUF, FMA, _mm##BITS##_add_##SUF,                     \
                     _mm##BITS##_storeu_##SUF, _mm##BITS##_setzero_##SUF())
MG_DCONV_WG_OV_PAIR(f32, avx512, float, __m512, 16, MG_DCONV_WG_OV512, 8, 24, MG_AVX512_WG, 512, ps, MG_FMA512)
MG_DCONV_WG_OV_PAIR(f64, avx512, double, __m512d, 8, MG_DCONV_WG_OV512, 8, 24, MG_AVX512_WG, 512, pd, MG_FMA512D)
/* AVX2: tiles of 2 vectors of channels x 6 taps where O allows (12 of the 16 ymm registers; 8 loads and broadcasts
   a 12 FMAs, not the 13 of 1 x 12), 1 x 12 for the rest; -DMG_DCONV_WG_OV256=1 to measure 1 x 12 alone */
#ifndef MG_DCONV_WG_OV256
#define MG_DCONV_WG_OV256 2
#endif
#define MG_AVX2_WG __attribute__((target("avx2,fma")))
MG_DCONV_WG_PAIR(mg_dconv_wg_f32_avx2, float, __m256, 8, 1, 4, 12, MG_AVX2_WG,
                 _mm256_loadu_ps, _mm256_set1_ps, MG_FMA256, _mm256_add_ps, _mm256_storeu_ps, _mm256_setzero_ps())
MG_DCONV_WG_PAIR(mg_dconv_wg_f64_avx2, double, __m256d, 4, 1, 4, 12, MG_AVX2_WG,
                 _mm256_loadu_pd, _mm256_set1_pd, MG_FMA256D, _mm256_add_pd, _mm256_storeu_pd, _mm256_setzero_pd())
MG_DCONV_WG_OV_PAIR(f32, avx2, float, __m256, 8, MG_DCONV_WG_OV256, 4, 12, MG_AVX2_WG, 256, ps, MG_FMA256)
MG_DCONV_WG_OV_PAIR(f64, avx2, double, __m256d, 4, MG_DCONV_WG_OV256, 4, 12, MG_AVX2_WG, 256, pd, MG_FMA256D)
#endif

/* Or: O rounded up to 64 bytes of T (a whole number of vectors in every variant) */
static inline ptrdiff_t mg_dconv_wg_or(ptrdiff_t O, int f32) { return mg_round_up(O, f32 ? 16 : 8); }

/* dyt (S, L, Or) = dy (S, O, L) transposed per sample, zeros in the columns O..Or. Data movement only (no rounding).
   NOTE: the scalar loop cost 10-15% of the weight gradient (the 16-channel layers most): with AVX-512, float32, and
   O and L multiples of 16 (ResNet-20's layers), 16x16 blocks are transposed in registers (unpack, then shuffles);
   with AVX2, O a multiple of 16 and L of 8, 8x8 blocks (the scalar loop was a quarter of the AVX2 weight gradient
   at 16 -> 16, 32x32: docs/perf/threads.md, session 37). */
#define MG_DCONV_WG_TRANSPOSE_SCALAR(T)                                                                               \
    for (ptrdiff_t s = 0; s < S; s++)                                                                                 \
        for (ptrdiff_t p = 0; p < L; p++) {                                                                           \
            T* row = dyt + (s * L + p) * Or;                                                                          \
            for (ptrdiff_t o = 0; o < O; o++)                                                                         \
                row[o] = dy[(s * O + o) * L + p];                                                                     \
            for (ptrdiff_t o = O; o < Or; o++)                                                                        \
                row[o] = 0;                                                                                           \
        }
#if MG_DCONV_X86
/* the transposes' first steps over N rows r of vectors V (BITS-bit, _mmBITS_*): rows loaded from src, pairs
   unpacked into t, then 4-element blocks shuffled back into r (each 128-bit lane a 4x4 transpose) */
#define MG_TRANSPOSE_4X4(V, N, BITS)                                                                                  \
    V r[N], t[N];                                                                                                     \
    for (int i = 0; i < (N); i++)                                                                                     \
        r[i] = _mm##BITS##_loadu_ps(src + i * ld_src);                                                                \
    for (int i = 0; i < (N); i += 2) {                                                                                \
        t[i] = _mm##BITS##_unpacklo_ps(r[i], r[i + 1]);                                                               \
        t[i + 1] = _mm##BITS##_unpackhi_ps(r[i], r[i + 1]);                                                           \
    }                                                                                                                 \
    for (int i = 0; i < (N); i += 4) {                                                                                \
        r[i] = _mm##BITS##_shuffle_ps(t[i], t[i + 2], 0x44);                                                          \
        r[i + 1] = _mm##BITS##_shuffle_ps(t[i], t[i + 2], 0xEE);                                                      \
        r[i + 2] = _mm##BITS##_shuffle_ps(t[i + 1], t[i + 3], 0x44);                                                  \
        r[i + 3] = _mm##BITS##_shuffle_ps(t[i + 1], t[i + 3], 0xEE);                                                  \
    }
/* dst[p*ld_dst + o] = src[o*ld_src + p] for p, o < 16 */
MG_AVX512 static void mg_dconv_transpose16_f32(float* dst, ptrdiff_t ld_dst, const float* src, ptrdiff_t ld_src) {
    MG_TRANSPOSE_4X4(__m512, 16, 512)
    for (int i = 0; i < 16; i += 8)
        for (int k = 0; k < 4; k++) {
            t[i + k] = _mm512_shuffle_f32x4(r[i + k], r[i + k + 4], 0x88);
            t[i + k + 4] = _mm512_shuffle_f32x4(r[i + k], r[i + k + 4], 0xdd);
        }
    for (int k = 0; k < 8; k++) {
        r[k] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0x88);
        r[k + 8] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0xdd);
    }
    for (int i = 0; i < 16; i++)
        _mm512_storeu_ps(dst + i * ld_dst, r[i]);
}
/* the same for p, o < 8, AVX2: then the 128-bit halves exchanged */
__attribute__((target("avx2,fma"))) static void mg_dconv_transpose8_f32(float* dst, ptrdiff_t ld_dst, const float* src,
                                                                       ptrdiff_t ld_src) {
    MG_TRANSPOSE_4X4(__m256, 8, 256)
    for (int k = 0; k < 4; k++) {
        t[k] = _mm256_permute2f128_ps(r[k], r[k + 4], 0x20);
        t[k + 4] = _mm256_permute2f128_ps(r[k], r[k + 4], 0x31);
    }
    for (int i = 0; i < 8; i++)
        _mm256_storeu_ps(dst + i * ld_dst, t[i]);
}
/* dyt from dy in B x B blocks (FN) where ISA runs, O a multiple of 16 (then Or == O: no zero columns) and L of B */
#define MG_DCONV_WG_TRANSPOSE_BLOCKS(ISA, B, FN)                                                                      \
    if (mg_dconv_isa == (ISA) && O % 16 == 0 && L % (B) == 0) {                                                       \
        for (ptrdiff_t s = 0; s < S; s++)                                                                             \
            for (ptrdiff_t o = 0; o < O; o += (B))                                                                    \
                for (ptrdiff_t p = 0; p < L; p += (B))                                                                \
                    FN(dyt + (s * L + p) * Or + o, Or, dy + (s * O + o) * L + p, L);                                  \
        return;                                                                                                       \
    }
#endif
static void mg_dconv_wg_transpose_f32(float* dyt, const float* dy, ptrdiff_t S, ptrdiff_t O, ptrdiff_t Or,
                                      ptrdiff_t L) {
#if MG_DCONV_X86
    MG_DCONV_WG_TRANSPOSE_BLOCKS(2, 16, mg_dconv_transpose16_f32)
    MG_DCONV_WG_TRANSPOSE_BLOCKS(1, 8, mg_dconv_transpose8_f32)
#endif
    MG_DCONV_WG_TRANSPOSE_SCALAR(float)
}
static void mg_dconv_wg_transpose_f64(double* dyt, const double* dy, ptrdiff_t S, ptrdiff_t O, ptrdiff_t Or,
                                      ptrdiff_t L) {
    MG_DCONV_WG_TRANSPOSE_SCALAR(double)
}

/* The chunk's driver (x into xp, dy into dyt, then this dispatch over the variants) is conv_strided.h's
   mg_sconv_wg_chunk_*, at any stride (conv2d_direct_weight_grad runs it at (1, 1)); these are the names it passes. */
#define MG_DCONV_WG_ARGS part, dyt, xp, S, O, Or, C, kh, kw, CS, Wp, OH, OW, sh, sw
/* the tiles NAME over the channels [B, E), with ROWS (NAME##r) where the chunk's driver set rows_ (mg_wg_rows).
   NOTE: direct calls, not a call through the chosen pointer: GCC then specializes the tiles on constant bounds
   (.constprop), which the 1x1 shortcut's backward measured 4% faster at 1 thread */
#define MG_DCONV_WG_CALL(NAME, B, E)                                                                                  \
    do {                                                                                                              \
        if (rows_)                                                                                                    \
            NAME##r(MG_DCONV_WG_ARGS, B, E);                                                                          \
        else                                                                                                          \
            NAME(MG_DCONV_WG_ARGS, B, E);                                                                             \
    } while (0)
#if MG_DCONV_X86
/* AVX-512 and AVX2 (ISA): the wide tiles over the first O rounded down to OV vectors, the 1-vector tiles over the
   rest */
#define MG_DCONV_WG_WIDE(SFX, ISA, LW, OV)                                                                            \
    {                                                                                                                 \
        ptrdiff_t ow_ = O / ((LW) * (OV)) * ((LW) * (OV));                                                            \
        if (kw == 3) {                                                                                                \
            MG_DCONV_WG_CALL(mg_dconv_wg_##SFX##_##ISA##_ov_k3, 0, ow_);                                              \
            MG_DCONV_WG_CALL(mg_dconv_wg_##SFX##_##ISA##_k3, ow_, O);                                                 \
        } else {                                                                                                      \
            MG_DCONV_WG_CALL(mg_dconv_wg_##SFX##_##ISA##_ov_k1, 0, ow_);                                              \
            MG_DCONV_WG_CALL(mg_dconv_wg_##SFX##_##ISA##_k1, ow_, O);                                                 \
        }                                                                                                             \
    }
#define MG_DCONV_WG_CASES_f32                                                                                         \
    case 2: MG_DCONV_WG_WIDE(f32, avx512, 16, MG_DCONV_WG_OV512) break;                                               \
    case 1: MG_DCONV_WG_WIDE(f32, avx2, 8, MG_DCONV_WG_OV256) break;
#define MG_DCONV_WG_CASES_f64                                                                                         \
    case 2: MG_DCONV_WG_WIDE(f64, avx512, 8, MG_DCONV_WG_OV512) break;                                                \
    case 1: MG_DCONV_WG_WIDE(f64, avx2, 4, MG_DCONV_WG_OV256) break;
#else
#define MG_DCONV_WG_CASES_f32
#define MG_DCONV_WG_CASES_f64
#endif

#endif
