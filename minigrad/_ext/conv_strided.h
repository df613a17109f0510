/* Direct convolution at any stride (dilation 1), no im2col or col2im: the forward and the input gradient by the
   stride's phases, each a unit-stride correlation over a padded-width layout; the weight gradient as conv_direct.h's
   with the positions stride apart. The math: minigrad/kernels/reference/conv.py (conv2d_strided,
   conv2d_strided_input_grad, conv2d_strided_weight_grad); why and how fast: docs/perf/conv.md, part 5. Included by
   conv.pyx, after conv_direct.h, whose variants (mg_dconv_isa), tiles (mg_dconv_ob, mg_dconv_pb), weight packing,
   lanes and dy transpose it shares.

   Legend: C input channels, O output channels, H, W input size, (sh, sw) stride, (ph, pw) padding, kh, kw window,
   Hp = H + 2*ph, Wp = W + 2*pw, OH = (Hp - kh)/sh + 1, OW = (Wp - kw)/sw + 1, K = C*kh*kw.

   The micro-kernel (MG_SCONV_TILES) is conv_direct.h's with the taps in a table: for a tile of OB output channels x
   PV vectors of positions q,
       out[o, q] = sum over taps t of wpk[t, o] * in[off[t] + q]
   one load of PV vectors of `in` and OB broadcast weights per tap, OB*PV fused multiply-adds. Every output is one fma
   chain from 0 in table order, in every variant (AVX-512, AVX2 + FMA, the scalar fma()): the same bits whichever
   runs, and for any thread count.

   Forward (space to depth). xpad is split into its sh*sw phases, plane (c, a, b)[u, v] = xpad[c, sh*u + a, sw*v + b]
   (Hq = ceil(Hp/sh) rows of Wq = ceil(Wp/sw), channel stride CS = Hq*Wq): tap (c, i, j) of output (oh, ow) reads
   plane (c, i%sh, j%sw) at (oh + i/sh, ow + j/sw), so over the padded width q = oh*Wq + ow every tap is a contiguous
   run at off = plane*CS + (i/sh)*Wq + j/sw. Taps in (c, i, j) order: K of them, no zero taps (docs/perf/conv.md part
   2's stacked 2x2 kernel had 16 per channel for 9, and its zeros would turn an inf of x into NaN). A valid output reads
   only its own window; the last columns of each row (ow >= OW) are garbage and dropped.

   Input gradient (the 4 phases of dx for stride 2). dx[c, h, w] = sum of weight[o, c, i, j]*dy[o, oh, ow] over
   sh*oh + i = h + ph, sw*ow + j = w + pw. For the rows h = sh*u + a of phase a, the taps are i = i0 - t*sh (t < Ta,
   all i = (a + ph) mod sh), each reading dy row u + d + t, d = (a + ph - i0)/sh: a unit-stride correlation of dy
   with a Ta x Tb sub-kernel, the taps of phase (a, b) (2x2, 2x1, 1x2 and 1x1 for 3x3 at stride 2: 9 in all, every
   tap once). dy is copied zero padded into (O, Hd, Wd), PT rows above and PL columns left, so that every phase's
   reads are inside; the phase's outputs q = u*Wd + v are computed over that width, taps (o, t, s) in that order,
   and written to dx[c, sh*u + a, sw*v + b] (at stride 2 in w, a row's two phases merged). A phase without taps
   (kernel smaller than the stride) is zero.

   A kernel smaller than the stride (the 1x1 at stride 2 of a ResNet's shortcut) leaves phases that no tap reads or
   reaches: the forward fills only the planes read, the input gradient writes the others' rows and columns as zeros
   (rows by memset, a column phase merged with zeros), and the weight gradient copies only the rows read (a 1x1
   without padding: x subsampled, compact). The values and their order are unchanged: the same bits. */
#ifndef MG_CONV_STRIDED_H
#define MG_CONV_STRIDED_H
#include "conv_direct.h"

#define MG_SCONV_TILES(NAME, T, V, VW, OB, PV, ATTR, LOADU, STOREU, SET1, ZERO, FMA)                                  \
ATTR static void NAME(T* out, const T* in, const T* wpk, const ptrdiff_t* off, ptrdiff_t nk, ptrdiff_t Obr,           \
                      ptrdiff_t Qr, ptrdiff_t q_begin, ptrdiff_t nt) {                                                \
    for (ptrdiff_t q0 = q_begin; q0 < q_begin + nt * (PV) * (VW); q0 += (PV) * (VW)) {                                \
        for (ptrdiff_t ob = 0; ob < Obr; ob += (OB)) {                                                                \
            V acc[OB][PV];                                                                                            \
            MG_TILE_ZERO(OB, PV, ZERO)                                                                                \
            const T* w = wpk + ob * nk;                                                                               \
            for (ptrdiff_t t = 0; t < nk; t++, w += (OB)) {                                                           \
                const T* xr = in + off[t] + q0;                                                                       \
                MG_TILE_TAP(V, OB, PV, LOADU(xr + v * (VW)), SET1, FMA)                                               \
            }                                                                                                         \
            MG_TILE_STORE(OB, PV, VW, STOREU, out, Qr)                                                                \
        }                                                                                                             \
    }                                                                                                                 \
}
/* each variant's tiles and those of 2 and 1 vectors, with conv_direct.h's tile sizes (mg_dconv_ob, mg_dconv_pb):
   its weight packing serves both */
MG_TILES_SCALAR(MG_SCONV_TILES, mg_sconv_tiles)
#if MG_DCONV_X86
MG_TILES_X86(MG_SCONV_TILES, mg_sconv_tiles)
#endif

