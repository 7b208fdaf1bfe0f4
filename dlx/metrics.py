"""Validation metrics kept as sufficient statistics (sums, counts, a confusion matrix), so they stream
over batches and add up exactly across processes: ``compute()`` sums them over all ranks when
torch.distributed is running, as torchmetrics' sync does.

Why not torchmetrics: importing it costs 5 s or more here (its ``__init__`` imports torchvision's
models, torch._dynamo, scipy.signal and transformers), longer than training the default recipe. The
few statistics the tasks need are below; tests/test_metrics.py checks each value against torchmetrics.
"""

from __future__ import annotations

import torch


class StreamingMetric:
    """States are float64/int64 tensors created on the first update's device; ``compute()`` reads them
    summed over processes and ``reset()`` clears them."""

    def __init__(self) -> None:
        self.states: dict[str, torch.Tensor] = {}

    def _add(self, name: str, value: torch.Tensor) -> None:
        if name in self.states:
            self.states[name] += value
        else:
            self.states[name] = value.clone()

    def _totals(self) -> dict[str, torch.Tensor]:
        import torch.distributed as dist

        if not self.states or not (dist.is_available() and dist.is_initialized()):
            return self.states
        totals = {}
        for name, value in self.states.items():
            value = value.clone()
            dist.all_reduce(value)
            totals[name] = value
        return totals

    def reset(self) -> None:
        self.states = {}


class Mean(StreamingMetric):
    """A weighted mean, e.g. of per-batch losses weighted by batch size."""

    def update(self, value: torch.Tensor, weight: float = 1.0) -> None:
        value = value.detach().double()
        self._add("sum", value.sum() * weight if value.dim() == 0 else value.sum())
        count = torch.tensor(float(weight) if value.dim() == 0 else value.numel(), dtype=torch.float64)
        self._add("weight", count.to(value.device))

    def compute(self) -> float:
        totals = self._totals()
        if not totals:
            return float("nan")
        return float(totals["sum"] / totals["weight"])


class ClassificationMetrics(StreamingMetric):
    """Accuracy, macro-F1, top-k accuracy and the confusion matrix of multiclass logits."""

    def __init__(self, num_classes: int, top_k: int | None = None):
        super().__init__()
        self.num_classes, self.top_k = num_classes, top_k

    def modes(self) -> dict[str, str]:
        """What ``compute`` reports, each with the direction that is better."""
        return {"acc": "max", "f1": "max", **({f"top{self.top_k}": "max"} if self.top_k else {})}

    def update(self, logits: torch.Tensor, targets: torch.Tensor) -> None:
        logits, targets = logits.detach(), targets.detach().long()
        classes = self.num_classes
        predictions = logits.argmax(dim=1)
        cells = torch.bincount(targets * classes + predictions, minlength=classes * classes)
        self._add("confusion", cells.reshape(classes, classes))
        if self.top_k:
            top = logits.topk(self.top_k, dim=1).indices
            self._add("top_k_correct", (top == targets[:, None]).any(dim=1).sum())

    def compute(self) -> dict[str, float]:
        totals = self._totals()
        if not totals:
            return {"acc": float("nan"), "f1": float("nan")}
        confusion = totals["confusion"].double()  # rows: true class, columns: predicted
        total = confusion.sum()
        true_positive = confusion.diagonal()
        false_positive = confusion.sum(dim=0) - true_positive
        false_negative = confusion.sum(dim=1) - true_positive
        present = (true_positive + false_positive + false_negative) > 0  # as torchmetrics' macro average
        f1 = 2 * true_positive / (2 * true_positive + false_positive + false_negative).clamp(min=1)
        results = {
            "acc": float(true_positive.sum() / total),
            "f1": float(f1[present].mean()) if bool(present.any()) else 0.0,
        }
        if self.top_k:
            results[f"top{self.top_k}"] = float(totals["top_k_correct"] / total)
        return results

    def confusion_matrix(self) -> torch.Tensor:
        totals = self._totals()
        if not totals:
            return torch.zeros(self.num_classes, self.num_classes, dtype=torch.long)
        return totals["confusion"].cpu()


class RegressionMetrics(StreamingMetric):
    """Mean absolute error, root mean squared error and R^2 over all predicted values."""

    def modes(self) -> dict[str, str]:
        """What ``compute`` reports, each with the direction that is better."""
        return {"mae": "min", "rmse": "min", "r2": "max"}

    def update(self, predictions: torch.Tensor, targets: torch.Tensor) -> None:
        predictions, targets = (
            predictions.detach().double().reshape(-1),
            targets.detach().double().reshape(-1),
        )
        error = predictions - targets
        self._add("abs_error", error.abs().sum())
        self._add("squared_error", error.square().sum())
        self._add("target_sum", targets.sum())
        self._add("target_squared_sum", targets.square().sum())
        self._add("count", torch.tensor(float(targets.numel()), dtype=torch.float64, device=targets.device))

    def compute(self) -> dict[str, float]:
        totals = self._totals()
        if not totals:
            return {"mae": float("nan"), "rmse": float("nan"), "r2": float("nan")}
        count = totals["count"]
        total_variance = totals["target_squared_sum"] - totals["target_sum"].square() / count
        return {
            "mae": float(totals["abs_error"] / count),
            "rmse": float((totals["squared_error"] / count).sqrt()),
            "r2": float(1 - totals["squared_error"] / total_variance),
        }
