"""The training losses since the last log line, kept on the device (no host sync per step): their mean
and the throughput for the log, and a finiteness check for the divergence watch."""

from __future__ import annotations

import time

import torch


class LogWindow:
    """Each batch's loss and optimizer step since the last log line; carried through a checkpoint."""

    def __init__(self) -> None:
        self.losses: list[torch.Tensor] = []
        self.steps: list[int] = []  # the optimizer step each loss belongs to (several with accumulation)
        self.checked = 0  # how many of the losses the divergence watch has found finite
        self.checked_sum = 0.0  # their sum, which the watch computed anyway: the log line reuses it
        self.carried_sum, self.carried_count, self.samples = 0.0, 0, 0
        self.clock = time.perf_counter()

    def add(self, loss: torch.Tensor, samples: int, step: int) -> None:
        self.losses.append(loss)
        self.steps.append(step)
        self.samples += samples

    def unchecked(self) -> tuple[list[int], list[torch.Tensor]]:
        """The losses (and their steps) not yet checked by the divergence watch."""
        return self.steps[self.checked :], self.losses[self.checked :]

    def mark_checked(self, loss_sum: float) -> None:
        """The unchecked losses are finite and sum to ``loss_sum``."""
        self.checked = len(self.losses)
        self.checked_sum += loss_sum

    def _loss_sum(self) -> float:
        unchecked = self.losses[self.checked :]
        unchecked_sum = float(torch.stack(unchecked).float().sum()) if unchecked else 0.0
        return self.carried_sum + self.checked_sum + unchecked_sum

    def flush(self) -> dict[str, float]:
        now = time.perf_counter()
        count = self.carried_count + len(self.losses)
        record = {
            "train/loss": self._loss_sum() / max(count, 1),
            "samples_per_sec": self.samples / max(now - self.clock, 1e-9),
        }
        self.losses.clear()
        self.steps.clear()
        self.checked, self.checked_sum = 0, 0.0
        self.carried_sum, self.carried_count, self.samples, self.clock = 0.0, 0, 0, now
        return record

    def state_dict(self) -> dict[str, float]:
        return {"loss_sum": self._loss_sum(), "count": self.carried_count + len(self.losses)}

    def load_state_dict(self, state: dict[str, float]) -> None:
        # The loss mean goes on across a resume; the throughput starts again with this process's clock.
        self.carried_sum = float(state.get("loss_sum", 0.0))
        self.carried_count = int(state.get("count", 0))
