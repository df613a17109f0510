"""Old against new eager training step in one process, with PyTorch's eager step in the same rounds:
``scripts/swap_ab.py --torch`` (the command docs/perf/mlp-step.md names).

    PYTHONPATH=$PWD python scripts/eager_ab.py /work/main mlp-bn minigrad.nn.functional.dense:_Linear.backward \
        [--optim-so] [--rounds 16] [--steps 300]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from swap_ab import main  # noqa: E402

if __name__ == "__main__":
    main(sys.argv[1:] + ["--torch"])
