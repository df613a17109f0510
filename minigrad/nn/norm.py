"""Normalization modules with PyTorch's constructor arguments, buffers and train/eval behaviour.

They own the state (weight, bias, running statistics, ``num_batches_tracked``) and call the functionals in
``minigrad.nn.functional``, which call the kernels.

Momentum: ``running = (1 - momentum) * running + momentum * batch_stat``; ``momentum=None`` gives a cumulative
moving average, ``momentum = 1 / num_batches_tracked``. Running variance is updated with the unbiased estimate,
as in PyTorch; normalization itself uses the biased one.
"""
import numbers

import numpy as np

from minigrad.kernels.rules import check_eps, check_momentum, check_num_groups, float_dtype
from minigrad.nn import functional as F
from minigrad.nn.functional.checks import check_virtual_batch_size
from minigrad.nn.functional.norm import _CumulativeAverage
from minigrad.nn.module import Module, Parameter, TableNames
from minigrad.tensor import Tensor, _host


class _NormBase(Module):
    # NOTE: PyTorch 0.4.1 added num_batches_tracked (its version 2): an older state dict, or one without PyTorch's
    # metadata (many published checkpoints), loads without it and the module keeps its count, as in PyTorch
    _added_state = (2, ("num_batches_tracked",))

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, dtype: np.dtype | type | str | None = None):
        super().__init__()
        if isinstance(num_features, bool) or not isinstance(num_features, numbers.Integral) or num_features < 1:
            raise ValueError(f"{type(self).__name__}: num_features must be a positive integer, got {num_features!r}")
        if momentum is not None:  # NOTE: None means a cumulative moving average (see the module docstring)
            check_momentum(type(self).__name__, momentum)
        check_eps(type(self).__name__, eps)
        dt = float_dtype(dtype)
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), momentum
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        if self.affine:
            self.weight = Parameter(np.ones(num_features, dt))
            self.bias = Parameter(np.zeros(num_features, dt))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(num_features, dt)))
            self.register_buffer("running_var", Tensor(np.ones(num_features, dt)))
            self.register_buffer("num_batches_tracked", Tensor(np.zeros((), np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self):
        """Running mean 0, running variance 1 and ``num_batches_tracked`` 0 (when they are tracked)."""
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def _check_input_dim(self, x):
        pass

    def _average_factor(self, count=None):
        """The momentum for this step; counts the batch when running statistics are tracked in training. With
        ``momentum=None`` a ``_CumulativeAverage``: 1/num_batches_tracked read when the update runs (after this
        count), so that ``minigrad.compile`` replays each step's factor. ``count``: ``num_batches_tracked`` where
        the caller has read it already."""
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            _host(_count_batch, (self.num_batches_tracked if count is None else count).data)
            if self.momentum is None:
                factor = _CumulativeAverage(self)
        return factor

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


def _count_batch(count):
    # NOTE: in place (a 0-d buffer), through _host so that minigrad.compile replays it; through its scalar, since
    # ``count += 1`` on the 0-d array is a ufunc call (1.5 us against 0.2)
    count[()] += 1


class _BatchNorm(_NormBase):
    """``virtual_batch_size``: ghost batch norm in training (see ``minigrad.nn.functional.batch_norm``)."""
    _ndims = ()
    # freeze_batch_norm (minigrad.nn.utils): running statistics used and kept, whatever ``training`` says
    frozen = False

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, dtype: np.dtype | type | str | None = None,
                 virtual_batch_size: int | None = None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype)
        self.virtual_batch_size = check_virtual_batch_size(type(self).__name__, virtual_batch_size)

    def extra_repr(self):
        ghost = "" if self.virtual_batch_size is None else f", virtual_batch_size={self.virtual_batch_size}"
        return super().extra_repr() + ghost

    def forward(self, x):
        return self._forward(x, F.batch_norm, virtual_batch_size=self.virtual_batch_size)

    def forward_relu(self, x):
        """``relu(self(x))`` in one node (F.batch_norm_relu): nn.Sequential calls it for a BatchNorm then a ReLU."""
        # NOTE: ghost batches have no fused path, and a subclass with a forward of its own (SyncBatchNorm, a user's
        # override) must run it: the pair, unfused
        if self.virtual_batch_size is not None or type(self).forward is not _BatchNorm.forward:
            return F.relu(self(x))
        return self._forward(x, F.batch_norm_relu)

    def forward_activation(self, x, act):
        """``act(self(x))`` in one node for ``act`` an nn.Sigmoid or nn.Tanh (F.batch_norm_sigmoid,
        F.batch_norm_tanh: the pair's bits): nn.Sequential calls it for a BatchNorm then such a module."""
        fn = _THEN.get(type(act).__dict__.get("plain_activation"))
        # NOTE: the cases forward_relu leaves unfused, for the same reasons, and an activation of another class
        if fn is None or self.virtual_batch_size is not None or type(self).forward is not _BatchNorm.forward:
            return act(self(x))
        return self._forward(x, fn)

    def _forward(self, x, fn, **kwargs):
        """The module's state passed to ``fn`` (F.batch_norm, or a fused one: F.batch_norm_relu, ...)."""
        if not isinstance(x, Tensor):
            raise TypeError(f"{type(self).__name__}: input must be a minigrad.Tensor, got {type(x).__name__}")
        if x.data.ndim not in self._ndims:  # NOTE: the array's (Tensor.ndim is a property's frame)
            raise ValueError(f"{type(self).__name__}: expected {' or '.join(f'{d}D' for d in self._ndims)} input, "
                             f"got shape {x.shape}")
        state = self._table_state(_PLAIN_BATCH_NORMS, _BATCH_NORM_STATE)
        if state is None:  # NOTE: a subclass (parametrize's properties, a user's): the attributes, as they read
            state = [self.weight, self.bias, self.running_mean, self.running_var, None]
        weight, bias, running_mean, running_var, count = state
        if self.frozen:
            return fn(x, running_mean, running_var, weight, bias, False, 0.0, self.eps)
        factor = self._average_factor(count)
        # NOTE: without running statistics, batch statistics are used in eval mode too (PyTorch's rule)
        use_batch_stats = self.training or (running_mean is None and running_var is None)
        track = not self.training or self.track_running_stats
        return fn(x, running_mean if track else None, running_var if track else None,
                  weight, bias, use_batch_stats, factor, self.eps, **kwargs)


class BatchNorm1d(_BatchNorm):
    """Batch normalization over 2-d or 3-d input (Ioffe & Szegedy, 2015):

        y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias

    The mean and the biased variance are taken per channel over the batch (and L).
    In training the running statistics are updated with
    ``running = (1 - momentum) * running + momentum * batch_stat`` (the unbiased variance); in eval mode they
    replace the batch statistics.

    Args:
        num_features: ``C``, the number of channels.
        eps: added to the variance for numerical stability (default 1e-5).
        momentum: the weight of the batch statistic in the running one (default 0.1); None gives a cumulative
            moving average.
        affine: learn a per-channel ``weight`` (ones) and ``bias`` (zeros) (default True).
        track_running_stats: keep ``running_mean``, ``running_var`` and ``num_batches_tracked`` buffers and use them
            in eval mode (default True); without them, batch statistics are used in eval mode too.
        dtype: float32 (default) or float64 parameters and buffers.
        virtual_batch_size: ghost batch norm in training (default None; see ``F.batch_norm``).

    Shape:
        - Input: ``(N, C)`` or ``(N, C, L)``
        - Output: the input's shape
    """
    _ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalization over 4-d input (Ioffe & Szegedy, 2015):

        y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias

    The mean and the biased variance are taken per channel over the batch and the spatial dims H and W.
    In training the running statistics are updated with
    ``running = (1 - momentum) * running + momentum * batch_stat`` (the unbiased variance); in eval mode they
    replace the batch statistics.

    Args:
        num_features: ``C``, the number of channels.
        eps: added to the variance for numerical stability (default 1e-5).
        momentum: the weight of the batch statistic in the running one (default 0.1); None gives a cumulative
            moving average.
        affine: learn a per-channel ``weight`` (ones) and ``bias`` (zeros) (default True).
        track_running_stats: keep ``running_mean``, ``running_var`` and ``num_batches_tracked`` buffers and use them
            in eval mode (default True); without them, batch statistics are used in eval mode too.
        dtype: float32 (default) or float64 parameters and buffers.
        virtual_batch_size: ghost batch norm in training (default None; see ``F.batch_norm``).

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: the input's shape

    Examples::

        >>> m = nn.BatchNorm2d(16)
        >>> m(minigrad.randn(8, 16, 5, 5)).shape
        (8, 16, 5, 5)
        >>> m.eval()(minigrad.randn(1, 16, 5, 5)).shape  # eval: the running statistics
        (1, 16, 5, 5)
    """
    _ndims = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch normalization over 5-d input (Ioffe & Szegedy, 2015):

        y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias

    The mean and the biased variance are taken per channel over the batch and the spatial dims D, H and W.
    In training the running statistics are updated with
    ``running = (1 - momentum) * running + momentum * batch_stat`` (the unbiased variance); in eval mode they
    replace the batch statistics.

    Args:
        num_features: ``C``, the number of channels.
        eps: added to the variance for numerical stability (default 1e-5).
        momentum: the weight of the batch statistic in the running one (default 0.1); None gives a cumulative
            moving average.
        affine: learn a per-channel ``weight`` (ones) and ``bias`` (zeros) (default True).
        track_running_stats: keep ``running_mean``, ``running_var`` and ``num_batches_tracked`` buffers and use them
            in eval mode (default True); without them, batch statistics are used in eval mode too.
        dtype: float32 (default) or float64 parameters and buffers.
        virtual_batch_size: ghost batch norm in training (default None; see ``F.batch_norm``).

    Shape:
        - Input: ``(N, C, D, H, W)``
        - Output: the input's shape
    """
    _ndims = (5,)


# NOTE: read from the module's tables in one call (Module._table_state) by these classes exactly; a subclass reads
# the attributes
_PLAIN_BATCH_NORMS = frozenset((BatchNorm1d, BatchNorm2d, BatchNorm3d))
_BATCH_NORM_STATE = TableNames(("weight", "bias"), ("running_mean", "running_var", "num_batches_tracked"))
# the activations forward_activation fuses, by their class's ``plain_activation`` (nn.Sigmoid's, nn.Tanh's)
_THEN = {"sigmoid": F.batch_norm_sigmoid, "tanh": F.batch_norm_tanh}


class _InstanceNorm(_NormBase):
    _ndim = 0

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = False,
                 track_running_stats: bool = False, dtype: np.dtype | type | str | None = None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype)

    def forward(self, x):
        if not isinstance(x, Tensor):
            raise TypeError(f"{type(self).__name__}: input must be a minigrad.Tensor, got {type(x).__name__}")
        unbatched = x.ndim == self._ndim - 1
        if x.ndim != self._ndim and not unbatched:
            raise ValueError(f"{type(self).__name__}: expected {self._ndim}D (or unbatched {self._ndim - 1}D) "
                             f"input, got shape {x.shape}")
        if unbatched:
            x = x.unsqueeze(0)
        factor = self._average_factor()
        y = F.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            self.training or not self.track_running_stats, factor, self.eps)
        return y.squeeze(0) if unbatched else y


