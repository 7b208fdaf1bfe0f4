import pytest
import torch

from dlx.data.tabular import TabularData
from dlx.errors import DlxError
from tests.data.checks import assert_loader_deterministic_and_resumable, assert_splits_disjoint


@pytest.fixture
def csv_path(tmp_path):
    rows = ["height,weight,age,species"]
    species = ["emu", "cat", "dog"]
    for index in range(60):
        rows.append(f"{index * 1.5},{100 - index},{index % 7},{species[index % 3]}")
    path = tmp_path / "animals.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_classification_maps_sorted_labels_and_standardises_with_train_statistics(csv_path):
    module = TabularData(path=str(csv_path), target="species", batch_size=8).setup()
    inputs, targets = module.splits["train"]
    assert inputs.dtype == torch.float32 and inputs.shape == (42, 3) and targets.dtype == torch.int64
    assert torch.allclose(inputs.mean(dim=0), torch.zeros(3), atol=1e-5)
    metadata = module.metadata()
    assert metadata.class_names == ["cat", "dog", "emu"]
    assert metadata.input_shape == [3] and metadata.num_outputs == metadata.num_classes == 3
    assert len(metadata.mean) == len(metadata.std) == 3
    assert metadata.extra["features"] == ["height", "weight", "age"]
    assert_splits_disjoint(module)
    assert_loader_deterministic_and_resumable(module)


def test_regression_gives_float_column_targets(csv_path):
    module = TabularData(
        path=str(csv_path), target="weight", features=["height"], task_type="regression", standardize=False
    )
    metadata = module.metadata()
    assert metadata.num_outputs == 1 and metadata.num_classes is None and metadata.class_names is None
    inputs, targets = module.splits["test"]
    assert targets.dtype == torch.float32 and targets.shape == (9, 1)
    # weight = 100 - height / 1.5 in every row, untouched because standardize=false
    assert torch.allclose(targets[:, 0], 100 - inputs[:, 0] / 1.5)
    assert metadata.target_mean is None and metadata.target_std is None


def test_standardize_gives_the_regression_targets_train_statistics(csv_path):
    """The targets stay in their units; the model learns them standardised (dlx/tasks/regression.py)."""
    module = TabularData(
        path=str(csv_path), target="weight", features=["height", "age"], task_type="regression"
    )
    module.setup()
    train_targets = module.splits["train"][1]
    metadata = module.metadata()
    assert metadata.target_mean == pytest.approx(train_targets.mean(dim=0).tolist())
    assert metadata.target_std == pytest.approx(train_targets.std(dim=0, correction=0).tolist())
    assert train_targets.mean() > 50  # weights of 41-100: not standardised in the data


def test_missing_column_lists_the_columns_and_suggests_one(csv_path):
    with pytest.raises(DlxError) as error:
        TabularData(path=str(csv_path), target="specis").setup()
    message = str(error.value)
    assert "Did you mean 'species'" in message and "height, weight, age, species" in message


def test_non_numeric_features_are_named(tmp_path):
    path = tmp_path / "cities.csv"
    path.write_text("city,size,label\nParis,3,a\nLyon,2,b\nNice,1,a\nLille,2,b\n")
    with pytest.raises(DlxError, match="Feature columns city .* not numeric"):
        TabularData(path=str(path), target="label").setup()


def test_missing_file_and_bad_task_type_are_explained(tmp_path, csv_path):
    with pytest.raises(DlxError, match="is not a file"):
        TabularData(path=str(tmp_path / "nope.csv"), target="label").setup()
    with pytest.raises(DlxError, match="Did you mean 'regression'"):
        TabularData(path=str(csv_path), target="species", task_type="regresion")
    with pytest.raises(DlxError, match="includes the target column"):
        TabularData(path=str(csv_path), target="species", features=["height", "species"]).setup()
