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


def test_a_restored_module_reads_a_new_file_with_the_training_files_columns_classes_and_statistics(
    csv_path, tmp_path
):
    """`dlx eval CKPT data.path=new.csv`: the model's inputs are standardised with the training file's
    statistics, and its class ids keep their meaning, although the new file holds other rows."""
    trained = TabularData(path=str(csv_path), target="species").setup()
    lines = csv_path.read_text().splitlines()
    new = tmp_path / "new.csv"
    new.write_text("\n".join([lines[0], *[line for line in lines[1:] if not line.endswith("cat")]]) + "\n")
    restored = TabularData(path=str(new), target="species")
    restored.load_state_dict(trained.state_dict())
    restored.setup()
    row = [float(value) for value in lines[1].split(",")[:3]]  # the first row: an emu in both files
    expected = (torch.tensor(row) - torch.tensor(trained.mean)) / torch.tensor(trained.std)
    everything = torch.cat([inputs for inputs, _ in restored.splits.values()])
    assert any(torch.allclose(inputs, expected, atol=1e-5) for inputs in everything)
    assert restored.class_names == ["cat", "dog", "emu"]  # emu stays class 2 without any cat
    assert set(torch.cat([targets for _, targets in restored.splits.values()]).tolist()) == {1, 2}


@pytest.mark.parametrize(
    "content, encoding",
    [
        ("height;weight;species\n{rows}", "utf-8"),  # semicolons
        ("height\tweight\tspecies\n{rows}", "utf-8"),  # tabs
        ("height, weight, species\n{rows}", "utf-8"),  # a space after each comma
        ("height,weight,species\n{rows}", "latin-1"),  # with data.encoding
    ],
)
def test_delimiters_spaces_and_encodings_are_read(tmp_path, content, encoding):
    separator = ";" if ";" in content else "\t" if "\t" in content else ", " if ", " in content else ","
    names = ["ému", "chat"] if encoding == "latin-1" else ["emu", "cat"]
    rows = "\n".join(separator.join([str(i), str(100 - i), names[i % 2]]) for i in range(30))
    path = tmp_path / "table.csv"
    path.write_bytes(content.format(rows=rows).encode(encoding))
    module = TabularData(path=str(path), target="species", encoding=encoding).setup()
    assert module.feature_names == ["height", "weight"] and module.class_names == sorted(names)


@pytest.mark.parametrize(
    "content, settings, message",
    [
        ("a,b,label\n", {}, "has a header row (a, b, label) but no rows of data below it"),
        ("0.9,42.0,yes\n0.1,40.0,no\n", {}, "looks like data, not column names. Add a header row"),
        (
            "a,b,label\n" + "".join(f"{i},{i % 3},{i * 0.37 + 0.01}\n" for i in range(60)),
            {},
            "Type `task=regression`",
        ),
        (
            "a,b,label\n" + "".join(f"{i},{i},{'yn'[i % 2]}\n" for i in range(20)),
            {"task_type": "regression"},
            "Type `task=classification`",
        ),
        ("a,b,label\ncaf\xe9,1,yes\n", {}, "is not utf-8 text .* `data.encoding=latin-1`"),
    ],
)
def test_file_mistakes_are_named_with_their_fix(tmp_path, content, settings, message):
    path = tmp_path / "table.csv"
    path.write_bytes(content.encode("latin-1"))
    with pytest.raises(DlxError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TabularData(path=str(path), target="label", **settings).setup()


def test_training_without_validation_rows_is_refused_before_it_starts(tmp_path):
    from tests.helpers import train_run

    path = tmp_path / "table.csv"
    path.write_text("a,b,label\n" + "".join(f"{i},{i % 5},{'yn'[i % 2]}\n" for i in range(40)))
    with pytest.raises(DlxError, match=r"validation split of TabularData is empty.*`data.val_fraction=0.1`"):
        train_run(
            "data=tabular", f"data.path={path}", "data.target=label", "data.val_fraction=0", "model=mlp"
        )


def test_only_empty_cells_are_missing_and_missing_numbers_written_as_words_are_named(tmp_path):
    path = tmp_path / "regions.csv"
    path.write_text(
        "a,b,region\n" + "".join(f"{i},{i % 4},{['NA', 'EU', 'ASIA'][i % 3]}\n" for i in range(30))
    )
    assert TabularData(path=str(path), target="region").setup().class_names == ["ASIA", "EU", "NA"]
    path.write_text(
        "a,b,label\n" + "".join(f"{i},{'NA' if i % 5 == 0 else i},{'yn'[i % 2]}\n" for i in range(30))
    )
    with pytest.raises(DlxError, match="Feature column b in regions.csv marks missing values as NA"):
        TabularData(path=str(path), target="label").setup()
