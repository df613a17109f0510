"""Loss functionals: cross entropy (on the log-softmax kernel), nll and mse (``torch.nn.functional`` semantics).

``cross_entropy`` with class indices is one fused node on rows (M, C) (an (N, C, d1, ...) input is moved to
rows first): the forward is the log-softmax kernel plus a gather; its backward is ``softmax - q`` with ``q`` the
(label-smoothed) target distribution, weighted per class and scaled by the reduction. With probability targets
it is composed from log_softmax and Tensor ops.
"""
import functools
import numbers

import numpy as np

from minigrad import kernels
from minigrad.tensor import Function, Tensor, _host, is_grad_enabled

from .activation import log_softmax
from .checks import check_tensor


class _CrossEntropy(Function):
    """Cross entropy of rows x (M, C) at class indices, with class weights ``w`` and ignored rows. Per row i,
    with ``v_i = 0`` for an ignored row (else 1) and ``wt_i = v_i w[t_i]``:
        loss_i = -(1 - s) wt_i logp[i, t_i] - (s / C) v_i sum_c w_c logp[i, c]
    ``mean`` divides the sum by ``sum_i wt_i`` (PyTorch's weighted mean). Backward, with p = softmax(x_i):
        dx_i = (1 - s) wt_i (p - onehot(t_i)) + (s / C) v_i (W p - w),   W = sum_c w_c
    (no weight: w = 1, and this is ``v_i (p - q_i)``, q the smoothed target)."""

    def forward(self, x, target, weight, valid, smoothing, reduction):
        m, c = x.shape
        x = np.ascontiguousarray(x)
        logp = np.empty_like(x)  # NOTE: after the copy: empty_like keeps a Fortran order, which the kernel refuses
        # NOTE: count_nonzero, not valid.all(): the same answer without a ufunc reduction (3 us against 1)
        if weight is None and not smoothing and reduction != "none" and np.count_nonzero(valid) == valid.size:
            # NOTE: the plain case (a classifier's step) in 3 calls where the general path makes ~12: the loss has
            # the general path's bits (its per-row -1.0 * 1.0 * logp are exact, and a pairwise sum of negated
            # values is the negated sum; the count is wt.sum()); the backward is PyTorch's (below). wt = None
            # marks it. The log-softmax and the gather at the targets in one kernel call
            self.logp, self.target, self.weight, self.valid, self.wt = logp, target, None, valid, None
            self.smoothing, self.reduction = 0.0, reduction
            picked = np.empty(m)
            kernels.kernels().cross_entropy_forward(logp, picked, x, target)
            total = -np.add.reduce(picked)  # NOTE: .sum() without its frame
            return np.asarray(total / m if reduction == "mean" else total, dtype=x.dtype)
        kernels.kernels().log_softmax_forward(logp, x)
        rows = np.arange(m)
        wt = valid.astype(np.float64) if weight is None else np.where(valid, weight[target], 0.0)
        loss = -(1.0 - smoothing) * wt * logp[rows, target]
        if smoothing:
            per_class = logp if weight is None else logp * weight
            loss -= smoothing / c * valid * per_class.sum(axis=1, dtype=np.float64)
        self.logp, self.target, self.weight, self.valid, self.wt = logp, target, weight, valid, wt
        self.smoothing, self.reduction = smoothing, reduction
        if reduction == "none":
            return loss.astype(x.dtype)
        total = loss.sum()
        # NOTE: every row ignored gives 0/0 = NaN under "mean", as PyTorch's
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(total / wt.sum() if reduction == "mean" else total, dtype=x.dtype)

    def backward(self, g):
        m, c = self.logp.shape
        if self.wt is None:
            # NOTE: PyTorch's backward of the plain case: nll_loss's gradient -g/m in X at each target (-g for
            # "sum"), then log_softmax's backward, dx = dy - exp(logp)*sum(dy) per row: one kernel call that makes
            # that one-hot dy as it goes (the kernel rounds the scale to X, as the assignment into dy did)
            dx = np.empty(self.logp.shape, self.logp.dtype)  # NOTE: logp is C-contiguous (the kernel's output)
            kernels.kernels().cross_entropy_backward(dx, self.logp, self.target,
                                                     float(-(g / m if self.reduction == "mean" else g)))
            return dx
        s, rows = self.smoothing, np.arange(m)
        p = np.exp(self.logp)
        dx = p * ((1.0 - s) * self.wt)[:, None]
        dx[rows, self.target] -= (1.0 - s) * self.wt
        if s:
            if self.weight is None:
                dx += (s / c) * self.valid[:, None] * (c * p - 1.0)
            else:
                dx += (s / c) * self.valid[:, None] * (self.weight.sum() * p - self.weight)
        if self.reduction == "none":
            return (dx * g[:, None]).astype(p.dtype, copy=False)
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = g / self.wt.sum() if self.reduction == "mean" else g
        return (dx * scale).astype(p.dtype, copy=False)

    def compose(self, x):  # NOTE: the double backward (create_graph=True): the forward as Tensor ops
        m, c = self.logp.shape
        logp = x - x.logsumexp(1, keepdim=True)
        dt = x.dtype
        wt = self.valid.astype(np.float64) if self.wt is None else self.wt  # NOTE: None: the plain case's
        loss = logp[np.arange(m), self.target] * Tensor((-(1.0 - self.smoothing) * wt).astype(dt))
        if self.smoothing:
            per_class = logp if self.weight is None else logp * Tensor(self.weight.astype(dt))
            loss = loss - per_class.sum(1) * Tensor((self.smoothing / c * self.valid).astype(dt))
        if self.reduction == "none":
            return loss
        return loss.sum() / float(wt.sum()) if self.reduction == "mean" else loss.sum()


