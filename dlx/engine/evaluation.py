"""One pass over a split without gradients: the validation of the trainer and `dlx eval` alike."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from dlx.engine.precision import Precision
from dlx.tasks.base import Task


def move_batch(batch: tuple[torch.Tensor, ...], device: torch.device, channels_last: bool = False):
    inputs, *rest = (t.to(device, non_blocking=True) for t in batch)
    if channels_last and inputs.dim() == 4:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    return (inputs, *rest)


@torch.inference_mode()
def evaluate(
    task: Task,
    batches: Iterable,
    device: torch.device,
    precision: Precision,
    max_batches: int | None = None,
    channels_last: bool = False,
) -> dict[str, float]:
    was_training = task.training
    task.eval()
    for index, batch in enumerate(batches):
        if max_batches is not None and index >= max_batches:
            break
        with precision.autocast():
            task.validation_step(move_batch(batch, device, channels_last))
    metrics = task.compute_metrics()
    task.train(was_training)
    return metrics
