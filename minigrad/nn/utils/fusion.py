"""Folding an eval-mode batch norm into the Conv2d or Linear before it, as ``torch.nn.utils.fusion``.

In eval mode a batch norm is the affine map ``y = (z - running_mean) * scale + bias`` with
``scale = weight / sqrt(running_var + eps)``, per output channel of the layer ``z = W x + b`` before it, so

    W' = W * scale     (each output channel's slice of W)
    b' = (b - running_mean) * scale + bias     (b = 0 for a layer without bias)

and the pair costs one layer at inference. A grouped convolution needs nothing more: its weight is
``(out_channels, in_channels // groups, kh, kw)`` and the scale is per output channel all the same.
The fused parameters are computed in float64 and stored in the layer's dtype.

``fuse_model`` then merges a ReLU that follows such a layer (after its folded BN, or directly) into it:
``nn.intrinsic.ConvReLU2d`` / ``LinearReLU``, which apply the ReLU to the layer's output as it is written (one pass
over the output instead of two). A BatchNorm left unfolded and followed by a ReLU is run as one op by
``nn.Sequential`` itself (``F.batch_norm_relu``).
"""
import copy

import numpy as np

from minigrad.nn.activation import ReLU
from minigrad.nn.conv import Conv2d
from minigrad.nn.intrinsic import ConvReLU2d, LinearReLU
from minigrad.nn.linear import Identity, Linear
from minigrad.nn.module import Module, Parameter, Sequential
from minigrad.nn.norm import _BatchNorm

# Modules outside minigrad.nn whose forward applies ``bn(conv(.))`` to the named attribute pairs, and
# ``relu(bn(conv(.)))`` where a third name is given (the ReLU module's); matched by exact class (a subclass may have
# its own forward) and by name, so that nn does not import the model zoo.
KNOWN_BLOCKS = {
    "minigrad.app.models.BasicBlock": (("conv1", "bn1", "relu1"), ("conv2", "bn2", None)),
}
# layer class -> its fused layer + ReLU
WITH_RELU = {Conv2d: ConvReLU2d, Linear: LinearReLU}


def _check_pair(fn, layer, layer_cls, bn, channels):
    if not isinstance(layer, layer_cls) or type(layer).forward is not layer_cls.forward:
        raise TypeError(f"{fn}: {layer_cls.__name__.lower()} must be a minigrad.nn.{layer_cls.__name__} (with its "
                        f"forward), got {type(layer).__name__}")
    if not isinstance(bn, _BatchNorm):
        raise TypeError(f"{fn}: bn must be a minigrad.nn BatchNorm1d/2d/3d, got {type(bn).__name__}")
    if layer.training or bn.training:
        raise ValueError(f"{fn}: fusion only for eval: call .eval() on both modules first "
                         f"({type(layer).__name__}.training={layer.training}, bn.training={bn.training})")
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError(f"{fn}: bn has no running statistics (track_running_stats=False): it normalizes with "
                         f"batch statistics even in eval mode, which no fixed affine map can fold")
    if bn.num_features != channels and bn.num_features != 1:
        raise ValueError(f"{fn}: bn.num_features ({bn.num_features}) must equal the layer's output channels "
                         f"({channels}) or be 1")


def _fused(layer, bn, channels):
    """``(W', b')`` for ``layer`` then ``bn`` (see the module docstring), in the layer's dtypes."""
    f8 = np.float64
    w = layer.weight.data
    b = np.zeros(channels, f8) if layer.bias is None else layer.bias.data.astype(f8)
    rm, rv = bn.running_mean.data.astype(f8), bn.running_var.data.astype(f8)
    gamma = np.ones_like(rm) if bn.weight is None else bn.weight.data.astype(f8)
    beta = np.zeros_like(rm) if bn.bias is None else bn.bias.data.astype(f8)
    scale = gamma / np.sqrt(rv + bn.eps)
    scale = np.broadcast_to(scale, (channels,))  # a num_features=1 BN scales every channel alike
    fused_w = w.astype(f8) * scale.reshape((-1,) + (1,) * (w.ndim - 1))
    fused_b = (b - rm) * scale + beta
    bias_dtype = w.dtype if layer.bias is None else layer.bias.data.dtype
    return fused_w.astype(w.dtype), np.broadcast_to(fused_b, (channels,)).astype(bias_dtype)


def _with_params(layer, w, b):
    """A deep copy of ``layer`` with weight ``w`` and a bias ``b`` (created if the layer had none)."""
    out = copy.deepcopy(layer)
    out.weight = Parameter(w, requires_grad=layer.weight.requires_grad)
    out.bias = Parameter(b, requires_grad=layer.weight.requires_grad if layer.bias is None
                         else layer.bias.requires_grad)
    return out


