"""``metrics.jsonl``: one JSON object per logged step, the run's local record of every metric."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


class MetricsFile:
    def __init__(self, path: Path, resume_after_step: int | None = None):
        self.path = path
        if resume_after_step is not None and path.exists():
            self._drop_records_after(resume_after_step)
        self.handle = path.open("a", encoding="utf-8")

    def _drop_records_after(self, step: int) -> None:
        """A resumed run repeats the steps after its checkpoint; keep one record of each."""
        kept = [
            line
            for line in self.path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step
        ]
        self.path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        clean = {
            k: (v if not isinstance(v, float) or math.isfinite(v) else str(v)) for k, v in record.items()
        }
        self.handle.write(json.dumps(clean) + "\n")
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
