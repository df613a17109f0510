"""Inference latency of the model zoo in eval mode, batch 1 and batch 64, at 1 thread: minigrad unfused
("minigrad"), minigrad with its batch norms folded and each ReLU after a conv or linear layer run as its epilogue
(``minigrad.nn.utils.fusion.fuse_model``: ``nn.intrinsic.ConvReLU2d`` / ``LinearReLU``, "minigrad-fused"),
the fused model's forward under ``minigrad.compile`` ("minigrad-fused-compiled": recorded once, then replayed
without per-op Python dispatch), PyTorch in eval mode with its own ``torch.nn.utils.fusion.fuse_conv_bn_eval`` / ``fuse_linear_bn_eval`` under
``torch.inference_mode()`` ("torch"), and onnxruntime on the file written by ``minigrad.onnx.export``
("onnxruntime", a session with ``intra_op_num_threads = inter_op_num_threads = 1``).

Models (``minigrad.models.build_model``): mlp, mlp-bn, lenet, lenet-bn, resnet-tiny on 1x28x28 input and resnet20
on 3x32x32, float32, with non-trivial batch-norm state (random running mean, running variance, weight and bias,
fixed seed) so that folding has something to fold. The torch twin is built module by module from the minigrad
model (same ``state_dict`` keys) and loads its weights. Each framework's output is checked, once and outside the
timing, against minigrad's unfused eval output of the same input. minigrad runs under ``no_grad`` (as
``minigrad.app`` evaluates). ``extra_info``: ``model``, ``batch``, ``framework`` and ``per_sample_us``.

One process per framework (``run_all.py``'s "inference" steps), as for the training steps; only at 1 thread (the
``threads`` fixture is narrowed to 1 here).

    python benchmarks/run_all.py --only inference --threads 1 --repeat 3 --out docs/inference.json
    python scripts/inference_table.py docs/inference.json      # README's table
"""
import os
import tempfile
from collections import OrderedDict

import numpy as np
import pytest

from conftest import pin_threads, record, torch_or_skip

MODELS = ["mlp", "mlp-bn", "lenet", "lenet-bn", "resnet-tiny", "resnet20"]
BATCHES = [1, 64]
FRAMEWORKS = ["minigrad", "minigrad-fused", "minigrad-fused-compiled", "torch", "onnxruntime"]
IN_CHANNELS = {"resnet20": 3}
SIZE = {"resnet20": 32}

_CACHE = {}


def _input(model, batch):
    side = SIZE.get(model, 28)
    rng = np.random.default_rng(1)
    return rng.standard_normal((batch, IN_CHANNELS.get(model, 1), side, side)).astype(np.float32)


def minigrad_model(name):
    """The zoo model ``name`` in eval mode with non-trivial batch-norm state (fixed seeds)."""
    if name not in _CACHE:
        import minigrad as mg
        from minigrad.models import build_model
        from minigrad.nn.norm import _BatchNorm

        mg.manual_seed(0)
        model = build_model(name, in_channels=IN_CHANNELS.get(name, 1))
        rng = np.random.default_rng(0)
        for m in model.modules():
            if isinstance(m, _BatchNorm):
                c = m.num_features
                m.running_mean.data[...] = rng.normal(0.0, 0.2, c)
                m.running_var.data[...] = rng.uniform(0.5, 2.0, c)
                m.weight.data[...] = rng.uniform(0.5, 1.5, c)
                m.bias.data[...] = rng.normal(0.0, 0.2, c)
        _CACHE[name] = model.eval()
    return _CACHE[name]


def reference(name, x):
    """minigrad's unfused eval output (float64 array)."""
    import minigrad as mg

    with mg.no_grad():
        return np.asarray(minigrad_model(name)(mg.Tensor(x)).data, np.float64)


# ------------------------------------------------------------------ the torch twin

def _torch_basic_block(torch):
    nn = torch.nn

    class BasicBlock(nn.Module):  # minigrad.app.models.BasicBlock, same attribute names and forward
        def __init__(self, conv1, bn1, conv2, bn2, shortcut):
            super().__init__()
            self.conv1, self.bn1, self.conv2, self.bn2, self.shortcut = conv1, bn1, conv2, bn2, shortcut

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(y)) + self.shortcut(x))

    return BasicBlock


