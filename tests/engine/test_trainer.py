import json
import math
import re
from pathlib import Path

import pytest
import torch

from dlx.engine.checkpoint import load_checkpoint
from dlx.errors import DlxError, TrainingDiverged
from dlx.tasks.classification import ClassificationTask
from tests.helpers import only_run_folder, train_run

ORIGINAL_TRAINING_STEP = ClassificationTask.training_step


def test_default_run_writes_the_whole_run_folder():
    summary = train_run("trainer.max_epochs=3")
    folder = only_run_folder()
    assert folder.parent.name == "digits_mlp"
    for name in [
        "config.yaml",
        "metrics.jsonl",
        "train.log",
        "curves.png",
        "summary.json",
        "checkpoints/last.ckpt",
        "checkpoints/best.ckpt",
    ]:
        assert (folder / name).is_file(), name
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    # "epoch" counts from 0, and a validation carries the epoch it closes, as that epoch's training lines do
    assert [r["epoch"] for r in records if "val/acc" in r] == [0, 1, 2]
    assert sorted({r["epoch"] for r in records if "train/loss" in r}) == [0, 1, 2]
    assert any("train/loss" in r and "lr" in r and "grad_norm" in r for r in records)
    assert summary["best_metrics"]["val/acc"] > 0.85
    assert "Run folder" in (folder / "train.log").read_text()
    checkpoint = load_checkpoint(folder / "checkpoints" / "last.ckpt")
    assert checkpoint["progress"]["epoch"] == 3 and checkpoint["dlx_version"]
    assert "num_classes: 10" in checkpoint["config"]


def _crash_at_call(monkeypatch, call_number):
    original = ClassificationTask.training_step
    calls = {"n": 0}

    def crashing(self, batch):
        calls["n"] += 1
        if calls["n"] == call_number:
            raise RuntimeError("simulated crash")
        return original(self, batch)

    monkeypatch.setattr(ClassificationTask, "training_step", crashing)


def test_interrupted_and_resumed_run_ends_bitwise_equal(tmp_path, monkeypatch):
    from dlx.train import train

    common = [
        "trainer.max_epochs=3",
        "trainer.deterministic=true",
        "trainer.checkpoint_every_n_steps=4",
        "model.dropout=0.2",
        "model.batch_norm=true",
    ]
    train_run(*common, "output_dir=uninterrupted")
    reference = load_checkpoint(only_run_folder(tmp_path / "uninterrupted") / "checkpoints" / "last.ckpt")

    _crash_at_call(monkeypatch, 31)  # mid-epoch 2 (20 batches per epoch); last checkpoint at step 28
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_run(*common, "output_dir=interrupted")
    monkeypatch.setattr(ClassificationTask, "training_step", ORIGINAL_TRAINING_STEP)
    folder = only_run_folder(tmp_path / "interrupted")
    saved = load_checkpoint(folder / "checkpoints" / "last.ckpt")
    assert saved["progress"]["global_step"] == 28 and saved["progress"]["batch_in_epoch"] == 8

    train([], resume=folder)
    resumed = load_checkpoint(folder / "checkpoints" / "last.ckpt")
    assert resumed["progress"]["global_step"] == reference["progress"]["global_step"] == 60
    for key, tensor in reference["model"].items():
        assert torch.equal(tensor, resumed["model"][key]), key
    steps = [json.loads(line)["step"] for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps), "a resumed run must not duplicate metric records"


def test_early_stopping_stops_at_the_right_check(monkeypatch):
    scripted = iter([1.0, 0.8, 0.85, 0.9, 0.7, 0.6])  # best at check 2, then 2 checks without improvement

    def scripted_evaluate(task, batches, *args, **kwargs):
        return {"loss": next(scripted), "acc": 0.5}

    monkeypatch.setattr("dlx.engine.trainer.evaluate", scripted_evaluate)
    summary = train_run("trainer.max_epochs=6", "trainer.early_stopping.patience=2")
    assert summary["stop_reason"] == "early_stopping"
    assert summary["epochs"] == 4
    assert summary["best_score"] == 0.8


