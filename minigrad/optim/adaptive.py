"""RMSprop, Adadelta and Adagrad with PyTorch's update rules (``torch.optim``, foreach off), in plain NumPy.

Each update is written as PyTorch's single-tensor loop writes it, operation by operation, so float64 results agree
with PyTorch's to rounding (the tests ask 1e-12 relative). They run in the parameter's dtype, in place on
``param.data``. A zero-size parameter is skipped: it gets no state and no step.

Accepted but without effect on CPU: ``foreach`` and Adagrad's ``fused`` (the same update either way).
``capturable=True`` and ``differentiable=True`` have no meaning without CUDA graphs and a differentiable optimizer;
they raise ValueError rather than be silently ignored.
"""
import numpy as np

from minigrad.optim.optimizer import Optimizer


def _check(name, value, ok, what):
    if not ok:
        raise ValueError(f"{name}: invalid {what} {value!r}")


class _NumpyOptimizer(Optimizer):
    """Shared by the optimizers here: the option checks PyTorch makes, and the zero-size skip."""

    def __init__(self, params, defaults):
        for flag in ("capturable", "differentiable"):
            if defaults.get(flag):
                raise ValueError(f"{type(self).__name__}: {flag}=True is not supported by minigrad (CPU, no "
                                 "differentiable optimizers); leave it False")
        super().__init__(params, defaults)

    def _update(self, p, grad, group, state):
        if p.data.size == 0:
            self.state.pop(p, None)  # NOTE: nothing to update; keep no state so a state_dict stays clean
            return
        grad = -grad if group["maximize"] else grad
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * p.data
        self._rule(p.data, grad, group, state)

    def _rule(self, x, grad, group, state):
        raise NotImplementedError


class RMSprop(_NumpyOptimizer):
    """RMSprop (Hinton's lecture 6e) as PyTorch computes it:
        g = grad + weight_decay * p                      (g = -grad first when maximize)
        v = alpha v + (1 - alpha) g^2
        centered:  m = lerp(m, g, 1 - alpha);  avg = sqrt(v - m^2) + eps;  else avg = sqrt(v) + eps
        momentum > 0:  buf = momentum buf + g / avg;  p -= lr buf;   else  p -= lr g / avg
    State: ``step``, ``square_avg``, ``momentum_buffer`` (momentum > 0), ``grad_avg`` (centered).
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        name = "RMSprop"
        _check(name, lr, lr >= 0, "learning rate")
        _check(name, eps, eps >= 0, "eps")
        _check(name, momentum, momentum >= 0, "momentum")
        _check(name, weight_decay, weight_decay >= 0, "weight_decay")
        _check(name, alpha, alpha >= 0, "alpha")
        super().__init__(params, dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                                      weight_decay=weight_decay, capturable=capturable, foreach=foreach,
                                      maximize=maximize, differentiable=differentiable))

    def _rule(self, x, g, group, state):
        alpha, eps, lr, momentum = group["alpha"], group["eps"], group["lr"], group["momentum"]
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(x)
            if momentum > 0:
                state["momentum_buffer"] = np.zeros_like(x)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(x)
        state["step"] += 1
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * g * g
        if group["centered"]:
            grad_avg = state["grad_avg"]
            _lerp_(grad_avg, g, 1 - alpha)
            avg = np.sqrt(square_avg + (-1) * grad_avg * grad_avg)
        else:
            avg = np.sqrt(square_avg)
        avg += eps
        if momentum > 0:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += g / avg
            x += -lr * buf
        else:
            x += -lr * g / avg


def _lerp_(start, end, weight):
    """``start`` moved in place toward ``end`` by ``weight``, with PyTorch's two formulas (exact at both ends)."""
    diff = end - start
    if abs(weight) < 0.5:
        start += weight * diff
    else:
        start[...] = end - diff * (1 - weight)


class Adadelta(_NumpyOptimizer):
    """Adadelta (Zeiler, 2012) as PyTorch computes it:
        g = grad + weight_decay * p                      (g = -grad first when maximize)
        v = rho v + (1 - rho) g^2
        delta = sqrt(u + eps) / sqrt(v + eps) * g
        u = rho u + (1 - rho) delta^2
        p -= lr delta
    State: ``step``, ``square_avg`` (v), ``acc_delta`` (u).
    """

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *, capturable=False,
                 maximize=False, differentiable=False):
        name = "Adadelta"
        _check(name, lr, lr >= 0, "learning rate")
        _check(name, rho, 0 <= rho <= 1, "rho (expected in [0, 1])")
        _check(name, eps, eps >= 0, "eps")
        _check(name, weight_decay, weight_decay >= 0, "weight_decay")
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize,
                                      capturable=capturable, foreach=foreach, differentiable=differentiable))

    def _rule(self, x, g, group, state):
        rho, eps, lr = group["rho"], group["eps"], group["lr"]
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(x)
            state["acc_delta"] = np.zeros_like(x)
        state["step"] += 1
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        square_avg *= rho
        square_avg += (1 - rho) * g * g
        std = np.sqrt(square_avg + eps)
        delta = np.sqrt(acc_delta + eps)
        delta /= std
        delta *= g
        acc_delta *= rho
        acc_delta += (1 - rho) * delta * delta
        x += -lr * delta


class Adagrad(_NumpyOptimizer):
    """Adagrad (Duchi et al., 2011) as PyTorch computes it, step t counted per parameter:
        g = grad + weight_decay * p                      (g = -grad first when maximize)
        clr = lr / (1 + (t - 1) lr_decay)
        s = s + g^2                                      (s starts at initial_accumulator_value)
        p -= clr g / (sqrt(s) + eps)
    State: ``step``, ``sum``; made for every parameter at construction, as PyTorch does. Sparse gradients do not
    exist in minigrad.
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None):
        name = "Adagrad"
        _check(name, lr, lr >= 0, "learning rate")
        _check(name, lr_decay, lr_decay >= 0, "lr_decay")
        _check(name, weight_decay, weight_decay >= 0, "weight_decay")
        _check(name, initial_accumulator_value, initial_accumulator_value >= 0, "initial_accumulator_value")
        _check(name, eps, eps >= 0, "eps")
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                                      maximize=maximize, differentiable=differentiable, fused=fused))
        for group in self.param_groups:
            for p in group["params"]:
                if p.data.size:
                    self._init_state(p.data, group, self.state.setdefault(p, {}))

    @staticmethod
    def _init_state(x, group, state):
        state["step"] = 0
        state["sum"] = np.full_like(x, group["initial_accumulator_value"])

    def _rule(self, x, g, group, state):
        if not state:
            self._init_state(x, group, state)
        state["step"] += 1
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        state_sum = state["sum"]
        state_sum += g * g
        std = np.sqrt(state_sum)
        std += group["eps"]
        x += -clr * g / std
