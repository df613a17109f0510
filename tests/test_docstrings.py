"""Every public name of minigrad's API has a docstring, as ``help()`` and the API reference show them.

The walk imports the public modules and checks what a user reaches: each module's ``__all__`` (or, without one,
its public names defined inside minigrad), and the public methods and properties of those classes, own or
inherited from a minigrad class. A method that overrides a documented one inherits its docstring (as ``help()``
and pdoc show it). The ops of ``minigrad.nn.functional`` and the layer modules also carry a "Shape" section, the
normalizations their formula, and their signatures type annotations.
"""
import importlib
import inspect
import re

import pytest

MODULES = ["minigrad", "minigrad.nn", "minigrad.nn.functional", "minigrad.optim", "minigrad.optim.lr_scheduler",
           "minigrad.data", "minigrad.utils.data", "minigrad.autograd", "minigrad.vision", "minigrad.distributed",
           "minigrad.nn.utils", "minigrad.nn.init"]


def _ours(obj):
    return (getattr(obj, "__module__", None) or "").split(".")[0] == "minigrad"


def public_names(mod):
    """``(name, object)`` for the public functions and classes ``mod`` offers."""
    names = getattr(mod, "__all__", None)
    if names is None:
        names = [n for n in vars(mod) if not n.startswith("_")]
    out = []
    for n in names:
        obj = getattr(mod, n)
        if (inspect.isclass(obj) or callable(obj)) and not inspect.ismodule(obj) and _ours(obj):
            out.append((n, obj))
    return out


def _members(cls):
    """``(name, owner, raw attribute)`` for the public methods and properties of ``cls``, own or inherited from a
    minigrad class."""
    seen = {}
    for owner in cls.__mro__:
        if owner is object or not _ours(owner):
            continue
        for n, attr in vars(owner).items():
            if n.startswith("_") or n in seen:
                continue
            if isinstance(attr, (staticmethod, classmethod)):
                attr = attr.__func__
            if isinstance(attr, property) or inspect.isfunction(attr):
                seen[n] = (owner, attr)
    return [(n, o, a) for n, (o, a) in seen.items()]


def _member_doc(cls, name, attr):
    """The docstring ``help()`` shows: the attribute's own, or that of the method it overrides in a base class."""
    if attr.__doc__ and attr.__doc__.strip():
        return attr.__doc__
    for base in cls.__mro__[1:]:
        if name in vars(base):
            base_attr = vars(base)[name]
            if isinstance(base_attr, (staticmethod, classmethod)):
                base_attr = base_attr.__func__
            doc = getattr(base_attr, "__doc__", None)
            if doc and doc.strip() and (isinstance(base_attr, property) or inspect.isfunction(base_attr)):
                return doc
    return None


def undocumented(modules=MODULES):
    """The qualified names of every public function, class, method and property without a docstring."""
    missing, done = set(), set()
    for modname in modules:
        mod = importlib.import_module(modname)
        for name, obj in public_names(mod):
            if id(obj) in done:
                continue
            done.add(id(obj))
            where = f"{obj.__module__}.{obj.__qualname__}" if hasattr(obj, "__qualname__") else f"{modname}.{name}"
            doc = vars(obj).get("__doc__") if inspect.isclass(obj) else obj.__doc__
            if not (doc and doc.strip()):
                missing.add(where)
            if inspect.isclass(obj):
                for n, owner, attr in _members(obj):
                    if _member_doc(owner, n, attr) is None:
                        missing.add(f"{owner.__module__}.{owner.__qualname__}.{n}")
    return sorted(missing)


def test_every_public_name_has_a_docstring():
    missing = undocumented()
    assert missing == [], f"{len(missing)} public names without a docstring:\n" + "\n".join(missing)


def test_the_walk_finds_a_missing_docstring(monkeypatch):
    import minigrad

    monkeypatch.setattr(minigrad.Tensor.sub, "__doc__", None)
    monkeypatch.setattr(minigrad.nn.BatchNorm2d, "__doc__", "  ")
    missing = undocumented(["minigrad", "minigrad.nn"])
    assert "minigrad.tensor.Tensor.sub" in missing
    assert "minigrad.nn.norm.BatchNorm2d" in missing


# --- the ops and layers: annotations, a Shape section, the formula ------------------------------------------------

def _functional_ops():
    return public_names(importlib.import_module("minigrad.nn.functional"))


def _layer_modules():
    """The public classes of minigrad.nn that are modules (not containers of other modules)."""
    import minigrad.nn as nn

    containers = {nn.Module, nn.Sequential, nn.ModuleList, nn.Parameter}
    return [(n, c) for n, c in public_names(nn) if inspect.isclass(c) and issubclass(c, nn.Module)
            and c not in containers]


def unannotated(fn, skip=("self",)):
    """The parameters of ``fn`` without a type annotation (``*args``/``**kwargs`` included), and "return" when
    the return type is missing."""
    sig = inspect.signature(fn)
    bad = [p.name for p in sig.parameters.values() if p.name not in skip and p.annotation is inspect.Parameter.empty]
    return bad


