"""Modules of the normalization family beyond PyTorch: BatchRenorm1d/2d/3d, FilterResponseNorm2d, TLU, EvoNorm2d.

They own the parameters, the running statistics and the training flag, and call the functionals of
``minigrad.nn.functional.norm_family``, whose docstrings carry the formulas. Ghost batch norm is
``BatchNorm1d/2d/3d(..., virtual_batch_size=...)`` (``minigrad.nn.norm``).
"""
import numbers

import numpy as np

from minigrad.kernels.rules import check_eps, check_momentum, check_num_groups, float_dtype
from minigrad.nn import functional as F
from minigrad.nn.functional.norm_family import _check_bound
from minigrad.nn.module import Module, Parameter
from minigrad.nn.norm import _BATCH_NORM_STATE, _NormBase
from minigrad.tensor import Tensor


def _check_features(owner, num_features):
    if isinstance(num_features, bool) or not isinstance(num_features, numbers.Integral) or num_features < 1:
        raise ValueError(f"{owner}: num_features must be a positive integer, got {num_features!r}")
    return int(num_features)


def _check_ndim(owner, x, ndims):
    if not isinstance(x, Tensor):
        raise TypeError(f"{owner}: input must be a minigrad.Tensor, got {type(x).__name__}")
    if x.data.ndim not in ndims:  # NOTE: the array's, not Tensor.ndim's frame: called per forward
        raise ValueError(f"{owner}: expected {' or '.join(f'{d}D' for d in ndims)} input, got shape {x.shape}")


class _BatchRenorm(_NormBase):
    """Batch Renormalization (``minigrad.nn.functional.batch_renorm``): running statistics as batch norm's
    (``num_batches_tracked`` counts the updates; ``momentum=None`` is a cumulative average), eval as batch norm.

    Warmup schedule (the paper ramps r_max and d_max up during training): with ``warmup_steps = W`` and ``t`` the
    number of updates before this one (``num_batches_tracked``), the clip bounds of this step are
        t < W:            r_max_t = 1, d_max_t = 0                      (plain batch norm)
        W <= t < 2W:      f = (t - W + 1)/W,  r_max_t = 1 + (r_max - 1)*f,  d_max_t = d_max*f
        t >= 2W - 1:      r_max, d_max                                  (W = 0: from the first step)
    so the bounds open linearly over W steps after W steps of batch norm (``clip_bounds(t)``).
    """
    _ndims = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, r_max: float = 3.0,
                 d_max: float = 5.0, warmup_steps: int = 0, affine: bool = True,
                 dtype: np.dtype | type | str | None = None):
        owner = type(self).__name__
        super().__init__(num_features, eps, momentum, affine, True, dtype)
        self.r_max, self.d_max = _check_bound(owner, "r_max", r_max, 1.0), _check_bound(owner, "d_max", d_max, 0.0)
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, numbers.Integral) or warmup_steps < 0:
            raise ValueError(f"{owner}: warmup_steps must be an int >= 0, got {warmup_steps!r}")
        self.warmup_steps = int(warmup_steps)

    def clip_bounds(self, step):
        """(r_max, d_max) of the update that follows ``step`` earlier updates (the warmup schedule above)."""
        w = self.warmup_steps
        f = 1.0 if w == 0 else min(max((step - w + 1) / w, 0.0), 1.0)
        return 1.0 + (self.r_max - 1.0) * f, self.d_max * f

    def forward(self, x):
        _check_ndim(type(self).__name__, x, self._ndims)
        # NOTE: the tables, not the attributes, where no subclass may shadow them (Module._table_state: a parameter
        # or buffer read through __getattr__ costs about a microsecond)
        state = self._table_state(_PLAIN_RENORMS, _BATCH_NORM_STATE)
        if state is None:
            state = [self.weight, self.bias, self.running_mean, self.running_var, self.num_batches_tracked]
        weight, bias, running_mean, running_var, count = state
        if not self.training:
            return F.batch_renorm(x, running_mean, running_var, weight, bias, False, 0.0, self.eps, self.r_max,
                                  self.d_max)
        factor = self._average_factor(count)  # NOTE: counts this batch: the count is now one more than the earlier

        def bounds():  # NOTE: read from the count when r and d are computed, so that minigrad.compile replays it
            return self.clip_bounds(int(self.num_batches_tracked.data) - 1)
        return F.batch_renorm(x, running_mean, running_var, weight, bias, True, factor, self.eps, self.r_max,
                              self.d_max, bounds=bounds)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, r_max={self.r_max}, "
                f"d_max={self.d_max}, warmup_steps={self.warmup_steps}, affine={self.affine}")


