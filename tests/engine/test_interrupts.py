import signal

import pytest

from dlx.engine import interrupts
from dlx.engine.interrupts import GracefulStop


def test_a_second_ctrl_c_stops_at_once():
    stop = GracefulStop()
    stop._handle(signal.SIGINT, None)
    assert stop.requested
    with pytest.raises(KeyboardInterrupt):
        stop._handle(signal.SIGINT, None)


def test_under_torchrun_the_echo_of_the_same_ctrl_c_is_not_a_second_one(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    now = [50.0]
    monkeypatch.setattr(interrupts.time, "monotonic", lambda: now[0])
    stop = GracefulStop()
    stop._handle(signal.SIGINT, None)  # from the terminal
    now[0] += 0.05
    stop._handle(signal.SIGINT, None)  # passed on by torchrun: the run still saves and prints its summary
    assert stop.requested
    now[0] += 2.0
    with pytest.raises(KeyboardInterrupt):  # the user's own second Ctrl-C
        stop._handle(signal.SIGINT, None)
