"""Small generated 2-D classification problems: quick to train, easy to plot, no files needed."""

from __future__ import annotations

import math

import torch

from dlx.data.base import DataMetadata, DataModule
from dlx.data.splits import check_fractions, fraction_split
from dlx.errors import DlxError


def check_points(n_samples: int, noise: float, minimum: int) -> None:
    if n_samples < minimum:
        raise DlxError(
            f"data.n_samples={n_samples} is too few; use at least {minimum}, e.g. `data.n_samples=1000`."
        )
    if noise < 0:
        raise DlxError(f"data.noise={noise} must not be negative. Type e.g. `data.noise=0.2`.")


class PointCloudData(DataModule):
    """Shared loading for generated point sets: ``generate()`` draws them, the splits are by fraction."""

    num_classes: int

    def __init__(
        self,
        batch_size: int,
        eval_batch_size: int | None,
        seed: int,
        drop_last: bool,
        generator_seed: int,
        val_fraction: float,
        test_fraction: float,
        split_seed: int,
    ):
        super().__init__(
            batch_size=batch_size, eval_batch_size=eval_batch_size, seed=seed, drop_last=drop_last
        )
        check_fractions(val_fraction, test_fraction)
        self.generator_seed = generator_seed
        self.val_fraction, self.test_fraction, self.split_seed = val_fraction, test_fraction, split_seed

    def generate(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Points (N, 2) float32 and labels (N,) int64."""
        raise NotImplementedError

    def load(self) -> None:
        points, labels = self.generate(torch.Generator().manual_seed(self.generator_seed))
        indices = fraction_split(len(points), self.val_fraction, self.test_fraction, self.split_seed)
        self.splits = {split: (points[index], labels[index]) for split, index in indices.items()}

    def metadata(self) -> DataMetadata:
        return DataMetadata(
            input_shape=[2],
            num_outputs=self.num_classes,
            num_classes=self.num_classes,
            class_names=[str(label) for label in range(self.num_classes)],
        )


class XorData(PointCloudData):
    """Four Gaussian blobs centred on (±1, ±1); a blob's label is 1 when its centre's signs differ.

    Labels follow the blob, not the noisy point, so a large ``noise`` makes the classes overlap.
    """

    num_classes = 2

    def __init__(
        self,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        seed: int = 0,
        drop_last: bool = False,
        n_samples: int = 1000,
        noise: float = 0.5,
        generator_seed: int = 0,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 0,
    ):
        super().__init__(
            batch_size,
            eval_batch_size,
            seed,
            drop_last,
            generator_seed,
            val_fraction,
            test_fraction,
            split_seed,
        )
        check_points(n_samples, noise, minimum=4)
        self.n_samples, self.noise = n_samples, noise

    def generate(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        signs = torch.randint(0, 2, (self.n_samples, 2), generator=generator) * 2 - 1
        points = signs.float() + self.noise * torch.randn(self.n_samples, 2, generator=generator)
        labels = (signs[:, 0] != signs[:, 1]).long()
        return points, labels


class SpiralsData(PointCloudData):
    """``n_classes`` interleaved spiral arms around the origin, one class per arm."""

    def __init__(
        self,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        seed: int = 0,
        drop_last: bool = False,
        n_samples: int = 1500,
        n_classes: int = 3,
        noise: float = 0.2,
        generator_seed: int = 0,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 0,
    ):
        super().__init__(
            batch_size,
            eval_batch_size,
            seed,
            drop_last,
            generator_seed,
            val_fraction,
            test_fraction,
            split_seed,
        )
        if n_classes < 2:
            raise DlxError(f"data.n_classes={n_classes} gives no classification problem; use at least 2.")
        check_points(n_samples, noise, minimum=n_classes)
        self.n_samples, self.n_classes, self.noise = n_samples, n_classes, noise
        self.num_classes = n_classes

    def generate(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.arange(self.n_samples) % self.n_classes
        # Each point sits at a random distance along its arm, which turns 4 radians (about 230 degrees).
        radius = torch.rand(self.n_samples, generator=generator)
        arm_start = labels * (2 * math.pi / self.n_classes)
        angle = arm_start + 4.0 * radius + self.noise * torch.randn(self.n_samples, generator=generator)
        points = torch.stack([radius * torch.sin(angle), radius * torch.cos(angle)], dim=1)
        return points.float(), labels
