"""minigrad.utils.data (torch.utils.data's names): DataLoader's PyTorch options, Subset, ConcatDataset and
random_split with PyTorch's semantics."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import Tensor
from minigrad.utils.data import (ConcatDataset, DataLoader, Dataset, Subset, TensorDataset, default_collate,
                                 random_split)


class Items(Dataset):
    def __init__(self, n):
        self.n = n

    def __getitem__(self, i):
        return np.full(2, i, np.float32), i

    def __len__(self):
        return self.n


def test_names_are_minigrad_data_classes():
    import minigrad.data as d
    assert mg.utils.data.DataLoader is d.DataLoader and mg.utils.data.TensorDataset is d.TensorDataset
    assert mg.utils.data.Dataset is d.Dataset


def test_worker_options_are_accepted_and_load_in_process():
    x, y = np.arange(20, dtype=np.float32).reshape(10, 2), np.arange(10)
    ids = []
    loader = DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True, seed=3, num_workers=2, pin_memory=True,
                        persistent_workers=True, prefetch_factor=2, timeout=5, worker_init_fn=ids.append)
    plain = DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True, seed=3)
    for _ in range(2):
        for (a, b), (c, d) in zip(loader, plain, strict=True):
            np.testing.assert_array_equal(a.data, c.data)
            np.testing.assert_array_equal(b.data, d.data)
    assert ids == [0, 1]  # persistent: initialised once
    ids.clear()
    list(DataLoader(TensorDataset(x, y), num_workers=3, worker_init_fn=ids.append))
    assert ids == [0, 1, 2]


def test_drop_last_and_collate_fn():
    loader = DataLoader(Items(10), batch_size=4, drop_last=True, collate_fn=lambda items: [i for _, i in items])
    assert list(loader) == [[0, 1, 2, 3], [4, 5, 6, 7]] and len(loader) == 2
    xb, yb = next(iter(DataLoader(Items(5), batch_size=5)))
    assert xb.shape == (5, 2) and xb.dtype == np.float32 and yb.dtype == np.int64
    out = default_collate([{"a": np.ones(2), "b": 1}, {"a": np.zeros(2), "b": 2}])
    assert isinstance(out["a"], Tensor) and out["b"].data.tolist() == [1, 2]
    # items holding Tensors (what ToTensor gives) stack too
    xb, = next(iter(DataLoader([(Tensor(np.ones((1, 2, 2), np.float32)),)] * 3, batch_size=3)))
    assert xb.shape == (3, 1, 2, 2)


@pytest.mark.parametrize("kw, match", [
    (dict(num_workers=-1), "num_workers"), (dict(num_workers=1.5), "num_workers"),
    (dict(persistent_workers=True), "persistent_workers"), (dict(prefetch_factor=2), "prefetch_factor"),
    (dict(timeout=-1), "timeout"), (dict(batch_size=0), "batch_size"), (dict(batch_size=2.5), "batch_size")])
def test_loader_validation(kw, match):
    with pytest.raises(ValueError, match=match):
        DataLoader(Items(4), **kw)
    with pytest.raises(TypeError, match="collate_fn"):
        DataLoader(Items(4), collate_fn=3)


def test_subset_and_its_batched_path():
    x, y = np.arange(40, dtype=np.float32).reshape(20, 2), np.arange(20)
    ds = TensorDataset(x, y)
    sub = Subset(Subset(ds, range(5, 20)), [3, 0, 7, 14])
    assert len(sub) == 4 and sub[0][1] == 8 and [t[1] for t in sub[[1, 2]]] == [5, 12]
    (xb, yb), = list(DataLoader(sub, batch_size=4))
    assert yb.data.tolist() == [8, 5, 12, 19]
    np.testing.assert_array_equal(xb.data, x[[8, 5, 12, 19]])
    (xb2, yb2), = list(DataLoader(Subset(Items(20), [8, 5, 12, 19]), batch_size=4))  # item-by-item path
    assert yb2.data.tolist() == [8, 5, 12, 19]


def test_concat_dataset():
    c = ConcatDataset([Items(3), Items(2)])
    assert len(c) == 5 and c[3][1] == 0 and c[-1][1] == 1 and c[2][1] == 2
    with pytest.raises(IndexError):
        c[5]


def test_random_split_lengths_and_fractions():
    ds = Items(10)
    a, b = random_split(ds, [7, 3], generator=np.random.default_rng(0))
    ia, ib = a.indices, b.indices
    assert len(a) == 7 and len(b) == 3 and sorted(ia + ib) == list(range(10))
    # the same seed gives the same split; an int seed works as a generator
    assert random_split(ds, [7, 3], generator=5)[0].indices == random_split(ds, [7, 3], generator=5)[0].indices
    mg.manual_seed(1)
    s1 = random_split(ds, [5, 5])[0].indices
    mg.manual_seed(1)
    assert random_split(ds, [5, 5])[0].indices == s1
    # fractions: floor, then the remainder dealt from the first split on (11 * [0.3, 0.3, 0.4] -> 3, 3, 4 + 1, 0, 0)
    parts = random_split(Items(11), [0.3, 0.3, 0.4], generator=0)
    assert [len(p) for p in parts] == [4, 3, 4]
    with pytest.warns(UserWarning, match="index 1 is 0"):
        assert [len(p) for p in random_split(Items(2), [0.9, 0.05, 0.05], generator=0)] == [2, 0, 0]


def test_random_split_fraction_lengths_match_torch():
    torch = pytest.importorskip("torch")
    for n in (7, 10, 11, 100, 101):
        for fr in ([0.3, 0.3, 0.4], [0.5, 0.5], [0.1] * 10, [1.0]):
            ours = [len(p) for p in random_split(Items(n), fr, generator=0)]
            theirs = [len(p) for p in torch.utils.data.random_split(range(n), fr)]
            assert ours == theirs, (n, fr)


@pytest.mark.parametrize("lengths, match", [([3, 3], "sum"), ([5, -1, 6], "non-negative"), ([0.5, 1.5], "sum"),
                                            ([2.5, 7.5], "integer")])
def test_random_split_validation(lengths, match):
    with pytest.raises(ValueError, match=match):
        random_split(Items(10), lengths)
    with pytest.raises(TypeError, match="generator"):
        random_split(Items(10), [5, 5], generator="seed")
