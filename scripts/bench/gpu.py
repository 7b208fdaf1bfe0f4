"""GPU rows (only with a CUDA device): step time of the CNN case in fp32, bf16, bf16 + channels_last and
bf16 + channels_last + torch.compile, all through dlx's trainer."""

from __future__ import annotations

import statistics
from pathlib import Path

import torch

from scripts.bench import loops

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


def measure(repeats: int, output_dir: Path) -> list[dict]:
    if not torch.cuda.is_available():
        return [{"benchmark": "GPU rows", "value": "skipped: no CUDA device", "target": "-"}]
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
