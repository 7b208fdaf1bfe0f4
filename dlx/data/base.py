"""The data-module contract and the in-memory fast path (batches by tensor slicing)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch

from dlx.errors import DlxError

SPLITS = ("train", "val", "test")


@dataclass
class DataMetadata:
    """What a model and a task need to know about the data; written into ``cfg.data``."""

    input_shape: list[int]
    num_outputs: int
    num_classes: int | None = None
    class_names: list[str] | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    vocab_size: int | None = None  # token-id inputs (text): the embedding table's size
    pad_id: int | None = None  # token-id inputs: right-padding id, so lengths = (tokens != pad_id).sum(1)
    # What a batch's targets are: "classes" (a class id per sample), "next_tokens" (a token id per
    # position: language modelling) or "values" (numbers: regression). Tasks declare which they read.
    targets: str = "classes"
    # Numeric targets ("values"): their train-split mean and std, so that a regression model predicts
    # targets standardised to mean 0 and std 1 and maps them back (dlx/tasks/regression.py). None: as is.
    target_mean: list[float] | None = None
    target_std: list[float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_plain(self) -> dict[str, Any] | None:
        """These fields as plain data (what a ``weights_only`` checkpoint may hold), so that a trained run
        can describe its inputs without its data files; None when ``extra`` holds values that are not."""
        values = asdict(self)
        try:
            plain = json.loads(json.dumps(values))
        except (TypeError, ValueError):
            return None
        # JSON turns tuples into lists (the same to a reader) but also int keys into strings (not the same).
        return plain if _same(values, plain) else None

    @classmethod
    def from_plain(cls, values: dict[str, Any]) -> DataMetadata:
        """What ``to_plain`` wrote; fields this version does not know (from a newer dlx) are left out."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})


def _same(value: Any, plain: Any) -> bool:
    """Whether ``plain`` (``value`` through JSON) reads as ``value``: tuples may have become lists."""
    if isinstance(value, dict):
        return (
            isinstance(plain, dict)
            and list(value) == list(plain)
            and all(_same(v, plain[k]) for k, v in value.items())
        )
    if isinstance(value, (list, tuple)):
        return isinstance(plain, list) and len(value) == len(plain) and all(map(_same, value, plain))
    return value == plain or value != value and plain != plain  # NaN stays NaN


def batch_seed(seed: int, epoch: int, batch_index: int = 0, process_rank: int = 0) -> int:
    """A seed that depends only on (seed, epoch, batch), so a resumed run draws the same data order.

    ``process_rank`` > 0 gives each process of a multi-process run its own augmentation draws.
    """
    key = f"{seed}:{epoch}:{batch_index}" + (f":{process_rank}" if process_rank else "")
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


