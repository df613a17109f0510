"""Median wall and CPU time of one training step at 1 thread (the models and steps of
``benchmarks/bench_end_to_end.py``), for comparisons on a loaded machine: the process CPU time leaves out the time
spent waiting for a core, which the wall time of a benchmark does not. One framework per process:

    PYTHONPATH=$PWD python scripts/step_cpu_time.py minigrad resnet20
    PYTHONPATH=$PWD python scripts/step_cpu_time.py torch resnet20
    PYTHONPATH=$PWD python scripts/step_cpu_time.py minigrad-compiled mlp-bn    # the step under minigrad.compile
    XLA_FLAGS=--xla_cpu_multi_thread_eigen=false taskset -c 0 PYTHONPATH=$PWD python scripts/step_cpu_time.py jax mlp-bn

A fourth argument runs that many threads (``... minigrad resnet20 12 2``, with ``OMP_WAIT_POLICY=passive GOMP_SPINCOUNT=1000`` unless a
policy is set, as ``import minigrad`` and the end-to-end benchmarks since session 38 (passive before), and NumPy's BLAS at 1 thread, as ``minigrad.set_num_threads`` sets it); compare
those by wall time, on a quiet machine (the CPU time sums the threads; ``scripts/threads_ab.py`` splits it by
thread).
"""
import os
import sys
import time

# NOTE: from argv when run as a script; a script that imports this module (threads_ab.py, compile_ab.py,
# step_pair_cpu_time.py) sets STEP_THREADS before the import instead (default 1)
THREADS = (int(sys.argv[4]) if __name__ == "__main__" and len(sys.argv) > 4
           else int(os.environ.get("STEP_THREADS", "1")))
for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "MINIGRAD_NUM_THREADS"):
    os.environ[k] = str(THREADS)
if THREADS > 1 and "GOMP_SPINCOUNT" not in os.environ and "OMP_WAIT_POLICY" not in os.environ:
    os.environ.update(OMP_WAIT_POLICY="passive", GOMP_SPINCOUNT="1000")  # NOTE: as `import minigrad` and the
    # end-to-end benchmarks, for both frameworks
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))

import numpy as np  # noqa: E402

from bench_end_to_end import CASES, IN_CHANNELS, LR, MOMENTUM, _data, _torch_model, sgd_step  # noqa: E402


def build(framework, model):
    import minigrad as mg
    import minigrad.nn.functional as F
    from minigrad import models
    from minigrad.optim import SGD

    mg.manual_seed(0)
    net = models.build_model(model, in_channels=IN_CHANNELS.get(model, 1))
    x, y = _data(dict(CASES)[model], model)
    if framework == "jax":  # the jitted twin (benchmarks/_jax_models.py)
        import jax

        from _jax_models import jax_train_step
        jstep, carry = jax_train_step(net, LR, MOMENTUM)
        xj, yj, state = jax.device_put(x), jax.device_put(y.astype(np.int32)), [carry]

        def jax_step():
            loss, state[0] = jstep(state[0], xj, yj)
            return float(loss)  # waits for the result, as .item() does
        return jax_step
    if framework.startswith("minigrad"):
        xt, yt = mg.Tensor(x), mg.Tensor(y)
        opt, loss_fn = SGD(net.parameters(), lr=LR, momentum=MOMENTUM), F.cross_entropy
    else:
        import torch
        torch.set_num_threads(THREADS)
        tnet = _torch_model(torch, model)
        tnet.load_state_dict({k: torch.from_numpy(v) for k, v in net.state_dict().items()})
        xt, yt, net = torch.from_numpy(x), torch.from_numpy(y), tnet
        opt, loss_fn = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM), torch.nn.functional.cross_entropy

    # NOTE: step.fn and step.net for compile_ab.py's --source and --calls
    return sgd_step(net, opt, loss_fn, xt, yt, mg.compile if framework == "minigrad-compiled" else None)


def alternated(step, variants, install, steps, acc):
    """One process's old/new A/B inside a step: ``install(value)`` puts each of ``variants`` (name -> value) in
    place in turn, step by step (the order reversed every other step), ``steps`` times each; ``acc`` is the list
    [wall, cpu, count] that the variants' timers add to, zeroed before each step. Returns, per name, the medians in
    ms of the step's wall and main-thread CPU and of acc's wall and CPU, and acc's count of the last step."""
    import statistics
    rows = {k: [] for k in variants}
    for i in range(steps):
        for k in (list(variants) if i % 2 == 0 else list(variants)[::-1]):
            install(variants[k])
            acc[:] = [0.0, 0.0, 0]
            w, c = time.perf_counter(), time.thread_time()
            step()
            rows[k].append((time.perf_counter() - w, time.thread_time() - c, acc[0], acc[1], acc[2]))
    return {k: [statistics.median(x[j] for x in v) * 1e3 for j in range(4)] + [v[-1][4]] for k, v in rows.items()}


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
    print(f"{framework} {model}: wall {np.median(wall) * 1e3:.3f} ms  cpu {np.median(cpu) * 1e3:.3f} ms "
          f"(median of {steps}; {1 / np.median(cpu):.2f} steps/s by cpu; {THREADS} thread"
          f"{'s' if THREADS > 1 else ''})")


if __name__ == "__main__":
    main()
