"""Classification: cross-entropy, accuracy, top-5 accuracy, macro-F1, and a confusion matrix at eval."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from dlx.errors import DlxError
from dlx.metrics import ClassificationMetrics, Mean
from dlx.tasks.base import Batch, Task


class ClassificationTask(Task):
    reads_targets = "classes"

    def __init__(self, model: nn.Module, num_classes: int, label_smoothing: float = 0.0):
        super().__init__(model)
        if num_classes is None:
            raise DlxError(
                "task=classification needs the number of classes, and the data gave none "
                "(its metadata() has num_classes=None). Give it in the data module's metadata(), or type "
                "`task.num_classes=10`; for a continuous target use `task=regression`."
            )
        if num_classes < 2:
            raise DlxError(
                f"task.num_classes must be at least 2, got {num_classes}. For one continuous "
                "target use `task=regression`."
            )
        if not 0.0 <= label_smoothing < 1.0:
            raise DlxError(
                f"task.label_smoothing must be in [0, 1), got {label_smoothing}. Type e.g. "
                "`task.label_smoothing=0.1`."
            )
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.loss_mean = Mean()
        self.metrics = ClassificationMetrics(num_classes, top_k=5 if num_classes > 5 else None)

    def check_output(self, outputs: torch.Tensor) -> None:
        if outputs.ndim != 2 or outputs.shape[1] != self.num_classes:
            raise DlxError(
                f"The model gives outputs of shape {list(outputs.shape)} for a batch of {len(outputs)}, but "
                f"task=classification reads one score per class: [{len(outputs)}, {self.num_classes}] for "
                f"the data's {self.num_classes} classes. Make the model's last layer give num_outputs "
                "scores (`num_outputs: ${data.num_outputs}` in its config)."
            )

    def training_step(self, batch: Batch) -> torch.Tensor:
        inputs, targets = batch
        return F.cross_entropy(self.model(inputs), targets, label_smoothing=self.label_smoothing)

    def validation_step(self, batch: Batch) -> None:
        inputs, targets = batch
        logits = self.model(inputs).float()
        loss = F.cross_entropy(logits, targets, label_smoothing=self.label_smoothing)
        self.loss_mean.update(loss, weight=len(targets))
        self.metrics.update(logits, targets)

    def metric_modes(self) -> dict[str, str]:
        return {"loss": "min", **self.metrics.modes()}

    def compute_metrics(self) -> dict[str, float]:
        results = {"loss": self.loss_mean.compute(), **self.metrics.compute()}
        self._last_confusion = self.metrics.confusion_matrix()
        self.loss_mean.reset()
        self.metrics.reset()
        return results

    def save_report(self, folder: Path, class_names: list[str] | None = None) -> dict[str, Any]:
        from dlx.loggers.plots import plot_confusion_matrix

        matrix = self._last_confusion
        names = class_names or [str(i) for i in range(self.num_classes)]
        plot_confusion_matrix(matrix.numpy(), names, folder / "confusion_matrix.png")
        return {"confusion_matrix": matrix.tolist(), "class_names": names}
