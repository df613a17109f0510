"""``minigrad.cuda``: there is no GPU; the queries that device-selection code makes answer accordingly."""


def is_available():
    return False


def device_count():
    return 0


def is_bf16_supported(including_emulation=True):
    return False


def manual_seed(seed):
    """No CUDA generator exists; a no-op, as PyTorch's without a GPU."""


manual_seed_all = manual_seed


def synchronize(device=None):
    """Nothing runs asynchronously on the CPU."""


def empty_cache():
    """No device memory to free."""