/* The tiles of variant F (VW lanes, PV vectors a tile) over positions [0, Qn) in whole vectors: whole tiles, then
   tiles of 2 and 1 vectors (as mg_dconv_run). */
#define mg_sconv_run(F, VW, PV, out, in, wpk, off, nk, Obr, Qr, Qn)                                                   \
    do {                                                                                                              \
        ptrdiff_t nv_ = ((Qn) + (VW) - 1) / (VW), n3_ = nv_ / (PV), r_ = nv_ - n3_ * (PV), q_ = n3_ * (PV) * (VW);    \
        F(out, in, wpk, off, nk, Obr, Qr, 0, n3_);                                                                    \
        F##_pv2(out, in, wpk, off, nk, Obr, Qr, q_, r_ / 2);                                                          \
        F##_pv1(out, in, wpk, off, nk, Obr, Qr, q_ + r_ / 2 * 2 * (VW), r_ % 2);                                      \
    } while (0)
#if MG_DCONV_X86
#define MG_SCONV_CASES_f32(...)                                                                                       \
    case 2: mg_sconv_run(mg_sconv_tiles_f32_avx512, 16, MG_DCONV_PV512, __VA_ARGS__); break;                          \
    case 1: mg_sconv_run(mg_sconv_tiles_f32_avx2, 8, MG_DCONV_PV256, __VA_ARGS__); break;
#define MG_SCONV_CASES_f64(...)                                                                                       \
    case 2: mg_sconv_run(mg_sconv_tiles_f64_avx512, 8, MG_DCONV_PV512, __VA_ARGS__); break;                           \
    case 1: mg_sconv_run(mg_sconv_tiles_f64_avx2, 4, MG_DCONV_PV256, __VA_ARGS__); break;
#else
#define MG_SCONV_CASES_f32(...)
#define MG_SCONV_CASES_f64(...)
#endif
#define MG_SCONV_SCALAR_PV_f32 8
#define MG_SCONV_SCALAR_PV_f64 4
/* the tiles of the variant the CPU runs (SFX: f32 or f64) */
#define mg_sconv_tiles(SFX, ...)                                                                                      \
    do {                                                                                                              \
        switch (mg_dconv_isa) {                                                                                       \
        MG_SCONV_CASES_##SFX(__VA_ARGS__)                                                                             \
        default: mg_sconv_run(mg_sconv_tiles_##SFX##_scalar, 1, MG_SCONV_SCALAR_PV_##SFX, __VA_ARGS__);               \
        }                                                                                                             \
    } while (0)

static inline ptrdiff_t mg_ceil_div(ptrdiff_t a, ptrdiff_t b) { return (a + b - 1) / b; }

/* The data movement, rows rows of n (or W) values, ld_* apart: a copy (dy into its padded layout, y out of the
   padded width); at stride 2, a split into the even and odd columns (forward: x into its phase planes) and the
   merge of two phases' columns (input gradient: dx's rows from its phases b = 0 and 1).
   NOTE: with AVX-512, whole rows in vectors with masked ends (and permutes for the split and merge), a call per
   plane: memcpy calls and the compiler's loops over rows of 16 or 8 values cost about half the tiles' time. */
#define MG_SCONV_MOVES(SFX, T, ATTR)                                                                                  \
ATTR static void mg_sconv_copy_##SFX(T* dst, ptrdiff_t ld_dst, const T* src, ptrdiff_t ld_src, ptrdiff_t rows,        \
                                     ptrdiff_t n) {                                                                   \
    for (ptrdiff_t r = 0; r < rows; r++)                                                                              \
        memcpy(dst + r * ld_dst, src + r * ld_src, n * sizeof(T));                                                    \
}                                                                                                                     \
ATTR static void mg_sconv_split2_##SFX(T* even, T* odd, ptrdiff_t ld_dst, const T* src, ptrdiff_t ld_src,             \
                                       ptrdiff_t rows, ptrdiff_t W) {                                                 \
    for (ptrdiff_t r = 0; r < rows; r++, even += ld_dst, odd += ld_dst, src += ld_src) {                              \
        for (ptrdiff_t k = 0; 2 * k + 1 < W; k++) {                                                                   \
            even[k] = src[2 * k];                                                                                     \
            odd[k] = src[2 * k + 1];                                                                                  \
        }                                                                                                             \
        if (W % 2)                                                                                                    \
            even[W / 2] = src[W - 1];                                                                                 \
    }                                                                                                                 \
}                                                                                                                     \
ATTR static void mg_sconv_even2_##SFX(T* even, ptrdiff_t ld_dst, const T* src, ptrdiff_t ld_src, ptrdiff_t rows,      \
                                      ptrdiff_t W) {                                                                  \
    for (ptrdiff_t r = 0; r < rows; r++, even += ld_dst, src += ld_src)                                               \
        for (ptrdiff_t k = 0; 2 * k < W; k++)                                                                         \
            even[k] = src[2 * k];                                                                                     \
}                                                                                                                     \
ATTR static void mg_sconv_merge2_##SFX(T* dst, ptrdiff_t ld_dst, const T* even, const T* odd, ptrdiff_t ld_src,       \
                                       ptrdiff_t rows, ptrdiff_t W) {                                                 \
    for (ptrdiff_t r = 0; r < rows; r++, dst += ld_dst, even += ld_src, odd += ld_src) {                              \
        for (ptrdiff_t k = 0; 2 * k + 1 < W; k++) {                                                                   \
            dst[2 * k] = even[k];                                                                                     \
            dst[2 * k + 1] = odd[k];                                                                                  \
        }                                                                                                             \
        if (W % 2)                                                                                                    \
            dst[W - 1] = even[W / 2];                                                                                 \
    }                                                                                                                 \
}
MG_SCONV_MOVES(f32_scalar, float, )
MG_SCONV_MOVES(f64_scalar, double, )
#if MG_DCONV_X86
/* the mask of the first m lanes (all from m >= 16, none from m <= 0) */
static inline unsigned mg_sconv_mask(ptrdiff_t m) { return m >= 16 ? 0xFFFFu : m <= 0 ? 0u : (1u << m) - 1; }
/* the lanes of the even and odd elements of two vectors (a, b), and of the merged halves of (even, odd) */
static const int mg_sconv_idx_f32[4][16] = {
    {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30},
    {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31},
    {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23},
    {8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31}};
