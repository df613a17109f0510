"""minigrad.compile: replayed training steps are bit-identical to eager; what cannot be replayed runs eagerly with
one warning; a side effect the recorder misses is caught by the check of the first replay (planted here)."""
import contextlib
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
    # NOTE: "sgd-plain": no momentum buffer (one would keep a parameter's old dtype)
    opt = {"sgd": lambda p: SGD(p, lr=0.05, momentum=0.9), "sgd-plain": lambda p: SGD(p, lr=0.05),
           "adam": lambda p: Adam(p, lr=1e-3)}[opt_name](net.parameters())

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return loss
    return net, opt, step


def _states(cfn):
    return [e.state for entries in cfn._cache.values() for e in entries]


def _assert_same_nets(net_a, net_b):
    for (k, a), (_, b) in zip(net_a.state_dict().items(), net_b.state_dict().items()):
        assert a.tobytes() == b.tobytes(), k
    for pa, pb in zip(net_a.parameters(), net_b.parameters()):
        assert (pa.grad is None) == (pb.grad is None)
        if pa.grad is not None:
            assert pa.grad.data.tobytes() == pb.grad.data.tobytes()


def _assert_same(net_a, opt_a, net_b, opt_b):
    _assert_same_nets(net_a, net_b)
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


def test_argument_requires_grad_and_dtype_record_again():
    """An argument's requires_grad flag and dtype key the recording as its shape does (read inline per call by
    capture._flatten_call): an input that starts needing its gradient is a new recording (one that runs eagerly,
    with one warning: a gradient into an argument is not replayed), never the replay of the old one."""
    w = mg.Tensor(np.linspace(-1.0, 1.0, 6).reshape(2, 3), requires_grad=True)
    opt = SGD([w], lr=0.0)

    def step(x):
        opt.zero_grad()
        loss = (x * w).sum() * 3.0
        loss.backward()
        return loss
    compiled = mg.compile(step)
    base = np.arange(6.0).reshape(2, 3)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for data, grad in ((base, False), (base, True), (base.astype(np.float32), False), (base, True)):
            for _ in range(3):
                x = mg.Tensor(data, requires_grad=grad)
                assert compiled(x).data.tobytes() == (3.0 * (data * w.data).sum()).tobytes()
                np.testing.assert_array_equal(w.grad.data, 3.0 * data)
                if grad:
                    np.testing.assert_array_equal(x.grad.data, 3.0 * w.data)
    assert len(seen) == 1 and "gradient into a tensor made inside the step" in str(seen[0].message)
    assert sorted(_states(compiled)) == ["checked", "checked", "eager"]


