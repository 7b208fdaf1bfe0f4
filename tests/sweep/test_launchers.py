import os

from tests.sweep.helpers import FAST, only_sweep_folder, read_summary, sqlite_url, study_trials, sweep


def test_local_jobs_run_trials_in_separate_worker_processes():
    result = sweep(*FAST, "optimizer.lr=0.001,0.003", "--jobs", "2")
    assert result.exit_code == 0, result.output
    folder = only_sweep_folder()
    assert [t["state"] for t in read_summary(folder)["trials"]] == ["finished", "finished"]
    workers = {t.user_attrs["worker"] for t in study_trials(sqlite_url(folder), folder.name)}
    assert len(workers) == 2 and not any(w.endswith(f":{os.getpid()}") for w in workers)


def test_slurm_launcher_submits_each_trial_through_submitit():
    # sweep.slurm.cluster=local: submitit's local executor runs the very jobs it would hand to Slurm.
    result = sweep(
        *FAST, "optimizer.lr=0.001,0.003", "--launcher", "slurm", "sweep.slurm.cluster=local", "--jobs", "2"
    )
    assert result.exit_code == 0, result.output
    folder = only_sweep_folder()
    assert [t["state"] for t in read_summary(folder)["trials"]] == ["finished", "finished"]
    job_results = list((folder / "submitit").glob("*/*_result.pkl"))
    assert len(job_results) == 2, list((folder / "submitit").rglob("*"))


def test_stopping_workers_passes_on_the_signal_the_sweep_got(monkeypatch):
    """Under Slurm's preemption the workers got SIGTERM as well: a SIGINT from the parent after it would be
    their second signal, which stops a run at once, without its checkpoint."""
    import signal

    from dlx.engine import interrupts
    from dlx.sweep import launchers

    class Worker:
        def __init__(self):
            self.signals = []

        def poll(self):
            return None if not self.signals else 0

        def send_signal(self, number):
            self.signals.append(number)

        def wait(self, timeout):
            return 0

    for got, passed_on in (
        (signal.SIGTERM, signal.SIGTERM),
        (signal.SIGINT, signal.SIGINT),
        (None, signal.SIGINT),
    ):
        monkeypatch.setattr(interrupts, "last_signal", got)
        workers = [Worker(), Worker()]
        launchers._stop(workers)
        assert [w.signals for w in workers] == [[passed_on], [passed_on]]
