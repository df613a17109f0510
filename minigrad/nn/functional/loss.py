"""Loss functionals: cross entropy (on the log-softmax kernel), nll and mse (``torch.nn.functional`` semantics).

``cross_entropy`` is one fused node: the forward is the log-softmax kernel plus a gather; its backward is
``softmax - q`` with ``q`` the (label-smoothed) target distribution, scaled by the reduction.
"""
import numbers

import numpy as np

from minigrad import kernels
from minigrad.tensor import Function, Tensor

from .checks import check_tensor


class _CrossEntropy(Function):
    def forward(self, x, target, smoothing, reduction):
        n, c = x.shape
        logp = np.empty_like(x)
        kernels.kernels().log_softmax_forward(logp, np.ascontiguousarray(x))
        picked = logp[np.arange(n), target].astype(np.float64)
        loss = -(1.0 - smoothing) * picked
        if smoothing:
            loss -= smoothing / c * logp.sum(axis=1, dtype=np.float64)
        self.logp, self.target, self.smoothing, self.reduction = logp, target, smoothing, reduction
        if reduction == "none":
            return loss.astype(x.dtype)
        total = loss.sum()
        return np.asarray(total / n if reduction == "mean" else total, dtype=x.dtype)

    def backward(self, g):
        n, c = self.logp.shape
        # d loss_i / d x_i = softmax(x_i) - q_i, q = (1 - s) * onehot(target) + s / C
        dx = np.exp(self.logp)
        if self.smoothing:
            dx -= self.smoothing / c
        dx[np.arange(n), self.target] -= 1.0 - self.smoothing
        if self.reduction == "none":
            return dx * g[:, None]
        return dx * (g / n if self.reduction == "mean" else g)

    def compose(self, x):  # NOTE: the double backward (create_graph=True): the forward as Tensor ops
        n, c = self.logp.shape
        logp = x - x.logsumexp(1, keepdim=True)
        loss = logp[np.arange(n), self.target] * -(1.0 - self.smoothing)
        if self.smoothing:
            loss = loss - logp.sum(1) * (self.smoothing / c)
        if self.reduction == "none":
            return loss
        return loss.mean() if self.reduction == "mean" else loss.sum()


def _check_targets(fn, input, target):
    if not isinstance(target, Tensor):
        target = Tensor(np.asarray(target))
    t = target.data
    if t.dtype.kind not in "iu":
        raise TypeError(f"{fn}: target must hold integer class indices, got dtype {t.dtype}")
    if input.ndim != 2:
        raise ValueError(f"{fn}: input must have shape (N, C), got {input.shape}")
    if t.shape != (input.shape[0],):
        raise ValueError(f"{fn}: target must have shape (N,) = ({input.shape[0]},), got {t.shape}")
    t = t.astype(np.int64, copy=False)
    # NOTE: one reduction for both bounds: a negative index viewed as uint64 is larger than any class count
    if t.size and t.view(np.uint64).max() >= input.shape[1]:
        raise ValueError(f"{fn}: target values must be in [0, {input.shape[1]}), got range "
                         f"[{t.min()}, {t.max()}]")
    return t


def _check_reduction(fn, reduction):
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{fn}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def cross_entropy(input, target, reduction="mean", label_smoothing=0.0):
    """Cross entropy between logits ``input`` (N, C) and integer class ``target`` (N,), fused with a stable
    log-softmax. ``label_smoothing`` s mixes the one-hot target with the uniform distribution:
    ``q = (1 - s) * onehot + s / C``, as PyTorch does."""
    check_tensor("cross_entropy", input)
    t = _check_targets("cross_entropy", input, target)
    _check_reduction("cross_entropy", reduction)
    if type(label_smoothing) is not float and not isinstance(label_smoothing, numbers.Real) \
            or not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing!r}")
    if input.shape[0] == 0 or input.shape[1] == 0:
        raise ValueError(f"cross_entropy: input must be non-empty (N, C), got {input.shape}")
    return _CrossEntropy.apply(input, target=t, smoothing=float(label_smoothing), reduction=reduction)


def nll_loss(input, target, reduction="mean"):
    """Negative log likelihood of log-probabilities ``input`` (N, C) at integer ``target`` (N,)."""
    check_tensor("nll_loss", input)
    t = _check_targets("nll_loss", input, target)
    _check_reduction("nll_loss", reduction)
    picked = -input[np.arange(input.shape[0]), t]
    return picked if reduction == "none" else picked.sum() if reduction == "sum" else picked.mean()


def mse_loss(input, target, reduction="mean"):
    """Mean squared error ``(input - target)^2`` with broadcasting of ``target`` to ``input``'s shape."""
    check_tensor("mse_loss", input)
    _check_reduction("mse_loss", reduction)
    target = target if isinstance(target, Tensor) else Tensor(np.asarray(target, dtype=input.dtype))
    if np.broadcast_shapes(input.shape, target.shape) != input.shape:
        raise ValueError(f"mse_loss: target of shape {target.shape} does not broadcast to input {input.shape}")
    d = input - target
    sq = d * d
    return sq if reduction == "none" else sq.sum() if reduction == "sum" else sq.mean()
