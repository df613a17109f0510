"""Normalization functionals: batch, layer, group and instance norm, each one autograd node over one kernel call.

All four are the same computation over different axes (Flax's observation):
  y = (x - mean) * rstd * weight + bias,   rstd = 1 / sqrt(var + eps),   var biased
  batch norm     statistics per channel over N and every spatial position      channels layout (N, C, S)
  group norm     per sample and group of C/G channels                           rows layout, G groups
  instance norm  per sample and channel                                         group norm with G = C
  layer norm     per sample over the trailing ``normalized_shape``              group norm on (R, D, 1), G = 1

Inputs are validated here, in Python, before any kernel runs: rank, channel count against parameter sizes, dtype
(float32 or float64; parameters must share the input's dtype), eps >= 0 (> 0 for batch statistics of batch norm,
as PyTorch), momentum in [0, 1]. eps=0 gives PyTorch's results where a set has zero variance: inf or NaN (0 for
instance norm, whose PyTorch kernel takes rstd = 0 there). Non-contiguous input
is copied to C order once. The kernels save only ``mean`` and ``rstd`` (float64) and recompute the normalized
value in backward.
"""
import contextlib
import functools
import math
import numbers

import numpy as np

from minigrad import kernels
from minigrad.kernels import coefficients, contract
from minigrad.kernels.rules import check_batch_eps, check_eps, check_momentum, check_num_groups
from minigrad.kernels.threads import get_num_threads
from minigrad.tensor import Function, Tensor, _host
from minigrad.tensor import cat as _cat

from .checks import check_tensor, check_virtual_batch_size


# ------------------------------------------------------------------ validation

def _check_input(fn, x, min_ndim, max_ndim=None):
    check_tensor(fn, x)
    ndim = x.data.ndim
    if ndim < min_ndim or (max_ndim is not None and ndim > max_ndim):
        want = f"{min_ndim}" + (f" to {max_ndim}" if max_ndim != min_ndim else "") if max_ndim else f"at least {min_ndim}"
        raise ValueError(f"{fn}: input must have {want} dims, got shape {x.shape}")


def _check_param(fn, name, p, shape, dtype):
    """Validate an optional per-channel tensor (weight, bias, running stats); returns its array or None."""
    if p is None:
        return None
    if not isinstance(p, Tensor):
        raise TypeError(f"{fn}: {name} must be a minigrad.Tensor or None, got {type(p).__name__}")
    a = p.data  # NOTE: the array's shape and dtype, not Tensor's properties: called per parameter per op
    if a.shape != shape:
        raise ValueError(f"{fn}: {name} must have shape {shape} to match the input, got {a.shape}")
    if a.dtype != dtype:
        raise TypeError(f"{fn}: {name} has dtype {a.dtype} but the input is {dtype}; minigrad does not mix "
                        f"float32 and float64 in a normalization (convert one with .astype)")
    return a




def _affine(weight, bias, c, dtype):
    """weight and bias arrays for the kernel: ones/zeros stand in for absent ones (C values, nothing measurable)."""
    w = np.ones(c, dtype) if weight is None else np.ascontiguousarray(weight)
    b = np.zeros(c, dtype) if bias is None else np.ascontiguousarray(bias)
    return w, b


def _check_channel_args(fn, input, weight, bias, running_mean, running_var, eps):
    """Checks shared by batch and instance norm: per-channel (C,) parameters and running statistics of the
    input's dtype, and eps. Returns the running statistics' arrays (or None) and eps as a float."""
    a = input.data  # NOTE: the array's shape and dtype, not Tensor's properties (a frame each)
    c, dtype = a.shape[1], a.dtype
    # NOTE: a module's case, all four (C,) tensors of the input's dtype, in one test without a _check_param frame
    # each (a batch norm per layer per step); any other case goes through _check_param, which names the problem
    if isinstance(weight, Tensor) and isinstance(bias, Tensor) and isinstance(running_mean, Tensor) \
            and isinstance(running_var, Tensor):
        w, b, rm, rv = weight.data, bias.data, running_mean.data, running_var.data
        if w.shape == b.shape == rm.shape == rv.shape == (c,) and w.dtype == b.dtype == rm.dtype == rv.dtype == dtype:
            return rm, rv, check_eps(fn, eps)
    _check_param(fn, "weight", weight, (c,), dtype)
    _check_param(fn, "bias", bias, (c,), dtype)
    rm = _check_param(fn, "running_mean", running_mean, (c,), dtype)
    rv = _check_param(fn, "running_var", running_var, (c,), dtype)
    return rm, rv, check_eps(fn, eps)


def _with_running_stats(fn, mode, input, weight, bias, rm, rv, eps, node=None, node_kwargs=None):
    """Normalize with the running statistics (batch norm in eval, instance norm without input statistics).
    ``node``: a subclass of _ChannelAffine taking ``node_kwargs`` too (batch norm with an activation, fused.py)."""
    if rm is None or rv is None:
        raise ValueError(f"{fn}: running_mean and running_var are required when {mode}")
    return (node or _ChannelAffine).apply(input, *_params(weight, bias), running_mean=rm, running_var=rv,
                                          has_weight=weight is not None, has_bias=bias is not None, eps=eps,
                                          instance=fn == "instance_norm", **(node_kwargs or {}))


