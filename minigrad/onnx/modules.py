"""One converter per minigrad module: ``convert(g, m, x, xt, yt) -> name`` appends the ONNX nodes computing the
eval-mode ``m(xt)`` from the value named ``x`` (``xt`` the traced input, ``yt`` the traced output, for shapes)
and returns the name of the result.

Which ONNX ops: the native ones where ONNX has the layer (Conv, Gemm, pooling, BatchNormalization in inference
mode, LayerNormalization, InstanceNormalization; GroupNorm as Reshape -> InstanceNormalization -> Reshape -> Mul/Add;
nn.intrinsic's ConvReLU2d and LinearReLU as Conv or Gemm then Relu),
elementwise graphs for the rest (RMSNorm, FRN + TLU, EvoNorm, FrozenBatchNorm2d, SiLU, GELU). onnxruntime's CPU
provider has no float64 kernel for InstanceNormalization, GlobalAveragePool and Elu, so a float64 graph spells
those as elementwise ops too (it has none for Conv and AveragePool either, which have no such spelling: a float64
conv net is valid ONNX that onnxruntime cannot run).
"""
import math

import numpy as np

from minigrad import nn
from minigrad.nn.activation import _softmax_dim
from minigrad.nn.functional.checks import pair
from minigrad.nn.functional.conv import _pool_args
from minigrad.nn.norm import _BatchNorm, _InstanceNorm
from minigrad.nn.norm_family import _BatchRenorm

from .graph import ExportError


def _f32(g):
    return g.dtype == np.float32


def _data(t):
    return None if t is None else t.data


# ------------------------------------------------------------------ dense, conv, pooling, shape

def linear(g, m, x, xt, yt):
    w, b = m.weight.data, _data(m.bias)
    if xt.ndim == 2:
        ins = [x, g.const(w, "weight")] + ([] if b is None else [g.const(b, "bias")])
        return g.op("Gemm", ins, "linear", transB=1)
    y = g.op("MatMul", [x, g.const(np.ascontiguousarray(w.T), "weight_t")], "matmul")
    return y if b is None else g.op("Add", [y, g.const(b, "bias")], "linear")


def conv2d(g, m, x, xt, yt):
    (ph, pw) = m.padding
    ins = [x, g.const(m.weight.data, "weight")] + ([] if m.bias is None else [g.const(m.bias.data, "bias")])
    return g.op("Conv", ins, "conv", kernel_shape=list(m.kernel_size), strides=list(m.stride),
                pads=[ph, pw, ph, pw], dilations=list(m.dilation), group=m.groups)


def _then_relu(convert):
    """A fused layer + ReLU (nn.intrinsic) as the layer's nodes, then Relu."""
    return lambda g, m, x, xt, yt: g.op("Relu", [convert(g, m, x, xt, yt)], "relu")


def _pool(op, fn, m, g, x, xt, **attrs):
    k, s, (ph, pw), _ = _pool_args(fn, xt, m.kernel_size, m.stride, m.padding)
    return g.op(op, [x], op.lower(), kernel_shape=list(k), strides=list(s), pads=[ph, pw, ph, pw], **attrs)


def max_pool2d(g, m, x, xt, yt):
    return _pool("MaxPool", "max_pool2d", m, g, x, xt)


def avg_pool2d(g, m, x, xt, yt):
    return _pool("AveragePool", "avg_pool2d", m, g, x, xt, count_include_pad=int(bool(m.count_include_pad)))