def fuse_conv_bn_eval(conv, bn):
    """A new Conv2d equal to ``bn(conv(x))`` in eval mode: ``weight * scale`` per output channel and the bias
    ``(b - running_mean) * scale + bn.bias``, ``scale = bn.weight / sqrt(running_var + eps)`` (a conv without
    bias gets one). ``conv`` and ``bn`` are left untouched; both must be in eval mode, as PyTorch requires."""
    _check_pair("fuse_conv_bn_eval", conv, Conv2d, bn, getattr(conv, "out_channels", 0))
    return _with_params(conv, *_fused(conv, bn, conv.out_channels))


def fuse_linear_bn_eval(linear, bn):
    """A new Linear equal to ``bn(linear(x))`` in eval mode for input ``(N, in_features)`` (the BatchNorm1d
    normalizing the Linear's output features); the same formulas as ``fuse_conv_bn_eval``. ``linear`` and ``bn``
    are left untouched; both must be in eval mode."""
    _check_pair("fuse_linear_bn_eval", linear, Linear, bn, getattr(linear, "out_features", 0))
    return _with_params(linear, *_fused(linear, bn, linear.out_features))


def _fuse_one(layer, bn):
    """The fused layer, or None where ``layer`` then ``bn`` is no foldable pair."""
    if not isinstance(bn, _BatchNorm) or bn.running_mean is None or bn.running_var is None:
        return None
    if type(layer) is Conv2d and bn.num_features in (layer.out_channels, 1):
        return fuse_conv_bn_eval(layer, bn)
    if type(layer) is Linear and bn.num_features in (layer.out_features, 1):
        return fuse_linear_bn_eval(layer, bn)
    return None


def _with_relu(layer, relu):
    """``layer`` and the ReLU after it as one module, or None where they are no such pair. ReLU(inplace=True)
    too: minigrad's ReLU never writes its input."""
    if type(relu) is ReLU and type(layer) in WITH_RELU:
        return WITH_RELU[type(layer)](layer, relu)
    return None


def _replace(module, name, new):
    # NOTE: not setattr, which re-registers the name last and would reorder a Sequential
    new.training = False
    module._modules[name] = new


def _fuse_in_place(module, relu):
    for child in list(module.children()):
        _fuse_in_place(child, relu)
    if isinstance(module, Sequential) and type(module).forward is Sequential.forward:
        names = list(module._modules)
        for a, b in zip(names, names[1:]):
            fused = _fuse_one(module._modules[a], module._modules[b])
            if fused is not None:
                _replace(module, a, fused)
                _replace(module, b, Identity())
        if relu:  # then a layer and the next module that is not an Identity (a folded BN's), if a ReLU
            kept = [n for n in names if type(module._modules[n]) is not Identity]
            for a, b in zip(kept, kept[1:]):
                fused = _with_relu(module._modules[a], module._modules[b])
                if fused is not None:
                    _replace(module, a, fused)
                    _replace(module, b, Identity())
    for a, b, r in KNOWN_BLOCKS.get(f"{type(module).__module__}.{type(module).__qualname__}", ()):
        fused = _fuse_one(getattr(module, a), getattr(module, b))
        if fused is not None:
            _replace(module, a, fused)
            _replace(module, b, Identity())
        # NOTE: only once the BN is folded (an Identity): the block's forward runs relu(bn(conv(x)))
        folded = type(getattr(module, b)) is Identity
        fused = _with_relu(getattr(module, a), getattr(module, r)) if relu and r and folded else None
        if fused is not None:
            _replace(module, a, fused)
            _replace(module, r, Identity())


def fuse_model(model, relu=True):
    """An eval-mode deep copy of ``model`` in which every BatchNorm1d/2d/3d that directly follows a Conv2d or a
    Linear is folded into it and replaced by ``nn.Identity``: in an ``nn.Sequential`` (adjacent modules) and in
    the model zoo's residual blocks (``KNOWN_BLOCKS``). ``model`` is left untouched.

    ``relu``: then also merge each ``nn.ReLU`` (``inplace`` or not) that follows such a Conv2d or Linear, after its
    folded BN or directly, into ``nn.intrinsic.ConvReLU2d`` / ``LinearReLU`` (one pass: the ReLU as the layer's
    epilogue), the ReLU replaced by ``nn.Identity``; in a residual block only where the ReLU is a module of the
    block that follows the BN (the zoo's ``relu1``; the ReLU after the residual add stays).

    Not folded (left as they are, so the copy stays exact): a BatchNorm without running statistics, one whose
    size does not match the layer's outputs, and pairs inside modules with a forward of their own. A BatchNorm1d
    after a Linear is folded over the Linear's output features, which is what it normalizes for 2-D input
    ``(N, features)``; with 3-D input ``(N, C, L)`` it would normalize dim 1 instead, so do not fuse such models.
    """
    if not isinstance(model, Module):
        raise TypeError(f"fuse_model: model must be a minigrad.nn.Module, got {type(model).__name__}")
    out = copy.deepcopy(model).eval()
    _fuse_in_place(out, bool(relu))
    return out
