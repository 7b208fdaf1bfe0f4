"""Stop when the monitored metric has not improved for ``patience`` validation checks."""

from __future__ import annotations

from typing import Any

from dlx.engine.monitor import is_improvement


class EarlyStopping:
    def __init__(self, mode: str, patience: int | None, min_delta: float = 0.0):
        self.mode, self.patience, self.min_delta = mode, patience, abs(min_delta)
        self.best: float | None = None
        self.checks_without_improvement = 0

    def update(self, score: float) -> bool:
        """Record one validation check's score; return True when training should stop."""
        if is_improvement(score, self.best, self.mode, self.min_delta):
            self.best = score
            self.checks_without_improvement = 0
        else:
            self.checks_without_improvement += 1
        return self.patience is not None and self.checks_without_improvement >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "checks_without_improvement": self.checks_without_improvement}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state["best"]
        self.checks_without_improvement = state["checks_without_improvement"]
