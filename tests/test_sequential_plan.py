"""nn.Sequential's plan (how its forward runs its modules, made once and cached on the instance): made again when a
module is added, replaced (by attribute or in the module table directly) or changes class, and when ``fuse`` changes on
the instance or the class; the outputs and the graph's nodes are then those of the modules as they now are."""
import copy
import pickle

import numpy as np
import pytest

from minigrad import Tensor, nn
from test_fused_activation import MySigmoid, ops

FUSED = "_BatchNormTrainThen"


def _change(seq, how, monkeypatch):
    if how == "add_module":
        seq.add_module("1", MySigmoid())
    elif how == "module_table":  # NOTE: as nn.utils.fusion and convert_sync_batchnorm write it: no attribute assigned
        seq._modules["1"] = MySigmoid()
    elif how == "class":
        seq[1].__class__ = MySigmoid
    elif how == "fuse":
        seq.fuse = False
    elif how == "class_fuse":
        monkeypatch.setattr(nn.Sequential, "fuse", False)


@pytest.mark.parametrize("how", ["add_module", "module_table", "class", "fuse", "class_fuse"])
def test_plan_follows_a_changed_module_or_fuse(how, monkeypatch):
    seq = nn.Sequential(nn.BatchNorm1d(3, dtype=np.float64), nn.Sigmoid())
    x = Tensor(np.random.default_rng(0).standard_normal((6, 3)), requires_grad=True)
    assert FUSED in ops(seq(x))
    _change(seq, how, monkeypatch)
    y = seq(x)
    kinds = ops(y)
    assert FUSED not in kinds, kinds
    np.testing.assert_array_equal(y.data, seq[1](seq[0](x)).data)  # the two modules called one after the other
    if how != "fuse" and how != "class_fuse":  # NOTE: MySigmoid's factor 2: its own forward ran
        assert (y.data > 1).any()


def test_plan_follows_a_class_changed_back_and_an_appended_module():
    seq = nn.Sequential(nn.BatchNorm1d(3, dtype=np.float64), MySigmoid())
    x = Tensor(np.random.default_rng(1).standard_normal((6, 3)), requires_grad=True)
    assert FUSED not in ops(seq(x))
    seq[1].__class__ = nn.Sigmoid
    assert FUSED in ops(seq(x))
    seq.append(nn.Tanh())
    y = seq(x)
    assert FUSED in ops(y) and "Tanh" in ops(y)
    np.testing.assert_array_equal(y.data, seq[2](seq[1](seq[0](x))).data)


@pytest.mark.parametrize("copier", [copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))])
def test_a_copy_runs_its_own_modules(copier):
    seq = nn.Sequential(nn.Linear(3, 3, dtype=np.float64), nn.BatchNorm1d(3, dtype=np.float64), nn.Sigmoid())
    x = Tensor(np.random.default_rng(2).standard_normal((6, 3)))
    y = seq(x)
    other = copier(seq)
    other[0].weight.data[...] = 0.0  # NOTE: the copy's linear layer, not the original's
    np.testing.assert_array_equal(seq(x).data, y.data)
    np.testing.assert_array_equal(other(x).data, np.full((6, 3), 0.5))
    assert FUSED in ops(other(x))
