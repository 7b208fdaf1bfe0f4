"""Check a composed config before any work: unknown keys, wrong types, impossible values."""

from __future__ import annotations

import dataclasses
import inspect
import logging
import types
import typing
from typing import Any, Union

from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from dlx.config.schema import (
    CHOICES,
    DATA_BUILDER_KEYS,
    DATA_METADATA_KEYS,
    TOP_LEVEL_KEYS,
    LoggerConfig,
    TrainerConfig,
    parse_duration,
)
from dlx.config.signatures import ComponentSignature, signature_of
from dlx.errors import DlxError, did_you_mean

COMPONENT_GROUPS = ("model", "data", "task", "optimizer", "scheduler")
# Arguments the builder passes itself, so a config must not set them.
INJECTED_ARGUMENTS = {
    "model": set(),
    "data": set(),
    "task": {"model"},
    "optimizer": {"model", "params"},  # dlx's builders take the model, torch.optim classes its parameters
    "scheduler": {"optimizer", "context"},  # context: only to builders that name it (not torch's classes)
}


def normalise_precision(value: Any) -> str:
    text = str(value).lower().replace("-mixed", "").replace("-true", "")
    return {
        "32": "32",
        "fp32": "32",
        "float32": "32",
        "bf16": "bf16",
        "bfloat16": "bf16",
        "16": "fp16",
        "fp16": "fp16",
        "float16": "fp16",
    }.get(text, text)


