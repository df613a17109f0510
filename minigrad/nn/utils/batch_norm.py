"""Freezing batch norm for fine-tuning: the BN layers normalize with, and keep, their running statistics whatever
``model.train()`` says.

The PyTorch pitfall this avoids: ``requires_grad_(False)`` on a BatchNorm's weight and bias stops their updates but
not the running statistics', which ``model.train()`` keeps updating from the new data (and batch statistics are
still used to normalize). The usual fix, ``bn.eval()``, is undone by the next ``model.train()``. Here the frozen
state is a flag on the layer (``frozen``) that ``train()`` does not touch.
"""
from minigrad.nn.norm import _BatchNorm


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