def test_call_after_a_replay_keys_as_the_full_lookup():
    """Right after a replay, a call with the same arguments skips building the key (capture._same_call); grad mode,
    the thread count, the backend, an argument's shape, dtype or requires_grad flag, a keyword argument and a second
    recording under the same key each still lead to the recording the full lookup finds: every result bit for bit
    eager's, every recording replayed."""
    net_a, opt_a, step_a = _setup(lambda: build_model("mlp"), "sgd")  # NOTE: no BN: it takes a float64 input too
    net_b, opt_b, step_b = _setup(lambda: build_model("mlp"), "sgd")

    def step(step_fn, net):
        def run(x, y, scale=1.0):
            if not mg.is_grad_enabled():  # NOTE: grad mode keys the recording: a branch on it is allowed
                return F.cross_entropy(net(x), y) * scale
            return step_fn(x, y) * scale
        return run
    eager, compiled = step(step_a, net_a), mg.compile(step(step_b, net_b))
    (x, y), = _batches(1, 16)
    threads = mg.get_num_threads()
    # NOTE: each change comes right after replays of the first recording, whose fast match it must not take
    changes = [dict(grad=False), dict(threads=1 if threads > 1 else 2), dict(backend="numpy"),
               dict(x=x.data[:8], y=y.data[:8]), dict(x=x.data.astype(np.float64)), dict(kw=True)]
    variants = [dict()] + [v for change in changes for v in (change, dict())]
    try:
        for v in variants:
            xv, yv = mg.Tensor(v.get("x", x.data)), mg.Tensor(v.get("y", y.data))
            mg.set_num_threads(v.get("threads", threads))
            grad_mode = mg.no_grad() if v.get("grad", True) is False else contextlib.nullcontext()
            with mg.using_backend(v.get("backend", mg.get_backend())), grad_mode:
                for _ in range(4):
                    kw = dict(scale=2.0) if "kw" in v else {}
                    assert compiled(xv, yv, **kw).data.tobytes() == eager(xv, yv, **kw).data.tobytes(), v
    finally:
        mg.set_num_threads(threads)
    _assert_same(net_a, opt_a, net_b, opt_b)
    assert _states(compiled) == ["checked"] * 7
    # an argument that starts needing its gradient: a new recording (eager, one warning), not the last replay
    with pytest.warns(RuntimeWarning, match="gradient into a tensor made inside the step"):
        for _ in range(3):
            xg = mg.Tensor(x.data, requires_grad=True)
            assert compiled(xg, y).data.tobytes() == eager(mg.Tensor(x.data, requires_grad=True), y).data.tobytes()
    _assert_same(net_a, opt_a, net_b, opt_b)


def test_op_keywords_that_are_not_names_replay():
    """An op's constant keyword arguments are written as named keywords in the replay's source; keys that cannot be
    (a Python keyword, a string that is no identifier) go through a ** dict instead, and the step still replays."""
    class Scale(mg.Function):
        def forward(self, x, **kw):
            self.k = kw["lambda"] * kw["a-b"] * kw["plain"]
            return x * self.k

        def backward(self, g):
            return g * self.k

    w = mg.Tensor(np.linspace(-1.0, 1.0, 6), requires_grad=True)
    opt = SGD([w], lr=0.0)

    def step(x):
        opt.zero_grad()
        loss = Scale.apply(x * w, **{"lambda": 2.0, "a-b": 3.0, "plain": 0.5}).sum()
        loss.backward()
        return loss
    compiled = mg.compile(step)
    x = mg.Tensor(np.arange(6.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(4):
            assert compiled(x).data.tobytes() == (3.0 * (x.data * w.data)).sum().tobytes()
            np.testing.assert_array_equal(w.grad.data, 3.0 * x.data)
    assert _states(compiled) == ["checked"]
    (entry,) = compiled._cache.values()
    assert "**k" in entry[0].trace.src


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
    """A mask made from a tensor's ``.data`` (outside every op and host computation) is a constant of the
    recording: the second recording differs and the step runs eagerly."""
    def make():
        net, opt, _ = _setup(lambda: build_model("mlp"), "sgd")

        def step(x, y):
            h = net(x)
            loss = F.cross_entropy(h * mg.Tensor((h.data > 0).astype(np.float32)), y)
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


def test_replay_frees_what_eager_frees():
    """Between replayed steps no context keeps what its forward saved (eager drops the node after its backward),
    and a step's peak of traced memory is no more than eager's: a replay keeping every activation in its locals
    and every context's saved arrays until the next forward held 49 MiB of ResNet-20 between steps."""
    import gc
    import tracemalloc

    peaks = []
    for compiled in (False, True):
        net, opt, step = _setup(lambda: build_model("lenet-bn"), "sgd")
        fn = mg.compile(step) if compiled else step
        x, y = _batches(1, 16)[0]
        for _ in range(3):
            fn(x, y)
        gc.collect()
        tracemalloc.start()
        fn(x, y)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    (entry,) = [e for entries in fn._cache.values() for e in entries]
    assert entry.state == "checked" and entry.trace.released
    for ctx, names in entry.trace.released:
        assert all(getattr(ctx, k) is None for k in names), type(ctx).__name__
    assert peaks[1] <= peaks[0]


def test_retain_graph_inside_replays_and_keeps_nothing_wrong():
    """A step that backwards with retain_graph=True (and again, adding to the gradients) replays bit for bit;
    its contexts' saved arrays are not released, which the second walk needs."""
    def make(net, opt):
        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(net(x), y)
            loss.backward(retain_graph=True)
            loss.backward()
            opt.step()
            return loss
        return step
    net_a, opt_a, _ = _setup(lambda: build_model("mlp-bn"), "sgd")
    net_b, opt_b, _ = _setup(lambda: build_model("mlp-bn"), "sgd")
    eager, compiled = make(net_a, opt_a), mg.compile(make(net_b, opt_b))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for x, y in _batches(4, 8):
            assert eager(x, y).data.tobytes() == compiled(x, y).data.tobytes()
    _assert_same(net_a, opt_a, net_b, opt_b)
    assert _states(compiled) == ["checked"]


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


# ------------------------------------------------------------------ layers that replay (docs/compile.md's survey)

def _conv(norm, dtype=np.float32):
    """A conv net around ``norm`` (a module over (N, 4, 6, 6)) for (N, 3, 6, 6) input, 144 logits."""
    return lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, dtype=dtype), norm(), nn.Flatten())


