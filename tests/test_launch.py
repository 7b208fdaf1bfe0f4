from dataclasses import dataclass, field

import pytest

from dlx.errors import DlxError
from dlx.launch import _outcome_of_failure, needs_launch, train_arguments


@dataclass
class Failure:  # the fields of torchrun's ProcessFailure that dlx reads
    exitcode: int
    report: dict | None = None
    timestamp: int = 0
    error_file_data: dict = field(init=False)

    def __post_init__(self):
        self.error_file_data = {"dlx": self.report} if self.report else {}

    def signal_name(self) -> str:
        return "SIGKILL"


@dataclass
class Failed:
    failures: dict


def report(message, time, collateral=False, exit_code=1, interrupted=False):
    return {
        "message": message,
        "time": time,
        "collateral": collateral,
        "exit_code": exit_code,
        "interrupted": interrupted,
    }


def test_the_rank_with_its_own_error_is_named_not_the_one_that_lost_it():
    failures = {
        0: Failure(1, report("RuntimeError: Connection closed by peer", 1.0, collateral=True)),
        1: Failure(2, report("data.batch_size ... Type `x`.", 2.0, exit_code=2)),
        2: Failure(-15),
    }
    with pytest.raises(DlxError, match=r"Rank 1 of 4 failed.*data.batch_size") as caught:
        _outcome_of_failure(Failed(failures), 4, 300)
    assert caught.value.exit_code == 2


def test_a_lost_process_alone_is_explained_with_the_timeout():
    failures = {0: Failure(1, report("Timed out waiting 10000ms", 1.0, collateral=True)), 1: Failure(-15)}
    with pytest.raises(DlxError, match=r"Rank 0 of 2 .*collective_timeout=10 s.*raise `trainer.collective"):
        _outcome_of_failure(Failed(failures), 2, 10)


def test_a_process_killed_without_a_word_is_named_by_its_signal():
    with pytest.raises(DlxError, match="Rank 1 of 2 failed.*killed by signal SIGKILL"):
        _outcome_of_failure(Failed({1: Failure(-9)}), 2, 300)


def test_the_killed_rank_is_named_not_the_one_torchrun_stopped_after_it():
    failures = {0: Failure(-15, timestamp=1), 1: Failure(-9, timestamp=2)}  # SIGKILL for 1, then SIGTERM
    with pytest.raises(DlxError, match=r"Rank 1 of 2 failed.*SIGKILL \(the out-of-memory killer sends it\)"):
        _outcome_of_failure(Failed(failures), 2, 300)


def test_interrupted_workers_are_an_interrupted_run():
    failures = {0: Failure(130, report("interrupted", 1.0, exit_code=130, interrupted=True))}
    assert _outcome_of_failure(Failed(failures), 2, 300) == {"stop_reason": "interrupted", "signal": 2}


def test_each_process_runs_the_same_train_command(monkeypatch):
    arguments = train_arguments(["a=1"], ["mine"], None, True)
    assert arguments == ["train", "a=1", "--config-dir", "mine", "--trust-checkpoint"]
    from omegaconf import OmegaConf

    trainer = OmegaConf.create({"devices": 2, "num_nodes": 1})
    assert needs_launch(trainer)
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert not needs_launch(trainer)  # already one of torchrun's processes
