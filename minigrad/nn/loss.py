"""Loss modules: CrossEntropyLoss, NLLLoss, MSELoss; each calls its functional in ``minigrad.nn.functional.loss``.

``reduction`` is PyTorch's: ``"mean"`` (default) averages over the batch (weighted, for class-weighted losses),
``"sum"`` adds, ``"none"`` returns one loss per sample. Argument order is PyTorch's (``weight`` first).
"""
from minigrad.nn import functional as F
from minigrad.nn.module import Module
from minigrad.tensor import Tensor


class CrossEntropyLoss(Module):
    r"""Cross entropy between logits and targets over the class dim 1:
    ``loss_n = -w[t_n] log softmax(input_n)[t_n] = w[t_n] (-input_n[t_n] + log sum_c exp(input_n[c]))`` for class
    indices ``t``; ``loss_n = -sum_c w_c q_nc log softmax(input_n)_c`` for class probabilities ``q``.

    With ``label_smoothing = e`` the target is the mixture ``(1 - e) target + e / C``. Targets equal to
    ``ignore_index`` contribute nothing and are left out of the mean.

    Args:
        weight: ``(C,)`` rescaling of each class, or None (all 1). It gets no gradient.
        size_average, reduce: PyTorch's deprecated spellings of ``reduction`` (either overrides it).
        ignore_index: a class index target to skip (default -100); class indices only.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``. With class indices ``mean`` divides by the summed weight
            of the counted targets (their number without ``weight``), as PyTorch; with probabilities by the
            number of rows.
        label_smoothing: ``e`` in [0, 1].

    Shape:
        - input: ``(N, C)``, ``(N, C, d1, ...)`` or ``(C,)``, unnormalized logits.
        - target: integer class indices in ``[0, C)`` of shape ``(N)``, ``(N, d1, ...)`` or ``()``; or float
          probabilities of input's shape.
        - output: a scalar, or the target's shape (without C) with ``reduction="none"``.
    """

    def __init__(self, weight: Tensor | None = None, size_average: bool | None = None, ignore_index: int = -100,
                 reduce: bool | None = None, reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__()
        if isinstance(weight, str):
            raise TypeError(f"CrossEntropyLoss: weight must be a Tensor or None, got the string {weight!r}; pass "
                            f"reduction= by keyword (PyTorch's argument order: weight, size_average, ...)")
        self.register_buffer("weight", weight)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing
        self.reduction = F.loss._legacy_reduction("CrossEntropyLoss", size_average, reduce, reduction)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """The cross entropy of ``input`` logits against ``target`` (see the class docstring)."""
        return F.cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(Module):
    r"""Negative log likelihood of log-probabilities over the class dim 1: ``loss_n = -w[t_n] input_n[t_n]``. Put
    ``LogSoftmax`` (``F.log_softmax``) before it; ``CrossEntropyLoss`` is the two in one.

    Args:
        weight: ``(C,)`` rescaling of each class, or None (all 1). It gets no gradient.
        size_average, reduce: PyTorch's deprecated spellings of ``reduction``.
        ignore_index: a target to skip (default -100).
        reduction: ``"mean"`` (divided by the summed weight of the counted targets) | ``"sum"`` | ``"none"``.

    Shape:
        - input: ``(N, C)``, ``(N, C, d1, ...)`` or ``(C,)``, log-probabilities.
        - target: integer class indices in ``[0, C)``, input's shape without dim 1.
        - output: a scalar, or the target's shape with ``reduction="none"``.
    """

    def __init__(self, weight: Tensor | None = None, size_average: bool | None = None, ignore_index: int = -100,
                 reduce: bool | None = None, reduction: str = "mean"):
        super().__init__()
        if isinstance(weight, str):
            raise TypeError(f"NLLLoss: weight must be a Tensor or None, got the string {weight!r}; pass "
                            f"reduction= by keyword (PyTorch's argument order: weight, size_average, ...)")
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index
        self.reduction = F.loss._legacy_reduction("NLLLoss", size_average, reduce, reduction)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """``-weight[t] input[.., t, ..]``, reduced (see the class docstring)."""
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class MSELoss(Module):
    r"""Mean squared error, elementwise: ``loss = (input - target)^2``, then reduced.

    Args:
        reduction: ``"mean"`` (over every element) | ``"sum"`` | ``"none"``.

    Shape: input ``(*)``, target ``(*)`` (the same shape); output a scalar, or ``(*)`` with
    ``reduction="none"``.
    """

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """``(input - target)^2``, reduced (see the class docstring)."""
        return F.mse_loss(input, target, self.reduction)
