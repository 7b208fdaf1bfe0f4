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
CHECKPOINT_OVERRIDES = typer.Argument(
    None,
    help="Changes to the checkpoint's config, e.g. data.split=test data.batch_size=256",
    show_default=False,
)
CONFIG_DIRS = typer.Option(
    None, "--config-dir", help="A folder of your own config groups and recipes/ (repeatable)."
)
EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}
_debug = {"on": bool(os.environ.get("DLX_DEBUG"))}


def _enable_debug(value: bool) -> bool:
    if value:
        _debug["on"] = True
    return value


# dlx and every command take --debug, so that it works before and after the command's name.
DEBUG = typer.Option(
    False, "--debug", help="Show full tracebacks (or set DLX_DEBUG=1).", callback=_enable_debug
)


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
        from rich.markup import escape

        from dlx.console import console

        console.print(f"[bold red]Error:[/] {escape(str(error))}", soft_wrap=True)
        raise typer.Exit(error.exit_code) from None


def _overrides(command: str, overrides: list[str] | None) -> list[str]:
    """The trailing Hydra overrides; an option Typer did not know lands here too, and is explained."""
    from dlx.errors import DlxError

    for token in overrides or []:
        if token.startswith("-"):
            raise DlxError(
                f"`dlx {command}` has no option {token}. `dlx {command} --help` lists its options; "
                "overrides look like `key=value`."
            )
    return list(overrides or [])


@app.callback()
def _options(debug: bool = DEBUG) -> None:
    _debug["on"] = debug or bool(os.environ.get("DLX_DEBUG"))  # each invocation starts afresh


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
    trust_checkpoint: bool = typer.Option(
        False, "--trust-checkpoint", help="With --resume: allow _target_ classes outside dlx in its config."
    ),
    debug: bool = DEBUG,
) -> None:
    """Train a model: compose the config, build everything from the registries, run the trainer."""
    from dlx.train import train as train_run

    summary = _run(
        lambda: train_run(_overrides("train", overrides), config_dirs or [], resume, trust_checkpoint)
    )
    if summary.get("stop_reason") == "interrupted":
        raise typer.Exit(128 + (summary.get("signal") or 2))  # the shell's convention: 130 for Ctrl-C


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
    checkpoint: Path = typer.Argument(
        ..., help="A checkpoint written by dlx train, or a run folder (its best.ckpt)."
    ),
    overrides: list[str] = CHECKPOINT_OVERRIDES,
    trust_checkpoint: bool = typer.Option(
        False, "--trust-checkpoint", help="Allow _target_ classes outside dlx named in the checkpoint."
    ),
    debug: bool = DEBUG,
) -> None:
    """Evaluate a checkpoint on a data split; writes eval.json (and a confusion matrix) in its run folder."""
    from dlx.evaluate import evaluate_checkpoint

    _run(lambda: evaluate_checkpoint(checkpoint, _overrides("eval", overrides), trust_checkpoint))


@app.command(
    "export",
    context_settings=EXTRA_ARGS,
    epilog=(
        "Examples:\n\n"
        "  dlx export onnx outputs/<experiment>/<run>/checkpoints/best.ckpt\n\n"
        "  dlx export onnx outputs/<experiment>/<run>/checkpoints/best.ckpt --opset 18 --quantize int8\n\n"
        "  dlx export torchscript outputs/<experiment>/<run>/checkpoints/best.ckpt\n\n"
        "  dlx export pt2 outputs/<experiment>/<run>/checkpoints/best.ckpt --out deploy/model.pt2"
    ),
)
def export(
    export_format: str = typer.Argument(..., metavar="FORMAT", help="onnx, torchscript or pt2."),
    checkpoint: Path = typer.Argument(
        ..., help="A checkpoint written by dlx train, or a run folder (its best.ckpt)."
    ),
    overrides: list[str] = CHECKPOINT_OVERRIDES,
    out: Path = typer.Option(
        None, "--out", help="The file to write (default: beside CKPT, named after it: best.onnx)."
    ),
    opset: int = typer.Option(None, "--opset", help="ONNX opset to write (default 18)."),
    quantize: str = typer.Option(None, "--quantize", help="int8: dynamic quantization (onnx, torchscript)."),
    no_check: bool = typer.Option(False, "--no-check", help="Skip the comparison with the PyTorch model."),
    trust_checkpoint: bool = typer.Option(
        False, "--trust-checkpoint", help="Allow _target_ classes outside dlx named in the checkpoint."
    ),
    debug: bool = DEBUG,
) -> None:
    """Export a checkpoint to ONNX, TorchScript or torch.export (.pt2), then check that the file computes
    what the PyTorch model computes (max difference, argmax agreement, latency); exit 1 if it does not."""
    from dlx.export.command import export_checkpoint

    _run(
        lambda: export_checkpoint(
            export_format,
            checkpoint,
            out,
            _overrides("export", overrides),
            opset,
            quantize,
            not no_check,
            trust_checkpoint,
        )
    )