def _as_index_target(fn, input, target, ignore_index):
    """Integer class indices of shape input.shape without dim 1 (``()`` for a (C,) input), in [0, C) or equal
    to ``ignore_index``; returns them flat, with the mask of the rows that count (a host computation: minigrad.compile
    replays it, checks included, on each step's target)."""
    shape = input.data.shape  # NOTE: the array's (Tensor.shape and .ndim are properties' frames: called per step)
    want = shape[:1] + shape[2:] if len(shape) >= 2 else ()
    c = shape[1] if len(shape) >= 2 else shape[0]
    return _host(functools.partial(_index_target, fn, shape, want, c, ignore_index), target.data)


def _index_target(fn, in_shape, want, c, ignore_index, t):
    if t.dtype.kind not in "iu":
        raise TypeError(f"{fn}: target must hold integer class indices, got dtype {t.dtype}")
    if t.shape != want:
        raise ValueError(f"{fn}: target must have shape {want} for input {in_shape} (input without its class "
                         f"dim 1), got {t.shape}")
    t = t.astype(np.int64, copy=False).reshape(-1)
    valid = t != ignore_index
    if np.count_nonzero(valid) == t.size:  # NOTE: nothing ignored (the usual case): t itself, checked, in a copy
        # NOTE: np.maximum.reduce is what .max() calls, without its Python frame
        if t.size and np.maximum.reduce(t.view(np.uint64)) >= c:
            _target_range_error(fn, t, c, ignore_index)
        return t.copy(), valid
    kept = t[valid]
    # NOTE: one reduction for both bounds: a negative index viewed as uint64 is larger than any class count
    if kept.size and kept.view(np.uint64).max() >= c:
        _target_range_error(fn, kept, c, ignore_index)
    return np.where(valid, t, 0), valid


def _target_range_error(fn, kept, c, ignore_index):
    raise ValueError(f"{fn}: target values must be in [0, {c}) or equal ignore_index={ignore_index}, got "
                     f"range [{kept.min()}, {kept.max()}]")


def _rows(x):
    """(N, C, d1, ...) or (C,) as rows (M, C) with the class dim last (Tensor ops, so autograd goes through)."""
    ndim = x.data.ndim
    if ndim == 1:
        return x.reshape(1, -1)
    if ndim == 2:
        return x
    return x.permute(0, *range(2, x.ndim), 1).reshape(-1, x.shape[1])


