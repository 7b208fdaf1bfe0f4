"""Build data, model, task, optimizer and scheduler from a validated config (registry name or _target_)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from dlx.config.schema import DATA_BUILDER_KEYS, DATA_METADATA_KEYS
from dlx.errors import DlxError
from dlx.registry import import_object, registry_for_group


def pieces_do_not_fit(error: Exception) -> DlxError:
    """The error for an interpolation to a setting the config lacks (e.g. a text model's vocabulary)."""
    missing = str(getattr(error, "msg", error)).splitlines()[0]
    key = getattr(error, "full_key", "A setting")
    return DlxError(
        f"{key} refers to a setting this config does not have ({missing}): "
        "the pieces do not fit together, e.g. a text model (model=rnn, transformer, gpt, hf) needs text data "
        "(data=text_classification, sst2 or char_lm). Pick options that fit together."
    )


def _builder_and_arguments(group: str, section: DictConfig, skip: tuple[str, ...] = ()) -> tuple[Any, dict]:
    from omegaconf.errors import InterpolationKeyError

    try:
        arguments = OmegaConf.to_container(section, resolve=True)
    except InterpolationKeyError as error:
        raise pieces_do_not_fit(error) from error
    arguments.pop("_target_", None)
    arguments.pop("name", None)
    return component_class(group, section), {k: v for k, v in arguments.items() if k not in skip}


def component_class(group: str, section: DictConfig) -> Any:
    """What a group's config builds: its ``_target_``, or the registered entry it names."""
    target = section.get("_target_")
    return import_object(str(target)) if target else registry_for_group(group).get(section.get("name"))


def instantiate_data(cfg: DictConfig, state: dict[str, Any] | None = None):
    """The data module with a checkpoint's ``data_state`` (e.g. a vocabulary) loaded, before it reads any
    file: enough to encode and decode text (`dlx generate`) when the training data is gone."""
    builder, arguments = _builder_and_arguments("data", cfg.data, skip=tuple(DATA_BUILDER_KEYS))
    data = _built("data", cfg.data, builder, **arguments)
    if state:
        data.load_state_dict(state)
    return data


def build_data(cfg: DictConfig, state: dict[str, Any] | None = None):
    """Build and load the data module, then write its metadata (shapes, classes) into ``cfg.data``.

    ``state`` is a checkpoint's ``data_state`` (e.g. a vocabulary), loaded before the data is read.
    """
    data = instantiate_data(cfg, state)
    with _explained_users_code("Loading", "data", cfg.data):
        data.setup()
        metadata = data.metadata()
    for key in DATA_METADATA_KEYS:
        actual = getattr(metadata, key)
        actual = list(actual) if isinstance(actual, tuple) else actual
        declared = None
        if key in cfg.data and not OmegaConf.is_missing(cfg.data, key):
            declared = cfg.data[key]
            declared = OmegaConf.to_container(declared) if OmegaConf.is_config(declared) else declared
        if declared is not None and actual is not None and declared != actual:
            raise DlxError(
                f"data.{key}={declared} but the data set has {key} {actual}. Remove the override "
                f"(`~data.{key}`) or fix it: dlx reads it from the data."
            )
        with open_dict(cfg):
            cfg.data[key] = actual
    return data


# What to type for data whose targets are of each kind (DataMetadata.targets).
TASK_FOR_TARGETS = {
    "classes": "`task=classification`",
    "next_tokens": "`task=language_modeling model=gpt`",
    "values": "`task=regression`",
}
TARGET_WORDS = {"classes": "class labels", "next_tokens": "next-token targets", "values": "numeric targets"}
DATA_FOR_TARGETS = {
    "classes": "e.g. `data=digits`",
    "next_tokens": "`data=char_lm`",
    "values": "`data=tabular` with a numeric `data.target`",
}


def check_pieces_fit(cfg: DictConfig, targets: str) -> None:
    """Refuse a task that cannot read the data's ``targets`` (a DataMetadata.targets kind), and a language
    model without language-modelling data or the reverse, before the model is built: each would
    otherwise fail in its first step with a bare PyTorch error."""
    task_class, model_class = component_class("task", cfg.task), component_class("model", cfg.model)
    task, data, model = cfg.task.get("name"), cfg.data.get("name"), cfg.model.get("name")
    wanted = getattr(task_class, "reads_targets", None)
    if wanted is not None and targets in TARGET_WORDS and wanted != targets:
        raise DlxError(
            f"task={task} trains on {TARGET_WORDS[wanted]}, but data={data} gives {TARGET_WORDS[targets]}. "
            f"Type {TASK_FOR_TARGETS[targets]} for this data, or pick data that has {TARGET_WORDS[wanted]} "
            f"({DATA_FOR_TARGETS[wanted]})."
        )
    built_in = getattr(model_class, "__module__", "").startswith("dlx.models")
    language_model = getattr(model_class, "predicts_next_tokens", False)
    if built_in and targets == "next_tokens" and not language_model:
        raise DlxError(
            f"model={model} gives one prediction per sample, but data={data} asks for one per position "
            "(the next token). Type `model=gpt task=language_modeling`."
        )
    if built_in and language_model and targets != "next_tokens":
        raise DlxError(
            f"model={model} predicts the next token at every position: it trains on `data=char_lm "
            f"task=language_modeling`. For data={data} ({TARGET_WORDS.get(targets, targets)}) pick a model "
            "that gives one prediction per sample (see `dlx ls`: model=transformer or rnn for text)."
        )


def build_model(cfg: DictConfig):
    builder, arguments = _builder_and_arguments("model", cfg.model)
    return _built("model", cfg.model, builder, **arguments)


def build_task(cfg: DictConfig, model):
    builder, arguments = _builder_and_arguments("task", cfg.task)
    return _built("task", cfg.task, builder, model=model, **arguments)


def _built(group: str, section: DictConfig, builder: Callable, *args: Any, **kwargs: Any) -> Any:
    with _explained_users_code("Building", group, section):
        return builder(*args, **kwargs)


@contextmanager
def _explained_users_code(doing: str, group: str, section: DictConfig) -> Iterator[None]:
    """An error in a user's own ``_target_`` code becomes one paragraph that names it (dlx's own components
    explain their errors themselves)."""
    target = section.get("_target_")
    try:
        yield
    except DlxError:
        raise
    except Exception as error:
        if not target or is_dlx_target(target):
            raise
        raise user_code_failed(f"{doing} {group}._target_={target}", error) from error


def is_dlx_target(target: object) -> bool:
    return str(target).startswith("dlx.")


def user_code_failed(what: str, error: Exception) -> DlxError:
    message = " ".join(str(error).split()).rstrip(".")
    message = message if len(message) <= 300 else message[:300] + "..."
    hint = ""
    if isinstance(error, TypeError) and "argument" in message:
        hint = " Check that its parameters match the config's keys (`dlx config` shows them)."
    return DlxError(
        f"{what} failed: {type(error).__name__}: {message}.{hint} The error is in that code: run again with "
        "`--debug` for the traceback."
    )


def optimizer_builder(cfg: DictConfig) -> Callable:
    """``build(module)``: dlx's builders take the module (for parameter groups), a torch.optim class
    named by ``_target_`` its parameters."""
    import torch

    builder, arguments = _builder_and_arguments("optimizer", cfg.optimizer)
    takes_parameters = isinstance(builder, type) and issubclass(builder, torch.optim.Optimizer)
    return lambda module: _built(
        "optimizer", cfg.optimizer, builder, module.parameters() if takes_parameters else module, **arguments
    )


def scheduler_attacher(cfg: DictConfig) -> Callable:
    """``attach(optimizer, context)`` -> OptimizerSetup with the scheduler and when it steps."""
    from torch.optim.lr_scheduler import ReduceLROnPlateau

    from dlx.engine.optimization import OptimizerSetup

    builder, arguments = _builder_and_arguments("scheduler", cfg.scheduler)
    takes_context = "context" in inspect.signature(builder).parameters  # not torch's own classes

    def attach(optimizer, context) -> OptimizerSetup:
        extra = (context,) if takes_context else ()
        scheduler = _built("scheduler", cfg.scheduler, builder, optimizer, *extra, **arguments)
        interval = (
            "validation" if isinstance(scheduler, ReduceLROnPlateau) else arguments.get("interval", "step")
        )
        return OptimizerSetup(optimizer, scheduler, interval)

    return attach


def _nearest_key(cfg: DictConfig, overrides: list[str]) -> str | None:
    """For an override of a key the config lacks ('trainer.max_stepz=5'): the key it was meant for."""
    from dlx.config.compose import closest_key

    absent = object()
    for override in overrides:
        key, _, value = override.partition("=")
        if key.startswith(("+", "~")) or OmegaConf.select(cfg, key, default=absent) is not absent:
            continue
        if meant := closest_key(cfg, key):
            return f"Unknown key '{key}'. Did you mean '{meant}'? Type `{meant}={value}`."
    return None


def untrusted_targets(cfg: Any, path: str = "") -> list[str]:
    """``_target_`` values outside dlx's own code, anywhere in a config."""
    found = []
    if isinstance(cfg, dict):
        for key, value in cfg.items():
            if key == "_target_" and not is_dlx_target(value):
                found.append(f"{path}_target_={value}")
            else:
                found += untrusted_targets(value, f"{path}{key}.")
    elif isinstance(cfg, list):
        for index, value in enumerate(cfg):
            found += untrusted_targets(value, f"{path}{index}.")
    return found


def apply_overrides(cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """Apply Hydra-syntax overrides (``k=v``, ``+k=v``, ``++k=v``, ``~k``) to an existing config."""
    if not overrides:
        return cfg
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
        OmegaConf.set_struct(cfg, True)
        ConfigLoaderImpl._apply_overrides_to_config(parsed, cfg)
    except (HydraException, OmegaConfBaseException) as error:
        if hint := _nearest_key(cfg, overrides):
            raise DlxError(hint) from error
        message = " ".join(str(error).split())
        raise DlxError(
            f"Cannot apply the overrides {' '.join(overrides)}: {message} Use `key=value` for keys "
            "the run's config has (see its config.yaml), `+key=value` for new ones."
        ) from error
    return cfg
