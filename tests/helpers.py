"""Small helpers the tests share: train a run in-process and read what it wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# data.batch_size=64: the engine tests count on digits' 20 batches per epoch (its default is 16).
FAST = ["logger=none", "trainer.progress=none", "trainer.max_epochs=2", "data.batch_size=64"]


def train_run(*overrides: str, fast: bool = True) -> dict[str, Any]:
    from dlx.train import train

    return train([*(FAST if fast else []), *overrides])


def only_run_folder(output_dir: Path = Path("outputs")) -> Path:
    folders = [p for p in output_dir.glob("*/*") if p.is_dir()]
    assert len(folders) == 1, folders
    return folders[0]
