"""Tracing a model into a ``Graph``: the example input runs through the model once, in eval mode, and each step
that touches a traced value appends its ONNX nodes.

Two levels are recorded:
  modules      a module with a converter (``minigrad.onnx.modules.CONVERTERS``) runs its real forward with tracing
               paused and is replaced in the graph by its converter's nodes; an ``nn.Sequential`` is walked child
               by child (its BatchNorm+ReLU fast path would skip the children's calls); any other module written
               outside ``minigrad.nn`` (a residual block) runs its own forward, traced.
  Tensor ops   inside such a forward, the arithmetic of ``TENSOR_OPS`` (``+ - * /``, ``relu``, ``reshape``, ...)
               on traced values is recorded; the fused pairs a block may call (a BatchNorm's ``forward_relu``,
               ``F.add_relu``) run as their two ops while tracing, so that both are recorded.
Anything else is caught, not guessed: a module of ``minigrad.nn`` without a converter is refused by name, and a
value computed by an unrecorded op is recognized by its autograd node (the input requires grad during the trace
and the parameters do not, so exactly the values that depend on the input carry one) and refused with the op's
name. Control flow is frozen at the example's values, as in any tracer; ``export`` then checks the file against
the model in onnxruntime.
"""
import contextlib

import numpy as np

from minigrad.nn.module import Module, Sequential
from minigrad.tensor import Tensor, enable_grad

from .graph import ExportError
from .modules import converter_for


def _binary(op, reverse=False):
    return lambda tr, out, a, b: tr.g.op(op, [tr.name_of(b), tr.name_of(a)] if reverse else
                                         [tr.name_of(a), tr.name_of(b)], op.lower())


def _reshape(tr, out, a, *args, **kwargs):
    return tr.g.reshape(tr.name_of(a), a.shape, out.shape)


# Tensor method -> recorder(tracer, output, self, *args) returning the output's name
TENSOR_OPS = {
    "__add__": _binary("Add"), "__radd__": _binary("Add", True), "__sub__": _binary("Sub"),
    "__rsub__": _binary("Sub", True), "__mul__": _binary("Mul"), "__rmul__": _binary("Mul", True),
    "__truediv__": _binary("Div"), "__rtruediv__": _binary("Div", True), "maximum": _binary("Max"),
    "__neg__": lambda tr, out, a: tr.g.op("Neg", [tr.name_of(a)]),
    "relu": lambda tr, out, a: tr.g.op("Relu", [tr.name_of(a)]),
    "sigmoid": lambda tr, out, a: tr.g.op("Sigmoid", [tr.name_of(a)]),
    "tanh": lambda tr, out, a: tr.g.op("Tanh", [tr.name_of(a)]),
    "exp": lambda tr, out, a: tr.g.op("Exp", [tr.name_of(a)]),
    "reshape": _reshape, "view": _reshape, "flatten": _reshape,
}


