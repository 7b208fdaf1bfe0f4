import pytest
import torch

from dlx.data.splits import fraction_split, held_out_split, train_statistics
from dlx.errors import DlxError


def test_fraction_split_is_a_seeded_partition():
    indices = fraction_split(100, 0.2, 0.1, split_seed=5)
    assert [len(indices[split]) for split in ("train", "val", "test")] == [70, 20, 10]
    assert torch.equal(torch.cat(list(indices.values())).sort().values, torch.arange(100))
    again = fraction_split(100, 0.2, 0.1, split_seed=5)
    assert all(torch.equal(indices[split], again[split]) for split in indices)
    assert not torch.equal(indices["val"], fraction_split(100, 0.2, 0.1, split_seed=6)["val"])


@pytest.mark.parametrize(
    ("val", "test", "message"), [(1.5, 0.1, "val_fraction=1.5"), (0.6, 0.4, "add up to 1")]
)
def test_fraction_split_rejects_impossible_fractions(val, test, message):
    with pytest.raises(DlxError, match=message):
        fraction_split(100, val, test, split_seed=0)


def test_held_out_split_keeps_val_size_and_rejects_too_large():
    indices = held_out_split(50, 10, split_seed=0)
    assert len(indices["val"]) == 10 and len(indices["train"]) == 40
    assert not set(indices["val"].tolist()) & set(indices["train"].tolist())
    with pytest.raises(DlxError, match="val_size=50"):
        held_out_split(50, 50, split_seed=0)


def test_train_statistics_never_gives_zero_std():
    inputs = torch.tensor([[1.0, 5.0], [3.0, 5.0]])
    mean, std = train_statistics(inputs, dims=(0,))
    assert mean.tolist() == [2.0, 5.0] and std.tolist() == [1.0, 1.0]
