"""The per-set coefficients between the phase kernels, written once for every method of the family.

A normalization made of phases runs: statistics (``channel_stats``/``row_stats``: mean and m2 in float64) ->
``rstd`` -> ``forward`` coefficients -> apply; in backward: sums (``*_backward_sums``) -> ``backward``
coefficients -> backward apply. The coefficients are small (one value per reduction set) and computed here in
float64, then cast to the input's dtype X for the elementwise passes, which run in X precision:

  forward   y = (x - mean)*rstd*w + b  =  (x - shift)*scale + offset,   shift = X(mean),
            scale = rstd*w,  offset = b - (mean - shift)*scale
            NOTE: x - shift is (nearly) exact, so a large mean does not cancel the way x*scale + (b - mean*scale)
            does; the part of the mean that X cannot hold is carried by offset.
  backward  with s = sum(g), sx = sum(g*(x - mean)) over a set of M values (g the gradient reaching w*xhat, w
            constant over the set or folded into g), xhat = (x - mean)*rstd:
              dx = rstd*w*(g - mean(g) - xhat*mean(g*xhat))                 (center)
              dx = rstd*w*(g - xhat*mean(g*xhat))                           (center=False: the mean is not a
                                                                             statistic, d(rstd)/dx_i = -rstd^3 x_i/M)
            rewritten as a*(g - m) + b*(x - shift) + k with xhat = rstd*((x - shift) - (mean - shift)):
              a = rstd*w,  m = mean(g) (0 without center),  b = -a*mean(g*xhat)*rstd,  k = -b*(mean - shift)
            NOTE: g - m before scaling, so that a large rstd does not amplify the rounding of a cancellation.
"""
import numpy as np


def rstd(m2, count, eps):
    """1/sqrt(m2/count + eps), the biased variance clamped at 0 (NaN stays NaN); inf where it is 0 and eps=0.
    float64 arrays."""
    if eps > 0:  # NOTE: no zero to divide by; np.errstate costs more than the arithmetic on small arrays
        return 1.0 / np.sqrt(np.maximum(m2 / count, 0.0) + eps)
    with np.errstate(divide="ignore"):
        return 1.0 / np.sqrt(np.maximum(m2 / count, 0.0) + eps)


def forward(mean, rstd, dtype, weight=1.0, bias=0.0, parts=False):
    """(shift, scale, offset) in ``dtype`` for y = (x - shift)*scale + offset = (x - mean)*rstd*weight + bias.
    With ``parts``, ((shift, scale, offset), parts): ``parts`` is what ``backward`` computes again from the same
    mean, rstd and weight (shift, its a in ``dtype`` and in float64, mean - shift), for a node that keeps it."""
    shift = mean.astype(dtype)
    # NOTE: a float32 weight or bias is cast to float64 inside the ufunc, exactly, as np.asarray(., np.float64)
    a = rstd * weight
    dm = mean - shift
    coef = shift, a.astype(dtype), (bias - dm * a).astype(dtype)
    return (coef, (shift, coef[1], a, dm)) if parts else coef


def backward(s, sx, count, mean, rstd, center, dtype, weight=1.0, parts=None):
    """(a, m, shift, b, k) in ``dtype`` for dx = a*(g - m) + b*(x - shift) + k (see the module docstring).
    ``parts``: ``forward``'s for the same mean, rstd, weight and dtype, else computed here."""
    if parts is None:
        shift, a = mean.astype(dtype), rstd * weight
        ax, dm = a.astype(dtype), mean - shift
    else:
        shift, ax, a, dm = parts
    m = s / count if center else np.zeros_like(s)
    b = -a * (sx * rstd / count) * rstd
    return ax, m.astype(dtype), shift, b.astype(dtype), (-b * dm).astype(dtype)


def renorm_weight(weight, r, d):
    """Batch Renorm's backward weight, w*r in w's dtype X (w itself without r): r and d are constants in backward,
    so dx is batch norm's with w*r (r, d: (C,) float64, both or neither; the float32 w enters the float64 product
    exactly)."""
    if (r is None) != (d is None):
        raise ValueError("batch_norm_backward: r and d must be given together")
    return weight if r is None else (weight * r).astype(weight.dtype)


def renorm_dweight(dweight, dbias, r, d):
    """Batch Renorm's dweight = r*sum(dy*xhat) + d*sum(dy), in place, from batch norm's dweight and dbias (X, the
    kernel's) in float64, rounded to X."""
    dweight[...] = r * dweight + d * dbias


def evonorm_s0_backward(sdyf, weight, gmean, grstd, count, dtype):
    """(a, shift, b, k) in ``dtype``, each (N, C), of EvoNorm-S0's dx = a*dy*df/dx + b*(x - shift) + k from the
    rows' sums sdyf = sum(dy*f) (N, C), weight (C,), the groups' mean and 1/std (N, G) over ``count`` values each.
    y = f*w/std + b, so d/d(1/std) of a group = sum(dy*f*w) over its channels, and d std/dx_i = (x_i - mean)/(M*std):
        bg = -sum_c(w[c]*sdyf)*rstd^3/M,  a = w[c]*rstd,  shift = X(mean),  b = bg,  k = bg*(shift - mean)."""
    n, g = grstd.shape
    c = weight.shape[0]
    w = weight.astype(np.float64).reshape(1, g, c // g)
    bg = -(w * sdyf.reshape(n, g, c // g)).sum(axis=2) * grstd ** 3 / count
    shift = gmean.astype(dtype)
    rows = lambda v: np.broadcast_to(v[:, :, None], (n, g, c // g)).reshape(n, c)  # noqa: E731
    return ((w * grstd[:, :, None]).reshape(n, c).astype(dtype), rows(shift), rows(bg.astype(dtype)),
            rows((bg * (shift - gmean)).astype(dtype)))