def _replays_like_eager(build, loss=F.cross_entropy, make_opt=None, make_sched=None, steps=6, dtype=np.float32,
                        targets=None, expect="checked"):
    """The same steps eagerly and compiled, each from the same seed: losses, state_dict, gradients, optimizer and
    scheduler state bit for bit equal; with ``expect='checked'`` no fallback warning (the step replayed)."""
    rng = np.random.default_rng(0)
    xs = [mg.Tensor(rng.standard_normal((8, 3, 6, 6)).astype(dtype)) for _ in range(steps)]
    ys = targets if targets is not None else [mg.Tensor(rng.integers(0, 144, 8)) for _ in range(steps)]
    make_opt = make_opt or (lambda p: SGD(p, lr=0.05, momentum=0.9))

    def run(compiled):
        mg.manual_seed(0)
        net = build()
        opt = make_opt(net.parameters())
        sched = make_sched(opt) if make_sched else None

        def step(x, y):
            opt.zero_grad()
            out = loss(net(x), y)
            out.backward()
            opt.step()
            if sched is not None:
                sched.step()
            return out
        fn = mg.compile(step) if compiled else step
        return net, opt, sched, fn, [fn(x, y).data.tobytes() for x, y in zip(xs, ys)]
    net_a, opt_a, sched_a, _, losses_a = run(False)
    rng_a = mg.random.get_rng_state()
    with warnings.catch_warnings():
        if expect == "checked":
            warnings.simplefilter("error")  # NOTE: a fallback warning fails the test: these steps must replay
        net_b, opt_b, sched_b, compiled, losses_b = run(True)
    assert losses_b == losses_a
    assert mg.random.get_rng_state() == rng_a
    _assert_same(net_a, opt_a, net_b, opt_b)
    assert [g["lr"] for g in opt_a.param_groups] == [g["lr"] for g in opt_b.param_groups]
    if sched_a is not None:
        assert sched_a.state_dict() == sched_b.state_dict()
    assert _states(compiled) == [expect]
    return net_a, net_b


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("warmup_steps", [0, 2])
def test_batch_renorm_replays(warmup_steps, dtype):
    """r and d compare the batch with the running statistics of that step, and the warmup schedule opens the clip
    bounds step by step (warmup_steps=2: bounds 1/0, 1/0, then half-open, then full within the 6 steps)."""
    net_a, net_b = _replays_like_eager(_conv(lambda: nn.BatchRenorm2d(4, warmup_steps=warmup_steps, dtype=dtype),
                                             dtype), dtype=dtype)
    assert int(net_b[1].num_batches_tracked.data) == 6


