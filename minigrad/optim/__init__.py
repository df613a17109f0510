"""Optimizers (``SGD``, ``Adam``, ``AdamW``, ``RMSprop``, ``Adadelta``, ``Adagrad``) and learning-rate schedulers
(``minigrad.optim.lr_scheduler``)."""
from minigrad.optim import lr_scheduler  # noqa: F401
from minigrad.optim.adaptive import Adadelta, Adagrad, RMSprop  # noqa: F401
from minigrad.optim.optimizer import SGD, Adam, AdamW, Optimizer  # noqa: F401
from minigrad.nn.utils import clip_grad_norm_  # noqa: F401
