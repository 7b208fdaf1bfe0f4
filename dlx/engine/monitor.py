"""Is a monitored score better than another? One rule for best checkpoints, early stopping and summaries."""

from __future__ import annotations

import math


def is_improvement(score: float, reference: float | None, mode: str, min_delta: float = 0.0) -> bool:
    """A non-finite score never improves; any finite score improves on a missing or non-finite reference."""
    if not math.isfinite(score):
        return False
    if reference is None or not math.isfinite(reference):
        return True
    return score < reference - min_delta if mode == "min" else score > reference + min_delta