@pytest.mark.parametrize("layer", [lambda: nn.BatchRenorm2d(4), lambda: nn.BatchNorm2d(4),
                                   lambda: nn.DecorrelatedBatchNorm2d(4, group_size=3), lambda: nn.EvoNorm2d(4)],
                         ids=["batch_renorm", "batch_norm", "decorrelated", "evonorm"])
def test_running_statistics_given_new_arrays_are_followed(layer):
    """A buffer's ``.data`` replaced between replayed steps (a new array, same tensor) is read and updated there."""
    batches = _batches(6, 8, shape=(3, 6, 6))
    runs = []
    for compiled in (False, True):
        net, opt, step = _setup(_conv(layer), "sgd")
        fn = mg.compile(step) if compiled else step
        losses = []
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for i, (x, y) in enumerate(batches):
                if i == 4:
                    for name, b in net[1].named_buffers():
                        b.data = b.data * 0.5 if b.data.dtype.kind == "f" else b.data.copy()
                losses.append(fn(x, y).data.tobytes())
        runs.append((losses, {k: v.tobytes() for k, v in net.state_dict().items()}))
    assert runs[0] == runs[1]


def test_batch_renorm1d_replays():
    _replays_like_eager(lambda: nn.Sequential(nn.Flatten(), nn.Linear(108, 144), nn.BatchRenorm1d(144, r_max=1.5,
                                                                                                  d_max=0.5)))


@pytest.mark.parametrize("momentum", [0.1, None])
def test_decorrelated_batch_norm_replays(momentum):
    """Its running mean, covariance and whitening (and, with momentum=None, the cumulative average's count)."""
    net_a, net_b = _replays_like_eager(_conv(lambda: nn.DecorrelatedBatchNorm2d(4, group_size=3,
                                                                                 momentum=momentum)))
    assert int(net_b[1].num_batches_tracked.data) == 6


@pytest.mark.parametrize("version", ["B0", "S0"])
def test_evonorm_replays(version):
    _replays_like_eager(_conv(lambda: nn.EvoNorm2d(4, version=version, num_groups=2)))


def _spectral():
    from minigrad.nn.utils.parametrizations import spectral_norm
    return nn.Sequential(spectral_norm(nn.Conv2d(3, 4, 3, padding=1)), nn.Flatten())


@pytest.mark.parametrize("build", [
    _conv(lambda: nn.EvoNorm2d(4)), _spectral, _conv(lambda: nn.BatchRenorm2d(4, warmup_steps=1)),
    _conv(lambda: nn.DecorrelatedBatchNorm2d(4, group_size=3)), _conv(nn.ELU),
], ids=["evonorm-b0", "spectral_norm", "batch_renorm", "decorrelated", "elu"])
def test_eval_recording_follows_training(build):
    """An eval recording replayed after more training reads the state of its time: EvoNorm-B0's running variance
    and spectral norm's u and v were constants of the recording (wrong eval outputs after training again)."""
    nets = []
    for compiled in (False, True):
        mg.manual_seed(0)
        net = build()
        opt = SGD(net.parameters(), lr=0.05)

        def step(x, y, net=net, opt=opt):
            opt.zero_grad()
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
            return loss
        evaluate = mg.no_grad()(lambda x, net=net: net(x))
        nets.append((net, mg.compile(step) if compiled else step, mg.compile(evaluate) if compiled else evaluate))
    batches = _batches(4, 8, shape=(3, 6, 6))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            outs = []
            for net, step, evaluate in nets:
                net.train()
                losses = [step(x, y).data.tobytes() for x, y in batches]
                net.eval()
                outs.append((losses, [evaluate(x).data.tobytes() for x, _ in batches]))
            assert outs[0] == outs[1]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss_replays_with_weights_and_ignored_targets(weighted, reduction):
    """Class weights and the mean's divisor come from each step's target: the ignored targets change from step to
    step (a replay that kept the first step's divisor gave wrong losses)."""
    w = mg.Tensor(np.linspace(0.5, 2.0, 144).astype(np.float32)) if weighted else None
    rng = np.random.default_rng(1)
    targets = []
    for i in range(6):
        y = rng.integers(0, 144, 8)
        y[:max(i - 1, 0)] = -100  # none ignored in the first two steps (recorded and checked), more later
        targets.append(mg.Tensor(y))

    def loss(out, y):
        r = F.nll_loss(F.log_softmax(out, 1), y, weight=w, reduction=reduction)
        return r.sum() if reduction == "none" else r
    _replays_like_eager(_conv(nn.Identity), loss=loss, targets=targets)