static const long long mg_sconv_idx_f64[4][8] = {
    {0, 2, 4, 6, 8, 10, 12, 14}, {1, 3, 5, 7, 9, 11, 13, 15}, {0, 8, 1, 9, 2, 10, 3, 11}, {4, 12, 5, 13, 6, 14, 7, 15}};
#define MG_SCONV_MOVES512(SFX, T, VW, V, MLOAD, MSTORE, PERM)                                                         \
MG_AVX512 static void mg_sconv_copy_##SFX##_avx512(T* dst, ptrdiff_t ld_dst, const T* src, ptrdiff_t ld_src,          \
                                                   ptrdiff_t rows, ptrdiff_t n) {                                     \
    for (ptrdiff_t r = 0; r < rows; r++)                                                                              \
        for (ptrdiff_t k = 0; k < n; k += (VW))                                                                       \
            MSTORE(dst + r * ld_dst + k, mg_sconv_mask(n - k), MLOAD(mg_sconv_mask(n - k), src + r * ld_src + k));    \
}                                                                                                                     \
MG_AVX512 static void mg_sconv_split2_##SFX##_avx512(T* even, T* odd, ptrdiff_t ld_dst, const T* src,                 \
                                                     ptrdiff_t ld_src, ptrdiff_t rows, ptrdiff_t W) {                 \
    __m512i ie = _mm512_loadu_si512((const void*)mg_sconv_idx_##SFX[0]);                                              \
    __m512i io = _mm512_loadu_si512((const void*)mg_sconv_idx_##SFX[1]);                                              \
    for (ptrdiff_t r = 0; r < rows; r++, even += ld_dst, odd += ld_dst, src += ld_src)                                \
        for (ptrdiff_t k = 0; 2 * k < W; k += (VW)) {                                                                 \
            ptrdiff_t m = W - 2 * k; /* values left; (m + 1)/2 even ones, m/2 odd */                                  \
            V a = MLOAD(mg_sconv_mask(m), src + 2 * k), b = MLOAD(mg_sconv_mask(m - (VW)), src + 2 * k + (VW));       \
            MSTORE(even + k, mg_sconv_mask((m + 1) / 2), PERM(a, ie, b));                                             \
            MSTORE(odd + k, mg_sconv_mask(m / 2), PERM(a, io, b));                                                    \
        }                                                                                                             \
}                                                                                                                     \
MG_AVX512 static void mg_sconv_even2_##SFX##_avx512(T* even, ptrdiff_t ld_dst, const T* src, ptrdiff_t ld_src,       \
                                                    ptrdiff_t rows, ptrdiff_t W) {                                    \
    __m512i ie = _mm512_loadu_si512((const void*)mg_sconv_idx_##SFX[0]);                                              \
    for (ptrdiff_t r = 0; r < rows; r++, even += ld_dst, src += ld_src)                                               \
        for (ptrdiff_t k = 0; 2 * k < W; k += (VW)) {                                                                 \
            ptrdiff_t m = W - 2 * k;                                                                                  \
            V a = MLOAD(mg_sconv_mask(m), src + 2 * k), b = MLOAD(mg_sconv_mask(m - (VW)), src + 2 * k + (VW));       \
            MSTORE(even + k, mg_sconv_mask((m + 1) / 2), PERM(a, ie, b));                                             \
        }                                                                                                             \
}                                                                                                                     \
MG_AVX512 static void mg_sconv_merge2_##SFX##_avx512(T* dst, ptrdiff_t ld_dst, const T* even, const T* odd,           \
                                                     ptrdiff_t ld_src, ptrdiff_t rows, ptrdiff_t W) {                 \
    __m512i il = _mm512_loadu_si512((const void*)mg_sconv_idx_##SFX[2]);                                              \
    __m512i ih = _mm512_loadu_si512((const void*)mg_sconv_idx_##SFX[3]);                                              \
    for (ptrdiff_t r = 0; r < rows; r++, dst += ld_dst, even += ld_src, odd += ld_src)                                \
        for (ptrdiff_t k = 0; 2 * k < W; k += (VW)) {                                                                 \
            ptrdiff_t m = W - 2 * k;                                                                                  \
            V e = MLOAD(mg_sconv_mask((m + 1) / 2), even + k), o = MLOAD(mg_sconv_mask(m / 2), odd + k);              \
            MSTORE(dst + 2 * k, mg_sconv_mask(m), PERM(e, il, o));                                                    \
            MSTORE(dst + 2 * k + (VW), mg_sconv_mask(m - (VW)), PERM(e, ih, o));                                      \
        }                                                                                                             \
}
#define MG_MLOAD_PS(m, p) _mm512_maskz_loadu_ps((__mmask16)(m), p)
#define MG_MSTORE_PS(p, m, v) _mm512_mask_storeu_ps(p, (__mmask16)(m), v)
#define MG_MLOAD_PD(m, p) _mm512_maskz_loadu_pd((__mmask8)(m), p)
#define MG_MSTORE_PD(p, m, v) _mm512_mask_storeu_pd(p, (__mmask8)(m), v)
MG_SCONV_MOVES512(f32, float, 16, __m512, MG_MLOAD_PS, MG_MSTORE_PS, _mm512_permutex2var_ps)
MG_SCONV_MOVES512(f64, double, 8, __m512d, MG_MLOAD_PD, MG_MSTORE_PD, _mm512_permutex2var_pd)
#define MG_SCONV_IF512(...) __VA_ARGS__
#else
#define MG_SCONV_IF512(...)
#endif
/* the variant the CPU runs (data movement only: the same values from each) */
#define MG_SCONV_MOVE_PICK(SFX, T)                                                                                    \
static void mg_sconv_copy_##SFX(T* dst, ptrdiff_t ld_dst, const T* src, ptrdiff_t ld_src, ptrdiff_t rows,             \
                                ptrdiff_t n) {                                                                        \
    MG_SCONV_IF512(if (mg_dconv_isa == 2) {                                                                           \
        mg_sconv_copy_##SFX##_avx512(dst, ld_dst, src, ld_src, rows, n);                                              \
        return;                                                                                                       \
    })                                                                                                                \
    mg_sconv_copy_##SFX##_scalar(dst, ld_dst, src, ld_src, rows, n);                                                  \
}                                                                                                                     \
static void mg_sconv_split2_##SFX(T* even, T* odd, ptrdiff_t ld_dst, const T* src, ptrdiff_t ld_src, ptrdiff_t rows,  \
                                  ptrdiff_t W) {                                                                      \
    MG_SCONV_IF512(if (mg_dconv_isa == 2) {                                                                           \
        mg_sconv_split2_##SFX##_avx512(even, odd, ld_dst, src, ld_src, rows, W);                                      \
        return;                                                                                                       \
    })                                                                                                                \
    mg_sconv_split2_##SFX##_scalar(even, odd, ld_dst, src, ld_src, rows, W);                                          \
}                                                                                                                     \
static void mg_sconv_even2_##SFX(T* even, ptrdiff_t ld_dst, const T* src, ptrdiff_t ld_src, ptrdiff_t rows,            \
                                 ptrdiff_t W) {                                                                       \
    MG_SCONV_IF512(if (mg_dconv_isa == 2) {                                                                           \
        mg_sconv_even2_##SFX##_avx512(even, ld_dst, src, ld_src, rows, W);                                            \
        return;                                                                                                       \
    })                                                                                                                \
    mg_sconv_even2_##SFX##_scalar(even, ld_dst, src, ld_src, rows, W);                                                \
}                                                                                                                     \
static void mg_sconv_merge2_##SFX(T* dst, ptrdiff_t ld_dst, const T* even, const T* odd, ptrdiff_t ld_src,            \
                                  ptrdiff_t rows, ptrdiff_t W) {                                                      \
    MG_SCONV_IF512(if (mg_dconv_isa == 2) {                                                                           \
        mg_sconv_merge2_##SFX##_avx512(dst, ld_dst, even, odd, ld_src, rows, W);                                      \
        return;                                                                                                       \
    })                                                                                                                \
    mg_sconv_merge2_##SFX##_scalar(dst, ld_dst, even, odd, ld_src, rows, W);                                          \
}
MG_SCONV_MOVE_PICK(f32, float)
MG_SCONV_MOVE_PICK(f64, double)

