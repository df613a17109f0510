"""Hostile files for the checkpoint reader and the data loaders: each must be refused fast, in little memory,
with an error naming the file.

Each hostile read runs in a child process with a wall-clock timeout and an address-space limit, so a regression
(a FIFO that blocks, /dev/zero read until memory runs out, a bomb inflated in full) fails the test instead of
hanging the suite or exhausting the machine. The child reports the exception, the seconds the call took and the
peak of Python's traced allocations (NumPy's array data included).
"""
import gzip
import json
import os
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from minigrad.app import checkpoint as ckpt_mod
from minigrad.checkpoint import load_checkpoint, remove_stale_tmp, save_checkpoint
from minigrad.data import mnist as mnist_mod
from minigrad.data import read_idx

ROOT = Path(__file__).resolve().parents[1]
GB15 = 1_500_000_000
SECONDS = 5.0  # loose bound on any refusal
PEAK = 8 << 20  # traced bytes a refusal may allocate
CHILD_LIMIT = 512 << 20  # extra address space the child may map after its imports

CHILD = r"""
import importlib, json, resource, sys, time, tracemalloc
mod, fn, arg, extra = sys.argv[1:5]
f = getattr(importlib.import_module(mod), fn)
assert importlib.import_module("minigrad").__file__.startswith(sys.argv[5]), "imported another checkout"
vm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize:")) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + int(extra), resource.RLIM_INFINITY))
tracemalloc.start()
t0 = time.perf_counter()
try:
    f(arg)
    out = {"type": None, "msg": ""}
except BaseException as e:
    out = {"type": type(e).__name__, "msg": str(e)}
out["seconds"] = time.perf_counter() - t0
out["peak"] = tracemalloc.get_traced_memory()[1]
print(json.dumps(out))
"""


