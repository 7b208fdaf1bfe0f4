"""How a sweep runs: trials, sampler, pruner, workers, launcher. From, in order of precedence: the
command's flags, `sweep.key=value` arguments, a named search space (`sweep=NAME`, configs/sweep/NAME.yaml),
and the defaults below."""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlx.errors import DlxError, did_you_mean

SAMPLERS = ["tpe", "random", "grid"]
PRUNERS = ["median", "hyperband", "none"]
LAUNCHERS = ["local", "slurm"]
DEFAULT_SEARCH_TRIALS = 20


@dataclass
class SlurmSettings:
    """Per-trial resources for `--launcher slurm` (one Slurm job per trial, submitted with submitit)."""

    cluster: str = "slurm"  # "local": the same submitit path on this machine, without Slurm
    partition: str | None = None
    time_minutes: int = 60
    gpus_per_trial: int = 1
    cpus_per_trial: int = 4
    mem_gb: int | None = None
    additional: dict[str, Any] = field(default_factory=dict)  # more sbatch options: {account: x, qos: y}


@dataclass
class SweepSettings:
    trials: int | None = None  # a search's budget (default 20); a grid runs every combination once
    sampler: str | None = None  # grid when every parameter is discrete, else tpe
    pruner: str | None = None  # median for searches, none for grids
    jobs: int = 1  # trials at once: local worker processes, or Slurm jobs running together
    launcher: str = "local"
    pruner_startup_trials: int = 5  # the median pruner waits for this many finished trials
    heartbeat_seconds: int = 10  # a trial silent for 3 heartbeats counts as interrupted, and reruns
    slurm: SlurmSettings = field(default_factory=SlurmSettings)


def sweep_config_dirs(config_dirs: list[Path]) -> list[Path]:
    from dlx.config.paths import configs_dir

    return [configs_dir() / "sweep", *(Path(d) / "sweep" for d in config_dirs)]


def named_sweep_options(config_dirs: list[Path]) -> dict[str, Path]:
    """Search-space name -> file; a user's file of the same name wins."""
    return {
        path.stem: path for folder in sweep_config_dirs(config_dirs) for path in sorted(folder.glob("*.yaml"))
    }


def load_named_sweep(name: str, config_dirs: list[Path]) -> tuple[dict[str, str], dict[str, Any]]:
    """(parameters as override strings, settings) of configs/sweep/NAME.yaml."""
    from omegaconf import OmegaConf

    options = named_sweep_options(config_dirs)
    if name not in options:
        raise DlxError(
            f"Unknown sweep '{name}'.{did_you_mean(name, options)} Available: {', '.join(options) or 'none'} "
            "(files in configs/sweep/). Type `sweep=<name>` with one of these, or give the values on the "
            "command line (`optimizer.lr=1e-4,1e-3`)."
        )
    content = OmegaConf.to_container(OmegaConf.load(options[name]), resolve=False) or {}
    if not isinstance(content, dict):
        raise DlxError(f"{options[name]} must be a mapping with `params:` and settings such as `trials:`.")
    params = content.pop("params", None) or {}
    if not isinstance(params, dict):
        raise DlxError(
            f"`params:` in {options[name]} must map keys to sweep values, e.g. "
            "`optimizer.lr: tag(log, interval(1e-5, 1e-1))`."
        )
    return {str(key): _as_override_value(value) for key, value in params.items()}, content


def _as_override_value(value: Any) -> str:
    if isinstance(value, list):  # `[a, b]` in YAML reads as the choices a,b
        return ",".join(str(v) for v in value)
    return "null" if value is None else str(value)


