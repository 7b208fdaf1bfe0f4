"""Tiny trained runs the export and predict tests share: one per model family, trained once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import train_run
from tests.text_on_disk import write_char_text, write_sst2_folder

# Tiny text data sets, written on first use into the session's folder that ``{text}`` stands for.
SENTIMENT = ["data=sst2", "data.root={text}/SST-2", "data.max_length=12", "data.batch_size=16"]
PLAY = ["data=char_lm", "data.path={text}/play.txt", "data.block_size=16", "data.batches_per_epoch=4"]
TINY_BERT = (
    "{{model_type:bert,hidden_size:16,num_hidden_layers:1,num_attention_heads:2,intermediate_size:32}}"
)

# Small settings per registered model family, on the bundled 8x8 digits unless they say otherwise. A new
# family needs an entry here: the export tests cover every family in the registry and fail without one.
FAMILY_SETTINGS: dict[str, list[str]] = {
    "mlp": ["model=mlp", "model.hidden_sizes=[32]", "optimizer.lr=0.01"],
    "cnn": ["model=cnn", "model.channels=[4,8]", "optimizer.lr=0.01"],
    "airbench": ["model=airbench", "model.widths=[8,16]", "optimizer.lr=0.01"],  # two blocks fit 8x8
    "resnet": ["model=resnet", "model.style=cifar", "model.depth=18", "trainer.max_steps=3"],
    "rnn": [
        "model=rnn",
        *SENTIMENT,
        "model.embedding_size=8",
        "model.hidden_size=8",
        "model.bidirectional=true",
    ],
    "transformer": [
        "model=transformer",
        *SENTIMENT,
        "model.d_model=16",
        "model.num_heads=2",
        "model.num_layers=1",
    ],
    "hf": ["model=hf", *SENTIMENT, f"model.config={TINY_BERT}"],
    "gpt": [
        "model=gpt",
        "task=language_modeling",
        *PLAY,
        "model.n_layer=1",
        "model.n_head=2",
        "model.n_embd=16",
    ],
}
# (family, format) -> words of the expected refusal, for families a format cannot express.
NOT_EXPORTABLE: dict[tuple[str, str], str] = {
    # BERT's 512 position embeddings bound the sequence axis, which torch.export refuses to leave open.
    ("hf", "pt2"): "cannot be exported with torch.export: Constraints violated \\(sequence\\)",
}

_trained: dict[str, Path] = {}


def trained_checkpoint(root: Path, name: str, *overrides: str) -> Path:
    """best.ckpt of a one-epoch run named ``name`` (trained on first use, then reused)."""
    if name not in _trained:
        output_dir = root / name
        train_run("trainer.max_epochs=1", *overrides, f"output_dir={output_dir}")
        _trained[name] = next(output_dir.glob("*/*/checkpoints/best.ckpt"))
    return _trained[name]


def family_checkpoint(root: Path, family: str) -> Path:
    if family not in FAMILY_SETTINGS:
        pytest.fail(
            f"Model family '{family}' has no test settings: add small ones to FAMILY_SETTINGS in "
            "tests/export/runs.py so that its export is tested."
        )
    text = root / "text-data"
    if not text.exists():
        write_sst2_folder(text / "SST-2")
        write_char_text(text / "play.txt")
    return trained_checkpoint(
        root, family, *(setting.format(text=text) for setting in FAMILY_SETTINGS[family])
    )
