"""One small registry for every component a user names: models, data, tasks, optimizers, schedulers.

Entries are stored as ``"module:attribute"`` strings and imported on first use, so listing them
(``dlx ls``) never imports torch. Third-party packages add entries through the entry-point group
``dlx.<kind>`` (for example ``dlx.models``) in their own ``pyproject.toml``.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from dlx.errors import DlxError, did_you_mean


def import_object(path: str) -> Any:
    """Import ``"package.module:attr"`` or ``"package.module.attr"``."""
    module_name, _, attribute = path.partition(":") if ":" in path else path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attribute)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        own_package = missing.split(".")[0] == module_name.split(".")[0]
        if own_package and not module_name.startswith(missing):
            raise DlxError(
                f"Cannot import '{path}': {module_name} imports '{missing}', which does not exist. Check "
                "that import (the module's name and where its file is)."
            ) from error
        if missing and not (module_name == missing or module_name.startswith(missing + ".")):
            raise DlxError(  # the module was found; something it imports was not
                f"Cannot import '{path}': {module_name} imports '{missing}', which is not installed in the "
                f"environment dlx runs in. Install it there (e.g. `uv add {missing.split('.')[0]}` or "
                f"`pip install {missing.split('.')[0]}`)."
            ) from error
        raise DlxError(
            f"Cannot import '{path}': {error}. Check the spelling of the module and class, and that "
            "the package is installed in the environment dlx runs in."
        ) from error
    except (ImportError, AttributeError) as error:
        raise DlxError(
            f"Cannot import '{path}': {error}. Check the spelling of the module and class, and that "
            "the package is installed in the environment dlx runs in."
        ) from error
    except Exception as error:  # the module's own code failed while it was imported
        where = f" ({error.filename}, line {error.lineno})" if isinstance(error, SyntaxError) else ""
        message = " ".join(str(error).split()).rstrip(".")
        raise DlxError(
            f"Importing {module_name} for '{path}' failed: {type(error).__name__}: {message}{where}. The "
            "error is in that module's code: run again with `--debug` for the traceback."
        ) from error


@cache
def _installed_entry_points() -> dict[str, dict[str, str]]:
    """Every installed package's ``dlx.*`` entry points, read once. Asking importlib.metadata for them
    would import it and parse every installed distribution's metadata (hundreds with CUDA wheels), about
    35 ms of each `dlx` start; a look for "[dlx." in each distribution's entry_points.txt finds the few
    that declare any, and only those are parsed."""
    declaring = []
    for folder in sys.path:
        try:
            entries = list(os.scandir(folder or "."))
        except OSError:  # a zip archive or a folder that does not exist
            continue
        for entry in entries:
            if not entry.name.endswith((".dist-info", ".egg-info")):
                continue
            try:
                with open(os.path.join(entry.path, "entry_points.txt"), encoding="utf-8") as file:
                    if "[dlx." in file.read():
                        declaring.append(entry.path)
            except OSError:  # most distributions have no entry points
                continue
    found: dict[str, dict[str, str]] = {}
    if declaring:
        from importlib.metadata import PathDistribution

        for path in declaring:
            for entry_point in PathDistribution(Path(path)).entry_points:
                if entry_point.group.startswith("dlx."):
                    found.setdefault(entry_point.group, {}).setdefault(entry_point.name, entry_point.value)
    return found


class Registry:
    """Maps names to lazily imported builders (classes or functions)."""

    def __init__(self, kind: str, entries: dict[str, str], group: str):
        self.kind = kind
        self.group = group  # the config group and override key, e.g. "model"
        self._paths: dict[str, str] = dict(entries)
        self._objects: dict[str, Any] = {}
        self._entry_points_loaded = False

    def register(self, name: str) -> Callable[[Any], Any]:
        """Decorator: ``@MODELS.register("mynet")`` on a class or builder function."""

        def decorator(obj: Any) -> Any:
            self._objects[name] = obj
            self._paths[name] = f"{obj.__module__}:{obj.__qualname__}"
            return obj

        return decorator

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for name, value in _installed_entry_points().get(f"dlx.{self.kind}", {}).items():
            self._paths.setdefault(name, value)

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._paths)

    def path(self, name: str) -> str:
        if name not in self._paths:  # dlx's own names need no look through the installed packages
            self._load_entry_points()
        if name not in self._paths:
            raise DlxError(
                f"Unknown {self.group} '{name}'.{did_you_mean(name, self._paths)} "
                f"Available: {', '.join(self.names())}. Type `{self.group}=<name>` with one of these, "
                f"or `{self.group}._target_=your.module.Class` for your own."
            )
        return self._paths[name]

    def get(self, name: str) -> Any:
        if name not in self._objects:
            self._objects[name] = import_object(self.path(name))
        return self._objects[name]

    def signature(self, name: str):
        """The builder's config schema, read from its source when that suffices (no torch import)."""
        from dlx.config.signatures import signature_from_source, signature_of

        if name not in self._objects:
            static = signature_from_source(self.path(name))
            if static is not None:
                return static
        return signature_of(self.get(name))

    def __contains__(self, name: str) -> bool:
        self._load_entry_points()
        return name in self._paths


