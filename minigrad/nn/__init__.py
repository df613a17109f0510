"""Neural-network modules (stateful) and ``minigrad.nn.functional`` (stateless)."""
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
from minigrad.nn.layers import (  # noqa: F401
    GELU, AdaptiveAvgPool2d, AvgPool2d, Conv2d, CrossEntropyLoss, Dropout, Flatten, Identity, Linear, MaxPool2d,
    MSELoss, NLLLoss, ReLU, Sigmoid, Tanh,
)