class BatchRenorm1d(_BatchRenorm):
    """Batch Renormalization (Ioffe, 2017) over 2-d or 3-d input; in training

        y = ((x - mu_B) / sigma_B * r + d) * weight + bias,
        r = clip(sigma_B / sigma, 1/r_max, r_max),   d = clip((mu_B - running_mean) / sigma, -d_max, d_max)

    with ``sigma = sqrt(running_var + eps)``; r and d are constants in backward. In eval mode it is batch norm with
    the running statistics (see ``F.batch_renorm``).

    Args:
        num_features: ``C``, the number of channels.
        eps, momentum: as batch norm's (defaults 1e-5, 0.1).
        r_max, d_max: the bounds on the correction factors r and d (defaults 3.0 and 5.0).
        warmup_steps: training steps of plain batch norm (r = 1, d = 0) before the correction starts (default 0).
        affine: learn a per-channel ``weight`` and ``bias`` (default True).
        dtype: float32 (default) or float64 parameters and buffers.

    Shape:
        - Input: ``(N, C)`` or ``(N, C, L)``
        - Output: the input's shape
    """
    _ndims = (2, 3)


class BatchRenorm2d(_BatchRenorm):
    """Batch Renormalization (Ioffe, 2017) over 4-d input; in training

        y = ((x - mu_B) / sigma_B * r + d) * weight + bias,
        r = clip(sigma_B / sigma, 1/r_max, r_max),   d = clip((mu_B - running_mean) / sigma, -d_max, d_max)

    with ``sigma = sqrt(running_var + eps)``; r and d are constants in backward. In eval mode it is batch norm with
    the running statistics (see ``F.batch_renorm``).

    Args:
        num_features: ``C``, the number of channels.
        eps, momentum: as batch norm's (defaults 1e-5, 0.1).
        r_max, d_max: the bounds on the correction factors r and d (defaults 3.0 and 5.0).
        warmup_steps: training steps of plain batch norm (r = 1, d = 0) before the correction starts (default 0).
        affine: learn a per-channel ``weight`` and ``bias`` (default True).
        dtype: float32 (default) or float64 parameters and buffers.

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: the input's shape
    """
    _ndims = (4,)


class BatchRenorm3d(_BatchRenorm):
    """Batch Renormalization (Ioffe, 2017) over 5-d input; in training

        y = ((x - mu_B) / sigma_B * r + d) * weight + bias,
        r = clip(sigma_B / sigma, 1/r_max, r_max),   d = clip((mu_B - running_mean) / sigma, -d_max, d_max)

    with ``sigma = sqrt(running_var + eps)``; r and d are constants in backward. In eval mode it is batch norm with
    the running statistics (see ``F.batch_renorm``).

    Args:
        num_features: ``C``, the number of channels.
        eps, momentum: as batch norm's (defaults 1e-5, 0.1).
        r_max, d_max: the bounds on the correction factors r and d (defaults 3.0 and 5.0).
        warmup_steps: training steps of plain batch norm (r = 1, d = 0) before the correction starts (default 0).
        affine: learn a per-channel ``weight`` and ``bias`` (default True).
        dtype: float32 (default) or float64 parameters and buffers.

    Shape:
        - Input: ``(N, C, D, H, W)``
        - Output: the input's shape
    """
    _ndims = (5,)


# the BatchRenorm classes whose parameters and buffers _BatchRenorm.forward reads from the tables
_PLAIN_RENORMS = frozenset((BatchRenorm1d, BatchRenorm2d, BatchRenorm3d))


