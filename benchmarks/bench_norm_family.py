"""The normalization family beyond PyTorch (Batch Renorm, ghost batch norm, FRN + TLU, EvoNorm-B0/S0, decorrelated
batch norm) through autograd, every backend beside the same method written with PyTorch ops (what a PyTorch user
writes today; PyTorch has none of them as a module).

Ops: ``forward`` (the functional on tensors that need no gradient), ``backward`` (``.backward(dy)`` of a graph
built once, ``retain_graph=True``) and ``fwd+bwd`` (inputs and parameters require grad, then ``.backward(dy)``).
Each case checks minigrad's result against the torch composition once, before timing.

Byte model (``BYTES``, per method and op, in |x|-sized float arrays): the least any implementation must move. Every
method here is one statistics pass (reads x) and one elementwise pass (reads x, writes y) forward, a sums pass
(reads dy, x) and an elementwise pass (reads dy, x, writes dx) backward: 3, 5 and 8 |x|, as batch norm's. The
elementwise steps (TLU's max, a phase of its own since the fused FRN + TLU; EvoNorm's gate and max, the
per-channel affine) fit in those passes
(the backward recomputes them from x), and EvoNorm-B0's batch variance is a combination of its instance
statistics, so the floor holds for them too. ``frac_of_triad`` (``conftest.record``) is that floor's GB/s over
the same run's triad; a method that makes more passes than the floor shows it as a lower fraction.
DecorrelatedBN2d is not memory-bound: its covariance and whitening are g x g matrix products per sample
(2g flops per element each way, g=16 here) and an eigendecomposition per group; its fraction is quoted for
completeness only.
"""
import numpy as np
import pytest

from conftest import backend_or_skip, check_close, pin_threads, record, shape_id, torch_or_skip

DTYPE = np.float32
EPS = 1e-5
SHAPES = [(16, 32, 8, 8), (32, 64, 16, 16)]  # 128 KB and 2 MB of float32
VIRTUAL_BATCH = 4
GROUPS = 8
DBN_GROUP = 16
# "FRN+TLU" is F.filter_response_norm_tlu (the fused pair, what nn.Sequential runs for FilterResponseNorm2d then
# TLU); "FRN+TLU unfused" is F.tlu(F.filter_response_norm(...)), for the A/B
# (scripts/norm_family_ab.py --methods FRN+TLU --before " unfused"), not a target
# "EvoNormB0 composed" / "EvoNormS0 composed" are the EvoNorms as composed autograd ops (what the functionals were
# before the gate phases; now their double backward), for the A/B (scripts/norm_family_ab.py), not targets
METHODS = ["BatchRenorm2d", "GhostBatchNorm2d", "FRN+TLU", "FRN+TLU unfused",
           "EvoNormB0", "EvoNormB0 composed", "EvoNormS0", "EvoNormS0 composed", "DecorrelatedBN2d"]
OPS = ["forward", "backward", "fwd+bwd"]
# method -> op -> |x|-sized transfers of the byte model (module docstring)
BYTES = {m: {"forward": 3, "backward": 5, "fwd+bwd": 8} for m in METHODS}


def _arrays(shape):
    rng = np.random.default_rng(0)
    c = shape[1]
    x = (rng.standard_normal(shape) * 2 + 0.5).astype(DTYPE)
    dy = rng.standard_normal(shape).astype(DTYPE)
    w = (1 + 0.1 * rng.standard_normal(c)).astype(DTYPE)
    b = (0.1 * rng.standard_normal(c)).astype(DTYPE)
    v = (1 + 0.1 * rng.standard_normal(c)).astype(DTYPE)  # EvoNorm's v, TLU's tau
    rm = (0.1 * rng.standard_normal(c)).astype(DTYPE)
    rv = (1 + 0.5 * rng.random(c)).astype(DTYPE)
    return dict(x=x, dy=dy, w=w, b=b, v=v, rm=rm, rv=rv)