/* ---------------------------------------------------------------------------------------------------------------
   Forward. Sizes of one thread's scratch: xq (the phase planes, plus the reads of the last tile past them) and
   ypw (Obr, Qr), Qr = OH*Wq rounded up to a tile. */
static inline ptrdiff_t mg_sconv_qr(ptrdiff_t H, ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t sh, ptrdiff_t sw,
                                    ptrdiff_t ph, ptrdiff_t pw, int f32) {
    ptrdiff_t OH = (H + 2 * ph - kh) / sh + 1, Wq = mg_ceil_div(W + 2 * pw, sw);
    return mg_round_up(OH * Wq, mg_dconv_pb(f32));
}
static inline ptrdiff_t mg_sconv_xq_len(ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw,
                                        ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t ph, ptrdiff_t pw, int f32) {
    ptrdiff_t Hq = mg_ceil_div(H + 2 * ph, sh), Wq = mg_ceil_div(W + 2 * pw, sw), CS = Hq * Wq;
    /* the largest offset is the last plane's, (kh - 1)/sh rows and (kw - 1)/sw columns in; a tile reads < Qr past it */
    ptrdiff_t last = (C * sh * sw - 1) * CS + (kh - 1) / sh * Wq + (kw - 1) / sw + mg_sconv_qr(H, W, kh, kw, sh, sw,
                                                                                                ph, pw, f32);
    return last > C * sh * sw * CS ? last : C * sh * sw * CS;
}
static inline ptrdiff_t mg_sconv_ypw_len(ptrdiff_t O, ptrdiff_t H, ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw,
                                         ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t ph, ptrdiff_t pw, int f32) {
    return mg_round_up(O, mg_dconv_ob()) * mg_sconv_qr(H, W, kh, kw, sh, sw, ph, pw, f32);
}

/* off[(c, i, j)]: where tap (c, i, j) reads in the phase planes. Once per call. */
static void mg_sconv_offsets(ptrdiff_t* off, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw,
                             ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t ph, ptrdiff_t pw) {
    ptrdiff_t Hq = mg_ceil_div(H + 2 * ph, sh), Wq = mg_ceil_div(W + 2 * pw, sw), CS = Hq * Wq;
    for (ptrdiff_t c = 0; c < C; c++)
        for (ptrdiff_t i = 0; i < kh; i++)
            for (ptrdiff_t j = 0; j < kw; j++)
                *off++ = ((c * sh + i % sh) * sw + j % sw) * CS + i / sh * Wq + j / sw;
}

