"""`dlx ls` and `dlx config`: what can be named, and what a set of overrides resolves to."""

from __future__ import annotations

from pathlib import Path

from dlx.console import console
from dlx.errors import DlxError, did_you_mean

KINDS = ["models", "data", "tasks", "optimizers", "schedulers", "recipes"]


def _first_comment(path: Path) -> str:
    """The first sentence of the comment a config file opens with (it may run over several lines)."""
    if not path.exists():
        return ""
    words: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if not text.startswith("#"):
            if words:
                break
            continue
        if "@package" not in text:
            words.append(text.lstrip("# ").strip())
            sentence, stop, _ = " ".join(words).partition(". ")
            if stop:
                return sentence + "."
    return " ".join(words)


def print_listing(what: str, config_dirs: list[Path]) -> None:
    from rich.table import Table

    from dlx.config.paths import configs_dir, list_recipes
    from dlx.registry import REGISTRIES

    if what != "all" and what not in KINDS:
        raise DlxError(
            f"Cannot list '{what}'.{did_you_mean(what, KINDS)} Type `dlx ls` with one of: "
            f"{', '.join(KINDS)}, or nothing for all."
        )
    for kind in KINDS if what == "all" else [what]:
        table = Table(title=kind, title_justify="left", show_header=True, header_style="bold")
        table.add_column("name")
        if kind == "recipes":
            table.add_column("description")
            for name, path in list_recipes(config_dirs).items():
                table.add_row(name, _first_comment(path))
        else:
            registry = REGISTRIES[kind]
            table.add_column("description")
            table.add_column("builds")
            for name in registry.names():
                config_file = configs_dir() / registry.group / f"{name}.yaml"
                table.add_row(name, _first_comment(config_file), registry.path(name))
        console.print(table)


def print_config(overrides: list[str], config_dirs: list[Path], as_yaml: bool) -> None:
    from omegaconf import OmegaConf
    from omegaconf.errors import InterpolationKeyError

    from dlx.config.compose import compose_config
    from dlx.config.validate import validate_config

    cfg = validate_config(compose_config(overrides, config_dirs))
    try:
        resolved = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    except InterpolationKeyError as error:
        from dlx.build import pieces_do_not_fit

        raise pieces_do_not_fit(error) from error
    if as_yaml:
        console.print(OmegaConf.to_yaml(resolved), end="", markup=False)
        return
    from rich.tree import Tree

    def add(node: Tree, value: object) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                if isinstance(child, dict):
                    add(node.add(f"[bold]{key}[/]"), child)
                else:
                    node.add(
                        f"[bold]{key}[/]: {child!r}" if isinstance(child, str) else f"[bold]{key}[/]: {child}"
                    )

    tree = Tree("[bold]config[/] (names and types checked)")
    add(tree, resolved)
    console.print(tree)
    console.print(  # ranges need the components (and torch): a one-batch run builds them all
        "[dim]Values such as data.batch_size=0 are checked when a run builds its parts: add "
        "`trainer.fast_dev_run=true` to `dlx train` to check everything on one batch.[/]"
    )
