"""Tiny trained runs the export and predict tests share: one per model family, trained once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import train_run

# Small settings per registered model family, on the bundled 8x8 digits. A new family needs an entry
# here: the export tests cover every family in the registry and fail without one.
FAMILY_SETTINGS: dict[str, list[str]] = {
    "mlp": ["model=mlp", "model.hidden_sizes=[32]", "optimizer.lr=0.01"],
    "cnn": ["model=cnn", "model.channels=[4,8]", "optimizer.lr=0.01"],
    "resnet": ["model=resnet", "model.style=cifar", "model.depth=18", "trainer.max_steps=3"],
}
# (family, format) -> words of the expected refusal, for families a format cannot express.
NOT_EXPORTABLE: dict[tuple[str, str], str] = {}

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
    return trained_checkpoint(root, family, *FAMILY_SETTINGS[family])
