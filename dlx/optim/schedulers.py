"""Learning-rate schedule builders over ``torch.optim.lr_scheduler``.

The trainer calls ``.step()`` once per optimizer step when ``interval`` is ``step`` and once per epoch when
it is ``epoch``; ``plateau`` instead gets ``.step(metric)`` after each validation. A schedule's length
(its horizon) is the run's optimizer steps, or its epochs, accordingly. Schedules scale each parameter
group's own initial lr, so the optimizer's per-module ``lr_multiplier`` ratios hold throughout.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from torch.optim import Optimizer, lr_scheduler

from dlx.errors import DlxError, did_you_mean

INTERVALS = ("step", "epoch")


@dataclass
class ScheduleContext:
    """What a schedule needs to know about the run, as the trainer computes it."""

    total_steps: int  # optimizer steps in the whole run
    steps_per_epoch: int  # optimizer steps per epoch
    max_epochs: int
    monitor_mode: str = "min"  # the trainer's monitored metric: "min" or "max"; plateau follows it

    def horizon(self, interval: str) -> int:
        """The number of ``.step()`` calls in the whole run for ``interval``."""
        interval = _require_choice("interval", interval, INTERVALS)
        horizon = self.total_steps if interval == "step" else self.max_epochs
        if horizon < 1:
            raise DlxError(
                "This learning-rate schedule is planned over the run's length, but the run has no "
                f"{interval}s to plan over (only trainer.max_time bounds it, or the limit is 0). Set "
                "`trainer.max_steps` or `trainer.max_epochs`, or use `scheduler=constant`."
            )
        return horizon


def _require_choice(key: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise DlxError(
            f"scheduler.{key} '{value}' is unknown.{did_you_mean(value, choices)} "
            f"Choose one of: {', '.join(choices)} (e.g. `scheduler.{key}={choices[0]}`)."
        )
    return value


def _require(condition: bool, key: str, rule: str, value: object, example: str) -> None:
    if not condition:
        raise DlxError(f"scheduler.{key} must be {rule}, got {value}. Type e.g. `scheduler.{key}={example}`.")


def constant(
    optimizer: Optimizer, context: ScheduleContext, interval: str = "epoch"
) -> lr_scheduler.LRScheduler:
    """Keep every group's lr as configured."""
    _require_choice("interval", interval, INTERVALS)  # needs no run length
    return lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)


def step(
    optimizer: Optimizer,
    context: ScheduleContext,
    interval: str = "epoch",
    step_size: int | None = None,
    gamma: float = 0.1,
) -> lr_scheduler.StepLR:
    """Multiply the lr by ``gamma`` every ``step_size`` intervals (None: a third of the run)."""
    horizon = context.horizon(interval)
    step_size = step_size if step_size is not None else max(1, horizon // 3)
    _require(step_size >= 1, "step_size", "at least 1", step_size, "30")
    _require(gamma > 0, "gamma", "positive", gamma, "0.1")
    return lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)


