"""Fused functionals: batch norm followed by ReLU as one autograd node over the fused-ReLU channel phases; batch
norm followed by a sigmoid or tanh as one node over the pair's own kernel calls (batch_norm_sigmoid,
batch_norm_tanh); a convolution or a linear layer followed by ReLU in one pass at inference (conv2d_relu,
linear_relu); a residual add followed by ReLU as one node (add_relu, at the end).

``batch_norm_relu(...) == relu(batch_norm(...))``. The ReLU adds no pass over the data and saves nothing: the
forward applies ``max(0, (x - shift)*scale + offset)`` in the apply pass, and the backward recomputes the mask
``z > 0`` from the saved input and the forward's coefficients inside its two passes (the sums, then the apply),
instead of saving the mask (the unfused ReLU saves one) and running an elementwise pass of its own each way.

  training  forward: channel_stats -> coefficients.forward -> channel_apply_relu              (2 passes, as BN)
            backward: channel_backward_sums_relu -> coefficients.backward -> channel_backward_apply_relu
  eval      forward: channel_apply_relu with the running statistics' coefficients           (1 pass)
            backward: dx = scale*dy*[z > 0] in channel_backward_apply_relu (a = scale, m = b = k = 0); the
            weight/bias gradients through channel_backward_sums_relu

Against the unfused pair (``F.batch_norm`` then ``F.relu``): in eval, the output and dx are the same bits on the
Cython and Numba backends (same coefficients, same loops); the training pass composes the phases rather than the
fused batch-norm kernels, and the weight/bias gradients sum in another order, so those agree within rounding (a few
ulp of X), not bit for bit (tests/test_fused.py).
"""
import numpy as np

from minigrad import kernels
from minigrad.kernels import coefficients
from minigrad.kernels.rules import check_batch_eps
from minigrad.tensor import (Function, Tensor, _sigmoid_dx, _sigmoid_y, _sum_grads, _tanh_dx, _tanh_y,
                             is_grad_enabled, relu)

from .conv import _Conv2d, _conv2d_args, conv2d
from .dense import _Linear, _linear_args, linear
from .norm import (_BatchNormTrain, _ChannelAffine, _affine_t, _as_ncs_array, _affine, _batch_norm,
                   _check_channel_args, _check_input, _empty_like, _grads_for, _normalize_t, _params,
                   _update_running_from, batch_norm, _check_average)


class _BatchNormReLU(Function):
    """relu(batch_norm(x)) on (N, C, S): batch statistics (training) or the running ones (``running``)."""

    def forward(self, x, *params, has_weight, has_bias, eps, running=None):
        self.has_weight, self.has_bias = has_weight, has_bias
        shape, x3 = x.shape, _as_ncs_array(x)
        n, c, s = x3.shape
        w, b = _affine(params[0] if has_weight else None, params[-1] if has_bias else None, c, x.dtype)
        k = kernels.kernels()
        if running is None:
            mean, m2 = np.empty(c), np.empty(c)
            k.channel_stats(mean, m2, x3, True)
            rstd = coefficients.rstd(m2, n * s, eps)
            (shift, scale, offset), self.parts = coefficients.forward(mean, rstd, x.dtype, w, b, parts=True)
        else:
            # NOTE: batch_norm_inference's coefficients, rounded the same way: scale = X(w/sqrt(rv + eps))
            rm, rv = running
            mean, rstd = rm.astype(np.float64), 1.0 / np.sqrt(rv.astype(np.float64) + eps)
            shift, scale, offset = (np.ascontiguousarray(rm),
                                    (w.astype(np.float64) / np.sqrt(rv.astype(np.float64) + eps)).astype(x.dtype), b)
        y = np.empty_like(x3)
        k.channel_apply_relu(y, x3, shift, scale, offset)
        self.x3, self.w, self.shape, self.mean, self.rstd = x3, w, shape, mean, rstd
        self.coef, self.training, self.eps = (shift, scale, offset), running is None, eps
        return y.reshape(shape)

    def compose(self, x, *params):  # NOTE: the double backward (create_graph=True): the forward as Tensor ops
        x3 = x.reshape(self.x3.shape)
        if self.training:
            xhat = _normalize_t(x3, (0, 2), self.eps, True)
        else:
            dt = self.x3.dtype
            xhat = (x3 - Tensor(self.mean.astype(dt)[None, :, None])) * Tensor(self.rstd.astype(dt)[None, :, None])
        return _affine_t(self, xhat, params).relu().reshape(self.shape)

    def backward(self, g):
        x3, (shift, scale, offset) = self.x3, self.coef
        (n, c, s), dtype = x3.shape, x3.dtype
        dy = np.ascontiguousarray(g, dtype=dtype).reshape(x3.shape)
        k = kernels.kernels()
        sdy = sdyx = None
        if self.training or self.has_weight or self.has_bias:
            sdy, sdyx = np.empty(c), np.empty(c)
            k.channel_backward_sums_relu(sdy, sdyx, dy, x3, self.mean, shift, scale, offset)
        dx = None
        if self.needs_input_grad[0]:
            dx = np.empty_like(x3)
            if self.training:
                coef = coefficients.backward(sdy, sdyx, n * s, self.mean, self.rstd, True, dtype, parts=self.parts)
            else:  # the statistics are constants: dx = X(rstd*w)*g, the unfused eval backward's rounding
                zero = np.zeros(c, dtype)
                coef = ((self.rstd * self.w).astype(dtype), zero, shift, zero, zero)
            # NOTE: in eval, 0*(x - shift) makes dx NaN where x is inf; the unfused backward gives scale*dy there
            k.channel_backward_apply_relu(dx, dy, x3, *coef, scale, offset)
            dx = dx.reshape(self.shape)
        dweight = (sdyx * self.rstd).astype(dtype) if self.has_weight else None
        dbias = sdy.astype(dtype) if self.has_bias else None
        return _grads_for(self, dx, dweight, dbias)