def _minigrad(method, a, op):
    """(run, result) for minigrad: run() does one ``op``."""
    import minigrad as mg
    import minigrad.nn.functional as F
    import minigrad.nn.functional.norm_family as NF

    grad = op != "forward"
    x, w, b, v = (mg.Tensor(a[k], requires_grad=grad) for k in ("x", "w", "b", "v"))
    eps_t = mg.Tensor(np.full(1, 1e-6, DTYPE), requires_grad=grad)
    out = {}

    def forward():
        if method == "BatchRenorm2d":
            return F.batch_renorm(x, mg.Tensor(a["rm"].copy()), mg.Tensor(a["rv"].copy()), w, b, True, 0.1, EPS,
                                  1.5, 0.5)
        if method == "GhostBatchNorm2d":
            return F.batch_norm(x, None, None, w, b, True, 0.1, EPS, virtual_batch_size=VIRTUAL_BATCH)
        if method == "FRN+TLU":
            return F.filter_response_norm_tlu(x, w, b, v, eps_t)
        if method == "FRN+TLU unfused":
            return F.tlu(F.filter_response_norm(x, w, b, eps_t), v)
        if method == "EvoNormB0":
            return F.evonorm_b0(x, v, None, w, b, training=True, eps=EPS)
        if method == "EvoNormS0":
            return F.evonorm_s0(x, v, GROUPS, w, b, eps=EPS)
        if method == "EvoNormB0 composed":
            return NF._evonorm_b0_composed(x, v, NF._SetStd.apply(x, rows=None, eps=EPS), w, b, EPS)
        if method == "EvoNormS0 composed":
            return NF._evonorm_s0_composed(x, v, GROUPS, w, b, EPS)
        return dbn(x)

    if method == "DecorrelatedBN2d":
        dbn = mg.nn.DecorrelatedBatchNorm2d(x.shape[1], group_size=DBN_GROUP, eps=EPS)
        dbn.weight, dbn.bias = w, b  # the same parameter tensors as the other methods
    params = (x, w, b, v, eps_t, *(() if method != "DecorrelatedBN2d" else (dbn.weight, dbn.bias)))
    return _runner(forward, params, a["dy"], op, lambda t: t.numpy(), out)


def _runner(forward, params, dy, op, to_numpy, out, no_grad=None):
    """(run, result) for one op: ``forward`` builds y; ``backward`` reuses one graph (``retain_graph``)."""
    x, w, b = params[:3]

    def zero():
        for t in params:
            t.grad = None

    if op == "forward":
        def run():
            if no_grad is None:
                out["y"] = forward()
            else:
                with no_grad():
                    out["y"] = forward()
    elif op == "backward":
        out["y"] = forward()

        def run():
            zero()
            out["y"].backward(dy, retain_graph=True)
    else:
        def run():
            zero()
            out["y"] = forward()
            out["y"].backward(dy)

    def result():
        got = [to_numpy(out["y"])]
        return got if op == "forward" else got + [to_numpy(t.grad) for t in (x, w, b)]

    return run, result


def _torch_zca(torch, x, w, b, group, eps):
    """Decorrelated batch norm as a PyTorch user writes it: ZCA whitening per group of channels with
    ``torch.linalg.eigh`` (C divisible by the group size here), then the per-channel affine."""
    n, c, h, wd = x.shape
    G, m = c // group, n * h * wd
    X = x.reshape(n, G, group, h * wd).permute(1, 2, 0, 3).reshape(G, group, m)
    xc = X - X.mean(2, keepdim=True)
    cov = xc @ xc.transpose(1, 2) / m + eps * torch.eye(group, dtype=x.dtype)
    lam, U = torch.linalg.eigh(cov)
    W = (U * lam.rsqrt().unsqueeze(1)) @ U.transpose(1, 2)
    y = (W @ xc).reshape(G, group, n, h * wd).permute(2, 0, 1, 3).reshape(x.shape)
    return y * w.view(1, -1, 1, 1) + b.view(1, -1, 1, 1)


