"""A float64 NumPy reference of the normalization family, written from the papers' equations (no kernels, no
phases, no autograd): the oracle of tests/test_norm_family.py, itself checked against PyTorch compositions there.

Arrays are (N, C, *spatial); per-channel parameters (C,). Variances are biased unless named unbiased.
"""
import numpy as np


def _c(a, ndim):
    """(C,) -> (1, C, 1, ...)."""
    return np.asarray(a, np.float64).reshape(1, -1, *([1] * (ndim - 2)))


def _axes(x):
    return (0,) + tuple(range(2, x.ndim))


def batch_renorm(x, running_mean, running_var, weight, bias, eps, r_max, d_max, momentum, r=None, d=None):
    """Ioffe (2017), Algorithm 1: (y, r, d, new running_mean, new running_var). r and d are computed from the
    running statistics before the update unless given (give them to differentiate with r, d held constant)."""
    mu, var = x.mean(_axes(x)), x.var(_axes(x))
    sigma_b, sigma = np.sqrt(var + eps), np.sqrt(running_var + eps)
    if r is None:
        r = np.clip(sigma_b / sigma, 1 / r_max, r_max)
        d = np.clip((mu - running_mean) / sigma, -d_max, d_max)
    nd = x.ndim
    y = ((x - _c(mu, nd)) / _c(sigma_b, nd) * _c(r, nd) + _c(d, nd)) * _c(weight, nd) + _c(bias, nd)
    m = x.size // x.shape[1]
    new_rm = (1 - momentum) * running_mean + momentum * mu
    new_rv = (1 - momentum) * running_var + momentum * var * m / (m - 1)
    return y, r, d, new_rm, new_rv


def batch_norm(x, weight, bias, eps):
    """Training-mode batch norm (biased variance)."""
    nd = x.ndim
    return (x - _c(x.mean(_axes(x)), nd)) / np.sqrt(_c(x.var(_axes(x)), nd) + eps) * _c(weight, nd) + _c(bias, nd)


def ghost_batch_norm(x, virtual_batch_size, weight, bias, eps):
    """Hoffer et al. (2017), contiguous chunks of ``virtual_batch_size`` samples: (y, the average over chunks of
    their means, the average of their unbiased variances)."""
    chunks = [x[i:i + virtual_batch_size] for i in range(0, x.shape[0], virtual_batch_size)]
    y = np.concatenate([batch_norm(c, weight, bias, eps) for c in chunks])
    means = [c.mean(_axes(c)) for c in chunks]
    uvars = [c.var(_axes(c)) * (c.size // c.shape[1]) / (c.size // c.shape[1] - 1) for c in chunks]
    return y, np.mean(means, axis=0), np.mean(uvars, axis=0)


def filter_response_norm(x, weight, bias, eps):
    """Singh & Krishnan (2020), Algorithm 1: nu2 = mean_S(x^2), y = weight*x/sqrt(nu2 + |eps|) + bias."""
    nd = x.ndim
    nu2 = (x * x).mean(axis=tuple(range(2, nd)), keepdims=True)
    return _c(weight, nd) * x / np.sqrt(nu2 + abs(float(np.asarray(eps).reshape(-1)[0]))) + _c(bias, nd)


def tlu(x, tau):
    """z = max(y, tau)."""
    return np.maximum(x, _c(tau, x.ndim))


def evonorm_b0(x, v, weight, bias, eps, batch_var=None):
    """Liu et al. (2020), EvoNorm-B0: x / max(sqrt(s2_b + eps), v*x + sqrt(s2_i + eps)) * weight + bias, with the
    batch variance s2_b per channel (``batch_var`` instead when given: eval) and the instance variance s2_i."""
    nd = x.ndim
    s2_b = x.var(_axes(x)) if batch_var is None else np.asarray(batch_var, np.float64)
    s2_i = x.var(axis=tuple(range(2, nd)), keepdims=True)
    den = np.maximum(np.sqrt(_c(s2_b, nd) + eps), _c(v, nd) * x + np.sqrt(s2_i + eps))
    return x / den * _c(weight, nd) + _c(bias, nd)


def evonorm_s0(x, v, weight, bias, num_groups, eps):
    """Liu et al. (2020), EvoNorm-S0: x*sigmoid(v*x) / sqrt(s2_g + eps) * weight + bias, s2_g the variance of each
    sample's group of C/G channels over those channels and the spatial dims."""
    nd, n = x.ndim, x.shape[0]
    s2_g = x.reshape(n, num_groups, -1).var(axis=2)
    std = np.repeat(np.sqrt(s2_g + eps), x.shape[1] // num_groups, axis=1).reshape(n, -1, *([1] * (nd - 2)))
    gated = x / (1 + np.exp(-_c(v, nd) * x))
    return gated / std * _c(weight, nd) + _c(bias, nd)


def numeric_grads(f, arrays, dy, h=1e-6):
    """Central differences of sum(f(*arrays) * dy) with respect to each array (float64 copies)."""
    arrays = [np.array(a, np.float64) for a in arrays]
    grads = []
    for a in arrays:
        g = np.zeros_like(a)
        flat, gflat = a.reshape(-1), g.reshape(-1)
        for j in range(flat.size):
            orig = flat[j]
            flat[j] = orig + h
            fp = float((f(*arrays) * dy).sum())
            flat[j] = orig - h
            fm = float((f(*arrays) * dy).sum())
            flat[j] = orig
            gflat[j] = (fp - fm) / (2 * h)
        grads.append(g)
    return grads
