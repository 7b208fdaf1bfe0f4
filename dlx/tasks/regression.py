"""Regression: MSE or L1 loss; MAE, RMSE and R2."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from dlx.errors import DlxError, did_you_mean
from dlx.tasks.base import Batch, Task

LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss, "huber": F.huber_loss}


class RegressionTask(Task):
    def __init__(self, model: nn.Module, loss: str = "mse"):
        super().__init__(model)
        from torchmetrics import MeanMetric
        from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError, R2Score

        if loss not in LOSSES:
            raise DlxError(
                f"task.loss '{loss}' is unknown.{did_you_mean(loss, LOSSES)} Choose one of: "
                f"{', '.join(LOSSES)} (e.g. `task.loss=l1`)."
            )
        self.loss_function = LOSSES[loss]
        self.metrics = nn.ModuleDict(
            {
                "loss": MeanMetric(),
                "mae": MeanAbsoluteError(),
                "rmse": MeanSquaredError(squared=False),
                "r2": R2Score(),
            }
        )

    def _predict(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.model(inputs).float().reshape(targets.shape)

    def training_step(self, batch: Batch) -> torch.Tensor:
        inputs, targets = batch
        return self.loss_function(self._predict(inputs, targets), targets.float())

    def validation_step(self, batch: Batch) -> None:
        inputs, targets = batch
        predictions = self._predict(inputs, targets)
        targets = targets.float()
        self.metrics["loss"].update(self.loss_function(predictions, targets), weight=len(targets))
        flat_predictions, flat_targets = predictions.reshape(-1), targets.reshape(-1)
        for name in ("mae", "rmse", "r2"):
            self.metrics[name].update(flat_predictions, flat_targets)

    def compute_metrics(self) -> dict[str, float]:
        results = {name: float(metric.compute()) for name, metric in self.metrics.items()}
        for metric in self.metrics.values():
            metric.reset()
        return results
