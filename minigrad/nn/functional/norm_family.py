"""The normalization family beyond PyTorch: Batch Renormalization, Filter Response Normalization with TLU, EvoNorm-B0
and EvoNorm-S0 (ghost batch norm is ``batch_norm(..., virtual_batch_size=...)`` in ``norm.py``).

Each is built on the phase kernels (statistics, apply, backward sums, backward apply; ``minigrad.kernels.contract``)
and the coefficients between them (``minigrad.kernels.coefficients``), so it runs on every backend:
  batch_renorm          channels layout, one autograd node (``_BatchRenormTrain``): batch norm's fused kernels,
                        the forward's with r and d formed per channel in the kernel, the backward's with weight*r
  filter_response_norm  rows layout (N*C rows of S values), ``center=False``, one autograd node (``_FilterResponse``)
  tlu                   max(x, tau) alone: a composed autograd op (``Tensor.maximum``)
  filter_response_norm_tlu  FRN then TLU in the same node, the max fused into the apply pass and the backward
                        passes (the ``row_*_max`` phases): fewer passes over the data, measured faster
  evonorm_b0/s0         rows layout (N*C rows of S values), one autograd node (``_EvoNorm``): the statistics
                        phases, then the gate (S0's x*sigmoid(v*x), B0's x/max(...)), the division and the affine
                        fused into one apply pass and its backward into the sums and backward-apply passes (the
                        ``row_*_gate`` phases); measured faster than the composed ops (docs/perf/norm-family.md);
                        B0's forward is one call (``evonorm_b0_forward``: statistics, in training the batch's from
                        the instances', the apply) and so is its backward (``evonorm_b0_backward``)
Inputs are validated here, with the same rules and messages as ``norm.py``.
"""
import math
import numbers
from collections.abc import Callable

import numpy as np

from minigrad import kernels
from minigrad.kernels import coefficients
from minigrad.kernels.rules import check_batch_eps, check_eps, check_momentum, check_num_groups
from minigrad.tensor import Function, Tensor, _host

from .norm import (_BatchRenormTrain, _affine, _as_ncs_array, _check_channel_args, _check_input, _check_param,
                   _empty_like, _params, _update_running, _with_running_stats, _check_average, ieee_when_eps0)


def _check_bound(fn, name, value, low):
    """A finite number >= low, as a float."""
    if type(value) is float and low <= value < math.inf:  # NOTE: the common case, without ABC checks
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not low <= value < math.inf:
        raise ValueError(f"{fn}: {name} must be a finite number >= {low}, got {value!r}")
    return float(value)


def _per_channel(t, ndim):
    """A (C,) tensor shaped (1, C, 1, ...) to broadcast against an (N, C, *) input of ``ndim`` dims."""
    return t.reshape(1, t.shape[0], *([1] * (ndim - 2)))


# ------------------------------------------------------------------ Batch Renormalization

def batch_renorm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None = None,
                 bias: Tensor | None = None, training: bool = False, momentum: float = 0.1, eps: float = 1e-5,
                 r_max: float = 3.0, d_max: float = 5.0, *,
                 bounds: Callable[[], tuple[float, float]] | None = None) -> Tensor:
    """Batch Renormalization (Ioffe, 2017, "Batch Renormalization: Towards Reducing Minibatch Dependence in
    Batch-Normalized Models"), over every axis except the channel axis 1 (input of 2 to 5 dims).

    In training: ``y = ((x - mu_B)/sigma_B * r + d) * weight + bias`` with the batch's ``mu_B`` and
    ``sigma_B = sqrt(Var_B[x] + eps)`` (biased variance, as batch norm), ``sigma = sqrt(running_var + eps)`` and
        r = clip(sigma_B/sigma, 1/r_max, r_max),    d = clip((mu_B - running_mean)/sigma, -d_max, d_max)
    from the running statistics before this step's update; r and d are constants in backward (the paper's
    stop_gradient), so dx is batch norm's backward with weight ``weight*r``. The running statistics are then
    updated as batch norm's (momentum, unbiased variance). ``r_max=1, d_max=0`` is batch norm. In eval
    (``training=False``): batch norm with the running statistics. Both running statistics are required.
    ``bounds`` (BatchRenorm's warmup schedule): a function of no arguments returning this step's (r_max, d_max),
    called when r and d are computed, in place of ``r_max`` and ``d_max``.

    One node (``_BatchRenormTrain``): one ``batch_renorm_forward`` call forward (batch norm's fused forward with r
    and d per channel), batch norm's fused backward with weight*r.

    Shape:
        - input (N, C, *); the rest (C,).
    """
    fn = "batch_renorm"
    _check_input(fn, input, 2, 5)
    c = input.data.shape[1]
    rm, rv, eps = _check_channel_args(fn, input, weight, bias, running_mean, running_var, eps)
    if rm is None or rv is None:
        raise ValueError(f"{fn}: running_mean and running_var are required (r and d compare the batch with them)")
    r_max, d_max = _check_bound(fn, "r_max", r_max, 1.0), _check_bound(fn, "d_max", d_max, 0.0)
    size = input.data.size  # NOTE: the array's (Tensor.size builds a callable int: a microsecond per read)
    if size == 0:
        return _empty_like(input, weight, bias)
    if not training:
        return _with_running_stats(fn, "training=False", input, weight, bias, rm, rv, eps)
    per_channel = size // c
    if per_channel <= 1:
        raise ValueError(f"{fn}: expected more than 1 value per channel when training, got input of shape "
                         f"{input.shape} (batch statistics of a single value have no variance)")
    eps = check_batch_eps(fn, eps)  # NOTE: batch norm's rule with batch statistics (PyTorch's)
    momentum = _check_average(fn, momentum)

    def renorm():
        # NOTE: reads the running statistics (and the bounds) when the node runs, so that minigrad.compile's replay,
        # which reruns the node's forward, compares the batch with that step's running statistics
        hi, dhi = bounds() if bounds is not None else (r_max, d_max)
        return running_mean.data, running_var.data, hi, dhi

    out, node = _BatchRenormTrain.apply_with_ctx(input, *_params(weight, bias), renorm=renorm,
                                                 has_weight=weight is not None, has_bias=bias is not None, eps=eps)
    _host(lambda rm, rv: _update_running(rm, rv, node.mean, node.rstd, momentum, eps, per_channel), rm, rv)
    return out


