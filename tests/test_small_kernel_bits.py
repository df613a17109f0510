"""The Cython log-softmax and sigmoid kernels give, bit for bit, the rule they had before docs/perf/small-kernels.md:

- log_softmax_forward: per row m = the max in double, s = sum of libm's exp(x - m) in the order of j, y = X((x - m)
  - log(s)); log_softmax_backward: s = sum of dy in double in the order of j, dx = X(dy - exp(y) * s). Python's
  math.exp and math.log are libm's, so a loop over rows in Python is the reference (a faster exp must keep
  libm's bits).
- the float32 sigmoid: 1/(1 + expf(-x)) with mg_expf.h's polynomial expf, written here as NumPy float32 operations,
  one rounding each (the kernel runs it in 16-, 8-lane and scalar blocks).
scripts/small_kernels_bits.py compares against the previous build's .so files over far more inputs.
"""
import math

import numpy as np
import pytest

from minigrad._ext import elementwise, softmax

f32 = np.float32


def exp(v):
    """libm's exp through math.exp, which raises where libm returns inf"""
    try:
        return math.exp(v)
    except OverflowError:
        return math.inf


def ref_log_softmax(x):
    y = np.empty_like(x)
    for r, row in enumerate(x.tolist()):
        m = row[0]
        for v in row[1:]:
            if v > m:
                m = v
        s = 0.0
        for v in row:
            s += exp(v - m)
        log_s = math.log(s)
        with np.errstate(over="ignore"):  # NOTE: a double past float32's range rounds to inf, as C's cast
            y[r] = [(v - m) - log_s for v in row]  # rounded to X by the assignment
    return y


def ref_log_softmax_backward(dy, y):
    dx = np.empty_like(dy)
    for r, (drow, yrow) in enumerate(zip(dy.tolist(), y.tolist())):
        s = 0.0
        for v in drow:
            s += v
        with np.errstate(over="ignore"):
            dx[r] = [d - exp(v) * s for d, v in zip(drow, yrow)]
    return dx


def ref_sigmoid_float32(z):
    """mg_expf.h's MGP_EXPF_BODY on x0 = -z, then 1/(1 + e), every operation rounded to float32."""
    with np.errstate(all="ignore"):
        x0 = -z
        hi, lo, magic = f32(88.37626), f32(-87.33654), f32(12582912.0)
        x = np.where(x0 > hi, hi, x0)
        x = np.where(x < lo, lo, x)
        t = x * f32(1.44269504088896341) + magic
        n = t - magic
        r = x - n * f32(0.693359375)
        r = r - n * f32(-2.12194440e-4)
        zz = r * r
        p = ((((f32(1.9875691500e-4) * r + f32(1.3981999507e-3)) * r + f32(8.3334519073e-3)) * r
              + f32(4.1665795894e-2)) * r + f32(1.6666665459e-1)) * r + f32(5.0000001201e-1)
        p = p * zz + r + f32(1.0)
        e = ((t.view(np.uint32) - magic.view(np.uint32) + np.uint32(127)) << np.uint32(23)).view(np.float32)
        ex = np.where(x0 > hi, f32(np.inf), p * e)
        return f32(1.0) / (f32(1.0) + ex)


def same_bits(a, b):
    """Bit for bit, except that a NaN matches any NaN (NumPy's NaN propagation is not the kernel's)."""
    ua, ub = a.view(np.uint32 if a.dtype == np.float32 else np.uint64), b.view(ub_t(b))
    nan = np.isnan(a) & np.isnan(b)
    return np.array_equal(ua[~nan], ub[~nan]) and np.array_equal(np.isnan(a), np.isnan(b))


def ub_t(b):
    return np.uint32 if b.dtype == np.float32 else np.uint64


