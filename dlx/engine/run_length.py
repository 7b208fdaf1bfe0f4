"""How long a run is, in the units schedulers plan with, and whether a resume may change it."""

from __future__ import annotations

import math
from typing import Any

from omegaconf import DictConfig

from dlx.engine.optimization import Optimization
from dlx.errors import DlxError
from dlx.optim.schedulers import ScheduleContext


def schedule_context(
    cfg: DictConfig, batches_per_epoch: int, max_epochs: int | None, mode: str
) -> ScheduleContext:
    """The run's length in optimizer steps and epochs for schedulers (0 when only max_time bounds it)."""
    steps_per_epoch = math.ceil(batches_per_epoch / cfg.accumulate_grad_batches)
    bounds = [s for s in (cfg.max_steps, max_epochs and max_epochs * steps_per_epoch) if s]
    total_steps = min(bounds) if bounds else 0
    epochs = max_epochs or (math.ceil(total_steps / steps_per_epoch) if total_steps else 0)
    return ScheduleContext(
        total_steps=total_steps, steps_per_epoch=steps_per_epoch, max_epochs=epochs, monitor_mode=mode
    )


def check_schedule_unchanged(
    saved: dict[str, Any] | None, context: ScheduleContext, optimization: Optimization
) -> None:
    """A resumed run may change its length only if no scheduler was planned for that length."""
    from torch.optim.lr_scheduler import ConstantLR, ExponentialLR, ReduceLROnPlateau

    if not saved or (saved["total_steps"], saved["max_epochs"]) == (context.total_steps, context.max_epochs):
        return
    length_free = (ConstantLR, ExponentialLR, ReduceLROnPlateau)
    if all(s.scheduler is None or isinstance(s.scheduler, length_free) for s in optimization.setups):
        return
    raise DlxError(
        f"The run was planned for {saved['total_steps']} steps ({saved['max_epochs']} epochs) and its "
        f"learning-rate schedule follows that length; resuming with {context.total_steps} steps "
        f"({context.max_epochs} epochs) would break it. Resume without changing trainer.max_epochs / "
        "trainer.max_steps, or start a new run for a longer schedule."
    )
