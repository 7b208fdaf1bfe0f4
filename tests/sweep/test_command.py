from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dlx.cli import app
from dlx.sweep.command import plan_sweep
from dlx.sweep.settings import named_sweep_options
from tests.sweep.helpers import FAST, only_sweep_folder, read_summary, sweep


def test_a_three_value_grid_runs_three_trials_and_names_the_best():
    result = sweep(*FAST, "optimizer.lr=0.001,0.003,0.01")
    assert result.exit_code == 0, result.output
    folder = only_sweep_folder()
    summary = read_summary(folder)
    trials = summary["trials"]
    assert sorted(t["params"]["optimizer.lr"] for t in trials) == [0.001, 0.003, 0.01]
    assert [t["state"] for t in trials] == ["finished"] * 3

    # Every trial is a normal run folder inside the sweep folder; its own summary holds the score.
    scores = {}
    for trial in trials:
        run = Path(trial["run_folder"])
        assert run.parent == folder.resolve() and run.name.startswith("trial-")
        scores[trial["params"]["optimizer.lr"]] = read_summary(run)["best_score"]
        assert yaml.safe_load((run / "config.yaml").read_text())["logger"]["group"] == folder.name
    best_lr = min(scores, key=scores.get)
    assert summary["best"]["params"] == {"optimizer.lr": best_lr}
    assert summary["best"]["value"] == pytest.approx(scores[best_lr])
    assert [t["value"] for t in trials] == sorted(scores.values())  # the table is sorted by the metric

    command = f"dlx train {' '.join(FAST)} optimizer.lr={best_lr}"
    assert command in result.output
    assert yaml.safe_load((folder / "best.yaml").read_text())["command"] == command
    assert (folder / "sweep.png").stat().st_size > 10_000

    evaluated = CliRunner().invoke(app, ["eval", summary["best"]["checkpoint"]])
    assert evaluated.exit_code == 0, evaluated.output
    shown = sweep("show", str(folder))
    assert shown.exit_code == 0, shown.output
    assert all(f"trial-00{i}" in shown.output for i in range(3)) and command in shown.output
    resumed = sweep("--resume", str(folder))  # nothing left to run: it says so, and reports
    assert resumed.exit_code == 0 and "all 3 trials are done" in resumed.output, resumed.output
    assert "Sweep folder:" in resumed.output and "(summary.json, best.yaml, sweep.png)" in resumed.output


def test_a_trial_that_diverges_is_recorded_as_failed_and_the_sweep_goes_on():
    result = sweep(*FAST, "optimizer.lr=1e30,0.003")
    assert result.exit_code == 0, result.output
    trials = {t["params"]["optimizer.lr"]: t for t in read_summary(only_sweep_folder())["trials"]}
    assert trials[1e30]["state"] == "failed" and "became nan" in trials[1e30]["error"]
    assert trials[0.003]["state"] == "finished"
    assert "trial-000 failed: The training loss became nan" in " ".join(result.output.split())


BAD_INPUT = [
    ([*FAST], "Nothing to sweep"),
    ([*FAST, "optimizer.lrr=1e-3,1e-2"], "Sweep parameter optimizer.lrr (tried `optimizer.lrr=0.001`)"),
    ([*FAST, "optimizer.lr=1e-3,1e-2", "--jobs", "0"], "--jobs must be at least 1, got 0"),
    ([*FAST, "optimizer.lr=interval(1)"], "missing a required argument: 'end'"),
    ([*FAST, "optimizer.lr=1e-3,1e-2", "--storage", "postgresql://dlx@127.0.0.1:9/none"], "Cannot reach"),
    ([*FAST, "optimizer.lr=1e-3,abc"], "Sweep parameter optimizer.lr (tried `optimizer.lr=abc`)"),
    ([*FAST, "sweep=lr_rnage"], "Did you mean 'lr_range'"),
    ([*FAST, "optimizer.lr=1e-3,1e-2", "sweep.trails=3"], "Did you mean 'trials'"),
    ([*FAST, "optimizer.lr=interval(1e-3, 1e-2)", "--sampler", "grid"], "--sampler grid needs"),
    ([*FAST, "optimizer.lr=1e-3,1e-2", "--trials", "5"], "The grid has 2 combinations"),
    ([*FAST, "optimizer.lr=1e-3,1e-2", "--sampler", "random", "--trials", "5"], "train some of them twice"),
    ([*FAST, "optimizer.lr=interval(1e-3, 1e-2)", "--pruner", "medain"], "Did you mean 'median'"),
    (["--resume", "outputs/nothing"], "is not a sweep folder"),
    ([*FAST, "optimizer.lr=1e-3,1e-2", "trainer.devices=2"], "trains each trial in one process"),
    (
        [*FAST, "optimizer.lr=tag(lgo, interval(1e-5, 1e-1))"],
        "tag(lgo, ...) is not a tag dlx sweep knows. Did you mean 'log'",
    ),
    ([*FAST, "optimizer.lr=1e-3,1e-2", "optimizer.lr=0.5"], "optimizer.lr is both swept"),
    ([*FAST, "optimizer.lr=1e-3,1e-2,1e-1", "--sampler", "tpe"], "TPE may draw one twice"),
    ([*FAST, "trainer.monitor=val/acc,val/f1", "trainer.mode=max"], "trainer.monitor cannot be swept"),
    ([*FAST, "optimizer.lr=1e-3,1e-2", "trainer.devices=1,2"], "trainer.devices cannot be swept"),
]


