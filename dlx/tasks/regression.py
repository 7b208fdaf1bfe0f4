"""Regression: MSE or L1 loss; MAE, RMSE and R2."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from dlx.errors import DlxError, did_you_mean
from dlx.metrics import Mean, RegressionMetrics
from dlx.tasks.base import Batch, Task

LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss, "huber": F.huber_loss}


class RegressionTask(Task):
    reads_targets = "values"

    def __init__(self, model: nn.Module, loss: str = "mse"):
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

    def training_step(self, batch: Batch) -> torch.Tensor:
        inputs, targets = batch
        return self.loss_function(self._predict(inputs, targets), targets.float())

    def validation_step(self, batch: Batch) -> None:
        inputs, targets = batch
        predictions = self._predict(inputs, targets)
        targets = targets.float()
        self.loss_mean.update(self.loss_function(predictions, targets), weight=len(targets))
        self.metrics.update(predictions, targets)

    def metric_modes(self) -> dict[str, str]:
        return {"loss": "min", **self.metrics.modes()}

    def compute_metrics(self) -> dict[str, float]:
        results = {"loss": self.loss_mean.compute(), **self.metrics.compute()}
        self.loss_mean.reset()
        self.metrics.reset()
        return results