@pytest.mark.parametrize("make_loss", [
    lambda w: (lambda o, y: F.cross_entropy(o, y, weight=w)),
    lambda w: (lambda o, y: F.cross_entropy(o, y, weight=w, label_smoothing=0.1, ignore_index=3)),
    lambda w: nn.CrossEntropyLoss(weight=w, reduction="sum"),
    lambda w: (lambda o, y: nn.NLLLoss(weight=w)(F.log_softmax(o, 1), y)),
], ids=["ce", "ce-smoothing-ignore", "CrossEntropyLoss-sum", "NLLLoss"])
def test_weighted_losses_replay(make_loss):
    _replays_like_eager(_conv(nn.Identity), loss=make_loss(mg.Tensor(np.linspace(0.5, 2.0, 144).astype(np.float32))))


@pytest.mark.parametrize("act", [nn.ELU, nn.LeakyReLU], ids=["elu", "leaky_relu"])
def test_masked_activations_replay(act):
    """Their masks (x > 0) are comparisons, computed again on replay."""
    _replays_like_eager(_conv(act))


def test_comparison_mask_replays():
    """A mask made by a comparison of tensors is computed again on replay (it was a constant of the recording)."""
    class Masked(nn.Module):
        def forward(self, x):
            return x * (x > 0.1).float() + x * ~(x <= -0.1) + x * (x.sum() > 0).float()  # a 0-d mask too
    _replays_like_eager(_conv(Masked))


def test_max_unpool_replays():
    """The pool's indices are each replay's own (they were the recording's), checked again on replay."""
    class PoolUnpool(nn.Module):
        def __init__(self):
            super().__init__()
            self.pool, self.unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)

        def forward(self, x):
            return self.unpool(*self.pool(x))
    _replays_like_eager(_conv(PoolUnpool))


def test_dropout2d_replays():
    _replays_like_eager(_conv(lambda: nn.Dropout2d(0.3)))


def test_spectral_norm_replays():
    """The power iteration updates the buffers u and v in place each training step."""
    from minigrad.nn.utils.parametrizations import spectral_norm
    _replays_like_eager(lambda: nn.Sequential(spectral_norm(nn.Conv2d(3, 4, 3, padding=1)), nn.Flatten()))


@pytest.mark.parametrize("make_sched", [
    lambda o: mg.optim.lr_scheduler.StepLR(o, 2, gamma=0.5),
    lambda o: mg.optim.lr_scheduler.OneCycleLR(o, 0.1, total_steps=10),
    lambda o: mg.optim.lr_scheduler.LambdaLR(o, lambda e: 0.9 ** e),
    lambda o: mg.optim.lr_scheduler.SequentialLR(o, [mg.optim.lr_scheduler.LinearLR(o, 0.5, total_iters=2),
                                                     mg.optim.lr_scheduler.ExponentialLR(o, 0.9)], milestones=[3]),
], ids=["step", "one-cycle", "lambda", "sequential"])
@pytest.mark.parametrize("opt_name", ["sgd", "adamw"])
def test_scheduler_step_inside_replays(make_sched, opt_name):
    from minigrad.optim import AdamW
    make_opt = (lambda p: SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)) if opt_name == "sgd" \
        else (lambda p: AdamW(p, lr=1e-2, weight_decay=0.1))
    _replays_like_eager(_conv(nn.Identity), make_opt=make_opt, make_sched=make_sched)


