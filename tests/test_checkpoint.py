"""Tests for minigrad.checkpoint: round trip, atomic writes, refusal of damaged or foreign files."""
import json
import os
import pickle
import struct

import numpy as np
import pytest
from safetensors.numpy import save_file

from minigrad.app import checkpoint as ckpt_mod
from minigrad.checkpoint import load_checkpoint, save_checkpoint


def model_state():
    rng = np.random.default_rng(0)
    return {
        "fc1.weight": rng.standard_normal((4, 3)).astype(np.float32),
        "fc1.bias": np.zeros(4, np.float32),
        "bn.running_mean": rng.standard_normal(4),  # float64
        "bn.num_batches_tracked": np.array(7, np.int64),
        "emb.weight": rng.standard_normal((5, 2)).astype(np.float16),
        "mask": np.array([True, False]),
        "empty": np.zeros((0, 3), np.float32),
        "transposed": np.arange(12, dtype=np.int32).reshape(3, 4).T,  # non-contiguous
    }


def optimizer_state():
    return {
        "state": {
            0: {"momentum_buffer": np.ones((4, 3), np.float32), "step": 3},
            1: {"exp_avg": np.full(4, 0.5, np.float32), "exp_avg_sq": np.arange(4.0), "step": np.int64(3)},
        },
        "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "weight_decay": 0.0, "nesterov": False,
                          "params": [0, 1], "name": None}],
    }


def extra():
    return {"epoch": 4, "best_acc": 0.987, "rng": {"bit_generator": "PCG64", "state": {"state": 2**100 + 3,
            "inc": 12345}}, "history": [1.5, 0.7, float("inf")], "loader": {"epoch": 5, "seed": 2**62}}


def assert_same(a, b):
    assert type(a) is type(b) or (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)), (a, b)
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    else:
        assert a == b


def test_round_trip(tmp_path):
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, model_state(), optimizer_state(), extra())
    m, o, e = load_checkpoint(path)
    assert_same(m, model_state())
    want = optimizer_state()
    want["state"][1]["step"] = 3  # NumPy scalars come back as Python numbers
    assert_same(o, want)
    assert_same(e, extra())
    assert list(m) == list(model_state())  # key order kept
    assert all(x.flags.writeable for x in m.values())


def test_round_trip_without_optimizer_and_extra(tmp_path):
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, {"w": np.arange(3.0)})
    m, o, e = load_checkpoint(path)
    assert o is None and e is None and list(m) == ["w"]
    save_checkpoint(path, {})
    assert load_checkpoint(path) == ({}, None, None)


def test_tensor_values_are_accepted(tmp_path):
    from minigrad.tensor import Tensor
    path = tmp_path / "t.safetensors"
    save_checkpoint(path, {"w": Tensor(np.ones(2, np.float32))}, {"state": {0: {"buf": Tensor(np.zeros(2))}}})
    m, o, _ = load_checkpoint(path)
    np.testing.assert_array_equal(m["w"], np.ones(2, np.float32))
    np.testing.assert_array_equal(o["state"][0]["buf"], np.zeros(2))


def test_file_is_plain_safetensors(tmp_path):
    from safetensors import safe_open
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, model_state(), optimizer_state(), extra())
    with safe_open(str(path), framework="np") as f:
        keys = set(f.keys())
        meta = f.metadata()
    assert "model.fc1.weight" in keys and "optim.state.0.momentum_buffer" in keys
    assert json.loads(meta["minigrad.extra"])["epoch"] == 4
    assert len(meta["minigrad.sha256"]) == 64


def test_atomic_write_leaves_no_temp_files(tmp_path):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, model_state(), optimizer_state())
    save_checkpoint(path, {"w": np.ones(3)}, extra={"epoch": 2})  # overwrite
    assert os.listdir(tmp_path) == ["c.safetensors"]
    assert load_checkpoint(path)[2] == {"epoch": 2}


def test_failed_write_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, {"w": np.ones(3)}, extra={"epoch": 1})

    def crash(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(ckpt_mod.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"w": np.zeros(3)}, extra={"epoch": 2})
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["c.safetensors"]
    assert load_checkpoint(path)[2] == {"epoch": 1}


def test_unstorable_values_rejected(tmp_path):
    with pytest.raises(TypeError):
        save_checkpoint(tmp_path / "a", {"w": [1, 2]})
    with pytest.raises(TypeError):
        save_checkpoint(tmp_path / "b", {"w": np.ones(2)}, extra={"f": object()})
    with pytest.raises(TypeError):
        save_checkpoint(tmp_path / "c", {"w": np.ones(2, np.complex64)})
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("keep", [0, 5, 8, 100, -1])
def test_truncated_file_refused(tmp_path, keep):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, model_state(), optimizer_state(), extra())
    raw = path.read_bytes()
    path.write_bytes(raw[:keep] if keep >= 0 else raw[:-1])
    with pytest.raises(ValueError, match="c.safetensors"):
        load_checkpoint(path)


def test_every_flipped_byte_is_refused(tmp_path):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, {"w": np.arange(6, dtype=np.float32).reshape(2, 3)},
                    {"state": {0: {"step": 3}}, "param_groups": [{"lr": 0.1}]}, {"epoch": 1})
    raw = path.read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:8])
    # Every byte of the tensor payload, and a sample of header bytes (some header flips are harmless JSON
    # whitespace or padding: those leave the content intact, so we require either refusal or same content).
    for pos in list(range(8 + header_len, len(raw))) + list(range(0, 8 + header_len, 7)):
        bad = bytearray(raw)
        bad[pos] ^= 0x10
        path.write_bytes(bytes(bad))
        try:
            m, o, e = load_checkpoint(path)
        except ValueError as err:
            assert "c.safetensors" in str(err)
            continue
        assert pos < 8 + header_len, f"flip at payload byte {pos} went unnoticed"
        np.testing.assert_array_equal(m["w"], np.arange(6, dtype=np.float32).reshape(2, 3))
        assert o == {"state": {0: {"step": 3}}, "param_groups": [{"lr": 0.1}]} and e == {"epoch": 1}


def test_flipped_metadata_value_is_refused(tmp_path):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, {"w": np.ones(2)}, {"param_groups": [{"lr": 0.125}]})
    raw = path.read_bytes()
    path.write_bytes(raw.replace(b"0.125", b"0.925"))
    with pytest.raises(ValueError, match="sha256"):
        load_checkpoint(path)


class Boom:
    def __reduce__(self):
        return (open, (os.environ["BOOM_MARKER"], "w"))


def test_pickle_file_is_not_executed(tmp_path, monkeypatch):
    marker = tmp_path / "executed"
    monkeypatch.setenv("BOOM_MARKER", str(marker))
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps({"model": Boom()}))
    with pytest.raises(ValueError, match="evil.safetensors"):
        load_checkpoint(path)
    assert not marker.exists()


def test_foreign_safetensors_and_pickled_metadata_refused(tmp_path, monkeypatch):
    marker = tmp_path / "executed"
    monkeypatch.setenv("BOOM_MARKER", str(marker))
    path = tmp_path / "foreign.safetensors"
    save_file({"w": np.ones(2)}, str(path), metadata={"minigrad.extra": pickle.dumps(Boom()).hex()})
    with pytest.raises(ValueError, match="not a minigrad checkpoint"):
        load_checkpoint(path)
    assert not marker.exists()


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "nope.safetensors")
