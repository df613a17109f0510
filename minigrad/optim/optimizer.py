"""Optimizer base class and SGD, Adam, AdamW with PyTorch's exact update rules (``torch.optim``, foreach off).

Parameters live in ``param_groups`` (a list of dicts: the hyperparameters plus ``"params"``); per-parameter state
(momentum buffers, Adam moments, step counts) in ``state``, keyed by the parameter. ``state_dict()`` replaces each
parameter with its index in group order, as PyTorch does:
    {"state": {index: {name: ndarray or number}}, "param_groups": [{...hyperparameters, "params": [indices]}]}
Arrays in a state dict are copies; updates are in place on ``param.data`` and run under no autograd. Each update
is one fused kernel per parameter (``sgd_update``, ``adam_update`` in ``minigrad.kernels``; the rules, rounding by
rounding, in ``minigrad.kernels.reference``), or for SGD (with momentum or without) from its third step one per
parameter group (``sgd_update_many``).
"""
import numpy as np

from minigrad import kernels
from minigrad.kernels import reference
from minigrad.kernels.contract import SMALL as _SMALL
from minigrad.tensor import Tensor, _replayed


class Optimizer:
    """Base class of the optimizers: holds ``param_groups`` (the hyperparameters of each group of parameters)
    and the per-parameter ``state``; a subclass defines the update of one parameter.

    Args:
        params: an iterable of tensors, or of dicts (parameter groups: ``"params"`` plus hyperparameters that
            override ``defaults`` for that group).
        defaults: the hyperparameters of every group (``lr``, ...).
    """

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = {}
        self._scratch = {}  # parameter -> a reused array for the step (not state: never saved)
        self._views = {}  # parameter -> flat views of it and its state for the update kernels (see _fused)
        self.param_groups = []
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group):
        """Add a group (a dict with ``"params"`` and hyperparameters; missing ones take the defaults),
        e.g. to fine-tune layers unfrozen during training. A parameter may be in one group only."""
        group = dict(group)
        params = group["params"]
        group["params"] = [params] if isinstance(params, Tensor) else list(params)
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: can only optimize Tensors, got {type(p).__name__}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in group["params"]):
            raise ValueError(f"{type(self).__name__}: a parameter appears in more than one group")
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        self._check_group(group)
        self.param_groups.append(group)

    def _check_group(self, group):
        if not group["lr"] >= 0:
            raise ValueError(f"{type(self).__name__}: invalid learning rate {group['lr']!r}")
        if not group.get("weight_decay", 0) >= 0:
            raise ValueError(f"{type(self).__name__}: invalid weight_decay {group['weight_decay']!r}")

    @_replayed
    def zero_grad(self, set_to_none=True):
        """Clear the gradients of every parameter: set ``.grad`` to None (``set_to_none=False``: fill with
        zeros)."""
        for g in self.param_groups:
            if set_to_none:
                for p in g["params"]:
                    p.grad = None
                continue
            for p in g["params"]:
                if p.grad is not None:
                    p.grad.data[...] = 0

    @_replayed
    def step(self):
        """Update every parameter that has a gradient, in place (under no autograd)."""
        state, update = self.state, self._update
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    s = state.get(p)  # NOTE: not setdefault(p, {}), which builds a dict per parameter per step
                    if s is None:
                        s = state[p] = {}
                    update(p, p.grad.data, group, s)

    def _update(self, p, grad, group, state):
        raise NotImplementedError

    # ------------------------------------------------------------ state
    def state_dict(self):
        """``{"state": {index: {name: value}}, "param_groups": [...]}`` with parameters replaced by
        their index in group order, as PyTorch's (arrays are copies)."""
        index, groups, n = {}, [], 0
        for g in self.param_groups:
            ids = list(range(n, n + len(g["params"])))
            index.update({id(p): i for p, i in zip(g["params"], ids)})
            n += len(ids)
            groups.append({**{k: v for k, v in g.items() if k != "params"}, "params": ids})
        state = {index[id(p)]: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
                 for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore ``state_dict()``'s hyperparameters and per-parameter state; the groups must have the
        same sizes."""
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= state_dict.keys():
            # NOTE: a model-only checkpoint gives None here; say so rather than "'NoneType' is not subscriptable"
            raise TypeError(f"{type(self).__name__}.load_state_dict: state_dict must be the dict of 'state' and "
                            f"'param_groups' that state_dict() returns, got {type(state_dict).__name__}"
                            + (" (was the checkpoint saved without optimizer state?)" if state_dict is None else ""))
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
                len(g["params"]) != len(own["params"]) for g, own in zip(groups, self.param_groups)):
            raise ValueError(f"{type(self).__name__}.load_state_dict: the state's parameter groups "
                             f"{[len(g['params']) for g in groups]} do not match the optimizer's "
                             f"{[len(g['params']) for g in self.param_groups]}")
        by_index = {}
        for g, own in zip(groups, self.param_groups):
            by_index.update(zip(g["params"], own["params"]))
            own.update({k: (tuple(v) if isinstance(v, list) else v) for k, v in g.items() if k != "params"})
        self.state = {}
        for i, s in state_dict["state"].items():
            p = by_index[int(i)]
            self.state[p] = {k: (np.array(v, dtype=p.data.dtype) if isinstance(v, np.ndarray) else v)
                             for k, v in s.items()}


class SGD(Optimizer):
    """Stochastic gradient descent with PyTorch's momentum (the buffer starts as the first gradient):
        g = grad + weight_decay * p
        buf = g (first step), else momentum * buf + (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf
        p -= lr * g
    """

    def __init__(self, params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False):
        if momentum < 0:
            raise ValueError(f"SGD: invalid momentum {momentum!r}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov))
        self._groups = {}  # index of a group -> what _group_call needs (see _remember_group)

    @_replayed
    def step(self):
        """Update every parameter that has a gradient, in place (under no autograd). NOTE: the base class's loop
        with the usual case inlined: from the second step with momentum, where ``_raw`` has the unchecked kernel
        call for the parameter's arrays, the call is made here without ``_update``'s per-parameter lookups (the MLP
        step's 11 parameters: 56 -> 49 us a step, of which the kernels are 34; ``scripts/sgd_step_ab.py``, docs/
        compile.md, Session 26); anything else goes through ``_update`` as before. Before that loop, a group whose
        parameters all have those unchecked calls is updated by one ``sgd_update_many`` call (``_group_call``;
        29.2 against 33.2 us, docs/compile.md, Session 31), with momentum or without (docs/compile.md, Session 32)."""
        state, views, backend, threads = self.state, self._views, kernels.kernels(), kernels.get_num_threads()
        ndarray, ascontiguous = np.ndarray, np.ascontiguousarray
        for i, group in enumerate(self.param_groups):
            momentum, args = group["momentum"], None
            if self._group_call(i, group, backend, threads):
                continue
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                s = state.get(p)
                if s is None:
                    s = state[p] = {}
                elif momentum:
                    # NOTE: _raw's tests inlined (no call, the thread count read once a step); a gradient in another
                    # layout is taken here too: ascontiguousarray gives its values in C order (a copy; reshape(-1)
                    # alone keeps a strided 1-D gradient strided, which the kernel would read as contiguous), which
                    # the kernel reads only. A contiguous 1-D gradient (biases, normalization parameters) is passed
                    # as it is: no reshape call
                    cached = views.get(p)
                    if cached is not None and len(cached) == 4:
                        data, grad, raw = cached[0], g.data, cached[3]
                        if (data is p.data and cached[1][0] is s.get("momentum_buffer") and raw[0] is backend
                                and raw[1] == threads and type(grad) is ndarray and grad.dtype == data.dtype
                                and grad.shape == data.shape):
                            if args is None:
                                args = (group["lr"], momentum, group["dampening"], group["weight_decay"],
                                        group["nesterov"], False)
                            raw, grad = raw[2], ascontiguous(grad)
                            raw[0](raw[1], raw[2], grad if grad.ndim == 1 else grad.reshape(-1), *args, raw[3])
                            continue
                self._update(p, g.data, group, s)
            self._remember_group(i, group, backend, threads)

    def _group_call(self, i, group, backend, threads):
        """The group's update as one unchecked ``sgd_update_many`` call (True), or False (nothing done) unless
        every parameter of the group is as ``_remember_group`` saw it: the same data and momentum buffer (without
        momentum: the scratch buffer ``_update`` passes, and the kernel's first-step rule, as there), a state, a
        gradient (an ndarray of the parameter's dtype and shape: what ``_raw`` checks per parameter). NOTE: one
        kernel call for the group instead of one per parameter (docs/compile.md, Sessions 31 and 32)."""
        saved = self._groups.get(i)
        if saved is None or saved[0] is not group or saved[1] is not backend or saved[2] != threads:
            return False
        _, _, _, datas, bufs, call, flat_datas, flat_bufs, n_threads = saved
        params, state, grads, momentum = group["params"], self.state, [], group["momentum"]
        if len(params) != len(datas):
            return False
        ndarray, ascontiguous, scratch = np.ndarray, np.ascontiguousarray, self._scratch
        for p, data, buf in zip(params, datas, bufs):
            g, s = p.grad, state.get(p)
            if (g is None or p.data is not data or s is None
                    or (s.get("momentum_buffer") if momentum else scratch.get(p)) is not buf):
                return False
            grad = g.data
            if type(grad) is not ndarray or grad.dtype != data.dtype or grad.shape != data.shape:
                return False
            grad = ascontiguous(grad)
            grads.append(grad if grad.ndim == 1 else grad.reshape(-1))
        call(flat_datas, flat_bufs, tuple(grads), group["lr"], momentum, group["dampening"], group["weight_decay"],
             group["nesterov"], not momentum, n_threads)
        return True

    def _remember_group(self, i, group, backend, threads):
        """After a step of the per-parameter loop: where every parameter of the group now has its unchecked call
        (``_raw``'s cache: its arrays passed the contract's checks) and a gradient, the arrays for
        ``_group_call``."""
        datas, bufs, flat_datas, flat_bufs, total, momentum = [], [], [], [], 0, group["momentum"]
        for p in group["params"]:
            cached, s = self._views.get(p), self.state.get(p)
            if (p.grad is None or cached is None or len(cached) < 4 or cached[0] is not p.data or s is None
                    or cached[1][0] is not (s.get("momentum_buffer") if momentum else self._scratch.get(p))
                    or cached[3][0] is not backend or cached[3][1] != threads):
                self._groups.pop(i, None)
                return
            datas.append(p.data)
            bufs.append(cached[1][0])
            flat_datas.append(cached[2][0])
            flat_bufs.append(cached[2][1])
            total += p.data.size
        n_threads = 1 if total < _SMALL else threads
        self._groups[i] = (group, backend, threads, datas, bufs, backend.module.sgd_update_many, tuple(flat_datas),
                           tuple(flat_bufs), n_threads)

    def _update(self, p, grad, group, state):
        momentum = group["momentum"]
        buf = state.get("momentum_buffer") if momentum else None
        first = buf is None
        if first:
            # NOTE: without momentum the kernel runs its first-step rule on a scratch buffer: buf = g, p -= lr*g
            buf = np.empty_like(p.data) if momentum else self._scratch_for(p)
            if momentum:
                state["momentum_buffer"] = buf
        if p.data.size == 0:  # NOTE: PyTorch's no-op (state kept as it keeps it); the kernels take no empty arrays
            return
        args = (group["lr"], momentum, group["dampening"], group["weight_decay"], group["nesterov"], first)
        backend = kernels.kernels()
        raw = _raw(self._views, p, buf, grad, backend)
        if raw is not None:
            raw[0](raw[1], raw[2], grad.reshape(-1), *args, raw[3])
            return
        k, arrays = _fused(self._views, p, (buf,), grad)
        k.sgd_update(*arrays, *args)
        if k is backend:
            _remember_raw(self._views, p, backend, p.data.size)

    def _scratch_for(self, p):
        step = self._scratch.get(p)
        if step is None or step.shape != p.data.shape or step.dtype != p.data.dtype:
            step = self._scratch[p] = np.empty_like(p.data)
        return step


def _fused(views, p, state_arrays, grad):
    """(kernels, arrays) for an update: the active backend and flat views when the parameter and its state are
    C-contiguous; else the NumPy reference and the arrays as they are (it updates any layout in place).
    ``views`` caches each parameter's flat views while its data and state arrays stay the same objects."""
    data = p.data
    cached = views.get(p)
    if cached is None or cached[0] is not data or not _same(cached[1], state_arrays):
        flat = None
        if data.flags.c_contiguous and all(a.flags.c_contiguous for a in state_arrays):
            flat = (data.reshape(-1), *(a.reshape(-1) for a in state_arrays))
        cached = views[p] = (data, state_arrays, flat)
    if cached[2] is None:
        return _Reference, (data, *state_arrays, grad)
    return kernels.kernels(), (*cached[2], np.ascontiguousarray(grad).reshape(-1))


def _raw(views, p, buf, grad, backend):
    """(kernel, flat param, flat buffer, n_threads) to call ``sgd_update`` unchecked, or None. NOTE: the contract's
    checks cost more than the update of a small parameter (an MLP's step updates 11); they ran on the first call
    with these arrays (``_fused``'s cache holds them), and what can change between steps, the gradient, is checked
    here: an ndarray of the parameter's dtype and shape, C-contiguous (else the checked call names the problem)."""
    cached = views.get(p)
    if (cached is None or len(cached) < 4 or cached[0] is not p.data or cached[1][0] is not buf
            or cached[3][0] is not backend or cached[3][1] != kernels.get_num_threads()):
        return None
    data = cached[0]
    if not (type(grad) is np.ndarray and grad.dtype == data.dtype and grad.shape == data.shape
            and grad.flags.c_contiguous):
        return None
    return cached[3][2]


def _remember_raw(views, p, backend, n_elements):
    """After a checked ``sgd_update`` on ``p``'s flat views: the unchecked call for the next steps (see _raw)."""
    cached = views.get(p)
    if cached is not None and cached[2] is not None:
        n = kernels.get_num_threads()
        raw = getattr(backend.module, "sgd_update")
        views[p] = (*cached[:3], (backend, n, (raw, *cached[2][:2], 1 if n_elements < _SMALL else n)))


def _same(arrays, others):
    for a, b in zip(arrays, others):
        if a is not b:
            return False
    return True


class _Reference:
    sgd_update = staticmethod(reference.sgd_update)
    adam_update = staticmethod(reference.adam_update)


class Adam(Optimizer):
    """Adam (Kingma & Ba) as PyTorch computes it, step t counted per parameter:
        g = grad + weight_decay * p                       (L2 penalty; AdamW decouples it instead)
        m = beta1 m + (1 - beta1) g        v = beta2 v + (1 - beta2) g^2
        p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    """

    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0):
        if not 0 <= betas[0] < 1 or not 0 <= betas[1] < 1:
            raise ValueError(f"{type(self).__name__}: invalid betas {betas!r}")
        if not eps >= 0:
            raise ValueError(f"{type(self).__name__}: invalid eps {eps!r}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def _update(self, p, grad, group, state):
        lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
        state["step"] += 1
        if p.data.size == 0:  # NOTE: as in SGD._update
            return
        moments = (state["exp_avg"], state["exp_avg_sq"])
        k, arrays = _fused(self._views, p, moments, grad)
        k.adam_update(*arrays, lr, beta1, beta2, eps, wd, self._decoupled, state["step"])


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): ``p *= 1 - lr * weight_decay`` before the Adam
    step, and no L2 term in the gradient."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)