def build_settings(
    from_file: dict[str, Any], setting_overrides: list[str], flags: dict[str, Any]
) -> SweepSettings:
    """Merge the layers (file < `sweep.key=value` < flags) and check every value."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    merged = OmegaConf.structured(SweepSettings)
    layers = [("the sweep config", from_file)]
    try:
        layers.append(("sweep.key=value", OmegaConf.to_container(OmegaConf.from_dotlist(setting_overrides))))
    except OmegaConfBaseException as error:
        raise DlxError(f"Cannot read the sweep settings {setting_overrides}: {error}") from None
    layers.append(("the command's flags", {k: v for k, v in flags.items() if v is not None}))
    for source, layer in layers:
        _check_keys(layer, SweepSettings, "sweep")
        try:
            merged = OmegaConf.merge(merged, layer)
        except OmegaConfBaseException as error:
            message = " ".join(str(error).split("\n")[0].split())
            raise DlxError(f"A sweep setting in {source} has the wrong type: {message}.") from None
    settings = OmegaConf.to_object(merged)
    check_settings(settings)
    return settings


def _check_keys(layer: dict[str, Any], schema: type, prefix: str) -> None:
    fields = {f.name: f for f in dataclasses.fields(schema)}
    for key, value in layer.items():
        if key not in fields:
            raise DlxError(
                f"Unknown sweep setting '{prefix}.{key}'.{did_you_mean(key, fields)} Settings: "
                f"{', '.join(fields)}."
            )
        if key == "slurm" and isinstance(value, dict):
            _check_keys(value, SlurmSettings, f"{prefix}.slurm")


def check_settings(settings: SweepSettings) -> None:
    if settings.jobs < 1:
        raise DlxError(
            f"--jobs must be at least 1, got {settings.jobs}: it is how many trials run at once. "
            "Type e.g. `--jobs 2`."
        )
    if settings.trials is not None and settings.trials < 1:
        raise DlxError(f"--trials must be at least 1, got {settings.trials}. Type e.g. `--trials 20`.")
    for name, value, choices in [
        ("--sampler", settings.sampler, SAMPLERS),
        ("--pruner", settings.pruner, PRUNERS),
        ("--launcher", settings.launcher, LAUNCHERS),
    ]:
        if value is not None and value not in choices:
            raise DlxError(
                f"{name} {value} is not one of {', '.join(choices)}.{did_you_mean(value, choices)} "
                f"Type e.g. `{name} {choices[0]}`."
            )
    if settings.heartbeat_seconds < 1 or settings.pruner_startup_trials < 0:
        raise DlxError(
            "sweep.heartbeat_seconds must be at least 1 and sweep.pruner_startup_trials 0 or more."
        )
    if settings.slurm.cluster not in ("slurm", "local"):
        raise DlxError(
            f"sweep.slurm.cluster={settings.slurm.cluster} is not one of slurm, local (local runs the "
            "submitit path on this machine)."
        )
    if settings.launcher == "slurm" and settings.slurm.cluster == "slurm" and shutil.which("sbatch") is None:
        raise DlxError(
            "--launcher slurm submits each trial as a Slurm job, but this machine has no Slurm (no `sbatch` "
            "on PATH). Run the sweep on the cluster's login node, run trials here with `--launcher local "
            "--jobs N`, or try the submission path locally with `sweep.slurm.cluster=local`."
        )


def resolve_strategy(settings: SweepSettings, discrete: bool, grid_size: int | None) -> SweepSettings:
    """Fill in sampler, pruner and trials from the kind of search space."""
    sampler = settings.sampler or ("grid" if discrete else "tpe")
    if sampler == "grid" and not discrete:
        raise DlxError(
            "--sampler grid needs a value list for every parameter, but an interval() has infinitely many. "
            "Use `--sampler tpe` or `--sampler random` with `--trials N`, or list values (`key=a,b,c`)."
        )
    trials = settings.trials
    if sampler == "grid":
        if trials is not None and trials != grid_size:
            fewer = f", or sample {trials} of them with `--sampler random --trials {trials}`"
            raise DlxError(
                f"The grid has {grid_size} combinations and runs each once, so --trials {trials} does not "
                f"apply. Drop --trials{fewer if trials < grid_size else ''}."
            )
        trials = grid_size
    elif discrete and grid_size is not None:
        if trials is not None and trials > grid_size:
            raise DlxError(
                f"The search space has only {grid_size} combinations, so --trials {trials} would train some "
                f"of them twice. Drop --sampler to run each once (the grid), or ask for `--trials "
                f"{grid_size}` or fewer."
            )
        if sampler == "tpe" and (trials or DEFAULT_SEARCH_TRIALS) >= grid_size:
            # TPE may draw a combination it drew before; with a trial for each, the grid tries them all.
            asked = f"--trials {trials}" if trials else f"a search of {DEFAULT_SEARCH_TRIALS} trials"
            raise DlxError(
                f"The search space has {grid_size} combinations and {asked} would try as many, but TPE "
                "may draw one twice and skip another. Drop --sampler to run each once (the grid), or use "
                "`--sampler random`, which never draws one twice."
            )
        trials = trials or min(DEFAULT_SEARCH_TRIALS, grid_size)
    pruner = settings.pruner or ("none" if sampler == "grid" else "median")
    return dataclasses.replace(
        settings, sampler=sampler, pruner=pruner, trials=trials or DEFAULT_SEARCH_TRIALS
    )


def settings_from_dict(data: dict[str, Any]) -> SweepSettings:
    slurm = SlurmSettings(**data.get("slurm", {}))
    return SweepSettings(**{k: v for k, v in data.items() if k != "slurm"}, slurm=slurm)
