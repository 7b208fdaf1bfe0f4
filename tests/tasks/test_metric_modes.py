"""Task.metric_modes: what each built-in task declares is what its compute_metrics reports, and a
subclass that adds a metric is not held to its parent's list."""

import pytest
import torch
from torch import nn

from dlx.engine.monitor import check_monitor
from dlx.tasks.classification import ClassificationTask
from dlx.tasks.language_modeling import LanguageModelingTask
from dlx.tasks.regression import RegressionTask


def validated(task, batch):
    task.validation_step(batch)
    return task.compute_metrics()


@pytest.mark.parametrize(
    "task, batch",
    [
        (ClassificationTask(nn.Linear(4, 10), num_classes=10), (torch.randn(8, 4), torch.arange(8))),
        (ClassificationTask(nn.Linear(4, 3), num_classes=3), (torch.randn(8, 4), torch.arange(8) % 3)),
        (RegressionTask(nn.Linear(4, 1)), (torch.randn(8, 4), torch.randn(8, 1))),
        (LanguageModelingTask(nn.Embedding(5, 5)), (torch.randint(5, (2, 3)), torch.randint(5, (2, 3)))),
    ],
    ids=["classification, 10 classes", "classification, 3 classes", "regression", "language modeling"],
)
def test_declared_metrics_are_the_reported_ones(task, batch):
    assert set(task.declared_metric_modes()) == set(validated(task, batch))


class WithBalancedAccuracy(ClassificationTask):
    def compute_metrics(self):
        metrics = super().compute_metrics()
        return {**metrics, "balanced": metrics["acc"]}


def test_a_subclass_that_adds_a_metric_is_checked_at_validation_instead():
    task = WithBalancedAccuracy(nn.Linear(4, 3), num_classes=3)
    assert task.declared_metric_modes() == {}, "its parent's list would refuse val/balanced"
    metrics = validated(task, (torch.randn(8, 4), torch.arange(8) % 3))
    check_monitor("val/balanced", "max", dict.fromkeys(f"val/{key}" for key in metrics))
