import json
import os

import pytest
import torch

from dlx.engine.checkpoint import CheckpointKeeper, load_checkpoint, save_checkpoint_atomically
from dlx.errors import DlxError


def _state(value: float) -> dict:
    return {"config": "seed: 0\n", "model": {"w": torch.full((3,), value)}, "progress": {"global_step": 1}}


def test_a_crash_during_a_checkpoint_write_leaves_the_previous_one_loadable(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    save_checkpoint_atomically(_state(1.0), path)

    def torn_write(obj, handle, *args, **kwargs):
        handle.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", torn_write)
    with pytest.raises(
        DlxError, match=r"No space left on device.*The last checkpoint \(.*last.ckpt\) is intact"
    ):
        save_checkpoint_atomically(_state(2.0), path)
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.full((3,), 1.0))
    assert sorted(os.listdir(tmp_path)) == ["last.ckpt"], "no temporary file is left behind"


def test_a_pickle_that_would_run_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.ckpt"
    torch.save({"config": "x", "model": {}, "payload": Payload()}, path)
    with pytest.raises(DlxError, match="would run code"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "content, message",
    # "hi" and "abc" are read as pickle opcodes that fail inside the unpickler (KeyError, IndexError).
    [
        (b"", "unreadable"),
        (b"not a checkpoint at all", "unreadable"),
        (b"hi\n", "unreadable"),
        (b"abc", "unreadable"),
    ],
)
def test_truncated_or_foreign_files_are_explained(tmp_path, content, message):
    path = tmp_path / "broken.ckpt"
    path.write_bytes(content)
    with pytest.raises(DlxError, match=message):
        load_checkpoint(path)


def test_a_torch_file_that_is_not_a_dlx_checkpoint(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(2)}, path)
    with pytest.raises(DlxError, match="not a dlx checkpoint"):
        load_checkpoint(path)