def _torch(torch, method, a, op):
    """(run, result) for the same method written with torch ops."""
    TF = torch.nn.functional
    grad = op != "forward"
    x, w, b, v = (torch.tensor(a[k], requires_grad=grad) for k in ("x", "w", "b", "v"))
    eps_t = torch.full((1,), 1e-6, requires_grad=grad)
    W, B, V = (t.view(1, -1, 1, 1) for t in (w, b, v))
    n = x.shape[0]
    out = {}

    def forward():
        if method == "BatchRenorm2d":
            rm, rv = torch.tensor(a["rm"]), torch.tensor(a["rv"])
            with torch.no_grad():
                sigma = (rv + EPS).sqrt()
                r = ((x.var((0, 2, 3), unbiased=False) + EPS).sqrt() / sigma).clamp(1 / 1.5, 1.5)
                d = ((x.mean((0, 2, 3)) - rm) / sigma).clamp(-0.5, 0.5)
            return TF.batch_norm(x, rm, rv, w * r, b + w * d, training=True, momentum=0.1, eps=EPS)
        if method == "GhostBatchNorm2d":
            return torch.cat([TF.batch_norm(chunk, None, None, w, b, training=True, eps=EPS)
                              for chunk in x.split(VIRTUAL_BATCH)])
        if method.startswith("FRN+TLU"):
            nu2 = x.pow(2).mean(dim=(2, 3), keepdim=True)
            return torch.maximum(x * torch.rsqrt(nu2 + eps_t.abs()) * W + B, V)
        if method.startswith("EvoNormB0"):
            batch_std = (x.var(dim=(0, 2, 3), unbiased=False, keepdim=True) + EPS).sqrt()
            inst_std = (x.var(dim=(2, 3), unbiased=False, keepdim=True) + EPS).sqrt()
            return x / torch.maximum(batch_std, V * x + inst_std) * W + B
        if method.startswith("EvoNormS0"):
            g = x.reshape(n, GROUPS, -1)
            std = (g.var(dim=2, unbiased=False, keepdim=True) + EPS).sqrt()
            return ((x * torch.sigmoid(V * x)).reshape(n, GROUPS, -1) / std).reshape(x.shape) * W + B
        return _torch_zca(torch, x, w, b, DBN_GROUP, EPS)

    return _runner(forward, (x, w, b, v, eps_t), torch.tensor(a["dy"]), op, lambda t: t.detach().numpy(), out,
                   no_grad=torch.no_grad)


@pytest.mark.parametrize("shape", SHAPES, ids=[shape_id(s) for s in SHAPES])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("op", OPS, ids=[o.replace("+", "") for o in OPS])
@pytest.mark.parametrize("backend", ["numpy", "cython", "numba", "torch"])
def test_norm_family(benchmark, backend, op, method, shape, threads):
    torch = torch_or_skip()
    a = _arrays(shape)
    restore = pin_threads(threads)  # again: torch (and numba) may have been imported just now
    ctx = None
    try:
        want_run, want = _torch(torch, method, a, op)
        want_run()
        if backend == "torch":
            run, result = want_run, want
        else:
            import minigrad as mg

            backend_or_skip(backend)
            ctx = mg.using_backend(backend)
            ctx.__enter__()
            run, result = _minigrad(method, a, op)
        run()  # JIT compile / warm up, outside the timing
        for i, (got, ref) in enumerate(zip(result(), want())):
            scale = float(np.max(np.abs(ref))) or 1.0
            check_close(got, ref, f"{method} {op} {backend} output {i}", rtol=1e-3, atol=1e-4 * scale)
        benchmark.group = f"{method} {op} {shape_id(shape)} threads{threads}"
        benchmark(run)
        record(benchmark, op=op, backend=backend, shape=shape, threads=threads, dtype=DTYPE, norm=method,
               factor=BYTES[method][op])
    finally:
        if ctx is not None:
            ctx.__exit__(None, None, None)
        restore()


