"""NumPy reference: log_softmax on the rows layout x: (R, D) (R rows, D the row length). Computed in float64,
cast to the output dtype once. Conventions: ``minigrad.kernels.reference``."""
import numpy as np

# ----------------------------------------------------------------------------------------------------------
# log_softmax, rows layout x: (R, D)
#   y  = x - max(x) - log(sum(exp(x - max(x))))                       per row
#   dx = dy - exp(y)*sum(dy)                                          per row (softmax = exp(y) sums to 1)


def log_softmax_forward(y, x, n_threads=1):
    """y[r] = x[r] - logsumexp(x[r]).  x, y: (R, D)."""
    x64 = x.astype(np.float64)
    m = x64.max(axis=1, keepdims=True)
    y[...] = x64 - m - np.log(np.exp(x64 - m).sum(axis=1, keepdims=True))


def log_softmax_backward(dx, dy, y, n_threads=1):
    """dx[r] = dy[r] - exp(y[r])*sum(dy[r]).  dx, dy, y: (R, D)."""
    dy64 = dy.astype(np.float64)
    dx[...] = dy64 - np.exp(y.astype(np.float64)) * dy64.sum(axis=1, keepdims=True)
