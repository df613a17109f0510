"""Neural-network modules (stateful) and ``minigrad.nn.functional`` (stateless).

Modules by role: ``module`` (Module, Sequential, ModuleList, Parameter), ``norm``, ``norm_family`` (Batch Renorm,
FRN and TLU, EvoNorm), ``norm_frozen`` (FrozenBatchNorm2d), ``linear`` (Linear, Identity, Flatten, Dropout,
Dropout2d), ``conv`` (Conv1d, Conv2d, ConvTranspose2d, pooling, Upsample), ``activation``, ``loss``; ``init`` and
``utils`` (clip_grad_norm_, parametrize, parametrizations, freeze_batch_norm) as in PyTorch; ``intrinsic``
(ConvReLU2d, LinearReLU: the fused modules of ``utils.fusion.fuse_model``, as ``torch.ao.nn.intrinsic``).
"""
from minigrad.nn import functional  # noqa: F401
from minigrad.nn.module import Module, ModuleList, Parameter, Sequential  # noqa: F401
from minigrad.nn.norm import (  # noqa: F401
    BatchNorm1d,
    BatchNorm2d,
    BatchNorm3d,
    GroupNorm,
    InstanceNorm1d,
    InstanceNorm2d,
    InstanceNorm3d,
    LayerNorm,
    RMSNorm,
)
from minigrad.nn.norm_family import (  # noqa: F401
    TLU,
    BatchRenorm1d,
    BatchRenorm2d,
    BatchRenorm3d,
    EvoNorm2d,
    FilterResponseNorm2d,
)
from minigrad.nn.norm_frozen import FrozenBatchNorm2d  # noqa: F401
from minigrad.nn.decorrelated import DecorrelatedBatchNorm2d  # noqa: F401
from minigrad.nn.sync_batchnorm import SyncBatchNorm  # noqa: F401
from minigrad.nn.activation import ELU, GELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, SiLU, Softmax, Tanh  # noqa: F401
from minigrad.nn.conv import (  # noqa: F401
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    AvgPool2d,
    Conv1d,
    Conv2d,
    ConvTranspose2d,
    MaxPool2d,
    MaxUnpool2d,
    Upsample,
)
from minigrad.nn.linear import Dropout, Dropout2d, Flatten, Identity, Linear  # noqa: F401
from minigrad.nn.loss import CrossEntropyLoss, MSELoss, NLLLoss  # noqa: F401
from minigrad.nn import intrinsic  # noqa: F401,E402
from minigrad.nn import parallel  # noqa: F401,E402  (after the modules it wraps: torch.nn.parallel's path)
