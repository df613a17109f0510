"""The double backward of conv2d, conv_transpose2d and the poolings (``create_graph=True``): each first-order
gradient as an autograd op of its own, whose backward is again one of these ops, so gradients can be taken to any
order.

Layout legend as ``conv.py``. conv2d is bilinear in (x, weight), so its gradients close over three ops:
  y  = conv(x, w)                 (``_Conv2d``)
  dx = conv_input_grad(dy, w)     (``_Conv2dInputGrad``: the transposed convolution, weight^T @ dy then col2im)
  dw = conv_weight_grad(x, dy)    (``_Conv2dWeightGrad``: dy @ im2col(x)^T)
(the array functions are conv.py's, chunked over the batch as _Conv2d's own backward)
and from <dx, gx> = <dy, conv(gx, w)> = <w, conv_weight_grad(gx, dy)> (and the same for dw) each one's gradients are
the other two. conv_transpose2d(x, w) is conv_input_grad(x, w), so its gradients are the same three ops with the roles
swapped. max pooling's dx (any window: plain, dilated, adaptive) scatters dy through the saved argmax (the
``max_pool2d_backward`` kernel); its adjoint gathers through it; max_unpool2d's backward is that gather. avg pooling
is linear: its backward is its adjoint, whose adjoint is the forward again.
Every kernel comes from the active backend (``minigrad.kernels.kernels()``).
"""
import numpy as np

from minigrad import kernels
from minigrad.tensor import Function, TakeAlong

from .conv import _Conv2d, _ConvGeometry, _offset_slice, _pad
from .conv import conv2d_input_grad as conv_input_grad
from .conv import conv2d_weight_grad as conv_weight_grad
from .dense import pad


# ------------------------------------------------------------------ conv2d

def _geometry(x_shape, w_shape, dy, stride, padding, dilation, groups):
    return _ConvGeometry(x_shape, w_shape, stride, padding, dilation, groups, dy.shape[2], dy.shape[3],
                         dy.dtype.itemsize)


