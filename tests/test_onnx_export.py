"""minigrad.onnx.export (issue 19): every layer kind and every model-zoo model exports, passes onnx.checker, and
onnxruntime's output on two batch sizes equals minigrad's eval output (float32 tolerance), with batch norm folded
and not; the model's modes are restored; unexportable ops and bad arguments fail with a message naming them.

Skipped when onnx or onnxruntime is not installed, unless MINIGRAD_EXPECT_ONNX=1 (set by .ci/run) says they must
run.
"""
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.models import MODELS, build_model
from minigrad.nn.utils import fuse_model

ROOT = Path(__file__).resolve().parent.parent
EXPECT_ONNX = os.environ.get("MINIGRAD_EXPECT_ONNX", "") not in ("", "0")


@pytest.fixture
def ort():
    missing = [p for p in ("onnx", "onnxruntime") if importlib.util.find_spec(p) is None]
    if missing:
        why = f"{' and '.join(missing)} not installed (pip install -e '.[onnx]')"
        if EXPECT_ONNX:
            pytest.fail(f"MINIGRAD_EXPECT_ONNX=1 but {why}")
        pytest.skip(why)
    import onnxruntime

    return onnxruntime


def _randomize(model, seed=0):
    """Parameters and running statistics away from their initial values (a BN at its init is the identity)."""
    rng = np.random.default_rng(seed)
    for name, p in model.named_parameters():
        p.data[...] += (0.3 * rng.standard_normal(p.shape)).astype(p.dtype)
    for name, b in model.named_buffers():
        if b is None or b.data.dtype.kind != "f":
            continue
        if name.endswith("running_var"):
            b.data[...] = rng.uniform(0.5, 2.0, b.shape)
        elif name.endswith("running_mean"):
            b.data[...] = 0.3 * rng.standard_normal(b.shape)
    return model


def _modes(model):
    return [m.training for m in model.modules()]


def _check(ort, model, shape, tmp_path, fold, dtype=np.float32, batches=(2, 5), rtol=1e-5, **kwargs):
    """Export with an example batch of 3; run the file on ``batches``; compare with the eval-mode model."""
    import onnx

    path = tmp_path / "model.onnx"
    modes, state = _modes(model), {k: v.copy() for k, v in model.state_dict().items()}
    rng = np.random.default_rng(1)
    proto = mg.onnx.export(model, mg.Tensor(rng.standard_normal((3,) + shape).astype(dtype)), str(path),
                           fold_batch_norm=fold, **kwargs)
    assert _modes(model) == modes
    assert all(np.array_equal(v, model.state_dict()[k]) for k, v in state.items())
    loaded = onnx.load(str(path))
    onnx.checker.check_model(loaded, full_check=True)
    assert loaded.ir_version == 8 and loaded.opset_import[0].version == 17 or "opset" in kwargs
    assert proto.SerializeToString() == loaded.SerializeToString()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    was = _modes(model)
    model.eval()
    try:
        for n in batches:
            x = rng.standard_normal((n,) + shape).astype(dtype)
            (got,) = session.run(None, {"input": x})
            with mg.no_grad():
                want = model(mg.Tensor(x)).data
            assert got.dtype == dtype and got.shape == want.shape
            scale = max(1.0, float(np.abs(want).max()))
            np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale)
    finally:
        for m, t in zip(model.modules(), was):
            object.__setattr__(m, "training", t)
    return loaded


class Residual(nn.Module):
    """A user's block: Tensor ops between modules, scalars on both sides."""

    def __init__(self, d):
        super().__init__()
        self.fc = nn.Linear(d, d)

    def forward(self, x):
        y = 2.0 - self.fc(x) * 0.5
        return (x + y / 3.0).relu() - (-x).sigmoid() + x.reshape(x.shape[0], -1).tanh()