def _unrows(loss, input):
    """A per-row loss (M,) back to input's shape without the class dim."""
    return loss.reshape(input.shape[:1] + input.shape[2:] if input.ndim >= 2 else ())


def _check_weight(fn, weight, input):
    if weight is None:
        return None
    if isinstance(weight, str):
        raise TypeError(f"{fn}: weight must be a Tensor or None, got the string {weight!r}; pass reduction= by "
                        f"keyword (PyTorch's argument order: input, target, weight, ...)")
    if not isinstance(weight, Tensor):
        raise TypeError(f"{fn}: weight must be a Tensor or None, got {type(weight).__name__}")
    c = input.shape[1] if input.ndim >= 2 else input.shape[0]
    if weight.shape != (c,):
        raise ValueError(f"{fn}: weight must have shape (C,) = ({c},), got {weight.shape}")
    if weight.requires_grad and is_grad_enabled():
        raise NotImplementedError(f"{fn}: the gradient with respect to weight is not implemented (as PyTorch); "
                                  f"pass weight.detach()")
    return weight.data.astype(np.float64)


def _legacy_reduction(fn, size_average, reduce, reduction):
    """PyTorch's deprecated size_average/reduce: either set overrides ``reduction``, as there."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    return "none" if not reduce else "mean" if size_average else "sum"


def _check_reduction(fn, reduction):
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{fn}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _check_ignore_index(fn, ignore_index):
    if type(ignore_index) is int:  # NOTE: the common case, without the ABC check (about 1 us a call)
        return ignore_index
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"{fn}: ignore_index must be an int, got {ignore_index!r}")
    return int(ignore_index)


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average: bool | None = None,
                  ignore_index: int = -100, reduce: bool | None = None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Cross entropy between logits ``input`` and ``target``, fused with a stable log-softmax over dim 1.

    Shapes: input (N, C), (N, C, d1, ...) or (C,). ``target`` is either integer class indices, shaped as input
    without dim 1, or class probabilities of input's own shape (float). ``weight`` (C,) rescales each class.
    Targets equal to ``ignore_index`` add nothing and do not count in the mean. ``label_smoothing`` s mixes the
    target with the uniform distribution: ``q = (1 - s) * target + s / C``. Reductions as PyTorch's: with class
    indices, ``mean`` divides by the summed weight of the counted targets (their number without ``weight``);
    with probabilities, by the number of rows ``N * d1 * ...``. ``size_average``/``reduce`` are PyTorch's
    deprecated spellings of ``reduction``.

    Shape:
        - Input: ``(N, C)``, ``(N, C, d1, ...)`` or ``(C,)``; target: see above
        - Output: a scalar, or the target's batch shape with ``reduction='none'``
    """
    check_tensor("cross_entropy", input)
    reduction = _legacy_reduction("cross_entropy", size_average, reduce, reduction)
    _check_reduction("cross_entropy", reduction)
    ignore_index = _check_ignore_index("cross_entropy", ignore_index)
    if type(label_smoothing) is not float and not isinstance(label_smoothing, numbers.Real) \
            or not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing!r}")
    if input.data.ndim == 0:  # NOTE: the arrays' ndim and dtype below, not Tensor's properties (called per step)
        raise ValueError("cross_entropy: input must have shape (N, C), (N, C, d1, ...) or (C,), got a 0-d tensor")
    if input.data.size == 0:
        raise ValueError(f"cross_entropy: input must be non-empty, got shape {input.shape}")
    w = _check_weight("cross_entropy", weight, input)
    if not isinstance(target, Tensor):
        target = Tensor(np.asarray(target))
    if target.data.dtype.kind == "f":
        return _soft_cross_entropy(input, target, w, float(label_smoothing), reduction)
    t, valid = _as_index_target("cross_entropy", input, target, ignore_index)
    loss = _CrossEntropy.apply(_rows(input), target=t, weight=w, valid=valid, smoothing=float(label_smoothing),
                               reduction=reduction)
    return _unrows(loss, input) if reduction == "none" else loss


