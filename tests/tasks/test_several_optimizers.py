import shutil

import pytest
import torch

from dlx.engine.checkpoint import load_checkpoint
from tests.helpers import only_run_folder, train_run
from tests.tasks import critic_task

TASK = [
    "task._target_=tests.tasks.critic_task.CriticTask",
    "trainer.deterministic=true",
    "scheduler=constant",
]


@pytest.mark.parametrize("critic_first", [True, False])
def test_each_optimizer_steps_on_the_gradient_of_its_own_loss_only(critic_first):
    critic_task.CRITIC_GRADIENT_ERRORS.clear()
    train_run(*TASK, f"+task.critic_first={critic_first}", "trainer.max_epochs=1")
    assert len(critic_task.CRITIC_GRADIENT_ERRORS) == 20  # digits: 20 batches of 64
    assert max(critic_task.CRITIC_GRADIENT_ERRORS) < 1e-6


def test_a_module_the_task_holds_is_checkpointed_resumed_and_restored(tmp_path):
    from dlx.restore import restore_run
    from dlx.train import train

    train_run(*TASK, "trainer.max_epochs=2", "output_dir=whole")
    whole = load_checkpoint(only_run_folder(tmp_path / "whole") / "checkpoints" / "last.ckpt")
    assert set(whole["task"]) == {"critic.weight", "critic.bias"}

    train_run(*TASK, "trainer.max_epochs=1", "output_dir=halves")
    folder = only_run_folder(tmp_path / "halves")
    train(["trainer.max_epochs=2"], resume=folder, trust_checkpoint=True)
    resumed = load_checkpoint(folder / "checkpoints" / "last.ckpt")
    for key, value in whole["task"].items():
        assert torch.equal(resumed["task"][key], value), key  # the resumed run went on with the critic
    for key, value in whole["model"].items():
        assert torch.equal(resumed["model"][key], value), key

    restored = restore_run(folder / "checkpoints" / "last.ckpt", trust_checkpoint=True)
    assert torch.equal(restored.task.critic.weight, resumed["task"]["critic.weight"])
    shutil.rmtree(tmp_path / "whole")


def test_an_interrupted_run_of_the_users_own_classes_prints_a_resume_command_that_works(monkeypatch, caplog):
    from dlx.engine.interrupts import GracefulStop
    from dlx.train import train

    requested = GracefulStop.requested
    monkeypatch.setattr(GracefulStop, "requested", property(lambda self: True))
    summary = train_run(*TASK, "trainer.max_epochs=1")
    assert summary["stop_reason"] == "interrupted"
    command = next(r.getMessage() for r in caplog.records if "Continue exactly" in r.getMessage())
    assert command.endswith("--trust-checkpoint")
    monkeypatch.setattr(GracefulStop, "requested", requested)
    folder = only_run_folder()
    assert train([], resume=folder, trust_checkpoint=True)["stop_reason"] == "max_epochs"


def test_only_tasks_that_feed_their_model_the_data_inputs_get_the_output_check():
    from dlx.engine.model_check import _feeds_model_the_data_inputs
    from dlx.tasks.classification import ClassificationTask
    from dlx.tasks.regression import RegressionTask

    class Reshaping(ClassificationTask):
        def training_step(self, batch):
            inputs, targets = batch
            return super().training_step((inputs.flatten(1), targets))

    model = torch.nn.Linear(64, 10)
    assert _feeds_model_the_data_inputs(ClassificationTask(model, num_classes=10))
    assert not _feeds_model_the_data_inputs(critic_task.CriticTask(model, num_classes=10))  # own train_batch
    assert not _feeds_model_the_data_inputs(Reshaping(model, num_classes=10))
    assert not _feeds_model_the_data_inputs(RegressionTask(torch.nn.Linear(64, 1)))  # checks nothing


def test_backward_for_one_optimizer_skips_its_frozen_parameters():
    from dlx.engine.optimization import Optimization, OptimizerSetup
    from dlx.engine.precision import Precision

    critic = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 1))
    critic[0].weight.requires_grad_(False)
    setup = OptimizerSetup(torch.optim.SGD(critic.parameters(), lr=0.1), None, "step")
    optimization = Optimization([setup], Precision("32", torch.device("cpu")))
    optimization.begin_batch(1, True, False)
    optimization.backward(critic(torch.randn(2, 3)).sum(), 0)
    assert critic[0].weight.grad is None and critic[1].weight.grad is not None
