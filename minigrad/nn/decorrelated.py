"""Decorrelated Batch Normalization (Huang et al., 2018): ZCA whitening of groups of channels.

Channels are split into groups of ``group_size`` (the last group takes the remainder). For one group, with the
batch's m = N*H*W samples as the columns of X (g, m):
    mu = X 1/m,   Xc = X - mu 1^T,   Sigma = Xc Xc^T / m + eps I = U diag(lambda) U^T
    W = Sigma^{-1/2} = U diag(lambda^{-1/2}) U^T,   Xhat = W Xc,   y = weight * Xhat + bias (per channel)
Eval uses only the running mean and the running whitening matrix (the paper's population statistics), both
updated as batch norm's: running = (1 - momentum) * running + momentum * batch (``momentum=None``: cumulative).
``running_cov`` (unbiased, as batch norm's ``running_var``) is kept beside them; with group size 1 the running
statistics are batch norm's, but eval is not: it uses the average of the whitening factors 1/sqrt(var + eps),
not 1/sqrt(average var + eps), as the paper does.

Backward through the eigendecomposition (Daleckii-Krein): with G = dL/dW symmetrized,
    dL/dSigma = U (K o (U^T G U)) U^T,   K_ij = (f(l_i) - f(l_j)) / (l_i - l_j),  f(l) = l^{-1/2}
NOTE: for f = l^{-1/2} the divided difference simplifies exactly to K_ij = -1 / (s_i s_j (s_i + s_j)) with
s = sqrt(lambda), which is also f'(l_i) on the diagonal; no 1/(l_i - l_j) is ever formed, so repeated or
nearly repeated eigenvalues (always the case for the padding and for eps-dominated groups) are stable.
The g x g algebra is float64; the passes over the activation run in its dtype (``_ZCAWhiten``; the kernels
zca_forward, zca_backward_p1, zca_backward_dx and running_average_update of minigrad.kernels.contract, on every
backend; the compiled forward: minigrad/_ext/whiten.pyx, docs/perf/decorrelated-forward.md).

Double backward (``create_graph=True``): the same K in matrix form, dL/dSigma = -W Y W with Y the solution of the
Sylvester equation S Y + Y S = G, S = Sigma^{1/2} (in the eigenbasis Y_ij = G_ij/(s_i + s_j), so
-(W Y W)_ij = K_ij G_ij). The training forward is rebuilt from Tensor ops around two ops, ``_InvSqrtSym``
(Sigma -> W) and ``_SylvesterSym`` ((S, G) -> Y), whose backwards are written with Tensor ops and themselves
(dY = -Syl(dS Y + Y dS), and Syl is self-adjoint), so every order is exact and, dividing only by s_i + s_j > 0,
stable when eigenvalues repeat.
"""
import numbers

import numpy as np

from minigrad import kernels
from minigrad.kernels.reference.whiten import put_blocks as _put
from minigrad.kernels.reference.whiten import running_average_update as _running_average_numpy
from minigrad.kernels.reference.whiten import zca_running_update as _zca_running_update_steps
from minigrad.kernels.rules import FLOATS, check_eps, check_momentum, float_dtype
from minigrad.nn.module import Module, Parameter
from minigrad.tensor import Function, Tensor, _host, concatenate

# Layout legend: N batch, C channels, S = H*W, G groups, g group size, m = N*S samples per channel.


def _sym(a):
    return 0.5 * (a + np.swapaxes(a, -1, -2))


def _sym_t(a):
    return (a + a.transpose(-1, -2)) * 0.5


def _sylvester(U, s, A):
    """Y with S Y + Y S = A for S = U diag(s) U^T, s > 0: U ((U^T A U) / (s_i + s_j)) U^T (batched)."""
    Ut = np.swapaxes(U, -1, -2)
    return U @ ((Ut @ A @ U) / (s[..., :, None] + s[..., None, :])) @ Ut