# ------------------------------------------------------------------ Filter Response Normalization + TLU

class _FilterResponse(Function):
    """FRN over x viewed as rows (N*C, S), composed of the row phases with ``center=False``: forward ``row_stats ->
    coefficients -> row_apply``, backward ``row_backward_sums -> coefficients -> row_backward_apply``. weight and
    bias are per channel, so they enter as per-row coefficients (the rows' per-column weight is ones). With
    ``has_tau`` (FRN + TLU fused) the forward is one ``row_norm_apply_max`` call and the backward (with dx) one
    ``row_norm_backward_max`` call on x as (N, C, S), with the per-channel weight, bias and tau (statistics,
    coefficients and y = max(z, tau) per row (n, c); dy split between z and tau).
    Parents: x, then weight, bias, tau (those present), then the optional learned eps, of which |eps| is used."""

    def forward(self, x, *params, has_weight, has_bias, eps, has_tau=False):
        self.has_weight, self.has_bias, self.learned_eps, self.eps, self.has_tau = (has_weight, has_bias,
                                                                                     eps is None, eps, has_tau)
        if not has_tau:
            return self._forward_frn(x, params, has_weight, has_bias, eps=eps)
        # NOTE: the fused path runs no NumPy arithmetic (the kernel forms rstd and applies), so it goes without
        # ieee_when_eps0's wrapper (a frame, an errstate and a dict lookup per call: docs/perf/norm-family.md,
        # "the small shapes' Python"); the unfused path below keeps it
        shape = x.shape
        n, c, dtype = shape[0], shape[1], x.dtype
        x3 = np.ascontiguousarray(x).reshape(n, c, -1)  # NOTE: x itself when contiguous, else a copy
        # NOTE: a learned eps as a float: its float32 or float64 value exactly (.item(), as float() of the element)
        self.eps_value = params[-1].item() if eps is None else eps
        # NOTE: one kernel call per row (n, c) takes the statistics, writes rstd, forms scale = X(rstd*w[c]) and
        # applies with the max while the row is in cache; the kernel reads the (C,) weight, offset = b and tau by
        # channel (an absent weight or bias: ones or zeros), so no per-row block is filled here. The zero mean
        # and shift are formed in backward: a forward without backward does not pay for them
        # (docs/perf/norm-family.md, "FRN + TLU's small forward")
        w = np.ascontiguousarray(params[0]) if has_weight else np.ones(c, dtype)
        b = np.ascontiguousarray(params[has_weight]) if has_bias else np.zeros(c, dtype)
        tau = np.ascontiguousarray(params[has_weight + has_bias])
        y, rstd, scale = np.empty_like(x3), np.empty((n, c)), np.empty((n, c), dtype)
        kernels.kernels().row_norm_apply_max(y, rstd, scale, x3, w, b, tau, abs(self.eps_value))
        self.x3, self.shape, self.w, self.offset, self.tau, self.scale, self.rstd, self.w64 = (x3, shape, w, b, tau,
                                                                                            scale, rstd, None)
        return y.reshape(shape)

    @ieee_when_eps0
    def _forward_frn(self, x, params, has_weight, has_bias, *, eps):
        """FRN alone: the row phases (statistics, the coefficients in NumPy, apply)."""
        n, c = x.shape[0], x.shape[1]
        x3 = (x if x.flags.c_contiguous else np.ascontiguousarray(x)).reshape(n, c, -1)
        s = x3.shape[2]
        x2 = x3.reshape(n * c, s)
        w, b = _affine(params[0] if has_weight else None, params[1 if has_weight else 0] if has_bias else None,
                       c, x.dtype)
        self.eps_value = float(params[-1][0]) if eps is None else eps
        k = kernels.kernels()
        self.w, self.x3, self.shape = w, x3, x.shape
        self.w64 = w.astype(np.float64)
        mean, m2 = np.empty(n * c), np.empty(n * c)
        k.row_stats(mean, m2, x2, False)
        # NOTE: the statistics viewed as (N, C) broadcast against the per-channel weight and bias. Without center
        # the mean is 0, so coefficients.forward's (shift, scale, offset) is (0, rstd*w, b): written here into one
        # (3, N*C) block with a few in-place ufuncs; m2 >= 0 (a sum of squares), so rstd needs no clamp
        rstd = m2.reshape(n, c)
        np.divide(rstd, s, out=rstd)
        e = abs(self.eps_value)
        rstd += e
        np.sqrt(rstd, out=rstd)
        if e > 0:
            np.divide(1.0, rstd, out=rstd)
        else:
            with np.errstate(divide="ignore"):  # NOTE: 1/0 = inf with eps 0, as coefficients.rstd
                np.divide(1.0, rstd, out=rstd)
        y = np.empty_like(x2)
        co = np.empty((3, n, c), x.dtype)
        co[0] = 0
        np.multiply(rstd, self.w64, out=co[1], casting="same_kind")
        co[2] = b
        self.ones = np.ones(s, x.dtype)
        k.row_apply(y, x2, co[0].reshape(-1), co[1].reshape(-1), co[2].reshape(-1), self.ones, np.zeros(s, x.dtype))
        self.mean, self.rstd = mean.reshape(n, c), rstd
        return y.reshape(x.shape)

    @ieee_when_eps0
    def backward(self, g):
        x3 = self.x3
        (n, c, s), dtype = x3.shape, x3.dtype
        r = n * c
        dy = np.ascontiguousarray(g, dtype=dtype).reshape(n, c, s)
        k = kernels.kernels()
        # NOTE: the per-row sums that become the parameters' gradients in one zeroed block, (5, N, C): sum(dy*xhat)
        # (sgx*rstd, below), sg, st, the learned eps's sgx*rstd^3 (below) and sgx; one reduction over N then gives
        # dweight, dbias, dtau and the eps's per-channel sums (the same adds, row by row in n, as one .sum(axis=0)
        # each) and one cast. Rows a case does not write stay 0 (sums of garbage could warn)
        sums = np.zeros((5, n, c))
        sg, st, sgx = sums[1], sums[2], sums[4]
        dx = None
        if self.has_tau:
            if self.w64 is None:  # NOTE: the fused forward kept rstd, the rows' scale and the (C,) parameters only
                self.w64 = self.w.astype(np.float64)
            if self.needs_input_grad[0]:
                # NOTE: one call, row by row: the sums, the coefficients (coefficients.backward's operations, in C)
                # and dx while the row is in cache; dy and x are read once (docs/perf/norm-family.md)
                dx = np.empty_like(x3)
                k.row_norm_backward_max(dx, sg, sgx, st, dy, x3, self.rstd, self.w, self.scale, self.offset, self.tau)
            else:
                # NOTE: the sums phase takes per-row values: shift 0, the offset and tau tiled over the N samples
                rows = np.zeros((3, n, c), dtype)
                rows[1], rows[2] = self.offset, self.tau
                k.row_backward_sums_max(sg.reshape(r), sgx.reshape(r), st.reshape(r), dy.reshape(r, s),
                                        x3.reshape(r, s), np.zeros(r), rows[0].reshape(r), self.scale.reshape(r),
                                        rows[1].reshape(r), rows[2].reshape(r))
        else:
            unused_w, unused_b = np.empty(s, dtype), np.empty(s, dtype)
            k.row_backward_sums(sg.reshape(r), sgx.reshape(r), unused_w, unused_b, dy.reshape(r, s), x3.reshape(r, s),
                                self.mean.reshape(-1), self.rstd.reshape(-1), self.ones)
        grads = [None]
        if self.needs_input_grad[0] and dx is None:
            dx = np.empty_like(x3)
            coef = coefficients.backward(sums[1], sums[4], s, self.mean, self.rstd, False, dtype, self.w64)
            k.row_backward_apply(dx.reshape(r, s), dy.reshape(r, s), x3.reshape(r, s), self.ones,
                                 *(a.reshape(-1) for a in coef))
        if dx is not None:
            grads[0] = dx.reshape(self.shape)
        # dweight = sum(dy*xhat) per channel, xhat = x*rstd; dbias = sum(dy); dtau = the threshold's share of dy;
        # the learned eps: d(rstd)/d|eps| = -rstd^3/2 and |eps|' = sign(eps), so its gradient is
        # -sign(eps)/2 * sum over c of w[c] * sum over n of sgx*rstd^3, the inner sums with the others
        present = (self.has_weight, self.has_bias, self.has_tau)
        rows = [i for i, has in enumerate(present) if has] + ([3] if self.learned_eps else [])
        if rows:
            if self.has_weight or self.learned_eps:
                np.multiply(sums[4], self.rstd, out=sums[0])
            if self.learned_eps:
                np.multiply(sums[0], np.square(self.rstd), out=sums[3])
            low = rows[0]
            red = sums[low:rows[-1] + 1].sum(axis=1)
            cast = red.astype(dtype)
            grads.extend(cast[i - low] for i in rows if i < 3)
            if self.learned_eps:
                grads.append(np.array([-0.5 * np.sign(self.eps_value) * np.dot(self.w64, red[3 - low])], dtype))
        return tuple(grads)

    def compose(self, x, *params):  # NOTE: the double backward (create_graph=True): the forward as Tensor ops
        n, c, s = self.x3.shape
        x3 = x.reshape(n, c, s)
        eps = params[-1].abs() if self.learned_eps else self.eps_value
        y = x3 * ((x3 * x3).mean(2, keepdim=True) + eps) ** -0.5
        if self.has_weight:
            y = y * params[0].reshape(1, c, 1)
        if self.has_bias:
            y = y + params[1 if self.has_weight else 0].reshape(1, c, 1)
        if self.has_tau:
            y = y.maximum(params[self.has_weight + self.has_bias].reshape(1, c, 1))
        return y.reshape(self.shape)


