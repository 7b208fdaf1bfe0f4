"""`dlx sweep`: hyperparameter sweeps over the same Hydra overrides `dlx train` takes.

space.py (overrides -> search space), settings.py (trials, sampler, pruner, launcher), storage.py (the
Optuna database), study.py (the plan stored in it), trial.py (one trial = one dlx run), worker.py (pull
trials until none is left), launchers.py (local processes, submitit), report.py (table, best.yaml, plot),
command.py (the command itself).
"""
