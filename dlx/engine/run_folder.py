"""Run folders: ``<output_dir>/<experiment>/<YYYY-MM-DD_HH-MM-SS>-<id>/``, never colliding."""

from __future__ import annotations

import logging
import re
import secrets
import time
from pathlib import Path

from dlx.errors import DlxError


def safe_name(text: str) -> str:
    """A folder name that cannot climb out of its parent (no separators, no '..')."""
    cleaned = re.sub(r"[^A-Za-z0-9._=+-]+", "_", str(text)).strip("._")
    return cleaned or "run"


def create_run_folder(output_dir: str | Path, experiment: str) -> Path:
    parent = Path(output_dir).expanduser() / safe_name(experiment)
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DlxError(
            f"Cannot create the output folder '{parent}': {error.strerror}. Set "
            "`output_dir=<a writable folder>`."
        ) from error
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    for _ in range(100):
        folder = parent / f"{stamp}-{secrets.token_hex(3)}"
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        (folder / "checkpoints").mkdir()
        return folder
    raise DlxError(f"Could not create a unique run folder under '{parent}'.")


def attach_train_log(folder: Path) -> logging.Handler:
    """Copy dlx's log lines into ``train.log`` in the run folder."""
    handler = logging.FileHandler(folder / "train.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("dlx")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return handler


def detach_train_log(handler: logging.Handler) -> None:
    logging.getLogger("dlx").removeHandler(handler)
    handler.close()
