"""Ctrl-C and preemption (SIGTERM): finish the current step, save a resumable checkpoint, exit."""

from __future__ import annotations

import logging
import signal
import threading

log = logging.getLogger("dlx")


class GracefulStop:
    """The first SIGINT/SIGTERM asks the training loop to stop after its current step; a second Ctrl-C
    stops at once (the last checkpoint on disk stays valid: checkpoints are written atomically)."""

    def __init__(self) -> None:
        self.signal_number: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signal_number is not None

    def _handle(self, signal_number: int, frame: object) -> None:
        if self.signal_number is not None and signal_number == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_number = signal_number
        log.warning(
            "%s received: saving a checkpoint after this step (Ctrl-C again to stop at once).",
            signal.Signals(signal_number).name,
        )

    def install(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for signal_number in (signal.SIGINT, signal.SIGTERM):
                self._previous[signal_number] = signal.signal(signal_number, self._handle)
        return self

    def uninstall(self) -> None:
        for signal_number, handler in self._previous.items():
            signal.signal(signal_number, handler)
        self._previous.clear()
