"""`dlx eval CKPT`: rebuild model and data from the checkpoint's own config and measure a split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def evaluate_checkpoint(path: Path, overrides: list[str], trust_checkpoint: bool = False) -> dict[str, Any]:
    from dlx.engine.evaluation import evaluate
    from dlx.engine.precision import Precision, resolve_device
    from dlx.report import print_metrics
    from dlx.restore import restore_run

    run = restore_run(path, overrides, trust_checkpoint)
    cfg, task = run.cfg, run.task
    split = str(cfg.data.get("split") or "val")
    device = resolve_device(cfg.trainer.device)
    precision = Precision(cfg.trainer.precision, device)
    task.to(device)
    metrics = {
        f"{split}/{k}": v for k, v in evaluate(task, run.data.loader(split), device, precision).items()
    }

    stem = Path(path).stem
    folder = run.run_folder / "eval" / (split if stem == "best" else f"{split}-{stem}")
    folder.mkdir(parents=True, exist_ok=True)
    extra = task.save_report(folder, list(cfg.data.class_names) if cfg.data.get("class_names") else None)
    results = {
        "checkpoint": str(Path(path).resolve()),
        "split": split,
        "epoch": run.checkpoint["progress"]["epoch"],
        "step": run.checkpoint["progress"]["global_step"],
        "metrics": metrics,
        **extra,
    }
    (folder / "eval.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    samples = len(run.data.splits[split][0])
    print_metrics(f"dlx eval: {Path(path).name} on {split} ({samples} samples)", metrics)
    results["folder"] = str(folder)
    return results
