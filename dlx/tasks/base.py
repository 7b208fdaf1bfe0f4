"""The task contract the trainer calls; a new model family adds a task, never a trainer branch."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

if TYPE_CHECKING:
    from dlx.engine.optimization import Optimization, OptimizerSetup

Batch = tuple[torch.Tensor, torch.Tensor]


class Task(nn.Module):
    """Wraps the model; subclasses define the loss and the metrics.

    Override ``configure_optimizers`` and ``train_batch`` for several optimizers or a custom step
    (a GAN's generator and discriminator): the trainer only calls these two. With several optimizers,
    ``optimization.backward(loss, i)`` puts the gradients of ``loss`` on optimizer i's parameters only,
    and ``optimization.step(i)`` steps it and clears them; every gradient is cleared before each batch
    (each accumulation window). Modules the task holds beside ``model`` are checkpointed with it.
    """

    # The data targets this task trains on (DataMetadata.targets), checked before anything is built;
    # None: any.
    reads_targets: ClassVar[str | None] = None

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    @property
    def model(self) -> nn.Module:
        # nn.Module finds a submodule by __getattr__, which Python calls only after the plain lookup
        # failed with an AttributeError: 0.5-1% of a small model's step here (scripts/bench).
        try:
            return self._modules["model"]
        except KeyError:
            raise AttributeError("model") from None  # Python then asks nn.Module.__getattr__, which says so

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model(inputs)

    def own_state_dict(self) -> dict[str, torch.Tensor]:
        """The task's parameters and buffers beyond its model (a GAN's discriminator): checkpoints hold
        them beside the model's weights, so a resumed or evaluated run has them too."""
        return {key: value for key, value in self.state_dict().items() if not key.startswith("model.")}

    def load_own_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing, unexpected = self.load_state_dict(state, strict=False)
        missing = [key for key in missing if not key.startswith("model.")]
        if missing or unexpected:
            raise RuntimeError(f"missing keys {missing}, unexpected keys {unexpected}")

    def check_output(self, outputs: torch.Tensor) -> None:
        """Refuse (DlxError) a model whose outputs for a few validation samples cannot be what this task
        reads; called once before training. Shapes PyTorch's losses accept yet misread (12 scores for 10
        classes) would otherwise train without a word."""

    # -- what a batch means -----------------------------------------------------------------------
    def training_step(self, batch: Batch) -> torch.Tensor:
        """Return the scalar training loss for one batch."""
        raise NotImplementedError

    def validation_step(self, batch: Batch) -> None:
        """Update the validation metrics (the loss among them) with one batch."""
        raise NotImplementedError

    def compute_metrics(self) -> dict[str, float]:
        """Return the metrics accumulated since the last call (un-prefixed: ``loss``, ``acc``) and reset."""
        raise NotImplementedError

    def metric_modes(self) -> dict[str, str]:
        """The metrics ``compute_metrics`` reports, each with "min" or "max" (which is better), so that
        ``trainer.monitor`` and ``trainer.mode`` are checked before training; empty: checked at the
        first validation instead. Override it beside ``compute_metrics``."""
        return {}

    def declared_metric_modes(self) -> dict[str, str]:
        """``metric_modes()`` if it describes this task's ``compute_metrics``: a subclass that overrides
        only ``compute_metrics`` (to add a metric) may report more than its parent declared."""

        def owner(name: str) -> type:
            return next(cls for cls in type(self).__mro__ if name in vars(cls))

        return self.metric_modes() if owner("metric_modes") is owner("compute_metrics") else {}

    def save_report(self, folder: Path, class_names: list[str] | None = None) -> dict[str, Any]:
        """Write evaluation artefacts (plots) into ``folder`` after ``dlx eval``; return extra results."""
        return {}

    # -- optimisation hooks -----------------------------------------------------------------------
    def configure_optimizers(
        self,
        build_optimizer: Callable[[nn.Module], torch.optim.Optimizer],
        attach_scheduler: Callable[[torch.optim.Optimizer], OptimizerSetup],
    ) -> list[OptimizerSetup]:
        """Return one setup per optimizer; by default the config's optimizer and scheduler for the model."""
        return [attach_scheduler(build_optimizer(self.model))]

    def train_batch(self, batch: Batch, optimization: Optimization) -> torch.Tensor:
        """One training batch: loss, backward, and an optimizer step when accumulation allows it."""
        with optimization.autocast():
            loss = self.training_step(batch)
        optimization.backward(loss)
        optimization.step()
        return loss.detach()
