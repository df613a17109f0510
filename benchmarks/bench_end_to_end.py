"""Training steps per second, minigrad (default backend) against the same models in PyTorch and, when installed,
JAX with the step jitted (an optional reference column, skipped without jax).

Models (``minigrad.models``): "mlp" and "mlp-bn" (the batch-norm paper's MNIST net, 784-100-100-100-10 sigmoid,
batch 60), "lenet-bn" (small CNN with BatchNorm2d/1d, batch 64) on 1x28x28 input, and "resnet20" (He et al.'s
CIFAR ResNet-20, batch 32) on 3x32x32 input. One step: zero_grad, forward, cross entropy, backward,
SGD(lr=0.01, momentum=0.9) update; "minigrad-compiled" is the same step under ``minigrad.compile`` (the
loss read after the call, outside the compiled step). Synthetic input (fixed random images and labels). The torch and JAX models
have the same structure and start from minigrad's weights (``state_dict`` keys match; JAX's twin is built by
``_jax_models.py``), and the first loss is checked to be sane before timing. ``extra_info['steps_per_s']`` =
1 / median. JAX at 1 thread: ``run_all.py`` starts its process with
``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false`` under ``taskset -c 0``.
"""
import copy

import numpy as np
import pytest

from conftest import pin_threads, record, torch_or_skip

CASES = [("mlp", 60), ("mlp-bn", 60), ("lenet-bn", 64), ("resnet20", 32)]
IN_CHANNELS = {"resnet20": 3}
SIZE = {"resnet20": 32}
LR, MOMENTUM = 0.01, 0.9


def _data(batch, model):
    rng = np.random.default_rng(0)
    side = SIZE.get(model, 28)
    x = rng.random((batch, IN_CHANNELS.get(model, 1), side, side), dtype=np.float32)
    y = rng.integers(0, 10, batch).astype(np.int64)
    return x, y


def sgd_step(net, opt, loss_fn, xt, yt, compile_with=None):
    """step() -> float: one training step (zero_grad, loss, backward, opt.step) of ``net`` on (xt, yt), the loss read
    back as a float; ``compile_with`` (minigrad.compile) records it on the first call and replays it after.
    ``step.fn`` is the (compiled) train step, ``step.net`` the model."""
    def train_step(xt, yt):
        opt.zero_grad()
        loss = loss_fn(net(xt), yt)
        loss.backward()
        opt.step()
        return loss
    if compile_with is not None:  # recorded on the first call, checked on the second, then replayed
        train_step = compile_with(train_step)

    def step():
        return float(train_step(xt, yt).item())
    step.fn, step.net = train_step, net
    return step


def _torch_model(torch, name):
    nn = torch.nn
    if name.startswith("mlp"):
        bn = name == "mlp-bn"
        layers, width = [nn.Flatten()], 784
        for _ in range(3):
            layers.append(nn.Linear(width, 100, bias=not bn))
            if bn:
                layers.append(nn.BatchNorm1d(100))
            layers.append(nn.Sigmoid())
            width = 100
        layers.append(nn.Linear(width, 10))
        return nn.Sequential(*layers)
    if name == "resnet20":
        return _torch_resnet20(torch)
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2, bias=False), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120, bias=False), nn.BatchNorm1d(120), nn.ReLU(),
        nn.Linear(120, 84, bias=False), nn.BatchNorm1d(84), nn.ReLU(), nn.Linear(84, 10))


def _torch_resnet20(torch):
    nn = torch.nn

    class BasicBlock(nn.Module):  # minigrad.app.models.BasicBlock, same attribute names
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.shortcut = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                             if stride != 1 or cin != cout else nn.Identity())

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(y)) + self.shortcut(x))

    layers, width = [nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU()], 16
    for stage, out in enumerate((16, 32, 64)):
        for block in range(3):
            layers.append(BasicBlock(width, out, 2 if stage > 0 and block == 0 else 1))
            width = out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


@pytest.mark.parametrize("model,batch", CASES, ids=[f"{m}-b{b}" for m, b in CASES])
@pytest.mark.parametrize("framework", ["minigrad", "minigrad-compiled", "torch", "jax"])
def test_train_step(benchmark, framework, model, batch, threads):
    models = pytest.importorskip("minigrad.models")
    import minigrad as mg
    import minigrad.nn.functional as F
    from minigrad.optim import SGD

    mg.manual_seed(0)
    net = models.build_model(model, in_channels=IN_CHANNELS.get(model, 1))
    x, y = _data(batch, model)
    restore = None
    if framework.startswith("minigrad"):
        xt, yt = mg.Tensor(x), mg.Tensor(y)
        opt = SGD(net.parameters(), lr=LR, momentum=MOMENTUM)
        step = sgd_step(net, opt, F.cross_entropy, xt, yt, mg.compile if framework == "minigrad-compiled" else None)
        backend = mg.get_backend()
    elif framework == "torch":
        torch = torch_or_skip()
        restore = pin_threads(threads)
        tnet = _torch_model(torch, model)
        tnet.load_state_dict({k: torch.from_numpy(v) for k, v in net.state_dict().items()})
        tnet.train()
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        opt = torch.optim.SGD(tnet.parameters(), lr=LR, momentum=MOMENTUM)

        def step():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(tnet(xt), yt)
            loss.backward()
            opt.step()
            return float(loss.item())
        backend = "torch"
    else:
        pytest.importorskip("jax")
        import jax

        from _jax_models import jax_train_step

        jstep, carry = jax_train_step(net, LR, MOMENTUM)
        xt, yt = jax.device_put(x), jax.device_put(y.astype(np.int32))
        state = [carry]

        def step():
            loss, state[0] = jstep(state[0], xt, yt)
            return float(loss)  # waits for the result, as .item() does
        backend = "jax"
        # the twin is checked against minigrad in this process (no second OpenMP runtime here): two steps' losses
        want = [], copy.deepcopy(net)
        mopt = SGD(want[1].parameters(), lr=LR, momentum=MOMENTUM)
        for _ in range(2):
            mopt.zero_grad()
            mloss = F.cross_entropy(want[1](mg.Tensor(x)), mg.Tensor(y))
            mloss.backward()
            mopt.step()
            want[0].append(float(mloss.item()))
        jcarry = state[0]
        got = [step(), step()]
        state[0] = jcarry
        np.testing.assert_allclose(got, want[0], rtol=1e-4, err_msg=f"jax twin of {model}")
    try:
        # check (outside the timing): a sane first loss near ln(10) from the shared initial weights; torch is not
        # imported into the minigrad process to compare directly (two OpenMP runtimes, see run_all.py)
        first = step()
        assert np.isfinite(first) and 1.0 < first < 4.0, f"{framework} {model}: first loss {first}"
        benchmark.group = f"train step {model} b{batch} threads{threads}"
        benchmark(step)
        info = record(benchmark, op="train step", backend=backend, shape=x.shape, threads=threads,
                      dtype=np.float32, nbytes=None, factor=None, norm=model, framework=framework,
                      first_loss=first)
        t = benchmark.stats.stats.median if benchmark.stats is not None else None
        info["steps_per_s"] = 1.0 / t if t else None
    finally:
        if restore:
            restore()
