"""kernels/coefficients.py's forward and backward: the same bits as the module docstring's formulas written out with
the weight and bias cast to float64 first, and backward from forward's ``parts`` the same as backward from the
weight (the fused BN+ReLU node keeps forward's parts for its backward)."""
import numpy as np
import pytest

from minigrad.kernels import coefficients


def _forward(mean, rstd, dtype, weight, bias):
    shift = mean.astype(dtype)
    scale = rstd * np.asarray(weight, np.float64)
    offset = np.asarray(bias, np.float64) - (mean - shift) * scale
    return shift, scale.astype(dtype), offset.astype(dtype)


def _backward(s, sx, count, mean, rstd, center, dtype, weight):
    shift = mean.astype(dtype)
    a = rstd * np.asarray(weight, np.float64)
    m = s / count if center else np.zeros_like(s)
    b = -a * (sx * rstd / count) * rstd
    k = -b * (mean - shift)
    return a.astype(dtype), m.astype(dtype), shift, b.astype(dtype), k.astype(dtype)


def _same_bits(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        assert g.tobytes() == w.tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("affine", ["arrays", "float64 arrays", "defaults"])
@pytest.mark.parametrize("center", [True, False])
def test_forward_backward_bits(dtype, affine, center):
    rng = np.random.default_rng(7)
    c, count = 37, 1000
    # NOTE: a large mean, so that mean - shift is not 0; a zero, an inf and a NaN among the statistics and sums
    mean = rng.standard_normal(c) * 1e4 + 3e3
    m2 = rng.uniform(0.0, 4.0, c) * count
    m2[:3] = 0.0, np.inf, np.nan
    rstd = coefficients.rstd(m2, count, 0.0)
    s, sx = rng.standard_normal(c) * 50, rng.standard_normal(c) * 50
    s[3], sx[4] = np.inf, np.nan
    if affine == "defaults":
        w, b, kw = 1.0, 0.0, {}
    else:
        wdt = dtype if affine == "arrays" else np.float64
        w, b = rng.uniform(-2, 2, c).astype(wdt), rng.standard_normal(c).astype(wdt)
        kw = dict(weight=w, bias=b)
    with np.errstate(all="ignore"):
        want_f = _forward(mean, rstd, dtype, w, b)
        want_b = _backward(s, sx, count, mean, rstd, center, dtype, w)
        _same_bits(coefficients.forward(mean, rstd, dtype, **kw), want_f)
        coef, parts = coefficients.forward(mean, rstd, dtype, **kw, parts=True)
        _same_bits(coef, want_f)
        bkw = {} if affine == "defaults" else dict(weight=w)
        _same_bits(coefficients.backward(s, sx, count, mean, rstd, center, dtype, **bkw), want_b)
        _same_bits(coefficients.backward(s, sx, count, mean, rstd, center, dtype, parts=parts), want_b)
