"""The losses between log lines (dlx/engine/log_window.py) and the NaN/Inf watch over them
(dlx/engine/divergence.py): one host sync per check, the first bad step named, the mean loss exact."""

import math

import pytest
import torch

from dlx.engine.divergence import DivergenceWatch
from dlx.engine.log_window import LogWindow
from dlx.errors import TrainingDiverged


def window_of(losses, first_step=1):
    window = LogWindow()
    for step, loss in enumerate(losses, start=first_step):
        window.add(torch.tensor(loss), samples=4, step=step)
    return window


def test_finite_losses_pass_and_the_flush_averages_checked_and_newer_ones():
    window = window_of([1.0, 2.0, 3.0])
    DivergenceWatch(enabled=True).check(window, None, None)
    window.add(torch.tensor(6.0), samples=4, step=4)  # after the check: summed by the flush itself
    record = window.flush()
    assert record["train/loss"] == pytest.approx(3.0)
    assert window.flush()["train/loss"] == 0.0, "the flush emptied the window"


def test_the_first_non_finite_loss_is_named_with_the_last_finite_one():
    watch = DivergenceWatch(enabled=True)
    with pytest.raises(TrainingDiverged, match=r"became nan at step 3\. Last finite loss: 2 at step 2\."):
        watch.check(window_of([1.0, 2.0, math.nan, 4.0, math.inf]), None, None)


def test_a_check_between_log_lines_looks_only_at_the_new_losses():
    watch, window = DivergenceWatch(enabled=True), window_of([1.0, 2.0])
    watch.check(window, None, None)  # e.g. before a validation
    window.add(torch.tensor(math.inf), samples=4, step=3)
    assert window.unchecked()[0] == [3]
    with pytest.raises(TrainingDiverged, match=r"became inf at step 3\. Last finite loss: 2 at step 2\."):
        watch.check(window, torch.tensor(12.5), None)


def test_a_disabled_watch_lets_the_mean_show_the_nan():
    window = window_of([1.0, math.nan])
    DivergenceWatch(enabled=False).check(window, None, None)
    assert math.isnan(window.flush()["train/loss"])


def test_finite_losses_whose_sum_overflows_are_not_divergence():
    biggest = torch.finfo(torch.float32).max
    DivergenceWatch(enabled=True).check(window_of([biggest, biggest]), None, None)


def test_losses_carried_through_a_checkpoint_count_in_the_next_mean():
    window = window_of([1.0, 3.0])
    DivergenceWatch(enabled=True).check(window, None, None)
    restored = LogWindow()
    restored.load_state_dict(window.state_dict())
    restored.add(torch.tensor(5.0), samples=4, step=3)
    assert restored.flush()["train/loss"] == pytest.approx(3.0)


def test_the_first_throughput_after_a_resume_counts_only_this_processs_samples(monkeypatch):
    from dlx.engine import log_window

    now = [100.0]
    monkeypatch.setattr(log_window.time, "perf_counter", lambda: now[0])
    before = LogWindow()
    before.add(torch.tensor(1.0), 5000, 1)  # samples of the interrupted process
    resumed = LogWindow()
    resumed.load_state_dict(before.state_dict())
    resumed.add(torch.tensor(3.0), 64, 2)
    now[0] += 2.0
    record = resumed.flush()
    assert record["samples_per_sec"] == 32.0
    assert record["train/loss"] == 2.0  # the loss mean goes on across the resume


def test_an_fp16_run_is_advised_bf16():
    watch = DivergenceWatch(True, fp16=True)
    window = LogWindow()
    window.add(torch.tensor(float("nan")), 8, 1)
    with pytest.raises(TrainingDiverged, match=r"`trainer.precision=bf16` instead of fp16"):
        watch.check(window, None, None, 0.1)