/* y[n] (O, OH, OW) from x[n] (C, H, W): x into the phase planes xq (zeroed by the caller once per call: every sample
   writes the same interior positions, so the padding stays zero), the tiles into ypw, the valid columns into y */
#define MG_SCONV_SAMPLE(NAME, T, SFX)                                                                                 \
static void NAME(T* y, const T* x, const T* wpk, const ptrdiff_t* off, T* xq, T* ypw, ptrdiff_t C, ptrdiff_t H,       \
                 ptrdiff_t W, ptrdiff_t O, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t ph,      \
                 ptrdiff_t pw) {                                                                                      \
    ptrdiff_t Hp = H + 2 * ph, Wp = W + 2 * pw, OH = (Hp - kh) / sh + 1, OW = (Wp - kw) / sw + 1;                     \
    ptrdiff_t Hq = mg_ceil_div(Hp, sh), Wq = mg_ceil_div(Wp, sw), CS = Hq * Wq;                                       \
    ptrdiff_t Obr = mg_round_up(O, mg_dconv_ob()), Qr = mg_sconv_qr(H, W, kh, kw, sh, sw, ph, pw, sizeof(T) == 4);    \
    for (ptrdiff_t c = 0; c < C; c++)                                                                                 \
        for (ptrdiff_t a = 0; a < sh && a < kh; a++) { /* NOTE: tap i reads row phase i % sh: none reads a >= kh */  \
            /* the rows h of x in row phase a ((h + ph) % sh == a): row u = (h + ph)/sh of planes (c, a, b) */        \
            ptrdiff_t h0 = (a - ph % sh + sh) % sh, u0 = (h0 + ph) / sh, rows = h0 < H ? (H - h0 + sh - 1) / sh : 0;  \
            T* plane = xq + (c * sh + a) * sw * CS + u0 * Wq; /* plane (c, a, 0); plane b is b*CS further */          \
            const T* xr = x + (c * H + h0) * W;                                                                       \
            if (sw == 2 && kw == 1) { /* only plane b = 0 is read: the columns w with w + pw even */                  \
                mg_sconv_even2_##SFX(plane + (pw + 1) / 2, Wq, xr + pw % 2, sh * W, rows, W - pw % 2);                \
                continue;                                                                                             \
            }                                                                                                         \
            if (sw == 2) { /* x[w] is padded column w + pw: plane (w + pw) % 2, column (w + pw)/2 */                  \
                mg_sconv_split2_##SFX(plane + pw % 2 * CS + pw / 2, plane + (pw + 1) % 2 * CS + (pw + 1) / 2, Wq,     \
                                      xr, sh * W, rows, W);                                                           \
                continue;                                                                                             \
            }                                                                                                         \
            for (ptrdiff_t r = 0; r < rows; r++)                                                                      \
                for (ptrdiff_t b = 0; b < sw && b < kw; b++) {                                                        \
                    /* columns v of plane b: padded column sw*v + b, input column sw*v + b - pw in [0, W) */          \
                    ptrdiff_t v0 = pw > b ? mg_ceil_div(pw - b, sw) : 0;                                              \
                    ptrdiff_t v1 = W - 1 + pw - b < 0 ? 0 : (W - 1 + pw - b) / sw + 1;                                \
                    for (ptrdiff_t v = v0; v < v1; v++)                                                               \
                        plane[b * CS + r * Wq + v] = xr[r * sh * W + sw * v + b - pw];                                \
                }                                                                                                     \
        }                                                                                                             \
    if (Wq == OW && Obr == O && OH * OW % 16 == 0) { /* no garbage columns, whole tiles and vectors: straight to y */ \
        mg_sconv_tiles(SFX, y, xq, wpk, off, C * kh * kw, O, OH * OW, OH * OW);                                       \
        return;                                                                                                       \
    }                                                                                                                 \
    mg_sconv_tiles(SFX, ypw, xq, wpk, off, C * kh * kw, Obr, Qr, (OH - 1) * Wq + OW);                                 \
    for (ptrdiff_t o = 0; o < O; o++)                                                                                 \
        mg_sconv_copy_##SFX(y + o * OH * OW, OW, ypw + o * Qr, Wq, OH, OW);                                           \
}
MG_SCONV_SAMPLE(mg_sconv_sample_f32, float, f32)
MG_SCONV_SAMPLE(mg_sconv_sample_f64, double, f64)

/* ---------------------------------------------------------------------------------------------------------------
   Input gradient. Phase a along an axis (window k, stride s, padding p, input size n, output size out): its taps
   i = i0 - t*s for t < T, reading dy at u + d + t for the outputs u < nu (the rows s*u + a < n). */
typedef struct { ptrdiff_t taps, i0, d, nu; } mg_sconv_phase;

static inline mg_sconv_phase mg_sconv_axis(ptrdiff_t a, ptrdiff_t n, ptrdiff_t k, ptrdiff_t s, ptrdiff_t p) {
    mg_sconv_phase r = {0, 0, 0, a < n ? (n - a + s - 1) / s : 0};
    ptrdiff_t first = (a + p) % s;  /* the smallest tap of the phase */
    if (first < k) {
        r.taps = (k - 1 - first) / s + 1;
        r.i0 = first + (r.taps - 1) * s;
        r.d = (a + p - r.i0) / s;  /* exact (a + p = i0 mod s); negative where i0 > a + p */
    }
    return r;
}
/* the padding of dy along an axis: lead (PT or PL) and the padded length (Hd or Wd), so that every phase's reads
   u + d + t (u < nu, t < T) land in [0, len) after the shift by lead */
