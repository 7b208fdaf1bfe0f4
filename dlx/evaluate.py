"""`dlx eval CKPT`: rebuild model and data from the checkpoint's own config and measure a split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from dlx.errors import DlxError


def run_folder_of(checkpoint_path: Path) -> Path:
    parent = checkpoint_path.resolve().parent
    return parent.parent if parent.name == "checkpoints" else parent


def evaluate_checkpoint(path: Path, overrides: list[str], trust_checkpoint: bool = False) -> dict[str, Any]:
    from dlx.build import apply_overrides, build_data, build_model, build_task, untrusted_targets
    from dlx.config.validate import validate_config
    from dlx.engine.checkpoint import load_checkpoint
    from dlx.engine.evaluation import evaluate
    from dlx.engine.precision import Precision, resolve_device
    from dlx.engine.trainer import load_model_state
    from dlx.report import print_metrics

    checkpoint = load_checkpoint(path)
    cfg = OmegaConf.create(checkpoint["config"])
    foreign = untrusted_targets(OmegaConf.to_container(cfg))
    if foreign and not trust_checkpoint:
        raise DlxError(
            f"The checkpoint's config names code outside dlx ({', '.join(foreign)}); loading it would "
            "import and run that code. If you trust where this file came from, add "
            "`--trust-checkpoint`."
        )
    cfg = apply_overrides(cfg, overrides)
    validate_config(cfg)
    split = str(cfg.data.get("split") or "val")
    data = build_data(cfg)
    model = build_model(cfg)
    load_model_state(model, checkpoint["model"])
    task = build_task(cfg, model)
    device = resolve_device(cfg.trainer.device)
    precision = Precision(cfg.trainer.precision, device)
    task.to(device)
    metrics = {f"{split}/{k}": v for k, v in evaluate(task, data.loader(split), device, precision).items()}

    folder = run_folder_of(path) / "eval" / split
    folder.mkdir(parents=True, exist_ok=True)
    extra = task.save_report(folder, list(cfg.data.class_names) if cfg.data.get("class_names") else None)
    results = {
        "checkpoint": str(Path(path).resolve()),
        "split": split,
        "epoch": checkpoint["progress"]["epoch"],
        "step": checkpoint["progress"]["global_step"],
        "metrics": metrics,
        **extra,
    }
    (folder / "eval.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print_metrics(f"dlx eval: {Path(path).name} on {split} ({len(data.splits[split][0])} samples)", metrics)
    results["folder"] = str(folder)
    return results
