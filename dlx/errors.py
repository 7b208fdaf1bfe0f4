"""User-facing errors: one paragraph that names the problem and the fix, exit code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class DlxError(Exception):
    """A mistake the user can fix; the CLI prints the message and exits with ``exit_code``."""

    exit_code = 2


class TrainingDiverged(DlxError):
    """The loss or a monitored metric became NaN/Inf; the last good checkpoint is kept."""

    exit_code = 1
    stop_reason = "diverged"  # summary.json's for a run this ends (any other error: "failed")


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' Did you mean 'x'?' for the closest choice, or '' when nothing is close."""
    matches = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" Did you mean '{matches[0]}'?" if matches else ""


def first_line(error: BaseException) -> str:
    """The first line of an error's message (for a one-paragraph error), or its type's name if it has none."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
