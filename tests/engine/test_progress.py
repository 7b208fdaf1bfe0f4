"""Plain progress (no terminal): a training line at most once a second, validation lines always."""

import logging

from dlx.engine import progress
from dlx.engine.progress import ProgressDisplay


class Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_plain_training_lines_are_printed_at_most_once_a_second(monkeypatch):
    lines, logger = Lines(), logging.getLogger("dlx")
    monkeypatch.setattr(logger, "level", logging.INFO)
    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    display = ProgressDisplay("plain", max_epochs=2)
    logger.addHandler(lines)
    try:
        for step in (10, 20, 30):  # within a tenth of a second: only the first is printed
            display.show_train(0, step, {"train/loss": 1.0})
            now[0] += 0.05
        now[0] += 1.0
        display.show_train(0, 40, {"train/loss": 0.5})
        display.show_validation(0, 40, {"val/loss": 0.7})
        display.show_validation(0, 40, {"val/loss": 0.6})
    finally:
        logger.removeHandler(lines)
    assert [message.split("  ")[0] for message in lines.messages] == [
        "epoch 1 step 10",
        "epoch 1 step 40",
        "validation",
        "validation",
    ]
