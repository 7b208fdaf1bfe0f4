"""`dlx compare`: run folders found, read (finished or not), ordered, and shown with the settings that
differ; every mistake is one paragraph and exit code 2."""

import json
import subprocess
import sys
from pathlib import Path

import yaml
from typer.testing import CliRunner

from dlx.cli import app
from dlx.compare import compare_runs, find_run_folders
from tests.helpers import train_run

runner = CliRunner()


def invoke(*args: str, width: int = 200):
    return runner.invoke(app, ["compare", *args], terminal_width=width)


def write_run(folder: Path, config: dict, validations: list[dict], summary: dict | None = None) -> Path:
    """A run folder as dlx train leaves it: config.yaml, metrics.jsonl and (once finished) summary.json."""
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    records = [{"step": 10 * i, "epoch": i, "time": 1.5 * i, **v} for i, v in enumerate(validations, 1)]
    lines = [json.dumps(record) for record in records]
    (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    if summary is not None:
        (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def config(lr: float, **trainer) -> dict:
    return {"model": {"name": "mlp"}, "optimizer": {"lr": lr}, "trainer": {"monitor": "val/acc", **trainer}}


def finished(acc: float, seconds: float = 90.0) -> dict:
    best = {"val/acc": acc}
    return {"stop_reason": "max_epochs", "steps": 40, "wall_seconds": seconds, "best_metrics": best}


def test_two_trained_runs_are_ordered_by_their_monitor_and_show_only_what_differs():
    train_run("trainer.max_epochs=1", "optimizer.lr=1e-5")
    train_run("trainer.max_epochs=1", "optimizer.lr=1e-2")
    result = invoke()
    assert result.exit_code == 0, result.output
    runs = compare_runs([Path("outputs")])
    assert [run.settings["optimizer.lr"] for run in runs] == [1e-2, 1e-5], "lowest val/loss first"
    assert runs[0].metrics["val/loss"] < runs[1].metrics["val/loss"]
    assert "optimizer.lr" in result.output and "1e-05" in result.output
    assert "model.name" not in result.output, "a setting every run shares is not a row"
    for run in runs:
        assert run.folder.name[-6:] in result.output and run.status == "max_epochs"


def test_an_unfinished_run_shows_its_best_validation_so_far(caplog):
    write_run(Path("outputs/a/done"), config(0.1, mode="max"), [{"val/acc": 0.5}], finished(0.5))
    crashed = write_run(
        Path("outputs/a/crashed"), config(0.2, mode="max"), [{"val/acc": 0.7}, {"val/acc": 0.6}]
    )
    with (crashed / "metrics.jsonl").open("a") as handle:
        handle.write('{"step": 31, "train/lo')  # a line torn by the crash
    (
        write_run(Path("outputs/a/cut"), config(0.3, mode="max"), [{"val/acc": 0.1}]) / "summary.json"
    ).write_text('{"sto')
    broken = write_run(Path("outputs/a/broken"), config(0.4), [], finished(0.9))
    (broken / "config.yaml").write_text("model: [unclosed\n")
    runs = compare_runs([Path("outputs")])
    assert [run.folder.name for run in runs] == ["crashed", "done", "cut"], "val/acc mode=max: best first"
    assert runs[2].status == "unfinished", "a summary.json cut short by a crash: read from metrics.jsonl"
    assert runs[0].status == "unfinished" and runs[0].metrics == {"val/acc": 0.7} and runs[0].steps == 20
    assert "Left out outputs/a/broken: its config.yaml cannot be read" in caplog.text
    output = invoke().output
    assert "unfinished" in output and "dlx train --resume" in output


def test_sort_by_a_config_key_descending_puts_runs_without_it_last():
    write_run(Path("runs/low"), config(0.01), [], finished(0.1, seconds=5))
    write_run(Path("runs/high"), config(0.1), [], finished(0.2, seconds=50))
    write_run(Path("runs/other"), {"model": {"name": "cnn"}}, [], finished(0.3, seconds=500))
    result = invoke("runs", "--sort", "-optimizer.lr")
    assert result.exit_code == 0, result.output
    assert result.output.index("high") < result.output.index("low") < result.output.index("other")
    assert [r.folder.name for r in compare_runs([Path("runs")], sort="time")] == ["low", "high", "other"]


def test_run_folders_named_directly_or_through_a_parent_are_found_once():
    a = write_run(Path("outputs/x/a"), config(0.1), [], finished(0.1))
    write_run(Path("outputs/y/b"), config(0.2), [], finished(0.2))
    Path("outputs/x/not_a_run").mkdir()
    assert find_run_folders([a, Path("outputs")]) == [a, Path("outputs/y/b")]


def test_mistakes_are_one_paragraph_with_exit_code_2():
    write_run(Path("outputs/e/a"), config(0.1), [], finished(0.1))
    cases = {
        ("missing",): "'missing' does not exist",
        ("outputs", "--sort", "optimiser.lr"): "Did you mean 'optimizer.lr'?",
    }
    Path("empty").mkdir()
    cases[("empty",)] = "No run folders under empty"
    for arguments, message in cases.items():
        result = invoke(*arguments)
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output


def test_without_an_outputs_folder_it_says_where_runs_are():
    result = invoke()  # the test's own empty folder
    assert result.exit_code == 2 and "No outputs/ folder here" in result.output


def test_compare_imports_neither_torch_nor_omegaconf():
    write_run(Path("outputs/e/a"), config(0.1), [{"val/acc": 0.5}], finished(0.5))
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from dlx.cli import app\n"
        "result = CliRunner().invoke(app, ['compare'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print([name for name in ('torch', 'omegaconf') if name in sys.modules])\n"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


def test_nan_and_missing_values_sort_last_either_way():
    write_run(Path("runs/good"), config(0.1), [], finished(0.9))
    write_run(Path("runs/diverged"), config(0.2), [], finished(float("nan")))
    write_run(Path("runs/bad"), config(0.3), [], finished(0.5))
    write_run(Path("runs/none"), config(0.4), [], {"stop_reason": "max_epochs", "best_metrics": {}})
    for sort, order in [("val/acc", ["bad", "good"]), ("-val/acc", ["good", "bad"])]:
        names = [run.folder.name for run in compare_runs([Path("runs")], sort=sort)]
        assert names[:2] == order and set(names[2:]) == {"diverged", "none"}


def test_damaged_files_are_read_as_far_as_they_go():
    garbled = write_run(Path("runs/garbled"), config(0.1), [{"val/acc": 0.4}])
    with (garbled / "metrics.jsonl").open("ab") as handle:
        handle.write(b'{"step": 3, "val/acc": 0.\xff\xfe}\n5\n')
    write_run(Path("runs/odd"), config(0.2), [], {"stop_reason": "max_epochs", "best_metrics": [1, 2]})
    runs = {run.folder.name: run for run in compare_runs([Path("runs")])}
    assert runs["garbled"].metrics == {"val/acc": 0.4} and runs["odd"].metrics == {}


def test_runs_monitoring_different_metrics_are_left_unsorted_with_a_note(caplog):
    write_run(Path("runs/b"), config(0.1, mode="max"), [], finished(0.9))
    write_run(Path("runs/a"), {"trainer": {"monitor": "val/loss"}}, [], finished(0.5))
    caplog.set_level("INFO", logger="dlx")
    assert [run.folder.name for run in compare_runs([Path("runs")])] == ["a", "b"]
    assert "Not sorted: the runs monitor different metrics" in caplog.text


def test_many_runs_are_shown_in_as_many_tables_as_an_80_column_terminal_needs():
    for index in range(9):
        settings = config(index / 10, checkpoint_every_n_steps=index)  # a 32-character key
        write_run(Path(f"runs/trial-{index:03d}"), settings, [], finished(index / 10))
    output = invoke("runs", width=80).output
    assert "dlx compare: runs 1-" in output and "of 9" in output
    assert max(len(line) for line in output.splitlines()) <= 80
    assert "trial-008" in output and "0.8" in output and "max_epochs" in output
    assert "trainer.checkpoint_every_n_…" in output, "a long key is cut, not the runs' values"
