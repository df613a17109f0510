"""FrozenBatchNorm2d as in torchvision (torchvision.ops.misc.FrozenBatchNorm2d): batch norm with fixed statistics
and affine parameters, all four buffers, none trained."""
import numbers

import numpy as np

from minigrad.kernels.rules import check_eps, float_dtype
from minigrad.nn.module import Module
from minigrad.tensor import Tensor


class FrozenBatchNorm2d(Module):
    """``y = x * scale + shift`` per channel, ``scale = weight * rsqrt(running_var + eps)``, ``shift = bias -
    running_mean * scale``, computed as torchvision does (two elementwise ops in the input's dtype). Buffers
    ``weight``, ``bias``, ``running_mean``, ``running_var`` (C,); no ``num_batches_tracked`` (drop it from a
    BatchNorm2d's state dict before loading).

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: the input's shape"""

    def __init__(self, num_features: int, eps: float = 1e-5, dtype: np.dtype | type | str | None = None):
        super().__init__()
        if isinstance(num_features, bool) or not isinstance(num_features, numbers.Integral) or num_features < 1:
            raise ValueError(f"FrozenBatchNorm2d: num_features must be a positive integer, got {num_features!r}")
        dt = float_dtype(dtype)
        self.num_features, self.eps = int(num_features), check_eps("FrozenBatchNorm2d", eps)
        self.register_buffer("weight", Tensor(np.ones(num_features, dt)))
        self.register_buffer("bias", Tensor(np.zeros(num_features, dt)))
        self.register_buffer("running_mean", Tensor(np.zeros(num_features, dt)))
        self.register_buffer("running_var", Tensor(np.ones(num_features, dt)))

    def forward(self, x):
        if not isinstance(x, Tensor) or x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"FrozenBatchNorm2d: expected a minigrad.Tensor of shape (N, {self.num_features}, H, W), "
                             f"got {getattr(x, 'shape', type(x).__name__)}")
        w, b, rm, rv = (t.data for t in (self.weight, self.bias, self.running_mean, self.running_var))
        scale = w * (1 / np.sqrt(rv + rv.dtype.type(self.eps)))
        shift = b - rm * scale
        return x * Tensor(scale.reshape(1, -1, 1, 1)) + Tensor(shift.reshape(1, -1, 1, 1))

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}"
