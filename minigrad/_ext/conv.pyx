"""Convolution and pooling window kernels in Cython/OpenMP: im2col, col2im, max_pool2d forward and backward.

  N batch, C channels, H, W input size, OH, OW output size, kh, kw window, (sh, sw) stride, (ph, pw) padding,
  (dh, dw) dilation, K = C*kh*kw rows of cols ordered (c, i, j), L = N*OH*OW columns ordered (n, oh, ow).
Math and layouts: minigrad/kernels/reference.py. Signatures: minigrad/kernels/contract.py.
Padding is never materialized: for each kernel offset the range of output positions that read inside the input is
computed once, and the rest is written as zeros (im2col) or skipped (col2im, pooling).
Parallel loops write disjoint memory: im2col and col2im split the batch (sample n owns the columns (n, ., .) of
cols and the plane x[n]); pooling splits the N*C planes (a plane's argmax indices point into its own plane only).
NOTE: no double accumulators here (unlike the norms): im2col and pooling only copy and compare, and col2im adds at
most kh*kw values into each dx element, in offset order (that of the reference), so X precision loses nothing
a statistic over thousands of elements would. Results do not depend on n_threads.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.string cimport memcpy, memset


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
                for oh in range(oh0, oh1):
                    xr = xc + (oh * sh + hoff) * W + woff  # row of x read by this oh; index ow*sw (ow in range)
                    if ow0 > 0:
                        memset(out + oh * OW, 0, ow0 * sizeof(floating))
                    if sw == 1:
                        memcpy(out + oh * OW + ow0, xr + ow0, (ow1 - ow0) * sizeof(floating))
                    else:
                        for ow in range(ow0, ow1):
                            out[oh * OW + ow] = xr[ow * sw]
                    if ow1 < OW:
                        memset(out + oh * OW + ow1, 0, (OW - ow1) * sizeof(floating))
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


def im2col(floating[:, ::1] cols, const floating[:, :, :, ::1] x, Py_ssize_t kh, Py_ssize_t kw,
           tuple stride, tuple padding, tuple dilation, int n_threads):
    """cols[(c, i, j), (n, oh, ow)] = xpad[n, c, oh*sh + i*dh, ow*sw + j*dw]; zero padding, never copied."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3], n
    cdef Py_ssize_t sh = stride[0], sw = stride[1], ph = padding[0], pw = padding[1]
    cdef Py_ssize_t dh = dilation[0], dw = dilation[1]
    cdef Py_ssize_t OH = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1, OW = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if N == 0 or C == 0:
        return
    for n in prange(N, nogil=True, schedule='static', num_threads=n_threads):
        _im2col_sample(&cols[0, 0], &x[0, 0, 0, 0], n, N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, OH, OW)


def col2im(floating[:, :, :, ::1] dx, const floating[:, ::1] cols, Py_ssize_t kh, Py_ssize_t kw,
           tuple stride, tuple padding, tuple dilation, int n_threads):
    """dx += col2im(cols), the adjoint of im2col (accumulates into dx)."""
    cdef Py_ssize_t N = dx.shape[0], C = dx.shape[1], H = dx.shape[2], W = dx.shape[3], n
    cdef Py_ssize_t sh = stride[0], sw = stride[1], ph = padding[0], pw = padding[1]
    cdef Py_ssize_t dh = dilation[0], dw = dilation[1]
    cdef Py_ssize_t OH = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1, OW = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if N == 0 or C == 0:
        return
    for n in prange(N, nogil=True, schedule='static', num_threads=n_threads):
        _col2im_sample(&dx[0, 0, 0, 0], &cols[0, 0], n, N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, OH, OW)


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
    if kh == 2 and kw == 2 and ph == 0 and pw == 0:  # NOTE: the common 2x2 window, unrolled
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


def max_pool2d_forward(floating[:, :, :, ::1] y, int64_t[:, :, :, ::1] argmax, const floating[:, :, :, ::1] x,
                       Py_ssize_t kh, Py_ssize_t kw, tuple stride, tuple padding, int n_threads):
    """y = max over each window, argmax = h*W + w of its first maximum (the last NaN)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t OH = y.shape[2], OW = y.shape[3], p
    cdef Py_ssize_t sh = stride[0], sw = stride[1], ph = padding[0], pw = padding[1]
    if N == 0 or C == 0:
        return
    for p in prange(N * C, nogil=True, schedule='static', num_threads=n_threads):
        _max_pool_plane(&y[0, 0, 0, 0] + p * OH * OW, &argmax[0, 0, 0, 0] + p * OH * OW,
                        &x[0, 0, 0, 0] + p * H * W, H, W, kh, kw, sh, sw, ph, pw, OH, OW)


def max_pool2d_backward(floating[:, :, :, ::1] dx, const floating[:, :, :, ::1] dy,
                        const int64_t[:, :, :, ::1] argmax, int n_threads):
    """dx = 0, then dx[n, c].flat[argmax] += dy; a plane per iteration, so the scatters never collide."""
    cdef Py_ssize_t N = dx.shape[0], C = dx.shape[1], HW = dx.shape[2] * dx.shape[3]
    cdef Py_ssize_t M = dy.shape[2] * dy.shape[3], p, k
    cdef floating* dxp
    cdef const floating* dyp
    cdef const int64_t* ap
    if N == 0 or C == 0:
        return
    for p in prange(N * C, nogil=True, schedule='static', num_threads=n_threads):
        dxp = &dx[0, 0, 0, 0] + p * HW
        dyp = &dy[0, 0, 0, 0] + p * M
        ap = &argmax[0, 0, 0, 0] + p * M
        memset(dxp, 0, HW * sizeof(floating))
        for k in range(M):
            dxp[ap[k]] += dyp[k]
