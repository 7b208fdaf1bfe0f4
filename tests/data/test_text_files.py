import pytest

from dlx.data.text_files import find_table, read_class_files, read_table, read_text
from dlx.errors import DlxError
from tests.text_on_disk import write_rt_polarity_folder, write_sst2_folder


def test_glue_tsv_keeps_double_quotes_and_an_unlabelled_test_file_is_none(tmp_path):
    root = write_sst2_folder(tmp_path / "SST-2")
    train = read_table(root / "train.tsv", "sentence", "label", "utf-8", "data.train")
    assert len(train) == 120 and train.texts[0] == 'the " great " film . ' and train.labels[:2] == ["1", "1"]
    assert (
        read_table(root / "test.tsv", "sentence", "label", "utf-8", "data.root", labels_required=False)
        is None
    )
    assert find_table(root, ("dev", "val")) == root / "dev.tsv" and find_table(root, ("val",)) is None


def test_windows_line_endings_and_a_byte_order_mark_are_read(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_bytes("\ufeffsentence\tlabel\r\ngood film\t1\r\nbad film\t0\r\n".encode())
    table = read_table(path, "sentence", "label", "utf-8", "data.train")
    assert table.texts == ["good film", "bad film"] and table.labels == ["1", "0"]


def test_csv_with_quoted_commas_and_custom_columns(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text('id,review,stars\n1,"Loud, long, dull.",bad\n2,A gem,good\n', encoding="utf-8")
    table = read_table(path, "review", "stars", "utf-8", "data.train")
    assert table.texts == ["Loud, long, dull.", "A gem"] and table.labels == ["bad", "good"]


def test_missing_column_names_the_columns_that_exist_and_suggests_one(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text("review,stars\ngood film,1\n", encoding="utf-8")
    with pytest.raises(DlxError) as error:
        read_table(path, "review", "star", "utf-8", "data.train")
    message = str(error.value)
    assert "Column 'star' (data.label_column) is not in reviews.csv (data.train)" in message
    assert "Did you mean 'stars'" in message and "Its columns are: review, stars" in message


def test_empty_missing_and_non_utf8_files_are_explained(tmp_path):
    (tmp_path / "empty.tsv").write_text("\n  \n")
    with pytest.raises(DlxError, match=r"empty.tsv \(data.train\) is empty"):
        read_text(tmp_path / "empty.tsv", "utf-8", "data.train")
    with pytest.raises(DlxError, match="data.val '.*nope.tsv' is not a file"):
        read_text(tmp_path / "nope.tsv", "utf-8", "data.val")
    (tmp_path / "latin.tsv").write_bytes("sentence\tlabel\nclich\xe9\t1\n".encode("latin-1"))
    with pytest.raises(DlxError) as error:
        read_text(tmp_path / "latin.tsv", "utf-8", "data.train")
    assert "latin.tsv (data.train) is not utf-8 text: byte 0xe9 on line 2" in str(error.value)
    assert "data.encoding=latin-1" in str(error.value)
    assert read_text(tmp_path / "latin.tsv", "latin-1", "data.train").endswith("cliché\t1\n")
    with pytest.raises(DlxError, match="not a text encoding"):
        read_text(tmp_path / "latin.tsv", "klingon", "data.train")


def test_header_only_rows_with_missing_fields_and_empty_labels_are_explained(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text("sentence\tlabel\n")
    with pytest.raises(DlxError, match="has a header row but no rows"):
        read_table(path, "sentence", "label", "utf-8", "data.train")
    path.write_text("sentence\tlabel\ngood\t1\nno label here\n")
    with pytest.raises(DlxError, match="Line 3 of .* has 1 fields but the header names 2"):
        read_table(path, "sentence", "label", "utf-8", "data.train")
    path.write_text("sentence\tlabel\ngood\t \n")
    with pytest.raises(DlxError, match="Line 2 of .* has an empty label"):
        read_table(path, "sentence", "label", "utf-8", "data.train")
    unquoted = tmp_path / "train.csv"  # the comma in the text made "really great" the label, silently
    unquoted.write_text("review,stars\ngreat, really great,positive\nbad film,negative\n")
    with pytest.raises(
        DlxError, match="Line 2 of .* has 3 fields but the header names 2.*comma inside a text"
    ):
        read_table(unquoted, "review", "stars", "utf-8", "data.train")


def test_one_file_per_class_names_classes_by_the_part_of_the_name_that_differs(tmp_path):
    root = write_rt_polarity_folder(tmp_path / "rt", per_class=10)
    (root / "README").write_text("not a class")
    texts = read_class_files(root, "utf-8")
    assert sorted(set(texts.labels)) == ["neg", "pos"] and len(texts) == 20
    other = tmp_path / "named"
    other.mkdir()
    (other / "positive.txt").write_text("a gem\n\nloved it\n")
    (other / "negative.txt").write_text("a dud\n")
    texts = read_class_files(other, "utf-8")
    assert texts.labels == ["negative", "positive", "positive"] and texts.texts[1:] == ["a gem", "loved it"]
    (tmp_path / "lonely").mkdir()
    (tmp_path / "lonely" / "only.txt").write_text("one class\n")
    with pytest.raises(DlxError, match="holds neither train.tsv .* It holds: only.txt"):
        read_class_files(tmp_path / "lonely", "utf-8")