# ------------------------------------------------------------------ the phase kernels, one at a time
# The whole ops above cost 8-16 us of Python a call at 16x32x8x8, which hides whether a kernel runs at the memory
# limit. test_norm_family_phases calls each kernel of one fwd+bwd directly, with the arguments the functional
# passes it (recorded once by _trace), through the registry's checked entry (``kernels.load(backend).kernel``) and
# through the raw module function (the same call without the contract's checks: their cost is the difference).
# Byte model of a kernel: every array argument once, read if it is an input, written if an output, both if IN/OUT
# (minigrad.kernels.contract's SPECS and OUTPUTS): what it must move when its data stay in cache between its own
# passes. ``passes_bytes`` (informational) counts an |x|-sized array once per pass of the kernels that fuse phases
# (``PASSES``), the family byte model of the module docstring.

# method -> the kernel calls of one fwd+bwd through autograd, in order (the same on every backend and both shapes;
# _trace checks it)
PHASES = {
    "BatchRenorm2d": ["batch_renorm_forward", "running_stats_update", "batch_norm_backward"],
    "GhostBatchNorm2d": ["ghost_batch_norm_forward", "ghost_batch_norm_backward"],
    "FRN+TLU": ["row_norm_apply_max", "row_norm_backward_max"],
    "EvoNormB0": ["evonorm_b0_forward", "evonorm_b0_backward"],
    "EvoNormS0": ["row_stats", "row_apply_gate", "evonorm_s0_backward"],
    "DecorrelatedBN2d": ["zca_forward", "zca_running_update", "zca_backward_p1", "zca_backward_dx"],
}
# the arguments a kernel reads and writes back (IN/OUT in the contract)
IN_OUT = {"running_stats_update": ("running_mean", "running_var"), "running_average_update": ("running",),
          "zca_running_update": ("running_mean", "running_cov", "running_whitening")}
# kernel -> |x|-sized transfers over its passes (statistics reads x, apply reads x and writes y, sums read dy and x,
# backward apply reads dy and x and writes dx); zca_forward: mean, covariance and whitening passes over x, writes y
PASSES = {"batch_renorm_forward": 3, "ghost_batch_norm_forward": 3, "row_norm_apply_max": 3,
          "batch_norm_backward": 5, "ghost_batch_norm_backward": 5, "row_norm_backward_max": 5,
          "evonorm_s0_backward": 5, "evonorm_b0_forward": 3, "evonorm_b0_backward": 5, "zca_forward": 4,
          "zca_backward_p1": 2, "zca_backward_dx": 3}
PHASE_CASES = [(m, i) for m, ks in PHASES.items() for i in range(len(ks))]
_TRACES = {}


def phase_label(method, i):
    """``kernel`` or ``kernel#k`` (the k-th call of a kernel that one fwd+bwd calls several times)."""
    ks = PHASES[method]
    return ks[i] + (f"#{ks[:i].count(ks[i]) + 1}" if ks.count(ks[i]) > 1 else "")


def _copy(a):
    return a.copy() if isinstance(a, np.ndarray) else a


def _trace(method, shape, backend):
    """[(kernel, arguments, outputs, keywords)] of one fwd+bwd of ``method`` on ``backend``: the arguments and
    keywords copied before the call, the outputs (contract.OUTPUTS) copied after it."""
    key = (method, tuple(shape), backend)
    if key in _TRACES:
        return _TRACES[key]
    import minigrad as mg
    from minigrad import kernels
    from minigrad.kernels import contract

    calls, registry = [], kernels.kernels

    class Recorder:
        def __init__(self, backend_obj):
            self.backend_obj = backend_obj

        def __getattr__(self, kernel):
            if kernel == "module":  # NOTE: a backward's unchecked call: the module's function, the thread count last
                return Recorder(self.backend_obj.module)
            fn = getattr(self.backend_obj, kernel)

            def call(*args, **options):  # options: the contract's keywords (contract.OPTIONS), e.g. Batch Renorm's r, d
                before = [_copy(a) for a in args[:len(contract.SPECS[kernel][0])]]
                kept = {name: _copy(a) for name, a in options.items()}
                out = fn(*args, **options)
                outs = contract.OUTPUTS[kernel]
                calls.append((kernel, before, {n: _copy(a) for n, a in zip(contract.SPECS[kernel][0], args)
                                               if n in outs}, kept))
                return out
            return call

    kernels.kernels = lambda: Recorder(registry())
    try:
        with mg.using_backend(backend):
            run, _ = _minigrad(method, _arrays(shape), "fwd+bwd")
            run()
    finally:
        kernels.kernels = registry
    got = [c[0] for c in calls]
    assert got == PHASES[method], f"{method} on {backend} calls {got}, PHASES says {PHASES[method]}"
    _TRACES[key] = calls
    return calls


