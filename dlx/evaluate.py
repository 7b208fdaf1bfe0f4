"""`dlx eval CKPT`: rebuild model and data from the checkpoint's own config and measure a split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dlx.errors import DlxError


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

    checkpoint = run.checkpoint_path  # a run folder: its best.ckpt
    samples = len(run.data.splits[split][0])
    print_metrics(f"dlx eval: {checkpoint.name} on {split} ({samples} samples)", metrics)
    folder = run.run_folder / "eval" / (split if checkpoint.stem == "best" else f"{split}-{checkpoint.stem}")
    results = {
        "checkpoint": str(checkpoint.resolve()),
        "split": split,
        "epoch": run.checkpoint["progress"]["epoch"],
        "step": run.checkpoint["progress"]["global_step"],
        "metrics": metrics,
        "overrides": list(overrides),
    }
    try:
        folder.mkdir(parents=True, exist_ok=True)
        results.update(
            task.save_report(folder, list(cfg.data.class_names) if cfg.data.get("class_names") else None)
        )
        (folder / "eval.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    except OSError as error:
        raise DlxError(
            f"The metrics above could not be saved in {folder}: {error.strerror or error}. Make the run "
            "folder writable (or copy the run somewhere writable) and run `dlx eval` again."
        ) from error
    results["folder"] = str(folder)
    return results
