"""Weights & Biases: online when logged in, offline otherwise; never hangs, prompts or stops training.

The run starts in a background thread (importing wandb and starting its service takes one to two
seconds) while training begins; records logged before it is ready are kept and sent once it is.
"""

from __future__ import annotations

import logging
import netrc
import os
import secrets
import string
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

log = logging.getLogger("dlx")


def has_api_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or ""
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


class WandbRun:
    """A thin guard around a wandb run: every call is best-effort once training has started."""

    def __init__(self, settings: Any, run_folder: Path, config: dict[str, Any], run_id: str | None):
        self.run = None
        self.mode = self._choose_mode(settings.mode)
        # Chosen here, not by W&B, so checkpoints can name the run before it has started.
        self.run_id = run_id or "".join(
            secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8)
        )
        self.start_timeout = 2 * float(settings.init_timeout) + 30
        self._lock = threading.Lock()
        self._waiting: list[tuple[str, Callable[[], Any]]] | None = []  # None once started
        if self.mode == "disabled":
            self._waiting = None
            return
        os.environ.setdefault("WANDB_SILENT", "true")
        self._starter = threading.Thread(
            target=self._start, args=(settings, run_folder, config), name="dlx-wandb-start", daemon=True
        )
        self._starter.start()

    def _start(self, settings: Any, run_folder: Path, config: dict[str, Any]) -> None:
        try:
            self.run = self._init(settings, run_folder, config)
        finally:
            with self._lock:
                waiting, self._waiting = self._waiting or [], None
                for action, call in waiting:
                    self._guarded(action, call)

    def _init(self, settings: Any, run_folder: Path, config: dict[str, Any]) -> Any:
        import wandb

        arguments = dict(
            dir=str(run_folder),
            project=settings.project,
            entity=settings.entity,
            group=settings.group,
            tags=list(settings.tags) or None,
            config=config,
            name=run_folder.name,
            id=self.run_id,
            resume="allow",
            settings=wandb.Settings(init_timeout=float(settings.init_timeout), console="off", silent=True),
        )
        if self.mode == "online":
            try:
                return wandb.init(mode="online", **arguments)
            except Exception as error:  # unreachable server, bad key, timeout
                log.warning(
                    "W&B online init failed (%s); logging offline instead. Upload later with "
                    "`wandb sync %s`.",
                    str(error).splitlines()[0][:160],
                    run_folder / "wandb",
                )
                self.mode = "offline"
                wandb.teardown()  # a failed online start can leave the shared W&B service unusable
        try:
            return wandb.init(mode="offline", **arguments)
        except Exception as error:
            log.warning(
                "W&B could not start (%s); continuing without it. metrics.jsonl has every metric.",
                str(error).splitlines()[0][:160],
            )
            self.mode = "disabled"
            return None

    def wait_until_started(self) -> None:
        """Wait for the start, including sending what was logged meanwhile (the thread ends after that)."""
        starter = getattr(self, "_starter", None)
        if starter is None or not starter.is_alive():
            return
        starter.join(self.start_timeout)
        if starter.is_alive():
            log.warning("W&B did not start within %.0f s; continuing without it.", self.start_timeout)
            with self._lock:
                self._waiting, self.mode = None, "disabled"

    @staticmethod
    def _choose_mode(mode: str) -> str:
        if mode != "auto":
            return mode
        if has_api_key():
            return "online"
        log.info(
            "W&B: not logged in, logging offline. `wandb login` to log online; `wandb sync <run>/wandb` "
            "uploads an offline run."
        )
        return "offline"

    @property
    def id(self) -> str | None:
        return None if self.mode == "disabled" else self.run_id

    def _call(self, action: str, call: Callable[[], Any]) -> None:
        """Run ``call`` now, or once the run has started."""
        with self._lock:
            if self._waiting is not None:
                self._waiting.append((action, call))
                return
        self._guarded(action, call)

    def _guarded(self, action: str, function: Callable[[], Any]) -> None:
        if self.run is None:
            return
        try:
            function()
        except Exception as error:
            log.warning(
                "W&B %s failed (%s); W&B logging is off for the rest of the run, metrics.jsonl continues.",
                action,
                str(error).splitlines()[0][:160],
            )
            self.run = None

    def log(self, metrics: dict[str, Any], step: int) -> None:
        self._call("log", lambda: self.run.log(metrics, step=step))

    def summary(self, values: dict[str, Any]) -> None:
        self._call("summary", lambda: self.run.summary.update(values))

    def log_checkpoint(self, path: Path) -> None:
        def upload() -> None:
            import wandb

            artifact = wandb.Artifact(f"model-{self.run.id}", type="model")
            artifact.add_file(str(path))
            self.run.log_artifact(artifact, aliases=["best"])

        self.wait_until_started()
        self._guarded("artifact upload", upload)

    def finish(self, exit_code: int = 0) -> None:
        self.wait_until_started()
        self._guarded("finish", lambda: self.run.finish(exit_code=exit_code))
        self.run = None
