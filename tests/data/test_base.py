import pytest
import torch

from dlx.data.base import TensorLoader


def loader(count: int, batch_size: int, rank: int = 0, processes: int = 1, training: bool = True, epoch=0):
    inputs = torch.arange(count).float().unsqueeze(1)
    return TensorLoader(
        inputs,
        torch.arange(count),
        batch_size,
        shuffle=training,
        seed=3,
        epoch=epoch,
        process_rank=rank,
        process_count=processes,
        pad_shares=training,
    )


@pytest.mark.parametrize("count", [1257, 1256, 129])
def test_processes_share_the_global_batches_of_one_process(count):
    single = [targets for _, targets in loader(count, 64, epoch=2)]
    shares = [[targets for _, targets in loader(count, 64, rank, 4, epoch=2)] for rank in range(4)]
    assert all(len(batches) == len(single) == len(loader(count, 64)) for batches in shares)
    for index, batch in enumerate(single):
        together = torch.cat([shares[rank][index] for rank in range(4)])
        assert {len(shares[rank][index]) for rank in range(4)} == {-(-len(batch) // 4)}  # equal steps
        if index < len(single) - 1:
            assert sorted(together.tolist()) == sorted(batch.tolist())
        else:  # topped up to a multiple of 4 with samples from the epoch's start (DistributedSampler)
            assert set(batch.tolist()) <= set(together.tolist()) and len(together) - len(batch) < 4


def test_evaluation_shares_count_every_sample_once():
    shares = [list(loader(270, 256, rank, 4, training=False)) for rank in range(4)]
    assert {len(batches) for batches in shares} == {2}  # the same forwards on every process
    targets = torch.cat([t for batches in shares for _, t in batches])
    assert sorted(targets.tolist()) == list(range(270))


def test_a_process_with_no_share_of_the_last_evaluation_batch_gets_a_stand_in():
    shares = [list(loader(258, 256, rank, 4, training=False)) for rank in range(4)]
    inputs, targets = shares[3][1]  # 2 samples left for 4 processes
    assert len(inputs) == 1 and len(targets) == 0
    assert sum(len(t) for batches in shares for _, t in batches) == 258


def test_data_metadata_is_kept_as_plain_data_only_when_it_reads_back_the_same():
    from dlx.data.base import DataMetadata

    metadata = DataMetadata([1, 8, 8], 10, mean=(0.5,), extra={"scale": 1 / 16, "axes": ("sequence",)})
    assert DataMetadata.from_plain(metadata.to_plain()) == DataMetadata(
        [1, 8, 8], 10, mean=[0.5], extra={"scale": 1 / 16, "axes": ["sequence"]}
    )
    assert DataMetadata([1], 2, extra={"label_map": {0: "a"}}).to_plain() is None  # keys would become "0"
    assert DataMetadata([1], 2, extra={"made": object()}).to_plain() is None
    assert DataMetadata.from_plain({**metadata.to_plain(), "from_a_newer_dlx": 1}).num_outputs == 10
