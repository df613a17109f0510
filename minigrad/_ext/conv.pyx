"""Convolution and pooling window kernels in Cython/OpenMP: im2col, col2im, the direct convolution conv2d_direct
and its weight gradient conv2d_direct_weight_grad (unit stride and dilation; their C in conv_direct.h, the weight
gradient being conv2d_strided_weight_grad's at stride (1, 1)), both gradients in one parallel region
(conv2d_direct_backward), the strided convolution and its gradients (conv_strided.h), max_pool2d forward and
backward.

  N batch, C channels, H, W input size, OH, OW output size, kh, kw window, (sh, sw) stride, (ph, pw) padding,
  (dh, dw) dilation, K = C*kh*kw rows of cols ordered (c, i, j), L = N*OH*OW columns ordered (n, oh, ow).
Math and layouts: minigrad/kernels/reference/conv.py. Signatures: minigrad/kernels/contract.py.
Padding is never materialized: for each kernel offset the range of output positions that read inside the input is
computed once, and the rest is written as zeros (im2col) or skipped (col2im, pooling).
Parallel loops write disjoint memory: im2col and col2im split the batch (sample n owns the columns (n, ., .) of
cols and the plane x[n]); pooling splits the N*C planes (a plane's argmax indices point into its own plane only).
NOTE: no double accumulators here (unlike the norms): im2col and pooling only copy and compare, and col2im adds at
most kh*kw values into each dx element, in offset order (that of the reference), so X precision loses nothing
a statistic over thousands of elements would. Results do not depend on n_threads.
"""
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.stdint cimport int64_t
from libc.string cimport memcpy, memset

from minigrad._ext._arrays cimport dim, is_float32, ptr
from minigrad._ext._openmp cimport team_size

cnp.import_array()

cdef extern from "conv_direct.h":
    void mg_dconv_init() noexcept nogil
    int mg_dconv_isa
    int MG_WG_ROWS_BELOW
    int mg_wg_rows(Py_ssize_t C) noexcept nogil
    Py_ssize_t mg_dconv_ob() noexcept nogil
    Py_ssize_t mg_dconv_xp_len(Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                               Py_ssize_t ph, Py_ssize_t pw, int f32) noexcept nogil
    Py_ssize_t mg_dconv_ypw_len(Py_ssize_t O, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t ph,
                                Py_ssize_t pw, int f32) noexcept nogil
    void mg_dconv_pack_f32(float* wpk, const float* weight, Py_ssize_t O, Py_ssize_t K) noexcept nogil
    void mg_dconv_pack_f64(double* wpk, const double* weight, Py_ssize_t O, Py_ssize_t K) noexcept nogil
    void mg_dconv_pack_flipped_f32(float* wpk, const float* weight, Py_ssize_t O, Py_ssize_t C, Py_ssize_t kh,
                                   Py_ssize_t kw) noexcept nogil
    void mg_dconv_pack_flipped_f64(double* wpk, const double* weight, Py_ssize_t O, Py_ssize_t C, Py_ssize_t kh,
                                   Py_ssize_t kw) noexcept nogil
    void mg_dconv_sample_f32(float* y, const float* x, const float* wpk, float* xp, float* ypw, Py_ssize_t C,
                             Py_ssize_t H, Py_ssize_t W, Py_ssize_t O, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t ph,
                             Py_ssize_t pw) noexcept nogil
    void mg_dconv_sample_f64(double* y, const double* x, const double* wpk, double* xp, double* ypw, Py_ssize_t C,
                             Py_ssize_t H, Py_ssize_t W, Py_ssize_t O, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t ph,
                             Py_ssize_t pw) noexcept nogil

mg_dconv_init()

# NOTE: the weight gradient's chunk of samples (padded x and dy) is kept under this many bytes, so that it stays in
# L2 while every tile of dweight runs over it; from the geometry only, so the sums do not depend on the threads.
# 768 KiB, not 512: with the chunk count made even (_wg_chunks), 512 cut the 8x8 layers into 4 chunks of 8 (6% slower
# at 1 thread than 3 chunks), 768 into 2 of 16 (as fast; docs/perf/conv.md, part 4)
DIRECT_WG_CHUNK_BYTES = 768 * 1024

# below this many input channels the weight gradient's sums run by rows, a sample a chunk (conv_direct.h, ROWS)
WG_ROWS_BELOW = MG_WG_ROWS_BELOW


cdef inline Py_ssize_t _first(Py_ssize_t off, Py_ssize_t s) noexcept nogil:
    """The smallest output index o >= 0 whose input index o*s + off is >= 0."""
    return 0 if off >= 0 else (s - 1 - off) // s