def _empty_like(x, *params):
    """An empty input gives an empty output and leaves running statistics alone, as in PyTorch; the kernels are
    never called with zero-size arrays. The parameters given (None skipped) join the graph, so that they get zero
    gradients, as PyTorch's do, rather than none."""
    y = x * 1.0
    for p in params:
        if p is not None and p.requires_grad:
            y = y + p.sum() * 0.0  # NOTE: its gradient is the sum over the empty dy: 0 for every element
    return y


def _params(weight, bias):
    """The parameter tensors given, in (weight, bias) order: the node's parents after the input."""
    if weight is None:
        return () if bias is None else (bias,)
    return (weight,) if bias is None else (weight, bias)


def _grads_for(node, dx, dweight, dbias):
    """The gradient tuple for (x, [weight], [bias]) as the node's parents hold them."""
    if node.has_weight and node.has_bias:  # NOTE: a module's case, without the list
        return dx if node.needs_input_grad[0] else None, dweight, dbias
    out = [dx if node.needs_input_grad[0] else None]
    if node.has_weight:
        out.append(dweight)
    if node.has_bias:
        out.append(dbias)
    return tuple(out)


# ------------------------------------------------------------------ autograd nodes

# NOTE: ghost batch norm's and Batch Renorm's backward call their kernel unchecked, the module's function with the
# thread count the contract's checked call passes (one thread below these sizes): their arrays are the forward's,
# which its checked kernel call accepted, and ones the backward makes of their shapes and dtype (the bound calls of
# minigrad.compile take the same step). A backward's Python runs with the caches its kernel swept on the previous
# step: there ghost batch norm's node (its checked call ran the chunk rule in Python) took 26 us of Python at
# 32x64x16x16 before this and its other trims, 16 us after, where the checks alone cost 1.3 us warm
# (docs/perf/norm-family.md, session 35)
_SMALL_GHOST_BACKWARD = contract.small("ghost_batch_norm_backward")
_SMALL_BN_BACKWARD = contract.small("batch_norm_backward")

_LOUD = contextlib.nullcontext()


def ieee_when_eps0(method):
    """``method`` of a normalization node run without NumPy's warnings when eps is 0: a set of zero variance then
    has rstd = inf and its inf/NaN outputs are PyTorch's results, not an accident to warn about."""
    @functools.wraps(method)
    def quiet(self, *args, **kwargs):
        eps = kwargs.get("eps", getattr(self, "eps", None))
        with np.errstate(divide="ignore", invalid="ignore") if eps == 0 else _LOUD:
            return method(self, *args, **kwargs)
    return quiet


class _BatchNormTrain(Function):
    """Training-mode batch norm on (N, C, S): statistics of the batch, one kernel each way."""

    def forward(self, x, *params, has_weight, has_bias, eps):
        self.has_weight, self.has_bias, self.eps = has_weight, has_bias, eps
        shape, x3 = x.shape, _as_ncs_array(x)
        n, c, s = x3.shape
        w, b = _affine(params[0] if has_weight else None, params[-1] if has_bias else None, c, x.dtype)
        y = np.empty_like(x3)
        self.mean, self.rstd = np.empty(c), np.empty(c)
        kernels.kernels().batch_norm_forward(y, self.mean, self.rstd, x3, w, b, eps)
        self.x3, self.w, self.shape = x3, w, shape
        return y.reshape(shape)

    def backward(self, g):
        x3 = self.x3
        dtype, shape = x3.dtype, x3.shape
        dy = np.ascontiguousarray(g, dtype).reshape(shape)
        dx = np.empty(shape, dtype)  # NOTE: x3 is C-contiguous (_as_ncs_array): np.empty_like's layout
        dweight, dbias = np.empty(shape[1], dtype), np.empty(shape[1], dtype)
        kernels.kernels().batch_norm_backward(dx, dweight, dbias, dy, x3, self.mean, self.rstd, self.w)
        return _grads_for(self, dx.reshape(self.shape), dweight, dbias)

    def compose(self, x, *params):  # NOTE: the double backward (create_graph=True): the forward as Tensor ops
        x3 = x.reshape(self.x3.shape)
        return _affine_t(self, _normalize_t(x3, (0, 2), self.eps, True), params).reshape(self.shape)


