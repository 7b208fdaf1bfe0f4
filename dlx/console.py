"""One rich console for the whole program, so log lines and progress bars never tear each other."""

from __future__ import annotations

import logging
import os

from rich.console import Console

console = Console(highlight=False)


# A log line for train.log but not the screen (`log.info(..., extra=FILE_ONLY)`): what the progress display
# leaves off the screen (trainer.progress=none, or the bar's own numbers) is still in the run's record.
FILE_ONLY = {"file_only": True}


def setup_logging(level: int = logging.INFO) -> None:
    """dlx's log lines go to the console (and, during a run, to train.log)."""
    from rich.logging import RichHandler

    logger = logging.getLogger("dlx")
    if any(isinstance(h, RichHandler) for h in logger.handlers):
        return
    handler = RichHandler(
        console=console,
        show_time=False,
        show_path=False,
        markup=False,
        rich_tracebacks=bool(os.environ.get("DLX_DEBUG")),
    )
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(lambda record: not getattr(record, "file_only", False))  # see FILE_ONLY
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
