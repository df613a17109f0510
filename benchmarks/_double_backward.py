"""The double-backward cases, shared by bench_double_backward.py and scripts/double_backward_vs_torch.py.

A case is (norm, shape): BatchNorm2d in training (batch statistics) or LayerNorm over the last dim, affine, float32.
What is timed (``step``), the forward having run outside the timing (``setup``):

    gx, gw, gb = grad(y, (x, weight, bias), dy, create_graph=True)     # the backward, recorded
    (sum(gx * v) + sum(gw * u)).backward()                             # its backward: d/d(x, weight, dy)

so the second line is the double backward (gradients of dx and dweight with respect to x, weight and dy), as
a gradient penalty or a Hessian-vector product pays it. minigrad or PyTorch is imported on demand only: run each
in its own process (two OpenMP runtimes in one process distort the timings, TOOLCHAIN.md).
"""
import numpy as np

CASES = [("BatchNorm2d", (32, 64, 28, 28)), ("LayerNorm", (8192, 768))]
EPS = 1e-5


def case_id(norm, shape):
    return f"{norm}-{'x'.join(str(s) for s in shape)}"


def _arrays(norm, shape, dtype):
    rng = np.random.default_rng(0)
    c = shape[1] if norm == "BatchNorm2d" else shape[-1]
    x, dy, v = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
    w = (1 + 0.1 * rng.standard_normal(c)).astype(dtype)
    b, u = (rng.standard_normal(c).astype(dtype) for _ in range(2))
    return x, w, b, dy, v, u


def build(framework, norm, shape, dtype=np.float32):
    """(setup, step, summary, halves): ``setup()`` runs the forward and returns (step's arguments, {});
    ``step(*args)`` the timed part; ``summary(*args)`` (after a step) the L2 norms of the gradients of x, weight
    and dy, float64; ``halves = (first, second)`` with ``step(*args) == second(first(*args))``."""
    x, w, b, dy, v, u = _arrays(norm, shape, dtype)
    if framework == "torch":
        import torch
        F, grad = torch.nn.functional, torch.autograd.grad
        leaf, const = (lambda a: torch.tensor(a, requires_grad=True)), torch.tensor
    else:
        import minigrad
        import minigrad.nn.functional as F
        grad = minigrad.autograd.grad
        leaf, const = (lambda a: minigrad.Tensor(a.copy(), requires_grad=True)), minigrad.Tensor
    if norm == "BatchNorm2d":
        fn = lambda X, W, B: F.batch_norm(X, None, None, W, B, training=True, eps=EPS)  # noqa: E731
    else:
        fn = lambda X, W, B: F.layer_norm(X, (shape[-1],), W, B, eps=EPS)  # noqa: E731
    V, U = const(v), const(u)

    def setup():
        X, W, B, G = leaf(x), leaf(w), leaf(b), leaf(dy)
        return (fn(X, W, B), X, W, B, G), {}

    def first(y, X, W, B, G):
        return grad(y, (X, W, B), G, create_graph=True)

    def second(grads):
        gx, gw, gb = grads
        ((gx * V).sum() + (gw * U).sum()).backward()

    def step(*args):
        second(first(*args))

    def summary(y, X, W, B, G):
        return [float(np.linalg.norm(np.asarray(t.grad.numpy() if framework == "torch" else t.grad.data,
                                                np.float64))) for t in (X, W, G)]

    return setup, step, summary, (first, second)
