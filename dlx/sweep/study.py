"""One Optuna study per sweep, grid and search alike. The plan (base overrides, search space, settings) is
stored in the study, so any machine that can reach the storage can join or resume the sweep.

Every trial the sweep will run is queued up front as a *slot* (a WAITING trial). A grid's slot carries its
combination, and so does a random search's over value lists (a seeded shuffle of the grid: no combination
twice); TPE and searches over intervals sample a slot when it is claimed. Workers claim slots until none is
left: the budget is exact, and a slot whose run was interrupted is queued again with the same parameters
and folder.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlx.errors import DlxError
from dlx.sweep.settings import SweepSettings, settings_from_dict
from dlx.sweep.space import Parameter, grid_points, overrides_for

PLAN_ATTRIBUTE = "dlx_plan"
SWEEP_FILE = "sweep.json"
MAX_ATTEMPTS = 3  # runs of one slot whose process died before it ends as failed

log = logging.getLogger("dlx")


@dataclass
class SweepPlan:
    sweep_id: str  # the folder name `<time>-<id>`: the study name and the W&B group
    experiment: str
    output_dir: str
    base_overrides: list[str]
    parameters: list[Parameter]
    config_dirs: list[str]
    monitor: str
    direction: str  # minimize | maximize, from trainer.mode
    seed: int
    settings: SweepSettings

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepPlan:
        return cls(
            **{k: v for k, v in data.items() if k not in ("parameters", "settings")},
            parameters=[Parameter(**p) for p in data["parameters"]],
            settings=settings_from_dict(data["settings"]),
        )

    @property
    def distributions(self) -> dict[str, Any]:
        return {p.name: p.distribution() for p in self.parameters}

    def trial_overrides(self, params: dict[str, Any]) -> list[str]:
        return overrides_for(self.parameters, params)


def quiet_optuna() -> None:
    """Optuna's per-trial INFO lines and experimental-feature warnings would drown dlx's own output."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings(
        "ignore", message="Heartbeat of storage is supposed to be used with Study.optimize"
    )


def create_study(storage: Any, plan: SweepPlan) -> Any:
    import optuna

    study = optuna.create_study(storage=storage, study_name=plan.sweep_id, direction=plan.direction)
    study.set_user_attr(PLAN_ATTRIBUTE, plan.to_dict())
    add_slots(study, plan, plan.settings.trials)
    return study


def add_slots(study: Any, plan: SweepPlan, total: int) -> int:
    """Queue slots until the sweep has ``total``; return how many were added."""
    taken = {t.user_attrs.get("slot") for t in study.get_trials(deepcopy=False)}
    count = len(taken - {None})
    points = None
    if plan.settings.sampler == "grid":
        points = grid_points(plan.parameters)
    elif plan.settings.sampler == "random" and all(p.is_discrete for p in plan.parameters):
        # Random search over value lists draws without replacement: slot i takes the i-th combination
        # of one seeded shuffle, so no combination trains twice, also when --resume adds trials.
        points = grid_points(plan.parameters)
        random.Random(plan.seed).shuffle(points)
    if points is not None and total > len(points):
        raise DlxError(
            f"The search space has only {len(points)} combinations, so {total} trials would train some "
            f"of them twice. Ask for `--trials {len(points)}` or fewer."
        )
    for slot in range(count, total):
        params = points[slot] if points is not None else {}
        study.enqueue_trial(params, user_attrs={"slot": slot, "attempt": 1})
    return max(0, total - count)


def load_plan(storage: Any, sweep_id: str) -> SweepPlan:
    import optuna

    try:
        study = optuna.load_study(study_name=sweep_id, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise DlxError(
            f"The storage has no sweep '{sweep_id}'. Sweeps there: {', '.join(names) or 'none'}."
        ) from None
    if PLAN_ATTRIBUTE not in study.user_attrs:
        raise DlxError(f"The study '{sweep_id}' was not made by `dlx sweep`: it holds no sweep plan.")
    return SweepPlan.from_dict(study.user_attrs[PLAN_ATTRIBUTE])


def open_study(storage: Any, plan: SweepPlan, sampler_seed: int | None = None) -> Any:
    import optuna

    return optuna.load_study(
        study_name=plan.sweep_id,
        storage=storage,
        sampler=make_sampler(plan.settings.sampler, sampler_seed),
        pruner=make_pruner(plan.settings),
    )


def make_sampler(name: str, seed: int | None) -> Any:
    import optuna

    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    # A grid's trials all carry their combination from the queue, so this sampler never samples.
    return optuna.samplers.RandomSampler(seed=seed)


def make_pruner(settings: SweepSettings) -> Any:
    import optuna

    if settings.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=settings.pruner_startup_trials)
    if settings.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource="auto", reduction_factor=3)
    return optuna.pruners.NopPruner()


def trials_in(study: Any, *states: Any) -> list[Any]:
    return study.get_trials(deepcopy=False, states=states)


def requeue(study: Any, trial: Any) -> None:
    """Queue an interrupted trial's slot again, with the same parameters and folder."""
    attempt = int(trial.user_attrs.get("attempt", 1))
    slot = trial.user_attrs.get("slot")
    if slot is None or trial.user_attrs.get("error"):
        return
    if attempt >= MAX_ATTEMPTS:
        log.warning(
            "trial-%03d was interrupted %d times (its process stopped); it stays failed.", slot, attempt
        )
        return
    study.enqueue_trial(dict(trial.params), user_attrs={"slot": slot, "attempt": attempt + 1})


def sweep_folder_for(plan: SweepPlan) -> Path:
    from dlx.engine.run_folder import safe_name

    return Path(plan.output_dir).expanduser() / "sweeps" / safe_name(plan.experiment) / plan.sweep_id


def write_sweep_file(folder: Path, plan: SweepPlan, storage_url: str | None) -> None:
    """sweep.json: the sweep's id and storage (None: sweep.db beside it; a password is never written)."""
    from dlx.sweep.storage import masked

    storage = masked(storage_url) if storage_url else None
    record = {"sweep_id": plan.sweep_id, "storage": storage, "plan": plan.to_dict()}
    (folder / SWEEP_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")


def read_sweep_file(folder: Path) -> dict[str, Any]:
    path = folder / SWEEP_FILE
    if not path.is_file():
        raise DlxError(
            f"'{folder}' is not a sweep folder (it has no {SWEEP_FILE}). Pass a folder such as "
            "outputs/sweeps/<name>/<time>-<id>/, or a sweep id together with `--storage URL`."
        )
    return json.loads(path.read_text(encoding="utf-8"))
