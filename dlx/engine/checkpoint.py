"""Checkpoints: written atomically, loaded as data (never by running pickled code), best-k kept."""

from __future__ import annotations

import errno
import math
import os
import pickle
import random
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dlx.engine.monitor import is_improvement
from dlx.errors import DlxError, first_line

if TYPE_CHECKING:
    from dlx.tasks.base import Task


def save_checkpoint_atomically(state: dict[str, Any], path: Path) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``.

    A crash at any moment leaves either the old file or the new one, never a torn file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(descriptor, 0o666 & ~_umask())  # mkstemp's 0600 would hide it from the team's group
        with os.fdopen(descriptor, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except (OSError, RuntimeError) as error:
        written = Path(temporary).stat().st_size if Path(temporary).exists() else 0
        Path(temporary).unlink(missing_ok=True)
        reason = _write_failure(error, path.parent, written)
        if reason is None:
            raise
        last = path.parent / "last.ckpt"
        after = (
            f"The last checkpoint ({last}) is intact. Free space (or fix permissions) and continue with "
            f"`dlx train --resume {path.parent.parent}`."
            if last.exists()
            else "The run had no checkpoint yet. Free space (or fix permissions) and start it again."
        )
        raise DlxError(f"Could not write the checkpoint {path}: {reason}. {after}") from error
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _write_failure(error: Exception, folder: Path, written: int) -> str | None:
    """Why a write failed, in the user's terms, or None for an error that is not about the disk."""
    if isinstance(error, OSError):
        known = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES)
        return error.strerror if error.errno in known else None
    # torch.save reports a short write as a RuntimeError ("unexpected pos"), hiding ENOSPC.
    free = shutil.disk_usage(folder).free
    return "No space left on device" if free <= max(written, 1 << 20) else None


def link_atomically(source: Path, destination: Path) -> None:
    """Make ``destination`` the same file as ``source`` (hard link, or copy where links fail)."""
    temporary = destination.with_name(f".{destination.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    try:
        os.link(source, temporary)
    except OSError:
        shutil.copyfile(source, temporary)
    os.replace(temporary, destination)
    _fsync_folder(destination.parent)


def _fsync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def checkpoint_file(path: str | Path) -> Path:
    """``path``, or for a run folder (or its checkpoints/ folder) its best.ckpt, the model its summary
    reports (last.ckpt when it kept none: `trainer.save_top_k=0`). `--resume` reads last.ckpt instead."""
    path = Path(path)
    if path.is_dir():
        folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
        best = folder / "best.ckpt"
        return best if best.exists() else folder / "last.ckpt"
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a dlx checkpoint with ``weights_only=True``: tensors and plain data, no code."""
    from dlx.export.command import SUFFIXES

    path = checkpoint_file(path)
    if path.name.endswith(tuple(SUFFIXES.values())) and path.exists():
        raise DlxError(
            f"'{path}' is an exported model (`dlx export`), not a checkpoint: this command rebuilds the "
            "run from a checkpoint (.ckpt). Give the checkpoint it was exported from, e.g. "
            "outputs/<experiment>/<run>/checkpoints/best.ckpt."
        )
    if not path.exists():
        raise DlxError(
            f"Checkpoint '{path}' does not exist. Pass a file such as "
            "outputs/<experiment>/<run>/checkpoints/best.ckpt (or a run folder to use its best.ckpt)."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        import re

        blocked = re.search(r"unsupported GLOBAL (\S+)|Unsupported global: GLOBAL (\S+)", str(error))
        if not blocked:
            raise DlxError(
                f"Checkpoint '{path}' is unreadable (not a PyTorch checkpoint, or corrupt). "
                f"{_other_checkpoints(path)}"
            ) from error
        raise DlxError(
            f"Refusing to load '{path}': it holds a pickled Python object "
            f"({next(g for g in blocked.groups() if g)}) that would run code when loaded. dlx "
            "checkpoints never need that; only load files you trust with torch.load yourself."
        ) from error
    except MemoryError:
        raise
    except Exception as error:  # a file torch.load cannot read fails in many ways (a text file: KeyError)
        raise DlxError(
            f"Checkpoint '{path}' is unreadable (truncated or not a PyTorch file: "
            f"{first_line(error)[:200].rstrip('.')}). {_other_checkpoints(path)}"
        ) from error
    if not isinstance(state, dict) or "config" not in state or "model" not in state:
        raise DlxError(
            f"'{path}' is a PyTorch file but not a dlx checkpoint (it has no config and model "
            "state). Pass a checkpoint written by `dlx train`."
        )
    return state


def _umask() -> int:
    """The process's umask, read without setting it (os.umask would, for a moment, for every thread)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _other_checkpoints(path: Path) -> str:
    """What to use instead of the unreadable checkpoint ``path``."""
    if path.parent.name != "checkpoints":  # not a run's: the .ckpt files beside it are anyone's
        return "Give a checkpoint that dlx train wrote (outputs/<experiment>/<run>/checkpoints/best.ckpt)."
    others = sorted(p for p in path.parent.glob("*.ckpt") if p.name != path.name)
    if not others:
        return "No other checkpoint is beside it: train the run again."
    return (
        f"Use another checkpoint of the run: {', '.join(p.name for p in others)} in {path.parent} (e.g. "
        f"`dlx train --resume {others[0]}` goes on from there, `dlx eval {others[0]}` measures it)."
    )


def capture_rng_state() -> dict[str, Any]:
    numpy_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)), *numpy_state[2:]],
        "python": random.getstate(),
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    random.setstate(_as_tuples(state["python"]))


