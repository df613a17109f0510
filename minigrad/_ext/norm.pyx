"""Batch norm and group norm kernels in Cython/OpenMP. Signatures: minigrad/kernels/contract.py; the math and
its derivation: minigrad/kernels/reference/norm.py (the oracle these kernels are tested against).

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

The C helpers live in headers (norm_simd.h vectors; norm_runs.h one contiguous run; norm_channels.h batch norm;
norm_rows.h group norm rows), declared in norm_kernels.pxd. Which code path runs for which shape:

  batch norm (_bn_stats_block, _bn_dy_sums_block, _affine_row; forward and backward take the same path)
    S == 1, in cache          mg_bn1d_* (batch norm; Batch Renorm takes the paths below): inputs of at most
                              BN1D_CACHE_BYTES (512 KiB) whose rows spread over the L1's sets (_bn1d_fits):
                              blocks of 16 channels, each with all its rows, statistics, coefficients and
                              elementwise pass in one go (one call per thread, no scratch); the same operations
                              per channel as the mg_col_* path below, so the same bits
    S == 1 (BatchNorm1d)      mg_col_*: vectorized across channels, ROWS_1D (8) rows per call for the statistics,
                              ROWS_1D_DY (4) for the backward sums; float32 adds groups of MG_COL_GROUP (4) rows
                              in float32 lanes, float64 every row in double
    S > 1, float64            mg_channel_*_double: two channels per call while S < MG_SHORT_RUN (128), one
                              from there (mg_shifted_sums_double, mg_dy_sums_double: 8 double lanes)
    S > 1, float32, S < 8     one channel at a time, scalar in double (mg_f32_sums)
      8 <= S < MG_SHORT_RUN   one float32 accumulator per channel, last vector overlapping and masked
      MG_SHORT_RUN <= S < MG_LANE_RUN (512)
                              mg_channel_lane_*: four float32 accumulators in groups of MG_F32_GROUP (32)
                              vectors, widened lanes kept per channel across the rows (scratch 8*C doubles),
                              closed once by mg_lanes_finish
      S >= MG_LANE_RUN        as the lanes, but each run closed into its channel's sum (mg_f32_sums)
    float32 totals that are not finite: summed again in double (the overflow fallback)
    elementwise: mg_col_affine* (S == 1); mg_channel_affine* (full vectors per channel, last one overlapping,
      for L <= S < MG_SHORT_RUN; one channel per call otherwise)
    blocks (_bn_n_blocks), at least one per thread, so the elementwise pass rereads x (and dy) from cache: S == 1
      one block per thread; S > 1: blocks of at most BN_L2_BYTES (256 KiB; batch norm over the whole batch on a core
      with under 1 MiB of L2: BN_BATCH_L2_BYTES, 1 MiB) of input (at least one channel),
      widened to runs (c1 - c0)*S of at least BN_MIN_RUN_BYTES (4 KiB) per input, rounded up to a multiple of the
      team (equal shares of channels)
    S == 1, x of BN1D_ROWS_BYTES (4 MiB) or more, 2+ threads: the statistics by blocks of channels, then the
      elementwise pass by rows (whole rows per thread), in a second OpenMP region
    pipelined (_bn_forward_walk, _bn_backward_walk): each thread walks its contiguous blocks row by row (ghost batch
      norm: every chunk's, in one sequence), a row of one block's statistics (or sums) with the same row of the
      block before's elementwise pass; S >= MG_SHORT_RUN: both in one loop (mg_channel_lane_sums_affine_float and
      its kin; float64: mg_channel_shifted_sums_affine_double, mg_channel_dy_sums_affine2_double), else one call
      after the other
    inference: one elementwise pass, _affine_row
    one thread: the blocks in order, called directly, without an OpenMP region
  group norm (rows (n, g) of M = Cg*S values)
    forward                   statistics over the whole row (mg_shifted_sums_*), then S == 1 (layer-norm
                              shaped): mg_ln_affine, one weight per element; S > 1: mg_row_affine per channel
    backward, S > 1           per channel mg_dy_sums_* and mg_gn_dx_*, dweight/dbias partials in double per
                              (chunk of n, channel)
    backward, S == 1          mg_ln_row_sums_* (X-precision products, MG_LN_RUN per lane, then double),
                              mg_ln_dx_* with X-precision dweight/dbias partials flushed to double every LN_ROWS
                              (32) rows
  AVX-512 clones (MG_CLONES_V4, mg_clones.h): mg_shifted_sums_float and mg_row_affine_* only (the group-norm
  rows); every other helper has AVX2 and baseline clones (MG_CLONES).
  float32 vs float64: float64 adds every term in double; float32 forms x - K and the terms in float32 lanes over
  short fixed groups, then adds them in double, and takes backward sums about Kx = float(mean).
Tuning history (variants tried and their timings): docs/perf/norm-kernels.md.
"""
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport isfinite, sqrt
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memset

