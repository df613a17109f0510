"""Module._table_state: Linear and BatchNorm read their parameters and buffers from the module's tables directly
(not through ``__getattr__``) only where that gives what ``self.weight`` gives. A parametrization's property, a
subclass's property, an instance attribute and a deleted parameter must all read as attribute access does."""
import numpy as np
import pytest

from minigrad import Tensor, nn
from minigrad.nn.utils import parametrize


class Double(nn.Module):
    def forward(self, w):
        return w * 2.0


def data(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_parametrized_batch_norm_weight_is_used(dtype):
    bn, twin = nn.BatchNorm1d(4, dtype=dtype), nn.BatchNorm1d(4, dtype=dtype)
    w = data(4, dtype, 1)
    bn.weight.data[...] = w
    twin.weight.data[...] = 2.0 * w
    parametrize.register_parametrization(bn, "weight", Double())
    x = data((6, 4), dtype)
    assert np.array_equal(bn(Tensor(x)).data, twin(Tensor(x)).data)
    assert np.array_equal(bn.running_mean.data, twin.running_mean.data)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_parametrized_linear_weight_and_bias_are_used(dtype):
    lin = nn.Linear(5, 3, dtype=dtype)
    w, b = lin.weight.data.copy(), lin.bias.data.copy()
    parametrize.register_parametrization(lin, "weight", Double())
    parametrize.register_parametrization(lin, "bias", Double())  # NOTE: a second property on the same class
    x = data((4, 5), dtype)
    want = Tensor(x) @ Tensor(2.0 * w).T + Tensor(2.0 * b)
    np.testing.assert_allclose(lin(Tensor(x)).data, want.data, rtol=1e-6)


def test_a_subclass_property_wins():
    class Shifted(nn.BatchNorm1d):
        @property
        def bias(self):
            return self._parameters["bias"] + 1.0

    bn, twin = Shifted(3), nn.BatchNorm1d(3)
    twin.bias.data[...] = 1.0
    x = data((5, 3), np.float32)
    assert np.array_equal(bn(Tensor(x)).data, twin(Tensor(x)).data)


def test_an_instance_attribute_shadows_the_table():
    lin = nn.Linear(3, 2)
    other = nn.Parameter(np.zeros((2, 3), np.float32))
    lin.__dict__["weight"] = other  # NOTE: past __setattr__, which keeps the two apart: attribute access wins
    y = lin(Tensor(data((4, 3), np.float32)))
    assert np.array_equal(y.data, np.broadcast_to(lin.bias.data, (4, 2)))


def test_a_deleted_parameter_raises_attribute_error():
    lin = nn.Linear(3, 2)
    del lin.bias
    with pytest.raises(AttributeError, match="bias"):
        lin(Tensor(data((4, 3), np.float32)))


def test_table_reads_match_attribute_reads_in_training():
    """The same state through the fast reads (BatchNorm1d) and through attributes (a subclass): bit for bit,
    outputs, running statistics and the batch count, over a few steps."""
    class Plain(nn.BatchNorm1d):
        pass

    a, b = nn.BatchNorm1d(7, momentum=None), Plain(7, momentum=None)
    for step in range(3):
        x = data((5, 7), np.float32, step)
        assert np.array_equal(a(Tensor(x)).data, b(Tensor(x)).data)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        assert np.array_equal(getattr(a, name).data, getattr(b, name).data)
    assert int(a.num_batches_tracked.data) == 3