def kinds(rng, dt, shape):
    yield rng.standard_normal(shape).astype(dt)
    yield (rng.standard_normal(shape) * 300).astype(dt)  # exps far below 2^-54 relative: subnormal and 0 terms
    yield rng.integers(-3, 3, shape).astype(dt)  # ties
    x = rng.standard_normal(shape).astype(dt)
    x.flat[rng.integers(0, x.size, max(1, x.size // 5))] = -np.inf
    yield x


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (60, 10), (7, 3), (5, 17), (3, 64), (2, 255), (2, 257), (1, 700),
                                   (130, 2), (40, 33)])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_log_softmax_kernels_bits_match_the_libm_rule(dt, shape, n_threads):
    rng = np.random.default_rng(shape[0] * 1000 + shape[1])
    for x in kinds(rng, dt, shape):
        y = np.empty_like(x)
        softmax.log_softmax_forward(y, x, n_threads)
        assert same_bits(y, ref_log_softmax(x))
        dy = rng.standard_normal(shape).astype(dt)
        for yy in (y, x):
            dx = np.empty_like(x)
            softmax.log_softmax_backward(dx, dy, yy, n_threads)
            assert same_bits(dx, ref_log_softmax_backward(dy, yy))


def test_exp_lanes_give_libm_bits():
    """dy = (1, 0, 0, ...) per row makes dx = 0 - exp(y) exactly past column 0: the kernel's exp against math.exp
    (libm's), over the range, subnormal results, tiny inputs, the +-512 edge of glibc's fast path, inf, NaN."""
    rng = np.random.default_rng(21)
    y = np.concatenate([rng.uniform(-746, 710, 20000), rng.uniform(-40, 0, 20000), rng.uniform(-746, -708, 4000),
                        rng.uniform(-1, 1, 4000) * 2.0 ** rng.integers(-1074, -40, 4000),
                        rng.uniform(-512.5, -511.5, 2000), rng.uniform(511.5, 512.5, 2000),
                        [0.0, -0.0, np.inf, -np.inf, np.nan, 709.78, 709.79, -745.13, -745.14, 512.0, -512.0,
                         2.0 ** -54, -(2.0 ** -54), 2.0 ** -55, 5e-324]])
    y = np.concatenate([y, np.zeros(-y.size % 63)]).reshape(-1, 63)
    y = np.hstack([np.zeros((y.shape[0], 1)), y])
    dy = np.zeros_like(y)
    dy[:, 0] = 1.0
    dx = np.empty_like(y)
    softmax.log_softmax_backward(dx, dy, y, 1)
    want = np.array([[0.0 - exp(v) for v in row[1:]] for row in y.tolist()])  # NOTE: 0 - 0 is +0, -0 is not
    assert same_bits(np.ascontiguousarray(dx[:, 1:]), want)


def test_sigmoid_float32_bits_match_the_polynomial_rule():
    """A dense sweep: every 61st float32 bit pattern (70M values: both signs, < -88, > 88, subnormals, inf, NaN),
    at an odd length so that 16-lane blocks, an 8-lane block and the scalar tail all run."""
    step = 61
    for lo in range(0, 1 << 32, 1 << 28):
        x = np.arange(lo, lo + (1 << 28), step, dtype=np.uint64).astype(np.uint32).view(np.float32)
        x = x[: (x.size // 16 - 1) * 16 + 13]  # blocks of 16, then 8 + 5
        y = np.empty_like(x)
        elementwise.sigmoid_forward(y, x, 1)
        assert same_bits(y, ref_sigmoid_float32(x)), hex(lo)


@pytest.mark.parametrize("n", list(range(1, 40)) + [127, 128, 129])
def test_sigmoid_float32_every_length(n):
    rng = np.random.default_rng(n)
    x = np.concatenate([rng.standard_normal(n) * 30, [np.inf, -np.inf, 0.0, -0.0, 90.0, -90.0]]).astype(np.float32)
    x = rng.permutation(x)[:n]
    y = np.empty_like(x)
    elementwise.sigmoid_forward(y, x, 1)
    assert same_bits(y, ref_sigmoid_float32(x))
