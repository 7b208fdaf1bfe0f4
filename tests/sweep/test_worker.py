import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch

from tests.sweep.helpers import (
    FAST,
    SUBPROCESS_ENV,
    read_summary,
    sqlite_url,
    start_sweep,
    study_trials,
    sweep,
    sweep_folders,
)

COMPLETE, RUNNING = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING


def wait_for(condition, process, what: str, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while (value := condition()) is None:
        if process.poll() is not None:
            pytest.fail(
                f"dlx sweep ended (exit {process.returncode}) before {what}:\n{process.stdout.read()}"
            )
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return value


def sweep_trials_once(ready):
    """A condition for wait_for: (folder, trials) once ``ready(states of the trials)``, else None."""

    def condition():
        folders = sweep_folders()
        if not folders or not (folders[0] / "sweep.db").exists():
            return None
        try:
            trials = study_trials(sqlite_url(folders[0]), folders[0].name)
        except Exception:  # the study is still being created
            return None
        return (folders[0], trials) if ready([t.state for t in trials]) else None

    return condition


def test_a_killed_sweep_resumes_keeping_finished_trials_and_rerunning_the_interrupted_one():
    # Trials of a few seconds: at FAST's 0.2-0.5 s the poller could miss the moment between two trials.
    lengths = ["trainer.max_epochs=30", "sweep.heartbeat_seconds=1"]
    process = start_sweep(*FAST, "optimizer.lr=0.001,0.002,0.003", *lengths)
    one_done_one_running = sweep_trials_once(lambda states: COMPLETE in states and RUNNING in states)

    def one_done_one_checkpointed():
        found = one_done_one_running()
        if found is not None:
            running = next(t for t in found[1] if t.state == RUNNING)
            last = found[0] / f"trial-{running.user_attrs['slot']:03d}" / "checkpoints" / "last.ckpt"
            return found if last.exists() else None
        return None

    folder, before = wait_for(one_done_one_checkpointed, process, "a trial finished, the next checkpointed")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished = {t.user_attrs["slot"]: (t.number, t.datetime_complete) for t in before if t.state == COMPLETE}
    (interrupted,) = [t for t in before if t.state == RUNNING]
    interrupted_folder = folder / f"trial-{interrupted.user_attrs['slot']:03d}"
    trained = torch.load(interrupted_folder / "checkpoints" / "last.ckpt", weights_only=False)
    trained_step = trained["progress"]["global_step"]
    lines_before = (interrupted_folder / "metrics.jsonl").read_text().splitlines()
    finished_runs = {
        slot: (folder / f"trial-{slot:03d}" / "summary.json").stat().st_mtime for slot in finished
    }

    result = sweep("--resume", str(folder))
    assert result.exit_code == 0, result.output

    after = study_trials(sqlite_url(folder), folder.name)
    complete = {t.user_attrs["slot"]: t for t in after if t.state == COMPLETE}
    assert sorted(complete) == [0, 1, 2]
    assert len([t for t in after if t.state == COMPLETE]) == 3  # no slot finished twice
    for slot, (number, when) in finished.items():  # kept as they were, not run again
        assert (complete[slot].number, complete[slot].datetime_complete) == (number, when)
        assert (folder / f"trial-{slot:03d}" / "summary.json").stat().st_mtime == finished_runs[slot]
    rerun = complete[interrupted.user_attrs["slot"]]
    assert rerun.number > interrupted.number and rerun.user_attrs["attempt"] == 2
    # It went on from the attempt's last checkpoint: what that attempt trained and logged is kept.
    assert rerun.user_attrs["continued_from_step"] == trained_step and "continues from step" in result.output
    lines_after = (interrupted_folder / "metrics.jsonl").read_text().splitlines()
    kept = [line for line in lines_before if json.loads(line)["step"] <= trained_step]
    assert kept and lines_after[: len(kept)] == kept
    validations = [json.loads(line) for line in lines_after if "val/loss" in json.loads(line)]
    assert list(rerun.intermediate_values.values()) == [v["val/loss"] for v in validations]
    assert [t["state"] for t in read_summary(folder)["trials"]] == ["finished"] * 3


def test_a_resumed_search_does_not_draw_the_interrupted_runs_points_again():
    # The interrupted trial is run again with its own point; a resume that sampled from the first run's
    # seed drew that very point once more for the next trial.
    search = ["optimizer.lr=interval(1e-4, 1e-2)", "--trials", "3", "sweep.heartbeat_seconds=1"]
    process = start_sweep(*FAST, *search)
    first_running = sweep_trials_once(lambda states: RUNNING in states and COMPLETE not in states)
    folder, _ = wait_for(first_running, process, "the first trial started")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()

    result = sweep("--resume", str(folder))
    assert result.exit_code == 0, result.output
    learning_rates = [t.params["optimizer.lr"] for t in study_trials(sqlite_url(folder), folder.name)]
    finished = [t for t in study_trials(sqlite_url(folder), folder.name) if t.state == COMPLETE]
    assert len(finished) == 3
    assert len({t.params["optimizer.lr"] for t in finished}) == 3, learning_rates


def test_a_sweep_killed_the_moment_it_claimed_a_trial_resumes(tmp_path):
    """Optuna never finds a RUNNING trial stale before its first heartbeat; a worker killed between the
    claim and that beat left the trial RUNNING for good, and `--resume` waited for it forever."""
    killed_after_claiming = (
        "import os, signal, sys\n"
        "import dlx.sweep.worker as worker\n"
        "claim = worker.claim_trial\n"
        "def claim_then_die(*args):\n"
        "    if claim(*args) is not None:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "worker.claim_trial = claim_then_die\n"
        "from dlx.cli import app\n"
        "sys.argv = ['dlx', 'sweep', *sys.argv[1:]]\n"
        "app()\n"
    )
    process = subprocess.run(
        [
            sys.executable,
            "-c",
            killed_after_claiming,
            *FAST,
            "optimizer.lr=1e-3,1e-2",
            "sweep.heartbeat_seconds=1",
        ],
        env=SUBPROCESS_ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == -signal.SIGKILL, process.stdout + process.stderr
    folder = sweep_folders()[0]
    assert [t.state for t in study_trials(sqlite_url(folder), folder.name)].count(RUNNING) == 1
    resumed = subprocess.run(
        [sys.executable, "-m", "dlx", "sweep", "--resume", str(folder)],
        env=SUBPROCESS_ENV,
        capture_output=True,
        text=True,
        timeout=300,  # it waited forever
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert [t["state"] for t in read_summary(folder)["trials"]] == ["finished"] * 2


@pytest.fixture
def postgres_url(tmp_path: Path):
    """A real PostgreSQL server in tmp_path, stopped and deleted afterwards."""
    pgserver = pytest.importorskip("pgserver", reason="the dev dependency pgserver bundles PostgreSQL")
    errors = []
    for attempt in range(3):  # pgserver gives pg_ctl 10 s, which a busy machine can miss
        try:
            server = pgserver.get_server(tmp_path / f"postgres-{attempt}", cleanup_mode="delete")
            break
        except Exception as error:  # e.g. a platform pgserver has no binaries for
            errors.append(f"{type(error).__name__}: {error}")
    else:
        pytest.skip(f"PostgreSQL could not start here: {'; '.join(errors)}")
    yield server.get_uri()
    server.cleanup()


def test_two_workers_sharing_one_database_split_the_trials_and_run_none_twice(postgres_url, tmp_path):
    from dlx.sweep.storage import with_installed_driver

    machine_a, machine_b = tmp_path / "machine-a", tmp_path / "machine-b"
    machine_a.mkdir(), machine_b.mkdir()
    values = "0.001,0.002,0.003,0.004,0.005,0.006"
    first = start_sweep(*FAST, f"optimizer.lr={values}", "--storage", postgres_url, cwd=machine_a)

    def sweep_id():
        try:
            names = optuna.get_all_study_names(storage=with_installed_driver(postgres_url))
        except Exception:  # the tables are still being created
            return None
        return names[0] if names else None

    sweep_name = wait_for(sweep_id, first, "the sweep was created in PostgreSQL")
    second = start_sweep("--resume", sweep_name, "--storage", postgres_url, cwd=machine_b)
    outputs = [process.communicate(timeout=600)[0] for process in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs

    trials = [t for t in study_trials(postgres_url, sweep_name) if "slot" in t.user_attrs]
    assert sorted(t.user_attrs["slot"] for t in trials) == list(range(6))  # each trial ran once
    assert all(t.state == COMPLETE for t in trials)
    workers = {t.user_attrs["worker"] for t in trials}
    assert len(workers) == 2, workers  # both took part
    for trial in trials:  # each machine keeps the run folders of the trials it ran
        assert (Path(trial.user_attrs["run_folder"]) / "summary.json").exists()
    assert {Path(t.user_attrs["run_folder"]).parts[len(tmp_path.parts)] for t in trials} == {
        "machine-a",
        "machine-b",
    }


@pytest.mark.parametrize("jobs, everyone", [("1", False), ("2", False), ("2", True)])
def test_a_preempted_sweep_stops_its_trials_reports_and_exits_143(jobs, everyone):
    """SIGTERM (a cluster's preemption) stops a sweep as Ctrl-C does: its workers' trials are queued again
    from a checkpoint, the table and the resume command are printed, and the exit code says SIGTERM. Slurm
    signals every process of the job (``everyone``): the parent's own SIGTERM to its workers is then their
    second, which must not count as a second Ctrl-C (stop at once, without the checkpoint). Digits steps are
    too quick for that race to show here: test_launchers checks which signal is passed on."""
    process = start_sweep(*FAST, "optimizer.lr=0.001,0.002", "trainer.max_epochs=500", "--jobs", jobs)
    folder, _ = wait_for(sweep_trials_once(lambda states: RUNNING in states), process, "a trial started")

    def training():  # every worker's trial has logged a step: its graceful stop is in place
        return len(list(folder.glob("trial-*/metrics.jsonl"))) >= int(jobs) or None

    wait_for(training, process, "the trials trained")
    workers = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
    if everyone:  # the workers' own SIGTERM first, as the parent passes its signal on after its own
        for pid in workers:
            os.kill(int(pid), signal.SIGTERM)
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 143, output
    assert "Continue with: dlx sweep --resume" in output and "Traceback" not in output, output
    trials = study_trials(sqlite_url(folder), folder.name)
    assert not [t for t in trials if t.state == RUNNING], [t.state for t in trials]  # none left for dead
    interrupted = [t for t in trials if t.user_attrs.get("interrupted")]
    assert len(interrupted) == int(jobs)
    for trial in interrupted:  # each stopped after its step, saved, and wrote its summary: not at once
        run = folder / f"trial-{trial.user_attrs['slot']:03d}"
        assert json.loads((run / "summary.json").read_text())["stop_reason"] == "interrupted"
        assert (run / "checkpoints" / "last.ckpt").exists()
