"""minigrad.vision (torchvision's counterpart): transforms against torchvision's semantics written out in NumPy
(torchvision is not a test dependency), and datasets.MNIST / FashionMNIST on small IDX files."""
import gzip
import struct

import numpy as np
import pytest

import minigrad as mg
from minigrad import Tensor
from minigrad.data import mnist as data_mnist
from minigrad.utils.data import DataLoader
from minigrad.vision import datasets, transforms


def _image(h=5, w=7, c=None, seed=0):
    shape = (h, w) if c is None else (h, w, c)
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8)


# ------------------------------------------------------------------------------------------------- transforms

def test_to_tensor():
    img = _image()
    t = transforms.ToTensor()(img)
    assert isinstance(t, Tensor) and t.dtype == np.float32 and t.shape == (1, 5, 7)
    np.testing.assert_array_equal(t.data[0], img.astype(np.float32) / np.float32(255))
    assert t.data.min() >= 0 and t.data.max() <= 1
    rgb = _image(c=3)
    t = transforms.ToTensor()(rgb)
    assert t.shape == (3, 5, 7)
    np.testing.assert_array_equal(t.data[2], rgb[:, :, 2] / np.float32(255))
    # torchvision: arrays of other dtypes are transposed, not scaled
    f = np.arange(6, dtype=np.float64).reshape(2, 3)
    assert transforms.ToTensor()(f).data.tolist() == [[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]]
    with pytest.raises(ValueError, match="2 or 3 dimensional"):
        transforms.ToTensor()(np.zeros((1, 2, 3, 4), np.uint8))
    with pytest.raises(TypeError, match="NumPy array"):
        transforms.ToTensor()(Tensor(np.zeros((2, 2))))


def test_normalize():
    x = Tensor(np.array([[[0.0, 0.5], [1.0, 0.25]], [[1.0, 0.0], [0.5, 0.5]]], np.float32))
    y = transforms.Normalize((0.5, 0.25), (0.5, 2.0))(x)
    expected = np.array([[[-1.0, 0.0], [1.0, -0.5]], [[0.375, -0.125], [0.125, 0.125]]], np.float32)
    np.testing.assert_array_equal(y.data, expected)
    assert y.dtype == np.float32 and x.data[0, 0, 0] == 0.0  # not in place
    one = transforms.Normalize((0.1307,), (0.3081,))(x)  # one value for every channel
    np.testing.assert_array_equal(one.data, (x.data - np.float32(0.1307)) / np.float32(0.3081))
    assert transforms.Normalize((0.5, 0.25), (0.5, 2.0), inplace=True)(x) is x
    np.testing.assert_array_equal(x.data, expected)
    with pytest.raises(ValueError, match="std evaluated to zero"):
        transforms.Normalize((0.0,), (0.0,))(x)
    with pytest.raises(ValueError, match="3 values for an image of 2 channels"):
        transforms.Normalize((0.1, 0.2, 0.3), (1.0,))(x)
    with pytest.raises(ValueError, match="C, H, W"):
        transforms.Normalize((0.1,), (1.0,))(Tensor(np.zeros((2, 2), np.float32)))
    with pytest.raises(TypeError, match="floating"):
        transforms.Normalize((0.1,), (1.0,))(Tensor(np.zeros((1, 2, 2), np.int64)))


def _draws(seed, *highs):
    rng = np.random.default_rng(seed)  # minigrad.manual_seed(seed) is default_rng(seed)
    return [int(rng.integers(0, h)) for h in highs]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_crop_with_padding(seed):
    img = _image(6, 8)
    mg.manual_seed(seed)
    out = transforms.RandomCrop(5, padding=2)(img)
    padded = np.zeros((10, 12), np.uint8)  # fill 0 on every side
    padded[2:8, 2:10] = img
    i, j = _draws(seed, 10 - 5 + 1, 12 - 5 + 1)
    np.testing.assert_array_equal(out, padded[i:i + 5, j:j + 5])
    # a Tensor (C, H, W), (left/right, top/bottom) padding, reflect mode, rectangular size
    t = Tensor(np.stack([img, img + 1]).astype(np.float32))
    mg.manual_seed(seed)
    out = transforms.RandomCrop((4, 9), padding=(1, 0), padding_mode="reflect")(t)
    ref = np.pad(t.data, ((0, 0), (0, 0), (1, 1)), mode="reflect")
    i, j = _draws(seed, 6 - 4 + 1, 10 - 9 + 1)
    assert isinstance(out, Tensor) and out.shape == (2, 4, 9)
    np.testing.assert_array_equal(out.data, ref[:, i:i + 4, j:j + 9])


