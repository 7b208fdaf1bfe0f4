"""Shared test setup: every run writes under tmp_path, W&B never reaches a network, no prompts."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_DISABLE_CODE", "true")
os.environ.pop("WANDB_API_KEY", None)
os.environ["NETRC"] = os.devnull  # "not logged in", whatever the developer's machine has
os.environ["DLX_CACHE_DIR"] = tempfile.mkdtemp(prefix="dlx-test-cache-")  # never the developer's cache


@pytest.fixture(autouse=True)
def _isolated_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DLX_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / ".wandb-cache"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / ".wandb-config"))
