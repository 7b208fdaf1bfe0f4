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
