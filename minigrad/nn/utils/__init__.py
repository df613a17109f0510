"""Utilities as in ``torch.nn.utils``: ``clip_grad_norm_``; ``parametrize`` and ``parametrizations`` (weight and
spectral normalization); ``freeze_batch_norm`` / ``unfreeze_batch_norm`` for fine-tuning; ``update_bn`` (recompute
the running statistics, as ``torch.optim.swa_utils.update_bn``); ``fusion`` (``fuse_conv_bn_eval``,
``fuse_linear_bn_eval``, ``fuse_model``: batch norm folded into the layer before it)."""
from .batch_norm import freeze_batch_norm, unfreeze_batch_norm, update_bn  # noqa: F401
from .clip_grad import clip_grad_norm_, clip_grad_value_  # noqa: F401
from . import fusion, parametrizations, parametrize  # noqa: F401,E402
from .fusion import fuse_conv_bn_eval, fuse_linear_bn_eval, fuse_model  # noqa: F401,E402
