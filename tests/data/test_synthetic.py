import pytest
import torch

from dlx.data.synthetic import SpiralsData, XorData
from dlx.errors import DlxError
from tests.data.checks import assert_loader_deterministic_and_resumable, assert_splits_disjoint


def test_xor_points_and_labels():
    module = XorData(n_samples=400, noise=0.1).setup()
    inputs, targets = module.splits["train"]
    assert inputs.dtype == torch.float32 and inputs.shape == (280, 2) and targets.dtype == torch.int64
    # With little noise nearly every point stays in its blob's quadrant, where the label is the sign xor.
    sign_xor = ((inputs[:, 0] > 0) != (inputs[:, 1] > 0)).long()
    assert (sign_xor == targets).float().mean() > 0.95
    metadata = module.metadata()
    assert metadata.input_shape == [2] and metadata.num_outputs == metadata.num_classes == 2


def test_spirals_have_one_class_per_arm():
    module = SpiralsData(n_samples=300, n_classes=4).setup()
    all_targets = torch.cat([targets for _, targets in module.splits.values()])
    assert torch.bincount(all_targets).tolist() == [75, 75, 75, 75]
    metadata = module.metadata()
    assert metadata.num_classes == 4 and metadata.class_names == ["0", "1", "2", "3"]


@pytest.mark.parametrize("data_class", [XorData, SpiralsData])
def test_generation_is_seeded_and_splits_are_disjoint(data_class):
    module = data_class(batch_size=32)
    assert_splits_disjoint(module)
    assert_loader_deterministic_and_resumable(module)
    same = data_class(generator_seed=0).setup()
    other = data_class(generator_seed=1).setup()
    assert torch.equal(module.splits["val"][0], same.splits["val"][0])
    assert not torch.equal(module.splits["val"][0], other.splits["val"][0])


def test_bad_arguments_name_the_key():
    with pytest.raises(DlxError, match="data.noise=-1"):
        XorData(noise=-1)
    with pytest.raises(DlxError, match="data.n_classes=1"):
        SpiralsData(n_classes=1)
