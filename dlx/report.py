"""Rich tables printed at the end of a command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlx.console import console


def format_value(value: Any) -> str:
    """A table cell: floats to 6 significant digits, a missing value as '-'."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def print_metrics(title: str, metrics: dict[str, float]) -> None:
    from rich.table import Table

    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, format_value(value))
    console.print(table)


def print_training_summary(summary: dict[str, Any], run_folder: Path | None) -> None:
    from rich.table import Table

    table = Table(title="dlx train: summary", show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(justify="right", overflow="fold")  # the run folder whole, on two lines if need be
    table.add_row("stopped by", str(summary["stop_reason"]))
    table.add_row("epochs / steps", f"{summary['epochs']} / {summary['steps']}")
    table.add_row("wall time", f"{summary['wall_seconds']:.1f} s")
    if summary.get("best_score") is not None:
        table.add_row(f"best {summary['monitor']}", format_value(summary["best_score"]))
    for key, value in summary.get("best_metrics", {}).items():
        if key != summary["monitor"]:
            table.add_row(f"{key} (at best)", format_value(value))
    if run_folder is not None:
        table.add_row("run folder", str(run_folder))
    console.print(table)
