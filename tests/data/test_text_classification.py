import pytest
import torch

from dlx.build import build_data
from dlx.config.compose import compose_config
from dlx.data.base import TensorLoader
from dlx.data.text_classification import TextClassificationData
from dlx.errors import DlxError
from tests.data.checks import assert_loader_deterministic_and_resumable
from tests.text_on_disk import write_rt_polarity_folder, write_sst2_folder, write_tiny_hf_tokenizer


@pytest.fixture
def sst2(tmp_path):
    return write_sst2_folder(tmp_path / "SST-2")


def test_sst2_folder_trains_on_train_tsv_validates_on_dev_and_has_no_test(sst2, caplog):
    caplog.set_level("INFO")
    data = TextClassificationData(root=str(sst2), max_length=16, test_fraction=0.0, batch_size=8).setup()
    assert "test.tsv" not in caplog.text  # said when the test split is asked for, not on every load
    assert len(data.splits["train"][0]) == 120 and len(data.splits["val"][0]) == 30
    assert data.splits["train"][0].shape == (120, 16)
    metadata = data.metadata()
    assert metadata.input_shape == [16] and metadata.num_classes == metadata.num_outputs == 2
    assert metadata.class_names == ["0", "1"] and metadata.pad_id == 0
    assert metadata.vocab_size == len(data.vocabulary) and data.vocabulary[:2] == ["<pad>", "<unk>"]
    assert metadata.extra["dynamic_axes"] == {"sequence": 1}
    with pytest.raises(DlxError, match="There is no test split: test.tsv has no 'label' column"):
        data.loader("test")
    assert isinstance(data.loader("train"), TensorLoader)  # the in-memory slicing fast path
    assert_loader_deterministic_and_resumable(data)


def test_without_a_labelled_test_file_test_is_held_out_of_train(sst2):
    data = TextClassificationData(root=str(sst2), test_fraction=0.25).setup()
    assert len(data.splits["train"][0]) == 90 and len(data.splits["test"][0]) == 30
    assert len(data.splits["val"][0]) == 30  # still dev.tsv


def test_vocabulary_comes_from_the_train_split_only(tmp_path, sst2):
    with open(sst2 / "dev.tsv", "a", encoding="utf-8") as dev:
        dev.write("an unseenword here\t1\n")
    data = TextClassificationData(root=str(sst2)).setup()
    assert "unseenword" not in data.vocabulary
    tokens = data.splits["val"][0][-1]
    assert tokens[1].item() == 1  # <unk>


def test_every_batch_is_padded_to_its_own_longest_text(sst2):
    data = TextClassificationData(root=str(sst2), max_length=64, batch_size=8, eval_batch_size=8).setup()
    widths = set()
    for tokens, labels in data.loader("val"):
        lengths = (tokens != data.pad_id).sum(1)
        assert tokens.dtype == torch.int64 and labels.dtype == torch.int64
        assert tokens.shape[1] == lengths.max()  # T is the longest in this batch
        assert (tokens[:, 0] != data.pad_id).all()  # right padding: every text starts at column 0
        widths.add(tokens.shape[1])
    assert len(widths) > 1 and max(widths) < 64
    inputs, _ = data.example_batch("val", 4)
    assert inputs.shape == (4, 64) and inputs.dtype == torch.int64  # an exporter traces at input_shape


def test_texts_longer_than_max_length_are_truncated(sst2):
    data = TextClassificationData(root=str(sst2), max_length=3).setup()
    tokens = data.splits["train"][0]
    assert tokens.shape[1] == 3 and (tokens != 0).sum(1).max() == 3


def test_csv_with_custom_columns_and_class_name_labels(tmp_path):
    rows = ["id,review,stars"] + [
        f'{i},"{"A gem, truly" if i % 3 == 0 else "Dull, flat" if i % 3 == 1 else "So-so"}",'
        f"{['good', 'bad', 'meh'][i % 3]}"
        for i in range(30)
    ]
    (tmp_path / "reviews.csv").write_text("\n".join(rows) + "\n")
    data = TextClassificationData(
        train=str(tmp_path / "reviews.csv"), text_column="review", label_column="stars", val_fraction=0.2
    ).setup()
    assert data.class_names == ["bad", "good", "meh"]
    assert [len(data.splits[s][0]) for s in ("train", "val", "test")] == [21, 6, 3]
    tokens, labels = data.splits["train"]
    words = data.vocabulary
    for row, label in zip(tokens, labels, strict=True):
        first_word = words[row[0]]
        assert {"a": 1, "dull": 0, "so": 2}[first_word] == label  # good = 1, bad = 0, meh = 2


