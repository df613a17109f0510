"""Another tree's DecorrelatedBatchNorm2d (its minigrad/nn/decorrelated.py on its whiten .so) against this tree's: the
module's training forward, float32, 1 thread, interleaved rounds (order alternated), CPU time (time.process_time),
paired ratios, with the torch composition of benchmarks/bench_norm_family.py beside; the outputs compared first; and
the two .so's zca_forward alone (raw, unchecked) in the same rounds.

    mkdir /tmp/old_so && cp /work/main/minigrad/_ext/whiten*.so /tmp/old_so/
    PYTHONPATH=$PWD python scripts/decorrelated_ab.py /tmp/old_so [ROUNDS] [OLD_ROOT]

OLD_ROOT (default /work/main) holds the old minigrad/nn/decorrelated.py; the old .so runs in place of this tree's
whiten module (minigrad.kernels.cython._whiten) during the old variant's calls.
"""
import sys, os, importlib.util
import numpy as np
import torch
import minigrad as mg
from minigrad.kernels import set_num_threads
import minigrad.kernels.cython as kc
import minigrad.nn.decorrelated as newmod
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "benchmarks"))
import whiten_bits as wb  # noqa: E402
from bench_norm_family import _torch_zca  # noqa: E402
from decorrelated_profile import timed  # noqa: E402
torch.set_num_threads(1)
set_num_threads(1)
old_so, new_so = wb.load_old(sys.argv[1]), kc._whiten
old_root = sys.argv[3] if len(sys.argv) > 3 else "/work/main"
spec = importlib.util.spec_from_file_location("old_decorrelated", os.path.join(old_root, "minigrad/nn/decorrelated.py"))
oldmod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(oldmod)
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 21
l0 = os.getloadavg()[0]
for shape in ((16, 32, 8, 8), (32, 64, 16, 16)):
    N, C, H, W = shape; g = 16
    rng = np.random.default_rng(0)
    xa = rng.standard_normal(shape).astype(np.float32)
    x = mg.Tensor(xa)
    dold = oldmod.DecorrelatedBatchNorm2d(C, group_size=g, eps=1e-5)
    dnew = newmod.DecorrelatedBatchNorm2d(C, group_size=g, eps=1e-5)
    tx, tw, tb = torch.tensor(xa), torch.ones(C), torch.zeros(C)
    def run_old():
        kc._whiten = old_so
        try:
            return dold(x)
        finally:
            kc._whiten = new_so
    yo, yn = run_old().numpy(), dnew(x).numpy()
    yt = _torch_zca(torch, tx, tw, tb, g, 1e-5).numpy()
    print(shape, "max |new - old|", np.abs(yn - yo).max(), "max |new - torch|", np.abs(yn - yt).max())
    # the raw kernels too: zca_forward of either .so on the same arrays, no checks, no Python around them
    G = -(-C // g)
    xs = xa.reshape(N, C, -1)
    outs = [np.empty_like(xs), np.empty((G, g, g)), np.empty((G, g)), np.empty((G, g, g)), np.empty((G, g, g)),
            np.empty((G, g)), np.empty(C, np.float32), np.empty((G, g)), np.empty(C)]
    wp, bias = np.ones((G, g)), np.zeros(C)
    runs = {"main": run_old, "this": lambda: dnew(x), "torch": lambda: _torch_zca(torch, tx, tw, tb, g, 1e-5),
            "main raw": lambda: old_so.zca_forward(*outs, xs, wp, bias, g, 1e-5, 1),
            "this raw": lambda: new_so.zca_forward(*outs, xs, wp, bias, g, 1e-5, 1)}
    out = timed(runs, rounds)
    med = {n_: np.median(v) * 1e6 for n_, v in out.items()}
    o, t_, tt = (np.array(out[k]) for k in ("main", "this", "torch"))
    print(f"  main {med['main']:.1f} us, this {med['this']:.1f} us, torch ops {med['torch']:.1f} us; "
          f"main/this {np.median(o / t_):.3f}x, torch/this {np.median(tt / t_):.2f}x, torch/main {np.median(tt / o):.2f}x")
    ro, rn = np.array(out["main raw"]), np.array(out["this raw"])
    print(f"  zca_forward raw: main {med['main raw']:.1f} us, this {med['this raw']:.1f} us; main/this "
          f"{np.median(ro / rn):.3f}x")
print(f"{rounds} rounds, load {l0:.2f} -> {os.getloadavg()[0]:.2f}")
