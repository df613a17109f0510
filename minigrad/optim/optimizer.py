"""Optimizer base class and SGD, Adam, AdamW with PyTorch's exact update rules (``torch.optim``, foreach off).

Parameters live in ``param_groups`` (a list of dicts: the hyperparameters plus ``"params"``); per-parameter state
(momentum buffers, Adam moments, step counts) in ``state``, keyed by the parameter. ``state_dict()`` replaces each
parameter with its index in group order, as PyTorch does:
    {"state": {index: {name: ndarray or number}}, "param_groups": [{...hyperparameters, "params": [indices]}]}
Arrays in a state dict are copies; updates are in place on ``param.data`` and run under no autograd.
"""
import math

import numpy as np

from minigrad.tensor import Tensor


class Optimizer:
    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = {}
        self._scratch = {}  # parameter -> a reused array for the step (not state: never saved)
        self.param_groups = []
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group):
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

    def zero_grad(self, set_to_none=True):
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.data[...] = 0

    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, p.grad.data, group, self.state.setdefault(p, {}))

    def _update(self, p, grad, group, state):
        raise NotImplementedError

    # ------------------------------------------------------------ state
    def state_dict(self):
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

    def _update(self, p, grad, group, state):
        wd, momentum, data = group["weight_decay"], group["momentum"], p.data
        g = grad + wd * data if wd else grad
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(g, dtype=data.dtype)
            else:
                buf *= momentum
                dampening = group["dampening"]
                if dampening:
                    buf += (1 - dampening) * g
                else:  # NOTE: (1 - 0) * g == g exactly: skip the multiply and its temporary
                    buf += g
            g = g + momentum * buf if group["nesterov"] else buf
        # p -= lr * g, the product rounded to p's dtype first (as before), through one reused scratch array
        step = self._scratch.get(p)
        if step is None or step.shape != data.shape or step.dtype != data.dtype:
            step = self._scratch[p] = np.empty_like(data)
        np.multiply(g, group["lr"], out=step, casting="unsafe")
        data -= step


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
        t = state["step"]
        if self._decoupled:
            p.data *= 1 - lr * wd
        elif wd:
            grad = grad + wd * p.data
        m, v = state["exp_avg"], state["exp_avg_sq"]
        # NOTE: PyTorch's m.lerp_(g, 1 - beta1) is m + (1 - beta1) * (g - m)
        m += (1 - beta1) * (grad - m)
        v *= beta2
        v += (1 - beta2) * grad * grad
        step_size = lr / (1 - beta1 ** t)
        denom = np.sqrt(v) / math.sqrt(1 - beta2 ** t) + eps
        p.data -= (step_size * m / denom).astype(p.data.dtype, copy=False)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): ``p *= 1 - lr * weight_decay`` before the Adam
    step, and no L2 term in the gradient."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)
