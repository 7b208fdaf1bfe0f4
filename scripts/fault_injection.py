"""Fault injection: hurt real `dlx train` processes and check that nothing is lost.

    uv run python scripts/fault_injection.py [--trials 5]

Each trial trains the digits MLP (deterministic, a checkpoint every 2 steps) in a fresh process and
injects one fault. Survived means: the run folder holds a last.ckpt that loads, and (for the faults that
interrupt training) `dlx train --resume` finishes with weights bitwise equal to an uninterrupted run.
Prints a markdown table: fault, trials, survived, data lost.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

RUN = [
    "logger=none",
    "trainer.progress=plain",
    "trainer.deterministic=true",
    "trainer.max_epochs=4",
    "trainer.checkpoint_every_n_steps=2",
    "model.dropout=0.1",
]


def dlx(arguments: list[str], cwd: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dlx", "train", *arguments],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )


def run_folder(cwd: Path) -> Path | None:
    folders = sorted(cwd.glob("outputs/*/*/"))
    return folders[-1] if folders else None


def weights(folder: Path) -> dict[str, torch.Tensor]:
    from dlx.engine.checkpoint import load_checkpoint

    return load_checkpoint(folder / "checkpoints" / "last.ckpt")["model"]


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def wait_for_training(cwd: Path, process: subprocess.Popen, timeout: float = 120) -> bool:
    """Until the process has written a metrics line (it is past start-up and inside the loop)."""
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        folder = run_folder(cwd)
        if folder and (folder / "metrics.jsonl").exists() and (folder / "metrics.jsonl").stat().st_size:
            return True
        time.sleep(0.05)
    return False


def interrupt_and_resume(cwd: Path, reference: dict, signal_number: int, delay: float) -> tuple[bool, bool]:
    process = dlx(RUN, cwd)
    if not wait_for_training(cwd, process):
        process.kill()
        return False, True
    time.sleep(delay)
    process.send_signal(signal_number)
    process.communicate(timeout=120)
    folder = run_folder(cwd)
    try:
        weights(folder)  # the checkpoint left behind must load
    except Exception:
        return False, True
    resumed = dlx(["--resume", str(folder)], cwd)
    resumed.communicate(timeout=300)
    finished = resumed.returncode == 0 and same(weights(folder), reference)
    return finished, not finished


def disk_full_while_saving(cwd: Path, reference: dict) -> tuple[bool, bool] | None:
    """Train on a small tmpfs, fill it once training runs: the save fails clearly, nothing is lost, and
    after space is freed `--resume` finishes exactly. None when this machine cannot mount (not root)."""
    disk = cwd / "disk"
    disk.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], capture_output=True
    ).returncode:
        return None
    try:
        process = dlx(RUN, disk)
        if not wait_for_training(disk, process):
            process.kill()
            return False, True
        filler = disk / "filler"
        with filler.open("wb", buffering=0) as handle:  # take every free byte (unbuffered: close cannot fail)
            try:
                while True:
                    handle.write(b"\0" * 4096)
            except OSError:
                pass
        output, _ = process.communicate(timeout=300)
        clear = process.returncode == 2 and "No space left on device" in output
        if not clear:
            print(f"disk full: exit {process.returncode}, output ends:\n{output[-1200:]}", file=sys.stderr)
        folder = run_folder(disk)
        try:
            weights(folder)
        except Exception:
            return False, True
        filler.unlink()
        resumed = dlx(["--resume", str(folder)], disk)
        resumed.communicate(timeout=300)
        finished = resumed.returncode == 0 and same(weights(folder), reference)
        return clear and finished, not finished
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def diverging_run(cwd: Path) -> tuple[bool, bool]:
    process = dlx([*RUN, "optimizer=sgd", "optimizer.lr=1e6"], cwd)
    output, _ = process.communicate(timeout=300)
    folder = run_folder(cwd)
    kept = weights(folder) if folder and (folder / "checkpoints" / "last.ckpt").exists() else None
    finite = kept is None or all(torch.isfinite(t).all() for t in kept.values())
    explained = process.returncode == 1 and "became nan" in output.lower().replace("\n", " ")
    return explained and finite, not finite


def unreachable_wandb(cwd: Path) -> tuple[bool, bool]:
    env = {"WANDB_API_KEY": "x" * 40, "WANDB_BASE_URL": "http://127.0.0.1:9", "WANDB_SILENT": "true"}
    started = time.time()
    process = dlx([*RUN[1:], "logger=wandb", "logger.init_timeout=3"], cwd, env)
    process.communicate(timeout=300)
    folder = run_folder(cwd)
    lines = (folder / "metrics.jsonl").read_text().splitlines() if folder else []
    ok = process.returncode == 0 and len(lines) > 0 and time.time() - started < 120
    return ok, not lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default="", help="run only the faults whose name contains this text")
    arguments = parser.parse_args()
    rng = random.Random(arguments.seed)
    results: dict[str, list[tuple[bool, bool]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        reference_dir = root / "reference"
        reference_dir.mkdir()
        dlx(RUN, reference_dir).communicate(timeout=300)
        reference = weights(run_folder(reference_dir))
        faults = {
            "kill -9 at a random moment": lambda d: interrupt_and_resume(
                d, reference, signal.SIGKILL, rng.uniform(0, 1.5)
            ),
            "SIGINT (Ctrl-C)": lambda d: interrupt_and_resume(
                d, reference, signal.SIGINT, rng.uniform(0, 1.5)
            ),
            "SIGTERM (preemption)": lambda d: interrupt_and_resume(
                d, reference, signal.SIGTERM, rng.uniform(0, 1.5)
            ),
            "disk full while saving (16 MB tmpfs)": lambda d: disk_full_while_saving(d, reference),
            "loss becomes NaN (lr 1e6)": diverging_run,
            "W&B server unreachable": unreachable_wandb,
        }
        for name, inject in faults.items():
            if arguments.only not in name:
                continue
            for trial in range(arguments.trials):
                folder = root / f"{len(results)}-{trial}"
                folder.mkdir()
                outcome = inject(folder)
                if outcome is None:
                    print(f"{name}: skipped (needs root to mount a tmpfs)", file=sys.stderr)
                    break
                results.setdefault(name, []).append(outcome)
                print(
                    f"{name}: trial {trial + 1}: {'survived' if results[name][-1][0] else 'FAILED'}",
                    file=sys.stderr,
                    flush=True,
                )
    print("\n| fault | trials | survived | data lost |")
    print("|---|---:|---:|---:|")
    for name, outcomes in results.items():
        survived, lost = sum(s for s, _ in outcomes), sum(lost for _, lost in outcomes)
        print(f"| {name} | {len(outcomes)} | {survived} | {lost} |")


if __name__ == "__main__":
    main()