static inline void mg_sconv_ig_pad(ptrdiff_t n, ptrdiff_t k, ptrdiff_t s, ptrdiff_t p, ptrdiff_t out, ptrdiff_t* lead,
                                   ptrdiff_t* len) {
    ptrdiff_t lo = 0, hi = out;  /* [lo, hi): the rows read, in dy's coordinates, and dy itself */
    for (ptrdiff_t a = 0; a < s; a++) {
        mg_sconv_phase f = mg_sconv_axis(a, n, k, s, p);
        if (f.taps == 0 || f.nu == 0)
            continue;
        if (f.d < lo)
            lo = f.d;
        if (f.nu + f.d + f.taps - 1 > hi)
            hi = f.nu + f.d + f.taps - 1;
    }
    *lead = -lo;
    *len = hi - lo;
}
/* Sizes: dyp (the padded dy, plus the reads of a phase's last tile past it), the outputs of 2 phases (C rounded up x
   Qr, the largest phase's rows * Wd rounded up to a tile), the packed weights and the tap offsets (O*kh*kw of
   each: every tap in exactly one phase). */
static inline ptrdiff_t mg_sconv_ig_qr(ptrdiff_t H, ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t sh,
                                       ptrdiff_t sw, ptrdiff_t ph, ptrdiff_t pw, int f32) {
    ptrdiff_t OW = (W + 2 * pw - kw) / sw + 1, PL, Wd;
    mg_sconv_ig_pad(W, kw, sw, pw, OW, &PL, &Wd);
    return mg_round_up(mg_ceil_div(H, sh) * Wd, mg_dconv_pb(f32));
}
static inline ptrdiff_t mg_sconv_ig_dyp_len(ptrdiff_t O, ptrdiff_t H, ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw,
                                            ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t ph, ptrdiff_t pw, int f32) {
    ptrdiff_t OH = (H + 2 * ph - kh) / sh + 1, OW = (W + 2 * pw - kw) / sw + 1, PT, Hd, PL, Wd;
    mg_sconv_ig_pad(H, kh, sh, ph, OH, &PT, &Hd);
    mg_sconv_ig_pad(W, kw, sw, pw, OW, &PL, &Wd);
    /* a tap reads at most (O - 1)*Hd*Wd + (Hd - 1)*Wd + Wd - 1 at q = 0; a tile reads < Qr past its offset */
    return O * Hd * Wd + mg_sconv_ig_qr(H, W, kh, kw, sh, sw, ph, pw, f32);
}
static inline ptrdiff_t mg_sconv_ig_out_len(ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t kh, ptrdiff_t kw,
                                            ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t ph, ptrdiff_t pw, int f32) {
    return 2 * mg_round_up(C, mg_dconv_ob()) * mg_sconv_ig_qr(H, W, kh, kw, sh, sw, ph, pw, f32);
}

/* The phases' packed weights, concatenated in phase order (a, b): phase (a, b)'s (Cr/OB, O*Ta*Tb, OB) block,
   wpk[cb][(o, t, s)][c'] = weight[o, (cb*OB + c', i0a - t*sh, j0b - s*sw)] (zero past C), and its tap offsets into
   the padded dy, off[(o, t, s)] = o*Hd*Wd + (PT + da + t)*Wd + PL + db + s. Once per call. */
#define MG_SCONV_IG_PACK(NAME, T)                                                                                     \
static void NAME(T* wpk, ptrdiff_t* off, const T* weight, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t O,         \
                 ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t ph, ptrdiff_t pw) {                \
    ptrdiff_t OH = (H + 2 * ph - kh) / sh + 1, OW = (W + 2 * pw - kw) / sw + 1, PT, Hd, PL, Wd;                       \
    ptrdiff_t OB = mg_dconv_ob(), Cr = mg_round_up(C, OB), K = C * kh * kw;                                           \
    mg_sconv_ig_pad(H, kh, sh, ph, OH, &PT, &Hd);                                                                     \
    mg_sconv_ig_pad(W, kw, sw, pw, OW, &PL, &Wd);                                                                     \
    for (ptrdiff_t a = 0; a < sh; a++)                                                                                \
        for (ptrdiff_t b = 0; b < sw; b++) {                                                                          \
            mg_sconv_phase fa = mg_sconv_axis(a, H, kh, sh, ph), fb = mg_sconv_axis(b, W, kw, sw, pw);                \
            ptrdiff_t nk = O * fa.taps * fb.taps;                                                                     \
            for (ptrdiff_t o = 0; o < O; o++)                                                                         \
                for (ptrdiff_t t = 0; t < fa.taps; t++)                                                               \
                    for (ptrdiff_t s = 0; s < fb.taps; s++) {                                                         \
                        ptrdiff_t r = (o * fa.taps + t) * fb.taps + s, ij = (fa.i0 - t * sh) * kw + fb.i0 - s * sw;   \
                        off[r] = o * Hd * Wd + (PT + fa.d + t) * Wd + PL + fb.d + s;                                  \
                        for (ptrdiff_t cb = 0; cb < Cr; cb += OB)                                                     \
                            for (ptrdiff_t c = cb; c < cb + OB; c++)                                                  \
                                wpk[cb * nk + r * OB + c - cb] = c < C ? weight[o * K + c * kh * kw + ij] : (T)0;     \
                    }                                                                                                 \
            wpk += Cr * nk;                                                                                           \
            off += nk;                                                                                                \
        }                                                                                                             \
}
MG_SCONV_IG_PACK(mg_sconv_ig_pack_f32, float)
MG_SCONV_IG_PACK(mg_sconv_ig_pack_f64, double)

