"""BatchNorm1d inputs of BN1D_ROWS_BYTES (4 MiB of x) or more on the general path: from 2 threads on, the statistics
go by rows (float32: thread 0's rows summed, the other threads' rows' float32 groups stored and added after;
float64: by blocks of channels) and the elementwise pass by rows, in OpenMP regions of their own (norm.pyx
_bn_forward, _bn_backward). The bits of test_batchnorm1d_bits.py's emulation at 1 and 2 threads, N odd (the threads'
rows uneven), C not a multiple of 16 (the vector tails of each row)."""
import numpy as np
import pytest

from test_batchnorm1d_bits import _check


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["normal", "large-mean"])
def test_batchnorm1d_bits_rows_pass(kind, dtype):
    n, c = 1101, 1000
    assert n * c * np.dtype(dtype).itemsize >= 4 << 20  # BN1D_ROWS_BYTES
    _check(n, c, dtype, kind, seed=n + c)


# float32's split by rows at 2 and 3 threads: N % 4 of 1, 2 and 3 (a short last group; thread edges t*N//nt rounded
# down to whole groups), C % 8 != 0 (the scalar channels of mg_col_*_partials_float), overflowing data (the stored
# groups not finite: the double fallback after the merge)
@pytest.mark.parametrize("kind", ["normal", "large-mean", "overflow"])
@pytest.mark.parametrize("n, c", [(1025, 1030), (1538, 700), (1027, 1030)], ids=["1025x1030", "1538x700", "1027x1030"])
def test_batchnorm1d_bits_rows_split(n, c, kind):
    assert n * c * 4 >= 4 << 20  # BN1D_ROWS_BYTES
    _check(n, c, np.float32, kind, seed=3 * n + c, threads=(2, 3))