LAYERS = {
    # name: (model builder, per-sample input shape)
    "linear": (lambda: nn.Linear(6, 4), (6,)),
    "linear-nobias-3d": (lambda: nn.Linear(6, 4, bias=False), (5, 6)),
    "linear-bn1d": (lambda: nn.Sequential(nn.Linear(6, 4, bias=False), nn.BatchNorm1d(4)), (6,)),
    "conv": (lambda: nn.Conv2d(3, 4, 3), (3, 7, 9)),
    "conv-groups-stride-pad-dil": (lambda: nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(2, 1), dilation=2,
                                                     groups=2, bias=False), (4, 9, 11)),
    "conv-bn-relu": (lambda: nn.Sequential(nn.Conv2d(4, 6, 3, padding=1, groups=2, bias=False), nn.BatchNorm2d(6),
                                           nn.ReLU()), (4, 5, 6)),
    "conv-bias-bn": (lambda: nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)), (3, 5, 5)),
    "conv-relu-inplace": (lambda: nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(inplace=True)), (3, 7, 8)),
    "linear-bn-relu": (lambda: nn.Sequential(nn.Linear(6, 4, bias=False), nn.BatchNorm1d(4), nn.ReLU()), (6,)),
    # the fused modules themselves (nn.intrinsic), exported with and without folding
    "intrinsic-conv-relu": (lambda: fuse_model(_randomize(nn.Sequential(
        nn.Conv2d(4, 6, 3, padding=1, groups=2, bias=False), nn.BatchNorm2d(6), nn.ReLU()))), (4, 5, 6)),
    "intrinsic-linear-relu": (lambda: nn.Sequential(nn.intrinsic.LinearReLU(nn.Linear(6, 4)), nn.Linear(4, 2)),
                              (6,)),
    "maxpool": (lambda: nn.MaxPool2d(3, 2, 1), (2, 9, 8)),
    "avgpool": (lambda: nn.AvgPool2d(3, 2, 1), (2, 9, 8)),
    "avgpool-exclude-pad": (lambda: nn.AvgPool2d((3, 2), 1, 1, count_include_pad=False), (2, 7, 6)),
    "adaptive-global": (lambda: nn.AdaptiveAvgPool2d(1), (3, 5, 7)),
    "adaptive-2x2": (lambda: nn.AdaptiveAvgPool2d(2), (3, 6, 8)),
    "relu": (lambda: nn.ReLU(), (7,)),
    "leaky-relu": (lambda: nn.LeakyReLU(0.2), (7,)),
    "elu": (lambda: nn.ELU(0.7), (7,)),
    "silu": (lambda: nn.SiLU(), (7,)),
    "sigmoid": (lambda: nn.Sigmoid(), (7,)),
    "tanh": (lambda: nn.Tanh(), (7,)),
    "gelu": (lambda: nn.GELU(), (7,)),
    "gelu-tanh": (lambda: nn.GELU("tanh"), (7,)),
    "softmax": (lambda: nn.Softmax(dim=1), (7, 3)),
    "log-softmax": (lambda: nn.LogSoftmax(dim=-1), (7, 3)),
    "flatten": (lambda: nn.Flatten(), (2, 3, 4)),
    "flatten-2": (lambda: nn.Flatten(2), (2, 3, 4)),
    "dropout-identity": (lambda: nn.Sequential(nn.Dropout(0.3), nn.Dropout2d(0.5), nn.Identity(), nn.Tanh()),
                         (2, 3, 4)),
    "batchnorm1d": (lambda: nn.BatchNorm1d(5), (5,)),
    "batchnorm1d-3d": (lambda: nn.BatchNorm1d(5), (5, 4)),
    "batchnorm2d-noaffine": (lambda: nn.BatchNorm2d(3, affine=False, eps=1e-3), (3, 4, 5)),
    "batchnorm3d": (lambda: nn.BatchNorm3d(2), (2, 3, 4, 2)),
    "bn-relu-fused-path": (lambda: nn.Sequential(nn.BatchNorm2d(3), nn.ReLU()), (3, 4, 5)),
    "layernorm": (lambda: nn.LayerNorm((4, 5)), (3, 4, 5)),
    "layernorm-nobias": (lambda: nn.LayerNorm(5, bias=False), (3, 5)),
    "layernorm-noaffine": (lambda: nn.LayerNorm(5, elementwise_affine=False), (5,)),
    "instancenorm": (lambda: nn.InstanceNorm2d(3, affine=True), (3, 4, 5)),
    "instancenorm-running": (lambda: nn.InstanceNorm2d(3, track_running_stats=True), (3, 4, 5)),
    "groupnorm": (lambda: nn.GroupNorm(2, 6), (6, 3, 4)),
    "groupnorm-noaffine": (lambda: nn.GroupNorm(3, 6, affine=False), (6, 5)),
    "rmsnorm": (lambda: nn.RMSNorm((4, 5)), (3, 4, 5)),
    "rmsnorm-eps": (lambda: nn.RMSNorm(5, eps=1e-3, elementwise_affine=False), (5,)),
    "batchrenorm2d": (lambda: nn.BatchRenorm2d(3), (3, 4, 5)),
    "conv-batchrenorm": (lambda: nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchRenorm2d(3)), (2, 5, 5)),
    "frn-tlu": (lambda: nn.Sequential(nn.FilterResponseNorm2d(3), nn.TLU(3)), (3, 4, 5)),
    "frn-learnable-eps": (lambda: nn.FilterResponseNorm2d(3, eps=1e-3, learnable_eps=True), (3, 4, 5)),
    "evonorm-b0": (lambda: nn.EvoNorm2d(4), (4, 3, 5)),
    "evonorm-s0": (lambda: nn.EvoNorm2d(4, version="S0", num_groups=2), (4, 3, 5)),
    "frozen-bn": (lambda: nn.FrozenBatchNorm2d(3), (3, 4, 5)),
    "residual-tensor-ops": (lambda: Residual(6), (6,)),
}


