"""Ctrl-C and preemption (SIGTERM): finish the current step, save a resumable checkpoint, exit."""

from __future__ import annotations

import logging
import signal
import threading
import time

from dlx.engine.distributed import launched_by_torchrun

log = logging.getLogger("dlx")


class GracefulStop:
    """The first SIGINT/SIGTERM asks the training loop to stop after its current step; a second Ctrl-C
    stops at once (the last checkpoint on disk stays valid: checkpoints are written atomically)."""

    def __init__(self) -> None:
        self.signal_number: int | None = None
        self.received = 0.0
        # A Ctrl-C in a terminal reaches every process of a multi-process run, and torchrun passes it on
        # to them once more a moment later: that echo is not a second Ctrl-C.
        self.echo_seconds = 1.0 if launched_by_torchrun() else 0.0
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signal_number is not None

    def _handle(self, signal_number: int, frame: object) -> None:
        if self.signal_number is not None and signal_number == signal.SIGINT:
            if time.monotonic() - self.received < self.echo_seconds:
                return  # the same Ctrl-C again, passed on by torchrun (see __init__)
            raise KeyboardInterrupt
        self.signal_number, self.received = signal_number, time.monotonic()
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