def multistep(
    optimizer: Optimizer,
    context: ScheduleContext,
    interval: str = "epoch",
    milestones: list[int] | None = None,
    gamma: float = 0.1,
) -> lr_scheduler.MultiStepLR:
    """Multiply the lr by ``gamma`` at each milestone (None: at 50% and 75% of the run)."""
    horizon = context.horizon(interval)
    if milestones is None:
        milestones = sorted({max(1, horizon // 2), max(1, horizon * 3 // 4)})
    milestones = list(milestones)
    increasing = all(a < b for a, b in pairwise(milestones))
    _require(
        bool(milestones) and milestones[0] >= 1 and increasing,
        "milestones",
        "a non-empty increasing list of positive counts",
        milestones,
        "[30,60,90]",
    )
    _require(gamma > 0, "gamma", "positive", gamma, "0.1")
    return lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=gamma)


def exponential(
    optimizer: Optimizer, context: ScheduleContext, interval: str = "epoch", gamma: float = 0.95
) -> lr_scheduler.ExponentialLR:
    """Multiply the lr by ``gamma`` after every interval."""
    _require_choice("interval", interval, INTERVALS)  # needs no run length
    _require(gamma > 0, "gamma", "positive", gamma, "0.95")
    return lr_scheduler.ExponentialLR(optimizer, gamma=gamma)


def cosine(
    optimizer: Optimizer, context: ScheduleContext, interval: str = "step", eta_min: float = 0.0
) -> lr_scheduler.CosineAnnealingLR:
    """Half a cosine from each group's lr down to ``eta_min`` at the end of the run."""
    horizon = context.horizon(interval)
    _require(eta_min >= 0, "eta_min", "zero or positive", eta_min, "0")
    return lr_scheduler.CosineAnnealingLR(optimizer, T_max=horizon, eta_min=eta_min)


def warmup_cosine(
    optimizer: Optimizer,
    context: ScheduleContext,
    interval: str = "step",
    warmup_steps: int | None = None,
    warmup_fraction: float = 0.05,
    start_factor: float = 0.01,
    eta_min: float = 0.0,
) -> lr_scheduler.LRScheduler:
    """Linear warm-up from ``start_factor`` x lr to lr, then cosine down to ``eta_min``.

    The warm-up lasts ``warmup_steps`` intervals, or ``warmup_fraction`` of the run when that is None.
    """
    horizon = context.horizon(interval)
    _require(0 <= warmup_fraction < 1, "warmup_fraction", "in [0, 1)", warmup_fraction, "0.05")
    if warmup_steps is not None:
        warmup = warmup_steps
    elif warmup_fraction > 0:
        # A requested fraction always warms up a little, yet leaves at least one step for the cosine.
        warmup = min(max(1, round(warmup_fraction * horizon)), horizon - 1)
    else:
        warmup = 0
    _require(
        0 <= warmup < horizon, "warmup_steps", f"in [0, {horizon}) for this run", warmup, str(horizon // 10)
    )
    _require(0 < start_factor <= 1, "start_factor", "in (0, 1]", start_factor, "0.01")
    _require(eta_min >= 0, "eta_min", "zero or positive", eta_min, "0")
    if warmup == 0:
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=horizon, eta_min=eta_min)
    warm_up = lr_scheduler.LinearLR(optimizer, start_factor=start_factor, end_factor=1.0, total_iters=warmup)
    anneal = lr_scheduler.CosineAnnealingLR(optimizer, T_max=horizon - warmup, eta_min=eta_min)
    return lr_scheduler.SequentialLR(optimizer, [warm_up, anneal], milestones=[warmup])


def onecycle(
    optimizer: Optimizer,
    context: ScheduleContext,
    interval: str = "step",
    max_lr: float | None = None,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    anneal_strategy: str = "cos",
    three_phase: bool = False,
    cycle_momentum: bool = True,
    base_momentum: float = 0.85,
    max_momentum: float = 0.95,
) -> lr_scheduler.OneCycleLR:
    """One-cycle policy: up to ``max_lr`` (None: the optimizer's lr) over ``pct_start``, then far down."""
    horizon = context.horizon(interval)
    _require(max_lr is None or max_lr > 0, "max_lr", "positive or null", max_lr, "0.1")
    _require(0 < pct_start < 1, "pct_start", "in (0, 1)", pct_start, "0.3")
    _require(div_factor > 0, "div_factor", "positive", div_factor, "25")
    _require(final_div_factor > 0, "final_div_factor", "positive", final_div_factor, "1e4")
    anneal_strategy = _require_choice("anneal_strategy", anneal_strategy, ("cos", "linear"))
    # One max_lr per group keeps the optimizer's lr_multiplier ratios (a single float would erase them).
    peak_lrs = [
        max_lr * group.get("lr_multiplier", 1.0)
        if max_lr is not None
        else group.get("initial_lr", group["lr"])
        for group in optimizer.param_groups
    ]
    return lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=peak_lrs,
        total_steps=horizon,
        pct_start=pct_start,
        anneal_strategy=anneal_strategy,
        cycle_momentum=cycle_momentum,
        base_momentum=base_momentum,
        max_momentum=max_momentum,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
        three_phase=three_phase,
    )


def plateau(
    optimizer: Optimizer,
    context: ScheduleContext,
    interval: str = "epoch",
    mode: str | None = None,
    factor: float = 0.1,
    patience: int = 10,
    threshold: float = 1e-4,
    threshold_mode: str = "rel",
    cooldown: int = 0,
    min_lr: float = 0.0,
) -> lr_scheduler.ReduceLROnPlateau:
    """Multiply the lr by ``factor`` when the monitored metric stalls for ``patience`` validations.

    ``mode`` None follows the trainer's monitor mode; ``interval`` is ignored (it steps per validation).
    """
    mode = _require_choice("mode", mode if mode is not None else context.monitor_mode, ("min", "max"))
    threshold_mode = _require_choice("threshold_mode", threshold_mode, ("rel", "abs"))
    _require(0 < factor < 1, "factor", "in (0, 1)", factor, "0.1")
    _require(patience >= 0, "patience", "zero or positive", patience, "10")
    _require(cooldown >= 0, "cooldown", "zero or positive", cooldown, "0")
    _require(min_lr >= 0, "min_lr", "zero or positive", min_lr, "0")
    return lr_scheduler.ReduceLROnPlateau(
        optimizer,
        mode=mode,
        factor=factor,
        patience=patience,
        threshold=threshold,
        threshold_mode=threshold_mode,
        cooldown=cooldown,
        min_lr=min_lr,
    )
