"""SGD's ``step`` on the MLP-BN step's 11 parameters (784-100-100-100-10 with BN, float32, momentum, from the
second step), CPU time per call, interleaved in one process: the base class's loop (``Optimizer.step``, one
``_update`` per parameter) against SGD's own loop, per parameter (before session 31) and as it is (one
``sgd_update_many`` call for the group), and against the 11 unchecked kernel calls alone and the one group call
alone (the floors: what is not Python):

    PYTHONPATH=$PWD python scripts/sgd_step_ab.py
"""
import os

for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MINIGRAD_NUM_THREADS"):
    os.environ[k] = "1"

import time  # noqa: E402

import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
from minigrad.optim import optimizer as O  # noqa: E402

SHAPES = [(100, 784), (100,), (100,), (100,), (100, 100), (100,), (100,), (100, 100), (100,), (100,), (10, 100),
          (10,)][:11]


def main(rounds=11, calls=2000):
    rng = np.random.default_rng(0)
    ps = [mg.Tensor(rng.random(s, dtype=np.float32), requires_grad=True) for s in SHAPES]
    for p in ps:
        p.grad = mg.Tensor(rng.random(p.shape, dtype=np.float32))
    opt = O.SGD(ps, lr=0.0, momentum=0.9)  # NOTE: lr 0 keeps the parameters as they are over many calls
    for _ in range(5):
        opt.step()
    raws = [opt._views[p][3][2] for p in ps]
    grads = [p.grad.data.reshape(-1) for p in ps]

    many, flat_p, flat_b = opt._groups[0][5:8]
    grads_t = tuple(grads)

    def kernels_only():
        for raw, g in zip(raws, grads):
            raw[0](raw[1], raw[2], g, 0.0, 0.9, 0, 0, False, False, raw[3])

    def per_parameter():  # NOTE: SGD.step before its group call (session 31): one kernel call per parameter
        opt._group_call, opt._remember_group = (lambda *a: False), (lambda *a: None)
        O.SGD.step(opt)
        del opt._group_call, opt._remember_group
    runs = {"Optimizer.step": lambda: O.Optimizer.step(opt), "SGD.step per parameter": per_parameter,
            "SGD.step": lambda: O.SGD.step(opt), "kernels only": kernels_only,
            "group kernel only": lambda: many(flat_p, flat_b, grads_t, 0.0, 0.9, 0, 0, False, False, 1)}
    times = {k: [] for k in runs}
    for _ in range(rounds):
        for name, f in runs.items():
            t = time.process_time()
            for _ in range(calls):
                f()
            times[name].append((time.process_time() - t) / calls * 1e6)
    for name, v in times.items():
        print(f"{name:24s} {np.median(v):6.1f} us (median of {rounds} rounds of {calls} calls)")
    print(f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
