"""minigrad.save / minigrad.load: state dicts round-trip exactly through one safetensors file (paths and binary
file objects), training resumes bit for bit from them, other tools' safetensors files load, nothing is pickled,
and a file that is not one is refused before its payload is read."""
import io
import json
import math
import os
import struct
from collections import OrderedDict

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F
from minigrad.optim import SGD, Adam, AdamW
from minigrad.optim.lr_scheduler import OneCycleLR, StepLR


def model():
    mg.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))


def batch(seed):
    rng = np.random.default_rng(seed)
    return mg.Tensor(rng.standard_normal((8, 1, 8, 8)).astype(np.float32)), mg.Tensor(rng.integers(0, 10, 8))


def train(m, opt, steps, start=0, sched=None):
    for s in range(start, start + steps):
        x, y = batch(s)
        loss = F.cross_entropy(m(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()


def assert_same(a, b, where="obj"):
    """Equal values of the same types, keys, key order and dtypes, recursively."""
    assert type(a) is type(b), (where, type(a), type(b))
    if isinstance(a, dict):
        assert list(a) == list(b), where
        assert [type(k) for k in a] == [type(k) for k in b], where
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, mg.Tensor):
        assert a.requires_grad == b.requires_grad, where
        assert_same(a.data, b.data, where)
    elif isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and np.shape(a) == np.shape(b), where
        assert np.array_equal(a, b, equal_nan=True), where
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), where
    else:
        assert a == b, where
        if isinstance(a, float):
            assert math.copysign(1, a) == math.copysign(1, b), where  # -0.0 stays -0.0


@pytest.mark.parametrize("make_opt", [lambda p: SGD(p, lr=0.1, momentum=0.9, nesterov=True),
                                      lambda p: Adam(p, lr=1e-2, betas=(0.8, 0.99)),
                                      lambda p: AdamW(p, lr=1e-2, weight_decay=0.1)],
                         ids=["sgd", "adam", "adamw"])
def test_module_and_optimizer_round_trip_and_resume_bit_for_bit(tmp_path, make_opt):
    m = model()
    opt = make_opt(m.parameters())
    sched = StepLR(opt, step_size=2, gamma=0.5)
    train(m, opt, 3, sched=sched)
    ckpt = {"model": m.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "step": 3}
    mg.save(ckpt, tmp_path / "ckpt.safetensors")
    back = mg.load(tmp_path / "ckpt.safetensors")
    assert_same(ckpt, back)
    assert isinstance(back["model"], OrderedDict)
    assert all(isinstance(k, int) for k in back["optimizer"]["state"])

    train(m, opt, 4, start=3, sched=sched)  # the uninterrupted run
    m2 = model()
    opt2 = make_opt(m2.parameters())
    sched2 = StepLR(opt2, step_size=2, gamma=0.5)
    m2.load_state_dict(back["model"])
    opt2.load_state_dict(back["optimizer"])
    sched2.load_state_dict(back["scheduler"])
    train(m2, opt2, 4, start=back["step"], sched=sched2)
    for (k, a), b in zip(m.state_dict().items(), m2.state_dict().values()):
        assert np.array_equal(a, b), k


def test_one_cycle_scheduler_state_round_trips():
    m = model()
    opt = SGD(m.parameters(), lr=0.1, momentum=0.9)
    sched = OneCycleLR(opt, max_lr=0.5, total_steps=20)
    for _ in range(5):
        sched.step()
    buf = io.BytesIO()
    mg.save(sched.state_dict(), buf)
    buf.seek(0)
    assert_same(sched.state_dict(), mg.load(buf))


def test_every_state_dict_leaf_round_trips(tmp_path):
    obj = {
        "ints": [0, -1, 2 ** 62, True, False], "floats": [0.5, -0.0, float("inf"), float("-inf"), float("nan")],
        "str": "héllo ∇ \n \"quoted\"", "none": None, "empty": {}, "empty_list": [], "tuple": (1, (2.0, "x"), None),
        "nested": {"a": [{"b": np.arange(3)}]}, "int_keys": {0: "zero", 10: "ten"}, "odd_keys": {1.5: 1, None: 2,
                                                                                                   True: 3},
        "scalars": [np.float32(0.25), np.int64(-7), np.float64(np.nan), np.bool_(True), np.uint8(255),
                    np.float16(1.5)],
        "arrays": [np.zeros((0, 3), np.float32), np.array(3.5), np.array([True, False]),
                   np.arange(12, dtype=np.int32).reshape(3, 4)[:, ::2],  # not contiguous
                   np.arange(4, dtype=">f8"),  # big-endian
                   np.full((2, 2), np.nan, np.float64), np.arange(3, dtype=np.float16)],
        "tensors": [mg.Tensor(np.ones(3, np.float64), requires_grad=True), mg.Tensor(np.arange(3)),
                    nn.Parameter(np.zeros(2, np.float32)), mg.Tensor(np.zeros((), np.float32))],
        "tags_as_keys": {"dict": 1, "array": "x", "tuple": [2]},  # user keys that look like the encoding's tags
        "dotted": {"a.b": np.ones(1), "a": {"b": np.zeros(1)}},  # two paths with the same dotted name
    }
    mg.save(obj, str(tmp_path / "x.st"))
    back = mg.load(str(tmp_path / "x.st"))
    # stored little-endian and contiguous: equal values and dtype kind, native byte order
    big = back["arrays"][4]
    assert big.dtype == np.float64 and np.array_equal(big, np.arange(4))
    back["arrays"][4] = obj["arrays"][4] = big
    obj["arrays"][3] = obj["arrays"][3].copy()
    assert_same(obj, back)
    assert isinstance(back["tensors"][2], nn.Parameter) and back["tensors"][2].requires_grad
    back["arrays"][0].fill(1)  # loaded arrays are writable


