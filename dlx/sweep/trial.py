"""One trial: a normal dlx run in `<sweep>/trial-NNN/`, reporting its monitored metric to Optuna after each
validation so that the pruner can stop it early."""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import traceback
from pathlib import Path
from typing import Any

from dlx.console import console
from dlx.sweep.study import SweepPlan, requeue


def trial_folder(sweep_folder: Path, slot: int) -> Path:
    return sweep_folder / f"trial-{slot:03d}"


def worker_label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_trial(study: Any, trial: Any, plan: SweepPlan, sweep_folder: Path) -> str:
    """Train the claimed trial and tell Optuna how it ended; return the state's name."""
    import optuna
    from omegaconf import open_dict

    from dlx.config.compose import compose_config
    from dlx.config.validate import validate_config
    from dlx.train import fit_config

    slot = trial.user_attrs["slot"]
    folder = trial_folder(sweep_folder, slot)
    checkpoint = _left_by_an_interrupted_attempt(folder)
    overrides = plan.trial_overrides(trial.params)
    trial.set_user_attr("overrides", overrides)
    trial.set_user_attr("run_folder", str(folder.resolve()))
    trial.set_user_attr("worker", worker_label())
    if checkpoint is None:
        announce(f"trial-{slot:03d} started: {' '.join(overrides)}")
    else:
        step = checkpoint["progress"]["global_step"]
        trial.set_user_attr("continued_from_step", step)
        announce(f"trial-{slot:03d} continues from step {step}: {' '.join(overrides)}")
    reported: list[float] = []

    def report_and_prune(step: int, score: float, metrics: dict[str, float]) -> None:
        reported.append(score)
        # Optuna's step is the n-th validation: comparable across trials, unlike the optimizer step
        # (which depends on a swept batch size).
        trial.report(score, len(reported))
        if trial.should_prune():
            pruned = optuna.TrialPruned(f"pruned after validation {len(reported)} (step {step})")
            pruned.stop_reason = "pruned"  # what the run's summary.json says (see fit_config)
            raise pruned

    started = time.perf_counter()
    state, value, error = "FAIL", None, None
    try:
        cfg = validate_config(
            compose_config(plan.base_overrides + overrides, [Path(d) for d in plan.config_dirs])
        )
        with open_dict(cfg):
            cfg.logger.group = plan.sweep_id
        if checkpoint is not None:  # the pruner compares n-th validations: this attempt's count on from there
            for record in _validations_until(folder, checkpoint["progress"]["global_step"], plan.monitor):
                report_and_prune(record["step"], record[plan.monitor], record)
        console.quiet = True  # a trial's own progress and tables stay in its folder (train.log, curves.png)
        try:
            summary = fit_config(cfg, checkpoint, folder, validation_listeners=[report_and_prune])
        finally:
            console.quiet = False
        if summary.get("stop_reason") == "interrupted":  # the trainer stopped gracefully on Ctrl-C/SIGTERM
            raise KeyboardInterrupt
        value = summary.get("best_score")
        if value is None:
            error = "the run ended without a validation, so it has no score"
        else:
            state = "COMPLETE"
    except optuna.TrialPruned:
        state = "PRUNED"
    except KeyboardInterrupt:
        trial.set_user_attr("interrupted", True)
        trial.set_user_attr("wall_seconds", time.perf_counter() - started)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        requeue(study, next(t for t in study.get_trials(deepcopy=False) if t.number == trial.number))
        if (folder / "checkpoints" / "last.ckpt").exists():
            announce(f"trial-{slot:03d} interrupted: it goes on from its last checkpoint on --resume")
        else:
            announce(f"trial-{slot:03d} interrupted before its first checkpoint: it starts again on --resume")
        raise
    except Exception as exception:
        error = " ".join(str(exception).split()) or type(exception).__name__
        # No metrics.jsonl: it failed while being set up (a run refused before its first step leaves no
        # folder), which the worker watches for (see work: the next trials would fail alike).
        trial.set_user_attr("failed_before_training", not (folder / "metrics.jsonl").exists())
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "error.txt").write_text(traceback.format_exc(), encoding="utf-8")
    wall_seconds = time.perf_counter() - started
    trial.set_user_attr("wall_seconds", wall_seconds)
    trial.set_user_attr("epochs", _epochs_trained(folder))
    if error is not None:
        trial.set_user_attr("error", error[:2000])
    if state == "COMPLETE":
        study.tell(trial, value)
    else:
        study.tell(trial, state=getattr(optuna.trial.TrialState, state))
    announce(_ending(slot, state, plan.monitor, value, reported, error, wall_seconds))
    return state


def _left_by_an_interrupted_attempt(folder: Path) -> dict[str, Any] | None:
    """The last checkpoint of an interrupted attempt of this trial, to go on from (nothing it trained is
    lost); None when there is none, after clearing what such an attempt left before its first checkpoint."""
    from dlx.engine.checkpoint import load_checkpoint
    from dlx.errors import DlxError

    last = folder / "checkpoints" / "last.ckpt"
    if last.exists():
        try:
            return load_checkpoint(last)
        except DlxError as error:  # written atomically, so only a foreign hand damages it
            announce(f"{folder.name}: its last.ckpt is unreadable ({error}); the trial starts again")
    if folder.exists():
        shutil.rmtree(folder)
    return None


def _validations_until(folder: Path, step: int, monitor: str) -> list[dict[str, Any]]:
    from dlx.loggers.metrics_file import read_metrics

    records = read_metrics(folder / "metrics.jsonl")
    return [
        r
        for r in records
        if isinstance(r.get(monitor), (int, float)) and isinstance(r.get("step"), int) and r["step"] <= step
    ]


def _epochs_trained(folder: Path) -> int | None:
    """Epochs the run completed (its summary.json), else the epochs its last validation reached (from
    metrics.jsonl, whose "epoch" counts from 0)."""
    summary = folder / "summary.json"
    if summary.exists():
        return json.loads(summary.read_text(encoding="utf-8")).get("epochs")
    path = folder / "metrics.jsonl"
    if not path.exists():
        return None
    epochs = None
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line) if line.strip() else {}
        if any(key.startswith("val/") for key in record) and "epoch" in record:
            epochs = record["epoch"] + 1
    return epochs


def _ending(
    slot: int,
    state: str,
    monitor: str,
    value: float | None,
    reported: list[float],
    error: str | None,
    seconds: float,
) -> str:
    name = f"trial-{slot:03d}"
    if state == "COMPLETE":
        return f"{name} finished: {monitor}={value:.6g} ({seconds:.1f} s)"
    if state == "PRUNED":
        return (
            f"{name} pruned after validation {len(reported)}: {monitor}={reported[-1]:.6g} ({seconds:.1f} s)"
        )
    return f"{name} failed: {error}"


def announce(message: str) -> None:
    """One line per trial event; with several workers the lines of all of them interleave cleanly."""
    console.print(message, markup=False, highlight=False, soft_wrap=True)
