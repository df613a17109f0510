"""The ONNX graph under construction: nodes, initializers and fresh names, in plain Python until ``to_model``.

Converters (``minigrad.onnx.modules``) call ``op``, ``const`` and the few helpers whose spelling changed between
opsets (``reduce_mean``: axes an attribute up to opset 17, an input from 18). Only ``to_model`` touches the
``onnx`` package, which the caller imported (``minigrad.onnx`` never imports it at import time).
"""
import numpy as np


class ExportError(ValueError):
    """A model that ``minigrad.onnx.export`` cannot write: the message names the module or op."""


class Graph:
    """Nodes in topological order (each appended after its inputs exist) and constant tensors by name."""

    def __init__(self, dtype, opset, dynamic_batch):
        self.dtype, self.opset, self.dynamic_batch = np.dtype(dtype), opset, dynamic_batch
        self.nodes, self.consts = [], {}  # nodes: (op_type, inputs, outputs, attrs, name)
        self._count = {}
        self._by_id = {}  # id(array) -> name: a parameter used twice is stored once

    def fresh(self, hint):
        """A name not used before: ``hint``, then ``hint_1``, ``hint_2``, ..."""
        n = self._count.get(hint, 0)
        self._count[hint] = n + 1
        return hint if n == 0 else f"{hint}_{n}"

    def const(self, array, hint="const", dtype=None):
        """The name of an initializer holding ``array`` (cast to ``dtype``, default the graph's float dtype)."""
        key = (id(array), dtype)
        if isinstance(array, np.ndarray) and key in self._by_id:
            return self._by_id[key][1]
        value = np.ascontiguousarray(np.asarray(array, dtype=self.dtype if dtype is None else dtype))
        name = self.fresh(hint)
        self.consts[name] = value
        if isinstance(array, np.ndarray):
            self._by_id[key] = (array, name)  # NOTE: holding the array keeps its id from being reused
        return name

    def ints(self, values, hint="shape"):
        """An int64 initializer (shapes, axes)."""
        return self.const(np.asarray(values, np.int64), hint, np.int64)

    def op(self, op_type, inputs, hint=None, **attrs):
        """Append one node with one output; returns the output's name."""
        out = self.fresh(hint or op_type.lower())
        self.nodes.append((op_type, list(inputs), [out], attrs, self.fresh(f"{op_type}_node")))
        return out

    # ------------------------------------------------------------ helpers spelled differently across opsets
    def reduce_mean(self, x, axes, hint=None):
        """Mean over ``axes``, dims kept."""
        if self.opset >= 18:
            return self.op("ReduceMean", [x, self.ints(axes, "axes")], hint, keepdims=1)
        return self.op("ReduceMean", [x], hint, axes=list(axes), keepdims=1)

    def per_channel(self, array, ndim, hint):
        """A (C,) array as a constant shaped (1, C, 1, ...) to broadcast against (N, C, *) of ``ndim`` dims."""
        a = np.asarray(array)
        return self.const(a.reshape((1, a.shape[0]) + (1,) * (ndim - 2)), hint)

    def std(self, x, axes, eps, center, hint):
        """``(x - mean, sqrt(var + eps))`` over ``axes`` (biased variance, dims kept), or ``(x, sqrt(mean(x^2) +
        eps))`` without ``center``: the statistics every normalization here is built from, as elementwise ops."""
        if center:
            x = self.op("Sub", [x, self.reduce_mean(x, axes, f"{hint}_mean")], f"{hint}_centered")
        m2 = self.reduce_mean(self.op("Mul", [x, x], f"{hint}_sq"), axes, f"{hint}_var")
        return x, self.op("Sqrt", [self.op("Add", [m2, self.const(eps, f"{hint}_eps")])], f"{hint}_std")

    def normalize(self, x, axes, eps, center, hint):
        """``(x - mean) / sqrt(var + eps)`` (``center``) or ``x / sqrt(mean(x^2) + eps)`` over ``axes``."""
        x, std = self.std(x, axes, eps, center, hint)
        return self.op("Div", [x, std], f"{hint}_normalized")

    def reshape(self, x, in_shape, out_shape, hint="reshape"):
        """``x`` of the traced shape ``in_shape`` reshaped to ``out_shape``. With a dynamic batch, dim 0 of the
        target is 0 (copy the input's) when the traced dim 0 is kept, else -1 (it absorbs the batch)."""
        target = [int(d) for d in out_shape]
        if self.dynamic_batch and target:
            target[0] = 0 if len(in_shape) and out_shape[0] == in_shape[0] else -1
        return self.op("Reshape", [x, self.ints(target)], hint)

    def affine(self, y, weight, bias, ndim, hint, channel_axis=True):
        """``y * weight + bias`` (either may be None): per channel (axis 1) or, without ``channel_axis``, over the
        trailing dims (the arrays' own shapes)."""
        shape = (lambda a: self.per_channel(a, ndim, hint)) if channel_axis else (lambda a: self.const(a, hint))
        if weight is not None:
            y = self.op("Mul", [y, shape(weight)], f"{hint}_scaled")
        if bias is not None:
            y = self.op("Add", [y, shape(bias)], f"{hint}_shifted")
        return y

    # ------------------------------------------------------------ the model
    def to_model(self, input_name, input_shape, output_name, output_shape, producer):
        """An ``onnx.ModelProto`` at ``self.opset`` with the lowest IR version that opset needs (IR 8 for opset
        17, which onnxruntime accepts: onnx's default, the newest IR, it refuses)."""
        from onnx import helper, numpy_helper

        elem = helper.np_dtype_to_tensor_dtype(self.dtype)

        def dims(shape):
            return ["batch" if self.dynamic_batch and i == 0 else int(d) for i, d in enumerate(shape)]

        nodes = [helper.make_node(op, ins, outs, name=name, **attrs) for op, ins, outs, attrs, name in self.nodes]
        inits = [numpy_helper.from_array(v, name) for name, v in self.consts.items()]
        graph = helper.make_graph(nodes, "minigrad", [helper.make_tensor_value_info(input_name, elem,
                                                                                      dims(input_shape))],
                                  [helper.make_tensor_value_info(output_name, elem, dims(output_shape))], inits)
        model = helper.make_model_gen_version(graph, opset_imports=[helper.make_opsetid("", self.opset)],
                                              producer_name="minigrad", producer_version=producer)
        return model