@pytest.mark.parametrize("name,fn", _functional_ops(), ids=[n for n, _ in _functional_ops()])
def test_functional_ops_are_annotated(name, fn):
    assert unannotated(fn) == []
    assert inspect.signature(fn).return_annotation is not inspect.Signature.empty, name


@pytest.mark.parametrize("name,cls", _layer_modules(), ids=[n for n, _ in _layer_modules()])
def test_module_constructors_are_annotated(name, cls):
    assert unannotated(cls.__init__) == []


def test_the_annotation_check_can_fail():
    def f(x: int, y, *args, z: int = 1, **kw) -> int:
        return 0

    assert unannotated(f) == ["y", "args", "kw"]


SHAPE = re.compile(r"^\s*Shape:\s*$", re.M)
# a formula: an equation in a math block or inline (``y = ...``, ``:math:``)
FORMULA = re.compile(r"(:math:|\.\. math::|\by = )")

NORM_OPS = ["batch_norm", "layer_norm", "group_norm", "instance_norm", "rms_norm", "batch_renorm",
            "filter_response_norm", "evonorm_b0", "evonorm_s0", "batch_norm_relu"]
NORM_MODULES = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "GroupNorm", "InstanceNorm1d",
                "InstanceNorm2d", "InstanceNorm3d", "RMSNorm", "BatchRenorm1d", "BatchRenorm2d", "BatchRenorm3d",
                "FilterResponseNorm2d", "EvoNorm2d", "FrozenBatchNorm2d", "SyncBatchNorm", "DecorrelatedBatchNorm2d"]
LAYER_MODULES = NORM_MODULES + ["Linear", "Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Conv1d",
                                "ConvTranspose2d", "AdaptiveMaxPool2d", "MaxUnpool2d", "Upsample"]


@pytest.mark.parametrize("name", [n for n, _ in _functional_ops()])
def test_functional_ops_have_a_shape_section(name):
    import minigrad.nn.functional as F

    assert SHAPE.search(inspect.getdoc(getattr(F, name)) or ""), f"F.{name}: no 'Shape:' section"


@pytest.mark.parametrize("name", LAYER_MODULES)
def test_layer_modules_have_a_shape_section(name):
    import minigrad.nn as nn

    assert SHAPE.search(vars(getattr(nn, name)).get("__doc__") or ""), f"nn.{name}: no 'Shape:' section"


@pytest.mark.parametrize("name", NORM_OPS + NORM_MODULES)
def test_normalizations_give_their_formula(name):
    import minigrad.nn as nn
    import minigrad.nn.functional as F

    obj = getattr(F, name, None) or getattr(nn, name)
    doc = obj.__doc__ if not inspect.isclass(obj) else vars(obj).get("__doc__")
    assert FORMULA.search(doc or ""), f"{name}: no formula"


def test_the_section_checks_can_fail():
    assert not SHAPE.search("Batch norm.\n\nShape is (N, C).")
    assert SHAPE.search("Batch norm.\n\n    Shape:\n        - Input: (N, C)")
    assert not FORMULA.search("Batch norm over the batch.")
    assert FORMULA.search("Batch norm.\n\n.. math::\n    y = x")


def test_help_of_batchnorm2d_reads_like_pytorch():
    import pydoc

    import minigrad.nn as nn

    text = pydoc.render_doc(nn.BatchNorm2d, renderer=pydoc.plaintext)
    for part in ("Args:", "num_features", "eps", "momentum", "affine", "track_running_stats", "Shape:", "Input:",
                 "Output:", "Examples:"):
        assert part in text, part


def test_the_docstring_table_names_existing_undocumented_functions():
    # minigrad/_tensor_docs.py attaches the docstrings of one-line methods; a stale entry (a renamed method, or one
    # that got its own docstring in tensor.py) fails here
    import ast
    from pathlib import Path

    import minigrad._tensor_docs as _tensor_docs

    tensor = importlib.import_module("minigrad.tensor")  # NOTE: the attribute minigrad.tensor is the function

    src = ast.parse(Path(tensor.__file__).read_text())
    own = {}
    for node in ast.walk(src):
        if isinstance(node, ast.ClassDef) and node.name == "Tensor":
            own["Tensor"] = {f.name for f in node.body if isinstance(f, ast.FunctionDef) and ast.get_docstring(f)}
    own["module"] = {f.name for f in src.body if isinstance(f, ast.FunctionDef) and ast.get_docstring(f)}
    for owner, table, key in ((tensor.Tensor, _tensor_docs.METHODS, "Tensor"), (tensor, _tensor_docs.FUNCTIONS,
                                                                                  "module")):
        for name, doc in table.items():
            fn = getattr(owner, name)
            assert callable(fn), name
            assert fn.__name__ not in own[key], f"{name}: documented in tensor.py, remove it from _tensor_docs"
            assert fn.__doc__ == doc, name