def batch_norm_relu(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
                    weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
                    momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """``relu(batch_norm(input, ...))`` in one node: ``F.batch_norm``'s arguments, checks and running-statistics
    update (see its docstring), with the ReLU fused into the apply passes (see the module docstring).

    ``y = max(0, (x - E[x]) / sqrt(Var[x] + eps) * weight + bias)``.

    Shape:
        - input (N, C) or (N, C, L) or (N, C, H, W) or (N, C, D, H, W); weight, bias, running stats (C,).
    """
    fn = "batch_norm_relu"
    _check_input(fn, input, 2, 5)
    size, c = input.data.size, input.data.shape[1]  # NOTE: the array's, not Tensor's properties (a frame each)
    rm, rv, eps = _check_channel_args(fn, input, weight, bias, running_mean, running_var, eps)
    if size == 0:
        return _empty_like(input, weight, bias)
    has = dict(has_weight=weight is not None, has_bias=bias is not None, eps=eps)
    if not training:
        if rm is None or rv is None:
            raise ValueError(f"{fn}: running_mean and running_var are required when training=False")
        if eps == 0.0 and not np.all(rv):  # NOTE: an infinite scale: PyTorch's NaN/inf pattern (batch_norm's)
            return relu(batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps))
        return _BatchNormReLU.apply(input, *_params(weight, bias), running=(rm, rv), **has)
    eps = check_batch_eps(fn, eps)
    per_channel = size // c
    if per_channel <= 1:
        raise ValueError(f"{fn}: expected more than 1 value per channel when training, got input of shape "
                         f"{input.shape} (batch statistics of a single value have no variance)")
    if momentum is not None or rm is not None:
        momentum = _check_average(fn, momentum)
    out, node = _BatchNormReLU.apply_with_ctx(input, *_params(weight, bias), **has)
    if rm is not None or rv is not None:
        _update_running_from(node, rm, rv, momentum, eps, per_channel)
    return out


# ------------------------------------------------------------------ batch norm + sigmoid, batch norm + tanh
# One node where the pair makes two: the batch-norm node's forward (its kernel, as F.batch_norm calls it), then
# the activation's array code (tensor.py's, which Tensor.sigmoid/tanh run), and backward the activation's then the
# batch norm's: the same kernel calls in the same order as the pair, so the same bits. What it saves is Python: a
# Function.apply, a Tensor and a graph node each way (and, in nn.Sequential, the activation module's call); the
# batch norm's output is not kept (the pair's graph holds it as the activation's input).