from minigrad._ext._arrays cimport dim, is_float32, ptr
from minigrad._ext._openmp cimport team_size
from minigrad._ext.norm_kernels cimport *  # the mg_* C helpers (declared there, one per dtype)

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
# batch norm, S > 1: blocks of at most BN_L2_BYTES of input, so that the second pass reads from L2, but runs of at
# least BN_MIN_RUN_BYTES, so that the prefetcher still follows them (_bn_n_blocks; 0 keeps one block per thread); set
# through _set_bn_blocks (tests, A/B scripts).
# NOTE: 256 KiB, half of session 30's 512 KiB, since the pipelined blocks keep two blocks in L2 at once
cdef Py_ssize_t BN_L2_BYTES = 256 << 10
# the same for batch norm over the whole batch (not ghost batch norm's chunks): BN_L2_BYTES, or 1 MiB on a core with
# less than 1 MiB of L2 (_bn_block_bytes).
# NOTE: there the two blocks cannot stay in L2 (the block before's dy, x and dx, 640 KiB at 32x64x256, beside the next
# block's stream), the second pass reads from L3 anyway and longer runs read faster; ghost batch norm's chunks
# measured no faster (docs/perf/norm-kernels.md#the-channel-kernels-on-avx2-session-36)
cdef Py_ssize_t BN_BATCH_L2_BYTES = 256 << 10
cdef Py_ssize_t BN_MIN_RUN_BYTES = 4 << 10
# BatchNorm1d (S == 1): inputs (x, or dy and x) of at most this many bytes may take the mg_bn1d_* path (_bn1d_fits)
cdef Py_ssize_t BN1D_CACHE_BYTES = 512 << 10
# BatchNorm1d on the general path, from this many bytes of x on: at 2 threads and more the elementwise pass goes by
# rows, in an OpenMP region of its own (_bn_forward, _bn_backward).
# NOTE: the second region's start costs 11-27 us (the worker's wake-up): paid back only by large inputs
cdef Py_ssize_t BN1D_ROWS_BYTES = 4 << 20


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
#      one contiguous stretch per row, into its own per-channel sums (not one channel at a time, N runs at
#      stride C*S: docs/perf/norm-kernels.md#batch-norm-blocks). Each channel's sum runs over n in order
#      whatever the blocks, so the result does not depend on n_threads;
#   2. then at once its elementwise pass (x - K)*scale + shift over the same stretches: for S > 1 the blocks are
#      sized to stay in cache between the two passes (_bn_n_blocks), so the second read is from L2 (or L3).
# zeroes the lane partials of channels [c0, c1) in the scratch lanes (8*C,): p1 = lanes + 8*c0 then
# p2 = p1 + 4*(c1 - c0), 4 doubles per channel each
cdef inline void _zero_lanes(double* lanes, Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    memset(lanes + 8 * c0, 0, 8 * (c1 - c0) * sizeof(double))


# float32 backward sums are taken about Kx = float(mean): sdyx = sum(dy*(x - mean)) from them, channels [c0, c1)
cdef inline void _about_mean(double* sdyx, const double* sdy, const double* mean,
                             Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    cdef Py_ssize_t c
    for c in range(c0, c1):
        sdyx[c] = sdyx[c] - (mean[c] - <double>(<float>mean[c])) * sdy[c]


# x: (N, C, S); s1, s2, K: (C,); lanes: scratch (8*C,) (see _zero_lanes);
# channels [c0, c1), rows [n0, n1): a call with n0 == 0 starts the sums, one with n1 == N finishes them (a block is
# summed in one call, or row by row by the pipelined _bn_forward_walk; S == 1 in one call: its rows go in groups)
cdef void _bn_stats_block(double* s1, double* s2, const double* K, const floating* x,
                          Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, Py_ssize_t c0, Py_ssize_t c1,
                          double* lanes, Py_ssize_t n0, Py_ssize_t n1) noexcept nogil:
    cdef Py_ssize_t n, c, i
    cdef double d
    cdef double* p1 = lanes + 8 * c0
    cdef double* p2 = p1 + 4 * (c1 - c0)
    cdef const floating* row
    cdef bint lane = floating is float and MG_SHORT_RUN <= S < MG_LANE_RUN
    if n0 == 0:
        for c in range(c0, c1):
            s1[c] = 0
            s2[c] = 0
        if lane:
            _zero_lanes(lanes, c0, c1)
    if S == 1:  # BatchNorm1d: walks along ROWS_1D rows at a time, vectorized across channels
        for n in range((n1 - n0 + ROWS_1D - 1) // ROWS_1D):
            i = n0 + n * ROWS_1D
            if floating is float:
                mg_col_shifted_sums_float(x + i * C + c0, C, min(ROWS_1D, n1 - i), K + c0, c1 - c0, s1 + c0,
                                          s2 + c0)
            else:
                mg_col_shifted_sums_double(x + i * C + c0, C, min(ROWS_1D, n1 - i), K + c0, c1 - c0, s1 + c0,
                                           s2 + c0)
    elif floating is float and lane:
        for n in range(n0, n1):
            mg_channel_lane_sums_float(x + (n * C + c0) * S, c1 - c0, S, K + c0, p1, p2)
        if n1 == N:
            mg_lanes_finish(p1, p2, c1 - c0, s1 + c0, s2 + c0)
    else:
        for n in range(n0, n1):
            row = x + (n * C + c0) * S
            if floating is float:
                mg_channel_shifted_sums_float(row, c1 - c0, S, K + c0, s1 + c0, s2 + c0)
            else:
                mg_channel_shifted_sums_double(row, c1 - c0, S, K + c0, s1 + c0, s2 + c0)
    if n1 < N:
        return
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


# dy, x: (N, C, S); sdy, sdyx, mean: (C,); lanes: scratch (8*C,) as _bn_stats_block's; channels [c0, c1), rows
# [n0, n1) as _bn_stats_block's
cdef void _bn_dy_sums_block(double* sdy, double* sdyx, const double* mean, const floating* dy, const floating* x,
                            Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, Py_ssize_t c0, Py_ssize_t c1,
                            double* lanes, Py_ssize_t n0, Py_ssize_t n1) noexcept nogil:
    cdef Py_ssize_t n, c, i, j
    cdef double* p1 = lanes + 8 * c0
    cdef double* p2 = p1 + 4 * (c1 - c0)
    cdef bint lane = floating is float and MG_SHORT_RUN <= S < MG_LANE_RUN
    if n0 == 0:
        for c in range(c0, c1):
            sdy[c] = 0
            sdyx[c] = 0
        if lane:
            _zero_lanes(lanes, c0, c1)
    if S == 1:  # BatchNorm1d: walks along ROWS_1D_DY rows at a time, vectorized across channels
        for n in range((n1 - n0 + ROWS_1D_DY - 1) // ROWS_1D_DY):
            j = n0 + n * ROWS_1D_DY
            i = j * C + c0
            if floating is float:
                mg_col_dy_sums_float(dy + i, x + i, C, min(ROWS_1D_DY, n1 - j), mean + c0, c1 - c0,
                                     sdy + c0, sdyx + c0)
            else:
                mg_col_dy_sums_double(dy + i, x + i, C, min(ROWS_1D_DY, n1 - j), mean + c0, c1 - c0,
                                      sdy + c0, sdyx + c0)
        if floating is float and n1 == N:
            _about_mean(sdyx, sdy, mean, c0, c1)
    elif floating is float and lane:
        for n in range(n0, n1):
            i = (n * C + c0) * S
            mg_channel_lane_dy_sums_float(dy + i, x + i, c1 - c0, S, mean + c0, p1, p2)
        if n1 == N:
            mg_lanes_finish(p1, p2, c1 - c0, sdy + c0, sdyx + c0)
            _about_mean(sdyx, sdy, mean, c0, c1)
    else:
        for n in range(n0, n1):
            i = (n * C + c0) * S
            if floating is float:
                mg_channel_dy_sums_float(dy + i, x + i, c1 - c0, S, mean + c0, sdy + c0, sdyx + c0)
            else:
                mg_channel_dy_sums_double(dy + i, x + i, c1 - c0, S, mean + c0, sdy + c0, sdyx + c0)
    if n1 < N:
        return
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


cdef Py_ssize_t _bn_n_blocks(Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, Py_ssize_t itemsize, Py_ssize_t n_arrays,
                             int n_threads, bint whole) noexcept nogil:
    """Blocks of channels over n_arrays input arrays (x; or dy and x), at least one block per thread. S == 1: one per
    thread. S > 1: blocks of at most BN_L2_BYTES (whole: the set is the whole batch, BN_BATCH_L2_BYTES) of input (at
    least one channel), widened so that each array's runs
    (c1 - c0)*S are at least BN_MIN_RUN_BYTES, then rounded up to a multiple of the team where C allows.
    NOTE: a block is read n by n in runs of (c1 - c0)*S values C*S apart; short runs defeat the hardware prefetcher,
    and whole-thread blocks make the second pass read from L3 or DRAM (docs/perf/norm-kernels.md#batch-norm-blocks,
    #2026-12-07-session-30-the-second-pass-from-l2); long runs too: the blocks of up to 4 MiB they took before
    session 32 (runs of n_arrays*S*itemsize >= 16 KiB) had the second pass read from L3, 1.1-1.7x slower at S = 1024
    to 12544 (docs/perf/norm-kernels.md#2026-12-07-session-32-float64-in-the-pipelined-row). The multiple of the
    team: 25 blocks of (256, 512, 49) gave one thread 13 of them (docs/perf/threads.md, session 34)."""
    cdef Py_ssize_t nt = min(C, max(n_threads, 1)), per_block, nb, run = S * itemsize, channel = N * run * n_arrays
    cdef Py_ssize_t budget = BN_BATCH_L2_BYTES if whole else BN_L2_BYTES
    if S == 1 or budget == 0:
        return nt
    per_block = max(1, budget // channel, (BN_MIN_RUN_BYTES + run - 1) // run)
    nb = max((C + per_block - 1) // per_block, nt)
    if nb % nt and nb + nt - nb % nt <= C:  # the threads' shares of channels then differ by one at most
        nb += nt - nb % nt
    return nb


def _cache_bytes(text):
    """A sysfs cache size ("512K", "2048K", "1M") in bytes."""
    text = text.strip()
    unit = {"K": 1 << 10, "M": 1 << 20}.get(text[-1:].upper(), 1)
    return int(text[:-1] if unit > 1 else text) * unit


def _l2_bytes(base="/sys/devices/system/cpu/cpu0/cache"):
    """cpu0's L2 size in bytes from Linux sysfs; 0 where it cannot be read."""
    import os
    try:
        for name in sorted(os.listdir(base)):
            with open(os.path.join(base, name, "level")) as f:
                if f.read().strip() != "2":
                    continue
            with open(os.path.join(base, name, "size")) as f:
                return _cache_bytes(f.read())
    except (OSError, ValueError):
        pass
    return 0


def _bn_block_bytes(Py_ssize_t l2):
    """BN_BATCH_L2_BYTES for a core with l2 bytes of L2 (0: unknown): 1 MiB under 1 MiB of L2, else BN_L2_BYTES (see
    the NOTE at BN_BATCH_L2_BYTES)."""
    return (1 << 20) if 0 < l2 < (1 << 20) else BN_L2_BYTES


BN_BATCH_L2_BYTES = _bn_block_bytes(_l2_bytes())


def _set_bn_blocks(Py_ssize_t l2_bytes, Py_ssize_t min_run_bytes, Py_ssize_t batch_l2_bytes=-1):
    """Sets BN_L2_BYTES, BN_MIN_RUN_BYTES and BN_BATCH_L2_BYTES (l2_bytes where batch_l2_bytes < 0): the short-run
    block rule of _bn_n_blocks (l2_bytes 0: one block per thread, the rule before session 30); returns the previous
    three, to be passed back."""
    global BN_L2_BYTES, BN_MIN_RUN_BYTES, BN_BATCH_L2_BYTES
    old = (BN_L2_BYTES, BN_MIN_RUN_BYTES, BN_BATCH_L2_BYTES)
    BN_L2_BYTES, BN_MIN_RUN_BYTES = l2_bytes, min_run_bytes
    BN_BATCH_L2_BYTES = l2_bytes if batch_l2_bytes < 0 else batch_l2_bytes
    return old


cdef inline double _clip(double v, double lo, double hi) noexcept nogil:
    """min(max(v, lo), hi) with NaN kept (np.clip's rule)."""
    if v < lo:
        return lo
    if v > hi:
        return hi
    return v


cdef inline void _renorm(double mean, double rstd, double running_mean, double running_var, double r_max,
                         double d_max, double eps, double* r, double* d) noexcept nogil:
    """Batch Renorm's per-channel constants (formula: reference.batch_renorm_forward), sigma = sqrt(running_var +
    eps): r = clip(sigma_B/sigma, 1/r_max, r_max) = clip(rstd_run/rstd), d = clip((mean - running_mean)*rstd_run,
    -d_max, d_max)."""
    cdef double rstd_run = 1.0 / sqrt(running_var + eps)
    r[0] = _clip(rstd_run / rstd, 1.0 / r_max, r_max)
    d[0] = _clip((mean - running_mean) * rstd_run, -d_max, d_max)


# x, y: (N, C, S); s1, s2, K: scratch (C,); lanes: scratch (8*C,); coef: scratch (3*C,), the thread's own; chunks of
# `chunk` samples (plain batch norm: one chunk of N; chunk k's mean, rstd at mean + k*C, rstd + k*C), each cut into
# nb blocks (_bn_n_blocks of its rows; block blk: channels [blk*C//nb, (blk + 1)*C//nb)) of which thread t of nt
# takes [t*nb//nt, (t + 1)*nb//nt)
# running_mean NULL: batch norm; else Batch Renorm (one chunk): y = (xhat*r + d)*w + b with r, d (C,) float64 OUT
# from running_mean, running_var, r_max, d_max (as w*r and b + w*d per channel, the Python path's coefficients)
# NOTE: pipelined: the thread's blocks, chunk after chunk, form one sequence; each row of a block's statistics (read
#   from L3) goes with the same row of the block before's elementwise pass (x from L2, y written), so the one's
#   loads overlap the other's arithmetic and stores, rather than the statistics pass waiting on L3 alone
#   (docs/perf/norm-kernels.md#2026-12-07-session-31-the-statistics-pass); runs of S >= MG_SHORT_RUN do both
#   in one loop, and only the thread's first statistics and last elementwise pass run alone, not each chunk's
#   (docs/perf/norm-kernels.md#2026-12-07-session-32-the-pipelined-row-in-one-loop).
#   Per channel the same operations in the same order as a block summed whole, so the same bits.
# affine False: the statistics and coefficients only (the caller runs the elementwise pass: BatchNorm1d by rows)
cdef void _bn_forward_walk(floating* y, double* mean, double* rstd, const floating* x, const floating* weight,
                           const floating* bias, double eps, double* s1, double* s2, double* K, double* lanes,
                           floating* coef, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, Py_ssize_t chunk, Py_ssize_t t,
                           Py_ssize_t nt, int n_threads, double* r_out, double* d_out,
                           const floating* running_mean, const floating* running_var, double r_max,
                           double d_max, bint affine=True) noexcept nogil:
    cdef floating* Kx = coef
    cdef floating* scale = coef + C
    cdef floating* shift = coef + 2 * C
    cdef const floating* xs
    cdef const floating* px = x
    cdef floating* ys
    cdef floating* py = y
    cdef double mu, r, sc, b, rr, dd
    cdef Py_ssize_t c, n, q, i, j, k = 0, n0 = 0, m, nb, blk, b1, c0, c1, p0 = 0, p1 = 0, pm = 0, rows
    m = min(chunk, N)
    nb = _bn_n_blocks(m, C, S, sizeof(floating), 1, n_threads, chunk >= N)
    blk = t * nb // nt
    b1 = (t + 1) * nb // nt
    while True:  # m == 0 (after the last chunk): only the last block's elementwise pass
        c0 = blk * C // nb if m else 0
        c1 = (blk + 1) * C // nb if m else 0
        xs = x + n0 * C * S
        ys = y + n0 * C * S
        # row by row only where there are two blocks to interleave; S == 1 always whole (its rows go in groups)
        rows = 1 if S > 1 and c1 > c0 and p1 > p0 else max(m, pm)
        for c in range(c0, c1):
            K[c] = xs[c * S]  # the shift: a value of the channel, x[n0, c, 0]
        for q in range((max(m, pm) + rows - 1) // rows):
            n = q * rows
            if affine and rows == 1 and S >= MG_SHORT_RUN and n < m and n < pm:  # both in one loop
                if n == 0:  # no rows: zeroes the block's sums
                    _bn_stats_block(s1, s2, K, xs, m, C, S, c0, c1, lanes, 0, 0)
                i = (n * C + c0) * S
                j = (n * C + p0) * S
                if floating is double:
                    mg_channel_shifted_sums_affine_double(xs + i, c1 - c0, S, K + c0, s1 + c0, s2 + c0, py + j,
                                                          px + j, p1 - p0, Kx + p0, scale + p0, shift + p0)
                elif S < MG_LANE_RUN:
                    mg_channel_lane_sums_affine_float(xs + i, c1 - c0, S, K + c0, lanes + 8 * c0,
                                                      lanes + 8 * c0 + 4 * (c1 - c0), py + j, px + j, p1 - p0,
                                                      Kx + p0, scale + p0, shift + p0)
                else:
                    mg_channel_shifted_sums_affine_float(xs + i, c1 - c0, S, K + c0, s1 + c0, s2 + c0, py + j, px + j,
                                                         p1 - p0, Kx + p0, scale + p0, shift + p0)
                if n + 1 == m:  # no rows: closes the block's lanes into its sums, checks them
                    _bn_stats_block(s1, s2, K, xs, m, C, S, c0, c1, lanes, m, m)
                continue
            if c1 > c0 and n < m:
                _bn_stats_block(s1, s2, K, xs, m, C, S, c0, c1, lanes, n, min(n + rows, m))
            if affine and p1 > p0 and n < pm:
                _affine_rows(py, px, Kx, scale, shift, C, S, p0, p1, n, min(n + rows, pm))
        if m == 0:
            return
        for c in range(c0, c1):
            r = _rstd(s1[c], s2[c], <double>(m * S), eps, &mu, K[c])
            mean[k * C + c] = mu
            rstd[k * C + c] = r
            Kx[c] = <floating>mu
            if running_mean == NULL:
                sc = r * weight[c]
                b = bias[c]
            else:
                _renorm(mu, r, running_mean[c], running_var[c], r_max, d_max, eps, &rr, &dd)
                r_out[c] = rr
                d_out[c] = dd
                sc = r * (<double>weight[c] * rr)
                b = <double>bias[c] + <double>weight[c] * dd
            scale[c] = <floating>sc
            shift[c] = <floating>(b - (mu - Kx[c]) * sc)
        p0 = c0
        p1 = c1
        pm = m
        px = xs
        py = ys
        blk += 1
        if blk == b1:  # the next chunk's blocks (their rule may differ: the last chunk may be shorter)
            n0 += m
            k += 1
            m = min(chunk, N - n0)
            if m:
                nb = _bn_n_blocks(m, C, S, sizeof(floating), 1, n_threads, chunk >= N)
                blk = t * nb // nt
                b1 = (t + 1) * nb // nt


# x, y: (N, C, S); per-channel K, scale, shift: (C,); channels [c0, c1) of rows [n0, n1)
cdef inline void _affine_rows(floating* y, const floating* x, const floating* K, const floating* scale,
                              const floating* shift, Py_ssize_t C, Py_ssize_t S, Py_ssize_t c0, Py_ssize_t c1,
                              Py_ssize_t n0, Py_ssize_t n1) noexcept nogil:
    cdef Py_ssize_t n
    for n in range(n0, n1):
        _affine_row(y + (n * C + c0) * S, x + (n * C + c0) * S, K + c0, scale + c0, shift + c0, c1 - c0, S)


# S == 1 inputs in cache: the C helpers mg_bn1d_* do a block of channels whole
cdef inline bint _bn1d_fits(Py_ssize_t N, Py_ssize_t C, Py_ssize_t nbytes, Py_ssize_t itemsize) noexcept nogil:
    """Whether mg_bn1d_* take a BatchNorm1d input of nbytes (x, or dy and x): at most BN1D_CACHE_BYTES, and a block's
    column of N rows C*itemsize bytes apart spread over the 64 sets of the L1 with at most 32 rows a set.
    NOTE: the column is read twice (statistics, elementwise pass); rows a multiple of 1-4 KiB apart pile into 1-4
    sets, and then the general path (rows read whole) was faster: docs/perf/norm-kernels.md#batchnorm1d-in-cache"""
    cdef Py_ssize_t stride = C * itemsize, sets = 64
    if nbytes > BN1D_CACHE_BYTES:
        return False
    if stride % 64 == 0:  # lines 64 B: the sets a column visits, 64/gcd(stride/64, 64)
        stride //= 64
        while stride % 2 == 0 and sets > 1:
            stride //= 2
            sets //= 2
    return N <= 32 * sets


cdef inline Py_ssize_t _bn1d_edge(Py_ssize_t blk, Py_ssize_t nb, Py_ssize_t C) noexcept nogil:
    """First channel of block blk of nb (C for blk == nb): a multiple of 8, so a block is whole vectors."""
    if blk >= nb:
        return C
    return blk * C // nb // 8 * 8


cdef inline void _bn1d_forward(floating* y, double* mean, double* rstd, const floating* x, const floating* weight,
                               const floating* bias, double eps, Py_ssize_t N, Py_ssize_t C, Py_ssize_t c0,
                               Py_ssize_t c1) noexcept nogil:
    if floating is float:
        mg_bn1d_forward_float(y, mean, rstd, x, weight, bias, eps, N, C, c0, c1)
    else:
        mg_bn1d_forward_double(y, mean, rstd, x, weight, bias, eps, N, C, c0, c1)


cdef inline void _bn1d_backward(floating* dx, floating* dweight, floating* dbias, const floating* dy,
                                const floating* x, const double* mean, const double* rstd, const floating* weight,
                                Py_ssize_t N, Py_ssize_t C, Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    if floating is float:
        mg_bn1d_backward_float(dx, dweight, dbias, dy, x, mean, rstd, weight, N, C, c0, c1)
    else:
        mg_bn1d_backward_double(dx, dweight, dbias, dy, x, mean, rstd, weight, N, C, c0, c1)


# BatchNorm1d float32 (S == 1) backward at 2+ threads, x of BN1D_ROWS_BYTES or more: the two sums split by rows, the
# same bits as one thread. Thread 0 sums rows [0, r1) into sdy, sdyx as the 1-thread walk; thread t > 0 stores the
# float32 values of its rows' groups (the values the walk widens and adds; rows split at multiples of MG_COL_GROUP,
# so the groups are the walk's) into part, group G at part + (G - r1/MG_COL_GROUP)*C; then, after the region's
# barrier, each thread adds the stored groups of its channels into the sums in row order (the walk's sequence of
# double adds), checks and finishes them; then the fused dx pass by rows.
# NOTE: by rows, not half of every row (2 KiB runs 4 KiB apart at (4096, 1024): 1.7-1.9x the CPU time of whole rows,
# docs/perf/norm-kernels.md#the-kernels-at-2-threads-on-avx2-session-37). Not the forward: its statistics the same
# way measured 1.04-1.17x the old split's time at 2 threads, the backward 0.88-0.93x
# (docs/perf/norm-kernels.md#batchnorm1ds-statistics-by-rows-at-2-threads-session-37). float64 adds each row in
# double, no float32 groups to store: it keeps the split by channels.
cdef inline Py_ssize_t _bn1d_row_edge(Py_ssize_t t, Py_ssize_t nt, Py_ssize_t N) noexcept nogil:
    """First row of thread t of nt (N for t == nt): a multiple of MG_COL_GROUP."""
    if t >= nt:
        return N
    return t * N // nt // MG_COL_GROUP * MG_COL_GROUP


cdef inline bint _bn1d_by_rows(Py_ssize_t N, Py_ssize_t nt) noexcept nogil:
    """Enough rows for every thread's share to be whole groups of ROWS_1D walks."""
    return N >= 16 * ROWS_1D * nt


# scratch for the stored groups of rows [_bn1d_row_edge(1, nt, N), N), two arrays (C,) per group
cdef inline float* _bn1d_parts(Py_ssize_t N, Py_ssize_t C, Py_ssize_t nt) noexcept nogil:
    return <float*>malloc(2 * _bn1d_n_parts(N, nt) * C * sizeof(float))


cdef inline Py_ssize_t _bn1d_n_parts(Py_ssize_t N, Py_ssize_t nt) noexcept nogil:
    return (N - _bn1d_row_edge(1, nt, N) + MG_COL_GROUP - 1) // MG_COL_GROUP


# dx, dy, x: (N, C); the backward's two reductions, ROWS_1D_DY = MG_COL_GROUP rows a group; then the fused dx pass
cdef void _bn1d_backward_rows(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                              const double* mean, const double* rstd, const float* weight, double* sdy,
                              double* sdyx, float* coef, float* part, Py_ssize_t N, Py_ssize_t C,
                              Py_ssize_t nt) noexcept nogil:
    cdef Py_ssize_t t, q, j, r0, r1, c0, c1, ng = _bn1d_n_parts(N, nt), g1 = _bn1d_row_edge(1, nt, N) // MG_COL_GROUP
    for t in prange(nt, schedule='static', num_threads=nt):
        r0 = _bn1d_row_edge(t, nt, N)
        r1 = _bn1d_row_edge(t + 1, nt, N)
        if t == 0:
            _bn_dy_sums_block(sdy, sdyx, mean, dy, x, N, C, 1, 0, C, NULL, 0, r1)
        else:
            for q in range((r1 - r0 + ROWS_1D_DY - 1) // ROWS_1D_DY):
                j = r0 + q * ROWS_1D_DY
                mg_col_dy_partials_float(dy + j * C, x + j * C, C, min(ROWS_1D_DY, r1 - j), mean, C,
                                         part + (j // MG_COL_GROUP - g1) * C, part + (ng + j // MG_COL_GROUP - g1) * C)
    for t in prange(nt, schedule='static', num_threads=nt):
        c0 = t * C // nt
        c1 = (t + 1) * C // nt
        mg_col_add_groups(part + c0, ng, C, c1 - c0, sdy + c0)
        mg_col_add_groups(part + ng * C + c0, ng, C, c1 - c0, sdyx + c0)
        _bn_dy_sums_block(sdy, sdyx, mean, dy, x, N, C, 1, c0, c1, NULL, N, N)  # no rows: about the mean, checks
        _bn_dx_coefficients_block(dweight, dbias, coef, sdy, sdyx, mean, rstd, weight, <double>N, C, c0, c1)
    for t in prange(nt, schedule='static', num_threads=nt):
        for j in range(t * N // nt, (t + 1) * N // nt):
            _affine2_row(dx + j * C, dy + j * C, x + j * C, coef, coef + 4 * C, coef + C, coef + 2 * C,
                         coef + 3 * C, C, 1)


# x, y: (N, C, S); r, d, running_mean, running_var: NULL for batch norm (see _bn_forward_walk); chunk: ghost batch
# norm's samples per chunk (N, or 0: plain batch norm), chunk k's mean, rstd at mean + k*C, rstd + k*C
cdef int _bn_forward(floating* y, double* mean, double* rstd,
                     const floating* x, const floating* weight, const floating* bias, double eps,
                     Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, int n_threads, double* r=NULL, double* d=NULL,
                     const floating* running_mean=NULL, const floating* running_var=NULL, double r_max=1.0,
                     double d_max=0.0, Py_ssize_t chunk=0) noexcept nogil:
    if chunk <= 0 or chunk > N:
        chunk = N
    cdef Py_ssize_t nb = _bn_n_blocks(chunk, C, S, sizeof(floating), 1, n_threads, chunk == N), blk, n0, m, g
    if S == 1 and running_mean == NULL and _bn1d_fits(chunk, C, chunk * C * sizeof(floating), sizeof(floating)):
        for g in range((N + chunk - 1) // chunk):  # a shorter last chunk fits too
            n0 = g * chunk
            m = min(chunk, N - n0)
            if nb == 1:
                _bn1d_forward(y + n0 * C, mean + g * C, rstd + g * C, x + n0 * C, weight, bias, eps, m, C, 0, C)
            else:
                for blk in prange(nb, schedule='static', num_threads=n_threads):
                    _bn1d_forward(y + n0 * C, mean + g * C, rstd + g * C, x + n0 * C, weight, bias, eps, m, C,
                                  _bn1d_edge(blk, nb, C), _bn1d_edge(blk + 1, nb, C))
        return 0
    cdef Py_ssize_t nt = min(nb, max(n_threads, 1)), t
    cdef double* buf = <double*>malloc(nt * 11 * C * sizeof(double))
    cdef floating* coef = <floating*>malloc(nt * 3 * C * sizeof(floating))
    cdef double* bt
    if buf == NULL or coef == NULL:
        free(buf)
        free(coef)
        return -1
    if nt == 1:  # NOTE: no OpenMP region at one thread (it costs a futex call per region)
        _bn_forward_walk(y, mean, rstd, x, weight, bias, eps, buf, buf + C, buf + 2 * C, buf + 3 * C, coef,
                         N, C, S, chunk, 0, 1, n_threads, r, d, running_mean, running_var, r_max, d_max)
    elif S == 1 and chunk == N and N * C * sizeof(floating) >= BN1D_ROWS_BYTES:
        # the statistics by channels, each thread's coefficients into one shared coef (disjoint channels)
        for t in prange(nt, schedule='static', num_threads=nt):
            bt = buf + t * 11 * C
            _bn_forward_walk(y, mean, rstd, x, weight, bias, eps, bt, bt + C, bt + 2 * C, bt + 3 * C, coef,
                             N, C, S, chunk, t, nt, n_threads, r, d, running_mean, running_var, r_max, d_max, False)
        # NOTE: the elementwise pass by rows, not by each thread's channels: a thread's half rows (2 KiB of 4 KiB
        # at (4096, 1024)) took 1.04-1.37x the CPU time of whole rows (docs/perf/threads.md, session 34)
        for t in prange(nt, schedule='static', num_threads=nt):
            _affine_rows(y, x, coef, coef + C, coef + 2 * C, C, S, 0, C, t * N // nt, (t + 1) * N // nt)
    else:  # each thread a contiguous run of blocks in every chunk, its own scratch (the chunks' block rules differ)
        for t in prange(nt, schedule='static', num_threads=nt):
            bt = buf + t * 11 * C
            _bn_forward_walk(y, mean, rstd, x, weight, bias, eps, bt, bt + C, bt + 2 * C, bt + 3 * C,
                             coef + t * 3 * C, N, C, S, chunk, t, nt, n_threads, r, d, running_mean, running_var,
                             r_max, d_max)
    free(buf)
    free(coef)
    return 0


# channels [c0, c1) from their backward sums sdy, sdyx over M values: dweight, dbias and the fused dx pass's coef
# (a, Kx, b, k, mdy at coef + 0, 1, 2, 3, 4 times C)
cdef inline void _bn_dx_coefficients_block(floating* dweight, floating* dbias, floating* coef, const double* sdy,
                                           const double* sdyx, const double* mean, const double* rstd,
                                           const floating* weight, double M, Py_ssize_t C, Py_ssize_t c0,
                                           Py_ssize_t c1) noexcept nogil:
    cdef double ad, md, bd, kd
    cdef Py_ssize_t c
    for c in range(c0, c1):
        dbias[c] = <floating>sdy[c]
        dweight[c] = <floating>(sdyx[c] * rstd[c])
        _bn_dx_coefficients(sdy[c], sdyx[c], M, mean[c], rstd[c], weight[c], &ad, &md, &bd, &kd, &coef[C + c])
        coef[c] = <floating>ad
        coef[4 * C + c] = <floating>md
        coef[2 * C + c] = <floating>bd
        coef[3 * C + c] = <floating>kd


# dx, dy, x: (N, C, S); sdy, sdyx: scratch (C,); lanes: scratch (8*C,); coef: scratch (5*C,), the thread's own;
# chunks and blocks as _bn_forward_walk's, chunk k's dweight, dbias at dweight + k*wstride, dbias + k*wstride;
# pipelined as _bn_forward_walk: each row of a block's two reductions (dy and x from L3), then the same row of the
# block before's fused dx pass (dy and x from L2); affine False: the sums and coefficients only, as _bn_forward_walk
cdef void _bn_backward_walk(floating* dx, floating* dweight, floating* dbias,
                            const floating* dy, const floating* x, const double* mean, const double* rstd,
                            const floating* weight, double* sdy, double* sdyx, double* lanes, floating* coef,
                            Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, Py_ssize_t chunk, Py_ssize_t wstride,
                            Py_ssize_t t, Py_ssize_t nt, int n_threads, bint affine=True) noexcept nogil:
    cdef floating* a = coef
    cdef floating* Kx = coef + C
    cdef floating* b = coef + 2 * C
    cdef floating* k = coef + 3 * C
    cdef floating* mdy = coef + 4 * C
    cdef const floating* gs
    cdef const floating* xs
    cdef const floating* pg = dy
    cdef const floating* px = x
    cdef floating* ds
    cdef floating* pd = dx
    cdef Py_ssize_t c, n, q, i, j, g = 0, n0 = 0, m, nb, blk, b1, c0, c1, p0 = 0, p1 = 0, pm = 0, rows
    m = min(chunk, N)
    nb = _bn_n_blocks(m, C, S, sizeof(floating), 2, n_threads, chunk >= N)
    blk = t * nb // nt
    b1 = (t + 1) * nb // nt
    while True:  # m == 0 (after the last chunk): only the last block's dx pass
        c0 = blk * C // nb if m else 0
        c1 = (blk + 1) * C // nb if m else 0
        gs = dy + n0 * C * S
        xs = x + n0 * C * S
        ds = dx + n0 * C * S
        rows = 1 if S > 1 and c1 > c0 and p1 > p0 else max(m, pm)  # as _bn_forward_walk
        for q in range((max(m, pm) + rows - 1) // rows):
            n = q * rows
            if affine and rows == 1 and S >= MG_SHORT_RUN and n < m and n < pm:  # as _bn_forward_walk's
                if n == 0:
                    _bn_dy_sums_block(sdy, sdyx, mean + g * C, gs, xs, m, C, S, c0, c1, lanes, 0, 0)
                i = (n * C + c0) * S
                j = (n * C + p0) * S
                if floating is double:
                    mg_channel_dy_sums_affine2_double(gs + i, xs + i, c1 - c0, S, mean + g * C + c0, sdy + c0,
                                                      sdyx + c0, pd + j, pg + j, px + j, p1 - p0, a + p0, mdy + p0,
                                                      Kx + p0, b + p0, k + p0)
                elif S < MG_LANE_RUN:
                    mg_channel_lane_dy_sums_affine2_float(gs + i, xs + i, c1 - c0, S, mean + g * C + c0,
                                                          lanes + 8 * c0, lanes + 8 * c0 + 4 * (c1 - c0), pd + j,
                                                          pg + j, px + j, p1 - p0, a + p0, mdy + p0, Kx + p0, b + p0,
                                                          k + p0)
                else:
                    mg_channel_dy_sums_affine2_float(gs + i, xs + i, c1 - c0, S, mean + g * C + c0, sdy + c0,
                                                     sdyx + c0, pd + j, pg + j, px + j, p1 - p0, a + p0, mdy + p0,
                                                     Kx + p0, b + p0, k + p0)
                if n + 1 == m:
                    _bn_dy_sums_block(sdy, sdyx, mean + g * C, gs, xs, m, C, S, c0, c1, lanes, m, m)
                continue
            if c1 > c0 and n < m:  # two reductions per channel, one pass
                _bn_dy_sums_block(sdy, sdyx, mean + g * C, gs, xs, m, C, S, c0, c1, lanes, n, min(n + rows, m))
            if affine and p1 > p0 and n < pm:  # the fused dx pass; xhat recomputed from x (forward saved mean, rstd)
                for j in range(n, min(n + rows, pm)):
                    i = (j * C + p0) * S
                    _affine2_row(pd + i, pg + i, px + i, a + p0, mdy + p0, Kx + p0, b + p0, k + p0, p1 - p0, S)
        if m == 0:
            return
        _bn_dx_coefficients_block(dweight + g * wstride, dbias + g * wstride, coef, sdy, sdyx, mean + g * C,
                                  rstd + g * C, weight, <double>(m * S), C, c0, c1)
        p0 = c0
        p1 = c1
        pm = m
        pg = gs
        px = xs
        pd = ds
        blk += 1
        if blk == b1:  # the next chunk's blocks, as _bn_forward_walk
            n0 += m
            g += 1
            m = min(chunk, N - n0)
            if m:
                nb = _bn_n_blocks(m, C, S, sizeof(floating), 2, n_threads, chunk >= N)
                blk = t * nb // nt
                b1 = (t + 1) * nb // nt


# dx, dy, x: (N, C, S); chunk: ghost batch norm's samples per chunk (N, or 0: plain batch norm), chunk k's mean, rstd
# at mean + k*C, rstd + k*C and its dweight, dbias at dweight + k*wstride, dbias + k*wstride
cdef int _bn_backward(floating* dx, floating* dweight, floating* dbias,
                      const floating* dy, const floating* x, const double* mean, const double* rstd,
                      const floating* weight,
                      Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, int n_threads, Py_ssize_t chunk=0,
                      Py_ssize_t wstride=0) noexcept nogil:
    if chunk <= 0 or chunk > N:
        chunk = N
    cdef Py_ssize_t nb = _bn_n_blocks(chunk, C, S, sizeof(floating), 2, n_threads, chunk == N), blk, n0, m, g
    if S == 1 and _bn1d_fits(chunk, C, 2 * chunk * C * sizeof(floating), sizeof(floating)):
        for g in range((N + chunk - 1) // chunk):  # a shorter last chunk fits too
            n0 = g * chunk
            m = min(chunk, N - n0)
            if nb == 1:
                _bn1d_backward(dx + n0 * C, dweight + g * wstride, dbias + g * wstride, dy + n0 * C, x + n0 * C,
                               mean + g * C, rstd + g * C, weight, m, C, 0, C)
            else:
                for blk in prange(nb, schedule='static', num_threads=n_threads):
                    _bn1d_backward(dx + n0 * C, dweight + g * wstride, dbias + g * wstride, dy + n0 * C, x + n0 * C,
                                   mean + g * C, rstd + g * C, weight, m, C, _bn1d_edge(blk, nb, C),
                                   _bn1d_edge(blk + 1, nb, C))
        return 0
    cdef Py_ssize_t nt = min(nb, max(n_threads, 1)), t, n
    cdef double* buf = <double*>malloc(nt * 10 * C * sizeof(double))
    cdef floating* coef = <floating*>malloc(nt * 5 * C * sizeof(floating))
    cdef double* bt
    cdef float* part
    if buf == NULL or coef == NULL:
        free(buf)
        free(coef)
        return -1
    if nt == 1:
        _bn_backward_walk(dx, dweight, dbias, dy, x, mean, rstd, weight, buf, buf + C, buf + 2 * C, coef,
                          N, C, S, chunk, wstride, 0, 1, n_threads)
    elif floating is float and S == 1 and chunk == N and N * C * sizeof(floating) >= BN1D_ROWS_BYTES and \
            _bn1d_by_rows(N, nt):
        part = _bn1d_parts(N, C, nt)
        if part == NULL:
            free(buf)
            free(coef)
            return -1
        _bn1d_backward_rows(dx, dweight, dbias, dy, x, mean, rstd, weight, buf, buf + C, coef, part, N, C, nt)
        free(part)
    elif S == 1 and chunk == N and N * C * sizeof(floating) >= BN1D_ROWS_BYTES:  # as _bn_forward's
        for t in prange(nt, schedule='static', num_threads=nt):
            bt = buf + t * 10 * C
            _bn_backward_walk(dx, dweight, dbias, dy, x, mean, rstd, weight, bt, bt + C, bt + 2 * C, coef,
                              N, C, S, chunk, wstride, t, nt, n_threads, False)
        for t in prange(nt, schedule='static', num_threads=nt):
            for n in range(t * N // nt, (t + 1) * N // nt):
                _affine2_row(dx + n * C, dy + n * C, x + n * C, coef, coef + 4 * C, coef + C, coef + 2 * C,
                             coef + 3 * C, C, S)
    else:
        for t in prange(nt, schedule='static', num_threads=nt):
            bt = buf + t * 10 * C
            _bn_backward_walk(dx, dweight, dbias, dy, x, mean, rstd, weight, bt, bt + C, bt + 2 * C,
                              coef + t * 5 * C, N, C, S, chunk, wstride, t, nt, n_threads)
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
# A block of 32 float32 rows adds ~1e-7 relative error to dweight, dbias.
# NOTE: not per-row double partials, a read-modify-write of 2*Cg doubles per row
# (docs/perf/norm-kernels.md#layer-norm-backward)
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
                       double eps, Py_ssize_t n_threads):
    """Training-mode batch norm forward (formula: reference.batch_norm_forward)."""
    n_threads = team_size(n_threads)
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


# x, y: (N, C, S); mean, rstd, r, d: (C,) float64 OUT; weight, bias, running_mean, running_var: (C,)
def batch_renorm_forward(cnp.ndarray y not None, cnp.ndarray mean not None, cnp.ndarray rstd not None,
                         cnp.ndarray r not None, cnp.ndarray d not None, cnp.ndarray x not None,
                         cnp.ndarray weight not None, cnp.ndarray bias not None, cnp.ndarray running_mean not None,
                         cnp.ndarray running_var not None, double r_max, double d_max, double eps,
                         Py_ssize_t n_threads):
    """Batch Renorm's training forward: batch_norm_forward with y = (xhat*r + d)*w + b (formula:
    reference.batch_renorm_forward)."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t N = dim(x, 0), C = dim(x, 1), S = dim(x, 2)
    cdef bint f32 = is_float32(x)
    cdef void* p_y = ptr(y), *p_mean = ptr(mean), *p_rstd = ptr(rstd), *p_r = ptr(r), *p_d = ptr(d)
    cdef void* p_x = ptr(x), *p_weight = ptr(weight), *p_bias = ptr(bias), *p_rm = ptr(running_mean)
    cdef void* p_rv = ptr(running_var)
    cdef int err
    if N * C * S == 0:
        return
    with nogil:
        if f32:
            err = _bn_forward(<float*>p_y, <double*>p_mean, <double*>p_rstd, <float*>p_x, <float*>p_weight,
                              <float*>p_bias, eps, N, C, S, n_threads, <double*>p_r, <double*>p_d, <float*>p_rm,
                              <float*>p_rv, r_max, d_max)
        else:
            err = _bn_forward(<double*>p_y, <double*>p_mean, <double*>p_rstd, <double*>p_x, <double*>p_weight,
                              <double*>p_bias, eps, N, C, S, n_threads, <double*>p_r, <double*>p_d,
                              <double*>p_rm, <double*>p_rv, r_max, d_max)
    if err:
        raise MemoryError()


# x, y: (N, C, S); running_mean, running_var, weight, bias: (C,)
def batch_norm_inference(cnp.ndarray y not None, cnp.ndarray x not None, cnp.ndarray running_mean not None,
                         cnp.ndarray running_var not None, cnp.ndarray weight not None, cnp.ndarray bias not None,
                         double eps, Py_ssize_t n_threads):
    """y = (x - running_mean)*scale + bias, scale = weight/sqrt(running_var + eps), in X precision."""
    n_threads = team_size(n_threads)
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


# Batch Renorm's backward (r, d: (C,) float64, the forward's; constants in backward): batch norm's with weight*r
# rounded to X, then per channel, after the sums, dweight = X(r*dweight + d*dbias) with dweight and dbias in X (the
# float64 products of NumPy's (w*r).astype(X) and (r*sxhat + d*sdy).astype(X), the node's composition before: the
# same bits; -ffp-contract=off keeps the sum of products unfused)
cdef int _bn_backward_renorm(floating* dx, floating* dweight, floating* dbias,
                             const floating* dy, const floating* x, const double* mean, const double* rstd,
                             const floating* weight, const double* r, const double* d,
                             Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, int n_threads) noexcept nogil:
    cdef floating* wr = <floating*>malloc(C * sizeof(floating))
    cdef Py_ssize_t c
    if wr == NULL:
        return -1
    for c in range(C):
        wr[c] = <floating>(weight[c] * r[c])
    if _bn_backward(dx, dweight, dbias, dy, x, mean, rstd, wr, N, C, S, n_threads):
        free(wr)
        return -1
    free(wr)
    for c in range(C):
        dweight[c] = <floating>(r[c] * dweight[c] + d[c] * dbias[c])
    return 0


# dx, dy, x: (N, C, S); dweight, dbias: (C,) OUT; mean, rstd: (C,) float64; weight: (C,); r, d: (C,) float64 or None
def batch_norm_backward(cnp.ndarray dx not None, cnp.ndarray dweight not None, cnp.ndarray dbias not None,
                        cnp.ndarray dy not None, cnp.ndarray x not None, cnp.ndarray mean not None,
                        cnp.ndarray rstd not None, cnp.ndarray weight not None, Py_ssize_t n_threads,
                        cnp.ndarray r=None, cnp.ndarray d=None):
    """dx = rstd*w*(dy - mean(dy) - xhat*mean(dy*xhat)); dweight = sum(dy*xhat); dbias = sum(dy). With Batch
    Renorm's r and d (both or neither): w*r for w, then dweight = r*sum(dy*xhat) + d*sum(dy)
    (reference.batch_norm_backward)."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t N = dim(x, 0), C = dim(x, 1), S = dim(x, 2)
    cdef bint f32 = is_float32(x), renorm = r is not None
    cdef void* p_dx = ptr(dx), *p_dweight = ptr(dweight), *p_dbias = ptr(dbias), *p_dy = ptr(dy), *p_x = ptr(x)
    cdef void* p_mean = ptr(mean), *p_rstd = ptr(rstd), *p_weight = ptr(weight), *p_r = NULL, *p_d = NULL
    cdef int err
    if renorm != (d is not None):  # NOTE: before ptr(None) (the raw call is unchecked)
        raise ValueError("batch_norm_backward: r and d must be given together")
    if renorm:
        p_r, p_d = ptr(r), ptr(d)
    if N * C * S == 0:
        return
    with nogil:
        if f32 and renorm:
            err = _bn_backward_renorm(<float*>p_dx, <float*>p_dweight, <float*>p_dbias, <float*>p_dy,
                                      <float*>p_x, <double*>p_mean, <double*>p_rstd, <float*>p_weight,
                                      <double*>p_r, <double*>p_d, N, C, S, n_threads)
        elif renorm:
            err = _bn_backward_renorm(<double*>p_dx, <double*>p_dweight, <double*>p_dbias, <double*>p_dy,
                                      <double*>p_x, <double*>p_mean, <double*>p_rstd, <double*>p_weight,
                                      <double*>p_r, <double*>p_d, N, C, S, n_threads)
        elif f32:
            err = _bn_backward(<float*>p_dx, <float*>p_dweight, <float*>p_dbias, <float*>p_dy,
                               <float*>p_x, <double*>p_mean, <double*>p_rstd, <float*>p_weight,
                               N, C, S, n_threads)
        else:
            err = _bn_backward(<double*>p_dx, <double*>p_dweight, <double*>p_dbias, <double*>p_dy,
                               <double*>p_x, <double*>p_mean, <double*>p_rstd, <double*>p_weight,
                               N, C, S, n_threads)
    if err:
        raise MemoryError()


# ghost batch norm: batch norm per contiguous chunk of `chunk` samples, the loop over chunks in _bn_forward and
# _bn_backward (one call per direction; the chunks' blocks pipelined as one sequence)

# x, y: (N, C, S); chunk k is samples [k*chunk, min((k + 1)*chunk, N)); mean, rstd: (G, C), G = ceil(N/chunk)
cdef int _ghost_bn_forward(floating* y, double* mean, double* rstd,
                           const floating* x, const floating* weight, const floating* bias, double eps,
                           Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, Py_ssize_t chunk, int n_threads) noexcept nogil:
    return _bn_forward(y, mean, rstd, x, weight, bias, eps, N, C, S, n_threads, NULL, NULL, NULL, NULL, 1.0, 0.0,
                       chunk)


# dx, dy, x: (N, C, S); dweight, dbias: (C,) OUT, the sums over every chunk (each chunk's in X, added in double in
# chunk order)
cdef int _ghost_bn_backward(floating* dx, floating* dweight, floating* dbias,
                            const floating* dy, const floating* x, const double* mean, const double* rstd,
                            const floating* weight, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S, Py_ssize_t chunk,
                            int n_threads) noexcept nogil:
    cdef Py_ssize_t G = (N + chunk - 1) // chunk, g, c
    cdef floating* part = <floating*>malloc(G * 2 * C * sizeof(floating))  # chunk g: dweight, then dbias
    cdef double sw, sb
    if part == NULL:
        return -1
    if _bn_backward(dx, part, part + C, dy, x, mean, rstd, weight, N, C, S, n_threads, chunk, 2 * C):
        free(part)
        return -1
    for c in range(C):
        sw = 0
        sb = 0
        for g in range(G):
            sw += part[g * 2 * C + c]
            sb += part[g * 2 * C + C + c]
        dweight[c] = <floating>sw
        dbias[c] = <floating>sb
    free(part)
    return 0


# x, y: (N, C, S); mean, rstd: (G, C) float64 OUT, G = ceil(N/chunk); weight, bias: (C,)
def ghost_batch_norm_forward(cnp.ndarray y not None, cnp.ndarray mean not None, cnp.ndarray rstd not None,
                             cnp.ndarray x not None, cnp.ndarray weight not None, cnp.ndarray bias not None,
                             Py_ssize_t chunk, double eps, Py_ssize_t n_threads):
    """batch_norm_forward per chunk of `chunk` samples (formula: reference.ghost_batch_norm_forward)."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t N = dim(x, 0), C = dim(x, 1), S = dim(x, 2)
    cdef bint f32 = is_float32(x)
    cdef void* p_y = ptr(y), *p_mean = ptr(mean), *p_rstd = ptr(rstd), *p_x = ptr(x), *p_weight = ptr(weight)
    cdef void* p_bias = ptr(bias)
    cdef int err
    if N * C * S == 0:
        return
    if chunk < 1:
        raise ValueError(f"chunk={chunk} must be >= 1")
    with nogil:
        if f32:
            err = _ghost_bn_forward(<float*>p_y, <double*>p_mean, <double*>p_rstd, <float*>p_x,
                                    <float*>p_weight, <float*>p_bias, eps, N, C, S, chunk, n_threads)
        else:
            err = _ghost_bn_forward(<double*>p_y, <double*>p_mean, <double*>p_rstd, <double*>p_x,
                                    <double*>p_weight, <double*>p_bias, eps, N, C, S, chunk, n_threads)
    if err:
        raise MemoryError()


# dx, dy, x: (N, C, S); dweight, dbias: (C,) OUT; mean, rstd: (G, C) float64; weight: (C,)
def ghost_batch_norm_backward(cnp.ndarray dx not None, cnp.ndarray dweight not None, cnp.ndarray dbias not None,
                              cnp.ndarray dy not None, cnp.ndarray x not None, cnp.ndarray mean not None,
                              cnp.ndarray rstd not None, cnp.ndarray weight not None, Py_ssize_t chunk,
                              Py_ssize_t n_threads):
    """batch_norm_backward per chunk; dweight, dbias summed over the chunks (reference.ghost_batch_norm_backward)."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t N = dim(x, 0), C = dim(x, 1), S = dim(x, 2)
    cdef bint f32 = is_float32(x)
    cdef void* p_dx = ptr(dx), *p_dweight = ptr(dweight), *p_dbias = ptr(dbias), *p_dy = ptr(dy), *p_x = ptr(x)
    cdef void* p_mean = ptr(mean), *p_rstd = ptr(rstd), *p_weight = ptr(weight)
    cdef int err
    if N * C * S == 0:
        return
    if chunk < 1:
        raise ValueError(f"chunk={chunk} must be >= 1")
    with nogil:
        if f32:
            err = _ghost_bn_backward(<float*>p_dx, <float*>p_dweight, <float*>p_dbias, <float*>p_dy,
                                     <float*>p_x, <double*>p_mean, <double*>p_rstd, <float*>p_weight,
                                     N, C, S, chunk, n_threads)
        else:
            err = _ghost_bn_backward(<double*>p_dx, <double*>p_dweight, <double*>p_dbias, <double*>p_dy,
                                     <double*>p_x, <double*>p_mean, <double*>p_rstd, <double*>p_weight,
                                     N, C, S, chunk, n_threads)
    if err:
        raise MemoryError()


# x, y: (N, C, S); mean, rstd: (N, G) float64 OUT; weight, bias: (C,)
def group_norm_forward(cnp.ndarray y not None, cnp.ndarray mean not None, cnp.ndarray rstd not None,
                       cnp.ndarray x not None, cnp.ndarray weight not None, cnp.ndarray bias not None,
                       Py_ssize_t num_groups, double eps, Py_ssize_t n_threads):
    """Group norm forward (formula: reference.group_norm_forward); rows (n, g) in parallel."""
    n_threads = team_size(n_threads)
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
                        Py_ssize_t n_threads):
    """Group norm backward (formula: reference.group_norm_backward)."""
    n_threads = team_size(n_threads)
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
    if N == 1:  # one batch's statistics (batch norm): the same rule, vectorized across channels
        if floating is float:
            mg_running_stats_float(running_mean, running_var, mean, rstd, momentum, eps, count, C)
        else:
            mg_running_stats_double(running_mean, running_var, mean, rstd, momentum, eps, count, C)
        return
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
                         double count, Py_ssize_t n_threads):
    """running = (1 - momentum)*running + momentum*stat for the mean and the unbiased variance."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t N = dim(mean, 0), C = dim(mean, 1)
    cdef bint f32 = is_float32(running_mean)
    cdef void* p_rm = ptr(running_mean), *p_rv = ptr(running_var), *p_mean = ptr(mean), *p_rstd = ptr(rstd)
    with nogil:
        if f32:
            _running_stats(<float*>p_rm, <float*>p_rv, <double*>p_mean, <double*>p_rstd, momentum, eps, count, N, C)
        else:
            _running_stats(<double*>p_rm, <double*>p_rv, <double*>p_mean, <double*>p_rstd, momentum, eps, count,
                           N, C)

