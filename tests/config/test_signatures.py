"""Reading a component's schema from its source must agree with importing it, for every registered name."""

import typing
from typing import Any

import pytest

from dlx.config.signatures import signature_from_source, signature_of
from dlx.registry import REGISTRIES

ENTRIES = [(kind, name) for kind, registry in REGISTRIES.items() for name in registry.names()]


@pytest.mark.parametrize("kind, name", ENTRIES, ids=[f"{k}:{n}" for k, n in ENTRIES])
def test_source_and_import_agree(kind, name, monkeypatch):
    registry = REGISTRIES[kind]
    path = registry.path(name)
    module_name = path.partition(":")[0]
    import sys

    monkeypatch.delitem(sys.modules, module_name, raising=False)  # as in a fresh `dlx config` process
    static = signature_from_source(path)
    imported = signature_of(registry.get(name))
    if static is None:
        pytest.skip(f"{path} is not readable from source; it is imported (slower, still correct)")
    assert static.required == imported.required
    assert static.accepts_anything == imported.accepts_anything
    checkable = {key: hint for key, hint in imported.hints.items() if _checkable(hint)}
    assert {key: static.hints.get(key, Any) for key in imported.hints} == {
        key: checkable.get(key, Any) for key in imported.hints
    }


def _checkable(hint) -> bool:
    """Hints validate.py can check; others (nn.Module, a user's class) are left to the builder."""
    if hint in (int, float, str, bool, type(None), list, dict, tuple, Any):
        return True
    arguments = typing.get_args(hint)
    return typing.get_origin(hint) is not None and all(_checkable(a) for a in arguments if a is not ...)


def test_builtin_components_are_read_without_importing_torch():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from dlx.config.compose import compose_config\n"
        "from dlx.config.validate import validate_config\n"
        "validate_config(compose_config(['recipe=mnist_cnn']))\n"
        "validate_config(compose_config(['model=resnet', 'data=cifar10', 'scheduler=onecycle']))\n"
        "assert 'torch' not in sys.modules, 'validating a config imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_keyword_only_and_inherited_parameters_are_read_from_source(tmp_path, monkeypatch):
    (tmp_path / "widgets_for_signature_test.py").write_text(
        "class Base:\n"
        "    def __init__(self, size: int, *, colour: str, shade: float = 0.5, **extra):\n"
        "        pass\n"
        "class Child(Base):\n"
        "    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    signature = signature_from_source("widgets_for_signature_test:Child")
    assert signature.required == {"size": True, "colour": True, "shade": False}
    assert signature.accepts_anything
    assert signature.hints == {"size": int, "colour": str, "shade": float}
