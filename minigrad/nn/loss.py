"""Loss modules: CrossEntropyLoss, NLLLoss, MSELoss; each calls its functional in ``minigrad.nn.functional.loss``.

``reduction`` is PyTorch's: ``"mean"`` (default) averages over the batch, ``"sum"`` adds, ``"none"`` returns one
loss per sample.
"""
from minigrad.nn import functional as F
from minigrad.nn.module import Module
from minigrad.tensor import Tensor


class CrossEntropyLoss(Module):
    r"""Cross entropy between logits and class indices:
    ``loss_n = -log softmax(input_n)[target_n] = -input_n[target_n] + log sum_c exp(input_n[c])``.

    With ``label_smoothing = e`` the target is the mixture ``(1 - e) onehot(target) + e / C``.

    Args:
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.
        label_smoothing: ``e`` in [0, 1].

    Shape:
        - input: ``(N, C)``, unnormalized logits.
        - target: ``(N,)``, integer class indices in ``[0, C)``.
        - output: a scalar, or ``(N,)`` with ``reduction="none"``.
    """

    def __init__(self, reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__()
        self.reduction, self.label_smoothing = reduction, label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """The cross entropy of ``input`` logits against ``target`` indices (see the class docstring)."""
        return F.cross_entropy(input, target, self.reduction, self.label_smoothing)


class NLLLoss(Module):
    r"""Negative log likelihood of log-probabilities: ``loss_n = -input_n[target_n]``. Put ``LogSoftmax``
    (``F.log_softmax``) before it; ``CrossEntropyLoss`` is the two in one.

    Args:
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.

    Shape:
        - input: ``(N, C)``, log-probabilities.
        - target: ``(N,)``, integer class indices in ``[0, C)``.
        - output: a scalar, or ``(N,)`` with ``reduction="none"``.
    """

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """``-input[n, target[n]]``, reduced (see the class docstring)."""
        return F.nll_loss(input, target, self.reduction)


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