def _as_tuples(value: Any) -> Any:
    return tuple(_as_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


class CheckpointKeeper:
    """Keeps ``last.ckpt`` and the ``top_k`` best checkpoints by the monitored metric (``best.ckpt``)."""

    def __init__(self, folder: Path, monitor: str, mode: str, top_k: int):
        self.folder, self.monitor, self.mode, self.top_k = folder, monitor, mode, top_k
        self.top: list[tuple[float, str]] = []  # (score, file name), best first

    @property
    def best_score(self) -> float | None:
        return self.top[0][0] if self.top else None

    def is_better(self, score: float, reference: float | None) -> bool:
        return is_improvement(score, reference, self.mode)

    def save_last(self, state: dict[str, Any]) -> Path:
        path = self.folder / "last.ckpt"
        save_checkpoint_atomically(state, path)
        return path

    def offer(self, state: dict[str, Any], score: float, epoch: int, step: int) -> bool:
        """Save ``state`` if ``score`` ranks in the top k; return whether it is the new best."""
        if self.top_k == 0:
            return False
        worst = self.top[-1][0] if len(self.top) >= self.top_k else None
        if len(self.top) >= self.top_k and not self.is_better(score, worst):
            return False
        name = f"epoch{epoch:03d}-step{step:06d}.ckpt" if self.top_k > 1 else "best.ckpt"
        # Best first; a non-finite score (kept only while nothing finite exists) sorts last.
        ranked = sorted(
            [*self.top, (score, name)],
            key=lambda item: (not math.isfinite(item[0]), item[0] if self.mode == "min" else -item[0]),
        )
        kept = ranked[: self.top_k]
        # The file knows its own rank: a run resumed from it must not take a worse model for a better one.
        save_checkpoint_atomically(
            {**state, "checkpoints": {"top": [list(item) for item in kept]}}, self.folder / name
        )
        for _, dropped in ranked[self.top_k :]:
            if dropped != name:  # with top_k == 1 the new best has just replaced best.ckpt
                (self.folder / dropped).unlink(missing_ok=True)
        self.top = kept
        is_best = self.top[0][1] == name
        if is_best and self.top_k > 1:
            link_atomically(self.folder / name, self.folder / "best.ckpt")
        return is_best

    def state_dict(self) -> dict[str, Any]:
        return {"top": [[score, name] for score, name in self.top]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.top = [(float(score), str(name)) for score, name in state.get("top", [])]


def load_model_state(model: torch.nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Load weights, explaining a checkpoint that belongs to another model or holds NaN/Inf weights."""
    _load_explained(model.load_state_dict, state_dict, "weights", "model")
    # Buffers may hold infinities on purpose (attention masks); parameters never should.
    broken = [name for name, parameter in model.named_parameters() if not torch.isfinite(parameter).all()]
    if broken:
        raise DlxError(
            f"The checkpoint's weights hold NaN or Inf values ({', '.join(broken[:3])}"
            f"{', ...' if len(broken) > 3 else ''}): the file is damaged, or the model diverged in the step "
            "before it was saved. Use another checkpoint of the run (best.ckpt or last.ckpt beside it)."
        )


def load_task_state(task: Task, state: dict[str, torch.Tensor] | None) -> None:
    """Load the task's own parameters (beyond its model), explaining a checkpoint of another task."""
    if state is not None:  # None: a checkpoint from before tasks' own state was kept
        _load_explained(task.load_own_state_dict, state, "task state", "task")


def _load_explained(load: Callable[[dict], Any], state: dict, what: str, owner: str) -> None:
    """``load(state)``, explaining a checkpoint made for another ``owner`` (model or task)."""
    try:
        load(state)
    except RuntimeError as error:
        details = " ".join(str(error).split())[:400]
        raise DlxError(
            f"The checkpoint's {what} cannot be loaded into this {owner}, it does not fit ({details}). The "
            f"checkpoint was made with another {owner} or other {owner} settings: drop the {owner} "
            f"overrides, or use a checkpoint of this {owner}."
        ) from error
