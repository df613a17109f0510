"""Activation modules: ReLU, Sigmoid, Tanh, GELU."""
from minigrad.nn import functional as F
from minigrad.nn.module import Module


class ReLU(Module):
    is_plain_relu = True  # nn.Sequential fuses a BatchNorm followed by this class (not its subclasses)

    def forward(self, x):
        return x.relu()


class Sigmoid(Module):
    def forward(self, x):
        return x.sigmoid()


class Tanh(Module):
    def forward(self, x):
        return x.tanh()


class GELU(Module):
    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, self.approximate)
