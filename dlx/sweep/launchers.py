"""Where a sweep's workers run: in this process (`--jobs 1`), in N local processes (`--jobs N`), or as
Slurm jobs submitted with submitit (`--launcher slurm`, one job per trial). All of them pull trials from the
same storage, so they mix freely with workers on other machines."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from dlx.errors import DlxError
from dlx.sweep.storage import STORAGE_ENV
from dlx.sweep.study import SweepPlan

log = logging.getLogger("dlx")
STOP_GRACE_SECONDS = 60  # after Ctrl-C, how long workers get to record their interrupted trials


def launch(sweep_folder: Path, storage_url: str, plan: SweepPlan, jobs: int, launcher: str) -> None:
    """Run the sweep's remaining trials; KeyboardInterrupt once every worker has stopped cleanly."""
    if launcher == "slurm":
        launch_submitit(sweep_folder, storage_url, plan, jobs)
    elif jobs == 1:
        from dlx.sweep.worker import work

        work(sweep_folder, storage_url)
    else:
        launch_processes(sweep_folder, storage_url, jobs)


def launch_processes(sweep_folder: Path, storage_url: str, jobs: int) -> None:
    environment = dict(os.environ)
    environment[STORAGE_ENV] = storage_url
    # N processes each using every core would fight over them: share the cores out.
    environment.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // jobs)))
    command = [sys.executable, "-m", "dlx.sweep.worker", str(sweep_folder), "--parent", str(os.getpid())]
    # Own sessions: a Ctrl-C in the terminal reaches only this process, which passes it on exactly once.
    workers = [
        subprocess.Popen([*command, "--index", str(index)], env=environment, start_new_session=True)
        for index in range(jobs)
    ]
    try:
        for worker in workers:
            worker.wait()
    except KeyboardInterrupt:
        _stop(workers)
        raise
    failed = [w.returncode for w in workers if w.returncode not in (0, None)]
    if failed:
        log.warning(
            "%d of %d sweep workers stopped with an error (exit codes %s).", len(failed), jobs, failed
        )


def _stop(workers: list[subprocess.Popen]) -> None:
    from dlx.engine import interrupts

    # The signal this process got: under Slurm's preemption the workers got that SIGTERM too, and a SIGINT
    # after it would count as a second Ctrl-C (stop at once, without the checkpoint after this step).
    passed_on = interrupts.last_signal or signal.SIGINT
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(passed_on)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for worker in workers:
        try:
            worker.wait(timeout=max(0.1, deadline - time.monotonic()))
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            worker.kill()  # its trial stays RUNNING until its heartbeat goes stale, then reruns


def launch_submitit(sweep_folder: Path, storage_url: str, plan: SweepPlan, jobs: int) -> None:
    """Submit one job per queued trial (at most ``jobs`` running at once) until the sweep is done."""
    previous = os.environ.get(STORAGE_ENV)
    os.environ[STORAGE_ENV] = storage_url  # submitted jobs inherit it; it never lands in a pickle on disk
    try:
        _submit_until_done(sweep_folder, storage_url, plan, jobs)
    finally:
        if previous is None:
            os.environ.pop(STORAGE_ENV, None)
        else:
            os.environ[STORAGE_ENV] = previous


def _submit_until_done(sweep_folder: Path, storage_url: str, plan: SweepPlan, jobs: int) -> None:
    import optuna

    from dlx.sweep.storage import open_storage
    from dlx.sweep.study import open_study, requeue, trials_in
    from dlx.sweep.worker import run_one_trial

    executor = _executor(sweep_folder, plan, jobs)
    study = open_study(open_storage(storage_url, plan.settings.heartbeat_seconds, requeue), plan)
    local = plan.settings.slurm.cluster == "local"
    submitted: list[Any] = []
    job_errors: list[str] = []
    try:
        while True:
            optuna.storages.fail_stale_trials(study)
            for job in [job for job in submitted if job.done()]:
                job_errors += _job_error(job)
                submitted.remove(job)
            if (
                len(job_errors) >= 2 * jobs + 1
            ):  # jobs that die before running a trial would be resubmitted forever
                raise DlxError(
                    f"{len(job_errors)} trial jobs failed to run (last: {job_errors[-1]}). Check "
                    f"{sweep_folder / 'submitit'} for their logs and the sweep.slurm.* settings."
                )
            waiting = len(trials_in(study, optuna.trial.TrialState.WAITING))
            if waiting == 0 and not trials_in(study, optuna.trial.TrialState.RUNNING):
                for job in submitted:  # local: exiting after its trial; Slurm: queued, but the work is done
                    if local:
                        job_errors += _job_error(job)
                    else:
                        job.cancel(check=False)
                break
            # Slurm queues a whole array and runs `jobs` of it at a time; the local executor has no queue.
            count = min(waiting, jobs - len(submitted)) if local else (0 if submitted else waiting)
            if count <= 0:
                time.sleep(min(2, plan.settings.heartbeat_seconds))
                continue
            with executor.batch():
                new_jobs = [executor.submit(run_one_trial, str(sweep_folder)) for _ in range(count)]
            submitted.extend(new_jobs)
            log.info(
                "Submitted %d trial job(s) to %s: %s", count, plan.settings.slurm.cluster, new_jobs[0].job_id
            )
    except KeyboardInterrupt:
        for job in submitted:
            job.cancel(check=False)
        raise


def _executor(sweep_folder: Path, plan: SweepPlan, jobs: int) -> Any:
    import submitit

    slurm = plan.settings.slurm
    executor = submitit.AutoExecutor(folder=sweep_folder / "submitit" / "%j", cluster=slurm.cluster)
    parameters: dict[str, Any] = {
        "name": f"dlx-sweep-{plan.sweep_id}",
        "timeout_min": slurm.time_minutes,
        "gpus_per_node": slurm.gpus_per_trial if slurm.cluster == "slurm" else 0,
        "cpus_per_task": slurm.cpus_per_trial,
        "mem_gb": slurm.mem_gb,
        "slurm_partition": slurm.partition,
        "slurm_array_parallelism": jobs,
    }
    if slurm.additional:
        parameters["slurm_additional_parameters"] = dict(slurm.additional)
    executor.update_parameters(**{k: v for k, v in parameters.items() if v is not None})
    return executor


def _job_error(job: Any) -> list[str]:
    """[the error] for a job that failed outright; a trial's own failure is recorded in the storage."""
    try:
        job.result()
    except Exception as error:
        message = " ".join(str(error).split())[:300]
        log.warning("Trial job %s ended with an error: %s", job.job_id, message)
        return [message]
    return []
