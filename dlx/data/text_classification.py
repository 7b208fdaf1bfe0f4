"""Sentences with a class label (SST-2, rt-polarity, your own TSV/CSV) as padded token-id tensors.

Each split is one [N, max_length] tensor of token ids right-padded with ``pad_id``, kept in memory so
batches are tensor slices; ``prepare`` trims every batch to its longest sequence. A model recovers the
lengths as ``(tokens != pad_id).sum(1)``.
"""

from __future__ import annotations

import itertools
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlx.data.base import DataMetadata, DataModule, TensorLoader
from dlx.data.splits import check_fractions, fraction_split
from dlx.data.text_files import LabelledTexts, find_table, read_class_files, read_table
from dlx.data.tokenizers import HuggingFaceTokenizer, WordTokenizer
from dlx.errors import DlxError, did_you_mean

logger = logging.getLogger("dlx")

# File stems looked for in ``data.root`` (GLUE's SST-2 calls its validation file dev.tsv).
SPLIT_FILE_STEMS = {"train": ("train",), "val": ("dev", "val", "validation"), "test": ("test",)}
INTEGER = re.compile(r"[+-]?\d+")
DECIMAL = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+[eE][+-]?\d+)")


class TextClassificationData(DataModule):
    """Labelled texts from TSV/CSV files or from one file per class, tokenized once when loaded.

    Files: ``train`` / ``val`` / ``test`` paths, or a ``root`` folder holding train.tsv (+ dev.tsv,
    test.tsv; SST-2's names, .csv works too) or one file of one text per line per class (rt-polarity).
    A split without a labelled file of its own is held out of the training file by its fraction
    (``val_fraction``, ``test_fraction``, drawn with ``split_seed``); a fraction of 0 means no such split.
    ``tokenizer``: ``word`` (a vocabulary built from the train split, saved in checkpoints) or a Hugging
    Face tokenizer name or local folder. Labels: integers (kept as class ids, named by ``label_names``) or
    class names (sorted).
    """

    def __init__(
        self,
        train: str | None = None,
        val: str | None = None,
        test: str | None = None,
        root: str | None = None,
        text_column: str = "sentence",
        label_column: str = "label",
        label_names: list[str] | None = None,
        encoding: str = "utf-8",
        tokenizer: str = "word",
        max_length: int = 128,
        lowercase: bool = True,
        min_freq: int = 1,
        max_size: int | None = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        split_seed: int = 0,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        seed: int = 0,
        drop_last: bool = False,
    ):
        super().__init__(
            batch_size=batch_size, eval_batch_size=eval_batch_size, seed=seed, drop_last=drop_last
        )
        check_fractions(val_fraction, test_fraction)
        for key, value, least in (("max_length", max_length, 1), ("min_freq", min_freq, 1)):
            if value < least:
                raise DlxError(f"data.{key} must be at least {least}, got {value}. Type e.g. `data.{key}=1`.")
        if max_size is not None and max_size < 3:
            raise DlxError(
                f"data.max_size={max_size} leaves no room for words besides <pad> and <unk>. Type e.g. "
                "`data.max_size=20000`, or `data.max_size=null` to keep every word."
            )
        self.files = {"train": train, "val": val, "test": test}
        self.root = root
        self.text_column, self.label_column, self.encoding = text_column, label_column, encoding
        self.label_names = list(label_names) if label_names is not None else None
        self.tokenizer_name, self.max_length, self.lowercase = tokenizer, max_length, lowercase
        self.min_freq, self.max_size = min_freq, max_size
        self.val_fraction, self.test_fraction, self.split_seed = val_fraction, test_fraction, split_seed
        self.vocabulary: list[str] | None = None  # the word tokenizer's, learnt or restored
        self.class_names: list[str] | None = None
        self.integer_labels = False
        self.pad_id: int | None = None
        self.vocab_size: int | None = None
        self.unlabelled_files: dict[str, str] = {}  # split -> its file, found in data.root without labels

    # -- state that travels in checkpoints ------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "tokenizer": self.tokenizer_name,
            "vocabulary": self.vocabulary,
            "lowercase": self.lowercase,
            "class_names": self.class_names,
            "integer_labels": self.integer_labels,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("tokenizer", self.tokenizer_name) != self.tokenizer_name:
            raise DlxError(
                f"The checkpoint's data was tokenized with '{state['tokenizer']}' but data.tokenizer is "
                f"'{self.tokenizer_name}'; its model only understands the first. Remove the override "
                f"(`data.tokenizer={state['tokenizer']}`)."
            )
        self.vocabulary = state.get("vocabulary")
        self.lowercase = bool(state.get("lowercase", self.lowercase))  # the vocabulary's words are cased so
        self.class_names = state.get("class_names")
        self.integer_labels = bool(state.get("integer_labels", False))

    # -- loading --------------------------------------------------------------------------------
    def load(self) -> None:
        sources = self.read_splits()
        self.learn_classes(sources["train"])
        tokenizer = self.make_tokenizer(sources["train"].texts)
        self.pad_id, self.vocab_size = tokenizer.pad_id, tokenizer.vocab_size
        self.splits = {}
        for split, source in sources.items():
            encoded = tokenizer.encode_batch(source.texts, self.max_length)
            encoded = [ids or [tokenizer.unknown_id] for ids in encoded]  # an empty text: one unknown token
            labels = torch.tensor(self.label_ids(source), dtype=torch.long)
            self.splits[split] = (pad_sequences(encoded, self.pad_id, self.max_length), labels)

    def read_splits(self) -> dict[str, LabelledTexts]:
        """Texts and labels of every split: files where given, the rest held out of the training data."""
        files, class_files_folder = self.locate_files()
        if class_files_folder is not None:
            pool = read_class_files(class_files_folder, self.encoding)
        else:
            pool = self.read_labelled(files["train"], "train")
        given = {}
        for split in ("val", "test"):
            table = self.read_labelled(files[split], split)
            if table is not None:
                given[split] = table
        indices = fraction_split(
            len(pool),
            0.0 if "val" in given else self.val_fraction,
            0.0 if "test" in given else self.test_fraction,
            self.split_seed,
        )
        sources = {
            split: given[split] if split in given else pool.subset(index.tolist())
            for split, index in indices.items()
        }
        if not len(sources["val"]):
            raise DlxError(
                f"The validation split is empty: there is no validation file and data.val_fraction="
                f"{self.val_fraction} of {len(pool)} training texts holds out none. Give one with "
                "`data.val=dev.tsv`, or hold some out with `data.val_fraction=0.1`."
            )
        return sources

    def locate_files(self) -> tuple[dict[str, Path | None], Path | None]:
        """The table of each split (``data.train`` etc., else found in ``data.root``), or the folder of
        one file per class when ``data.root`` has no training table."""
        files = {split: Path(path).expanduser() if path else None for split, path in self.files.items()}
        if self.root is None:
            if files["train"] is None:
                raise DlxError(
                    "No training data: set `data.train=train.tsv` (a TSV/CSV with a header row), or "
                    "`data.root=/path/to/folder` holding train.tsv and dev.tsv (SST-2) or one text file "
                    "per class (rt-polarity)."
                )
            return files, None
        root = Path(self.root).expanduser()
        if not root.is_dir():
            raise DlxError(
                f"data.root '{root.absolute()}' is not a folder. Point `data.root=` at the folder "
                "holding train.tsv and dev.tsv (SST-2), or one text file per class (rt-polarity)."
            )
        for split, stems in SPLIT_FILE_STEMS.items():
            files[split] = files[split] or find_table(root, stems)
        return files, root if files["train"] is None else None

    def read_labelled(self, path: Path | None, split: str) -> LabelledTexts | None:
        """A split's table; None for no file, or for a file found in data.root without labels (SST-2's
        test.tsv), which is then left out. A file the user named must have labels."""
        if path is None:
            return None
        named = self.files[split] is not None or split == "train"
        key = f"data.{split}" if self.files[split] else "data.root"
        table = read_table(
            path, self.text_column, self.label_column, self.encoding, key, labels_required=named
        )
        if table is None:
            # Said only if the split is asked for (see loader): not on every eval and predict of SST-2.
            logger.debug("%s has no '%s' column: it is not the %s split", path, self.label_column, split)
            self.unlabelled_files[split] = path.name
        return table

    def learn_classes(self, train: LabelledTexts) -> None:
        """Class names from the training labels (unless restored): integers stay ids, names are sorted."""
        if self.class_names is not None:
            return
        distinct = sorted(set(train.labels))
        integers = [label for label in distinct if INTEGER.fullmatch(label)]
        if integers and len(integers) < len(distinct):
            name = next(label for label in distinct if not INTEGER.fullmatch(label))
            raise DlxError(
                f"The labels in {train.source} mix integers and names (e.g. '{integers[0]}' and '{name}'). "
                "Use one kind: class ids 0, 1, 2, ... or class names. Check that "
                f"data.label_column='{self.label_column}' is the label column."
            )
        if not integers and any(DECIMAL.fullmatch(label) for label in distinct):
            example = next(label for label in distinct if DECIMAL.fullmatch(label))
            raise DlxError(
                f"The labels in {train.source} are numbers with decimals (e.g. '{example}'), not classes. "
                "Text classification needs integer class ids or class names; check that "
                f"data.label_column='{self.label_column}' is the label column."
            )
        if len(distinct) < 2:
            raise DlxError(
                f"Every label in {train.source} is '{distinct[0]}', so there is nothing to classify. Check "
                f"data.label_column='{self.label_column}'."
            )
        self.integer_labels = bool(integers)
        if self.integer_labels:
            values = sorted(int(label) for label in integers)
            if values[0] < 0:
                raise DlxError(
                    f"The labels in {train.source} include {values[0]}; integer labels are class ids and "
                    "must be 0 or more. Renumber them, or write them as class names."
                )
            self.class_names = [str(value) for value in range(values[-1] + 1)]
            if self.label_names is not None:
                if len(self.label_names) < len(self.class_names):
                    raise DlxError(
                        f"data.label_names names {len(self.label_names)} classes, but the labels in "
                        f"{train.source} go up to {values[-1]}. Give one name per class id 0..{values[-1]}."
                    )
                self.class_names = list(self.label_names)
        else:
            if self.label_names is not None:
                raise DlxError(
                    f"data.label_names names integer class ids, but the labels in {train.source} are names "
                    f"already ({', '.join(distinct[:3])}). Drop it (`data.label_names=null`)."
                )
            self.class_names = distinct

    def label_ids(self, source: LabelledTexts) -> list[int]:
        names = self.class_names
        if self.integer_labels:
            ids = [int(label) if INTEGER.fullmatch(label) else -1 for label in source.labels]
            bad = next(
                (label for label, i in zip(source.labels, ids, strict=True) if not 0 <= i < len(names)), None
            )
        else:
            index = {name: i for i, name in enumerate(names)}
            ids = [index.get(label, -1) for label in source.labels]
            bad = next((label for label, i in zip(source.labels, ids, strict=True) if i < 0), None)
        if bad is not None:
            known = f"0..{len(names) - 1}" if self.integer_labels else ", ".join(names)
            raise DlxError(
                f"The label '{bad}' in {source.source} is not one of the classes of the training data "
                f"({known}).{did_you_mean(bad, names)} Fix the label, or check data.label_column."
            )
        return ids

    def make_tokenizer(self, train_texts: list[str]) -> WordTokenizer | HuggingFaceTokenizer:
        if self.tokenizer_name != "word":
            return HuggingFaceTokenizer(self.tokenizer_name)
        if self.vocabulary is None:
            tokenizer = WordTokenizer.build(train_texts, self.min_freq, self.max_size, self.lowercase)
            self.vocabulary = tokenizer.tokens
            return tokenizer
        return WordTokenizer(self.vocabulary, self.lowercase)

    # -- batches --------------------------------------------------------------------------------
    def prepare(self, inputs: torch.Tensor) -> torch.Tensor:
        """Trim a batch to its longest sequence: the columns right of it are padding in every row."""
        longest = int((inputs != self.pad_id).sum(1).max()) if len(inputs) else 1
        return inputs[:, : max(longest, 1)].long()

    def loader(
        self, split: str, epoch: int = 0, start_batch: int = 0, shuffle: bool | None = None
    ) -> TensorLoader:
        self.setup()
        if split in self.splits and not len(self.splits[split][0]):
            unlabelled = self.unlabelled_files.get(split)
            reason = f"{unlabelled} has no '{self.label_column}' column" if unlabelled else f"no {split} file"
            fraction = getattr(self, f"{split}_fraction")
            raise DlxError(
                f"There is no {split} split: {reason}, and data.{split}_fraction={fraction} holds no texts "
                f"out of the training data. Evaluate on `data.split=val`, give a labelled file with "
                f"`data.{split}=...`, or train with part of the training data held out "
                f"(`dlx train ... data.{split}_fraction=0.05`)."
            )
        return super().loader(split, epoch=epoch, start_batch=start_batch, shuffle=shuffle)

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        """New texts as the model reads them, encoded as the training texts were (for `dlx predict`).
        The data files are read only if no checkpoint gave this module its vocabulary."""
        if self.tokenizer_name == "word" and self.vocabulary is None:
            self.setup()
        tokenizer = self.make_tokenizer([])  # the learnt vocabulary, or the pretrained tokenizer
        self.pad_id = tokenizer.pad_id
        encoded = [ids or [tokenizer.unknown_id] for ids in tokenizer.encode_batch(texts, self.max_length)]
        return self.prepare(pad_sequences(encoded, self.pad_id, self.max_length))

    def decode_texts(self, inputs: torch.Tensor) -> list[str]:
        """Token ids back to text (as the tokenizer saw it: lower-cased, unknown words as <unk>)."""
        tokenizer = self.make_tokenizer([])
        return [tokenizer.decode(row.tolist()) for row in inputs]

    def example_batch(self, split: str = "val", size: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
        # Full max_length columns: an exporter traces with input_shape and marks the sequence axis dynamic.
        inputs, targets = self.setup().splits[split]
        return inputs[:size].long(), targets[:size]

    def metadata(self) -> DataMetadata:
        self.setup()
        return DataMetadata(
            input_shape=[self.max_length],
            num_outputs=len(self.class_names),
            num_classes=len(self.class_names),
            class_names=list(self.class_names),
            vocab_size=self.vocab_size,
            pad_id=self.pad_id,
            extra={"dynamic_axes": {"sequence": 1}, "tokenizer": self.tokenizer_name},
        )


def pad_sequences(encoded: list[list[int]], pad_id: int, width: int) -> torch.Tensor:
    """[N, width] int32 ids, right-padded with ``pad_id`` (sequences are already at most ``width`` long)."""
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    flat = np.fromiter(itertools.chain.from_iterable(encoded), dtype=np.int32, count=int(lengths.sum()))
    padded = np.full((len(encoded), width), pad_id, dtype=np.int32)
    padded[np.arange(width) < lengths[:, None]] = flat  # row-major: each row's ids land left-aligned
    return torch.from_numpy(padded)