class _SylvesterSym(Function):
    """Y = Syl_S(A): S Y + Y S = A for symmetric positive definite S (G, g, g), linear in A. With H = dL/dY and
    Z = Syl_S(H) (Syl_S is self-adjoint): dL/dA = Z, dL/dS = -(Z Y^T + Y^T Z)."""

    def forward(self, S, A):
        lam, self.U = np.linalg.eigh(S)
        self.s = lam
        self.Y = _sylvester(self.U, lam, A)
        return self.Y

    def backward(self, h):
        Z = _sylvester(self.U, self.s, h)
        Yt = np.swapaxes(self.Y, -1, -2)
        return -(Z @ Yt + Yt @ Z), Z

    def backward_graph(self, h):
        S, A = self.parents
        Z = _SylvesterSym.apply(S, h)
        Yt = _SylvesterSym.apply(S, A).transpose(-1, -2)
        return -(Z @ Yt + Yt @ Z), Z


class _InvSqrtSym(Function):
    """W = Sigma^{-1/2} of symmetric positive definite Sigma (G, g, g); dL/dSigma = -W Syl_S(sym(G)) W with
    S = Sigma^{1/2} (the module docstring)."""

    def forward(self, sigma):
        lam, U = np.linalg.eigh(sigma)
        self.U, self.s = U, np.sqrt(lam)
        self.W = (U / self.s[:, None, :]) @ np.swapaxes(U, 1, 2)
        return self.W

    def backward(self, g):
        return -self.W @ _sylvester(self.U, self.s, _sym(g)) @ self.W

    def backward_graph(self, g):
        (sigma,) = self.parents
        W = _InvSqrtSym.apply(sigma)
        S = _sym_t(sigma @ W)  # Sigma W = Sigma^{1/2}
        return -(W @ _SylvesterSym.apply(S, _sym_t(g)) @ W)


def _common_dtype(a, b, c):
    """np.result_type(a, b, c) of three dtypes; NOTE: the common case (all equal) without the call's 1.2 us"""
    return a if a == b == c else np.result_type(a, b, c)


def _kernel_takes(buf):
    """Whether a running buffer can be updated in place by the kernels (float32 or float64, C-contiguous,
    writeable)."""
    return buf.dtype in FLOATS and buf.flags.c_contiguous and buf.flags.writeable


def _padded(v, n, fill):
    """(C,) -> (n,) float64, ``fill`` past C."""
    out = np.full(n, fill, np.float64)
    out[:v.shape[0]] = v
    return out