MODELS = Registry(
    "models",
    {
        "mlp": "dlx.models.mlp:MLP",
        "cnn": "dlx.models.cnn:CNN",
        "resnet": "dlx.models.resnet:build_resnet",
        "airbench": "dlx.models.airbench:AirbenchNet",
        "rnn": "dlx.models.rnn:RNNClassifier",
        "transformer": "dlx.models.transformer:TransformerClassifier",
        "gpt": "dlx.models.gpt:GPT",
        "hf": "dlx.models.hf:HFClassifier",
    },
    group="model",
)
DATA = Registry(
    "data",
    {
        "digits": "dlx.data.digits:DigitsData",
        "mnist": "dlx.data.vision:MNISTData",
        "fashion_mnist": "dlx.data.vision:FashionMNISTData",
        "cifar10": "dlx.data.vision:CIFAR10Data",
        "xor": "dlx.data.synthetic:XorData",
        "spirals": "dlx.data.synthetic:SpiralsData",
        "tabular": "dlx.data.tabular:TabularData",
        "text_classification": "dlx.data.text_classification:TextClassificationData",
        "sst2": "dlx.data.text_classification:TextClassificationData",
        "char_lm": "dlx.data.char_lm:CharLMData",
    },
    group="data",
)
TASKS = Registry(
    "tasks",
    {
        "classification": "dlx.tasks.classification:ClassificationTask",
        "regression": "dlx.tasks.regression:RegressionTask",
        "language_modeling": "dlx.tasks.language_modeling:LanguageModelingTask",
    },
    group="task",
)
OPTIMIZERS = Registry(
    "optimizers",
    {
        "sgd": "dlx.optim.optimizers:sgd",
        "adam": "dlx.optim.optimizers:adam",
        "adamw": "dlx.optim.optimizers:adamw",
        "rmsprop": "dlx.optim.optimizers:rmsprop",
    },
    group="optimizer",
)
SCHEDULERS = Registry(
    "schedulers",
    {
        "constant": "dlx.optim.schedulers:constant",
        "step": "dlx.optim.schedulers:step",
        "multistep": "dlx.optim.schedulers:multistep",
        "exponential": "dlx.optim.schedulers:exponential",
        "cosine": "dlx.optim.schedulers:cosine",
        "warmup_cosine": "dlx.optim.schedulers:warmup_cosine",
        "onecycle": "dlx.optim.schedulers:onecycle",
        "plateau": "dlx.optim.schedulers:plateau",
    },
    group="scheduler",
)

REGISTRIES: dict[str, Registry] = {
    "models": MODELS,
    "data": DATA,
    "tasks": TASKS,
    "optimizers": OPTIMIZERS,
    "schedulers": SCHEDULERS,
}

GROUP_REGISTRIES: dict[str, Registry] = {registry.group: registry for registry in REGISTRIES.values()}


def registry_for_group(group: str) -> Registry:
    return GROUP_REGISTRIES[group]