def filter_response_norm(input: Tensor, weight: Tensor | None = None, bias: Tensor | None = None,
                         eps: float | Tensor = 1e-6) -> Tensor:
    """Filter Response Normalization (Singh & Krishnan, 2020, "Filter Response Normalization Layer: Eliminating
    Batch Dependence in the Training of Deep Neural Networks"), per sample and channel, no batch dependence:
        nu2 = mean over the spatial dims of x^2,    y = weight * x / sqrt(nu2 + |eps|) + bias
    (the paper's Algorithm 1: no mean subtracted). ``eps`` is a number > 0, or a one-element Tensor of the
    input's dtype for the paper's learned eps (its absolute value is used, and it gets a gradient). Follow with
    ``tlu`` for the paper's FRN layer (or call ``filter_response_norm_tlu``, the pair fused). Built from the rows
    phase kernels with ``center=False`` (rows: N*C of S values).

    Shape:
        - input (N, C, *) with at least one spatial dim; weight, bias (C,); eps (1,) when a Tensor.
    """
    return _frn("filter_response_norm", input, weight, bias, None, eps)


def _frn(fn, input, weight, bias, tau, eps):
    """filter_response_norm (``tau`` None) and its fused TLU (``tau`` a Tensor): the checks, then one node."""
    _check_input(fn, input, 3)
    a = input.data  # NOTE: the array's shape, dtype and size, not Tensor's properties (a frame each)
    c, dtype = a.shape[1], a.dtype
    _check_param(fn, "weight", weight, (c,), dtype)
    _check_param(fn, "bias", bias, (c,), dtype)
    params = _params(weight, bias)
    if tau is not None or fn == "filter_response_norm_tlu":
        if tau is None:
            raise TypeError(f"{fn}: tau must be a minigrad.Tensor of shape ({c},), got None")
        _check_param(fn, "tau", tau, (c,), dtype)
        params += (tau,)
    if isinstance(eps, Tensor):
        _check_param(fn, "eps", eps, (1,), dtype)
        params, eps = params + (eps,), None
    else:
        eps = check_eps(fn, eps)
    if a.size == 0:
        return _empty_like(input, *params)
    return _FilterResponse.apply(input, *params, has_weight=weight is not None, has_bias=bias is not None, eps=eps,
                                 has_tau=tau is not None)


