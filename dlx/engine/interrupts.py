"""Ctrl-C and preemption (SIGTERM): finish the current step, save a resumable checkpoint, exit.

A Ctrl-C in a terminal can reach dlx twice: the terminal signals every process in its foreground group,
and a launcher in that group passes the signal on once more a moment later (`uv run` about 0.2 s later,
measured with uv 0.13; torchrun to its workers). A SIGINT within ``ECHO_SECONDS`` of the last one is that
echo, never a second Ctrl-C: without this, one press would stop a run at once and lose its report.
"""

from __future__ import annotations

import logging
import signal
import threading
import time

log = logging.getLogger("dlx")

ECHO_SECONDS = 1.0
_last_sigint: float | None = None  # when the last SIGINT that counted arrived
last_signal: int | None = None  # the last SIGINT or SIGTERM that stopped something: the exit code says it


def is_echo(signal_number: int) -> bool:
    """Whether this signal is the echo of the last Ctrl-C; a SIGINT that is not becomes the last one."""
    global _last_sigint
    if signal_number != signal.SIGINT:
        return False
    now = time.monotonic()
    if _last_sigint is not None and now - _last_sigint < ECHO_SECONDS:
        return True
    _last_sigint = now
    return False


def _interrupt_once(signal_number: int, frame: object) -> None:
    global last_signal
    if not is_echo(signal_number):
        last_signal = signal_number
        raise KeyboardInterrupt


def interrupt_on_sigterm() -> None:
    """SIGTERM raises KeyboardInterrupt as Ctrl-C does, so a command (a sweep) stops the same clean way;
    ``last_signal`` tells which it was."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt_once)


def interrupt_once_per_ctrl_c() -> None:
    """Make Python's KeyboardInterrupt come once per Ctrl-C in this process (the CLI calls it first)."""
    is_main_thread = threading.current_thread() is threading.main_thread()
    if is_main_thread and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _interrupt_once)


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
        if is_echo(signal_number):
            return
        global last_signal
        last_signal = signal_number
        if self.signal_number is not None and signal_number == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_number = signal_number
        log.warning(
            "%s received: saving a checkpoint after this step (Ctrl-C again, a second later, to stop at "
            "once).",
            signal.Signals(signal_number).name,
        )

    def install(self) -> GracefulStop:
        global _last_sigint
        _last_sigint = None  # a run starts afresh: a Ctrl-C before it stopped whatever ran then
        if threading.current_thread() is threading.main_thread():
            for signal_number in (signal.SIGINT, signal.SIGTERM):
                self._previous[signal_number] = signal.signal(signal_number, self._handle)
        return self

    def uninstall(self) -> None:
        for signal_number, handler in self._previous.items():
            signal.signal(signal_number, handler)
        self._previous.clear()
