"""How long a run is, in the units schedulers plan with, and whether a resume may change it."""

from __future__ import annotations

import math
from typing import Any

from omegaconf import DictConfig
from torch.optim.lr_scheduler import ConstantLR, ExponentialLR, ReduceLROnPlateau

from dlx.engine.optimization import Optimization
from dlx.errors import DlxError
from dlx.optim.schedulers import ScheduleContext

# Schedulers whose values do not depend on the run's length (the others plan over trainer.max_steps/epochs).
LENGTH_FREE = (ConstantLR, ExponentialLR, ReduceLROnPlateau)


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
    if not saved or (saved["total_steps"], saved["max_epochs"]) == (context.total_steps, context.max_epochs):
        return
    if all(s.scheduler is None or isinstance(s.scheduler, LENGTH_FREE) for s in optimization.setups):
        return
    raise DlxError(
        f"The run was planned for {saved['total_steps']} steps ({saved['max_epochs']} epochs) and its "
        f"learning-rate schedule follows that length; resuming with {context.total_steps} steps "
        f"({context.max_epochs} epochs) would break it. Resume without changing trainer.max_epochs / "
        "trainer.max_steps, or start a new run for a longer schedule."
    )


def _planned(optimization: Optimization, interval: str) -> bool:
    """Whether a scheduler stepped every ``interval`` plans its values over the run's length."""
    return any(
        s.scheduler is not None and s.interval == interval and not isinstance(s.scheduler, LENGTH_FREE)
        for s in optimization.setups
    )


def schedule_never_steps(context: ScheduleContext, optimization: Optimization) -> str | None:
    """A warning when a scheduler stepped per epoch sits in a run shorter than one epoch."""
    if (
        context.total_steps
        and context.total_steps < context.steps_per_epoch
        and _planned(optimization, "epoch")
    ):
        return (
            f"The learning-rate schedule steps once per epoch, but the run ends after {context.total_steps} "
            f"steps, before its first epoch ({context.steps_per_epoch} steps) ends: the lr will not change. "
            "Step it per optimizer step with `scheduler.interval=step`, or train whole epochs."
        )
    return None


def schedule_cut_short(context: ScheduleContext, optimization: Optimization, steps: int) -> str | None:
    """A warning when trainer.max_time ended a run long before the steps its schedule was planned over."""
    if _planned(optimization, "step") and context.total_steps and steps < 0.9 * context.total_steps:
        return (
            f"trainer.max_time ended the run at step {steps} of the {context.total_steps} its learning-rate "
            f"schedule was planned over, so the lr decayed only part of the way (now "
            f"{optimization.learning_rate():.3g}). For a full schedule in that time, set `trainer.max_steps` "
            f"(or `trainer.max_epochs`) to what fits: about {steps} steps here."
        )
    return None
