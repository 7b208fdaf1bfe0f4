import json
import time

import pytest

from tests.helpers import only_run_folder, train_run


def _wandb_file(folder):
    files = list(folder.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(files) == 1, files
    return files[0].read_bytes()


def test_offline_run_folder_holds_the_runs_metrics():
    train_run("logger=wandb", "logger.mode=offline", "trainer.max_epochs=2", fast=False)
    folder = only_run_folder()
    content = _wandb_file(folder)
    for key in [b"train/loss", b"val/acc", b"val/loss", b"lr", b"best/val/loss"]:
        assert key in content, key
    assert content.count(b"val/acc") >= 2  # both validations, plus the summary


def test_online_mode_without_a_reachable_server_falls_back_to_offline_quickly(monkeypatch, caplog):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    started = time.perf_counter()
    train_run(
        "logger=wandb",
        "logger.mode=auto",
        "logger.init_timeout=2",
        "trainer.max_epochs=1",
        "trainer.progress=none",
        fast=False,
    )
    assert time.perf_counter() - started < 30
    assert "logging offline instead" in caplog.text
    assert b"val/acc" in _wandb_file(only_run_folder())


def test_an_error_inside_wandb_never_stops_training(monkeypatch, caplog):
    import wandb

    def broken_log(self, *args, **kwargs):
        raise RuntimeError("wandb exploded")

    monkeypatch.setattr(wandb.sdk.wandb_run.Run, "log", broken_log)
    summary = train_run(
        "logger=wandb", "logger.mode=offline", "trainer.max_epochs=2", "trainer.progress=none", fast=False
    )
    assert summary["epochs"] == 2
    assert "W&B log failed" in caplog.text
    records = [json.loads(line) for line in (only_run_folder() / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if "val/loss" in r] == [1, 2]


def test_disabled_writes_no_wandb_files():
    train_run("logger=wandb", "logger.mode=disabled", "trainer.max_epochs=1", fast=False)
    assert not (only_run_folder() / "wandb").exists()


@pytest.mark.parametrize("key_source", ["env", "netrc", "none"])
def test_auto_mode_goes_online_only_with_an_api_key(monkeypatch, tmp_path, key_source):
    from dlx.loggers.wandb_run import has_api_key

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_BASE_URL", raising=False)
    if key_source == "env":
        monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    netrc = tmp_path / "netrc"
    netrc.write_text(
        "machine api.wandb.ai login user password " + "p" * 40 + "\n" if key_source == "netrc" else ""
    )
    monkeypatch.setenv("NETRC", str(netrc))
    assert has_api_key() == (key_source != "none")


@pytest.fixture(autouse=True)
def _fresh_wandb_service():
    """Each test starts its own W&B service, so settings read at start-up (the base URL) apply."""
    import wandb

    wandb.teardown()
    yield
    wandb.teardown()


def test_a_slow_wandb_start_does_not_hold_up_training(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from dlx.loggers.wandb_run import WandbRun

    received = []

    class FakeRun:
        id = "ignored"
        summary = {}

        def log(self, metrics, step):
            received.append((step, metrics))

        def finish(self, exit_code):
            received.append(("finished", exit_code))

    def slow_init(self, settings, run_folder, config):
        time.sleep(1.0)
        return FakeRun()

    monkeypatch.setattr(WandbRun, "_init", slow_init)
    settings = SimpleNamespace(mode="offline", init_timeout=5.0)
    started = time.perf_counter()
    run = WandbRun(settings, tmp_path, {}, run_id=None)
    for step in range(3):
        run.log({"loss": 1.0 / (step + 1)}, step=step)
    assert time.perf_counter() - started < 0.5  # logging did not wait for the start
    assert len(run.id) == 8  # known at once, so a checkpoint can name the run
    run.finish(0)
    assert received == [(0, {"loss": 1.0}), (1, {"loss": 0.5}), (2, {"loss": 1 / 3}), ("finished", 0)]


def test_finish_waits_for_the_records_logged_before_the_start(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from dlx.loggers.wandb_run import WandbRun

    received = []

    class SlowRun:
        def log(self, metrics, step):
            time.sleep(0.2)  # the queued records are still being sent when finish() is called
            received.append(step)

        def finish(self, exit_code):
            received.append("finished")

    def init(self, settings, run_folder, config):
        time.sleep(0.3)
        return SlowRun()

    monkeypatch.setattr(WandbRun, "_init", init)
    run = WandbRun(SimpleNamespace(mode="offline", init_timeout=5.0), tmp_path, {}, run_id=None)
    for step in range(3):
        run.log({"loss": 1.0}, step=step)
    time.sleep(0.4)  # the start is over, the queued records are being sent
    run.finish(0)
    assert received == [0, 1, 2, "finished"]
