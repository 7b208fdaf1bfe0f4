"""Notice a NaN/Inf loss without a host sync per step, and explain it."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from dlx.engine.log_window import LogWindow
from dlx.errors import TrainingDiverged


class DivergenceWatch:
    """``check()`` looks at the losses logged since the last check, with one host sync for all of them."""

    def __init__(self, enabled: bool, fp16: bool = False):
        self.enabled = enabled
        self.fp16 = fp16  # the explanation then suggests bf16
        self.last_finite: tuple[int, torch.Tensor] | None = None  # (step, loss): read only to explain

    def check(
        self,
        window: LogWindow,
        grad_norm: torch.Tensor | None,
        kept_checkpoint: Path | None,
        learning_rate: float | None = None,
    ) -> None:
        """Raise TrainingDiverged naming the first step whose loss was not finite."""
        steps, losses = window.unchecked()
        if not self.enabled or not losses:
            return
        stacked = torch.stack(losses).float()
        # A NaN or Inf anywhere makes the sum non-finite; only then is each loss looked at (a sum of
        # finite losses that overflows is the rare case that finds them all finite).
        loss_sum = float(stacked.sum())
        if not math.isfinite(loss_sum):
            bad = (~torch.isfinite(stacked)).nonzero()
            if len(bad):
                first_bad = int(bad[0])
                if first_bad > 0:
                    self.last_finite = (steps[first_bad - 1], losses[first_bad - 1])
                raise TrainingDiverged(
                    explain(
                        f"The training loss became {float(losses[first_bad])} at step {steps[first_bad]}.",
                        self.last_finite,
                        grad_norm,
                        kept_checkpoint,
                        learning_rate,
                        self.fp16,
                    )
                )
        self.last_finite = (steps[-1], losses[-1])
        window.mark_checked(loss_sum)


def explain(
    what: str,
    last_finite: tuple[int, torch.Tensor] | None,
    grad_norm: torch.Tensor | None,
    kept_checkpoint: Path | None,
    learning_rate: float | None = None,
    fp16: bool = False,
) -> str:
    lines = [what]
    if last_finite:
        lines.append(f"Last finite loss: {float(last_finite[1]):.6g} at step {last_finite[0]}.")
    if grad_norm is not None:
        lines.append(f"Last measured gradient norm: {float(grad_norm):.4g}.")
    if kept_checkpoint is not None and kept_checkpoint.exists():
        lines.append(f"The last good checkpoint is kept: {kept_checkpoint}.")
    at = f" (the run was at {learning_rate:.3g})" if learning_rate is not None else ""
    half = ", or `trainer.precision=bf16` instead of fp16" if fp16 else ""
    lines.append(
        f"Try a lower learning rate{at}: e.g. a tenth of your `optimizer.lr`, or gradient clipping "
        f"(`trainer.gradient_clip_val=1.0`){half}."
    )
    return " ".join(lines)
