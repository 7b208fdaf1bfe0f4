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


def test_without_progress_on_the_screen_train_log_still_gets_the_lines(capsys):
    """trainer.progress=none keeps the screen quiet, not the run's train.log."""
    from tests.helpers import only_run_folder, train_run

    train_run("trainer.progress=none", "trainer.log_every_n_steps=5")
    log = (only_run_folder() / "train.log").read_text()
    assert log.count("validation  epoch") == 2 and "epoch 1 step 5  train/loss" in log
    assert "validation" not in capsys.readouterr().out
