"""Decorrelated batch norm's kernels in NumPy (Huang et al., 2018: ZCA whitening of groups of channels).

Signatures and shapes: ``minigrad.kernels.contract`` (the zca_* kernels, sym_eigh, running_average_update); the
math and its backward: minigrad/nn/decorrelated.py. Legend: x (N, C, S); the channels in G groups of g (group k:
channels [k*g, min((k + 1)*g, C)), the last group padded with zeros past C); m = N*S samples per channel.

For one group, with u = x - shift (shift = X(mean), so u is exact where x is near the mean) and d = mean - shift
(float64, under half an ulp of the mean):
    cov = sum(u u^T)/m - d d^T = E[(x - mean)(x - mean)^T]          the biased covariance
    cov + eps I = U diag(lam) U^T,   W = (cov + eps I)^(-1/2) = U diag(1/s) U^T,   s = sqrt(lam)
    y = diag(w) W (x - mean) + b = M u + (b - M d),   M = diag(w) W
The passes over the activation run in x's dtype (the products of the covariance's GEMM, the whitening GEMM); the
g x g algebra in float64 (LAPACK's eigh). These are the numpy backend's formulas, bit for bit those of
decorrelated.py before the kernels moved here.
"""
import numpy as np

from .phases import channel_stats


def put_blocks(dst, src):
    """Copy ``src`` (N, C, S) into the blocks ``dst`` (N, G, g, S) (a view), zeros in the padding past C."""
    N, G, g, S = dst.shape
    C = src.shape[1]
    if G * g == C:
        dst[...] = src.reshape(N, G, g, S)
        return
    r = C - (G - 1) * g
    dst[:, :G - 1] = src[:, :(G - 1) * g].reshape(N, G - 1, g, S)
    dst[:, G - 1, :r] = src[:, (G - 1) * g:]
    dst[:, G - 1, r:] = 0


def group_cov(cov, x, shift, g):
    """cov[k] = sum over n, s of u u^T for group k's rows of u = x - shift: the products in x's dtype, batched over
    (n, k), summed over n in float64."""
    N, C, S = x.shape
    G = cov.shape[0]
    u = np.zeros((N, G, g, S), x.dtype)
    put_blocks(u, x - shift[:, None])
    # NOTE: two products, not u @ u^T: numpy sends A @ A^T to syrk, several times slower here
    h = g // 2 + 1
    uT = np.swapaxes(u, -1, -2)
    cov[:, :h] = np.matmul(u[:, :, :h], uT).sum(axis=0, dtype=np.float64)
    cov[:, h:] = np.matmul(u[:, :, h:], uT).sum(axis=0, dtype=np.float64)


def group_whiten(y, x, shift, M, bias, g):
    """y = M[k] (x - shift) + bias on group k's channels, in x's dtype."""
    N, C, S = x.shape
    G = M.shape[0]
    u = np.zeros((N, G, g, S), x.dtype)
    put_blocks(u, x - shift[:, None])
    y[...] = np.matmul(M, u).reshape(N, G * g, S)[:, :C] + bias[:, None]


def sym_eigh(lam, U, A, n_threads=1):
    """lam[k], U[k] = the ascending eigenvalues and orthonormal eigenvectors (columns) of symmetric A[k] (LAPACK)."""
    lam[...], U[...] = np.linalg.eigh(A)


def zca_forward(y, cov, lam, U, W, s, shift, dshift, mean, x, weight, bias, group_size, eps, n_threads=1):
    """Decorrelated batch norm's training forward (the module docstring's formulas): writes y, mean, shift,
    dshift = d, cov (biased, without eps), lam and U (of cov + eps I), s = sqrt(max(lam, eps)) and W."""
    N, C, S = x.shape
    G, g, m = cov.shape[0], group_size, N * S
    channel_stats(mean, np.empty(C), x, True)
    shift[...] = mean.astype(x.dtype)
    dshift[...] = 0.0
    dshift.reshape(-1)[:C] = mean - shift
    d = dshift
    group_cov(cov, x, shift, g)
    cov[...] = cov / m - d[:, :, None] * d[:, None, :]
    sym_eigh(lam, U, cov + eps * np.eye(g))
    # NOTE: lam >= eps in exact arithmetic; the clamp only removes rounding below it
    s[...] = np.sqrt(np.maximum(lam, eps))
    W[...] = (U / s[:, None, :]) @ np.swapaxes(U, 1, 2)
    M = W * weight[:, :, None]  # diag(w) W
    b = bias - (M @ d[:, :, None]).reshape(-1)[:C]
    group_whiten(y, x, shift, M.astype(y.dtype), b.astype(y.dtype), g)


