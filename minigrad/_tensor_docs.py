"""Docstrings of ``Tensor``'s one-line methods and aliases, and of ``minigrad.tensor``'s one-line functions.

A one-line method (``def exp(self): return Exp.apply(...)``) has no room for a docstring, and an alias
(``sub = subtract = __sub__``) is the same function object as its target; as PyTorch's ``torch/_tensor_docs.py``
does, their docstrings are attached here, once, at import (before ``minigrad.ops`` copies them into the function
forms). A method documented where it is defined keeps its own docstring; tests/test_docstrings.py checks that every
entry names an existing, otherwise undocumented function.
"""
import sys

from minigrad.tensor import Tensor

# NOTE: an alias shares its target's docstring (one function object): the entry names the target and its aliases
METHODS = {
    # dtype conversions and new tensors
    "float": "A copy cast to float32 (self when it already is).",
    "double": "A copy cast to float64 (self when it already is).",
    "half": "A copy cast to float16 (self when it already is).",
    "long": "A copy cast to int64 (self when it already is).",
    "int": "A copy cast to int32 (self when it already is).",
    "short": "A copy cast to int16 (self when it already is).",
    "bool": "A copy cast to bool (self when it already is).",
    "byte": "A copy cast to uint8 (self when it already is).",
    "type_as": "Self cast to ``other``'s dtype.",
    "new_tensor": "A new tensor from ``data``, with self's dtype unless ``dtype`` is given.",
    "new_zeros": "Zeros of ``size``, with self's dtype unless ``dtype`` is given.",
    "new_ones": "Ones of ``size``, with self's dtype unless ``dtype`` is given.",
    "new_empty": "Uninitialized in PyTorch; zeros here, of ``size``, with self's dtype unless ``dtype`` is given.",
    "new_full": "``fill_value`` everywhere, of ``size``, with self's dtype unless ``dtype`` is given.",
    # arithmetic (broadcast, dtypes promoted as PyTorch's)
    "add": "``self + other``, broadcast. Also ``+``.",
    "sub": "``self - other``, broadcast. Also ``subtract`` and ``-``.",
    "mul": "``self * other``, broadcast. Also ``multiply`` and ``*``.",
    "div": "``self / other``, broadcast; true division (integer inputs give float32). Also ``divide``,\n"
           "``true_divide`` and ``/``.",
    "floor_divide": "``floor(self / other)``, broadcast (Python's ``//``); it has no derivative, as in PyTorch.",
    "remainder": "``self - floor(self / other) * other``, with the sign of ``other`` (Python's ``%``).",
    "matmul": "The matrix product (NumPy's ``matmul`` rules: batched, 1-d operands promoted). Also ``@``.",
    "neg": "``-self``. Also ``negative``.",
    "pow": "``self ** exponent`` (a number or a tensor, broadcast).",
    # comparisons and logic: bool tensors, no gradient
    "eq": "``self == other`` elementwise, a bool tensor.",
    "ne": "``self != other`` elementwise, a bool tensor. Also ``not_equal``.",
    "lt": "``self < other`` elementwise, a bool tensor. Also ``less``.",
    "le": "``self <= other`` elementwise, a bool tensor. Also ``less_equal``.",
    "gt": "``self > other`` elementwise, a bool tensor. Also ``greater``.",
    "ge": "``self >= other`` elementwise, a bool tensor. Also ``greater_equal``.",
    "bitwise_and": "``self & other`` of bool or integer tensors.",
    "bitwise_or": "``self | other`` of bool or integer tensors.",
    "bitwise_xor": "``self ^ other`` of bool or integer tensors.",
    "bitwise_not": "``~self`` of a bool or integer tensor.",
    "logical_not": "``not self`` elementwise (nonzero is True), a bool tensor.",
    "logical_and": "``self and other`` elementwise (nonzero is True), a bool tensor.",
    "logical_or": "``self or other`` elementwise (nonzero is True), a bool tensor.",
    "isnan": "True where an element is NaN, a bool tensor.",
    "isinf": "True where an element is +inf or -inf, a bool tensor.",
    "isfinite": "True where an element is neither NaN nor infinite, a bool tensor.",
    # elementwise functions (bool and integer inputs give float32)
    "exp": "``e ** self`` elementwise.",
    "log": "The natural logarithm elementwise (-inf at 0, NaN below).",
    "sqrt": "The square root elementwise (NaN below 0).",
    "rsqrt": "``1 / sqrt(self)`` elementwise.",
    "tanh": "The hyperbolic tangent elementwise.",
    "sigmoid": "``1 / (1 + exp(-self))`` elementwise.",
    "sin": "The sine elementwise.",
    "cos": "The cosine elementwise.",
    "log1p": "``log(1 + self)`` elementwise, accurate for small values.",
    "expm1": "``exp(self) - 1`` elementwise.",
    "log2": "The base-2 logarithm elementwise.",
    "log10": "The base-10 logarithm elementwise.",
    "reciprocal": "``1 / self`` elementwise.",
    "square": "``self * self`` elementwise.",
    "relu": "``max(self, 0)`` elementwise; the gradient at 0 is 0, as PyTorch's.",
    "abs": "``|self|`` elementwise; the gradient at 0 is 0. Also ``absolute``.",
    "sign": "-1, 0 or 1 by the sign of each element; its gradient is 0.",
    "floor": "Each element rounded down; its gradient is 0 (integer tensors are returned as a copy).",
    "ceil": "Each element rounded up; its gradient is 0 (integer tensors are returned as a copy).",
    "trunc": "Each element rounded toward zero; its gradient is 0 (integer tensors are returned as a copy).",
    "maximum": "The elementwise maximum of self and ``other`` (broadcast); ties share the gradient.",
    "minimum": "The elementwise minimum of self and ``other`` (broadcast); ties share the gradient.",
    "where": "``self`` where ``condition`` (a bool tensor) holds, else ``other``, broadcast.",
    # shape
    "view_as": "Self reshaped to ``other``'s shape. Also ``reshape_as``.",
    "expand_as": "Self broadcast to ``other``'s shape (:meth:`expand`).",
    "ravel": "The elements as a 1-d tensor (``reshape(-1)``).",
    "fliplr": "The order reversed along dim 1 (left to right).",
    "flipud": "The order reversed along dim 0 (up to down).",
    # in place (outside the graph; refused on a tensor that requires grad while grad mode is on)
    "mul_": "``self *= other`` in place; returns self.",
    "div_": "``self /= other`` in place; returns self.",
    "pow_": "``self **= other`` in place; returns self.",
    "clamp_": "Each element limited to ``[min, max]`` in place; returns self. Also ``clip_``.",
    "masked_fill_": "``value`` written where ``mask`` is True, in place (:meth:`masked_fill`); returns self.",
    "scatter_": "``src`` (or ``value``) written at ``index`` along ``dim``, in place (:meth:`scatter`); returns self.",
    "scatter_add_": "``src`` added at ``index`` along ``dim``, in place (:meth:`scatter_add`); returns self.",
    "addcmul_": "``self += value * a * b`` in place; returns self.",
    "addcdiv_": "``self += value * a / b`` in place; returns self.",
    "lerp_": "``self += weight * (end - self)`` in place (linear interpolation toward ``end``); returns self.",
}

