"""BatchNorm1d inputs of BN1D_ROWS_BYTES (4 MiB of x) or more on the general path: from 2 threads on, the statistics
go by blocks of channels and the elementwise pass by rows, in an OpenMP region of its own (norm.pyx _bn_forward,
_bn_backward). The bits of test_batchnorm1d_bits.py's emulation at 1 and 2 threads, N odd (the threads' rows
uneven), C not a multiple of 16 (the vector tails of each row)."""
import numpy as np
import pytest

from test_batchnorm1d_bits import _check


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["normal", "large-mean"])
def test_batchnorm1d_bits_rows_pass(kind, dtype):
    n, c = 1101, 1000
    assert n * c * np.dtype(dtype).itemsize >= 4 << 20  # BN1D_ROWS_BYTES
    _check(n, c, dtype, kind, seed=n + c)