def test_bf16_autocast_runs_on_cpu(monkeypatch):
    seen = []
    original = ClassificationTask.training_step

    def recording(self, batch):
        loss = original(self, batch)
        seen.append(self.model(batch[0][:2]).dtype)
        return loss

    monkeypatch.setattr(ClassificationTask, "training_step", recording)
    summary = train_run("trainer.precision=bf16", "trainer.max_epochs=1")
    assert seen and all(dtype == torch.bfloat16 for dtype in seen)
    assert math.isfinite(summary["best_metrics"]["val/loss"])


def test_gradient_clipping_bounds_the_norm_seen_by_the_optimizer(monkeypatch):
    norms = []
    original_step = torch.optim.SGD.step

    def recording_step(self, *args, **kwargs):
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        norms.append(float(torch.nn.utils.get_total_norm(grads)))
        return original_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", recording_step)
    train_run("optimizer=sgd", "optimizer.lr=0.5", "trainer.gradient_clip_val=0.05", "trainer.max_epochs=1")
    assert norms and max(norms) <= 0.05 + 1e-5
    folder = only_run_folder()
    logged = [
        json.loads(line).get("grad_norm") for line in (folder / "metrics.jsonl").read_text().splitlines()
    ]
    assert any(n is not None and n > 0.05 for n in logged), "the logged norm is the one before clipping"


def test_accumulating_k_batches_equals_one_k_times_larger_batch(tmp_path):
    common = [
        "model.batch_norm=false",  # batch statistics differ between 16 and 64 samples
        "optimizer=sgd",
        "optimizer.momentum=0.0",
        "optimizer.weight_decay=0.0",
        "optimizer.lr=0.5",
        "scheduler=constant",
        "trainer.max_steps=3",
        "trainer.max_epochs=null",
        "data.drop_last=true",
    ]
    train_run(*common, "data.batch_size=64", "output_dir=big")
    train_run(*common, "data.batch_size=16", "trainer.accumulate_grad_batches=4", "output_dir=small")
    big = load_checkpoint(only_run_folder(tmp_path / "big") / "checkpoints" / "last.ckpt")
    small = load_checkpoint(only_run_folder(tmp_path / "small") / "checkpoints" / "last.ckpt")
    assert big["progress"]["global_step"] == small["progress"]["global_step"] == 3
    for key, tensor in big["model"].items():
        torch.testing.assert_close(small["model"][key], tensor, rtol=1e-4, atol=1e-5)


def test_nonfinite_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(monkeypatch):
    original = ClassificationTask.training_step
    calls = {"n": 0}

    def poisoned(self, batch):
        calls["n"] += 1
        loss = original(self, batch)
        return loss * float("nan") if calls["n"] == 27 else loss

    monkeypatch.setattr(ClassificationTask, "training_step", poisoned)
    with pytest.raises(TrainingDiverged) as caught:
        train_run("trainer.max_epochs=3")
    message = str(caught.value)
    assert "step 27" in message and "Last finite loss" in message and "gradient_clip_val" in message
    assert re.search(r"Try a lower learning rate \(the run was at 0\.\d+\)", message)  # the value itself
    assert "fp16" not in message  # a full-precision run: no advice about fp16
    folder = only_run_folder()
    kept = load_checkpoint(folder / "checkpoints" / "last.ckpt")
    assert kept["progress"]["global_step"] == 20  # the end of epoch 1, before the poisoned step
    assert all(torch.isfinite(t).all() for t in kept["model"].values())
    summary = json.loads((folder / "summary.json").read_text())  # how the run ended, for dlx compare
    assert summary["stop_reason"] == "diverged" and "step 27" in summary["error"]
    assert summary["steps"] >= 27 and summary["best_metrics"]["val/loss"] > 0


def test_fast_dev_run_trains_one_batch_and_writes_nothing(tmp_path):
    summary = train_run("trainer.fast_dev_run=true", "logger=wandb")
    assert summary["steps"] == 1 and summary["stop_reason"] == "fast_dev_run"
    assert not (tmp_path / "outputs").exists()


def test_overfit_batches_drives_the_training_loss_down():
    summary = train_run("trainer.overfit_batches=2", "trainer.max_epochs=30", "optimizer.lr=0.01")
    assert summary["steps"] == 60
    assert summary["best_metrics"]["val/acc"] == 1.0  # validated on the same two batches


