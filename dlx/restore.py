"""Rebuild a trained run from its checkpoint alone: config, data, model with weights, task.

`dlx eval`, `dlx export` and `dlx predict` start here; the original config files are not needed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dlx.errors import DlxError


@dataclass
class RestoredRun:
    checkpoint_path: Path
    checkpoint: dict[str, Any]
    cfg: DictConfig
    data: Any  # the DataModule: set up (its splits read), unless restore_run was told not to
    data_metadata: Any  # its DataMetadata
    model: Any  # torch.nn.Module with the checkpoint's weights, in eval mode
    task: Any

    @property
    def run_folder(self) -> Path:
        parent = self.checkpoint_path.resolve().parent
        return parent.parent if parent.name == "checkpoints" else parent


def refuse_untrusted_targets(checkpoint: dict[str, Any], trust_checkpoint: bool) -> None:
    """A checkpoint's config may only name dlx's own classes, unless the user vouches for it."""
    from dlx.build import untrusted_targets

    foreign = untrusted_targets(OmegaConf.to_container(OmegaConf.create(checkpoint["config"])))
    if foreign and not trust_checkpoint:
        raise DlxError(
            f"The checkpoint's config names code outside dlx ({', '.join(foreign)}); loading it would "
            "import and run that code. If you trust where this file came from, add "
            "`--trust-checkpoint`."
        )


def refuse_group_swaps(overrides: list[str], keeps: str, instead: str) -> None:
    """A run rebuilt from its checkpoint keeps its pieces: ``data=spirals`` cannot apply to it."""
    from dlx.config.validate import COMPONENT_GROUPS

    for override in overrides:
        if override.lstrip("+~").split("=", 1)[0] in (*COMPONENT_GROUPS, "trainer", "logger", "recipe"):
            raise DlxError(f"`{override}` would swap a whole config group, but {keeps}. {instead}")


def refuse_model_changes(overrides: list[str]) -> None:
    """The checkpoint's weights were trained as its model config says: `model.activation=tanh` would load
    them into another network and measure that. Only where the weights come from may change."""
    for override in overrides:
        key = override.lstrip("+~").split("=", 1)[0]
        if key.startswith("model.") and key != "model.pretrained":
            raise DlxError(
                f"`{override}` would change the model the checkpoint's weights were trained for, so the "
                "weights would run in another network. Drop it; to try the change, train a run with it "
                f"(`dlx train ... {override}`)."
            )


# What cuts the training data into train/val/test: changed after training, "test" could hold training rows.
SPLIT_KEYS = ("split_seed", "val_fraction", "test_fraction", "val_size")


def refuse_new_split(trained: DictConfig, cfg: DictConfig) -> None:
    """A run keeps the train/val/test cut it was trained with (eval, export, predict and --resume)."""
    for key in SPLIT_KEYS:
        if trained.data.get(key) != cfg.data.get(key):
            new_file = " or a labelled file of new rows (`data.test=...`)" if "test" in cfg.data else ""
            hold_out = next((k for k in ("test_fraction", "val_fraction", "val_size") if k in cfg.data), None)
            retrain = f" To hold out other rows, train a new run (`dlx train ... data.{hold_out}=...`)."
            raise DlxError(
                f"`data.{key}={cfg.data.get(key)}` would cut the data into other splits than the run was "
                f"trained with ({key}={trained.data.get(key)}), so rows the model trained on could land in "
                f"the split measured. Use the splits it has (`data.split=val`, or test if it held one out)"
                f"{new_file}.{retrain if hold_out else ''}"
            )


def refuse_optimizer_changes(trained: DictConfig, cfg: DictConfig) -> None:
    """On --resume the optimizer and scheduler continue from their checkpointed state, learning rate
    included: a changed setting would be written to config.yaml yet not be what runs."""
    for group in ("optimizer", "scheduler"):
        before = OmegaConf.to_container(trained[group], resolve=True)
        after = OmegaConf.to_container(cfg[group], resolve=True)
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key):
                raise DlxError(
                    f"`{group}.{key}={after.get(key)}` cannot apply on --resume: the {group} continues from "
                    f"its state in the checkpoint ({group}.{key}={before.get(key)}, with its moments and "
                    "step count), so the run would not do what its config.yaml says. Resume without it, "
                    "or start a new run without --resume."
                )


def restore_run(
    path: Path,
    overrides: list[str] | None = None,
    trust_checkpoint: bool = False,
    check_config: Callable[[DictConfig], None] | None = None,
    read_data: bool = True,
) -> RestoredRun:
    """The run of checkpoint ``path``; ``check_config`` may refuse its config before anything is built.

    ``read_data=False`` (new inputs to predict on) leaves the data files unread when the checkpoint
    describes its data (DataMetadata, vocabulary): they may be gone, or a download away.
    """
    from dlx.build import apply_overrides, build_data, build_model, build_task, instantiate_data
    from dlx.config.validate import validate_config
    from dlx.data.base import DataMetadata
    from dlx.engine.checkpoint import checkpoint_file, load_checkpoint, load_model_state, load_task_state

    refuse_group_swaps(
        overrides or [],
        "a checkpoint is rebuilt with the pieces it was trained with",
        "Change single values instead (e.g. `data.split=test` or `data.batch_size=256`), or train a "
        "new run with `dlx train`.",
    )
    refuse_model_changes(overrides or [])
    path = checkpoint_file(path)  # a run folder: its best.ckpt
    checkpoint = load_checkpoint(path)
    refuse_untrusted_targets(checkpoint, trust_checkpoint)
    trained = OmegaConf.create(checkpoint["config"])
    cfg = apply_overrides(OmegaConf.create(checkpoint["config"]), overrides or [])
    refuse_new_split(trained, cfg)
    validate_config(cfg)
    if check_config is not None:
        check_config(cfg)
    described = checkpoint.get("data_metadata")  # older checkpoints lack it: their data is read
    if read_data or described is None:
        data = build_data(cfg, checkpoint.get("data_state"))
        data_metadata = data.metadata()
    else:
        data = instantiate_data(cfg, checkpoint.get("data_state"))
        data_metadata = DataMetadata.from_plain(described)
    task = build_task(cfg, build_model(cfg))
    model = task.model  # what the checkpoint holds: a task may wrap the model (regression's target scale)
    load_model_state(model, checkpoint["model"])
    load_task_state(task, checkpoint.get("task"))
    task.eval()
    return RestoredRun(Path(path), checkpoint, cfg, data, data_metadata, model, task)
