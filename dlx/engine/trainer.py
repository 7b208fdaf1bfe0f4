"""The one shared training loop. ``Trainer.fit`` reads top to bottom: set up, then for each epoch,
for each batch: the task's step (backward, clip, optimizer step), logging, validation, checkpoints.

What a batch means belongs to the task (dlx/tasks); how gradients are applied to Optimization
(dlx/engine/optimization.py); this file owns the order of things and when to stop.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from dlx import __version__
from dlx.config.schema import parse_duration, trainer_settings
from dlx.data.base import DataModule
from dlx.engine.checkpoint import (
    CheckpointKeeper,
    capture_rng_state,
    load_model_state,
    load_task_state,
    restore_rng_state,
)
from dlx.engine.distributed import Processes
from dlx.engine.divergence import DivergenceWatch, explain
from dlx.engine.early_stopping import EarlyStopping
from dlx.engine.evaluation import evaluate, explained_loader_errors, move_batch
from dlx.engine.interrupts import GracefulStop
from dlx.engine.log_window import LogWindow
from dlx.engine.model_check import check_model_output
from dlx.engine.monitor import check_monitor, is_improvement
from dlx.engine.optimization import Optimization, OptimizerSetup
from dlx.engine.precision import Precision, resolve_device
from dlx.engine.progress import ProgressDisplay
from dlx.engine.run_length import (
    check_schedule_unchanged,
    schedule_context,
    schedule_cut_short,
    schedule_never_steps,
)
from dlx.errors import DlxError, TrainingDiverged
from dlx.loggers.run_logger import RunLogger
from dlx.optim.schedulers import ScheduleContext
from dlx.tasks.base import Task

log = logging.getLogger("dlx")


@dataclass
class TrainState:
    """Where the run is; with the RNG states, enough to continue exactly."""

    epoch: int = 0  # epochs completed
    batch_in_epoch: int = 0  # batches of the current epoch already trained on
    global_step: int = 0  # optimizer steps taken
    elapsed_seconds: float = 0.0  # training time before this process (for max_time)
    stop_reason: str | None = None


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


class Trainer:
    def __init__(
        self,
        config: DictConfig,
        config_yaml: str,
        validation_listeners: Sequence[Callable[[int, float, dict[str, float]], None]] = (),
        processes: Processes | None = None,
    ):
        self.config = config = trainer_settings(config)
        # Called with (step, monitored score, metrics) after each validation and its checkpoint, e.g. by a
        # sweep that prunes hopeless trials by raising.
        self.validation_listeners = list(validation_listeners)
        self.config_yaml = config_yaml
        self.processes = processes or Processes()  # one process, or this one's place among several
        self.device = self.processes.place(resolve_device(config.device))
        self.precision = Precision(config.precision, self.device)
        self.max_time = parse_duration(config.max_time)
        self.monitor, self.mode = config.monitor, config.mode
        self.last_validation: dict[str, float] = {}
        self.validated_at_step: int | None = None
        self.state = TrainState()
        self.best_metrics: dict[str, float] = {}

    # -- the loop ---------------------------------------------------------------------------------
    def prepare(
        self,
        task: Task,
        data: DataModule,
        build_optimizer: Callable[[torch.nn.Module], torch.optim.Optimizer],
        attach_scheduler: Callable[[torch.optim.Optimizer, ScheduleContext], OptimizerSetup],
        checkpoint: dict[str, Any] | None = None,
    ) -> Trainer:
        """All that can refuse a setting (optimizer, schedule, resume state). fit_config runs it before
        making any file, or (a new offline W&B run) removes the new run folder when it refuses."""
        cfg = self.config
        fast_dev_run, overfit_batches = cfg.fast_dev_run, cfg.overfit_batches
        self.task, self.data, self.checkpoint = task, data, checkpoint
        if modes := task.declared_metric_modes():  # else checked at the first validation
            check_monitor(self.monitor, self.mode, {f"val/{key}": better for key, better in modes.items()})
        self.data_name = type(data).__name__
        data.setup()
        if not overfit_batches:  # overfit_batches validates on the training batches
            data.check_trainable()
        self.data_metadata = data.metadata().to_plain()  # checkpoints carry it: see restore_run
        self.processes.shard(data)  # each process trains on its share of every global batch
        data.keep_on_device(self.device)
        self.model = task.model  # the unwrapped module: its state_dict is what checkpoints hold
        task.to(self.device)
        if checkpoint is not None:
            load_model_state(self.model, checkpoint["model"])  # before FSDP cuts it into shards
            load_task_state(task, checkpoint.get("task"))
        if cfg.channels_last:
            task.to(memory_format=torch.channels_last)
        check_model_output(task, data, self.device, self.precision, cfg.channels_last)
        task_parameters = self.processes.share_task_state(task)  # after loading a checkpoint's
        task.model = self.processes.wrap(task.model)  # DDP or FSDP with several processes
        if cfg.compile:
            task.model = torch.compile(task.model)

        batches_in_data = overfit_batches or len(data.loader("train"))
        batches_per_epoch = 1 if fast_dev_run else batches_in_data
        if batches_per_epoch == 0:
            raise DlxError(
                f"The training split has fewer samples than data.batch_size={data.batch_size} and "
                "data.drop_last=true, so an epoch has no batch. Lower `data.batch_size` or set "
                "`data.drop_last=false`."
            )
        self.batches_per_epoch = batches_per_epoch
        self.max_epochs = 1 if fast_dev_run else cfg.max_epochs
        # fast_dev_run's one step builds the schedule of the run it stands for, so it checks that one too.
        self.context = schedule_context(cfg, batches_in_data, cfg.max_epochs, self.mode)
        setups = task.configure_optimizers(
            build_optimizer, lambda optimizer: attach_scheduler(optimizer, self.context)
        )
        self.optimization = Optimization(
            setups, self.precision, cfg.gradient_clip_val, cfg.gradient_clip_algorithm
        )
        if task_parameters:
            self.optimization.average_by_hand(task_parameters, self.processes.average_gradients)
        if (warning := schedule_never_steps(self.context, self.optimization)) and self.processes.is_main:
            log.warning(warning)
        self.state = TrainState()
        self.early_stopping = EarlyStopping(
            self.mode, cfg.early_stopping.patience, cfg.early_stopping.min_delta
        )
        self.divergence = DivergenceWatch(cfg.early_stopping.stop_on_nonfinite, self.precision.name == "fp16")
        self.log_window = LogWindow()
        if checkpoint is not None:
            self._restore(checkpoint)
        return self

    def fit(self, run_folder: Path | None = None, logger: RunLogger | None = None) -> dict[str, Any]:
        """Train what ``prepare`` set up; write checkpoints into ``run_folder`` (None: no files)."""
        cfg, task, data, state, optimization = (
            self.config,
            self.task,
            self.data,
            self.state,
            self.optimization,
        )
        fast_dev_run, overfit_batches = cfg.fast_dev_run, cfg.overfit_batches
        batches_per_epoch, max_epochs = self.batches_per_epoch, self.max_epochs
        accumulate, log_every = cfg.accumulate_grad_batches, cfg.log_every_n_steps
        log_window = self.log_window
        # What the loop does per batch beyond the task's step is decided here, once: it is the trainer's
        # whole cost over a hand-written loop (scripts/bench measures it).
        distributed = self.processes.is_distributed
        mid_epoch_saves = bool(cfg.val_every_n_steps or cfg.checkpoint_every_n_steps)
        # Batches come from the data module on the device the model is on, except on an accelerator (a
        # DataLoader's CPU batches) or when channels_last asks for another layout.
        moves_batches = self.device.type != "cpu" or cfg.channels_last
        accumulates = accumulate > 1
        window, at_boundary = 1, True  # without accumulation: every batch is a window of its own
        scales_loss = self.precision.scaler is not None  # fp16: the GradScaler updates after each step
        # Several processes agree on stopping after every step, and max_time reads the clock after every
        # step; otherwise only a signal or the last step can end the run mid-epoch.
        checks_every_step = distributed or bool(self.max_time)
        last_step = cfg.max_steps or -1
        self.run_folder, self.logger = run_folder, logger or RunLogger()
        self.kept_checkpoint = run_folder / "checkpoints" / "last.ckpt" if run_folder else None
        self.keeper = (
            CheckpointKeeper(run_folder / "checkpoints", self.monitor, self.mode, cfg.save_top_k)
            if run_folder and self.processes.is_main
            else None
        )
        if self.keeper is not None and self.checkpoint is not None:
            self.keeper.load_state_dict(self.checkpoint.get("checkpoints", {}))

        quiet = fast_dev_run or not self.processes.is_main
        progress = ProgressDisplay("none" if quiet else cfg.progress, max_epochs)
        shows_bar = progress.rich
        self.started = time.perf_counter()
        self.interrupt = interrupt = GracefulStop().install()
        task.train()
        try:
            while (reason := self._limit_reached(max_epochs)) is None:
                first = state.batch_in_epoch
                if overfit_batches:
                    loader = itertools.islice(data.loader("train", shuffle=False), first, overfit_batches)
                else:
                    loader = data.loader("train", epoch=state.epoch, start_batch=first)
                    loader = itertools.islice(loader, batches_per_epoch - first)
                progress.start_epoch(state.epoch, batches_per_epoch, first)
                with explained_loader_errors(self.data_name):
                    for batch_index, batch in enumerate(loader, start=first):
                        if moves_batches:
                            batch = move_batch(batch, self.device, cfg.channels_last)
                        if accumulates:
                            # An accumulation window closes every k batches and at the end of the epoch.
                            window_start = batch_index - batch_index % accumulate
                            window = min(accumulate, batches_per_epoch - window_start)
                            at_boundary = batch_index + 1 == window_start + window
                        step = state.global_step + 1  # the optimizer step this batch counts towards
                        if distributed:
                            self.processes.sync_gradients(at_boundary)  # once per optimizer step
                        optimization.begin_batch(window, at_boundary, step % log_every == 0)
                        loss = task.train_batch(batch, optimization)
                        if scales_loss:
                            optimization.end_batch()
                        log_window.add(loss, batch[0].shape[0], step)
                        state.batch_in_epoch = batch_index + 1
                        if shows_bar:
                            progress.advance()
                        if not optimization.stepped:
                            continue
                        state.global_step = step

                        if step % log_every == 0:
                            self._log_training(progress)
                        if mid_epoch_saves and state.batch_in_epoch < batches_per_epoch:
                            if _every(cfg.val_every_n_steps, step):
                                self._validate_and_checkpoint(task, data, progress)
                            elif _every(cfg.checkpoint_every_n_steps, step):
                                self._save_last(task)
                        if checks_every_step or interrupt.requested or step == last_step:
                            state.stop_reason = (  # agreed: all processes stop after the same step
                                "interrupted"
                                if self.processes.any(interrupt.requested)
                                else self._limit_reached(None)
                            )
                        if state.stop_reason or fast_dev_run:
                            break

                epoch_finished = state.batch_in_epoch >= batches_per_epoch
                if epoch_finished:
                    state.epoch += 1
                    state.batch_in_epoch = 0
                    optimization.end_epoch()
                last_epoch = max_epochs is not None and state.epoch >= max_epochs
                validation_due = epoch_finished and (state.epoch % cfg.val_every_n_epochs == 0 or last_epoch)
                if fast_dev_run:
                    self._validate_and_checkpoint(task, data, progress, max_batches=1)
                    state.stop_reason = "fast_dev_run"
                elif self.validated_at_step == state.global_step:
                    pass  # a validation (and its checkpoint) just ran at this very step
                elif validation_due or state.stop_reason in ("max_steps", "max_time"):
                    self._validate_and_checkpoint(task, data, progress)
                else:
                    self._save_last(task)  # an epoch without validation, or an interrupted one
            else:
                state.stop_reason = reason
                if reason == "max_time":
                    self._save_last(task)  # time ran out after the last checkpoint: a resume must know
            if state.stop_reason == "max_time" and self.processes.is_main:
                if warning := schedule_cut_short(self.context, optimization, state.global_step):
                    log.warning(warning)
        finally:
            self.interrupt.uninstall()
            progress.close()
            state.elapsed_seconds = self._elapsed()
        return self.summary()

    def _limit_reached(self, max_epochs: int | None) -> str | None:
        """The limit that ends the run now, if any (checked before each epoch and after each step)."""
        cfg, state = self.config, self.state
        if state.stop_reason:
            return state.stop_reason
        if max_epochs is not None and state.epoch >= max_epochs:
            return "max_epochs"
        if cfg.max_steps and state.global_step >= cfg.max_steps:
            return "max_steps"
        if self.max_time and self.processes.any(self._elapsed() >= self.max_time):
            return "max_time"
        return None

    def _elapsed(self) -> float:
        """Training seconds over all processes of this run (max_time counts across resumes)."""
        return self.state.elapsed_seconds + time.perf_counter() - self.started

    def _log_training(self, progress: ProgressDisplay) -> None:
        self._check_divergence()
        record = self.processes.combine_training_log(self.log_window.flush())
        record["lr"] = self.optimization.learning_rate()
        if self.optimization.grad_norm is not None:
            record["grad_norm"] = float(self.optimization.grad_norm)
        self.logger.log(record, step=self.state.global_step, epoch=self.state.epoch)
        progress.show_train(self.state.epoch, self.state.global_step, record)

    # -- validation, checkpoints ------------------------------------------------------------------
    def _validate_and_checkpoint(
        self, task: Task, data: DataModule, progress: ProgressDisplay, max_batches: int | None = None
    ) -> None:
        cfg, state = self.config, self.state
        self.validated_at_step = state.global_step
        self._check_divergence()
        if cfg.overfit_batches:
            batches = itertools.islice(data.loader("train", shuffle=False), cfg.overfit_batches)
        else:
            batches = data.loader("val")
        measured = evaluate(
            task,
            batches,
            self.device,
            self.precision,
            max_batches=max_batches,
            channels_last=cfg.channels_last,
            data_name=self.data_name,
        )
        metrics = {f"val/{key}": value for key, value in measured.items()}
        check_monitor(self.monitor, self.mode, dict.fromkeys(metrics))
        score = metrics[self.monitor]
        epoch = max(0, state.epoch - (state.batch_in_epoch == 0))  # the epoch it closes, as its train lines
        self.logger.log(metrics, step=state.global_step, epoch=epoch)
        progress.show_validation(epoch, state.global_step, metrics)
        if not math.isfinite(score) and cfg.early_stopping.stop_on_nonfinite:
            state.stop_reason = "diverged"
            raise TrainingDiverged(
                explain(
                    f"The monitored metric {self.monitor} became {score} at step {state.global_step}.",
                    self.divergence.last_finite,
                    self.optimization.grad_norm,
                    self.kept_checkpoint,
                    self.optimization.learning_rate(),
                    self.divergence.fp16,
                )
            )
        self.optimization.after_validation(score)
        self.last_validation = metrics
        if is_improvement(score, self.best_metrics.get(self.monitor), self.mode):
            self.best_metrics = dict(metrics)
        if self.early_stopping.update(score) and state.stop_reason is None:
            state.stop_reason = "early_stopping"
            log.info(
                "Early stopping: %s has not improved for %d validation checks (best %.6g).",
                self.monitor,
                self.early_stopping.patience,
                self.early_stopping.best,
            )
        if self.run_folder is not None:
            checkpoint = self._checkpoint_state(task)
            if self.keeper is not None:
                self.logger.flush()  # every metrics line up to a checkpoint is on disk before it
                self.keeper.offer(checkpoint, score, state.epoch, state.global_step)
                checkpoint["checkpoints"] = self.keeper.state_dict()  # last.ckpt knows the new best
                self.keeper.save_last(checkpoint)
        for listener in self.validation_listeners:
            listener(state.global_step, score, metrics)

    def _save_last(self, task: Task) -> None:
        if self.run_folder is not None:
            self._check_divergence()
            checkpoint = self._checkpoint_state(task)  # on every process: FSDP gathers its shards
            if self.keeper is not None:
                self.logger.flush()
                self.keeper.save_last(checkpoint)

    def _check_divergence(self) -> None:
        self.divergence.check(
            self.log_window,
            self.optimization.grad_norm,
            self.kept_checkpoint,
            self.optimization.learning_rate(),
        )

    def _checkpoint_state(self, task: Task) -> dict[str, Any]:
        progress = asdict(self.state)
        progress["elapsed_seconds"] = self._elapsed()
        return {
            "dlx_version": __version__,
            "config": self.config_yaml,
            "model": self.processes.full_state(self.model.state_dict()),
            "task": task.own_state_dict(),  # a GAN's discriminator, say; usually empty
            "data_state": self.data.state_dict(),
            "data_metadata": self.data_metadata,
            "optimization": self.processes.full_state(self.optimization.state_dict()),
            "schedule": asdict(self.context),
            "progress": progress,
            "log_window": self.log_window.state_dict(),
            "rng": capture_rng_state(),
            "early_stopping": self.early_stopping.state_dict(),
            "checkpoints": self.keeper.state_dict() if self.keeper else {},
            "wandb_run_id": self.logger.wandb_run_id,
            "metrics": dict(self.last_validation),
            "best_metrics": dict(self.best_metrics),
        }

    def _restore(self, checkpoint: dict[str, Any]) -> None:
        state = self.state
        check_schedule_unchanged(checkpoint.get("schedule"), self.context, self.optimization)
        optimizers = [setup.optimizer for setup in self.optimization.setups]
        self.optimization.load_state_dict(
            self.processes.shard_optimizer_state(checkpoint["optimization"], optimizers)
        )
        for key, value in checkpoint["progress"].items():
            setattr(state, key, value)
        state.stop_reason = None
        self.early_stopping.load_state_dict(checkpoint["early_stopping"])
        self.log_window.load_state_dict(checkpoint.get("log_window", {}))
        self.last_validation = dict(checkpoint.get("metrics", {}))
        self.best_metrics = dict(checkpoint.get("best_metrics", {}))
        restore_rng_state(checkpoint["rng"])
        log.info(
            "Resumed at epoch %d, batch %d, step %d.",
            state.epoch + 1,
            state.batch_in_epoch,
            state.global_step,
        )

    def summary(self) -> dict[str, Any]:
        """How the run ended and its best metrics (summary.json)."""
        state = self.state
        return {
            "stop_reason": state.stop_reason,
            "epochs": state.epoch,
            "steps": state.global_step,
            "wall_seconds": state.elapsed_seconds,
            "monitor": self.monitor,
            "best_score": self.best_metrics.get(self.monitor),
            "best_metrics": self.best_metrics,
            "last_metrics": self.last_validation,
        }


def _every(interval: int | None, step: int) -> bool:
    return bool(interval) and step % interval == 0
