"""Constructor signatures of components: the schema a component's config is checked against.

dlx's own components are read from their source with ``ast`` instead of being imported, so checking a
config (``dlx config``, the first second of ``dlx train``) does not pay for importing torch. Anything
the source cannot answer (a class without its own ``__init__``, a user's ``_target_``) is imported
and inspected. tests/config/test_signatures.py checks both ways agree for every registered name.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import sys
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Annotation names a component's source may use; anything else (nn.Module, a user's class) is left
# unchecked, as typing.get_type_hints results that validate.py cannot check are.
_ANNOTATION_NAMES: dict[str, Any] = {
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "list": list,
    "dict": dict,
    "tuple": tuple,
    "None": None,
    "Any": Any,
    "Sequence": Sequence,
    "Mapping": Mapping,
    "Callable": Callable,
    "Literal": typing.Literal,
    "Optional": typing.Optional,
    "Union": typing.Union,
}


@dataclass
class ComponentSignature:
    required: dict[str, bool]  # keyword-usable parameter -> has no default
    accepts_anything: bool  # takes **kwargs
    hints: dict[str, Any] = field(default_factory=dict)


def signature_of(builder: Any) -> ComponentSignature:
    """The signature of an imported class or function."""
    signature = inspect.signature(builder)
    required = {
        name: p.default is inspect.Parameter.empty
        for name, p in signature.parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    accepts_anything = any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values())
    try:
        hints = typing.get_type_hints(builder.__init__ if inspect.isclass(builder) else builder)
    except Exception:  # unresolvable annotations in user code: check names only
        hints = {}
    hints.pop("return", None)
    return ComponentSignature(required, accepts_anything, {k: v for k, v in hints.items() if k in required})


def signature_from_source(path: str) -> ComponentSignature | None:
    """The signature of ``"package.module:attr"`` read from the module's source, or None when the
    source alone cannot tell (then import the object and use ``signature_of``)."""
    module_name, _, attribute = path.partition(":")
    if not attribute or "." in attribute or module_name in sys.modules:
        return None
    try:
        spec = importlib.util.find_spec(module_name)
        source = Path(spec.origin).read_text(encoding="utf-8")
    except (ImportError, AttributeError, TypeError, ValueError, OSError):
        return None
    function = _find_callable(ast.parse(source), attribute)
    return _from_function(function) if function is not None else None


def _find_callable(module: ast.Module, name: str) -> ast.FunctionDef | None:
    """The function ``name``, or the ``__init__`` of class ``name`` (inherited from a class of the same
    module if need be)."""
    for node in module.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
        if isinstance(node, ast.ClassDef) and node.name == name:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    return item
            if len(node.bases) == 1 and isinstance(node.bases[0], ast.Name):
                return _find_callable(module, node.bases[0].id)
            return None  # inherited from elsewhere: only importing tells
    return None


def _from_function(function: ast.FunctionDef) -> ComponentSignature | None:
    arguments = function.args
    positional = arguments.args[1:] if arguments.args and arguments.args[0].arg == "self" else arguments.args
    first_default = len(positional) - len(arguments.defaults)
    required = {arg.arg: index < first_default for index, arg in enumerate(positional)}
    for arg, default in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True):
        required[arg.arg] = default is None
    hints = {}
    for arg in [*positional, *arguments.kwonlyargs]:
        if arg.annotation is not None:
            hints[arg.arg] = _evaluate(arg.annotation)
    return ComponentSignature(required, arguments.kwarg is not None, hints)


def _evaluate(annotation: ast.expr) -> Any:
    text = annotation.value if isinstance(annotation, ast.Constant) else ast.unparse(annotation)
    try:
        return eval(text, {"__builtins__": {}}, dict(_ANNOTATION_NAMES))  # noqa: S307 - our own source
    except Exception:
        return Any
