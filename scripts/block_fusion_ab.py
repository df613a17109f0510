"""ResNet-20's training step with the zoo's BasicBlock fused (bn1 -> relu1 as F.batch_norm_relu, the residual add +
ReLU as F.add_relu) and unfused (the pair of each), two models in one process, steps interleaved, CPU time, 1 thread
(batch 32, float32). ``REV=1`` runs the unfused model first in each pair.

    PYTHONPATH=$PWD python scripts/block_fusion_ab.py 30
"""
import os
for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "MINIGRAD_NUM_THREADS"):
    os.environ[k] = "1"
import sys, time
import numpy as np
import minigrad as mg
import minigrad.nn.functional as F
from minigrad import models
from minigrad.optim import SGD
from minigrad.allocator import tune_allocator
from minigrad.app.models import BasicBlock

tune_allocator()  # as step_cpu_time.py, the benchmarks and the CLI

def unfused_forward(self, x):
    y = self.relu1(self.bn1(self.conv1(x)))
    y = self.bn2(self.conv2(y))
    return (y + self.shortcut(x)).relu()

class Unfused(BasicBlock):
    forward = unfused_forward

rng = np.random.default_rng(0)
x = mg.Tensor(rng.standard_normal((32, 3, 32, 32)).astype(np.float32))
y = mg.Tensor(rng.integers(0, 10, 32))
steps = {}
for name in (("unfused", "fused") if os.environ.get("REV") else ("fused", "unfused")):
    mg.manual_seed(0)
    net = models.build_model("resnet20", in_channels=3)
    if name == "unfused":
        for m in net.modules():
            if type(m) is BasicBlock:
                m.__class__ = Unfused
    opt = SGD(net.parameters(), lr=0.01, momentum=0.9)
    def step(net=net, opt=opt):
        opt.zero_grad(); loss = F.cross_entropy(net(x), y); loss.backward(); opt.step()
    step(); step()
    steps[name] = step
t = {k: [] for k in steps}
for r in range(int(sys.argv[1]) if len(sys.argv) > 1 else 20):
    for k, f in steps.items():
        t0 = time.process_time(); f(); t[k].append((time.process_time() - t0) * 1e3)
print(" ".join(f"{k} median {np.median(v):.1f} ms (best {min(v):.1f})" for k, v in t.items()),
      f"; median of per-pair differences {np.median(np.array(t['unfused']) - np.array(t['fused'])):.2f} ms")
