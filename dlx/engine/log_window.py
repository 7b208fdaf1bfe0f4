"""What the trainer logs every N steps: the mean training loss and throughput since the last log line."""

from __future__ import annotations

import time

import torch


class LogWindow:
    """Loss and sample counts since the last log line; carried through a checkpoint for exact logs."""

    def __init__(self) -> None:
        self.losses: list[torch.Tensor] = []  # on the device: no host sync per step
        self.carried_sum, self.carried_count, self.samples = 0.0, 0, 0
        self.clock = time.perf_counter()

    def add(self, loss: torch.Tensor, samples: int) -> None:
        self.losses.append(loss)
        self.samples += samples

    def _loss_sum(self) -> float:
        return self.carried_sum + (float(torch.stack(self.losses).float().sum()) if self.losses else 0.0)

    def flush(self) -> dict[str, float]:
        now = time.perf_counter()
        count = self.carried_count + len(self.losses)
        record = {
            "train/loss": self._loss_sum() / max(count, 1),
            "samples_per_sec": self.samples / max(now - self.clock, 1e-9),
        }
        self.losses.clear()
        self.carried_sum, self.carried_count, self.samples, self.clock = 0.0, 0, 0, now
        return record

    def state_dict(self) -> dict[str, float]:
        return {
            "loss_sum": self._loss_sum(),
            "count": self.carried_count + len(self.losses),
            "samples": self.samples,
        }

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.carried_sum = float(state.get("loss_sum", 0.0))
        self.carried_count = int(state.get("count", 0))
        self.samples = int(state.get("samples", 0))
