"""What a sweep found: a table of trials sorted by the metric, the best trial as a ready-to-paste
`dlx train` line, and best.yaml, sweep.png and summary.json in the sweep folder. Read from the storage, so
it works at the end, after a crash, and while the sweep is still running."""

from __future__ import annotations

import json
import math
import os
import shlex
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from dlx.console import console
from dlx.report import format_value
from dlx.sweep.study import SweepPlan

STATE_NAMES = {"COMPLETE": "finished", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running"}


@dataclass
class TrialRow:
    slot: int
    number: int  # Optuna's trial number (a rerun slot has a later one)
    state: str  # finished | pruned | failed | interrupted | running | waiting
    params: dict[str, Any]
    value: float | None  # finished: the best monitored value; else the best one it reported
    epochs: int | None
    wall_seconds: float | None
    run_folder: str | None
    overrides: list[str]
    error: str | None = None
    curve: list[float] = field(default_factory=list)  # the monitored metric at each validation

    @property
    def name(self) -> str:
        return f"trial-{self.slot:03d}"


def collect_rows(study: Any, plan: SweepPlan) -> tuple[list[TrialRow], int]:
    """One row per slot (its latest attempt), sorted best first; and how many attempts were rerun."""
    latest: dict[int, Any] = {}
    attempts = 0
    for trial in study.get_trials(deepcopy=False):
        slot = trial.user_attrs.get("slot")
        if slot is None:
            continue  # a surplus trial a racing worker closed at once
        attempts += 1
        if slot not in latest or trial.number > latest[slot].number:
            latest[slot] = trial
    rows = [_row(trial, plan) for trial in latest.values()]
    sign = 1 if plan.direction == "minimize" else -1
    rows.sort(key=lambda r: (r.value is None, sign * r.value if r.value is not None else 0, r.slot))
    return rows, attempts - len(latest)


def _row(trial: Any, plan: SweepPlan) -> TrialRow:
    curve = [trial.intermediate_values[step] for step in sorted(trial.intermediate_values)]
    finite = [v for v in curve if isinstance(v, (int, float)) and math.isfinite(v)]
    state = STATE_NAMES.get(trial.state.name, trial.state.name.lower())
    if state == "failed" and not trial.user_attrs.get("error"):
        state = "interrupted"
    if trial.state.name == "WAITING":
        state = "waiting"
    value = trial.value if state == "finished" else None
    if value is None and finite:
        value = min(finite) if plan.direction == "minimize" else max(finite)
    wall = trial.user_attrs.get("wall_seconds")
    if wall is None and state == "running" and trial.datetime_start is not None:
        wall = (datetime.now() - trial.datetime_start).total_seconds()
    return TrialRow(
        slot=trial.user_attrs["slot"],
        number=trial.number,
        state=state,
        params=dict(trial.params or trial.system_attrs.get("fixed_params", {})),  # a queued grid point
        value=value,
        epochs=trial.user_attrs.get("epochs"),
        wall_seconds=wall,
        run_folder=trial.user_attrs.get("run_folder"),
        overrides=list(trial.user_attrs.get("overrides", [])),
        error=trial.user_attrs.get("error"),
        curve=curve,
    )


def best_row(rows: list[TrialRow]) -> TrialRow | None:
    return next((row for row in rows if row.state == "finished"), None)


def train_command(plan: SweepPlan, row: TrialRow) -> str:
    config_dirs = [f"--config-dir {shlex.quote(d)}" for d in plan.config_dirs]
    overrides = [shlex.quote(o) for o in plan.base_overrides + row.overrides]
    return " ".join(["dlx train", *config_dirs, *overrides])


def print_report(plan: SweepPlan, rows: list[TrialRow], reruns: int, folder: Path) -> None:
    from rich.table import Table

    counts = {state: sum(r.state == state for r in rows) for state in dict.fromkeys(r.state for r in rows)}
    caption = ", ".join(f"{n} {state}" for state, n in counts.items())
    if reruns:
        caption += f"; {reruns} interrupted attempt(s) not shown"
    table = Table(
        title=f"dlx sweep {plan.sweep_id}: {plan.monitor} ({plan.direction})",
        caption=caption,
        header_style="bold",
    )
    table.add_column("trial")
    for parameter in plan.parameters:
        table.add_column(parameter.name, justify="right")
    table.add_column(plan.monitor, justify="right")
    table.add_column("epochs", justify="right")
    table.add_column("state")
    table.add_column("time", justify="right")
    best = best_row(rows)
    for row in rows:
        cells = [row.name, *(format_value(row.params.get(p.name, "")) for p in plan.parameters)]
        cells += [
            format_value(row.value),
            str(row.epochs) if row.epochs is not None else "-",
            row.state,
            f"{row.wall_seconds:.1f} s" if row.wall_seconds is not None else "-",
        ]
        table.add_row(*cells, style="bold green" if row is best else None)
    console.print(table)
    for row in rows:
        if row.error:
            console.print(f"{row.name} failed: {row.error[:300]}", markup=False, soft_wrap=True)
    if best is not None:
        console.print(f"Best: {best.name}, {plan.monitor}={format_value(best.value)}. Train it again with:")
        console.print(train_command(plan, best), markup=False, soft_wrap=True)
    written = [name for name in ("summary.json", "best.yaml", "sweep.png") if (folder / name).is_file()]
    console.print(f"Sweep folder: {folder} ({', '.join(written)})", markup=False, soft_wrap=True)


def write_report_files(
    plan: SweepPlan, rows: list[TrialRow], reruns: int, folder: Path, storage: str
) -> None:
    best = best_row(rows)
    summary = {
        "sweep_id": plan.sweep_id,
        "storage": storage,
        "monitor": plan.monitor,
        "direction": plan.direction,
        "sampler": plan.settings.sampler,
        "pruner": plan.settings.pruner,
        "parameters": [asdict(p) for p in plan.parameters],
        "base_overrides": plan.base_overrides,
        "counts": {state: sum(r.state == state for r in rows) for state in {r.state for r in rows}},
        "reruns": reruns,
        "best": _best_record(plan, best) if best else None,
        "trials": [asdict(r) | {"trial": r.name} for r in rows],
    }
    _write_atomically(folder / "summary.json", json.dumps(summary, indent=2, default=str))
    if best is not None:
        import yaml

        header = f"# The best trial of sweep {plan.sweep_id} by {plan.monitor} ({plan.direction}).\n"
        _write_atomically(
            folder / "best.yaml", header + yaml.safe_dump(_best_record(plan, best), sort_keys=False)
        )
    if any(r.value is not None and r.params for r in rows):
        from dlx.sweep.plot import plot_sweep

        plot_sweep(plan, rows, best, folder / "sweep.png")


def _best_record(plan: SweepPlan, best: TrialRow) -> dict[str, Any]:
    # trainer.save_top_k=0 keeps no best.ckpt: then the last one, or none, rather than a missing file
    kept = [Path(best.run_folder) / "checkpoints" / name for name in ("best.ckpt", "last.ckpt")]
    checkpoint = next((path for path in kept if path.exists()), None) if best.run_folder else None
    return {
        "trial": best.name,
        "metric": plan.monitor,
        "value": best.value,
        "epochs": best.epochs,
        "params": best.params,
        "overrides": plan.base_overrides + best.overrides,
        "command": train_command(plan, best),
        "run_folder": best.run_folder,
        "checkpoint": str(checkpoint) if checkpoint else None,
    }


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