def filter_response_norm_tlu(input: Tensor, weight: Tensor | None = None, bias: Tensor | None = None,
                             tau: Tensor | None = None, eps: float | Tensor = 1e-6) -> Tensor:
    """The paper's FRN layer, ``tlu(filter_response_norm(input, weight, bias, eps), tau)``, fused:
        y = max(weight * x / sqrt(mean_S(x^2) + |eps|) + bias, tau)
    with ``filter_response_norm``'s arguments and rules, and ``tau`` (required) per channel. Same results as the
    pair within rounding (the value before the max is computed as FRN computes it; Maximum's tie rule: a tie
    gives half of dy to each side), in half the passes over the data: the forward is one kernel call that takes
    each row's statistics and applies with the max while the row is in cache (``row_norm_apply_max``) and dy is
    split between the input and ``tau`` inside the backward passes (``row_backward_sums_max``,
    ``row_backward_apply_max``), fused because that measures faster than the composed
    ``maximum`` (docs/perf/norm-family.md). A separate function, not a ``tau=`` argument of
    ``filter_response_norm``, as ``batch_norm_relu`` beside ``batch_norm``: the normalization keeps its meaning
    and the fused pair is named. ``nn.Sequential`` uses it for a ``FilterResponseNorm2d`` followed by a ``TLU``.
    Double backward composes the pair from Tensor ops.

    Shape:
        - input (N, C, *) with at least one spatial dim; weight, bias, tau (C,); eps (1,) when a Tensor.
    """
    return _frn("filter_response_norm_tlu", input, weight, bias, tau, eps)


