"""scikit-learn's bundled 8x8 handwritten digits: the default data set, on disk with every install."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

from dlx.data.base import DataMetadata, DataModule
from dlx.data.splits import check_fractions, fraction_split, train_statistics

PIXEL_MAX = 16.0  # the digits' grey levels run from 0 to 16


def bundled_digits_file() -> Path | None:
    """Path of scikit-learn's ``digits.csv.gz``, found without importing scikit-learn (slow to import)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    return path if path.is_file() else None


def read_digits() -> tuple[np.ndarray, np.ndarray]:
    """Pixels (N, 64) in 0..16 and labels (N,) of the 1797 digits."""
    path = bundled_digits_file()
    if path is None:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        return bunch.data.astype(np.float32), bunch.target.astype(np.int64)
    table = np.loadtxt(path, delimiter=",", dtype=np.float32)
    return table[:, :-1], table[:, -1].astype(np.int64)


class DigitsData(DataModule):
    """1797 grey 8x8 digits (10 classes), standardised with the train split's mean and std."""

    def __init__(
        self,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        seed: int = 0,
        drop_last: bool = False,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 0,
    ):
        super().__init__(
            batch_size=batch_size, eval_batch_size=eval_batch_size, seed=seed, drop_last=drop_last
        )
        check_fractions(val_fraction, test_fraction)
        self.val_fraction, self.test_fraction, self.split_seed = val_fraction, test_fraction, split_seed
        self.mean: list[float] = []
        self.std: list[float] = []

    def load(self) -> None:
        pixels, labels = read_digits()
        inputs = torch.from_numpy(pixels).reshape(-1, 1, 8, 8) / PIXEL_MAX
        targets = torch.from_numpy(labels)
        indices = fraction_split(len(inputs), self.val_fraction, self.test_fraction, self.split_seed)
        mean, std = train_statistics(inputs[indices["train"]], dims=(0, 2, 3))
        self.mean, self.std = mean.tolist(), std.tolist()
        standardised = (inputs - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
        self.splits = {split: (standardised[index], targets[index]) for split, index in indices.items()}

    def metadata(self) -> DataMetadata:
        self.setup()
        return DataMetadata(
            input_shape=[1, 8, 8],
            num_outputs=10,
            num_classes=10,
            class_names=[str(digit) for digit in range(10)],
            mean=self.mean,
            std=self.std,
            # A raw 0..16 image becomes a model input as (pixels * scale - mean) / std.
            extra={"scale": 1.0 / PIXEL_MAX},
        )
