import json
from pathlib import Path

from tests.sweep.helpers import FAST, only_sweep_folder, read_summary, sqlite_url, study_trials, sweep


def test_a_search_with_the_median_pruner_stops_hopeless_trials_and_keeps_their_partial_curve():
    # Learning rates up to 10 for AdamW: most of this range is hopeless, and the pruner should see it
    # once one trial has finished. Which validation it stops at is not fixed: the same seeded trials gave
    # other losses on another machine (2026-12-07: a stop at validation 2 of 2), so the run has a third
    # epoch, and a stopped trial's curve is shorter than a finished one's wherever it stops.
    result = sweep(
        *FAST,
        "trainer.max_epochs=3",
        "optimizer.lr=tag(log, interval(1e-3, 10))",
        "--trials",
        "3",
        "sweep.pruner_startup_trials=1",
    )
    assert result.exit_code == 0, result.output
    folder = only_sweep_folder()
    summary = read_summary(folder)
    assert (summary["sampler"], summary["pruner"]) == ("tpe", "median")
    trials = summary["trials"]
    pruned = [t for t in trials if t["state"] == "pruned"]
    finished = [t for t in trials if t["state"] == "finished"]
    assert pruned and finished, [(t["state"], t["params"]) for t in trials]
    assert {t.state.name for t in study_trials(sqlite_url(folder), folder.name)} == {"COMPLETE", "PRUNED"}
    for trial in pruned:
        assert trial["value"] > summary["best"]["value"]
        assert len(trial["curve"]) < len(finished[0]["curve"]) == 3  # stopped before its last validation
        run = Path(trial["run_folder"])
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert [r["val/loss"] for r in records if "val/loss" in r] == trial["curve"]  # the partial curve
        assert (run / "curves.png").exists() and trial["epochs"] == len(trial["curve"])
        assert json.loads((run / "summary.json").read_text())["stop_reason"] == "pruned"  # for dlx compare
    assert f"{pruned[0]['trial']} pruned after validation {len(pruned[0]['curve'])}" in result.output
