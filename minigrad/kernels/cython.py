"""The Cython/OpenMP backend: the compiled kernels of minigrad/_ext under the contract's names.

Each function takes the arguments of ``minigrad.kernels.contract`` followed by ``n_threads`` (passed down to every
``prange``). The math is documented once, in ``minigrad.kernels.reference`` (one file per kernel family, as minigrad/_ext).
Two kernels are thin Python wrappers, zca_forward and sym_eigh: whiten.pyx's eigensolver reports when it does not
converge (non-finite input), and the reference's (LAPACK's eigh) runs then.
"""
from minigrad._ext.norm import (  # noqa: F401
    running_stats_update,
    batch_norm_backward,
    batch_norm_forward,
    batch_norm_inference,
    batch_renorm_forward,
    ghost_batch_norm_backward,
    ghost_batch_norm_forward,
    group_norm_backward,
    group_norm_forward,
)
from minigrad._ext.softmax import (cross_entropy_backward, cross_entropy_forward, log_softmax_backward,  # noqa: F401
                                   log_softmax_forward)
from minigrad._ext.conv import (  # noqa: F401
    col2im, conv2d_direct, conv2d_direct_backward, conv2d_direct_variant, conv2d_direct_weight_grad,
    conv2d_strided, conv2d_strided_backward, conv2d_strided_input_grad, conv2d_strided_weight_grad, im2col,
    max_pool2d_backward, max_pool2d_forward,
)
from minigrad._ext.optim import adam_update, sgd_update, sgd_update_many  # noqa: F401
from minigrad._ext.elementwise import (add, add_relu_backward, add_relu_backward_sum, add_relu_forward,  # noqa: F401
                                       sigmoid_backward, sigmoid_forward)
from minigrad._ext.phases import (  # noqa: F401
    channel_apply, channel_apply_relu, channel_backward_apply, channel_backward_apply_relu, channel_backward_sums,
    channel_backward_sums_relu, channel_stats, row_apply, row_apply_max, row_backward_apply, row_backward_apply_max,
    row_backward_sums, row_backward_sums_max, row_stats, row_apply_gate, row_backward_sums_gate,
    row_backward_apply_gate, row_norm_apply_max, row_norm_backward_max, evonorm_s0_backward, evonorm_b0_forward,
    evonorm_b0_backward,
)
from minigrad._ext import whiten as _whiten
from minigrad._ext.whiten import (running_average_update, zca_backward_dx, zca_backward_p1, zca_rows,  # noqa: F401
                                  zca_running_update)
from minigrad.kernels import reference as _reference


def zca_forward(y, cov, lam, U, W, s, shift, dshift, mean, x, weight, bias, group_size, eps, n_threads):
    """Decorrelated batch norm's training forward in one compiled call (whiten.pyx); where its eigensolver does not
    converge (non-finite x) the reference's, with LAPACK's eigh."""
    if not _whiten.zca_forward(y, cov, lam, U, W, s, shift, dshift, mean, x, weight, bias, group_size, eps,
                               n_threads):
        _reference.zca_forward(y, cov, lam, U, W, s, shift, dshift, mean, x, weight, bias, group_size, eps)


def sym_eigh(lam, U, A, n_threads):
    """Ascending eigenvalues and eigenvectors of each A[k] (whiten.h's tred2 + tql2; LAPACK's where it does not
    converge)."""
    if not _whiten.sym_eigh(lam, U, A, n_threads):
        _reference.sym_eigh(lam, U, A)