@app.command(
    "predict",
    context_settings=EXTRA_ARGS,
    epilog=(
        "Examples:\n\n"
        "  dlx predict best.onnx digit1.png digit2.png --top-k 3\n\n"
        "  dlx predict outputs/<experiment>/<run>/checkpoints/best.ckpt data.split=test --limit 16\n\n"
        "  dlx predict outputs/<experiment>/<run>/checkpoints/best.ckpt photo.jpg\n\n"
        '  dlx predict outputs/sst2_lstm/<run>/checkpoints/best.ckpt "a wonderful, moving film"'
    ),
)
def predict(
    source: Path = typer.Argument(
        ..., help="An ONNX file written by dlx export, a checkpoint, or a run folder (its best.ckpt)."
    ),
    inputs: list[str] = typer.Argument(
        None,
        help="Image files (texts, quoted, for a text classifier); for a checkpoint also Hydra overrides.",
        show_default=False,
    ),
    top_k: int = typer.Option(1, "--top-k", help="How many classes to show per input."),
    limit: int = typer.Option(16, "--limit", help="How many samples of data.split (checkpoint, no images)."),
    trust_checkpoint: bool = typer.Option(
        False, "--trust-checkpoint", help="Allow _target_ classes outside dlx named in the checkpoint."
    ),
    debug: bool = DEBUG,
) -> None:
    """Classify images (texts with a text classifier's checkpoint, or samples of a data split) with an
    exported ONNX file or a checkpoint; an ONNX file carries its own preprocessing and classes, and runs
    with onnxruntime alone."""
    from dlx.predict import predict as predict_inputs

    _run(lambda: predict_inputs(source, _overrides("predict", inputs), top_k, limit, trust_checkpoint))


@app.command(
    "generate",
    epilog=(
        "Examples:\n\n"
        "  dlx generate outputs/<experiment>/<run>/checkpoints/best.ckpt --prompt 'ROMEO:'\n\n"
        "  dlx generate CKPT --prompt 'ROMEO:' --max-new-tokens 500 --temperature 0.8 --top-k 200 \\\n"
        "      --top-p 0.95 --seed 1 --device cuda"
    ),
)
def generate(
    checkpoint: Path = typer.Argument(
        ..., help="A language-model checkpoint (task=language_modeling), or its run folder (best.ckpt)."
    ),
    prompt: str = typer.Option(
        "\n", "--prompt", help="The text to continue (default: a newline).", show_default=False
    ),
    max_new_tokens: int = typer.Option(500, "--max-new-tokens", help="How many tokens to sample."),
    temperature: float = typer.Option(0.8, "--temperature", help="Below 1: safer text; above 1: wilder."),
    top_k: int = typer.Option(200, "--top-k", help="Sample among the k most likely tokens only."),
    top_p: float = typer.Option(1.0, "--top-p", help="Nucleus: the most likely tokens covering p (0, 1]."),
    seed: int = typer.Option(None, "--seed", help="Draw the same text again (default: a new seed)."),
    device: str = typer.Option("auto", "--device", help="auto (cuda if there is one), cpu or cuda."),
    trust_checkpoint: bool = typer.Option(
        False, "--trust-checkpoint", help="Allow _target_ classes outside dlx named in the checkpoint."
    ),
    debug: bool = DEBUG,
) -> None:
    """Sample text from a language model checkpoint, printed token by token as it is sampled."""
    from dlx.console import console
    from dlx.generate import generate as generate_text

    console.stderr = True  # log lines to stderr: stdout carries the text alone, so it can be piped
    try:
        _run(
            lambda: generate_text(
                checkpoint, prompt, max_new_tokens, temperature, top_k, top_p, seed, device, trust_checkpoint
            )
        )
    finally:
        console.stderr = False


@app.command("ls", epilog="Examples:\n\n  dlx ls\n\n  dlx ls models\n\n  dlx ls recipes")
def list_components(
    what: str = typer.Argument("all", help="models, data, tasks, optimizers, schedulers, recipes or all"),
    config_dirs: list[Path] = CONFIG_DIRS,
    debug: bool = DEBUG,
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
    debug: bool = DEBUG,
) -> None:
    """Show the resolved config as a tree, its names and types checked (nothing is built or trained)."""
    from dlx.listing import print_config

    _run(lambda: print_config(_overrides("config", overrides), config_dirs or [], as_yaml))


