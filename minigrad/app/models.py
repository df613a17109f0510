"""Model zoo for 28x28 images: ``build_model(name, in_channels=1, num_classes=10)`` over the ``MODELS`` registry.

  mlp          784-100-100-100-10 with sigmoids (Ioffe & Szegedy 2015's MNIST net)
  mlp-bn       the same with BatchNorm1d before each sigmoid
  lenet        conv5x5(6, pad 2)-relu-maxpool-conv5x5(16)-relu-maxpool-fc120-relu-fc84-relu-fc10
  lenet-bn     the same with BatchNorm2d/1d after each conv/fc (but the last) and before the relu
  resnet-tiny  stem conv3x3(16)-bn-relu, three basic blocks at 16/32/64 channels (the last two stride 2 with a
               1x1 projection shortcut), global average pool, fc
  resnet20     He et al. (2016)'s CIFAR ResNet-20: stem conv3x3(16)-bn-relu, three stages of three basic blocks
               at 16/32/64 channels (the first block of stages 2 and 3 stride 2, with a 1x1 conv + bn projection
               shortcut, He et al.'s option B), global average pool, fc; 0.27M parameters. Made for 3x32x32 input
               (``build_model("resnet20", in_channels=3)``); any input size works (the pool is adaptive)
Layers built with bias=False where a batch norm follows (its shift makes the bias redundant), as is customary.
Module names follow ``torch.nn.Sequential`` numbering, so a PyTorch model of the same structure shares the keys
of ``state_dict()``.
"""
from minigrad import nn
from minigrad.nn import functional as F


def _mlp(in_features, num_classes, bn, dtype):
    layers = [nn.Flatten()]
    width = in_features
    for _ in range(3):
        layers.append(nn.Linear(width, 100, bias=not bn, dtype=dtype))
        if bn:
            layers.append(nn.BatchNorm1d(100, dtype=dtype))
        layers.append(nn.Sigmoid())
        width = 100
    layers.append(nn.Linear(width, num_classes, dtype=dtype))
    return nn.Sequential(*layers)


def _lenet(in_channels, num_classes, bn, dtype):
    def block(layer, norm):
        return [layer, norm] if bn else [layer]

    layers = []
    layers += block(nn.Conv2d(in_channels, 6, 5, padding=2, bias=not bn, dtype=dtype), nn.BatchNorm2d(6, dtype=dtype))
    layers += [nn.ReLU(), nn.MaxPool2d(2)]
    layers += block(nn.Conv2d(6, 16, 5, bias=not bn, dtype=dtype), nn.BatchNorm2d(16, dtype=dtype))
    layers += [nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()]
    layers += block(nn.Linear(16 * 5 * 5, 120, bias=not bn, dtype=dtype), nn.BatchNorm1d(120, dtype=dtype))
    layers += [nn.ReLU()]
    layers += block(nn.Linear(120, 84, bias=not bn, dtype=dtype), nn.BatchNorm1d(84, dtype=dtype))
    layers += [nn.ReLU(), nn.Linear(84, num_classes, dtype=dtype)]
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``; the shortcut is a 1x1 conv + bn when the shape
    changes, else the identity."""

    def __init__(self, in_ch, out_ch, stride=1, dtype=None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False, dtype=dtype)
        self.bn1 = nn.BatchNorm2d(out_ch, dtype=dtype)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False, dtype=dtype)
        self.bn2 = nn.BatchNorm2d(out_ch, dtype=dtype)
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False, dtype=dtype),
                                          nn.BatchNorm2d(out_ch, dtype=dtype))
        else:
            self.shortcut = nn.Identity()
        self.relu1 = nn.ReLU()  # NOTE: a module, so that fuse_model can merge it into conv1 (nn.intrinsic.ConvReLU2d)

    def forward(self, x):
        # NOTE: the submodules from their table, not through Module.__getattr__ (seven reads a block, 0.7 us each)
        m = self._modules
        z = m["conv1"](x)
        # NOTE: bn1 then relu1 as one op (F.batch_norm_relu), as nn.Sequential runs a BatchNorm then a ReLU; the
        # same markers (nn.Sequential.forward): a plain ReLU, a BN with forward_relu; after fuse_model bn1 and
        # relu1 are Identity (conv1 a ConvReLU2d) and the pair runs as the two modules
        bn1, relu1 = m["bn1"], m["relu1"]
        if type(relu1).__dict__.get("is_plain_relu", False) and hasattr(type(bn1), "forward_relu"):
            y = bn1.forward_relu(z)
        else:
            y = relu1(bn1(z))
        y = m["bn2"](m["conv2"](y))
        return F.add_relu(y, m["shortcut"](x))  # NOTE: relu(y + shortcut) in one node


def _resnet_tiny(in_channels, num_classes, dtype):
    return nn.Sequential(
        nn.Conv2d(in_channels, 16, 3, padding=1, bias=False, dtype=dtype), nn.BatchNorm2d(16, dtype=dtype), nn.ReLU(),
        BasicBlock(16, 16, 1, dtype), BasicBlock(16, 32, 2, dtype), BasicBlock(32, 64, 2, dtype),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes, dtype=dtype))


def _resnet20(in_channels, num_classes, dtype):
    layers = [nn.Conv2d(in_channels, 16, 3, padding=1, bias=False, dtype=dtype), nn.BatchNorm2d(16, dtype=dtype),
              nn.ReLU()]
    width = 16
    for stage, out in enumerate((16, 32, 64)):
        for block in range(3):
            layers.append(BasicBlock(width, out, 2 if stage > 0 and block == 0 else 1, dtype))
            width = out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes, dtype=dtype)]
    return nn.Sequential(*layers)


MODELS = {
    "mlp": lambda c, k, dt: _mlp(c * 28 * 28, k, False, dt),
    "mlp-bn": lambda c, k, dt: _mlp(c * 28 * 28, k, True, dt),
    "lenet": lambda c, k, dt: _lenet(c, k, False, dt),
    "lenet-bn": lambda c, k, dt: _lenet(c, k, True, dt),
    "resnet-tiny": lambda c, k, dt: _resnet_tiny(c, k, dt),
    "resnet20": lambda c, k, dt: _resnet20(c, k, dt),
}


def build_model(name, in_channels=1, num_classes=10, dtype=None):
    """A freshly initialized model from ``MODELS`` for (N, in_channels, 28, 28) input (32x32 for resnet20; float32
    unless dtype)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(MODELS)}")
    return MODELS[name](in_channels, num_classes, dtype)