def test_random_crop_edges():
    img = _image(4, 4)
    mg.manual_seed(0)
    state = mg.random.get_rng_state()
    np.testing.assert_array_equal(transforms.RandomCrop(4)(img), img)
    assert mg.random.get_rng_state() == state  # exactly the size: no draw
    with pytest.raises(ValueError, match="larger than the input image"):
        transforms.RandomCrop(5)(img)
    out = transforms.RandomCrop(6, pad_if_needed=True, fill=9)(img)
    assert out.shape == (6, 6) and (out == 9).sum() == 36 - 16
    # (left, top, right, bottom) padding
    mg.manual_seed(0)
    out = transforms.RandomCrop((4 + 2 + 3, 4 + 1 + 4), padding=(1, 2, 4, 3))(img)
    np.testing.assert_array_equal(out[2:6, 1:5], img)
    with pytest.raises(ValueError, match="padding"):
        transforms.RandomCrop(3, padding=(1, 2, 3))
    with pytest.raises(ValueError, match="padding_mode"):
        transforms.RandomCrop(3, padding_mode="wrap")


def test_random_horizontal_flip():
    img = _image(3, 4, c=3)
    np.testing.assert_array_equal(transforms.RandomHorizontalFlip(p=1.0)(img), img[:, ::-1])
    assert transforms.RandomHorizontalFlip(p=0.0)(img) is img
    t = Tensor(img.transpose(2, 0, 1).copy())
    np.testing.assert_array_equal(transforms.RandomHorizontalFlip(1.0)(t).data, t.data[:, :, ::-1])
    mg.manual_seed(7)
    flips = [transforms.RandomHorizontalFlip()(img) is not img for _ in range(20)]
    rng = np.random.default_rng(7)
    assert flips == [rng.random() < 0.5 for _ in range(20)]
    assert 0 < sum(flips) < 20
    with pytest.raises(ValueError, match="probability"):
        transforms.RandomHorizontalFlip(1.5)


def test_compose():
    pipe = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,)),
                               transforms.Lambda(lambda x: x * 2)])
    img = _image()
    np.testing.assert_allclose(pipe(img).data[0], ((img / np.float32(255)) - 0.5) / 0.5 * 2, rtol=1e-6)
    assert "Normalize" in repr(pipe)
    with pytest.raises(TypeError, match="transforms\\[0\\]"):
        transforms.Compose([3])


# ------------------------------------------------------------------------------------------------- datasets

def _idx(path, array, gz=False):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        raw = gzip.compress(raw)
    path.write_bytes(raw)


def _write_split(d, train, n, seed=0, gz=False):
    rng = np.random.default_rng(seed)
    images, labels = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8), rng.integers(0, 10, n).astype(np.uint8)
    prefix = "train" if train else "t10k"
    _idx(d / f"{prefix}-images-idx3-ubyte", images, gz)
    _idx(d / f"{prefix}-labels-idx1-ubyte", labels, gz)
    return images, labels