class TensorLoader:
    """Iterates (inputs, targets) batches by slicing tensors: no per-sample Python calls.

    ``transform`` (train only) gets a whole batch; its random draws come from a generator seeded by
    (seed, epoch, batch), so resuming mid-epoch reproduces the same augmentation.

    With ``process_count`` > 1 each process iterates the same global batches (same permutation, same count)
    and yields its share of each: every ``process_count``-th sample from ``process_rank``, as
    torch's DistributedSampler splits them. ``pad_shares`` (training) tops up a last batch that does not
    divide with samples from the epoch's start, so every process takes every step.
    """

    def __init__(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        epoch: int = 0,
        start_batch: int = 0,
        prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        process_rank: int = 0,
        process_count: int = 1,
        pad_shares: bool = False,
    ):
        self.inputs, self.targets = inputs, targets
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.seed, self.epoch, self.start_batch = seed, epoch, start_batch
        self.prepare, self.transform = prepare, transform
        self.process_rank, self.process_count, self.pad_shares = process_rank, process_count, pad_shares

    def __len__(self) -> int:
        n = len(self.inputs)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.inputs)
        order = None
        if self.shuffle:
            generator = torch.Generator().manual_seed(batch_seed(self.seed, self.epoch))
            order = torch.randperm(n, generator=generator).to(self.inputs.device)
        for batch_index in range(self.start_batch, len(self)):
            start, stop = batch_index * self.batch_size, min((batch_index + 1) * self.batch_size, n)
            if self.process_count > 1:
                inputs, targets = self._share(order, start, stop)
            elif order is None:
                inputs, targets = self.inputs[start:stop], self.targets[start:stop]
            else:
                # index_select, not inputs[index]: advanced indexing parallelises tiny gathers, which costs
                # milliseconds per batch on a busy CPU (measured: 7 us vs 13 ms for a [64, 64] batch).
                index = order[start:stop]
                inputs, targets = self.inputs.index_select(0, index), self.targets.index_select(0, index)
            if self.prepare is not None:
                inputs = self.prepare(inputs)
            if self.transform is not None:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(batch_seed(self.seed, self.epoch, batch_index + 1, self.process_rank))
                    inputs = self.transform(inputs)
            yield inputs, targets

    def _share(self, order: torch.Tensor | None, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This process's share of the global batch ``start:stop`` of the epoch's order."""
        order = torch.arange(len(self.inputs)) if order is None else order
        index = order[start:stop]
        shortfall = -len(index) % self.process_count
        if self.pad_shares and shortfall:
            index = torch.cat([index, order[:shortfall]])  # DistributedSampler's padding
        share = index[self.process_rank :: self.process_count]
        if len(share) == 0:
            # A last evaluation batch smaller than the process count leaves this process nothing, but the
            # model's forward may wait for it (FSDP gathers parameters): a one-sample stand-in with no
            # targets, which evaluation runs and does not count.
            return self.inputs[index[:1]], self.targets[:0]
        return self.inputs[share], self.targets[share]


class DataModule:
    """Base class: subclasses fill ``self.splits`` in ``load()`` and describe themselves in ``metadata()``.

    Every split is a pair of tensors (inputs, targets) kept in memory; ``loader()`` batches them.
    """

    process_rank, process_count = 0, 1  # this process's share of every batch: see shard()

    def __init__(
        self,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        seed: int = 0,
        drop_last: bool = False,
    ):
        for key, value in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
            if value is not None and value < 1:
                raise DlxError(f"data.{key} must be at least 1, got {value}. Type e.g. `data.{key}=64`.")
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.seed = seed
        self.drop_last = drop_last
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    # -- to implement ---------------------------------------------------------------------------
    def load(self) -> None:
        """Fill ``self.splits`` with ``{"train": (x, y), "val": (x, y), "test": (x, y)}``."""
        raise NotImplementedError

    def metadata(self) -> DataMetadata:
        raise NotImplementedError

    def prepare(self, inputs: torch.Tensor) -> torch.Tensor:
        """Turn stored inputs (e.g. uint8 images) into model inputs; applied per batch."""
        return inputs

    def train_transform(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """Augmentation applied to whole training batches after ``prepare``."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """What was learnt from the data (a vocabulary) and must travel in checkpoints: a run restored
        from a checkpoint loads it before ``setup`` instead of learning it again."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    # -- shared ---------------------------------------------------------------------------------
    def shard(self, process_rank: int, process_count: int) -> None:
        """Give this process its share of every batch (a multi-process run; see TensorLoader)."""
        self.process_rank, self.process_count = process_rank, process_count

    def setup(self) -> DataModule:
        if not self.splits:
            self.load()
            self._check_splits()
        return self

    def _check_splits(self) -> None:
        """What load() filled is what the loaders and the trainer read: explain it here if it is not."""
        name = type(self).__name__
        fill = (
            "Fill self.splits in load() with 'train', 'val' (and 'test') pairs of tensors (inputs, targets)."
        )
        for split in ("train", "val"):
            if split not in self.splits:
                raise DlxError(
                    f"{name}.load() made no '{split}' split (it made: {', '.join(self.splits)}). {fill}"
                )
        for split, pair in self.splits.items():
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                raise DlxError(f"{name}.splits['{split}'] is not a pair (inputs, targets). {fill}")
            inputs, targets = pair
            if not (isinstance(inputs, torch.Tensor) and isinstance(targets, torch.Tensor)):
                raise DlxError(
                    f"{name}.splits['{split}'] holds {type(inputs).__name__} and {type(targets).__name__}, "
                    "not tensors: convert them in load(), e.g. with torch.as_tensor."
                )
            if len(inputs) != len(targets):
                raise DlxError(
                    f"{name}.splits['{split}'] has {len(inputs)} inputs but {len(targets)} targets: each "
                    "input needs its target, in the same order."
                )

    def check_trainable(self) -> None:
        """Refuse data that cannot train: an empty train split, or no validation samples (validation picks
        the best checkpoint, and early stopping reads it)."""
        name = type(self).__name__
        if not len(self.splits["train"][0]):
            raise DlxError(f"The training split of {name} is empty: check the data's files and fractions.")
        if not len(self.splits["val"][0]):
            hint = next(
                (
                    f"`data.{key}={example}`"
                    for key, example in (("val_fraction", 0.1), ("val_size", 5000))
                    if hasattr(self, key)
                ),
                "a validation split",
            )
            raise DlxError(
                f"The validation split of {name} is empty, and training validates after each epoch (to pick "
                f"the best checkpoint and for early stopping). Hold some samples out for it, e.g. {hint}."
            )

    def keep_on_device(self, device: torch.device, max_fraction_of_free_memory: float = 0.5) -> bool:
        """Move every split onto an accelerator when they fit, so batches are sliced there: no per-step
        copy from host memory. Returns whether it moved them."""
        if device.type != "cuda":
            return False
        size = sum(t.numel() * t.element_size() for pair in self.splits.values() for t in pair)
        free, _ = torch.cuda.mem_get_info(device)
        if size > max_fraction_of_free_memory * free:
            return False
        self.splits = {name: (x.to(device), y.to(device)) for name, (x, y) in self.splits.items()}
        return True

    def loader(
        self, split: str, epoch: int = 0, start_batch: int = 0, shuffle: bool | None = None
    ) -> TensorLoader:
        if split not in SPLITS:
            raise DlxError(
                f"Unknown data split '{split}'. Use one of: {', '.join(SPLITS)} (e.g. `data.split=test`)."
            )
        self.setup()
        inputs, targets = self.splits[split]
        training = split == "train"
        return TensorLoader(
            inputs,
            targets,
            self.batch_size if training else self.eval_batch_size,
            shuffle=training if shuffle is None else shuffle,
            drop_last=self.drop_last and training,
            seed=self.seed,
            epoch=epoch,
            start_batch=start_batch,
            prepare=self.prepare,
            transform=self.train_transform() if training and shuffle is not False else None,
            process_rank=self.process_rank,
            process_count=self.process_count,
            pad_shares=training,
        )

    def example_batch(self, split: str = "val", size: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
        inputs, targets = self.setup().splits[split]
        return self.prepare(inputs[:size]), targets[:size]
