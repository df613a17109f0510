"""Freezing batch norm for fine-tuning: the BN layers normalize with, and keep, their running statistics whatever
``model.train()`` says.

The PyTorch pitfall this avoids: ``requires_grad_(False)`` on a BatchNorm's weight and bias stops their updates but
not the running statistics', which ``model.train()`` keeps updating from the new data (and batch statistics are
still used to normalize). The usual fix, ``bn.eval()``, is undone by the next ``model.train()``. Here the frozen
state is a flag on the layer (``frozen``) that ``train()`` does not touch.

``update_bn`` recomputes the running statistics from data (``torch.optim.swa_utils.update_bn``).
"""
import numpy as np

from minigrad import _device
from minigrad.nn.module import Module
from minigrad.nn.norm import _BatchNorm
from minigrad.tensor import Tensor, no_grad


def _batch_norms(model):
    return [m for m in model.modules() if isinstance(m, _BatchNorm)]


def freeze_batch_norm(model, freeze_affine=True):
    """Freeze every BatchNorm1d/2d/3d in ``model``: in training and eval they normalize with their running
    statistics and never update them (nor ``num_batches_tracked``). ``freeze_affine=True`` also sets
    ``requires_grad=False`` on their weight and bias (restored by ``unfreeze_batch_norm``); with False the affine
    parameters keep training. Returns ``model``."""
    for m in _batch_norms(model):
        if m.running_mean is None or m.running_var is None:
            raise ValueError(f"freeze_batch_norm: {type(m).__name__} has no running statistics "
                             f"(track_running_stats=False): nothing to freeze it to")
        m.frozen = True
        if freeze_affine and "_affine_requires_grad" not in m.__dict__:
            m._affine_requires_grad = [(p, p.requires_grad) for p in (m.weight, m.bias) if p is not None]
            for p, _ in m._affine_requires_grad:
                p.requires_grad = False
    return model


def unfreeze_batch_norm(model):
    """Undo ``freeze_batch_norm``: batch statistics in training again, and the affine parameters' ``requires_grad``
    as it was before freezing. Returns ``model``."""
    for m in _batch_norms(model):
        m.frozen = False
        for p, flag in m.__dict__.pop("_affine_requires_grad", ()):
            p.requires_grad = flag
    return model


def update_bn(loader, model, device=None):
    """Recompute the running statistics of every BatchNorm1d/2d/3d in ``model`` from one pass over ``loader``, as
    ``torch.optim.swa_utils.update_bn``: after an SWA average of weights, or on unlabelled data of a new domain
    (AdaBN). The statistics are reset, and during the pass each BN's momentum is None, so the result is the
    cumulative average of the per-batch statistics (the mean of the batch means, and of the batch unbiased
    variances); every BN's momentum is restored after. ``loader`` yields Tensors, or tuples/lists whose first
    element is the input. The model runs in training mode (under no_grad) and each module's train/eval flag is
    restored after (PyTorch sets them all to the model's; the same where they agreed). ``device``: None or the
    CPU. Returns None.

    A frozen BN (``freeze_batch_norm``) raises: it keeps its statistics by design, and a reset one would never be
    refilled; unfreeze it first. A BN without running statistics is left alone. Dropout is active during the pass,
    as in PyTorch."""
    if not isinstance(model, Module):
        raise TypeError(f"update_bn: model must be a minigrad.nn.Module, got {type(model).__name__}")
    _device.check_cpu(device, "update_bn")
    bns = _batch_norms(model)
    frozen = [name for name, m in model.named_modules() if isinstance(m, _BatchNorm) and m.frozen]
    if frozen:
        raise ValueError(f"update_bn: batch norms {frozen} are frozen (freeze_batch_norm) and would keep reset "
                         f"statistics; call unfreeze_batch_norm(model) first")
    if not bns:
        return
    try:
        batches = iter(loader)
    except TypeError:
        raise TypeError(f"update_bn: loader must be iterable (a DataLoader or a list of batches), "
                        f"got {type(loader).__name__}") from None
    momenta = {m: m.momentum for m in bns}
    modes = {m: m.training for m in model.modules()}
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    try:
        with no_grad():
            for batch in batches:
                if isinstance(batch, (list, tuple)):
                    if not batch:
                        raise ValueError("update_bn: loader yielded an empty batch tuple; expected (input, ...)")
                    batch = batch[0]
                if not isinstance(batch, Tensor):
                    batch = Tensor(np.asarray(batch))
                model(batch)
    finally:
        for m, momentum in momenta.items():
            m.momentum = momentum
        for m, mode in modes.items():
            object.__setattr__(m, "training", mode)
