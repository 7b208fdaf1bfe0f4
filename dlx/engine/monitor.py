"""Is a monitored score better than another? One rule for best checkpoints, early stopping and summaries."""

from __future__ import annotations

import math

from dlx.errors import DlxError, did_you_mean


def check_monitor(monitor: str, mode: str, metrics: dict[str, str | None]) -> None:
    """``monitor`` must be one of the validation ``metrics``; ``mode`` must agree with its direction ("min"
    or "max", None: unknown)."""
    if monitor not in metrics:
        raise DlxError(
            f"trainer.monitor='{monitor}' is not a metric this task reports.{did_you_mean(monitor, metrics)} "
            f"Available: {', '.join(metrics)}. Type e.g. `trainer.monitor={next(iter(metrics))}`."
        )
    better = metrics[monitor]
    if better is not None and better != mode:
        raise DlxError(
            f"trainer.monitor={monitor} is better when {'higher' if better == 'max' else 'lower'}, but "
            f"trainer.mode={mode} would keep the worst checkpoint as the best and stop early on improvement. "
            f"Add `trainer.mode={better}`."
        )


def is_improvement(score: float, reference: float | None, mode: str, min_delta: float = 0.0) -> bool:
    """A non-finite score never improves; any finite score improves on a missing or non-finite reference."""
    if not math.isfinite(score):
        return False
    if reference is None or not math.isfinite(reference):
        return True
    return score < reference - min_delta if mode == "min" else score > reference + min_delta
