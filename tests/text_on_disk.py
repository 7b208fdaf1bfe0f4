"""Writers of tiny text data sets in the real on-disk formats: GLUE's SST-2 TSVs, rt-polarity's one file per
class, a Hugging Face tokenizer folder and a plain text for character models.

The sentences are seeded draws from small word lists; a positive sentence holds a positive word, so a
model can learn the labels in a few steps.
"""

from __future__ import annotations

import random
from pathlib import Path

POSITIVE = ["great", "moving", "charming", "funny", "brilliant"]
NEGATIVE = ["dull", "boring", "awful", "tedious", "bland"]
FILLER = ["the", "film", "is", "a", "story", "with", "its", "cast", "and", "plot", "'s", "n't", ","]


def sentences(count: int, seed: int = 0) -> list[tuple[str, int]]:
    """``count`` (sentence, label) pairs: 1 holds a positive word, 0 a negative one; 2 to 12 words."""
    rng = random.Random(seed)
    pairs = []
    for index in range(count):
        label = index % 2
        words = [rng.choice(FILLER) for _ in range(rng.randint(1, 11))]
        words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE if label else NEGATIVE))
        pairs.append((" ".join(words) + " .", label))
    return pairs


def write_sst2_folder(
    root: Path, n_train: int = 120, n_dev: int = 30, n_test: int = 20, seed: int = 0
) -> Path:
    """GLUE SST-2: train.tsv / dev.tsv with header ``sentence<TAB>label``, test.tsv ``index<TAB>sentence``
    without labels. A double quote appears unquoted, as in the real files."""
    root.mkdir(parents=True, exist_ok=True)
    pairs = sentences(n_train + n_dev + n_test, seed)
    pairs[0] = ('the " great " film .', 1)
    for name, rows in (("train", pairs[:n_train]), ("dev", pairs[n_train : n_train + n_dev])):
        lines = ["sentence\tlabel", *(f"{text} \t{label}" for text, label in rows)]
        (root / f"{name}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    test_rows = pairs[n_train + n_dev :]
    lines = ["index\tsentence", *(f"{index}\t{text}" for index, (text, _) in enumerate(test_rows))]
    (root / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def write_rt_polarity_folder(root: Path, per_class: int = 50, encoding: str = "utf-8", seed: int = 0) -> Path:
    """rt-polarity v1.0: ``rt-polarity.pos`` and ``rt-polarity.neg``, one sentence per line (the original
    files are latin-1; ``encoding`` writes them so)."""
    root.mkdir(parents=True, exist_ok=True)
    pairs = sentences(2 * per_class, seed)
    for label, suffix in ((1, "pos"), (0, "neg")):
        lines = [text for text, pair_label in pairs if pair_label == label]
        lines[0] = lines[0] + " the cliché of amélie"  # accented letters, as in the real files
        (root / f"rt-polarity.{suffix}").write_text("\n".join(lines) + "\n", encoding=encoding)
    return root


def write_tiny_hf_tokenizer(folder: Path) -> Path:
    """A BERT WordPiece tokenizer saved with ``save_pretrained``; [PAD] is id 3, not 0, on purpose."""
    from transformers import BertTokenizer

    words = sorted({word for word in POSITIVE + NEGATIVE + FILLER + ["."]})
    vocab = {
        token: index for index, token in enumerate(["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]", *words])
    }
    BertTokenizer(vocab=vocab).save_pretrained(str(folder))
    return folder


def write_char_text(path: Path, repeats: int = 40) -> Path:
    """A small play in plain UTF-8 text; its last line has a character (é) seen nowhere else."""
    verse = "ROMEO:\nBut soft, what light through yonder window breaks?\nJULIET:\nAy me!\n\n"
    path.write_text(verse * repeats + "FIN. é\n", encoding="utf-8")
    return path
