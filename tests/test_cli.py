import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from dlx.cli import app
from tests.helpers import only_run_folder

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


@pytest.mark.parametrize("command", [["--help"], ["ls"], ["ls", "recipes"]])
def test_help_and_ls_import_neither_torch_nor_omegaconf(command):
    # Both cost a noticeable part of a start-up that must stay under 0.3 s.
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from dlx.cli import app\n"
        f"result = CliRunner().invoke(app, {command!r})\n"
        "assert result.exit_code == 0, result.output\n"
        "print([name for name in ('torch', 'omegaconf') if name in sys.modules])\n"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


@pytest.mark.parametrize("command", ["train", "eval", "ls", "config", "compare"])
def test_every_command_has_help_with_examples(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Examples" in result.output and "dlx " + command in result.output


def test_ls_lists_registries_and_recipes():
    result = invoke("ls")
    for name in [
        "mlp",
        "cnn",
        "resnet",
        "digits",
        "cifar10",
        "classification",
        "adamw",
        "onecycle",
        "mnist_cnn",
    ]:
        assert name in result.output
    # A description over several comment lines is shown to the end of its first sentence, not cut at a line.
    text = " ".join(result.output.replace("│", " ").split())
    assert "label smoothing 0.2, flip + 2-pixel reflect shifts." in text


ERRORS = [
    (["train", "model=cnnn"], "Did you mean 'cnn'"),
    (["train", "trainer.max_epoch=3"], "trainer.max_epoch"),
    (["train", "optimizer.lr=abc"], "optimizer.lr='abc' has the wrong type: expected float"),
    (["train", "recipe=mnist_cnm"], "Did you mean 'mnist_cnn'"),
    (["train", "model.hidden_sizes=[1,"], "Cannot parse an override"),
    (["train", "+model.dropoutt=0.2"], "Did you mean 'dropout'"),
    (["train", "optimizer.lr=-1", "logger=none"], "optimizer.lr must be a positive number"),
    (["train", "data.batch_size=0"], "data.batch_size must be at least 1"),
    (["train", "trainer.precision=fp8"], "trainer.precision=fp8 is not one of"),
    (["train", "trainer.max_epochs=null"], "The run has no end"),
    (["train", "data=mnist", "data.download=false", "logger=none"], "MNIST"),
    (["train", "--resume", "outputs/nothing-here"], "Cannot resume"),
    (["eval", "missing.ckpt"], "does not exist"),
    (["ls", "modells"], "Did you mean 'models'"),
    (["config", "scheduler=cosin"], "Did you mean 'cosine'"),
    (["train", "seed=abc"], "seed='abc' has the wrong type"),
    (["train", "--epochs", "3"], "`dlx train` has no option --epochs. `dlx train --help` lists its options"),
    (["config", "-x"], "`dlx config` has no option -x"),
    (["predict", "missing.ckpt", "data.split=test", "--topk", "3"], "`dlx predict` has no option --topk"),
]


@pytest.mark.parametrize("arguments, message", ERRORS, ids=[" ".join(a) for a, _ in ERRORS])
def test_user_mistakes_exit_2_with_one_paragraph_and_no_traceback(arguments, message):
    result = invoke(*arguments)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert "Error:" in result.output


def test_a_refused_setting_leaves_no_run_folder(tmp_path):
    invoke("train", "optimizer.lr=-1")
    assert not list((tmp_path / "outputs").glob("*/*"))


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--debug", "train", "model=cnnn"], "Did you mean 'cnn'"),
        (["train", "--debug", "model=cnnn"], "Did you mean 'cnn'"),
        (["eval", "--debug", "missing.ckpt"], "does not exist"),
        (["predict", "missing.ckpt", "--debug"], "does not exist"),
        (["ls", "--debug", "modells"], "Did you mean 'models'"),
    ],
)
def test_debug_shows_the_traceback_before_or_after_the_command(arguments, message):
    result = invoke(*arguments)
    assert result.exit_code != 0 and message in str(result.exception)
    assert "Error:" not in result.output


def test_config_prints_the_resolved_tree_without_training(tmp_path):
    result = invoke("config", "model=cnn", "data=cifar10")
    assert result.exit_code == 0, result.output
    assert "(names and types checked)" in result.output and "input_shape: [3, 32, 32]" in result.output
    assert "trainer.fast_dev_run=true" in result.output  # where the values are checked, since not here
    assert not (tmp_path / "outputs").exists()


def test_train_then_eval_through_the_cli(tmp_path):
    result = invoke("train", "logger=none", "trainer.max_epochs=1", "trainer.progress=plain")
    assert result.exit_code == 0, result.output
    checkpoint = next((tmp_path / "outputs").glob("*/*/checkpoints/best.ckpt"))
    result = invoke("eval", str(checkpoint), "data.split=test")
    assert result.exit_code == 0, result.output
    assert "test/acc" in result.output


def _dlx_process(*arguments: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    environment.pop("PYTHONUNBUFFERED", None)  # output to a pipe stays buffered, as for most users
    command = [sys.executable, "-m", "dlx", *arguments]
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)


def test_a_dlx_process_leaves_everything_written_when_it_exits():
    # main() ends the process without the interpreter's module teardown once torch is loaded.
    result = _dlx_process("train", "logger.mode=offline", "trainer.max_epochs=1", "trainer.progress=plain")
    assert result.returncode == 0, result.stderr
    assert "run folder" in result.stdout  # the summary table, printed last
    folder = only_run_folder()
    assert (folder / "curves.png").stat().st_size > 0
    assert json.loads((folder / "summary.json").read_text())["stop_reason"]
    (wandb_file,) = folder.glob("wandb/offline-run-*/run-*.wandb")
    assert b"best/val/loss" in wandb_file.read_bytes()  # the summary, the last record sent


def test_a_mistake_found_after_torch_is_loaded_still_exits_2_with_its_message():
    result = _dlx_process("train", "data=tabular", "data.path=missing.csv", "data.target=y", "logger=none")
    assert result.returncode == 2
    assert "missing.csv' is not a file" in result.stdout
