"""Time to accuracy on this machine, whole processes: `dlx train recipe=mnist_cnn` against the plain PyTorch
script below (the same LeNet-style network, AdamW + one-cycle, batch 128, 3 epochs, data pre-loaded as
tensors), and the default `dlx train` on the bundled digits."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PLAIN_MNIST_SCRIPT = r"""
import math, sys, torch
from torch import nn
from torch.nn import functional as F
from torchvision.datasets import MNIST

torch.manual_seed(0)
root = sys.argv[1]

def load(train):
    data = MNIST(root, train=train, download=False)
    return ((data.data.float() / 255 - 0.1307) / 0.3081).unsqueeze(1), data.targets

inputs, targets = load(True)
test_inputs, test_targets = load(False)
model = nn.Sequential(
    nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
)
epochs, batch_size = 3, 128
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
steps = epochs * math.ceil(len(inputs) / batch_size)
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps)
for epoch in range(epochs):
    model.train()
    order = torch.randperm(len(inputs))
    for start in range(0, len(inputs), batch_size):
        index = order[start : start + batch_size]
        loss = F.cross_entropy(model(inputs[index]), targets[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
model.eval()
with torch.no_grad():
    correct = sum(
        int((model(test_inputs[i : i + 1000]).argmax(1) == test_targets[i : i + 1000]).sum())
        for i in range(0, len(test_inputs), 1000)
    )
print(f"TEST_ACC {correct / len(test_inputs):.4f}")
"""


def run_timed(command: list[str], cwd: str) -> tuple[float, str]:
    """Whole-process wall seconds of ``command`` and its stdout; a failure raises with its stderr."""
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return seconds, result.stdout


def _dlx_run(arguments: list[str], folder: str) -> tuple[float, float, float]:
    """Whole-process seconds of `dlx train ARGS`, then (val, test) accuracy of its best checkpoint."""
    dlx = str(Path(sys.executable).with_name("dlx"))
    seconds, _ = run_timed([dlx, "train", *arguments, "logger.mode=offline", "trainer.progress=none"], folder)
    summaries = sorted(Path(folder).glob("outputs/*/*/summary.json"), key=lambda p: p.stat().st_mtime)
    summary = json.loads(summaries[-1].read_text())
    best = Path(folder) / summary["run_folder"] / "checkpoints" / "best.ckpt"  # relative to the run's folder
    run_timed(
        [dlx, "eval", str(best), "data.split=test", *[a for a in arguments if a.startswith("data.root")]],
        folder,
    )
    test = json.loads((best.parent.parent / "eval" / "test" / "eval.json").read_text())
    return seconds, summary["best_metrics"]["val/acc"], test["metrics"]["test/acc"]


def measure_mnist(data_root: Path, repeats: int) -> list[dict]:
    _extract_mnist(data_root)
    plain, ours, accuracies, plain_accuracies = [], [], [], []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(repeats):  # interleaved: a busy moment costs both alike
            seconds, output = run_timed([sys.executable, "-c", PLAIN_MNIST_SCRIPT, str(data_root)], folder)
            plain.append(seconds)
            plain_accuracies.append(float(output.split("TEST_ACC")[1]))
            seconds, _, test = _dlx_run(["recipe=mnist_cnn", f"data.root={data_root}"], folder)
            ours.append(seconds)
            accuracies.append(test)
    plain_seconds, our_seconds = statistics.median(plain), statistics.median(ours)
    return [
        {
            "benchmark": "MNIST: plain PyTorch script, 3 epochs (whole process)",
            "value": f"{plain_seconds:.1f} s, test acc {statistics.median(plain_accuracies):.2%}",
            "target": "reference",
        },
        {
            "benchmark": "MNIST: `dlx train recipe=mnist_cnn` (whole process)",
            "value": f"{our_seconds:.1f} s ({our_seconds / plain_seconds:.3f}x plain), "
            f"test acc {min(accuracies):.2%} (worst of {repeats})",
            "target": ">= 99.0% within 1.05x",
            "met": min(accuracies) >= 0.99 and our_seconds <= 1.05 * plain_seconds,
        },
    ]


def _extract_mnist(data_root: Path) -> None:
    """Unpack MNIST/raw/*.gz once, untimed, as dlx's data module would: a folder with only the .gz files
    (as torchvision downloads them) then serves the plain script too. Files already there are checked
    against their MD5 sums, not downloaded again."""
    from torchvision.datasets import MNIST

    for train in (True, False):
        MNIST(str(data_root), train=train, download=True)


def measure_digits(repeats: int) -> list[dict]:
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(repeats):
            runs.append(_dlx_run([], folder))
    seconds = statistics.median(r[0] for r in runs)
    worst_test = min(r[2] for r in runs)
    return [
        {
            "benchmark": "digits: `dlx train` default recipe, W&B offline (whole process)",
            "value": f"{seconds:.2f} s, test acc {worst_test:.2%} (worst of {repeats})",
            "target": ">= 97% in <= 5 s",
            "met": worst_test >= 0.97 and seconds <= 5.0,
        }
    ]
