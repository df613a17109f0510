"""``minigrad.autograd.grad``: gradients of outputs with respect to chosen inputs, returned rather than accumulated
(PyTorch's ``torch.autograd.grad``); with ``create_graph=True`` they can be differentiated again, to any order.
``minigrad.autograd.functional`` builds vjp, jvp and hvp on it."""
from minigrad.tensor import Tensor, _backward_pass, _check_differentiable, _root_grad


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """The tuple ``(d outputs / d input for input in inputs)``, each contracted with ``grad_outputs`` (default: ones,
    for one-element outputs). ``.grad`` is left alone. ``retain_graph`` defaults to ``create_graph``; an input the
    outputs do not depend on raises unless ``allow_unused`` (then its gradient is None)."""
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if not outputs or not inputs:
        raise RuntimeError("grad: outputs and inputs must be non-empty")
    _check_differentiable("grad", inputs)
    for i, o in enumerate(outputs):
        if not isinstance(o, Tensor):
            raise TypeError(f"grad: outputs must be Tensors, got {type(o).__name__} at position {i}")
        if not o.requires_grad:
            raise RuntimeError(f"grad: output {i} does not require grad and has no graph")
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    grad_outputs = list(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(f"grad: grad_outputs has {len(grad_outputs)} entries for {len(outputs)} outputs")
    seeds = [_root_grad("grad", o, g, create_graph) for o, g in zip(outputs, grad_outputs)]
    retain = create_graph if retain_graph is None else retain_graph
    got = _backward_pass(outputs, seeds, retain, create_graph, inputs, accumulate=False)
    result = []
    for i, x in enumerate(inputs):
        g = got.get(x)
        if g is None:
            if not allow_unused:
                raise RuntimeError(f"grad: input {i} was not used in the graph of the outputs (pass "
                                   f"allow_unused=True to get None for it)")
            result.append(None)
        else:
            result.append(g if create_graph else Tensor(g.copy()))
    return tuple(result)