def run_child(func, arg, timeout=60):
    """Call `func(arg)` (a function of minigrad given as 'module:name') in a bounded child; returns its report."""
    mod, fn = func.split(":")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    try:
        proc = subprocess.run([sys.executable, "-c", CHILD, mod, fn, str(arg), str(CHILD_LIMIT), str(ROOT)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{func}({arg}) still running after {timeout} s: it hangs")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def assert_refused(report, path, *needles, seconds=SECONDS, peak=PEAK):
    assert report["type"] == "ValueError", report
    assert str(path) in report["msg"], report
    for needle in needles:
        assert needle in report["msg"], report
    assert report["seconds"] < seconds, report
    assert report["peak"] < peak, report


def sparse(path, size, head=b""):
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(size)
    return path


def link_to_dev_zero(path):
    os.symlink("/dev/zero", path)
    return path


# --------------------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------------------

LOAD = "minigrad.checkpoint:load_checkpoint"


def small_checkpoint(path):
    save_checkpoint(path, {"w": np.arange(6, dtype=np.float32)}, {"state": {}, "param_groups": [{"lr": 0.1,
                    "params": [0]}]}, {"epoch": 1})
    return path


def test_checkpoint_linked_to_dev_zero_is_refused(tmp_path):
    path = link_to_dev_zero(tmp_path / "epoch-001.safetensors")
    assert_refused(run_child(LOAD, path), path, "/dev/zero", "character device", "expected a minigrad checkpoint")


def test_checkpoint_dev_zero_itself_is_refused():
    assert_refused(run_child(LOAD, "/dev/zero"), "/dev/zero", "character device")


def test_checkpoint_fifo_is_refused(tmp_path):
    path = tmp_path / "epoch-001.safetensors"
    os.mkfifo(path)
    assert_refused(run_child(LOAD, path), path, "FIFO")


def test_checkpoint_directory_is_refused(tmp_path):
    path = tmp_path / "epoch-001.safetensors"
    path.mkdir()
    with pytest.raises(ValueError, match="epoch-001.safetensors is a directory"):
        load_checkpoint(path)


def test_sparse_checkpoint_of_zeros_is_refused_unread(tmp_path):
    path = sparse(tmp_path / "c.safetensors", GB15)
    assert_refused(run_child(LOAD, path), path, "header is not JSON", "expected a safetensors file")


def test_valid_checkpoint_padded_to_1_5_gb_is_refused_unread(tmp_path):
    path = small_checkpoint(tmp_path / "c.safetensors")
    sparse(path, GB15, path.read_bytes())
    assert_refused(run_child(LOAD, path), path, "stray bytes")


def _rewrite_header(path, edit):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    payload = raw[8 + n:]
    payload = edit(header, payload)
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + payload)


def test_header_declaring_a_huge_tensor_is_refused_unread(tmp_path):
    path = small_checkpoint(tmp_path / "c.safetensors")

    def huge(header, payload):
        header["model.w"]["shape"] = [GB15 // 4]
        header["model.w"]["data_offsets"] = [0, GB15 // 4 * 4]
        return payload
    _rewrite_header(path, huge)
    assert_refused(run_child(LOAD, path), path, "model.w", "end by 24")


@pytest.mark.parametrize("edit, needle", [
    (lambda h, p: (h["model.w"].update(data_offsets=[0, 8]), p)[1], "needs 24 bytes"),
    (lambda h, p: (h["model.w"].update(shape=[2, -3]), p)[1], "malformed entry"),
    (lambda h, p: (h["model.w"].update(shape=[0, 2**70]), p)[1], "malformed entry"),
    (lambda h, p: (h["model.w"].update(dtype="BF16"), p)[1], "malformed entry"),
    (lambda h, p: (h["model.w"].update(shape=[3], data_offsets=[0, 12]), p)[1], "stray bytes"),
    (lambda h, p: (h.update({"model.v": {"dtype": "F32", "shape": [6], "data_offsets": [0, 24]}}), p)[1],
     "expected to start at"),
    (lambda h, p: p + b"\0", "stray bytes"),
    (lambda h, p: p[:-1], "expected to start"),
])
def test_header_and_file_size_must_agree(tmp_path, edit, needle):
    path = small_checkpoint(tmp_path / "c.safetensors")
    _rewrite_header(path, edit)
    with pytest.raises(ValueError, match="c.safetensors") as e:
        load_checkpoint(path)
    assert needle in str(e.value)


def test_header_length_beyond_the_file_or_limit_is_refused(tmp_path):
    path = tmp_path / "c.safetensors"
    path.write_bytes(struct.pack("<Q", 2**63) + b"{}")
    with pytest.raises(ValueError, match="truncated file"):
        load_checkpoint(path)
    sparse(path, ckpt_mod.MAX_HEADER_BYTES + 100, struct.pack("<Q", ckpt_mod.MAX_HEADER_BYTES + 1))
    assert_refused(run_child(LOAD, path), path, "expected at most")


def test_digest_unchanged_by_the_copy_free_hash():
    # checkpoints written before the hash stopped copying each tensor must still verify
    import hashlib
    tensors = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([True, False]),
               "c": np.array(7, np.int64), "d": np.zeros((0, 3), np.float16)}
    meta = {"format": "x", "minigrad.sha256": "ignored"}
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(json.dumps([name, tensors[name].dtype.str, list(tensors[name].shape)]).encode())
        h.update(tensors[name].tobytes())
    h.update(json.dumps(["format", "x"]).encode())
    assert ckpt_mod._digest(tensors, meta) == h.hexdigest()


def test_loaded_tensors_are_separate_aligned_writable(tmp_path):
    path = tmp_path / "c.safetensors"
    state = {"a": np.ones(3, np.bool_), "b": np.arange(5, dtype=np.float64), "c": np.array(2.5, np.float16)}
    save_checkpoint(path, state)
    m, _, _ = load_checkpoint(path)
    for k, x in m.items():
        assert x.flags.aligned and x.flags.writeable and x.base is None, k
        np.testing.assert_array_equal(x, state[k])
        assert x.dtype == state[k].dtype and x.shape == state[k].shape


# ---------------------------------------------------------------- model-only checkpoints and resuming

def test_model_only_checkpoint_refused_for_resume_with_a_clear_message(tmp_path):
    path = tmp_path / "weights.safetensors"
    save_checkpoint(path, {"w": np.ones(2)})
    m, o, e = load_checkpoint(path)  # fine as weights
    assert o is None and e is None
    with pytest.raises(ValueError, match=r"weights.safetensors: .*model-only checkpoint \(no optimizer state\)"):
        load_checkpoint(path, require_optimizer=True)
    save_checkpoint(path, {"w": np.ones(2)}, {"state": {}, "param_groups": []}, {"epoch": 1})
    with pytest.raises(ValueError, match=r"weights.safetensors: .*no 'loader', 'rng_state' in its extra state"):
        load_checkpoint(path, require_optimizer=True, require_extra=("epoch", "loader", "rng_state"))
    assert load_checkpoint(path, require_optimizer=True, require_extra=("epoch",))[2] == {"epoch": 1}


def test_optimizer_load_state_dict_of_none_says_what_it_expected():
    from minigrad.optim import SGD
    from minigrad.tensor import Tensor
    opt = SGD([Tensor(np.ones(2), requires_grad=True)], lr=0.1)
    with pytest.raises(TypeError, match="SGD.load_state_dict: state_dict must be .*saved without optimizer state"):
        opt.load_state_dict(None)


# ---------------------------------------------------------------- stale temp files of interrupted saves

KILLED_SAVE = r"""
import os, signal, sys, numpy as np
from minigrad.app import checkpoint
checkpoint.os.replace = lambda src, dst: os.kill(os.getpid(), signal.SIGKILL)  # die between write and rename
checkpoint.save_checkpoint(sys.argv[1], {"w": np.zeros(3)})
"""


def test_remove_stale_tmp_after_a_save_killed_midway(tmp_path):
    good = tmp_path / "epoch-001.safetensors"
    save_checkpoint(good, {"w": np.ones(3)})
    proc = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(tmp_path / "epoch-002.safetensors")], cwd=ROOT,
                          capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    stale = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(stale) == 1 and stale[0].name.startswith(".epoch-002.safetensors.")
    (tmp_path / "notes.tmp").write_text("not ours")  # no leading dot: not a save's temp file
    (tmp_path / ".dir.tmp").mkdir()
    os.symlink("/dev/zero", tmp_path / ".link.tmp")
    assert remove_stale_tmp(tmp_path) == sorted([stale[0], tmp_path / ".link.tmp"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [".dir.tmp", "epoch-001.safetensors", "notes.tmp"]
    np.testing.assert_array_equal(load_checkpoint(good)[0]["w"], np.ones(3))
    assert remove_stale_tmp(tmp_path) == []
    assert remove_stale_tmp(tmp_path / "missing") == []
    with pytest.raises(NotADirectoryError, match="epoch-001.safetensors"):
        remove_stale_tmp(good)


# --------------------------------------------------------------------------------------------------------
# IDX files
# --------------------------------------------------------------------------------------------------------

READ_IDX = "minigrad.data.mnist:read_idx"


def idx_header(*dims, code=0x08):
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


@pytest.mark.parametrize("name", ["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"])
def test_idx_linked_to_dev_zero_is_refused(tmp_path, name):
    path = link_to_dev_zero(tmp_path / name)
    assert_refused(run_child(READ_IDX, path), path, "character device", "expected an IDX file")


@pytest.mark.parametrize("name", ["train-labels-idx1-ubyte", "train-labels-idx1-ubyte.gz"])
def test_idx_fifo_is_refused(tmp_path, name):
    path = tmp_path / name
    os.mkfifo(path)
    assert_refused(run_child(READ_IDX, path), path, "FIFO")


def test_idx_gz_bomb_after_a_one_image_header_is_refused(tmp_path):
    # one member with the header and one image, then 1 GB of zeros in 1024 identical 1 MB members (1 MB on disk)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    member = gzip.compress(bytes(1 << 20), compresslevel=9)
    path.write_bytes(gzip.compress(idx_header(1, 28, 28) + bytes(784)) + member * 1024)
    assert path.stat().st_size < 2 << 20
    assert_refused(run_child(READ_IDX, path), path, "trailing bytes")


def test_idx_gz_declaring_more_than_it_can_inflate_is_refused(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_header(2_000_000, 28, 28) + bytes(1 << 16)))
    assert_refused(run_child(READ_IDX, path), path, "more than a gzip file")


@pytest.mark.parametrize("gz", [False, True])
def test_idx_size_product_does_not_wrap(tmp_path, gz):
    # 2**22 * 2**21 * 2**21 = 2**64: wraps to 0 in int64, so a header-only file looked complete
    raw = idx_header(4194304, 2097152, 2097152)
    path = tmp_path / ("x-idx3-ubyte" + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(raw) if gz else raw)
    with pytest.raises(ValueError, match="truncated IDX file") as e:
        read_idx(path)
    assert str(path) in str(e.value) and "(4194304, 2097152, 2097152)" in str(e.value)
    with pytest.raises(ValueError, match="truncated"):
        mnist_mod.parse_idx(raw, name="hdr")


def test_idx_empty_shape_too_large_for_numpy_is_refused(tmp_path):
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(idx_header(0, 2**32 - 1, 2**32 - 1))
    with pytest.raises(ValueError, match="x-idx3-ubyte: IDX shape .* too large"):
        read_idx(path)


def test_sparse_idx_with_a_small_header_is_refused_unread(tmp_path):
    path = sparse(tmp_path / "train-images-idx3-ubyte", GB15, idx_header(1, 28, 28))
    assert_refused(run_child(READ_IDX, path), path, "trailing bytes")
    path = sparse(tmp_path / "t10k-images-idx3-ubyte", GB15, idx_header(GB15 // 784 + 1, 28, 28))
    assert_refused(run_child(READ_IDX, path), path, "truncated")


def test_idx_big_endian_values_come_back_native_in_one_copy(tmp_path):
    x = np.arange(-5, 7, dtype=np.int32).reshape(3, 4)
    path = tmp_path / "x-idx2-int"
    path.write_bytes(idx_header(3, 4, code=0x0C) + x.astype(">i4").tobytes())
    y = read_idx(path)
    assert y.dtype == np.int32 and y.dtype.isnative and y.flags.writeable
    np.testing.assert_array_equal(y, x)


# --------------------------------------------------------------------------------------------------------
# The MNIST cache (.npz)
# --------------------------------------------------------------------------------------------------------

READ_NPZ = "minigrad.data.mnist:read_mnist_npz"


def npy_header(shape, dtype="|u1"):
    d = f"{{'descr': '{dtype}', 'fortran_order': False, 'shape': {tuple(shape)}, }}"
    d += " " * (63 - (10 + len(d)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(d)) + d.encode()


def make_zip(path, members):
    """Write a zip by hand: `members` are (name, stored bytes, method, declared size, crc), sizes as declared."""
    out, central = bytearray(), bytearray()
    for name, data, method, size, crc in members:
        name = name.encode()
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0, crc, len(data), size,
                               len(name), 0, 0, 0, 0, 0, len(out)) + name
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc, len(data), size, len(name), 0)
        out += name + data
    n = len(members)
    out += central + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(central), len(out), 0)
    Path(path).write_bytes(bytes(out))
    return Path(path)


def deflate(raw):
    c = zlib.compressobj(1, zlib.DEFLATED, -15)
    return c.compress(raw) + c.flush()


def mnist_arrays():
    shapes = mnist_mod._mnist_shapes()
    arrays = {k: np.zeros(s, np.uint8) for k, s in shapes.items()}
    for split in ("train", "test"):
        arrays[f"y_{split}"][:] = np.repeat(np.arange(10, dtype=np.uint8), mnist_mod.MNIST_LABEL_COUNTS[split])
    arrays["x_train"][1, 2, 3] = 200
    return arrays


def mnist_members(**override):
    members = []
    for key, x in mnist_arrays().items():
        raw = npy_header(x.shape) + x.tobytes()
        members.append(override.get(key) or (f"{key}.npy", deflate(raw), 8, len(raw), zlib.crc32(raw)))
    return members


@pytest.mark.parametrize("compressed", [False, True])
def test_mnist_npz_cache_round_trip(tmp_path, monkeypatch, compressed):
    monkeypatch.setenv("MINIGRAD_DATA", str(tmp_path))
    (np.savez_compressed if compressed else np.savez)(tmp_path / "mnist.npz", **mnist_arrays())
    got = mnist_mod.fetch_mnist()
    for k, x in mnist_arrays().items():
        assert got[k].dtype == np.uint8 and got[k].shape == x.shape
        np.testing.assert_array_equal(got[k], x)
    make_zip(tmp_path / "mnist.npz", mnist_members())  # the hand-made zip is a valid cache too
    np.testing.assert_array_equal(mnist_mod.fetch_mnist()["x_train"], mnist_arrays()["x_train"])


def test_mnist_npz_member_declaring_1_5_gb_is_refused_uninflated(tmp_path):
    shape = (GB15 // 784 + 1, 28, 28)
    head = npy_header(shape)
    raw = head + bytes(1 << 20)
    bomb = ("x_train.npy", deflate(raw), 8, len(head) + shape[0] * 784, zlib.crc32(raw))
    path = make_zip(tmp_path / "mnist.npz", mnist_members(x_train=bomb))
    assert_refused(run_child(READ_NPZ, path), path, f"declares uint8 {shape}", "expected uint8 (60000, 28, 28)")


def test_mnist_npz_member_with_lying_zip_size_is_refused(tmp_path):
    shape = (60000, 28, 28)
    raw = npy_header(shape) + bytes(784)
    liar = ("x_train.npy", deflate(raw), 8, GB15, zlib.crc32(raw))
    path = make_zip(tmp_path / "mnist.npz", mnist_members(x_train=liar))
    assert_refused(run_child(READ_NPZ, path), path, f"declares {GB15} bytes")


def test_mnist_npz_member_inflating_past_its_declared_size_is_bounded(tmp_path):
    # declares the right sizes but inflates to 3x as much: reading stops at the declared size, the CRC fails
    shape = (60000, 28, 28)
    raw = npy_header(shape) + bytes(3 * 60000 * 784)
    size = len(npy_header(shape)) + 60000 * 784
    liar = ("x_train.npy", deflate(raw), 8, size, zlib.crc32(raw[:size]) ^ 1)
    path = make_zip(tmp_path / "mnist.npz", mnist_members(x_train=liar))
    assert_refused(run_child(READ_NPZ, path), path, "CRC", peak=size + PEAK)


def test_mnist_npz_other_compression_methods_are_refused(tmp_path):
    raw = npy_header((60000, 28, 28)) + bytes(60000 * 784)
    import bz2
    odd = ("x_train.npy", bz2.compress(raw), 12, len(raw), zlib.crc32(raw))
    path = make_zip(tmp_path / "mnist.npz", mnist_members(x_train=odd))
    with pytest.raises(ValueError, match="compression method 12"):
        mnist_mod.read_mnist_npz(path)


@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "sparse"])
def test_mnist_npz_cache_that_is_not_a_file_is_refused(tmp_path, monkeypatch, kind):
    path = tmp_path / "mnist.npz"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev_zero":
        link_to_dev_zero(path)
    else:
        sparse(path, GB15)
    report = run_child(READ_NPZ, path)
    assert_refused(report, path, "delete it to download again")
    # and through the public entry point, without a child, for the non-blocking kinds
    if kind != "fifo":
        monkeypatch.setenv("MINIGRAD_DATA", str(tmp_path))
        with pytest.raises(ValueError, match="mnist.npz"):
            mnist_mod.MNIST()
