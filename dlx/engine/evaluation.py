"""One pass over a split without gradients: the validation of the trainer and `dlx eval` alike."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch

from dlx.engine.precision import Precision
from dlx.errors import DlxError, first_line
from dlx.tasks.base import Task


def move_batch(batch: tuple[torch.Tensor, ...], device: torch.device, channels_last: bool = False):
    inputs, *rest = (t if t.device == device else t.to(device, non_blocking=True) for t in batch)
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
    data_name: str = "the evaluated split",
) -> dict[str, float]:
    was_training = task.training
    task.eval()
    with explained_loader_errors(data_name):
        for index, batch in enumerate(batches):
            if max_batches is not None and index >= max_batches:
                break
            batch = move_batch(batch, device, channels_last)
            with precision.autocast():
                if len(batch[-1]) == 0:  # a stand-in batch of a multi-process run (see TensorLoader._share)
                    task(batch[0])
                else:
                    task.validation_step(batch)
    metrics = task.compute_metrics()
    task.train(was_training)
    return metrics


@contextlib.contextmanager
def explained_loader_errors(data_name: str) -> Iterator[None]:
    """Around a loop over a loader: a DataLoader worker that dies becomes an error naming the data set,
    not a trace. (A context around the loop, not a generator around the loader: nothing per batch.)"""
    try:
        yield
    except RuntimeError as error:
        if "DataLoader worker" not in str(error):
            raise
        raise DlxError(
            f"A data-loading worker of data set '{data_name}' died ({first_line(error)[:200]}). "
            "It was probably killed for memory or crashed in the data set's code. Set "
            "`data.num_workers=0` to load in the main process and see the data set's own error."
        ) from error