def test_rt_polarity_folder_is_split_by_seeded_fractions(tmp_path):
    root = write_rt_polarity_folder(tmp_path / "rt-polaritydata", per_class=50, encoding="latin-1")
    with pytest.raises(DlxError, match="data.encoding=latin-1"):
        TextClassificationData(root=str(root)).setup()
    data = TextClassificationData(
        root=str(root), encoding="latin-1", val_fraction=0.2, test_fraction=0.1
    ).setup()
    assert data.class_names == ["neg", "pos"]
    assert [len(data.splits[s][0]) for s in ("train", "val", "test")] == [70, 20, 10]
    assert "amélie" in data.vocabulary
    again = TextClassificationData(
        root=str(root), encoding="latin-1", val_fraction=0.2, test_fraction=0.1
    ).setup()
    other = TextClassificationData(root=str(root), encoding="latin-1", val_fraction=0.2, split_seed=1).setup()
    assert torch.equal(again.splits["val"][0], data.splits["val"][0])
    assert not torch.equal(other.splits["val"][1], data.splits["val"][1])


def test_labels_that_are_not_integers_or_class_names_are_refused(tmp_path):
    path = tmp_path / "train.tsv"
    cases = {
        "mix integers and names": ["1", "pos", "0", "neg"],
        "numbers with decimals": ["0.5", "1.5", "0.5", "1.5"],
        "nothing to classify": ["pos", "pos", "pos", "pos"],
        "must be 0 or more": ["-1", "1", "0", "1"],
    }
    for expected, labels in cases.items():
        path.write_text(
            "sentence\tlabel\n" + "".join(f"text {i}\t{label}\n" for i, label in enumerate(labels))
        )
        with pytest.raises(DlxError, match=expected):
            TextClassificationData(train=str(path), val_fraction=0.5, test_fraction=0.0).setup()


def test_a_validation_label_the_training_data_lacks_is_named(tmp_path, sst2):
    (tmp_path / "train.tsv").write_text("sentence\tlabel\ngood\tpositive\nbad\tnegative\n")
    (tmp_path / "dev.tsv").write_text("sentence\tlabel\nfine\tpositve\n")
    with pytest.raises(DlxError) as error:
        TextClassificationData(train="train.tsv", val="dev.tsv").setup()
    assert "'positve' in dev.tsv is not one of the classes" in str(error.value)
    assert "Did you mean 'positive'" in str(error.value)
    (tmp_path / "dev.tsv").write_text("sentence\tlabel\nfine\t2\n")
    with pytest.raises(
        DlxError, match=r"'2' in dev.tsv is not one of the classes of the training data \(0..1\)"
    ):
        TextClassificationData(root=str(sst2), val=str(tmp_path / "dev.tsv")).setup()


def test_missing_files_and_settings_are_explained(tmp_path, sst2):
    with pytest.raises(DlxError, match="No training data: set `data.train=train.tsv`"):
        TextClassificationData().setup()
    with pytest.raises(DlxError, match="data.root '.*nowhere' is not a folder"):
        TextClassificationData(root=str(tmp_path / "nowhere")).setup()
    with pytest.raises(DlxError, match="data.train '.*missing.tsv' is not a file"):
        TextClassificationData(train=str(tmp_path / "missing.tsv")).setup()
    with pytest.raises(
        DlxError, match=r"'label' .* not in test.tsv \(data.test\). Its columns are: index, sentence"
    ):
        TextClassificationData(root=str(sst2), test=str(sst2 / "test.tsv")).setup()
    with pytest.raises(DlxError, match="The validation split is empty"):
        TextClassificationData(train=str(sst2 / "train.tsv"), val_fraction=0.0).setup()
    with pytest.raises(DlxError, match="data.max_size=2 leaves no room"):
        TextClassificationData(max_size=2)


