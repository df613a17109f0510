"""ResNet-20's training step with its stride-2 convolutions on the conv2d_strided kernels and on the im2col + GEMM
path (``conv._strided`` patched to False around the other model's steps; the unit-stride direct kernels run in
both), two models in one process, steps alternated, CPU time, 1 thread (batch 32, float32). ``REV=1`` runs the
im2col model first in each pair.

    PYTHONPATH=$PWD python scripts/strided_ab.py 30
"""
import os
import sys
import time

for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "MINIGRAD_NUM_THREADS"):
    os.environ[k] = "1"
import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
import minigrad.nn.functional as F  # noqa: E402
from minigrad import models  # noqa: E402
from minigrad.allocator import tune_allocator  # noqa: E402
from minigrad.nn.functional import conv as cv  # noqa: E402
from minigrad.optim import SGD  # noqa: E402

tune_allocator()  # as step_cpu_time.py, the benchmarks and the CLI
strided = cv._strided


def main(rounds):
    rng = np.random.default_rng(0)
    x = mg.Tensor(rng.standard_normal((32, 3, 32, 32)).astype(np.float32))
    y = mg.Tensor(rng.integers(0, 10, 32))
    steps = {}
    for name in ("im2col", "strided") if os.environ.get("REV") else ("strided", "im2col"):
        mg.manual_seed(0)
        net = models.build_model("resnet20", in_channels=3)
        opt = SGD(net.parameters(), lr=0.01, momentum=0.9)

        def step(net=net, opt=opt, name=name):
            cv._strided = strided if name == "strided" else (lambda g, backward=False: False)
            try:
                opt.zero_grad()
                loss = F.cross_entropy(net(x), y)
                loss.backward()
                opt.step()
            finally:
                cv._strided = strided
        step()
        step()
        steps[name] = step
    t = {k: [] for k in steps}
    for _ in range(rounds):
        for k, f in steps.items():
            t0 = time.process_time()
            f()
            t[k].append((time.process_time() - t0) * 1e3)
    print(" ".join(f"{k} median {np.median(v):.1f} ms (best {min(v):.1f})" for k, v in t.items()),
          f"; median of per-pair differences {np.median(np.array(t['im2col']) - np.array(t['strided'])):.2f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
