"""Devices: minigrad runs on the CPU only. ``minigrad.device("cuda")`` can be built (device-selection code runs),
but moving a tensor to it raises, naming the device."""

_TYPES = ("cpu", "cuda", "mps", "xpu", "meta", "hip", "xla", "mtia", "privateuseone")


class device:
    """``device("cpu")``, ``device("cuda:0")``, ``device("cuda", 0)``; compares equal by type and index."""

    __slots__ = ("type", "index")

    def __init__(self, type, index=None):
        if isinstance(type, device):
            type, index = type.type, type.index
        elif isinstance(type, int) and not isinstance(type, bool):  # PyTorch: a bare ordinal means cuda
            type, index = "cuda", type
        if not isinstance(type, str):
            raise TypeError(f"device: expected a string such as 'cpu', got {type!r}")
        name, _, ordinal = type.partition(":")
        if name not in _TYPES:
            raise RuntimeError(f"device: expected one of {', '.join(_TYPES)} at the start of the device string, "
                               f"got {type!r}")
        if ordinal:
            if index is not None or not ordinal.isdigit():
                raise RuntimeError(f"device: invalid device string {type!r}")
            index = int(ordinal)
        self.type, self.index = name, index

    def __eq__(self, other):
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))

    def __repr__(self):
        return f"device(type={self.type!r}" + ("" if self.index is None else f", index={self.index}") + ")"

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"


CPU = device("cpu")


def check_cpu(dev, fn):
    """None or a CPU device passes; any other device raises, naming it."""
    if dev is None or dev is CPU:
        return
    d = dev if isinstance(dev, device) else device(dev)
    if d.type != "cpu":
        raise RuntimeError(f"{fn}: device {str(d)!r} is not available: minigrad runs on the CPU only "
                           f"(pick the device with minigrad.cuda.is_available(), which is False)")
