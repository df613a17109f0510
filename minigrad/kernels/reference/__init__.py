"""The NumPy reference kernels: the readable oracle every other backend is tested against.

Signatures, shapes and dtypes are those of ``minigrad.kernels.contract`` (outputs first, preallocated by the
caller; a trailing ``n_threads`` that NumPy ignores). The normalizations compute in float64 with two-pass
statistics and cast to the output dtype once, at the end. Speed is not a goal here; clarity is.

One file per kernel family: ``norm`` (batch and group norm, running statistics; the normalization math is derived
at its top), ``softmax``, ``conv`` (im2col, col2im, the direct convolution, max pooling), ``optim`` (SGD and Adam updates),
``elementwise`` (a residual block's add + ReLU), ``whiten`` (decorrelated batch norm: ZCA whitening, its eigensolver,
its running averages).
"""
from .conv import (  # noqa: F401
    col2im, conv2d_direct, conv2d_direct_backward, conv2d_direct_weight_grad, conv2d_strided,
    conv2d_strided_backward, conv2d_strided_input_grad, conv2d_strided_weight_grad, im2col, max_pool2d_backward,
    max_pool2d_forward,
)
from .norm import (  # noqa: F401
    batch_norm_backward, batch_norm_forward, batch_norm_inference, batch_renorm_forward, ghost_batch_norm_backward,
    ghost_batch_norm_forward,
    group_norm_backward, group_norm_forward,
    running_stats_update,
)
from .optim import adam_update, sgd_update, sgd_update_many  # noqa: F401
from .elementwise import (add, add_relu_backward, add_relu_backward_sum, add_relu_forward,  # noqa: F401
                          sigmoid_backward, sigmoid_forward)
from .phases import (  # noqa: F401
    channel_apply, channel_apply_relu, channel_backward_apply, channel_backward_apply_relu, channel_backward_sums,
    channel_backward_sums_relu, channel_stats, row_apply, row_apply_max, row_backward_apply, row_backward_apply_max,
    row_backward_sums, row_backward_sums_max, row_stats, row_apply_gate, row_backward_sums_gate,
    row_backward_apply_gate, row_norm_apply_max, row_norm_backward_max, evonorm_s0_backward, evonorm_b0_forward,
    evonorm_b0_backward,
)
from .softmax import (cross_entropy_backward, cross_entropy_forward, log_softmax_backward,  # noqa: F401
                      log_softmax_forward)
from .whiten import (running_average_update, sym_eigh, zca_backward_dx, zca_backward_p1, zca_forward,  # noqa: F401
                     zca_rows, zca_running_update)
