"""Text to token ids: a word vocabulary learnt from the training split, or a Hugging Face tokenizer.

Both tokenizers answer the same three questions: ``encode_batch(texts, max_length)``, ``pad_id`` and
``vocab_size``. Sequences are truncated to ``max_length`` here and padded by the data module.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dlx.errors import DlxError, first_line

PAD_TOKEN, UNKNOWN_TOKEN = "<pad>", "<unk>"
PAD_ID, UNKNOWN_ID = 0, 1
# A word with its inner apostrophes (don't, n't, 's) or a single punctuation mark.
WORD_PATTERN = re.compile(r"\w+(?:'\w+)*|'\w+|[^\w\s]")


def split_words(text: str, lowercase: bool = True) -> list[str]:
    """Words and punctuation marks of ``text``: "It's great!" -> ["it's", "great", "!"]."""
    return WORD_PATTERN.findall(text.lower() if lowercase else text)


class WordTokenizer:
    """Words -> ids through a vocabulary built from the training texts: ``<pad>`` = 0, ``<unk>`` = 1,
    then the words seen at least ``min_freq`` times, most frequent first (ties alphabetical)."""

    pad_id, unknown_id = PAD_ID, UNKNOWN_ID

    def __init__(self, tokens: list[str], lowercase: bool = True):
        if tokens[:2] != [PAD_TOKEN, UNKNOWN_TOKEN]:
            raise DlxError(
                "The saved word vocabulary does not start with <pad>, <unk>; the checkpoint was not written "
                "by this version of dlx's word tokenizer. Train a new run."
            )
        self.tokens = list(tokens)
        self.lowercase = lowercase
        self.index = _WordIndex((token, index) for index, token in enumerate(self.tokens))

    @classmethod
    def build(
        cls, texts: Iterable[str], min_freq: int = 1, max_size: int | None = None, lowercase: bool = True
    ) -> WordTokenizer:
        counts = Counter(word for text in texts for word in split_words(text, lowercase))
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        words = [word for word, count in ranked if count >= min_freq]
        if max_size is not None:
            words = words[: max_size - 2]
        return cls([PAD_TOKEN, UNKNOWN_TOKEN, *words], lowercase)

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def encode(self, text: str, max_length: int | None = None) -> list[int]:
        return list(map(self.index.__getitem__, split_words(text, self.lowercase)[:max_length]))

    def encode_batch(self, texts: list[str], max_length: int) -> list[list[int]]:
        return [self.encode(text, max_length) for text in texts]

    def decode(self, ids: Iterable[int]) -> str:
        return " ".join(self.tokens[i] for i in ids if i != PAD_ID)


class _WordIndex(dict):
    """word -> id, with <unk> for any other word (looked up in C through map, twice as fast as .get)."""

    def __missing__(self, word: str) -> int:
        return UNKNOWN_ID


class HuggingFaceTokenizer:
    """A ``transformers`` tokenizer (name on the Hub or a local folder), with its own special tokens."""

    def __init__(self, name: str):
        self.name = name
        self.tokenizer = load_pretrained_tokenizer(name)
        if self.tokenizer.pad_token_id is None:
            raise DlxError(
                f"The tokenizer '{name}' has no padding token, so batches cannot be padded. Use a tokenizer "
                'that has one (BERT-style models do), or add `"pad_token"` to its folder\'s '
                "tokenizer_config.json and point `data.tokenizer=` at that folder."
            )
        self.pad_id = int(self.tokenizer.pad_token_id)
        unknown = self.tokenizer.unk_token_id
        self.unknown_id = int(unknown) if unknown is not None else self.pad_id
        self.vocab_size = len(self.tokenizer)

    def encode_batch(self, texts: list[str], max_length: int) -> list[list[int]]:
        if not texts:  # an empty split (e.g. SST-2's test): transformers fails on an empty batch
            return []
        encoded = self.tokenizer(
            texts,
            truncation=True,
            max_length=max_length,
            return_attention_mask=False,  # padding and masks come from pad_id; skipping them saves ~40%
            return_token_type_ids=False,
        )["input_ids"]
        return [list(ids) for ids in encoded]

    def decode(self, ids: Iterable[int]) -> str:
        return self.tokenizer.decode([i for i in ids if i != self.pad_id])


def load_pretrained_tokenizer(name: str) -> Any:
    """``AutoTokenizer.from_pretrained`` from a local folder, the local cache, or the Hub when reachable;
    otherwise a DlxError that says how to point at a local folder."""
    from transformers import AutoTokenizer

    from dlx.hub import from_cache_or_hub

    folder = Path(name).expanduser()
    if folder.is_dir():
        try:
            return AutoTokenizer.from_pretrained(str(folder))
        except (OSError, ValueError, TypeError) as error:
            raise DlxError(
                f"data.tokenizer='{name}' is a folder, but no tokenizer could be loaded from it: "
                f"{first_line(error).rstrip('.')}. The folder needs the files `save_pretrained` writes "
                "(tokenizer.json and tokenizer_config.json, or vocab.txt for BERT-style models)."
            ) from error
    if name.startswith(("/", "./", "../", "~")):
        raise DlxError(
            f"data.tokenizer='{name}' is not a folder. Point it at a folder holding a saved tokenizer, "
            "e.g. `data.tokenizer=/path/to/bert-base-uncased`, or give a Hugging Face Hub name."
        )
    return from_cache_or_hub(
        AutoTokenizer.from_pretrained,
        name,
        f"The tokenizer '{name}' is not in the local Hugging Face cache and the Hub cannot be reached "
        "(no network, or HF_HUB_OFFLINE is set), so it cannot be loaded offline. On a machine with "
        f"internet, save it with `AutoTokenizer.from_pretrained('{name}').save_pretrained('folder')`, "
        "copy the folder here and type `data.tokenizer=/path/to/folder`. When a pretrained model of that "
        "name is fine-tuned too (recipe=sst2_finetune), save the model into the same folder and type "
        "`model.pretrained=/path/to/folder data.tokenizer=/path/to/folder`.",
        lambda reason: (
            f"Could not load the tokenizer '{name}' from the Hugging Face Hub: {reason} Check "
            "the name (e.g. `data.tokenizer=bert-base-uncased`) or point at a local folder with "
            "`data.tokenizer=/path/to/folder`."
        ),
    )
