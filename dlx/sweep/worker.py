"""A sweep worker: claim the next queued trial, run it, repeat until the sweep has none left. Any number
of workers, on any machines that reach the storage, can work on one sweep at the same time.

`python -m dlx.sweep.worker SWEEP_FOLDER` is the entry point of the local launcher's extra processes.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from dlx.sweep.storage import STORAGE_ENV, claim_lock, open_storage
from dlx.sweep.study import (
    SweepPlan,
    load_plan,
    open_study,
    quiet_optuna,
    read_sweep_file,
    requeue,
    trials_in,
)

log = logging.getLogger("dlx")


def work(
    sweep_folder: Path,
    storage_url: str,
    worker_index: int = 0,
    parent_pid: int | None = None,
    max_trials: int | None = None,
) -> int:
    """Run trials until none is left to claim (and none is running elsewhere that might be interrupted
    and need a rerun); return how many this worker ran. The sweep id is the folder's name."""
    import optuna

    quiet_optuna()
    plan = load_plan(open_storage(storage_url), sweep_folder.name)
    storage = open_storage(storage_url, plan.settings.heartbeat_seconds, on_interrupted_trial=requeue)
    states = optuna.trial.TrialState
    begun = optuna.load_study(study_name=plan.sweep_id, storage=storage).get_trials(
        deepcopy=False, states=(states.RUNNING, states.COMPLETE, states.PRUNED, states.FAIL)
    )
    # Each worker (and each resume) samples from its own seed, so parallel workers do not propose the
    # same point, while a fresh one-worker sweep stays reproducible. A resume counts the trials begun so
    # far, the interrupted one too (queued slots are not begun): with the first run's seed, its sampler
    # would draw that run's points again.
    study = open_study(storage, plan, sampler_seed=plan.seed + 1000 * worker_index + len(begun))
    poll_seconds = min(2, plan.settings.heartbeat_seconds)
    ran, last_setup_failure = 0, None
    while max_trials is None or ran < max_trials:
        if parent_pid is not None and os.getppid() != parent_pid:
            break  # the sweep command that started this worker is gone
        optuna.storages.fail_stale_trials(study)  # queues interrupted trials again (see study.requeue)
        trial = claim_trial(study, plan, storage, storage_url)
        if trial is None:
            if max_trials is not None or not trials_in(study, optuna.trial.TrialState.RUNNING):
                break
            time.sleep(poll_seconds)
            continue
        with Heartbeat(storage, trial._trial_id, plan.settings.heartbeat_seconds, parent_pid):
            from dlx.sweep.trial import announce, run_trial

            state = run_trial(study, trial, plan, sweep_folder)
        ran += 1
        attributes = trial.user_attrs
        setup_failure = attributes.get("error") if attributes.get("failed_before_training") else None
        if setup_failure and any(name in setup_failure for name in plan.distributions):
            setup_failure = None  # it names a swept setting: other points may not fail
        if state == "FAIL" and setup_failure is not None and setup_failure == last_setup_failure:
            announce(
                f"Two trials in a row failed before training with the same error, so the others would too: "
                f"this worker stops. If the error names a setting, fix it and start a new sweep; if it is "
                f"outside the config (data, disk), `dlx sweep --resume {sweep_folder}` runs the trials left."
            )
            break
        last_setup_failure = setup_failure if state == "FAIL" else None
    return ran


def claim_trial(study: Any, plan: SweepPlan, storage: Any, storage_url: str) -> Any | None:
    """The next queued trial, now RUNNING and owned by this worker; None when the queue is empty."""
    import optuna

    with claim_lock(storage_url):
        if not trials_in(study, optuna.trial.TrialState.WAITING):
            return None
        trial = study.ask(fixed_distributions=plan.distributions)
        # At once: Optuna never finds a RUNNING trial stale before its first heartbeat, so a worker
        # killed before it would leave the trial RUNNING for good and `--resume` waiting for it.
        storage.record_heartbeat(trial._trial_id)
    if "slot" not in trial.user_attrs:
        # Another machine took the last queued trial between the look and the ask, so Optuna made a new
        # one. It is not part of the plan: close it at once (reports leave it out).
        trial.set_user_attr("surplus", True)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        return None
    return trial


class Heartbeat:
    """Tell the storage every few seconds that this trial's process is alive. Also stops the trial (as if by
    Ctrl-C: it is queued again) when the process that launched this worker has died."""

    def __init__(self, storage: Any, trial_id: int, seconds: int, parent_pid: int | None):
        self.storage, self.trial_id, self.seconds, self.parent_pid = storage, trial_id, seconds, parent_pid
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def __enter__(self) -> Heartbeat:
        self.storage.record_heartbeat(self.trial_id)
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopped.set()
        self.thread.join()

    def _beat(self) -> None:
        while not self.stopped.wait(self.seconds):
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception as error:  # a database hiccup must not kill the trial; the next beat retries
                log.warning("Could not record the sweep heartbeat: %s", error)
            if self.parent_pid is not None and os.getppid() != self.parent_pid:
                os.kill(os.getpid(), signal.SIGINT)
                return


def storage_url_for(sweep_folder: Path) -> str:
    """The URL workers use: from the launcher's environment (it may hold a password), else sweep.json."""
    return os.environ.get(STORAGE_ENV) or read_sweep_file(sweep_folder)["storage"]


def run_one_trial(sweep_folder: str) -> int:
    """A submitit job: claim and run one trial (0 when another job already took the last one)."""
    from dlx.console import setup_logging

    setup_logging()
    folder = Path(sweep_folder)
    return work(folder, storage_url_for(folder), worker_index=int(time.time()) % 1000, max_trials=1)


def main(argv: list[str] | None = None) -> int:
    from dlx.console import setup_logging
    from dlx.errors import DlxError

    parser = argparse.ArgumentParser(prog="python -m dlx.sweep.worker", description="Run a sweep's trials.")
    parser.add_argument("sweep_folder", type=Path)
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--parent", type=int, default=None, help="stop when this process is gone")
    args = parser.parse_args(argv)
    setup_logging()
    from dlx.engine import interrupts

    interrupts.interrupt_once_per_ctrl_c()
    interrupts.interrupt_on_sigterm()  # between trials too: the trial is queued again, not left RUNNING
    try:
        work(args.sweep_folder, storage_url_for(args.sweep_folder), args.index, args.parent)
    except KeyboardInterrupt:
        return 128 + (interrupts.last_signal or 2)
    except DlxError as error:
        from dlx.console import console

        console.print(f"[bold red]Error:[/] {error}", soft_wrap=True)
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
