"""Per-step time of dlx's trainer against a plain PyTorch loop on the same model and batches.

The training set is the bundled digits repeated 20 times (25k samples), so nothing is downloaded.

    uv run python scripts/bench_trainer_overhead.py [--steps 1500] [--repeats 3]

Both loops see identical batches (the same TensorLoader), model, optimizer and schedule; dlx runs with
its logging, progress and checkpoint machinery on (progress as plain lines, W&B off). Prints a markdown
table of median milliseconds per optimizer step.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from torch.nn import functional as F

CASES = {
    "mlp 256x256, digits 8x8, batch 64": ["model=mlp", "data=digits", "data.batch_size=64"],
    "cnn [16,32], MNIST-size 28x28, batch 128": [
        "model=cnn",
        "model.channels=[16,32]",
        "model.pooled_size=7",
        "model.hidden_size=128",
        "model.batch_norm=false",
        "data=digits",
        "data.batch_size=128",
    ],
}


def compose(overrides: list[str], steps: int, output_dir: str):
    from dlx.config.compose import compose_config
    from dlx.config.validate import validate_config

    return validate_config(
        compose_config(
            [
                *overrides,
                "logger=none",
                "trainer.progress=none",
                f"trainer.max_steps={steps}",
                "trainer.max_epochs=null",
                "trainer.val_every_n_epochs=100000",
                "trainer.log_every_n_steps=50",
                f"output_dir={output_dir}",
                "scheduler=cosine",
                "optimizer=adamw",
            ]
        )
    )


def enlarge(data, upsample: bool) -> None:
    """Repeat the digits 20x (so epochs are long and per-epoch work is amortised as in real data sets),
    and for the CNN upsample them to MNIST's 28x28."""
    inputs, targets = data.splits["train"]
    inputs, targets = inputs.repeat(20, 1, 1, 1), targets.repeat(20)
    if upsample:
        inputs = F.interpolate(inputs, size=(28, 28), mode="bilinear")
        data.splits["val"] = (
            F.interpolate(data.splits["val"][0], size=(28, 28), mode="bilinear"),
            data.splits["val"][1],
        )
    data.splits["train"] = (inputs, targets)


def raw_loop_ms(cfg, steps: int, upsample: bool) -> float:
    from dlx.build import build_data, build_model, optimizer_builder

    torch.manual_seed(0)
    data = build_data(cfg)
    enlarge(data, upsample)
    model = build_model(cfg)
    optimizer = optimizer_builder(cfg)(model)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    step, epoch = 0, 0
    started = time.perf_counter()
    while step < steps:
        for inputs, targets in data.loader("train", epoch=epoch):
            loss = F.cross_entropy(model(inputs), targets)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            step += 1
            if step == steps:
                break
        epoch += 1
    return (time.perf_counter() - started) / steps * 1000


def dlx_loop_ms(cfg, steps: int, upsample: bool) -> float:
    import dlx.build
    from dlx.train import fit_config

    original = dlx.build.build_data

    def build_data(config):
        data = original(config)
        enlarge(data, upsample)
        return data

    dlx.build.build_data = build_data
    try:
        summary = fit_config(cfg)
    finally:
        dlx.build.build_data = original
    return summary["wall_seconds"] / steps * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rows = []
    with tempfile.TemporaryDirectory() as output_dir:
        for name, overrides in CASES.items():
            upsample = "cnn" in name
            raw, ours = [], []
            for _ in range(arguments.repeats):
                raw.append(
                    raw_loop_ms(compose(overrides, arguments.steps, output_dir), arguments.steps, upsample)
                )
                ours.append(
                    dlx_loop_ms(compose(overrides, arguments.steps, output_dir), arguments.steps, upsample)
                )
            rows.append((name, statistics.median(raw), statistics.median(ours)))
    print(
        f"\n{arguments.steps} steps, median of {arguments.repeats}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads\n"
    )
    print("| model | plain loop ms/step | dlx ms/step | dlx / plain |")
    print("|---|---:|---:|---:|")
    for name, raw, ours in rows:
        print(f"| {name} | {raw:.3f} | {ours:.3f} | {ours / raw:.3f} |")


if __name__ == "__main__":
    main()