class _ZCAWhiten(Function):
    """Training: y = weight * W (x - mean) + bias per group, W from the batch covariance (the affine is part of the
    op). ``mean``, ``cov``, ``whitening`` (batch statistics, float64) are left on the context for the running
    averages.

    The passes over the activation run in the inputs' common dtype (float32 stays float32); the g x g statistics,
    the eigendecomposition and the backward's coefficients are float64. Forward: batch norm's statistics phase (the
    mean, float64 accumulation), then, with shift = X(mean) and d = mean - shift (float64, under half an ulp of the
    mean), U = x - shift (exact near the mean, so a large mean or a tiny variance costs no accuracy):
        cov = sum U U^T / m - d d^T,   y = M U + (bias - M d),   M = diag(w) W
    One kernel call (zca_forward) makes the mean, the covariance pass, the g x g algebra and the whitening pass: on
    the cython backend compiled (minigrad/_ext/whiten.pyx: eigenvalues by tred2 + tql2, about twice LAPACK's speed
    at g = 16, U never written), on the numba backend its twin, on the numpy backend the reference (batched GEMMs,
    LAPACK's eigh). Backward, per group, from dY and x directly (U recomputed: no [dY; U; 1] buffer):
        zca_backward_p1: sum dY U^T and sum dY (dbias);  P = sum dY Xc^T = sum dY U^T - sum(dY) d^T;
        dweight = diag(P W^T);  zca_backward_dx: dx = [M', A, -M' sum(dY)/m - A d] [dY; U; 1],
        M' = W diag(w), A = 2/m dL/dSigma
    (centering's backward, dx = dxc - mean(dxc), is the constant column: mean(A Xc) = 0, and A Xc = A U - A d). The
    numpy backend's kernels are the two batched GEMMs over that buffer."""

    def forward(self, x, weight, bias, G, g, eps):
        dt = _common_dtype(x.dtype, weight.dtype, bias.dtype)
        self.shape, self.dtypes, self.G, self.g, self.eps = x.shape, (x.dtype, weight.dtype, bias.dtype), G, g, eps
        N, C = x.shape[:2]
        xs = np.ascontiguousarray(x.reshape(N, C, -1), dt)
        m = N * xs.shape[2]
        k = kernels.kernels()
        mean = np.empty(C)  # batch norm's statistics phase: the mean in float64
        # U = x - shift with shift = X(mean), exact where x is near the mean; d = mean - shift (float64, within half
        # an ulp of the mean) is put back in float64: sum Xc Xc^T = sum U U^T - m d d^T, W Xc = W U - W d
        y, shift = np.empty(xs.shape, dt), np.empty(C, dt)
        cov, W, U = np.empty((G, g, g)), np.empty((G, g, g)), np.empty((G, g, g))
        lam, s, d = np.empty((G, g)), np.empty((G, g)), np.empty((G, g))
        # NOTE: a copy, read again by backward
        w = weight.astype(np.float64).reshape(G, g) if G * g == C else _padded(weight, G * g, 1.0).reshape(G, g)
        k.zca_forward(y, cov, lam, U, W, s, shift, d, mean, xs, w, bias.astype(np.float64), g, eps)
        self.mean, self.cov, self.whitening, self.U, self.s, self.xs, self.m, self.w = mean, cov, W, U, s, xs, m, w
        self.shift, self.d = shift, d
        return y.reshape(x.shape)

    def backward(self, dy):
        G, g, m, U, s, W, w = self.G, self.g, self.m, self.U, self.s, self.whitening, self.w
        shift, d, xs = self.shift, self.d, self.xs
        k = kernels.kernels()
        dy = np.ascontiguousarray(dy.reshape(xs.shape), xs.dtype)
        P, sdy = np.empty((G, g, g)), np.empty((G, g))
        k.zca_backward_p1(P, sdy, dy, xs, shift, g)  # sum dY U^T and sum dY (dbias) per group, float64
        P -= sdy[:, :, None] * d[:, None, :]  # sum dY Xc^T = sum dY U^T - sum(dY) d^T
        dweight = np.einsum("kij,kij->ki", P, W)  # diag(P W^T), W symmetric
        # term 1: through Xc directly (W is symmetric); term 2: through W(Sigma(Xc))
        dW = _sym(w[:, :, None] * P)
        Ut = np.swapaxes(U, 1, 2)
        K = -1.0 / (s[:, :, None] * s[:, None, :] * (s[:, :, None] + s[:, None, :]))
        A = (2.0 / m) * (U @ (K * (Ut @ dW @ U)) @ Ut)
        M = W * w[:, None, :]  # W diag(w)
        c = -(M @ sdy[:, :, None]) / m - A @ d[:, :, None]  # centering's backward (mean(A Xc) = 0); A Xc = A U - A d
        F = np.concatenate([M, A, c], axis=2).astype(xs.dtype)
        dx = np.empty(xs.shape, xs.dtype)
        k.zca_backward_dx(dx, dy, xs, shift, F, g)  # dx = [M', A, c] [dY; U; 1] per group
        C = self.shape[1]
        xd, wd, bd = self.dtypes
        return (dx.reshape(self.shape).astype(xd, copy=False), dweight.reshape(-1)[:C].astype(wd),
                sdy.reshape(-1)[:C].astype(bd))

    def compose(self, x, weight, bias):  # NOTE: the double backward (create_graph=True): Tensor ops, float64
        G, g, eps = self.G, self.g, self.eps
        N, C = self.shape[:2]
        xs = x.astype(np.float64).reshape(N, C, -1)
        if G * g != C:
            xs = concatenate([xs, Tensor(np.zeros((N, G * g - C, xs.shape[2])))], axis=1)
        X = xs.reshape(N, G, g, -1).transpose(1, 2, 0, 3).reshape(G, g, -1)
        xc = X - X.mean(2, keepdim=True)
        sigma = xc @ xc.transpose(-1, -2) * (1.0 / X.shape[2]) + Tensor(eps * np.eye(g))
        z = _InvSqrtSym.apply(sigma) @ xc
        z = z.reshape(G, g, N, -1).transpose(2, 0, 1, 3).reshape(N, G * g, -1)[:, :C]
        z = z.reshape(self.shape).astype(np.result_type(*self.dtypes))
        shape = (1, C) + (1,) * (len(self.shape) - 2)
        return z * weight.reshape(shape) + bias.reshape(shape)


