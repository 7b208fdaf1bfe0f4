"""Assertions every data module's loaders must pass."""

from __future__ import annotations

import torch

from dlx.data.base import DataModule


def assert_loader_deterministic_and_resumable(
    module: DataModule, epoch: int = 1, start_batch: int = 2
) -> None:
    """Same (seed, epoch): same batches; ``start_batch=k``: exactly the rest; another epoch: a new order."""
    full = list(module.loader("train", epoch=epoch))
    again = list(module.loader("train", epoch=epoch))
    resumed = list(module.loader("train", epoch=epoch, start_batch=start_batch))
    assert len(full) > start_batch
    assert len(resumed) == len(full) - start_batch
    for (inputs, targets), (inputs_again, targets_again) in zip(full, again, strict=True):
        assert torch.equal(inputs, inputs_again) and torch.equal(targets, targets_again)
    for (inputs, targets), (inputs_resumed, targets_resumed) in zip(full[start_batch:], resumed, strict=True):
        assert torch.equal(inputs, inputs_resumed) and torch.equal(targets, targets_resumed)
    next_epoch = list(module.loader("train", epoch=epoch + 1))
    assert not torch.equal(full[0][0], next_epoch[0][0])


def assert_splits_disjoint(module: DataModule) -> None:
    """No input row appears in two splits (meant for data without duplicate samples)."""
    seen: dict[bytes, str] = {}
    for split, (inputs, _) in module.setup().splits.items():
        for row in inputs.reshape(len(inputs), -1):
            key = row.numpy().tobytes()
            assert key not in seen, f"a {split} sample is also in {seen[key]}"
            seen[key] = split
