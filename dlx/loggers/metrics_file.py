"""``metrics.jsonl``: one JSON object per logged step, the run's local record of every metric."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from dlx.errors import DlxError

# Lines are written through a buffer that reaches the disk at least this often, before every checkpoint
# and at the end of the run: a flush per line cost the tiny MLP 1% of its steps (a system call each),
# more on a network file system. A killed process loses at most this much of the log after its last
# checkpoint, which a resume trains (and logs) again anyway.
FLUSH_SECONDS = 1.0


class MetricsFile:
    def __init__(self, path: Path, resume_after_step: int | None = None):
        self.path = path
        if resume_after_step is not None and path.exists():
            self._drop_records_after(resume_after_step)
        self.handle = path.open("a", encoding="utf-8")
        self.flushed = time.monotonic()

    def _drop_records_after(self, step: int) -> None:
        """A resumed run repeats the steps after its checkpoint; keep one record of each (and drop a line
        torn by a crash). The rewrite is atomic, so a crash now loses nothing either."""
        kept = [record for record in _parse_lines(self.path) if record.get("step", 0) <= step]
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text("".join(json.dumps(record) + "\n" for record in kept), encoding="utf-8")
        os.replace(temporary, self.path)

    def write(self, record: dict[str, Any]) -> None:
        clean = {
            k: (v if not isinstance(v, float) or math.isfinite(v) else str(v)) for k, v in record.items()
        }
        try:
            self.handle.write(json.dumps(clean) + "\n")
        except OSError as error:
            raise self._unwritable(error) from error
        if time.monotonic() - self.flushed >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        try:
            self.handle.flush()
        except OSError as error:
            raise self._unwritable(error) from error
        self.flushed = time.monotonic()

    def _unwritable(self, error: OSError) -> DlxError:
        return DlxError(
            f"Could not write {self.path}: {error.strerror}. The last checkpoint of the run is intact. "
            f"Free space (or fix permissions) and continue with `dlx train --resume {self.path.parent}`."
        )

    def close(self) -> None:
        self.handle.close()


def _parse_lines(path: Path) -> list[dict[str, Any]]:
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short (or garbled) by a crash
        if isinstance(record, dict):
            records.append(record)
    return records


def read_metrics(path: Path) -> list[dict[str, Any]]:
    return _parse_lines(path) if path.exists() else []
