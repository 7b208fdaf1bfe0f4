"""``dlx compare``: runs side by side: how each ended, its best metrics, and the settings that differ.

Reads only what ``dlx train`` leaves in a run folder (config.yaml, summary.json, metrics.jsonl), so it
needs neither torch nor the checkpoints, and works on runs that crashed or are still going.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlx.errors import DlxError, did_you_mean, first_line
from dlx.loggers.metrics_file import read_metrics
from dlx.report import format_value

log = logging.getLogger("dlx")

RUN_COLUMNS = ["status", "steps", "time"]
MAX_KEY_WIDTH = 28  # a longer config key is cut; the runs' columns get the rest of the terminal
RUN_NAME = re.compile(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d-([0-9a-f]+)$")  # dlx/engine/run_folder.py


@dataclass
class Run:
    folder: Path
    settings: dict[str, Any]  # the resolved config, flattened to dotted keys
    status: str  # the stop reason, or "unfinished" without summary.json (crashed, killed or still going)
    steps: int | None
    seconds: float | None
    monitor: str
    mode: str
    metrics: dict[str, float] = field(default_factory=dict)  # at the best validation (so far, if unfinished)

    def value(self, key: str) -> Any:
        if key in self.metrics:
            return self.metrics[key]
        if key == "steps":
            return self.steps
        if key == "time":
            return self.seconds
        if key == "status":
            return self.status
        return self.settings.get(key)


def compare_runs(paths: list[Path], sort: str | None = None, limit: int | None = None) -> list[Run]:
    """Find the runs under ``paths`` (default: ./outputs), order them (best first by their common monitored
    metric, or by ``sort``) and print them as one table; return them in that order."""
    if not paths:
        if not Path("outputs").is_dir():
            raise DlxError(
                "No outputs/ folder here: `dlx train` writes its runs under outputs/ of the folder it "
                "runs in (or `output_dir=...`). Run `dlx compare` there, or name the folder: "
                "`dlx compare path/to/outputs`."
            )
        paths = [Path("outputs")]
    runs = [run for folder in find_run_folders(paths) if (run := read_run(folder)) is not None]
    if not runs:
        raise DlxError("None of the run folders found has a readable config.yaml (see the warnings above).")
    runs = order_runs(runs, sort)
    print_comparison(runs[:limit] if limit else runs, len(runs))
    return runs


def find_run_folders(paths: list[Path]) -> list[Path]:
    """``paths`` themselves if they are run folders, else every run folder below them."""
    folders: list[Path] = []
    for path in paths:
        if not path.exists():
            raise DlxError(
                f"'{path}' does not exist. Give run folders or folders that hold them, e.g. "
                "`dlx compare outputs` or `dlx compare outputs/digits_mlp`."
            )
        if is_run_folder(path):
            folders.append(path)
        else:
            folders.extend(sorted(p.parent for p in path.rglob("config.yaml") if is_run_folder(p.parent)))
    if not folders:
        raise DlxError(
            f"No run folders under {', '.join(str(p) for p in paths)}: a run folder holds config.yaml and "
            "metrics.jsonl, written by `dlx train` into `<output_dir>/<experiment>/<time>-<id>/`."
        )
    return list(dict.fromkeys(folders))  # a folder named twice is shown once


def is_run_folder(folder: Path) -> bool:
    return (folder / "config.yaml").is_file() and (folder / "metrics.jsonl").is_file()


def read_run(folder: Path) -> Run | None:
    """The run in ``folder``; None (with a warning) if its config.yaml cannot be read."""
    import yaml

    try:
        config = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))
        if not isinstance(config, dict):
            raise yaml.YAMLError("not a mapping of settings")
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        log.warning("Left out %s: its config.yaml cannot be read (%s).", folder, first_line(error))
        return None
    settings = dict(flatten(config))
    trainer = config.get("trainer") or {}
    monitor, mode = str(trainer.get("monitor", "val/loss")), str(trainer.get("mode", "min"))
    summary = _read_summary(folder / "summary.json")
    if summary is not None:
        return Run(
            folder,
            settings,
            str(summary.get("stop_reason")),
            summary.get("steps"),
            summary.get("wall_seconds"),
            monitor,
            mode,
            _numbers(summary.get("best_metrics") or summary.get("last_metrics")),
        )
    records = read_metrics(folder / "metrics.jsonl")
    validations = [r for r in records if monitor in r]
    best = min(validations, key=lambda r: _ordering(r[monitor], mode), default={})
    last = records[-1] if records else {}
    return Run(
        folder,
        settings,
        "unfinished",
        last.get("step"),
        last.get("time"),
        monitor,
        mode,
        _numbers({k: v for k, v in best.items() if k.startswith("val/")}),
    )


def _read_summary(path: Path) -> dict[str, Any] | None:
    """summary.json, written when a run ends; None if there is none (or a crash cut it short)."""
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def _numbers(metrics: Any) -> dict[str, float]:
    """The numeric metrics of a record ("nan" and "inf" as metrics.jsonl writes them; a damaged file may
    hold anything else)."""
    if not isinstance(metrics, dict):
        return {}
    numbers = {}
    for key, value in metrics.items():
        if isinstance(value, str) and value.lower().lstrip("+-") in ("nan", "inf"):
            value = float(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            numbers[str(key)] = value
    return numbers


def flatten(config: dict[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in config.items():
        if isinstance(value, dict) and value:
            yield from flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def order_runs(runs: list[Run], sort: str | None) -> list[Run]:
    """Best first by the monitored metric all runs share (in its mode), or ascending by ``sort`` (a metric,
    a config key, or status/steps/time; a leading '-' for descending). Runs without a value go last."""
    if sort is None:
        monitors = {(run.monitor, run.mode) for run in runs}
        if len(monitors) != 1:
            log.info("Not sorted: the runs monitor different metrics. Order them with --sort KEY.")
            return runs
        key, mode = monitors.pop()
        return sorted(runs, key=lambda run: _ordering(run.value(key), mode))
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    known = {k for run in runs for k in [*run.metrics, *run.settings]} | set(RUN_COLUMNS)
    if key not in known:
        raise DlxError(
            f"--sort {sort}: no run has '{key}'.{did_you_mean(key, known)} Sort by a metric such as "
            f"`--sort {next(iter(runs[0].metrics), 'val/loss')}`, a config key such as "
            "`--sort optimizer.lr`, or steps/time; prefix '-' for descending."
        )
    present = [run for run in runs if not _is_missing(run.value(key))]
    missing = [run for run in runs if _is_missing(run.value(key))]
    try:
        present.sort(key=lambda run: run.value(key), reverse=descending)
    except TypeError:  # numbers and text under one key: compare as text
        present.sort(key=lambda run: str(run.value(key)), reverse=descending)
    return present + missing


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _ordering(value: Any, mode: str) -> tuple[int, float]:
    """A sort key: better values of a metric first, NaN and missing values last."""
    if not isinstance(value, int | float) or math.isnan(value):
        return (1, 0.0)
    return (0, value if mode == "min" else -value)


def differing_settings(runs: list[Run]) -> list[str]:
    """The config keys whose values are not the same in every run (in the config's order)."""
    keys = list(dict.fromkeys(key for run in runs for key in run.settings))
    return [key for key in keys if len({repr(run.settings.get(key)) for run in runs}) > 1]


def print_comparison(runs: list[Run], total: int) -> None:
    """Tables with a run per column and a setting or metric per row, as many runs each as fit the
    terminal; a legend below gives each run's folder."""
    from rich.table import Table

    from dlx.console import console

    metric_keys = list(dict.fromkeys(key for run in runs for key in run.metrics))
    setting_keys = differing_settings(runs)
    fields = [
        ("status", [run.status for run in runs]),
        ("steps", [format_value(run.steps) for run in runs]),
        ("time", [_duration(run.seconds) for run in runs]),
        *[(key, [format_value(run.metrics.get(key)) for run in runs]) for key in metric_keys],
        *[(key, [format_value(run.settings.get(key, "-")) for run in runs]) for key in setting_keys],
    ]
    labels = run_labels(runs)
    title = f"dlx compare: {total} run{'s' if total != 1 else ''}"
    if len(runs) < total:  # --limit
        title = f"dlx compare: {len(runs)} of {total} runs"
    key_width = min(max(len(name) for name, _ in fields), MAX_KEY_WIDTH)
    cell_width = min(max(len(text) for text in [*labels, *(v for _, values in fields for v in values)]), 24)
    per_table = max(1, (console.width - key_width - 4) // (cell_width + 3))
    for first in range(0, len(runs), per_table):
        shown = range(first, min(first + per_table, len(runs)))
        if len(runs) > per_table:
            title = f"dlx compare: runs {first + 1}-{shown[-1] + 1} of {total}"
        table = Table(title=title, header_style="bold")
        table.add_column("", no_wrap=True, min_width=key_width, max_width=MAX_KEY_WIDTH, overflow="ellipsis")
        for index in shown:
            table.add_column(labels[index], justify="right", overflow="fold")
        for name, values in fields:
            table.add_row(name, *[values[i] for i in shown], style="cyan" if name in setting_keys else None)
        console.print(table)
    for label, run in zip(labels, runs, strict=True):
        console.print(f"  {label}: {_run_name(run.folder)}", markup=False, soft_wrap=True)
    if len(runs) < total:
        console.print(f"{total - len(runs)} more not shown (--limit).")
    if len(runs) > 1 and not setting_keys:
        console.print("The runs' configs are identical.")
    if any(run.status == "unfinished" for run in runs):
        console.print(
            "unfinished: no summary.json (the run crashed, was killed, or is still going). A run with "
            "checkpoints/last.ckpt continues with `dlx train --resume <run folder>`.",
            soft_wrap=True,
            markup=False,
        )


def run_labels(runs: list[Run]) -> list[str]:
    """A run folder's id (``2026-01-01_12-00-00-a1b2c3`` -> ``a1b2c3``), or its name (``trial-003``)."""
    labels = [(match[1] if (match := RUN_NAME.match(run.folder.name)) else run.folder.name) for run in runs]
    if len(set(labels)) < len(labels):  # the same name under several parents: number them
        labels = [f"{index + 1}:{label}" for index, label in enumerate(labels)]
    return labels


def _run_name(folder: Path) -> str:
    try:
        return str(folder.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(folder)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 3600 else f"{seconds / 3600:.2f} h"