def conv2d_input_grad(dy, weight, x_shape, stride, padding, dilation, groups):
    """dx (N, C, H, W) = col2im(weight^T @ dy): the transposed convolution of dy (``conv.conv2d_input_grad``)."""
    O, Cg, kh, kw = weight.shape
    g = _geometry(x_shape, weight.shape, dy, stride, padding, dilation, groups)
    return conv_input_grad(dy, np.ascontiguousarray(weight).reshape(groups, O // groups, Cg * kh * kw), g)


def conv2d_weight_grad(x, dy, weight_shape, stride, padding, dilation, groups):
    """dweight (O, Cg, kh, kw) = dy @ im2col(x)^T (``conv.conv2d_weight_grad``)."""
    g = _geometry(x.shape, weight_shape, dy, stride, padding, dilation, groups)
    return conv_weight_grad(x, dy, g).reshape(weight_shape)


def _conv2d(x, weight, conv):
    return _Conv2d((), ).forward(x, weight, **conv)


class _Conv2dInputGrad(Function):
    # dy: (N, O, OH, OW), weight: (O, Cg, kh, kw) -> dx: (N, C, H, W)
    def forward(self, dy, weight, *, x_shape, conv):
        self.dy, self.weight, self.conv = dy, weight, conv
        return conv2d_input_grad(dy, weight, x_shape, **conv)

    def backward(self, gx):
        ddy = _conv2d(gx, self.weight, self.conv) if self.needs_input_grad[0] else None
        dw = conv2d_weight_grad(gx, self.dy, self.weight.shape, **self.conv) if self.needs_input_grad[1] else None
        return ddy, dw

    def backward_graph(self, gx):
        dy, weight = self.parents
        ddy = _Conv2d.apply(gx, weight, **self.conv) if self.needs_input_grad[0] else None
        dw = _Conv2dWeightGrad.apply(gx, dy, weight_shape=weight.shape, conv=self.conv) \
            if self.needs_input_grad[1] else None
        return ddy, dw


class _Conv2dWeightGrad(Function):
    # x: (N, C, H, W), dy: (N, O, OH, OW) -> dweight: (O, Cg, kh, kw)
    def forward(self, x, dy, *, weight_shape, conv):
        self.x, self.dy, self.conv = x, dy, conv
        return conv2d_weight_grad(x, dy, weight_shape, **conv)

    def backward(self, gw):
        dx = conv2d_input_grad(self.dy, gw, self.x.shape, **self.conv) if self.needs_input_grad[0] else None
        ddy = _conv2d(self.x, gw, self.conv) if self.needs_input_grad[1] else None
        return dx, ddy

    def backward_graph(self, gw):
        x, dy = self.parents
        dx = _Conv2dInputGrad.apply(dy, gw, x_shape=x.shape, conv=self.conv) if self.needs_input_grad[0] else None
        ddy = _Conv2d.apply(x, gw, **self.conv) if self.needs_input_grad[1] else None
        return dx, ddy


def conv2d_backward_graph(node, dy):
    """``_Conv2d``'s backward as recorded ops (its ``backward_graph``)."""
    x_shape, _, stride, padding, dilation, groups = node.geom[:6]
    conv = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    x, weight = node.parents[:2]
    need = node.needs_input_grad
    dx = _Conv2dInputGrad.apply(dy, weight, x_shape=x_shape, conv=conv) if need[0] else None
    dw = _Conv2dWeightGrad.apply(x, dy, weight_shape=weight.shape, conv=conv) if need[1] else None
    db = dy.sum((0, 2, 3)) if len(need) > 2 and need[2] else None
    return (dx, dw, db)[:len(node.parents)]


# ------------------------------------------------------------------ conv_transpose2d

def conv_transpose2d_backward_graph(node, dy):
    """``_ConvTranspose2d``'s backward as recorded ops. y = conv_input_grad(x', w) with x' = x zero-extended to the
    (H2, W2) output of the conv2d over y (``_ConvTranspose2d``), so dx = conv2d(dy, w) cropped to (H, W) and
    dw = conv_weight_grad(dy, x'): conv2d's ops with the roles of x and dy swapped."""
    (N, C, H, W), wshape, stride, padding, dilation, groups, H2, W2 = node.geom
    conv = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    x, weight = node.parents[:2]
    need = node.needs_input_grad
    dx = dw = db = None
    if need[0]:
        dx = _Conv2d.apply(dy, weight, **conv)
        if (H2, W2) != (H, W):
            dx = dx[:, :, :H, :W]
    if need[1]:
        xe = x if (H2, W2) == (H, W) else pad(x, (0, W2 - W, 0, H2 - H))
        dw = _Conv2dWeightGrad.apply(dy, xe, weight_shape=wshape, conv=conv)
    if len(need) > 2 and need[2]:
        db = dy.sum((0, 2, 3))
    return (dx, dw, db)[:len(node.parents)]


# ------------------------------------------------------------------ max_pool2d, adaptive_max_pool2d, max_unpool2d

class _MaxPool2dScatter(Function):
    """dx (N, C, H, W) = 0, then dy added at each window's saved argmax: max_pool2d's backward as an op. Its
    adjoint gathers gx at argmax (``TakeAlong``, whose own adjoint scatters again)."""

    def forward(self, dy, argmax, shape):
        self.argmax = argmax
        dx = np.zeros(shape, dy.dtype)
        if dx.size:
            kernels.kernels().max_pool2d_backward(dx, np.ascontiguousarray(dy), argmax)
        return dx

    def backward(self, gx):
        n, c, oh, ow = self.argmax.shape
        flat = np.ascontiguousarray(gx).reshape(n, c, -1)
        return np.take_along_axis(flat, self.argmax.reshape(n, c, -1), 2).reshape(n, c, oh, ow)

    def backward_graph(self, gx):
        n, c, oh, ow = self.argmax.shape
        return TakeAlong.apply(gx.reshape(n, c, -1), index=self.argmax.reshape(n, c, -1), axis=2) \
            .reshape(n, c, oh, ow)


def max_pool2d_backward_graph(node, dy):
    """The backward of a max pooling node (``_MaxPool2d``, ``_MaxPoolTaps``) that saved ``argmax`` and ``shape``."""
    return _MaxPool2dScatter.apply(dy, argmax=node.argmax, shape=node.shape)


def max_unpool2d_backward_graph(node, dy):
    """``_MaxUnpool2d``'s backward (dy gathered at the indices) as a ``TakeAlong``, whose adjoint scatter-adds."""
    return TakeAlong.apply(dy.reshape(node.planes.shape[0], -1), index=node.indices, axis=1).reshape(node.shape)


# ------------------------------------------------------------------ avg_pool2d

def _avg_apply(x, geom, scale):
    """y = scale * (sum of x over each window): avg_pool2d's forward."""
    shape, xp_shape, taps, (sh, sw), (ph, pw), (OH, OW) = geom
    xp = _pad(x, ph, pw)
    y = np.zeros(x.shape[:2] + (OH, OW), x.dtype)
    for i, j in taps:
        y += xp[(slice(None), slice(None)) + _offset_slice(i, j, 1, 1, sh, sw, OH, OW)]
    return y * scale


def _avg_adjoint(dy, geom, scale):
    """dx = each window's scale * dy spread over the window: avg_pool2d's backward."""
    shape, xp_shape, taps, (sh, sw), (ph, pw), (OH, OW) = geom
    g = dy * scale
    dxp = np.zeros(xp_shape, dy.dtype)
    for i, j in taps:
        dxp[(slice(None), slice(None)) + _offset_slice(i, j, 1, 1, sh, sw, OH, OW)] += g
    return np.ascontiguousarray(dxp[:, :, ph:ph + shape[2], pw:pw + shape[3]])


class _AvgPool2dLinear(Function):
    """avg_pool2d's linear map (``adjoint=False``) or its adjoint (``adjoint=True``, the backward), on the
    geometry and per-window scale of an ``_AvgPool2d`` node; the gradient of one is the other."""

    def forward(self, a, geom, scale, adjoint):
        self.geom, self.scale, self.adjoint = geom, scale, adjoint
        return (_avg_adjoint if adjoint else _avg_apply)(a, geom, scale)

    def backward(self, g):
        return (_avg_apply if self.adjoint else _avg_adjoint)(g, self.geom, self.scale)

    def backward_graph(self, g):
        return _AvgPool2dLinear.apply(g, geom=self.geom, scale=self.scale, adjoint=not self.adjoint)


def avg_pool2d_backward_graph(node, dy):
    return _AvgPool2dLinear.apply(dy, geom=node.geom, scale=node.scale, adjoint=True)