def tlu(input: Tensor, tau: Tensor) -> Tensor:
    """Thresholded linear unit (Singh & Krishnan, 2020): ``y = max(x, tau)`` with a learned ``tau`` per channel.
    A composed autograd op (``Tensor.maximum``); ties split the gradient evenly, as ``torch.maximum``. After
    ``filter_response_norm``, ``filter_response_norm_tlu`` fuses the max into FRN's passes.

    Shape:
        - input (N, C, *); tau (C,).
    """
    fn = "tlu"
    _check_input(fn, input, 2)
    if tau is None:
        raise TypeError(f"{fn}: tau must be a minigrad.Tensor of shape ({input.shape[1]},), got None")
    _check_param(fn, "tau", tau, (input.shape[1],), input.dtype)
    return input.maximum(_per_channel(tau, input.ndim))


# ------------------------------------------------------------------ EvoNorm

class _SetStd(Function):
    """std = sqrt(m2/M + eps) of each reduction set (biased variance): the channels of x viewed as (N, C, S)
    (``rows=None``, sets over N and S) or the rows of x viewed as (R, rows). Forward: one statistics phase
    (``center=True``). Backward: d std/dx_i = (x_i - mean)/(M*std), one apply pass with the coefficients of
    ``coefficients.forward(mean, g/(M*std))`` (shift the mean, scale g/(M*std), no offset)."""

    @ieee_when_eps0
    def forward(self, x, *, rows, eps):
        x2 = _as_ncs_array(x) if rows is None else np.ascontiguousarray(x).reshape(-1, rows)
        n_sets = x2.shape[1] if rows is None else x2.shape[0]
        self.count = x2.size // n_sets
        self.mean, self.m2 = np.empty(n_sets), np.empty(n_sets)
        k = kernels.kernels()
        (k.channel_stats if rows is None else k.row_stats)(self.mean, self.m2, x2, True)
        self.rstd = coefficients.rstd(self.m2, self.count, eps)
        self.x2, self.rows, self.shape, self.eps = x2, rows, x.shape, eps
        return (1.0 / self.rstd).astype(x.dtype)

    @ieee_when_eps0
    def backward(self, g):
        x2 = self.x2
        dx = np.empty_like(x2)
        shift, scale, offset = coefficients.forward(self.mean, g.astype(np.float64) * self.rstd / self.count,
                                                    x2.dtype)
        k = kernels.kernels()
        if self.rows is None:
            k.channel_apply(dx, x2, shift, scale, offset)
        else:
            ones, zeros = np.ones(self.rows, x2.dtype), np.zeros(self.rows, x2.dtype)
            k.row_apply(dx, x2, shift, scale, offset, ones, zeros)
        return dx.reshape(self.shape)

    def compose(self, x):  # NOTE: the double backward (create_graph=True): the forward as Tensor ops
        axes, x2 = ((0, 2), x.reshape(self.x2.shape)) if self.rows is None else ((1,), x.reshape(-1, self.rows))
        d = x2 - x2.mean(axes, keepdim=True)
        return ((d * d).mean(axes) + self.eps).sqrt()


