"""Seeded train/val/test index splits and train-split statistics shared by the data modules."""

from __future__ import annotations

import torch

from dlx.errors import DlxError


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Raise a DlxError unless both fractions lie in [0, 1) and leave something to train on."""
    for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise DlxError(
                f"data.{key}={value} is not a fraction in [0, 1). Type e.g. `data.{key}=0.15` "
                "(the share of samples held out for that split)."
            )
    if val_fraction + test_fraction >= 1.0:
        raise DlxError(
            f"data.val_fraction={val_fraction} and data.test_fraction={test_fraction} add up to "
            f"{val_fraction + test_fraction:g}, which leaves nothing to train on. Make their sum smaller "
            "than 1, e.g. `data.val_fraction=0.15 data.test_fraction=0.15`."
        )


def fraction_split(
    n: int, val_fraction: float, test_fraction: float, split_seed: int
) -> dict[str, torch.Tensor]:
    """Indices of each split, drawn by a permutation that depends only on ``split_seed``."""
    check_fractions(val_fraction, test_fraction)
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    n_train = n - n_val - n_test
    if n_train < 1:
        raise DlxError(
            f"The data has only {n} samples, too few to hold out val_fraction={val_fraction} and "
            f"test_fraction={test_fraction} and still train. Use more samples or smaller fractions."
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(split_seed))
    # Sorted so val/test keep the order of the source, which makes predictions easy to line up with it.
    return {
        "train": order[:n_train].sort().values,
        "val": order[n_train : n_train + n_val].sort().values,
        "test": order[n_train + n_val :].sort().values,
    }


def held_out_split(n: int, val_size: int, split_seed: int) -> dict[str, torch.Tensor]:
    """Train and val indices: ``val_size`` samples held out of ``n`` by a ``split_seed`` permutation."""
    if not 0 <= val_size < n:
        raise DlxError(
            f"data.val_size={val_size} cannot be held out of a training set of {n} samples: it must be "
            "at least 0 and leave at least one sample to train on. "
            f"Type e.g. `data.val_size={min(5000, n // 10)}`."
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(split_seed))
    return {"train": order[val_size:].sort().values, "val": order[:val_size].sort().values}


def train_statistics(inputs: torch.Tensor, dims: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std over ``dims``; a constant feature gets std 1 so standardising never divides by zero."""
    mean = inputs.mean(dim=dims)
    std = inputs.std(dim=dims, correction=0)
    return mean, torch.where(std > 1e-8, std, torch.ones_like(std))