/* dx[n] (C, H, W) from dy[n] (O, OH, OW): dy into dyp's interior (dyp zeroed by the caller once per call), then per
   phase the tiles into yph (Cr, Qr) and its valid outputs written to dx's rows sh*u + a, columns sw*v + b; at stride
   2 in w the two phases of a row a side by side (yph holds 2 phases' outputs) and merged into dx's rows. */
#define MG_SCONV_IG_SAMPLE(NAME, T, SFX)                                                                              \
static void NAME(T* dx, const T* dy, const T* wpk, const ptrdiff_t* off, T* dyp, T* yph, ptrdiff_t C, ptrdiff_t H,    \
                 ptrdiff_t W, ptrdiff_t O, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t ph,      \
                 ptrdiff_t pw) {                                                                                      \
    ptrdiff_t OH = (H + 2 * ph - kh) / sh + 1, OW = (W + 2 * pw - kw) / sw + 1, PT, Hd, PL, Wd;                       \
    ptrdiff_t Cr = mg_round_up(C, mg_dconv_ob()), Qr = mg_sconv_ig_qr(H, W, kh, kw, sh, sw, ph, pw, sizeof(T) == 4);  \
    mg_sconv_ig_pad(H, kh, sh, ph, OH, &PT, &Hd);                                                                     \
    mg_sconv_ig_pad(W, kw, sw, pw, OW, &PL, &Wd);                                                                     \
    for (ptrdiff_t o = 0; o < O; o++)                                                                                 \
        mg_sconv_copy_##SFX(dyp + (o * Hd + PT) * Wd + PL, Wd, dy + o * OH * OW, OW, OH, OW);                         \
    for (ptrdiff_t a = 0; a < sh; a++) {                                                                              \
        mg_sconv_phase fa = mg_sconv_axis(a, H, kh, sh, ph), f0 = mg_sconv_axis(0, W, kw, sw, pw);                    \
        mg_sconv_phase f1 = mg_sconv_axis(1, W, kw, sw, pw);                                                          \
        if (fa.taps == 0) { /* no tap reaches this row phase (kh < sh): its rows are zero, and it has no weights */   \
            for (ptrdiff_t c = 0; c < C; c++)                                                                         \
                for (ptrdiff_t u = 0; u < fa.nu; u++)                                                                 \
                    memset(dx + (c * H + sh * u + a) * W, 0, W * sizeof(T));                                          \
            continue;                                                                                                 \
        }                                                                                                             \
        if (sw == 2 && fa.nu && f1.nu && (f0.taps == 0) != (f1.taps == 0)) { /* one column phase (kw < 2) */          \
            /* merged with zeros: yph's second half, zeroed by the caller and written only by the branch below, which \
               needs both column phases (f0, f1 are the same for every a: never in the same call) */                 \
            const T* zero = yph + Cr * Qr;                                                                            \
            ptrdiff_t nk = O * fa.taps * (f0.taps ? f0.taps : f1.taps);                                               \
            mg_sconv_tiles(SFX, yph, dyp, wpk, off, nk, Cr, Qr, (fa.nu - 1) * Wd + (f0.taps ? f0.nu : f1.nu));        \
            for (ptrdiff_t c = 0; c < C; c++)                                                                         \
                mg_sconv_merge2_##SFX(dx + (c * H + a) * W, sh * W, f0.taps ? yph + c * Qr : zero,                    \
                                      f0.taps ? zero : yph + c * Qr, Wd, fa.nu, W);                                   \
            wpk += Cr * nk;                                                                                           \
            off += nk;                                                                                                \
            continue;                                                                                                 \
        }                                                                                                             \
        if (sw == 2 && fa.taps && fa.nu && f0.taps && f1.taps && f1.nu) { /* f1.nu > 0: W >= 2 */                     \
            ptrdiff_t nk0 = O * fa.taps * f0.taps, nk1 = O * fa.taps * f1.taps;                                       \
            mg_sconv_tiles(SFX, yph, dyp, wpk, off, nk0, Cr, Qr, (fa.nu - 1) * Wd + f0.nu);                           \
            mg_sconv_tiles(SFX, yph + Cr * Qr, dyp, wpk + Cr * nk0, off + nk0, nk1, Cr, Qr, (fa.nu - 1) * Wd + f1.nu); \
            for (ptrdiff_t c = 0; c < C; c++)                                                                         \
                mg_sconv_merge2_##SFX(dx + (c * H + a) * W, sh * W, yph + c * Qr, yph + (Cr + c) * Qr, Wd, fa.nu, W); \
            wpk += Cr * (nk0 + nk1);                                                                                  \
            off += nk0 + nk1;                                                                                         \
            continue;                                                                                                 \
        }                                                                                                             \
        for (ptrdiff_t b = 0; b < sw; b++) {                                                                          \
            mg_sconv_phase fb = mg_sconv_axis(b, W, kw, sw, pw);                                                      \
            ptrdiff_t nk = O * fa.taps * fb.taps;                                                                     \
            const T* wph = wpk;                                                                                       \
            const ptrdiff_t* oph = off;                                                                               \
            wpk += Cr * nk;                                                                                           \
            off += nk;                                                                                                \
            if (fa.nu == 0 || fb.nu == 0)                                                                             \
                continue;                                                                                             \
            if (nk == 0) { /* no tap reaches this phase: its dx is zero */                                            \
                for (ptrdiff_t c = 0; c < C; c++)                                                                     \
                    for (ptrdiff_t u = 0; u < fa.nu; u++)                                                             \
                        for (ptrdiff_t v = 0; v < fb.nu; v++)                                                         \
                            dx[(c * H + sh * u + a) * W + sw * v + b] = 0;                                            \
                continue;                                                                                             \
            }                                                                                                         \
            mg_sconv_tiles(SFX, yph, dyp, wph, oph, nk, Cr, Qr, (fa.nu - 1) * Wd + fb.nu);                            \
            for (ptrdiff_t c = 0; c < C; c++)                                                                         \
                for (ptrdiff_t u = 0; u < fa.nu; u++) {                                                               \
                    T* dr = dx + (c * H + sh * u + a) * W + b;                                                        \
                    const T* src = yph + c * Qr + u * Wd;                                                             \
                    for (ptrdiff_t v = 0; v < fb.nu; v++)                                                             \
                        dr[sw * v] = src[v];                                                                          \
                }                                                                                                     \
        }                                                                                                             \
    }                                                                                                                 \
}
MG_SCONV_IG_SAMPLE(mg_sconv_ig_sample_f32, float, f32)
MG_SCONV_IG_SAMPLE(mg_sconv_ig_sample_f64, double, f64)

