"""Median wall and CPU time of one training step at 1 thread (the models and steps of
``benchmarks/bench_end_to_end.py``), for comparisons on a loaded machine: the process CPU time leaves out the time
spent waiting for a core, which the wall time of a benchmark does not. One framework per process:

    PYTHONPATH=$PWD python scripts/step_cpu_time.py minigrad resnet20
    PYTHONPATH=$PWD python scripts/step_cpu_time.py torch resnet20

A fourth argument runs that many threads (``... minigrad resnet20 12 2``, with ``OMP_WAIT_POLICY=passive`` unless
set, as the end-to-end benchmarks, and NumPy's BLAS at 1 thread, as ``minigrad.set_num_threads`` sets it); compare
those by wall time, on a quiet machine (the CPU time sums the threads; ``scripts/threads_ab.py`` splits it by
thread).
"""
import os
import sys
import time

THREADS = int(sys.argv[4]) if len(sys.argv) > 4 else 1
for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "MINIGRAD_NUM_THREADS"):
    os.environ[k] = str(THREADS)
if THREADS > 1 and "GOMP_SPINCOUNT" not in os.environ:  # NOTE: as `import minigrad` and the end-to-end
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")  # benchmarks (docs/benchmarks.md), for both frameworks
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))

import numpy as np  # noqa: E402

from bench_end_to_end import CASES, IN_CHANNELS, LR, MOMENTUM, _data, _torch_model  # noqa: E402


def build(framework, model):
    import minigrad as mg
    import minigrad.nn.functional as F
    from minigrad import models
    from minigrad.optim import SGD

    mg.manual_seed(0)
    net = models.build_model(model, in_channels=IN_CHANNELS.get(model, 1))
    x, y = _data(dict(CASES)[model], model)
    if framework.startswith("minigrad"):  # minigrad, minigrad-compiled
        xt, yt = mg.Tensor(x), mg.Tensor(y)
        opt, loss_fn = SGD(net.parameters(), lr=LR, momentum=MOMENTUM), F.cross_entropy
    else:
        import torch
        torch.set_num_threads(THREADS)
        tnet = _torch_model(torch, model)
        tnet.load_state_dict({k: torch.from_numpy(v) for k, v in net.state_dict().items()})
        xt, yt, net = torch.from_numpy(x), torch.from_numpy(y), tnet
        opt, loss_fn = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM), torch.nn.functional.cross_entropy

    def train_step(xt, yt):
        opt.zero_grad()
        loss = loss_fn(net(xt), yt)
        loss.backward()
        opt.step()
        return loss
    if framework == "minigrad-compiled":  # the end-to-end benchmark's: recorded, checked, then replayed
        train_step = mg.compile(train_step)
    return lambda: float(train_step(xt, yt).item())


def main():
    framework, model = sys.argv[1], sys.argv[2]
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 15
    import minigrad
    from minigrad.allocator import tune_allocator
    tune_allocator()
    minigrad.set_num_threads(THREADS)  # NOTE: and NumPy's BLAS at 1 thread (minigrad/kernels/threads.py)
    step = build(framework, model)
    for _ in range(3):
        step()
    wall, cpu = [], []
    for _ in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    print(f"{framework} {model}: wall {np.median(wall) * 1e3:.1f} ms  cpu {np.median(cpu) * 1e3:.1f} ms "
          f"(median of {steps}; {1 / np.median(cpu):.2f} steps/s by cpu; {THREADS} thread"
          f"{'s' if THREADS > 1 else ''})")


if __name__ == "__main__":
    main()
