"""Stateless ops with the names, argument order and semantics of ``torch.nn.functional``.

Each validates its input and makes one call into the active backend's kernels (normalizations, log-softmax,
convolution windows, pooling) or composes autograd ops. By role: ``norm`` (normalizations), ``norm_family``
(batch renorm, FRN and TLU, EvoNorm), ``fused`` (batch_norm_relu, batch_norm_sigmoid, batch_norm_tanh,
conv2d_relu, linear_relu, add_relu), ``activation`` (relu, sigmoid, tanh, gelu, leaky_relu, elu, silu,
log_softmax, softmax), ``loss``, ``conv`` (conv1d, conv2d, conv_transpose2d, pooling, max_unpool2d), ``resample``
(interpolate), ``dense`` (linear, dropout, dropout2d, pad, flatten); ``checks`` holds the input checks they share.
"""
from .activation import elu, gelu, leaky_relu, log_softmax, relu, sigmoid, silu, softmax, tanh  # noqa: F401
from .conv import (  # noqa: F401
    adaptive_avg_pool2d,
    adaptive_max_pool2d,
    avg_pool2d,
    conv1d,
    conv2d,
    conv_transpose2d,
    max_pool2d,
    max_unpool2d,
)
from .resample import interpolate  # noqa: F401
from .dense import dropout, dropout2d, flatten, linear, pad  # noqa: F401
from .fused import (add_relu, batch_norm_relu, batch_norm_sigmoid, batch_norm_tanh, conv2d_relu,  # noqa: F401
                    linear_relu)
from .loss import cross_entropy, mse_loss, nll_loss  # noqa: F401
from .norm import batch_norm, group_norm, instance_norm, layer_norm, rms_norm  # noqa: F401
from .norm_family import (  # noqa: F401
    batch_renorm, evonorm_b0, evonorm_s0, filter_response_norm, filter_response_norm_tlu, tlu,
)
