"""Typed schemas of the groups that have no registry entry: the trainer and the logger.

The other groups (model, data, task, optimizer, scheduler) are checked against the signature of the
registry entry their ``name:`` picks, so a component's constructor is its schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dlx.errors import DlxError


@dataclass
class EarlyStoppingConfig:
    patience: int | None = None
    min_delta: float = 0.0
    stop_on_nonfinite: bool = True


@dataclass
class TrainerConfig:
    max_epochs: int | None = 10
    max_steps: int | None = None
    max_time: float | str | None = None
    device: str = "auto"
    precision: str | int = "32"
    gradient_clip_val: float | None = None
    gradient_clip_algorithm: str = "norm"
    accumulate_grad_batches: int = 1
    val_every_n_epochs: int = 1
    val_every_n_steps: int | None = None
    log_every_n_steps: int = 10
    checkpoint_every_n_steps: int | None = None
    monitor: str = "val/loss"
    mode: str = "min"
    save_top_k: int = 1
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    deterministic: bool = False
    fast_dev_run: bool = False
    overfit_batches: int = 0
    compile: bool = False
    channels_last: bool = False
    progress: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    rdzv_endpoint: str | None = None
    strategy: str = "auto"
    collective_timeout: float = 300.0


def trainer_settings(section) -> TrainerConfig:
    """A validated ``cfg.trainer`` as a plain dataclass: the loop reads it every step, and attribute
    access on an OmegaConf node costs microseconds each."""
    from omegaconf import OmegaConf

    values = OmegaConf.to_container(section, resolve=True) if OmegaConf.is_config(section) else dict(section)
    early_stopping = EarlyStoppingConfig(**values.pop("early_stopping", {}))
    return TrainerConfig(**values, early_stopping=early_stopping)


@dataclass
class LoggerConfig:
    name: str = "wandb"
    mode: str = "auto"
    project: str = "dlx"
    entity: str | None = None
    group: str | None = None
    tags: list[str] = field(default_factory=list)
    log_model: bool = False
    init_timeout: float = 5.0


CHOICES = {
    "trainer.precision": ["32", "bf16", "fp16"],
    "trainer.gradient_clip_algorithm": ["norm", "value"],
    "trainer.mode": ["min", "max"],
    "trainer.progress": ["auto", "rich", "plain", "none"],
    "trainer.strategy": ["auto", "ddp", "fsdp"],
    "logger.name": ["wandb", "none"],
    "logger.mode": ["auto", "online", "offline", "disabled"],
}

TOP_LEVEL_KEYS = [
    "model",
    "data",
    "task",
    "optimizer",
    "scheduler",
    "trainer",
    "logger",
    "experiment",
    "output_dir",
    "seed",
]
# Data-config keys the builder fills from the data itself; not constructor arguments.
DATA_METADATA_KEYS = [
    "input_shape",
    "num_outputs",
    "num_classes",
    "class_names",
    "vocab_size",
    "pad_id",
    "target_mean",
    "target_std",
]
DATA_BUILDER_KEYS = ["split", *DATA_METADATA_KEYS]


def parse_duration(value: float | str | None) -> float | None:
    """Seconds from a number or "[DD:]HH:MM:SS"."""
    if value is None or isinstance(value, (int, float)):
        return value
    try:
        parts = [float(part) for part in str(value).split(":")]
    except ValueError:
        raise DlxError(
            f"trainer.max_time='{value}' is not a duration. Type seconds (`trainer.max_time=3600`) "
            "or `trainer.max_time='01:00:00'`."
        ) from None
    seconds = 0.0
    for part, unit in zip(reversed(parts), (1, 60, 3600, 86400), strict=False):
        seconds += part * unit
    return seconds
