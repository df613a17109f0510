"""Fused modules, as ``torch.ao.nn.intrinsic``: a layer and the ReLU after it, run in one pass at inference.

``ConvReLU2d`` is ``relu(conv2d(x))`` and ``LinearReLU`` is ``relu(linear(x))``; ``minigrad.nn.utils.fusion.fuse_model``
makes them from a Conv2d or Linear (its batch norm folded in first) followed by a ReLU. Where no gradient is
needed (``no_grad``, or no input requiring grad) the ReLU is the epilogue of the layer's forward
(``F.conv2d_relu``, ``F.linear_relu``); with a gradient they run the two unfused ops, so the gradients are the pair's.

NOTE: unlike PyTorch's, which are containers of the two modules (state_dict keys ``0.weight``), these are the
layer itself with another forward: the same attributes, repr arguments and state_dict keys (``weight``, ``bias``)
as the Conv2d or Linear they replace, so a fused model's state_dict reads like the model's with its BNs folded.
"""
import copy

from minigrad.nn import functional as F
from minigrad.nn.activation import ReLU
from minigrad.nn.conv import Conv2d
from minigrad.nn.linear import Linear
from minigrad.nn.module import Module
from minigrad.tensor import Tensor

__all__ = ["ConvReLU2d", "LinearReLU"]


def _adopt(fused, layer, cls):
    """Make ``fused`` a copy of ``layer`` (an exact ``cls``) sharing its parameters: its attributes, parameter
    table and training flag."""
    if type(layer) is not cls:
        raise TypeError(f"{type(fused).__name__}: the layer must be a minigrad.nn.{cls.__name__}, got "
                        f"{type(layer).__name__}")
    Module.__init__(fused)
    for k, v in vars(layer).items():
        if k not in ("_parameters", "_buffers", "_modules"):
            object.__setattr__(fused, k, copy.copy(v))
    for k, p in layer._parameters.items():
        fused.register_parameter(k, p)


class ConvReLU2d(Conv2d):
    """``relu(conv2d(x))`` for a given ``Conv2d`` (its parameters are shared, not copied), in one pass where no
    gradient is needed: the bias and the ReLU are applied to each chunk of the output as the GEMM writes it.

    Args:
        conv: a ``minigrad.nn.Conv2d``.
        relu: the ``nn.ReLU`` it absorbs (optional; PyTorch's signature; only its class is checked).

    Shape:
        - those of ``Conv2d``: input ``(N, in_channels, H, W)``, output ``(N, out_channels, OH, OW)``.
    """

    def __init__(self, conv: Conv2d, relu: Module | None = None):
        _check_relu(type(self).__name__, relu)
        _adopt(self, conv, Conv2d)

    def forward(self, x: Tensor) -> Tensor:
        """``max(0, conv2d(x, weight) + bias)``."""
        return F.conv2d_relu(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class LinearReLU(Linear):
    """``relu(linear(x))`` for a given ``Linear`` (its parameters are shared, not copied), the ReLU applied in place
    on the GEMM's output where no gradient is needed.

    Args:
        linear: a ``minigrad.nn.Linear``.
        relu: the ``nn.ReLU`` it absorbs (optional; PyTorch's signature; only its class is checked).

    Shape:
        - those of ``Linear``: input ``(*, in_features)``, output ``(*, out_features)``.
    """

    def __init__(self, linear: Linear, relu: Module | None = None):
        _check_relu(type(self).__name__, relu)
        _adopt(self, linear, Linear)

    def forward(self, x: Tensor) -> Tensor:
        """``max(0, x @ weight^T + bias)``."""
        return F.linear_relu(x, self.weight, self.bias)


def _check_relu(name, relu):
    if relu is not None and type(relu) is not ReLU:
        raise TypeError(f"{name}: relu must be a minigrad.nn.ReLU (or None), got {type(relu).__name__}")
