"""A user's own classes through `_target_`: what works, and every mistake in them explained in one paragraph
(exit 2, no traceback, no run folder left)."""

import textwrap

import pytest
from typer.testing import CliRunner

from dlx.cli import app

FAST = ["logger=none", "trainer.progress=none", "trainer.max_steps=3", "trainer.max_epochs=null"]

USER_CODE = {
    "syntax_error.py": "class Net(:\n    pass\n",
    "needs_missing.py": "import not_a_real_package_xyz\n",
    "nets.py": """
        from torch import nn

        class BadInit(nn.Module):
            def __init__(self, input_shape: list[int], num_outputs: int):
                super().__init__()
                self.layer = nn.Linear(input_shape, num_outputs)  # a list, not a number

        class KeyErrorInForward(nn.Module):
            def __init__(self, input_shape: list[int], num_outputs: int):
                super().__init__()
                self.layer = nn.Linear(64, num_outputs)

            def forward(self, inputs):
                if self.training:
                    return {"logits": self.layer(inputs.flatten(1))}["scores"]
                return self.layer(inputs.flatten(1))

        class TooManyOutputs(nn.Module):
            def __init__(self, input_shape: list[int], num_outputs: int):
                super().__init__()
                self.layer = nn.Linear(64, num_outputs + 2)

            def forward(self, inputs):
                return self.layer(inputs.flatten(1))

        class FailsInEvalMode(TooManyOutputs):
            def forward(self, inputs):
                assert self.training, "only trains"
                return super().forward(inputs)
        """,
    "blobs.py": """
        import torch
        from dlx.data.base import DataMetadata, DataModule

        class Blobs(DataModule):
            def __init__(self, batch_size: int = 32, seed: int = 0, splits: tuple = ("train", "val", "test"),
                         with_classes: bool = True):
                super().__init__(batch_size=batch_size, seed=seed)
                self.names, self.with_classes = splits, with_classes

            def load(self):
                generator = torch.Generator().manual_seed(0)
                for name in self.names:
                    targets = torch.randint(0, 3, (96,), generator=generator)
                    inputs = torch.randn(96, 5, generator=generator) + targets[:, None].float() * 3
                    self.splits[name] = (inputs, targets)

            def metadata(self):
                return DataMetadata([5], 3, 3 if self.with_classes else None, ["a", "b", "c"])
        """,
}


@pytest.fixture(autouse=True)
def _user_code(tmp_path, monkeypatch):
    for name, source in USER_CODE.items():
        (tmp_path / name).write_text(textwrap.dedent(source))
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "nets.py").write_text("import mypkg.helpers\n")  # a module of its own, misnamed
    monkeypatch.syspath_prepend(str(tmp_path))


def run(*arguments: str):
    result = CliRunner().invoke(app, ["train", *FAST, *arguments])
    return result.exit_code, " ".join(result.output.split()), result.output


MISTAKES = [
    (
        ["model._target_=syntax_error.Net"],
        "Importing syntax_error for 'syntax_error.Net' failed: SyntaxError",
    ),
    (["model._target_=needs_missing.Net"], "imports 'not_a_real_package_xyz', which is not installed"),
    (["model._target_=nets.BadInit"], "Building model._target_=nets.BadInit failed: TypeError"),
    (["model._target_=mypkg.nets.Net"], "mypkg.nets imports 'mypkg.helpers', which does not exist"),
    (["model._target_=nets.KeyErrorInForward"], "The first training step failed: KeyError: 'scores'"),
    (["model._target_=nets.TooManyOutputs"], "outputs of shape [2, 12] for a batch of 2, but"),
    (["model._target_=nets.FailsInEvalMode"], "two validation samples before training: AssertionError"),
    (["data._target_=blobs.Blobs", "+data.splits=[train,test]"], "Blobs.load() made no 'val' split"),
    (["data._target_=blobs.Blobs", "+data.with_classes=false"], "needs the number of classes"),
]


@pytest.mark.parametrize("arguments, message", MISTAKES, ids=[a[0] + " " + m[:20] for a, m in MISTAKES])
def test_a_mistake_in_the_users_code_is_one_paragraph(arguments, message, tmp_path):
    code, output, raw = run(*arguments)
    assert code == 2 and message in output, raw
    assert "Traceback" not in raw
    assert not list((tmp_path / "outputs").glob("*/*")), "no run folder left behind"


def test_a_users_data_module_and_torch_optimizer_and_scheduler_classes_train(tmp_path):
    code, _, raw = run(
        "data._target_=blobs.Blobs",  # digits' shapes and classes are not kept for it
        "optimizer._target_=torch.optim.SGD",
        "optimizer.lr=0.1",
        "scheduler._target_=torch.optim.lr_scheduler.StepLR",
        "+scheduler.step_size=2",
    )
    assert code == 0, raw
    assert list((tmp_path / "outputs").glob("blobs_mlp/*/checkpoints/last.ckpt"))
