"""minigrad.compile: replayed training steps are bit-identical to eager; what cannot be replayed runs eagerly with
one warning; a side effect the recorder misses is caught by the check of the first replay (planted here)."""
import warnings

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import nn
from minigrad.models import build_model
from minigrad.optim import SGD, Adam


def _batches(n, batch, shape=(1, 28, 28), seed=0):
    rng = np.random.default_rng(seed)
    return [(mg.Tensor(rng.random((batch, *shape), dtype=np.float32)), mg.Tensor(rng.integers(0, 10, batch)))
            for _ in range(n)]


def _setup(build, opt_name, seed=0):
    mg.manual_seed(seed)
    net = build()
    opt = SGD(net.parameters(), lr=0.05, momentum=0.9) if opt_name == "sgd" else Adam(net.parameters(), lr=1e-3)

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return loss
    return net, opt, step


def _states(cfn):
    return [e.state for entries in cfn._cache.values() for e in entries]


def _assert_same(net_a, opt_a, net_b, opt_b):
    for (k, a), (_, b) in zip(net_a.state_dict().items(), net_b.state_dict().items()):
        assert a.tobytes() == b.tobytes(), k
    for pa, pb in zip(net_a.parameters(), net_b.parameters()):
        assert (pa.grad is None) == (pb.grad is None)
        if pa.grad is not None:
            assert pa.grad.data.tobytes() == pb.grad.data.tobytes()
    sa, sb = opt_a.state_dict()["state"], opt_b.state_dict()["state"]
    assert sa.keys() == sb.keys()
    for i in sa:
        for k in sa[i]:
            va, vb = sa[i][k], sb[i][k]
            assert (va.tobytes() == vb.tobytes()) if isinstance(va, np.ndarray) else va == vb, (i, k)


def _run_both(build, opt_name, batches):
    """Eager, then compiled, each from the same seed (one after the other: they share the default generator)."""
    net_a, opt_a, step_a = _setup(build, opt_name)
    losses = [step_a(x, y).data.tobytes() for x, y in batches]
    rng_a = mg.random.get_rng_state()
    net_b, opt_b, step_b = _setup(build, opt_name)
    compiled = mg.compile(step_b)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NOTE: any fallback warning fails the test: these steps must replay
        assert [compiled(x, y).data.tobytes() for x, y in batches] == losses
    assert mg.random.get_rng_state() == rng_a
    _assert_same(net_a, opt_a, net_b, opt_b)
    return compiled


@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
@pytest.mark.parametrize("model,batch", [("mlp", 16), ("mlp-bn", 16), ("lenet-bn", 8), ("resnet-tiny", 4)])
def test_bit_identical_to_eager(model, batch, opt_name):
    compiled = _run_both(lambda: build_model(model), opt_name, _batches(4, batch))
    assert _states(compiled) == ["checked"]  # recorded, checked, then replayed


def test_dropout_draws_the_same_stream():
    def build():
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 10))
    compiled = _run_both(build, "sgd", _batches(4, 8))
    assert _states(compiled) == ["checked"]  # and the generator ends where eager's did (_run_both)


