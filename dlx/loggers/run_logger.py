"""Sends each record to metrics.jsonl and to W&B; the trainer sees one object."""

from __future__ import annotations

import time
from typing import Any

from dlx.loggers.metrics_file import MetricsFile
from dlx.loggers.wandb_run import WandbRun


class RunLogger:
    def __init__(
        self,
        metrics_file: MetricsFile | None = None,
        wandb_run: WandbRun | None = None,
        seconds_before: float = 0.0,
    ):
        self.metrics_file = metrics_file
        self.wandb_run = wandb_run
        self.started = time.time() - seconds_before  # a resumed run's "time" goes on from its checkpoint

    @property
    def wandb_run_id(self) -> str | None:
        return self.wandb_run.id if self.wandb_run is not None else None

    def log(self, metrics: dict[str, Any], step: int, epoch: int) -> None:
        if self.metrics_file is not None:
            self.metrics_file.write(
                {"step": step, "epoch": epoch, "time": round(time.time() - self.started, 3), **metrics}
            )
        if self.wandb_run is not None:
            self.wandb_run.log({**metrics, "epoch": epoch}, step=step)

    def flush(self) -> None:
        """Put every metrics line so far on disk (before a checkpoint is written)."""
        if self.metrics_file is not None:
            self.metrics_file.flush()

    def summary(self, values: dict[str, Any]) -> None:
        if self.wandb_run is not None:
            self.wandb_run.summary(values)

    def begin_finish(self, exit_code: int = 0) -> None:
        """Let W&B end the run in its own process while this one does something else (metrics.jsonl is
        complete on disk from here on, for curves.png); then ``finish``."""
        self.flush()
        if self.wandb_run is not None:
            self.wandb_run.begin_finish(exit_code)

    def finish(self, exit_code: int = 0) -> None:
        if self.metrics_file is not None:
            self.metrics_file.close()
        if self.wandb_run is not None:
            self.wandb_run.finish(exit_code)