@pytest.mark.parametrize("arguments, message", BAD_INPUT, ids=[m for _, m in BAD_INPUT])
def test_bad_input_exits_2_with_one_paragraph_before_any_trial(arguments, message):
    result = sweep(*arguments)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Error:" in result.output and "Traceback" not in result.output
    assert not Path("outputs/sweeps").exists()


@pytest.mark.parametrize("name", sorted(named_sweep_options([])))
def test_every_named_search_space_plans(name):
    plan = plan_sweep([f"sweep={name}", *FAST], [], {})
    assert plan.parameters and plan.settings.sampler in ("tpe", "random", "grid")


def test_named_space_gives_defaults_and_the_command_line_wins():
    plan = plan_sweep(["sweep=lr_range", *FAST], [], {})
    (lr,) = plan.parameters
    assert (lr.name, lr.log, plan.settings.trials, plan.settings.pruner) == (
        "optimizer.lr",
        True,
        20,
        "median",
    )
    assert plan.direction == "minimize" and plan.monitor == "val/loss"
    plan = plan_sweep(
        ["sweep=lr_range", *FAST, "optimizer.lr=1e-3,1e-2,1e-1", "sweep.pruner=none"], [], {"trials": 2}
    )
    assert plan.parameters[0].choices == [0.001, 0.01, 0.1] and plan.settings.pruner == "none"


def test_help_shows_examples():
    result = CliRunner().invoke(app, ["sweep", "--help"])
    assert result.exit_code == 0 and "Examples" in result.output and "dlx sweep show" in result.output


def test_show_takes_a_sweep_id_with_the_shared_storage_as_resume_does(tmp_path, monkeypatch):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    assert sweep(*FAST, "optimizer.lr=1e-3,1e-2", "--storage", storage).exit_code == 0
    sweep_id = only_sweep_folder().name
    elsewhere = tmp_path / "another-machine"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = sweep("show", sweep_id, "--storage", storage)
    assert result.exit_code == 0, result.output
    assert "2 finished" in result.output
    assert list(Path("outputs/sweeps").glob(f"*/{sweep_id}/summary.json"))  # the report, on this machine


def test_without_a_best_checkpoint_the_report_names_the_last_one():
    assert sweep(*FAST, "optimizer.lr=1e-3,1e-2", "trainer.save_top_k=0").exit_code == 0
    checkpoint = yaml.safe_load((only_sweep_folder() / "best.yaml").read_text())["checkpoint"]
    assert checkpoint.endswith("last.ckpt") and Path(checkpoint).exists()


def test_a_setting_every_trial_fails_on_stops_the_sweep_after_two():
    result = sweep(*FAST, "optimizer.lr=1e-3,2e-3,3e-3,4e-3", "trainer.monitor=val/acc")  # no mode=max
    assert result.exit_code == 1, result.output  # no trial finished
    assert "Two trials in a row failed before training with the same error" in result.output
    states = [t["state"] for t in read_summary(only_sweep_folder())["trials"]]
    assert sorted(states) == ["failed", "failed", "waiting", "waiting"]


def test_the_slurm_launcher_without_slurm_says_what_to_use_instead(monkeypatch):
    import dlx.sweep.settings

    monkeypatch.setattr(dlx.sweep.settings.shutil, "which", lambda name: None)
    result = sweep(*FAST, "optimizer.lr=1e-3,1e-2", "--launcher", "slurm")
    assert result.exit_code == 2, result.output
    assert "this machine has no Slurm" in " ".join(result.output.split()) and "Traceback" not in result.output
    assert not Path("outputs/sweeps").exists()


def test_a_random_search_over_value_lists_never_trains_a_combination_twice():
    # Optuna's RandomSampler drew some combinations twice here and skipped others.
    result = sweep(
        *FAST, "optimizer.lr=1e-3,1e-2,1e-1", "data.batch_size=32,64", "--sampler", "random", "--trials", "6"
    )
    assert result.exit_code == 0, result.output
    trials = read_summary(only_sweep_folder())["trials"]
    points = {(t["params"]["optimizer.lr"], t["params"]["data.batch_size"]) for t in trials}
    assert len(points) == 6 and all(t["state"] in ("finished", "pruned") for t in trials)