def zca_rows(B, dy, x, shift, group_size, n_threads=1):
    """B[n, k] = group k's rows [dy; x - shift; 1] (zeros past C), the backward's GEMM operand."""
    g = group_size
    put_blocks(B[:, :, :g], dy)
    put_blocks(B[:, :, g:2 * g], x - shift[:, None])
    B[:, :, 2 * g] = 1


def zca_backward_p1(P, sdy, dy, x, shift, group_size, n_threads=1):
    """P[k] = sum over n, s of dY u^T and sdy[k] = sum dY on group k's rows (zeros past C): one batched GEMM of the
    rows [dy; u; 1] in X (zca_rows'), [dY] [u; 1]^T per sample, summed over n in float64 (the backward's bits before
    these kernels)."""
    N, C, S = x.shape
    G, g = P.shape[:2]
    B = np.empty((N, G, 2 * g + 1, S), x.dtype)
    zca_rows(B, dy, x, shift, g)
    P1 = np.matmul(B[:, :, :g], np.swapaxes(B[:, :, g:], -1, -2)).sum(axis=0, dtype=np.float64)
    P[...] = P1[:, :, :g]
    sdy[...] = P1[:, :, g]


def zca_backward_dx(dx, dy, x, shift, F, group_size, n_threads=1):
    """dx = F[k] [dY; u; 1] on group k's rows: one batched GEMM in X (the backward's bits before these kernels)."""
    N, C, S = x.shape
    G, g = F.shape[:2]
    B = np.empty((N, G, 2 * g + 1, S), x.dtype)
    zca_rows(B, dy, x, shift, g)
    if G * g == C:
        np.matmul(F, B, out=dx.reshape(N, G, g, S))
    else:
        dx[...] = np.matmul(F, B).reshape(N, G * g, S)[:, :C]


def running_average_update(running, new, momentum, scale, n_threads=1):
    """running = (1 - momentum)*running + momentum*(new*scale), rounded to running's dtype once. NOTE: NumPy rounds
    the product (1 - momentum)*running to a float32 running first (a Python float times a float32 array)."""
    np.add((1.0 - momentum) * running, momentum * (new * scale), out=running, casting="unsafe")


def pad_identity(a, C):
    """``a`` (G, g, g) with the padded part of the last block (rows or columns past channel C) the identity's, in
    place; returns ``a``."""
    G, g = a.shape[:2]
    r = C - (G - 1) * g
    if r < g:
        a[-1, r:, :] = 0
        a[-1, :, r:] = 0
        a[-1, r:, r:] = np.eye(g - r)
    return a


def zca_running_update(running_mean, running_cov, running_whitening, mean, cov, whitening, momentum, scale,
                       group_size, n_threads=1, update=running_average_update):
    """running_average_update of the three running statistics: the mean, the covariance times ``scale`` and the
    whitening matrix, the last group's padding averaging in the identity. ``update(running, new, momentum, scale)``:
    another backend's running_average_update (the numba twin's), or decorrelated.py's per buffer."""
    C = running_mean.shape[0]
    update(running_mean, mean, momentum, 1.0)
    if running_cov.shape[0] * group_size != C:
        cov, whitening, scale = pad_identity(cov * scale, C), pad_identity(whitening.copy(), C), 1.0
    update(running_cov, cov, momentum, scale)
    update(running_whitening, whitening, momentum, 1.0)
