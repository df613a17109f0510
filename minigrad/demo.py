"""A first run: fit a small two-layer network with autograd and print its loss falling.

    python -m minigrad.demo

No data to download: the target is a smooth function of random inputs. The hidden layer is batch-normalized, so
the run goes through the compiled normalization kernels of the active backend.
"""
import time

import numpy as np

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F


def main(steps=200, seed=0):
    mg.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((256, 8)).astype(np.float32)
    y = (np.sin(x[:, :1] * 2) + x[:, 1:2] * x[:, 2:3]).astype(np.float32)
    X, Y = mg.Tensor(x), mg.Tensor(y)
    w1 = nn.Parameter(rng.standard_normal((8, 64)).astype(np.float32) * 0.3)
    w2 = nn.Parameter(rng.standard_normal((64, 1)).astype(np.float32) * 0.1)
    b2 = nn.Parameter(np.zeros(1, np.float32))
    bn = nn.BatchNorm1d(64)
    params = [w1, w2, b2, bn.weight, bn.bias]
    lr = 0.05
    t0 = time.perf_counter()
    print(f"minigrad {mg.__version__} demo: backend={mg.get_backend()}, threads={mg.get_num_threads()}")
    for step in range(steps + 1):
        pred = bn(X @ w1).tanh() @ w2 + b2
        loss = F.mse_loss(pred, Y)
        for p in params:
            p.grad = None
        loss.backward()
        with mg.no_grad():
            for p in params:
                p.data -= lr * p.grad.data
        if step % 25 == 0:
            print(f"step {step:4d}  loss {loss.item():.5f}")
    print(f"done in {time.perf_counter() - t0:.2f} s")
    return loss.item()


if __name__ == "__main__":
    main()