FUNCTIONS = {
    "exp": "``e ** x`` elementwise (:meth:`Tensor.exp`).",
    "log": "The natural logarithm of ``x`` elementwise (:meth:`Tensor.log`).",
    "sqrt": "The square root of ``x`` elementwise (:meth:`Tensor.sqrt`).",
    "tanh": "The hyperbolic tangent of ``x`` elementwise (:meth:`Tensor.tanh`)."
             "\n\nShape:\n    - Input: ``(*)``, any shape\n    - Output: the input's shape",
    "sigmoid": "``1 / (1 + exp(-x))`` elementwise (:meth:`Tensor.sigmoid`)."
             "\n\nShape:\n    - Input: ``(*)``, any shape\n    - Output: the input's shape",
    "relu": "``max(x, 0)`` elementwise (:meth:`Tensor.relu`)."
             "\n\nShape:\n    - Input: ``(*)``, any shape\n    - Output: the input's shape",
    "matmul": "The matrix product of ``a`` and ``b`` (NumPy's ``matmul`` rules; :meth:`Tensor.matmul`).",
}


def _attach(owner, table):
    for name, doc in table.items():
        fn = getattr(owner, name, None)
        if fn is not None and not fn.__doc__:  # NOTE: a docstring written where the function is defined wins
            fn.__doc__ = doc


_attach(Tensor, METHODS)
_attach(sys.modules[Tensor.__module__], FUNCTIONS)  # NOTE: ``minigrad.tensor`` the attribute is the function