class InstanceNorm1d(_InstanceNorm):
    """Instance normalization over 3-d input (Ulyanov et al., 2016):

        y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias

    with the mean and the biased variance per sample and channel, over the spatial dims.

    Args:
        num_features: ``C``, the number of channels.
        eps: added to the variance (default 1e-5).
        momentum: the running statistics' update weight (default 0.1), when they are tracked.
        affine: learn a per-channel ``weight`` and ``bias`` (default False, as PyTorch).
        track_running_stats: keep running statistics and use them in eval mode (default False).
        dtype: float32 (default) or float64 parameters and buffers.

    Shape:
        - Input: ``(N, C, L)``
        - Output: the input's shape
    """
    _ndim = 3


class InstanceNorm2d(_InstanceNorm):
    """Instance normalization over 4-d input (Ulyanov et al., 2016):

        y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias

    with the mean and the biased variance per sample and channel, over the spatial dims.

    Args:
        num_features: ``C``, the number of channels.
        eps: added to the variance (default 1e-5).
        momentum: the running statistics' update weight (default 0.1), when they are tracked.
        affine: learn a per-channel ``weight`` and ``bias`` (default False, as PyTorch).
        track_running_stats: keep running statistics and use them in eval mode (default False).
        dtype: float32 (default) or float64 parameters and buffers.

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: the input's shape
    """
    _ndim = 4


