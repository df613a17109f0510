"""Stateless ops with the names, argument order and semantics of ``torch.nn.functional``.

Each validates its input and makes one call into the active backend's kernels (normalizations, log-softmax) or
composes autograd ops. Grouped by file: ``_norm`` (normalizations), ``_loss`` (log-softmax and losses),
``_layers`` (linear, convolution, pooling, activations, dropout).
"""
from minigrad.nn._loss import cross_entropy, log_softmax, mse_loss, nll_loss, softmax  # noqa: F401
from minigrad.nn._norm import batch_norm, group_norm, instance_norm, layer_norm, rms_norm  # noqa: F401
from minigrad.tensor import relu, sigmoid, tanh  # noqa: F401
from minigrad.nn._layers import adaptive_avg_pool2d, avg_pool2d, conv2d, dropout, flatten, gelu, linear, max_pool2d  # noqa: F401,E501