def test_file_objects_and_atomic_paths(tmp_path):
    state = model().state_dict()
    with open(tmp_path / "a.st", "wb") as fh:
        mg.save(state, fh)
    with open(tmp_path / "a.st", "rb") as fh:
        assert_same(state, mg.load(fh))
    buf = io.BytesIO(b"prefix")
    buf.seek(6)
    mg.save(state, buf)
    buf.seek(6)
    assert_same(state, mg.load(buf))  # reads from the current position, only what the header declares
    assert buf.read() == b""
    path = tmp_path / "b.st"
    path.write_bytes(b"old")
    mg.save({"x": np.ones(2)}, path)  # replaces an existing file, leaves no temporary file behind
    assert sorted(os.listdir(tmp_path)) == ["a.st", "b.st"]
    with pytest.raises(TypeError, match="binary mode"):
        mg.save(state, io.StringIO())
    with pytest.raises(TypeError, match="binary mode"):
        mg.load(io.StringIO("x"))


def test_refuses_what_a_state_dict_does_not_hold(tmp_path):
    with pytest.raises(TypeError, match=r"Linear at obj\['model'\].*never pickles"):
        mg.save({"model": nn.Linear(2, 2)}, tmp_path / "x")
    with pytest.raises(TypeError, match=r"function at obj\['fn'\]\[0\]"):
        mg.save({"fn": [lambda: 0]}, tmp_path / "x")
    with pytest.raises(TypeError, match="dtype object"):
        mg.save({"a": np.array([{}], dtype=object)}, tmp_path / "x")
    with pytest.raises(TypeError, match="complex"):
        mg.save({"a": np.ones(2, np.complex64)}, tmp_path / "x")
    with pytest.raises(TypeError, match="key"):
        mg.save({(1, 2): 3}, tmp_path / "x")
    assert os.listdir(tmp_path) == []  # a refused save writes nothing


def test_the_file_is_plain_safetensors_with_the_state_dict_names(tmp_path):
    from safetensors import safe_open

    m = model()
    mg.save(m.state_dict(), tmp_path / "m.safetensors")
    with safe_open(str(tmp_path / "m.safetensors"), framework="numpy") as fh:
        assert set(fh.keys()) == set(m.state_dict())
        meta = fh.metadata()
    assert meta["format"] == "minigrad.save/1"
    json.loads(meta["minigrad.structure"])
    assert b"\x80\x04" not in (tmp_path / "m.safetensors").read_bytes()[:8]  # not a pickle stream


def test_loads_a_safetensors_file_that_pytorch_wrote(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.BatchNorm1d(3))
    tm.eval()
    save_file(tm.state_dict(), str(tmp_path / "t.safetensors"))
    state = mg.load(tmp_path / "t.safetensors")
    assert all(isinstance(v, mg.Tensor) for v in state.values())
    mm = nn.Sequential(nn.Linear(5, 3), nn.BatchNorm1d(3))
    mm.load_state_dict(state)
    mm.eval()
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    np.testing.assert_allclose(mm(mg.Tensor(x)).data, tm(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


def _file(header, payload=b""):
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + payload


@pytest.mark.parametrize("data, match", [
    (b"", "ends 8 bytes"),
    (b"\x01\x00", "ends"),
    (struct.pack("<Q", 10 ** 12), "declares 1000000000000 bytes"),
    (struct.pack("<Q", 4) + b"nope", "not JSON"),
    (_file([1, 2]), "not a JSON object"),
    (_file({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4), "declares 77 bytes in a file of 73"),
    (_file({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 2 ** 40]}}), "declares"),
    (_file({"w": {"dtype": "F32", "shape": [2]}}), "data_offsets"),
    (_file({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8), "not a file"),
    (_file({"__metadata__": {"minigrad.structure": "{"}}), "not JSON"),
    (_file({"__metadata__": {"minigrad.structure": '{"array": "missing"}'}}), "does not hold"),
    (_file({"__metadata__": {"minigrad.structure": '{"evil": "os.system"}'}}), "unknown tag"),
])
def test_refuses_a_damaged_file_naming_it(tmp_path, data, match):
    path = tmp_path / "bad.st"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=match) as err:
        mg.load(path)
    assert "bad.st" in str(err.value)
    with pytest.raises(ValueError, match=match):
        mg.load(io.BytesIO(data))


def test_special_files_are_refused_without_reading(tmp_path):
    with pytest.raises(ValueError, match="not a regular file"):
        mg.load("/dev/zero")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):  # and does not hang waiting for a writer
        mg.load(fifo)
    with pytest.raises(FileNotFoundError):
        mg.load(tmp_path / "missing.st")
