"""The rules that several layers check or compute, each written once: float dtypes, eps, momentum, num_groups,
the output size of a sliding window and the 64-bit index range its arithmetic must fit. The kernel contract, the
functionals and the modules all import them from here; ``fn`` names the caller in each error message
(``"batch_norm: eps must be ..."``).

Nothing here imports the rest of minigrad: it is the bottom of the array layer.
"""
import math
import numbers

import numpy as np

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))  # the dtypes every kernel takes (X in the contract)


def float_dtype(dtype):
    """The dtype of new parameters and buffers: float32 when ``dtype`` is None."""
    return np.dtype(np.float32 if dtype is None else dtype)


def check_eps(fn, eps):
    """eps as a float; it must be a finite number >= 0. eps=0 is PyTorch's too: a set of zero variance then
    normalizes to inf or NaN (batch-statistics batch norm, where PyTorch refuses it, checks ``check_batch_eps``)."""
    if type(eps) is float and 0.0 <= eps < math.inf:  # NOTE: the common case, without ABC checks
        return eps
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not np.isfinite(eps) or eps < 0:
        raise ValueError(f"{fn}: eps must be a finite number >= 0, got {eps!r}")
    return float(eps)


def check_batch_eps(fn, eps):
    """eps of batch norm with batch statistics: > 0, PyTorch's rule (its message), since a channel of zero
    variance would give inf or NaN."""
    eps = check_eps(fn, eps)
    if eps <= 0.0:
        raise ValueError(f"{fn} eps must be positive during training, but got {eps}")
    return eps


def check_momentum(fn, momentum):
    """momentum as a float in [0, 1] (the weight of the new batch statistic in the running average)."""
    if type(momentum) is float and 0.0 <= momentum <= 1.0:
        return momentum
    if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real) or not 0.0 <= momentum <= 1.0:
        raise ValueError(f"{fn}: momentum must be a number in [0, 1], got {momentum!r}")
    return float(momentum)


def check_num_groups(fn, num_groups, C):
    """num_groups as an int: a positive integer that divides the channel count C."""
    if type(num_groups) is int and num_groups >= 1 and C % num_groups == 0:  # NOTE: the common case, no ABCs
        return num_groups
    if isinstance(num_groups, bool) or not isinstance(num_groups, numbers.Integral) or num_groups < 1:
        raise ValueError(f"{fn}: num_groups must be a positive integer, got {num_groups!r}")
    if C % num_groups:
        raise ValueError(f"{fn}: num_groups={num_groups} must divide the number of channels C={C}")
    return int(num_groups)


def out_size(size, k, stride, padding, dilation):
    """Output length of a window of ``k`` taps (``dilation`` apart) sliding by ``stride`` over ``size`` values
    padded by ``padding`` on each side: ``(size + 2*padding - dilation*(k - 1) - 1) // stride + 1``. It may be
    < 1 (the window does not fit): callers check it and name the error. Unchecked: the kernels call it on
    arguments that ``window_out_size`` has passed."""
    return (size + 2 * padding - dilation * (k - 1) - 1) // stride + 1


# NOTE: the kernels index with Py_ssize_t (Cython) and int64 (NumPy, Numba); 64-bit platforms only
INDEX_MAX = 2**63 - 1
_SMALL = 2**30  # window arguments all below it keep every sum and product within INDEX_MAX


def strided_phases_fit(size, k, stride, padding):
    """Whether the strided convolution kernels (conv2d_strided and its gradients) take this window along one axis:
    their scratch holds ``stride`` phase planes of ceil((size + 2 padding) / stride) positions per axis, so a stride
    far past the padded input and the kernel would size it by the stride, not the data (2**62 never returned).
    conv2d routes such a window to im2col; the contract refuses it."""
    return stride <= 2 * (size + 2 * padding + k)


def window_out_size(fn, size, k, stride, padding, dilation):
    """``out_size`` after checking that the window's arithmetic fits the kernels' 64-bit indices, so that no
    backend overflows (Cython returned uninitialised memory for padding = stride = 2**62): the padded size
    ``size + 2*padding``, the span ``dilation*(k - 1) + 1`` and ``stride + padding`` (the kernels' first-output
    search computes ``stride - 1 + padding``). In Python ints, so that the check itself cannot wrap."""
    if size < _SMALL and k < _SMALL and stride < _SMALL and padding < _SMALL and dilation < _SMALL:
        return out_size(size, k, stride, padding, dilation)  # NOTE: the common case: nothing can overflow
    size, k, stride, padding, dilation = int(size), int(k), int(stride), int(padding), int(dilation)
    if size + 2 * padding > INDEX_MAX:
        raise ValueError(f"{fn}: padding {padding} is too large: the padded size {size} + 2*padding = "
                         f"{size + 2 * padding} exceeds the kernels' 64-bit index range (2**63 - 1)")
    if dilation * (k - 1) + 1 > INDEX_MAX:
        raise ValueError(f"{fn}: kernel_size {k} with dilation {dilation} is too large: the window spans "
                         f"dilation*(kernel_size - 1) + 1 = {dilation * (k - 1) + 1} values, beyond the kernels' "
                         f"64-bit index range (2**63 - 1)")
    if stride + padding > INDEX_MAX:
        raise ValueError(f"{fn}: stride {stride} with padding {padding} is too large: stride + padding = "
                         f"{stride + padding} exceeds the kernels' 64-bit index range (2**63 - 1)")
    return out_size(size, k, stride, padding, dilation)


def pool_out_size(fn, size, k, stride, padding, dilation, ceil_mode):
    """A pooling window's output length, PyTorch's rule: ``window_out_size``, or with ``ceil_mode`` the division
    rounded up, less one where that last window would start past the input and its left padding (it would read
    right padding only). So every window starts before ``size`` and, with padding at most k/2, holds a real value."""
    out = window_out_size(fn, size, k, stride, padding, dilation)
    if ceil_mode:
        out = (size + 2 * padding - dilation * (k - 1) - 1 + stride - 1) // stride + 1
        if (out - 1) * stride >= size + padding:
            out -= 1
    return out


def check_array_size(fn, what, shape, itemsize, **cause):
    """An array of ``shape`` that the caller is about to allocate must be addressable (its bytes at most
    2**63 - 1, NumPy's limit); ``cause`` names the arguments that made it so large (``padding=(1, 1), ...``)."""
    n = math.prod(shape)
    if n * itemsize > INDEX_MAX:
        args = ", ".join(f"{name} {value}" for name, value in cause.items())
        raise ValueError(f"{fn}: {args} give {what} of shape {tuple(shape)}, {n} elements: more than a 64-bit "
                         f"index can address")


def live_taps(k, size, out, stride, padding):
    """The taps i in [0, k) of an undilated window that read a real (unpadded) value for some output o in
    [0, out): those with 0 <= o*stride - padding + i < size. The others read padding only, so loops over the taps
    skip them: a window of 2**40 taps over 5 values then costs 5 + the taps that overlap, not 2**40."""
    return range(max(0, padding - (out - 1) * stride), min(k, size + padding))
