"""Batch norm's blocks of channels (norm.pyx ``_bn_n_blocks``): with the short-run rule's block size set small
(``_set_bn_blocks``), small shapes take many blocks, every block edge inside a channel row; the Cython kernels must
give the bits of one block (the rule switched off) at 1 and 2 threads, and every backend must agree with the
reference on the same shapes. The shapes cover each S path of the channel sums (S < 8, short runs, float32 lanes
MG_SHORT_RUN <= S < MG_LANE_RUN, long runs), odd C (uneven blocks, the float64 channel pairs), S == 1 and ghost
batch norm's chunks; (5, 9, 196) the float32 lanes' fused rows (mg_channel_lane_sums_affine_float: blocks of unequal
width side by side, S not a multiple of 32) across ghost batch norm's chunks, the last one shorter; (3, 10, 130)
float64's fused rows (mg_channel_shifted_sums_affine_double, mg_channel_dy_sums_affine2_double) at the rule of
3-channel minimum runs: blocks 2, 3, 2, 3 channels wide, each beside a wider and a narrower one, S not a multiple of 8.
"""
import numpy as np
import pytest

from conftest import BACKENDS, DTYPES
from minigrad import kernels
from minigrad.kernels import reference

EPS = 1e-5
TOL = {np.float32: 1e-5, np.float64: 1e-10}
# (N, C, S)
SHAPES = [(5, 7, 9), (3, 17, 33), (4, 40, 8), (2, 9, 130), (3, 5, 600), (6, 11, 3), (9, 13, 1), (1, 3, 2),
          (5, 9, 196), (3, 10, 130)]
# (l2_bytes, min_run_bytes): blocks of one channel, of a few channels, runs widened past the block size; 4 KiB:
# at (5, 9, 196) float32 ghost batch norm's last chunk (one sample) takes wider blocks than the others (two samples),
# so that at 2 threads a thread's channels change from chunk to chunk; 3 KiB minimum runs: float64 (3, 10, 130)'s
# blocks of 2, 3, 2, 3 channels (forward and backward alike: the minimum run does not depend on the arrays read);
# (1 KiB, 0, 1): ghost batch norm's chunks at 1 KiB, batch norm over the whole batch (BN_BATCH_L2_BYTES) one channel
RULES = [(1, 0), (1 << 10, 0), (512, 256), (4 << 10, 0), (1, 3 << 10), (1 << 10, 0, 1)]
CHUNK = 2


def _arrays(shape, dtype):
    rng = np.random.default_rng(sum(shape))
    N, C, S = shape
    x = (0.5 + 2 * rng.standard_normal(shape)).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    w, b = (1 + 0.5 * rng.standard_normal(C)).astype(dtype), (0.5 * rng.standard_normal(C)).astype(dtype)
    rm, rv = rng.standard_normal(C).astype(dtype), (0.5 + rng.random(C)).astype(dtype)
    return x, dy, w, b, rm, rv