# name -> (y from z, dz from (dy, y), the Tensor op for compose)
_ACTIVATIONS = {"sigmoid": (_sigmoid_y, _sigmoid_dx, Tensor.sigmoid), "tanh": (_tanh_y, _tanh_dx, Tensor.tanh)}


class _BatchNormTrainThen(_BatchNormTrain):
    """act(batch_norm(x)) in training (batch statistics): _BatchNormTrain's forward, then the activation's;
    backward the activation's, then _BatchNormTrain's. NOTE: the base class's methods by name, not through a mixin's
    super() and **kwargs: 3.5 K (replayed) to 6.7 K (eager) instructions less a layer (callgrind)."""

    def forward(self, x, *params, has_weight, has_bias, eps, activation):
        self.act = act = _ACTIVATIONS[activation]
        self.y = y = act[0](_BatchNormTrain.forward(self, x, *params, has_weight=has_weight, has_bias=has_bias,
                                                    eps=eps))
        return y

    def backward(self, g):
        return _BatchNormTrain.backward(self, self.act[1](g, self.y))

    def compose(self, x, *params):  # NOTE: the double backward (create_graph=True): the pair's Tensor ops
        return self.act[2](_BatchNormTrain.compose(self, x, *params))


class _ChannelAffineThen(_ChannelAffine):
    """act(batch_norm(x)) with the running statistics (eval): as _BatchNormTrainThen, over _ChannelAffine."""

    def forward(self, x, *params, activation, **kwargs):
        self.act = act = _ACTIVATIONS[activation]
        self.y = y = act[0](_ChannelAffine.forward(self, x, *params, **kwargs))
        return y

    def backward(self, g):
        return _ChannelAffine.backward(self, self.act[1](g, self.y))

    def compose(self, x, *params):
        return self.act[2](_ChannelAffine.compose(self, x, *params))


_THEN_NODES = (_BatchNormTrainThen, _ChannelAffineThen)


def _batch_norm_then(fn, activation, input, running_mean, running_var, weight, bias, training, momentum, eps):
    if isinstance(input, Tensor) and input.data.size == 0:  # NOTE: the pair's empty result (no kernel runs)
        return _ACTIVATIONS[activation][2](batch_norm(input, running_mean, running_var, weight, bias, training,
                                                      momentum, eps))
    return _batch_norm(fn, input, running_mean, running_var, weight, bias, training, momentum, eps, None,
                       _THEN_NODES, {"activation": activation})


