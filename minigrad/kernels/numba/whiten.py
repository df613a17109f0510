"""Decorrelated batch norm's kernels in Numba: the twins of minigrad/_ext/whiten.pyx (the same parallel splits: the
covariance over groups, the whitening over (group, sample) pairs, the backward's rows over samples), with its
eigensolver ported (tred2 + tql2 as whiten.h writes them).

Signatures: minigrad/kernels/contract.py; the math: minigrad/kernels/reference/whiten.py. Legend: x (N, C, S),
G groups of g channels (the last one padded past C). u = x - shift is taken in X (exact near the mean), its
products and every sum in double, each sum over a fixed range in a fixed order: bit-identical for any n_threads.

NOTE: the eigensolver is ported, not np.linalg.eigh: Numba's linear algebra needs SciPy, which minigrad does not
require, and the port is the cython backend's algorithm (its accuracy, and its signal when the iteration does not
converge on non-finite input, where both backends hand the call to the reference's LAPACK eigh). At g <= 16 a
scalar loop is fast enough, and it runs as plain Python under NUMBA_DISABLE_JIT.
"""
import math

import numpy as np
from numba import njit, prange

from minigrad.kernels import reference

from .common import REASSOC, _pick, _twins
from .phases import channel_stats

# ---------------------------------------------------------------------------------------------------------
# the passes over the activation


@njit(cache=True, fastmath=REASSOC)
def _dot(a, b):
    """sum(a*b) in double (reassociated: vectorized, in an order fixed at compile time)."""
    t = 0.0
    for s in range(a.shape[0]):
        t += a[s] * b[s]
    return t


@njit(cache=True)
def _centered_rows(u, x, shift, n, c0):
    """u[i] = x[n, c0 + i] - shift[c0 + i], the difference in X, then widened (u: (gk, S) float64)."""
    for i in range(u.shape[0]):
        xv = x[n, c0 + i]
        sh = shift[c0 + i]
        for s in range(u.shape[1]):
            u[i, s] = xv[s] - sh


