"""Notice a NaN/Inf loss without a host sync per step, and explain it."""

from __future__ import annotations

from pathlib import Path

import torch

from dlx.errors import TrainingDiverged


class DivergenceWatch:
    """Collects each step's loss (on the device); ``check()`` syncs once for all of them."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.unchecked: list[tuple[int, torch.Tensor]] = []
        self.last_finite: tuple[int, float] | None = None

    def record(self, step: int, loss: torch.Tensor) -> None:
        if self.enabled:
            self.unchecked.append((step, loss))

    def check(self, grad_norm: torch.Tensor | None, kept_checkpoint: Path | None) -> None:
        """Raise TrainingDiverged naming the first step whose loss was not finite."""
        pending, self.unchecked = self.unchecked, []
        if not pending:
            return
        finite = torch.isfinite(torch.stack([loss.float() for _, loss in pending]))
        if bool(finite.all()):
            self.last_finite = (pending[-1][0], float(pending[-1][1]))
            return
        first_bad = int((~finite).nonzero()[0])
        if first_bad > 0:
            self.last_finite = (pending[first_bad - 1][0], float(pending[first_bad - 1][1]))
        step, loss = pending[first_bad][0], float(pending[first_bad][1])
        raise TrainingDiverged(
            explain(
                f"The training loss became {loss} at step {step}.",
                self.last_finite,
                grad_norm,
                kept_checkpoint,
            )
        )


def explain(
    what: str,
    last_finite: tuple[int, float] | None,
    grad_norm: torch.Tensor | None,
    kept_checkpoint: Path | None,
) -> str:
    lines = [what]
    if last_finite:
        lines.append(f"Last finite loss: {last_finite[1]:.6g} at step {last_finite[0]}.")
    if grad_norm is not None:
        lines.append(f"Last measured gradient norm: {float(grad_norm):.4g}.")
    if kept_checkpoint is not None and kept_checkpoint.exists():
        lines.append(f"The last good checkpoint is kept: {kept_checkpoint}.")
    lines.append(
        "Try a lower learning rate (e.g. `optimizer.lr=` a tenth of now), gradient clipping "
        "(`trainer.gradient_clip_val=1.0`), or `trainer.precision=bf16` instead of fp16."
    )
    return " ".join(lines)
