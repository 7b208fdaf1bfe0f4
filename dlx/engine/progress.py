"""Progress: a rich bar on a terminal, plain log lines otherwise (CI, files, pipes)."""

from __future__ import annotations

import logging
import time

from dlx.console import FILE_ONLY, console

log = logging.getLogger("dlx")

# Without a terminal (CI, a file) training lines are printed at most this often; every logged step still
# goes to metrics.jsonl and W&B. (A bar on a terminal redraws at most 10 times a second.)
PLAIN_LINE_SECONDS = 1.0


def format_metrics(metrics: dict[str, float]) -> str:
    parts = []
    for key, value in metrics.items():
        if key == "lr":
            parts.append(f"lr {value:.2e}")
        elif key == "samples_per_sec":
            parts.append(f"{value:,.0f} samples/s")
        else:
            parts.append(f"{key} {value:.4f}")
    return "  ".join(parts)


class ProgressDisplay:
    def __init__(self, mode: str, max_epochs: int | None):
        self.rich = mode == "rich" or (mode == "auto" and console.is_terminal)
        self.quiet = mode == "none"
        self.max_epochs = max_epochs
        self.progress = None
        self.bar = None
        self.pending, self.pushed = 0, 0.0  # steps not yet shown; when the bar last moved
        self.printed = -PLAIN_LINE_SECONDS  # when the last plain training line was printed
        if self.rich:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[metrics]}"),
                console=console,
                transient=False,
            )
            self.progress.start()

    def start_epoch(self, epoch: int, batches: int, completed: int = 0) -> None:
        if self.progress is None:
            return
        total = f"/{self.max_epochs}" if self.max_epochs else ""
        description = f"epoch {epoch + 1}{total}"
        if self.bar is not None:
            self._push()
            self.progress.update(self.bar, visible=False)
        self.bar = self.progress.add_task(description, total=batches, completed=completed, metrics="")

    def advance(self) -> None:
        # Moving a rich bar costs tens of microseconds; the screen refreshes 10 times a second, so the
        # bar is moved at most that often, not on every step.
        if self.bar is not None:
            self.pending += 1
            if time.monotonic() - self.pushed >= 0.1:
                self._push()

    def _push(self) -> None:
        if self.pending:
            self.progress.advance(self.bar, self.pending)
            self.pending, self.pushed = 0, time.monotonic()

    def show_train(self, epoch: int, step: int, metrics: dict[str, float]) -> None:
        if self.bar is not None:
            self._push()
            self.progress.update(self.bar, metrics=format_metrics(metrics))
        if time.monotonic() - self.printed >= PLAIN_LINE_SECONDS:  # on the screen only without a bar
            self.printed = time.monotonic()
            screen = self.bar is None and not self.quiet
            log.info(
                "epoch %d step %d  %s",
                epoch + 1,
                step,
                format_metrics(metrics),
                extra=None if screen else FILE_ONLY,
            )

    def show_validation(self, epoch: int, step: int, metrics: dict[str, float]) -> None:
        extra = FILE_ONLY if self.quiet else None  # train.log has every validation either way
        log.info("validation  epoch %d step %d  %s", epoch + 1, step, format_metrics(metrics), extra=extra)

    def close(self) -> None:
        if self.progress is not None:
            if self.bar is not None:
                self._push()
            self.progress.stop()
            self.progress = None
