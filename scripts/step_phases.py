"""One eager training step's CPU time by phase (zero_grad, forward, loss, backward, optimizer step, ``.item()``),
the mean over steps after 20 warm ones, at 1 thread (the models and steps of ``benchmarks/bench_end_to_end.py``):

    PYTHONPATH=$PWD python scripts/step_phases.py mlp-bn [--steps 3000]
"""
import argparse
import os
import sys
import time

for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "MINIGRAD_NUM_THREADS"):
    os.environ[k] = "1"
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))

import numpy as np  # noqa: E402

from bench_end_to_end import CASES, IN_CHANNELS, LR, MOMENTUM, _data  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model", choices=[m for m, _ in CASES])
    p.add_argument("--steps", type=int, default=3000)
    a = p.parse_args()
    import minigrad as mg
    import minigrad.nn.functional as F
    from minigrad import models
    from minigrad.allocator import tune_allocator
    from minigrad.optim import SGD
    tune_allocator()
    mg.set_num_threads(1)
    mg.manual_seed(0)
    net = models.build_model(a.model, in_channels=IN_CHANNELS.get(a.model, 1))
    x, y = _data(dict(CASES)[a.model], a.model)
    xt, yt = mg.Tensor(x), mg.Tensor(y)
    opt = SGD(net.parameters(), lr=LR, momentum=MOMENTUM)
    names = ("zero_grad", "forward", "loss", "backward", "step", "item")
    spent = {k: [] for k in names}
    clock = time.process_time
    for i in range(a.steps + 20):
        t0 = clock()
        opt.zero_grad()
        t1 = clock()
        out = net(xt)
        t2 = clock()
        loss = F.cross_entropy(out, yt)
        t3 = clock()
        loss.backward()
        t4 = clock()
        opt.step()
        t5 = clock()
        float(loss.item())
        t6 = clock()
        if i >= 20:
            for k, t, u in zip(names, (t0, t1, t2, t3, t4, t5), (t1, t2, t3, t4, t5, t6)):
                spent[k].append(u - t)
    means = {k: np.mean(v) * 1e6 for k, v in spent.items()}
    print("  ".join(f"{k} {v:.1f} us" for k, v in means.items()) + f"  total {sum(means.values()):.1f} us; load "
          f"{' '.join(open('/proc/loadavg').read().split()[:3])}")


if __name__ == "__main__":
    main()
