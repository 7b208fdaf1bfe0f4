"""Run the same short multi-process `dlx train` many times in a row and check that every one exits 0.

gloo processes can abort during interpreter shutdown after training has finished; dlx's workers leave
the process group and exit with os._exit (dlx/launch.py run_worker) so that a finished run exits 0.

    uv run python scripts/repeated_multiprocess_runs.py [--runs 20] [--devices 2] [-- extra overrides]

Prints a markdown table: run, exit code, wall seconds, final val/acc, and a line with the totals.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUN = ["logger=none", "trainer.progress=none", "trainer.max_epochs=1"]


def run_once(folder: Path, devices: int, extra: list[str]) -> tuple[int, float, str]:
    output_dir = folder / f"run{len(list(folder.iterdir()))}"
    command = [sys.executable, "-m", "dlx", "train", *RUN, f"trainer.devices={devices}"]
    started = time.monotonic()
    result = subprocess.run(
        [*command, f"output_dir={output_dir}", *extra], capture_output=True, text=True, timeout=600
    )
    seconds = time.monotonic() - started
    summaries = list(output_dir.glob("*/*/summary.json"))
    accuracy = json.loads(summaries[0].read_text())["last_metrics"].get("val/acc") if summaries else None
    if result.returncode != 0:
        print(result.stdout[-2000:], result.stderr[-2000:], file=sys.stderr)
    return result.returncode, seconds, f"{accuracy:.4f}" if accuracy is not None else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("overrides", nargs="*", help="extra `dlx train` overrides")
    arguments = parser.parse_args()
    print(f"| run | exit code | wall s | val/acc |  ({arguments.devices} processes, {' '.join(RUN)})")
    print("|---:|---:|---:|---:|")
    codes = []
    with tempfile.TemporaryDirectory(prefix="dlx-repeated-") as folder:
        for index in range(1, arguments.runs + 1):
            code, seconds, accuracy = run_once(Path(folder), arguments.devices, arguments.overrides)
            codes.append(code)
            print(f"| {index} | {code} | {seconds:.1f} | {accuracy} |", flush=True)
    failed = sum(code != 0 for code in codes)
    print(f"\n{len(codes) - failed} of {len(codes)} runs exited 0.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
