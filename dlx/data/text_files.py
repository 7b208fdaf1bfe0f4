"""Reading text data from disk with clear errors: whole files, TSV/CSV tables, one-sentence-per-line files."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from dlx.errors import DlxError, did_you_mean

TABLE_SUFFIXES = (".tsv", ".csv")


@dataclass
class LabelledTexts:
    """Texts with their label as written in the file; ``source`` names the file in messages."""

    texts: list[str]
    labels: list[str]
    source: str

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: list[int]) -> LabelledTexts:
        return LabelledTexts([self.texts[i] for i in indices], [self.labels[i] for i in indices], self.source)


def read_text(path: Path, encoding: str, key: str) -> str:
    """The decoded contents of ``path``; ``key`` is the setting that named it (e.g. ``data.train``)."""
    if not path.is_file():
        what = "a folder, not a file" if path.is_dir() else "not a file"
        raise DlxError(
            f"{key} '{path.absolute()}' is {what}. Point `{key}=` at your text file "
            "(a relative path is taken from the directory dlx runs in)."
        )
    raw = path.read_bytes()
    if not raw.strip():
        raise DlxError(f"{path} ({key}) is empty. Point `{key}=` at a file with text in it.")
    try:
        text = raw.decode(encoding)
    except LookupError:
        raise DlxError(
            f"data.encoding='{encoding}' is not a text encoding Python knows. Type e.g. "
            "`data.encoding=utf-8` or `data.encoding=latin-1`."
        ) from None
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise DlxError(
            f"{path} ({key}) is not {encoding} text: byte 0x{raw[error.start]:02x} on line {line} cannot be "
            f"decoded. If the file uses another encoding, say which, e.g. `data.encoding=latin-1`"
            f"{' (the original rt-polarity files are latin-1)' if 'rt-polarity' in path.name else ''}; or "
            "convert it with "
            f"`iconv -f latin1 -t utf-8 {path.name} > {path.stem}.utf8{path.suffix}`."
        ) from None
    return text.removeprefix("\ufeff")


def read_table(
    path: Path, text_column: str, label_column: str, encoding: str, key: str, labels_required: bool = True
) -> LabelledTexts | None:
    """Texts and labels from a TSV (no quoting, as GLUE writes it) or CSV file with a header row.

    Returns None when the label column is missing and ``labels_required`` is false (an unlabelled test file).
    """
    text = read_text(path, encoding, key)
    tab_separated = path.suffix.lower() == ".tsv" or (
        path.suffix.lower() != ".csv" and "\t" in text.partition("\n")[0]
    )
    if tab_separated:
        rows = csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)
    else:
        rows = csv.reader(io.StringIO(text))
    try:
        header = [name.strip() for name in next(rows)]
    except csv.Error as error:
        raise DlxError(f"Could not read {path} ({key}) as a table: {error}.") from error
    text_index = _column_index(header, text_column, "text_column", path, key)
    if label_column not in header and not labels_required:
        return None
    label_index = _column_index(header, label_column, "label_column", path, key)
    texts, labels = [], []
    try:
        for row in rows:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):  # fewer: a label missing; more: a separator inside a text
                raise DlxError(
                    f"Line {rows.line_num} of {path} has {len(row)} fields but the header names "
                    f"{len(header)} ({', '.join(header)}). Fix that line (a "
                    f"{'tab' if tab_separated else 'comma'} inside a text needs quoting in a CSV)."
                )
            label = row[label_index].strip()
            if not label:
                raise DlxError(
                    f"Line {rows.line_num} of {path} has an empty label in column '{label_column}'. "
                    "Give every row a label, or drop the row."
                )
            texts.append(row[text_index])
            labels.append(label)
    except csv.Error as error:
        raise DlxError(f"Could not read {path} ({key}) as a table: {error}.") from error
    if not texts:
        raise DlxError(f"{path} ({key}) has a header row but no rows of data below it.")
    return LabelledTexts(texts, labels, path.name)


def _column_index(header: list[str], column: str, option: str, path: Path, key: str) -> int:
    if column in header:
        return header.index(column)
    raise DlxError(
        f"Column '{column}' (data.{option}) is not in {path.name} ({key}).{did_you_mean(column, header)} "
        f"Its columns are: {', '.join(header)}. Type `data.{option}=<one of these>`."
    )


def find_table(folder: Path, stems: tuple[str, ...]) -> Path | None:
    """The first ``<stem>.tsv`` / ``<stem>.csv`` in ``folder`` (SST-2 names: train, dev, test)."""
    for stem in stems:
        for suffix in TABLE_SUFFIXES:
            if (folder / f"{stem}{suffix}").is_file():
                return folder / f"{stem}{suffix}"
    return None


def read_class_files(folder: Path, encoding: str) -> LabelledTexts:
    """One file per class, one text per line (rt-polarity.pos / rt-polarity.neg, or pos.txt / neg.txt).

    The class is the part of the file name that differs: the suffix when all files share a stem
    (rt-polarity.pos -> pos), else the stem (positive.txt -> positive).
    """
    files = sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and not path.name.startswith(".") and not path.name.lower().startswith("readme")
    )
    if len(files) < 2:
        found = ", ".join(path.name for path in files) or "no files"
        raise DlxError(
            f"data.root '{folder}' holds neither train.tsv / train.csv (the SST-2 layout: add dev.tsv for "
            "val) nor two or more files of one text per line, one file per class (the rt-polarity layout: "
            f"rt-polarity.pos, rt-polarity.neg). It holds: {found}. Point `data.root=` at such a folder, "
            "or name the files with `data.train=... data.val=...`."
        )
    same_stem = len({path.stem for path in files}) == 1
    names = [path.suffix.lstrip(".") if same_stem else path.stem for path in files]
    if len(set(names)) < len(names) or not all(names):
        names = [path.name for path in files]
    texts, labels = [], []
    for path, name in zip(files, names, strict=True):
        lines = [line.strip() for line in read_text(path, encoding, "data.root").splitlines()]
        texts += [line for line in lines if line]
        labels += [name] * sum(1 for line in lines if line)
    return LabelledTexts(texts, labels, folder.name)