def _soft_cross_entropy(input, target, w, smoothing, reduction):
    """``-sum_c w_c q_c log softmax(x)_c`` per row, q = (1 - s) target + s / C: Tensor ops, so the target gets a
    gradient too (as PyTorch's)."""
    if target.shape != input.shape:
        raise TypeError(f"cross_entropy: target must hold integer class indices, or float class probabilities "
                        f"of input's shape {input.shape}; got dtype {target.dtype} and shape {target.shape}")
    if target.dtype != input.dtype:
        raise TypeError(f"cross_entropy: probability targets must have input's dtype {input.dtype}, got "
                        f"{target.dtype}")
    cdim = 1 if input.ndim >= 2 else 0
    c = input.shape[cdim]
    logp = log_softmax(input, cdim)
    q = target * (1.0 - smoothing) + smoothing / c if smoothing else target
    prod = logp * q
    if w is not None:
        prod = prod * Tensor(w.astype(input.dtype).reshape((c,) + (1,) * (input.ndim - cdim - 1)))
    loss = -prod.sum(cdim)
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.sum() / float(max(loss.data.size, 1))


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average: bool | None = None,
             ignore_index: int = -100, reduce: bool | None = None, reduction: str = "mean") -> Tensor:
    """Negative log likelihood of log-probabilities ``input`` (N, C), (N, C, d1, ...) or (C,) at integer
    ``target`` (input's shape without dim 1): ``loss = -weight[t] * input[.., t, ..]``. ``ignore_index`` and
    the weighted ``mean`` (divided by the summed weight of the counted targets) as PyTorch's.

    Shape:
        - Input: ``(N, C)``, ``(N, C, d1, ...)`` or ``(C,)``; target: the input's shape without dim 1
        - Output: a scalar, or the target's shape with ``reduction='none'``
    """
    check_tensor("nll_loss", input)
    reduction = _legacy_reduction("nll_loss", size_average, reduce, reduction)
    _check_reduction("nll_loss", reduction)
    ignore_index = _check_ignore_index("nll_loss", ignore_index)
    if input.ndim == 0:
        raise ValueError("nll_loss: input must have shape (N, C), (N, C, d1, ...) or (C,), got a 0-d tensor")
    w = _check_weight("nll_loss", weight, input)
    if not isinstance(target, Tensor):
        target = Tensor(np.asarray(target))
    t, valid = _as_index_target("nll_loss", input, target, ignore_index)
    rows = _rows(input)
    neg_wt, total = _host(functools.partial(_nll_weights, w, input.dtype), t, valid)
    picked = rows[np.arange(rows.shape[0]), t] * Tensor(neg_wt)
    if reduction == "none":
        return _unrows(picked, input)
    if reduction == "sum":
        return picked.sum()
    return picked.sum() / Tensor(total)


def _nll_weights(w, dtype, t, valid):
    """-weight[t] per counted target (0 where ignored) and the mean's divisor, their summed weight (NaN when it is 0,
    PyTorch's 0/0), in ``dtype``. NOTE: a host computation, so that minigrad.compile replays it on each step's
    target."""
    wt = valid.astype(np.float64) if w is None else np.where(valid, w[t], 0.0)
    total = wt.sum()
    return (-wt).astype(dtype), np.asarray(total if total else np.nan, dtype)


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean squared error ``(input - target)^2`` with broadcasting of ``target`` to ``input``'s shape.

    Shape:
        - Input: ``(*)``; target: broadcastable to it
        - Output: a scalar, or the input's shape with ``reduction='none'``
    """
    check_tensor("mse_loss", input)
    _check_reduction("mse_loss", reduction)
    target = target if isinstance(target, Tensor) else Tensor(np.asarray(target, dtype=input.dtype))
    if np.broadcast_shapes(input.shape, target.shape) != input.shape:
        raise ValueError(f"mse_loss: target of shape {target.shape} does not broadcast to input {input.shape}")
    d = input - target
    sq = d * d
    return sq if reduction == "none" else sq.sum() if reduction == "sum" else sq.mean()
