"""Keep the exporters' own chatter (progress lines, graph dumps, warnings) off the user's screen."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class Captured:
    text: str = ""


@contextlib.contextmanager
def silenced() -> Iterator[Captured]:
    """Swallow stdout/stderr (Python and C++ alike), warnings and log records below ERROR.

    The captured text is in the yielded object afterwards, for explaining a failure.
    """
    captured = Captured()
    python_buffer = io.StringIO()
    sys.stdout.flush()
    sys.stderr.flush()
    # The TorchScript-based exporter prints graph dumps from C++, past sys.stdout: redirect the fds too.
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with tempfile.TemporaryFile(mode="w+b") as sink:
        for fd in saved:
            os.dup2(sink.fileno(), fd)
        previous_disable = logging.root.manager.disable
        logging.disable(logging.WARNING)
        try:
            with (
                warnings.catch_warnings(),
                contextlib.redirect_stdout(python_buffer),
                contextlib.redirect_stderr(python_buffer),
            ):
                warnings.simplefilter("ignore")
                yield captured
        finally:
            logging.disable(previous_disable)
            for fd, original in saved.items():
                os.dup2(original, fd)
                os.close(original)
            sink.seek(0)
            native = sink.read().decode("utf-8", errors="replace")
            captured.text = _ANSI.sub("", python_buffer.getvalue() + native)


def failure_reason(error: BaseException) -> str:
    """The one line of an exporter's exception that names the cause, without its advice and graph dumps."""
    text = _ANSI.sub("", str(error))
    # torch.onnx's dynamo errors end with an "Exception summary" whose first entry is the root cause.
    summary = text.partition("## Exception summary")[2]
    lines = [line.strip() for line in (summary or text).splitlines() if line.strip()]
    for line in lines:
        if line.startswith("<class"):
            line = line.split(">: ", 1)[-1]
        if line and not line.startswith(("⬆", "(Refer")):
            return _shorten(line)
    cause = error.__cause__
    return failure_reason(cause) if cause is not None else type(error).__name__


def _shorten(line: str, limit: int = 300) -> str:
    return line if len(line) <= limit else line[: limit - 3] + "..."
