"""Apple's Metal backend: not in minigrad."""


def is_available():
    return False


def is_built():
    return False