def _apply_blocks(F, xs, G, g):
    """(N, C, S) -> (N, C, S): F (G, g, g) applied to each group's channels, one batched GEMM in xs's dtype (the
    output's layout directly when C = G*g; otherwise through zero-padded blocks)."""
    N, C, S = xs.shape
    F = F.astype(xs.dtype, copy=False)
    if G * g == C:
        y = np.empty_like(xs)
        np.matmul(F, xs.reshape(N, G, g, S), out=y.reshape(N, G, g, S))
        return y
    X = np.empty((N, G, g, S), xs.dtype)
    _put(X, xs)
    return np.matmul(F, X).reshape(N, G * g, S)[:, :C]


class _ApplyWhitening(Function):
    """Eval: Xhat = W (X - mean) with fixed W (G, g, g) and mean (C,); linear in x, so dX = W^T dXhat. In x's
    dtype (W and the mean are cast to it)."""

    def forward(self, x, mean, whitening):
        self.shape, self.W = x.shape, whitening
        xc = (x - mean.reshape((1, -1) + (1,) * (x.ndim - 2)).astype(x.dtype)).reshape(x.shape[0], x.shape[1], -1)
        return _apply_blocks(whitening, xc, *whitening.shape[:2]).reshape(x.shape)

    def backward(self, dy):
        dx = _apply_blocks(np.swapaxes(self.W, 1, 2), dy.reshape(dy.shape[0], dy.shape[1], -1), *self.W.shape[:2])
        return dx.reshape(self.shape), None, None

    def backward_graph(self, dy):  # NOTE: linear in x: dX = W^T dXhat is this op again, with W^T and no mean
        zero = Tensor(np.zeros(self.shape[1], dy.dtype))
        return _ApplyWhitening.apply(dy, zero, Tensor(np.swapaxes(self.W, 1, 2))), None, None