def phase_bytes(kernel, args):
    """(bytes read + written, bytes of the distinct arrays) of one call (the byte model above)."""
    from minigrad.kernels import contract

    names, outs, both = contract.SPECS[kernel][0], contract.OUTPUTS[kernel], IN_OUT.get(kernel, ())
    moved = footprint = 0
    for name, a in zip(names, args):
        if isinstance(a, np.ndarray):
            moved += a.nbytes * (2 if name in both else 1)
            footprint += a.nbytes
    return moved, footprint


@pytest.mark.parametrize("shape", SHAPES, ids=[shape_id(s) for s in SHAPES])
@pytest.mark.parametrize("case", PHASE_CASES, ids=[f"{m}-{phase_label(m, i)}" for m, i in PHASE_CASES])
@pytest.mark.parametrize("entry", ["checked", "raw"])
@pytest.mark.parametrize("backend", ["numpy", "cython", "numba"])
def test_norm_family_phases(benchmark, backend, entry, case, shape, threads):
    from conftest import llc_bytes
    from minigrad import kernels
    from minigrad.kernels import contract

    backend_or_skip(backend)
    method, i = case
    restore = pin_threads(threads)
    try:
        kernel, args, outputs, options = _trace(method, shape, backend)[i]
        if entry == "checked":
            fn, extra = getattr(kernels.load(backend), kernel), ()
        else:  # the thread count the checked entry would pass
            n = contract._checked(kernel, tuple(args))[1]
            fn, extra = getattr(kernels.load(backend).module, kernel), (1 if n < contract.small(kernel) else threads,)
        # the replay computes what the functional's call did, bit for bit (once, outside the timing)
        fresh = [_copy(a) for a in args]
        fn(*fresh, *extra, **options)
        for name, a in zip(contract.SPECS[kernel][0], fresh):
            if name in outputs:
                np.testing.assert_array_equal(a, outputs[name], err_msg=f"{method} {kernel} {backend} {name}")
        run_args = [_copy(a) for a in args] + list(extra)
        benchmark.group = f"{method} phases {phase_label(method, i)} {shape_id(shape)} threads{threads}"
        benchmark(fn, *run_args, **options)
        moved, footprint = phase_bytes(kernel, args)
        size = int(np.prod(shape))
        passes, llc = PASSES.get(kernel), llc_bytes()
        record(benchmark, op=phase_label(method, i), backend=backend, shape=shape, threads=threads, dtype=DTYPE,
               nbytes=moved, norm=f"{method} phases" + (" raw" if entry == "raw" else ""), method=method,
               phase=kernel, call=i, entry=entry, elements=size, footprint_bytes=footprint,
               triad_ref="llc" if llc and footprint <= llc else "dram",
               bytes_model="array arguments once (read, written; IN/OUT both)",
               passes_bytes=None if passes is None else
               moved + (passes - _big_arrays(args)) * size * np.dtype(DTYPE).itemsize)
    finally:
        restore()


def _big_arrays(args):
    """How many |x|-sized transfers ``phase_bytes`` counted (the arrays of the most elements, once each)."""
    size = max(a.size for a in args if isinstance(a, np.ndarray))
    return sum(1 for a in args if isinstance(a, np.ndarray) and a.size == size)
