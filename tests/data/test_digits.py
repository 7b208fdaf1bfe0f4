import sys

import numpy as np
import pytest
import torch

from dlx.data.digits import DigitsData, read_digits
from dlx.errors import DlxError
from tests.data.checks import assert_loader_deterministic_and_resumable


def test_digits_loads_standardised_splits_and_metadata():
    module = DigitsData(batch_size=100, eval_batch_size=50).setup()
    sizes = {split: len(inputs) for split, (inputs, _) in module.splits.items()}
    assert sizes == {"train": 1257, "val": 270, "test": 270}
    train_inputs, train_targets = module.splits["train"]
    assert train_inputs.dtype == torch.float32 and train_inputs.shape[1:] == (1, 8, 8)
    assert train_targets.dtype == torch.int64 and set(train_targets.tolist()) == set(range(10))
    assert abs(train_inputs.mean().item()) < 1e-4 and abs(train_inputs.std().item() - 1) < 1e-2

    metadata = module.metadata()
    assert metadata.input_shape == [1, 8, 8] and metadata.num_outputs == metadata.num_classes == 10
    assert metadata.class_names == [str(digit) for digit in range(10)]
    assert len(metadata.mean) == len(metadata.std) == 1 and 0 < metadata.mean[0] < 1

    inputs, targets = next(iter(module.loader("val")))
    assert inputs.shape == (50, 1, 8, 8) and targets.shape == (50,)


def test_digits_split_depends_on_split_seed_not_on_training_seed():
    first, same_split = DigitsData(seed=1).setup(), DigitsData(seed=2).setup()
    assert torch.equal(first.splits["test"][0], same_split.splits["test"][0])
    other = DigitsData(split_seed=1).setup()
    assert not torch.equal(first.splits["test"][1], other.splits["test"][1])


def test_digits_loader_is_deterministic_and_resumable():
    assert_loader_deterministic_and_resumable(DigitsData(batch_size=256, seed=3))


def test_digits_loads_without_importing_scikit_learn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # importing it now fails
    assert len(DigitsData().setup().splits["train"][0]) == 1257


def test_bundled_file_matches_scikit_learns_loader():
    from sklearn.datasets import load_digits

    pixels, labels = read_digits()
    bunch = load_digits()
    assert np.array_equal(pixels, bunch.data) and np.array_equal(labels, bunch.target)


def test_digits_rejects_fractions_that_leave_nothing_to_train():
    with pytest.raises(DlxError, match="leaves nothing to train on"):
        DigitsData(val_fraction=0.5, test_fraction=0.5)