@pytest.mark.parametrize("fold", [True, False], ids=["fold", "nofold"])
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_exports_and_matches(ort, tmp_path, name, fold):
    build, shape = LAYERS[name]
    mg.manual_seed(0)
    model = _randomize(build())
    model.train()
    _check(ort, model, shape, tmp_path, fold)


def test_folding_removes_the_batch_norms(ort, tmp_path):
    model = _randomize(build_model("lenet-bn"))
    ops = {fold: [n.op_type for n in _check(ort, model, (1, 28, 28), tmp_path, fold).graph.node]
           for fold in (True, False)}
    assert "BatchNormalization" not in ops[True] and ops[False].count("BatchNormalization") == 4
    assert ops[True].count("Conv") == 2 and ops[True].count("Gemm") == 3


@pytest.mark.parametrize("name,ops", [
    ("conv-bn-relu", ["Conv", "Relu"]), ("conv-relu-inplace", ["Conv", "Relu"]), ("linear-bn-relu", ["Gemm", "Relu"]),
    ("intrinsic-conv-relu", ["Conv", "Relu"]), ("intrinsic-linear-relu", ["Gemm", "Relu", "Gemm"])])
@pytest.mark.parametrize("fold", [True, False], ids=["fold", "nofold"])
def test_fused_relu_exports_as_the_layer_then_relu(ort, tmp_path, name, ops, fold):
    build, shape = LAYERS[name]
    mg.manual_seed(0)
    model = _randomize(build())
    got = [n.op_type for n in _check(ort, model, shape, tmp_path, fold).graph.node if n.op_type != "Identity"]
    if fold or "bn" not in name:  # nn.intrinsic's ConvReLU2d / LinearReLU: the layer's node, then Relu
        assert got == ops
    else:
        assert got == ops[:1] + ["BatchNormalization"] + ops[1:]


