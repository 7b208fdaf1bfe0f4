"""`dlx sweep`: plan a sweep (and check it before any trial starts), resume one, run it, report it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from dlx.console import console
from dlx.errors import DlxError
from dlx.sweep.study import SweepPlan


def run_sweep(
    arguments: list[str],
    config_dirs: list[Path],
    flags: dict[str, Any],
    resume: str | None = None,
    storage: str | None = None,
) -> None:
    """Start a sweep from overrides (``flags``: trials, jobs, sampler, pruner, launcher), or resume one."""
    from dlx.sweep.storage import default_storage_url, open_storage
    from dlx.sweep.study import create_study, quiet_optuna, write_sweep_file

    quiet_optuna()
    if resume is not None:
        folder, storage_url, plan, jobs, launcher = _resume(resume, arguments, storage, flags)
    else:
        plan = plan_sweep(arguments, config_dirs, flags)
        if storage is not None:
            open_storage(storage)  # unreachable: say so before a folder or a trial exists
        folder = _create_sweep_folder(plan)
        plan.sweep_id = folder.name
        storage_url = storage or default_storage_url(folder)
        create_study(open_storage(storage_url), plan)
        write_sweep_file(folder, plan, storage)
        jobs, launcher = plan.settings.jobs, plan.settings.launcher
        _print_start(plan, folder, storage, jobs)
    _launch_and_report(folder, storage_url, plan, jobs, launcher)


def plan_sweep(arguments: list[str], config_dirs: list[Path], flags: dict[str, Any]) -> SweepPlan:
    """Parse and check everything a sweep needs; a DlxError here means no trial has started."""
    from dlx.sweep.settings import build_settings, load_named_sweep, resolve_strategy
    from dlx.sweep.space import parse_search_space, split_sweep_arguments

    overrides, sweep_name, setting_overrides = split_sweep_arguments(arguments)
    named_params, named_settings = load_named_sweep(sweep_name, config_dirs) if sweep_name else ({}, {})
    settings = build_settings(named_settings, setting_overrides, flags)
    typed_keys = {text.split("=", 1)[0].lstrip("+~") for text in overrides}
    overrides = [f"{key}={value}" for key, value in named_params.items() if key not in typed_keys] + overrides
    base_overrides, parameters = parse_search_space(overrides, config_dirs)
    if not parameters:
        raise DlxError(
            "Nothing to sweep: no override has several values. Give at least one, e.g. "
            "`optimizer.lr=1e-4,3e-4,1e-3` or `'optimizer.lr=tag(log, interval(1e-5, 1e-1))'`, or name a "
            "search space with `sweep=<name>` (files in configs/sweep/)."
        )
    cfg = _check_configs(base_overrides, parameters, config_dirs)
    discrete = all(p.is_discrete for p in parameters)
    grid_size = math.prod(len(p.choices) for p in parameters) if discrete else None
    settings = resolve_strategy(settings, discrete, grid_size)
    return SweepPlan(
        sweep_id="",
        experiment=str(cfg.experiment),
        output_dir=str(cfg.output_dir),
        base_overrides=base_overrides,
        parameters=parameters,
        config_dirs=[str(Path(d).expanduser().resolve()) for d in config_dirs],
        monitor=str(cfg.trainer.monitor),
        direction="minimize" if cfg.trainer.mode == "min" else "maximize",
        seed=int(cfg.seed),
        settings=settings,
    )


def _check_configs(base_overrides: list[str], parameters: list[Any], config_dirs: list[Path]) -> Any:
    """Compose and validate the config with every value (interval: both ends) of every parameter, so a
    parameter the config does not have, or a value it refuses, stops the sweep before it starts."""
    from dlx.config.compose import compose_config
    from dlx.config.validate import validate_config
    from dlx.sweep.space import overrides_to_check

    cfg = validate_config(compose_config(base_overrides, config_dirs))
    if cfg.trainer.devices * cfg.trainer.num_nodes > 1:
        raise DlxError(
            f"dlx sweep trains each trial in one process, but trainer.devices={cfg.trainer.devices} "
            f"(trainer.num_nodes={cfg.trainer.num_nodes}). Drop it (`trainer.devices=1`) and run trials side "
            "by side with `--jobs N` or `--launcher slurm`."
        )
    by_name = {p.name: p for p in parameters}
    for name, overrides in overrides_to_check(parameters):
        try:
            validate_config(compose_config(base_overrides + overrides, config_dirs))
        except DlxError as error:
            hint = ""
            if not by_name[name].is_discrete and "expected int" in str(error):
                hint = f" For whole numbers, type `'{by_name[name].key}=tag(int, interval(1, 10))'`."
            tried = next(o for o in overrides if o.startswith(by_name[name].key + "="))
            raise DlxError(f"Sweep parameter {name} (tried `{tried}`): {error}{hint}") from None
    return cfg


def _create_sweep_folder(plan: SweepPlan) -> Path:
    from dlx.engine.run_folder import create_run_folder

    folder = create_run_folder(Path(plan.output_dir) / "sweeps", plan.experiment)
    (folder / "checkpoints").rmdir()  # a run folder's; the sweep's checkpoints live in its trials
    return folder


def _resume(
    target: str, arguments: list[str], storage: str | None, flags: dict[str, Any]
) -> tuple[Path, str, SweepPlan, int, str]:
    import dataclasses

    from dlx.sweep.settings import check_settings
    from dlx.sweep.storage import open_storage
    from dlx.sweep.study import (
        PLAN_ATTRIBUTE,
        add_slots,
        load_plan,
        open_study,
        read_sweep_file,
        sweep_folder_for,
        write_sweep_file,
    )

    if arguments:
        raise DlxError(
            f"--resume continues a sweep as it was planned, so overrides ({' '.join(arguments)}) do not "
            "apply. Drop them, or start a new sweep with them."
        )
    fixed = [f"--{name}" for name in ("sampler", "pruner") if flags.get(name) is not None]
    if fixed:
        raise DlxError(f"{', '.join(fixed)} cannot change when a sweep resumes. Drop it.")
    folder = Path(target).expanduser()
    if (folder / "sweep.json").is_file() or storage is None:
        record = read_sweep_file(folder)
        sweep_id = record["sweep_id"]
        storage_url = storage or _stored_storage_url(record, folder)
    else:  # a sweep id in a shared storage: this machine joins it
        sweep_id, storage_url = target, storage
    plan = load_plan(open_storage(storage_url), sweep_id)
    if not (folder / "sweep.json").is_file():
        folder = sweep_folder_for(plan)
        folder.mkdir(parents=True, exist_ok=True)
        write_sweep_file(folder, plan, storage_url)
    settings = dataclasses.replace(
        plan.settings,
        jobs=flags.get("jobs") or plan.settings.jobs,
        launcher=flags.get("launcher") or plan.settings.launcher,
    )
    check_settings(settings)
    trials = flags.get("trials")
    if trials is not None:
        if plan.settings.sampler == "grid":
            raise DlxError("A grid runs every combination once, so --trials cannot extend it. Drop --trials.")
        study = open_study(open_storage(storage_url), plan)
        added = add_slots(study, plan, trials)
        plan.settings.trials = max(trials, plan.settings.trials)
        study.set_user_attr(PLAN_ATTRIBUTE, plan.to_dict())
        if added:
            console.print(f"Added {added} trial(s): the sweep now has {plan.settings.trials}.")
    _print_resume(plan, storage_url, folder)
    return folder, storage_url, plan, settings.jobs, settings.launcher


def _stored_storage_url(record: dict[str, Any], folder: Path) -> str:
    from dlx.sweep.storage import default_storage_url

    url = record.get("storage")
    if url is None:
        return default_storage_url(folder)
    if "***" in url:
        raise DlxError(
            f"{folder / 'sweep.json'} keeps the storage URL without its password ({url}). Pass it "
            "again with `--storage URL`."
        )
    return url


def _print_start(plan: SweepPlan, folder: Path, storage: str | None, jobs: int) -> None:
    from dlx.sweep.storage import masked

    settings = plan.settings
    names = ", ".join(p.name for p in plan.parameters)
    kind = "grid" if settings.sampler == "grid" else f"{settings.sampler} search"
    pruning = "" if settings.pruner == "none" else f", {settings.pruner} pruning"
    workers = f"{jobs} worker{'s' if jobs > 1 else ''}" + (
        (" on Slurm" if settings.slurm.cluster == "slurm" else " as local submitit jobs")
        if settings.launcher == "slurm"
        else ""
    )
    console.print(
        f"[bold]Sweep {plan.sweep_id}[/]: {kind} over {names}, {settings.trials} trials, "
        f"{plan.monitor} ({plan.direction}){pruning}, {workers}.",
        soft_wrap=True,
    )
    console.print(f"Folder: {folder}", markup=False, soft_wrap=True)
    if storage is not None:
        console.print(
            f"More machines join with: dlx sweep --resume {plan.sweep_id} --storage {masked(storage)}",
            markup=False,
            soft_wrap=True,
        )


def _print_resume(plan: SweepPlan, storage_url: str, folder: Path) -> None:
    from dlx.sweep.report import collect_rows
    from dlx.sweep.storage import open_storage
    from dlx.sweep.study import open_study

    rows, _ = collect_rows(open_study(open_storage(storage_url), plan), plan)
    done = sum(r.state in ("finished", "pruned", "failed") for r in rows)
    if done == len(rows):
        more = "" if plan.settings.sampler == "grid" else " (add some with `--trials N`)"
        status = f"all {done} trials are done{more}."
    else:
        status = (
            f"{done} of {len(rows)} trials done; the others run now (a trial interrupted mid-run goes on "
            "once its heartbeat is stale)."
        )
    console.print(f"[bold]Resuming sweep {plan.sweep_id}[/]: {status}", soft_wrap=True)
    console.print(f"Folder: {folder}", markup=False, soft_wrap=True)


def _launch_and_report(folder: Path, storage_url: str, plan: SweepPlan, jobs: int, launcher: str) -> None:
    import signal

    from dlx.engine import interrupts
    from dlx.sweep.launchers import launch

    interrupted, interrupts.last_signal = False, None
    interrupts.interrupt_on_sigterm()  # preempted: stop the workers and report, as for Ctrl-C
    try:
        launch(folder, storage_url, plan, jobs, launcher)
    except KeyboardInterrupt:
        interrupted = True
    rows = report_sweep(folder, storage_url, plan)
    if interrupted:
        console.print(
            f"Interrupted. Continue with: dlx sweep --resume {folder}", markup=False, soft_wrap=True
        )
        raise SystemExit(128 + (interrupts.last_signal or signal.SIGINT))  # 130 for Ctrl-C, 143 for SIGTERM
    if not any(row.state == "finished" for row in rows):
        raise SystemExit(1)


def report_sweep(folder: Path, storage_url: str, plan: SweepPlan) -> list[Any]:
    """Print the table and (re)write summary.json, best.yaml and sweep.png."""
    from dlx.sweep.report import collect_rows, print_report, write_report_files
    from dlx.sweep.storage import masked, open_storage
    from dlx.sweep.study import open_study

    rows, reruns = collect_rows(open_study(open_storage(storage_url), plan), plan)
    write_report_files(plan, rows, reruns, folder, masked(storage_url))
    print_report(plan, rows, reruns, folder)
    return rows


def show_sweep(arguments: list[str], storage: str | None) -> None:
    """`dlx sweep show FOLDER`: the report again, at any time (also while the sweep runs)."""
    from dlx.sweep.storage import open_storage
    from dlx.sweep.study import load_plan, quiet_optuna, read_sweep_file, sweep_folder_for

    if len(arguments) != 1:
        raise DlxError("Type `dlx sweep show outputs/sweeps/<name>/<time>-<id>` with one sweep folder.")
    quiet_optuna()
    folder = Path(arguments[0]).expanduser()
    if (folder / "sweep.json").is_file() or storage is None:
        record = read_sweep_file(folder)
        storage_url = storage or _stored_storage_url(record, folder)
        plan = load_plan(open_storage(storage_url), record["sweep_id"])
    else:  # a sweep id in a shared storage, as `--resume` takes it: reported into this machine's folder
        storage_url = storage
        plan = load_plan(open_storage(storage_url), arguments[0])
        folder = sweep_folder_for(plan)
        folder.mkdir(parents=True, exist_ok=True)
    report_sweep(folder, storage_url, plan)
