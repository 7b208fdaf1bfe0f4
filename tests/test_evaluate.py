import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from dlx.engine.checkpoint import load_checkpoint
from dlx.errors import DlxError
from dlx.evaluate import evaluate_checkpoint
from tests.helpers import only_run_folder, train_run


@pytest.fixture
def trained_run():
    summary = train_run("trainer.max_epochs=3", "trainer.monitor=val/acc", "trainer.mode=max")
    return only_run_folder(), summary


def test_eval_reproduces_the_best_validation_metric_and_writes_its_report(trained_run):
    folder, summary = trained_run
    results = evaluate_checkpoint(folder / "checkpoints" / "best.ckpt", [])
    for key, value in summary["best_metrics"].items():
        assert results["metrics"][key] == pytest.approx(value, abs=1e-6), key
    report = folder / "eval" / "val"
    saved = json.loads((report / "eval.json").read_text())
    assert saved["metrics"] == results["metrics"] and len(saved["confusion_matrix"]) == 10
    assert (report / "confusion_matrix.png").stat().st_size > 1000


def test_eval_on_the_test_split_needs_no_config_files(trained_run, monkeypatch):
    folder, _ = trained_run
    (folder / "config.yaml").unlink()
    monkeypatch.setattr("dlx.config.paths.bundled_root", lambda: folder / "nowhere")
    results = evaluate_checkpoint(folder / "checkpoints" / "best.ckpt", ["data.split=test"])
    assert results["split"] == "test" and results["metrics"]["test/acc"] > 0.8
    assert (folder / "eval" / "test" / "eval.json").exists()


def _rewrite_config(path, change):
    state = load_checkpoint(path)
    cfg = OmegaConf.create(state["config"])
    change(cfg)
    state["config"] = OmegaConf.to_yaml(cfg)
    torch.save(state, path)


def test_a_foreign_target_inside_a_checkpoint_is_refused_unless_trusted(trained_run):
    folder, _ = trained_run
    path = folder / "checkpoints" / "best.ckpt"
    _rewrite_config(path, lambda cfg: OmegaConf.update(cfg, "model._target_", "os.system", force_add=True))
    with pytest.raises(DlxError, match="--trust-checkpoint"):
        evaluate_checkpoint(path, [])


def test_a_checkpoint_of_another_model_is_explained(trained_run):
    from dlx.engine.checkpoint import load_model_state

    folder, _ = trained_run  # e.g. a user's model class whose code changed since the run
    weights = load_checkpoint(folder / "checkpoints" / "best.ckpt")["model"]
    with pytest.raises(DlxError, match="cannot be loaded into this model, it does not fit"):
        load_model_state(torch.nn.Linear(64, 10), weights)


def test_eval_of_a_run_folder_measures_its_best_checkpoint_and_writes_into_that_run():
    """The model the run's summary reports (after early stopping, last.ckpt is a worse one)."""
    train_run("trainer.max_epochs=1")
    folder = only_run_folder()
    evaluate_checkpoint(folder, [])
    written = json.loads((folder / "eval" / "val" / "eval.json").read_text())  # best: the plain split name
    assert Path(written["checkpoint"]).name == "best.ckpt"
    assert not (folder.parent / "eval").exists()

    train_run("trainer.max_epochs=1", "trainer.save_top_k=0", "output_dir=kept_none")
    folder = only_run_folder(Path("kept_none"))  # no best.ckpt kept: the last one
    evaluate_checkpoint(folder, [])
    assert (folder / "eval" / "val-last" / "eval.json").is_file()


def test_eval_in_a_read_only_run_prints_the_metrics_then_says_they_were_not_saved(monkeypatch, capsys):
    import errno

    train_run("trainer.max_epochs=1")
    folder = only_run_folder()

    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(DlxError, match="The metrics above could not be saved .* Read-only file system"):
        evaluate_checkpoint(folder / "checkpoints" / "best.ckpt", [])
    assert "val/acc" in capsys.readouterr().out


def test_eval_refuses_a_model_change_the_weights_would_load_into():
    train_run("trainer.max_epochs=1")
    checkpoint = only_run_folder() / "checkpoints" / "best.ckpt"
    with pytest.raises(DlxError, match="would change the model the checkpoint's weights were trained for"):
        evaluate_checkpoint(checkpoint, ["model.activation=tanh"])
    results = evaluate_checkpoint(checkpoint, ["data.batch_size=7"])
    assert results["overrides"] == ["data.batch_size=7"]
