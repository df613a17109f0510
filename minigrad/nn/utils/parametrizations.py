"""Weight and spectral normalization as parametrizations, numerically as ``torch.nn.utils.parametrizations``.

weight_norm (Salimans & Kingma, 2016): ``weight = g * v / ||v||``, the norm over every dim except ``dim``
  (``dim=None`` or ``-1``: over the whole tensor, PyTorch's convention). Originals ``original0 = g`` (size of
  ``dim``, 1 elsewhere) and ``original1 = v``.
spectral_norm (Miyato et al., 2018): ``weight = W / sigma``, ``sigma = u . (W_mat v)`` with ``W_mat`` the weight
  with ``dim`` moved first and flattened to (h, w), and ``u``, ``v`` (buffers ``_u``, ``_v``) estimates of the first
  singular vectors: drawn from N(0, 1) and refined by 15 power iterations at registration, then by
  ``n_power_iterations`` before each forward in training mode and none in eval. ``u`` and ``v`` are constants for
  autograd. A 1-d weight is divided by its norm.
Both keep PyTorch's state_dict keys (``parametrizations.weight.original0``; ``parametrizations.weight.original``,
``parametrizations.weight.0._u``, ``..._v``).
"""
import functools
import numbers

import numpy as np

from minigrad.nn.conv import ConvTranspose2d
from minigrad.nn.module import Module
from minigrad.random import default_generator
from minigrad.tensor import Tensor, _host

from . import parametrize


def _norm_except_dim(v, dim):
    """sqrt(sum(v^2)) over every axis but ``dim`` (all axes for dim=-1), keeping dims; works on Tensors."""
    if dim == -1:
        return (v * v).sum().sqrt()
    axes = tuple(a for a in range(v.ndim) if a != dim)
    return (v * v).sum(axis=axes, keepdims=True).sqrt() if axes else (v * v).sqrt()


class _WeightNorm(Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, weight_g, weight_v):
        # NOTE: v * (g / ||v||), PyTorch's order of operations
        return weight_v * (weight_g / _norm_except_dim(weight_v, self.dim))

    def right_inverse(self, weight):
        w = weight if isinstance(weight, Tensor) else Tensor(weight)
        g = Tensor(_norm_except_dim(w.detach(), self.dim).data.copy())
        return g, Tensor(w.data.copy())


def weight_norm(module, name="weight", dim=0):
    """Reparametrize ``module.<name>`` as ``g * v / ||v||`` (see the module docstring). Returns ``module``."""
    weight = _tensor(module, name, "weight_norm")
    if dim is None:
        dim = -1
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or not -weight.ndim <= dim < weight.ndim:
        raise ValueError(f"weight_norm: dim must be None or an int in [{-weight.ndim}, {weight.ndim}), got {dim!r}")
    if dim < -1:
        dim += weight.ndim
    parametrize.register_parametrization(module, name, _WeightNorm(int(dim)), unsafe=True)
    return module


def _normalize(a, eps):
    """a / max(||a||, eps), as torch.nn.functional.normalize (float arrays)."""
    return a / max(float(np.sqrt(np.sum(a * a))), eps)


class _SpectralNorm(Module):
    def __init__(self, weight, n_power_iterations=1, dim=0, eps=1e-12):
        super().__init__()
        ndim = weight.ndim
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or not -ndim <= dim < ndim:
            raise IndexError(f"spectral_norm: dim must be in [{-ndim}, {ndim}), got {dim!r}")
        if isinstance(n_power_iterations, bool) or not isinstance(n_power_iterations, numbers.Integral) \
                or n_power_iterations <= 0:
            raise ValueError(f"spectral_norm: n_power_iterations must be a positive int, got {n_power_iterations!r}")
        if not (isinstance(eps, numbers.Real) and eps > 0):
            raise ValueError(f"spectral_norm: eps must be a number > 0, got {eps!r}")
        self.dim = int(dim) if dim >= 0 else int(dim) + ndim
        self.eps = float(eps)
        if ndim > 1:
            self.n_power_iterations = int(n_power_iterations)
            w = self._matrix(weight.data)
            h, k = w.shape
            rng = default_generator()
            self.register_buffer("_u", Tensor(_normalize(rng.standard_normal(h).astype(w.dtype), self.eps)))
            self.register_buffer("_v", Tensor(_normalize(rng.standard_normal(k).astype(w.dtype), self.eps)))
            self._power_method(w, 15)

    def _matrix(self, w):
        """The weight as (h, w): ``dim`` first, the rest flattened (arrays or Tensors)."""
        if self.dim != 0:
            w = w.permute(self.dim, *[d for d in range(w.ndim) if d != self.dim]) if isinstance(w, Tensor) \
                else np.moveaxis(w, self.dim, 0)
        return w.reshape(w.shape[0], -1)

    def _power_method(self, w, n):
        """``n`` power iterations on the array ``w``, updating the buffers in place (u first, then v)."""
        u, v = self._u.data, self._v.data
        for _ in range(n):
            u[...] = _normalize(w @ v, self.eps)
            v[...] = _normalize(w.T @ u, self.eps)

    def forward(self, weight):
        if weight.ndim == 1:
            return weight / _norm_except_dim(weight, -1).maximum(self.eps)
        w = self._matrix(weight)
        # NOTE: host computations (_host), so that minigrad.compile's replay iterates and reads the buffers again
        if self.training:
            _host(functools.partial(self._power_method, n=self.n_power_iterations), w.data)
        u, v = Tensor(_host(np.copy, self._u.data)), Tensor(_host(np.copy, self._v.data))
        sigma = (u * (w @ v)).sum()
        return weight / sigma

    def right_inverse(self, value):
        return value


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    """Reparametrize ``module.<name>`` as ``W / sigma(W)`` (see the module docstring). ``dim=None`` is 1 for
    ``ConvTranspose2d`` (its weight is (in, out, ...)) and 0 otherwise, as PyTorch. Returns ``module``."""
    if dim is None:
        dim = 1 if isinstance(module, ConvTranspose2d) else 0
    weight = _tensor(module, name, "spectral_norm")
    parametrize.register_parametrization(
        module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module


def _tensor(module, name, fn):
    if not isinstance(module, Module):
        raise TypeError(f"{fn}: module must be a minigrad.nn.Module, got {type(module).__name__}")
    t = getattr(module, name, None)
    if not isinstance(t, Tensor):
        raise ValueError(f"{fn}: module {type(module).__name__} has no parameter or buffer {name!r}")
    return t
