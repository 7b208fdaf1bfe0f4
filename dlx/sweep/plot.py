"""sweep.png: the monitored metric against each swept parameter, one panel per parameter."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlx.sweep.space import uses_log_axis

if TYPE_CHECKING:
    from dlx.sweep.report import TrialRow
    from dlx.sweep.study import SweepPlan

log = logging.getLogger("dlx")


def plot_sweep(plan: SweepPlan, rows: list[TrialRow], best: TrialRow | None, path: Path) -> None:
    try:
        _plot(plan, rows, best, path)
    except Exception as error:  # a plot must never cost the user the sweep's report
        log.warning("Could not draw sweep.png: %s", error)


def _plot(plan: SweepPlan, rows: list[TrialRow], best: TrialRow | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scored = [r for r in rows if r.value is not None and r.params]
    count = len(plan.parameters)
    figure, axes = plt.subplots(1, count, figsize=(4.6 * count, 3.8), squeeze=False)
    for axis, parameter in zip(axes[0], plan.parameters, strict=True):
        values = [r.params[parameter.name] for r in scored if parameter.name in r.params]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        order = list(parameter.choices or [])

        def position(value: Any, numeric: bool = numeric, order: list[Any] = order) -> Any:
            return value if numeric else order.index(value) if value in order else str(value)

        for state, style in [
            ("finished", {"marker": "o", "color": "tab:blue"}),
            ("pruned", {"marker": "x", "color": "tab:gray"}),
        ]:
            points = [
                (position(r.params[parameter.name]), r.value)
                for r in scored
                if r.state == state and parameter.name in r.params
            ]
            if points:
                axis.scatter(*zip(*points, strict=True), label=state, **style)
        if best is not None and parameter.name in best.params:
            axis.scatter([position(best.params[parameter.name])], [best.value], marker="*", s=220,
                         color="tab:red", label="best", zorder=3)  # fmt: skip
        if numeric and uses_log_axis(parameter, values):
            axis.set_xscale("log")
        if not numeric and order:
            axis.set_xticks(range(len(order)), [str(o) for o in order], rotation=30, ha="right")
        axis.set_xlabel(parameter.name)
        axis.set_ylabel(plan.monitor)
        axis.grid(alpha=0.3)
    if axes[0][0].get_legend_handles_labels()[0]:  # else matplotlib warns of an empty legend
        axes[0][0].legend()
    figure.suptitle(f"sweep {plan.sweep_id}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