@pytest.mark.parametrize("set_to_none", [True, False])
def test_module_zero_grad_inside_replays(set_to_none):
    """``net.zero_grad()`` in the step (instead of the optimizer's) is recorded and made again on replay."""
    net, opt, _ = _setup(lambda: build_model("mlp-bn"), "sgd")
    net_b, opt_b, _ = _setup(lambda: build_model("mlp-bn"), "sgd")

    def make(net, opt):
        def step(x, y):
            net.zero_grad(set_to_none=set_to_none)
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
            return loss
        return step
    eager, compiled = make(net, opt), mg.compile(make(net_b, opt_b))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for x, y in _batches(5, 8):
            assert eager(x, y).data.tobytes() == compiled(x, y).data.tobytes()
    _assert_same(net, opt, net_b, opt_b)
    assert _states(compiled) == ["checked"]


def test_clip_grad_norm_inside_replays():
    """clip_grad_norm_ and clip_grad_value_ are host computations on the gradients: the step replays, its returned
    norm (a 0-d tensor, as PyTorch's) is each step's, and the parameters are eager's bit for bit."""
    from minigrad.nn.utils import clip_grad_norm_, clip_grad_value_

    def run(compiled):
        mg.manual_seed(0)
        net = _conv(nn.Identity)()
        opt = SGD(net.parameters(), lr=0.05)

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            clip_grad_value_(net.parameters(), 0.2)
            norm = clip_grad_norm_(net.parameters(), 0.5)
            opt.step()
            return loss, norm
        return net, (mg.compile(step) if compiled else step)
    batches = _batches(5, 8, shape=(3, 6, 6))
    net_a, eager = run(False)
    want = [tuple(t.data.tobytes() for t in eager(x, y)) for x, y in batches]
    net_b, compiled = run(True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = [tuple(t.data.tobytes() for t in compiled(x, y)) for x, y in batches]
    assert got == want
    assert len(set(n for _, n in want)) == len(want)  # the norm changes from step to step
    assert _states(compiled) == ["checked"]
    for (k, a), (_, b) in zip(net_a.state_dict().items(), net_b.state_dict().items()):
        assert a.tobytes() == b.tobytes(), k


@pytest.mark.parametrize("layer", [
    lambda: nn.BatchNorm2d(4, momentum=None), lambda: nn.BatchNorm2d(4, momentum=None, virtual_batch_size=3),
    lambda: nn.BatchRenorm2d(4, momentum=None), lambda: nn.BatchRenorm2d(4, momentum=None, warmup_steps=2),
    lambda: nn.InstanceNorm2d(4, momentum=None, track_running_stats=True),
    lambda: nn.Sequential(nn.BatchNorm2d(4, momentum=None), nn.ReLU()),
], ids=["batch_norm", "ghost", "batch_renorm", "batch_renorm_warmup", "instance_norm", "batch_norm_relu"])
def test_cumulative_average_replays(layer):
    """momentum=None divides by num_batches_tracked: the factor is read when the update runs (a host computation),
    so each replayed step divides by its own count; bit for bit eager's over 6 steps (the factor 1, 1/2, ...)."""
    net_a, net_b = _replays_like_eager(_conv(layer))
    bn = [m for m in net_b.modules() if getattr(m, "num_batches_tracked", None) is not None][0]
    assert int(bn.num_batches_tracked.data) == 6


def test_values_read_from_arrays_are_each_steps():
    """argmax/argmin, all/any, isnan/isinf/isfinite, logical_and/or are computed again on replay: batches whose
    results agree on the two recorded calls and differ later (an accuracy from a model that still predicts one
    class) give each step's values, never the recording's."""
    net = nn.Linear(4, 3)
    opt = SGD(net.parameters(), lr=0.0)

    def step(x, y):
        opt.zero_grad()
        logits = net(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        opt.step()
        pred = logits.argmax(1)
        nan = (x * 0 + x.max() - 100).isnan()
        return (loss, pred, logits.argmin(), (pred == y).float().mean(), (pred == y).all(), (pred == y).any(dim=0),
                nan.logical_or(x > 0), nan.logical_and(x > 0), x.isinf(), x.isfinite())
    compiled = mg.compile(step)
    rng = np.random.default_rng(0)
    base = rng.standard_normal((6, 4)).astype(np.float32)
    xs = [base, base + 1e-3, -base, 5 * base[::-1].copy(), base * np.inf]
    ys = [mg.Tensor(np.zeros(6, np.int64)), mg.Tensor(np.zeros(6, np.int64)), mg.Tensor(np.arange(6) % 3),
          mg.Tensor(np.ones(6, np.int64)), mg.Tensor(np.zeros(6, np.int64))]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for x, y in zip(xs[:4], ys):
            got = compiled(mg.Tensor(x), y)
            want = step(mg.Tensor(x), y)
            for g, w in zip(got, want):
                assert g.data.tobytes() == w.data.tobytes() and g.dtype == w.dtype and g.shape == w.shape
    assert _states(compiled) == ["checked"]


# ------------------------------------------------------------------ the bound path (capture._Trace._bind_linear)

def _bound_counts(compiled):
    return sorted(e.trace.n_bound for entries in compiled._cache.values() for e in entries)


def _small_mlp(bn, dtype):
    def build():
        layers = [nn.Linear(12, 16, bias=not bn)] + ([nn.BatchNorm1d(16)] if bn else []) + [nn.Sigmoid(),
                  nn.Linear(16, 16, bias=not bn)] + ([nn.BatchNorm1d(16)] if bn else []) + [nn.Sigmoid(),
                  nn.Linear(16, 10)]
        return nn.Sequential(*layers).to(dtype=dtype)
    return build


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bn", [True, False])
def test_bound_replay_bit_identical_to_eager(bn, dtype):
    """The replay with ``_Linear`` bound (np.matmul into arrays allocated at record time, its backward's products
    without the walk's no-op fix-ups): losses, parameters, gradients, momentum buffers and running statistics equal
    eager's bit for bit after every step, float32 and float64, with and without bias and BN."""
    rng = np.random.default_rng(3)
    batches = [(mg.Tensor(rng.standard_normal((10, 12)).astype(dtype)), mg.Tensor(rng.integers(0, 10, 10)))
               for _ in range(6)]
    compiled = _run_both(_small_mlp(bn, dtype), "sgd", batches)
    assert _bound_counts(compiled) == [6 if bn else 4]  # the linear layers, batch norm + sigmoid, cross entropy


def test_mlp_bn_model_is_bound():
    compiled = _run_both(lambda: build_model("mlp-bn"), "sgd", _batches(4, 12))
    assert _bound_counts(compiled) == [8]


def test_returned_outputs_never_overwritten_by_a_later_replay():
    """An output that escapes (the logits the step returns: a bound ``_Linear``'s output array, and a view of it) is
    copied out of the bound array: what the user kept from one step is not rewritten by the next replay."""
    def make(net, opt):
        def step(x, y):
            opt.zero_grad()
            logits = net(x)
            loss = F.cross_entropy(logits, y)
            loss.backward()
            opt.step()
            return logits, loss, logits.reshape(-1)
        return step
    net_a, opt_a, _ = _setup(lambda: build_model("mlp-bn"), "sgd")
    net_b, opt_b, _ = _setup(lambda: build_model("mlp-bn"), "sgd")
    eager, compiled = make(net_a, opt_a), mg.compile(make(net_b, opt_b))
    batches = _batches(5, 8)
    kept_a = [eager(x, y) for x, y in batches]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept_b = [compiled(x, y) for x, y in batches]
    for a, b in zip(kept_a, kept_b):
        for ta, tb in zip(a, b):
            assert ta.data.tobytes() == tb.data.tobytes()
    assert _bound_counts(compiled) == [8]
    _assert_same(net_a, opt_a, net_b, opt_b)


def test_bound_replay_records_again_for_mode_and_shape():
    """train/eval and a new batch size are new recordings, each bound and each replayed like eager."""
    test_train_eval_switch_and_shape_change_record_again()
    net, opt, step = _setup(lambda: build_model("mlp-bn"), "sgd")
    compiled = mg.compile(step)
    for mode in ("train", "eval"):
        getattr(net, mode)()
        for x, y in _batches(3, 8) + _batches(3, 5):
            compiled(x, y)
    assert _bound_counts(compiled) == [5, 5, 8, 8]  # eval: no batch norm + sigmoid


def test_live_tensor_of_another_dtype_is_a_new_recording():
    """Parameters given arrays of another dtype between steps (``p.data = ...``: not in the key) fail the
    recording's guard: a new recording, never the old one's bound output arrays of the recorded dtype (nor the
    walk's casts to it: before this guard the replay raised there); results stay eager's."""
    net_a, opt_a, step_a = _setup(_small_mlp(False, np.float32), "sgd-plain")
    net_b, opt_b, step_b = _setup(_small_mlp(False, np.float32), "sgd-plain")
    compiled = mg.compile(step_b)
    rng = np.random.default_rng(4)
    batches = [(mg.Tensor(rng.standard_normal((10, 12)).astype(np.float32)), mg.Tensor(rng.integers(0, 10, 10)))
               for _ in range(6)]
    for i, (x, y) in enumerate(batches):
        if i == 3:
            for net in (net_a, net_b):
                for p in net.parameters():
                    p.data = p.data.astype(np.float64)
        assert step_a(x, y).data.tobytes() == compiled(x, y).data.tobytes()
    assert _states(compiled) == ["checked", "checked"]
    _assert_same(net_a, opt_a, net_b, opt_b)


class _FanOut(nn.Module):
    """h feeds two linear layers and, as both operands, a third product: fan-out sums into a bound node's parent,
    across nodes and within one."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(12, 10), nn.Linear(10, 10), nn.Linear(10, 10, bias=False)

    def forward(self, x):
        h = F.sigmoid(self.a(x))
        return self.b(h) + self.c(h) + F.linear(h, h)[:, :10] * 0.01


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bound_replay_fan_out(dtype):
    rng = np.random.default_rng(5)
    batches = [(mg.Tensor(rng.standard_normal((10, 12)).astype(dtype)), mg.Tensor(rng.integers(0, 10, 10)))
               for _ in range(5)]
    compiled = _run_both(lambda: _FanOut().to(dtype=dtype), "sgd", batches)
    assert _bound_counts(compiled) == [4]


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_bound_cross_entropy_follows_ignored_targets(reduction):
    """The bound cross entropy takes its plain case when every target is valid, read per replay: a batch with an
    ignored target runs the node's own forward and backward (the general case), as eager does."""
    def make(net, opt):
        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(net(x), y, ignore_index=-1, reduction=reduction)
            loss.backward()
            opt.step()
            return loss
        return step
    net_a, opt_a, _ = _setup(lambda: build_model("mlp-bn"), "sgd")
    net_b, opt_b, _ = _setup(lambda: build_model("mlp-bn"), "sgd")
    eager, compiled = make(net_a, opt_a), mg.compile(make(net_b, opt_b))
    batches = _batches(6, 8)
    for i in (3, 5):
        batches[i][1].data[[1, 4]] = -1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for x, y in batches:
            assert eager(x, y).data.tobytes() == compiled(x, y).data.tobytes()
            _assert_same(net_a, opt_a, net_b, opt_b)
    assert _bound_counts(compiled) == [8]