def torch_twin(torch, module):
    """The PyTorch module of the same structure as the minigrad ``module`` (the zoo's layers), weights loaded."""
    import minigrad.nn as mnn
    from minigrad.models import BasicBlock

    nn = torch.nn
    kind = type(module)
    if kind is mnn.Sequential:
        out = nn.Sequential(OrderedDict((k, torch_twin(torch, m)) for k, m in module._modules.items()))
    elif kind is BasicBlock:
        out = _torch_basic_block(torch)(*(torch_twin(torch, getattr(module, a))
                                          for a in ("conv1", "bn1", "conv2", "bn2", "shortcut")))
    elif kind is mnn.Linear:
        out = nn.Linear(module.in_features, module.out_features, bias=module.bias is not None)
    elif kind is mnn.Conv2d:
        out = nn.Conv2d(module.in_channels, module.out_channels, module.kernel_size, module.stride, module.padding,
                        module.dilation, module.groups, bias=module.bias is not None)
    elif kind in (mnn.BatchNorm1d, mnn.BatchNorm2d):
        out = getattr(nn, kind.__name__)(module.num_features, eps=module.eps, momentum=module.momentum)
    elif kind is mnn.MaxPool2d:
        out = nn.MaxPool2d(module.kernel_size, module.stride, module.padding, module.dilation,
                           ceil_mode=module.ceil_mode)
    elif kind is mnn.AdaptiveAvgPool2d:
        out = nn.AdaptiveAvgPool2d(module.output_size)
    elif kind is mnn.Flatten:
        out = nn.Flatten(module.start_dim, module.end_dim)
    elif kind in (mnn.ReLU, mnn.Sigmoid, mnn.Identity):
        out = getattr(nn, kind.__name__)()
    else:
        raise TypeError(f"no torch twin for {kind.__name__}")
    own = {k: torch.from_numpy(np.array(v)) for k, v in module.state_dict().items()}
    if own:
        out.load_state_dict(own)
    return out.eval()


def torch_fuse(torch, module):
    """Fold, in place, each BatchNorm that follows a Conv2d/Linear (in a Sequential or a BasicBlock) with torch's
    own ``fuse_conv_bn_eval`` / ``fuse_linear_bn_eval``; the BatchNorm becomes ``nn.Identity``."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

    nn = torch.nn

    def fused(a, b):
        if isinstance(b, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if isinstance(a, nn.Conv2d):
                return fuse_conv_bn_eval(a, b)
            if isinstance(a, nn.Linear):
                return fuse_linear_bn_eval(a, b)
        return None

    for child in module.children():
        torch_fuse(torch, child)
    if isinstance(module, nn.Sequential):
        pairs = list(zip(module._modules, list(module._modules)[1:]))
    else:
        pairs = [("conv1", "bn1"), ("conv2", "bn2")] if hasattr(module, "bn1") else []
    for a, b in pairs:
        f = fused(module._modules[a], module._modules[b])
        if f is not None:
            module._modules[a], module._modules[b] = f, nn.Identity()
    return module.eval()


# ------------------------------------------------------------------ the runners

def _minigrad_runner(name, x, fused, compiled=False, relu=True):
    """``relu=False``: the batch norms folded, the ReLUs left as modules (no ConvReLU2d / LinearReLU epilogue)."""
    import minigrad as mg
    from minigrad.nn.utils.fusion import fuse_model

    model = minigrad_model(name)
    if fused:
        model = fuse_model(model, relu=relu)
    xt = mg.Tensor(x)
    forward = mg.compile(model.__call__) if compiled else model

    def run():
        with mg.no_grad():
            return forward(xt).data
    if compiled:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("error")  # NOTE: a fallback to eager would time the wrong thing
            for _ in range(3):  # record, check, replay
                run()
    return run, mg.get_backend()


def _torch_runner(name, x):
    torch = torch_or_skip()
    net = torch_fuse(torch, torch_twin(torch, minigrad_model(name)))
    xt = torch.from_numpy(x)

    def run():
        with torch.inference_mode():
            return net(xt)
    return (lambda: run().numpy()), "torch"


def _onnxruntime_runner(name, x):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    import minigrad as mg
    import minigrad.onnx

    key = ("onnx", name)
    if key not in _CACHE:
        tmp = _CACHE.setdefault("tmpdir", tempfile.TemporaryDirectory(prefix="minigrad-bench-onnx-"))
        path = os.path.join(tmp.name, f"{name}.onnx")
        minigrad.onnx.export(minigrad_model(name), mg.Tensor(x[:2] if len(x) > 1 else x), path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        _CACHE[key] = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    sess = _CACHE[key]
    feed = {sess.get_inputs()[0].name: x}

    def run():
        return sess.run(None, feed)[0]
    return run, "onnxruntime"


@pytest.mark.parametrize("threads", [1], indirect=True, ids=["threads1"])
@pytest.mark.parametrize("model,batch", [(m, b) for m in MODELS for b in BATCHES],
                         ids=[f"{m}-b{b}" for m in MODELS for b in BATCHES])
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_inference(benchmark, framework, model, batch, threads):
    pytest.importorskip("minigrad.models")
    x = _input(model, batch)
    want = reference(model, x)
    restore = None
    if framework.startswith("minigrad"):
        run, backend = _minigrad_runner(model, x, framework != "minigrad", framework.endswith("compiled"))
    elif framework == "torch":
        run, backend = _torch_runner(model, x)
        restore = pin_threads(threads)
    else:
        run, backend = _onnxruntime_runner(model, x)
    try:
        got = run()  # the check, outside the timing (and a warm-up)
        np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=1e-4, atol=1e-4,
                                   err_msg=f"{framework} {model} batch {batch} against minigrad's eval output")
        benchmark.group = f"inference {model} b{batch} threads{threads}"
        benchmark(run)
        info = record(benchmark, op="inference latency", backend=backend, shape=x.shape, threads=threads,
                      dtype=np.float32, nbytes=None, factor=None, norm=model, framework=framework,
                      model=model, batch=batch)
        t = benchmark.stats.stats.median if benchmark.stats is not None else None
        info["per_sample_us"] = t / batch * 1e6 if t else None
    finally:
        if restore:
            restore()
