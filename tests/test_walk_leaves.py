"""backward()'s walk over the nodes only (``_topological_order(..., leaves=False)``), the leaves' gradients
accumulated after them from what is left: the nodes' order is the full walk's less its leaves (so the fan-out sums
keep their order and bits), every leaf gets the gradient the general walk (autograd.grad) gives, and a walk that
reaches a freed node still raises."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import Tensor
from minigrad.tensor import _topological_order
from test_function_apply import _reference_order


def _random_graph(rng, trial):
    leaves = [Tensor(rng.standard_normal(2), requires_grad=bool(i % 3)) for i in range(3)]
    nodes = list(leaves)
    for _ in range(12):
        a, b = (nodes[j] for j in rng.integers(len(nodes), size=2))
        nodes.append(a * b if rng.integers(2) else a + b)
    roots = [nodes[-1]] if trial % 2 else [nodes[-1], nodes[-3]]
    return leaves, [r for r in roots if r.requires_grad]


def test_the_order_without_leaves_is_the_full_order_less_its_leaves():
    rng = np.random.default_rng(0)
    for trial in range(30):
        _, roots = _random_graph(rng, trial)
        got = _topological_order(roots, leaves=False)
        want = [t for t in _reference_order(roots) if t._ctx is not None]
        assert [id(t) for t in got] == [id(t) for t in want]


def test_leaf_gradients_are_the_general_walks():
    """Random graphs with fan-out into leaves and nodes: backward() against autograd.grad (the general walk, which
    keeps the leaves in its order), bit for bit, and a second backward accumulating into the first's .grad."""
    rng = np.random.default_rng(1)
    for trial in range(30):
        leaves, roots = _random_graph(rng, trial)
        if not roots:
            continue
        wanted, root, seed = [x for x in leaves if x.requires_grad], roots[0], Tensor(rng.standard_normal(2))
        want = mg.autograd.grad(root, wanted, seed, retain_graph=True, allow_unused=True)
        for _ in range(2):
            root.backward(seed, retain_graph=True)
        for x, g in zip(wanted, want):
            if g is None:
                assert x.grad is None
            else:
                assert x.grad.data.tobytes() == (g.data + g.data).tobytes()


def test_a_leaf_root_gets_a_copy_of_its_seed():
    x = Tensor(np.arange(3.0), requires_grad=True)
    seed = np.array([1.0, 2.0, 3.0])
    x.backward(seed)
    np.testing.assert_array_equal(x.grad.data, seed)
    assert not np.shares_memory(x.grad.data, seed)


@pytest.mark.parametrize("root", ["freed root", "freed node"])
def test_a_walk_through_a_freed_node_raises(root):
    x = Tensor(np.arange(3.0), requires_grad=True)
    y = x * 2
    z = y * 3
    (y if root == "freed root" else z).sum().backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        (y if root == "freed root" else z).sum().backward()