class DecorrelatedBatchNorm2d(Module):
    """Decorrelated batch norm over (N, C, H, W) (formulas in the module docstring).

    Parameters: ``weight``, ``bias`` (C,). Buffers: ``running_mean`` (C,), ``running_whitening`` and
    ``running_cov`` (G, g, g) with G = ceil(C / g), g = min(group_size, C); the padded part of the last group's
    block is identity. ``num_batches_tracked`` counts the updates.

        y = W (x - E[x]) * weight + bias,   W = (Cov[x] + eps I)^(-1/2) per group of channels (ZCA whitening)

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: the input's shape
    """

    def __init__(self, num_features: int, group_size: int = 16, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        owner = type(self).__name__
        for name, v in (("num_features", num_features), ("group_size", group_size)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"{owner}: {name} must be a positive integer, got {v!r}")
        if momentum is not None:  # NOTE: None means a cumulative moving average, as batch norm's
            momentum = check_momentum(owner, momentum)
        self.num_features, self.group_size = int(num_features), int(group_size)
        self.eps, self.momentum = check_eps(owner, eps), momentum
        if self.eps == 0.0:  # NOTE: whitening inverts the batch covariance, which may be singular
            raise ValueError(f"{owner}: eps must be > 0 (the batch covariance may be singular), got {eps!r}")
        g = min(self.group_size, self.num_features)
        G = -(-self.num_features // g)
        self._G, self._g = G, g
        dt = float_dtype(None)
        self.weight = Parameter(np.ones(num_features, dt))
        self.bias = Parameter(np.zeros(num_features, dt))
        self.register_buffer("running_mean", Tensor(np.zeros(num_features, dt)))
        self.register_buffer("running_whitening", Tensor(np.tile(np.eye(g, dtype=dt), (G, 1, 1))))
        self.register_buffer("running_cov", Tensor(np.tile(np.eye(g, dtype=dt), (G, 1, 1))))
        self.register_buffer("num_batches_tracked", Tensor(np.zeros((), np.int64)))

    def reset_running_stats(self):
        """Running mean 0, running covariance and whitening matrices the identity, the batch count 0."""
        self.running_mean.data[...] = 0
        self.running_whitening.data[...] = np.eye(self._g)
        self.running_cov.data[...] = np.eye(self._g)
        self.num_batches_tracked.data[...] = 0

    def _update_running(self, ctx, m, count, running_mean, running_cov, running_whitening):
        """Count the batch and average its statistics (left on the ``_ZCAWhiten`` node ``ctx``) into the running
        ones, in place. NOTE: a host computation (``_host``) reading the node when it runs, so that minigrad.compile's
        replay, which reruns the node's forward, updates from that run's statistics."""
        count[()] += 1  # NOTE: through the scalar, 0.2 us; the 0-d array's in-place ufunc (count += 1) takes 1.1 us
        f = self.momentum if self.momentum is not None else 1.0 / float(count)
        k = m / (m - 1)  # the unbiased covariance: cov * k
        try:  # NOTE: the contract's checks decide (dtypes, contiguity, writeable), without a second check here
            kernels.kernels().zca_running_update(running_mean, running_cov, running_whitening, ctx.mean, ctx.cov,
                                                 ctx.whitening, f, k, self._g)
            return
        except (TypeError, ValueError):
            pass
        # a buffer the kernel does not take (another float dtype, a strided view, dtypes that differ): the reference's
        # steps, one buffer at a time, through the kernels where they take it and the reference's formula where not
        kernel_update = kernels.kernels().running_average_update

        def update(buf, new, f, scale):
            if _kernel_takes(buf):
                kernel_update(buf.reshape(-1), new.reshape(-1), f, scale)  # flattened views: updated in place
            else:
                _running_average_numpy(buf, new, f, scale)

        _zca_running_update_steps(running_mean, running_cov, running_whitening, ctx.mean, ctx.cov, ctx.whitening, f,
                                  k, self._g, update=update)

    def forward(self, x):
        owner = type(self).__name__
        if not isinstance(x, Tensor):
            raise TypeError(f"{owner}: input must be a minigrad.Tensor, got {type(x).__name__}")
        a = x.data  # NOTE: the array's ndim, shape and dtype: Tensor's properties cost a frame each
        shape = a.shape
        if len(shape) != 4 or shape[1] != self.num_features:
            raise ValueError(f"{owner}: expected input of shape (N, {self.num_features}, H, W), got {shape}")
        if a.dtype.kind != "f":
            raise TypeError(f"{owner}: input must be floating point, got {a.dtype}")
        if not self.training:
            shape = (1, self.num_features, 1, 1)
            xhat = _ApplyWhitening.apply(x, self.running_mean, self.running_whitening)
            return xhat * self.weight.reshape(shape) + self.bias.reshape(shape)
        m = shape[0] * shape[2] * shape[3]
        if m < 2:
            raise ValueError(f"{owner}: expected more than 1 value per channel when training, got input of "
                             f"shape {x.shape}")
        state = self._table_state(_PLAIN, _STATE)  # NOTE: see Module._table_state
        if state is None:  # a subclass: the attributes, as they read
            state = [getattr(self, name) for name in _STATE]
        weight, bias, count, running_mean, running_cov, running_whitening = state
        dt = _common_dtype(a.dtype, weight.data.dtype, bias.data.dtype)
        if dt not in FLOATS:  # NOTE: the kernels' passes run in float32 or float64
            raise TypeError(f"{owner}: training computes in the input's and parameters' common dtype, which must be "
                            f"float32 or float64, got {dt}")
        y, ctx = _ZCAWhiten.apply_with_ctx(x, weight, bias, G=self._G, g=self._g, eps=self.eps)
        _host(lambda *bufs: self._update_running(ctx, m, *bufs), count.data, running_mean.data, running_cov.data,
              running_whitening.data)
        return y

    def extra_repr(self):
        return f"{self.num_features}, group_size={self.group_size}, eps={self.eps}, momentum={self.momentum}"


# NOTE: read from the module's tables in one call (Module._table_state) by this class exactly; a subclass reads the
# attributes
_PLAIN = frozenset((DecorrelatedBatchNorm2d,))
_STATE = ("weight", "bias", "num_batches_tracked", "running_mean", "running_cov", "running_whitening")
