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
from dlx.data.base import DataModule
from dlx.engine.checkpoint import CheckpointKeeper, capture_rng_state, restore_rng_state
from dlx.engine.early_stopping import EarlyStopping
from dlx.engine.evaluation import evaluate, move_batch
from dlx.engine.interrupts import GracefulStop
from dlx.engine.optimization import Optimization, OptimizerSetup
from dlx.engine.precision import Precision, resolve_device
from dlx.engine.progress import ProgressDisplay
from dlx.errors import DlxError, TrainingDiverged, did_you_mean
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


def parse_duration(value: float | str | None) -> float | None:
    """Seconds from a number or "[DD:]HH:MM:SS"."""
    if value is None or isinstance(value, (int, float)):
        return value
    try:
        parts = [float(p) for p in str(value).split(":")]
    except ValueError:
        raise DlxError(
            f"trainer.max_time='{value}' is not a duration. Type seconds (`trainer.max_time=3600`) "
            "or `trainer.max_time='01:00:00'`."
        ) from None
    seconds = 0.0
    for part, unit in zip(reversed(parts), (1, 60, 3600, 86400), strict=False):
        seconds += part * unit
    return seconds


class Trainer:
    def __init__(
        self,
        config: DictConfig,
        run_folder: Path | None,
        logger: RunLogger,
        config_yaml: str,
        validation_listeners: Sequence[Callable[[int, float, dict[str, float]], None]] = (),
    ):
        self.config = config
        # Called with (step, monitored score, metrics) after each validation and its checkpoint, e.g. by a
        # sweep that prunes hopeless trials by raising.
        self.validation_listeners = list(validation_listeners)
        self.run_folder = run_folder  # None: write no files (fast_dev_run)
        self.logger = logger
        self.config_yaml = config_yaml
        self.device = resolve_device(config.device)
        self.precision = Precision(config.precision, self.device)
        self.max_time = parse_duration(config.max_time)
        self.monitor, self.mode = config.monitor, config.mode
        self.last_validation: dict[str, float] = {}
        self.validated_at_step: int | None = None
        self.state = TrainState()
        self.best_metrics: dict[str, float] = {}

    # -- the loop ---------------------------------------------------------------------------------
    def fit(
        self,
        task: Task,
        data: DataModule,
        build_optimizer: Callable[[torch.nn.Module], torch.optim.Optimizer],
        attach_scheduler: Callable[[torch.optim.Optimizer, ScheduleContext], OptimizerSetup],
        checkpoint: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        cfg = self.config
        fast_dev_run, overfit_batches = cfg.fast_dev_run, cfg.overfit_batches
        data.setup()
        self.model = task.model  # the uncompiled module: its state_dict is what checkpoints hold
        task.to(self.device)
        if cfg.channels_last:
            task.to(memory_format=torch.channels_last)
        if cfg.compile:
            task.model = torch.compile(task.model)

        batches_per_epoch = overfit_batches or (1 if fast_dev_run else len(data.loader("train")))
        if batches_per_epoch == 0:
            raise DlxError(
                f"The training split has fewer samples than data.batch_size={data.batch_size} and "
                "data.drop_last=true, so an epoch has no batch. Lower `data.batch_size` or set "
                "`data.drop_last=false`."
            )
        steps_per_epoch = math.ceil(batches_per_epoch / cfg.accumulate_grad_batches)
        max_epochs = 1 if fast_dev_run else cfg.max_epochs
        total_steps = min(s for s in (cfg.max_steps, max_epochs and max_epochs * steps_per_epoch) if s)
        context = ScheduleContext(
            total_steps=total_steps,
            steps_per_epoch=steps_per_epoch,
            max_epochs=max_epochs or math.ceil(total_steps / steps_per_epoch),
            monitor_mode=self.mode,
        )
        setups = task.configure_optimizers(
            build_optimizer, lambda optimizer: attach_scheduler(optimizer, context)
        )
        optimization = Optimization(
            setups,
            self.precision,
            cfg.gradient_clip_val,
            cfg.gradient_clip_algorithm,
            cfg.accumulate_grad_batches,
        )
        self.state = state = TrainState()
        early_stopping = EarlyStopping(self.mode, cfg.early_stopping.patience, cfg.early_stopping.min_delta)
        keeper = (
            CheckpointKeeper(self.run_folder / "checkpoints", self.monitor, self.mode, cfg.save_top_k)
            if self.run_folder
            else None
        )
        if checkpoint is not None:
            self._restore(checkpoint, task, optimization, state, early_stopping, keeper)
        self.optimization, self.state, self.early_stopping, self.keeper = (
            optimization,
            state,
            early_stopping,
            keeper,
        )

        progress = ProgressDisplay("none" if fast_dev_run else cfg.progress, max_epochs)
        started = time.perf_counter()
        self._pending_losses: list[tuple[int, torch.Tensor]] = []
        losses_since_log: list[torch.Tensor] = []  # kept on the device: no host sync per step
        samples_since_log, log_clock = 0, time.perf_counter()
        task.train()
        self.interrupt = GracefulStop().install()
        try:
            while state.stop_reason is None:
                if max_epochs is not None and state.epoch >= max_epochs:
                    state.stop_reason = "max_epochs"
                    break
                if overfit_batches:
                    loader = itertools.islice(data.loader("train", shuffle=False), overfit_batches)
                else:
                    loader = data.loader("train", epoch=state.epoch, start_batch=state.batch_in_epoch)
                progress.start_epoch(state.epoch, batches_per_epoch, state.batch_in_epoch)
                for batch_index, batch in enumerate(loader, start=state.batch_in_epoch):
                    if batch_index >= batches_per_epoch:
                        break
                    batch = move_batch(batch, self.device, cfg.channels_last)
                    at_boundary = (
                        batch_index + 1
                    ) % cfg.accumulate_grad_batches == 0 or batch_index + 1 == batches_per_epoch
                    logs_next_step = (state.global_step + 1) % cfg.log_every_n_steps == 0
                    optimization.begin_batch(at_boundary, measure_grad_norm=logs_next_step)
                    loss = task.train_batch(batch, optimization)
                    optimization.end_batch()
                    self._pending_losses.append((state.global_step + 1, loss))
                    losses_since_log.append(loss)
                    samples_since_log += len(batch[0])
                    state.batch_in_epoch = batch_index + 1
                    progress.advance()
                    if not optimization.stepped:
                        continue
                    state.global_step += 1

                    if state.global_step % cfg.log_every_n_steps == 0:
                        self._check_finite_losses(cfg.early_stopping.stop_on_nonfinite)
                        now = time.perf_counter()
                        record = {
                            "train/loss": float(torch.stack(losses_since_log).float().mean()),
                            "lr": optimization.learning_rate(),
                            "samples_per_sec": samples_since_log / max(now - log_clock, 1e-9),
                        }
                        if optimization.grad_norm is not None:
                            record["grad_norm"] = float(optimization.grad_norm)
                        self.logger.log(record, step=state.global_step, epoch=state.epoch)
                        progress.show_train(state.epoch, state.global_step, record)
                        losses_since_log.clear()
                        samples_since_log, log_clock = 0, now

                    end_of_epoch = state.batch_in_epoch == batches_per_epoch
                    if (
                        cfg.val_every_n_steps
                        and state.global_step % cfg.val_every_n_steps == 0
                        and not end_of_epoch
                    ):
                        self._validate_and_checkpoint(task, data, progress, overfit_batches)
                    elif (
                        cfg.checkpoint_every_n_steps
                        and state.global_step % cfg.checkpoint_every_n_steps == 0
                        and not end_of_epoch
                        and keeper
                    ):
                        self._check_finite_losses(cfg.early_stopping.stop_on_nonfinite)
                        keeper.save_last(self._checkpoint_state(task))
                    if self.interrupt.requested:
                        state.stop_reason = "interrupted"
                    elif cfg.max_steps and state.global_step >= cfg.max_steps:
                        state.stop_reason = "max_steps"
                    elif (
                        self.max_time
                        and state.elapsed_seconds + time.perf_counter() - started >= self.max_time
                    ):
                        state.stop_reason = "max_time"
                    if state.stop_reason or fast_dev_run:
                        break

                epoch_finished = state.batch_in_epoch >= batches_per_epoch
                if epoch_finished:
                    state.epoch += 1
                    state.batch_in_epoch = 0
                    optimization.end_epoch()
                if fast_dev_run:
                    evaluate(
                        task,
                        data.loader("val"),
                        self.device,
                        self.precision,
                        max_batches=1,
                        channels_last=cfg.channels_last,
                    )
                    state.stop_reason = "fast_dev_run"
                elif state.stop_reason == "interrupted":
                    if keeper:
                        self._check_finite_losses(cfg.early_stopping.stop_on_nonfinite)
                        keeper.save_last(self._checkpoint_state(task))
                elif self.validated_at_step == state.global_step:
                    pass  # a stop decided by a validation that just ran and saved
                elif epoch_finished and state.epoch % cfg.val_every_n_epochs == 0 or state.stop_reason:
                    self._validate_and_checkpoint(task, data, progress, overfit_batches)
                elif keeper:
                    self._check_finite_losses(cfg.early_stopping.stop_on_nonfinite)
                    keeper.save_last(self._checkpoint_state(task))
        finally:
            self.interrupt.uninstall()
            progress.close()
            state.elapsed_seconds += time.perf_counter() - started
        return self._summary(state)

    # -- validation, checkpoints, divergence ------------------------------------------------------
    def _validate_and_checkpoint(
        self, task: Task, data: DataModule, progress: ProgressDisplay, overfit_batches: int
    ) -> None:
        cfg, state = self.config, self.state
        self.validated_at_step = state.global_step
        self._check_finite_losses(cfg.early_stopping.stop_on_nonfinite)
        if overfit_batches:
            batches = itertools.islice(data.loader("train", shuffle=False), overfit_batches)
        else:
            batches = data.loader("val")
        metrics = {
            f"val/{k}": v
            for k, v in evaluate(
                task, batches, self.device, self.precision, channels_last=cfg.channels_last
            ).items()
        }
        if self.monitor not in metrics:
            raise DlxError(
                f"trainer.monitor='{self.monitor}' is not a metric this task reports."
                f"{did_you_mean(self.monitor, metrics)} Available: {', '.join(metrics)}. "
                f"Type e.g. `trainer.monitor={next(iter(metrics))}`."
            )
        score = metrics[self.monitor]
        self.logger.log(metrics, step=state.global_step, epoch=state.epoch)
        progress.show_validation(state.epoch - (state.batch_in_epoch == 0), state.global_step, metrics)
        if not math.isfinite(score) and cfg.early_stopping.stop_on_nonfinite:
            self._diverged(f"The monitored metric {self.monitor} became {score} at step {state.global_step}.")
        self.optimization.after_validation(score)
        self.last_validation = metrics
        previous = self.best_metrics.get(self.monitor)
        if previous is None or (score < previous if self.mode == "min" else score > previous):
            self.best_metrics = dict(metrics)
        if self.early_stopping.update(score) and state.stop_reason is None:
            state.stop_reason = "early_stopping"
            log.info(
                "Early stopping: %s has not improved for %d validation checks (best %.6g).",
                self.monitor,
                self.early_stopping.patience,
                self.early_stopping.best,
            )
        if self.keeper is not None:
            checkpoint = self._checkpoint_state(task)
            self.keeper.offer(checkpoint, score, state.epoch, state.global_step)
            self.keeper.save_last(checkpoint)
        for listener in self.validation_listeners:
            listener(state.global_step, score, metrics)

    def _check_finite_losses(self, stop_on_nonfinite: bool) -> None:
        """One host sync for all losses since the last check, so the hot loop never waits on the device."""
        pending, self._pending_losses = self._pending_losses, []
        if not pending or not stop_on_nonfinite:
            return
        finite = torch.isfinite(torch.stack([loss.float() for _, loss in pending]))
        if bool(finite.all()):
            self._last_finite_loss = (pending[-1][0], float(pending[-1][1]))
            return
        first_bad = int((~finite).nonzero()[0])
        step, loss = pending[first_bad][0], float(pending[first_bad][1])
        finite_before = [(s, float(v)) for s, v in pending[:first_bad]]
        self._last_finite_loss = (
            finite_before[-1] if finite_before else getattr(self, "_last_finite_loss", None)
        )
        self._diverged(f"The training loss became {loss} at step {step}.")

    def _diverged(self, what: str) -> None:
        last = getattr(self, "_last_finite_loss", None)
        grad_norm = self.optimization.grad_norm
        kept = self.run_folder / "checkpoints" / "last.ckpt" if self.run_folder else None
        lines = [what]
        if last:
            lines.append(f"Last finite loss: {last[1]:.6g} at step {last[0]}.")
        if grad_norm is not None:
            lines.append(f"Last measured gradient norm: {float(grad_norm):.4g}.")
        if kept is not None and kept.exists():
            lines.append(f"The last good checkpoint is kept: {kept}.")
        lines.append(
            "Try a lower learning rate (e.g. `optimizer.lr=` a tenth of now), gradient clipping "
            "(`trainer.gradient_clip_val=1.0`), or `trainer.precision=bf16` instead of fp16."
        )
        self.state.stop_reason = "diverged"
        raise TrainingDiverged(" ".join(lines))

    def _checkpoint_state(self, task: Task) -> dict[str, Any]:
        return {
            "dlx_version": __version__,
            "config": self.config_yaml,
            "model": self.model.state_dict(),
            "optimization": self.optimization.state_dict(),
            "progress": asdict(self.state),
            "rng": capture_rng_state(),
            "early_stopping": self.early_stopping.state_dict(),
            "checkpoints": self.keeper.state_dict() if self.keeper else {},
            "wandb_run_id": self.logger.wandb_run_id,
            "metrics": dict(self.last_validation),
            "best_metrics": dict(self.best_metrics),
        }

    def _restore(
        self,
        checkpoint: dict[str, Any],
        task: Task,
        optimization: Optimization,
        state: TrainState,
        early_stopping: EarlyStopping,
        keeper: CheckpointKeeper | None,
    ) -> None:
        load_model_state(self.model, checkpoint["model"])
        optimization.load_state_dict(checkpoint["optimization"])
        for key, value in checkpoint["progress"].items():
            setattr(state, key, value)
        state.stop_reason = None
        early_stopping.load_state_dict(checkpoint["early_stopping"])
        if keeper is not None:
            keeper.load_state_dict(checkpoint.get("checkpoints", {}))
        self.last_validation = dict(checkpoint.get("metrics", {}))
        self.best_metrics = dict(checkpoint.get("best_metrics", {}))
        restore_rng_state(checkpoint["rng"])
        log.info(
            "Resumed at epoch %d, batch %d, step %d.",
            state.epoch + 1,
            state.batch_in_epoch,
            state.global_step,
        )

    def _summary(self, state: TrainState) -> dict[str, Any]:
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


def load_model_state(model: torch.nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Load weights, explaining a checkpoint that belongs to another model."""
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as error:
        details = " ".join(str(error).split())[:400]
        raise DlxError(
            f"The checkpoint's weights do not fit this model ({details}). The checkpoint was made "
            "with another model or other model settings: drop the model overrides, or use a "
            "checkpoint of this model."
        ) from error
