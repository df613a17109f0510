"""Learning-rate schedulers with PyTorch's lr sequences: ``StepLR``, ``CosineAnnealingLR``, ``OneCycleLR``.

As in PyTorch, constructing a scheduler records ``initial_lr`` in each param group and takes step 0, and each
``step()`` advances ``last_epoch`` and writes the new lr into the optimizer's groups. StepLR and
CosineAnnealingLR use PyTorch's recursive forms (each lr computed from the previous one), so the sequences agree
to the last bits, not only to rounding.

OneCycleLR schedules the learning rate only: PyTorch's ``cycle_momentum`` (cycling SGD momentum or Adam's beta1
inversely to the lr) is not implemented; momentum stays as the optimizer has it.
"""
import math


class LRScheduler:
    """Base class of the schedulers: adjusts the ``lr`` of every param group of ``optimizer`` at each
    ``step()``.

    Subclasses define ``get_lr()``, the new lr of each group at epoch (or step) ``last_epoch``. Call
    ``scheduler.step()`` after ``optimizer.step()``, once per epoch (``StepLR``, ``CosineAnnealingLR``) or once per
    batch (``OneCycleLR``). ``last_epoch=-1`` starts a fresh schedule from each group's current lr.
    """

    def __init__(self, optimizer, last_epoch=-1):
        self.optimizer = optimizer
        if last_epoch == -1:
            for g in optimizer.param_groups:
                g.setdefault("initial_lr", g["lr"])
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def get_lr(self):
        """The lr of each param group at ``last_epoch``; every subclass defines it."""
        raise NotImplementedError

    def step(self):
        """Advance the schedule by one epoch (or step) and write the new learning rates into the optimizer."""
        self.last_epoch += 1
        lrs = self.get_lr()
        for g, lr in zip(self.optimizer.param_groups, lrs):
            g["lr"] = lr
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def get_last_lr(self):
        """The learning rates the last ``step()`` set, one per param group."""
        return list(self._last_lr)

    def state_dict(self):
        """The scheduler's state (every attribute but the optimizer), for ``load_state_dict`` and
        ``minigrad.save``.
        """
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict):
        """Restore the state that ``state_dict()`` returned."""
        self.__dict__.update(state_dict)


class StepLR(LRScheduler):
    """``lr = base_lr * gamma ** (epoch // step_size)``."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        if int(step_size) < 1:
            raise ValueError(f"StepLR: step_size must be >= 1, got {step_size!r}")
        self.step_size, self.gamma = int(step_size), gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """The previous lr, multiplied by ``gamma`` at every ``step_size``-th epoch."""
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return [g["lr"] for g in self.optimizer.param_groups]
        return [g["lr"] * self.gamma for g in self.optimizer.param_groups]


class CosineAnnealingLR(LRScheduler):
    """``lr_t = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2``, continued past T_max as a cosine
    of period 2 T_max (PyTorch's recursive form)."""

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        if int(T_max) < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be >= 1, got {T_max!r}")
        self.T_max, self.eta_min = int(T_max), eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """The next lr on the cosine, from the previous one (PyTorch's recursive form)."""
        t, T, groups = self.last_epoch, self.T_max, self.optimizer.param_groups
        if t == 0:
            return [g["lr"] for g in groups]
        if (t - 1 - T) % (2 * T) == 0:
            return [g["lr"] + (base - self.eta_min) * (1 - math.cos(math.pi / T)) / 2
                    for base, g in zip(self.base_lrs, groups)]
        return [(1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T)) * (g["lr"] - self.eta_min)
                + self.eta_min for g in groups]


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin), stepped once per batch: the lr rises from ``max_lr / div_factor`` to
    ``max_lr`` over the first ``pct_start`` of ``total_steps`` (= epochs * steps_per_epoch when not given), then
    anneals ('cos' or 'linear') to ``initial_lr / final_div_factor``. Momentum is not cycled (see the module
    docstring)."""

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None, pct_start=0.3,
                 anneal_strategy="cos", div_factor=25.0, final_div_factor=1e4, last_epoch=-1):
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: give total_steps, or both epochs and steps_per_epoch")
            total_steps = int(epochs) * int(steps_per_epoch)
        if int(total_steps) < 1:
            raise ValueError(f"OneCycleLR: total_steps must be >= 1, got {total_steps!r}")
        if not 0 <= pct_start <= 1:
            raise ValueError(f"OneCycleLR: pct_start must be in [0, 1], got {pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.total_steps, self.anneal_strategy = int(total_steps), anneal_strategy
        self.phases = [
            {"end_step": float(pct_start * self.total_steps) - 1, "start_lr": "initial_lr", "end_lr": "max_lr"},
            {"end_step": self.total_steps - 1, "start_lr": "max_lr", "end_lr": "min_lr"},
        ]
        groups = optimizer.param_groups
        max_lrs = list(max_lr) if isinstance(max_lr, (list, tuple)) else [max_lr] * len(groups)
        if last_epoch == -1:
            for g, m in zip(groups, max_lrs):
                g["initial_lr"] = m / div_factor
                g["max_lr"] = m
                g["min_lr"] = g["initial_lr"] / final_div_factor
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self):
        """The lr at step ``last_epoch`` of the warm-up or annealing phase; raises past ``total_steps``."""
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: stepped {step} times, more than total_steps={self.total_steps}")
        lrs = []
        for g in self.optimizer.param_groups:
            start_step = 0.0
            for i, phase in enumerate(self.phases):
                end_step = phase["end_step"]
                if step <= end_step or i == len(self.phases) - 1:
                    pct = (step - start_step) / (end_step - start_step)
                    lrs.append(self._anneal(g[phase["start_lr"]], g[phase["end_lr"]], pct))
                    break
                start_step = phase["end_step"]
        return lrs