class InstanceNorm3d(_InstanceNorm):
    """Instance normalization over 5-d input (Ulyanov et al., 2016):

        y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias

    with the mean and the biased variance per sample and channel, over the spatial dims.

    Args:
        num_features: ``C``, the number of channels.
        eps: added to the variance (default 1e-5).
        momentum: the running statistics' update weight (default 0.1), when they are tracked.
        affine: learn a per-channel ``weight`` and ``bias`` (default False, as PyTorch).
        track_running_stats: keep running statistics and use them in eval mode (default False).
        dtype: float32 (default) or float64 parameters and buffers.

    Shape:
        - Input: ``(N, C, D, H, W)``
        - Output: the input's shape
    """
    _ndim = 5


def _shape_tuple(normalized_shape):
    """``normalized_shape`` (an int or a sequence of ints) as a tuple of ints."""
    if isinstance(normalized_shape, numbers.Integral):
        return (int(normalized_shape),)
    return tuple(int(s) for s in normalized_shape)


class LayerNorm(Module):
    """Layer normalization (Ba et al., 2016) over the trailing ``normalized_shape`` dims:

        y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias

    with the mean and the biased variance per sample (per index of the leading dims), over ``normalized_shape``.

    Args:
        normalized_shape: the trailing dims to normalize over, an int or a tuple.
        eps: added to the variance (default 1e-5).
        elementwise_affine: learn ``weight`` (ones) of shape ``normalized_shape`` (default True).
        bias: with ``elementwise_affine``, also learn ``bias`` (zeros) (default True).
        dtype: float32 (default) or float64 parameters.

    Shape:
        - Input: ``(*, *normalized_shape)``
        - Output: the input's shape
    """

    def __init__(self, normalized_shape: int | tuple[int, ...] | list[int], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True, dtype: np.dtype | type | str | None = None):
        super().__init__()
        self.normalized_shape = _shape_tuple(normalized_shape)
        self.eps, self.elementwise_affine = float(eps), bool(elementwise_affine)
        dt = float_dtype(dtype)
        if self.elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dt))
            if bias:
                self.bias = Parameter(np.zeros(self.normalized_shape, dt))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class RMSNorm(Module):
    """RMS normalization (Zhang & Sennrich, 2019) over the trailing ``normalized_shape`` dims, as
    ``torch.nn.RMSNorm``:

        y = x / sqrt(mean(x^2) + eps) * weight

    with the mean over ``normalized_shape``; no mean subtracted and no bias.

    Args:
        normalized_shape: the trailing dims to normalize over, an int or a tuple.
        eps: added to the mean square (default None: the input dtype's machine epsilon).
        elementwise_affine: learn ``weight`` (ones) of shape ``normalized_shape`` (default True).
        dtype: float32 (default) or float64 parameters.

    Shape:
        - Input: ``(*, *normalized_shape)``
        - Output: the input's shape
    """

    def __init__(self, normalized_shape: int | tuple[int, ...] | list[int], eps: float | None = None,
                 elementwise_affine: bool = True, dtype: np.dtype | type | str | None = None):
        super().__init__()
        self.normalized_shape = _shape_tuple(normalized_shape)
        self.eps = None if eps is None else float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        if self.elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, float_dtype(dtype)))
        else:
            self.register_parameter("weight", None)

    def forward(self, x):
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class GroupNorm(Module):
    """Group normalization (Wu & He, 2018): the channels split into ``num_groups`` groups,

        y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias

    with the mean and the biased variance per sample and group (over its channels and the spatial dims), and the
    affine per channel.

    Args:
        num_groups: the number of groups; must divide ``num_channels``.
        num_channels: ``C``, the number of channels.
        eps: added to the variance (default 1e-5).
        affine: learn a per-channel ``weight`` (ones) and ``bias`` (zeros) (default True).
        dtype: float32 (default) or float64 parameters.

    Shape:
        - Input: ``(N, C, *)``
        - Output: the input's shape
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 dtype: np.dtype | type | str | None = None):
        super().__init__()
        num_groups = check_num_groups("GroupNorm", num_groups, num_channels)
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, float(eps), affine
        dt = float_dtype(dtype)
        if affine:
            self.weight = Parameter(np.ones(num_channels, dt))
            self.bias = Parameter(np.zeros(num_channels, dt))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x):
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"
