"""Utilities as in ``torch.nn.utils``: ``clip_grad_norm_``; ``parametrize`` and ``parametrizations`` (weight and
spectral normalization); ``freeze_batch_norm`` / ``unfreeze_batch_norm`` for fine-tuning."""
from .batch_norm import freeze_batch_norm, unfreeze_batch_norm  # noqa: F401
from .clip_grad import clip_grad_norm_  # noqa: F401
from . import parametrizations, parametrize  # noqa: F401,E402
