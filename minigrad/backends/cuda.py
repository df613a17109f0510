"""CUDA: not in minigrad."""


def is_built():
    return False


class _Matmul:
    allow_tf32 = False
    allow_fp16_reduced_precision_reduction = False


matmul = _Matmul()