def test_max_steps_and_val_every_n_steps():
    summary = train_run("trainer.max_steps=25", "trainer.val_every_n_steps=10", "trainer.max_epochs=null")
    assert summary["steps"] == 25 and summary["stop_reason"] == "max_steps"
    records = [json.loads(line) for line in (only_run_folder() / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "val/loss" in r] == [10, 20, 25]


def test_unknown_monitor_names_the_metrics_that_exist_before_training(monkeypatch):
    from dlx.tasks.base import Task

    monkeypatch.setattr(Task, "train_batch", lambda *args: pytest.fail("trained with a bad monitor"))
    with pytest.raises(DlxError, match="Did you mean 'val/acc'"):
        train_run("trainer.monitor=val/accuracy", "trainer.mode=max")
    assert not list(Path("outputs").glob("*/*")), "no run folder"


def test_a_mode_against_the_monitored_metrics_direction_is_refused():
    with pytest.raises(DlxError, match=r"val/acc is better when higher.*Add `trainer.mode=max`"):
        train_run("trainer.monitor=val/acc")
    with pytest.raises(DlxError, match=r"val/loss is better when lower.*Add `trainer.mode=min`"):
        train_run("trainer.mode=max")


def test_regression_on_a_csv_end_to_end(tmp_path):
    """Targets far from 0 (mean 150, std ~100, like sklearn's diabetes data) with the default settings: the
    model learns them standardised; checkpoints, eval and predict give them in their own units."""
    from dlx.restore import restore_run

    generator = torch.Generator().manual_seed(0)
    features = torch.rand(400, 2, generator=generator) * 2 - 1
    target = 150 + 60 * (3 * features[:, 0] - 2 * features[:, 1])
    rows = zip(features.tolist(), target.tolist(), strict=True)
    lines = ["a,b,y"] + [f"{a:.6f},{b:.6f},{y:.6f}" for (a, b), y in rows]
    (tmp_path / "table.csv").write_text("\n".join(lines) + "\n")
    overrides = ["data=tabular", "task=regression", "data.path=table.csv", "data.target=y"]
    summary = train_run(*overrides, "trainer.max_epochs=15")
    assert summary["best_metrics"]["val/r2"] > 0.95
    assert set(summary["best_metrics"]) == {"val/loss", "val/mae", "val/rmse", "val/r2"}
    run = restore_run(only_run_folder() / "checkpoints" / "best.ckpt")
    inputs, targets = run.data.splits["test"]
    with torch.no_grad():
        predictions = run.model(inputs).reshape(targets.shape)  # what predict and export run
    assert (predictions - targets).abs().mean() < 0.1 * targets.std()
    unscaled = train_run(*overrides, "trainer.max_epochs=15", "data.standardize=false")
    assert unscaled["best_metrics"]["val/r2"] < 0.5  # what the target scale is for


def test_channels_last_cnn_with_plain_progress_lines(caplog):
    import logging

    caplog.set_level(logging.INFO, logger="dlx")
    logging.getLogger("dlx").propagate = True
    summary = train_run(
        "model=cnn",
        "model.channels=[8,16]",
        "trainer.channels_last=true",
        "trainer.progress=plain",
        "trainer.max_epochs=1",
    )
    assert math.isfinite(summary["best_metrics"]["val/loss"])
    assert "epoch 1 step 10" in caplog.text and "validation" in caplog.text


def test_sigint_saves_a_resumable_checkpoint_at_the_next_step_and_resume_finishes_exactly(
    tmp_path, monkeypatch
):
    import os
    import signal

    from dlx.train import train

    common = ["trainer.max_epochs=2", "trainer.deterministic=true", "model.dropout=0.1"]
    handler_before = signal.getsignal(signal.SIGINT)  # SIG_IGN when started in the background (`cmd &`)
    train_run(*common, "output_dir=reference")
    reference = load_checkpoint(only_run_folder(tmp_path / "reference") / "checkpoints" / "last.ckpt")

    original = ClassificationTask.training_step
    calls = {"n": 0}

    def interrupting(self, batch):
        calls["n"] += 1
        if calls["n"] == 13:
            os.kill(os.getpid(), signal.SIGINT)  # as if the user pressed Ctrl-C during step 13
        return original(self, batch)

    monkeypatch.setattr(ClassificationTask, "training_step", interrupting)
    summary = train_run(*common, "output_dir=interrupted")
    monkeypatch.setattr(ClassificationTask, "training_step", ORIGINAL_TRAINING_STEP)
    assert summary["stop_reason"] == "interrupted" and summary["signal"] == signal.SIGINT
    folder = only_run_folder(tmp_path / "interrupted")
    saved = load_checkpoint(folder / "checkpoints" / "last.ckpt")
    assert saved["progress"]["global_step"] == 13 and saved["progress"]["batch_in_epoch"] == 13
    assert signal.getsignal(signal.SIGINT) is handler_before  # handlers are given back

    train([], resume=folder)
    resumed = load_checkpoint(folder / "checkpoints" / "last.ckpt")
    for key, tensor in reference["model"].items():
        assert torch.equal(tensor, resumed["model"][key]), key


def _records(folder):
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def _interrupt_at_step(monkeypatch, step):
    from dlx.engine.interrupts import GracefulStop

    original, install = ClassificationTask.training_step, GracefulStop.install
    calls, installed = {"n": 0}, []

    def counting(self, batch):
        calls["n"] += 1
        if calls["n"] == step:  # as if SIGINT came during this step
            installed[-1].signal_number = 2
        return original(self, batch)

    def recording_install(self):
        installed.append(self)
        return install(self)

    monkeypatch.setattr(ClassificationTask, "training_step", counting)
    monkeypatch.setattr(GracefulStop, "install", recording_install)


def test_an_interrupt_on_an_epochs_last_step_still_validates_that_epoch(monkeypatch):
    _interrupt_at_step(monkeypatch, 20)  # 20 batches per epoch
    summary = train_run("trainer.max_epochs=3")
    assert summary["stop_reason"] == "interrupted"
    assert [r["step"] for r in _records(only_run_folder()) if "val/loss" in r] == [20]


def test_a_resumed_runs_metrics_time_goes_on_from_its_checkpoint(monkeypatch):
    from dlx.train import train

    _interrupt_at_step(monkeypatch, 25)
    train_run("trainer.max_epochs=3", "trainer.log_every_n_steps=5")
    monkeypatch.setattr(ClassificationTask, "training_step", ORIGINAL_TRAINING_STEP)
    folder = only_run_folder()
    before = _records(folder)[-1]["time"]
    train([], resume=folder)
    times = [record["time"] for record in _records(folder)]
    assert times == sorted(times) and times[-1] > before


def test_resuming_a_run_that_reached_max_steps_trains_no_further_step():
    from dlx.train import train

    train_run("trainer.max_steps=25", "trainer.max_epochs=null")
    folder = only_run_folder()
    summary = train([], resume=folder)
    assert summary["steps"] == 25 and summary["stop_reason"] == "max_steps"


def test_best_checkpoint_survives_a_resume_with_a_longer_run():
    from dlx.train import train

    train_run("scheduler=constant", "optimizer.lr=0.03", "trainer.max_epochs=3")
    folder = only_run_folder()
    summary = train(["trainer.max_epochs=6"], resume=folder)
    best = load_checkpoint(folder / "checkpoints" / "best.ckpt")
    assert best["metrics"]["val/loss"] == pytest.approx(summary["best_score"], abs=0)
    assert (
        load_checkpoint(folder / "checkpoints" / "last.ckpt")["checkpoints"]["top"][0][0]
        == summary["best_score"]
    )


def test_resuming_with_another_length_is_refused_when_the_schedule_depends_on_it():
    from dlx.train import train

    train_run("trainer.max_epochs=1", "scheduler=onecycle")
    with pytest.raises(DlxError, match="planned for 20 steps"):
        train(["trainer.max_epochs=2"], resume=only_run_folder())


def test_a_run_bounded_only_by_max_time():
    with pytest.raises(DlxError, match="only trainer.max_time bounds it"):
        train_run("trainer.max_epochs=null", "trainer.max_time=1")
    summary = train_run("trainer.max_epochs=null", "trainer.max_time=0.5", "scheduler=constant")
    assert summary["stop_reason"] == "max_time" and summary["steps"] > 0
    saved = load_checkpoint(only_run_folder() / "checkpoints" / "last.ckpt")
    assert saved["progress"]["elapsed_seconds"] >= 0.5


def test_the_last_epoch_is_validated_even_off_the_validation_interval():
    summary = train_run("trainer.max_epochs=3", "trainer.val_every_n_epochs=2")
    assert [r["epoch"] for r in _records(only_run_folder()) if "val/loss" in r] == [1, 2]  # counted from 0
    assert summary["last_metrics"]


def test_fast_dev_run_builds_the_schedule_of_the_run_it_stands_for():
    """A warm-up of 100 steps fits the real run (10 epochs of digits), not one step: no refusal."""
    args = ("scheduler=warmup_cosine", "scheduler.warmup_steps=100")
    assert train_run("trainer.fast_dev_run=true", "trainer.max_epochs=10", *args)["steps"] == 1
    with pytest.raises(DlxError, match=r"warmup_steps must be in \[0, 20\)"):  # a real 20-step run refuses
        train_run("trainer.fast_dev_run=true", "trainer.max_epochs=1", *args)


def test_fast_dev_run_checks_the_monitor_name():
    with pytest.raises(DlxError, match="Did you mean 'val/acc'"):
        train_run("trainer.fast_dev_run=true", "trainer.monitor=val/acuracy")


def test_a_torn_metrics_line_from_a_crash_does_not_break_resume(monkeypatch):
    from dlx.train import train

    _crash_at_call(monkeypatch, 31)
    with pytest.raises(RuntimeError):
        train_run("trainer.max_epochs=2")
    monkeypatch.setattr(ClassificationTask, "training_step", ORIGINAL_TRAINING_STEP)
    folder = only_run_folder()
    with (folder / "metrics.jsonl").open("a") as handle:
        handle.write('{"step": 31, "train/lo')
    train([], resume=folder)
    steps = [r["step"] for r in _records(folder)]
    assert steps == sorted(steps) and steps[-1] == 40


def test_fp16_steps_skipped_by_the_grad_scaler_are_not_divergence(monkeypatch):
    def huge_but_finite(self, batch):
        return ORIGINAL_TRAINING_STEP(self, batch) * 1e4  # scaled by 2**16 it overflows fp16 gradients

    monkeypatch.setattr(ClassificationTask, "training_step", huge_but_finite)
    summary = train_run("trainer.precision=fp16", "trainer.max_epochs=1")
    assert summary["stop_reason"] == "max_epochs"
    scaler = load_checkpoint(only_run_folder() / "checkpoints" / "last.ckpt")["optimization"]["scaler"]
    assert scaler["scale"] < 2.0**16, "the scaler backed off: some steps had inf gradients and were skipped"


def test_a_run_resumes_from_its_best_checkpoint_when_last_is_broken():
    from dlx.train import train

    train_run("trainer.max_epochs=3", "scheduler=constant")  # a schedule of 3 epochs could not grow to 4
    folder = only_run_folder()
    best_step = load_checkpoint(folder / "checkpoints" / "best.ckpt")["progress"]["global_step"]
    (folder / "checkpoints" / "last.ckpt").write_bytes(b"PK\x03\x04 torn by a crash")
    summary = train(["trainer.max_epochs=4"], resume=folder / "checkpoints" / "best.ckpt")
    assert summary["stop_reason"] == "max_epochs" and summary["steps"] == 4 * 20
    assert load_checkpoint(folder / "checkpoints" / "last.ckpt")["progress"]["global_step"] == 4 * 20
    steps = [json.loads(line)["step"] for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and best_step <= 3 * 20  # the steps after best's were trained again


def test_resume_refuses_a_checkpoint_outside_a_runs_checkpoints_folder(tmp_path):
    from dlx.train import train

    train_run("trainer.max_epochs=1")
    loose = tmp_path / "saved" / "early.ckpt"
    loose.parent.mkdir()
    loose.write_bytes((only_run_folder() / "checkpoints" / "best.ckpt").read_bytes())
    with pytest.raises(DlxError, match="--resume takes a run folder .* is in neither"):
        train([], resume=loose)
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "metrics.jsonl").exists()


def test_a_schedule_that_cannot_run_its_course_is_warned_about(caplog):
    train_run("trainer.max_epochs=1000", "trainer.max_time=0.5", "output_dir=timed")  # cosine over 20k steps
    assert "trainer.max_time ended the run at step" in caplog.text and "about" in caplog.text
    caplog.clear()
    train_run("scheduler=step", "trainer.max_steps=3", "trainer.max_epochs=null", "output_dir=short")
    assert "steps once per epoch, but the run ends after 3 steps" in caplog.text
    caplog.clear()
    train_run("trainer.max_epochs=1", "output_dir=whole")  # a schedule that runs its course: no word
    assert "learning-rate schedule" not in caplog.text
