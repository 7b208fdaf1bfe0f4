"""Weights & Biases: online when logged in, offline otherwise; never hangs, prompts or stops training.

W&B runs in a process of its own (dlx.loggers.wandb_worker): importing wandb and starting a run take one to
two seconds of Python, which in a thread of the training process would hold its interpreter lock while
training runs. Records go to that process through a queue (log records in a batch once a second), so
logging never waits for it.
"""

from __future__ import annotations

import json
import logging
import netrc
import os
import queue
import secrets
import string
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

log = logging.getLogger("dlx")

# Log records go to W&B's process in a batch at most this often; anything else (the start, a summary, a
# checkpoint upload, the finish) at once. A write per record, with W&B's process woken by each, cost the
# tiny MLP of scripts/bench 3-4% of its steps on 2 cores (36 records a second).
SEND_SECONDS = 1.0


def has_api_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or ""
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def resolved_mode(mode: str) -> str:
    """``auto`` made concrete: online when an API key is configured, else offline."""
    if mode != "auto":
        return mode
    return "online" if has_api_key() else "offline"


def launch_worker(settings: Any) -> subprocess.Popen | None:
    """Start W&B's process (it imports wandb at once) before there is a run to log to: called while the
    data and model are built, it is ready when training starts instead of competing with it."""
    if settings.mode == "disabled":
        return None
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "dlx.loggers.wandb_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # wandb keeps its own logs in the run's wandb/ folder
            env={**os.environ, "WANDB_SILENT": os.environ.get("WANDB_SILENT", "true")},
            start_new_session=True,  # its own signals: the training process decides when it ends
        )
    except OSError as error:
        log.warning("W&B could not start (%s); continuing without it.", error)
        return None


def discard_worker(worker: subprocess.Popen | None) -> None:
    """A worker whose run never began (the config was refused before training)."""
    if worker is not None:
        worker.kill()
        worker.wait()


class WandbRun:
    """The training process's side of a W&B run: every call is best-effort and returns at once."""

    def __init__(
        self,
        settings: Any,
        run_folder: Path,
        config: dict[str, Any],
        run_id: str | None,
        worker: subprocess.Popen | None = None,
    ):
        """``worker``: from ``launch_worker``, started earlier; else one is started now."""
        self.mode = resolved_mode(settings.mode)
        self._chosen_for_you = settings.mode == "auto"
        # Chosen here, not by W&B, so checkpoints can name the run before it has started.
        self.run_id = run_id or "".join(
            secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8)
        )
        # Starting W&B may take the online timeout, an offline start and sending what was queued.
        self.finish_timeout = 2 * float(settings.init_timeout) + 60
        self._requests: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._worker: subprocess.Popen | None = None
        self._worker_gone = threading.Event()  # nothing more is queued for a worker that has died
        self._send_now = threading.Event()  # the run is finishing: records wait no longer
        self._finishing = False
        if self.mode == "disabled":
            return
        self._worker = worker or launch_worker(settings)
        if self._worker is None:
            self.mode = "disabled"
            return
        self._send_request(
            action="start",
            mode=self.mode,
            init_timeout=float(settings.init_timeout),
            arguments=dict(
                dir=str(run_folder),
                project=settings.project,
                entity=settings.entity,
                group=settings.group,
                tags=list(settings.tags) or None,
                config=config,
                name=run_folder.name,
                id=self.run_id,
                resume="allow",
            ),
        )
        self._sender = threading.Thread(target=self._send_all, name="dlx-wandb-send", daemon=True)
        self._reader = threading.Thread(target=self._read_replies, name="dlx-wandb-read", daemon=True)
        self._sender.start()
        self._reader.start()

    def announce(self) -> None:
        """Say why W&B logs offline when the user left the choice to dlx (once the run is going ahead)."""
        if self._chosen_for_you and self.mode == "offline":
            log.info(
                "W&B: not logged in, logging offline. `wandb login` to log online; `wandb sync <run>/wandb` "
                "uploads an offline run."
            )

    @property
    def id(self) -> str | None:
        return None if self.mode == "disabled" else self.run_id

    def _send_request(self, **request: Any) -> None:
        if self._worker is not None and not self._worker_gone.is_set():
            self._requests.put(request)

    def _send_all(self) -> None:
        pipe = self._worker.stdin
        try:
            while True:
                batch = [self._requests.get()]
                if batch[0] is not None and batch[0]["action"] == "log":
                    self._send_now.wait(SEND_SECONDS)  # let the next records join it
                while not self._requests.empty():
                    batch.append(self._requests.get())
                requests = [request for request in batch if request is not None]
                lines = "".join(json.dumps(request, default=_plain) + "\n" for request in requests)
                pipe.write(lines.encode())
                pipe.flush()
                if len(requests) < len(batch):  # begin_finish's end mark, after the finish request
                    break
        except (OSError, ValueError):  # the worker is gone; finish() reports its exit code
            self._worker_gone.set()
        finally:
            try:
                pipe.close()
            except OSError:
                pass

    def _read_replies(self) -> None:
        for line in self._worker.stdout:
            try:
                reply = json.loads(line)
            except ValueError:
                continue
            self.mode = reply.get("mode", self.mode)
            if reply.get("warning"):
                log.warning("%s", reply["warning"])

    def log(self, metrics: dict[str, Any], step: int) -> None:
        self._send_request(action="log", metrics=metrics, step=step)

    def summary(self, values: dict[str, Any]) -> None:
        self._send_request(action="summary", values=values)

    def log_checkpoint(self, path: Path) -> None:
        self._send_request(action="artifact upload", path=str(path))

    def begin_finish(self, exit_code: int = 0) -> None:
        """End the run once what is queued is sent; ``finish`` waits for W&B to have written it."""
        if self._worker is None or self._finishing:
            return
        self._finishing = True
        self._send_request(action="finish", exit_code=exit_code)
        self._requests.put(None)  # the sender stops after the finish request and closes the pipe
        self._send_now.set()

    def finish(self, exit_code: int = 0) -> None:
        self.begin_finish(exit_code)
        if self._worker is None:
            return
        try:
            self._worker.wait(self.finish_timeout)
        except subprocess.TimeoutExpired:
            log.warning("W&B did not finish within %.0f s; stopped it.", self.finish_timeout)
            self._worker.kill()
            self._worker.wait()
        self._reader.join()
        if self._worker.returncode not in (0, None):
            log.warning(
                "The W&B process ended with exit code %s; metrics.jsonl has every metric.",
                self._worker.returncode,
            )
        self._worker = None


def _plain(value: Any) -> Any:
    """JSON for what json cannot write itself: numbers from numpy or torch, else their text."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)