def test_vocabulary_and_classes_round_trip_through_the_checkpoint_state(tmp_path, sst2):
    trained = TextClassificationData(root=str(sst2)).setup()
    state = trained.state_dict()
    # The resumed run finds a training file with a new word: the saved vocabulary still decides the ids.
    with open(sst2 / "train.tsv", "a", encoding="utf-8") as train:
        train.write("a brandnew word\t1\n")
    restored = TextClassificationData(root=str(sst2))
    restored.load_state_dict(state)
    restored.setup()
    assert restored.vocabulary == trained.vocabulary and "brandnew" not in restored.vocabulary
    assert torch.equal(restored.splits["val"][0], trained.splits["val"][0])
    with pytest.raises(DlxError, match="tokenized with 'word' but data.tokenizer is '/some/folder'"):
        TextClassificationData(root=str(sst2), tokenizer="/some/folder").load_state_dict(state)


def test_build_data_restores_the_state_and_writes_vocab_size_and_pad_id_into_the_config(sst2):
    cfg = compose_config(["data=text_classification", f"data.train={sst2 / 'train.tsv'}", "data.max_size=10"])
    data = build_data(cfg)
    assert cfg.data.vocab_size == 10 and cfg.data.pad_id == 0 and cfg.data.input_shape == [128]
    assert cfg.data.num_classes == 2 and list(cfg.data.class_names) == ["0", "1"]
    state = data.state_dict()
    cfg = compose_config(["data=text_classification", f"data.train={sst2 / 'train.tsv'}"])  # no max_size
    restored = build_data(cfg, state)
    assert restored.vocabulary == data.vocabulary and cfg.data.vocab_size == 10


def test_sst2_config_composes(sst2):
    cfg = compose_config(["data=sst2", f"data.root={sst2}"])
    data = build_data(cfg)
    assert cfg.data.name == "sst2" and cfg.data.input_shape == [64] and len(data.splits["val"][0]) == 30
    assert list(cfg.data.class_names) == ["negative", "positive"]  # SST-2's class ids 0 and 1, named


def test_label_names_name_integer_class_ids_and_must_fit_them(sst2, tmp_path):
    data = TextClassificationData(root=str(sst2), label_names=["neg", "pos"], test_fraction=0.0).setup()
    assert data.metadata().class_names == ["neg", "pos"] and data.splits["train"][1].max() == 1
    with pytest.raises(DlxError, match="names 1 classes, but the labels .* go up to 1"):
        TextClassificationData(root=str(sst2), label_names=["neg"], test_fraction=0.0).setup()
    named = tmp_path / "named.csv"
    rows = "".join(f"a great film {i},good\na dull film {i},bad\n" for i in range(4))
    named.write_text("sentence,label\n" + rows, encoding="utf-8")
    with pytest.raises(DlxError, match="are names already"):
        TextClassificationData(
            train=str(named), label_names=["a", "b"], val_fraction=0.5, test_fraction=0.0
        ).setup()


def test_hugging_face_tokenizer_pads_with_its_own_pad_id(tmp_path, sst2):
    folder = write_tiny_hf_tokenizer(tmp_path / "tokenizer")
    data = TextClassificationData(
        root=str(sst2), tokenizer=str(folder), max_length=8, batch_size=16, test_fraction=0.0
    ).setup()
    metadata = data.metadata()
    assert metadata.pad_id == 3 and metadata.vocab_size == 29 and data.vocabulary is None
    tokens, _ = next(iter(data.loader("train")))
    assert (tokens[:, 0] == 1).all()  # [CLS]
    lengths = (tokens != 3).sum(1)
    assert tokens.shape[1] == lengths.max() <= 8
    assert all(row[length - 1] == 2 for row, length in zip(tokens, lengths, strict=True))  # ends in [SEP]


def test_dlx_config_and_ls_know_the_text_data_sets(sst2):
    from typer.testing import CliRunner

    from dlx.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["config", "data=text_classification", "data.train=train.csv", "--yaml"])
    assert result.exit_code == 0, result.output
    assert "name: text_classification" in result.output and "train: train.csv" in result.output
    result = runner.invoke(
        app, ["config", "data=text_classification", "+data.max_lenght=8"], terminal_width=200
    )
    assert result.exit_code == 2 and "Did you mean 'max_length'" in result.output
    listing = runner.invoke(app, ["ls", "data"], terminal_width=200)
    assert all(name in listing.output for name in ("text_classification", "sst2", "char_lm"))
