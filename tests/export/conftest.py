from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.export.runs import family_checkpoint, trained_checkpoint


@pytest.fixture(autouse=True)
def _one_timed_call_per_latency(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests check that latency is measured, not how well: one call each keeps them fast."""
    monkeypatch.setattr("dlx.export.parity.TIMING_WARMUP_CALLS", 1)
    monkeypatch.setattr("dlx.export.parity.TIMING_BUDGET_SECONDS", 0.0)
    monkeypatch.setattr("dlx.export.parity.TIMING_MIN_RUNS", 1)


@pytest.fixture(scope="session")
def trained_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "trained-runs"


@pytest.fixture
def checkpoint_of(trained_root: Path) -> Callable[[str], Path]:
    """``checkpoint_of("cnn")``: the best.ckpt of a tiny trained run of that model family."""
    return lambda family: family_checkpoint(trained_root, family)


@pytest.fixture
def checkpoint_with(trained_root: Path) -> Callable[..., Path]:
    """``checkpoint_with("name", *overrides)``: the best.ckpt of a tiny run with those overrides."""
    return lambda name, *overrides: trained_checkpoint(trained_root, name, *overrides)
