"""Character-level language modelling on one text file, as nanoGPT's shakespeare_char prepares and batches it.

The vocabulary is the sorted set of characters of the whole file; the first 90% is train, the last 10%
val (val also serves as test). Training batches are ``batch_size`` windows of ``block_size + 1``
characters at random offsets, drawn with one gather; evaluation walks every non-overlapping block.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlx.data.base import SPLITS, DataMetadata, DataModule, batch_seed
from dlx.data.text_files import read_text
from dlx.errors import DlxError

log = logging.getLogger("dlx")

Batch = tuple[torch.Tensor, torch.Tensor]


class RandomBlockLoader:
    """``num_batches`` batches of random windows (x, y = x shifted by one), each drawn from a generator
    seeded by (seed, epoch, batch), so a run resumed at ``start_batch`` continues with the same batches."""

    def __init__(
        self,
        tokens: torch.Tensor,
        block_size: int,
        batch_size: int,
        num_batches: int,
        seed: int = 0,
        epoch: int = 0,
        start_batch: int = 0,
        process_rank: int = 0,
        process_count: int = 1,
    ):
        self.tokens, self.block_size, self.batch_size = tokens, block_size, batch_size
        self.num_batches, self.seed, self.epoch, self.start_batch = num_batches, seed, epoch, start_batch
        self.process_rank, self.process_count = process_rank, process_count  # see DataModule.shard

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[Batch]:
        window = torch.arange(self.block_size + 1)
        highest_start = len(self.tokens) - self.block_size
        for batch_index in range(self.start_batch, self.num_batches):
            generator = torch.Generator().manual_seed(batch_seed(self.seed, self.epoch, batch_index))
            starts = torch.randint(highest_start, (self.batch_size,), generator=generator)
            starts = starts[self.process_rank :: self.process_count]  # this process's share
            positions = (
                (starts[:, None] + window).view(-1).to(self.tokens.device)
            )  # one gather, see TensorLoader
            chunks = self.tokens.index_select(0, positions).view(len(starts), -1).long()
            yield chunks[:, :-1].contiguous(), chunks[:, 1:].contiguous()


class BlockLoader:
    """Consecutive batches of the split's non-overlapping blocks, in order."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor, batch_size: int, start_batch: int = 0):
        self.inputs, self.targets, self.batch_size, self.start_batch = (
            inputs,
            targets,
            batch_size,
            start_batch,
        )

    def __len__(self) -> int:
        return -(-len(self.inputs) // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        for batch_index in range(self.start_batch, len(self)):
            rows = slice(batch_index * self.batch_size, (batch_index + 1) * self.batch_size)
            yield self.inputs[rows].long(), self.targets[rows].long()


class CharLMData(DataModule):
    """A UTF-8 text file as characters: ``encode``/``decode`` work from a checkpoint's vocabulary alone.

    ``batches_per_epoch``: how many random batches make an epoch (null: as many as cover the train
    split once on average, len(train) // (block_size * batch_size)).
    """

    def __init__(
        self,
        path: str,
        block_size: int = 64,
        batch_size: int = 12,
        eval_batch_size: int | None = None,
        seed: int = 0,
        batches_per_epoch: int | None = None,
        val_fraction: float = 0.1,
        encoding: str = "utf-8",
    ):
        super().__init__(batch_size=batch_size, eval_batch_size=eval_batch_size, seed=seed)
        if block_size < 1:
            raise DlxError(
                f"data.block_size must be at least 1, got {block_size}. Type e.g. `data.block_size=64`."
            )
        if batches_per_epoch is not None and batches_per_epoch < 1:
            raise DlxError(
                f"data.batches_per_epoch must be at least 1, got {batches_per_epoch}. Type e.g. "
                "`data.batches_per_epoch=500`, or `data.batches_per_epoch=null` to cover the train split "
                "once."
            )
        if not 0.0 < val_fraction < 1.0:
            raise DlxError(
                f"data.val_fraction={val_fraction} is not a fraction in (0, 1). Type e.g. "
                "`data.val_fraction=0.1` (the share at the end of the text held out for validation)."
            )
        self.path, self.block_size, self.encoding = Path(path).expanduser(), block_size, encoding
        self.batches_per_epoch, self.val_fraction = batches_per_epoch, val_fraction
        self.said_test_is_val = False
        self.vocabulary: list[str] | None = None  # learnt from the file, or restored from a checkpoint
        self.char_ids: dict[str, int] = {}
        self.tokens: dict[str, torch.Tensor] = {}  # the text of each split as one tensor of ids

    # -- vocabulary -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"vocabulary": self.vocabulary}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("vocabulary"):
            self.set_vocabulary(list(state["vocabulary"]))

    def set_vocabulary(self, characters: list[str]) -> None:
        self.vocabulary = characters
        self.char_ids = {character: index for index, character in enumerate(characters)}

    def encode(self, text: str) -> list[int]:
        """Ids of the characters of ``text`` (e.g. a prompt); a DlxError names those not in the vocabulary."""
        if self.vocabulary is None:
            self.setup()
        unknown = sorted({character for character in text if character not in self.char_ids})
        if unknown:
            known = "".join(self.vocabulary)
            raise DlxError(
                "The text has characters the model never saw in training: "
                f"{', '.join(map(repr, unknown[:20]))}. Its vocabulary has {len(known)} characters: "
                f"{known!r}. Remove or replace the others."
            )
        return [self.char_ids[character] for character in text]

    def decode(self, ids: list[int] | torch.Tensor) -> str:
        if self.vocabulary is None:
            self.setup()
        values = ids.tolist() if isinstance(ids, torch.Tensor) else ids
        return "".join(self.vocabulary[index] for index in values)

    # -- loading --------------------------------------------------------------------------------
    def load(self) -> None:
        text = read_text(self.path, self.encoding, "data.path")
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        if self.vocabulary is None:
            characters, ids = np.unique(codes, return_inverse=True)  # code-point order = sorted(set(text))
            self.set_vocabulary([chr(code) for code in characters])
        else:
            ids = self.ids_in_restored_vocabulary(codes)
        dtype = np.uint8 if len(self.vocabulary) <= 256 else np.int32
        tokens = torch.from_numpy(ids.astype(dtype))
        n_train = int(len(tokens) * (1 - self.val_fraction))
        self.tokens = {"train": tokens[:n_train], "val": tokens[n_train:]}
        self.check_block_size(len(tokens))
        self.tokens["test"] = self.tokens["val"]
        self.splits = {split: self.blocks(part) for split, part in self.tokens.items()}

    def ids_in_restored_vocabulary(self, codes: np.ndarray) -> np.ndarray:
        known = np.array([ord(character) for character in self.vocabulary], dtype=np.uint32)
        order = np.argsort(known)
        positions = np.searchsorted(known[order], codes).clip(max=len(known) - 1)
        missing = known[order][positions] != codes
        if missing.any():
            unknown = sorted({chr(code) for code in codes[missing]})
            raise DlxError(
                f"{self.path} has characters the checkpoint's vocabulary lacks: "
                f"{', '.join(map(repr, unknown[:20]))}. The model was trained on another text; train a new "
                "run on this file instead of resuming."
            )
        return order[positions]

    def check_block_size(self, total: int) -> None:
        for split, part in self.tokens.items():
            if len(part) > self.block_size:
                continue
            shortest = min(len(tokens) for tokens in self.tokens.values())
            where = "first" if split == "train" else "last"
            share = 1 - self.val_fraction if split == "train" else self.val_fraction
            fix = f"Type e.g. `data.block_size={shortest - 1}`, or use" if shortest > 1 else "Use"
            raise DlxError(
                f"data.block_size={self.block_size} is too long for {self.path.name}: it has {total:,} "
                f"characters, so its {split} split (the {where} {share:.0%}) has {len(part):,}, and a block "
                f"needs block_size + 1 of them. {fix} a longer text."
            )

    def blocks(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every non-overlapping block of the split as (x, y = x shifted by one): views, no copies."""
        count = (len(tokens) - 1) // self.block_size
        length = count * self.block_size
        return tokens[:length].view(count, self.block_size), tokens[1 : length + 1].view(
            count, self.block_size
        )

    # -- batches --------------------------------------------------------------------------------
    def loader(
        self, split: str, epoch: int = 0, start_batch: int = 0, shuffle: bool | None = None
    ) -> RandomBlockLoader | BlockLoader:
        if split not in SPLITS:
            raise DlxError(
                f"Unknown data split '{split}'. Use one of: {', '.join(SPLITS)} (e.g. `data.split=val`)."
            )
        self.setup()
        if split == "test" and not self.said_test_is_val:
            self.said_test_is_val = True
            log.info(
                "data=char_lm has no test split of its own: 'test' is the val split, the last %g%% of %s.",
                100 * self.val_fraction,
                self.path,
            )
        training = split == "train"
        batch_size = self.batch_size if training else self.eval_batch_size
        if training if shuffle is None else shuffle:
            tokens = self.tokens[split]
            num_batches = (training and self.batches_per_epoch) or max(
                1, len(tokens) // (self.block_size * batch_size)
            )
            return RandomBlockLoader(
                tokens,
                self.block_size,
                batch_size,
                num_batches,
                self.seed,
                epoch,
                start_batch,
                *((self.process_rank, self.process_count) if training else (0, 1)),
            )
        # Every process evaluates every block: the metrics' sums grow alike, so their means are unchanged.
        return BlockLoader(*self.splits[split], batch_size, start_batch)

    def prepare(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs.long()

    def example_batch(self, split: str = "val", size: int = 2) -> Batch:
        inputs, targets = self.setup().splits[split]
        return inputs[:size].long(), targets[:size].long()

    def metadata(self) -> DataMetadata:
        if self.vocabulary is None:
            self.setup()
        return DataMetadata(
            input_shape=[self.block_size],
            num_outputs=len(self.vocabulary),
            vocab_size=len(self.vocabulary),
            targets="next_tokens",
            extra={"dynamic_axes": {"sequence": 1}},
        )
