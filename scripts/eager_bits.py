"""A hash of N training steps of one tree: the losses, every parameter and buffer (``state_dict``), every gradient and
SGD's momentum buffers, for the models of ``benchmarks/bench_end_to_end.py``, eager or under ``minigrad.compile``.
Run it on two trees and compare the lines (0 values differ when the hashes are equal):

    for tree in /work/main $PWD; do (cd $tree && PYTHONPATH=$tree python $PWD/scripts/eager_bits.py \
        minigrad mlp-bn 12 float32); done

FRAMEWORK is ``minigrad`` or ``minigrad-compiled``; float32 is the benchmark's step (SGD, momentum 0.9); float64
casts the model and uses SGD with momentum 0.9, nesterov and weight decay 1e-4.
"""
import gc
import hashlib
import os
import sys

for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "MINIGRAD_NUM_THREADS"):
    os.environ[k] = "1"
fw, model, n, dtype = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
sys.argv = sys.argv[:1]
sys.path.insert(0, os.path.join(os.getcwd(), "scripts"))  # NOTE: the tree run from (its step_cpu_time)

import numpy as np  # noqa: E402

import step_cpu_time  # noqa: E402

import minigrad as mg  # noqa: E402
import minigrad.nn.functional as F  # noqa: E402
from minigrad import models  # noqa: E402
from minigrad.optim import SGD  # noqa: E402

mg.set_num_threads(1)
if dtype == "float32":
    step = step_cpu_time.build(fw, model)
    net = step.net
else:
    from bench_end_to_end import CASES, IN_CHANNELS, LR, MOMENTUM, _data, sgd_step
    mg.manual_seed(0)
    net = models.build_model(model, in_channels=IN_CHANNELS.get(model, 1)).to(np.float64)
    x, y = _data(dict(CASES)[model], model)
    xt, yt = mg.Tensor(x.astype(np.float64)), mg.Tensor(y)
    opt = SGD(net.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=1e-4, nesterov=True)

    step = sgd_step(net, opt, F.cross_entropy, xt, yt, mg.compile if fw == "minigrad-compiled" else None)
h = hashlib.sha256()
losses = [step() for _ in range(n)]
h.update(np.array(losses).tobytes())
for k, v in sorted(net.state_dict().items()):
    h.update(k.encode())
    h.update(np.ascontiguousarray(v).tobytes())
for p in net.parameters():
    h.update(p.grad.data.tobytes() if p.grad is not None else b"none")
opts = [o for o in gc.get_objects() if isinstance(o, SGD)]
for o in opts:
    for p in net.parameters():
        s = o.state.get(p)
        if s is not None:
            h.update(s["momentum_buffer"].tobytes())
print(fw, model, dtype, n, f"optimizers {len(opts)}", h.hexdigest()[:24], losses[-1])
