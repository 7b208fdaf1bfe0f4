"""Several processes on CPU (gloo): the same results as one process, one run folder, errors that stop the
run. Each multi-process test starts real processes through torchrun (~10-30 s on a small machine)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dlx.engine.checkpoint import load_checkpoint
from dlx.errors import DlxError
from dlx.tasks.classification import ClassificationTask
from tests.helpers import only_run_folder, train_run

REPOSITORY = Path(__file__).resolve().parents[2]
MODELS = "tests.engine.distributed_models"
# Batch 64: 20 digits batches per epoch, which the step counts below assume. No BatchNorm: its statistics
# are per process (as in DDP without SyncBatchNorm), so 2 processes would not train like 1.
RUN = [
    "logger=none",
    "trainer.progress=plain",
    "trainer.max_epochs=3",
    "data.batch_size=64",
    "model.batch_norm=false",
    "optimizer.lr=1e-3",  # the tolerances below were measured at it (the tuned 3e-3 magnifies rounding)
]
# Floating-point sums in another order (gradients averaged over processes) may flip a sample or two.
ACCURACY_TOLERANCE = 0.01  # of 270 validation digits: at most 2 samples
PARAMETER_TOLERANCE = 1e-3  # absolute, after the first epoch (measured: up to 1.6e-4)


def run_command(*arguments: str, timeout: float = 300, **environment: str) -> tuple[int, str, float]:
    env = {**os.environ, "PYTHONPATH": str(REPOSITORY), **environment}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, *arguments], capture_output=True, text=True, env=env, timeout=timeout
    )
    return result.returncode, result.stdout + result.stderr, time.monotonic() - started


def test_two_processes_train_like_one_with_the_same_global_batch(tmp_path):
    # Accumulation too: only the window's last backward averages gradients across the processes.
    overrides = [*RUN, f"model._target_={MODELS}.ParameterDumpingMLP", "trainer.accumulate_grad_batches=2"]
    (tmp_path / "one").mkdir()
    os.environ["DUMP_DIR"] = str(tmp_path / "one")
    try:
        single = train_run(*overrides, "output_dir=single", fast=False)
    finally:
        del os.environ["DUMP_DIR"]

    (tmp_path / "two").mkdir()
    arguments = [*overrides, "output_dir=double", "trainer.devices=2", "logger=wandb", "logger.mode=offline"]
    code, output, _ = run_command("-m", "dlx", "train", *arguments, DUMP_DIR=str(tmp_path / "two"))
    assert code == 0, output

    folder = only_run_folder(tmp_path / "double")  # one run folder, made by rank 0
    assert len(list(tmp_path.rglob("offline-run-*"))) == 1  # one W&B run
    assert output.count("dlx train: summary") == 1 and output.count("Run folder:") == 1
    checkpoint = load_checkpoint(folder / "checkpoints" / "last.ckpt")
    assert checkpoint["progress"]["global_step"] == 3 * 10  # as many steps as one process takes
    double_accuracy = checkpoint["metrics"]["val/acc"]
    assert abs(double_accuracy - single["last_metrics"]["val/acc"]) <= ACCURACY_TOLERANCE

    # Eval mode number 1 is the output check before training; then the three validations.
    for validation in (2, 3, 4):  # both ranks hold the very same parameters at every validation
        rank0 = torch.load(tmp_path / "two" / f"rank0-{validation}.pt")
        rank1 = torch.load(tmp_path / "two" / f"rank1-{validation}.pt")
        reference = torch.load(tmp_path / "one" / f"rank0-{validation}.pt")
        for key, value in rank0.items():
            assert torch.equal(value, rank1[key]), key
            if validation == 2:  # later, Adam magnifies rounding in tiny gradients (measured 2.3e-3)
                torch.testing.assert_close(value, reference[key], atol=PARAMETER_TOLERANCE, rtol=0)
    for key, value in checkpoint["model"].items():
        assert torch.equal(value, rank0[key]), key  # after the last validation, nothing trained


def test_modules_a_task_holds_are_averaged_over_processes_like_the_model(tmp_path):
    """A GAN's discriminator lives in the task, outside the DDP-wrapped model: its gradients are averaged
    too, so every rank holds the same critic, the one a single process trains with the same global batch."""
    overrides = [*RUN, "trainer.max_epochs=2", f"task._target_={MODELS}.CriticDumpingTask"]
    (tmp_path / "one").mkdir()
    os.environ["DUMP_DIR"] = str(tmp_path / "one")
    try:
        train_run(*overrides, "output_dir=single", fast=False)
    finally:
        del os.environ["DUMP_DIR"]
    (tmp_path / "two").mkdir()
    arguments = [*overrides, "output_dir=double", "trainer.devices=2", "--trust-checkpoint"]
    code, output, _ = run_command("-m", "dlx", "train", *arguments, DUMP_DIR=str(tmp_path / "two"))
    assert code == 0, output

    for validation in (
        1,
        2,
    ):  # the two validations (the output check before training sets only the model's mode)
        rank0 = torch.load(tmp_path / "two" / f"critic-rank0-{validation}.pt")
        rank1 = torch.load(tmp_path / "two" / f"critic-rank1-{validation}.pt")
        reference = torch.load(tmp_path / "one" / f"critic-rank0-{validation}.pt")
        for key, value in rank0.items():
            assert torch.equal(value, rank1[key]), key
            if validation == 1:
                torch.testing.assert_close(value, reference[key], atol=PARAMETER_TOLERANCE, rtol=0)
    checkpoint = load_checkpoint(only_run_folder(tmp_path / "double") / "checkpoints" / "last.ckpt")
    for key, value in checkpoint["task"].items():
        assert torch.equal(value, rank0[key]), key


def test_a_failing_rank_stops_the_run_with_its_message_and_the_run_resumes_on_one_process(tmp_path):
    from dlx.train import train

    arguments = [
        *RUN,
        f"model._target_={MODELS}.CrashingMLP",
        "trainer.devices=2",
        "trainer.collective_timeout=120",
    ]
    code, output, seconds = run_command("-m", "dlx", "train", *arguments, CRASH_AT="25")  # epoch 2
    assert code == 1, output
    assert "Rank 1 of 2 failed" in output and "ValueError: rank 1 crashed on purpose" in output
    assert "Traceback" not in output
    assert seconds < 120  # the others stopped at once, not after waiting out the timeout

    folder = only_run_folder()
    assert load_checkpoint(folder / "checkpoints" / "last.ckpt")["progress"]["global_step"] == 20
    resumed = train(["trainer.devices=1"], resume=folder, trust_checkpoint=True)
    reference = train_run(*RUN, "output_dir=reference", fast=False)
    assert resumed["steps"] == 60
    difference = resumed["last_metrics"]["val/acc"] - reference["last_metrics"]["val/acc"]
    assert abs(difference) <= ACCURACY_TOLERANCE


def test_torchrun_resumes_a_one_process_run_on_two_with_fsdp(tmp_path, monkeypatch):
    original = ClassificationTask.training_step
    calls = {"n": 0}

    def crash_in_epoch_two(self, batch):
        calls["n"] += 1
        if calls["n"] == 25:
            raise RuntimeError("simulated crash")
        return original(self, batch)

    monkeypatch.setattr(ClassificationTask, "training_step", crash_in_epoch_two)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_run(*RUN, fast=False)
    monkeypatch.setattr(ClassificationTask, "training_step", original)
    folder = only_run_folder()

    resume = ["--resume", str(folder), "trainer.devices=2", "trainer.strategy=fsdp"]
    torchrun = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    code, output, _ = run_command(*torchrun, "-m", "dlx", "train", *resume)
    assert code == 0, output
    checkpoint = load_checkpoint(folder / "checkpoints" / "last.ckpt")
    assert checkpoint["progress"]["global_step"] == 60
    assert checkpoint["model"]["head.weight"].shape == (10, 256)  # whole tensors, not one rank's shard
    moments = checkpoint["optimization"]["optimizers"][0]["state"][0]["exp_avg"]
    assert type(moments) is torch.Tensor and moments.shape == (256, 64)
    reference = train_run(*RUN, "output_dir=reference", fast=False)
    difference = checkpoint["metrics"]["val/acc"] - reference["last_metrics"]["val/acc"]
    assert abs(difference) <= ACCURACY_TOLERANCE


def test_a_global_batch_that_does_not_split_evenly_is_refused_before_starting():
    with pytest.raises(DlxError, match=r"data.batch_size=64 .* 3 processes.*`data.batch_size=63`"):
        train_run("trainer.devices=3")
    assert not Path("outputs").exists()


def test_several_machines_need_a_rendezvous_endpoint():
    with pytest.raises(DlxError, match="trainer.rdzv_endpoint="):
        train_run("trainer.devices=2", "trainer.num_nodes=2")


def test_a_command_that_trains_in_one_process_refuses_several_devices():
    from dlx.config.compose import compose_config
    from dlx.config.validate import validate_config
    from dlx.train import fit_config

    cfg = validate_config(compose_config(["logger=none", "trainer.devices=2"]))
    with pytest.raises(DlxError, match="only `dlx train` starts"):
        fit_config(cfg)  # what a sweep trial calls
