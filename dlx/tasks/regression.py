"""Regression: MSE or L1 loss; MAE, RMSE and R2."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from dlx.errors import DlxError, did_you_mean
from dlx.metrics import Mean, RegressionMetrics
from dlx.tasks.base import Batch, Task

LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss, "huber": F.huber_loss}


class StandardizedOutput(nn.Module):
    """``model`` predicts targets standardised to mean 0 and std 1; this maps them back to their units.

    Part of the model, so checkpoints, ``dlx predict`` and exported models give targets in their own
    units. Without it a target of mean 150 leaves the output layer (initialised around 0) hundreds of
    optimizer steps from the right scale: sklearn's diabetes data had R2 -0.14 after 1,000 steps.
    """

    def __init__(self, model: nn.Module, mean: list[float], std: list[float]):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model(inputs) * self.std + self.mean

    def standardized(self, values: torch.Tensor) -> torch.Tensor:
        return (values - self.mean) / self.std


class RegressionTask(Task):
    """The loss is computed on standardised targets when the data gives their mean and std (its value is
    then in units of the target's std); MAE, RMSE and R2 are in the target's own units."""

    reads_targets = "values"

    def __init__(
        self,
        model: nn.Module,
        loss: str = "mse",
        target_mean: list[float] | None = None,
        target_std: list[float] | None = None,
    ):
        if target_mean is not None and target_std is not None:
            model = StandardizedOutput(model, target_mean, target_std)
        super().__init__(model)
        if loss not in LOSSES:
            raise DlxError(
                f"task.loss '{loss}' is unknown.{did_you_mean(loss, LOSSES)} Choose one of: "
                f"{', '.join(LOSSES)} (e.g. `task.loss=l1`)."
            )
        self.loss_function = LOSSES[loss]
        self.loss_mean = Mean()
        self.metrics = RegressionMetrics()

    def _predict(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.model(inputs).float().reshape(targets.shape)

    def _loss(self, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        model = self.model
        if isinstance(model, StandardizedOutput):
            predictions, targets = model.standardized(predictions), model.standardized(targets)
        return self.loss_function(predictions, targets)

    def training_step(self, batch: Batch) -> torch.Tensor:
        inputs, targets = batch
        return self._loss(self._predict(inputs, targets), targets.float())

    def validation_step(self, batch: Batch) -> None:
        inputs, targets = batch
        predictions = self._predict(inputs, targets)
        targets = targets.float()
        self.loss_mean.update(self._loss(predictions, targets), weight=len(targets))
        self.metrics.update(predictions, targets)

    def metric_modes(self) -> dict[str, str]:
        return {"loss": "min", **self.metrics.modes()}

    def compute_metrics(self) -> dict[str, float]:
        results = {"loss": self.loss_mean.compute(), **self.metrics.compute()}
        self.loss_mean.reset()
        self.metrics.reset()
        return results
