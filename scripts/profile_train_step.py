"""Where one training step's CPU time goes (process time: robust to a loaded machine), at 1 thread: minigrad's per-op timers (forward and backward of every
``Function`` subclass, self time) and, with ``--torch``, PyTorch's profiler on the same step of the twin model
(``benchmarks/bench_end_to_end.py``). Run each in its own process:

    PYTHONPATH=$PWD python scripts/profile_train_step.py resnet20
    PYTHONPATH=$PWD python scripts/profile_train_step.py resnet20 --torch
    PYTHONPATH=$PWD python scripts/profile_train_step.py resnet20 --cprofile
"""
import argparse
import os
import sys
import time
from collections import defaultdict

for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "MINIGRAD_NUM_THREADS"):
    os.environ[k] = "1"
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))

import numpy as np  # noqa: E402

from bench_end_to_end import CASES, IN_CHANNELS, LR, MOMENTUM, _data, _torch_model  # noqa: E402


def _minigrad_step(model, batch):
    import minigrad as mg
    import minigrad.nn.functional as F
    from minigrad import models
    from minigrad.optim import SGD

    mg.manual_seed(0)
    net = models.build_model(model, in_channels=IN_CHANNELS.get(model, 1))
    x, y = _data(batch, model)
    xt, yt = mg.Tensor(x), mg.Tensor(y)
    opt = SGD(net.parameters(), lr=LR, momentum=MOMENTUM)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(net(xt), yt)
        loss.backward()
        opt.step()
        return float(loss.item())
    return step


def _timers():
    """Wrap forward/backward of every Function subclass with a timer; returns the totals dict (self time)."""
    from minigrad.tensor import Function

    totals, stack = defaultdict(float), []

    def wrap(cls, name):
        fn = cls.__dict__[name]

        def timed(self, *a, **k):
            t0 = time.process_time()
            stack.append(0.0)
            try:
                return fn(self, *a, **k)
            finally:
                dt = time.process_time() - t0
                child = stack.pop()
                totals[f"{cls.__name__}.{name}"] += dt - child
                if stack:
                    stack[-1] += dt
        setattr(cls, name, timed)

    def subclasses(c):
        for s in c.__subclasses__():
            yield s
            yield from subclasses(s)
    for cls in set(subclasses(Function)):
        for name in ("forward", "backward"):
            if name in cls.__dict__:
                wrap(cls, name)
    return totals


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model", choices=[m for m, _ in CASES])
    p.add_argument("--torch", action="store_true")
    p.add_argument("--cprofile", action="store_true")
    p.add_argument("--steps", type=int, default=20)
    a = p.parse_args()
    batch = dict(CASES)[a.model]
    from minigrad.allocator import tune_allocator
    tune_allocator()  # as the benchmarks and the CLI do
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)
    if a.torch:
        import torch
        torch.set_num_threads(1)
        import minigrad as mg
        from minigrad import models
        mg.manual_seed(0)
        net = models.build_model(a.model, in_channels=IN_CHANNELS.get(a.model, 1))
        tnet = _torch_model(torch, a.model)
        tnet.load_state_dict({k: torch.from_numpy(v) for k, v in net.state_dict().items()})
        x, y = (torch.from_numpy(v) for v in _data(batch, a.model))
        opt = torch.optim.SGD(tnet.parameters(), lr=LR, momentum=MOMENTUM)

        def step():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(tnet(x), y)
            loss.backward()
            opt.step()
            return float(loss.item())
        for _ in range(3):
            step()
        t0 = time.process_time()
        for _ in range(a.steps):
            step()
        print(f"torch {a.model}: {(time.process_time() - t0) / a.steps * 1e3:.1f} ms/step")
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(a.steps):
                step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
        return
    step = _minigrad_step(a.model, batch)
    for _ in range(3):
        step()
    t0 = time.process_time()
    for _ in range(a.steps):
        step()
    ms = (time.process_time() - t0) / a.steps * 1e3
    print(f"minigrad {a.model}: {ms:.1f} ms/step")
    if a.cprofile:
        import cProfile
        import pstats
        pr = cProfile.Profile()
        pr.enable()
        for _ in range(a.steps):
            step()
        pr.disable()
        pstats.Stats(pr).sort_stats("tottime").print_stats(25)
        return
    totals = _timers()
    t0 = time.process_time()
    for _ in range(a.steps):
        step()
    wall = (time.process_time() - t0) / a.steps * 1e3
    print(f"with timers: {wall:.1f} ms/step; per op (self ms/step):")
    for k, v in sorted(totals.items(), key=lambda kv: -kv[1])[:20]:
        print(f"  {k:40s} {v / a.steps * 1e3:7.2f}  {100 * v / a.steps * 1e3 / wall:5.1f}%")
    print(f"  {'(outside Function forward/backward)':40s} {wall - sum(totals.values()) / a.steps * 1e3:7.2f}")


if __name__ == "__main__":
    main()