def _run(k, shape, dtype, *extra):
    """Every kernel that goes through the blocks, into NaN-filled outputs: {name: array}."""
    x, dy, w, b, rm, rv = _arrays(shape, dtype)
    N, C, S = shape
    G = -(-N // CHUNK)
    nan = lambda *s, dt=np.float64: np.full(s, np.nan, dt)  # noqa: E731
    out = {}
    y, mean, rstd = nan(N, C, S, dt=dtype), nan(C), nan(C)
    k.batch_norm_forward(y, mean, rstd, x, w, b, EPS, *extra)
    out.update(y=y, mean=mean, rstd=rstd)
    dx, dw, db = nan(N, C, S, dt=dtype), nan(C, dt=dtype), nan(C, dt=dtype)
    k.batch_norm_backward(dx, dw, db, dy, x, mean, rstd, w, *extra)
    out.update(dx=dx, dweight=dw, dbias=db)
    ry, rmean, rrstd, r, d = nan(N, C, S, dt=dtype), nan(C), nan(C), nan(C), nan(C)
    k.batch_renorm_forward(ry, rmean, rrstd, r, d, x, w, b, rm, rv, 3.0, 5.0, EPS, *extra)
    out.update(renorm_y=ry, renorm_mean=rmean, renorm_rstd=rrstd, r=r, d=d)
    gy, gmean, grstd = nan(N, C, S, dt=dtype), nan(G, C), nan(G, C)
    k.ghost_batch_norm_forward(gy, gmean, grstd, x, w, b, CHUNK, EPS, *extra)
    gdx, gdw, gdb = nan(N, C, S, dt=dtype), nan(C, dt=dtype), nan(C, dt=dtype)
    k.ghost_batch_norm_backward(gdx, gdw, gdb, dy, x, gmean, grstd, w, CHUNK, *extra)
    out.update(ghost_y=gy, ghost_mean=gmean, ghost_rstd=grstd, ghost_dx=gdx, ghost_dweight=gdw, ghost_dbias=gdb)
    return out


@pytest.mark.parametrize("shape", SHAPES, ids=["x".join(map(str, s)) for s in SHAPES])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
def test_blocks_agree_with_the_reference(name, dtype, shape):
    """The many-block shapes on every backend, against the reference (Cython with the small blocks)."""
    restore = None
    if name == "cython":
        from minigrad._ext import norm
        restore = norm._set_bn_blocks(*RULES[0])
    try:
        got = _run(kernels.load(name), shape, dtype)
    finally:
        if restore:
            norm._set_bn_blocks(*restore)
    want = _run(reference, shape, dtype)
    for what, w in want.items():
        scale = max(float(np.max(np.abs(w))), 1.0)
        np.testing.assert_allclose(got[what], w, rtol=TOL[dtype], atol=TOL[dtype] * scale, err_msg=what)


@pytest.mark.skipif("cython" not in BACKENDS, reason="Cython extensions not built")
@pytest.mark.parametrize("shape", SHAPES, ids=["x".join(map(str, s)) for s in SHAPES])
@pytest.mark.parametrize("dtype", DTYPES)
def test_blocks_keep_the_bits_of_one_block(dtype, shape):
    from minigrad._ext import norm

    default = norm._set_bn_blocks(0, 0)
    try:
        want = _run(norm, shape, dtype, 1)  # one block
        for rule in RULES + [default]:
            norm._set_bn_blocks(*rule)
            for n_threads in (1, 2):
                got = _run(norm, shape, dtype, n_threads)
                for what, w in want.items():
                    assert np.array_equal(got[what], w, equal_nan=True), f"{what}, rule {rule}, {n_threads} threads"
    finally:
        norm._set_bn_blocks(*default)


@pytest.mark.skipif("cython" not in BACKENDS, reason="Cython extensions not built")
@pytest.mark.parametrize("shape", SHAPES + [(64, 24, 1)], ids=["x".join(map(str, s)) for s in SHAPES + [(64, 24, 1)]])
@pytest.mark.parametrize("dtype", DTYPES)
def test_pipelined_statistics_keep_the_bits_of_batch_norm1d(dtype, shape):
    """Batch Renorm's statistics go through the pipelined blocks (_bn_forward_walk) on every S; batch norm's, for
    S == 1 in cache, through mg_bn1d_forward, written separately with the same operations per channel: the same bits
    (S == 1 must keep its groups of rows, not be summed row by row as the pipeline does for S > 1)."""
    from minigrad._ext import norm

    x, _, w, b, rm, rv = _arrays(shape, dtype)
    N, C, S = shape
    for rule in RULES + [None]:
        restore = norm._set_bn_blocks(*rule) if rule else None
        try:
            for n_threads in (1, 2):
                y, mean, rstd = np.empty_like(x), np.empty(C), np.empty(C)
                norm.batch_norm_forward(y, mean, rstd, x, w, b, EPS, n_threads)
                ry, rmean, rrstd, r, d = np.empty_like(x), np.empty(C), np.empty(C), np.empty(C), np.empty(C)
                norm.batch_renorm_forward(ry, rmean, rrstd, r, d, x, w, b, rm, rv, 3.0, 5.0, EPS, n_threads)
                assert np.array_equal(rmean, mean) and np.array_equal(rrstd, rstd), f"rule {rule}, {n_threads} threads"
        finally:
            if restore:
                norm._set_bn_blocks(*restore)


@pytest.mark.skipif("cython" not in BACKENDS, reason="Cython extensions not built")
@pytest.mark.parametrize("dtype", DTYPES)
def test_two_threads_keep_their_own_scratch(dtype):
    """Ghost batch norm at 2 threads where the threads' channels move from chunk to chunk: 32 chunks of 4 samples
    cut into 3 blocks of 4 channels (thread 0 takes channels [0, 4), thread 1 [4, 12), twice the work, so thread 0
    runs ahead), then a last chunk of one sample cut into 2 blocks (thread 0 [0, 6)). Thread 0 then sums channels
    4 and 5 while thread 1 still walks them in the earlier chunks: with one scratch between them (s1, s2, K, lanes,
    coefficients are indexed by channel) each would overwrite the other's. The bits of 1 thread, and the reference,
    each call several times (a race: the window depends on how far thread 0 gets ahead).
    NOTE: since session 34 _bn_n_blocks rounds the blocks up to a multiple of the team (here 4 blocks of 3 channels,
    then 2 of 6), so at 2 threads each thread keeps channels [6t, 6t + 6) in every chunk and the overlap above no
    longer arises; the test still checks the 2-thread bits against 1 thread's over many calls."""
    from minigrad._ext import norm

    chunk, C, S = 4, 12, 1024
    shape = (32 * chunk + 1, C, S)
    x, dy, w, b, _, _ = _arrays(shape, dtype)
    G = -(-shape[0] // chunk)
    itemsize = np.dtype(dtype).itemsize

    def ghost(n_threads):
        y, mean, rstd = np.empty_like(x), np.empty((G, C)), np.empty((G, C))
        norm._set_bn_blocks(4 * chunk * S * itemsize, 0)  # 4 channels of x per block, all 12 at one sample
        norm.ghost_batch_norm_forward(y, mean, rstd, x, w, b, chunk, EPS, n_threads)
        dx, dw, db = np.empty_like(x), np.empty(C, dtype), np.empty(C, dtype)
        norm._set_bn_blocks(2 * 4 * chunk * S * itemsize, 0)  # the same blocks over dy and x
        norm.ghost_batch_norm_backward(dx, dw, db, dy, x, mean, rstd, w, chunk, n_threads)
        return dict(y=y, mean=mean, rstd=rstd, dx=dx, dweight=dw, dbias=db)

    default = norm._set_bn_blocks(0, 0)
    try:
        want = ghost(1)
        ref = {}
        rmean, rrstd = np.empty((G, C)), np.empty((G, C))
        ref["y"] = np.empty_like(x)
        reference.ghost_batch_norm_forward(ref["y"], rmean, rrstd, x, w, b, chunk, EPS)
        ref["dx"], ref["dweight"], ref["dbias"] = np.empty_like(x), np.empty(C, dtype), np.empty(C, dtype)
        reference.ghost_batch_norm_backward(ref["dx"], ref["dweight"], ref["dbias"], dy, x, rmean, rrstd, w, chunk)
        for what, r in ref.items():
            scale = max(float(np.max(np.abs(r))), 1.0)
            np.testing.assert_allclose(want[what], r, rtol=TOL[dtype], atol=TOL[dtype] * scale, err_msg=what)
        for i in range(16):
            got = ghost(2)
            for what, v in want.items():
                assert np.array_equal(got[what], v, equal_nan=True), f"{what}, call {i}"
    finally:
        norm._set_bn_blocks(*default)


@pytest.mark.skipif("cython" not in BACKENDS, reason="Cython extensions not built")
def test_whole_batch_blocks_follow_the_l2(tmp_path):
    """Batch norm over the whole batch takes 1 MiB blocks on a core with under 1 MiB of L2, 256 KiB otherwise and
    where the L2 is unknown (BN_BATCH_L2_BYTES, _bn_block_bytes); the L2 read from a sysfs tree whose index
    directories are not in level order."""
    from minigrad._ext import norm

    assert norm._bn_block_bytes(512 << 10) == 1 << 20
    assert norm._bn_block_bytes(256 << 10) == 1 << 20
    for l2 in (1 << 20, 2 << 20, 0):
        assert norm._bn_block_bytes(l2) == 256 << 10, l2
    assert [norm._cache_bytes(t) for t in ("512K\n", "2048K", "1M", "96")] == [512 << 10, 2 << 20, 1 << 20, 96]
    for name, level, size in (("index0", 1, "48K"), ("index1", 3, "32768K"), ("index2", 2, "1280K")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "level").write_text(f"{level}\n")
        (tmp_path / name / "size").write_text(size + "\n")
    assert norm._l2_bytes(str(tmp_path)) == 1280 << 10
    assert norm._l2_bytes(str(tmp_path / "missing")) == 0
    # this machine's default, and the setter's restore of all three values
    default = norm._set_bn_blocks(1, 2, 3)
    try:
        assert default == (256 << 10, 4 << 10, norm._bn_block_bytes(norm._l2_bytes()))
        assert norm._set_bn_blocks(5, 6) == (1, 2, 3)
        assert norm._set_bn_blocks(*default) == (5, 6, 5)
    finally:
        norm._set_bn_blocks(*default)
