"""NumPy reference: log_softmax on the rows layout x: (R, D) (R rows, D the row length), and cross entropy's pair
on it (target: (R,) int64 class indices). Computed in float64, cast to the output dtype once. Conventions:
``minigrad.kernels.reference``."""
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


# ----------------------------------------------------------------------------------------------------------
# cross entropy at class indices t: (R,), rows layout
#   logp = log_softmax(x), picked[r] = logp[r, t[r]]                  (NaN for t[r] outside [0, D))
#   dx = log_softmax's backward for dy = scale at (r, t[r]), 0 elsewhere


def _picked_rows(target, D):
    """The rows whose target is in [0, D)."""
    return (target >= 0) & (target < D)


def cross_entropy_forward(logp, picked, x, target, n_threads=1):
    """logp = log_softmax(x); picked[r] = logp[r, target[r]] in float64.  x, logp: (R, D); picked, target: (R,)."""
    log_softmax_forward(logp, x)
    ok = _picked_rows(target, x.shape[1])
    picked[...] = np.nan
    picked[ok] = logp[np.flatnonzero(ok), target[ok]]


def cross_entropy_backward(dx, logp, target, scale, n_threads=1):
    """log_softmax_backward(dx, dy, logp) with dy = X(scale) at (r, target[r]), 0 elsewhere.  dx, logp: (R, D)."""
    dy = np.zeros_like(logp)
    ok = _picked_rows(target, logp.shape[1])
    dy[np.flatnonzero(ok), target[ok]] = scale
    log_softmax_backward(dx, dy, logp)