cdef inline Py_ssize_t _end(Py_ssize_t off, Py_ssize_t s, Py_ssize_t size, Py_ssize_t O) noexcept nogil:
    """One past the largest output index o < O whose input index o*s + off is < size."""
    if size - 1 - off < 0:  # NOTE: tested first: cdivision would round a negative quotient toward zero
        return 0
    return min(O, (size - 1 - off) // s + 1)


# x: (N, C, H, W), cols: (K, L); writes the columns of sample n
cdef void _im2col_sample(floating* cols,          # OUT
                         const floating* x,       # IN
                         Py_ssize_t n, Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                         Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph,
                         Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t OH,
                         Py_ssize_t OW) noexcept nogil:
    cdef Py_ssize_t c, i, j, oh, ow, hoff, woff, oh0, oh1, ow0, ow1, L = OH * OW
    cdef const floating* xc
    cdef const floating* xr
    cdef floating* out
    for c in range(C):
        xc = x + (n * C + c) * H * W
        for i in range(kh):
            hoff = i * dh - ph
            oh0 = min(_first(hoff, sh), OH)
            oh1 = max(oh0, _end(hoff, sh, H, OH))
            for j in range(kw):
                woff = j * dw - pw
                ow0 = min(_first(woff, sw), OW)
                ow1 = max(ow0, _end(woff, sw, W, OW))
                out = cols + ((c * kh + i) * kw + j) * N * L + n * L
                if oh0 > 0:
                    memset(out, 0, oh0 * OW * sizeof(floating))
                if sh == 1 and sw == 1 and OW == W and oh1 > oh0 and ow1 > ow0:
                    # NOTE: unit strides, rows W apart in x and in cols: the block is one copy of a flat run, and
                    # the entries a row takes from its neighbour (ow < ow0 or ow >= ow1: padding) are zeroed after.
                    # A copy per row (32 values in ResNet-20's first stage) cost more in calls than in copying
                    xr = xc + (oh0 + hoff) * W + woff
                    memcpy(out + oh0 * OW + ow0, xr + ow0, ((oh1 - oh0 - 1) * OW + ow1 - ow0) * sizeof(floating))
                    for oh in range(oh0, oh1):
                        for ow in range(ow0):
                            out[oh * OW + ow] = 0
                        for ow in range(ow1, OW):
                            out[oh * OW + ow] = 0
                    if oh1 < OH:
                        memset(out + oh1 * OW, 0, (OH - oh1) * OW * sizeof(floating))
                    continue
                for oh in range(oh0, oh1):
                    xr = xc + (oh * sh + hoff) * W + woff  # row of x read by this oh; index ow*sw (ow in range)
                    # NOTE: the padding columns (a few values) in loops, not memset calls, which cost more than the
                    # copy on short rows (ResNet-20's stride-2 convs: rows of 16 and 8)
                    for ow in range(ow0):
                        out[oh * OW + ow] = 0
                    if sw == 1:
                        memcpy(out + oh * OW + ow0, xr + ow0, (ow1 - ow0) * sizeof(floating))
                    elif sw == 2:  # NOTE: a constant stride: the compiler vectorizes the gather (loads + shuffles)
                        for ow in range(ow0, ow1):
                            out[oh * OW + ow] = xr[2 * ow]
                    else:
                        for ow in range(ow0, ow1):
                            out[oh * OW + ow] = xr[ow * sw]
                    for ow in range(ow1, OW):
                        out[oh * OW + ow] = 0
                if oh1 < OH:
                    memset(out + oh1 * OW, 0, (OH - oh1) * OW * sizeof(floating))


# dx: (N, C, H, W), cols: (K, L); adds the columns of sample n into dx[n]
cdef void _col2im_sample(floating* dx,            # IN/OUT
                         const floating* cols,    # IN
                         Py_ssize_t n, Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                         Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph,
                         Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t OH,
                         Py_ssize_t OW) noexcept nogil:
    cdef Py_ssize_t c, i, j, oh, ow, hoff, woff, oh0, oh1, ow0, ow1, L = OH * OW
    cdef floating* dxc
    cdef floating* dxr
    cdef const floating* src
    for c in range(C):
        dxc = dx + (n * C + c) * H * W
        for i in range(kh):
            hoff = i * dh - ph
            oh0 = _first(hoff, sh)
            oh1 = _end(hoff, sh, H, OH)
            for j in range(kw):
                woff = j * dw - pw
                ow0 = _first(woff, sw)
                ow1 = _end(woff, sw, W, OW)
                src = cols + ((c * kh + i) * kw + j) * N * L + n * L
                for oh in range(oh0, oh1):
                    dxr = dxc + (oh * sh + hoff) * W + woff
                    if sw == 1:  # NOTE: a separate unit-stride loop, which the compiler vectorizes
                        for ow in range(ow0, ow1):
                            dxr[ow] += src[oh * OW + ow]
                    else:
                        for ow in range(ow0, ow1):
                            dxr[ow * sw] += src[oh * OW + ow]


cdef void _im2col(floating* cols, const floating* x, Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                  Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw,
                  Py_ssize_t dh, Py_ssize_t dw, int n_threads) noexcept nogil:
    cdef Py_ssize_t OH = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1, OW = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    cdef Py_ssize_t n
    for n in prange(N, schedule='static', num_threads=n_threads):
        _im2col_sample(cols, x, n, N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, OH, OW)


cdef void _col2im(floating* dx, const floating* cols, Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                  Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw,
                  Py_ssize_t dh, Py_ssize_t dw, int n_threads) noexcept nogil:
    cdef Py_ssize_t OH = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1, OW = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    cdef Py_ssize_t n
    for n in prange(N, schedule='static', num_threads=n_threads):
        _col2im_sample(dx, cols, n, N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, OH, OW)


cdef inline Py_ssize_t _later_wins(const floating* x, Py_ssize_t best, Py_ssize_t k) noexcept nogil:
    """best or k (k later in window order): k when x[k] > x[best] (strict: the first maximum stays) or x[k] is NaN.
    NOTE: integer arithmetic on the comparison, no branch and no float select: on real data the comparison is a
    coin flip, and gcc compiled a select into a branch whose mispredictions made pooling 5-8x slower."""
    cdef floating v = x[k], m = x[best]
    cdef Py_ssize_t take = (v > m) | (v != v)
    return best + ((k - best) & -take)


# x: (H, W) one plane; y, argmax: (OH, OW)
cdef void _max_pool_plane(floating* y,             # OUT
                          int64_t* argmax,         # OUT
                          const floating* x,       # IN
                          Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh,
                          Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t OH,
                          Py_ssize_t OW) noexcept nogil:
    cdef Py_ssize_t oh, ow, h, w, h0, h1, w0, w1, best, k
    # NOTE: the common 2x2 window, unrolled; only where every window is whole (ceil_mode may cut the last one)
    if kh == 2 and kw == 2 and ph == 0 and pw == 0 and (OH - 1) * sh + 2 <= H and (OW - 1) * sw + 2 <= W:
        for oh in range(OH):
            for ow in range(OW):
                # as a tree, (a, b) and (c, d) then the two winners: the same first maximum / last NaN as the
                # chain in window order, with a shorter dependency chain
                k = oh * sh * W + ow * sw
                best = _later_wins(x, _later_wins(x, k, k + 1), _later_wins(x, k + W, k + W + 1))
                y[oh * OW + ow] = x[best]
                argmax[oh * OW + ow] = best
        return
    for oh in range(OH):
        h0 = max(oh * sh - ph, 0)
        h1 = min(oh * sh - ph + kh, H)
        for ow in range(OW):
            w0 = max(ow * sw - pw, 0)
            w1 = min(ow * sw - pw + kw, W)
            best = h0 * W + w0  # the window's first element (padding at most k/2: never empty)
            for h in range(h0, h1):
                for w in range(w0, w1):
                    best = _later_wins(x, best, h * W + w)
            y[oh * OW + ow] = x[best]
            argmax[oh * OW + ow] = best


cdef void _max_pool2d(floating* y, int64_t* argmax, const floating* x, Py_ssize_t NC, Py_ssize_t H,
                      Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh,
                      Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, int n_threads) noexcept nogil:
    cdef Py_ssize_t p
    # NOTE: dynamic, as conv2d_direct's samples (its NOTE); 16 planes a chunk (LeNet's 14x14 outputs: ~25 us)
    for p in prange(NC, schedule='dynamic', chunksize=16, num_threads=n_threads):
        _max_pool_plane(y + p * OH * OW, argmax + p * OH * OW, x + p * H * W, H, W, kh, kw, sh, sw, ph, pw, OH, OW)


cdef void _max_pool2d_backward(floating* dx, const floating* dy, const int64_t* argmax, Py_ssize_t NC,
                               Py_ssize_t HW, Py_ssize_t M, int n_threads) noexcept nogil:
    """dx = 0, then dx[n, c].flat[argmax] += dy; a plane per iteration, so the scatters never collide."""
    cdef Py_ssize_t p, k
    cdef floating* dxp
    cdef const floating* dyp
    cdef const int64_t* ap
    for p in prange(NC, schedule='dynamic', chunksize=16, num_threads=n_threads):
        dxp = dx + p * HW
        dyp = dy + p * M
        ap = argmax + p * M
        memset(dxp, 0, HW * sizeof(floating))
        for k in range(M):
            dxp[ap[k]] += dyp[k]


# ---------------------------------------------------------------------------------------------------------
# the def wrappers: contract signatures + n_threads (see _arrays.pxd: the contract has checked the arguments,
# the window included)

def im2col(cnp.ndarray cols not None, cnp.ndarray x not None, Py_ssize_t kh, Py_ssize_t kw,
           tuple stride, tuple padding, tuple dilation, Py_ssize_t n_threads):
    """cols[(c, i, j), (n, oh, ow)] = xpad[n, c, oh*sh + i*dh, ow*sw + j*dw]; zero padding, never copied."""
    n_threads = team_size(n_threads)
    _columns(False, x, cols, kh, kw, stride, padding, dilation, n_threads)


def col2im(cnp.ndarray dx not None, cnp.ndarray cols not None, Py_ssize_t kh, Py_ssize_t kw,
           tuple stride, tuple padding, tuple dilation, Py_ssize_t n_threads):
    """dx += col2im(cols), the adjoint of im2col (accumulates into dx)."""
    n_threads = team_size(n_threads)
    _columns(True, dx, cols, kh, kw, stride, padding, dilation, n_threads)


cdef void _columns(bint adjoint, cnp.ndarray image, cnp.ndarray cols, Py_ssize_t kh, Py_ssize_t kw, tuple stride,
                   tuple padding, tuple dilation, int n_threads) except *:
    """im2col (image -> cols) or, when ``adjoint``, col2im (cols added into image); image: (N, C, H, W)."""
    cdef Py_ssize_t N = dim(image, 0), C = dim(image, 1), H = dim(image, 2), W = dim(image, 3)
    cdef Py_ssize_t sh = stride[0], sw = stride[1], ph = padding[0], pw = padding[1]
    cdef Py_ssize_t dh = dilation[0], dw = dilation[1]
    cdef bint f32 = is_float32(image)
    cdef void* p_image = ptr(image), *p_cols = ptr(cols)
    if N * C == 0:
        return
    with nogil:
        if adjoint and f32:
            _col2im(<float*>p_image, <float*>p_cols, N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, n_threads)
        elif adjoint:
            _col2im(<double*>p_image, <double*>p_cols, N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, n_threads)
        elif f32:
            _im2col(<float*>p_cols, <float*>p_image, N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, n_threads)
        else:
            _im2col(<double*>p_cols, <double*>p_image, N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, n_threads)


cdef inline void _zero_own(void* scratch, Py_ssize_t per_thread, Py_ssize_t size, Py_ssize_t start=0) noexcept nogil:
    """Zero the calling thread's share (per_thread elements of size bytes) of a scratch laid out thread by thread,
    from element ``start`` of the share on. NOTE: called inside the kernel's parallel region, so that each thread
    zeroes (and first touches) its own share: the calling thread zeroing every share before the loop was serial work
    at 2 threads (docs/perf/threads.md)."""
    memset(<char*>scratch + (threadid() * per_thread + start) * size, 0, (per_thread - start) * size)


cdef inline void _sum_parts(floating* dw, const floating* parts, Py_ssize_t chunks, Py_ssize_t OK) noexcept nogil:
    """dw[e] = parts[0, e] + parts[1, e] + ... in chunk order (parts: (chunks, OK)). NOTE: a pass per part over
    all of dw (vectorized), each element's sum still in chunk order: the bits of one loop over the chunks per
    element, which ran scalar across the parts' stride (about 1 ms a ResNet-20 step, serial)."""
    cdef Py_ssize_t b, e
    for e in range(OK):
        dw[e] = parts[e]
    for b in range(1, chunks):
        for e in range(OK):
            dw[e] += parts[b * OK + e]


def conv2d_direct(cnp.ndarray y not None, cnp.ndarray x not None, cnp.ndarray weight not None, Py_ssize_t kh,
                  Py_ssize_t kw, tuple padding, Py_ssize_t n_threads):
    """y[n, o, oh, ow] = sum over (c, i, j) of weight[o, (c, i, j)] * xpad[n, c, oh + i, ow + j] (unit stride and
    dilation); x: (N, C, H, W), weight: (O, C*kh*kw), y: (N, O, OH, OW). A sample per iteration, each thread with
    its own padded copy and output tile (conv_direct.h)."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t N = dim(x, 0), C = dim(x, 1), H = dim(x, 2), W = dim(x, 3), O = dim(y, 1)
    cdef Py_ssize_t ph = padding[0], pw = padding[1], K = C * kh * kw, n, t
    cdef bint f32 = is_float32(x)
    if N > 0 and n_threads > N:
        n_threads = <int>N
    cdef Py_ssize_t xl = mg_dconv_xp_len(C, H, W, kh, kw, ph, pw, f32), yl = mg_dconv_ypw_len(O, H, W, kh, ph, pw, f32)
    cdef Py_ssize_t Obr = (O + mg_dconv_ob() - 1) // mg_dconv_ob() * mg_dconv_ob()
    cdef cnp.ndarray wpk = cnp.PyArray_EMPTY(1, [Obr * K], cnp.PyArray_TYPE(x), 0)
    cdef cnp.ndarray scratch = cnp.PyArray_EMPTY(1, [n_threads * (xl + yl)], cnp.PyArray_TYPE(x), 0)
    cdef void* p_y = ptr(y), *p_x = ptr(x), *p_w = ptr(weight), *p_wpk = ptr(wpk), *p_s = ptr(scratch)
    with nogil:
        if f32:
            mg_dconv_pack_f32(<float*>p_wpk, <float*>p_w, O, K)
        else:
            mg_dconv_pack_f64(<double*>p_wpk, <double*>p_w, O, K)
    with nogil, parallel(num_threads=n_threads):
        # NOTE: once per call, not per sample: each sample writes only xp's interior, the padding stays zero; each
        # thread zeroes its own scratch (not the calling thread all of it: _zero_own). Samples are handed out one
        # at a time (dynamic), not in static halves: a worker woken from its passive wait starts tens of us late
        # (more when another process holds its core), and meanwhile the calling thread takes the samples it would
        # have waited for; a sample's bits do not depend on the thread that runs it
        _zero_own(p_s, xl + yl, 4 if f32 else 8)
        if f32:
            for n in prange(N, schedule='dynamic'):
                t = threadid()
                mg_dconv_sample_f32(<float*>p_y + n * O * (H + 2 * ph - kh + 1) * (W + 2 * pw - kw + 1),
                                    <float*>p_x + n * C * H * W, <float*>p_wpk, <float*>p_s + t * (xl + yl),
                                    <float*>p_s + t * (xl + yl) + xl, C, H, W, O, kh, kw, ph, pw)
        else:
            for n in prange(N, schedule='dynamic'):
                t = threadid()
                mg_dconv_sample_f64(<double*>p_y + n * O * (H + 2 * ph - kh + 1) * (W + 2 * pw - kw + 1),
                                    <double*>p_x + n * C * H * W, <double*>p_wpk, <double*>p_s + t * (xl + yl),
                                    <double*>p_s + t * (xl + yl) + xl, C, H, W, O, kh, kw, ph, pw)


cdef Py_ssize_t _wg_chunks(Py_ssize_t N, Py_ssize_t sample_bytes, Py_ssize_t C):
    """How many chunks the weight gradient cuts N samples into: the fewest whose padded x and dy^T fit
    DIRECT_WG_CHUNK_BYTES, made even (at most N), chunk b holding samples [b*N // chunks, (b+1)*N // chunks); below
    MG_WG_ROWS_BELOW input channels (the tiles' rows variant, conv_direct.h) one sample a chunk, so that each
    sample's sum of rows is a part of its own (the parts' sums: the error's third level).
    NOTE: from N and the geometry only, never the thread count (the parts' sum order fixes the bits); even, so that
    2 threads' static halves hold N // 2 and N - N // 2 samples (ResNet-20's 8x8 layers at batch 32: 2 chunks of
    16, where 3 chunks (12, 12, 8) gave 2 threads 1.5x at best)."""
    if mg_wg_rows(C):
        return N
    cdef Py_ssize_t S = max(1, min(N, DIRECT_WG_CHUNK_BYTES // sample_bytes))
    cdef Py_ssize_t chunks = (N + S - 1) // S
    if chunks % 2 and chunks < N:
        chunks += 1
    return chunks


def conv2d_direct_weight_grad_chunks(Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t O,
                                     Py_ssize_t kh, Py_ssize_t kw, tuple padding, bint f32=True):
    """The samples in each chunk of conv2d_direct_weight_grad for this geometry, in order (for tests and notes)."""
    return conv2d_strided_weight_grad_chunks(N, C, H, W, O, kh, kw, (1, 1), padding, f32)


def conv2d_direct_weight_grad(cnp.ndarray dweight not None, cnp.ndarray x not None, cnp.ndarray dy not None,
                              Py_ssize_t kh, Py_ssize_t kw, tuple padding, Py_ssize_t n_threads):
    """dweight[o, (c, i, j)] = sum over (n, oh, ow) of dy[n, o, oh, ow] * xpad[n, c, oh + i, ow + j] (unit stride
    and dilation); x: (N, C, H, W), dy: (N, O, OH, OW), dweight: (O, C*kh*kw): conv2d_strided_weight_grad at stride
    (1, 1): its chunks, kernel and sum order (the positions one apart in the padded x)."""
    conv2d_strided_weight_grad(dweight, x, dy, kh, kw, (1, 1), padding, team_size(n_threads))


def conv2d_direct_variant(str variant=None):
    """The direct convolution's variant on this CPU: "avx512", "avx2" (with FMA) or "scalar" (fma() from libm:
    the same bits, but about 100x slower, so conv2d keeps the im2col path there). ``variant``: run that one from
    now on instead (for the tests: every variant must give the same bits); returns the one it replaced."""
    global mg_dconv_isa
    names = ("scalar", "avx2", "avx512")
    old = names[mg_dconv_isa]
    if variant is not None:
        mg_dconv_isa = -1
        mg_dconv_init()
        if names.index(variant) > mg_dconv_isa:
            raise ValueError(f"conv2d_direct_variant: this CPU cannot run {variant!r} (best: {names[mg_dconv_isa]!r})")
        mg_dconv_isa = names.index(variant)
    return old


def max_pool2d_forward(cnp.ndarray y not None, cnp.ndarray argmax not None, cnp.ndarray x not None,
                       Py_ssize_t kh, Py_ssize_t kw, tuple stride, tuple padding, Py_ssize_t n_threads):
    """y = max over each window, argmax = h*W + w of its first maximum (the last NaN)."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t NC = dim(x, 0) * dim(x, 1), H = dim(x, 2), W = dim(x, 3), OH = dim(y, 2), OW = dim(y, 3)
    cdef Py_ssize_t sh = stride[0], sw = stride[1], ph = padding[0], pw = padding[1]
    cdef bint f32 = is_float32(x)
    cdef void* p_y = ptr(y), *p_argmax = ptr(argmax), *p_x = ptr(x)
    if NC == 0:
        return
    with nogil:
        if f32:
            _max_pool2d(<float*>p_y, <int64_t*>p_argmax, <float*>p_x, NC, H, W, OH, OW, kh, kw, sh, sw,
                        ph, pw, n_threads)
        else:
            _max_pool2d(<double*>p_y, <int64_t*>p_argmax, <double*>p_x, NC, H, W, OH, OW, kh, kw, sh,
                        sw, ph, pw, n_threads)


def max_pool2d_backward(cnp.ndarray dx not None, cnp.ndarray dy not None, cnp.ndarray argmax not None,
                        Py_ssize_t n_threads):
    """dx = 0, then dx[n, c].flat[argmax] += dy."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t NC = dim(dx, 0) * dim(dx, 1), HW = dim(dx, 2) * dim(dx, 3), M = dim(dy, 2) * dim(dy, 3)
    cdef bint f32 = is_float32(dx)
    cdef void* p_dx = ptr(dx), *p_dy = ptr(dy), *p_argmax = ptr(argmax)
    if NC == 0:
        return
    with nogil:
        if f32:
            _max_pool2d_backward(<float*>p_dx, <float*>p_dy, <int64_t*>p_argmax, NC, HW, M, n_threads)
        else:
            _max_pool2d_backward(<double*>p_dx, <double*>p_dy, <int64_t*>p_argmax, NC, HW, M, n_threads)


# ---------------------------------------------------------------------------------------------------------
# the direct convolution at any stride, by the stride's phases (conv_strided.h): forward and input gradient

cdef extern from "conv_strided.h":
    Py_ssize_t mg_sconv_xq_len(Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh,
                               Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, int f32) noexcept nogil
    Py_ssize_t mg_sconv_ypw_len(Py_ssize_t O, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh,
                                Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, int f32) noexcept nogil
    void mg_sconv_offsets(Py_ssize_t* off, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                          Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw) noexcept nogil
    void mg_sconv_sample_f32(float* y, const float* x, const float* wpk, const Py_ssize_t* off, float* xq,
                             float* ypw, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t O, Py_ssize_t kh,
                             Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw) noexcept nogil
    void mg_sconv_sample_f64(double* y, const double* x, const double* wpk, const Py_ssize_t* off, double* xq,
                             double* ypw, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t O, Py_ssize_t kh,
                             Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw) noexcept nogil
    Py_ssize_t mg_sconv_ig_dyp_len(Py_ssize_t O, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                                   Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, int f32) noexcept nogil
    Py_ssize_t mg_sconv_ig_out_len(Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                                   Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, int f32) noexcept nogil
    void mg_sconv_ig_pack_f32(float* wpk, Py_ssize_t* off, const float* weight, Py_ssize_t C, Py_ssize_t H,
                              Py_ssize_t W, Py_ssize_t O, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                              Py_ssize_t ph, Py_ssize_t pw) noexcept nogil
    void mg_sconv_ig_pack_f64(double* wpk, Py_ssize_t* off, const double* weight, Py_ssize_t C, Py_ssize_t H,
                              Py_ssize_t W, Py_ssize_t O, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                              Py_ssize_t ph, Py_ssize_t pw) noexcept nogil
    void mg_sconv_ig_sample_f32(float* dx, const float* dy, const float* wpk, const Py_ssize_t* off, float* dyp,
                                float* yph, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t O, Py_ssize_t kh,
                                Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph,
                                Py_ssize_t pw) noexcept nogil
    void mg_sconv_ig_sample_f64(double* dx, const double* dy, const double* wpk, const Py_ssize_t* off,
                                double* dyp, double* yph, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t O,
                                Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph,
                                Py_ssize_t pw) noexcept nogil


def conv2d_strided(cnp.ndarray y not None, cnp.ndarray x not None, cnp.ndarray weight not None, Py_ssize_t kh,
                   Py_ssize_t kw, tuple stride, tuple padding, Py_ssize_t n_threads):
    """y[n, o, oh, ow] = sum over (c, i, j) of weight[o, (c, i, j)] * xpad[n, c, oh*sh + i, ow*sw + j] (dilation 1);
    x: (N, C, H, W), weight: (O, C*kh*kw), y: (N, O, OH, OW). x split into its stride phases per sample, then one
    tap table over them (conv_strided.h); a sample per iteration, each thread with its own scratch."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t N = dim(x, 0), C = dim(x, 1), H = dim(x, 2), W = dim(x, 3), O = dim(y, 1)
    cdef Py_ssize_t OH = dim(y, 2), OW = dim(y, 3), sh = stride[0], sw = stride[1], ph = padding[0], pw = padding[1]
    cdef Py_ssize_t K = C * kh * kw, n, t
    cdef bint f32 = is_float32(x)
    if N > 0 and n_threads > N:
        n_threads = <int>N
    cdef Py_ssize_t xl = mg_sconv_xq_len(C, H, W, kh, kw, sh, sw, ph, pw, f32)
    cdef Py_ssize_t yl = mg_sconv_ypw_len(O, H, W, kh, kw, sh, sw, ph, pw, f32)
    cdef Py_ssize_t Obr = (O + mg_dconv_ob() - 1) // mg_dconv_ob() * mg_dconv_ob()
    cdef cnp.ndarray wpk = cnp.PyArray_EMPTY(1, [Obr * K], cnp.PyArray_TYPE(x), 0)
    cdef cnp.ndarray off = cnp.PyArray_EMPTY(1, [K], cnp.NPY_INTP, 0)
    cdef cnp.ndarray scratch = cnp.PyArray_EMPTY(1, [n_threads * (xl + yl)], cnp.PyArray_TYPE(x), 0)
    cdef void* p_y = ptr(y), *p_x = ptr(x), *p_w = ptr(weight), *p_wpk = ptr(wpk), *p_s = ptr(scratch)
    cdef Py_ssize_t* p_off = <Py_ssize_t*>ptr(off)
    with nogil:
        mg_sconv_offsets(p_off, C, H, W, kh, kw, sh, sw, ph, pw)
        if f32:
            mg_dconv_pack_f32(<float*>p_wpk, <float*>p_w, O, K)
        else:
            mg_dconv_pack_f64(<double*>p_wpk, <double*>p_w, O, K)
    with nogil, parallel(num_threads=n_threads):
        # NOTE: once per call, not per sample: each sample writes only the phase planes' interior
        _zero_own(p_s, xl + yl, 4 if f32 else 8)
        if f32:
            for n in prange(N, schedule='static'):
                t = threadid()
                mg_sconv_sample_f32(<float*>p_y + n * O * OH * OW, <float*>p_x + n * C * H * W, <float*>p_wpk,
                                    p_off, <float*>p_s + t * (xl + yl), <float*>p_s + t * (xl + yl) + xl, C, H, W,
                                    O, kh, kw, sh, sw, ph, pw)
        else:
            for n in prange(N, schedule='static'):
                t = threadid()
                mg_sconv_sample_f64(<double*>p_y + n * O * OH * OW, <double*>p_x + n * C * H * W, <double*>p_wpk,
                                    p_off, <double*>p_s + t * (xl + yl), <double*>p_s + t * (xl + yl) + xl, C, H, W,
                                    O, kh, kw, sh, sw, ph, pw)


def conv2d_strided_input_grad(cnp.ndarray dx not None, cnp.ndarray dy not None, cnp.ndarray weight not None,
                              Py_ssize_t kh, Py_ssize_t kw, tuple stride, tuple padding, Py_ssize_t n_threads):
    """dx[n, c, h, w] = sum of weight[o, (c, i, j)] * dy[n, o, oh, ow] over oh*sh + i = h + ph, ow*sw + j = w + pw
    (conv2d's input gradient, dilation 1); dy: (N, O, OH, OW), weight: (O, C*kh*kw), dx: (N, C, H, W). Per sample,
    a unit-stride correlation of the padded dy per phase (h % sh, w % sw) of dx (conv_strided.h); a sample per
    iteration, each thread with its own scratch."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t N = dim(dx, 0), C = dim(dx, 1), H = dim(dx, 2), W = dim(dx, 3), O = dim(dy, 1)
    cdef Py_ssize_t OH = dim(dy, 2), OW = dim(dy, 3), sh = stride[0], sw = stride[1], ph = padding[0], pw = padding[1]
    cdef Py_ssize_t n, t, nk = O * kh * kw
    cdef bint f32 = is_float32(dx)
    if N > 0 and n_threads > N:
        n_threads = <int>N
    cdef Py_ssize_t dl = mg_sconv_ig_dyp_len(O, H, W, kh, kw, sh, sw, ph, pw, f32)
    cdef Py_ssize_t yl = mg_sconv_ig_out_len(C, H, W, kh, kw, sh, sw, ph, pw, f32)
    cdef Py_ssize_t Cr = (C + mg_dconv_ob() - 1) // mg_dconv_ob() * mg_dconv_ob()
    cdef cnp.ndarray wpk = cnp.PyArray_EMPTY(1, [Cr * nk], cnp.PyArray_TYPE(dx), 0)
    cdef cnp.ndarray off = cnp.PyArray_EMPTY(1, [nk], cnp.NPY_INTP, 0)
    cdef cnp.ndarray scratch = cnp.PyArray_EMPTY(1, [n_threads * (dl + yl)], cnp.PyArray_TYPE(dx), 0)
    cdef void* p_dx = ptr(dx), *p_dy = ptr(dy), *p_w = ptr(weight), *p_wpk = ptr(wpk), *p_s = ptr(scratch)
    cdef Py_ssize_t* p_off = <Py_ssize_t*>ptr(off)
    with nogil:
        if f32:
            mg_sconv_ig_pack_f32(<float*>p_wpk, p_off, <float*>p_w, C, H, W, O, kh, kw, sh, sw, ph, pw)
        else:
            mg_sconv_ig_pack_f64(<double*>p_wpk, p_off, <double*>p_w, C, H, W, O, kh, kw, sh, sw, ph, pw)
    with nogil, parallel(num_threads=n_threads):
        _zero_own(p_s, dl + yl, 4 if f32 else 8)  # NOTE: once per call: dy's padding stays zero
        if f32:
            for n in prange(N, schedule='static'):
                t = threadid()
                mg_sconv_ig_sample_f32(<float*>p_dx + n * C * H * W, <float*>p_dy + n * O * OH * OW, <float*>p_wpk,
                                       p_off, <float*>p_s + t * (dl + yl), <float*>p_s + t * (dl + yl) + dl, C, H,
                                       W, O, kh, kw, sh, sw, ph, pw)
        else:
            for n in prange(N, schedule='static'):
                t = threadid()
                mg_sconv_ig_sample_f64(<double*>p_dx + n * C * H * W, <double*>p_dy + n * O * OH * OW,
                                       <double*>p_wpk, p_off, <double*>p_s + t * (dl + yl),
                                       <double*>p_s + t * (dl + yl) + dl, C, H, W, O, kh, kw, sh, sw, ph, pw)


cdef extern from "conv_strided.h":
    int mg_sconv_wg_copies(Py_ssize_t ph, Py_ssize_t pw) noexcept nogil
    Py_ssize_t mg_sconv_wg_per(Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t O, Py_ssize_t kh, Py_ssize_t kw,
                               Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, int f32) noexcept nogil
    void mg_sconv_wg_chunk_f32(float* part, const float* x, const float* dy, float* xp, float* dyt, Py_ssize_t S,
                               Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t O, Py_ssize_t kh, Py_ssize_t kw,
                               Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw) noexcept nogil
    void mg_sconv_wg_chunk_f64(double* part, const double* x, const double* dy, double* xp, double* dyt,
                               Py_ssize_t S, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t O, Py_ssize_t kh,
                               Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph,
                               Py_ssize_t pw) noexcept nogil


def conv2d_strided_weight_grad(cnp.ndarray dweight not None, cnp.ndarray x not None, cnp.ndarray dy not None,
                               Py_ssize_t kh, Py_ssize_t kw, tuple stride, tuple padding, Py_ssize_t n_threads):
    """dweight[o, (c, i, j)] = sum over (n, oh, ow) of dy[n, o, oh, ow] * xpad[n, c, oh*sh + i, ow*sw + j]
    (dilation 1); x: (N, C, H, W), dy: (N, O, OH, OW), dweight: (O, C*kh*kw). The samples in chunks (from N and
    the geometry, _wg_chunks), one per iteration, each giving a part; the parts added in chunk order (conv_strided.h,
    over conv_direct.h's weight-gradient tiles). conv2d_direct_weight_grad is this at stride (1, 1)."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t N = dim(x, 0), C = dim(x, 1), H = dim(x, 2), W = dim(x, 3), O = dim(dy, 1)
    cdef Py_ssize_t sh = stride[0], sw = stride[1], ph = padding[0], pw = padding[1], K = C * kh * kw, b, t, n
    cdef Py_ssize_t CS = (H + 2 * ph) * (W + 2 * pw), L = dim(dy, 2) * dim(dy, 3)
    cdef bint f32 = is_float32(x)
    cdef Py_ssize_t size = 4 if f32 else 8, per = mg_sconv_wg_per(C, H, W, O, kh, kw, sh, sw, ph, pw, f32)
    cdef Py_ssize_t chunks = _wg_chunks(N, per * size, C)
    cdef Py_ssize_t S = (N + chunks - 1) // chunks if chunks else 1  # the largest chunk
    if n_threads > chunks:
        n_threads = <int>max(1, chunks)
    cdef cnp.ndarray parts = cnp.PyArray_EMPTY(1, [chunks * O * K], cnp.PyArray_TYPE(x), 0)
    cdef cnp.ndarray scratch = cnp.PyArray_EMPTY(1, [n_threads * S * per], cnp.PyArray_TYPE(x), 0)
    cdef void* p_dw = ptr(dweight), *p_x = ptr(x), *p_dy = ptr(dy), *p_parts = ptr(parts), *p_s = ptr(scratch)
    cdef Py_ssize_t OK = O * K
    if chunks == 0:
        memset(p_dw, 0, OK * size)
        return
    with nogil, parallel(num_threads=n_threads):
        # NOTE: once per call: each chunk writes only xp's interior; without padding xp is unused
        _zero_own(p_s, S * per, size, 0 if mg_sconv_wg_copies(ph, pw) else S * per)
        # (a thread's scratch: xp of S samples, then dyt of S samples; S the largest chunk)
        # NOTE: the chunks handed out one at a time (a part each, whichever thread: the same bits): where the worker
        # wakes late on a loaded machine the calling thread takes its chunks; the stem's 32 one-sample chunks at 2
        # threads 194 against 216 us a call static (docs/perf/threads.md, session 35)
        if f32:
            for b in prange(chunks, schedule='dynamic'):
                t = threadid()
                n = b * N // chunks  # the chunk's first sample
                mg_sconv_wg_chunk_f32(<float*>p_parts + b * OK, <float*>p_x + n * C * H * W,
                                      <float*>p_dy + n * O * L, <float*>p_s + t * S * per,
                                      <float*>p_s + t * S * per + S * C * CS, (b + 1) * N // chunks - n, C, H, W,
                                      O, kh, kw, sh, sw, ph, pw)
        else:
            for b in prange(chunks, schedule='dynamic'):
                t = threadid()
                n = b * N // chunks
                mg_sconv_wg_chunk_f64(<double*>p_parts + b * OK, <double*>p_x + n * C * H * W,
                                      <double*>p_dy + n * O * L, <double*>p_s + t * S * per,
                                      <double*>p_s + t * S * per + S * C * CS, (b + 1) * N // chunks - n, C, H, W,
                                      O, kh, kw, sh, sw, ph, pw)
    with nogil:  # NOTE: the parts in chunk order, on the calling thread: a few microseconds vectorized, where a
        if f32:  # second loop in the region would add a barrier, a sleep and a wake-up under the passive wait
            _sum_parts(<float*>p_dw, <float*>p_parts, chunks, OK)
        else:
            _sum_parts(<double*>p_dw, <double*>p_parts, chunks, OK)


def conv2d_strided_weight_grad_chunks(Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t O,
                                      Py_ssize_t kh, Py_ssize_t kw, tuple stride, tuple padding, bint f32=True):
    """The samples in each chunk of conv2d_strided_weight_grad for this geometry, in order (for tests and notes)."""
    cdef Py_ssize_t per = mg_sconv_wg_per(C, H, W, O, kh, kw, stride[0], stride[1], padding[0], padding[1], f32)
    cdef Py_ssize_t chunks = _wg_chunks(N, per * (4 if f32 else 8), C)
    return [(b + 1) * N // chunks - b * N // chunks for b in range(chunks)]


def conv2d_direct_backward(cnp.ndarray dx not None, cnp.ndarray dweight not None, cnp.ndarray x not None,
                           cnp.ndarray dy not None, cnp.ndarray weight not None, Py_ssize_t kh, Py_ssize_t kw,
                           tuple padding, Py_ssize_t n_threads):
    """conv2d_direct's two gradients in one parallel region: dweight as conv2d_direct_weight_grad (its chunks, each
    giving a part, the parts added in chunk order after the region) and dx as conv2d_direct of dy with the flipped,
    transposed weight at padding (kh-1-ph, kw-1-pw), a sample per item. NOTE: one region, not two: under the passive
    wait each region costs a wake-up of the worker, and on a loaded machine the main thread waits at each region's
    end for a worker that was queued behind another process (docs/perf/threads.md, session 31). The chunks come
    first, the samples (smaller) last, handed out one at a time; no item's bits depend on the thread that runs it."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t N = dim(x, 0), C = dim(x, 1), H = dim(x, 2), W = dim(x, 3), O = dim(dy, 1)
    cdef Py_ssize_t P = dim(dy, 2), Q = dim(dy, 3), ph = padding[0], pw = padding[1], K = C * kh * kw, OK = O * K
    cdef Py_ssize_t qh = kh - 1 - ph, qw = kw - 1 - pw, CS = (H + 2 * ph) * (W + 2 * pw), b, t, n, item
    cdef bint f32 = is_float32(x)
    cdef Py_ssize_t size = 4 if f32 else 8, per = mg_sconv_wg_per(C, H, W, O, kh, kw, 1, 1, ph, pw, f32)
    cdef Py_ssize_t chunks = _wg_chunks(N, per * size, C)
    cdef Py_ssize_t S = (N + chunks - 1) // chunks if chunks else 1  # the largest chunk
    # (a thread's scratch: the weight gradient's xp and dyt of S samples, then the input gradient's padded dy and
    # output tile)
    cdef Py_ssize_t wl = S * per, xl = mg_dconv_xp_len(O, P, Q, kh, kw, qh, qw, f32)
    cdef Py_ssize_t yl = mg_dconv_ypw_len(C, P, Q, kh, qh, qw, f32), T = wl + xl + yl
    if n_threads > chunks + N:
        n_threads = <int>(chunks + N)
    cdef Py_ssize_t Cbr = (C + mg_dconv_ob() - 1) // mg_dconv_ob() * mg_dconv_ob()
    cdef cnp.ndarray wpk = cnp.PyArray_EMPTY(1, [Cbr * O * kh * kw], cnp.PyArray_TYPE(x), 0)
    cdef cnp.ndarray parts = cnp.PyArray_EMPTY(1, [chunks * OK], cnp.PyArray_TYPE(x), 0)
    cdef cnp.ndarray scratch = cnp.PyArray_EMPTY(1, [n_threads * T], cnp.PyArray_TYPE(x), 0)
    cdef void* p_dx = ptr(dx), *p_dw = ptr(dweight), *p_x = ptr(x), *p_dy = ptr(dy), *p_w = ptr(weight)
    cdef void* p_wpk = ptr(wpk), *p_parts = ptr(parts), *p_s = ptr(scratch)
    if chunks == 0:  # no samples
        memset(p_dw, 0, OK * size)
        return
    with nogil:
        if f32:
            mg_dconv_pack_flipped_f32(<float*>p_wpk, <float*>p_w, O, C, kh, kw)
        else:
            mg_dconv_pack_flipped_f64(<double*>p_wpk, <double*>p_w, O, C, kh, kw)
    with nogil, parallel(num_threads=n_threads):
        # NOTE: once per call: each chunk and each sample writes only its xp's interior; without padding the weight
        # gradient's xp is unused
        _zero_own(p_s, T, size, 0 if mg_sconv_wg_copies(ph, pw) else wl)
        if f32:
            for item in prange(chunks + N, schedule='dynamic'):
                t = threadid()
                if item < chunks:
                    b = item
                    n = b * N // chunks  # the chunk's first sample
                    mg_sconv_wg_chunk_f32(<float*>p_parts + b * OK, <float*>p_x + n * C * H * W,
                                          <float*>p_dy + n * O * P * Q, <float*>p_s + t * T,
                                          <float*>p_s + t * T + S * C * CS, (b + 1) * N // chunks - n, C, H, W,
                                          O, kh, kw, 1, 1, ph, pw)
                else:
                    n = item - chunks
                    mg_dconv_sample_f32(<float*>p_dx + n * C * H * W, <float*>p_dy + n * O * P * Q,
                                        <float*>p_wpk, <float*>p_s + t * T + wl, <float*>p_s + t * T + wl + xl,
                                        O, P, Q, C, kh, kw, qh, qw)
        else:
            for item in prange(chunks + N, schedule='dynamic'):
                t = threadid()
                if item < chunks:
                    b = item
                    n = b * N // chunks
                    mg_sconv_wg_chunk_f64(<double*>p_parts + b * OK, <double*>p_x + n * C * H * W,
                                          <double*>p_dy + n * O * P * Q, <double*>p_s + t * T,
                                          <double*>p_s + t * T + S * C * CS, (b + 1) * N // chunks - n, C, H, W,
                                          O, kh, kw, 1, 1, ph, pw)
                else:
                    n = item - chunks
                    mg_dconv_sample_f64(<double*>p_dx + n * C * H * W, <double*>p_dy + n * O * P * Q,
                                        <double*>p_wpk, <double*>p_s + t * T + wl, <double*>p_s + t * T + wl + xl,
                                        O, P, Q, C, kh, kw, qh, qw)
    with nogil:
        if f32:
            _sum_parts(<float*>p_dw, <float*>p_parts, chunks, OK)
        else:
            _sum_parts(<double*>p_dw, <double*>p_parts, chunks, OK)


def conv2d_strided_backward(cnp.ndarray dx not None, cnp.ndarray dweight not None, cnp.ndarray x not None,
                            cnp.ndarray dy not None, cnp.ndarray weight not None, Py_ssize_t kh, Py_ssize_t kw,
                            tuple stride, tuple padding, Py_ssize_t n_threads):
    """conv2d_strided's two gradients in one parallel region, as conv2d_direct_backward: the chunks of
    conv2d_strided_weight_grad (the parts added in chunk order after the region), then the samples of
    conv2d_strided_input_grad, handed out one at a time."""
    n_threads = team_size(n_threads)
    cdef Py_ssize_t N = dim(x, 0), C = dim(x, 1), H = dim(x, 2), W = dim(x, 3), O = dim(dy, 1)
    cdef Py_ssize_t OH = dim(dy, 2), OW = dim(dy, 3), sh = stride[0], sw = stride[1], ph = padding[0], pw = padding[1]
    cdef Py_ssize_t K = C * kh * kw, OK = O * K, nk = O * kh * kw, CS = (H + 2 * ph) * (W + 2 * pw), b, t, n, item
    cdef bint f32 = is_float32(x)
    cdef Py_ssize_t size = 4 if f32 else 8, per = mg_sconv_wg_per(C, H, W, O, kh, kw, sh, sw, ph, pw, f32)
    cdef Py_ssize_t chunks = _wg_chunks(N, per * size, C)
    cdef Py_ssize_t S = (N + chunks - 1) // chunks if chunks else 1  # the largest chunk
    # (a thread's scratch: the weight gradient's xp and dyt of S samples, then the input gradient's padded dy and
    # phase outputs)
    cdef Py_ssize_t wl = S * per, dl = mg_sconv_ig_dyp_len(O, H, W, kh, kw, sh, sw, ph, pw, f32)
    cdef Py_ssize_t yl = mg_sconv_ig_out_len(C, H, W, kh, kw, sh, sw, ph, pw, f32), T = wl + dl + yl
    if n_threads > chunks + N:
        n_threads = <int>(chunks + N)
    cdef Py_ssize_t Cr = (C + mg_dconv_ob() - 1) // mg_dconv_ob() * mg_dconv_ob()
    cdef cnp.ndarray wpk = cnp.PyArray_EMPTY(1, [Cr * nk], cnp.PyArray_TYPE(x), 0)
    cdef cnp.ndarray off = cnp.PyArray_EMPTY(1, [nk], cnp.NPY_INTP, 0)
    cdef cnp.ndarray parts = cnp.PyArray_EMPTY(1, [chunks * OK], cnp.PyArray_TYPE(x), 0)
    cdef cnp.ndarray scratch = cnp.PyArray_EMPTY(1, [n_threads * T], cnp.PyArray_TYPE(x), 0)
    cdef void* p_dx = ptr(dx), *p_dw = ptr(dweight), *p_x = ptr(x), *p_dy = ptr(dy), *p_w = ptr(weight)
    cdef void* p_wpk = ptr(wpk), *p_parts = ptr(parts), *p_s = ptr(scratch)
    cdef Py_ssize_t* p_off = <Py_ssize_t*>ptr(off)
    if chunks == 0:  # no samples
        memset(p_dw, 0, OK * size)
        return
    with nogil:
        if f32:
            mg_sconv_ig_pack_f32(<float*>p_wpk, p_off, <float*>p_w, C, H, W, O, kh, kw, sh, sw, ph, pw)
        else:
            mg_sconv_ig_pack_f64(<double*>p_wpk, p_off, <double*>p_w, C, H, W, O, kh, kw, sh, sw, ph, pw)
    with nogil, parallel(num_threads=n_threads):
        # NOTE: once per call: each chunk writes only xp's interior (unused without padding), dy's padding stays zero
        _zero_own(p_s, T, size, 0 if mg_sconv_wg_copies(ph, pw) else wl)
        if f32:
            for item in prange(chunks + N, schedule='dynamic'):
                t = threadid()
                if item < chunks:
                    b = item
                    n = b * N // chunks  # the chunk's first sample
                    mg_sconv_wg_chunk_f32(<float*>p_parts + b * OK, <float*>p_x + n * C * H * W,
                                          <float*>p_dy + n * O * OH * OW, <float*>p_s + t * T,
                                          <float*>p_s + t * T + S * C * CS, (b + 1) * N // chunks - n, C, H, W,
                                          O, kh, kw, sh, sw, ph, pw)
                else:
                    n = item - chunks
                    mg_sconv_ig_sample_f32(<float*>p_dx + n * C * H * W, <float*>p_dy + n * O * OH * OW,
                                           <float*>p_wpk, p_off, <float*>p_s + t * T + wl,
                                           <float*>p_s + t * T + wl + dl, C, H, W, O, kh, kw, sh, sw, ph, pw)
        else:
            for item in prange(chunks + N, schedule='dynamic'):
                t = threadid()
                if item < chunks:
                    b = item
                    n = b * N // chunks
                    mg_sconv_wg_chunk_f64(<double*>p_parts + b * OK, <double*>p_x + n * C * H * W,
                                          <double*>p_dy + n * O * OH * OW, <double*>p_s + t * T,
                                          <double*>p_s + t * T + S * C * CS, (b + 1) * N // chunks - n, C, H, W,
                                          O, kh, kw, sh, sw, ph, pw)
                else:
                    n = item - chunks
                    mg_sconv_ig_sample_f64(<double*>p_dx + n * C * H * W, <double*>p_dy + n * O * OH * OW,
                                           <double*>p_wpk, p_off, <double*>p_s + t * T + wl,
                                           <double*>p_s + t * T + wl + dl, C, H, W, O, kh, kw, sh, sw, ph, pw)
    with nogil:
        if f32:
            _sum_parts(<float*>p_dw, <float*>p_parts, chunks, OK)
        else:
            _sum_parts(<double*>p_dw, <double*>p_parts, chunks, OK)
