"""Before training: the model once on two validation samples, so that an output the task cannot read, or a
forward pass that fails, is explained up front rather than after an epoch."""

from __future__ import annotations

import torch

from dlx.data.base import DataModule
from dlx.engine.evaluation import move_batch
from dlx.engine.precision import Precision
from dlx.tasks.base import Task


class ModelCheckFailed(Exception):
    """The model's forward pass on two validation samples failed; the error is its ``__cause__``."""


def check_model_output(
    task: Task, data: DataModule, device: torch.device, precision: Precision, channels_last: bool
) -> None:
    """For a task that feeds its model the data's inputs as they come and says what it reads
    (``check_output``): run the model in eval mode, without gradients, and let the task check the output."""
    if not _feeds_model_the_data_inputs(task):
        return
    inputs, _ = move_batch(data.example_batch("val", 2), device, channels_last)
    task.eval()
    try:
        with torch.no_grad(), precision.autocast():
            outputs = task.model(inputs)
    except Exception as error:
        raise ModelCheckFailed(str(error)) from error
    finally:
        task.train()
    if isinstance(outputs, torch.Tensor):
        task.check_output(outputs)


def _feeds_model_the_data_inputs(task: Task) -> bool:
    """Whether the task checks its model's output, and trains and predicts by calling the model on the data's
    inputs as they come: true for the built-in classifiers, not for a GAN (its generator takes noise) or a
    subclass that adapts the inputs in its own training_step, forward or train_batch."""
    kind = type(task)
    owner = next(cls for cls in kind.__mro__ if "check_output" in vars(cls))
    if owner is Task:
        return False
    return all(
        getattr(kind, name) is getattr(owner, name) for name in ("training_step", "forward", "train_batch")
    )