@_twins()
def _group_cov(cov, x, shift, g, nb):
    """cov[k] = sum over n, s of u u^T on group k's channels (zeros past C), each sample's sums added over n in
    order; groups split in nb blocks."""
    N, C, S = x.shape
    G = cov.shape[0]
    for blk in prange(nb):
        for k in range(blk * G // nb, (blk + 1) * G // nb):
            c0 = k * g
            gk = min(g, C - c0)
            u = np.empty((gk, S))
            for i in range(g):
                for j in range(g):
                    cov[k, i, j] = 0.0
            for n in range(N):
                _centered_rows(u, x, shift, n, c0)
                for i in range(gk):
                    for j in range(i + 1):
                        cov[k, i, j] += _dot(u[i], u[j])
            for i in range(gk):
                for j in range(i):
                    cov[k, j, i] = cov[k, i, j]


@_twins()
def _group_whiten(y, x, shift, M, bias, g, nb):
    """y = M[k] u + bias on group k's channels, per (group, sample) pair p = k*N + n; pairs split in nb blocks."""
    N, C, S = x.shape
    G = M.shape[0]
    P = N * G
    for blk in prange(nb):
        for p in range(blk * P // nb, (blk + 1) * P // nb):
            k, n = p // N, p % N
            c0 = k * g
            gk = min(g, C - c0)
            acc = np.zeros((gk, S))
            u = np.empty((gk, S))
            _centered_rows(u, x, shift, n, c0)
            for i in range(gk):
                for j in range(gk):
                    m = np.float64(M[k, i, j])
                    for s in range(S):
                        acc[i, s] += m * u[j, s]
            for i in range(gk):
                yv = y[n, c0 + i]
                b = np.float64(bias[c0 + i])
                for s in range(S):
                    yv[s] = acc[i, s] + b


@_twins()
def _zca_rows(B, dy, x, shift, g, nb):
    N, C, S = x.shape
    G = B.shape[1]
    for blk in prange(nb):
        for n in range(blk * N // nb, (blk + 1) * N // nb):
            for k in range(G):
                for i in range(g):
                    c = k * g + i
                    if c < C:
                        sh = shift[c]
                        for s in range(S):
                            B[n, k, i, s] = dy[n, c, s]
                            B[n, k, g + i, s] = x[n, c, s] - sh
                    else:
                        for s in range(S):
                            B[n, k, i, s] = 0
                            B[n, k, g + i, s] = 0
                for s in range(S):
                    B[n, k, 2 * g, s] = 1


@njit(cache=True)
def _rows(r, a, n, c0):
    """r[i] = a[n, c0 + i], widened (r: (gk, S) float64)."""
    for i in range(r.shape[0]):
        av = a[n, c0 + i]
        for s in range(r.shape[1]):
            r[i, s] = av[s]


@_twins()
def _zca_backward_p1(P, sdy, dy, x, shift, g, nb):
    """P[k] = sum dY u^T, sdy[k] = sum dY on group k's rows (zeros past C), in double, each sample's sums added
    over n in order; groups split in nb blocks."""
    N, C, S = x.shape
    G = P.shape[0]
    for blk in prange(nb):
        for k in range(blk * G // nb, (blk + 1) * G // nb):
            c0 = k * g
            gk = min(g, C - c0)
            u = np.empty((gk, S))
            d = np.empty((gk, S))
            for i in range(g):
                sdy[k, i] = 0.0
                for j in range(g):
                    P[k, i, j] = 0.0
            for n in range(N):
                _centered_rows(u, x, shift, n, c0)
                _rows(d, dy, n, c0)
                for i in range(gk):
                    t = 0.0
                    for s in range(S):
                        t += d[i, s]
                    sdy[k, i] += t
                    for j in range(gk):
                        P[k, i, j] += _dot(d[i], u[j])


@_twins()
def _zca_backward_dx(dx, dy, x, shift, F, g, nb):
    """dx = F[k] [dY; u; 1] on group k's rows, in double, per (group, sample) pair p = k*N + n; pairs split in nb
    blocks."""
    N, C, S = x.shape
    G = F.shape[0]
    P = N * G
    for blk in prange(nb):
        for p in range(blk * P // nb, (blk + 1) * P // nb):
            k, n = p // N, p % N
            c0 = k * g
            gk = min(g, C - c0)
            u = np.empty((gk, S))
            d = np.empty((gk, S))
            _centered_rows(u, x, shift, n, c0)
            _rows(d, dy, n, c0)
            for i in range(gk):
                acc = np.full(S, np.float64(F[k, i, 2 * g]))
                for j in range(gk):
                    a, b = np.float64(F[k, i, j]), np.float64(F[k, i, g + j])
                    for s in range(S):
                        acc[s] += a * d[j, s] + b * u[j, s]
                dxv = dx[n, c0 + i]
                for s in range(S):
                    dxv[s] = acc[s]


# ---------------------------------------------------------------------------------------------------------
# the g x g algebra: the eigensolver, then W, M and the bias


@njit(cache=True, error_model="numpy")
def _hypot(a, b):
    """sqrt(a^2 + b^2): the plain formula where it cannot overflow or underflow, hypot elsewhere."""
    r = np.sqrt(a * a + b * b)
    return r if 2.0 ** -500 < r < 2.0 ** 500 else np.hypot(a, b)


@njit(cache=True, error_model="numpy")
def _eigh(d, U, A, V, Z, e):
    """One symmetric n x n matrix A -> d (n,) ascending and U (column i the eigenvector of d[i]); V, Z (n x n) and
    e (n) workspace. Householder tridiagonalization, then the implicit QL iteration (EISPACK's tred2 and tql2, as
    JAMA writes them; whiten.h's mg_sym_eigh line for line). Returns 0, or -1 when the QL iteration does not
    converge in 60 steps for an eigenvalue (non-finite input)."""
    n = A.shape[0]
    # NOTE: scaled by a power of two (exact) to a largest entry in [0.5, 1), as LAPACK's dsyev scales: tql2's
    # products of two off-diagonal entries would overflow near 1e154 and underflow near 1e-154
    amax = 0.0
    for i in range(n):
        for j in range(n):
            if abs(A[i, j]) > amax:
                amax = abs(A[i, j])
    ex = 0
    if 0.0 < amax < np.inf:
        ex = math.frexp(amax)[1]
    half = ex // 2 if ex >= 0 else -((-ex) // 2)  # C's ex / 2
    down1, down2 = math.ldexp(1.0, -half), math.ldexp(1.0, half - ex)  # 2^-ex as two exact factors
    up1, up2 = math.ldexp(1.0, half), math.ldexp(1.0, ex - half)
    for i in range(n):
        for j in range(n):
            V[i, j] = A[i, j] * down1 * down2
    # tred2: Householder reduction to tridiagonal form (d: diagonal, e: subdiagonal), V the transformation
    for j in range(n):
        d[j] = V[n - 1, j]
    for i in range(n - 1, 0, -1):
        scale = 0.0
        h = 0.0
        for k in range(i):
            scale += abs(d[k])
        if scale == 0.0:
            e[i] = d[i - 1]
            for j in range(i):
                d[j] = V[i - 1, j]
                V[i, j] = 0.0
                V[j, i] = 0.0
        else:
            for k in range(i):
                d[k] /= scale
                h += d[k] * d[k]
            f = d[i - 1]
            g = np.sqrt(h)
            if f > 0:
                g = -g
            e[i] = scale * g
            h -= f * g
            d[i - 1] = f - g
            for j in range(i):
                e[j] = 0.0
            for j in range(i):
                f = d[j]
                V[j, i] = f
                g = e[j] + V[j, j] * f
                for k in range(j + 1, i):
                    g += V[k, j] * d[k]
                    e[k] += V[k, j] * f
                e[j] = g
            f = 0.0
            for j in range(i):
                e[j] /= h
                f += e[j] * d[j]
            hh = f / (h + h)
            for j in range(i):
                e[j] -= hh * d[j]
            for j in range(i):
                f = d[j]
                g = e[j]
                for k in range(j, i):
                    V[k, j] -= f * e[k] + g * d[k]
                d[j] = V[i - 1, j]
                V[i, j] = 0.0
        d[i] = h
    # accumulate the transformations
    for i in range(n - 1):
        V[n - 1, i] = V[i, i]
        V[i, i] = 1.0
        h = d[i + 1]
        if h != 0.0:
            for k in range(i + 1):
                d[k] = V[k, i + 1] / h
            for j in range(i + 1):
                g = 0.0
                for k in range(i + 1):
                    g += V[k, i + 1] * V[k, j]
                for k in range(i + 1):
                    V[k, j] -= g * d[k]
        for k in range(i + 1):
            V[k, i + 1] = 0.0
    for j in range(n):
        d[j] = V[n - 1, j]
        V[n - 1, j] = 0.0
    V[n - 1, n - 1] = 1.0
    e[0] = 0.0
    # tql2 on Z = V^T: row i of Z is the eigenvector of d[i]
    for i in range(n):
        for k in range(n):
            Z[i, k] = V[k, i]
    for i in range(1, n):
        e[i - 1] = e[i]
    e[n - 1] = 0.0
    f = 0.0
    tst1 = 0.0
    eps = 2.0 ** -52
    for l in range(n):  # noqa: E741 (tql2's name)
        t = abs(d[l]) + abs(e[l])
        if t > tst1:  # fmax: a NaN t leaves tst1
            tst1 = t
        m = l
        while m < n - 1 and not (abs(e[m]) <= eps * tst1):  # NOTE: e[n-1] = 0 ends it; NaN stops at n-1
            m += 1
        if m > l:
            it = 0
            while True:
                it += 1
                if it > 60:
                    return -1
                g = d[l]
                p = (d[l + 1] - g) / (2.0 * e[l])
                r = _hypot(p, 1.0)
                if p < 0:
                    r = -r
                d[l] = e[l] / (p + r)
                d[l + 1] = e[l] * (p + r)
                dl1 = d[l + 1]
                h = g - d[l]
                for i in range(l + 2, n):
                    d[i] -= h
                f += h
                p = d[m]
                c, c2, c3, el1, s, s2 = 1.0, 1.0, 1.0, e[l + 1], 0.0, 0.0
                for i in range(m - 1, l - 1, -1):
                    c3 = c2
                    c2 = c
                    s2 = s
                    g = c * e[i]
                    h = c * p
                    r = _hypot(p, e[i])
                    e[i + 1] = s * r
                    ir = 1.0 / r
                    s = e[i] * ir
                    c = p * ir
                    p = c * d[i] - s * g
                    d[i + 1] = h + s * (c * g + s * d[i])
                    for k in range(n):
                        t = Z[i + 1, k]
                        Z[i + 1, k] = s * Z[i, k] + c * t
                        Z[i, k] = c * Z[i, k] - s * t
                p = -s * s2 * c3 * el1 * e[l] / dl1
                e[l] = s * p
                d[l] = c * p
                if not abs(e[l]) > eps * tst1:
                    break
        d[l] += f
        e[l] = 0.0
    # sort ascending (selection, as tql2), then U = Z^T
    for i in range(n - 1):
        k = i
        p = d[i]
        for j in range(i + 1, n):
            if d[j] < p:
                k = j
                p = d[j]
        if k != i:
            d[k] = d[i]
            d[i] = p
            for j in range(n):
                t = Z[i, j]
                Z[i, j] = Z[k, j]
                Z[k, j] = t
    for i in range(n):
        d[i] = d[i] * up1 * up2
        for k in range(n):
            U[k, i] = Z[i, k]
    return 0


@njit(cache=True)
def _sym_eigh(lam, U, A):
    """_eigh on each A[k]; False when one does not converge."""
    n = A.shape[1]
    V, Z, e = np.empty((n, n)), np.empty((n, n)), np.empty(n)
    for k in range(A.shape[0]):
        if _eigh(lam[k], U[k], A[k], V, Z, e) != 0:
            return False
    return True


@njit(cache=True, error_model="numpy")
def _zca_matrices(cov, lam, U, W, s, Mx, bx, d, w, b, m, eps):
    """Per group (whiten.h's mg_zca_matrices): cov <- cov/m - d d^T; lam, U = eigh(cov + eps I); s = sqrt(max(lam,
    eps)); W = U diag(1/s) U^T; Mx = X(diag(w) W), bx = X(b - diag(w) W d) on the channels below C. False when the
    eigensolver does not converge."""
    G, g = cov.shape[0], cov.shape[1]
    C = bx.shape[0]
    A, V, Z, e = np.empty((g, g)), np.empty((g, g)), np.empty((g, g)), np.empty(g)
    for k in range(G):
        gk = min(g, C - k * g)
        for i in range(g):
            for j in range(g):
                c = cov[k, i, j] / m - d[k, i] * d[k, j]
                cov[k, i, j] = c
                A[i, j] = c + eps if i == j else c
        if _eigh(lam[k], U[k], A, V, Z, e) != 0:
            return False
        for q in range(g):
            s[k, q] = np.sqrt(lam[k, q] if lam[k, q] > eps else eps)
        for i in range(g):
            for j in range(g):
                t = 0.0
                for q in range(g):
                    t += U[k, i, q] / s[k, q] * U[k, j, q]
                W[k, i, j] = t
        for i in range(gk):
            t = b[k * g + i]
            for j in range(gk):
                Mx[k, i, j] = w[k, i] * W[k, i, j]
                t -= w[k, i] * W[k, i, j] * d[k, j]
            bx[k * g + i] = t
    return True


# ---------------------------------------------------------------------------------------------------------
# the kernels (contract signatures)


def zca_forward(y, cov, lam, U, W, s, shift, dshift, mean, x, weight, bias, group_size, eps, n_threads):
    """Decorrelated batch norm's training forward (formulas: reference.whiten.zca_forward)."""
    N, C, S = x.shape
    G, g = cov.shape[0], group_size
    channel_stats(mean, np.empty(C), x, True, n_threads)
    shift[...] = mean
    dshift[...] = 0.0
    dshift.reshape(-1)[:C] = mean - shift
    _pick(_group_cov, n_threads)(cov, x, shift, g, min(G, n_threads))
    Mx, bx = np.zeros((G, g, g), x.dtype), np.empty(C, x.dtype)
    if not _zca_matrices(cov, lam, U, W, s, Mx, bx, dshift, weight, bias, float(N * S), eps):
        # NOTE: tql2 did not converge (non-finite x): the reference's LAPACK eigh, as on the cython backend
        reference.zca_forward(y, cov, lam, U, W, s, shift, dshift, mean, x, weight, bias, group_size, eps)
        return
    _pick(_group_whiten, n_threads)(y, x, shift, Mx, bx, g, min(N * G, n_threads))


def zca_rows(B, dy, x, shift, group_size, n_threads):
    """The backward's rows [dy; x - shift; 1] per group (reference.whiten.zca_rows)."""
    _pick(_zca_rows, n_threads)(B, dy, x, shift, group_size, min(x.shape[0], n_threads))


def zca_backward_p1(P, sdy, dy, x, shift, group_size, n_threads):
    """The backward's sums per group (reference.whiten.zca_backward_p1), over groups in parallel."""
    _pick(_zca_backward_p1, n_threads)(P, sdy, dy, x, shift, group_size, min(P.shape[0], n_threads))


def zca_backward_dx(dx, dy, x, shift, F, group_size, n_threads):
    """The backward's dx (reference.whiten.zca_backward_dx), over (group, sample) pairs in parallel."""
    _pick(_zca_backward_dx, n_threads)(dx, dy, x, shift, F, group_size, min(x.shape[0] * F.shape[0], n_threads))


def sym_eigh(lam, U, A, n_threads):
    """Ascending eigenvalues and eigenvectors of each A[k] (tred2 + tql2; LAPACK's where it does not converge)."""
    if not _sym_eigh(lam, U, A):
        reference.sym_eigh(lam, U, A)


@njit(cache=True)
def _running_average_update(running, new, momentum, scale):
    for i in range(running.shape[0]):
        running[i] = (1.0 - momentum) * np.float64(running[i]) + momentum * (new[i] * scale)


def running_average_update(running, new, momentum, scale, n_threads):
    """running = X((1 - momentum)*running + momentum*(new*scale)) in float64 (the cython kernel's order)."""
    _running_average_update(running, new, float(momentum), float(scale))


def zca_running_update(running_mean, running_cov, running_whitening, mean, cov, whitening, momentum, scale,
                       group_size, n_threads):
    """The reference's, with this backend's running_average_update (the cython kernel's bits)."""
    def update(run, new, f, sc):  # NOTE: flattened views (the contract checked the arrays C-contiguous)
        _running_average_update(run.reshape(-1), new.reshape(-1), float(f), float(sc))

    reference.whiten.zca_running_update(running_mean, running_cov, running_whitening, mean, cov, whitening, momentum,
                                        scale, group_size, update=update)
