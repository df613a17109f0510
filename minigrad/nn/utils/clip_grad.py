"""Gradient utilities: ``clip_grad_norm_`` and ``clip_grad_value_``, as ``torch.nn.utils``."""
import numpy as np

from minigrad.tensor import Tensor, _replayed


class _Clipper:
    """Both clips as methods recorded by ``minigrad.compile`` (``tensor._replayed``): a replay calls them again on
    the same parameters, whose gradients are then that step's. One instance, so that two recordings name the same
    object."""

    @_replayed
    def norm_(self, params, max_norm, norm_type, error_if_nonfinite):
        grads = [p.grad.data for p in params if p.grad is not None]
        if not grads:
            return Tensor(np.zeros((), np.float32))
        if norm_type == np.inf:
            total = max(float(np.abs(g).max()) if g.size else 0.0 for g in grads)
        else:
            # NOTE: the per-gradient norms in float64 (PyTorch: in the gradients' dtype), so a float32 norm may
            # differ from PyTorch's in its last bit
            norms = [np.linalg.norm(g.reshape(-1).astype(np.float64), norm_type) for g in grads]
            total = float(np.linalg.norm(np.asarray(norms), norm_type))
        if error_if_nonfinite and not np.isfinite(total):
            raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is "
                               f"non-finite ({total}), so it cannot be clipped; error_if_nonfinite=False scales anyway")
        # NOTE: np.minimum keeps a nan (PyTorch's clamp does): a nan norm makes every gradient nan, as there
        coef = float(np.minimum(max_norm / (total + 1e-6), 1.0))
        with np.errstate(invalid="ignore"):  # NOTE: an inf gradient times 0 is nan, as in PyTorch
            for g in grads:
                g *= g.dtype.type(coef)
        return Tensor(np.asarray(total, dtype=np.result_type(*grads)))

    @_replayed
    def value_(self, params, clip_value):
        for p in params:
            if p.grad is not None:
                np.clip(p.grad.data, -clip_value, clip_value, out=p.grad.data)


_CLIPPER = _Clipper()


def _params(parameters):
    return (parameters,) if isinstance(parameters, Tensor) else tuple(parameters)


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach: bool | None = None) -> Tensor:
    """Scale all gradients in place so that their joint norm is at most ``max_norm``; returns the norm before
    clipping as a 0-d tensor in the gradients' dtype (a 0-d float32 zero when no parameter has a gradient), as
    PyTorch. ``total = norm of the per-parameter norms``, ``coef = min(1, max_norm / (total + 1e-6))``, every
    gradient multiplied by ``coef``. ``norm_type`` may be ``float('inf')``. ``error_if_nonfinite=True`` raises
    RuntimeError when the norm is nan or inf (and leaves the gradients as they were); ``foreach`` is accepted for
    PyTorch's signature and changes nothing. Inside a step compiled by ``minigrad.compile`` it replays (return the
    norm from the step to read each step's)."""
    del foreach  # NOTE: PyTorch's choice of a multi-tensor kernel; one loop here either way
    return _CLIPPER.norm_(_params(parameters), float(max_norm), float(norm_type), bool(error_if_nonfinite))


def clip_grad_value_(parameters, clip_value: float, foreach: bool | None = None) -> None:
    """Clamp every gradient in place to ``[-clip_value, clip_value]``, as ``torch.nn.utils.clip_grad_value_``."""
    del foreach
    _CLIPPER.value_(_params(parameters), float(clip_value))
