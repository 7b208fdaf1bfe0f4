"""Start-up: wall time of `dlx --help`, `dlx ls`, `dlx config` against `python -c "import torch"`, and how
long `dlx train` takes to reach its first training step, against a plain script that imports torch, loads
the same data, builds the same MLP and AdamW and takes its first step. (Building any torch optimizer
imports torch._dynamo, about 1.5 s here: both pay it.)"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run inside a fresh `dlx train` process: note when torch finished importing, how long the data took to
# load and when the first training step starts, then stop the process.
FIRST_STEP_PROBE = r"""
import json, os, sys, time
started = time.perf_counter()
import torch
torch_seconds = time.perf_counter() - started
import dlx.build, dlx.tasks.base
marks = {"torch": torch_seconds}
build_data = dlx.build.build_data
def timed_build_data(*args, **kwargs):
    began = time.perf_counter()
    data = build_data(*args, **kwargs)
    marks["data"] = time.perf_counter() - began
    return data
dlx.build.build_data = timed_build_data
def first_step(self, batch, optimization):
    marks["first_step"] = time.perf_counter() - started
    print("PROBE " + json.dumps(marks), flush=True)
    os._exit(0)
dlx.tasks.base.Task.train_batch = first_step
from dlx.cli import main
sys.argv = ["dlx", "train", *sys.argv[1:]]
main()
"""


PLAIN_FIRST_STEP = r"""
import json, time
started = time.perf_counter()
import torch
from torch import nn
from torch.nn import functional as F
torch_seconds = time.perf_counter() - started
from dlx.data.digits import DigitsData
began = time.perf_counter()
inputs, targets = DigitsData().setup().splits["train"]
data_seconds = time.perf_counter() - began
model = nn.Sequential(
    nn.Flatten(), nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)
)
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
first = time.perf_counter() - started
loss = F.cross_entropy(model(inputs[:64]), targets[:64])
print("PROBE " + json.dumps({"torch": torch_seconds, "data": data_seconds, "first_step": first}))
"""


def _probe(command: list[str], folder: str) -> dict:
    output = subprocess.run(command, cwd=folder, check=True, capture_output=True, text=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("PROBE "))
    return json.loads(line.removeprefix("PROBE "))


def _wall(command: list[str], cwd: str) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def measure(repeats: int) -> list[dict]:
    dlx = str(Path(sys.executable).with_name("dlx"))
    commands = {
        "`dlx --help`": [dlx, "--help"],
        "`dlx ls`": [dlx, "ls"],
        "`dlx config`": [dlx, "config"],
        "`dlx config recipe=mnist_cnn`": [dlx, "config", "recipe=mnist_cnn"],
    }
    torch_import = [sys.executable, "-c", "import torch"]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        _wall(torch_import, folder)  # warm the file cache for everyone
        timings: dict[str, list[float]] = {name: [] for name in [*commands, "torch"]}
        for _ in range(repeats):  # interleaved, so a busy moment hits every command alike
            timings["torch"].append(_wall(torch_import, folder))
            for name, command in commands.items():
                timings[name].append(_wall(command, folder))
        torch_seconds = statistics.median(timings["torch"])
        rows.append(
            {
                "benchmark": '`python -c "import torch"`',
                "value": f"{torch_seconds:.3f} s",
                "target": "reference",
            }
        )
        for name in commands:
            seconds = statistics.median(timings[name])
            rows.append(
                {
                    "benchmark": name,
                    "value": f"{seconds:.3f} s ({seconds / torch_seconds:.2f}x import torch)",
                    "target": "< 0.3 s and < 0.2x",
                    "met": seconds < 0.3 and seconds < 0.2 * torch_seconds,
                }
            )
        ours, plain = [], []
        for _ in range(repeats):
            ours.append(_probe([sys.executable, "-c", FIRST_STEP_PROBE, "logger.mode=offline"], folder))
            plain.append(_probe([sys.executable, "-c", PLAIN_FIRST_STEP], folder))
        our_first = statistics.median(p["first_step"] for p in ours)
        plain_first = statistics.median(p["first_step"] for p in plain)
        torch_and_data = statistics.median(p["torch"] + p["data"] for p in ours)
        rows.append(
            {
                "benchmark": "first training step: plain script (import torch, load digits, MLP + AdamW)",
                "value": f"{plain_first:.2f} s (import torch + data loading {torch_and_data:.2f} s)",
                "target": "reference",
            }
        )
        rows.append(
            {
                "benchmark": "first training step: `dlx train` (digits, W&B offline)",
                "value": f"{our_first:.2f} s: {our_first - plain_first:.2f} s beyond the plain script",
                "target": "< 2 s beyond",
                "met": our_first - plain_first < 2.0,
            }
        )
    return rows