class _EvoNorm(Function):
    """EvoNorm over x viewed as rows (N*C, S), one node on the gate phases (contract: ``row_*_gate``). Per row r =
    (n, c): y = f*scale[r] + offset[r] with
      S0 (gate 0): f = x*sigmoid(v[c]*x), scale = weight[c]/std of the row's group (the group's statistics by
                   ``row_stats`` on x viewed as (N*G, (C/G)*S)), offset = bias[c]
      B0 (gate 1): f = x/max(lo, v[c]*x + hi), hi = the instance std of row r, lo = the batch std of channel c
                   (combined from the instance statistics; in eval the running one, a constant), scale = weight[c],
                   offset = bias[c]; all of it one call (``evonorm_b0_forward``; in eval with ``constant_lo``, lo
                   the running std)
    Backward: the gate sums give per row sum(dy), sum(dy*f) and the sums of dy times df/dv, df/dhi, df/dlo; then
    dx = a*dy*df/dx + b*(x - shift) + k, where b*(x - shift) + k carries the standard deviations' own backward
    (d std/dx_i = (x_i - mean)/(M*std) of each set: the group for S0; the instance and, in training, the batch for
    B0). S0's backward is one call (``evonorm_s0_backward``) that runs the sums, the group's coefficients and dx
    group by group while the group is in cache; B0's one call too (``evonorm_b0_backward``: the row sums, the
    channels' sums over n, dx; in eval with ``constant_lo``, lo the running std).
    Parents: x, v, then weight, bias (those present)."""

    @ieee_when_eps0
    def forward(self, x, v, *params, gate, num_groups, running_var, has_weight, has_bias, eps):
        self.gate, self.num_groups = gate, num_groups
        self.running_var = None if running_var is None else running_var.copy()
        self.has_weight, self.has_bias, self.eps = has_weight, has_bias, eps
        n, c = x.shape[0], x.shape[1]
        dtype = x.dtype
        x2 = np.ascontiguousarray(x).reshape(n * c, -1)
        s = x2.shape[1]
        w, b = _affine(params[0] if has_weight else None, params[1 if has_weight else 0] if has_bias else None,
                       c, dtype)
        self.w64 = w.astype(np.float64)  # NOTE: (C,), broadcast against the backward's (N, C) sums by NumPy
        self.vc, self.wc = np.ascontiguousarray(v), w  # NOTE: per channel, for S0's backward kernel
        k = kernels.kernels()
        self.x2, self.shape = x2, x.shape
        y = np.empty_like(x2)
        if gate == 1:
            # NOTE: one kernel call, channel by channel while its rows are in cache: the instance statistics, the
            # batch's combined from them, both standard deviations rounded to X (lo, hi: the composed ops' values)
            # and the gate apply; per row v, lo, hi in one (3, N*C) block for the backward's row phases. In eval
            # (constant_lo) lo is X(the running std), given, and the kernel skips the batch statistics: the
            # row_stats + NumPy + row_apply_gate it replaces, the same bits (docs/perf/norm-family.md, session 38)
            co = np.empty((3, n, c), dtype)
            co[0] = v
            st = np.empty((2, n, c))
            bs = np.empty((2, c))
            args = (y.reshape(n, c, s), co[1], co[2], st[0], st[1], bs[0], bs[1], x2.reshape(n, c, s), self.vc, w, b,
                    eps)
            if running_var is None:
                k.evonorm_b0_forward(*args)
            else:
                co[1] = np.sqrt(running_var.astype(np.float64) + eps)
                k.evonorm_b0_forward(*args, constant_lo=True)
                bs[:] = 0  # NOTE: the backward's kernel does not read them in eval
            self.v, self.lo, self.hi = co.reshape(3, n * c)
            (self.imean, self.irstd), (self.mean, self.rstd) = st, bs
            return y.reshape(x.shape)
        # NOTE: the per-row v, lo, hi, scale and offset go into one (5, N*C) block by broadcasting assignments
        # (cheaper than broadcast_to + ascontiguousarray each at small N*C); an assignment casts to X as astype does
        co = np.empty((5, n, c), dtype)
        co[0], co[4] = v, b
        per = c // num_groups  # NOTE: gate 0 (S0): the group statistics, then the apply
        gm, gm2 = np.empty((2, n * num_groups))
        k.row_stats(gm, gm2, x2.reshape(n * num_groups, per * s), True)
        grstd = coefficients.rstd(gm2, per * s, eps).reshape(n, num_groups)
        self.gmean, self.grstd, self.count = gm.reshape(n, num_groups), grstd, per * s
        co.reshape(5, n, num_groups, per)[3] = self.w64.reshape(num_groups, per) * grstd[:, :, None]
        co[1:3] = 0  # NOTE: gate 0 reads neither lo nor hi
        self.v, self.lo, self.hi, scale, offset = co.reshape(5, n * c)
        k.row_apply_gate(y, x2, self.v, self.lo, self.hi, scale, offset, gate)
        return y.reshape(x.shape)

    @ieee_when_eps0
    def backward(self, g):
        x2 = self.x2
        (r, s), dtype = x2.shape, x2.dtype
        n, c = self.shape[0], self.shape[1]
        dy = np.ascontiguousarray(g, dtype=dtype).reshape(r, s)
        k = kernels.kernels()
        # NOTE: the per-row sums (N, C) that become dv, dweight and dbias are multiplied in place by their factors
        # and reduced over N in one call (per element the same products and the same order of additions as each
        # sum alone), then cast once
        if self.gate == 0:
            # NOTE: one kernel call, group by group: the gate sums of its rows, its coefficients and dx while the
            # group is in cache (evonorm_s0_backward; coefficients.evonorm_s0_backward is the same math)
            sums = np.empty((3, n, c))
            dx = np.empty_like(x2)
            k.evonorm_s0_backward(dx.reshape(n, c, s), *sums, dy.reshape(n, c, s), x2.reshape(n, c, s), self.vc,
                                  self.wc, self.gmean, self.grstd, self.num_groups)
            g, per = self.num_groups, c // self.num_groups
            grstd = self.grstd[:, :, None]
            sdyf = sums[1].reshape(n, g, per)
            sdyf *= grstd
            sums[2] *= (self.w64.reshape(g, per) * grstd).reshape(n, c)
            tot = sums.sum(axis=1).astype(dtype)
            grads = [dx.reshape(self.shape) if self.needs_input_grad[0] else None, tot[2]]
        else:
            # NOTE: one kernel call: the rows' gate sums, the channels' sums over n (dv, dweight, dbias and the
            # batch std's coefficient, which dx needs from every row) and dx (evonorm_b0_backward). In eval lo is the
            # running std, a constant (constant_lo: no batch std term; mean and rstd not read)
            dx, tot = np.empty_like(x2), np.empty((3, c), dtype)
            args = (dx.reshape(n, c, s), tot[2], tot[1], tot[0], dy.reshape(n, c, s), x2.reshape(n, c, s), self.vc,
                    self.wc, self.lo.reshape(n, c), self.hi.reshape(n, c), self.imean, self.irstd, self.mean,
                    self.rstd)
            if self.running_var is None:
                k.evonorm_b0_backward(*args)
            else:
                k.evonorm_b0_backward(*args, constant_lo=True)
            grads = [dx.reshape(self.shape) if self.needs_input_grad[0] else None, tot[2]]
        if self.has_weight:
            grads.append(tot[1])
        if self.has_bias:
            grads.append(tot[0])
        return tuple(grads)

    def compose(self, x, v, *params):  # NOTE: the double backward (create_graph=True): the forward as Tensor ops
        weight = params[0] if self.has_weight else None
        bias = params[1 if self.has_weight else 0] if self.has_bias else None
        if self.gate == 0:
            return _evonorm_s0_composed(x, v, self.num_groups, weight, bias, self.eps)
        if self.running_var is None:
            batch_std = _SetStd.apply(x, rows=None, eps=self.eps)
        else:
            batch_std = Tensor(np.sqrt(self.running_var.astype(np.float64) + self.eps).astype(x.dtype))
        return _evonorm_b0_composed(x, v, batch_std, weight, bias, self.eps)


