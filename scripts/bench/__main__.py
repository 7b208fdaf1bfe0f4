"""dlx's benchmarks in one markdown table: raw-loop parity and throughput (with Lightning's barebones
Trainer as a reference when installed), start-up, time to accuracy, the in-memory fast path and, with a
CUDA device, mixed precision.

    uv run --group bench python -m scripts.bench [--repeats 3] [--data-root DIR] [--only loops,startup]

--data-root is a folder holding MNIST/ in torchvision's layout (the MNIST rows are skipped without it) and,
for the GPU's time to 94% with `recipe=cifar10_fast`, cifar-10-batches-py/ (else it times synthetic data).
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import tempfile
from pathlib import Path

import torch

SECTIONS = ["loops", "startup", "accuracy", "fast_path", "gpu"]


def loop_rows(repeats: int, output_dir: Path) -> list[dict]:
    from scripts.bench import loops

    rows = []
    for case in loops.CASES:
        raw, raw_fused, ours, lightning, difference = [], [], [], [], 0.0
        for _ in range(repeats):  # interleaved: a busy moment costs every loop alike
            raw.append(loops.raw_loop(loops.compose(case, output_dir)).ms_per_step)
            fused_result = loops.raw_loop(loops.compose(case, output_dir), fused=True)
            our_result = loops.dlx_loop(loops.compose(case, output_dir))
            lightning_result = loops.lightning_loop(loops.compose(case, output_dir))
            raw_fused.append(fused_result.ms_per_step)
            ours.append(our_result.ms_per_step)
            difference = max(difference, loops.max_loss_difference(fused_result, our_result))
            if lightning_result is not None:
                lightning.append(lightning_result.ms_per_step)
        raw_ms, fused_ms = statistics.median(raw), statistics.median(raw_fused)
        our_ms = statistics.median(ours)
        reference = f"; Lightning barebones {statistics.median(lightning):.3f} ms" if lightning else ""
        # dlx steps with the fused AdamW kernel: against the plain loop as usually written, and against
        # the same loop with that kernel (which leaves only the trainer's own cost, and the same
        # arithmetic, so the losses are compared with it); both speeds must hold.
        rows.append(
            {
                "benchmark": f"{case.name}: plain loop (AdamW default / fused) vs dlx",
                "value": f"{raw_ms:.3f} / {fused_ms:.3f} vs {our_ms:.3f} ms/step: throughput "
                f"{raw_ms / our_ms:.3f}x / {fused_ms / our_ms:.3f}x, max loss difference "
                f"{difference:.1e}{reference}",
                "target": ">= 0.97x, losses equal to 5 decimals",
                "met": min(raw_ms, fused_ms) / our_ms >= 0.97 and difference < 5e-6,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated: {', '.join(SECTIONS)}")
    arguments = parser.parse_args()
    chosen = arguments.only.split(",")
    print(
        f"\n{datetime.date.today()}, {platform.node()}: {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}, median of {arguments.repeats}\n"
    )
    print("| benchmark | measured | target | met |")
    print("|---|---|---|---|", flush=True)
    with tempfile.TemporaryDirectory() as output_dir:
        for section in SECTIONS:
            if section in chosen:
                for row in _section_rows(section, arguments, Path(output_dir)):
                    met = {True: "yes", False: "**no**", None: ""}[row.get("met")]
                    print(f"| {row['benchmark']} | {row['value']} | {row['target']} | {met} |", flush=True)


def _section_rows(section: str, arguments: argparse.Namespace, output_dir: Path) -> list[dict]:
    if section == "loops":
        return loop_rows(arguments.repeats, output_dir)
    if section == "startup":
        from scripts.bench import startup

        return startup.measure(max(arguments.repeats, 5))
    if section == "accuracy":
        from scripts.bench import accuracy

        rows = accuracy.measure_digits(arguments.repeats)
        if arguments.data_root is None:
            return rows + [{"benchmark": "MNIST rows", "value": "skipped: no --data-root", "target": "-"}]
        return rows + accuracy.measure_mnist(arguments.data_root.resolve(), arguments.repeats)
    if section == "fast_path":
        from scripts.bench import fast_path

        return fast_path.measure(arguments.repeats)
    from scripts.bench import gpu

    return gpu.measure(arguments.repeats, output_dir, arguments.data_root)


if __name__ == "__main__":
    main()