class _ChannelAffine(Function):
    """Normalization with fixed statistics (batch norm in eval mode, instance norm from running stats):
    y = (x - running_mean) / sqrt(running_var + eps) * weight + bias, per channel of (N, C, S).
    Memory: forward allocates y alone and keeps x only when dweight needs it; backward allocates dx alone
    (dweight's product is formed in dx's buffer, which then receives dx)."""

    @ieee_when_eps0
    def forward(self, x, *params, running_mean, running_var, has_weight, has_bias, eps, instance=False):
        self.has_weight, self.has_bias, self.instance = has_weight, has_bias, instance
        x3 = _as_ncs_array(x)
        c = x3.shape[1]
        w, b = _affine(params[0] if has_weight else None, params[-1] if has_bias else None, c, x.dtype)
        y = np.empty_like(x3)
        kernels.kernels().batch_norm_inference(y, x3, np.ascontiguousarray(running_mean),
                                               np.ascontiguousarray(running_var), w, b, eps)
        if eps == 0.0 and not np.all(running_var):
            # NOTE: an infinite scale. PyTorch's eval kernel computes x*alpha + beta, alpha = weight/sqrt(var + eps),
            # beta = bias - running_mean*alpha: NaN or +-inf for every x there; ours, (x - mean)*alpha + bias, differs
            c0 = np.flatnonzero(running_var == 0)
            alpha = w[c0].astype(np.float64) * np.inf
            beta = b[c0] - running_mean[c0].astype(np.float64) * alpha
            y[:, c0] = x3[:, c0] * alpha[:, None] + beta[:, None]
        # NOTE: the statistics are constants here, so backward is elementwise (no mean-subtraction terms): it
        # needs x only for dweight. rstd and mean are derived there, not here (eval forward is often all there is).
        self.x3 = x3 if has_weight else None
        self.running_mean, self.running_var, self.eps = running_mean.copy(), running_var.copy(), eps
        self.w, self.shape, self.x3_shape = w, x.shape, x3.shape
        return y.reshape(x.shape)

    @ieee_when_eps0
    def backward(self, g):
        dy = np.ascontiguousarray(g).reshape(self.x3_shape)
        rstd = 1.0 / np.sqrt(self.running_var.astype(np.float64) + self.eps)
        buf = None  # the one array of input size: dweight's product, then dx
        dweight = dbias = None
        if self.has_weight:  # dweight = sum(dy * xhat), xhat = (x - mean) * rstd, both in dy's dtype
            mean = self.running_mean.astype(np.float64)
            buf = np.subtract(self.x3, mean[None, :, None].astype(dy.dtype))
            buf *= rstd[None, :, None].astype(dy.dtype)
            buf *= dy  # NOTE: xhat * dy rounds as dy * xhat did: the same bits
            dweight = buf.sum(axis=(0, 2), dtype=np.float64).astype(dy.dtype)
            if np.isinf(rstd).any():  # NOTE: eps=0, running_var 0: PyTorch's order, sum(dy*(x - mean))*rstd
                c0 = np.flatnonzero(np.isinf(rstd))
                dot = (dy[:, c0] * (self.x3[:, c0] - mean[c0, None])).sum(axis=2)
                # instance norm: one batch-norm channel per (n, c) in PyTorch, summed over n after the scaling
                dweight[c0] = (dot * rstd[c0]).sum(0) if self.instance else dot.sum(0) * rstd[c0]
        if self.has_bias:
            dbias = dy.sum(axis=(0, 2), dtype=np.float64).astype(dy.dtype)
        dx = None
        if self.needs_input_grad[0]:
            scale = (rstd * self.w).astype(dy.dtype)[None, :, None]
            dx = np.multiply(dy, scale, out=buf if buf is not None and buf.dtype == np.result_type(dy, scale)
                             else None).reshape(self.shape)
        return _grads_for(self, dx, dweight, dbias)

    def compose(self, x, *params):
        dt = x.dtype
        mean = self.running_mean.astype(np.float64)
        rstd = 1.0 / np.sqrt(self.running_var.astype(np.float64) + self.eps)
        x3 = x.reshape(self.x3_shape)
        xhat = (x3 - Tensor(mean.astype(dt)[None, :, None])) * Tensor(rstd.astype(dt)[None, :, None])
        return _affine_t(self, xhat, params).reshape(self.shape)


