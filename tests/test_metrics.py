"""dlx's streaming metrics against torchmetrics (a test-only dependency), over several batches."""

import pytest
import torch
import torchmetrics
from torchmetrics import classification, regression

from dlx.metrics import ClassificationMetrics, Mean, RegressionMetrics


def batches(seed: int, classes: int, count: int = 4):
    generator = torch.Generator().manual_seed(seed)
    for size in torch.randint(1, 40, (count,), generator=generator).tolist():
        yield (
            torch.randn(size, classes, generator=generator),
            torch.randint(0, classes, (size,), generator=generator),
        )


@pytest.mark.parametrize("classes, seed", [(2, 0), (3, 1), (10, 2), (10, 3)])
def test_classification_matches_torchmetrics(classes, seed):
    ours = ClassificationMetrics(classes, top_k=5 if classes > 5 else None)
    accuracy = classification.MulticlassAccuracy(classes, average="micro")
    f1 = classification.MulticlassF1Score(classes, average="macro")
    top5 = classification.MulticlassAccuracy(classes, top_k=5, average="micro") if classes > 5 else None
    confusion = classification.MulticlassConfusionMatrix(classes)
    for logits, targets in batches(seed, classes):
        ours.update(logits, targets)
        for metric in filter(None, (accuracy, f1, top5, confusion)):
            metric.update(logits, targets)
    results = ours.compute()
    assert results["acc"] == pytest.approx(float(accuracy.compute()), abs=1e-6)
    assert results["f1"] == pytest.approx(float(f1.compute()), abs=1e-6)
    if top5 is not None:
        assert results["top5"] == pytest.approx(float(top5.compute()), abs=1e-6)
    assert torch.equal(ours.confusion_matrix(), confusion.compute())


def test_macro_f1_skips_classes_absent_from_targets_and_predictions():
    ours, theirs = ClassificationMetrics(4), classification.MulticlassF1Score(4, average="macro")
    logits = torch.tensor([[5.0, 0, 0, 0], [0, 5.0, 0, 0], [5.0, 0, 0, 0]])
    targets = torch.tensor([0, 1, 1])
    ours.update(logits, targets)
    theirs.update(logits, targets)
    assert ours.compute()["f1"] == pytest.approx(float(theirs.compute()))


def test_regression_matches_torchmetrics():
    ours = RegressionMetrics()
    mae, rmse, r2 = (
        regression.MeanAbsoluteError(),
        regression.MeanSquaredError(squared=False),
        regression.R2Score(),
    )
    generator = torch.Generator().manual_seed(0)
    for size in (5, 17, 3):
        targets = torch.randn(size, generator=generator)
        predictions = targets + 0.3 * torch.randn(size, generator=generator)
        ours.update(predictions, targets)
        for metric in (mae, rmse, r2):
            metric.update(predictions, targets)
    results = ours.compute()
    assert results["mae"] == pytest.approx(float(mae.compute()), rel=1e-5)
    assert results["rmse"] == pytest.approx(float(rmse.compute()), rel=1e-5)
    assert results["r2"] == pytest.approx(float(r2.compute()), rel=1e-5)


def test_weighted_mean_and_reset():
    ours, theirs = Mean(), torchmetrics.MeanMetric()
    for value, weight in ((1.0, 3), (4.0, 1), (2.5, 10)):
        ours.update(torch.tensor(value), weight=weight)
        theirs.update(torch.tensor(value), weight=weight)
    assert ours.compute() == pytest.approx(float(theirs.compute()))
    ours.reset()
    ours.update(torch.tensor(7.0), weight=2)
    assert ours.compute() == 7.0