@app.command(
    "compare",
    epilog=(
        "Examples:\n\n  dlx compare\n\n  dlx compare outputs/mnist_cnn\n\n"
        "  dlx compare outputs/digits_mlp/<run a> outputs/digits_mlp/<run b>\n\n"
        "  dlx compare outputs --sort -val/acc --limit 10"
    ),
)
def compare(
    paths: list[Path] = typer.Argument(
        None, help="Run folders, or folders that hold them (default: outputs).", show_default=False
    ),
    sort: str = typer.Option(
        None,
        "--sort",
        help="A metric or config key to order by, '-' first for descending (default: the runs' monitored "
        "metric, best first).",
    ),
    limit: int = typer.Option(None, "--limit", min=1, help="Show only the first N runs."),
    debug: bool = DEBUG,
) -> None:
    """Compare runs side by side: how each ended, its best validation metrics, and the config values that
    differ between them."""
    from dlx.compare import compare_runs

    _run(lambda: compare_runs(paths or [], sort, limit))


@app.command(
    context_settings=EXTRA_ARGS,
    epilog=(
        "Examples:\n\n"
        "  dlx sweep model=cnn data=digits optimizer.lr=1e-4,3e-4,1e-3,3e-3\n\n"
        "  dlx sweep recipe=mnist_cnn 'optimizer.lr=tag(log, interval(1e-5, 1e-1))' \\\n"
        "      'optimizer.weight_decay=choice(0, 0.01, 0.1)' --trials 20 --jobs 2\n\n"
        "  dlx sweep sweep=lr_range recipe=mnist_cnn\n\n"
        "  dlx sweep --resume outputs/sweeps/<name>/<sweep>\n\n"
        "  dlx sweep show outputs/sweeps/<name>/<sweep>"
    ),
)
def sweep(
    overrides: list[str] = typer.Argument(
        None,
        help="Overrides; those with several values (a,b  choice()  interval() ...) are swept.",
        show_default=False,
    ),
    trials: int = typer.Option(None, "--trials", help="Trials of a search (default 20); a grid runs all."),
    jobs: int = typer.Option(None, "--jobs", help="Trials at once (local processes or Slurm jobs)."),
    sampler: str = typer.Option(
        None, "--sampler", help="tpe | random | grid (default: grid if all discrete)."
    ),
    pruner: str = typer.Option(
        None, "--pruner", help="median | hyperband | none (default: median if searching)."
    ),
    launcher: str = typer.Option(
        None, "--launcher", help="local | slurm (submitit; settings: sweep.slurm.*)."
    ),
    resume: str = typer.Option(
        None, "--resume", help="Continue a sweep folder (or join a sweep id in --storage)."
    ),
    storage: str = typer.Option(None, "--storage", help="A database URL shared by several machines."),
    config_dirs: list[Path] = CONFIG_DIRS,
    debug: bool = DEBUG,
) -> None:
    """Sweep hyperparameters: a grid, or an Optuna search with pruning; `dlx sweep show DIR` reports one."""
    from dlx.sweep.command import run_sweep, show_sweep

    arguments = overrides or []
    if arguments[:1] == ["show"]:
        _run(lambda: show_sweep(arguments[1:], storage))
        return
    flags = {"trials": trials, "jobs": jobs, "sampler": sampler, "pruner": pruner, "launcher": launcher}
    _run(lambda: run_sweep(_overrides("sweep", arguments), config_dirs or [], flags, resume, storage))


def main() -> None:
    from dlx.engine.interrupts import interrupt_once_per_ctrl_c

    interrupt_once_per_ctrl_c()
    try:
        app(prog_name="dlx")
    except SystemExit as stop:
        _exit_without_teardown(stop.code)
    _exit_without_teardown(0)


def _exit_without_teardown(code: int | str | None) -> None:
    """Exit once everything is written, skipping only the interpreter's teardown of its modules: with
    torch and torch._dynamo loaded that takes about a second and frees nothing the OS would not."""
    import threading

    if "torch" not in sys.modules:
        raise SystemExit(code)
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    for thread in threading.enumerate():  # what a normal exit waits for
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    import atexit

    atexit._run_exitfuncs()  # W&B, logging, multiprocessing: they still finish
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


if __name__ == "__main__":
    sys.exit(main())
