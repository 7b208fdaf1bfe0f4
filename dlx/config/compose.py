"""Compose a run's config with Hydra: configs/ groups, recipes/, the user's folders and overrides."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dlx.config.paths import configs_dir, list_recipes
from dlx.errors import DlxError, did_you_mean


def _register_recipes(overrides: list[str], extra_dirs: list[Path]) -> None:
    # Recipes live in recipes/ at the top of the repo, not in a configs/ group folder, so they are
    # handed to Hydra through its ConfigStore as the group "recipe" (package _global_). Only the ones
    # the overrides name are loaded: reading every recipe costs more than the rest of `dlx config`.
    from hydra.core.config_store import ConfigStore

    named = {match[1] for o in overrides if (match := re.match(r"^\+{0,2}recipe=([^=]+)$", o))}
    recipes = list_recipes(extra_dirs)
    for name in named - {"null"} - set(recipes):
        raise DlxError(
            f"Unknown recipe '{name}'.{did_you_mean(name, recipes)} Available: {', '.join(sorted(recipes))}. "
            "Type `recipe=<name>` with one of these (list them with `dlx ls recipes`)."
        )
    store = ConfigStore.instance()
    for name in named & set(recipes):
        store.store(group="recipe", name=name, node=OmegaConf.load(recipes[name]), package="_global_")


def compose_config(overrides: list[str], extra_dirs: list[Path] | None = None) -> DictConfig:
    """Return the composed (unvalidated) config for these Hydra overrides."""
    from dlx.config import compose_cache

    extra_dirs = [Path(d).expanduser().resolve() for d in (extra_dirs or [])]
    for folder in extra_dirs:
        if not folder.is_dir():
            raise DlxError(
                f"--config-dir '{folder}' is not a folder. Point it at a folder holding your "
                "config groups (model/, data/, ...) and/or recipes/."
            )
    entry = compose_cache.entry_for(overrides, extra_dirs)
    cfg = compose_cache.load(entry)
    if cfg is None:
        cfg = _compose_with_hydra(overrides, extra_dirs)
        compose_cache.store(entry, cfg)
    return cfg


def _compose_with_hydra(overrides: list[str], extra_dirs: list[Path]) -> DictConfig:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException, MissingConfigException
    from omegaconf.errors import OmegaConfBaseException

    _register_recipes(overrides, extra_dirs)
    given = list(overrides)
    for text in given:
        if "=" not in text and not text.startswith("~"):
            raise DlxError(_explain_bare_word(text, extra_dirs))
    # `model._target_=pkg.Net` should work like any other override although no config file has the key.
    overrides = [re.sub(r"^([A-Za-z_][\w.]*\._target_=)", r"++\1", o) for o in overrides]
    # `+model.dropout=0.2` adds a setting; when the option's file already has it, set it instead of failing.
    overrides = [re.sub(r"^\+([A-Za-z_]\w*\.[\w.]+=)", r"++\1", o) for o in overrides]
    search_path = [f"file://{folder}" for folder in extra_dirs]
    hydra_overrides = [f"hydra.searchpath=[{','.join(search_path)}]"] if search_path else []

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(configs_dir()), version_base="1.3", job_name="dlx"):
            cfg = compose(config_name="config", overrides=hydra_overrides + list(overrides))
    except MissingConfigException as error:
        raise DlxError(_explain_missing_option(error, extra_dirs)) from error
    except (HydraException, OmegaConfBaseException, ValueError, TypeError) as error:
        unknown = re.search(r"Could not override '([^']+)'", str(error))
        explained = unknown and _explain_unknown_key(unknown[1], given, extra_dirs)
        raise DlxError(explained or _explain_hydra_error(error)) from error
    finally:
        GlobalHydra.instance().clear()
    return cfg


def closest_key(cfg: DictConfig, key: str) -> str | None:
    """The key of ``cfg`` that a misspelled ``key`` was meant to be, if one is close: in its own section
    ('trainer.max_epoch'), else one of the same name in another ('trainer.lr': 'optimizer.lr'), or for a
    key typed without a section, a close one anywhere ('epochs': 'trainer.max_epochs')."""
    parent, _, leaf = key.rpartition(".")
    section = OmegaConf.select(cfg, parent, default=None) if parent else cfg
    if isinstance(section, DictConfig):
        keys = [str(k) for k in section if str(k) != leaf]  # the unknown key itself may be in cfg
        nearest = difflib.get_close_matches(leaf, keys, n=1, cutoff=0.6)
        if nearest:
            return f"{parent}.{nearest[0]}" if parent else nearest[0]
    by_name: dict[str, str] = {}
    for dotted in _dotted_keys(OmegaConf.to_container(cfg, resolve=False)):
        if dotted != key and not dotted.startswith(key + "."):
            by_name.setdefault(dotted.rpartition(".")[2], dotted)  # the first section (model, data...) wins
    if leaf in by_name:
        return by_name[leaf]
    if parent:  # `model.num_layers` is not `data.num_classes`: another section only by the very same name
        return None
    nearest = difflib.get_close_matches(leaf, list(by_name), n=1, cutoff=0.6)
    return by_name[nearest[0]] if nearest else None


def _dotted_keys(node: Any, prefix: str = "") -> list[str]:
    """Every leaf key of a nested config as `section.key` (a list is a leaf)."""
    if not isinstance(node, dict) or not node:
        return [prefix] if prefix else []
    keys: list[str] = []
    for name, child in node.items():
        keys += _dotted_keys(child, f"{prefix}.{name}" if prefix else str(name))
    return keys


def _explain_unknown_key(key: str, overrides: list[str], extra_dirs: list[Path]) -> str | None:
    """'trainer.max_epoch' -> the nearest key of the config it was meant for (composed without it)."""
    setting = re.compile(rf"^\+{{0,2}}{re.escape(key)}=(.*)$")
    value = next((match[1] for o in overrides if (match := setting.match(o))), "...")
    try:
        cfg = _compose_with_hydra([o for o in overrides if not setting.match(o)], extra_dirs)
    except DlxError:
        return None
    meant = closest_key(cfg, key)
    if meant is None:
        return None
    from dlx.config.validate import COMPONENT_GROUPS

    message = f"Unknown key '{key}'. Did you mean '{meant}'? Type `{meant}={value}`."
    if key.split(".")[0] in COMPONENT_GROUPS:  # trainer, logger and the top level take no new keys
        message += f" (An argument of your own class that the config lacks goes in with `+{key}={value}`.)"
    return message


def _explain_missing_option(error: Exception, extra_dirs: list[Path]) -> str:
    message = str(error)
    match = re.search(r"Could not find '([^/']+)/([^']+)'", message)
    if not match:
        return f"{message.splitlines()[0]} Check the group and option names with `dlx ls`."
    group, option = match.groups()
    options = group_options(group, extra_dirs)
    if not options:
        return (
            f"There is no config group '{group}'.{did_you_mean(group, _group_names())} Groups: "
            f"{', '.join(_group_names())}. Set a single value with `{group}.key=value` instead."
        )
    listed = (
        " (list them with `dlx ls`)"
        if group in ("model", "data", "task", "optimizer", "scheduler", "recipe")
        else ""
    )
    return (
        f"Unknown {group} '{option}'.{did_you_mean(option, options)} Available: {', '.join(options)}. "
        f"Type `{group}=<name>` with one of these{listed}."
    )


def _explain_bare_word(word: str, extra_dirs: list[Path]) -> str:
    """`dlx train mnist_cnn`: a recipe or an option named without its group."""
    for group in ["recipe", *_group_names()]:
        if (
            group != "recipe"
            and word in group_options(group, extra_dirs)
            or word in (list_recipes(extra_dirs) if group == "recipe" else [])
        ):
            return f"'{word}' is not an override but a {group} name: type `{group}={word}`."
    return (
        f"'{word}' is not an override. Overrides look like `key=value` (`trainer.max_epochs=3`), "
        "`group=option` (`model=cnn`, `recipe=mnist_cnn`), `+new.key=value` or `~key`."
    )


def _group_names() -> list[str]:
    return sorted(p.name for p in configs_dir().iterdir() if p.is_dir()) + ["recipe"]


def group_options(group: str, extra_dirs: list[Path]) -> list[str]:
    """The options a config group offers (file names in configs/ and the user's folders, or recipes)."""
    if group == "recipe":
        return sorted(list_recipes(extra_dirs))
    names = set()
    for root in [configs_dir(), *extra_dirs]:
        names.update(p.stem for p in (root / group).glob("*.yaml"))
    return sorted(names)


def _explain_hydra_error(error: Exception) -> str:
    message = " ".join(str(error).split())
    if message.startswith("Ambiguous value for argument"):  # Hydra's advice (--multirun) is not dlx's
        override = message.split("'")[1] if message.count("'") >= 2 else "key=a,b"
        key, _, values = override.partition("=")
        return (
            f"`{override}` gives several values. To try each in its own run, type `dlx sweep {override}`; "
            f"for a list value, `{key}=[{values}]`; for a text with commas, `{key}='{values}'`."
        )
    if unknown := re.search(r"Could not override '([^']+)'", message):
        from dlx.config.validate import COMPONENT_GROUPS

        key = unknown[1]
        if key.split(".")[0] not in COMPONENT_GROUPS:  # trainer, logger and the top level take no new keys
            return f"Unknown key '{key}'. Check its spelling against `dlx config`, which shows every key."
        return (
            f"Unknown key '{key}'. To add a key the config lacks (an argument of your own class), prefix it "
            f"with `+` (`+{key}=...`); to change an existing one, check its spelling with `dlx config`."
        )
    if "Key '" in message and "is not in struct" in message:
        return (
            f"{message} To add a key that is not in the config, prefix it with `+` (`+model.dropout=0.2`); "
            "to change an existing one, check its spelling with `dlx config`."
        )
    parse_errors = (
        "mismatched input",
        "no viable alternative",
        "token recognition",
        "Error parsing override",
        "missing EQUAL",
        "extraneous input",
    )
    if any(text in message for text in parse_errors) or isinstance(error, (ValueError, TypeError)):
        return (
            f"Cannot parse an override: {message} Overrides look like `key=value`, `+new.key=value`, "
            "`~key` or `group=option`; quote values with spaces or brackets."
        )
    return f"{message} Check the override with `dlx config <overrides>`."