def test_missing_checkpoint_says_what_to_pass(tmp_path):
    with pytest.raises(DlxError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.ckpt")


def test_keeper_keeps_the_best_k_and_links_best(tmp_path):
    keeper = CheckpointKeeper(tmp_path, "val/acc", "max", top_k=2)
    for step, score in enumerate([0.5, 0.7, 0.6, 0.9, 0.1], start=1):
        keeper.offer(_state(score), score, epoch=step, step=step)
    names = sorted(p.name for p in tmp_path.glob("epoch*.ckpt"))
    assert names == ["epoch002-step000002.ckpt", "epoch004-step000004.ckpt"]
    assert torch.equal(load_checkpoint(tmp_path / "best.ckpt")["model"]["w"], torch.full((3,), 0.9))
    assert keeper.best_score == 0.9


def test_keeper_with_top_1_writes_best_only_when_better(tmp_path):
    keeper = CheckpointKeeper(tmp_path, "val/loss", "min", top_k=1)
    assert keeper.offer(_state(0.5), 0.5, 1, 1)
    assert not keeper.offer(_state(0.6), 0.6, 2, 2)
    assert keeper.offer(_state(0.4), 0.4, 3, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.ckpt"]
    assert torch.equal(load_checkpoint(tmp_path / "best.ckpt")["model"]["w"], torch.full((3,), 0.4))


def test_a_nan_score_never_becomes_the_best(tmp_path):
    keeper = CheckpointKeeper(tmp_path, "val/loss", "min", top_k=1)
    keeper.offer(_state(float("nan")), float("nan"), 1, 1)
    assert keeper.offer(_state(0.7), 0.7, 2, 2)
    assert not keeper.offer(_state(float("nan")), float("nan"), 3, 3)
    assert keeper.best_score == 0.7
    assert torch.equal(load_checkpoint(tmp_path / "best.ckpt")["model"]["w"], torch.full((3,), 0.7))


def test_a_full_disk_while_logging_metrics_is_a_clear_error(tmp_path, monkeypatch):
    from dlx.loggers.metrics_file import MetricsFile

    metrics = MetricsFile(tmp_path / "metrics.jsonl")

    def full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(metrics.handle, "write", full)
    with pytest.raises(DlxError, match="No space left on device.*--resume"):
        metrics.write({"step": 1})


def test_a_full_disk_when_metrics_reach_the_disk_is_a_clear_error(tmp_path, monkeypatch):
    from dlx.loggers.metrics_file import MetricsFile

    metrics = MetricsFile(tmp_path / "metrics.jsonl")
    metrics.write({"step": 1})

    def full():
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(metrics.handle, "flush", full)
    with pytest.raises(DlxError, match="No space left on device.*--resume"):
        metrics.flush()


def test_metrics_lines_are_buffered_and_on_disk_before_each_checkpoint(monkeypatch):
    from dlx.engine.checkpoint import CheckpointKeeper
    from dlx.loggers import metrics_file
    from tests.helpers import only_run_folder, train_run

    monkeypatch.setattr(metrics_file, "FLUSH_SECONDS", 1e9)  # only a checkpoint or the end flushes
    on_disk_at_checkpoint = []
    save_last = CheckpointKeeper.save_last

    def noting_save_last(keeper, checkpoint):
        lines = (keeper.folder.parent / "metrics.jsonl").read_text().splitlines()
        on_disk_at_checkpoint.append((checkpoint["progress"]["global_step"], json.loads(lines[-1])["step"]))
        save_last(keeper, checkpoint)

    monkeypatch.setattr(CheckpointKeeper, "save_last", noting_save_last)
    train_run("trainer.max_epochs=2", "trainer.log_every_n_steps=3")
    assert on_disk_at_checkpoint == [(20, 20), (40, 40)], (
        "each validation's line was on disk before its checkpoint"
    )
    steps = [
        json.loads(line)["step"] for line in (only_run_folder() / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps[0] == 3 and steps[-1] == 40


@pytest.mark.parametrize("free_bytes, refused_clearly", [(0, True), (10**12, False)])
def test_torch_save_short_write_on_a_full_disk(tmp_path, monkeypatch, free_bytes, refused_clearly):
    """torch.save reports ENOSPC as RuntimeError("unexpected pos"); only a full disk turns it into advice."""
    import collections

    path = tmp_path / "last.ckpt"
    save_checkpoint_atomically(_state(1.0), path)

    def short_write(obj, handle, *args, **kwargs):
        handle.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:671] . unexpected pos 1005824 vs 1005716")

    monkeypatch.setattr(torch, "save", short_write)
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr("dlx.engine.checkpoint.shutil.disk_usage", lambda folder: usage(1, 1, free_bytes))
    expected = DlxError if refused_clearly else RuntimeError
    with pytest.raises(expected):
        save_checkpoint_atomically(_state(2.0), path)
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.full((3,), 1.0))


def test_curves_of_a_crashed_run_are_drawn_from_every_logged_line(monkeypatch):
    from dlx.loggers import metrics_file, plots
    from dlx.tasks.classification import ClassificationTask
    from tests.helpers import train_run

    monkeypatch.setattr(metrics_file, "FLUSH_SECONDS", 1e9)  # lines after the last checkpoint stay buffered
    original, calls = ClassificationTask.training_step, {"n": 0}

    def crashing(self, batch):
        calls["n"] += 1
        if calls["n"] == 31:  # mid-epoch 2: the last checkpoint (and flush) was at step 20
            raise RuntimeError("simulated crash")
        return original(self, batch)

    drawn = []
    monkeypatch.setattr(ClassificationTask, "training_step", crashing)
    monkeypatch.setattr(plots, "plot_curves", lambda records, path, monitor=None: drawn.append(records))
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_run("trainer.max_epochs=2", "trainer.log_every_n_steps=5")
    assert drawn and drawn[0][-1]["step"] == 30, "the lines logged since the last checkpoint are drawn too"


def test_a_failed_first_checkpoint_does_not_promise_one_to_resume_from(tmp_path, monkeypatch):
    def full_disk(obj, handle, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(DlxError, match="The run had no checkpoint yet") as refused:
        save_checkpoint_atomically(_state(1.0), tmp_path / "checkpoints" / "last.ckpt")
    assert "--resume" not in str(refused.value)


def test_an_unreadable_checkpoint_names_the_others_beside_it(tmp_path):
    folder = tmp_path / "run" / "checkpoints"
    save_checkpoint_atomically(_state(1.0), folder / "best.ckpt")
    (folder / "last.ckpt").write_bytes(b"PK\x03\x04 torn")
    with pytest.raises(
        DlxError, match=r"Use another checkpoint of the run: best.ckpt in .*--resume .*best.ckpt"
    ):
        load_checkpoint(folder / "last.ckpt")


def test_an_unreadable_file_outside_a_run_does_not_recommend_its_neighbours(tmp_path):
    """Beside a loose file in ~/Downloads, other .ckpt files are anyone's, not this run's."""
    (tmp_path / "e.ckpt").write_bytes(b"other")
    (tmp_path / "bad.ckpt").write_bytes(b"garbage")
    with pytest.raises(DlxError) as refused:
        load_checkpoint(tmp_path / "bad.ckpt")
    assert "e.ckpt" not in str(refused.value) and "checkpoints/best.ckpt" in str(refused.value)


def test_checkpoints_are_as_readable_as_the_runs_other_files(tmp_path):
    mask = os.umask(0o022)
    try:
        save_checkpoint_atomically(_state(1.0), tmp_path / "last.ckpt")
        (tmp_path / "metrics.jsonl").write_text("{}\n")
    finally:
        os.umask(mask)
    assert (tmp_path / "last.ckpt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "metrics.jsonl").stat().st_mode & 0o777 == 0o644


def test_weights_with_nan_are_refused_as_a_damaged_file():
    from dlx.engine.checkpoint import load_model_state

    model = torch.nn.Linear(3, 2)
    state = {key: value.clone() for key, value in model.state_dict().items()}
    state["weight"][0, 1] = float("nan")
    with pytest.raises(DlxError, match=r"weights hold NaN or Inf values \(weight\): the file is damaged"):
        load_model_state(model, state)


def test_a_kept_checkpoint_knows_its_own_rank(tmp_path):
    keeper = CheckpointKeeper(tmp_path, "val/loss", "min", 1)
    keeper.offer(_state(1.0), 0.5, 1, 10)
    keeper.offer(_state(2.0), 0.3, 2, 20)
    assert load_checkpoint(tmp_path / "best.ckpt")["checkpoints"] == {"top": [[0.3, "best.ckpt"]]}