def test_train_eval_switch_and_shape_change_record_again():
    net_a, opt_a, _ = _setup(lambda: build_model("mlp-bn"), "sgd")
    net_b, opt_b, _ = _setup(lambda: build_model("mlp-bn"), "sgd")

    def make(net, opt):
        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
            return loss
        return step
    eager, compiled = make(net_a, opt_a), mg.compile(make(net_b, opt_b))
    evaluate = mg.compile(mg.no_grad()(lambda net, x: net(x)))
    train, last = _batches(3, 16), _batches(2, 5, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for mode in ("train", "eval", "train"):
            for net in (net_a, net_b):
                getattr(net, mode)()
            for x, y in train + last:  # the last batches are smaller: a second recording
                assert eager(x, y).data.tobytes() == compiled(x, y).data.tobytes()
            for x, _ in train:
                assert net_a(x).data.tobytes() == evaluate(net_b, x).data.tobytes()
    _assert_same(net_a, opt_a, net_b, opt_b)
    # train batch 16, train batch 5, eval batch 16, eval batch 5: four recordings, all replayed
    assert sorted(_states(compiled)) == ["checked"] * 4


def test_item_inside_falls_back_with_one_warning():
    net_a, opt_a, step_a = _setup(lambda: build_model("mlp"), "sgd")
    net_b, opt_b, step_b = _setup(lambda: build_model("mlp"), "sgd")

    def with_item(step):
        return lambda x, y: step(x, y).item()
    eager, compiled = with_item(step_a), mg.compile(with_item(step_b))
    with pytest.warns(RuntimeWarning, match=r"item\(\) reads a tensor's value") as record:
        for x, y in _batches(4, 8):
            assert eager(x, y) == compiled(x, y)
    assert len([w for w in record if "minigrad.compile" in str(w.message)]) == 1
    assert _states(compiled) == ["eager"]
    _assert_same(net_a, opt_a, net_b, opt_b)


def test_data_dependent_branch_falls_back():
    def make():
        net, opt, step = _setup(lambda: build_model("mlp"), "sgd")

        def branchy(x, y):
            loss = F.cross_entropy(net(x), y)
            if loss > 2.3:  # a Python branch on a tensor's value
                loss = loss * 2.0
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss
        return net, opt, branchy
    net_a, opt_a, eager = make()
    net_b, opt_b, branchy = make()
    compiled = mg.compile(branchy)
    with pytest.warns(RuntimeWarning, match="bool"):
        for x, y in _batches(4, 8):
            assert eager(x, y).data.tobytes() == compiled(x, y).data.tobytes()
    _assert_same(net_a, opt_a, net_b, opt_b)


class _Counting(nn.Module):
    """A planted fault: a buffer changed in Python, outside every op (the recorder cannot see it)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("calls", mg.Tensor(np.zeros(3, np.float32)))

    def forward(self, x):
        self.calls.data[...] += 1.0
        return x


def test_missed_side_effect_is_caught_by_the_check():
    def build():
        return nn.Sequential(_Counting(), nn.Flatten(), nn.Linear(784, 10))
    net_a, opt_a, eager = _setup(build, "sgd")
    net_b, opt_b, step = _setup(build, "sgd")
    compiled = mg.compile(step)
    with pytest.warns(RuntimeWarning, match=r"differs from eager in buffer 0\.calls"):
        for x, y in _batches(4, 8):
            assert eager(x, y).data.tobytes() == compiled(x, y).data.tobytes()
    assert net_b[0].calls.data.tolist() == [4.0] * 3
    _assert_same(net_a, opt_a, net_b, opt_b)


def test_hidden_data_dependent_constant_is_caught():
    """A mask made by a comparison (outside every op) is a constant of the recording: the second recording
    differs and the step runs eagerly."""
    def make():
        net, opt, _ = _setup(lambda: build_model("mlp"), "sgd")

        def step(x, y):
            h = net(x)
            loss = F.cross_entropy(h * (h > 0).float(), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss
        return net, opt, step
    net_a, opt_a, eager = make()
    net_b, opt_b, step = make()
    compiled = mg.compile(step)
    with pytest.warns(RuntimeWarning, match="different ops or constants"):
        for x, y in _batches(4, 8):
            assert eager(x, y).data.tobytes() == compiled(x, y).data.tobytes()
    _assert_same(net_a, opt_a, net_b, opt_b)


def test_no_tensor_objects_per_replayed_step(monkeypatch):
    net, opt, step = _setup(lambda: build_model("mlp-bn"), "sgd")

    def no_return(x, y):
        step(x, y)
    compiled, returning = mg.compile(no_return), mg.compile(step)
    batches = _batches(3, 8)
    for x, y in batches[:2]:
        compiled(x, y)
        returning(x, y)
    made = []
    init = mg.Tensor.__init__

    def counting(self, *args, **kwargs):
        made.append(type(self))
        init(self, *args, **kwargs)
    monkeypatch.setattr(mg.Tensor, "__init__", counting)
    x, y = batches[2]
    compiled(x, y)
    assert made == []
    returning(x, y)
    assert made == [mg.Tensor]  # only the returned loss


def test_bad_labels_still_raise_on_replay():
    net, opt, step = _setup(lambda: build_model("mlp"), "sgd")
    compiled = mg.compile(step)
    for x, y in _batches(2, 8):
        compiled(x, y)
    x, _ = _batches(1, 8)[0]
    with pytest.raises(ValueError, match="target values must be in"):
        compiled(x, mg.Tensor(np.full(8, 12)))


def test_train_cli_results_identical_with_and_without_compile(tmp_path):
    from minigrad.app.train import train

    def run(compile_step, name):
        metrics = tmp_path / f"{name}.jsonl"
        train(model="mlp-bn", dataset="synthetic", epochs=1, batch_size=32, limit_train=192, limit_test=64,
              progress=False, log=lambda s: None, metrics=str(metrics), compile_step=compile_step)
        lines = [__import__("json").loads(s) for s in metrics.read_text().splitlines()]
        return [{k: v for k, v in m.items() if "time" not in k and "second" not in k and "per_s" not in k}
                for m in lines]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert run(True, "compiled") == run(False, "eager")


def test_cli_flag():
    from minigrad import cli
    parser = cli.build_parser() if hasattr(cli, "build_parser") else None
    if parser is None:
        pytest.skip("no parser builder")
    args = parser.parse_args(["train", "--no-compile"])
    assert args.no_compile
    assert "--no-compile" in cli.command_line(args, "train")


def test_compile_rejects_non_callable():
    with pytest.raises(TypeError, match="expected a function"):
        mg.compile(3)


def test_module_changes_after_recording_are_followed():
    """A replay's constants come from the modules as they were recorded: a hyperparameter set later (dropout's p,
    a batch norm's momentum, ``freeze_batch_norm`` without freezing the affine), a replaced submodule or a replaced
    buffer must send the call to a new recording, never replay the old step (bit-identical to eager throughout)."""
    from minigrad.nn.utils import freeze_batch_norm

    def build():
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.3),
                             nn.Linear(32, 10))

    def changes(net):
        yield lambda: None
        yield lambda: None
        yield lambda: None  # replays from here
        yield lambda: setattr(net[4], "p", 0.6)
        yield lambda: setattr(net[2], "momentum", 0.5)
        yield lambda: freeze_batch_norm(net, freeze_affine=False)
        yield lambda: setattr(net, "5", nn.Linear(32, 10))
        yield lambda: setattr(net[2], "running_mean", mg.zeros(32))

    batches = _batches(8, 8)
    net_a, opt_a, step_a = _setup(build, "sgd")
    losses = []
    for change, (x, y) in zip(changes(net_a), batches):
        change()
        losses.append(step_a(x, y).data.tobytes())
    net_b, opt_b, step_b = _setup(build, "sgd")
    compiled = mg.compile(step_b)
    got = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for change, (x, y) in zip(changes(net_b), batches):
            change()
            got.append(compiled(x, y).data.tobytes())
    assert got == losses
    for (k, a), (_, b) in zip(net_a.state_dict().items(), net_b.state_dict().items()):
        assert a.tobytes() == b.tobytes(), k