def adaptive_avg_pool2d(g, m, x, xt, yt):
    oh, ow = pair("AdaptiveAvgPool2d", "output_size", m.output_size, 1)
    if (oh, ow) == (1, 1):
        return g.op("GlobalAveragePool", [x], "gap") if _f32(g) else g.reduce_mean(x, [2, 3], "gap")
    h, w = xt.shape[2:]  # NOTE: the forward refused sizes that do not divide, so these windows are exact
    k = [h // oh, w // ow]
    return g.op("AveragePool", [x], "averagepool", kernel_shape=k, strides=k)


def flatten(g, m, x, xt, yt):
    return g.reshape(x, xt.shape, yt.shape, "flatten")


def identity(g, m, x, xt, yt):  # Identity, and Dropout/Dropout2d in eval
    return x


# ------------------------------------------------------------------ activations

def _unary(op, **attrs):
    return lambda g, m, x, xt, yt: g.op(op, [x], op.lower(), **attrs)


def leaky_relu(g, m, x, xt, yt):
    return g.op("LeakyRelu", [x], "leakyrelu", alpha=float(m.negative_slope))


def elu(g, m, x, xt, yt):
    if _f32(g):
        return g.op("Elu", [x], "elu", alpha=float(m.alpha))
    neg = g.op("Mul", [g.op("Sub", [g.op("Exp", [x]), g.const(1.0, "one")]), g.const(m.alpha, "alpha")])
    return g.op("Where", [g.op("Greater", [x, g.const(0.0, "zero")]), x, neg], "elu")


def silu(g, m, x, xt, yt):
    return g.op("Mul", [x, g.op("Sigmoid", [x])], "silu")


def gelu(g, m, x, xt, yt):
    half_x = g.op("Mul", [x, g.const(0.5, "half")])
    if m.approximate == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = g.op("Mul", [g.op("Mul", [x, x]), x])
        inner = g.op("Add", [x, g.op("Mul", [cube, g.const(0.044715, "gelu_c")])])
        t = g.op("Tanh", [g.op("Mul", [inner, g.const(math.sqrt(2 / math.pi), "sqrt_2_over_pi")])])
    else:  # 0.5 x (1 + erf(x / sqrt 2))
        t = g.op("Erf", [g.op("Div", [x, g.const(math.sqrt(2.0), "sqrt2")])])
    return g.op("Mul", [half_x, g.op("Add", [t, g.const(1.0, "one")])], "gelu")


def _softmax(op):
    def convert(g, m, x, xt, yt):
        dim = _softmax_dim(type(m).__name__, m.dim, xt.ndim)
        return g.op(op, [x], op.lower(), axis=dim % max(xt.ndim, 1))
    return convert


# ------------------------------------------------------------------ normalizations

def batch_norm(g, m, x, xt, yt):
    """BatchNorm1d/2d/3d and BatchRenorm in eval: the running statistics (inference-mode BatchNormalization)."""
    if m.running_mean is None or m.running_var is None:
        raise ExportError(f"{type(m).__name__} without running statistics (track_running_stats=False) normalizes "
                          f"with the batch's statistics even in eval mode: not exportable as inference-mode "
                          f"BatchNormalization")
    c = m.num_features
    w = np.ones(c) if m.weight is None else m.weight.data
    b = np.zeros(c) if m.bias is None else m.bias.data
    ins = [x, g.const(w, "bn_scale"), g.const(b, "bn_bias"), g.const(m.running_mean.data, "bn_mean"),
           g.const(m.running_var.data, "bn_var")]
    return g.op("BatchNormalization", ins, "batchnorm", epsilon=float(m.eps))


def frozen_batch_norm(g, m, x, xt, yt):
    # the module's own arithmetic, in the input's dtype (see FrozenBatchNorm2d)
    w, b, rm, rv = (t.data for t in (m.weight, m.bias, m.running_mean, m.running_var))
    scale = w * (1 / np.sqrt(rv + rv.dtype.type(m.eps)))
    return g.affine(x, scale, b - rm * scale, xt.ndim, "frozen_bn")


def instance_norm(g, m, x, xt, yt):
    if xt.ndim != m._ndim:
        raise ExportError(f"{type(m).__name__}: unbatched {xt.ndim}-D input is not exportable (give it a batch dim)")
    if m.track_running_stats:  # eval with running statistics: batch norm's formula
        return batch_norm(g, m, x, xt, yt)
    c, eps = m.num_features, float(m.eps)
    if _f32(g):
        w = np.ones(c) if m.weight is None else m.weight.data
        b = np.zeros(c) if m.bias is None else m.bias.data
        return g.op("InstanceNormalization", [x, g.const(w, "in_scale"), g.const(b, "in_bias")], "instancenorm",
                    epsilon=eps)
    y = g.normalize(x, list(range(2, xt.ndim)), eps, True, "instancenorm")
    return g.affine(y, _data(m.weight), _data(m.bias), xt.ndim, "instancenorm")


def group_norm(g, m, x, xt, yt):
    groups, eps = m.num_groups, float(m.eps)
    grouped = g.op("Reshape", [x, g.ints([0, groups, -1])], "groups")
    if _f32(g):
        y = g.op("InstanceNormalization", [grouped, g.const(np.ones(groups), "gn_ones"),
                                           g.const(np.zeros(groups), "gn_zeros")], "groupnorm", epsilon=eps)
    else:
        y = g.normalize(grouped, [2], eps, True, "groupnorm")
    y = g.op("Reshape", [y, g.ints([0] + list(xt.shape[1:]))], "ungroup")
    return g.affine(y, _data(m.weight), _data(m.bias), xt.ndim, "groupnorm")


def layer_norm(g, m, x, xt, yt):
    k = len(m.normalized_shape)
    w = np.ones(m.normalized_shape) if m.weight is None else m.weight.data
    ins = [x, g.const(w, "ln_scale")] + ([] if m.bias is None else [g.const(m.bias.data, "ln_bias")])
    return g.op("LayerNormalization", ins, "layernorm", axis=-k, epsilon=float(m.eps))


def rms_norm(g, m, x, xt, yt):
    k = len(m.normalized_shape)
    eps = float(np.finfo(xt.dtype).eps) if m.eps is None else m.eps  # as F.rms_norm
    y = g.normalize(x, list(range(xt.ndim - k, xt.ndim)), eps, False, "rmsnorm")
    return g.affine(y, _data(m.weight), None, xt.ndim, "rmsnorm", channel_axis=False)


def filter_response_norm(g, m, x, xt, yt):
    eps = abs(float(m.eps.data[0])) if m.learnable_eps else m.eps
    y = g.normalize(x, list(range(2, xt.ndim)), eps, False, "frn")
    return g.affine(y, m.weight.data, m.bias.data, xt.ndim, "frn")


def tlu(g, m, x, xt, yt):
    return g.op("Max", [x, g.per_channel(m.tau.data, xt.ndim, "tau")], "tlu")


def evonorm(g, m, x, xt, yt):
    nd, eps, v = xt.ndim, m.eps, g.per_channel(m.v.data, xt.ndim, "evonorm_v")
    if m.version == "B0":  # x / max(sqrt(running_var + eps), v*x + sqrt(instance var + eps))
        batch_std = g.per_channel(np.sqrt(m.running_var.data.astype(np.float64) + eps), nd, "evonorm_batch_std")
        _, inst_std = g.std(x, list(range(2, nd)), eps, True, "evonorm_inst")
        den = g.op("Max", [batch_std, g.op("Add", [g.op("Mul", [v, x]), inst_std])], "evonorm_den")
        y = g.op("Div", [x, den], "evonorm")
    else:  # S0: x * sigmoid(v*x) / sqrt(group var + eps)
        groups = [0, m.num_groups, -1]
        _, std = g.std(g.op("Reshape", [x, g.ints(groups)]), [2], eps, True, "evonorm_group")
        gated = g.op("Mul", [x, g.op("Sigmoid", [g.op("Mul", [v, x])])], "evonorm_gated")
        y = g.op("Div", [g.op("Reshape", [gated, g.ints(groups)]), std])
        y = g.op("Reshape", [y, g.ints([0] + list(xt.shape[1:]))], "evonorm")
    return g.affine(y, m.weight.data, m.bias.data, nd, "evonorm")


# class -> converter; a subclass that overrides forward is not matched (its forward may differ)
CONVERTERS = {
    nn.Linear: linear, nn.Conv2d: conv2d,
    nn.intrinsic.LinearReLU: _then_relu(linear), nn.intrinsic.ConvReLU2d: _then_relu(conv2d),
    nn.MaxPool2d: max_pool2d, nn.AvgPool2d: avg_pool2d, nn.AdaptiveAvgPool2d: adaptive_avg_pool2d,
    nn.Flatten: flatten, nn.Identity: identity, nn.Dropout: identity, nn.Dropout2d: identity,
    nn.ReLU: _unary("Relu"), nn.Sigmoid: _unary("Sigmoid"), nn.Tanh: _unary("Tanh"), nn.LeakyReLU: leaky_relu,
    nn.ELU: elu, nn.SiLU: silu, nn.GELU: gelu, nn.Softmax: _softmax("Softmax"), nn.LogSoftmax: _softmax("LogSoftmax"),
    _BatchNorm: batch_norm, _BatchRenorm: batch_norm, nn.FrozenBatchNorm2d: frozen_batch_norm,
    _InstanceNorm: instance_norm, nn.GroupNorm: group_norm, nn.LayerNorm: layer_norm, nn.RMSNorm: rms_norm,
    nn.FilterResponseNorm2d: filter_response_norm, nn.TLU: tlu, nn.EvoNorm2d: evonorm,
}


def converter_for(module):
    """The converter of ``module``'s class (or of the base class whose forward it inherits), else None."""
    for cls in type(module).__mro__:
        if cls in CONVERTERS:
            return CONVERTERS[cls] if type(module).forward is cls.forward else None
    return None