def _check_evonorm(fn, input, v, weight, bias):
    """Returns the input's array (its shape, dtype and size read once, not through Tensor's properties)."""
    _check_input(fn, input, 3)
    a = input.data
    c, dtype = a.shape[1], a.dtype
    if v is None:
        raise TypeError(f"{fn}: v must be a minigrad.Tensor of shape ({c},), got None")
    _check_param(fn, "v", v, (c,), dtype)
    _check_param(fn, "weight", weight, (c,), dtype)
    _check_param(fn, "bias", bias, (c,), dtype)
    return a


def _affine_tensor(y, weight, bias):
    if weight is not None:
        y = y * _per_channel(weight, y.ndim)
    if bias is not None:
        y = y + _per_channel(bias, y.ndim)
    return y


def evonorm_b0(input: Tensor, v: Tensor, running_var: Tensor | None = None, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """EvoNorm-B0 (Liu et al., 2020, "Evolving Normalization-Activation Layers", Table/Figure of the discovered
    layers; eps inside every sqrt as in the paper's code):
        y = x / max(sqrt(s2_{N,S}(x) + eps), v*x + sqrt(s2_{S}(x) + eps)) * weight + bias
    with s2_{N,S} the batch variance per channel (over the batch and spatial dims) and s2_{S} the instance
    variance per sample and channel, both biased. In training the batch variance is the batch's and, when
    ``running_var`` is given, it is updated in place as batch norm's (momentum, unbiased); in eval
    (``training=False``) ``running_var`` replaces it and is required, so the output uses only running statistics
    (and each sample's own instance variance). One node (``_EvoNorm``): the instance statistics (the batch's are
    combined from them), then v*x, the max, the division and the affine fused into one apply pass, in training
    all in one kernel call (``evonorm_b0_forward``; in eval with ``constant_lo``, lo the running std), and
    their backward into the sums and backward-apply passes (in training one call, ``evonorm_b0_backward``); fused
    because that measures faster than the composed ops (docs/perf/norm-family.md). Ties of the max split the
    gradient evenly, as ``torch.maximum``. Double backward composes the same formula from Tensor ops.

    Shape:
        - input (N, C, *) with at least one spatial dim; v, running_var, weight, bias (C,).
    """
    fn = "evonorm_b0"
    a = _check_evonorm(fn, input, v, weight, bias)
    c, size = a.shape[1], a.size
    rv = _check_param(fn, "running_var", running_var, (c,), a.dtype)
    eps = check_eps(fn, eps)
    if not training and rv is None:
        raise ValueError(f"{fn}: running_var is required when training=False")
    if size == 0:
        return _empty_like(input, v, weight, bias)
    if training and size // c <= 1:
        raise ValueError(f"{fn}: expected more than 1 value per channel when training, got input of shape "
                         f"{input.shape}")
    if training and rv is not None:
        momentum = check_momentum(fn, momentum)
    out, node = _EvoNorm.apply_with_ctx(input, v, *_params(weight, bias), gate=1, num_groups=None,
                                        running_var=None if training else rv, has_weight=weight is not None,
                                        has_bias=bias is not None, eps=eps)
    if training and rv is not None:
        count = size // c
        # NOTE: through _host, reading the node when it runs, so that minigrad.compile's replay updates it
        _host(lambda rv: _update_running(None, rv, node.mean.reshape(1, c), node.rstd.reshape(1, c), momentum, eps,
                                         count), rv)
    return out


def _evonorm_b0_composed(input, v, batch_std, weight, bias, eps):
    """EvoNorm-B0 as composed Tensor ops (the double backward of ``_EvoNorm``), ``batch_std`` (C,) given."""
    c = input.shape[1]
    s = input.size // (input.shape[0] * c)
    instance_std = _SetStd.apply(input, rows=s, eps=eps).reshape(input.shape[0], c, *([1] * (input.ndim - 2)))
    den = _per_channel(batch_std, input.ndim).maximum(_per_channel(v, input.ndim) * input + instance_std)
    return _affine_tensor(input / den, weight, bias)


def evonorm_s0(input: Tensor, v: Tensor, num_groups: int = 32, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """EvoNorm-S0 (Liu et al., 2020, "Evolving Normalization-Activation Layers"), batch independent:
        y = x * sigmoid(v*x) / sqrt(s2_{C/G,S}(x) + eps) * weight + bias
    with s2_{C/G,S} the (biased) variance of each sample's group of C/G channels over those channels and the
    spatial dims (group norm's sets). One node (``_EvoNorm``): the group statistics (``row_stats`` on rows of
    (C/G)*S values), then the gate x*sigmoid(v*x), the division and the affine fused into one apply pass
    (``row_apply_gate`` with gate 0) and their backward into one kernel call that takes each group's sums, its
    coefficients and dx while the group is in cache (``evonorm_s0_backward``); fused because that measures faster
    than the composed ops (docs/perf/norm-family.md). Double backward composes the same formula from Tensor ops.

    Shape:
        - input (N, C, *) with at least one spatial dim and C divisible by num_groups; v, weight, bias (C,).
    """
    fn = "evonorm_s0"
    a = _check_evonorm(fn, input, v, weight, bias)
    num_groups = check_num_groups(fn, num_groups, a.shape[1])
    eps = check_eps(fn, eps)
    if a.size == 0:
        return _empty_like(input, v, weight, bias)
    return _EvoNorm.apply(input, v, *_params(weight, bias), gate=0, num_groups=num_groups, running_var=None,
                          has_weight=weight is not None, has_bias=bias is not None, eps=eps)


def _evonorm_s0_composed(input, v, num_groups, weight, bias, eps):
    """EvoNorm-S0 as composed Tensor ops (the double backward of ``_EvoNorm``)."""
    n = input.shape[0]
    group = input.size // (n * num_groups)
    group_std = _SetStd.apply(input, rows=group, eps=eps).reshape(n, num_groups, 1)
    gated = input * (_per_channel(v, input.ndim) * input).sigmoid()
    y = (gated.reshape(n, num_groups, group) / group_std).reshape(*input.shape)
    return _affine_tensor(y, weight, bias)
