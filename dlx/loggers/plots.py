"""Plots written into the run folder: training curves and the confusion matrix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _figure(width: float, height: float, columns: int = 1):
    # matplotlib's Figure draws with Agg without pyplot: no global state, and 0.3 s less to import.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    return figure, figure.subplots(1, columns)


def _plain_log_formatter(**options: Any):
    """Log-axis labels as plain numbers (0.1, 0.05): the default 10^-1 labels go through mathtext,
    whose parser takes 0.2 s to set up at the end of every run."""
    from matplotlib.ticker import LogFormatter

    class PlainLogFormatter(LogFormatter):
        def _num_to_string(self, x: float, vmin: float, vmax: float) -> str:
            return f"{x:g}"

    return PlainLogFormatter(**options)


def plot_curves(records: list[dict[str, Any]], path: Path, monitor: str | None = None) -> None:
    """Loss (train and val), the monitored metric and the learning rate against the optimizer step."""

    def series(key: str) -> tuple[list[float], list[float]]:
        points = [(r["step"], r[key]) for r in records if isinstance(r.get(key), (int, float))]
        return [p[0] for p in points], [p[1] for p in points]

    metric = monitor if monitor and monitor != "val/loss" else None
    panels = (
        [("loss", ["train/loss", "val/loss"])] + ([(metric, [metric])] if metric else []) + [("lr", ["lr"])]
    )
    figure, axes = _figure(5 * len(panels), 3.6, len(panels))
    for axis, (title, keys) in zip(np.atleast_1d(axes), panels, strict=True):
        for key in keys:
            steps, values = series(key)
            if steps:
                axis.plot(
                    steps, values, marker="o" if key.startswith("val/") else None, markersize=3, label=key
                )
        axis.set_title(title)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
        if title == "loss" and axis.lines and all(v > 0 for line in axis.lines for v in line.get_ydata()):
            axis.set_yscale("log")
            axis.yaxis.set_major_formatter(_plain_log_formatter())
            axis.yaxis.set_minor_formatter(_plain_log_formatter(labelOnlyBase=False))
        if axis.lines:
            axis.legend()
    # Fixed margins: tight_layout measures every label first, a tenth of a second at the end of each run.
    figure.subplots_adjust(left=0.24 / len(panels), right=0.99, bottom=0.14, top=0.9, wspace=0.22)
    figure.savefig(path, dpi=110)


def plot_confusion_matrix(matrix: np.ndarray, class_names: list[str], path: Path) -> None:
    size = max(4.0, 0.45 * len(class_names) + 2)
    figure, axis = _figure(size, size)
    axis.imshow(matrix, cmap="Blues")
    ticks = range(len(class_names))
    axis.set_xticks(ticks, class_names, rotation=45, ha="right")
    axis.set_yticks(ticks, class_names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    if len(class_names) <= 20:
        threshold = matrix.max() / 2 if matrix.size else 0
        for row in ticks:
            for column in ticks:
                value = int(matrix[row, column])
                axis.text(
                    column,
                    row,
                    value,
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if value > threshold else "black",
                )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