/* ---------------------------------------------------------------------------------------------------------------
   Weight gradient, over a chunk of S samples (S from the geometry alone, never the thread count):
       part[o, (c, i, j)] = sum over samples s, then (oh, ow), of
                            dy[s, o, oh, ow] * xp[s, c*CS + (sh*oh + i)*Wp + sw*ow + j]
   conv_direct.h's weight-gradient tiles (MG_DCONV_WG: its design, its tiles and its NOTE on the bits) with the
   positions stride apart in the padded x. No phase split is needed: the taps are broadcast one value at a time, so
   their stride costs nothing. */
/* elements of one sample in a chunk's scratch: its padded x and its dy transposed (Or: mg_dconv_wg_or) */
static inline ptrdiff_t mg_sconv_wg_per(ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t O, ptrdiff_t kh,
                                        ptrdiff_t kw, ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t ph, ptrdiff_t pw,
                                        int f32) {
    ptrdiff_t OH = (H + 2 * ph - kh) / sh + 1, OW = (W + 2 * pw - kw) / sw + 1;
    return C * (H + 2 * ph) * (W + 2 * pw) + OH * OW * mg_dconv_wg_or(O, f32);
}

/* part (O, K) of a chunk of S samples x (S, C, H, W), dy (S, O, OH, OW); scratch: xbuf, S*C*Hp*Wp elements, zeroed
   by the caller once per call where there is padding (every chunk writes the same interior positions of its samples,
   so the padding stays zero; unused without padding: mg_sconv_wg_copies), and dyt apart from it, S*OH*OW*Or elements
   (written whole by the transpose); S at most the scratch's (chunks differ by one sample) */
static inline int mg_sconv_wg_copies(ptrdiff_t ph, ptrdiff_t pw) { return ph != 0 || pw != 0; }
#define MG_SCONV_WG_CHUNK(NAME, T, SFX)                                                                               \
static void NAME(T* part, const T* x, const T* dy, T* xbuf, T* dyt, ptrdiff_t S, ptrdiff_t C, ptrdiff_t H,            \
                 ptrdiff_t W, ptrdiff_t O, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t ph,      \
                 ptrdiff_t pw) {                                                                                      \
    ptrdiff_t Hp = H + 2 * ph, Wp = W + 2 * pw, OH = (Hp - kh) / sh + 1, OW = (Wp - kw) / sw + 1, CS = Hp * Wp;       \
    ptrdiff_t Or = mg_dconv_wg_or(O, sizeof(T) == 4);                                                                 \
    /* NOTE: without padding the padded x is x itself: the tiles read it in place, strided (a 1x1 shortcut's          \
       subsampled copy, cold x read and a quarter of it written and read again, was 18% of its backward; the same     \
       values in the same order) */                                                                                   \
    const T* xp = x;                                                                                                  \
    if (mg_sconv_wg_copies(ph, pw)) {                                                                                 \
        /* NOTE: only the rows a tap reads (padded rows sh*oh + i, i < kh): with kh < sh, the row phases a < kh */    \
        ptrdiff_t step = kh < sh ? sh : 1, ph_n = kh < sh ? kh : 1;                                                   \
        for (ptrdiff_t c = 0; c < S * C; c++)                                                                         \
            for (ptrdiff_t a = 0; a < ph_n; a++) {                                                                    \
                ptrdiff_t h0 = (a - ph % step + step) % step, rows = h0 < H ? (H - h0 + step - 1) / step : 0;         \
                mg_sconv_copy_##SFX(xbuf + c * CS + (h0 + ph) * Wp + pw, step * Wp, x + (c * H + h0) * W, step * W,   \
                                    rows, W);                                                                         \
            }                                                                                                         \
        xp = xbuf;                                                                                                    \
    }                                                                                                                 \
    mg_dconv_wg_transpose_##SFX(dyt, dy, S, O, Or, OH * OW);                                                          \
    int rows_ = mg_wg_rows(C);                                                                                        \
    switch (mg_dconv_isa) { /* conv_direct.h's dispatch, over this chunk's names (MG_DCONV_WG_ARGS, rows_) */         \
    MG_DCONV_WG_CASES_##SFX                                                                                           \
    default:                                                                                                          \
        if (kw == 3)                                                                                                  \
            MG_DCONV_WG_CALL(mg_dconv_wg_##SFX##_scalar_k3, 0, O);                                                    \
        else                                                                                                          \
            MG_DCONV_WG_CALL(mg_dconv_wg_##SFX##_scalar_k1, 0, O);                                                    \
    }                                                                                                                 \
}
MG_SCONV_WG_CHUNK(mg_sconv_wg_chunk_f32, float, f32)
MG_SCONV_WG_CHUNK(mg_sconv_wg_chunk_f64, double, f64)

#endif
