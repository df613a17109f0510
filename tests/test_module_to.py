"""Module.to / float / double / cpu / apply, as PyTorch's (the calls a ported training script makes)."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import nn

torch = pytest.importorskip("torch")


def test_to_device_and_dtype_in_place():
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    assert m.to("cpu") is m and m.to(mg.device("cpu")) is m
    assert m.to(mg.float64) is m
    assert m[0].weight.dtype == np.float64 and m[1].running_var.dtype == np.float64
    assert m[1].num_batches_tracked.dtype == np.int64  # integer buffers keep their dtype, as torch's
    y = m(mg.Tensor(np.ones((5, 3))))
    assert y.dtype == np.float64
    assert m.float() is m and m[0].weight.dtype == np.float32
    assert m.double().to("cpu", mg.float32)[0].bias.dtype == np.float32
    assert m.cpu() is m
    with pytest.raises(Exception, match="cuda"):
        m.to("cuda")
    t = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)).double()
    assert t[1].num_batches_tracked.dtype == torch.int64 and t[0].weight.dtype == torch.float64


def test_apply_visits_children_first_then_self():
    seen = []
    m = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU(), nn.Linear(2, 1)))
    assert m.apply(lambda mod: seen.append(type(mod).__name__)) is m
    t_seen = []
    tm = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(2, 1)))
    tm.apply(lambda mod: t_seen.append(type(mod).__name__))
    assert seen == t_seen
