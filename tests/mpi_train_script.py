"""Run on 2 MPI ranks by tests/test_distributed.py: mpiexec -n 2 python -m mpi4py tests/mpi_train_script.py OUT

``minigrad.app.train.train`` on every rank (it joins the MPI job itself): for each case, an uninterrupted run, a run
stopped after one epoch and resumed, and one stopped mid-epoch (--checkpoint-every) and resumed. Each rank writes
its final parameters and buffers to OUT/<case>-<run>-rank<r>.npz; the test compares them across ranks, runs and
with a single process training on the same global batches. Rank 0 alone must write checkpoints.
"""
import sys
from pathlib import Path

import numpy as np

import minigrad.app.train
from minigrad import distributed
from minigrad.app.train import train

WRITES = []  # the checkpoints this rank wrote: rank 0's only
_save = minigrad.app.train.save_checkpoint
minigrad.app.train.save_checkpoint = lambda path, *a, **k: (WRITES.append(path), _save(path, *a, **k))[1]

OUT = Path(sys.argv[1])
RANK = distributed.rank()
assert distributed.world_size() == 2
COMMON = dict(dataset="synthetic", limit_train=60, limit_test=20, epochs=2, batch_size=6, lr=0.05, seed=3,
              progress=False, log=lambda s: None)
CASES = {"mlp": dict(model="mlp"), "mlp-bn-sync": dict(model="mlp-bn", sync_bn=True)}


def dump(name, result):
    state = {k: np.asarray(v.data if hasattr(v, "data") else v) for k, v in result["model"].state_dict().items()}
    np.savez(OUT / f"{name}-rank{RANK}.npz", **state)


for case, kwargs in CASES.items():
    dump(f"{case}-full", train(**COMMON, **kwargs))
    ckpt = OUT / f"{case}-ckpt"
    stopped = train(**COMMON, **kwargs, checkpoint_dir=str(ckpt), stop_after=1)
    assert stopped["epochs_run"] == 1
    dump(f"{case}-resumed", train(**COMMON, **kwargs, checkpoint_dir=str(ckpt), resume=True))
    ckpt = OUT / f"{case}-ckpt-mid"  # 5 steps per epoch: step 7 writes epoch-001-batch-00002, resumed from
    train(**COMMON, **kwargs, checkpoint_dir=str(ckpt), checkpoint_every=7)
    distributed.barrier()
    if RANK == 0:
        (ckpt / "epoch-002.safetensors").unlink()
        assert (ckpt / "epoch-001-batch-00002.safetensors").is_file(), sorted(ckpt.iterdir())
    distributed.barrier()
    dump(f"{case}-resumed-mid", train(**COMMON, **kwargs, checkpoint_dir=str(ckpt), resume=True))
writes = distributed._all_gather_object(len(WRITES))
assert writes[0] > 0 and writes[1] == 0, f"checkpoints written per rank: {writes}"
if RANK == 0:
    print("OK train 2 ranks", flush=True)
