import json
import os
import re
import time
from pathlib import Path

import pytest

from tests.helpers import only_run_folder, train_run


def _wandb_file(folder):
    files = list(folder.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(files) == 1, files
    return files[0].read_bytes()


def test_offline_run_folder_holds_the_runs_metrics_and_the_training_processs_stats():
    train_run("logger=wandb", "logger.mode=offline", "trainer.max_epochs=2", fast=False)
    folder = only_run_folder()
    content = _wandb_file(folder)
    for key in [b"train/loss", b"val/acc", b"val/loss", b"lr", b"best/val/loss"]:
        assert key in content, key
    assert content.count(b"val/acc") >= 2  # both validations, plus the summary
    # W&B's process charts follow the training process (torch loaded: hundreds of MB), not the small
    # process that talks to W&B (about 70 MB), which they followed by default.
    memory = [float(m) for m in re.findall(rb"proc\.memory\.rssMB[^0-9]{1,4}([0-9.]+)", content)]
    assert memory and min(memory) > 200, memory


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


def _patch_the_wandb_process(monkeypatch, tmp_path, code: str) -> None:
    """W&B runs in a process of its own: change wandb there through a sitecustomize it imports."""
    folder = tmp_path / "patch"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(code)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]))


def test_an_error_inside_wandb_never_stops_training(monkeypatch, tmp_path, caplog):
    _patch_the_wandb_process(
        monkeypatch,
        tmp_path,
        "import wandb.sdk.wandb_run\n"
        "def broken_log(self, *args, **kwargs):\n"
        "    raise RuntimeError('wandb exploded')\n"
        "wandb.sdk.wandb_run.Run.log = broken_log\n",
    )
    summary = train_run(
        "logger=wandb", "logger.mode=offline", "trainer.max_epochs=2", "trainer.progress=none", fast=False
    )
    assert summary["epochs"] == 2
    assert "W&B log failed (wandb exploded)" in caplog.text
    records = [json.loads(line) for line in (only_run_folder() / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if "val/loss" in r] == [0, 1]


def test_a_slow_wandb_start_holds_up_neither_training_nor_a_record(monkeypatch, tmp_path):
    _patch_the_wandb_process(
        monkeypatch,
        tmp_path,
        "import time, wandb\n"
        "start = wandb.init\n"
        "def slow_init(*args, **kwargs):\n"
        "    time.sleep(5)\n"
        "    return start(*args, **kwargs)\n"
        "wandb.init = slow_init\n",
    )
    started = time.perf_counter()
    summary = train_run(
        "logger=wandb", "logger.mode=offline", "trainer.max_epochs=2", "trainer.progress=none", fast=False
    )
    folder = only_run_folder()
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert summary["epochs"] == 2 and records[-1]["time"] < 5  # trained while W&B was still starting
    content = _wandb_file(folder)
    assert content.count(b"val/acc") >= 2 and b"best/val/loss" in content  # every record, the summary too
    assert time.perf_counter() - started > 5  # the slow start really happened, and was waited for at the end


def test_a_wandb_process_that_dies_costs_the_run_nothing(monkeypatch, tmp_path, caplog):
    _patch_the_wandb_process(
        monkeypatch, tmp_path, "import os, wandb\nwandb.init = lambda *args, **kwargs: os._exit(3)\n"
    )
    summary = train_run("logger=wandb", "logger.mode=offline", "trainer.max_epochs=2", fast=False)
    assert summary["epochs"] == 2 and (only_run_folder() / "checkpoints" / "best.ckpt").exists()
    assert "W&B process ended with exit code 3" in caplog.text


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


def _wandb_workers_of_this_process() -> list[str]:
    workers = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            parent = next(line for line in status.read_text().splitlines() if line.startswith("PPid:"))
            command = (status.parent / "cmdline").read_bytes().decode(errors="replace")
        except (OSError, StopIteration):
            continue
        if int(parent.split()[1]) == os.getpid() and "wandb_worker" in command:
            workers.append(command)
    return workers


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_a_config_refused_before_training_leaves_no_wandb_process_behind(caplog):
    from dlx.errors import DlxError

    # Refused by Trainer.prepare. An offline run has by then made its folder and started its W&B run
    # (beside prepare's torch._dynamo import): both go, and nothing was announced.
    with pytest.raises(DlxError, match="max_time"):
        train_run("logger=wandb", "logger.mode=offline", "trainer.max_epochs=null", "trainer.max_time=1")
    assert _wandb_workers_of_this_process() == []
    assert list(Path("outputs").glob("*/*")) == []
    assert "Run folder" not in caplog.text and "W&B" not in caplog.text


class RecordingWorker:
    """Stands in for W&B's process: keeps what is written to its stdin, one entry per write."""

    def __init__(self):
        import threading

        self.writes: list[str] = []
        self.closed = threading.Event()
        self.stdin, self.stdout, self.returncode = self, [], 0

    def write(self, data: bytes) -> None:
        self.writes.append(data.decode())

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed.set()

    def wait(self, timeout: float | None = None) -> int:
        assert self.closed.wait(timeout), "the sender never closed the pipe"
        return 0

    def requests(self) -> list[dict]:
        return [json.loads(line) for write in self.writes for line in write.splitlines()]


def _run_with(worker, tmp_path):
    from types import SimpleNamespace

    from dlx.loggers.wandb_run import WandbRun

    settings = SimpleNamespace(mode="offline", project="p", entity=None, group=None, tags=[], init_timeout=5)
    return WandbRun(settings, tmp_path, {}, None, worker)


def test_log_records_reach_wandb_in_order_and_in_batches(monkeypatch, tmp_path):
    from dlx.loggers import wandb_run

    monkeypatch.setattr(wandb_run, "SEND_SECONDS", 0.3)
    worker = RecordingWorker()
    run = _run_with(worker, tmp_path)
    for step in range(200):
        run.log({"loss": float(step)}, step=step)
        if step == 99:
            time.sleep(0.6)  # a batch goes after SEND_SECONDS
    run.finish()
    requests = worker.requests()
    assert [r["action"] for r in requests] == ["start"] + ["log"] * 200 + ["finish"]
    assert [r["step"] for r in requests if r["action"] == "log"] == list(range(200))
    assert 2 <= len(worker.writes) <= 4  # the start, the first 100 records, the rest with the finish


def test_only_log_records_wait_for_a_batch(monkeypatch, tmp_path):
    from dlx.loggers import wandb_run

    monkeypatch.setattr(wandb_run, "SEND_SECONDS", 60.0)
    worker = RecordingWorker()
    run = _run_with(worker, tmp_path)
    started = time.perf_counter()
    run.summary({"best/val/loss": 0.5})  # sent at once
    while not any("summary" in write for write in worker.writes):
        assert time.perf_counter() - started < 10, worker.writes
        time.sleep(0.01)
    run.log({"loss": 1.0}, step=1)
    run.finish()  # does not wait out the batch's minute
    assert time.perf_counter() - started < 10
    assert [r["action"] for r in worker.requests()] == ["start", "summary", "log", "finish"]
