import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dlx.engine import interrupts
from dlx.engine.interrupts import GracefulStop

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture
def clock(monkeypatch):
    """A monotonic clock the test moves by hand, and no Ctrl-C remembered from before."""
    now = [50.0]
    monkeypatch.setattr(interrupts.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(interrupts, "_last_sigint", None)
    return now


def test_a_second_ctrl_c_stops_at_once(clock):
    stop = GracefulStop()
    stop._handle(signal.SIGINT, None)
    assert stop.requested
    clock[0] += 2.0
    with pytest.raises(KeyboardInterrupt):
        stop._handle(signal.SIGINT, None)


def test_the_echo_of_the_same_ctrl_c_is_not_a_second_one(clock):
    stop = GracefulStop()
    stop._handle(signal.SIGINT, None)  # from the terminal
    clock[0] += 0.2
    stop._handle(signal.SIGINT, None)  # passed on by `uv run` or torchrun: the run still saves and reports
    assert stop.requested
    clock[0] += 2.0
    with pytest.raises(KeyboardInterrupt):  # the user's own second Ctrl-C
        stop._handle(signal.SIGINT, None)


def test_outside_training_one_ctrl_c_raises_one_keyboard_interrupt(clock):
    with pytest.raises(KeyboardInterrupt):
        interrupts._interrupt_once(signal.SIGINT, None)
    clock[0] += 0.2
    interrupts._interrupt_once(signal.SIGINT, None)  # the echo: whatever handles the first goes on
    clock[0] += 2.0
    with pytest.raises(KeyboardInterrupt):
        interrupts._interrupt_once(signal.SIGINT, None)


def test_a_ctrl_c_passed_on_by_a_launcher_still_saves_reports_and_says_how_to_resume(tmp_path):
    """What `uv run dlx train` gets from one Ctrl-C in a terminal: SIGINT, and the same again 0.2 s later."""
    command = [sys.executable, "-m", "dlx", "train", "logger=none", "trainer.progress=plain"]
    command += ["trainer.max_epochs=1000", f"output_dir={tmp_path}"]
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment
    )
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("*/*/checkpoints/last.ckpt")):  # training is under way
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[0]
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 130, output
    assert "dlx train: summary" in output and "--resume" in output and "Traceback" not in output, output
    assert list(tmp_path.glob("*/*/summary.json"))
