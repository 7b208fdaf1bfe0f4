"""`dlx train`: compose and validate the config, build the pieces, make the run folder, fit."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dlx.errors import DlxError

log = logging.getLogger("dlx")


def load_run_for_resume(
    resume: Path, overrides: list[str], trust_checkpoint: bool = False
) -> tuple[DictConfig, dict[str, Any]]:
    """The config and checkpoint ``--resume`` names: a run folder (its last.ckpt), or a checkpoint in a
    run's checkpoints/ folder (e.g. best.ckpt when last.ckpt is broken; the steps after it are trained
    again)."""
    from dlx.build import apply_overrides
    from dlx.engine.checkpoint import load_checkpoint
    from dlx.restore import (
        refuse_group_swaps,
        refuse_new_split,
        refuse_optimizer_changes,
        refuse_untrusted_targets,
    )

    if resume.is_file() and resume.parent.name != "checkpoints":
        raise DlxError(
            f"--resume takes a run folder (outputs/<experiment>/<run>) or a checkpoint in its checkpoints/ "
            f"folder; {resume} is in neither, so there is no run to go on with. Give the run folder it "
            f"came from, or measure it with `dlx eval {resume}`."
        )
    checkpoint_path = resume if resume.is_file() else resume / "checkpoints" / "last.ckpt"
    if not checkpoint_path.exists():
        raise DlxError(
            f"Cannot resume '{resume}': it has no checkpoints/last.ckpt. Pass a run folder such "
            "as outputs/<experiment>/<run>/ that has trained for at least one checkpoint interval."
        )
    if resume.is_file():
        log.info("Resuming the run %s from its checkpoints/%s.", run_folder_of(resume), resume.name)
    refuse_group_swaps(
        overrides,
        "a resumed run keeps the pieces it was trained with",
        "Change single values instead (e.g. `trainer.max_epochs=20`), or start a new run without --resume.",
    )
    checkpoint = load_checkpoint(checkpoint_path)
    refuse_untrusted_targets(checkpoint, trust_checkpoint)
    cfg = apply_overrides(OmegaConf.create(checkpoint["config"]), overrides)
    trained = OmegaConf.create(checkpoint["config"])
    refuse_new_split(trained, cfg)  # val would hold rows trained on
    refuse_optimizer_changes(trained, cfg)
    return cfg, checkpoint


def train(
    overrides: list[str],
    config_dirs: list[Path] | None = None,
    resume: Path | None = None,
    trust_checkpoint: bool = False,
) -> dict[str, Any]:
    from dlx.engine.distributed import launched_by_torchrun
    from dlx.launch import run_worker

    if launched_by_torchrun():  # one of several processes: it ends here, see run_worker
        run_worker(lambda: _train(overrides, config_dirs or [], resume, trust_checkpoint))
    return _train(overrides, config_dirs or [], resume, trust_checkpoint)


def _train(
    overrides: list[str], config_dirs: list[Path], resume: Path | None, trust_checkpoint: bool
) -> dict[str, Any]:
    from dlx.config.compose import compose_config
    from dlx.config.validate import validate_config
    from dlx.launch import launch_processes, needs_launch, train_arguments

    if resume is not None:
        cfg, checkpoint = load_run_for_resume(resume, overrides, trust_checkpoint)
    else:
        cfg, checkpoint = compose_config(overrides, config_dirs), None
    validate_config(cfg)
    if needs_launch(cfg.trainer):  # trainer.devices > 1: the same command on each process, via torchrun
        return launch_processes(cfg, train_arguments(overrides, config_dirs, resume, trust_checkpoint))
    return fit_config(cfg, checkpoint, None if resume is None else run_folder_of(resume))


def run_folder_of(resume: Path) -> Path:
    """``--resume``'s run folder: the folder itself, or the run of a checkpoint in its checkpoints/."""
    return resume.parent.parent if resume.is_file() else resume


