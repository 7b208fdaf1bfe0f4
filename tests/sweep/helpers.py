"""Shared by the sweep tests: tiny budgets on digits, and ways to look inside a sweep."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

FAST = ["model=mlp", "data=digits", "logger=none", "trainer.progress=none", "trainer.max_epochs=2"]
# One torch thread per process: the tests share two cores with whatever else runs.
SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def sweep(*arguments: str) -> Any:
    from dlx.cli import app

    return CliRunner().invoke(app, ["sweep", *arguments])


def start_sweep(*arguments: str, cwd: Path | None = None) -> subprocess.Popen:
    """`dlx sweep ...` in its own process, as a user (or another machine) would start it."""
    command = [sys.executable, "-m", "dlx", "sweep", *arguments]
    return subprocess.Popen(
        command, cwd=cwd, env=SUBPROCESS_ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def sweep_folders(root: Path = Path(".")) -> list[Path]:
    return sorted(p.parent for p in (root / "outputs" / "sweeps").glob("*/*/sweep.json"))


def only_sweep_folder(root: Path = Path(".")) -> Path:
    folders = sweep_folders(root)
    assert len(folders) == 1, folders
    return folders[0]


def read_summary(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "summary.json").read_text())


def study_trials(storage_url: str, sweep_id: str) -> list[Any]:
    """Every Optuna trial of the sweep, straight from its storage."""
    import optuna

    from dlx.sweep.storage import with_installed_driver

    study = optuna.load_study(study_name=sweep_id, storage=with_installed_driver(storage_url))
    return study.get_trials(deepcopy=False)


def sqlite_url(folder: Path) -> str:
    return f"sqlite:///{(folder / 'sweep.db').resolve()}"
