"""The `dlx` command line: parse the command and its Hydra overrides, hand over, print errors."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    help="dlx: config-driven deep-learning experiments. Every command takes Hydra overrides "
    "(`key=value`, `group=option`, `+new.key=value`, `~key`) as trailing arguments.",
)
OVERRIDES = typer.Argument(None, help="Hydra overrides, e.g. model=cnn optimizer.lr=3e-4", show_default=False)
CONFIG_DIRS = typer.Option(
    None, "--config-dir", help="A folder of your own config groups and recipes/ (repeatable)."
)
EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}
_debug = {"on": bool(os.environ.get("DLX_DEBUG"))}


def _run(action: Callable[[], Any]) -> Any:
    """Run a command; a user mistake becomes one paragraph and exit code 2, no traceback."""
    from dlx.console import setup_logging
    from dlx.errors import DlxError

    setup_logging()
    try:
        return action()
    except DlxError as error:
        if _debug["on"]:
            raise
        from dlx.console import console

        console.print(f"[bold red]Error:[/] {error}", soft_wrap=True)
        raise typer.Exit(error.exit_code) from None


@app.callback()
def _options(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks (or set DLX_DEBUG=1)."),
) -> None:
    if debug:
        _debug["on"] = True


@app.command(
    context_settings=EXTRA_ARGS,
    epilog=(
        "Examples:\n\n"
        "  dlx train\n\n"
        "  dlx train model=cnn data=mnist optimizer=sgd optimizer.lr=0.05 scheduler=onecycle \\\n"
        "      trainer.max_epochs=3\n\n"
        "  dlx train recipe=mnist_cnn trainer.precision=bf16 +model.dropout=0.2\n\n"
        "  dlx train --resume outputs/digits_mlp/2026-01-01_12-00-00-a1b2c3"
    ),
)
def train(
    overrides: list[str] = OVERRIDES,
    resume: Path = typer.Option(None, "--resume", help="Continue an interrupted run folder exactly."),
    config_dirs: list[Path] = CONFIG_DIRS,
) -> None:
    """Train a model: compose the config, build everything from the registries, run the trainer."""
    from dlx.train import train as train_run

    _run(lambda: train_run(overrides or [], config_dirs or [], resume))


@app.command(
    "eval",
    context_settings=EXTRA_ARGS,
    epilog=(
        "Examples:\n\n"
        "  dlx eval outputs/<experiment>/<run>/checkpoints/best.ckpt\n\n"
        "  dlx eval outputs/<experiment>/<run>/checkpoints/best.ckpt data.split=test"
    ),
)
def evaluate(
    checkpoint: Path = typer.Argument(..., help="A checkpoint written by dlx train."),
    overrides: list[str] = OVERRIDES,
    trust_checkpoint: bool = typer.Option(
        False, "--trust-checkpoint", help="Allow _target_ classes outside dlx named in the checkpoint."
    ),
) -> None:
    """Evaluate a checkpoint on a data split; writes eval.json (and a confusion matrix) in its run folder."""
    from dlx.evaluate import evaluate_checkpoint

    _run(lambda: evaluate_checkpoint(checkpoint, overrides or [], trust_checkpoint))


@app.command("ls", epilog="Examples:\n\n  dlx ls\n\n  dlx ls models\n\n  dlx ls recipes")
def list_components(
    what: str = typer.Argument("all", help="models, data, tasks, optimizers, schedulers, recipes or all"),
    config_dirs: list[Path] = CONFIG_DIRS,
) -> None:
    """List what can be named in a config: registry entries and recipes."""
    from dlx.listing import print_listing

    _run(lambda: print_listing(what, config_dirs or []))


@app.command(
    "config",
    context_settings=EXTRA_ARGS,
    epilog=(
        "Examples:\n\n  dlx config\n\n  dlx config model=cnn data=cifar10\n\n"
        "  dlx config recipe=mnist_cnn --yaml"
    ),
)
def show_config(
    overrides: list[str] = OVERRIDES,
    config_dirs: list[Path] = CONFIG_DIRS,
    as_yaml: bool = typer.Option(False, "--yaml", help="Print plain YAML instead of a tree."),
) -> None:
    """Show the resolved config as a tree, after validating it (nothing is trained)."""
    from dlx.listing import print_config

    _run(lambda: print_config(overrides or [], config_dirs or [], as_yaml))


def main() -> None:
    app(prog_name="dlx")


if __name__ == "__main__":
    sys.exit(main())