def fit_config(
    cfg: DictConfig,
    checkpoint: dict[str, Any] | None = None,
    run_folder: Path | None = None,
    validation_listeners: Sequence[Callable[[int, float, dict[str, float]], None]] = (),
) -> dict[str, Any]:
    """Train the run a validated config describes, in ``run_folder`` (default: a new one under
    ``cfg.output_dir``); resume from ``checkpoint``. Listeners hear every validation (see Trainer)."""
    from dlx.build import build_data, build_model, build_task, check_pieces_fit
    from dlx.engine.distributed import join_process_group
    from dlx.engine.run_folder import attach_train_log, create_run_folder, detach_train_log
    from dlx.engine.trainer import Trainer, seed_everything
    from dlx.loggers.metrics_file import MetricsFile, read_metrics
    from dlx.loggers.plots import plot_curves
    from dlx.loggers.run_logger import RunLogger
    from dlx.loggers.wandb_run import WandbRun, discard_worker, launch_worker, resolved_mode
    from dlx.report import print_training_summary

    processes = join_process_group(cfg.trainer)  # with several processes: which one this is
    logs_to_wandb = processes.is_main and not cfg.trainer.fast_dev_run
    wandb_worker = launch_worker(cfg.logger) if logs_to_wandb else None  # starts while the rest is built
    # A new single-process run logging to W&B offline makes its run folder and starts W&B before
    # `Trainer.prepare`, whose torch._dynamo import (1-2 s) leaves a core free for wandb.init: beside the
    # first training steps instead, wandb.init doubled the default run's 5 epochs on 2 cores. A setting
    # `prepare` refuses then removes that folder, as one refused at the first step does. Online and
    # resumed runs keep the order that writes nothing before `prepare` accepts the settings: no failed run
    # on the W&B server for a typo, no summary.json of the resumed run overwritten.
    starts_wandb_first = (
        wandb_worker is not None
        and checkpoint is None
        and not processes.is_distributed
        and resolved_mode(cfg.logger.mode) == "offline"
    )

    try:
        seed_everything(cfg.seed, cfg.trainer.deterministic)  # before building: initial weights depend on it
        data = build_data(cfg, checkpoint.get("data_state") if checkpoint else None)
        check_pieces_fit(cfg, data.metadata().targets)
        task = build_task(cfg, build_model(cfg))
        config_yaml = OmegaConf.to_yaml(cfg, resolve=True)
        trainer = Trainer(cfg.trainer, config_yaml, validation_listeners, processes)  # checks device, dtype
        if not starts_wandb_first:
            _prepare(trainer, cfg, task, data, checkpoint)
    except BaseException:
        discard_worker(wandb_worker)
        raise
    if cfg.trainer.fast_dev_run:
        run_folder = None
    elif run_folder is None and processes.is_main:
        run_folder = create_run_folder(cfg.output_dir, cfg.experiment)
    run_folder = processes.share_from_main(run_folder)  # one run folder; only rank 0 writes in it
    writes_files = run_folder is not None and processes.is_main
    if not writes_files:
        discard_worker(wandb_worker)
    handler, logger = None, RunLogger()
    if writes_files:
        (run_folder / "checkpoints").mkdir(parents=True, exist_ok=True)
        (run_folder / "config.yaml").write_text(config_yaml, encoding="utf-8")
        handler = attach_train_log(run_folder)
        resumed_step = checkpoint["progress"]["global_step"] if checkpoint else None
        seconds_before = checkpoint["progress"]["elapsed_seconds"] if checkpoint else 0.0
        logger = RunLogger(
            MetricsFile(run_folder / "metrics.jsonl", resume_after_step=resumed_step),
            WandbRun(
                cfg.logger,
                run_folder,
                OmegaConf.to_container(cfg, resolve=True),
                checkpoint.get("wandb_run_id") if checkpoint else None,
                wandb_worker,
            ),
            seconds_before,
        )
    exit_code, failure = 1, None
    try:
        if starts_wandb_first:
            _prepare(trainer, cfg, task, data, checkpoint)
        if writes_files:  # said once the settings are accepted: a refused run's folder is removed
            logger.wandb_run.announce()
            log.info("Run folder: %s", run_folder)
        summary = _fit_explaining_a_first_step_failure(trainer, cfg, run_folder, logger)
        exit_code = 0
    except Exception as error:
        failure = error
        if (
            isinstance(error, DlxError)
            and trainer.state.global_step == 0
            and checkpoint is None
            and writes_files
        ):
            # A setting refused before the first step: leave no empty run folder behind.
            logger.finish(1)
            detach_train_log(handler)
            shutil.rmtree(run_folder, ignore_errors=True)
            run_folder, handler, logger, writes_files = None, None, RunLogger(), False
        raise
    finally:
        if writes_files and (exit_code == 0 or failure is not None):
            if failure is not None:  # summary.json says how every run that keeps its folder ended
                summary = trainer.summary()
                summary["stop_reason"] = getattr(failure, "stop_reason", "failed")  # e.g. TrainingDiverged
                summary["error"] = (" ".join(str(failure).split()) or type(failure).__name__)[:2000]
            summary["run_folder"] = str(run_folder)
            (run_folder / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
            logger.summary(
                {f"best/{k}": v for k, v in summary["best_metrics"].items()}
                | {"stop_reason": summary["stop_reason"]}
            )
            best = run_folder / "checkpoints" / "best.ckpt"
            if failure is None and cfg.logger.log_model and best.exists() and logger.wandb_run is not None:
                logger.wandb_run.log_checkpoint(best)
        logger.begin_finish(exit_code)
        if writes_files:  # drawn while W&B finishes in its process
            _write_curves(run_folder, cfg.trainer.monitor, read_metrics, plot_curves)
        logger.finish(exit_code)
        if handler is not None:
            detach_train_log(handler)
    if processes.is_main:
        print_training_summary(summary, run_folder)
    if summary["stop_reason"] == "interrupted":
        summary["signal"] = trainer.interrupt.signal_number
        if run_folder is not None:
            from dlx.build import untrusted_targets

            # A run of the user's own classes is resumed only on their word: the command says it for them.
            trust = " --trust-checkpoint" if untrusted_targets(OmegaConf.to_container(cfg)) else ""
            log.warning(
                "Interrupted. Continue exactly where it stopped with:\n  dlx train --resume %s%s",
                run_folder,
                trust,
            )
    return summary


def _prepare(trainer, cfg: DictConfig, task, data, checkpoint: dict[str, Any] | None) -> None:
    """``trainer.prepare`` with the pieces dlx builds from ``cfg``; a model that fails its output check
    becomes one paragraph naming the pieces."""
    from dlx.build import optimizer_builder, scheduler_attacher
    from dlx.engine.model_check import ModelCheckFailed

    try:
        trainer.prepare(task, data, optimizer_builder(cfg), scheduler_attacher(cfg), checkpoint)
    except ModelCheckFailed as failed:
        what = "The model failed on two validation samples before training"
        raise pieces_failed(cfg, what, failed.__cause__) from failed.__cause__


def _fit_explaining_a_first_step_failure(trainer, cfg: DictConfig, run_folder, logger) -> dict[str, Any]:
    """``trainer.fit``. An error of PyTorch or of the model's code before this process's first optimizer
    step becomes one paragraph naming the pieces: most often they do not fit together (a check in
    dlx/build.py catches the common cases by name). ``--debug`` shows the traceback."""
    import torch

    first_step = trainer.state.global_step
    try:
        return trainer.fit(run_folder, logger)
    except Exception as error:
        if trainer.state.global_step > first_step or isinstance(
            error, (DlxError, torch.OutOfMemoryError, MemoryError)
        ):
            raise
        raise pieces_failed(cfg, "The first training step failed", error) from error


def pieces_failed(cfg: DictConfig, what_failed: str, error: Exception) -> DlxError:
    what = " ".join(str(error).split()).rstrip(".")
    what = what if len(what) <= 300 else what[:300] + "..."
    return DlxError(
        f"{what_failed}: {type(error).__name__}: {what}. The pieces may not fit together "
        f"(model={cfg.model.get('name')}, data={cfg.data.get('name')}, task={cfg.task.get('name')}): "
        "`dlx ls` lists each group's options, and recipes/ holds combinations that work. If yours should "
        "work, run again with `--debug` for the traceback."
    )


def _write_curves(run_folder: Path, monitor: str, read_metrics, plot_curves) -> None:
    records = read_metrics(run_folder / "metrics.jsonl")
    if records:
        try:
            plot_curves(records, run_folder / "curves.png", monitor)
        except Exception as error:  # a plot must never cost the user their run
            log.warning("Could not draw curves.png: %s", error)