def batch_norm_sigmoid(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
                       weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
                       momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """``sigmoid(batch_norm(input, ...))`` in one node: ``F.batch_norm``'s arguments, checks and running-statistics
    update (see its docstring; no ghost batches), and the same values and gradients bit for bit (see above).

    ``y = 1 / (1 + exp(-z))``, ``z = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias``.

    Shape:
        - input (N, C) or (N, C, L) or (N, C, H, W) or (N, C, D, H, W); weight, bias, running stats (C,).
    """
    return _batch_norm_then("batch_norm_sigmoid", "sigmoid", input, running_mean, running_var, weight, bias,
                            training, momentum, eps)


def batch_norm_tanh(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
                    weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
                    momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """``tanh(batch_norm(input, ...))`` in one node: as ``batch_norm_sigmoid``, with ``y = tanh(z)``.

    Shape:
        - input (N, C) or (N, C, L) or (N, C, H, W) or (N, C, D, H, W); weight, bias, running stats (C,).
    """
    return _batch_norm_then("batch_norm_tanh", "tanh", input, running_mean, running_var, weight, bias, training,
                            momentum, eps)


# ------------------------------------------------------------------ conv2d + relu, linear + relu (inference)
# The ReLU is an epilogue of the layer's own forward: per chunk of conv2d's output right after its GEMM, while the
# chunk is in cache (conv.py, _epilogue), and in place on linear's GEMM output, so it costs no pass of its own.
# These nodes save nothing for a backward: where a gradient is needed (grad mode on and an input requiring grad)
# they are the two unfused ops instead, whose gradients (and double backward) are those of conv2d/linear and relu.

def _needs_grad(*tensors):
    return is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def conv2d_relu(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int | tuple[int, int] = 1,
                padding: int | tuple[int, int] = 0, dilation: int | tuple[int, int] = 1, groups: int = 1) -> Tensor:
    """``relu(conv2d(input, weight, bias, ...))``: ``F.conv2d``'s arguments and checks, the bias and the ReLU applied
    to each chunk of the output as it is written (one pass) where no gradient is needed, else the two ops.

    Shape:
        - those of ``F.conv2d``: input (N, C, H, W), weight (O, C/groups, kh, kw), bias (O,), y (N, O, OH, OW).
    """
    args, kwargs = _conv2d_args("conv2d_relu", input, weight, bias, stride, padding, dilation, groups)
    if _needs_grad(input, weight, bias) or (bias is not None and bias.dtype != input.dtype):
        return relu(conv2d(input, weight, bias, stride, padding, dilation, groups))
    return _Conv2d.apply(*args, relu=True, **kwargs)


def linear_relu(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``relu(linear(input, weight, bias))``: ``F.linear``'s checks, the ReLU applied in place on the GEMM's output
    where no gradient is needed, else the two ops.

    Shape:
        - those of ``F.linear``: x (*, in), weight (out, in), bias (out,), y (*, out).
    """
    args = _linear_args("linear_relu", input, weight, bias)
    if _needs_grad(input, weight, bias):
        return relu(linear(input, weight, bias))
    return _Linear.apply(*args, relu=True)


# ------------------------------------------------------------------ add + relu (a residual block's output)

class _AddReLU(Function):
    """max(0, a + b) for a and b of one shape and dtype: one node instead of two, one kernel call each way
    (``add_relu_forward``: the sum and the max in one pass; ``add_relu_backward``: g*[y > 0], the ReLU's mask
    read from the saved output, as PyTorch's ReLU saves its output), returned to both inputs, where the pair computes
    the same product from the ReLU's mask and passes it on. NOTE: one pass each way, split over the threads, where
    NumPy made three serial ones forward (docs/perf/threads.md)."""

    def forward(self, a, b):
        a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
        y = np.empty_like(a)
        if y.size:  # NOTE: the kernels take no empty arrays
            kernels.kernels().add_relu_forward(y.reshape(-1), a.reshape(-1), b.reshape(-1))
        self.y = y if True in self.needs_input_grad else None
        return y

    def backward(self, g):
        if g.dtype != self.y.dtype:  # NOTE: the kernel takes one dtype; a gradient of another is rare, NumPy does it
            gm = g * (self.y > 0)
        else:
            g = np.ascontiguousarray(g)
            gm = np.empty_like(g)
            if gm.size:
                kernels.kernels().add_relu_backward(gm.reshape(-1), g.reshape(-1), self.y.reshape(-1))
        return gm if self.needs_input_grad[0] else None, gm if self.needs_input_grad[1] else None

    def backward_sum(self, g0, g1):
        # NOTE: the output fans out (a residual block's input: its first conv and its shortcut): the walk's sum of
        # the two gradients and the mask in one pass (add_relu_backward_sum), where the add kernel and this
        # backward made two, each a parallel region
        y = self.y
        if not (g0.dtype == g1.dtype == y.dtype and g0.flags.c_contiguous and g1.flags.c_contiguous and y.size):
            return self.backward(_sum_grads(g0, g1))
        gm = np.empty_like(y)
        kernels.kernels().add_relu_backward_sum(gm.reshape(-1), g0.reshape(-1), g1.reshape(-1), y.reshape(-1))
        return gm if self.needs_input_grad[0] else None, gm if self.needs_input_grad[1] else None

    def backward_graph(self, g):
        # NOTE: piecewise linear in a + b: the second derivative is 0
        gm = g * Tensor((self.y > 0).astype(g.dtype))
        return gm if self.needs_input_grad[0] else None, gm if self.needs_input_grad[1] else None


def add_relu(a: Tensor, b: Tensor) -> Tensor:
    """``relu(a + b)`` in one node where ``a`` and ``b`` are float tensors of the same shape and dtype (a residual
    block's sum); otherwise the two ops (broadcasting, type promotion). Same values and gradients as the pair, bit
    for bit: the same sum, the same mask ``a + b > 0``, the same product with the incoming gradient.

    Shape:
        - a and b (*), the output (*).
    """
    if (isinstance(a, Tensor) and isinstance(b, Tensor) and a.shape == b.shape and a.dtype == b.dtype
            and a.dtype.kind == "f"):
        return _AddReLU.apply(a, b)
    return relu(a + b)