class FilterResponseNorm2d(Module):
    """Filter Response Normalization over (N, C, H, W) (``minigrad.nn.functional.filter_response_norm``): weight
    (ones) and bias (zeros) per channel; ``learnable_eps=True`` makes ``eps`` a one-element Parameter that starts
    at ``eps`` (|eps| is used, as in the paper). Follow it with ``TLU(num_features)``: in an ``nn.Sequential`` the
    pair runs as one fused op (``forward_tlu``).

        y = weight * x / sqrt(mean_{H,W}(x^2) + |eps|) + bias

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: the input's shape"""

    def __init__(self, num_features: int, eps: float = 1e-6, learnable_eps: bool = False,
                 dtype: np.dtype | type | str | None = None):
        super().__init__()
        owner = type(self).__name__
        self.num_features = _check_features(owner, num_features)
        eps, dt = check_eps(owner, eps), float_dtype(dtype)
        self.learnable_eps = bool(learnable_eps)
        self.weight = Parameter(np.ones(self.num_features, dt))
        self.bias = Parameter(np.zeros(self.num_features, dt))
        self.eps = Parameter(np.full(1, eps, dt)) if self.learnable_eps else eps

    def forward(self, x):
        _check_ndim(type(self).__name__, x, (4,))
        return F.filter_response_norm(x, self.weight, self.bias, self.eps)

    def forward_tlu(self, x, tau):
        """``max(self(x), tau)`` in one node (F.filter_response_norm_tlu): nn.Sequential calls it for a
        FilterResponseNorm2d then a TLU, with the TLU's ``tau``."""
        if type(self).forward is not FilterResponseNorm2d.forward:  # NOTE: a subclass's own forward must run
            return F.tlu(self(x), tau)
        _check_ndim(type(self).__name__, x, (4,))
        return F.filter_response_norm_tlu(x, self.weight, self.bias, tau, self.eps)

    def extra_repr(self):
        eps = float(self.eps.data[0]) if self.learnable_eps else self.eps
        return f"{self.num_features}, eps={eps}, learnable_eps={self.learnable_eps}"


class TLU(Module):
    """Thresholded linear unit ``max(x, tau)`` with ``tau`` per channel, starting at zeros (a ReLU). After a
    ``FilterResponseNorm2d`` in an ``nn.Sequential`` the pair runs fused (``F.filter_response_norm_tlu``)."""

    is_plain_tlu = True  # nn.Sequential fuses a FilterResponseNorm2d followed by this class (not its subclasses)

    def __init__(self, num_features: int, dtype: np.dtype | type | str | None = None):
        super().__init__()
        self.num_features = _check_features(type(self).__name__, num_features)
        self.tau = Parameter(np.zeros(self.num_features, float_dtype(dtype)))

    def forward(self, x):
        return F.tlu(x, self.tau)

    def extra_repr(self):
        return f"{self.num_features}"


class EvoNorm2d(Module):
    """EvoNorm-B0 or EvoNorm-S0 over (N, C, H, W) (``minigrad.nn.functional.evonorm_b0`` / ``evonorm_s0``).

    Parameters ``weight`` (ones), ``bias`` (zeros) and ``v`` (ones), each (C,). B0 keeps ``running_var`` (ones),
    updated in training with ``momentum`` as batch norm's and used in eval; ``num_groups`` is unused. S0 has no
    running statistics and behaves the same in train and eval; C must be divisible by ``num_groups``.

        B0: y = x / max(sqrt(s2_{N,H,W}(x) + eps), v * x + sqrt(s2_{H,W}(x) + eps)) * weight + bias
        S0: y = x * sigmoid(v * x) / sqrt(s2_{group,H,W}(x) + eps) * weight + bias

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: the input's shape
    """

    def __init__(self, num_features: int, version: str = "B0", num_groups: int = 32, eps: float = 1e-5,
                 momentum: float = 0.1, dtype: np.dtype | type | str | None = None):
        super().__init__()
        owner = type(self).__name__
        self.num_features = _check_features(owner, num_features)
        if version not in ("B0", "S0"):
            raise ValueError(f"{owner}: version must be 'B0' or 'S0', got {version!r}")
        self.version, self.eps = version, check_eps(owner, eps)
        self.momentum = check_momentum(owner, momentum)
        self.num_groups = check_num_groups(owner, num_groups, self.num_features) if version == "S0" else num_groups
        dt = float_dtype(dtype)
        self.weight = Parameter(np.ones(self.num_features, dt))
        self.bias = Parameter(np.zeros(self.num_features, dt))
        self.v = Parameter(np.ones(self.num_features, dt))
        if version == "B0":
            self.register_buffer("running_var", Tensor(np.ones(self.num_features, dt)))

    def forward(self, x):
        _check_ndim(type(self).__name__, x, (4,))
        if self.version == "B0":
            return F.evonorm_b0(x, self.v, self.running_var, self.weight, self.bias, self.training, self.momentum,
                                self.eps)
        return F.evonorm_s0(x, self.v, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        groups = f", num_groups={self.num_groups}" if self.version == "S0" else ""
        return f"{self.num_features}, version={self.version!r}{groups}, eps={self.eps}, momentum={self.momentum}"
