"""Weights & Biases: online when logged in, offline otherwise; never hangs, prompts or stops training."""

from __future__ import annotations

import logging
import netrc
import os
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
        if self.mode == "disabled":
            return
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        arguments = dict(
            dir=str(run_folder),
            project=settings.project,
            entity=settings.entity,
            group=settings.group,
            tags=list(settings.tags) or None,
            config=config,
            name=run_folder.name,
            id=run_id,
            resume="allow",
            settings=wandb.Settings(init_timeout=float(settings.init_timeout), console="off", silent=True),
        )
        if self.mode == "online":
            try:
                self.run = wandb.init(mode="online", **arguments)
            except Exception as error:  # unreachable server, bad key, timeout
                log.warning(
                    "W&B online init failed (%s); logging offline instead. Upload later with "
                    "`wandb sync %s`.",
                    str(error).splitlines()[0][:160],
                    run_folder / "wandb",
                )
                self.mode = "offline"
                wandb.teardown()  # a failed online start can leave the shared W&B service unusable
        if self.run is None:
            try:
                self.run = wandb.init(mode="offline", **arguments)
            except Exception as error:
                log.warning(
                    "W&B could not start (%s); continuing without it. metrics.jsonl has every metric.",
                    str(error).splitlines()[0][:160],
                )
                self.mode = "disabled"

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
        return self.run.id if self.run is not None else None

    def _guarded(self, action: str, function: Any, *args: Any, **kwargs: Any) -> None:
        if self.run is None:
            return
        try:
            function(*args, **kwargs)
        except Exception as error:
            log.warning(
                "W&B %s failed (%s); W&B logging is off for the rest of the run, metrics.jsonl continues.",
                action,
                str(error).splitlines()[0][:160],
            )
            self.run = None

    def log(self, metrics: dict[str, Any], step: int) -> None:
        self._guarded("log", lambda: self.run.log(metrics, step=step))

    def summary(self, values: dict[str, Any]) -> None:
        self._guarded("summary", lambda: self.run.summary.update(values))

    def log_checkpoint(self, path: Path) -> None:
        def upload() -> None:
            import wandb

            artifact = wandb.Artifact(f"model-{self.run.id}", type="model")
            artifact.add_file(str(path))
            self.run.log_artifact(artifact, aliases=["best"])

        self._guarded("artifact upload", upload)

    def finish(self, exit_code: int = 0) -> None:
        self._guarded("finish", lambda: self.run.finish(exit_code=exit_code))
        self.run = None