@pytest.fixture
def no_packaged_data(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGRAD_DATA", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(data_mnist, "FASHION_MNIST_DIR", str(tmp_path / "no-fashion"))


@pytest.mark.parametrize("cls", [datasets.MNIST, datasets.FashionMNIST])
def test_dataset_items_from_idx_in_root(cls, tmp_path, no_packaged_data):
    images, labels = _write_split(tmp_path, train=True, n=9)
    test_images, _ = _write_split(tmp_path, train=False, n=4, seed=1)
    ds = cls(tmp_path)
    assert len(ds) == 9 and ds.train and len(cls(tmp_path, train=False)) == 4
    img, target = ds[3]
    assert isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.shape == (28, 28)
    assert type(target) is int and target == labels[3]
    np.testing.assert_array_equal(img, images[3])
    assert isinstance(ds.data, Tensor) and ds.data.dtype == np.uint8 and ds.data.shape == (9, 28, 28)
    assert ds.targets.dtype == np.int64 and ds.targets.data.tolist() == labels.tolist()
    assert len(ds.classes) == 10 and ds.class_to_idx[ds.classes[4]] == 4
    np.testing.assert_array_equal(cls(tmp_path, False)[0][0], test_images[0])


def test_dataset_transforms_and_torchvision_layout(tmp_path, no_packaged_data):
    images, labels = _write_split(tmp_path / "MNIST" / "raw", train=True, n=10, gz=True)
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    ds = datasets.MNIST(str(tmp_path), train=True, download=False, transform=tf, target_transform=lambda t: t + 100)
    img, target = ds[2]
    assert isinstance(img, Tensor) and img.dtype == np.float32 and img.shape == (1, 28, 28)
    expected = (images[2].astype(np.float32) / np.float32(255) - np.float32(0.1307)) / np.float32(0.3081)
    np.testing.assert_array_equal(img.data[0], expected)
    assert target == labels[2] + 100
    # the loader's batched path (ToTensor + Normalize on all items at once) gives the per-item values
    ds.target_transform = None
    assert ds.arrays() is not None
    xb, yb = next(iter(DataLoader(ds, batch_size=10)))
    per_item = np.stack([ds[i][0].data for i in range(10)])
    np.testing.assert_array_equal(xb.data, per_item)
    assert xb.dtype == np.float32 and yb.data.tolist() == labels.tolist()
    ds.transform = transforms.Compose([transforms.RandomCrop(28, padding=2), transforms.ToTensor()])
    assert ds.arrays() is None  # random transforms run item by item
    xb, _ = next(iter(DataLoader(ds, batch_size=4)))
    assert xb.shape == (4, 1, 28, 28)


@pytest.mark.parametrize("cls", [datasets.MNIST, datasets.FashionMNIST])
def test_dataset_not_found(cls, tmp_path, no_packaged_data):
    with pytest.raises(RuntimeError, match="^Dataset not found. You can use download=True to download it$"):
        cls(tmp_path)
    _write_split(tmp_path, train=True, n=3)
    with pytest.raises(RuntimeError, match="Dataset not found"):
        cls(tmp_path, train=False)  # the test split is missing


def test_mnist_download_uses_the_package_cache(tmp_path, no_packaged_data, monkeypatch):
    calls = []
    fake = {"x_train": np.zeros((3, 28, 28), np.uint8), "y_train": np.array([1, 2, 3], np.uint8),
            "x_test": np.ones((2, 28, 28), np.uint8), "y_test": np.array([4, 5], np.uint8)}
    monkeypatch.setattr(data_mnist, "fetch_mnist", lambda: calls.append(1) or fake)
    with pytest.raises(RuntimeError, match="Dataset not found"):
        datasets.MNIST(tmp_path)
    assert calls == []
    ds = datasets.MNIST(tmp_path, train=False, download=True)
    assert calls == [1] and len(ds) == 2 and ds[1][1] == 5
    # a cache already there is used without download=True, as torchvision uses data already downloaded
    (tmp_path / "empty-cache").mkdir()
    (tmp_path / "empty-cache" / "mnist.npz").write_bytes(b"")
    assert len(datasets.MNIST(tmp_path)) == 3


def test_fashion_download_without_the_debian_package_says_how(tmp_path, no_packaged_data):
    with pytest.raises(RuntimeError, match="apt-get install dataset-fashion-mnist"):
        datasets.FashionMNIST(tmp_path, download=True)
