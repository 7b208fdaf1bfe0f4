"""GPU rows (only with a CUDA device): step time of the CNN case in fp32, bf16, bf16 + channels_last and
bf16 + channels_last + torch.compile, all through dlx's trainer; then `recipe=cifar10_fast`, as time to 94%
on the real CIFAR-10 when --data-root holds it, else as the wall time of the whole run on random images
of CIFAR-10's size written in its on-disk format (the same data code runs; the accuracy means nothing)."""

from __future__ import annotations

import json
import pickle
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from scripts.bench import loops
from scripts.bench.accuracy import run_timed

VARIANTS = {
    "fp32": [],
    "bf16": ["trainer.precision=bf16"],
    "bf16 + channels_last": ["trainer.precision=bf16", "trainer.channels_last=true"],
    "bf16 + channels_last + compile": [
        "trainer.precision=bf16",
        "trainer.channels_last=true",
        "trainer.compile=true",
    ],
}
TARGET_ACCURACY = 0.94


def measure(repeats: int, output_dir: Path, data_root: Path | None = None) -> list[dict]:
    if not torch.cuda.is_available():
        return [{"benchmark": "GPU rows", "value": "skipped: no CUDA device", "target": "-"}]
    return step_time_rows(repeats, output_dir) + cifar10_fast_rows(repeats, data_root)


def step_time_rows(repeats: int, output_dir: Path) -> list[dict]:
    case = loops.CASES[1]
    rows, baseline = [], None
    for name, overrides in VARIANTS.items():
        variant = loops.Case(case.name, [*case.overrides, "trainer.device=cuda", *overrides], case.steps)
        timings = [loops.dlx_loop(loops.compose(variant, output_dir)).ms_per_step for _ in range(repeats)]
        milliseconds = statistics.median(timings)
        baseline = baseline or milliseconds
        rows.append(
            {
                "benchmark": f"{torch.cuda.get_device_name()}: {case.name}, {name}",
                "value": f"{milliseconds:.3f} ms/step ({baseline / milliseconds:.2f}x fp32)",
                "target": "reference" if name == "fp32" else "faster than fp32",
                "met": None if name == "fp32" else milliseconds < baseline,
            }
        )
    return rows


def cifar10_fast_rows(repeats: int, data_root: Path | None, overrides: tuple[str, ...] = ()) -> list[dict]:
    """`dlx train recipe=cifar10_fast`, whole processes; ``overrides`` only to try this out small."""
    real = data_root is not None and (data_root / "cifar-10-batches-py").is_dir()
    with tempfile.TemporaryDirectory() as folder:
        root = data_root.resolve() if real else write_synthetic_cifar10(Path(folder) / "data")
        runs = [
            _cifar10_fast_run(root, Path(folder) / f"run{index}", overrides, evaluate_test=real)
            for index in range(repeats)
        ]
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    process = statistics.median(run["process_seconds"] for run in runs)
    training = statistics.median(run["training_seconds"] for run in runs)
    if not real:
        return [
            {
                "benchmark": f"{device}: `dlx train recipe=cifar10_fast`, SYNTHETIC data (random 50k/10k "
                "images in CIFAR-10's format; no cifar-10-batches-py under --data-root)",
                "value": f"whole run {training:.1f} s of training, {process:.1f} s whole process "
                f"(median of {repeats}); accuracy not meaningful",
                "target": "reference",
            }
        ]
    reached = [run["time_to_target"] for run in runs if run["time_to_target"] is not None]
    worst_test = min(run["test_acc"] for run in runs)
    to_target = (
        f"{statistics.median(reached):.1f} s to {TARGET_ACCURACY:.0%} val acc ({len(reached)} of {repeats} "
        "reached it)"
        if reached
        else f"{TARGET_ACCURACY:.0%} val acc not reached"
    )
    return [
        {
            "benchmark": f"{device}: `dlx train recipe=cifar10_fast`, real CIFAR-10",
            "value": f"{to_target}; training {training:.1f} s, whole process {process:.1f} s (medians of "
            f"{repeats}); test acc {worst_test:.2%} (worst)",
            "target": f">= {TARGET_ACCURACY:.0%} test acc",
            "met": worst_test >= TARGET_ACCURACY,
        }
    ]


def _cifar10_fast_run(root: Path, folder: Path, overrides: tuple[str, ...], evaluate_test: bool) -> dict:
    folder.mkdir(parents=True)
    dlx = str(Path(sys.executable).with_name("dlx"))
    data = [f"data.root={root}", "data.download=false"]
    arguments = ["recipe=cifar10_fast", *data, "logger=none", "trainer.progress=none", *overrides]
    command = [dlx, "train", *arguments, f"output_dir={folder / 'outputs'}"]
    process_seconds, _ = run_timed(command, str(folder))
    run_folder = next((folder / "outputs").glob("*/*/summary.json")).parent
    summary = json.loads((run_folder / "summary.json").read_text())
    records = [json.loads(line) for line in (run_folder / "metrics.jsonl").read_text().splitlines()]
    # "time": seconds since the run's logger started, i.e. after the data is loaded and the model built.
    reached = [r["time"] for r in records if r.get("val/acc", 0.0) >= TARGET_ACCURACY]
    test_acc = None
    if evaluate_test:
        best = run_folder / "checkpoints" / "best.ckpt"
        run_timed([dlx, "eval", str(best), "data.split=test", *data], str(folder))
        test_acc = json.loads((run_folder / "eval" / "test" / "eval.json").read_text())["metrics"]["test/acc"]
    return {
        "process_seconds": process_seconds,
        "training_seconds": summary["wall_seconds"],
        "time_to_target": reached[0] if reached else None,
        "test_acc": test_acc,
    }


def write_synthetic_cifar10(root: Path, train_count: int = 50000, test_count: int = 10000) -> Path:
    """Random uint8 images and labels as cifar-10-batches-py/ pickles (5 training batches, a test batch)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    generator = np.random.default_rng(0)
    names = [f"data_batch_{index}" for index in range(1, 6)]
    counts = [train_count // 5] * 5 + [test_count]
    for name, count in zip([*names, "test_batch"], counts, strict=True):
        batch = {
            "batch_label": name,
            "data": generator.integers(0, 256, size=(count, 3 * 32 * 32), dtype=np.uint8),
            "labels": generator.integers(0, 10, size=count).tolist(),
            "filenames": [f"{name}_{index}.png" for index in range(count)],
        }
        (folder / name).write_bytes(pickle.dumps(batch))
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": classes}))
    return root