@pytest.mark.parametrize("fold", [True, False], ids=["fold", "nofold"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_zoo_exports_and_matches(ort, tmp_path, name, fold):
    mg.manual_seed(0)
    model = _randomize(build_model(name), seed=2)
    model.train()
    _check(ort, model, (1, 28, 28), tmp_path, fold)
    assert model.training


def test_mixed_modes_restored(ort, tmp_path):
    model = _randomize(build_model("resnet-tiny"))
    model.train()
    model[3].eval()
    model[4].bn1.eval()
    _check(ort, model, (1, 28, 28), tmp_path, True)


@pytest.mark.parametrize("name", ["mlp-bn", "instancenorm", "groupnorm", "elu", "adaptive-global", "layernorm",
                                  "rmsnorm", "evonorm-s0", "evonorm-b0", "frn-tlu", "batchnorm2d-noaffine",
                                  "linear-bn-relu", "intrinsic-linear-relu"])
def test_float64_where_onnxruntime_has_the_kernels(ort, tmp_path, name):
    mg.manual_seed(0)
    if name == "mlp-bn":
        model, shape = build_model(name, dtype=np.float64), (1, 28, 28)
    else:
        build, shape = LAYERS[name]
        model = build().double()
    _randomize(model)
    _check(ort, model, shape, tmp_path, True, dtype=np.float64, rtol=1e-10)


def test_float64_conv_is_written_with_a_warning(ort, tmp_path):
    model = build_model("lenet", dtype=np.float64)
    with pytest.warns(UserWarning, match="onnxruntime cannot run this model.*Conv"):
        mg.onnx.export(model, mg.randn(2, 1, 28, 28, dtype=np.float64), tmp_path / "m.onnx")
    assert (tmp_path / "m.onnx").is_file()


@pytest.mark.parametrize("opset", [18, 21])
def test_later_opsets(ort, tmp_path, opset):
    import onnx

    model = _randomize(nn.Sequential(nn.Conv2d(2, 4, 3), nn.GroupNorm(2, 4), nn.SiLU(), nn.RMSNorm(3),
                                     nn.EvoNorm2d(4, "S0", 2), nn.Flatten(), nn.LayerNorm(36)))
    proto = _check(ort, model, (2, 5, 5), tmp_path, True, opset=opset)
    assert proto.opset_import[0].version == opset
    assert proto.ir_version == onnx.helper.find_min_ir_version_for(proto.opset_import)


def test_fixed_batch(ort, tmp_path):
    model = _randomize(build_model("mlp"))
    proto = _check(ort, model, (1, 28, 28), tmp_path, True, batches=(3,), dynamic_batch=False)
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 3
    dyn = _check(ort, model, (1, 28, 28), tmp_path, True)
    assert dyn.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert dyn.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"


# ------------------------------------------------------------------ what cannot be exported


class Exp(nn.Module):
    def forward(self, x):
        return x.log()


class ThroughData(nn.Module):
    def forward(self, x):
        return mg.Tensor(x.data * 2) + 0.0 * x  # .data: a constant to a tracer


@pytest.mark.parametrize("model, match", [
    (lambda: nn.Sequential(nn.Conv2d(2, 4, 1), nn.DecorrelatedBatchNorm2d(4)),
     r"DecorrelatedBatchNorm2d at '1'.*no converter"),
    (lambda: nn.Sequential(nn.Linear(3, 3), Exp()), r"Exp at '1'.*the op 'Log'"),
    (lambda: nn.Sequential(nn.BatchNorm2d(2, track_running_stats=False)), r"BatchNorm2d at '0'.*running statistics"),
    (lambda: nn.Sequential(nn.Linear(3, 3), ThroughData()), r"onnxruntime fails on an input of shape \(4, 3\).*"
                                                            r"did not record"),
])
def test_unexportable_model_names_the_op(ort, tmp_path, model, match):
    m = model()
    x = mg.randn(3, 2, 4, 4) if "2d" in repr(m).lower() else mg.randn(3, 3)
    with pytest.raises(mg.onnx.ExportError, match=match):
        mg.onnx.export(m, x, tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())  # nothing written
    assert m.training


def test_value_baked_from_the_example_is_caught(ort, tmp_path):
    """A fixed batch: the constant has the right shape, and the second input (reversed, halved) shows it."""
    m = nn.Sequential(nn.Linear(3, 3), ThroughData())
    with pytest.raises(mg.onnx.ExportError, match=r"onnxruntime's output differs .* did not record"):
        mg.onnx.export(m, mg.randn(3, 3), tmp_path / "m.onnx", dynamic_batch=False)
    assert not list(tmp_path.iterdir())  # nothing written
    assert m.training


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(path="{tmp}/missing/m.onnx"), ValueError, r"export: path '.*missing/m.onnx': its directory .* not exist"),
    (dict(path="{tmp}"), ValueError, r"export: path .* is a directory"),
    (dict(path=None), TypeError, r"export: path must be"),
    (dict(model="model"), TypeError, r"export: model must be a minigrad.nn.Module"),
    (dict(example_input=[[1.0, 2.0]]), TypeError, r"export: example_input must be a minigrad.Tensor"),
    (dict(example_input=mg.Tensor(np.ones((0, 2), np.float32))), ValueError, r"example_input must have a batch"),
    (dict(example_input=mg.Tensor(np.ones((2, 2), np.int64))), TypeError, r"example_input must be float32"),
    (dict(opset=16), ValueError, r"export: opset must be an int in \[17, 21\]"),
    (dict(fold_batch_norm=1), TypeError, r"export: fold_batch_norm must be a bool"),
    (dict(dynamic_batch="yes"), TypeError, r"export: dynamic_batch must be a bool"),
])
def test_bad_arguments(tmp_path, kwargs, err, match):
    args = dict(model=nn.Linear(2, 2), example_input=mg.randn(2, 2), path=str(tmp_path / "m.onnx"))
    args.update({k: v.format(tmp=tmp_path) if isinstance(v, str) and k == "path" else v for k, v in kwargs.items()})
    with pytest.raises(err, match=match) as info:
        mg.onnx.export(**args)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------ packaging