class _GroupNorm(Function):
    """Group norm on (N, C, S) with G groups; layer norm is (R, D, 1) with G=1, instance norm G=C."""

    @ieee_when_eps0
    def forward(self, x, *params, x3_shape, num_groups, has_weight, has_bias, eps, instance=False):
        self.has_weight, self.has_bias, self.eps = has_weight, has_bias, eps
        x3 = np.ascontiguousarray(x).reshape(x3_shape)
        n, c, s = x3_shape
        w, b = _affine(params[0].reshape(-1) if has_weight else None,
                       params[-1].reshape(-1) if has_bias else None, c, x.dtype)
        y = np.empty_like(x3)
        self.mean, self.rstd = np.empty((n, num_groups)), np.empty((n, num_groups))
        kernels.kernels().group_norm_forward(y, self.mean, self.rstd, x3, w, b, num_groups, eps)
        self.stats_rstd = self.rstd
        if instance and eps == 0.0 and np.isinf(self.rstd).any():
            # NOTE: PyTorch's instance norm (its batch norm kernel) takes rstd = 0 where var = 0 and eps = 0:
            # such a set gives y = bias and no gradient to x or weight. The running update keeps rstd = inf (var 0).
            self.rstd = np.where(np.isinf(self.rstd), 0.0, self.rstd)
            dead = np.isinf(self.stats_rstd)
            y[dead] = b[None, :].repeat(n, 0)[dead][:, None]
        self.x3, self.w, self.g, self.shape = x3, w, num_groups, x.shape
        self.param_shape = params[0].shape if has_weight else params[-1].shape if has_bias else None
        return y.reshape(x.shape)

    @ieee_when_eps0
    def backward(self, g):
        dy = np.ascontiguousarray(g, dtype=self.x3.dtype).reshape(self.x3.shape)
        dx = np.empty_like(self.x3)
        c = self.x3.shape[1]
        dweight, dbias = np.empty(c, self.x3.dtype), np.empty(c, self.x3.dtype)
        kernels.kernels().group_norm_backward(dx, dweight, dbias, dy, self.x3, self.mean, self.rstd, self.w, self.g)
        ps = self.param_shape
        return _grads_for(self, dx.reshape(self.shape), dweight.reshape(ps) if ps else None,
                          dbias.reshape(ps) if ps else None)

    def compose(self, x, *params):
        n, c, s = self.x3.shape
        xg = x.reshape(n, self.g, (c // self.g) * s)
        return _affine_t(self, _normalize_t(xg, (2,), self.eps, True).reshape(n, c, s), params).reshape(self.shape)


class _RowNorm(Function):
    """A normalization over the rows of x viewed as (R, D), composed of the phase kernels: forward ``row_stats ->
    coefficients -> row_apply``, backward ``row_backward_sums -> coefficients -> row_backward_apply`` (the
    coefficients: minigrad.kernels.coefficients). ``center=False`` is RMSNorm; weight and bias are per column."""

    @ieee_when_eps0
    def forward(self, x, *params, d, center, has_weight, has_bias, eps):
        self.has_weight, self.has_bias, self.center, self.eps = has_weight, has_bias, center, eps
        x2 = np.ascontiguousarray(x).reshape(-1, d)
        r = x2.shape[0]
        w, b = _affine(params[0].reshape(-1) if has_weight else None,
                       params[-1].reshape(-1) if has_bias else None, d, x.dtype)
        k = kernels.kernels()
        mean, m2 = np.empty(r), np.empty(r)
        k.row_stats(mean, m2, x2, center)
        rstd = coefficients.rstd(m2, d, eps)
        y = np.empty_like(x2)
        k.row_apply(y, x2, *coefficients.forward(mean, rstd, x.dtype), w, b)
        self.x2, self.w, self.mean, self.rstd, self.shape = x2, w, mean, rstd, x.shape
        self.param_shape = params[0].shape if params else None
        return y.reshape(x.shape)

    @ieee_when_eps0
    def backward(self, g):
        x2 = self.x2
        (r, d), dtype = x2.shape, x2.dtype
        dy = np.ascontiguousarray(g, dtype=dtype).reshape(r, d)
        k = kernels.kernels()
        sg, sgx, dweight, dbias = np.empty(r), np.empty(r), np.empty(d, dtype), np.empty(d, dtype)
        k.row_backward_sums(sg, sgx, dweight, dbias, dy, x2, self.mean, self.rstd, self.w)
        dx = None
        if self.needs_input_grad[0]:
            dx = np.empty_like(x2)
            k.row_backward_apply(dx, dy, x2, self.w,
                                 *coefficients.backward(sg, sgx, d, self.mean, self.rstd, self.center, dtype))
            dx = dx.reshape(self.shape)
        ps = self.param_shape
        return _grads_for(self, dx, dweight.reshape(ps) if ps else None, dbias.reshape(ps) if ps else None)

    def compose(self, x, *params):
        r, d = self.x2.shape
        xhat = _normalize_t(x.reshape(r, d, 1), (1,), self.eps, self.center)
        return _affine_t(self, xhat, params).reshape(self.shape)


class _ChannelNorm(Function):
    """Ghost batch norm: batch norm over x viewed as (N, C, S) per contiguous chunk of ``chunk`` samples (x[n0:n1]
    is contiguous in (N, C, S)), at least two chunks, one kernel call each way (``ghost_batch_norm_forward`` and
    ``_backward``: batch norm's fused kernels chunk by chunk). ``_BatchRenormTrain`` is its one-chunk form with r
    and d; ``compose`` (the double backward) serves both. NOTE: its forward and backward go without
    ieee_when_eps0's wrapper (half a microsecond a call): eps > 0 here (check_batch_eps: batch statistics) and the
    kernels do the arithmetic."""

    def forward(self, x, *params, chunk, has_weight, has_bias, eps):
        self.has_weight, self.has_bias, self.eps = has_weight, has_bias, eps
        x3 = _as_ncs_array(x)
        n, c, s = x3.shape
        w, b = _affine(params[0] if has_weight else None, params[-1] if has_bias else None, c, x.dtype)
        self.x3, self.shape, self.w, self.chunk = x3, x.shape, w, chunk
        y = np.empty_like(x3)
        g = -(-n // chunk)
        self.mean, self.rstd = np.empty((g, c)), np.empty((g, c))
        # NOTE: one kernel call that runs batch norm's fused forward chunk by chunk (each chunk's statistics and
        # apply while it is in cache); the phases per chunk with their NumPy coefficients between cost about 20 us
        # a chunk at 16x32x8x8 (docs/perf/norm-family.md)
        kernels.kernels().ghost_batch_norm_forward(y, self.mean, self.rstd, x3, w, b, chunk, eps)
        return y.reshape(x.shape)

    def backward(self, g):
        x3 = self.x3
        dtype, shape = x3.dtype, x3.shape
        dy = np.ascontiguousarray(g, dtype).reshape(shape)
        dx = np.empty(self.shape, dtype)  # NOTE: x's shape, written through its (N, C, S) view
        dweight, dbias = np.empty(shape[1], dtype), np.empty(shape[1], dtype)
        # NOTE: batch norm's fused backward chunk by chunk in one kernel call (sums then apply while the chunk is in
        # cache; computing every chunk's coefficients at once between two passes over the whole batch measured
        # 0.83x at 32x64x16x16), unchecked (_SMALL_GHOST_BACKWARD's note)
        kernels.kernels().module.ghost_batch_norm_backward(
            dx.reshape(shape), dweight, dbias, dy, x3, self.mean, self.rstd, self.w, self.chunk,
            1 if x3.size < _SMALL_GHOST_BACKWARD else get_num_threads())
        return _grads_for(self, dx, dweight, dbias)

    r, d = 1.0, 0.0  # NOTE: ghost batch norm's xhat*r + d in compose; _BatchRenormTrain's are per channel

    @property
    def bounds(self):
        """The chunks' (first, end) samples, formed when read (compose, the running update), not per forward."""
        n, chunk = self.x3.shape[0], self.chunk
        return [(n0, min(n0 + chunk, n)) for n0 in range(0, n, chunk)]

    def compose(self, x, *params):
        x3 = x.reshape(self.x3.shape)
        dt = self.x3.dtype
        parts = [_normalize_t(x3[n0:n1], (0, 2), self.eps, True) for n0, n1 in self.bounds]
        xhat = parts[0] if len(parts) == 1 else _cat(parts)
        r = Tensor(np.asarray(self.r, dt).reshape(-1)[None, :, None] if np.ndim(self.r) else np.asarray(self.r, dt))
        d = Tensor(np.asarray(self.d, dt).reshape(-1)[None, :, None] if np.ndim(self.d) else np.asarray(self.d, dt))
        return _affine_t(self, xhat * r + d, params).reshape(self.shape)


class _BatchRenormTrain(_ChannelNorm):
    """Batch Renorm in training on x viewed as (N, C, S): ``renorm() -> (running_mean, running_var, r_max, d_max)``,
    called when the node runs (so that minigrad.compile's replay compares the batch with that step's running
    statistics), makes y = (xhat*r + d)*weight + bias in one ``batch_renorm_forward`` call (batch norm's fused
    forward with the per-channel r and d formed in the kernel between the statistics and the apply); r and d are
    constants in backward, so dx is batch norm's with weight*r (``batch_norm_backward`` with r and d: weight*r and
    dweight = r*sum(dy*xhat) + d*sum(dy) formed in the kernel's call). The double backward is
    ``_ChannelNorm.compose`` with one chunk. eps > 0 here (batch statistics), so no errstate is needed.
    NOTE: a node of its own, not a branch of the ghost node: the forward's Python is most of a small call
    (docs/perf/norm-family.md)."""

    def forward(self, x, *params, has_weight, has_bias, eps, renorm):
        self.has_weight, self.has_bias, self.eps = has_weight, has_bias, eps
        x3 = _as_ncs_array(x)
        c = x3.shape[1]
        w, b = _affine(params[0] if has_weight else None, params[-1] if has_bias else None, c, x.dtype)
        running_mean, running_var, r_max, d_max = renorm()
        mean, rstd, self.r, self.d = np.empty(c), np.empty(c), np.empty(c), np.empty(c)
        y = np.empty_like(x3)
        kernels.kernels().batch_renorm_forward(y, mean, rstd, self.r, self.d, x3, w, b,
                                               np.ascontiguousarray(running_mean), np.ascontiguousarray(running_var),
                                               r_max, d_max, eps)
        self.mean, self.rstd = mean.reshape(1, c), rstd.reshape(1, c)  # NOTE: (1, C), as the update takes them
        self.chunk, self.x3, self.shape, self.w = x3.shape[0], x3, x.shape, w  # NOTE: one chunk (bounds)
        return y.reshape(x.shape)

    def backward(self, g):
        x3 = self.x3
        dtype, shape = x3.dtype, x3.shape
        dweight, dbias = np.empty(shape[1], dtype), np.empty(shape[1], dtype)
        dx = np.empty(self.shape, dtype)  # NOTE: x's shape, written through its (N, C, S) view
        # NOTE: batch norm's fused backward kernel with r and d: one kernel call and nothing in NumPy (weight*r and
        # dweight's merge per channel in the call). Unchecked (_SMALL_GHOST_BACKWARD's note): r, d are the
        # forward's (C,) float64
        kernels.kernels().module.batch_norm_backward(
            dx.reshape(shape), dweight, dbias, np.ascontiguousarray(g, dtype).reshape(shape), x3, self.mean[0],
            self.rstd[0], self.w, 1 if x3.size < _SMALL_BN_BACKWARD else get_num_threads(), r=self.r, d=self.d)
        return _grads_for(self, dx, dweight, dbias)


def _normalize_t(x, axes, eps, center):
    """(x - mean) * rstd over ``axes`` as recorded Tensor ops, rstd = 1/sqrt(mean((x - mean)^2) + eps) (biased;
    without ``center`` the mean is 0): the exact forward that create_graph=True differentiates twice."""
    d = x - x.mean(axes, keepdim=True) if center else x
    return d * ((d * d).mean(axes, keepdim=True) + eps) ** -0.5


def _affine_t(node, xhat, params):
    """xhat * weight + bias on (A, C, B) with per-C parameters (any shape of C elements), as Tensor ops."""
    c = xhat.shape[1]
    if node.has_weight:
        xhat = xhat * params[0].reshape(1, c, 1)
    if node.has_bias:
        xhat = xhat + params[-1].reshape(1, c, 1)
    return xhat


def _as_ncs_array(a):
    a = np.ascontiguousarray(a)
    return a.reshape(a.shape[0], a.shape[1], math.prod(a.shape[2:]))


# ------------------------------------------------------------------ functionals (torch.nn.functional names)

def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum: float = 0.1, eps: float = 1e-5,
               virtual_batch_size: int | None = None) -> Tensor:
    """Batch normalization over every axis except the channel axis 1 (input of 2 to 5 dims).

    ``y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias``. In training the batch's statistics are used and,
    when ``running_mean``/``running_var`` are given, updated in place:
    ``running = (1 - momentum) * running + momentum * batch_stat``, with the unbiased batch variance. In eval
    (``training=False``) the running statistics are used and must be given.

    Ghost batch normalization (Hoffer et al., 2017, "Train longer, generalize better"): with
    ``virtual_batch_size`` (an int >= 2) in training, the batch is cut into contiguous chunks of that many samples
    (samples ``[0, v)``, ``[v, 2v)``, ...; the last may be smaller but needs at least 2) and each chunk is
    normalized with its own statistics; a ``virtual_batch_size`` of at least N is plain batch norm. The running
    statistics get one update per step, from the average over chunks of their means and unbiased variances.
    NOTE: tf.keras's ``BatchNormalization(virtual_batch_size=v)`` forms its ghost batches by a reshape to
    (v, N/v, ...), so sample i goes to ghost batch i mod (N/v) (strided, and N must be a multiple of v), and
    it updates the running statistics from the mean over ghost batches of their biased variances; here the
    chunks are contiguous, the last may be short, and the variances are unbiased, as in batch norm. Eval mode
    ignores it. One kernel call each way that runs batch norm's fused kernels chunk by chunk (``_ChannelNorm``).

    Shape:
        - input (N, C) or (N, C, L) or (N, C, H, W) or (N, C, D, H, W); weight, bias, running stats (C,).
    """
    return _batch_norm("batch_norm", input, running_mean, running_var, weight, bias, training, momentum, eps,
                       virtual_batch_size)


def _batch_norm(fn, input, running_mean, running_var, weight, bias, training, momentum, eps, virtual_batch_size,
                nodes=None, node_kwargs=None):
    """``batch_norm``, checks and all, named ``fn`` in its errors. ``nodes``: (training node, eval node),
    subclasses of _BatchNormTrain and _ChannelAffine taking ``node_kwargs`` too (batch norm then an activation in
    one node, fused.py; no ghost batches there)."""
    _check_input(fn, input, 2, 5)
    c = input.data.shape[1]
    rm, rv, eps = _check_channel_args(fn, input, weight, bias, running_mean, running_var, eps)
    virtual_batch_size = check_virtual_batch_size(fn, virtual_batch_size)
    size = input.data.size  # NOTE: the array's (Tensor.size builds a callable int: a microsecond per read)
    if size == 0:
        return _empty_like(input, weight, bias)
    if not training:
        return _with_running_stats(fn, "training=False", input, weight, bias, rm, rv, eps,
                                   nodes and nodes[1], node_kwargs)
    per_channel = size // c if c else 0
    if per_channel <= 1:
        # NOTE: PyTorch's wording, then what to do: the usual cause is a last batch of one sample
        raise ValueError(f"{fn}: Expected more than 1 value per channel when training, got input size "
                         f"{input.shape}: batch statistics of a single value have no variance. Use batches of at "
                         f"least 2 samples (with a DataLoader, drop_last=True drops a short last batch) or "
                         f"evaluate with model.eval()")
    eps = check_batch_eps(fn, eps)
    if momentum is not None or rm is not None:
        momentum = _check_average(fn, momentum)
    if virtual_batch_size is not None and virtual_batch_size < input.data.shape[0]:
        return _ghost_batch_norm(input, rm, rv, weight, bias, momentum, eps, virtual_batch_size)
    out, node = (nodes[0] if nodes else _BatchNormTrain).apply_with_ctx(
        input, *_params(weight, bias), has_weight=weight is not None, has_bias=bias is not None, eps=eps,
        **(node_kwargs or {}))
    if rm is not None or rv is not None:
        _update_running_from(node, rm, rv, momentum, eps, per_channel)
    return out


def _update_running_from(node, rm, rv, momentum, eps, count):
    """_update_running from a batch-norm node's saved (C,) mean and rstd, read when it runs (so that
    minigrad.compile's replay, which reruns the node's forward, updates from that run's statistics)."""
    count = float(count)

    def update(rm, rv):  # NOTE: [None] is reshape(1, C)'s view, without the call
        if type(momentum) is float and rm is not None and rv is not None and rm.flags.c_contiguous \
                and rv.flags.c_contiguous:  # NOTE: _update_running's kernel call, without its three frames
            kernels.kernels().running_stats_update(rm, rv, node.mean[None], node.rstd[None], momentum, eps, count)
        else:
            _update_running(rm, rv, node.mean[None], node.rstd[None], momentum, eps, count)
    _host(update, rm, rv)


def _ghost_batch_norm(input, rm, rv, weight, bias, momentum, eps, chunk):
    """Training-mode batch norm per contiguous chunk of ``chunk`` samples (see ``batch_norm``)."""
    shape = input.data.shape  # NOTE: the array's, not Tensor's properties (Tensor.size: a microsecond a read)
    n, last = shape[0], shape[0] % chunk
    if last == 1:
        raise ValueError(f"batch_norm: virtual_batch_size={chunk} leaves a last chunk of 1 sample from a batch of "
                         f"{n}; the last chunk needs at least 2 samples (choose a size that divides {n} or leaves "
                         f"a remainder >= 2)")
    out, node = _ChannelNorm.apply_with_ctx(input, *_params(weight, bias), chunk=chunk,
                                            has_weight=weight is not None, has_bias=bias is not None, eps=eps)
    if rm is not None or rv is not None:
        # NOTE: the update kernel averages count/(count - 1)*(1/rstd^2 - eps) over rows with one count; a short
        # last chunk's m2 is rescaled so that this gives its own unbiased variance m2/(count_i - 1)
        s = input.data.size // (n * shape[1])
        count, counts = chunk * s, np.array([[(n1 - n0) * s] for n0, n1 in node.bounds])

        def update(rm, rv):  # NOTE: reads the node when it runs (see _update_running_from)
            m2 = (node.rstd ** -2.0 - eps) * counts  # NOTE: the fused forward saves rstd, not m2
            rstd = coefficients.rstd(m2 * ((count - 1) / (counts - 1)), count, eps)
            _update_running(rm, rv, node.mean, rstd, momentum, eps, count)
        _host(update, rm, rv)
    return out


def _update_running(rm, rv, mean, rstd, momentum, eps, count):
    """running = (1 - momentum)*running + momentum*stat for the batch mean and unbiased variance, in place, from
    the saved (N, C) mean and rstd (one kernel call; its rule: reference.running_stats_update). A missing running
    statistic gets a scratch array. ``momentum``: a float, or a ``_CumulativeAverage`` read here."""
    rm = rm if rm is not None else np.empty_like(rv)
    rv = rv if rv is not None else np.empty_like(rm)
    _running_stats_update(rm, rv, mean, rstd, _momentum_value(momentum), eps, float(count))


def _running_stats_update(rm, rv, mean, rstd, momentum, eps, count):
    """The contract's running_stats_update, in place in rm and rv whatever their layout: a strided buffer (a view
    a user set as the buffer's .data, which PyTorch updates in place too) through a contiguous copy written back,
    as the kernel takes C-contiguous arrays only."""
    if rm.flags.c_contiguous and rv.flags.c_contiguous:
        kernels.kernels().running_stats_update(rm, rv, mean, rstd, momentum, eps, count)
        return
    cm, cv = np.ascontiguousarray(rm), np.ascontiguousarray(rv)
    kernels.kernels().running_stats_update(cm, cv, mean, rstd, momentum, eps, count)
    rm[...], rv[...] = cm, cv


class _CumulativeAverage:
    """The momentum of a module's cumulative average (``momentum=None``): 1/num_batches_tracked of the module
    ``owner``, read when the running statistics are updated rather than when the step is recorded, so that a
    ``minigrad.compile`` replay divides by that step's count (the update is a host computation, run again on
    replay; the count's increment is one too, before it). The functionals take it in place of a float
    ``momentum`` (internal: the ``nn`` modules pass it, ``_NormBase._average_factor``)."""
    __slots__ = ("owner",)

    def __init__(self, owner):
        self.owner = owner

    def __call__(self):
        return 1.0 / float(self.owner.num_batches_tracked.data)

    # NOTE: equal for the same module (the same rule), so that two recordings of a step compare equal
    def __eq__(self, other):
        return type(other) is _CumulativeAverage and other.owner is self.owner

    def __hash__(self):
        return id(self.owner)

    def __repr__(self):
        return f"_CumulativeAverage({type(self.owner).__name__})"


def _momentum_value(momentum):
    """A momentum as the float the update uses: a ``_CumulativeAverage`` is read now."""
    return momentum() if type(momentum) is _CumulativeAverage else momentum


def _check_average(fn, momentum):
    """``momentum`` of a functional: a ``_CumulativeAverage`` as is, else a float in [0, 1] (rules.check_momentum)."""
    return momentum if type(momentum) is _CumulativeAverage else check_momentum(fn, momentum)


def layer_norm(input: Tensor, normalized_shape: int | tuple[int, ...] | list[int], weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Layer normalization over the trailing ``normalized_shape`` dims: statistics per sample (per leading
    index), affine per element of ``normalized_shape``.

    ``y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias``, biased variance.

    Shape:
        - input (*, *normalized_shape).
    """
    fn = "layer_norm"
    normalized_shape = _check_normalized_shape(fn, input, normalized_shape)
    k = len(normalized_shape)
    _check_param(fn, "weight", weight, normalized_shape, input.dtype)
    _check_param(fn, "bias", bias, normalized_shape, input.dtype)
    eps = check_eps(fn, eps)
    if input.size == 0:
        return _empty_like(input, weight, bias)
    d = math.prod(normalized_shape)
    r = input.size // d if d else math.prod(input.shape[:input.ndim - k])
    return _GroupNorm.apply(input, *_params(weight, bias), x3_shape=(r, d, 1), num_groups=1,
                            has_weight=weight is not None, has_bias=bias is not None, eps=eps)


def _check_normalized_shape(fn, input, normalized_shape):
    """``normalized_shape`` (an int or a sequence of ints) as a tuple that matches the input's trailing dims."""
    if isinstance(normalized_shape, numbers.Integral):
        normalized_shape = (int(normalized_shape),)
    normalized_shape = tuple(int(s) for s in normalized_shape)
    _check_input(fn, input, max(len(normalized_shape), 1))
    k = len(normalized_shape)
    if k == 0 or input.shape[input.ndim - k:] != normalized_shape:
        raise ValueError(f"{fn}: normalized_shape {normalized_shape} must match the trailing dims of the "
                         f"input, got input of shape {input.shape}")
    return normalized_shape


def rms_norm(input: Tensor, normalized_shape: int | tuple[int, ...] | list[int], weight: Tensor | None = None,
             eps: float | None = None) -> Tensor:
    """Root-mean-square normalization over the trailing ``normalized_shape`` dims (Zhang & Sennrich, 2019), as
    ``torch.nn.functional.rms_norm``: ``y = x / sqrt(mean(x^2) + eps) * weight``, the mean over the normalized
    dims, no mean subtracted and no bias. ``eps=None`` is the machine epsilon of the input's dtype
    (``numpy.finfo(dtype).eps``), as in PyTorch. Built from the phase kernels (rows layout, ``center=False``).

    Shape:
        - input (*, *normalized_shape); weight normalized_shape.
    """
    fn = "rms_norm"
    normalized_shape = _check_normalized_shape(fn, input, normalized_shape)
    _check_param(fn, "weight", weight, normalized_shape, input.dtype)
    eps = float(np.finfo(input.dtype).eps) if eps is None else check_eps(fn, eps)
    if input.size == 0:
        return _empty_like(input, weight)
    return _RowNorm.apply(input, *_params(weight, None), d=math.prod(normalized_shape), center=False,
                          has_weight=weight is not None, has_bias=False, eps=eps)


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Group normalization: channels split into ``num_groups`` groups, statistics per sample and group,
    affine per channel.

    ``y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias``, biased variance.

    Shape:
        - input (N, C, *) with C divisible by num_groups; weight, bias (C,).
    """
    fn = "group_norm"
    _check_input(fn, input, 2)
    n, c = input.shape[0], input.shape[1]
    num_groups = check_num_groups(fn, num_groups, c)
    _check_param(fn, "weight", weight, (c,), input.dtype)
    _check_param(fn, "bias", bias, (c,), input.dtype)
    eps = check_eps(fn, eps)
    s = math.prod(input.shape[2:])
    if n * (c // num_groups) * s == 1:
        # NOTE: PyTorch's rule and words (in train and eval alike): its check views the input as batch norm's
        # (N*C/G, G, *spatial), so it fires only when that view has one value per "channel"
        size = [n * c // num_groups, num_groups, *input.shape[2:]]
        raise ValueError(f"group_norm: Expected more than 1 value per channel when training, got input size {size}:"
                         f" each of the {num_groups} groups holds a single value")
    if input.size == 0:
        return _empty_like(input, weight, bias)
    s = math.prod(input.shape[2:])
    return _GroupNorm.apply(input, *_params(weight, bias), x3_shape=(n, c, s), num_groups=num_groups,
                            has_weight=weight is not None, has_bias=bias is not None, eps=eps)


def instance_norm(input: Tensor, running_mean: Tensor | None = None, running_var: Tensor | None = None,
                  weight: Tensor | None = None, bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Instance normalization: statistics per sample and channel over the spatial dims (group norm with one
    channel per group). With ``use_input_stats=False`` the running statistics are used instead; with running
    statistics given and ``use_input_stats``, they are updated with the batch average of the per-instance mean
    and unbiased variance, as PyTorch does.

    ``y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias``, biased variance.

    Shape:
        - input (N, C, *spatial) with at least one spatial dim.
    """
    fn = "instance_norm"
    _check_input(fn, input, 3)
    n, c = input.shape[0], input.shape[1]
    rm, rv, eps = _check_channel_args(fn, input, weight, bias, running_mean, running_var, eps)
    if input.size == 0:
        return _empty_like(input, weight, bias)
    if not use_input_stats:
        return _with_running_stats(fn, "use_input_stats=False", input, weight, bias, rm, rv, eps)
    s = math.prod(input.shape[2:])
    if s <= 1:
        raise ValueError(f"instance_norm: expected more than 1 spatial element when training, got input of shape "
                         f"{input.shape}")
    if rm is not None or rv is not None:
        momentum = _check_average(fn, momentum)
    out, node = _GroupNorm.apply_with_ctx(input, *_params(weight, bias), x3_shape=(n, c, s), num_groups=c,
                                          has_weight=weight is not None, has_bias=bias is not None, eps=eps,
                                          instance=True)
    if rm is not None or rv is not None:
        # NOTE: PyTorch averages the per-instance statistics over the batch
        _host(lambda rm, rv: _update_running(rm, rv, node.mean, node.stats_rstd, momentum, eps, s), rm, rv)
    return out