def validate_config(cfg: DictConfig) -> DictConfig:
    """Raise DlxError naming the key and the fix for the first problem found; return cfg."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        return _validate(cfg)
    except OmegaConfBaseException as error:  # e.g. an interpolation to a key that does not exist
        message = " ".join(str(error).split())
        raise DlxError(
            f"The config cannot be resolved: {message}. Check the key with `dlx config`."
        ) from error


def _validate(cfg: DictConfig) -> DictConfig:
    for key in cfg:
        if key not in TOP_LEVEL_KEYS:
            raise DlxError(
                f"Unknown top-level key '{key}'.{_meant(cfg, key, did_you_mean(key, TOP_LEVEL_KEYS))} "
                f"Valid keys: {', '.join(TOP_LEVEL_KEYS)}. Remove it with `~{key}`."
            )
    for key in TOP_LEVEL_KEYS:
        if key not in cfg:
            raise DlxError(
                f"The config has no '{key}' section. Add it (e.g. `{key}=<option>`) or check your recipe."
            )
    _check_value("seed", cfg.seed, int)
    cfg.trainer.precision = normalise_precision(cfg.trainer.precision)
    _fill_missing_defaults(cfg.trainer, TrainerConfig)  # a run saved before a setting existed resumes
    _check_dataclass("trainer", cfg.trainer, TrainerConfig)
    _check_dataclass("logger", cfg.logger, LoggerConfig)
    for key, choices in CHOICES.items():
        value = OmegaConf.select(cfg, key)
        if str(value) not in choices:
            raise DlxError(
                f"{key}={value} is not one of {', '.join(choices)}.{did_you_mean(value, choices)} "
                f"Type e.g. `{key}={choices[0]}`."
            )
    _check_trainer_values(cfg.trainer)
    for group in COMPONENT_GROUPS:
        _check_component(group, cfg[group])
    return cfg


def _check_trainer_values(trainer: DictConfig) -> None:
    positive = ["accumulate_grad_batches", "val_every_n_epochs", "log_every_n_steps", "devices", "num_nodes"]
    optional_positive = ["max_epochs", "max_steps", "val_every_n_steps", "checkpoint_every_n_steps"]
    for key in positive + optional_positive:
        value = trainer[key]
        if value is not None and value < 1:
            raise DlxError(
                f"trainer.{key} must be at least 1, got {value}. Type e.g. `trainer.{key}=1`"
                + (f" or `trainer.{key}=null` for no limit." if key in optional_positive else ".")
            )
    if trainer.max_epochs is None and trainer.max_steps is None and trainer.max_time is None:
        raise DlxError(
            "The run has no end: trainer.max_epochs, trainer.max_steps and trainer.max_time are all "
            "null. Set one, e.g. `trainer.max_epochs=10`."
        )
    if trainer.gradient_clip_val is not None and trainer.gradient_clip_val <= 0:
        raise DlxError(
            f"trainer.gradient_clip_val must be positive, got {trainer.gradient_clip_val}. "
            "Type e.g. `trainer.gradient_clip_val=1.0`, or `null` to turn clipping off."
        )
    max_time = parse_duration(trainer.max_time)
    if max_time is not None and max_time <= 0:
        raise DlxError(
            f"trainer.max_time must be positive, got {trainer.max_time}. Type e.g. "
            "`trainer.max_time=3600` (seconds) or `trainer.max_time=null` for no limit."
        )
    patience = trainer.early_stopping.patience
    if patience is not None and patience < 1:
        raise DlxError(
            f"trainer.early_stopping.patience must be at least 1 validation check, got {patience}. "
            "Type e.g. `trainer.early_stopping.patience=5`, or `null` to turn early stopping off."
        )
    if trainer.overfit_batches < 0:
        raise DlxError(
            f"trainer.overfit_batches must be 0 (off) or a number of batches, got "
            f"{trainer.overfit_batches}. Type e.g. `trainer.overfit_batches=4`."
        )
    if trainer.fast_dev_run and trainer.overfit_batches:
        raise DlxError(
            "trainer.fast_dev_run and trainer.overfit_batches do not go together: one runs a single "
            "batch to check the code, the other trains on a few batches. Set only one of them."
        )
    if trainer.collective_timeout <= 0:
        raise DlxError(
            f"trainer.collective_timeout must be positive seconds, got {trainer.collective_timeout}. "
            "Type e.g. `trainer.collective_timeout=300`."
        )
    if trainer.save_top_k < 0:
        raise DlxError(f"trainer.save_top_k must be 0 or more, got {trainer.save_top_k}.")


def _check_component(group: str, section: DictConfig) -> None:
    from dlx.registry import import_object, registry_for_group

    if not isinstance(section, DictConfig):
        raise DlxError(
            f"'{group}' must be a mapping of settings, got {section!r}. Pick an option with `{group}=<name>`."
        )
    target = section.get("_target_")
    if target is not None:
        signature = signature_of(import_object(str(target)))
        if "name" in section and str(section.name) != _target_name(target):  # not named after it already
            _drop_settings_of_replaced_entry(group, section, signature)
        elif "name" not in section:  # a config file of the user's own with only `_target_:`
            with open_dict(section):
                section.name = _target_name(target)
        if group == "data":  # what the user's data module gives (shapes, classes) is read from it
            with open_dict(section):
                for key in DATA_METADATA_KEYS:
                    section.setdefault(key, None)
    elif "name" in section:
        signature = registry_for_group(group).signature(str(section.name))
    else:
        raise DlxError(
            f"The '{group}' config has neither `name:` nor `_target_:`. Pick one with `{group}=<name>` "
            f"or `{group}._target_=your.module.Class`."
        )
    ignored = {
        "name",
        "_target_",
        *INJECTED_ARGUMENTS[group],
        *(DATA_BUILDER_KEYS if group == "data" else []),
    }
    _check_against_signature(group, section, signature, ignored)


def _drop_settings_of_replaced_entry(group: str, section: DictConfig, signature: ComponentSignature) -> None:
    """With `group._target_=...` on the command line, the group's default option still brings its settings;
    drop those the new class does not take (a typo matches neither, so it is still reported)."""
    from dlx.registry import registry_for_group

    registry = registry_for_group(group)
    if str(section.name) not in registry:
        return
    replaced = set(registry.signature(str(section.name)).required)
    dropped = [
        key
        for key in list(section)
        if key in replaced - set(signature.required) and key not in ("name", "_target_")
    ]
    with open_dict(section):
        for key in dropped:
            del section[key]
        if group == "data":  # the replaced data set's shapes and classes: the new one gives its own
            for key in DATA_METADATA_KEYS:
                if key in section:
                    section[key] = None
        section.name = _target_name(section._target_)
    if dropped:
        logging.getLogger("dlx").info(
            "%s._target_ replaces '%s': ignoring its settings %s", group, registry.group, ", ".join(dropped)
        )


def _target_name(target: object) -> str:
    """``mypkg.nets.MyNet`` -> ``mynet``: it names the experiment folder (``${data.name}_${model.name}``)."""
    return str(target).rpartition(".")[2].lower()


def _check_against_signature(
    group: str, section: DictConfig, signature: ComponentSignature, ignored: set[str]
) -> None:
    for key in section:
        if key in ignored:
            continue
        if key not in signature.required:
            if signature.accepts_anything:
                continue
            valid = [p for p in signature.required if p not in ignored]
            raise DlxError(
                f"Unknown key '{group}.{key}'.{_meant(section, f'{group}.{key}', did_you_mean(key, valid))} "
                f"Valid keys for this {group}: "
                f"{', '.join(valid)}. Remove it with `~{group}.{key}`."
            )
        if OmegaConf.is_missing(section, key):
            raise DlxError(f"'{group}.{key}' must be set. Type `{group}.{key}=<value>`.")
        if key in signature.hints and not _filled_from_data_later(section, key):
            _check_value(f"{group}.{key}", section[key], signature.hints[key])
    for name, required in signature.required.items():
        if required and name not in section and name not in ignored:
            raise DlxError(f"'{group}.{name}' is required but not set. Type `+{group}.{name}=<value>`.")


def _filled_from_data_later(section: DictConfig, key: str) -> bool:
    """True for an interpolation of data metadata that only loading the data can tell (e.g. tabular)."""
    if not OmegaConf.is_interpolation(section, key):
        return False
    try:
        return section[key] is None
    except Exception:  # interpolation to a missing (???) value
        return True


def _fill_missing_defaults(section: DictConfig, schema: type) -> None:
    with open_dict(section):
        for item in dataclasses.fields(schema):
            if item.name not in section and item.default is not dataclasses.MISSING:
                section[item.name] = item.default


def _meant(node: DictConfig, key: str, nearby: str) -> str:
    """``nearby`` (a did-you-mean among the key's neighbours), else the closest key anywhere in the config:
    `+trainer.lr=0.1` meant `optimizer.lr`."""
    if nearby:
        return nearby
    from dlx.config.compose import closest_key

    meant = closest_key(node._get_root(), key)
    return f" Did you mean '{meant}'?" if meant else ""


def _check_dataclass(prefix: str, section: DictConfig, schema: type) -> None:
    fields = {f.name: f for f in dataclasses.fields(schema)}
    hints = typing.get_type_hints(schema)
    for key in section:
        if key not in fields:
            meant = _meant(section, f"{prefix}.{key}", did_you_mean(key, fields))
            raise DlxError(f"Unknown key '{prefix}.{key}'.{meant} Valid keys: {', '.join(fields)}.")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            _check_dataclass(f"{prefix}.{key}", section[key], hint)
        else:
            _check_value(f"{prefix}.{key}", section[key], hint)


def _type_name(hint: Any) -> str:
    if typing.get_args(hint):  # list[int]: its __name__ would say only "list"
        return str(hint).replace("typing.", "")
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _kind_of(value: Any) -> str:
    if isinstance(value, (list, tuple, ListConfig)):
        kinds = sorted({type(item).__name__ for item in value})
        return f"a list of {' and '.join(kinds)}" if kinds else "an empty list"
    return type(value).__name__


def _matches(value: Any, hint: Any) -> bool:
    if hint is Any or hint is inspect.Parameter.empty:
        return True
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return any(_matches(value, arm) for arm in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint in (bool, str):
        return isinstance(value, hint)
    if origin in (list, tuple, typing.Sequence) or hint in (list, tuple):
        if not isinstance(value, (list, tuple, ListConfig)):
            return False
        arms = typing.get_args(hint)
        return not arms or all(_matches(item, arms[0]) for item in value)
    if origin is dict or hint is dict:
        if not isinstance(value, (dict, DictConfig)):
            return False
        arms = typing.get_args(hint)
        return not arms or all(_matches(item, arms[1]) for item in value.values())
    return True  # a type we do not know how to check (a user's class): let the builder decide


EXAMPLES = {"float": "0.001", "int": "10", "bool": "true", "str": "<text>", "list[int]": "[64,64]"}


def _check_value(key: str, value: Any, hint: Any) -> None:
    if value == "???":
        raise DlxError(f"'{key}' must be set. Type `{key}=<value>`.")
    if not _matches(value, hint):
        optional = typing.get_origin(hint) in (Union, types.UnionType) and type(None) in typing.get_args(hint)
        arms = [arm for arm in typing.get_args(hint) if arm is not type(None)] if optional else [hint]
        examples = [EXAMPLES[_type_name(arm)] for arm in arms if _type_name(arm) in EXAMPLES]
        advice = f" Type e.g. `{key}={examples[0]}`" if examples else ""
        if optional:
            advice = f"{advice} or `{key}=null`" if advice else f" Type `{key}=null` to leave it unset"
        raise DlxError(
            f"{key}={value!r} has the wrong type: expected {_type_name(hint)}, got {_kind_of(value)}."
            f"{advice}."
        )