class Tracer:
    def __init__(self, graph, model):
        self.g, self.active = graph, True
        self.values = {}  # id(tensor) -> (tensor, name); holding the tensor keeps its id from being reused
        self.paths = {id(m): name or "<model>" for name, m in model.named_modules()}

    def register(self, t, name):
        self.values[id(t)] = (t, name)

    def traced(self, t):
        return isinstance(t, Tensor) and id(t) in self.values and self.values[id(t)][0] is t

    def name_of(self, t):
        """The graph name of an operand: a traced value, else a constant (a parameter, a number)."""
        if self.traced(t):
            return self.values[id(t)][1]
        if isinstance(t, Tensor):
            self.check_constant(t, "an op's operand")
            return self.g.const(t.data, "const", t.data.dtype if t.data.dtype.kind != "f" else None)
        return self.g.const(np.asarray(t), "scalar")

    def check_constant(self, t, where):
        if t._ctx is not None:
            raise ExportError(f"cannot export the op {type(t._ctx).__name__!r} (Tensor op {where}): minigrad.onnx "
                              f"records the modules of minigrad.onnx.modules.CONVERTERS and the Tensor ops "
                              f"{sorted(TENSOR_OPS)}")

    # ------------------------------------------------------------ modules
    def call(self, module, *args, **kwargs):
        if not self.active:
            return module.forward(*args, **kwargs)
        where = f"{type(module).__name__} at {self.paths.get(id(module), '?')!r}"
        if type(module).forward is Sequential.forward:
            if len(args) != 1 or kwargs:
                raise ExportError(f"cannot export {where}: a Sequential takes one input")
            x = args[0]
            for child in module._modules.values():
                x = child(x)
            return x
        convert = converter_for(module)
        if convert is not None:
            if len(args) != 1 or kwargs or not isinstance(args[0], Tensor):
                raise ExportError(f"cannot export {where}: expected one Tensor input")
            x = args[0]
            name = self.name_of(x)
            with self.paused():
                y = module.forward(x)
            try:
                self.register(y, convert(self.g, module, name, x, y))
            except ExportError as e:
                raise ExportError(f"cannot export {where}: {e}") from None
            return y
        if type(module).__module__.startswith("minigrad.nn."):
            raise ExportError(f"cannot export {where}: minigrad.onnx has no converter for {type(module).__name__} "
                              f"(supported: {', '.join(sorted(c.__name__.lstrip('_') for c in _converted()))})")
        y = module.forward(*args, **kwargs)  # a block of the user's or the model zoo's: trace through it
        if isinstance(y, Tensor) and not self.traced(y) and y._ctx is not None:
            raise ExportError(f"cannot export {where}: its forward computes its output with the op "
                              f"{type(y._ctx).__name__!r}, which minigrad.onnx does not record")
        return y

    @contextlib.contextmanager
    def paused(self):
        self.active = False
        try:
            yield
        finally:
            self.active = True

    # ------------------------------------------------------------ patching
    def _tensor_method(self, name, original, record):
        tracer = self

        def method(a, *args, **kwargs):
            if not tracer.active:
                return original(a, *args, **kwargs)
            with tracer.paused():  # NOTE: an op built from others (flatten from reshape) records once
                out = original(a, *args, **kwargs)
            if tracer.traced(a) or any(tracer.traced(b) for b in args):
                if kwargs:
                    raise ExportError(f"cannot export Tensor.{name} called with keyword arguments {sorted(kwargs)}")
                tracer.register(out, record(tracer, out, a, *args))
            return out
        return method

    @contextlib.contextmanager
    def patched(self):
        """Module calls and the Tensor ops of TENSOR_OPS routed through the tracer, for the duration."""
        from minigrad.nn import functional as F
        from minigrad.nn.norm import _BatchNorm

        saved = {name: Tensor.__dict__[name] for name in TENSOR_OPS}
        saved_call = Module.__dict__["__call__"]
        saved_fused = _BatchNorm.__dict__["forward_relu"], F.add_relu
        tracer = self
        try:
            for name, record in TENSOR_OPS.items():
                setattr(Tensor, name, self._tensor_method(name, saved[name], record))
            Module.__call__ = lambda module, *a, **k: tracer.call(module, *a, **k)
            # NOTE: the fused pairs a block's forward may call (the zoo's BasicBlock: bn1.forward_relu, F.add_relu)
            # run as the pair, so that the BN's module call and the add and ReLU are recorded (same values in eval)
            _BatchNorm.forward_relu = lambda module, x: module(x).relu()
            F.add_relu = lambda a, b: (a + b).relu()
            yield
        finally:
            _BatchNorm.forward_relu, F.add_relu = saved_fused
            Module.__call__ = saved_call
            for name, fn in saved.items():
                setattr(Tensor, name, fn)


def _converted():
    from .modules import CONVERTERS
    return CONVERTERS


def trace(graph, model, x):
    """Run ``x`` through ``model`` (already in eval mode), recording ``graph``; returns ``(input name, output
    name, the traced output)``."""
    params = [p for p in model.parameters()]
    flags = [p.requires_grad for p in params]
    xt = Tensor(x.data.copy(), requires_grad=True)
    tracer = Tracer(graph, model)
    tracer.register(xt, "input")
    try:
        for p in params:
            p.requires_grad = False
        with enable_grad(), tracer.patched():
            y = model(xt)
    finally:
        for p, f in zip(params, flags):
            p.requires_grad = f
    if not isinstance(y, Tensor):
        raise ExportError(f"cannot export a model whose output is a {type(y).__name__}: one Tensor is supported")
    if not tracer.traced(y):
        tracer.check_constant(y, "producing the model's output")
        raise ExportError("cannot export a model whose output does not depend on its input")
    return "input", graph.op("Identity", [tracer.values[id(y)][1]], "output"), y