def _run(code):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_import_does_not_import_onnx():
    run = _run("import sys, minigrad, minigrad.onnx, minigrad.nn.utils.fusion\n"
               "assert not {'onnx', 'onnxruntime'} & set(sys.modules), 'onnx imported'")
    assert run.returncode == 0, run.stderr


def test_missing_onnx_says_how_to_install():
    run = _run("import sys; sys.modules['onnx'] = None\n"
               "import minigrad as mg, minigrad.onnx\n"
               "try:\n"
               "    mg.onnx.export(mg.nn.Linear(2, 2), mg.randn(1, 2), 'm.onnx')\n"
               "except ImportError as e:\n"
               "    print(e)\n")
    assert run.returncode == 0, run.stderr
    assert "pip install minigrad[onnx]" in run.stdout


def test_readme_example_runs(ort, tmp_path):
    text = (ROOT / "README.md").read_text()
    marker = text.index("<!-- readme:onnx-example -->")
    m = re.compile(r"```python\n(.*?)\n```", re.S).search(text, marker)
    assert m and text[marker:m.start()].strip() == "<!-- readme:onnx-example -->"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", m.group(1)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "lenet-bn.onnx").is_file()
    assert "max abs difference" in run.stdout


# ------------------------------------------------------------------ command line


def _cli(argv):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "minigrad", *argv], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def lenet_checkpoint(tmp_path):
    from minigrad.checkpoint import save_checkpoint

    model = _randomize(build_model("lenet-bn"))
    path = tmp_path / "epoch-001.safetensors"
    save_checkpoint(path, model.state_dict(), extra={"model": "lenet-bn"})
    return path, model


def test_cli_export(ort, tmp_path, lenet_checkpoint):
    ckpt, model = lenet_checkpoint
    out = tmp_path / "m.onnx"
    run = _cli(["export", "--checkpoint", str(ckpt), "--out", str(out)])
    assert run.returncode == 0, run.stderr
    assert "lenet-bn" in run.stdout and f"wrote {out}" in run.stdout
    x = np.random.default_rng(0).standard_normal((4, 1, 28, 28)).astype(np.float32)
    (got,) = ort.InferenceSession(str(out)).run(None, {"input": x})
    want = model.eval()(mg.Tensor(x)).data
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(want).max())))


@pytest.mark.parametrize("argv, match", [
    (["--checkpoint", "{tmp}/none.safetensors", "--out", "{tmp}/m.onnx"], "--checkpoint .*none.safetensors: no such"),
    (["--checkpoint", "{ckpt}", "--out", "{tmp}/no/m.onnx"], "--out .*: the directory .* does not exist"),
    (["--checkpoint", "{ckpt}", "--out", "{tmp}"], "--out .*: is a directory"),
    (["--checkpoint", "{ckpt}", "--out", "{tmp}/m.onnx", "--opset", "9"], r"--opset must be in \[17, 21\], got 9"),
    (["--checkpoint", "{ckpt}", "--out", "{tmp}/m.onnx", "--model", "mlp"], "does not hold a mlp model"),
    (["--out", "{tmp}/m.onnx"], "the following arguments are required: --checkpoint"),
])
def test_cli_export_mistakes_are_one_line(tmp_path, lenet_checkpoint, argv, match):
    run = _cli(["export"] + [a.format(tmp=tmp_path, ckpt=lenet_checkpoint[0]) for a in argv])
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and re.search(match, run.stderr), run.stderr
    assert not (tmp_path / "m.onnx").exists()
