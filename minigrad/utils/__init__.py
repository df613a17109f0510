"""``minigrad.utils``, the counterpart of ``torch.utils``: ``minigrad.utils.data`` (imported on first use, so that
``import minigrad`` stays light)."""
import importlib


def __getattr__(name):
    if name == "data":
        return importlib.import_module("minigrad.utils.data")
    raise AttributeError(f"module 'minigrad.utils' has no attribute {name!r}")
