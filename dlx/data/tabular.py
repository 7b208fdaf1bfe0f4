"""A CSV file as a classification or regression problem: numeric feature columns and one target column."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from dlx.data.base import DataMetadata, DataModule
from dlx.data.splits import check_fractions, fraction_split, train_statistics
from dlx.errors import DlxError, did_you_mean

TASK_TYPES = ("classification", "regression")
MISSING_WORDS = {
    "NA",
    "N/A",
    "NaN",
    "nan",
    "NULL",
    "null",
    "None",
    "-",
    "?",
}  # how files mark a missing number


class TabularData(DataModule):
    """Rows of a CSV split by fraction; features optionally standardised with train-split statistics.

    Classification maps the target's sorted distinct values to class indices (their text is the class
    names); regression keeps the target as a float column (N, 1).
    """

    def __init__(
        self,
        path: str,
        target: str,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        seed: int = 0,
        drop_last: bool = False,
        features: list[str] | None = None,
        task_type: str = "classification",
        standardize: bool = True,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 0,
        encoding: str = "utf-8",
    ):
        """``features``: the input columns; None = every column except the target. The delimiter (comma,
        semicolon, tab or bar) is read from the file."""
        super().__init__(
            batch_size=batch_size, eval_batch_size=eval_batch_size, seed=seed, drop_last=drop_last
        )
        if task_type not in TASK_TYPES:
            raise DlxError(
                f"Unknown data.task_type '{task_type}'.{did_you_mean(task_type, TASK_TYPES)} "
                "Type `data.task_type=classification` or `data.task_type=regression`."
            )
        check_fractions(val_fraction, test_fraction)
        self.path, self.target = Path(path).expanduser(), target
        self.features = list(features) if features is not None else None
        self.task_type, self.standardize = task_type, standardize
        self.val_fraction, self.test_fraction, self.split_seed = val_fraction, test_fraction, split_seed
        self.feature_names: list[str] = []
        self.class_names: list[str] | None = None
        self.mean: list[float] | None = None
        self.std: list[float] | None = None
        self.target_mean: list[float] | None = None
        self.target_std: list[float] | None = None
        self.encoding = encoding
        self.restored = False  # a checkpoint's columns, classes and statistics, used as they were trained

    # -- what was learnt from the training file travels in checkpoints ---------------------------
    def state_dict(self) -> dict[str, Any]:
        keys = ("feature_names", "class_names", "mean", "std", "target_mean", "target_std")
        return {key: getattr(self, key) for key in keys}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)
        self.restored = bool(state.get("feature_names"))

    # -- reading --------------------------------------------------------------------------------
    def read_table(self) -> Any:
        import pandas as pd

        if not self.path.is_file():
            raise DlxError(
                f"data.path '{self.path.absolute()}' is not a file. Point `data.path=` at your CSV file "
                "(a relative path is taken from the directory dlx runs in)."
            )
        try:
            # Only empty cells are missing: "NA" (North America) or "None" can be a class name.
            table = pd.read_csv(
                self.path,
                sep=self._delimiter(),
                encoding=self.encoding,
                skipinitialspace=True,
                keep_default_na=False,
                na_values=[""],
            )
        except UnicodeDecodeError as error:
            raise DlxError(
                f"data.path '{self.path}' is not {self.encoding} text ({error.reason} at byte "
                f"{error.start}). Give its encoding, e.g. `data.encoding=latin-1`, or convert it to UTF-8."
            ) from error
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
            raise DlxError(
                f"Could not read data.path '{self.path}' as CSV: {error}. It needs a header row of column "
                "names and rows of values below it, separated by commas (or semicolons, tabs or bars)."
            ) from error
        table.columns = [str(column).strip() for column in table.columns]
        if table.empty:
            raise DlxError(
                f"{self.path.name} has a header row ({', '.join(table.columns)}) but no rows of data below "
                "it."
            )
        return table

    def _delimiter(self) -> str:
        """The delimiter of the file's header line: the most frequent of comma, semicolon, tab and bar."""
        try:
            with open(self.path, encoding=self.encoding, errors="replace") as handle:
                header = handle.readline()
        except OSError:
            return ","
        counts = {delimiter: header.count(delimiter) for delimiter in (",", ";", "\t", "|")}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","

    def choose_columns(self, table: Any) -> list[str]:
        """The feature columns, after checking that every named column is in the file."""
        columns = [str(column) for column in table.columns]
        trained = self.feature_names if self.restored else []
        wanted = [self.target] + (self.features or []) + trained
        for name in dict.fromkeys(wanted):
            if name not in columns:
                if any(_is_number(column) for column in columns):  # names are seldom numbers
                    raise DlxError(
                        f"The first row of {self.path.name} ({', '.join(columns)}) looks like data, not "
                        "column names. Add a header row of column names, then name the target with "
                        "`data.target=`."
                    )
                key = "target" if name == self.target else "features"
                if name in trained:
                    raise DlxError(
                        f"The model was trained on column '{name}', which {self.path.name} lacks. Its "
                        f"columns are: {', '.join(columns)}. Give it a file with the training file's columns."
                    )
                raise DlxError(
                    f"Column '{name}' (data.{key}) is not in {self.path.name}.{did_you_mean(name, columns)} "
                    f"Its columns are: {', '.join(columns)}. Type e.g. `data.{key}=...` with one of these."
                )
        if trained:
            return list(trained)
        if self.features is None:
            return [column for column in columns if column != self.target]
        if self.target in self.features:
            raise DlxError(
                f"data.features includes the target column '{self.target}', which would let the model read "
                "the answer. Remove it from `data.features=`."
            )
        return self.features

    def feature_tensor(self, table: Any, features: list[str]) -> torch.Tensor:
        import pandas as pd

        if not features:
            raise DlxError(f"{self.path.name} has no feature columns besides the target '{self.target}'.")
        non_numeric = [name for name in features if not pd.api.types.is_numeric_dtype(table[name])]
        for name in non_numeric:
            words = {str(value) for value in table[name].dropna() if not _is_number(str(value))}
            if words and words <= MISSING_WORDS:
                raise DlxError(
                    f"Feature column {name} in {self.path.name} marks missing values as "
                    f"{', '.join(sorted(words))}. Fill or drop those rows in the CSV, or leave the column "
                    "out with `data.features=[...]`."
                )
        if non_numeric:
            raise DlxError(
                f"Feature columns {', '.join(non_numeric)} in {self.path.name} are not numeric. Encode them "
                "as numbers in the CSV, or leave them out by listing the numeric ones in "
                "`data.features=[...]`."
            )
        with_gaps = [name for name in features if table[name].isna().any()]
        if with_gaps:
            raise DlxError(
                f"Feature columns {', '.join(with_gaps)} in {self.path.name} have empty cells. Fill or drop "
                "those rows in the CSV, or leave the columns out with `data.features=[...]`."
            )
        return torch.tensor(table[features].to_numpy(dtype="float32"))

    def target_tensor(self, table: Any) -> torch.Tensor:
        import pandas as pd

        column = table[self.target]
        if column.isna().any():
            raise DlxError(
                f"The target column '{self.target}' in {self.path.name} has {int(column.isna().sum())} empty "
                "cells. Fill or drop those rows in the CSV."
            )
        if self.task_type == "regression":
            if not pd.api.types.is_numeric_dtype(column):
                raise DlxError(
                    f"The target column '{self.target}' is not numeric, so it cannot be a regression target. "
                    "Type `task=classification` to predict its values as classes."
                )
            return torch.tensor(column.to_numpy(dtype="float32")).unsqueeze(1)
        if self.restored and self.class_names:  # the classes the model was trained on, in its order
            index = {name: i for i, name in enumerate(self.class_names)}
            labels = [str(value) for value in column]
            unknown = sorted({label for label in labels if label not in index})
            if unknown:
                raise DlxError(
                    f"The target column '{self.target}' in {self.path.name} holds values the model was not "
                    f"trained on ({', '.join(unknown[:5])}); its classes are {', '.join(self.class_names)}."
                )
            return torch.tensor([index[label] for label in labels], dtype=torch.long)
        fractional = pd.api.types.is_float_dtype(column) and (column != column.round()).any()
        if fractional and column.nunique() > max(20, len(column) // 2):
            raise DlxError(
                f"The target column '{self.target}' holds {column.nunique()} different decimal numbers in "
                f"{len(column)} rows: a quantity to predict, not classes. Type `task=regression`."
            )
        codes, values = pd.factorize(column, sort=True)
        if len(values) < 2:
            raise DlxError(
                f"The target column '{self.target}' holds a single value ({values[0]}), so there is nothing "
                "to classify. Check `data.target=`, or use `data.task_type=regression` for a numeric target."
            )
        self.class_names = [str(value) for value in values]
        return torch.tensor(codes, dtype=torch.long)

    def load(self) -> None:
        table = self.read_table()
        self.feature_names = self.choose_columns(table)
        inputs = self.feature_tensor(table, self.feature_names)
        targets = self.target_tensor(table)
        indices = fraction_split(len(inputs), self.val_fraction, self.test_fraction, self.split_seed)
        if self.standardize and self.restored and self.mean is not None:  # the training file's statistics
            inputs = (inputs - torch.tensor(self.mean)) / torch.tensor(self.std)
        elif self.standardize:
            mean, std = train_statistics(inputs[indices["train"]], dims=(0,))
            inputs = (inputs - mean) / std
            self.mean, self.std = mean.tolist(), std.tolist()
            if self.task_type == "regression":  # the model learns them standardised (see DataMetadata)
                target_mean, target_std = train_statistics(targets[indices["train"]], dims=(0,))
                self.target_mean, self.target_std = target_mean.tolist(), target_std.tolist()
        self.splits = {split: (inputs[index], targets[index]) for split, index in indices.items()}

    def metadata(self) -> DataMetadata:
        self.setup()
        num_classes = len(self.class_names) if self.class_names is not None else None
        return DataMetadata(
            input_shape=[len(self.feature_names)],
            num_outputs=num_classes or 1,
            num_classes=num_classes,
            class_names=self.class_names,
            targets="classes" if num_classes else "values",
            mean=self.mean,
            std=self.std,
            target_mean=self.target_mean,
            target_std=self.target_std,
            extra={"features": list(self.feature_names), "target": self.target, "task_type": self.task_type},
        )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
